//! Fix plans: pure functions from a fresh snapshot and a failing result to one concrete call.

use super::policy::{Policy, ENV_ALLOW_PUBLIC_OFF, ENV_SECRETS_KEY};
use crate::model::{ClusterSnapshot, IngressRule};
use crate::rules::{self, RuleResult};
use crate::settings::Settings;
use serde::Serialize;
use std::collections::BTreeSet;

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
    /// `ec2:ModifyInstanceMetadataOptions` `HttpTokens=required`, hop limit 1: one call per instance.
    RequireImdsV2 { instance_ids: Vec<String> },
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

    /// How many write calls the action makes.
    pub fn write_calls(&self) -> u32 {
        match self {
            Action::RequireImdsV2 { instance_ids } => instance_ids.len() as u32,
            _ => 1,
        }
    }

    /// The same action cut to `calls` write calls (only a per-instance action can be cut).
    pub(super) fn truncated(mut self, calls: u32) -> Self {
        if let Action::RequireImdsV2 { instance_ids } = &mut self {
            instance_ids.truncate(calls as usize);
        }
        self
    }

    /// EKS runs one cluster update at a time (config, logging, access, encryption and add-on updates alike).
    pub(super) fn is_cluster_update(&self) -> bool {
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
    // configurationValues replaces the whole configuration: keep what is there, set one key, and write
    // it back in the form it came in (JSON stays JSON; YAML, block or flow, becomes block YAML).
    let text = current.as_deref().unwrap_or_default();
    let mut config = rules::parse_configuration(text)
        .map_err(|e| format!("vpc-cni configuration left as it is: {e}"))?;
    config.insert(
        serde_yaml_ng::Value::String("enableNetworkPolicy".into()),
        serde_yaml_ng::Value::String("true".into()),
    );
    let json_in = text.trim().is_empty() || serde_json::from_str::<serde_json::Value>(text).is_ok();
    let configuration_values = if json_in {
        serde_json::to_string(&config)
            .map_err(|e| format!("vpc-cni configuration could not be written back: {e}"))?
    } else {
        serde_yaml_ng::to_string(&config)
            .map_err(|e| format!("vpc-cni configuration could not be written back: {e}"))?
    };
    Ok(Action::EnableVpcCniNetworkPolicy {
        cluster: s.cluster.name.clone(),
        configuration_values,
    })
}

/// The instances a result lists (`instances` evidence of a per-nodegroup or per-subnet result), or the
/// instance it is about.
fn listed_instances(r: &RuleResult) -> Vec<String> {
    match r.evidence.get("instances") {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        None if r.resource_type == rules::ResourceType::Instance => vec![r.resource_id.clone()],
        None => vec![],
    }
}

fn plan_imds(_s: &ClusterSnapshot, r: &RuleResult, _cfg: &Settings, _p: &Policy) -> Planned {
    let instance_ids = listed_instances(r);
    if instance_ids.is_empty() {
        return Err(format!(
            "{} {}: needs a new launch template version and a nodegroup update, a person's call",
            r.resource_type.as_str(),
            r.resource_id
        ));
    }
    Ok(Action::RequireImdsV2 { instance_ids })
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
        // Narrowing with private access off strands whoever is outside the allow-list: when the operator
        // opted into the private fix as well, one update carries both (the guardrails refuse the rest).
        let private_too = !ep.private_access && p.rules.contains("endpoint-private-disabled");
        return Ok(Action::UpdateClusterConfig {
            cluster: s.cluster.name.clone(),
            endpoint_public_access: None,
            endpoint_private_access: private_too.then_some(true),
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
    let instances = listed_instances(r);
    if r.resource_type == rules::ResourceType::Subnet && instances.is_empty() {
        return Ok(Action::DisableMapPublicIpOnLaunch {
            subnet_id: r.resource_id.clone(),
        });
    }
    // A running instance keeps its address: replacing the nodes is a person's call.
    Err(format!(
        "{} {}: {} instance(s) keep their public addresses until replaced: no safe automatic fix (roll \
         the nodes once their subnets stop assigning public addresses)",
        r.resource_type.as_str(),
        r.resource_id,
        instances.len().max(1)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Status;

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
        // YAML, block and flow style: merged, every other key kept, written back as YAML.
        for yaml in [
            "enableNetworkPolicy: false\nenv:\n  WARM_IP_TARGET: \"5\"\n",
            "{enableNetworkPolicy: false, env: {WARM_IP_TARGET: \"5\"}}",
        ] {
            s.addons = Fact::Known(vec![Addon {
                name: "vpc-cni".into(),
                configuration_values: Fact::Known(Some(yaml.into())),
            }]);
            let Ok(Action::EnableVpcCniNetworkPolicy {
                configuration_values,
                ..
            }) = plan_network_policy(&s, &r, &cfg, &none)
            else {
                panic!("no plan for {yaml}")
            };
            let v: serde_json::Value = serde_yaml_ng::from_str(&configuration_values).unwrap();
            assert_eq!(
                v,
                serde_json::json!({"env": {"WARM_IP_TARGET": "5"}, "enableNetworkPolicy": "true"}),
                "{yaml}"
            );
            assert!(serde_json::from_str::<serde_json::Value>(&configuration_values).is_err());
        }
        s.addons = Fact::Known(vec![Addon {
            name: "vpc-cni".into(),
            configuration_values: Fact::Known(Some("- a list\n- not a mapping\n".into())),
        }]);
        assert!(plan_network_policy(&s, &r, &cfg, &none)
            .unwrap_err()
            .contains("not a mapping"));
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
