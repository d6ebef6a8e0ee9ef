//! Safe auto-remediation: fix plans as data, one actuator, guardrails, verification.
//!
//! Fixes run only in mode `remediate` and only for the rules the operator listed; `dry-run` reports the
//! exact calls and makes none. Before acting the cluster is read afresh and the finding re-judged, so a
//! second run (or the fix's own CloudTrail echo) changes nothing.
//!
//! Layout: `policy` (what the operator allowed), `plans` (pure: snapshot + result → action), `guardrails`
//! (pure: when an action must not run), `actuator` (the only writer), `verify` (the read after a write).

mod actuator;
mod guardrails;
mod limits;
mod ownership;
mod plans;
mod policy;
mod verify;

pub use limits::{Budget, FixHistory, MemoryHistory, NoHistory, DEFAULT_MAX_FIXES, FLAP_LIMIT};
pub use ownership::OtherUser;
pub use plans::{fix_permission, planner, Action};
pub use policy::{
    Mode, Policy, PolicyError, ENV_ALLOW_PUBLIC_OFF, ENV_FIX_SHARED, ENV_MAX_FIXES, ENV_MODE,
    ENV_RULES, ENV_SECRETS_KEY,
};

use crate::collect::{self, Clients, CollectError};
use crate::model::ClusterSnapshot;
use crate::rules::{self, RuleResult, Status};
use crate::settings::Settings;
use serde::Serialize;
use std::collections::BTreeSet;
use tracing::{info, warn};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Dry-run: this call would be made.
    Planned,
    /// Applied and verified on a fresh read.
    Remediated,
    /// The call or its verification failed.
    Failed,
    /// A guardrail stopped it.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Remediation {
    pub rule_id: String,
    pub resource_id: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission: Option<&'static str>,
    pub detail: String,
}

impl Remediation {
    fn new(r: &RuleResult, outcome: Outcome, action: Option<Action>, detail: String) -> Self {
        Remediation {
            rule_id: r.rule_id.clone(),
            resource_id: r.resource_id.clone(),
            outcome,
            permission: action.as_ref().map(Action::permission),
            action,
            detail,
        }
    }

    fn skipped(r: &RuleResult, action: Option<Action>, why: impl Into<String>) -> Self {
        Self::new(r, Outcome::Skipped, action, why.into())
    }
}

/// What a remediation pass did, and whether the cluster should be looked at again (a deferred update).
#[derive(Debug, Default)]
pub struct Pass {
    pub remediations: Vec<Remediation>,
    pub recheck: bool,
}

/// What one invocation's fixes share: the write-call budget (every cluster of the invocation) and the
/// fix history of the cluster being fixed (from the state store; [`NoHistory`] without one).
pub struct Run<'a> {
    pub budget: &'a Budget,
    pub history: &'a mut dyn FixHistory,
}

/// The same finding in another evaluation: same rule, resource and discriminator. Evidence may differ (a
/// nodegroup's instance list grows, a rule's id changes on re-add) and the fresh one is what is acted on.
fn same_finding(a: &RuleResult, b: &RuleResult) -> bool {
    a.rule_id == b.rule_id
        && a.resource_type == b.resource_type
        && a.resource_id == b.resource_id
        && a.discriminator == b.discriminator
}

/// Fixes the opted-in findings of one cluster. `findings` are the evaluation's results. The cluster is read
/// once afresh before the pass and once after it, whatever the number of fixes.
pub async fn remediate(
    clients: &Clients,
    cluster: &str,
    findings: &[RuleResult],
    settings: &Settings,
    policy: &Policy,
    run: &mut Run<'_>,
) -> Result<Pass, CollectError> {
    let mut pass = Pass::default();
    let wanted: Vec<&RuleResult> = findings
        .iter()
        .filter(|r| r.status == Status::Fail && policy.rules.contains(&r.rule_id))
        .collect();
    if !policy.active() || wanted.is_empty() {
        return Ok(pass);
    }
    // The finding must still hold on a fresh read: idempotent, and safe against the fix's own echo.
    let (fresh, _) = collect::collect_fresh(clients, cluster, settings).await?;
    let now = rules::evaluate(&fresh, settings);
    let candidates = plan_pass(
        &fresh,
        &now,
        &wanted,
        settings,
        policy,
        &*run.history,
        &mut pass,
    );
    let users = group_users(clients, &fresh, &candidates).await;
    let applied = apply_pass(clients, cluster, candidates, &users, policy, run, &mut pass).await;
    if !applied.is_empty() {
        verify_pass(clients, cluster, settings, applied, &mut pass).await;
    }
    // Report in the order of the findings, whatever stage decided each.
    let position = |m: &Remediation| {
        wanted
            .iter()
            .position(|r| r.rule_id == m.rule_id && r.resource_id == m.resource_id)
    };
    pass.remediations.sort_by_key(|m| position(m));
    Ok(pass)
}

/// Who else uses the groups a revoke would touch: read only now that a fix is about to act, one read for
/// the whole pass, none when no revoke is planned.
async fn group_users(
    clients: &Clients,
    fresh: &ClusterSnapshot,
    candidates: &[(RuleResult, Action)],
) -> GroupUsers {
    let groups: BTreeSet<String> = candidates
        .iter()
        .filter_map(|(_, a)| match a {
            Action::RevokeSecurityGroupIngress { group_id, .. } => Some(group_id.clone()),
            _ => None,
        })
        .collect();
    if groups.is_empty() {
        Ok(Default::default())
    } else {
        let rule = "sg-open-ingress";
        ownership::other_users(clients, fresh, &groups, rule).await
    }
}

/// Runs each candidate that the shared-group check lets through, within the write budget (a dry run only
/// reports it); returns the fixes applied, with their budget note, for verification, and records a
/// remediation for every other candidate.
async fn apply_pass(
    clients: &Clients,
    cluster: &str,
    candidates: Vec<(RuleResult, Action)>,
    users: &GroupUsers,
    policy: &Policy,
    run: &mut Run<'_>,
    pass: &mut Pass,
) -> Vec<(RuleResult, Action, String)> {
    let mut applied = Vec::new();
    for (r, action) in candidates {
        if let Err(why) = shared_check(&action, users, policy) {
            pass.remediations
                .push(Remediation::skipped(&r, Some(action), why));
            continue;
        }
        if policy.mode == Mode::DryRun {
            pass.remediations.push(Remediation::new(
                &r,
                Outcome::Planned,
                Some(action),
                "dry-run: not applied".into(),
            ));
            continue;
        }
        let Some((action, note)) = within_budget(&r, action, run.budget, pass) else {
            continue;
        };
        info!(cluster, rule = %r.rule_id, resource = %r.resource_id, call = action.permission(), "remediating");
        match actuator::execute(clients, &action).await {
            Err(e) => {
                warn!(cluster, rule = %r.rule_id, error = %e, "remediation failed");
                pass.recheck |= action.is_cluster_update();
                pass.remediations
                    .push(Remediation::new(&r, Outcome::Failed, Some(action), e));
            }
            Ok(()) => {
                run.history
                    .record(&r.rule_id, &r.resource_id, limits::now());
                applied.push((r, action, note));
            }
        }
    }
    applied
}

/// Takes the action's write calls from the invocation's budget: the action cut to what was granted, with a
/// note when part of it is deferred; none (and a `skipped` remediation) when nothing was granted. Either
/// way a deferral asks for the re-check.
fn within_budget(
    r: &RuleResult,
    action: Action,
    budget: &Budget,
    pass: &mut Pass,
) -> Option<(Action, String)> {
    let wanted_calls = action.write_calls();
    let granted = budget.take(wanted_calls);
    if granted == 0 {
        pass.recheck = true;
        let why = format!(
            "deferred: the limit of {} write calls per invocation ({ENV_MAX_FIXES}) is reached; the \
             re-check continues",
            budget.max()
        );
        pass.remediations
            .push(Remediation::skipped(r, Some(action), why));
        return None;
    }
    let action = action.truncated(granted);
    let mut note = String::new();
    if granted < wanted_calls {
        pass.recheck = true;
        note = format!(
            " ({granted} of {wanted_calls} calls within the limit of {ENV_MAX_FIXES}; the rest \
             deferred to the re-check)"
        );
    }
    Some((action, note))
}

/// Who else uses each group a revoke would touch, or why that could not be read.
type GroupUsers = Result<std::collections::BTreeMap<String, Vec<OtherUser>>, String>;

/// A group revoke acts only where this cluster alone uses the group (see [`guardrails::sole_user`]).
fn shared_check(action: &Action, users: &GroupUsers, policy: &Policy) -> Result<(), String> {
    let Action::RevokeSecurityGroupIngress { group_id, .. } = action else {
        return Ok(());
    };
    match users {
        Err(e) => Err(format!("who else uses {group_id} could not be read: {e}")),
        Ok(u) => guardrails::sole_user(
            group_id,
            u.get(group_id).map(Vec::as_slice).unwrap_or_default(),
            policy.fix_shared,
        ),
    }
}

/// One read after the pass verifies every fix it made.
async fn verify_pass(
    clients: &Clients,
    cluster: &str,
    settings: &Settings,
    applied: Vec<(RuleResult, Action, String)>,
    pass: &mut Pass,
) {
    let after = collect::collect_fresh(clients, cluster, settings).await;
    let judged = after
        .as_ref()
        .map(|(s, _)| (s, rules::evaluate(s, settings)));
    for (r, action, note) in applied {
        let (outcome, detail) = match &judged {
            Err(e) => (
                Outcome::Failed,
                format!("applied, but the verification read failed: {e}"),
            ),
            Ok((s, results)) => verify::judge(s, results, &r, &action),
        };
        pass.remediations
            .push(Remediation::new(&r, outcome, Some(action), detail + &note));
    }
}

/// [`remediate`] as a whole invocation of its own: a fresh budget and no fix history.
pub async fn remediate_once(
    clients: &Clients,
    cluster: &str,
    findings: &[RuleResult],
    settings: &Settings,
    policy: &Policy,
) -> Result<Pass, CollectError> {
    let budget = Budget::new(policy.max_fixes);
    let mut history = NoHistory;
    let mut run = Run {
        budget: &budget,
        history: &mut history,
    };
    remediate(clients, cluster, findings, settings, policy, &mut run).await
}

/// Plans every wanted fix on the fresh read and runs the pure guardrails; returns what may act, and pushes
/// a `skipped` remediation for the rest.
fn plan_pass(
    fresh: &ClusterSnapshot,
    now: &[RuleResult],
    wanted: &[&RuleResult],
    settings: &Settings,
    policy: &Policy,
    history: &dyn FixHistory,
    pass: &mut Pass,
) -> Vec<(RuleResult, Action)> {
    let settled = fresh.cluster.status == "ACTIVE";
    let at = limits::now();
    let mut cluster_update = false;
    let mut out = Vec::new();
    for r in wanted {
        let Some(n) = now
            .iter()
            .find(|n| same_finding(n, r) && n.status == Status::Fail)
        else {
            pass.remediations.push(Remediation::skipped(
                r,
                None,
                "no longer failing on a fresh read",
            ));
            continue;
        };
        let Some(plan) = planner(&n.rule_id) else {
            continue;
        };
        let action = match plan(fresh, n, settings, policy) {
            Ok(a) => a,
            Err(why) => {
                pass.remediations.push(Remediation::skipped(n, None, why));
                continue;
            }
        };
        let verdict = if !settled {
            pass.recheck = true;
            Err(format!(
                "cluster is {}: fixes wait until it is ACTIVE",
                fresh.cluster.status
            ))
        } else if let Err(why) = guardrails::check(&action, fresh) {
            Err(why)
        } else if action.is_cluster_update() && cluster_update {
            pass.recheck = true;
            Err("deferred: EKS runs one cluster update at a time".into())
        } else {
            limits::not_flapping(history, &n.rule_id, &n.resource_id, at)
        };
        match verdict {
            Err(why) => pass
                .remediations
                .push(Remediation::skipped(n, Some(action), why)),
            Ok(()) => {
                cluster_update |= action.is_cluster_update();
                out.push((n.clone(), action));
            }
        }
    }
    out
}
