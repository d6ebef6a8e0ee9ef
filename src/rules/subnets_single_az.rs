use super::{ResourceType::Cluster, Rule, RuleMeta, RuleResult, Severity};
use crate::model::Part;
use crate::model::{ClusterSnapshot, Fact, Unreadable};
use crate::settings::Settings;
use std::collections::BTreeSet;

pub const RULE: Rule = Rule {
    meta: RuleMeta {
        id: "subnets-single-az",
        reads: &[Part::Subnets],
        severity: Severity::Medium,
        title: "Cluster subnets span fewer than two Availability Zones",
        description: "The subnets given to the cluster (`resourcesVpcConfig.subnetIds`) lie in fewer than two \
            Availability Zones, so the control-plane network interfaces, and nodes and load balancers placed \
            in those subnets, all fail together with one zone.",
        resolution: "Add subnets in at least one more Availability Zone (aws eks update-cluster-config --name \
            <cluster> --resources-vpc-config subnetIds=<subnet-a>,<subnet-b>); EKS only accepts subnets in \
            the zones given at creation, so a cluster created in one zone must be recreated.",
        references: &[
            "https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html",
            "https://docs.aws.amazon.com/eks/latest/userguide/creating-a-vpc.html",
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
    let mut azs = BTreeSet::new();
    let mut unknown: Vec<(&str, Unreadable)> = Vec::new();
    for id in &s.cluster.subnet_ids {
        match s.subnets.get(id) {
            Some(Fact::Known(sn)) => {
                azs.insert(sn.availability_zone.as_str());
            }
            Some(Fact::Unknown(why)) => unknown.push((id, why.clone())),
            None => unknown.push((id, Unreadable::new("NotReturned", "not in the snapshot"))),
        }
    }
    let zones = azs.iter().copied().collect::<Vec<_>>().join(",");
    if azs.len() >= 2 {
        return vec![RuleResult::pass(
            m,
            Cluster,
            name,
            format!(
                "cluster {name} subnets span {} Availability Zones ({zones})",
                azs.len()
            ),
        )
        .with("availability_zones", zones)];
    }
    if let Some((_, why)) = unknown.first() {
        let ids: Vec<&str> = unknown.iter().map(|(id, _)| *id).collect();
        let what = if ids.len() == 1 {
            format!("cluster subnet {}", ids[0])
        } else {
            format!("cluster subnets {}", ids.join(", "))
        };
        return vec![RuleResult::unknown(m, Cluster, name, &what, why)
            .with("availability_zones", zones)
            .with("unknown_subnets", ids.join(","))];
    }
    let msg = if azs.is_empty() {
        format!("cluster {name} has no subnets, so no Availability Zone")
    } else {
        format!("cluster {name} subnets are all in one Availability Zone ({zones})")
    };
    vec![RuleResult::fail(m, Cluster, name, msg)
        .with("availability_zones", zones)
        .with("subnets", s.cluster.subnet_ids.join(","))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::{self, baseline, subnet_mut, SUBNET_B};
    use crate::rules::Status;

    /// How to alter subnet B: its zone, unreadable, or missing from the snapshot.
    enum B {
        Az(&'static str),
        Denied,
        Missing,
    }

    fn run(b: B) -> RuleResult {
        let mut s = baseline();
        match b {
            B::Az(az) => subnet_mut(&mut s, SUBNET_B).availability_zone = az.into(),
            B::Denied => {
                s.subnets.insert(SUBNET_B.into(), testkit::denied());
            }
            B::Missing => {
                s.subnets.remove(SUBNET_B);
            }
        }
        let mut r = evaluate(&s, &Settings::default());
        assert_eq!(r.len(), 1);
        r.remove(0)
    }

    #[test]
    fn verdicts() {
        let cases = [
            (B::Az("eu-west-1b"), Status::Pass),
            (B::Az("eu-west-1a"), Status::Fail),
            (B::Denied, Status::Unknown),
            (B::Missing, Status::Unknown),
        ];
        for (b, want) in cases {
            let r = run(b);
            assert_eq!(r.status, want, "{}", r.message);
            assert_eq!(r.resource_type, Cluster);
        }
    }

    #[test]
    fn failure_names_the_zone() {
        let r = run(B::Az("eu-west-1a"));
        assert_eq!(r.evidence["availability_zones"], "eu-west-1a");
        assert!(r.message.contains("eu-west-1a"), "{}", r.message);
    }

    #[test]
    fn two_known_zones_pass_even_with_an_unknown_subnet() {
        let mut s = baseline();
        s.cluster.subnet_ids.push("subnet-0c000000000000003".into());
        s.subnets
            .insert("subnet-0c000000000000003".into(), testkit::denied());
        let r = &evaluate(&s, &Settings::default())[0];
        assert_eq!(r.status, Status::Pass, "{}", r.message);
        assert_eq!(r.evidence["availability_zones"], "eu-west-1a,eu-west-1b");
    }

    #[test]
    fn unknown_names_the_subnet_and_reason() {
        let r = run(B::Denied);
        assert!(
            r.message.contains(SUBNET_B) && r.message.contains("AccessDeniedException"),
            "{}",
            r.message
        );
        assert_eq!(r.evidence["unknown_subnets"], SUBNET_B);
    }

    #[test]
    fn no_subnets_fails() {
        let mut s = baseline();
        s.cluster.subnet_ids.clear();
        assert_eq!(evaluate(&s, &Settings::default())[0].status, Status::Fail);
    }
}
