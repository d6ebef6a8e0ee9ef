//! Stage 5, record and notify: the per-cluster publish step, and the re-check of a cluster still settling.

use super::summary::{Published, RecheckSent, RunSummary};
use crate::event::Trigger;
use crate::handler::Context;
use crate::notify;
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

/// Records and notifies one cluster's evaluation.
pub async fn publish(
    ctx: &Context,
    report: &ClusterReport,
    triggers: &[Trigger],
    run: &mut RunSummary,
) -> Result<(), String> {
    let Some(topic) = &ctx.topic_arn else {
        return Ok(());
    };
    let Some(msg) = notify::message(report, triggers) else {
        return Ok(());
    };
    let mut req = ctx
        .sns
        .publish()
        .topic_arn(topic)
        .subject(msg.subject)
        .message(msg.body)
        .message_structure("json");
    for (k, v) in msg.attributes {
        req = req.message_attributes(k, v);
    }
    let out = req
        .send()
        .await
        .map_err(|e| crate::collect::error_line("SNS Publish", &e))?;
    run.published.push(Published {
        cluster: report.cluster.clone(),
        message_id: out.message_id().unwrap_or_default().to_string(),
    });
    Ok(())
}
