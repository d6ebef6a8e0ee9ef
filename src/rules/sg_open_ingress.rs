use super::{
    FixText,
    ResourceType::{Cluster, SecurityGroup},
    Rule, RuleMeta, RuleResult, Severity,
};
use crate::model::Part;
use crate::model::{ClusterSnapshot, Fact, Unreadable};
use crate::settings::Settings;

pub const RULE: Rule = Rule {
    meta: RuleMeta {
        id: "sg-open-ingress",
        reads: &[Part::SecurityGroups, Part::Nodegroups, Part::Instances],
        severity: Severity::High,
        title: "Cluster or node security group allows ingress from the whole internet",
        description: "An ingress rule from 0.0.0.0/0 or ::/0 on the cluster security group, an additional \
            control-plane security group, or a node security group (nodegroup remote-access group, node \
            instances' groups). CRITICAL when the rule admits all ports.",
        resolution: "Revoke the world-open rule (aws ec2 revoke-security-group-ingress --group-id <sg> \
            --security-group-rule-ids <sgr>) and, if access is needed, add one from the specific CIDRs or \
            security groups that need it. Expose services through load balancers instead of node ports; \
            tag the group eks-warden:exempt=sg-open-ingress if the exposure is intended.",
        references: &[
            "https://docs.aws.amazon.com/eks/latest/userguide/sec-group-reqs.html",
            "https://docs.aws.amazon.com/eks/latest/userguide/infrastructure-security.html",
            "Security Hub EC2.18",
            "Security Hub EC2.19",
        ],
        remediable: true,
        fix_permission: Some("ec2:RevokeSecurityGroupIngress"),
        fix: Some(FixText {
            changes: "`RevokeSecurityGroupIngress` of exactly the world-open rule, by its rule id; the revoked rule is reported whole so a person can restore it.",
            never: "Touch a group that a network interface outside the cluster or another cluster also uses (`EKS_WARDEN_FIX_SHARED=true` allows shared groups, but never one a user of it is exempt from); revoke the only 443 path to a private-only endpoint; revoke a rule whose id it could not read; add or widen any rule.",
        }),
    },
    check: evaluate,
};

fn evaluate(s: &ClusterSnapshot, _cfg: &Settings) -> Vec<RuleResult> {
    let m = &RULE.meta;
    let name = &s.cluster.name;
    let (groups, unlisted) = groups_in_scope(s);
    let mut out: Vec<RuleResult> = groups.iter().flat_map(|id| judge(s, id)).collect();
    if let Some(why) = unlisted {
        let mut r = RuleResult::unknown(m, Cluster, name, "nodegroups or node instances", why);
        r.message = format!(
            "node security groups of cluster {name} could not be listed: {}",
            r.message
        );
        out.push(r);
    }
    if out.is_empty() {
        out.push(RuleResult::pass(
            m,
            Cluster,
            name,
            format!("cluster {name} has no security groups to judge"),
        ));
    }
    out
}

/// The groups to judge, each once, in catalog order; and why node groups could not all be listed.
fn groups_in_scope(s: &ClusterSnapshot) -> (Vec<&str>, Option<&Unreadable>) {
    let c = &s.cluster;
    let mut wanted: Vec<&str> = Vec::new();
    let mut unlisted = None;
    wanted.extend(c.cluster_security_group_id.as_deref());
    wanted.extend(c.security_group_ids.iter().map(String::as_str));
    match s.nodegroups.as_ref() {
        Ok(ngs) => wanted.extend(
            ngs.iter()
                .filter_map(|ng| ng.remote_access_security_group.as_deref()),
        ),
        Err(why) => unlisted = Some(why),
    }
    match s.instances.as_ref() {
        Ok(instances) => wanted.extend(
            instances
                .iter()
                .flat_map(|i| i.security_group_ids.iter().map(String::as_str)),
        ),
        Err(why) => unlisted = unlisted.or(Some(why)),
    }
    let mut ids: Vec<&str> = Vec::new();
    for id in wanted {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    (ids, unlisted)
}

fn judge(s: &ClusterSnapshot, id: &str) -> Vec<RuleResult> {
    let m = &RULE.meta;
    let sg = match s.security_groups.get(id) {
        Some(Fact::Known(sg)) => sg,
        Some(Fact::Unknown(why)) => {
            return vec![RuleResult::unknown(
                m,
                SecurityGroup,
                id,
                &format!("security group {id}"),
                why,
            )]
        }
        None => {
            let why = Unreadable::new("NotReturned", "not in the snapshot");
            return vec![RuleResult::unknown(
                m,
                SecurityGroup,
                id,
                &format!("security group {id}"),
                &why,
            )];
        }
    };
    let mut out = Vec::new();
    for rule in &sg.ingress {
        let Some(cidr) = rule.world_source() else {
            continue;
        };
        let ports = rule.ports();
        let severity = if rule.all_ports() {
            Severity::Critical
        } else {
            Severity::High
        };
        let mut r = RuleResult::fail(
            m,
            SecurityGroup,
            id,
            format!(
                "security group {} ({id}) allows ingress on {ports} from {cidr}",
                sg.name
            ),
        )
        .with_severity(severity)
        // One finding per open permission; its identity survives the rule's id changing on re-add.
        .keyed(format!("{} {ports} {cidr}", rule.protocol))
        .with("cidr", cidr)
        .with("ports", ports)
        .with("protocol", rule.protocol.clone());
        if let Some(rule_id) = &rule.rule_id {
            r = r.with("rule_id", rule_id.clone());
        }
        out.push(r);
    }
    if out.is_empty() {
        out.push(RuleResult::pass(
            m,
            SecurityGroup,
            id,
            format!(
                "security group {} ({id}) has no ingress from 0.0.0.0/0 or ::/0",
                sg.name
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::IngressRule;
    use crate::rules::testkit::{
        self, baseline, instances_mut, nodegroups_mut, open_ingress, sg_mut, CLUSTER_SG, NODE_SG,
    };
    use crate::rules::{ResourceType, Status};

    type Mutate = fn(&mut ClusterSnapshot);
    type Row = (ResourceType, String, Status, Severity);

    fn verdicts(s: &ClusterSnapshot) -> Vec<Row> {
        evaluate(s, &Settings::default())
            .into_iter()
            .map(|r| (r.resource_type, r.resource_id, r.status, r.severity))
            .collect()
    }

    fn row(rt: ResourceType, id: &str, st: Status, sev: Severity) -> Row {
        (rt, id.to_string(), st, sev)
    }

    #[test]
    fn table() {
        use Severity::{Critical, High};
        use Status::*;
        let cases: &[(&str, Mutate, Vec<Row>)] = &[
            (
                "baseline",
                |_| {},
                vec![
                    row(SecurityGroup, CLUSTER_SG, Pass, High),
                    row(SecurityGroup, NODE_SG, Pass, High),
                ],
            ),
            (
                "ssh from anywhere",
                |s| open_ingress(s, NODE_SG, "0.0.0.0/0", "tcp", 22, 22),
                vec![
                    row(SecurityGroup, CLUSTER_SG, Pass, High),
                    row(SecurityGroup, NODE_SG, Fail, High),
                ],
            ),
            (
                "ipv6 world",
                |s| open_ingress(s, NODE_SG, "::/0", "tcp", 443, 443),
                vec![
                    row(SecurityGroup, CLUSTER_SG, Pass, High),
                    row(SecurityGroup, NODE_SG, Fail, High),
                ],
            ),
            (
                "all tcp ports is critical",
                |s| open_ingress(s, CLUSTER_SG, "0.0.0.0/0", "tcp", 0, 65535),
                vec![
                    row(SecurityGroup, CLUSTER_SG, Fail, Critical),
                    row(SecurityGroup, NODE_SG, Pass, High),
                ],
            ),
            (
                "all protocols is critical",
                |s| open_ingress(s, CLUSTER_SG, "0.0.0.0/0", "-1", -1, -1),
                vec![
                    row(SecurityGroup, CLUSTER_SG, Fail, Critical),
                    row(SecurityGroup, NODE_SG, Pass, High),
                ],
            ),
            (
                "one failure per open rule",
                |s| {
                    open_ingress(s, NODE_SG, "0.0.0.0/0", "tcp", 22, 22);
                    open_ingress(s, NODE_SG, "10.0.0.0/8", "tcp", 80, 80);
                    open_ingress(s, NODE_SG, "::/0", "-1", -1, -1);
                },
                vec![
                    row(SecurityGroup, CLUSTER_SG, Pass, High),
                    row(SecurityGroup, NODE_SG, Fail, High),
                    row(SecurityGroup, NODE_SG, Fail, Critical),
                ],
            ),
            (
                "a narrower cidr passes",
                |s| open_ingress(s, NODE_SG, "0.0.0.0/1", "tcp", 22, 22),
                vec![
                    row(SecurityGroup, CLUSTER_SG, Pass, High),
                    row(SecurityGroup, NODE_SG, Pass, High),
                ],
            ),
            (
                "group unreadable",
                |s| {
                    s.security_groups.insert(NODE_SG.into(), testkit::denied());
                },
                vec![
                    row(SecurityGroup, CLUSTER_SG, Pass, High),
                    row(SecurityGroup, NODE_SG, Unknown, High),
                ],
            ),
            (
                "group missing",
                |s| {
                    s.security_groups.remove(CLUSTER_SG);
                },
                vec![
                    row(SecurityGroup, CLUSTER_SG, Unknown, High),
                    row(SecurityGroup, NODE_SG, Pass, High),
                ],
            ),
            (
                "instances unreadable",
                |s| s.instances = testkit::denied(),
                vec![
                    row(SecurityGroup, CLUSTER_SG, Pass, High),
                    row(Cluster, "prod", Unknown, High),
                ],
            ),
            (
                "nodegroups unreadable",
                |s| s.nodegroups = testkit::denied(),
                vec![
                    row(SecurityGroup, CLUSTER_SG, Pass, High),
                    row(SecurityGroup, NODE_SG, Pass, High),
                    row(Cluster, "prod", Unknown, High),
                ],
            ),
        ];
        for (what, mutate, want) in cases {
            let mut s = baseline();
            mutate(&mut s);
            assert_eq!(&verdicts(&s), want, "{what}");
        }
    }

    #[test]
    fn scope_order_and_dedup() {
        let mut s = baseline();
        let extra = "sg-0extra0000000003";
        let remote = "sg-0remote000000004";
        let stray = "sg-0stray0000000005";
        s.cluster.security_group_ids = vec![extra.into(), CLUSTER_SG.into()];
        nodegroups_mut(&mut s)[0].remote_access_security_group = Some(remote.into());
        instances_mut(&mut s)[0].security_group_ids =
            vec![NODE_SG.into(), remote.into(), extra.into()];
        for id in [extra, remote] {
            s.security_groups.insert(
                id.into(),
                Fact::Known(crate::model::SecurityGroup {
                    id: id.into(),
                    name: id.into(),
                    vpc_id: None,
                    ingress: vec![],
                    tags: Default::default(),
                }),
            );
        }
        // A group in the snapshot but attached to nothing in scope is not judged.
        s.security_groups.insert(stray.into(), testkit::denied());
        let ids: Vec<String> = evaluate(&s, &Settings::default())
            .into_iter()
            .map(|r| r.resource_id)
            .collect();
        assert_eq!(ids, vec![CLUSTER_SG, extra, remote, NODE_SG]);
    }

    #[test]
    fn failure_names_group_ports_cidr_and_rule_id() {
        let mut s = baseline();
        open_ingress(&mut s, NODE_SG, "0.0.0.0/0", "tcp", 30000, 32767);
        let r = evaluate(&s, &Settings::default()).remove(1);
        assert_eq!(r.status, Status::Fail);
        assert_eq!(r.evidence["rule_id"], "sgr-test-1");
        assert_eq!(r.evidence["cidr"], "0.0.0.0/0");
        assert_eq!(r.evidence["ports"], "tcp/30000-32767");
        assert_eq!(r.evidence["protocol"], "tcp");
        for part in ["prod-nodes", NODE_SG, "tcp/30000-32767", "0.0.0.0/0"] {
            assert!(r.message.contains(part), "{part}: {}", r.message);
        }
    }

    #[test]
    fn rule_without_id_has_no_rule_id_evidence() {
        let mut s = baseline();
        sg_mut(&mut s, NODE_SG).ingress.push(IngressRule {
            protocol: "tcp".into(),
            from_port: Some(22),
            to_port: Some(22),
            cidr_ipv4: Some("0.0.0.0/0".into()),
            ..IngressRule::default()
        });
        let r = evaluate(&s, &Settings::default()).remove(1);
        assert_eq!(r.status, Status::Fail);
        assert!(!r.evidence.contains_key("rule_id"));
    }

    #[test]
    fn unknown_cluster_result_says_node_groups_could_not_be_listed() {
        let mut s = baseline();
        s.instances = testkit::denied();
        let r = evaluate(&s, &Settings::default()).pop().unwrap();
        assert!(
            r.message.contains("could not be listed")
                && r.message.contains("AccessDeniedException"),
            "{}",
            r.message
        );
    }
}
