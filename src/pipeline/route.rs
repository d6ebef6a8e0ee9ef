//! Stage 2, route: the whole batch → the clusters to evaluate, each once, with the triggers and SQS
//! messages that named it. Resources are gathered over the batch and resolved together per account and
//! region (`crate::resolve`): a storm of a thousand records costs a handful of calls, not a thousand.

use super::parse::Parsed;
use super::summary::{RunSummary, TriggerLine};
use crate::event::Trigger;
use crate::handler::{Context, Scope};
use crate::resolve::{BatchResolver, Leads, Resolved, Resource};
use crate::route::{kind_name, lookup, resource_ids, tagged_kind, Kind};
use futures::{stream, StreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::time::Instant;
use tracing::{info, warn};

/// A cluster in an account and region; the home account is `""` so that every way of naming it agrees.
pub type Target = (String, String, String);

/// Where one cluster's evaluation came from: the triggers that named it and their SQS records.
pub struct Named {
    pub scope: Arc<Scope>,
    pub triggers: Vec<Trigger>,
    pub messages: BTreeSet<String>,
    /// The highest re-check attempt among the triggers (0 when none was a re-check).
    pub attempt: u32,
    pub evidence: BTreeSet<String>,
}

/// The clusters to evaluate and the SQS messages that already failed.
#[derive(Default)]
pub struct Routed {
    pub wanted: BTreeMap<Target, Named>,
    pub failed: BTreeSet<String>,
}

impl Routed {
    /// Adds one trigger's clusters (with their evidence) to the plan.
    pub fn want(
        &mut self,
        ctx: &Context,
        scope: &Arc<Scope>,
        (account, region): (&str, &str),
        item: &Parsed,
        leads: &Leads,
    ) {
        let home = Arc::ptr_eq(scope, &ctx.home);
        let attempt = match &item.trigger {
            Trigger::Recheck(r) => r.attempt,
            _ => 0,
        };
        for (name, evidence) in leads {
            let key = (
                if home {
                    String::new()
                } else {
                    account.to_string()
                },
                region.to_string(),
                name.clone(),
            );
            let named = self.wanted.entry(key).or_insert_with(|| Named {
                scope: scope.clone(),
                triggers: vec![],
                messages: BTreeSet::new(),
                attempt: 0,
                evidence: BTreeSet::new(),
            });
            named.triggers.push(item.trigger.clone());
            named.messages.extend(item.message_id.clone());
            named.attempt = named.attempt.max(attempt);
            named.evidence.extend(evidence.iter().cloned());
        }
    }
}

/// How many accounts and regions are resolved at once.
const SCOPE_CONCURRENCY: usize = 4;

/// What one trigger names before any AWS call: resources to resolve, or clusters outright.
enum Names {
    Resources(Vec<Resource>),
    Leads(Leads),
}

fn names(t: &Trigger) -> Result<Names, String> {
    let named = |clusters: &[String], why: &str| {
        let mut l = Leads::new();
        for c in clusters {
            l.entry(c.clone()).or_default().insert(why.to_string());
        }
        Names::Leads(l)
    };
    match t {
        Trigger::CloudTrail(e) => {
            if let Some(code) = &e.error_code {
                return Err(format!("the call failed ({code}): nothing changed"));
            }
            let route = lookup(&e.event_source, &e.event_name).ok_or_else(|| {
                format!(
                    "{} {} is not an event eks-warden acts on",
                    e.event_source, e.event_name
                )
            })?;
            let ids = resource_ids(route, e);
            if ids.is_empty() {
                return Err(format!(
                    "{} names no resource where expected ({})",
                    e.event_name,
                    route.paths.join(" | ")
                ));
            }
            if route.kind == Kind::Tagged {
                // A tagging call names ids of any kind: each is resolved as the kind its prefix says.
                let known: Vec<Resource> = ids
                    .iter()
                    .filter_map(|i| Some((tagged_kind(i)?, i.clone())))
                    .collect();
                if known.is_empty() {
                    return Err(format!(
                        "{} on {}: eks-warden reads the tags of security groups, subnets, instances and launch templates only",
                        e.event_name,
                        ids.join(", ")
                    ));
                }
                return Ok(Names::Resources(known));
            }
            Ok(Names::Resources(
                ids.into_iter().map(|i| (route.kind, i)).collect(),
            ))
        }
        Trigger::Direct { clusters, .. } => Ok(named(clusters, "named in the invoke")),
        Trigger::Recheck(r) => Ok(named(
            std::slice::from_ref(&r.cluster),
            if r.origin.as_deref() == Some("sweep") {
                "sweep"
            } else {
                "re-check"
            },
        )),
        Trigger::Schedule { .. } | Trigger::Sweep { .. } => Ok(Names::Leads(Leads::new())),
    }
}

/// The function's own fix coming back through CloudTrail: already verified on a fresh read.
async fn is_echo(ctx: &Context, t: &Trigger) -> bool {
    match t {
        Trigger::CloudTrail(e) => ctx.is_own_echo(e).await,
        _ => false,
    }
}

/// The account and region a trigger acts in (`None`: the function's own).
pub fn scope_of(t: &Trigger) -> (Option<String>, Option<String>) {
    match t {
        Trigger::CloudTrail(e) => (e.account.clone(), e.region.clone()),
        Trigger::Schedule { account, region } => (account.clone(), region.clone()),
        Trigger::Sweep { account, region } => (Some(account.clone()), Some(region.clone())),
        Trigger::Recheck(r) => (
            Some(r.account.clone()).filter(|a| !a.is_empty()),
            Some(r.region.clone()),
        ),
        Trigger::Direct {
            account, region, ..
        } => (account.clone(), region.clone()),
    }
}

/// Routes every trigger that names resources or clusters (sweeps are the sweep stage's).
pub async fn route(
    ctx: &Context,
    items: &[Parsed],
    cutoff: Option<Instant>,
    run: &mut RunSummary,
    routed: &mut Routed,
) {
    // Per account and region: the items and every resource they name.
    type Key = (Option<String>, Option<String>);
    let mut groups: BTreeMap<Key, Vec<(&Parsed, Names)>> = BTreeMap::new();
    for item in items {
        let named = match names(&item.trigger) {
            Ok(_) if is_echo(ctx, &item.trigger).await => Err(crate::echo::REASON.to_string()),
            other => other,
        };
        match named {
            Ok(n) => groups
                .entry(scope_of(&item.trigger))
                .or_default()
                .push((item, n)),
            Err(reason) => {
                info!(trigger = %item.trigger.id(), %reason, "ignored");
                run.ignore(item.trigger.id(), reason, item.message_id.clone());
            }
        }
    }
    /// Per scope: its clients and resolutions, why the deployment does not act there, or the AWS error.
    type ScopeResolved = Result<Result<(Arc<Scope>, Resolved), String>, String>;
    let resolved: Vec<(Key, ScopeResolved)> = stream::iter(groups.iter())
        .map(|(key, its)| async move {
            let resources: BTreeSet<Resource> = its
                .iter()
                .filter_map(|(_, n)| match n {
                    Names::Resources(r) => Some(r.iter().cloned()),
                    Names::Leads(_) => None,
                })
                .flatten()
                .collect();
            let work = async {
                let scope = match ctx.scope(key.0.as_deref(), key.1.as_deref()).await? {
                    Ok(s) => s,
                    Err(reason) => return Ok(Err(reason)),
                };
                let r = BatchResolver {
                    clients: &scope.clients,
                    index: &scope.index,
                }
                .resolve(&resources)
                .await;
                Ok(Ok((scope, r)))
            };
            let out = match cutoff {
                Some(c) => tokio::time::timeout_at(c, work)
                    .await
                    .unwrap_or_else(|_| Err("the invocation's deadline came first".into())),
                None => work.await,
            };
            (key.clone(), out)
        })
        .buffer_unordered(SCOPE_CONCURRENCY)
        .collect()
        .await;
    for (key, out) in resolved {
        let its = &groups[&key];
        let account = key.0.clone().unwrap_or_default();
        let region = key.1.clone().unwrap_or_else(|| ctx.home_region.clone());
        match out {
            Err(error) => {
                for (item, _) in its {
                    warn!(trigger = %item.trigger.id(), %error, "could not route");
                    routed.failed.extend(item.message_id.clone());
                    run.fail(format!("route {}", item.trigger.id()), error.clone());
                }
            }
            Ok(Err(reason)) => {
                for (item, _) in its {
                    run.ignore(item.trigger.id(), reason.clone(), item.message_id.clone());
                }
            }
            Ok(Ok((scope, resolved))) => {
                for (item, n) in its {
                    let at = (account.as_str(), region.as_str());
                    settle(ctx, &scope, at, item, n, &resolved, run, routed);
                }
            }
        }
    }
}

/// One trigger's outcome: its clusters (with evidence) into the plan, or ignored, or failed for retry.
#[allow(clippy::too_many_arguments)]
fn settle(
    ctx: &Context,
    scope: &Arc<Scope>,
    at: (&str, &str),
    item: &Parsed,
    n: &Names,
    resolved: &Resolved,
    run: &mut RunSummary,
    routed: &mut Routed,
) {
    let leads = match n {
        Names::Leads(l) => Ok(l.clone()),
        Names::Resources(rs) => merge(rs, resolved),
    };
    match leads {
        Err(error) => {
            routed.failed.extend(item.message_id.clone());
            run.fail(format!("route {}", item.trigger.id()), error);
        }
        Ok(l) if l.is_empty() => {
            let (kinds, ids): (Vec<_>, Vec<_>) = match n {
                Names::Resources(rs) => rs.iter().cloned().unzip(),
                Names::Leads(_) => (vec![], vec![]),
            };
            let kind = kinds.first().map(|k| kind_name(*k)).unwrap_or("resource");
            run.ignore(
                item.trigger.id(),
                format!(
                    "{kind} {} belongs to no EKS cluster in this region (or no longer exists)",
                    ids.join(", ")
                ),
                item.message_id.clone(),
            );
        }
        Ok(l) => {
            info!(trigger = %item.trigger.id(), clusters = ?l.keys(), "routed");
            run.triggers.push(TriggerLine {
                kind: item.trigger.kind(),
                id: item.trigger.id(),
                message_id: item.message_id.clone(),
                clusters: l.keys().cloned().collect(),
                evidence: l
                    .iter()
                    .map(|(c, e)| (c.clone(), e.iter().cloned().collect()))
                    .collect(),
            });
            routed.want(ctx, scope, at, item, &l);
        }
    }
}

/// One trigger's resources → the union of their clusters; an AWS error on any of them fails the trigger.
fn merge(resources: &[Resource], resolved: &Resolved) -> Result<Leads, String> {
    let mut out = Leads::new();
    for r in resources {
        match resolved.get(r) {
            Some(Ok(l)) => {
                for (c, e) in l {
                    out.entry(c.clone()).or_default().extend(e.iter().cloned());
                }
            }
            Some(Err(e)) => return Err(e.clone()),
            None => {}
        }
    }
    Ok(out)
}
