//! The cluster's security picture as our own plain types.
//!
//! No SDK type crosses this line: the collector fills these structs, rules read them, and a snapshot
//! round-trips through JSON so rules can be tested from fixtures and a saved snapshot evaluated offline.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A piece of state that was read, or could not be read (with the AWS error code and message).
///
/// Rules must judge only `Known` data: an `Unknown` becomes an `UNKNOWN` result, never a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fact<T> {
    Known(T),
    Unknown(Unreadable),
}

/// Why a piece of state is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreadable {
    /// The AWS error code (`AccessDeniedException`, `UnauthorizedOperation`, `InvalidGroup.NotFound`…),
    /// or a short code of ours (`NotReturned`) when the API answered without the field.
    pub code: String,
    pub message: String,
}

impl Unreadable {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

impl<T> Fact<T> {
    pub fn unknown(code: impl Into<String>, message: impl Into<String>) -> Self {
        Fact::Unknown(Unreadable::new(code, message))
    }

    pub fn known(&self) -> Option<&T> {
        match self {
            Fact::Known(v) => Some(v),
            Fact::Unknown(_) => None,
        }
    }

    /// Transforms the value if it is known; an unknown stays unknown with its reason.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Fact<U> {
        match self {
            Fact::Known(v) => Fact::Known(f(v)),
            Fact::Unknown(u) => Fact::Unknown(u),
        }
    }

    pub fn as_ref(&self) -> Result<&T, &Unreadable> {
        match self {
            Fact::Known(v) => Ok(v),
            Fact::Unknown(u) => Err(u),
        }
    }
}

/// A part of the snapshot beyond the cluster's own description. Each rule declares the parts it reads
/// (`RuleMeta::reads`); the collector reads a part only when an enabled rule needs it, and records the
/// others as `NotCollected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Part {
    /// The subnets of the cluster, its nodegroups and its nodes, with their effective route tables.
    Subnets,
    /// The control plane's and the nodes' security groups, with rule ids for world-open permissions.
    SecurityGroups,
    /// Managed nodegroups (`DescribeNodegroup`).
    Nodegroups,
    /// The launch template versions the nodegroups use (needs `Nodegroups`).
    LaunchTemplates,
    /// Node instances found by their cluster tag.
    Instances,
    /// The names of the cluster's add-ons.
    Addons,
    /// Add-on configuration values, for the add-ons [`ReadPlan::addon_configurations`] names.
    AddonConfiguration,
    /// Access entries holding [`CLUSTER_ADMIN_POLICY`], with their policy associations.
    AccessEntries,
    /// EKS's support status of the cluster's Kubernetes version.
    VersionSupport,
}

/// What the collector must read for one evaluation: the rule catalog answers (it implements this for
/// the run's settings), the collector asks, and so never needs to know a rule.
pub trait ReadPlan: Sync {
    /// Whether an enabled rule reads `part`.
    fn needs(&self, part: Part) -> bool;
    /// The add-ons (among `addons`, the cluster's) whose configuration a verdict depends on.
    fn addon_configurations(&self, cluster: &Cluster, addons: &[String]) -> Vec<String>;
}

/// The EKS access policy that grants cluster-wide administration; the snapshot's access entries are
/// those that hold it (the API filters by it, so entries granting less cost no call).
pub const CLUSTER_ADMIN_POLICY: &str =
    "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";

/// Everything the rules need to judge one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterSnapshot {
    pub account: String,
    pub region: String,
    pub cluster: Cluster,
    /// Every subnet named by the cluster, its nodegroups or its node instances, by id.
    pub subnets: BTreeMap<String, Fact<Subnet>>,
    /// Every security group attached to the control plane or to nodes, by id.
    pub security_groups: BTreeMap<String, Fact<SecurityGroup>>,
    /// Managed nodegroups.
    pub nodegroups: Fact<Vec<Nodegroup>>,
    /// Node instances found by their cluster tags (managed and self-managed), any state but terminated.
    pub instances: Fact<Vec<Instance>>,
    /// EKS add-ons of the cluster. The network-policy rule reads their names, and `vpc-cni`'s configuration.
    pub addons: Fact<Vec<Addon>>,
    /// Access entries whose principal holds `AmazonEKSClusterAdminPolicy` (in any scope), with all their
    /// policy associations; the other entries grant less and are not read.
    pub cluster_admin_entries: Fact<Vec<AccessEntry>>,
    /// EKS's support status of the cluster's Kubernetes version; `None` when EKS does not list the version
    /// at all (long past its end of support).
    pub version_support: Fact<Option<VersionSupport>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub name: String,
    pub arn: String,
    /// `ACTIVE`, `CREATING`, `UPDATING`, `DELETING`, `FAILED`, `PENDING`.
    pub status: String,
    pub version: Option<String>,
    pub endpoint: Fact<Endpoint>,
    /// The EKS-created cluster security group (absent on very old clusters).
    pub cluster_security_group_id: Option<String>,
    /// Additional control-plane security groups from `resourcesVpcConfig.securityGroupIds`.
    pub security_group_ids: Vec<String>,
    pub subnet_ids: Vec<String>,
    pub vpc_id: Option<String>,
    /// Every entry of `logging.clusterLogging` (EKS answers one enabled and one disabled entry).
    pub logging: Fact<Vec<LogSetup>>,
    /// Envelope encryption with a customer KMS key, per resource list (`secrets`); empty when none is set.
    pub encryption: Fact<Vec<EncryptionConfig>>,
    pub authentication_mode: Fact<String>,
    pub deletion_protection: Fact<bool>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub public_access: bool,
    pub private_access: bool,
    pub public_access_cidrs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSetup {
    pub types: Vec<String>,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionConfig {
    pub resources: Vec<String>,
    pub key_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    pub map_public_ip_on_launch: bool,
    /// The route table in force: the explicit association, else the VPC's main table.
    pub route_table: Fact<RouteTable>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTable {
    pub id: String,
    /// True when the subnet is associated with the table explicitly, false when it inherits the main table.
    pub explicit: bool,
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// IPv4 or IPv6 destination CIDR, or a prefix list id.
    pub destination: String,
    /// `igw-…`, `nat-…`, `eigw-…`, `tgw-…`, `pcx-…`, `eni-…`, `local`, …
    pub target: String,
    /// `active` or `blackhole`.
    pub state: String,
}

impl Route {
    pub fn is_default(&self) -> bool {
        self.destination == "0.0.0.0/0" || self.destination == "::/0"
    }

    /// An active route whose target is an internet gateway (an egress-only gateway is not one).
    pub fn to_internet_gateway(&self) -> bool {
        self.target.starts_with("igw-") && self.state != "blackhole"
    }
}

impl RouteTable {
    /// The first active default route (`0.0.0.0/0` or `::/0`) to an internet gateway.
    pub fn default_internet_route(&self) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| r.is_default() && r.to_internet_gateway())
    }

    /// The first active route of any destination to an internet gateway.
    pub fn any_internet_route(&self) -> Option<&Route> {
        self.routes.iter().find(|r| r.to_internet_gateway())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub vpc_id: Option<String>,
    pub ingress: Vec<IngressRule>,
    pub tags: BTreeMap<String, String>,
}

/// One ingress rule with exactly one source (a CIDR, a group or a prefix list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct IngressRule {
    /// `sgr-…`; read only where a rule needs it (world-open rules), so it can be revoked by id.
    pub rule_id: Option<String>,
    /// `-1` for all protocols, else `tcp`, `udp`, `icmp`, `icmpv6` or a protocol number.
    pub protocol: String,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub cidr_ipv4: Option<String>,
    pub cidr_ipv6: Option<String>,
    pub referenced_group_id: Option<String>,
    pub prefix_list_id: Option<String>,
    pub description: Option<String>,
}

impl IngressRule {
    /// True when the rule admits every port of every protocol, or every TCP and UDP port.
    pub fn all_ports(&self) -> bool {
        match self.protocol.as_str() {
            "-1" | "all" => true,
            "tcp" | "udp" | "6" | "17" => {
                matches!(
                    (self.from_port, self.to_port),
                    (Some(0) | Some(-1), Some(65535)) | (None, None)
                )
            }
            _ => false,
        }
    }

    /// The world-open source of this rule, if it is `0.0.0.0/0` or `::/0`.
    pub fn world_source(&self) -> Option<&str> {
        [self.cidr_ipv4.as_deref(), self.cidr_ipv6.as_deref()]
            .into_iter()
            .flatten()
            .find(|c| *c == "0.0.0.0/0" || *c == "::/0")
    }

    /// Ports as a person reads them: `all`, `22`, `1024-2048`, `icmp`.
    pub fn ports(&self) -> String {
        if self.all_ports() {
            return "all".into();
        }
        match (self.protocol.as_str(), self.from_port, self.to_port) {
            ("icmp" | "1" | "icmpv6" | "58", _, _) => self.protocol.clone(),
            (p, Some(f), Some(t)) if f == t => format!("{p}/{f}"),
            (p, Some(f), Some(t)) => format!("{p}/{f}-{t}"),
            (p, _, _) => p.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nodegroup {
    pub name: String,
    pub status: String,
    pub subnet_ids: Vec<String>,
    pub remote_access: Option<RemoteAccess>,
    /// The security group EKS created for remote access, from `resources.remoteAccessSecurityGroup`.
    pub remote_access_security_group: Option<String>,
    pub launch_template: Option<LaunchTemplateRef>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteAccess {
    pub ec2_ssh_key: Option<String>,
    pub source_security_groups: Vec<String>,
}

/// The launch template a nodegroup names, as EKS reports it, and the version of it that is in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchTemplateRef {
    pub id: Option<String>,
    pub name: Option<String>,
    /// A version number, `$Default` or `$Latest`; absent means the template's default version.
    pub version: Option<String>,
    /// That version as EC2 describes it (aliases resolved).
    pub in_use: Fact<LaunchTemplateVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchTemplateVersion {
    pub template_id: String,
    pub template_name: Option<String>,
    pub version_number: i64,
    /// `None` when the version sets no metadata options: instances then get the AMI's or the account's
    /// defaults, which the template does not pin.
    pub metadata_options: Option<MetadataOptions>,
}

/// Instance metadata service settings, of an instance or of a launch template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MetadataOptions {
    /// `required` (IMDSv2 only) or `optional` (IMDSv1 allowed); `None` in a template that leaves it unset.
    pub http_tokens: Option<String>,
    /// How many network hops an IMDS response may travel; 1 keeps it on the node, away from pods.
    pub http_put_response_hop_limit: Option<i32>,
    /// `enabled` or `disabled`.
    pub http_endpoint: Option<String>,
}

impl MetadataOptions {
    /// True when the metadata endpoint is switched off entirely (nothing to reach).
    pub fn endpoint_disabled(&self) -> bool {
        self.http_endpoint.as_deref() == Some("disabled")
    }

    /// True when only IMDSv2 (session tokens) is accepted.
    pub fn tokens_required(&self) -> bool {
        self.http_tokens.as_deref() == Some("required")
    }
}

/// One EKS add-on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addon {
    pub name: String,
    /// The add-on's `configurationValues` (JSON or YAML as the user gave it; `None` when unset). Read only
    /// for the add-ons a rule looks inside (`vpc-cni`); `NotCollected` for the others.
    pub configuration_values: Fact<Option<String>>,
}

/// An access entry and its access policy associations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    pub principal_arn: String,
    pub policies: Fact<Vec<AccessPolicyAssociation>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessPolicyAssociation {
    pub policy_arn: String,
    /// `cluster` or `namespace`.
    pub scope: String,
    /// The namespaces of a `namespace` scope.
    pub namespaces: Vec<String>,
}

/// What `DescribeClusterVersions` says about one Kubernetes version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionSupport {
    pub version: String,
    /// `STANDARD_SUPPORT`, `EXTENDED_SUPPORT` or `UNSUPPORTED`.
    pub status: String,
    /// `YYYY-MM-DD`.
    pub end_of_standard_support: Option<String>,
    pub end_of_extended_support: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    /// `pending`, `running`, `stopping`, `stopped`, `shutting-down`.
    pub state: String,
    pub subnet_id: Option<String>,
    pub public_ip: Option<String>,
    pub security_group_ids: Vec<String>,
    /// The managed nodegroup that launched it, from the `eks:nodegroup-name` tag.
    pub nodegroup: Option<String>,
    pub metadata_options: Fact<MetadataOptions>,
}

impl ClusterSnapshot {
    /// The subnets the nodes live in: every nodegroup's subnets and every node instance's subnet, once each.
    /// `None` when the nodegroups or instances could not be read.
    pub fn node_subnet_ids(&self) -> Result<Vec<String>, &Unreadable> {
        let mut ids = std::collections::BTreeSet::new();
        for ng in self.nodegroups.as_ref()? {
            ids.extend(ng.subnet_ids.iter().cloned());
        }
        for i in self.instances.as_ref()? {
            ids.extend(i.subnet_id.iter().cloned());
        }
        Ok(ids.into_iter().collect())
    }
}
