//! The router: one table keyed by (eventSource, eventName) says where the resource id sits and what it is;
//! `crate::resolve` turns those resources into the clusters they belong to, a whole batch at once.

use crate::event::{strings_at, CloudTrailEvent};
use std::collections::BTreeSet;

/// What kind of resource an event names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The id is the cluster name.
    Cluster,
    /// The id is an EKS ARN (`…:cluster/NAME`, `…:nodegroup/CLUSTER/…`).
    EksArn,
    SecurityGroup,
    Subnet,
    RouteTable,
    RouteTableAssociation,
    NetworkInterface,
    Instance,
    LaunchTemplate,
    /// Ids of mixed kinds (EC2 tagging calls), told apart by prefix ([`tagged_kind`]).
    Tagged,
}

/// One row of the event table.
pub struct Route {
    pub source: &'static str,
    pub names: &'static [&'static str],
    pub kind: Kind,
    /// Where the id may be, tried in order; the first path that yields ids wins.
    pub paths: &'static [&'static str],
}

pub const EKS: &str = "eks.amazonaws.com";
pub const EC2: &str = "ec2.amazonaws.com";

/// The event table of docs/architecture.md ("Events to clusters"), as data. The deployment's EventBridge patterns are derived from the same table.
pub static TABLE: &[Route] = &[
    Route {
        source: EKS,
        names: &["CreateCluster", "UpdateClusterConfig", "UpdateClusterVersion", "AssociateEncryptionConfig", "DeleteCluster"],
        kind: Kind::Cluster,
        paths: &["requestParameters.name", "requestParameters.clusterName", "responseElements.cluster.name"],
    },
    Route {
        source: EKS,
        names: &[
            "CreateNodegroup", "UpdateNodegroupConfig", "UpdateNodegroupVersion", "DeleteNodegroup",
            "CreateAddon", "UpdateAddon", "DeleteAddon",
            "CreateAccessEntry", "UpdateAccessEntry", "DeleteAccessEntry",
            "AssociateAccessPolicy", "DisassociateAccessPolicy",
        ],
        kind: Kind::Cluster,
        paths: &["requestParameters.name", "requestParameters.clusterName"],
    },
    Route {
        source: EKS,
        names: &["TagResource", "UntagResource"],
        kind: Kind::EksArn,
        paths: &["requestParameters.resourceArn"],
    },
    Route {
        source: EC2,
        names: &["AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress"],
        kind: Kind::SecurityGroup,
        paths: &["requestParameters.groupId", "responseElements.securityGroupRuleSet.groupId"],
    },
    Route {
        source: EC2,
        names: &["ModifySecurityGroupRules"],
        kind: Kind::SecurityGroup,
        paths: &["requestParameters.ModifySecurityGroupRulesRequest.GroupId", "requestParameters.groupId"],
    },
    Route {
        source: EC2,
        names: &["ModifyNetworkInterfaceAttribute"],
        kind: Kind::NetworkInterface,
        paths: &["requestParameters.networkInterfaceId"],
    },
    Route {
        source: EC2,
        names: &["ModifySubnetAttribute"],
        kind: Kind::Subnet,
        paths: &["requestParameters.subnetId"],
    },
    Route {
        source: EC2,
        names: &["CreateRoute", "ReplaceRoute", "DeleteRoute"],
        kind: Kind::RouteTable,
        paths: &["requestParameters.routeTableId"],
    },
    Route {
        source: EC2,
        names: &["AssociateRouteTable"],
        kind: Kind::Subnet,
        paths: &["requestParameters.subnetId"],
    },
    // The new table of a replaced association holds the subnet that moved.
    Route {
        source: EC2,
        names: &["ReplaceRouteTableAssociation"],
        kind: Kind::RouteTable,
        paths: &["requestParameters.routeTableId"],
    },
    Route {
        source: EC2,
        names: &["DisassociateRouteTable"],
        kind: Kind::RouteTableAssociation,
        paths: &["requestParameters.associationId"],
    },
    Route {
        source: EC2,
        names: &["RunInstances"],
        kind: Kind::Instance,
        paths: &["responseElements.instancesSet.instanceId"],
    },
    Route {
        source: EC2,
        names: &["ModifyInstanceMetadataOptions"],
        kind: Kind::Instance,
        paths: &["requestParameters.ModifyInstanceMetadataOptionsRequest.InstanceId", "requestParameters.instanceId"],
    },
    Route {
        source: EC2,
        names: &["CreateLaunchTemplateVersion", "ModifyLaunchTemplate"],
        kind: Kind::LaunchTemplate,
        paths: &[
            "requestParameters.CreateLaunchTemplateVersionRequest.LaunchTemplateId",
            "requestParameters.CreateLaunchTemplateVersionRequest.LaunchTemplateName",
            "requestParameters.ModifyLaunchTemplateRequest.LaunchTemplateId",
            "requestParameters.ModifyLaunchTemplateRequest.LaunchTemplateName",
            "responseElements.CreateLaunchTemplateVersionResponse.launchTemplateVersion.launchTemplateId",
        ],
    },
    // Tags decide exemptions (`eks-warden:exempt`) and which cluster a resource belongs to.
    Route {
        source: EC2,
        names: &["CreateTags", "DeleteTags"],
        kind: Kind::Tagged,
        paths: &["requestParameters.resourcesSet.resourceId"],
    },
];

/// The kind of a tagged resource whose tags eks-warden reads, by its id's prefix; `None` for the others
/// (VPCs, AMIs, volumes…), which a tagging call can name in the same request.
pub fn tagged_kind(id: &str) -> Option<Kind> {
    [
        ("sg-", Kind::SecurityGroup),
        ("subnet-", Kind::Subnet),
        ("i-", Kind::Instance),
        ("lt-", Kind::LaunchTemplate),
    ]
    .into_iter()
    .find(|(prefix, _)| id.starts_with(prefix))
    .map(|(_, kind)| kind)
}

/// The row for an event, matching source and name both.
pub fn lookup(source: &str, name: &str) -> Option<&'static Route> {
    TABLE
        .iter()
        .find(|r| r.source == source && r.names.contains(&name))
}

/// The resource ids an event names, per its row. Request and response are read as one record.
pub fn resource_ids(route: &Route, e: &CloudTrailEvent) -> Vec<String> {
    let record =
        serde_json::json!({"requestParameters": e.request, "responseElements": e.response});
    route
        .paths
        .iter()
        .map(|p| strings_at(&record, p))
        .find(|ids| !ids.is_empty())
        .unwrap_or_default()
}

/// Cluster names carried directly by tags on a resource.
pub fn clusters_from_tags<'a>(
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (k, v) in tags {
        if k == "aws:eks:cluster-name" || k == "eks:cluster-name" {
            out.insert(v.to_string());
        } else if let Some(name) = k.strip_prefix("kubernetes.io/cluster/") {
            out.insert(name.to_string());
        }
    }
    out
}

/// `arn:aws:eks:R:A:cluster/NAME` or `…:nodegroup/CLUSTER/NG/ID` (or addon, access entry…) → the cluster.
pub fn cluster_from_arn(arn: &str) -> Option<String> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let mut parts = resource.split('/');
    let _kind = parts.next()?;
    parts.next().filter(|n| !n.is_empty()).map(str::to_string)
}

/// How a summary names a kind of resource.
pub fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Cluster | Kind::EksArn => "cluster",
        Kind::SecurityGroup => "security group",
        Kind::Subnet => "subnet",
        Kind::RouteTable => "route table",
        Kind::RouteTableAssociation => "route table association",
        Kind::NetworkInterface => "network interface",
        Kind::Instance => "instance",
        Kind::LaunchTemplate => "launch template",
        Kind::Tagged => "tagged resource",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_are_unique_per_source_and_name() {
        let mut seen = BTreeSet::new();
        for r in TABLE {
            for n in r.names {
                assert!(seen.insert((r.source, *n)), "{} {} twice", r.source, n);
            }
        }
    }

    #[test]
    fn source_and_name_must_both_match() {
        assert!(lookup(EKS, "CreateCluster").is_some());
        assert!(lookup("redshift.amazonaws.com", "CreateCluster").is_none());
        assert!(lookup(EC2, "CreateKeyPair").is_none());
    }

    #[test]
    fn tagging_calls_read_ids_of_mixed_kinds_by_prefix() {
        assert_eq!(tagged_kind("sg-0a1b"), Some(Kind::SecurityGroup));
        assert_eq!(tagged_kind("subnet-0a1b"), Some(Kind::Subnet));
        assert_eq!(tagged_kind("i-0a1b"), Some(Kind::Instance));
        assert_eq!(tagged_kind("lt-0a1b"), Some(Kind::LaunchTemplate));
        assert_eq!(tagged_kind("vpc-0a1b"), None);
        assert_eq!(tagged_kind("sgr-0a1b"), None, "a rule id is not a group");
        let route = lookup(EC2, "CreateTags").unwrap();
        // A single resource arrives as one object instead of a one-element list.
        let e = CloudTrailEvent {
            event_source: EC2.into(),
            event_name: "CreateTags".into(),
            event_id: None,
            event_time: None,
            account: None,
            region: None,
            actor_arn: None,
            source_ip: None,
            error_code: None,
            request: serde_json::json!({"resourcesSet": {"items": {"resourceId": "sg-1"}}}),
            response: serde_json::Value::Null,
        };
        assert_eq!(resource_ids(route, &e), vec!["sg-1"]);
    }

    #[test]
    fn eks_arns() {
        assert_eq!(
            cluster_from_arn("arn:aws:eks:eu-west-1:1:cluster/prod").as_deref(),
            Some("prod")
        );
        assert_eq!(
            cluster_from_arn("arn:aws:eks:eu-west-1:1:nodegroup/prod/ng/uuid").as_deref(),
            Some("prod")
        );
        assert_eq!(cluster_from_arn("nonsense"), None);
    }

    #[test]
    fn cluster_tags() {
        let tags = [
            ("kubernetes.io/cluster/a", "owned"),
            ("aws:eks:cluster-name", "b"),
            ("team", "x"),
        ];
        assert_eq!(
            clusters_from_tags(tags),
            ["a".to_string(), "b".to_string()].into()
        );
    }
}
