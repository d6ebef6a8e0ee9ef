//! Safe auto-remediation: fix plans as data, one actuator, guardrails, verification.
//!
//! Fixes run only in mode `remediate` and only for the rules the operator listed; `dry-run` reports the
//! exact calls and makes none. Before acting the cluster is read afresh and the finding re-judged, so a
//! second run (or the fix's own CloudTrail echo) changes nothing.

use crate::collect::{self, Clients, CollectError};
use crate::model::{ClusterSnapshot, IngressRule};
use crate::rules::{self, RuleResult, Status};
use crate::settings::Settings;
use aws_sdk_ec2::types::AttributeBooleanValue;
use aws_sdk_eks::types::VpcConfigRequest;
use serde::Serialize;
use std::collections::BTreeSet;
use tracing::{info, warn};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Notify only.
    #[default]
    Report,
    /// Compute and report the exact calls; make none.
    DryRun,
    /// Apply the fixes of the opted-in rules.
    Remediate,
}

/// What the operator allowed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub mode: Mode,
    /// Rule ids whose fixes may run (`EKS_WARDEN_REMEDIATE_RULES`).
    pub rules: BTreeSet<String>,
    /// `endpoint-public-unrestricted` with no allow-list may turn public access off (private on in the same
    /// call). Off by default: it cuts off every operator who reaches the API over the internet.
    pub allow_public_endpoint_off: bool,
}

pub const ENV_MODE: &str = "EKS_WARDEN_MODE";
pub const ENV_RULES: &str = "EKS_WARDEN_REMEDIATE_RULES";
pub const ENV_ALLOW_PUBLIC_OFF: &str = "EKS_WARDEN_ALLOW_PUBLIC_ENDPOINT_OFF";

/// A bad remediation setting, naming its variable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{var}: {message}")]
pub struct PolicyError {
    pub var: &'static str,
    pub message: String,
}

impl Policy {
    pub fn from_env() -> Result<Self, PolicyError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, PolicyError> {
        let mode = match get(ENV_MODE).as_deref().map(str::trim) {
            None | Some("") | Some("report") => Mode::Report,
            Some("dry-run") => Mode::DryRun,
            Some("remediate") => Mode::Remediate,
            Some(other) => {
                return Err(PolicyError {
                    var: ENV_MODE,
                    message: format!("{other:?} is not report, dry-run or remediate"),
                })
            }
        };
        let mut rules = BTreeSet::new();
        for id in crate::settings::split_list(&get(ENV_RULES).unwrap_or_default()) {
            match rules::find(id) {
                Some(r) if planner(r.meta.id).is_some() => {
                    rules.insert(id.to_string());
                }
                Some(_) => {
                    return Err(PolicyError {
                        var: ENV_RULES,
                        message: format!("rule {id} has no automatic fix"),
                    })
                }
                None => {
                    return Err(PolicyError {
                        var: ENV_RULES,
                        message: format!("unknown rule id {id:?}"),
                    })
                }
            }
        }
        let allow_public_endpoint_off = match get(ENV_ALLOW_PUBLIC_OFF).as_deref().map(str::trim) {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(PolicyError {
                    var: ENV_ALLOW_PUBLIC_OFF,
                    message: format!("{other:?} is not true or false"),
                })
            }
        };
        Ok(Policy {
            mode,
            rules,
            allow_public_endpoint_off,
        })
    }

    pub fn active(&self) -> bool {
        self.mode != Mode::Report && !self.rules.is_empty()
    }
}

/// One concrete API call that fixes one finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "call")]
pub enum Action {
    /// `eks:UpdateClusterConfig` with `resourcesVpcConfig` endpoint fields only.
    UpdateClusterConfig {
        cluster: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        endpoint_public_access: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        endpoint_private_access: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        public_access_cidrs: Option<Vec<String>>,
    },
    /// `ec2:RevokeSecurityGroupIngress` by rule id, with the rules as they were so a person can restore them.
    RevokeSecurityGroupIngress {
        group_id: String,
        rule_ids: Vec<String>,
        revoked: Vec<IngressRule>,
    },
    /// `ec2:ModifySubnetAttribute` `MapPublicIpOnLaunch=false`.
    DisableMapPublicIpOnLaunch { subnet_id: String },
}

impl Action {
    /// The IAM permission the call needs.
    pub fn permission(&self) -> &'static str {
        match self {
            Action::UpdateClusterConfig { .. } => "eks:UpdateClusterConfig",
            Action::RevokeSecurityGroupIngress { .. } => "ec2:RevokeSecurityGroupIngress",
            Action::DisableMapPublicIpOnLaunch { .. } => "ec2:ModifySubnetAttribute",
        }
    }

    /// EKS runs one cluster update at a time.
    fn is_cluster_update(&self) -> bool {
        matches!(self, Action::UpdateClusterConfig { .. })
    }
}

/// A planned fix, or why there is none.
type Planned = Result<Action, String>;

/// A rule's fix planner: from the fresh snapshot and the failing result to one action.
type Planner = fn(&ClusterSnapshot, &RuleResult, &Settings, &Policy) -> Planned;

/// The rules that have an automatic fix, and the IAM permission each needs.
pub fn planner(rule_id: &str) -> Option<Planner> {
    match rule_id {
        "endpoint-public-unrestricted" => Some(plan_endpoint_public),
        "endpoint-private-disabled" => Some(plan_endpoint_private),
        "sg-open-ingress" => Some(plan_sg_open),
        "nodes-public-ip" => Some(plan_map_public_ip),
        _ => None,
    }
}

/// The permission of a rule's fix, for the catalog.
pub fn fix_permission(rule_id: &str) -> Option<&'static str> {
    match rule_id {
        "endpoint-public-unrestricted" | "endpoint-private-disabled" => {
            Some("eks:UpdateClusterConfig")
        }
        "sg-open-ingress" => Some("ec2:RevokeSecurityGroupIngress"),
        "nodes-public-ip" => Some("ec2:ModifySubnetAttribute"),
        _ => None,
    }
}

fn plan_endpoint_public(
    s: &ClusterSnapshot,
    _r: &RuleResult,
    cfg: &Settings,
    p: &Policy,
) -> Planned {
    let ep = s
        .cluster
        .endpoint
        .as_ref()
        .map_err(|u| format!("endpoint unreadable: {u}"))?;
    if !cfg.allowed_public_cidrs.is_empty() {
        return Ok(Action::UpdateClusterConfig {
            cluster: s.cluster.name.clone(),
            endpoint_public_access: None,
            endpoint_private_access: None,
            public_access_cidrs: Some(
                cfg.allowed_public_cidrs
                    .iter()
                    .map(|n| n.to_string())
                    .collect(),
            ),
        });
    }
    if !p.allow_public_endpoint_off {
        return Err(format!(
            "no allow-list is configured and turning the public endpoint off is not allowed ({ENV_ALLOW_PUBLIC_OFF}=true allows it)"
        ));
    }
    // Never public off without private on: both in the same request.
    Ok(Action::UpdateClusterConfig {
        cluster: s.cluster.name.clone(),
        endpoint_public_access: Some(false),
        endpoint_private_access: (!ep.private_access).then_some(true),
        public_access_cidrs: None,
    })
}

fn plan_endpoint_private(
    s: &ClusterSnapshot,
    _r: &RuleResult,
    _cfg: &Settings,
    _p: &Policy,
) -> Planned {
    Ok(Action::UpdateClusterConfig {
        cluster: s.cluster.name.clone(),
        endpoint_public_access: None,
        endpoint_private_access: Some(true),
        public_access_cidrs: None,
    })
}

fn plan_sg_open(s: &ClusterSnapshot, r: &RuleResult, _cfg: &Settings, _p: &Policy) -> Planned {
    let rule_id = r
        .evidence
        .get("rule_id")
        .ok_or("the rule id of the open rule is unknown (DescribeSecurityGroupRules unreadable)")?;
    let group = s
        .security_groups
        .get(&r.resource_id)
        .and_then(|g| g.known())
        .ok_or_else(|| format!("security group {} unreadable", r.resource_id))?;
    let revoked: Vec<IngressRule> = group
        .ingress
        .iter()
        .filter(|i| i.rule_id.as_ref() == Some(rule_id))
        .cloned()
        .collect();
    if revoked.is_empty() {
        return Err(format!("rule {rule_id} is no longer in {}", r.resource_id));
    }
    Ok(Action::RevokeSecurityGroupIngress {
        group_id: r.resource_id.clone(),
        rule_ids: vec![rule_id.clone()],
        revoked,
    })
}

fn plan_map_public_ip(
    _s: &ClusterSnapshot,
    r: &RuleResult,
    _cfg: &Settings,
    _p: &Policy,
) -> Planned {
    match r.resource_type {
        rules::ResourceType::Subnet => Ok(Action::DisableMapPublicIpOnLaunch {
            subnet_id: r.resource_id.clone(),
        }),
        // A running instance keeps its address: replacing the node is a person's call.
        _ => Err(format!(
            "{} {} keeps its public address until replaced: no safe automatic fix",
            r.resource_type.as_str(),
            r.resource_id
        )),
    }
}

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
    fn skipped(r: &RuleResult, action: Option<Action>, why: impl Into<String>) -> Self {
        Remediation {
            rule_id: r.rule_id.clone(),
            resource_id: r.resource_id.clone(),
            outcome: Outcome::Skipped,
            permission: action.as_ref().map(Action::permission),
            action,
            detail: why.into(),
        }
    }
}

/// The write calls the actuator can make; a dry run counts on this being the only place they happen.
async fn execute(clients: &Clients, a: &Action) -> Result<(), String> {
    let err = |op: &str, e: &dyn std::error::Error| {
        format!(
            "{op}: {}",
            aws_smithy_types::error::display::DisplayErrorContext(e)
        )
    };
    match a {
        Action::UpdateClusterConfig {
            cluster,
            endpoint_public_access,
            endpoint_private_access,
            public_access_cidrs,
        } => {
            let vpc = VpcConfigRequest::builder()
                .set_endpoint_public_access(*endpoint_public_access)
                .set_endpoint_private_access(*endpoint_private_access)
                .set_public_access_cidrs(public_access_cidrs.clone())
                .build();
            clients
                .eks
                .update_cluster_config()
                .name(cluster)
                .resources_vpc_config(vpc)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| err("UpdateClusterConfig", &e))
        }
        Action::RevokeSecurityGroupIngress {
            group_id, rule_ids, ..
        } => clients
            .ec2
            .revoke_security_group_ingress()
            .group_id(group_id)
            .set_security_group_rule_ids(Some(rule_ids.clone()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err("RevokeSecurityGroupIngress", &e)),
        Action::DisableMapPublicIpOnLaunch { subnet_id } => clients
            .ec2
            .modify_subnet_attribute()
            .subnet_id(subnet_id)
            .map_public_ip_on_launch(AttributeBooleanValue::builder().value(false).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err("ModifySubnetAttribute", &e)),
    }
}

/// What a remediation pass did, and whether the cluster should be looked at again (a deferred update).
#[derive(Debug, Default)]
pub struct Pass {
    pub remediations: Vec<Remediation>,
    pub recheck: bool,
}

/// Fixes the opted-in findings of one cluster. `findings` are the evaluation's results; the cluster is read
/// again before anything is done, and each fix is verified on another fresh read.
pub async fn remediate(
    clients: &Clients,
    cluster: &str,
    findings: &[RuleResult],
    settings: &Settings,
    policy: &Policy,
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
    let (fresh, _) = collect::collect(clients, cluster).await?;
    let now = rules::evaluate(&fresh, settings);
    let settled = fresh.cluster.status == "ACTIVE";
    let mut cluster_update_done = false;
    for r in wanted {
        let still = now.iter().any(|n| {
            n.rule_id == r.rule_id
                && n.resource_id == r.resource_id
                && n.status == Status::Fail
                && n.evidence == r.evidence
        });
        if !still {
            pass.remediations.push(Remediation::skipped(
                r,
                None,
                "no longer failing on a fresh read",
            ));
            continue;
        }
        let Some(plan) = planner(&r.rule_id) else {
            continue;
        };
        let action = match plan(&fresh, r, settings, policy) {
            Ok(a) => a,
            Err(why) => {
                pass.remediations.push(Remediation::skipped(r, None, why));
                continue;
            }
        };
        if !settled {
            pass.remediations.push(Remediation::skipped(
                r,
                Some(action),
                format!(
                    "cluster is {}: fixes wait until it is ACTIVE",
                    fresh.cluster.status
                ),
            ));
            pass.recheck = true;
            continue;
        }
        if action.is_cluster_update() && cluster_update_done {
            pass.remediations.push(Remediation::skipped(
                r,
                Some(action),
                "deferred: EKS runs one cluster update at a time",
            ));
            pass.recheck = true;
            continue;
        }
        let permission = Some(action.permission());
        if policy.mode == Mode::DryRun {
            cluster_update_done |= action.is_cluster_update();
            pass.remediations.push(Remediation {
                rule_id: r.rule_id.clone(),
                resource_id: r.resource_id.clone(),
                outcome: Outcome::Planned,
                permission,
                action: Some(action),
                detail: "dry-run: not applied".into(),
            });
            continue;
        }
        info!(cluster, rule = %r.rule_id, resource = %r.resource_id, call = action.permission(), "remediating");
        let (outcome, detail) = match execute(clients, &action).await {
            Err(e) => {
                warn!(cluster, rule = %r.rule_id, error = %e, "remediation failed");
                (Outcome::Failed, e)
            }
            Ok(()) => {
                cluster_update_done |= action.is_cluster_update();
                verify(clients, cluster, r, settings).await
            }
        };
        if action.is_cluster_update() && outcome == Outcome::Failed {
            pass.recheck = true;
        }
        pass.remediations.push(Remediation {
            rule_id: r.rule_id.clone(),
            resource_id: r.resource_id.clone(),
            outcome,
            permission,
            action: Some(action),
            detail,
        });
    }
    Ok(pass)
}

/// Re-reads what changed. A cluster update is asynchronous in EKS: while the cluster is UPDATING the
/// fix is reported applied-pending, and the re-check confirms it.
async fn verify(
    clients: &Clients,
    cluster: &str,
    r: &RuleResult,
    settings: &Settings,
) -> (Outcome, String) {
    match collect::collect(clients, cluster).await {
        Err(e) => (
            Outcome::Failed,
            format!("applied, but the verification read failed: {e}"),
        ),
        Ok((after, _)) => {
            let still = rules::evaluate(&after, settings).into_iter().any(|n| {
                n.rule_id == r.rule_id
                    && n.resource_id == r.resource_id
                    && n.status == Status::Fail
                    && n.evidence == r.evidence
            });
            match (still, after.cluster.status.as_str()) {
                (false, _) => (
                    Outcome::Remediated,
                    "applied and verified on a fresh read".into(),
                ),
                (true, "UPDATING") => (
                    Outcome::Remediated,
                    "applied; the cluster is UPDATING and a re-check will confirm".into(),
                ),
                (true, _) => (
                    Outcome::Failed,
                    "applied, but the finding still holds on a fresh read".into(),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(pk, _)| *pk == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn report_mode_by_default() {
        let p = Policy::from_lookup(env(&[])).unwrap();
        assert_eq!(p, Policy::default());
        assert!(!p.active());
    }

    #[test]
    fn modes_and_rules() {
        let p = Policy::from_lookup(env(&[
            (ENV_MODE, "dry-run"),
            (ENV_RULES, "sg-open-ingress, nodes-public-ip"),
        ]))
        .unwrap();
        assert_eq!(p.mode, Mode::DryRun);
        assert!(p.active());
        assert_eq!(p.rules.len(), 2);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let e = Policy::from_lookup(env(&[(ENV_MODE, "fix-everything")])).unwrap_err();
        assert_eq!(e.var, ENV_MODE);
        let e = Policy::from_lookup(env(&[(ENV_RULES, "subnets-single-az")])).unwrap_err();
        assert!(e.to_string().contains("has no automatic fix"), "{e}");
        let e = Policy::from_lookup(env(&[(ENV_RULES, "nope")])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("EKS_WARDEN_REMEDIATE_RULES: unknown rule id"),
            "{e}"
        );
        let e = Policy::from_lookup(env(&[(ENV_ALLOW_PUBLIC_OFF, "yes")])).unwrap_err();
        assert_eq!(e.var, ENV_ALLOW_PUBLIC_OFF);
    }

    #[test]
    fn every_fix_names_its_permission_and_the_catalog_agrees() {
        for r in rules::ALL {
            assert_eq!(
                planner(r.meta.id).is_some(),
                fix_permission(r.meta.id).is_some(),
                "{}",
                r.meta.id
            );
            if planner(r.meta.id).is_some() {
                assert!(
                    r.meta.remediable,
                    "{} has a fix but is not marked remediable",
                    r.meta.id
                );
            }
        }
    }
}
