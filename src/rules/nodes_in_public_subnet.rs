use super::{
    ResourceType::{Cluster, Subnet},
    Rule, RuleMeta, RuleResult, Severity,
};
use crate::model::Part;
use crate::model::{ClusterSnapshot, Fact, Unreadable};
use crate::settings::Settings;

pub const RULE: Rule = Rule {
    meta: RuleMeta {
        id: "nodes-in-public-subnet",
        reads: &[Part::Subnets, Part::Nodegroups, Part::Instances],
        severity: Severity::High,
        title: "Nodes run in a subnet with a default route to an internet gateway",
        description: "A subnet of a managed nodegroup or of a node instance routes 0.0.0.0/0 or ::/0 to an \
            internet gateway (through its explicitly associated route table, else the VPC's main route \
            table), so nodes there are one public IP or one security-group rule away from the internet.",
        resolution: "Run nodes in private subnets whose default route goes to a NAT gateway. Managed \
            nodegroup subnets cannot be changed: create a replacement nodegroup in private subnets (aws eks \
            create-nodegroup --subnets ...) and delete the old one; for self-managed nodes change the Auto \
            Scaling group's subnets. Repointing the route (aws ec2 replace-route --route-table-id <rtb> \
            --destination-cidr-block 0.0.0.0/0 --nat-gateway-id <nat>) affects every subnet using that table.",
        references: &[
            "https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html",
            "https://docs.aws.amazon.com/eks/latest/userguide/creating-a-vpc.html",
            "https://docs.aws.amazon.com/eks/latest/userguide/infrastructure-security.html",
            "CIS EKS 5.4.3",
        ],
        remediable: false,
        fix_permission: None,
        fix: None,
    },
    check: evaluate,
};

fn evaluate(s: &ClusterSnapshot, _cfg: &Settings) -> Vec<RuleResult> {
    let m = &RULE.meta;
    let name = &s.cluster.name;
    let ids = match s.node_subnet_ids() {
        Ok(ids) => ids,
        Err(why) => {
            return vec![RuleResult::unknown(
                m,
                Cluster,
                name,
                "the node subnets (nodegroups or node instances)",
                why,
            )]
        }
    };
    if ids.is_empty() {
        return vec![RuleResult::pass(
            m,
            Cluster,
            name,
            format!("cluster {name} has no nodes: no nodegroup or node instance subnet"),
        )];
    }
    ids.iter().map(|id| judge(s, id)).collect()
}

fn judge(s: &ClusterSnapshot, id: &str) -> RuleResult {
    let m = &RULE.meta;
    let subnet = match s.subnets.get(id) {
        Some(Fact::Known(sn)) => sn,
        Some(Fact::Unknown(why)) => {
            return RuleResult::unknown(m, Subnet, id, &format!("node subnet {id}"), why)
        }
        None => {
            let why = Unreadable::new("NotReturned", "not in the snapshot");
            return RuleResult::unknown(m, Subnet, id, &format!("node subnet {id}"), &why);
        }
    };
    let rt = match subnet.route_table.as_ref() {
        Ok(rt) => rt,
        Err(why) => {
            return RuleResult::unknown(
                m,
                Subnet,
                id,
                &format!("the route table of node subnet {id}"),
                why,
            )
        }
    };
    let association = if rt.explicit { "explicit" } else { "main" };
    match rt.default_internet_route() {
        Some(route) => {
            let which = if rt.explicit {
                format!("route table {}", rt.id)
            } else {
                format!("the VPC's main route table {}", rt.id)
            };
            RuleResult::fail(
                m,
                Subnet,
                id,
                format!(
                    "node subnet {id} routes {} to internet gateway {} through {which}",
                    route.destination, route.target
                ),
            )
            .with("route_table", rt.id.clone())
            .with("association", association)
            .with("destination", route.destination.clone())
            .with("target", route.target.clone())
        }
        None => RuleResult::pass(
            m,
            Subnet,
            id,
            format!(
                "node subnet {id} has no default route to an internet gateway (route table {})",
                rt.id
            ),
        )
        .with("route_table", rt.id.clone())
        .with("association", association),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Instance;
    use crate::rules::testkit::{
        self, baseline, instances_mut, make_public, nodegroups_mut, subnet_mut, SUBNET_A, SUBNET_B,
    };
    use crate::rules::Status;

    fn statuses(s: &ClusterSnapshot) -> Vec<(String, Status)> {
        evaluate(s, &Settings::default())
            .into_iter()
            .map(|r| (r.resource_id, r.status))
            .collect()
    }

    #[test]
    fn verdicts_per_subnet() {
        type Mutate = fn(&mut ClusterSnapshot);
        let cases: &[(&str, Mutate, Status)] = &[
            ("private", |_| {}, Status::Pass),
            ("public", |s| make_public(s, SUBNET_B), Status::Fail),
            (
                "subnet denied",
                |s| {
                    s.subnets.insert(SUBNET_B.into(), testkit::denied());
                },
                Status::Unknown,
            ),
            (
                "route table denied",
                |s| subnet_mut(s, SUBNET_B).route_table = testkit::denied(),
                Status::Unknown,
            ),
            (
                "missing",
                |s| {
                    s.subnets.remove(SUBNET_B);
                },
                Status::Unknown,
            ),
        ];
        for (what, mutate, want) in cases {
            let mut s = baseline();
            mutate(&mut s);
            let got = statuses(&s);
            assert_eq!(
                got,
                vec![
                    (SUBNET_A.to_string(), Status::Pass),
                    (SUBNET_B.to_string(), *want)
                ],
                "{what}"
            );
        }
    }

    #[test]
    fn failure_evidence_names_the_route_and_main_table() {
        let mut s = baseline();
        make_public(&mut s, SUBNET_A);
        if let Fact::Known(rt) = &mut subnet_mut(&mut s, SUBNET_A).route_table {
            rt.explicit = false;
        }
        let r = evaluate(&s, &Settings::default()).remove(0);
        assert_eq!(r.status, Status::Fail);
        assert_eq!(r.resource_type, Subnet);
        assert_eq!(r.evidence["route_table"], "rtb-0public0000000001");
        assert_eq!(r.evidence["destination"], "0.0.0.0/0");
        assert_eq!(r.evidence["target"], "igw-00000000000000001");
        assert_eq!(r.evidence["association"], "main");
        assert!(r.message.contains("main route table"), "{}", r.message);
    }

    #[test]
    fn a_non_default_internet_route_is_not_a_failure() {
        let mut s = baseline();
        if let Fact::Known(rt) = &mut subnet_mut(&mut s, SUBNET_A).route_table {
            rt.routes.push(crate::model::Route {
                destination: "198.51.100.0/24".into(),
                target: "igw-00000000000000001".into(),
                state: "active".into(),
            });
        }
        assert!(statuses(&s).iter().all(|(_, st)| *st == Status::Pass));
    }

    #[test]
    fn instance_subnets_count_as_node_subnets() {
        let mut s = baseline();
        nodegroups_mut(&mut s).clear();
        make_public(&mut s, SUBNET_B);
        instances_mut(&mut s).push(Instance {
            id: "i-0000000000000000b".into(),
            state: "running".into(),
            subnet_id: Some(SUBNET_B.into()),
            public_ip: None,
            security_group_ids: vec![],
            nodegroup: None,
            metadata_options: Fact::Known(testkit::imdsv2_only()),
        });
        assert_eq!(
            statuses(&s),
            vec![
                (SUBNET_A.to_string(), Status::Pass),
                (SUBNET_B.to_string(), Status::Fail)
            ]
        );
    }

    #[test]
    fn unreadable_nodegroups_is_one_cluster_unknown() {
        let mut s = baseline();
        s.nodegroups = testkit::denied();
        let r = evaluate(&s, &Settings::default());
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].resource_type, r[0].status),
            (Cluster, Status::Unknown)
        );
        assert!(
            r[0].message.contains("AccessDeniedException"),
            "{}",
            r[0].message
        );
    }

    #[test]
    fn no_nodes_passes() {
        let mut s = baseline();
        nodegroups_mut(&mut s).clear();
        instances_mut(&mut s).clear();
        let r = evaluate(&s, &Settings::default());
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].resource_type, r[0].status), (Cluster, Status::Pass));
    }
}
