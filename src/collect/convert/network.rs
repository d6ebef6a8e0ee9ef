//! Subnets, route tables and security groups: SDK shapes → our model.

use super::ec2_tags;
use crate::model::*;
use aws_sdk_ec2::types as ec2;
use std::collections::{BTreeMap, BTreeSet};

/// A subnet before its route table is placed.
#[derive(Debug, Clone)]
pub struct RawSubnet {
    pub id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    pub map_public_ip_on_launch: bool,
    pub tags: BTreeMap<String, String>,
}

pub fn subnet(s: &ec2::Subnet) -> Option<RawSubnet> {
    Some(RawSubnet {
        id: s.subnet_id()?.to_string(),
        vpc_id: s.vpc_id().unwrap_or_default().to_string(),
        availability_zone: s.availability_zone().unwrap_or_default().to_string(),
        map_public_ip_on_launch: s.map_public_ip_on_launch().unwrap_or(false),
        tags: ec2_tags(s.tags()),
    })
}

fn route(r: &ec2::Route) -> Route {
    let destination = r
        .destination_cidr_block()
        .or(r.destination_ipv6_cidr_block())
        .or(r.destination_prefix_list_id())
        .unwrap_or_default()
        .to_string();
    let target = r
        .gateway_id()
        .or(r.nat_gateway_id())
        .or(r.egress_only_internet_gateway_id())
        .or(r.transit_gateway_id())
        .or(r.vpc_peering_connection_id())
        .or(r.network_interface_id())
        .or(r.instance_id())
        .or(r.local_gateway_id())
        .or(r.carrier_gateway_id())
        .or(r.core_network_arn())
        .unwrap_or_default()
        .to_string();
    Route {
        destination,
        target,
        state: r
            .state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "active".into()),
    }
}

/// Gives each requested subnet its effective route table: the explicit association, else the VPC's main table.
pub fn place_subnets(
    ids: &BTreeSet<String>,
    subnets: Fact<BTreeMap<String, RawSubnet>>,
    tables: &Fact<Vec<ec2::RouteTable>>,
) -> BTreeMap<String, Fact<Subnet>> {
    let mut subnets = match subnets {
        Fact::Known(s) => s,
        Fact::Unknown(u) => {
            return ids
                .iter()
                .map(|id| (id.clone(), Fact::Unknown(u.clone())))
                .collect()
        }
    };
    ids.iter()
        .map(|id| {
            let fact = match subnets.remove(id) {
                None => Fact::unknown(
                    "InvalidSubnetID.NotFound",
                    format!("subnet {id} does not exist"),
                ),
                Some(raw) => {
                    let route_table = effective_table(&raw, tables);
                    Fact::Known(Subnet {
                        id: raw.id,
                        vpc_id: raw.vpc_id,
                        availability_zone: raw.availability_zone,
                        map_public_ip_on_launch: raw.map_public_ip_on_launch,
                        route_table,
                        tags: raw.tags,
                    })
                }
            };
            (id.clone(), fact)
        })
        .collect()
}

fn effective_table(s: &RawSubnet, tables: &Fact<Vec<ec2::RouteTable>>) -> Fact<RouteTable> {
    let tables = match tables {
        Fact::Known(t) => t,
        Fact::Unknown(u) => return Fact::Unknown(u.clone()),
    };
    let explicit = tables.iter().find(|t| {
        t.associations()
            .iter()
            .any(|a| a.subnet_id() == Some(s.id.as_str()))
    });
    let main = || {
        tables.iter().find(|t| {
            t.vpc_id() == Some(s.vpc_id.as_str())
                && t.associations().iter().any(|a| a.main() == Some(true))
        })
    };
    let (table, is_explicit) = match explicit {
        Some(t) => (t, true),
        None => match main() {
            Some(t) => (t, false),
            None => {
                return Fact::unknown(
                    "NotReturned",
                    format!(
                        "no route table is associated with {} and {} has no main table",
                        s.id, s.vpc_id
                    ),
                )
            }
        },
    };
    Fact::Known(RouteTable {
        id: table.route_table_id().unwrap_or_default().to_string(),
        explicit: is_explicit,
        routes: table.routes().iter().map(route).collect(),
    })
}

/// Flattens `IpPermissions` into one rule per source (rule ids are not in this shape).
pub fn security_group(g: &ec2::SecurityGroup) -> Option<SecurityGroup> {
    let mut ingress = Vec::new();
    for p in g.ip_permissions() {
        let base = IngressRule {
            protocol: p.ip_protocol().unwrap_or("-1").to_string(),
            from_port: p.from_port(),
            to_port: p.to_port(),
            ..IngressRule::default()
        };
        for r in p.ip_ranges() {
            ingress.push(IngressRule {
                cidr_ipv4: r.cidr_ip().map(str::to_string),
                description: r.description().map(str::to_string),
                ..base.clone()
            });
        }
        for r in p.ipv6_ranges() {
            ingress.push(IngressRule {
                cidr_ipv6: r.cidr_ipv6().map(str::to_string),
                description: r.description().map(str::to_string),
                ..base.clone()
            });
        }
        for r in p.user_id_group_pairs() {
            ingress.push(IngressRule {
                referenced_group_id: r.group_id().map(str::to_string),
                description: r.description().map(str::to_string),
                ..base.clone()
            });
        }
        for r in p.prefix_list_ids() {
            ingress.push(IngressRule {
                prefix_list_id: r.prefix_list_id().map(str::to_string),
                description: r.description().map(str::to_string),
                ..base.clone()
            });
        }
    }
    Some(SecurityGroup {
        id: g.group_id()?.to_string(),
        name: g.group_name().unwrap_or_default().to_string(),
        vpc_id: g.vpc_id().map(str::to_string),
        ingress,
        tags: ec2_tags(g.tags()),
    })
}

pub fn group_rule(r: &ec2::SecurityGroupRule) -> IngressRule {
    IngressRule {
        rule_id: r.security_group_rule_id().map(str::to_string),
        protocol: r.ip_protocol().unwrap_or("-1").to_string(),
        from_port: r.from_port(),
        to_port: r.to_port(),
        cidr_ipv4: r.cidr_ipv4().map(str::to_string),
        cidr_ipv6: r.cidr_ipv6().map(str::to_string),
        referenced_group_id: r
            .referenced_group_info()
            .and_then(|g| g.group_id())
            .map(str::to_string),
        prefix_list_id: r.prefix_list_id().map(str::to_string),
        description: r.description().map(str::to_string),
    }
}

/// The ingress rules of one group as both reads tell them. DescribeSecurityGroupRules lends its rule ids to
/// the permissions DescribeSecurityGroups listed; a rule only one read returned (the two disagree for a
/// while after a change) is kept, so a world-open rule never vanishes from the verdict.
pub fn union_rules(described: Vec<IngressRule>, with_ids: Vec<IngressRule>) -> Vec<IngressRule> {
    fn same(a: &IngressRule, b: &IngressRule) -> bool {
        let all = |p: &str| p == "-1" || p == "all";
        let ports = all(&a.protocol) && all(&b.protocol)
            || (a.protocol == b.protocol && a.from_port == b.from_port && a.to_port == b.to_port);
        ports
            && a.cidr_ipv4 == b.cidr_ipv4
            && a.cidr_ipv6 == b.cidr_ipv6
            && a.referenced_group_id == b.referenced_group_id
            && a.prefix_list_id == b.prefix_list_id
    }
    let mut out = described;
    for r in with_ids {
        match out.iter_mut().find(|d| d.rule_id.is_none() && same(d, &r)) {
            Some(d) => d.rule_id = r.rule_id,
            None => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_security_group_reads_count() {
        let rule = |id: Option<&str>, port: i32, cidr: &str| IngressRule {
            rule_id: id.map(str::to_string),
            protocol: "tcp".into(),
            from_port: Some(port),
            to_port: Some(port),
            cidr_ipv4: Some(cidr.into()),
            ..IngressRule::default()
        };
        let described = vec![rule(None, 22, "0.0.0.0/0"), rule(None, 443, "10.0.0.0/8")];
        let with_ids = vec![
            rule(Some("sgr-443"), 443, "10.0.0.0/8"),
            rule(Some("sgr-80"), 80, "0.0.0.0/0"),
        ];
        let u = union_rules(described, with_ids);
        assert_eq!(
            u,
            vec![
                rule(None, 22, "0.0.0.0/0"),
                rule(Some("sgr-443"), 443, "10.0.0.0/8"),
                rule(Some("sgr-80"), 80, "0.0.0.0/0"),
            ]
        );
    }

    fn table(id: &str, vpc: &str, main: bool, subnet: Option<&str>, igw: bool) -> ec2::RouteTable {
        let mut assoc = ec2::RouteTableAssociation::builder().main(main);
        if let Some(s) = subnet {
            assoc = assoc.subnet_id(s);
        }
        let mut t = ec2::RouteTable::builder()
            .route_table_id(id)
            .vpc_id(vpc)
            .associations(assoc.build())
            .routes(
                ec2::Route::builder()
                    .destination_cidr_block("10.0.0.0/16")
                    .gateway_id("local")
                    .build(),
            );
        if igw {
            t = t.routes(
                ec2::Route::builder()
                    .destination_cidr_block("0.0.0.0/0")
                    .gateway_id("igw-1")
                    .state(ec2::RouteState::Active)
                    .build(),
            );
        }
        t.build()
    }

    fn raw(id: &str) -> RawSubnet {
        RawSubnet {
            id: id.into(),
            vpc_id: "vpc-1".into(),
            availability_zone: "eu-west-1a".into(),
            map_public_ip_on_launch: false,
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn explicit_association_wins_over_main_table() {
        let tables = Fact::Known(vec![
            table("rtb-main", "vpc-1", true, None, true),
            table("rtb-priv", "vpc-1", false, Some("subnet-a"), false),
        ]);
        let ids: BTreeSet<String> = [
            "subnet-a".to_string(),
            "subnet-b".to_string(),
            "subnet-gone".to_string(),
        ]
        .into();
        let subnets = Fact::Known(
            [
                ("subnet-a".into(), raw("subnet-a")),
                ("subnet-b".into(), raw("subnet-b")),
            ]
            .into(),
        );
        let placed = place_subnets(&ids, subnets, &tables);
        let rt = |id: &str| {
            placed[id]
                .known()
                .unwrap()
                .route_table
                .known()
                .unwrap()
                .clone()
        };
        assert_eq!(rt("subnet-a").id, "rtb-priv");
        assert!(rt("subnet-a").explicit);
        assert_eq!(rt("subnet-b").id, "rtb-main");
        assert!(!rt("subnet-b").explicit);
        assert!(rt("subnet-b").default_internet_route().is_some());
        assert!(
            matches!(&placed["subnet-gone"], Fact::Unknown(u) if u.code == "InvalidSubnetID.NotFound")
        );
    }

    #[test]
    fn no_main_table_is_unknown_not_private() {
        let tables = Fact::Known(vec![table("rtb-other", "vpc-2", true, None, false)]);
        let ids: BTreeSet<String> = ["subnet-a".to_string()].into();
        let placed = place_subnets(
            &ids,
            Fact::Known([("subnet-a".into(), raw("subnet-a"))].into()),
            &tables,
        );
        assert!(matches!(
            placed["subnet-a"].known().unwrap().route_table,
            Fact::Unknown(_)
        ));
    }

    #[test]
    fn permissions_flatten_to_one_rule_per_source() {
        let g = ec2::SecurityGroup::builder()
            .group_id("sg-1")
            .group_name("n")
            .ip_permissions(
                ec2::IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(22)
                    .to_port(22)
                    .ip_ranges(ec2::IpRange::builder().cidr_ip("0.0.0.0/0").build())
                    .ipv6_ranges(ec2::Ipv6Range::builder().cidr_ipv6("::/0").build())
                    .user_id_group_pairs(ec2::UserIdGroupPair::builder().group_id("sg-2").build())
                    .build(),
            )
            .build();
        let g = security_group(&g).unwrap();
        assert_eq!(g.ingress.len(), 3);
        assert_eq!(g.ingress[0].world_source(), Some("0.0.0.0/0"));
        assert_eq!(g.ingress[1].world_source(), Some("::/0"));
        assert_eq!(g.ingress[2].referenced_group_id.as_deref(), Some("sg-2"));
    }
}
