use super::{
    FixText,
    ResourceType::{Cluster, Subnet},
    Rule, RuleMeta, RuleResult, Severity,
};
use crate::model::Part;
use crate::model::{ClusterSnapshot, Fact, Unreadable};
use crate::settings::Settings;

pub const RULE: Rule = Rule {
    meta: RuleMeta {
        id: "nodes-public-ip",
        reads: &[Part::Subnets, Part::Nodegroups, Part::Instances],
        severity: Severity::High,
        title: "Nodes have public IPv4 addresses",
        description: "A node instance that is not stopped has a public IPv4 address, or a managed nodegroup \
            subnet has `MapPublicIpOnLaunch` on so every node launched there gets one; such nodes are \
            directly addressable from the internet and exposed by any permissive security-group rule.",
        resolution: "Turn off public IP auto-assignment on the nodegroup subnets (aws ec2 \
            modify-subnet-attribute --subnet-id <subnet> --no-map-public-ip-on-launch) and make sure no \
            launch template sets AssociatePublicIpAddress=true; running nodes keep their address until \
            replaced, so roll the nodegroup (or cordon, drain and terminate the instances) afterwards.",
        references: &[
            "https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html",
            "https://docs.aws.amazon.com/eks/latest/userguide/infrastructure-security.html",
            "CIS EKS 5.4.3",
            "Security Hub EC2.9",
            "Security Hub EC2.15",
        ],
        remediable: true,
        fix_permission: Some("ec2:ModifySubnetAttribute"),
        fix: Some(FixText {
            changes: "`ModifySubnetAttribute` `MapPublicIpOnLaunch=false` on a nodegroup subnet.",
            never: "Change a subnet whose default route goes to an internet gateway (nodes there have no other way out: move the nodegroup to private subnets); touch running nodes, which keep their addresses until replaced.",
        }),
    },
    check: evaluate,
};

fn evaluate(s: &ClusterSnapshot, _cfg: &Settings) -> Vec<RuleResult> {
    let m = &RULE.meta;
    let name = &s.cluster.name;
    let mut out = Vec::new();
    let mut live_instances = 0;
    match s.instances.as_ref() {
        Ok(instances) => {
            let mut public = Vec::new();
            for i in instances {
                if matches!(i.state.as_str(), "stopped" | "terminated") {
                    continue;
                }
                live_instances += 1;
                if let Some(ip) = &i.public_ip {
                    public.push((i, ip.as_str()));
                }
            }
            out.extend(
                super::by_node_group(public)
                    .into_iter()
                    .map(|((rt, id), members)| judge_nodes(rt, &id, &members)),
            );
        }
        Err(why) => out.push(RuleResult::unknown(m, Cluster, name, "node instances", why)),
    }
    match s.nodegroups.as_ref() {
        Ok(nodegroups) => {
            // Each subnet once, in order of first mention, with the nodegroups that use it.
            let mut subnets: Vec<(&str, Vec<&str>)> = Vec::new();
            for ng in nodegroups {
                for id in &ng.subnet_ids {
                    match subnets.iter_mut().find(|(s, _)| s == id) {
                        Some((_, ngs)) => ngs.push(&ng.name),
                        None => subnets.push((id, vec![&ng.name])),
                    }
                }
            }
            out.extend(
                subnets
                    .iter()
                    .map(|(id, ngs)| judge_subnet(s, id, &ngs.join(","))),
            );
        }
        Err(why) => out.push(RuleResult::unknown(
            m,
            Cluster,
            name,
            "managed nodegroups",
            why,
        )),
    }
    if out.is_empty() {
        out.push(RuleResult::pass(
            m,
            Cluster,
            name,
            format!(
                "cluster {name}: none of its {live_instances} running node instances has a public IPv4 \
                 address, and it has no nodegroup subnets"
            ),
        ));
    }
    out
}

/// One result for the public-addressed nodes of one nodegroup (or subnet), with the instances as evidence.
fn judge_nodes(
    rt: super::ResourceType,
    id: &str,
    members: &[(&crate::model::Instance, &str)],
) -> RuleResult {
    let ids: Vec<&str> = members.iter().map(|(i, _)| i.id.as_str()).collect();
    let shown: Vec<String> = members
        .iter()
        .take(3)
        .map(|(i, ip)| format!("{} {ip}", i.id))
        .collect();
    super::instance_group_fail(
        &RULE.meta,
        (rt, id),
        &ids,
        &shown,
        "node instance(s) have public IPv4 addresses",
    )
}

fn judge_subnet(s: &ClusterSnapshot, id: &str, nodegroups: &str) -> RuleResult {
    let m = &RULE.meta;
    let subnet = match s.subnets.get(id) {
        Some(Fact::Known(sn)) => sn,
        Some(Fact::Unknown(why)) => {
            return RuleResult::unknown(m, Subnet, id, &format!("nodegroup subnet {id}"), why)
                .with("nodegroups", nodegroups)
        }
        None => {
            let why = Unreadable::new("NotReturned", "not in the snapshot");
            return RuleResult::unknown(m, Subnet, id, &format!("nodegroup subnet {id}"), &why)
                .with("nodegroups", nodegroups);
        }
    };
    let r = if subnet.map_public_ip_on_launch {
        RuleResult::fail(
            m,
            Subnet,
            id,
            format!(
                "nodegroup subnet {id} (nodegroups {nodegroups}) has MapPublicIpOnLaunch=true: nodes launched \
                 there get a public IPv4 address"
            ),
        )
    } else {
        RuleResult::pass(
            m,
            Subnet,
            id,
            format!("nodegroup subnet {id} does not assign public IPv4 addresses on launch"),
        )
    };
    r.with(
        "map_public_ip_on_launch",
        subnet.map_public_ip_on_launch.to_string(),
    )
    .with("nodegroups", nodegroups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::{
        self, baseline, instances_mut, nodegroups_mut, subnet_mut, SUBNET_A, SUBNET_B,
    };
    use crate::rules::{ResourceType, ResourceType::Nodegroup, Status};

    type Mutate = fn(&mut ClusterSnapshot);
    type Row = (ResourceType, String, Status);

    fn verdicts(s: &ClusterSnapshot) -> Vec<Row> {
        evaluate(s, &Settings::default())
            .into_iter()
            .map(|r| (r.resource_type, r.resource_id, r.status))
            .collect()
    }

    fn row(rt: ResourceType, id: &str, st: Status) -> Row {
        (rt, id.to_string(), st)
    }

    fn public_ip(s: &mut ClusterSnapshot) {
        instances_mut(s)[0].public_ip = Some("198.51.100.7".into());
    }

    #[test]
    fn table() {
        use Status::*;
        let cases: &[(&str, Mutate, Vec<Row>)] = &[
            (
                "baseline",
                |_| {},
                vec![row(Subnet, SUBNET_A, Pass), row(Subnet, SUBNET_B, Pass)],
            ),
            (
                "running instance with public ip",
                public_ip,
                vec![
                    row(Nodegroup, "general", Fail),
                    row(Subnet, SUBNET_A, Pass),
                    row(Subnet, SUBNET_B, Pass),
                ],
            ),
            (
                "stopped instance with public ip",
                |s| {
                    public_ip(s);
                    instances_mut(s)[0].state = "stopped".into();
                },
                vec![row(Subnet, SUBNET_A, Pass), row(Subnet, SUBNET_B, Pass)],
            ),
            (
                "subnet maps public ip",
                |s| subnet_mut(s, SUBNET_B).map_public_ip_on_launch = true,
                vec![row(Subnet, SUBNET_A, Pass), row(Subnet, SUBNET_B, Fail)],
            ),
            (
                "subnet unreadable",
                |s| {
                    s.subnets.insert(SUBNET_A.into(), testkit::denied());
                },
                vec![row(Subnet, SUBNET_A, Unknown), row(Subnet, SUBNET_B, Pass)],
            ),
            (
                "subnet missing",
                |s| {
                    s.subnets.remove(SUBNET_B);
                },
                vec![row(Subnet, SUBNET_A, Pass), row(Subnet, SUBNET_B, Unknown)],
            ),
            (
                "instances unreadable still judges subnets",
                |s| s.instances = testkit::denied(),
                vec![
                    row(Cluster, "prod", Unknown),
                    row(Subnet, SUBNET_A, Pass),
                    row(Subnet, SUBNET_B, Pass),
                ],
            ),
            (
                "nodegroups unreadable still judges instances",
                |s| {
                    public_ip(s);
                    s.nodegroups = testkit::denied();
                },
                vec![
                    row(Nodegroup, "general", Fail),
                    row(Cluster, "prod", Unknown),
                ],
            ),
            (
                "no nodegroups, private instances",
                |s| nodegroups_mut(s).clear(),
                vec![row(Cluster, "prod", Pass)],
            ),
        ];
        for (what, mutate, want) in cases {
            let mut s = baseline();
            mutate(&mut s);
            assert_eq!(&verdicts(&s), want, "{what}");
        }
    }

    #[test]
    fn shared_subnets_are_judged_once_and_name_their_nodegroups() {
        let mut s = baseline();
        let mut second = nodegroups_mut(&mut s)[0].clone();
        second.name = "spot".into();
        second.subnet_ids = vec![SUBNET_B.into()];
        nodegroups_mut(&mut s).push(second);
        subnet_mut(&mut s, SUBNET_B).map_public_ip_on_launch = true;
        let r = evaluate(&s, &Settings::default());
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].status, Status::Fail);
        assert_eq!(r[1].evidence["nodegroups"], "general,spot");
        assert!(
            r[1].message.contains(SUBNET_B) && r[1].message.contains("MapPublicIpOnLaunch"),
            "{}",
            r[1].message
        );
    }

    #[test]
    fn node_failure_names_nodegroup_instances_and_addresses() {
        let mut s = baseline();
        public_ip(&mut s);
        let r = evaluate(&s, &Settings::default()).remove(0);
        assert_eq!(r.evidence["instances"], "i-0000000000000000a");
        assert_eq!(r.evidence["nodegroup"], "general");
        assert_eq!(r.discriminator.as_deref(), Some("instances"));
        assert!(
            r.message.contains("198.51.100.7") && r.message.contains("i-0000000000000000a"),
            "{}",
            r.message
        );
    }

    #[test]
    fn unknown_says_why() {
        let mut s = baseline();
        s.instances = testkit::denied();
        let r = evaluate(&s, &Settings::default()).remove(0);
        assert!(
            r.message.contains("node instances") && r.message.contains("AccessDeniedException"),
            "{}",
            r.message
        );
    }
}
