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
    /// The KMS key `secrets-not-encrypted` associates (`EKS_WARDEN_SECRETS_KMS_KEY_ARN`); without it that fix
    /// is skipped. Associating is irreversible.
    pub secrets_key_arn: Option<String>,
}

pub const ENV_MODE: &str = "EKS_WARDEN_MODE";
pub const ENV_RULES: &str = "EKS_WARDEN_REMEDIATE_RULES";
pub const ENV_ALLOW_PUBLIC_OFF: &str = "EKS_WARDEN_ALLOW_PUBLIC_ENDPOINT_OFF";
pub const ENV_SECRETS_KEY: &str = "EKS_WARDEN_SECRETS_KMS_KEY_ARN";

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
        let secrets_key_arn = match get(ENV_SECRETS_KEY)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
        {
            Some(arn) if arn.starts_with("arn:") && arn.contains(":kms:") => Some(arn),
            Some(other) => {
                return Err(PolicyError {
                    var: ENV_SECRETS_KEY,
                    message: format!("{other:?} is not a KMS key ARN"),
                })
            }
            None => None,
        };
        Ok(Policy {
            mode,
            rules,
            allow_public_endpoint_off,
            secrets_key_arn,
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
    /// `eks:UpdateClusterConfig` `logging`: turn these control-plane log types on.
    EnableClusterLogging { cluster: String, types: Vec<String> },
    /// `eks:UpdateClusterConfig` `accessConfig.authenticationMode=API_AND_CONFIG_MAP` (one-way).
    EnableAccessEntries { cluster: String },
    /// `eks:UpdateClusterConfig` `deletionProtection=true`.
    EnableDeletionProtection { cluster: String },
    /// `eks:UpdateAddon` of `vpc-cni` with `enableNetworkPolicy: "true"` merged into its configuration.
    EnableVpcCniNetworkPolicy {
        cluster: String,
        configuration_values: String,
    },
    /// `ec2:ModifyInstanceMetadataOptions` `HttpTokens=required`, hop limit 1.
    RequireImdsV2 { instance_id: String },
    /// `eks:AssociateEncryptionConfig` of `secrets` with the configured key (irreversible).
    EncryptSecrets { cluster: String, key_arn: String },
}

impl Action {
    /// The IAM permission the call needs.
    pub fn permission(&self) -> &'static str {
        match self {
            Action::UpdateClusterConfig { .. } => "eks:UpdateClusterConfig",
            Action::RevokeSecurityGroupIngress { .. } => "ec2:RevokeSecurityGroupIngress",
            Action::DisableMapPublicIpOnLaunch { .. } => "ec2:ModifySubnetAttribute",
            Action::EnableClusterLogging { .. }
            | Action::EnableAccessEntries { .. }
            | Action::EnableDeletionProtection { .. } => "eks:UpdateClusterConfig",
            Action::EnableVpcCniNetworkPolicy { .. } => "eks:UpdateAddon",
            Action::RequireImdsV2 { .. } => "ec2:ModifyInstanceMetadataOptions",
            Action::EncryptSecrets { .. } => "eks:AssociateEncryptionConfig",
        }
    }

    /// EKS runs one cluster update at a time (config, logging, access, encryption and add-on updates alike).
    fn is_cluster_update(&self) -> bool {
        !matches!(
            self,
            Action::RevokeSecurityGroupIngress { .. }
                | Action::DisableMapPublicIpOnLaunch { .. }
                | Action::RequireImdsV2 { .. }
        )
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
        "control-plane-logging-incomplete" => Some(plan_logging),
        "auth-configmap-only" => Some(plan_access_entries),
        "deletion-protection-off" => Some(plan_deletion_protection),
        "network-policy-not-enforced" => Some(plan_network_policy),
        "nodes-imdsv1" => Some(plan_imds),
        "secrets-not-encrypted" => Some(plan_secrets),
        _ => None,
    }
}

fn plan_logging(s: &ClusterSnapshot, _r: &RuleResult, cfg: &Settings, _p: &Policy) -> Planned {
    let setups = s
        .cluster
        .logging
        .as_ref()
        .map_err(|u| format!("logging unreadable: {u}"))?;
    let enabled: BTreeSet<&str> = setups
        .iter()
        .filter(|l| l.enabled)
        .flat_map(|l| l.types.iter().map(String::as_str))
        .collect();
    let types: Vec<String> = cfg
        .required_log_types
        .iter()
        .filter(|t| !enabled.contains(t.as_str()))
        .cloned()
        .collect();
    if types.is_empty() {
        return Err("every required log type is already on".into());
    }
    Ok(Action::EnableClusterLogging {
        cluster: s.cluster.name.clone(),
        types,
    })
}

fn plan_access_entries(
    s: &ClusterSnapshot,
    _r: &RuleResult,
    _cfg: &Settings,
    _p: &Policy,
) -> Planned {
    Ok(Action::EnableAccessEntries {
        cluster: s.cluster.name.clone(),
    })
}

fn plan_deletion_protection(
    s: &ClusterSnapshot,
    _r: &RuleResult,
    _cfg: &Settings,
    _p: &Policy,
) -> Planned {
    Ok(Action::EnableDeletionProtection {
        cluster: s.cluster.name.clone(),
    })
}

fn plan_network_policy(
    s: &ClusterSnapshot,
    _r: &RuleResult,
    _cfg: &Settings,
    _p: &Policy,
) -> Planned {
    let addons = s
        .addons
        .as_ref()
        .map_err(|u| format!("add-ons unreadable: {u}"))?;
    let cni = addons.iter().find(|a| a.name == "vpc-cni").ok_or(
        "vpc-cni is not installed as an EKS add-on: enable network policy in its own deployment",
    )?;
    let current = cni
        .configuration_values
        .as_ref()
        .map_err(|u| format!("vpc-cni configuration unreadable: {u}"))?;
    // configurationValues replaces the whole configuration: keep what is there, set one key.
    let mut config: serde_json::Map<String, serde_json::Value> =
        match current.as_deref().map(str::trim) {
            None | Some("") => serde_json::Map::new(),
            Some(text) => match serde_json::from_str(text) {
                Ok(serde_json::Value::Object(m)) => m,
                _ => {
                    return Err(
                        "vpc-cni configuration is not a JSON object (YAML is left to a person)"
                            .into(),
                    )
                }
            },
        };
    config.insert(
        "enableNetworkPolicy".into(),
        serde_json::Value::String("true".into()),
    );
    Ok(Action::EnableVpcCniNetworkPolicy {
        cluster: s.cluster.name.clone(),
        configuration_values: serde_json::Value::Object(config).to_string(),
    })
}

fn plan_imds(_s: &ClusterSnapshot, r: &RuleResult, _cfg: &Settings, _p: &Policy) -> Planned {
    match r.resource_type {
        rules::ResourceType::Instance => Ok(Action::RequireImdsV2 {
            instance_id: r.resource_id.clone(),
        }),
        _ => Err(format!(
            "{} {}: needs a new launch template version and a nodegroup update, a person's call",
            r.resource_type.as_str(),
            r.resource_id
        )),
    }
}

fn plan_secrets(s: &ClusterSnapshot, _r: &RuleResult, _cfg: &Settings, p: &Policy) -> Planned {
    let key_arn = p
        .secrets_key_arn
        .clone()
        .ok_or(format!("no KMS key is configured ({ENV_SECRETS_KEY})"))?;
    Ok(Action::EncryptSecrets {
        cluster: s.cluster.name.clone(),
        key_arn,
    })
}

/// The permission of a rule's fix: the catalog's own record of it.
pub fn fix_permission(rule_id: &str) -> Option<&'static str> {
    rules::find(rule_id).and_then(|r| r.meta.fix_permission)
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
// `EncryptionConfig.resources` is deprecated in the model, but AssociateEncryptionConfig still takes the
// `secrets` resource to say what the customer key envelopes.
#[allow(deprecated)]
async fn execute(clients: &Clients, a: &Action) -> Result<(), String> {
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
                .map_err(|e| crate::collect::error_line("UpdateClusterConfig", &e))
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
            .map_err(|e| crate::collect::error_line("RevokeSecurityGroupIngress", &e)),
        Action::DisableMapPublicIpOnLaunch { subnet_id } => clients
            .ec2
            .modify_subnet_attribute()
            .subnet_id(subnet_id)
            .map_public_ip_on_launch(AttributeBooleanValue::builder().value(false).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::collect::error_line("ModifySubnetAttribute", &e)),
        Action::EnableClusterLogging { cluster, types } => {
            let setup = types
                .iter()
                .fold(
                    aws_sdk_eks::types::LogSetup::builder().enabled(true),
                    |b, t| b.types(aws_sdk_eks::types::LogType::from(t.as_str())),
                )
                .build();
            clients
                .eks
                .update_cluster_config()
                .name(cluster)
                .logging(
                    aws_sdk_eks::types::Logging::builder()
                        .cluster_logging(setup)
                        .build(),
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|e| crate::collect::error_line("UpdateClusterConfig", &e))
        }
        Action::EnableAccessEntries { cluster } => clients
            .eks
            .update_cluster_config()
            .name(cluster)
            .access_config(
                aws_sdk_eks::types::UpdateAccessConfigRequest::builder()
                    .authentication_mode(aws_sdk_eks::types::AuthenticationMode::ApiAndConfigMap)
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::collect::error_line("UpdateClusterConfig", &e)),
        Action::EnableDeletionProtection { cluster } => clients
            .eks
            .update_cluster_config()
            .name(cluster)
            .deletion_protection(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::collect::error_line("UpdateClusterConfig", &e)),
        Action::EnableVpcCniNetworkPolicy {
            cluster,
            configuration_values,
        } => clients
            .eks
            .update_addon()
            .cluster_name(cluster)
            .addon_name("vpc-cni")
            .configuration_values(configuration_values)
            .resolve_conflicts(aws_sdk_eks::types::ResolveConflicts::Preserve)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::collect::error_line("UpdateAddon", &e)),
        Action::RequireImdsV2 { instance_id } => clients
            .ec2
            .modify_instance_metadata_options()
            .instance_id(instance_id)
            .http_tokens(aws_sdk_ec2::types::HttpTokensState::Required)
            .http_put_response_hop_limit(1)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::collect::error_line("ModifyInstanceMetadataOptions", &e)),
        Action::EncryptSecrets { cluster, key_arn } => clients
            .eks
            .associate_encryption_config()
            .cluster_name(cluster)
            .encryption_config(
                aws_sdk_eks::types::EncryptionConfig::builder()
                    .resources("secrets")
                    .provider(
                        aws_sdk_eks::types::Provider::builder()
                            .key_arn(key_arn)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::collect::error_line("AssociateEncryptionConfig", &e)),
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
                r.meta.remediable,
                "{}: planner vs remediable",
                r.meta.id
            );
            assert_eq!(
                planner(r.meta.id).is_some(),
                fix_permission(r.meta.id).is_some(),
                "{}",
                r.meta.id
            );
        }
    }

    fn failing(rule: &str) -> RuleResult {
        RuleResult {
            rule_id: rule.into(),
            severity: rules::Severity::Medium,
            status: Status::Fail,
            resource_type: rules::ResourceType::Cluster,
            resource_id: "prod".into(),
            message: String::new(),
            evidence: Default::default(),
            discriminator: None,
            finding_id: String::new(),
        }
    }

    #[test]
    fn each_action_needs_the_permission_its_rule_declares() {
        let mut s = crate::rules::testkit::baseline();
        s.cluster.logging = crate::model::Fact::Known(vec![]);
        s.addons = crate::model::Fact::Known(vec![crate::model::Addon {
            name: "vpc-cni".into(),
            configuration_values: crate::model::Fact::Known(None),
        }]);
        let cfg = Settings {
            required_log_types: ["api".to_string()].into(),
            ..Settings::default()
        };
        let p = Policy {
            secrets_key_arn: Some("arn:aws:kms:eu-west-1:1:key/k".into()),
            allow_public_endpoint_off: true,
            ..Policy::default()
        };
        let mut planned = 0;
        for r in rules::ALL {
            let Some(plan) = planner(r.meta.id) else {
                continue;
            };
            if let Ok(action) = plan(&s, &failing(r.meta.id), &cfg, &p) {
                assert_eq!(
                    Some(action.permission()),
                    r.meta.fix_permission,
                    "{}",
                    r.meta.id
                );
                planned += 1;
            }
        }
        assert!(
            planned >= 7,
            "only {planned} fixes planned from the baseline"
        );
    }

    #[test]
    fn network_policy_fix_keeps_the_existing_configuration() {
        use crate::model::{Addon, Fact};
        let mut s = crate::rules::testkit::baseline();
        let r = failing("network-policy-not-enforced");
        let none = Policy::default();
        let cfg = Settings::default();
        s.addons = Fact::Known(vec![Addon {
            name: "vpc-cni".into(),
            configuration_values: Fact::Known(Some(r#"{"env":{"WARM_IP_TARGET":"5"}}"#.into())),
        }]);
        let Ok(Action::EnableVpcCniNetworkPolicy {
            configuration_values,
            ..
        }) = plan_network_policy(&s, &r, &cfg, &none)
        else {
            panic!("no plan")
        };
        let v: serde_json::Value = serde_json::from_str(&configuration_values).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"env": {"WARM_IP_TARGET": "5"}, "enableNetworkPolicy": "true"})
        );
        s.addons = Fact::Known(vec![Addon {
            name: "vpc-cni".into(),
            configuration_values: Fact::Known(Some("enableNetworkPolicy: false".into())),
        }]);
        assert!(plan_network_policy(&s, &r, &cfg, &none).is_err());
        s.addons = Fact::Known(vec![]);
        assert!(plan_network_policy(&s, &r, &cfg, &none)
            .unwrap_err()
            .contains("not installed"));
    }

    #[test]
    fn secrets_fix_needs_a_configured_key() {
        let s = crate::rules::testkit::baseline();
        let r = failing("secrets-not-encrypted");
        assert!(
            plan_secrets(&s, &r, &Settings::default(), &Policy::default())
                .unwrap_err()
                .contains(ENV_SECRETS_KEY)
        );
        let e = Policy::from_lookup(|k| (k == ENV_SECRETS_KEY).then(|| "alias/mine".to_string()))
            .unwrap_err();
        assert_eq!(e.var, ENV_SECRETS_KEY);
    }
}
