//! The handler as explicit stages, shared by the Lambda and `eks-warden handle`:
//!
//! parse (payload → triggers) → route (the whole batch → clusters, each once; sweeps fan out) →
//! evaluate (per cluster) → act (remediate) → record and notify (per cluster).
//!
//! Failures are reported per SQS record, so nothing else is retried and nothing is lost; the invocation's
//! deadline bounds the whole run: what cannot finish before it is handed back as `batchItemFailures`.

pub mod evaluate;
pub mod notify;
pub mod parse;
pub mod route;
pub mod summary;
pub mod sweep;

pub use notify::publish;
pub use summary::*;

use crate::collect::CollectError;
use crate::event::{PayloadError, Trigger};
use crate::handler::Context;
use crate::remediate::Budget;
use crate::settings::Settings;
use evaluate::Evaluated;
use futures::StreamExt;
use route::{Named, Routed, Target};
use serde_json::Value;
use std::collections::BTreeSet;
use tokio::time::Instant;
use tracing::warn;

/// Statuses after which the cluster's settings will change without another API call.
const SETTLING: &[&str] = &["CREATING", "UPDATING", "PENDING"];

/// Runs the pipeline with no deadline (the CLI).
pub async fn handle(ctx: &Context, payload: &Value) -> Result<RunSummary, PayloadError> {
    handle_until(ctx, payload, None).await
}

/// Runs the pipeline; nothing is started after `cutoff`, and work cut off there fails its records.
pub async fn handle_until(
    ctx: &Context,
    payload: &Value,
    cutoff: Option<Instant>,
) -> Result<RunSummary, PayloadError> {
    let mut run = RunSummary {
        generated_at: crate::state::rfc3339(std::time::SystemTime::now()),
        version: env!("CARGO_PKG_VERSION"),
        ..RunSummary::default()
    };
    let max_attempts = ctx
        .recheck
        .as_ref()
        .map_or(parse::DEFAULT_MAX_ATTEMPTS, |q| q.max_attempts);
    let items = parse::parse(payload, max_attempts, &mut run)?;
    let (sweeps, others): (Vec<_>, Vec<_>) = items
        .into_iter()
        .partition(|i| matches!(i.trigger, Trigger::Schedule { .. } | Trigger::Sweep { .. }));

    let mut routed = Routed::default();
    route::route(ctx, &others, cutoff, &mut run, &mut routed).await;
    sweep::sweep(ctx, &sweeps, &mut run, &mut routed).await;

    let mut failed = std::mem::take(&mut routed.failed);
    let Some(settings) = invocation_settings(ctx, &mut routed, &mut run, &mut failed).await else {
        run.batch_item_failures = failed
            .into_iter()
            .map(|m| BatchItemFailure { item_identifier: m })
            .collect();
        return Ok(run);
    };
    // One write budget for the whole invocation, shared by every cluster it fixes.
    let budget = Budget::new(ctx.policy.max_fixes);
    let mut outcomes = std::pin::pin!(evaluate::evaluate(&settings, &routed.wanted, cutoff));
    while let Some((key, outcome)) = outcomes.next().await {
        let named = &routed.wanted[&key];
        let fixing = (&settings, &budget);
        Box::pin(finish(
            ctx,
            fixing,
            (&key, named),
            outcome,
            cutoff,
            &mut run,
            &mut failed,
        ))
        .await;
    }
    run.evaluated.sort();
    run.targets.sort_by(|a, b| {
        (&a.account, &a.region, &a.cluster).cmp(&(&b.account, &b.region, &b.cluster))
    });
    run.clusters.sort_by(|a, b| {
        (&a.account, &a.region, &a.cluster).cmp(&(&b.account, &b.region, &b.cluster))
    });
    run.batch_item_failures = failed
        .into_iter()
        .map(|m| BatchItemFailure { item_identifier: m })
        .collect();
    Ok(run)
}

/// The settings of this invocation, with the exemption list read once for the batch. Unreadable: nothing
/// is judged without it (exempt findings would turn into false alarms) and every routed record is retried.
async fn invocation_settings(
    ctx: &Context,
    routed: &mut Routed,
    run: &mut RunSummary,
    failed: &mut BTreeSet<String>,
) -> Option<Settings> {
    if routed.wanted.is_empty() {
        return Some(ctx.settings.clone());
    }
    match ctx.invocation_settings().await {
        Ok(s) => Some(s),
        Err(error) => {
            warn!(%error, "exemption list unreadable; routed records retried");
            for named in routed.wanted.values() {
                failed.extend(named.messages.iter().cloned());
            }
            run.fail("read the exemption list".into(), error);
            None
        }
    }
}

/// Stages 4 and 5 for one evaluated cluster.
async fn finish(
    ctx: &Context,
    fixing: (&Settings, &Budget),
    (key, named): (&Target, &Named),
    outcome: Evaluated,
    cutoff: Option<Instant>,
    run: &mut RunSummary,
    failed: &mut BTreeSet<String>,
) {
    let name = &key.2;
    let mut fail = |run: &mut RunSummary, what: String, error: String| {
        failed.extend(named.messages.iter().cloned());
        run.fail(what, error);
    };
    let mut report = match outcome {
        Evaluated::Report(r) if r.status == "DELETING" => {
            // A cluster on its way out: its findings would only be noise, and nothing is left to fix.
            // With a state table it is re-checked until it is gone, when its findings are resolved.
            run.ignore(
                name.clone(),
                format!("cluster {name} is being deleted"),
                None,
            );
            if ctx.state.is_some() {
                let attempt = named.attempt.saturating_add(1);
                if let Err(error) = notify::recheck(ctx, &r, attempt, run).await {
                    fail(run, format!("re-check {name}"), error);
                }
            }
            return;
        }
        Evaluated::Report(r) => r,
        Evaluated::Error(CollectError::ClusterNotFound(_)) => {
            run.ignore(
                name.clone(),
                format!("cluster {name} no longer exists"),
                None,
            );
            if let Err(error) = notify::gone(ctx, key, &named.triggers, run).await {
                fail(run, format!("resolve {name}"), error);
            }
            return;
        }
        Evaluated::Error(e) => {
            warn!(cluster = %name, error = %e, "evaluation failed");
            fail(run, format!("evaluate {name}"), e.to_string());
            return;
        }
        Evaluated::Late => {
            warn!(cluster = %name, "deadline: evaluation handed back for retry");
            fail(
                run,
                format!("evaluate {name}"),
                "the invocation's deadline came before the evaluation finished".into(),
            );
            return;
        }
    };
    run.evaluated.push(name.clone());
    run.targets.push(TargetLine {
        account: report.account.clone(),
        region: report.region.clone(),
        cluster: name.clone(),
        evidence: named.evidence.iter().cloned().collect(),
    });
    let mut again = SETTLING.contains(&report.status.as_str());
    match evaluate::act(ctx, fixing, named, &mut report, cutoff).await {
        Ok(r) => again |= r,
        // The fresh read failed: retry the records rather than lose the fix.
        Err(e) => fail(run, format!("remediate {name}"), e),
    }
    let mut result = if cutoff.is_some_and(|c| Instant::now() >= c) {
        Err("the invocation's deadline came before the notification".to_string())
    } else {
        publish(ctx, &report, &named.triggers, run).await
    };
    if result.is_ok() && ctx.security_hub {
        result = notify::security_hub(named, &report, run).await;
    }
    if result.is_ok() && again {
        result = notify::recheck(ctx, &report, named.attempt.saturating_add(1), run).await;
    }
    if let Err(error) = result {
        fail(run, format!("notify {name}"), error);
    }
    run.clusters.push(report);
}
