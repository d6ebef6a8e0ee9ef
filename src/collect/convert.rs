//! SDK shapes → our model. The only place that knows both.

use crate::model::*;
use aws_sdk_ec2::types as ec2;
use aws_sdk_eks::types as eks;
use std::collections::{BTreeMap, BTreeSet};

fn map_tags(tags: Option<&std::collections::HashMap<String, String>>) -> BTreeMap<String, String> {
    tags.map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn ec2_tags(tags: &[ec2::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

fn not_returned<T>(what: &str) -> Fact<T> {
    Fact::unknown("NotReturned", format!("the API answered without {what}"))
}

/// `arn:aws:eks:REGION:ACCOUNT:cluster/NAME` → (account, region); empty strings when the ARN is unusable.
pub fn account_and_region(arn: &str) -> (String, String) {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, _, region, account, _] => (account.to_string(), region.to_string()),
        _ => (String::new(), String::new()),
    }
}

// `EncryptionConfig.resources` is deprecated (EKS now encrypts all API data with its own keys); it still
// says which resources use a customer KMS key, which is what the secrets rule judges.
#[allow(deprecated)]
pub fn cluster(c: &eks::Cluster, asked: &str) -> Cluster {
    let vpc = c.resources_vpc_config();
    let endpoint = match vpc {
        // The SDK reads absent flags as false, which is also what EKS means by them.
        Some(v) => Fact::Known(Endpoint {
            public_access: v.endpoint_public_access(),
            private_access: v.endpoint_private_access(),
            public_access_cidrs: v.public_access_cidrs().to_vec(),
        }),
        None => not_returned("resourcesVpcConfig"),
    };
    let logging = match c.logging() {
        Some(l) => Fact::Known(
            l.cluster_logging()
                .iter()
                .map(|s| LogSetup {
                    types: s.types().iter().map(|t| t.as_str().to_string()).collect(),
                    enabled: s.enabled().unwrap_or(false),
                })
                .collect(),
        ),
        None => not_returned("logging"),
    };
    let authentication_mode = match c.access_config().and_then(|a| a.authentication_mode()) {
        Some(m) => Fact::Known(m.as_str().to_string()),
        None => not_returned("accessConfig.authenticationMode"),
    };
    let deletion_protection = match c.deletion_protection() {
        Some(d) => Fact::Known(d),
        None => not_returned("deletionProtection"),
    };
    Cluster {
        name: c.name().unwrap_or(asked).to_string(),
        arn: c.arn().unwrap_or_default().to_string(),
        status: c
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        version: c.version().map(str::to_string),
        endpoint,
        cluster_security_group_id: vpc
            .and_then(|v| v.cluster_security_group_id())
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        security_group_ids: vpc
            .map(|v| v.security_group_ids().to_vec())
            .unwrap_or_default(),
        subnet_ids: vpc.map(|v| v.subnet_ids().to_vec()).unwrap_or_default(),
        vpc_id: vpc
            .and_then(|v| v.vpc_id())
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        logging,
        // EKS leaves `encryptionConfig` out when nothing is encrypted with a customer key: absent is none.
        encryption: Fact::Known(
            c.encryption_config()
                .iter()
                .map(|e| EncryptionConfig {
                    resources: e.resources().to_vec(),
                    key_arn: e.provider().and_then(|p| p.key_arn()).map(str::to_string),
                })
                .collect(),
        ),
        authentication_mode,
        deletion_protection,
        tags: map_tags(c.tags()),
    }
}

pub fn nodegroup(n: &eks::Nodegroup) -> Nodegroup {
    Nodegroup {
        name: n.nodegroup_name().unwrap_or_default().to_string(),
        status: n
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        subnet_ids: n.subnets().to_vec(),
        remote_access: n.remote_access().map(|r| RemoteAccess {
            ec2_ssh_key: r
                .ec2_ssh_key()
                .filter(|k| !k.is_empty())
                .map(str::to_string),
            source_security_groups: r.source_security_groups().to_vec(),
        }),
        remote_access_security_group: n
            .resources()
            .and_then(|r| r.remote_access_security_group())
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        launch_template: n.launch_template().map(|l| LaunchTemplateRef {
            id: l.id().filter(|s| !s.is_empty()).map(str::to_string),
            name: l.name().filter(|s| !s.is_empty()).map(str::to_string),
            version: l.version().filter(|s| !s.is_empty()).map(str::to_string),
            // Filled by the collector once the template versions are read.
            in_use: Fact::unknown("NotCollected", "the launch template was not read"),
        }),
        tags: map_tags(n.tags()),
    }
}

pub fn instance(i: &ec2::Instance) -> Option<Instance> {
    let tags = ec2_tags(i.tags());
    Some(Instance {
        id: i.instance_id()?.to_string(),
        state: i
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string())
            .unwrap_or_default(),
        subnet_id: i.subnet_id().map(str::to_string),
        public_ip: i
            .public_ip_address()
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        security_group_ids: i
            .security_groups()
            .iter()
            .filter_map(|g| g.group_id().map(str::to_string))
            .collect(),
        nodegroup: tags.get("eks:nodegroup-name").cloned(),
        metadata_options: match i.metadata_options() {
            Some(m) => Fact::Known(MetadataOptions {
                http_tokens: m.http_tokens().map(|t| t.as_str().to_string()),
                http_put_response_hop_limit: m.http_put_response_hop_limit(),
                http_endpoint: m.http_endpoint().map(|e| e.as_str().to_string()),
            }),
            None => not_returned("MetadataOptions"),
        },
    })
}

/// A launch template version. `None` without the identifying fields.
pub fn launch_template_version(v: &ec2::LaunchTemplateVersion) -> Option<LaunchTemplateVersion> {
    Some(LaunchTemplateVersion {
        template_id: v.launch_template_id()?.to_string(),
        template_name: v.launch_template_name().map(str::to_string),
        version_number: v.version_number()?,
        metadata_options: v
            .launch_template_data()
            .and_then(|d| d.metadata_options())
            .map(|m| MetadataOptions {
                http_tokens: m.http_tokens().map(|t| t.as_str().to_string()),
                http_put_response_hop_limit: m.http_put_response_hop_limit(),
                http_endpoint: m.http_endpoint().map(|e| e.as_str().to_string()),
            }),
    })
}

/// Picks the version a nodegroup's reference means from what DescribeLaunchTemplateVersions returned:
/// `$Default` is the one flagged default, `$Latest` the highest number (it was asked for, so it is there).
pub fn pick_version<'a>(
    wanted: &str,
    versions: &'a [(bool, LaunchTemplateVersion)],
) -> Option<&'a LaunchTemplateVersion> {
    match wanted {
        "$Default" => versions
            .iter()
            .find(|(default, _)| *default)
            .map(|(_, v)| v),
        "$Latest" => versions
            .iter()
            .map(|(_, v)| v)
            .max_by_key(|v| v.version_number),
        n => {
            let n: i64 = n.parse().ok()?;
            versions
                .iter()
                .map(|(_, v)| v)
                .find(|v| v.version_number == n)
        }
    }
}

pub fn access_policy(p: &eks::AssociatedAccessPolicy) -> Option<AccessPolicyAssociation> {
    Some(AccessPolicyAssociation {
        policy_arn: p.policy_arn()?.to_string(),
        scope: p
            .access_scope()
            .and_then(|s| s.r#type())
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        namespaces: p
            .access_scope()
            .map(|s| s.namespaces().to_vec())
            .unwrap_or_default(),
    })
}

/// EKS's statement about one Kubernetes version.
// `status` is deprecated in favour of `versionStatus`; it is read only when an older answer lacks the new field.
#[allow(deprecated)]
pub fn version_support(v: &eks::ClusterVersionInformation) -> Option<VersionSupport> {
    let status = match (v.version_status(), v.status()) {
        (Some(s), _) => s.as_str().to_string(),
        (None, Some(old)) => old.as_str().to_ascii_uppercase().replace('-', "_"),
        (None, None) => String::new(),
    };
    let day = |d: Option<&aws_smithy_types::DateTime>| {
        d.and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
            .map(|s| s.chars().take(10).collect::<String>())
    };
    Some(VersionSupport {
        version: v.cluster_version()?.to_string(),
        status,
        end_of_standard_support: day(v.end_of_standard_support_date()),
        end_of_extended_support: day(v.end_of_extended_support_date()),
    })
}

/// A subnet before its route table is placed.
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

    #[test]
    fn arn_parts() {
        assert_eq!(
            account_and_region("arn:aws:eks:eu-west-1:111122223333:cluster/prod"),
            ("111122223333".to_string(), "eu-west-1".to_string())
        );
        assert_eq!(
            account_and_region("garbage"),
            (String::new(), String::new())
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

    fn lt(n: i64) -> LaunchTemplateVersion {
        LaunchTemplateVersion {
            template_id: "lt-1".into(),
            template_name: None,
            version_number: n,
            metadata_options: None,
        }
    }

    #[test]
    fn launch_template_aliases_resolve() {
        let versions = vec![(false, lt(7)), (true, lt(3)), (false, lt(5))];
        let pick = |w: &str| pick_version(w, &versions).map(|v| v.version_number);
        assert_eq!(pick("$Default"), Some(3));
        assert_eq!(pick("$Latest"), Some(7));
        assert_eq!(pick("5"), Some(5));
        assert_eq!(pick("4"), None);
        assert_eq!(pick("bogus"), None);
    }

    #[test]
    #[allow(deprecated)]
    fn version_status_prefers_the_new_field() {
        let v = eks::ClusterVersionInformation::builder()
            .cluster_version("1.29")
            .status(eks::ClusterVersionStatus::ExtendedSupport)
            .end_of_standard_support_date(aws_smithy_types::DateTime::from_secs(1_742_774_400))
            .build();
        let got = version_support(&v).unwrap();
        assert_eq!(got.status, "EXTENDED_SUPPORT");
        assert_eq!(got.end_of_standard_support.as_deref(), Some("2025-03-24"));
        let v = eks::ClusterVersionInformation::builder()
            .cluster_version("1.33")
            .status(eks::ClusterVersionStatus::ExtendedSupport)
            .version_status(eks::VersionStatus::StandardSupport)
            .build();
        assert_eq!(version_support(&v).unwrap().status, "STANDARD_SUPPORT");
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
