//! Finding lifecycle: remember what was said and done, so that a cluster gets a message when something
//! changed (new / resolved / exempted), a reminder on the sweep when it stays open, and every message
//! exactly once.
//!
//! Per evaluated cluster: one Query reads its items, the diff says what changed, one conditional write
//! (TransactWriteItems when a message or an audit entry goes with it) stores the next state, the pending
//! message and the fixes applied; then the message is published and its pending item deleted. A write that
//! loses a race re-reads and re-diffs; the loser usually finds nothing new.

pub mod diff;
mod show;
pub mod store;

pub use show::{show, show_table};

use crate::event::Trigger;
use crate::handler::{Context, ContextError, Published, RunSummary};
use crate::notify::change::{self, Kind};
use crate::rules::Status;
use crate::scan::ClusterReport;
use diff::{diff, Seen};
use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};
use store::{AuditEntry, Commit, Loaded, Pending, State, Store, StoredMessage, WriteError};
use tracing::{info, warn};

pub const ENV_STATE_TABLE: &str = "EKS_WARDEN_STATE_TABLE";
pub const ENV_REMIND_AFTER_HOURS: &str = "EKS_WARDEN_REMIND_AFTER_HOURS";
pub const ENV_AUDIT_DAYS: &str = "EKS_WARDEN_AUDIT_DAYS";

/// How many times a cluster's state is re-read after losing a race before the records are retried later.
const MAX_ATTEMPTS: usize = 5;

/// The state table and its settings.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    pub store: Store,
    /// Reminders on the sweep for clusters last notified longer ago than this; 0 = never.
    pub remind_after_hours: u32,
    pub audit_days: u32,
    /// Another invocation may take over a pending message once it is this old (seconds).
    pub claim_after_secs: i64,
}

impl Lifecycle {
    /// `_config` is the configuration the store's client was made from; the function's own identity, which
    /// the audit names, is the context's ([`Context::own_identity`]), asked once for every use.
    pub fn new(_config: &aws_config::SdkConfig, store: Store) -> Self {
        Lifecycle {
            store,
            remind_after_hours: 24,
            audit_days: 90,
            claim_after_secs: 60,
        }
    }

    /// The role that made a fix in `account`: the member role there, else the function's own identity.
    async fn fixer(&self, ctx: &Context, account: &str, region: &str) -> String {
        if let Some(role) = &ctx.member_role {
            if ctx.own_account().await.ok().as_deref() != Some(account) {
                let partition = crate::finding::partition(region);
                return format!("arn:{partition}:iam::{account}:role/{role}");
            }
        }
        match ctx.own_identity().await {
            Ok((_, arn)) => arn,
            Err(e) => format!("unknown ({e})"),
        }
    }

    /// `None` without `EKS_WARDEN_STATE_TABLE`: every evaluation with violations is published in full.
    pub fn from_env(config: &aws_config::SdkConfig) -> Result<Option<Self>, ContextError> {
        Self::from_lookup(config, |k| std::env::var(k).ok())
    }

    pub fn from_lookup(
        config: &aws_config::SdkConfig,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ContextError> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let Some(table) = get(ENV_STATE_TABLE) else {
            return Ok(None);
        };
        let table = ContextError::check_name(
            ENV_STATE_TABLE,
            table,
            3..=255,
            "_.-",
            "a DynamoDB table name (3 to 255 of A-Z a-z 0-9 _ . -)",
        )?;
        let number = |var: &'static str, default: u32, max: u32| match get(var) {
            None => Ok(default),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(ContextError::Invalid {
                    var,
                    value: v,
                    expected: format!("a whole number from 0 to {max}"),
                }),
            },
        };
        let mut lc = Lifecycle::new(
            config,
            Store::new(aws_sdk_dynamodb::Client::new(config), table),
        );
        lc.remind_after_hours = number(ENV_REMIND_AFTER_HOURS, 24, 24 * 365)?;
        lc.audit_days = number(ENV_AUDIT_DAYS, 90, 3650)?;
        if lc.audit_days == 0 {
            return Err(ContextError::Invalid {
                var: ENV_AUDIT_DAYS,
                value: "0".into(),
                expected: "at least 1 day".into(),
            });
        }
        Ok(Some(lc))
    }
}

/// RFC 3339 in UTC, e.g. `2026-12-02T06:13:49.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    aws_smithy_types::DateTime::from(t)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

fn epoch(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn parse_epoch(rfc: &str) -> Option<i64> {
    aws_smithy_types::DateTime::from_str(rfc, aws_smithy_types::date_time::Format::DateTime)
        .ok()
        .map(|d| d.secs())
}

/// An id for this invocation's claims: unique enough across concurrent Lambda containers.
fn owner_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{nanos:x}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// A scheduled sweep, or a per-cluster message the sweep fanned out: reminders go out only then.
pub fn is_sweep(t: &Trigger) -> bool {
    match t {
        Trigger::Schedule { .. } | Trigger::Sweep { .. } => true,
        Trigger::Recheck(r) => r.origin.as_deref() == Some("sweep"),
        _ => false,
    }
}

/// The per-cluster publish step: with a state table, record the evaluation and notify on change;
/// without one, publish every violation as before (`"notification": "full"`).
pub async fn record_and_notify(
    ctx: &Context,
    report: &ClusterReport,
    triggers: &[Trigger],
    run: &mut RunSummary,
) -> Result<(), String> {
    let Some(lc) = &ctx.state else {
        return publish_full(ctx, report, triggers, run).await;
    };
    let pk = store::cluster_pk(&report.account, &report.region, &report.cluster);
    let now = SystemTime::now();
    let (now_s, now_epoch) = (rfc3339(now), epoch(now));
    let me = owner_token();
    let audit = if fixes(report).next().is_some() {
        let role = lc.fixer(ctx, &report.account, &report.region).await;
        audit_entries(report, &now_s, &me, &role)
    } else {
        vec![]
    };
    let fixed = fixed_findings(report);
    let enabled = |id: &str| ctx.settings.enabled(id);
    let sweep = triggers.iter().any(is_sweep);
    let mut leftover_error = None;
    for _ in 0..MAX_ATTEMPTS {
        let loaded = lc.store.load(&pk).await?;
        if let Err(e) =
            retry_pending(ctx, lc, &pk, &loaded, &me, now_epoch, &report.cluster, run).await
        {
            leftover_error = Some(e);
        }
        let prev = loaded.state.clone().unwrap_or_default();
        let d = diff(
            &prev.open,
            Seen::Evaluated {
                results: &report.results,
                enabled: &enabled,
                fixed: &fixed,
            },
            &now_s,
        );
        let kind = kind_of(lc, &d, &prev, sweep, now_epoch);
        // The fixes made since the last message, this evaluation's included.
        let since = prev.last_notified.clone().unwrap_or_default();
        let mut shown: Vec<&AuditEntry> = loaded.audit.iter().filter(|a| a.at > since).collect();
        shown.extend(
            audit
                .iter()
                .filter(|a| !loaded.audit.iter().any(|b| b.sk == a.sk)),
        );
        let message = match (kind, &ctx.topic_arn) {
            (Some(k), Some(_)) => Some(change::message(report, triggers, &d, k, &shown)),
            _ => None,
        };
        let next = State {
            version: prev.version + 1,
            open: d.open.clone(),
            last_notified: if message.is_some() {
                Some(now_s.clone())
            } else {
                prev.last_notified.clone()
            },
            cluster_arn: report.cluster_arn.clone(),
        };
        let pending = message.map(|m| Pending {
            sk: format!("{}{now_s}#{me}", store::PENDING_PREFIX),
            message: m,
            owner: me.clone(),
            claimed_at: now_epoch,
        });
        let commit = Commit {
            expected: loaded.state.as_ref().map(|s| s.version),
            next: Some(&next),
            pending: pending.as_ref(),
            audit: &audit,
            now_epoch,
            audit_days: i64::from(lc.audit_days),
        };
        match lc.store.commit(&pk, commit).await {
            Ok(()) => {
                info!(cluster = %report.cluster, new = d.new.len(), resolved = d.resolved.len(),
                    exempted = d.exempted.len(), version = next.version, "state recorded");
                if let Some(p) = &pending {
                    publish_pending(ctx, lc, &pk, p, &report.cluster, run).await?;
                }
                return leftover_error.map_or(Ok(()), Err);
            }
            Err(WriteError::Conflict) => {
                info!(cluster = %report.cluster, "state changed meanwhile: re-reading");
                continue;
            }
            Err(WriteError::Failed(e)) => return Err(e),
        }
    }
    Err(format!(
        "state of {} changed under {MAX_ATTEMPTS} attempts in a row; retried later",
        report.cluster
    ))
}

/// Without a state table: every violation, every time, as before (`"notification": "full"`).
async fn publish_full(
    ctx: &Context,
    report: &ClusterReport,
    triggers: &[Trigger],
    run: &mut RunSummary,
) -> Result<(), String> {
    let Some(topic) = &ctx.topic_arn else {
        return Ok(());
    };
    let Some(msg) = crate::notify::message(report, triggers) else {
        return Ok(());
    };
    publish(ctx, topic, &report.cluster, &msg, run).await
}

/// A change message when the diff is not empty; a reminder on the sweep when violations stay open and
/// the last message is older than the setting; else silence.
fn kind_of(
    lc: &Lifecycle,
    d: &diff::Diff,
    prev: &State,
    sweep: bool,
    now_epoch: i64,
) -> Option<Kind> {
    if !d.is_empty() {
        return Some(Kind::Change);
    }
    let open_fails = d.open.values().any(|f| f.status == Status::Fail);
    let due = prev
        .last_notified
        .as_deref()
        .and_then(parse_epoch)
        .is_none_or(|t| now_epoch - t >= i64::from(lc.remind_after_hours) * 3600);
    (sweep && lc.remind_after_hours > 0 && open_fails && due).then_some(Kind::Reminder)
}

/// A cluster that no longer exists: one message resolving all its open findings, then its state is removed.
pub async fn cluster_gone(
    ctx: &Context,
    account: &str,
    region: &str,
    cluster: &str,
    triggers: &[Trigger],
    run: &mut RunSummary,
) -> Result<(), String> {
    let Some(lc) = &ctx.state else {
        return Ok(());
    };
    let pk = store::cluster_pk(account, region, cluster);
    let now = SystemTime::now();
    let (now_s, now_epoch) = (rfc3339(now), epoch(now));
    let me = owner_token();
    for _ in 0..MAX_ATTEMPTS {
        let loaded = lc.store.load(&pk).await?;
        let leftovers = retry_pending(ctx, lc, &pk, &loaded, &me, now_epoch, cluster, run).await;
        let Some(prev) = &loaded.state else {
            return leftovers;
        };
        let d = diff(&prev.open, Seen::Gone, &now_s);
        let report = ClusterReport {
            account: account.to_string(),
            region: region.to_string(),
            cluster: cluster.to_string(),
            cluster_arn: if prev.cluster_arn.is_empty() {
                crate::finding::cluster_arn(account, region, cluster)
            } else {
                prev.cluster_arn.clone()
            },
            owner: None,
            status: "DELETED".into(),
            results: vec![],
            aws_calls: 0,
            remediations: vec![],
        };
        let shown: Vec<&AuditEntry> = loaded
            .audit
            .iter()
            .filter(|a| a.at > prev.last_notified.clone().unwrap_or_default())
            .collect();
        let pending = (!d.is_empty() && ctx.topic_arn.is_some()).then(|| Pending {
            sk: format!("{}{now_s}#{me}", store::PENDING_PREFIX),
            message: change::message(&report, triggers, &d, Kind::Change, &shown),
            owner: me.clone(),
            claimed_at: now_epoch,
        });
        let commit = Commit {
            expected: Some(prev.version),
            next: None,
            pending: pending.as_ref(),
            audit: &[],
            now_epoch,
            audit_days: i64::from(lc.audit_days),
        };
        match lc.store.commit(&pk, commit).await {
            Ok(()) => {
                info!(%cluster, resolved = d.resolved.len(), "cluster gone: state removed");
                if let Some(p) = &pending {
                    publish_pending(ctx, lc, &pk, p, cluster, run).await?;
                }
                return leftovers;
            }
            Err(WriteError::Conflict) => continue,
            Err(WriteError::Failed(e)) => return Err(e),
        }
    }
    Err(format!(
        "state of {cluster} changed under {MAX_ATTEMPTS} attempts in a row; retried later"
    ))
}

/// Publishes messages earlier invocations left behind (their publish failed, or they stopped), once they
/// are old enough to be claimed; a younger one is its writer's to publish.
#[allow(clippy::too_many_arguments)]
async fn retry_pending(
    ctx: &Context,
    lc: &Lifecycle,
    pk: &str,
    loaded: &Loaded,
    me: &str,
    now_epoch: i64,
    cluster: &str,
    run: &mut RunSummary,
) -> Result<(), String> {
    if ctx.topic_arn.is_none() {
        // Nowhere to publish: retrying the records could never succeed. The item expires by its TTL.
        if !loaded.pending.is_empty() {
            warn!(%cluster, pending = loaded.pending.len(), "messages pending but no topic is configured");
        }
        return Ok(());
    }
    for p in &loaded.pending {
        if p.owner == me || now_epoch - p.claimed_at < lc.claim_after_secs {
            continue;
        }
        if !lc.store.claim(pk, p, me, now_epoch).await? {
            continue;
        }
        info!(%cluster, pending = %p.sk, "publishing a message left pending");
        publish_pending(ctx, lc, pk, p, cluster, run).await?;
    }
    Ok(())
}

/// Publishes a pending message, then clears it. A failed publish leaves it for the retry.
async fn publish_pending(
    ctx: &Context,
    lc: &Lifecycle,
    pk: &str,
    p: &Pending,
    cluster: &str,
    run: &mut RunSummary,
) -> Result<(), String> {
    let Some(topic) = &ctx.topic_arn else {
        return Err(format!(
            "a message about {cluster} is pending but no topic is configured"
        ));
    };
    publish(ctx, topic, cluster, &p.message, run).await?;
    if let Err(e) = lc.store.delete_pending(pk, &p.sk).await {
        // Published already: a later invocation may publish it once more, which beats losing it.
        warn!(%cluster, error = %e, "published, but the pending message could not be cleared");
    }
    Ok(())
}

async fn publish(
    ctx: &Context,
    topic: &str,
    cluster: &str,
    m: &StoredMessage,
    run: &mut RunSummary,
) -> Result<(), String> {
    use aws_sdk_sns::types::MessageAttributeValue;
    let mut req = ctx
        .sns
        .publish()
        .topic_arn(topic)
        .subject(&m.subject)
        .message(&m.body)
        .message_structure("json");
    for (name, data_type, value) in &m.attributes {
        if let Ok(v) = MessageAttributeValue::builder()
            .data_type(data_type)
            .string_value(value)
            .build()
        {
            req = req.message_attributes(name, v);
        }
    }
    let out = req
        .send()
        .await
        .map_err(|e| crate::collect::error_line("SNS Publish", &e))?;
    run.published.push(Published {
        cluster: cluster.to_string(),
        message_id: out.message_id().unwrap_or_default().to_string(),
        notification: m.notification.clone(),
        subject: m.subject.clone(),
    });
    Ok(())
}

/// The fixes this evaluation applied (skipped and planned ones changed nothing).
fn fixes(report: &ClusterReport) -> impl Iterator<Item = &crate::remediate::Remediation> {
    report
        .remediations
        .iter()
        .filter(|m| m.outcome == crate::remediate::Outcome::Remediated)
}

/// The applied fixes as audit entries: what was done (the action holds the revoked rule in full or the
/// setting changed), with which permission, by which role, when.
fn audit_entries(report: &ClusterReport, now: &str, me: &str, role: &str) -> Vec<AuditEntry> {
    fixes(report)
        .enumerate()
        .map(|(i, m)| {
            let mut entry = serde_json::to_value(m).unwrap_or_default();
            if let Some(o) = entry.as_object_mut() {
                o.insert("at".into(), now.into());
                o.insert("cluster".into(), report.cluster.clone().into());
                o.insert("role".into(), role.into());
            }
            AuditEntry {
                sk: format!("{}{now}#{me}-{i}", store::AUDIT_PREFIX),
                at: now.to_string(),
                entry,
            }
        })
        .collect()
}

/// Findings whose fix was applied and verified in this evaluation: resolved now, not left open.
fn fixed_findings(report: &ClusterReport) -> BTreeSet<String> {
    let fixed: BTreeSet<(&str, &str)> = fixes(report)
        .map(|m| (m.rule_id.as_str(), m.resource_id.as_str()))
        .collect();
    report
        .failures()
        .filter(|r| fixed.contains(&(r.rule_id.as_str(), r.resource_id.as_str())))
        .map(|r| r.finding_id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .build()
    }

    fn lookup(pairs: &[(&str, &str)]) -> Result<Option<Lifecycle>, ContextError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Lifecycle::from_lookup(&config(), move |k| {
            pairs.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn without_a_table_there_is_no_state_and_defaults_apply_with_one() {
        assert!(lookup(&[(ENV_REMIND_AFTER_HOURS, "3")]).unwrap().is_none());
        let lc = lookup(&[(ENV_STATE_TABLE, "eks-warden-state")])
            .unwrap()
            .unwrap();
        assert_eq!(
            (lc.remind_after_hours, lc.audit_days, lc.claim_after_secs),
            (24, 90, 60)
        );
        let lc = lookup(&[
            (ENV_STATE_TABLE, "t-1"),
            (ENV_REMIND_AFTER_HOURS, "0"),
            (ENV_AUDIT_DAYS, "7"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((lc.remind_after_hours, lc.audit_days), (0, 7));
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (var, value) in [
            (ENV_STATE_TABLE, "a"),
            (ENV_STATE_TABLE, "arn:aws:dynamodb:eu-west-1:1:table/x"),
            (ENV_REMIND_AFTER_HOURS, "-1"),
            (ENV_REMIND_AFTER_HOURS, "soon"),
            (ENV_AUDIT_DAYS, "0"),
        ] {
            let mut env = vec![(ENV_STATE_TABLE, "eks-warden-state")];
            env.retain(|(k, _)| *k != var);
            env.push((var, value));
            let err = lookup(&env)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.starts_with(var), "{var}={value:?}: {err:?}");
        }
    }

    #[test]
    fn the_sweep_and_its_fanned_out_messages_are_sweeps() {
        let recheck = |origin: Option<&str>| {
            Trigger::Recheck(crate::event::Recheck {
                account: "1".into(),
                region: "r".into(),
                cluster: "c".into(),
                attempt: 0,
                origin: origin.map(str::to_string),
            })
        };
        assert!(is_sweep(&Trigger::Schedule {
            account: None,
            region: None
        }));
        assert!(is_sweep(&recheck(Some("sweep"))));
        assert!(!is_sweep(&recheck(None)));
        assert!(!is_sweep(&Trigger::Direct {
            clusters: vec!["c".into()],
            account: None,
            region: None,
        }));
    }

    #[test]
    fn timestamps_are_rfc3339_utc_and_read_back() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_764_657_229);
        let s = rfc3339(t);
        assert!(
            s.starts_with("2025-12-02T06:33:49") && s.ends_with('Z'),
            "{s}"
        );
        assert_eq!(parse_epoch(&s), Some(1_764_657_229));
    }
}
