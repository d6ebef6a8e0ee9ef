//! A compliant baseline snapshot and small mutators, so each rule test states only what it changes.

use crate::model::*;
use std::collections::BTreeMap;

pub const CLUSTER_SG: &str = "sg-0c1a55e7000000001";
pub const NODE_SG: &str = "sg-0n0de000000000002";
pub const SUBNET_A: &str = "subnet-0a000000000000001";
pub const SUBNET_B: &str = "subnet-0b000000000000002";
pub const VPC: &str = "vpc-0000000000000000a";

fn private_subnet(id: &str, az: &str) -> Subnet {
    Subnet {
        id: id.into(),
        vpc_id: VPC.into(),
        availability_zone: az.into(),
        map_public_ip_on_launch: false,
        route_table: Fact::Known(route_table("rtb-0private000000001", "nat-0000000000000001")),
        tags: BTreeMap::new(),
    }
}

/// An explicitly associated route table: the VPC's local route, and the default route through `gateway`.
fn route_table(id: &str, gateway: &str) -> RouteTable {
    let route = |destination: &str, target: &str| Route {
        destination: destination.into(),
        target: target.into(),
        state: "active".into(),
    };
    RouteTable {
        id: id.into(),
        explicit: true,
        routes: vec![route("10.0.0.0/16", "local"), route("0.0.0.0/0", gateway)],
    }
}

fn group(id: &str, name: &str, ingress: Vec<IngressRule>) -> SecurityGroup {
    SecurityGroup {
        id: id.into(),
        name: name.into(),
        vpc_id: Some(VPC.into()),
        ingress,
        tags: BTreeMap::new(),
    }
}

/// A cluster that passes every rule with default settings.
pub fn baseline() -> ClusterSnapshot {
    let from_group = |g: &str| IngressRule {
        protocol: "-1".into(),
        referenced_group_id: Some(g.into()),
        ..IngressRule::default()
    };
    ClusterSnapshot {
        account: "111122223333".into(),
        region: "eu-west-1".into(),
        cluster: Cluster {
            name: "prod".into(),
            arn: "arn:aws:eks:eu-west-1:111122223333:cluster/prod".into(),
            status: "ACTIVE".into(),
            version: Some("1.31".into()),
            endpoint: Fact::Known(Endpoint {
                public_access: true,
                private_access: true,
                public_access_cidrs: vec!["203.0.113.0/24".into()],
            }),
            cluster_security_group_id: Some(CLUSTER_SG.into()),
            security_group_ids: vec![],
            subnet_ids: vec![SUBNET_A.into(), SUBNET_B.into()],
            vpc_id: Some(VPC.into()),
            logging: Fact::Known(vec![LogSetup {
                types: vec!["api".into(), "audit".into(), "authenticator".into()],
                enabled: true,
            }]),
            encryption: Fact::Known(vec![EncryptionConfig {
                resources: vec!["secrets".into()],
                key_arn: Some("arn:aws:kms:eu-west-1:111122223333:key/k".into()),
            }]),
            authentication_mode: Fact::Known("API_AND_CONFIG_MAP".into()),
            deletion_protection: Fact::Known(true),
            tags: BTreeMap::new(),
        },
        subnets: [
            (
                SUBNET_A.to_string(),
                Fact::Known(private_subnet(SUBNET_A, "eu-west-1a")),
            ),
            (
                SUBNET_B.to_string(),
                Fact::Known(private_subnet(SUBNET_B, "eu-west-1b")),
            ),
        ]
        .into(),
        security_groups: [
            (
                CLUSTER_SG.to_string(),
                Fact::Known(group(
                    CLUSTER_SG,
                    "eks-cluster-sg-prod",
                    vec![from_group(CLUSTER_SG)],
                )),
            ),
            (
                NODE_SG.to_string(),
                Fact::Known(group(NODE_SG, "prod-nodes", vec![from_group(CLUSTER_SG)])),
            ),
        ]
        .into(),
        nodegroups: Fact::Known(vec![Nodegroup {
            name: "general".into(),
            status: "ACTIVE".into(),
            subnet_ids: vec![SUBNET_A.into(), SUBNET_B.into()],
            remote_access: None,
            remote_access_security_group: None,
            launch_template: None,
            tags: BTreeMap::new(),
        }]),
        instances: Fact::Known(vec![Instance {
            id: "i-0000000000000000a".into(),
            state: "running".into(),
            subnet_id: Some(SUBNET_A.into()),
            public_ip: None,
            security_group_ids: vec![CLUSTER_SG.into(), NODE_SG.into()],
            nodegroup: Some("general".into()),
            metadata_options: Fact::Known(imdsv2_only()),
        }]),
        addons: Fact::Known(vec![
            Addon {
                name: "vpc-cni".into(),
                configuration_values: Fact::Known(Some(r#"{"enableNetworkPolicy":"true"}"#.into())),
            },
            Addon {
                name: "coredns".into(),
                configuration_values: Fact::unknown("NotCollected", "not read"),
            },
        ]),
        cluster_admin_entries: Fact::Known(vec![]),
        version_support: Fact::Known(Some(VersionSupport {
            version: "1.31".into(),
            status: "STANDARD_SUPPORT".into(),
            end_of_standard_support: Some("2025-11-26".into()),
            end_of_extended_support: Some("2026-11-26".into()),
        })),
    }
}

/// Metadata options that pass: IMDSv2 only, hop limit 1.
pub fn imdsv2_only() -> MetadataOptions {
    MetadataOptions {
        http_tokens: Some("required".into()),
        http_put_response_hop_limit: Some(1),
        http_endpoint: Some("enabled".into()),
    }
}

pub fn denied<T>() -> Fact<T> {
    Fact::unknown("AccessDeniedException", "not authorized")
}

/// The one result a rule gives for the whole cluster.
pub fn only(mut r: Vec<crate::rules::RuleResult>) -> crate::rules::RuleResult {
    assert_eq!(r.len(), 1, "{r:?}");
    r.remove(0)
}

/// What a rule gives when the one input it needs was [`denied`]: a single UNKNOWN on the cluster that
/// names the AWS error.
pub fn assert_one_cluster_unknown(r: &[crate::rules::RuleResult]) {
    use crate::rules::{ResourceType, Status};
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        (r[0].resource_type, r[0].status),
        (ResourceType::Cluster, Status::Unknown)
    );
    assert!(
        r[0].message.contains("AccessDeniedException"),
        "{}",
        r[0].message
    );
}

pub fn endpoint_mut(s: &mut ClusterSnapshot) -> &mut Endpoint {
    match &mut s.cluster.endpoint {
        Fact::Known(e) => e,
        Fact::Unknown(_) => panic!("endpoint is unknown in this snapshot"),
    }
}

pub fn sg_mut<'a>(s: &'a mut ClusterSnapshot, id: &str) -> &'a mut SecurityGroup {
    match s.security_groups.get_mut(id) {
        Some(Fact::Known(g)) => g,
        _ => panic!("no known group {id}"),
    }
}

pub fn subnet_mut<'a>(s: &'a mut ClusterSnapshot, id: &str) -> &'a mut Subnet {
    match s.subnets.get_mut(id) {
        Some(Fact::Known(sn)) => sn,
        _ => panic!("no known subnet {id}"),
    }
}

pub fn nodegroups_mut(s: &mut ClusterSnapshot) -> &mut Vec<Nodegroup> {
    match &mut s.nodegroups {
        Fact::Known(n) => n,
        Fact::Unknown(_) => panic!("nodegroups unknown"),
    }
}

pub fn instances_mut(s: &mut ClusterSnapshot) -> &mut Vec<Instance> {
    match &mut s.instances {
        Fact::Known(i) => i,
        Fact::Unknown(_) => panic!("instances unknown"),
    }
}

/// Adds a CIDR ingress rule (`sgr-test-N`) to a group.
pub fn open_ingress(
    s: &mut ClusterSnapshot,
    sg: &str,
    cidr: &str,
    protocol: &str,
    from: i32,
    to: i32,
) {
    let g = sg_mut(s, sg);
    let n = g.ingress.len();
    let v6 = cidr.contains(':');
    g.ingress.push(IngressRule {
        rule_id: Some(format!("sgr-test-{n}")),
        protocol: protocol.into(),
        from_port: Some(from),
        to_port: Some(to),
        cidr_ipv4: (!v6).then(|| cidr.to_string()),
        cidr_ipv6: v6.then(|| cidr.to_string()),
        ..IngressRule::default()
    });
}

/// Gives a subnet its own route table with a default route to an internet gateway.
pub fn make_public(s: &mut ClusterSnapshot, subnet: &str) {
    subnet_mut(s, subnet).route_table = Fact::Known(route_table(
        "rtb-0public0000000001",
        "igw-00000000000000001",
    ));
}
