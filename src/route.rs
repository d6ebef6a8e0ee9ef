//! The router: one table keyed by (eventSource, eventName) says where the resource id sits and what it is;
//! the resolver turns that resource into the clusters it belongs to (tags first, then a region index).

use crate::collect::Clients;
use crate::event::{strings_at, CloudTrailEvent};
use aws_sdk_ec2::types::Filter;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What kind of resource an event names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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

/// Where a resource led: the clusters, or why none.
pub type Resolution = Result<BTreeSet<String>, String>;

/// What one cluster is made of, for matching resources that carry no cluster tag.
#[derive(Debug, Clone, Default)]
struct IndexedCluster {
    groups: BTreeSet<String>,
    subnets: BTreeSet<String>,
    vpc: Option<String>,
}

/// The region's clusters, cached for the life of a warm container with a short expiry.
#[derive(Default)]
pub struct RegionIndex {
    cached: Mutex<Option<(Instant, BTreeMap<String, IndexedCluster>)>>,
}

const INDEX_TTL: Duration = Duration::from_secs(120);

/// Resolves events to clusters with the clients of the event's account and region.
pub struct Resolver<'a> {
    pub clients: &'a Clients,
    pub index: &'a RegionIndex,
}

type AwsErr = String;

fn aws_err<E, R>(op: &str, e: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> AwsErr
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
    R: std::fmt::Debug,
{
    crate::collect::error_line(op, &e)
}

fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    values
        .into_iter()
        .fold(Filter::builder().name(name), |b, v| b.values(v))
        .build()
}

impl Resolver<'_> {
    /// The clusters an event touched. `Ok(empty)` never happens: no cluster is an `Err` with the reason.
    /// An AWS failure is `Err` in the outer result (retryable); a resource that is gone is an inner `Err`.
    pub async fn resolve(&self, e: &CloudTrailEvent) -> Result<Resolution, AwsErr> {
        let Some(route) = lookup(&e.event_source, &e.event_name) else {
            return Ok(Err(format!(
                "{} {} is not an event eks-warden acts on",
                e.event_source, e.event_name
            )));
        };
        let ids = resource_ids(route, e);
        if ids.is_empty() {
            return Ok(Err(format!(
                "{} names no resource where expected ({})",
                e.event_name,
                route.paths.join(" | ")
            )));
        }
        if route.kind == Kind::Tagged && !ids.iter().any(|id| tagged_kind(id).is_some()) {
            return Ok(Err(format!(
                "{} on {}: eks-warden reads the tags of security groups, subnets, instances and launch templates only",
                e.event_name,
                ids.join(", ")
            )));
        }
        let mut clusters = BTreeSet::new();
        for id in &ids {
            let found = match route.kind {
                Kind::Cluster => [id.clone()].into(),
                Kind::EksArn => cluster_from_arn(id).into_iter().collect(),
                Kind::SecurityGroup => self.security_group(id).await?,
                Kind::Subnet => self.subnets(std::slice::from_ref(id)).await?,
                Kind::RouteTable => self.route_table(id, "route-table-id").await?,
                Kind::RouteTableAssociation => {
                    self.route_table(id, "association.route-table-association-id")
                        .await?
                }
                Kind::NetworkInterface => self.network_interface(id).await?,
                Kind::Instance => self.instances(std::slice::from_ref(id)).await?,
                Kind::LaunchTemplate => self.launch_template(id).await?,
                Kind::Tagged => match tagged_kind(id) {
                    Some(Kind::SecurityGroup) => self.security_group(id).await?,
                    Some(Kind::Subnet) => self.subnets(std::slice::from_ref(id)).await?,
                    Some(Kind::Instance) => self.instances(std::slice::from_ref(id)).await?,
                    Some(Kind::LaunchTemplate) => self.launch_template(id).await?,
                    _ => BTreeSet::new(),
                },
            };
            clusters.extend(found);
        }
        if clusters.is_empty() {
            return Ok(Err(format!(
                "{} {} belongs to no EKS cluster in this region (or no longer exists)",
                kind_name(route.kind),
                ids.join(", ")
            )));
        }
        Ok(Ok(clusters))
    }

    async fn security_group(&self, id: &str) -> Result<BTreeSet<String>, AwsErr> {
        let out = self
            .clients
            .ec2
            .describe_security_groups()
            .filters(filter("group-id", [id]))
            .send()
            .await
            .map_err(|e| aws_err("DescribeSecurityGroups", e))?;
        let Some(g) = out.security_groups().first() else {
            return Ok(BTreeSet::new());
        };
        let tagged = clusters_from_tags(
            g.tags()
                .iter()
                .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default()))),
        );
        if !tagged.is_empty() {
            return Ok(tagged);
        }
        // Node instances that use the group, then the clusters whose control plane uses it.
        let mut found = self.instances_by(filter("instance.group-id", [id])).await?;
        found.extend(self.index_match(|c| c.groups.contains(id)).await?);
        Ok(found)
    }

    async fn subnets(&self, ids: &[String]) -> Result<BTreeSet<String>, AwsErr> {
        if ids.is_empty() {
            return Ok(BTreeSet::new());
        }
        let out = self
            .clients
            .ec2
            .describe_subnets()
            .filters(filter("subnet-id", ids.to_vec()))
            .send()
            .await
            .map_err(|e| aws_err("DescribeSubnets", e))?;
        let mut found = BTreeSet::new();
        for s in out.subnets() {
            found.extend(clusters_from_tags(
                s.tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default()))),
            ));
        }
        found.extend(self.instances_by(filter("subnet-id", ids.to_vec())).await?);
        let ids: BTreeSet<&String> = ids.iter().collect();
        found.extend(
            self.index_match(|c| c.subnets.iter().any(|s| ids.contains(s)))
                .await?,
        );
        Ok(found)
    }

    /// A route table's subnets; the main table stands for every subnet of its VPC.
    async fn route_table(&self, id: &str, by: &str) -> Result<BTreeSet<String>, AwsErr> {
        let out = self
            .clients
            .ec2
            .describe_route_tables()
            .filters(filter(by, [id]))
            .send()
            .await
            .map_err(|e| aws_err("DescribeRouteTables", e))?;
        let Some(t) = out.route_tables().first() else {
            return Ok(BTreeSet::new());
        };
        if t.associations().iter().any(|a| a.main() == Some(true)) {
            if let Some(vpc) = t.vpc_id() {
                return self.index_match(|c| c.vpc.as_deref() == Some(vpc)).await;
            }
        }
        let subnets: Vec<String> = t
            .associations()
            .iter()
            .filter_map(|a| a.subnet_id().map(str::to_string))
            .collect();
        self.subnets(&subnets).await
    }

    async fn network_interface(&self, id: &str) -> Result<BTreeSet<String>, AwsErr> {
        let out = self
            .clients
            .ec2
            .describe_network_interfaces()
            .filters(filter("network-interface-id", [id]))
            .send()
            .await
            .map_err(|e| aws_err("DescribeNetworkInterfaces", e))?;
        let Some(eni) = out.network_interfaces().first() else {
            return Ok(BTreeSet::new());
        };
        // EKS names its control-plane interfaces "Amazon EKS <cluster>".
        if let Some(name) = eni
            .description()
            .and_then(|d| d.strip_prefix("Amazon EKS "))
        {
            return Ok([name.to_string()].into());
        }
        let mut found = clusters_from_tags(
            eni.tag_set()
                .iter()
                .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default()))),
        );
        if let Some(i) = eni.attachment().and_then(|a| a.instance_id()) {
            found.extend(self.instances(&[i.to_string()]).await?);
        }
        for g in eni.groups().iter().filter_map(|g| g.group_id()) {
            found.extend(self.security_group(g).await?);
        }
        Ok(found)
    }

    async fn instances(&self, ids: &[String]) -> Result<BTreeSet<String>, AwsErr> {
        self.instances_by(filter("instance-id", ids.to_vec())).await
    }

    async fn instances_by(&self, f: Filter) -> Result<BTreeSet<String>, AwsErr> {
        let out = self
            .clients
            .ec2
            .describe_instances()
            .filters(f)
            .send()
            .await
            .map_err(|e| aws_err("DescribeInstances", e))?;
        Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .flat_map(|i| {
                clusters_from_tags(
                    i.tags()
                        .iter()
                        .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default()))),
                )
            })
            .collect())
    }

    async fn launch_template(&self, id_or_name: &str) -> Result<BTreeSet<String>, AwsErr> {
        let req = self.clients.ec2.describe_launch_templates();
        let req = if id_or_name.starts_with("lt-") {
            req.launch_template_ids(id_or_name)
        } else {
            req.launch_template_names(id_or_name)
        };
        let out = match req.send().await {
            Ok(out) => out,
            // InvalidLaunchTemplateId.NotFound, InvalidLaunchTemplateName.NotFoundException: it is gone.
            Err(e) if e.code().is_some_and(|c| c.contains("NotFound")) => {
                return Ok(BTreeSet::new())
            }
            Err(e) => return Err(aws_err("DescribeLaunchTemplates", e)),
        };
        let Some(t) = out.launch_templates().first() else {
            return Ok(BTreeSet::new());
        };
        let mut found = clusters_from_tags(
            t.tags()
                .iter()
                .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default()))),
        );
        if found.is_empty() {
            // Instances launched from it carry their cluster's tags.
            if let Some(id) = t.launch_template_id() {
                found.extend(
                    self.instances_by(filter("tag:aws:ec2launchtemplate:id", [id]))
                        .await?,
                );
            }
        }
        Ok(found)
    }

    /// Clusters of the region whose control plane matches.
    async fn index_match(
        &self,
        pred: impl Fn(&IndexedCluster) -> bool,
    ) -> Result<BTreeSet<String>, AwsErr> {
        {
            let cached = self
                .index
                .cached
                .lock()
                .map_err(|_| "index lock poisoned".to_string())?;
            if let Some((at, idx)) = cached.as_ref() {
                if at.elapsed() < INDEX_TTL {
                    return Ok(idx
                        .iter()
                        .filter(|(_, c)| pred(c))
                        .map(|(n, _)| n.clone())
                        .collect());
                }
            }
        }
        let idx = self.build_index().await?;
        let found = idx
            .iter()
            .filter(|(_, c)| pred(c))
            .map(|(n, _)| n.clone())
            .collect();
        if let Ok(mut cached) = self.index.cached.lock() {
            *cached = Some((Instant::now(), idx));
        }
        Ok(found)
    }

    async fn build_index(&self) -> Result<BTreeMap<String, IndexedCluster>, AwsErr> {
        let names = crate::collect::list_clusters(self.clients)
            .await
            .map_err(|e| e.to_string())?;
        let mut idx = BTreeMap::new();
        for name in names {
            let out = match self.clients.eks.describe_cluster().name(&name).send().await {
                Ok(o) => o,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    continue
                }
                Err(e) => return Err(aws_err("DescribeCluster", e)),
            };
            let Some(vpc) = out.cluster().and_then(|c| c.resources_vpc_config()) else {
                continue;
            };
            let mut c = IndexedCluster {
                groups: vpc.security_group_ids().iter().cloned().collect(),
                subnets: vpc.subnet_ids().iter().cloned().collect(),
                vpc: vpc.vpc_id().map(str::to_string),
            };
            c.groups
                .extend(vpc.cluster_security_group_id().map(str::to_string));
            idx.insert(name, c);
        }
        // Some answers (the emulator's among them) leave out the VPC: take it from the subnets.
        let missing: Vec<String> = idx
            .values()
            .filter(|c| c.vpc.is_none())
            .flat_map(|c| c.subnets.iter().cloned())
            .collect();
        if !missing.is_empty() {
            let out = self
                .clients
                .ec2
                .describe_subnets()
                .filters(filter("subnet-id", missing))
                .send()
                .await
                .map_err(|e| aws_err("DescribeSubnets", e))?;
            let vpc_of: BTreeMap<&str, &str> = out
                .subnets()
                .iter()
                .filter_map(|s| Some((s.subnet_id()?, s.vpc_id()?)))
                .collect();
            for c in idx.values_mut().filter(|c| c.vpc.is_none()) {
                c.vpc = c
                    .subnets
                    .iter()
                    .find_map(|s| vpc_of.get(s.as_str()).map(|v| v.to_string()));
            }
        }
        Ok(idx)
    }
}

fn kind_name(k: Kind) -> &'static str {
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
