use super::{ResourceType::Cluster, Rule, RuleMeta, RuleResult, Severity};
use crate::model::Part;
use crate::model::{ClusterSnapshot, Fact, Unreadable};
use crate::settings::Settings;

pub const RULE: Rule = Rule {
    meta: RuleMeta {
        id: "vpc-no-private-subnet",
        reads: &[Part::Subnets],
        severity: Severity::Low,
        title: "None of the cluster subnets is private",
        description: "Every subnet given to the cluster routes to an internet gateway (through its explicit \
            route table, else the VPC's main table), so there is no private subnet for the control-plane \
            network interfaces or for nodes that should not be reachable from the internet.",
        resolution: "Create private subnets (a route table whose default route goes to a NAT gateway, not an \
            internet gateway) in the cluster's Availability Zones and add them to the cluster (aws eks \
            update-cluster-config --name <cluster> --resources-vpc-config subnetIds=...); place nodes there.",
        references: &[
            "https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html",
            "https://docs.aws.amazon.com/eks/latest/userguide/creating-a-vpc.html",
            "https://docs.aws.amazon.com/eks/latest/userguide/infrastructure-security.html",
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
    let mut private = Vec::new();
    let mut public = Vec::new();
    let mut unknown: Vec<(String, Unreadable)> = Vec::new();
    for id in &s.cluster.subnet_ids {
        let subnet = match s.subnets.get(id) {
            Some(Fact::Known(sn)) => sn,
            Some(Fact::Unknown(why)) => {
                unknown.push((format!("subnet {id}"), why.clone()));
                continue;
            }
            None => {
                let why = Unreadable::new("NotReturned", "not in the snapshot");
                unknown.push((format!("subnet {id}"), why));
                continue;
            }
        };
        match subnet.route_table.as_ref() {
            Ok(rt) => match rt.any_internet_route() {
                None => private.push(id.as_str()),
                Some(r) => public.push(format!(
                    "{id}: {} -> {} ({})",
                    r.destination, r.target, rt.id
                )),
            },
            Err(why) => unknown.push((format!("the route table of subnet {id}"), why.clone())),
        }
    }
    if !private.is_empty() {
        return vec![RuleResult::pass(
            m,
            Cluster,
            name,
            format!(
                "cluster {name} has private subnets (no route to an internet gateway): {}",
                private.join(", ")
            ),
        )
        .with("private_subnets", private.join(","))];
    }
    if let Some((what, why)) = unknown.first() {
        let what = if unknown.len() == 1 {
            what.clone()
        } else {
            format!("{what} and {} more", unknown.len() - 1)
        };
        return vec![RuleResult::unknown(m, Cluster, name, &what, why)];
    }
    let msg = if public.is_empty() {
        format!("cluster {name} has no subnets, so no private subnet")
    } else {
        format!(
            "every subnet of cluster {name} routes to an internet gateway: {}",
            public.join("; ")
        )
    };
    vec![RuleResult::fail(m, Cluster, name, msg).with("internet_routes", public.join("; "))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Route, RouteTable};
    use crate::rules::testkit::{self, baseline, make_public, subnet_mut, SUBNET_A, SUBNET_B};
    use crate::rules::Status;

    #[derive(Clone, Copy)]
    enum Sn {
        Private,
        Public,
        Denied,
        RouteTableDenied,
        Missing,
    }

    fn run(a: Sn, b: Sn) -> RuleResult {
        let mut s = baseline();
        for (id, how) in [(SUBNET_A, a), (SUBNET_B, b)] {
            match how {
                Sn::Private => {}
                Sn::Public => make_public(&mut s, id),
                Sn::Denied => {
                    s.subnets.insert(id.into(), testkit::denied());
                }
                Sn::RouteTableDenied => subnet_mut(&mut s, id).route_table = testkit::denied(),
                Sn::Missing => {
                    s.subnets.remove(id);
                }
            }
        }
        let mut r = evaluate(&s, &Settings::default());
        assert_eq!(r.len(), 1);
        r.remove(0)
    }

    #[test]
    fn verdicts() {
        use Sn::*;
        let cases = [
            (Private, Private, Status::Pass),
            (Public, Private, Status::Pass),
            (Denied, Private, Status::Pass),
            (Public, Public, Status::Fail),
            (Public, Denied, Status::Unknown),
            (Public, RouteTableDenied, Status::Unknown),
            (Missing, Public, Status::Unknown),
            (Denied, Denied, Status::Unknown),
        ];
        for (a, b, want) in cases {
            let r = run(a, b);
            assert_eq!(r.status, want, "{}", r.message);
            assert_eq!(r.resource_type, Cluster);
        }
    }

    #[test]
    fn any_route_to_an_internet_gateway_makes_a_subnet_public() {
        let mut s = baseline();
        for id in [SUBNET_A, SUBNET_B] {
            subnet_mut(&mut s, id).route_table = Fact::Known(RouteTable {
                id: "rtb-0partial00000001".into(),
                explicit: false,
                routes: vec![Route {
                    destination: "198.51.100.0/24".into(),
                    target: "igw-00000000000000001".into(),
                    state: "active".into(),
                }],
            });
        }
        let r = &evaluate(&s, &Settings::default())[0];
        assert_eq!(r.status, Status::Fail, "{}", r.message);
        assert!(
            r.message
                .contains("198.51.100.0/24 -> igw-00000000000000001"),
            "{}",
            r.message
        );
    }

    #[test]
    fn blackholed_internet_route_is_not_public() {
        let mut s = baseline();
        make_public(&mut s, SUBNET_A);
        make_public(&mut s, SUBNET_B);
        if let Fact::Known(rt) = &mut subnet_mut(&mut s, SUBNET_B).route_table {
            rt.routes
                .iter_mut()
                .for_each(|r| r.state = "blackhole".into());
        }
        let r = &evaluate(&s, &Settings::default())[0];
        assert_eq!(r.status, Status::Pass, "{}", r.message);
        assert_eq!(r.evidence["private_subnets"], SUBNET_B);
    }

    #[test]
    fn failure_and_unknown_name_the_subnets() {
        let r = run(Sn::Public, Sn::Public);
        assert!(
            r.message.contains(SUBNET_A) && r.message.contains("igw-"),
            "{}",
            r.message
        );
        let r = run(Sn::Public, Sn::RouteTableDenied);
        assert!(
            r.message.contains(SUBNET_B) && r.message.contains("AccessDeniedException"),
            "{}",
            r.message
        );
    }
}
