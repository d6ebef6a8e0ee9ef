//! Sweeps: the scheduled sweep of every account and region this deployment covers, and the sweep of one
//! account and region. With a queue (the Lambda) a sweep fans out — one message per account and region,
//! then one per cluster — so each cluster is its own retryable unit and no fleet has to fit one invocation;
//! without one (the CLI) the clusters are evaluated in-line. A scope that cannot be reached is reported.

use super::parse::Parsed;
use super::route::Routed;
use super::summary::{Failure, FannedOut, RunSummary, TriggerLine};
use crate::event::Trigger;
use crate::handler::{Context, MemberAccounts};
use crate::resolve::Leads;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde_json::{json, Value};
use tracing::{info, warn};

/// SendMessageBatch takes at most ten entries.
const BATCH: usize = 10;

pub async fn sweep(ctx: &Context, items: &[Parsed], run: &mut RunSummary, routed: &mut Routed) {
    for item in items {
        let result = match &item.trigger {
            Trigger::Schedule { account, region } => {
                schedule(
                    ctx,
                    item,
                    account.as_deref(),
                    region.as_deref(),
                    run,
                    routed,
                )
                .await
            }
            Trigger::Sweep { account, region } => {
                sweep_scope(ctx, item, Some(account), region, run, routed).await
            }
            _ => Ok(()),
        };
        if let Err(error) = result {
            warn!(trigger = %item.trigger.id(), %error, "sweep failed");
            routed.failed.extend(item.message_id.clone());
            run.fail(format!("sweep {}", item.trigger.id()), error);
        }
    }
}

/// The accounts and regions the scheduled sweep covers: the member accounts (listed, or the whole
/// organization) times `EKS_WARDEN_REGIONS`; by default only the schedule's own account and region.
async fn scopes(
    ctx: &Context,
    account: Option<&str>,
    region: Option<&str>,
) -> Result<Vec<(Option<String>, String)>, String> {
    let region = region.unwrap_or(&ctx.home_region).to_string();
    let regions = if ctx.regions.is_empty() {
        vec![region]
    } else {
        ctx.regions.clone()
    };
    let accounts: Vec<Option<String>> = match &ctx.member_accounts {
        None => vec![account.map(str::to_string)],
        Some(MemberAccounts::List(a)) => a.iter().cloned().map(Some).collect(),
        Some(MemberAccounts::Organization) => ctx
            .organization_accounts()
            .await?
            .into_iter()
            .map(Some)
            .collect(),
    };
    Ok(accounts
        .iter()
        .flat_map(|a| regions.iter().map(move |r| (a.clone(), r.clone())))
        .collect())
}

async fn schedule(
    ctx: &Context,
    item: &Parsed,
    account: Option<&str>,
    region: Option<&str>,
    run: &mut RunSummary,
    routed: &mut Routed,
) -> Result<(), String> {
    let scopes = scopes(ctx, account, region).await?;
    if let (Some(q), true) = (&ctx.recheck, scopes.len() > 1) {
        let bodies: Vec<(FannedOut, Value)> = scopes
            .iter()
            .map(|(a, r)| {
                let account = a.clone().unwrap_or_default();
                let body = json!({"kind": "sweep", "account": account, "region": r});
                (
                    FannedOut {
                        account,
                        region: r.clone(),
                        cluster: None,
                        message_id: String::new(),
                    },
                    body,
                )
            })
            .collect();
        send(ctx, &q.url, bodies, run).await?;
        info!(
            scopes = scopes.len(),
            "sweep fanned out per account and region"
        );
        return Ok(());
    }
    for (a, r) in &scopes {
        sweep_scope(ctx, item, a.as_ref(), r, run, routed).await?;
    }
    Ok(())
}

/// Lists the clusters of one account and region, then queues one evaluation each (or plans them in-line).
async fn sweep_scope(
    ctx: &Context,
    item: &Parsed,
    account: Option<&String>,
    region: &str,
    run: &mut RunSummary,
    routed: &mut Routed,
) -> Result<(), String> {
    let label = format!("{}/{region}", account.map(String::as_str).unwrap_or("home"));
    let unreachable = |run: &mut RunSummary, error: String| {
        warn!(scope = %label, %error, "sweep could not reach the account and region");
        run.unreachable.push(Failure {
            what: format!("sweep {label}"),
            error,
        });
    };
    let scope = match ctx.scope(account.map(String::as_str), Some(region)).await {
        Ok(Ok(s)) => s,
        Ok(Err(reason)) | Err(reason) => {
            unreachable(run, reason);
            return Ok(());
        }
    };
    let clusters = match crate::collect::list_clusters(&scope.clients).await {
        Ok(c) => c,
        Err(e) => {
            let reason = scope.assume_role_error().await;
            unreachable(run, reason.unwrap_or_else(|| e.to_string()));
            return Ok(());
        }
    };
    if clusters.is_empty() {
        run.ignore(
            format!("sweep:{label}"),
            "no clusters in the region".into(),
            item.message_id.clone(),
        );
        return Ok(());
    }
    let account = account.cloned().unwrap_or_default();
    if let Some(q) = &ctx.recheck {
        let bodies = clusters
            .iter()
            .map(|c| {
                let body = json!({"kind": "recheck", "account": account, "region": region,
                    "cluster": c, "attempt": 0, "origin": "sweep"});
                let to = FannedOut {
                    account: account.clone(),
                    region: region.to_string(),
                    cluster: Some(c.clone()),
                    message_id: String::new(),
                };
                (to, body)
            })
            .collect();
        send(ctx, &q.url, bodies, run).await?;
        info!(scope = %label, clusters = clusters.len(), "sweep fanned out per cluster");
        return Ok(());
    }
    let leads: Leads = clusters
        .iter()
        .map(|c| (c.clone(), ["sweep".to_string()].into()))
        .collect();
    run.triggers.push(TriggerLine {
        kind: item.trigger.kind(),
        id: format!("sweep:{label}"),
        message_id: item.message_id.clone(),
        clusters: clusters.clone(),
        evidence: Default::default(),
    });
    routed.want(ctx, &scope, (&account, region), item, &leads);
    Ok(())
}

/// Sends the messages ten at a time, without delay. Any entry that could not be sent fails the sweep
/// record, so it is retried (a cluster queued twice is evaluated twice, never lost).
async fn send(
    ctx: &Context,
    url: &str,
    bodies: Vec<(FannedOut, Value)>,
    run: &mut RunSummary,
) -> Result<(), String> {
    let mut failed = Vec::new();
    for chunk in bodies.chunks(BATCH) {
        let entries: Vec<SendMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, (_, body))| {
                SendMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .message_body(body.to_string())
                    .delay_seconds(0)
                    .build()
                    .ok()
            })
            .collect();
        let out = ctx
            .sqs
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| crate::collect::error_line("SQS SendMessageBatch (sweep)", &e))?;
        for ok in out.successful() {
            let i: usize = ok
                .id()
                .trim_start_matches('m')
                .parse()
                .unwrap_or(usize::MAX);
            if let Some((to, _)) = chunk.get(i) {
                let mut to = to.clone();
                to.message_id = ok.message_id().to_string();
                run.fanned_out.push(to);
            }
        }
        failed.extend(
            out.failed()
                .iter()
                .map(|f| format!("{}: {}", f.code(), f.message().unwrap_or_default())),
        );
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of the sweep's messages were not sent: {}",
            failed.len(),
            failed.join("; ")
        ))
    }
}
