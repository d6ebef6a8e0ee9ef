//! The rule catalog: one file per rule, metadata next to logic, and the one list of all rules.
//!
//! A rule is a pure function of a [`ClusterSnapshot`] and [`Settings`]: no I/O, no SDK types, no clock.

use crate::model::{ClusterSnapshot, Unreadable};
use crate::settings::Settings;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod access_entry_broad_admin;
mod auth_configmap_only;
mod control_plane_logging_incomplete;
mod deletion_protection_off;
mod endpoint_private_disabled;
mod endpoint_public_unrestricted;
mod network_policy_not_enforced;
mod nodegroup_ssh_open;
mod nodes_imdsv1;
mod nodes_in_public_subnet;
mod nodes_public_ip;
mod reads;
mod secrets_not_encrypted;
mod sg_open_ingress;
mod subnets_single_az;
mod version_unsupported;
mod vpc_no_private_subnet;

pub use access_entry_broad_admin::CLUSTER_ADMIN_POLICY;
pub use network_policy_not_enforced::{
    declared_engine, engine_addon, parse_configuration, NETWORK_POLICY_TAG, VPC_CNI,
};

#[cfg(test)]
pub(crate) mod testkit;

/// Every rule, in catalog order.
pub static ALL: &[Rule] = &[
    endpoint_public_unrestricted::RULE,
    endpoint_private_disabled::RULE,
    subnets_single_az::RULE,
    vpc_no_private_subnet::RULE,
    nodes_in_public_subnet::RULE,
    nodes_public_ip::RULE,
    sg_open_ingress::RULE,
    nodegroup_ssh_open::RULE,
    network_policy_not_enforced::RULE,
    auth_configmap_only::RULE,
    access_entry_broad_admin::RULE,
    secrets_not_encrypted::RULE,
    control_plane_logging_incomplete::RULE,
    version_unsupported::RULE,
    nodes_imdsv1::RULE,
    deletion_protection_off::RULE,
];

/// Looks a rule up by id.
pub fn find(id: &str) -> Option<&'static Rule> {
    ALL.iter().find(|r| r.meta.id == id)
}

/// The tag whose value lists the rule ids (or `*`) a cluster or security group is exempt from.
pub const EXEMPT_TAG: &str = "eks-warden:exempt";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "LOW" => Ok(Severity::Low),
            "MEDIUM" => Ok(Severity::Medium),
            "HIGH" => Ok(Severity::High),
            "CRITICAL" => Ok(Severity::Critical),
            _ => Err(format!(
                "unknown severity {s:?}: expected LOW, MEDIUM, HIGH or CRITICAL"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Fail,
    Unknown,
    Exempt,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Unknown => "UNKNOWN",
            Status::Exempt => "EXEMPT",
        }
    }
}

/// What a rule judged, per resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceType {
    Cluster,
    Subnet,
    SecurityGroup,
    Nodegroup,
    Instance,
    AccessEntry,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Cluster => "cluster",
            ResourceType::Subnet => "subnet",
            ResourceType::SecurityGroup => "security-group",
            ResourceType::Nodegroup => "nodegroup",
            ResourceType::Instance => "instance",
            ResourceType::AccessEntry => "access-entry",
        }
    }
}

/// Static facts about a rule, shown by `eks-warden rules` and carried into findings.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RuleMeta {
    pub id: &'static str,
    /// The snapshot parts the rule reads beyond the cluster's description: the collector reads only
    /// what an enabled rule declares here (a test checks each declaration is complete).
    pub reads: &'static [crate::model::Part],
    /// The severity of a typical failure; a result may carry a higher one (an all-ports open rule).
    pub severity: Severity,
    pub title: &'static str,
    pub description: &'static str,
    pub resolution: &'static str,
    pub references: &'static [&'static str],
    /// Whether an automatic fix exists (opt-in).
    pub remediable: bool,
    /// The IAM action the automatic fix calls (the remediator's role needs it); `None` without a fix.
    pub fix_permission: Option<&'static str>,
    /// What the automatic fix changes and what it never does (docs/rules.md); `None` without a fix.
    pub fix: Option<FixText>,
}

/// An automatic fix as the operator who opts into it must know it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FixText {
    /// The exact change, call by call.
    pub changes: &'static str,
    /// What it will never do (each a guardrail, or a change left to a person), as a verb phrase.
    pub never: &'static str,
}

/// One rule: metadata and a pure check.
pub struct Rule {
    pub meta: RuleMeta,
    pub check: fn(&ClusterSnapshot, &Settings) -> Vec<RuleResult>,
}

/// One verdict on one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleResult {
    pub rule_id: String,
    pub severity: Severity,
    pub status: Status,
    pub resource_type: ResourceType,
    pub resource_id: String,
    pub message: String,
    /// The offending values (a CIDR, a rule id, a route), so a reader sees what to change.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub evidence: BTreeMap<String, String>,
    /// Tells apart several results of one rule on one resource (part of the finding's identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discriminator: Option<String>,
    /// The stable identity of this finding ([`crate::finding::finding_id`]); set once the account and
    /// region are known, empty in a bare rule's output.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub finding_id: String,
}

impl RuleResult {
    fn new(
        meta: &RuleMeta,
        status: Status,
        resource_type: ResourceType,
        resource_id: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        RuleResult {
            rule_id: meta.id.to_string(),
            severity: meta.severity,
            status,
            resource_type,
            resource_id: resource_id.into(),
            message: message.into(),
            evidence: BTreeMap::new(),
            discriminator: None,
            finding_id: String::new(),
        }
    }

    pub fn pass(
        meta: &RuleMeta,
        rt: ResourceType,
        id: impl Into<String>,
        msg: impl Into<String>,
    ) -> Self {
        Self::new(meta, Status::Pass, rt, id, msg)
    }

    pub fn fail(
        meta: &RuleMeta,
        rt: ResourceType,
        id: impl Into<String>,
        msg: impl Into<String>,
    ) -> Self {
        Self::new(meta, Status::Fail, rt, id, msg)
    }

    /// Data the rule needs could not be read: say what and why.
    pub fn unknown(
        meta: &RuleMeta,
        rt: ResourceType,
        id: impl Into<String>,
        what: &str,
        why: &Unreadable,
    ) -> Self {
        Self::new(
            meta,
            Status::Unknown,
            rt,
            id,
            format!("{what} could not be read: {why}"),
        )
    }

    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.evidence.insert(key.to_string(), value.into());
        self
    }

    /// Marks one of several results of this rule on the same resource (e.g. the offending rule id).
    pub fn keyed(mut self, discriminator: impl Into<String>) -> Self {
        self.discriminator = Some(discriminator.into());
        self
    }

    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }
}

/// Where a group of nodes is reported: a nodegroup, or a subnet for nodes outside managed nodegroups.
pub(crate) type NodeGroupKey = (ResourceType, String);
/// The members of one group of nodes, each with what the rule found on it.
pub(crate) type NodeGroup<'a, T> = (NodeGroupKey, Vec<(&'a crate::model::Instance, T)>);

/// Node instances gathered for one result each: by managed nodegroup, else by subnet (self-managed nodes),
/// so scaling a group in or out changes a result's evidence, never the set of findings.
pub(crate) fn by_node_group<'a, T>(
    items: impl IntoIterator<Item = (&'a crate::model::Instance, T)>,
) -> Vec<NodeGroup<'a, T>> {
    let mut groups: BTreeMap<NodeGroupKey, Vec<(&crate::model::Instance, T)>> = BTreeMap::new();
    for (i, v) in items {
        let key = match (&i.nodegroup, &i.subnet_id) {
            (Some(ng), _) => (ResourceType::Nodegroup, ng.clone()),
            (None, Some(subnet)) => (ResourceType::Subnet, subnet.clone()),
            (None, None) => (ResourceType::Instance, i.id.clone()),
        };
        groups.entry(key).or_default().push((i, v));
    }
    groups.into_iter().collect()
}

/// "nodegroup ng-a" / "subnet subnet-1": how a person names a group of nodes.
pub(crate) fn group_label(rt: ResourceType, id: &str) -> String {
    format!("{} {id}", rt.as_str())
}

/// One FAIL for the failing node instances of one nodegroup (or subnet): `shown` describes up to three of
/// them, the rest are counted; every instance id is evidence, so a new node changes no finding's identity.
pub(crate) fn instance_group_fail(
    meta: &RuleMeta,
    (rt, id): (ResourceType, &str),
    instance_ids: &[&str],
    shown: &[String],
    what: &str,
) -> RuleResult {
    let more = instance_ids.len().saturating_sub(shown.len());
    let more = if more > 0 {
        format!("; {more} more")
    } else {
        String::new()
    };
    let mut r = RuleResult::fail(
        meta,
        rt,
        id,
        format!(
            "{}: {} {what} ({}{more})",
            group_label(rt, id),
            instance_ids.len(),
            shown.join("; ")
        ),
    )
    .keyed("instances")
    .with("instances", instance_ids.join(","))
    .with("count", instance_ids.len().to_string());
    if rt == ResourceType::Nodegroup {
        r = r.with("nodegroup", id);
    }
    r
}

/// Runs every enabled rule over a snapshot and applies exemptions.
pub fn evaluate(snapshot: &ClusterSnapshot, settings: &Settings) -> Vec<RuleResult> {
    let cluster_exempt = exemptions(&snapshot.cluster.tags);
    let mut out = Vec::new();
    for rule in ALL
        .iter()
        .filter(|r| !settings.disabled_rules.contains(r.meta.id))
    {
        for result in (rule.check)(snapshot, settings) {
            out.push(apply_exemptions(
                snapshot,
                settings,
                &cluster_exempt,
                result,
            ));
        }
    }
    out
}

/// Tags first, then the central list. An EXEMPT result names its source, reason and owner, so every
/// message about it does; an expired list entry leaves the verdict standing and says that it expired.
fn apply_exemptions(
    snapshot: &ClusterSnapshot,
    settings: &Settings,
    cluster_exempt: &[String],
    r: RuleResult,
) -> RuleResult {
    use crate::exemptions::Verdict;
    if r.status == Status::Pass {
        return r;
    }
    if let Some(tag) = exempting_tag(snapshot, cluster_exempt, &r) {
        let message = format!(
            "{} — exempt by {tag} (no reason or owner recorded)",
            r.message
        );
        let mut r = r
            .with("exempted_by", tag)
            .with("exemption_reason", "not recorded (a tag carries none)")
            .with("exemption_owner", "not recorded (a tag carries none)");
        r.status = Status::Exempt;
        r.message = message;
        return r;
    }
    let list = &settings.exemptions;
    match list.verdict(
        &snapshot.account,
        &snapshot.cluster.name,
        &r.rule_id,
        &r.resource_id,
    ) {
        None => r,
        Some(Verdict::Active(e)) => {
            let message = format!(
                "{} — exempt until {} by exemption list entry {}: {} (owner {})",
                r.message, e.expires, e.name, e.reason, e.owner
            );
            let mut r = r
                .with("exempted_by", format!("exemption list entry {}", e.name))
                .with("exemption_reason", e.reason.clone())
                .with("exemption_owner", e.owner.clone())
                .with("exemption_expires", e.expires.to_string());
            r.status = Status::Exempt;
            r.message = message;
            r
        }
        Some(Verdict::Expired(e)) => {
            let message = format!(
                "{} — its exemption (list entry {}, owner {}) expired on {}",
                r.message, e.name, e.owner, e.expires
            );
            let mut r = r.with(
                "exemption_expired",
                format!(
                    "exemption list entry {} expired on {}: {} (owner {})",
                    e.name, e.expires, e.reason, e.owner
                ),
            );
            r.message = message;
            r
        }
    }
}

/// The `eks-warden:exempt` tag that exempts a result, named with the resource that carries it.
fn exempting_tag(
    snapshot: &ClusterSnapshot,
    cluster_exempt: &[String],
    r: &RuleResult,
) -> Option<String> {
    let listed = |ids: &[String]| ids.iter().any(|id| id == "*" || id == &r.rule_id);
    if listed(cluster_exempt) {
        return Some(format!(
            "tag {EXEMPT_TAG} on cluster {}",
            snapshot.cluster.name
        ));
    }
    if r.resource_type == ResourceType::SecurityGroup {
        let sg = snapshot
            .security_groups
            .get(&r.resource_id)
            .and_then(|f| f.known())?;
        if listed(&exemptions(&sg.tags)) {
            return Some(format!(
                "tag {EXEMPT_TAG} on security group {}",
                r.resource_id
            ));
        }
    }
    None
}

/// The rule ids an `eks-warden:exempt` tag lists. Tag values cannot hold commas everywhere, so
/// commas, spaces, `+` and `/` all separate ids.
pub fn exemptions(tags: &BTreeMap<String, String>) -> Vec<String> {
    tags.get(EXEMPT_TAG)
        .map(|v| {
            v.split(|c: char| c == ',' || c == '+' || c == '/' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn ids_are_unique_kebab_case_and_match_file_names() {
        let mut seen = BTreeSet::new();
        for r in ALL {
            assert!(seen.insert(r.meta.id), "duplicate id {}", r.meta.id);
            assert!(
                r.meta
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && r.meta.id.starts_with(|c: char| c.is_ascii_lowercase()),
                "{} is not kebab-case",
                r.meta.id
            );
            let file = format!(
                "{}/src/rules/{}.rs",
                env!("CARGO_MANIFEST_DIR"),
                r.meta.id.replace('-', "_")
            );
            assert!(std::path::Path::new(&file).exists(), "{file} missing");
        }
    }

    #[test]
    fn metadata_is_complete() {
        for r in ALL {
            let m = &r.meta;
            assert!(
                !m.title.is_empty() && m.title.len() <= 80,
                "{}: title",
                m.id
            );
            assert!(!m.description.is_empty(), "{}: description", m.id);
            assert!(!m.resolution.is_empty(), "{}: resolution", m.id);
            assert!(!m.references.is_empty(), "{}: references", m.id);
            assert!(
                m.references
                    .iter()
                    .any(|u| u.starts_with("https://docs.aws.amazon.com/eks/")),
                "{}: an EKS documentation page",
                m.id
            );
            assert_eq!(
                m.remediable,
                m.fix_permission.is_some(),
                "{}: a fix names its IAM action, and only a fix does",
                m.id
            );
            assert_eq!(
                m.remediable,
                m.fix
                    .is_some_and(|f| !f.changes.is_empty() && !f.never.is_empty()),
                "{}: a fix says what it changes and what it never does, and only a fix does",
                m.id
            );
            if let Some(p) = m.fix_permission {
                let (service, action) = p.split_once(':').unwrap_or_default();
                assert!(
                    matches!(service, "eks" | "ec2")
                        && action.starts_with(|c: char| c.is_ascii_uppercase()),
                    "{}: {p} is not an IAM action",
                    m.id
                );
            }
            assert!(
                m.references.iter().all(|u| u.starts_with("https://")
                    || u.starts_with("CIS ")
                    || u.starts_with("Security Hub ")),
                "{}: reference form",
                m.id
            );
        }
    }

    #[test]
    fn catalog_is_complete() {
        assert_eq!(ALL.len(), 16);
    }

    #[test]
    fn compliant_baseline_passes_every_rule() {
        let s = testkit::baseline();
        for r in evaluate(&s, &Settings::default()) {
            assert_eq!(r.status, Status::Pass, "{r:?}");
        }
    }

    #[test]
    fn disabled_rules_are_not_evaluated() {
        let mut s = testkit::baseline();
        s.cluster.endpoint = crate::model::Fact::unknown("AccessDenied", "");
        let settings = Settings {
            disabled_rules: [
                "endpoint-public-unrestricted".to_string(),
                "endpoint-private-disabled".to_string(),
            ]
            .into(),
            ..Settings::default()
        };
        let results = evaluate(&s, &settings);
        assert!(results.iter().all(|r| !r.rule_id.starts_with("endpoint-")));
        assert!(!results.is_empty());
    }

    #[test]
    fn cluster_tag_exempts_listed_rules_only() {
        let mut s = testkit::baseline();
        testkit::endpoint_mut(&mut s).private_access = false;
        testkit::endpoint_mut(&mut s).public_access_cidrs = vec!["0.0.0.0/0".into()];
        s.cluster
            .tags
            .insert(EXEMPT_TAG.into(), "endpoint-private-disabled".into());
        let results = evaluate(&s, &Settings::default());
        let status = |id: &str| results.iter().find(|r| r.rule_id == id).unwrap().status;
        assert_eq!(status("endpoint-private-disabled"), Status::Exempt);
        assert_eq!(status("endpoint-public-unrestricted"), Status::Fail);
    }

    #[test]
    fn wildcard_exempts_everything_that_is_not_a_pass() {
        let mut s = testkit::baseline();
        testkit::endpoint_mut(&mut s).private_access = false;
        s.cluster.tags.insert(EXEMPT_TAG.into(), "*".into());
        let results = evaluate(&s, &Settings::default());
        assert!(results
            .iter()
            .all(|r| matches!(r.status, Status::Pass | Status::Exempt)));
        assert!(results.iter().any(|r| r.status == Status::Exempt));
    }

    #[test]
    fn security_group_tag_exempts_only_that_group() {
        let mut s = testkit::baseline();
        testkit::open_ingress(&mut s, testkit::NODE_SG, "0.0.0.0/0", "tcp", 22, 22);
        testkit::open_ingress(&mut s, testkit::CLUSTER_SG, "0.0.0.0/0", "tcp", 443, 443);
        testkit::sg_mut(&mut s, testkit::NODE_SG)
            .tags
            .insert(EXEMPT_TAG.into(), "sg-open-ingress nodes-public-ip".into());
        let results = evaluate(&s, &Settings::default());
        let for_sg = |sg: &str| {
            results
                .iter()
                .filter(|r| r.rule_id == "sg-open-ingress" && r.resource_id == sg)
                .map(|r| r.status)
                .collect::<Vec<_>>()
        };
        assert_eq!(for_sg(testkit::NODE_SG), vec![Status::Exempt]);
        assert_eq!(for_sg(testkit::CLUSTER_SG), vec![Status::Fail]);
    }

    /// Guards: the list exempts only in scope and until its last day; the clock comes from the settings.
    #[test]
    fn list_entries_exempt_until_they_expire_and_name_their_source() {
        use crate::exemptions::{Day, Exemptions};
        let mut s = testkit::baseline();
        testkit::open_ingress(&mut s, testkit::NODE_SG, "0.0.0.0/0", "tcp", 22, 22);
        testkit::open_ingress(&mut s, testkit::CLUSTER_SG, "0.0.0.0/0", "tcp", 443, 443);
        let text = format!(
            r#"[{{"id": "bastion", "account": "111122223333", "cluster": "prod", "rule": "sg-open-ingress",
                "resource": "{}", "reason": "bastion", "owner": "net-team", "expires": "2026-06-30"}}]"#,
            testkit::NODE_SG
        );
        let on = |month: u32, day: u32| Settings {
            exemptions: Exemptions::parse(
                "list",
                &text,
                Day {
                    year: 2026,
                    month,
                    day,
                },
            )
            .unwrap(),
            ..Settings::default()
        };
        let sg = |results: &[RuleResult], id: &str| {
            results
                .iter()
                .find(|r| r.rule_id == "sg-open-ingress" && r.resource_id == id)
                .cloned()
                .unwrap()
        };
        let results = evaluate(&s, &on(6, 30));
        let node = sg(&results, testkit::NODE_SG);
        assert_eq!(node.status, Status::Exempt);
        assert_eq!(node.evidence["exempted_by"], "exemption list entry bastion");
        assert!(
            node.message.contains("bastion (owner net-team)"),
            "{}",
            node.message
        );
        assert_eq!(sg(&results, testkit::CLUSTER_SG).status, Status::Fail);

        let results = evaluate(&s, &on(7, 1));
        let node = sg(&results, testkit::NODE_SG);
        assert_eq!(node.status, Status::Fail, "the day after `expires`");
        assert!(node.evidence["exemption_expired"].contains("expired on 2026-06-30"));
    }

    #[test]
    fn a_tag_exemption_names_the_tag_and_its_resource() {
        let mut s = testkit::baseline();
        testkit::endpoint_mut(&mut s).private_access = false;
        s.cluster
            .tags
            .insert(EXEMPT_TAG.into(), "endpoint-private-disabled".into());
        let r = evaluate(&s, &Settings::default())
            .into_iter()
            .find(|r| r.rule_id == "endpoint-private-disabled")
            .unwrap();
        assert_eq!(
            r.evidence["exempted_by"],
            "tag eks-warden:exempt on cluster prod"
        );
        assert!(r.evidence.contains_key("exemption_reason"));
        assert!(r.evidence.contains_key("exemption_owner"));
    }

    #[test]
    fn exemption_tag_separators() {
        let tags = BTreeMap::from([(EXEMPT_TAG.to_string(), "a,b c+d/e".to_string())]);
        assert_eq!(exemptions(&tags), vec!["a", "b", "c", "d", "e"]);
    }
}
