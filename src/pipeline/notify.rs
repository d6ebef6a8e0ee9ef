//! Stage 5, record and notify: the per-cluster publish step, and the re-check of a cluster still settling.

use super::route::Target;
use super::summary::{RecheckSent, RunSummary};
use crate::event::Trigger;
use crate::handler::Context;
use crate::scan::ClusterReport;

/// Queues a delayed re-check of a cluster that is still settling, up to the attempt limit.
pub async fn recheck(
    ctx: &Context,
    report: &ClusterReport,
    attempt: u32,
    run: &mut RunSummary,
) -> Result<(), String> {
    let Some(q) = &ctx.recheck else { return Ok(()) };
    if attempt > q.max_attempts {
        run.ignore(
            report.cluster.clone(),
            format!(
                "still {} after {} re-checks: no further re-check",
                report.status, q.max_attempts
            ),
            None,
        );
        return Ok(());
    }
    let body = serde_json::json!({
        "kind": "recheck", "account": report.account, "region": report.region,
        "cluster": report.cluster, "attempt": attempt,
    });
    let out = ctx
        .sqs
        .send_message()
        .queue_url(&q.url)
        .message_body(body.to_string())
        .delay_seconds(q.delay_seconds)
        .send()
        .await
        .map_err(|e| crate::collect::error_line("SQS SendMessage (re-check)", &e))?;
    run.rechecks.push(RecheckSent {
        cluster: report.cluster.clone(),
        attempt,
        delay_seconds: q.delay_seconds,
        message_id: out.message_id().unwrap_or_default().to_string(),
    });
    Ok(())
}

/// Records and notifies one cluster's evaluation: with a state table a message only on a change (or as a
/// reminder), exactly once; without one, every violation each time (`"notification": "full"`).
pub async fn publish(
    ctx: &Context,
    report: &ClusterReport,
    triggers: &[Trigger],
    run: &mut RunSummary,
) -> Result<(), String> {
    crate::state::record_and_notify(ctx, report, triggers, run).await
}

/// A cluster that no longer exists: its recorded findings are resolved (one message) and its state removed.
pub async fn gone(
    ctx: &Context,
    key: &Target,
    triggers: &[Trigger],
    run: &mut RunSummary,
) -> Result<(), String> {
    if ctx.state.is_none() {
        return Ok(());
    }
    let account = if key.0.is_empty() {
        ctx.own_account().await?
    } else {
        key.0.clone()
    };
    crate::state::cluster_gone(ctx, &account, &key.1, &key.2, triggers, run).await
}

/// Keeps Security Hub in step with this evaluation (the scope's own account); a failure retries the
/// records, since a skipped import would leave Security Hub behind until the next change.
pub async fn security_hub(
    named: &super::route::Named,
    report: &ClusterReport,
    run: &mut RunSummary,
) -> Result<(), String> {
    let Some(hub) = &named.scope.hub else {
        return Ok(());
    };
    // Boxed: the SDK's finding model is large, and this runs deep inside the pipeline's future.
    let synced = Box::pin(crate::securityhub::sync(hub, report, &run.generated_at)).await?;
    run.security_hub.push(crate::pipeline::summary::HubSync {
        cluster: report.cluster.clone(),
        imported: synced.imported,
        archived: synced.archived,
    });
    Ok(())
}
