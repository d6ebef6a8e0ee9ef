use super::{FixText, ResourceType::Cluster, Rule, RuleMeta, RuleResult, Severity};
use crate::model::Part;
use crate::model::{Addon, ClusterSnapshot, Fact};
use crate::settings::Settings;
use std::collections::BTreeMap;

/// The Amazon VPC CNI add-on, which enforces network policies only with `enableNetworkPolicy: "true"`.
pub const VPC_CNI: &str = "vpc-cni";

/// Cluster tag declaring an engine the AWS API cannot see (a Helm-installed Calico or Cilium):
/// its value is the engine's name.
pub const NETWORK_POLICY_TAG: &str = "eks-warden:network-policy";

pub const RULE: Rule = Rule {
    meta: RuleMeta {
        id: "network-policy-not-enforced",
        reads: &[Part::Addons, Part::AddonConfiguration],
        severity: Severity::Medium,
        title: "No network policy engine: Kubernetes NetworkPolicies are not enforced",
        description: "Without an engine, NetworkPolicy objects are accepted and silently ignored, so every pod \
            can reach every other pod. An engine is recognised from what the AWS API shows: the `vpc-cni` \
            add-on with `enableNetworkPolicy: \"true\"` in its configuration, a third-party engine add-on \
            (Calico, Cilium; names configurable with EKS_WARDEN_NETWORK_POLICY_ADDONS), or, for an engine \
            installed inside the cluster where the API cannot see it, the cluster tag \
            `eks-warden:network-policy` naming it.",
        resolution: "Turn on the VPC CNI's network policy agent (aws eks update-addon --cluster-name <cluster> \
            --addon-name vpc-cni --configuration-values '{\"enableNetworkPolicy\": \"true\"}' \
            --resolve-conflicts PRESERVE), or install Calico or Cilium; if an engine is installed with Helm, \
            declare it with the cluster tag eks-warden:network-policy=<engine>. Then write NetworkPolicies \
            (default deny per namespace).",
        references: &[
            "https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy.html",
            "https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy-configure.html",
            "CIS EKS 4.3.1",
            "CIS EKS 5.4.4",
        ],
        remediable: true,
        fix_permission: Some("eks:UpdateAddon"),
        fix: Some(FixText {
            changes: "`UpdateAddon` of `vpc-cni` with `enableNetworkPolicy: \"true\"` merged into its configuration (JSON stays JSON; YAML, block or flow, is written back as block YAML), conflicts preserved.",
            never: "Drop or change any other configuration key; install an add-on; rewrite a configuration it cannot read as a mapping.",
        }),
    },
    check: evaluate,
};

/// The engine a cluster declares by tag, if any (an empty value declares nothing).
pub fn declared_engine(tags: &BTreeMap<String, String>) -> Option<&str> {
    tags.get(NETWORK_POLICY_TAG)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// The first add-on whose name is a configured network policy engine (case-insensitive).
pub fn engine_addon<'a>(
    mut names: impl Iterator<Item = &'a str>,
    cfg: &Settings,
) -> Option<&'a str> {
    names.find(|n| cfg.network_policy_addons.contains(&n.to_ascii_lowercase()))
}

/// The add-on's configuration values as a mapping: JSON is YAML, and YAML may be block or flow style.
/// Empty text is an empty mapping; `Err` says why anything else is not a mapping.
pub fn parse_configuration(config: &str) -> Result<serde_yaml_ng::Mapping, String> {
    if config.trim().is_empty() {
        return Ok(serde_yaml_ng::Mapping::new());
    }
    match serde_yaml_ng::from_str::<serde_yaml_ng::Value>(config) {
        Ok(serde_yaml_ng::Value::Mapping(m)) => Ok(m),
        Ok(serde_yaml_ng::Value::Null) => Ok(serde_yaml_ng::Mapping::new()),
        Ok(_) => Err("the configuration is not a mapping of keys to values".into()),
        Err(e) => Err(format!("the configuration is not valid JSON or YAML: {e}")),
    }
}

/// `enableNetworkPolicy` from the add-on's configuration values. `None` when the configuration does not
/// set it or cannot be read as a mapping (the rule then fails closed: no engine is proven).
fn network_policy_flag(config: &str) -> Option<bool> {
    let m = parse_configuration(config).ok()?;
    match m.get("enableNetworkPolicy")? {
        serde_yaml_ng::Value::Bool(b) => Some(*b),
        serde_yaml_ng::Value::String(s) => Some(s.eq_ignore_ascii_case("true")),
        _ => Some(false),
    }
}

fn evaluate(s: &ClusterSnapshot, cfg: &Settings) -> Vec<RuleResult> {
    let m = &RULE.meta;
    let name = &s.cluster.name;
    let declared = declared_engine(&s.cluster.tags);
    let by_tag = |engine: &str| {
        RuleResult::pass(
            m,
            Cluster,
            name,
            format!(
                "network policy engine {engine:?} declared by the cluster tag {NETWORK_POLICY_TAG} \
                 (the AWS API cannot see engines installed inside the cluster)"
            ),
        )
        .with("engine", engine)
        .with("source", "tag")
    };
    let addons: &Vec<Addon> = match s.addons.as_ref() {
        Ok(a) => a,
        Err(why) => {
            return vec![match declared {
                Some(engine) => by_tag(engine),
                None => RuleResult::unknown(m, Cluster, name, "EKS add-ons", why),
            }]
        }
    };
    if let Some(engine) = engine_addon(addons.iter().map(|a| a.name.as_str()), cfg) {
        return vec![RuleResult::pass(
            m,
            Cluster,
            name,
            format!("network policies are enforced by the {engine} add-on"),
        )
        .with("engine", engine)
        .with("source", "addon")];
    }
    let vpc_cni = addons.iter().find(|a| a.name == VPC_CNI);
    if let Some(Fact::Known(config)) = vpc_cni.map(|a| &a.configuration_values) {
        if config.as_deref().and_then(network_policy_flag) == Some(true) {
            return vec![RuleResult::pass(
                m,
                Cluster,
                name,
                "network policies are enforced by the VPC CNI (vpc-cni add-on with enableNetworkPolicy=true)",
            )
            .with("engine", VPC_CNI)
            .with("source", "addon")];
        }
    }
    if let Some(engine) = declared {
        return vec![by_tag(engine)];
    }
    let r = match vpc_cni {
        Some(Addon {
            configuration_values: Fact::Unknown(why),
            ..
        }) => RuleResult::unknown(m, Cluster, name, "the vpc-cni add-on's configuration", why),
        Some(_) => RuleResult::fail(
            m,
            Cluster,
            name,
            "no network policy engine: the vpc-cni add-on does not set enableNetworkPolicy=true, no Calico or \
             Cilium add-on is installed and no engine is declared by tag",
        )
        .with("vpc_cni", "enableNetworkPolicy not true"),
        None => RuleResult::fail(
            m,
            Cluster,
            name,
            format!(
                "no network policy engine: no vpc-cni add-on with enableNetworkPolicy=true and no Calico or \
                 Cilium add-on among {} add-on(s); an engine installed with Helm must be declared with the \
                 tag {NETWORK_POLICY_TAG}",
                addons.len()
            ),
        ),
    };
    vec![r.with(
        "addons",
        addons
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::{self, baseline};
    use crate::rules::Status;

    fn addon(name: &str, config: Option<&str>) -> Addon {
        Addon {
            name: name.into(),
            configuration_values: Fact::Known(config.map(str::to_string)),
        }
    }

    fn run(addons: Fact<Vec<Addon>>, tag: Option<&str>, cfg: &Settings) -> RuleResult {
        let mut s = baseline();
        s.addons = addons;
        if let Some(t) = tag {
            s.cluster.tags.insert(NETWORK_POLICY_TAG.into(), t.into());
        }
        let mut r = evaluate(&s, cfg);
        assert_eq!(r.len(), 1);
        r.remove(0)
    }

    type Case = (
        &'static str,
        Fact<Vec<Addon>>,
        Option<&'static str>,
        Status,
        &'static str,
    );

    #[test]
    fn verdicts() {
        use Status::*;
        let on_json =
            Some(r#"{"enableNetworkPolicy": "true", "env": {"ENABLE_PREFIX_DELEGATION": "true"}}"#);
        let on_yaml =
            Some("env:\n  WARM_IP_TARGET: \"5\"\nenableNetworkPolicy: \"true\" # agent on\n");
        let off_json = Some(r#"{"enableNetworkPolicy": "false"}"#);
        let nested_yaml = Some("nodeAgent:\n  enableNetworkPolicy: \"true\"\n");
        let cases: Vec<Case> = vec![
            (
                "vpc-cni json on",
                Fact::Known(vec![addon("vpc-cni", on_json)]),
                None,
                Pass,
                "VPC CNI",
            ),
            (
                "vpc-cni yaml on",
                Fact::Known(vec![addon("vpc-cni", on_yaml)]),
                None,
                Pass,
                "VPC CNI",
            ),
            (
                "vpc-cni flow-style yaml on",
                Fact::Known(vec![addon(
                    "vpc-cni",
                    Some(r#"{enableNetworkPolicy: "true", env: {WARM_IP_TARGET: "5"}}"#),
                )]),
                None,
                Pass,
                "VPC CNI",
            ),
            (
                "vpc-cni unreadable configuration",
                Fact::Known(vec![addon(
                    "vpc-cni",
                    Some("enableNetworkPolicy: [unclosed"),
                )]),
                None,
                Fail,
                "vpc-cni",
            ),
            (
                "vpc-cni bool on",
                Fact::Known(vec![addon(
                    "vpc-cni",
                    Some(r#"{"enableNetworkPolicy": true}"#),
                )]),
                None,
                Pass,
                "VPC CNI",
            ),
            (
                "vpc-cni off",
                Fact::Known(vec![addon("vpc-cni", off_json)]),
                None,
                Fail,
                "vpc-cni",
            ),
            (
                "vpc-cni default config",
                Fact::Known(vec![addon("vpc-cni", None)]),
                None,
                Fail,
                "vpc-cni",
            ),
            (
                "vpc-cni nested key",
                Fact::Known(vec![addon("vpc-cni", nested_yaml)]),
                None,
                Fail,
                "vpc-cni",
            ),
            ("no add-ons", Fact::Known(vec![]), None, Fail, "tag"),
            (
                "calico add-on",
                Fact::Known(vec![
                    addon("vpc-cni", off_json),
                    addon("tigera-operator", None),
                ]),
                None,
                Pass,
                "tigera-operator add-on",
            ),
            (
                "cilium add-on",
                Fact::Known(vec![addon("Isovalent_Cilium", None)]),
                None,
                Pass,
                "Isovalent_Cilium",
            ),
            (
                "declared by tag",
                Fact::Known(vec![addon("vpc-cni", off_json)]),
                Some("calico"),
                Pass,
                "declared",
            ),
            (
                "empty tag declares nothing",
                Fact::Known(vec![]),
                Some(" "),
                Fail,
                "no network policy",
            ),
            (
                "add-ons denied",
                testkit::denied(),
                None,
                Unknown,
                "AccessDeniedException",
            ),
            (
                "add-ons denied, tag",
                testkit::denied(),
                Some("cilium"),
                Pass,
                "declared",
            ),
            (
                "vpc-cni config denied",
                Fact::Known(vec![Addon {
                    name: "vpc-cni".into(),
                    configuration_values: testkit::denied(),
                }]),
                None,
                Unknown,
                "vpc-cni",
            ),
        ];
        for (what, addons, tag, want, says) in cases {
            let r = run(addons, tag, &Settings::default());
            assert_eq!(r.status, want, "{what}: {}", r.message);
            assert!(r.message.contains(says), "{what}: {}", r.message);
            assert_eq!(r.resource_type, Cluster);
        }
    }

    #[test]
    fn configured_engine_names_count() {
        let mut cfg = Settings::default();
        let addons = || Fact::Known(vec![addon("antrea", None)]);
        assert_eq!(run(addons(), None, &cfg).status, Status::Fail);
        cfg.network_policy_addons.insert("antrea".into());
        let r = run(addons(), None, &cfg);
        assert_eq!(r.status, Status::Pass);
        assert_eq!(r.evidence["engine"], "antrea");
    }

    #[test]
    fn says_which_engine() {
        let r = run(Fact::Known(vec![]), Some("cilium"), &Settings::default());
        assert_eq!(r.evidence["source"], "tag");
        assert_eq!(r.evidence["engine"], "cilium");
        let r = run(
            Fact::Known(vec![addon(
                "vpc-cni",
                Some(r#"{"enableNetworkPolicy":"true"}"#),
            )]),
            None,
            &Settings::default(),
        );
        assert_eq!(r.evidence["source"], "addon");
        assert_eq!(r.evidence["engine"], "vpc-cni");
    }
}
