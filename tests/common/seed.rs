//! Seeds realistic EKS topologies into the emulator through the real SDK clients.
//! Shared by the integration tests and the demo (`examples/seed.rs`).
#![allow(dead_code)]

use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, IpPermission, IpRange, Ipv6Range, Tag, UserIdGroupPair,
};
use aws_sdk_eks::types::{
    AccessScope, AccessScopeType, AuthenticationMode, CreateAccessConfigRequest, EncryptionConfig,
    LogSetup, LogType, Logging, Provider, VpcConfigRequest,
};

// Relative to this file's folder however it is included (tests/common/mod.rs, examples/demo.rs).
#[path = "seed/nodes.rs"]
mod nodes;
pub use nodes::*;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A VPC with an internet gateway, two public subnets (explicitly associated with a table that routes
/// 0.0.0.0/0 to the gateway) and two private subnets (a table with only the local route), in two AZs.
#[derive(Debug, Clone)]
pub struct Network {
    pub vpc: String,
    pub igw: String,
    pub main_table: String,
    pub public_table: String,
    pub private_table: String,
    pub public: [String; 2],
    pub private: [String; 2],
}

pub async fn network(ec2: &aws_sdk_ec2::Client, region: &str) -> Result<Network, Error> {
    let vpc = ec2.create_vpc().cidr_block("10.0.0.0/16").send().await?;
    let vpc = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .ok_or("no vpc id")?
        .to_string();
    let igw = ec2.create_internet_gateway().send().await?;
    let igw = igw
        .internet_gateway()
        .and_then(|g| g.internet_gateway_id())
        .ok_or("no igw id")?
        .to_string();
    ec2.attach_internet_gateway()
        .internet_gateway_id(&igw)
        .vpc_id(&vpc)
        .send()
        .await?;
    let main_table = ec2
        .describe_route_tables()
        .filters(Filter::builder().name("vpc-id").values(&vpc).build())
        .filters(
            Filter::builder()
                .name("association.main")
                .values("true")
                .build(),
        )
        .send()
        .await?
        .route_tables()
        .first()
        .and_then(|t| t.route_table_id())
        .ok_or("no main table")?
        .to_string();
    let public_table = route_table(ec2, &vpc).await?;
    ec2.create_route()
        .route_table_id(&public_table)
        .destination_cidr_block("0.0.0.0/0")
        .gateway_id(&igw)
        .send()
        .await?;
    let private_table = route_table(ec2, &vpc).await?;
    let mut subnets = Vec::new();
    for (i, (az, table)) in [
        ("a", &public_table),
        ("b", &public_table),
        ("a", &private_table),
        ("b", &private_table),
    ]
    .into_iter()
    .enumerate()
    {
        let id = subnet(
            ec2,
            &vpc,
            &format!("10.0.{i}.0/24"),
            &format!("{region}{az}"),
        )
        .await?;
        ec2.associate_route_table()
            .route_table_id(table)
            .subnet_id(&id)
            .send()
            .await?;
        subnets.push(id);
    }
    Ok(Network {
        vpc,
        igw,
        main_table,
        public_table,
        private_table,
        public: [subnets[0].clone(), subnets[1].clone()],
        private: [subnets[2].clone(), subnets[3].clone()],
    })
}

pub async fn route_table(ec2: &aws_sdk_ec2::Client, vpc: &str) -> Result<String, Error> {
    let t = ec2.create_route_table().vpc_id(vpc).send().await?;
    Ok(t.route_table()
        .and_then(|t| t.route_table_id())
        .ok_or("no route table id")?
        .to_string())
}

pub async fn subnet(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
    cidr: &str,
    az: &str,
) -> Result<String, Error> {
    let s = ec2
        .create_subnet()
        .vpc_id(vpc)
        .cidr_block(cidr)
        .availability_zone(az)
        .send()
        .await?;
    Ok(s.subnet()
        .and_then(|s| s.subnet_id())
        .ok_or("no subnet id")?
        .to_string())
}

pub async fn map_public_ip(ec2: &aws_sdk_ec2::Client, subnet: &str, on: bool) -> Result<(), Error> {
    ec2.modify_subnet_attribute()
        .subnet_id(subnet)
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(on).build())
        .send()
        .await?;
    Ok(())
}

/// One ingress permission to seed.
pub enum Ingress<'a> {
    /// protocol, from, to, CIDR (v4 or v6)
    Cidr(&'a str, i32, i32, &'a str),
    /// all traffic from another group
    Group(&'a str),
}

/// SSH open to the whole internet: what sg-open-ingress fails (HIGH).
pub const OPEN_SSH: Ingress<'static> = Ingress::Cidr("tcp", 22, 22, "0.0.0.0/0");

pub async fn security_group(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
    name: &str,
    ingress: &[Ingress<'_>],
) -> Result<String, Error> {
    let g = ec2
        .create_security_group()
        .group_name(name)
        .description(format!("{name} (seeded)"))
        .vpc_id(vpc)
        .send()
        .await?;
    let id = g.group_id().ok_or("no group id")?.to_string();
    authorize(ec2, &id, ingress).await?;
    Ok(id)
}

pub async fn authorize(
    ec2: &aws_sdk_ec2::Client,
    group: &str,
    ingress: &[Ingress<'_>],
) -> Result<(), Error> {
    if ingress.is_empty() {
        return Ok(());
    }
    ec2.authorize_security_group_ingress()
        .group_id(group)
        .set_ip_permissions(Some(permissions(ingress)))
        .send()
        .await?;
    Ok(())
}

/// Takes these permissions off the group again (as a person fixing it would).
pub async fn revoke(
    ec2: &aws_sdk_ec2::Client,
    group: &str,
    ingress: &[Ingress<'_>],
) -> Result<(), Error> {
    ec2.revoke_security_group_ingress()
        .group_id(group)
        .set_ip_permissions(Some(permissions(ingress)))
        .send()
        .await?;
    Ok(())
}

fn permissions(ingress: &[Ingress<'_>]) -> Vec<IpPermission> {
    let perms = ingress.iter().map(|i| match i {
        Ingress::Cidr(proto, from, to, cidr) => {
            let p = IpPermission::builder()
                .ip_protocol(*proto)
                .from_port(*from)
                .to_port(*to);
            if cidr.contains(':') {
                p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(*cidr).build())
                    .build()
            } else {
                p.ip_ranges(IpRange::builder().cidr_ip(*cidr).build())
                    .build()
            }
        }
        Ingress::Group(g) => IpPermission::builder()
            .ip_protocol("-1")
            .user_id_group_pairs(UserIdGroupPair::builder().group_id(*g).build())
            .build(),
    });
    perms.collect()
}

pub async fn tag(
    ec2: &aws_sdk_ec2::Client,
    resource: &str,
    key: &str,
    value: &str,
) -> Result<(), Error> {
    ec2.create_tags()
        .resources(resource)
        .tags(Tag::builder().key(key).value(value).build())
        .send()
        .await?;
    Ok(())
}

/// A cluster's network and tags. Start from the named shape closest to the test's and change what the
/// test is about: `ClusterSpec::private("web", &net).groups([&sg])`.
pub struct ClusterSpec<'a> {
    pub name: &'a str,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub public: bool,
    pub private: bool,
    pub public_cidrs: &'a [&'a str],
    pub tags: &'a [(&'a str, &'a str)],
}

impl<'a> ClusterSpec<'a> {
    /// Endpoint private only, in the network's two private subnets, no extra security group, no tags:
    /// what passes every network rule.
    pub fn private(name: &'a str, net: &Network) -> Self {
        ClusterSpec {
            name,
            subnets: net.private.to_vec(),
            security_groups: vec![],
            public: false,
            private: true,
            public_cidrs: &[],
            tags: &[],
        }
    }

    /// Endpoint public only, open to the whole internet: what both endpoint rules fail.
    pub fn public_open(name: &'a str, net: &Network) -> Self {
        Self::public_only(name, net, &["0.0.0.0/0"])
    }

    /// Endpoint public only, reachable from `cidrs`.
    pub fn public_only(name: &'a str, net: &Network, cidrs: &'a [&'a str]) -> Self {
        ClusterSpec {
            public: true,
            private: false,
            public_cidrs: cidrs,
            ..Self::private(name, net)
        }
    }

    /// Endpoint public to `cidrs` and private too.
    pub fn public_restricted(name: &'a str, net: &Network, cidrs: &'a [&'a str]) -> Self {
        ClusterSpec {
            public: true,
            public_cidrs: cidrs,
            ..Self::private(name, net)
        }
    }

    /// Neither endpoint on (the emulator allows it): the private-endpoint fix's starting point.
    pub fn no_endpoint(name: &'a str, net: &Network) -> Self {
        ClusterSpec {
            private: false,
            ..Self::private(name, net)
        }
    }

    /// These security groups besides the one EKS creates.
    pub fn groups<S: ToString>(mut self, groups: impl IntoIterator<Item = S>) -> Self {
        self.security_groups = groups.into_iter().map(|g| g.to_string()).collect();
        self
    }

    /// In these subnets instead.
    pub fn subnets<S: ToString>(mut self, subnets: impl IntoIterator<Item = S>) -> Self {
        self.subnets = subnets.into_iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn tagged(mut self, tags: &'a [(&'a str, &'a str)]) -> Self {
        self.tags = tags;
        self
    }
}

/// What a cluster may set beyond its network at creation (moto cannot associate encryption later).
/// The last four need the emulator's EKS extension (scripts/moto_eks_ext.py); plain moto ignores the
/// first three and has no add-ons.
#[derive(Default)]
pub struct ClusterExtras<'a> {
    /// Control-plane log types to enable.
    pub logging: &'a [&'a str],
    /// A KMS key ARN to envelope-encrypt Secrets with.
    pub secrets_key: Option<&'a str>,
    /// Kubernetes version (None: EKS's default).
    pub version: Option<&'a str>,
    /// `accessConfig.authenticationMode` (None: the API's default, CONFIG_MAP). The creator is never
    /// made admin through an access entry, so the seeded entries are exactly the test's.
    pub authentication_mode: Option<&'a str>,
    pub deletion_protection: bool,
    /// Install the vpc-cni add-on with `enableNetworkPolicy: "true"`.
    pub network_policy: bool,
}

/// Everything the catalog's defaults ask of a control plane: logging api, audit, authenticator,
/// Secrets encryption, access entries, deletion protection, a network policy engine.
pub const HARDENED: ClusterExtras<'static> = ClusterExtras {
    logging: &["api", "audit", "authenticator"],
    secrets_key: Some(
        "arn:aws:kms:us-east-1:123456789012:key/0e6c9b4a-1111-2222-3333-444455556666",
    ),
    version: None,
    authentication_mode: Some("API_AND_CONFIG_MAP"),
    deletion_protection: true,
    network_policy: true,
};

pub async fn cluster(eks: &aws_sdk_eks::Client, spec: ClusterSpec<'_>) -> Result<String, Error> {
    cluster_with(eks, spec, ClusterExtras::default()).await
}

pub async fn cluster_with(
    eks: &aws_sdk_eks::Client,
    spec: ClusterSpec<'_>,
    extras: ClusterExtras<'_>,
) -> Result<String, Error> {
    let mut vpc = VpcConfigRequest::builder()
        .set_subnet_ids(Some(spec.subnets))
        .set_security_group_ids(Some(spec.security_groups))
        .endpoint_public_access(spec.public)
        .endpoint_private_access(spec.private);
    for c in spec.public_cidrs {
        vpc = vpc.public_access_cidrs(*c);
    }
    let mut req = eks
        .create_cluster()
        .name(spec.name)
        .role_arn("arn:aws:iam::123456789012:role/eks-cluster")
        .resources_vpc_config(vpc.build());
    for (k, v) in spec.tags {
        req = req.tags(*k, *v);
    }
    if !extras.logging.is_empty() {
        let setup = extras
            .logging
            .iter()
            .fold(LogSetup::builder().enabled(true), |b, t| {
                b.types(LogType::from(*t))
            })
            .build();
        req = req.logging(Logging::builder().cluster_logging(setup).build());
    }
    if let Some(key) = extras.secrets_key {
        // `resources` is deprecated (EKS encrypts all API data with its own keys) but still how a
        // customer key is assigned to Secrets, which is what the secrets rule reads back.
        #[allow(deprecated)]
        let secrets = EncryptionConfig::builder().resources("secrets");
        req = req.encryption_config(
            secrets
                .provider(Provider::builder().key_arn(key).build())
                .build(),
        );
    }
    if let Some(version) = extras.version {
        req = req.version(version);
    }
    if let Some(mode) = extras.authentication_mode {
        req = req.access_config(
            CreateAccessConfigRequest::builder()
                .authentication_mode(AuthenticationMode::from(mode))
                .bootstrap_cluster_creator_admin_permissions(false)
                .build(),
        );
    }
    if extras.deletion_protection {
        req = req.deletion_protection(true);
    }
    let out = req.send().await?;
    if extras.network_policy {
        addon(
            eks,
            spec.name,
            "vpc-cni",
            Some(r#"{"enableNetworkPolicy":"true"}"#),
        )
        .await?;
    }
    Ok(out
        .cluster()
        .and_then(|c| c.arn())
        .unwrap_or_default()
        .to_string())
}

/// An EKS add-on with these `configurationValues`.
pub async fn addon(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    name: &str,
    configuration: Option<&str>,
) -> Result<(), Error> {
    eks.create_addon()
        .cluster_name(cluster)
        .addon_name(name)
        .set_configuration_values(configuration.map(str::to_string))
        .send()
        .await?;
    Ok(())
}

/// An access entry for `principal` with `policy` (a name such as `AmazonEKSClusterAdminPolicy`)
/// associated at cluster scope, or in `namespaces` when given.
pub async fn access_entry(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
    policy: &str,
    namespaces: &[&str],
) -> Result<(), Error> {
    eks.create_access_entry()
        .cluster_name(cluster)
        .principal_arn(principal)
        .send()
        .await?;
    let scope = if namespaces.is_empty() {
        AccessScope::builder().r#type(AccessScopeType::Cluster)
    } else {
        namespaces.iter().fold(
            AccessScope::builder().r#type(AccessScopeType::Namespace),
            |b, n| b.namespaces(*n),
        )
    };
    eks.associate_access_policy()
        .cluster_name(cluster)
        .principal_arn(principal)
        .policy_arn(format!("arn:aws:eks::aws:cluster-access-policy/{policy}"))
        .access_scope(scope.build())
        .send()
        .await?;
    Ok(())
}

/// A fresh network and, in its private subnets, cluster `name` (private endpoint) whose extra security
/// group opens SSH to the world: with [`HARDENED`] extras its only failure is sg-open-ingress (HIGH).
/// Returns the network and the group's id.
pub async fn open_ssh_cluster(
    eks: &aws_sdk_eks::Client,
    ec2: &aws_sdk_ec2::Client,
    region: &str,
    name: &str,
    extras: ClusterExtras<'_>,
) -> Result<(Network, String), Error> {
    let net = network(ec2, region).await?;
    let sg = security_group(ec2, &net.vpc, "ssh", &[OPEN_SSH]).await?;
    cluster_with(eks, ClusterSpec::private(name, &net).groups([&sg]), extras).await?;
    Ok((net, sg))
}

/// The demo's account: `insecure` breaks every rule of the seed document once, and logging, Secrets
/// encryption, IMDSv2, the authentication mode, version support and deletion protection too;
/// `compliant` breaks none (it runs the vpc-cni add-on with network policy, access entries and no
/// broad admin, deletion protection and a version in standard support).
pub struct Demo {
    pub network: Network,
    pub open_ssh_sg: String,
    pub open_all_sg: String,
    pub cluster_sg: String,
    pub node_sg: String,
    pub bastion_sg: String,
    pub insecure_node: String,
}

pub async fn demo_account(
    eks: &aws_sdk_eks::Client,
    ec2: &aws_sdk_ec2::Client,
    region: &str,
) -> Result<Demo, Error> {
    let net = network(ec2, region).await?;
    let bastion_sg = security_group(
        ec2,
        &net.vpc,
        "bastion",
        &[Ingress::Cidr("tcp", 22, 22, "198.51.100.0/24")],
    )
    .await?;
    let cluster_sg = security_group(ec2, &net.vpc, "compliant-control-plane", &[]).await?;
    authorize(ec2, &cluster_sg, &[Ingress::Group(&cluster_sg)]).await?;
    let node_sg = security_group(
        ec2,
        &net.vpc,
        "compliant-nodes",
        &[Ingress::Group(&cluster_sg)],
    )
    .await?;
    let open_ssh_sg = security_group(ec2, &net.vpc, "insecure-admin", &[OPEN_SSH]).await?;
    let open_all_sg = security_group(
        ec2,
        &net.vpc,
        "insecure-nodes",
        &[Ingress::Cidr("-1", -1, -1, "0.0.0.0/0")],
    )
    .await?;
    map_public_ip(ec2, &net.public[0], true).await?;

    // Everything wrong at once: one public subnet in one AZ, an endpoint open to the world and not
    // reachable privately, SSH and all traffic open, a nodegroup with SSH from anywhere, a node with a
    // public IP in a public subnet; the aws-auth ConfigMap only and a version past standard support.
    cluster_with(
        eks,
        ClusterSpec::public_open("insecure", &net)
            .subnets([&net.public[0]])
            .groups([&open_ssh_sg])
            .tagged(&[("team", "payments")]),
        ClusterExtras {
            version: Some("1.30"),
            ..ClusterExtras::default()
        },
    )
    .await?;
    nodegroup(
        eks,
        "insecure",
        "workers",
        &[&net.public[0]],
        Ssh::OpenToWorld,
    )
    .await?;
    let insecure_node = node(
        ec2,
        "insecure",
        Some("workers"),
        &net.public[0],
        &[&open_all_sg],
    )
    .await?;

    // Private subnets in two AZs, endpoint restricted and private access on, SSH only from a bastion,
    // audit logs on, Secrets encrypted, nodes on IMDSv2 with hop limit 1.
    cluster_with(
        eks,
        ClusterSpec::public_restricted("compliant", &net, &["203.0.113.0/24"])
            .groups([&cluster_sg])
            .tagged(&[("team", "platform")]),
        HARDENED,
    )
    .await?;
    let v2 = Some(("required", 1));
    node_with(ec2, "compliant", None, &net.private[0], &[&node_sg], v2).await?;
    node_with(ec2, "compliant", None, &net.private[1], &[&node_sg], v2).await?;
    Ok(Demo {
        network: net,
        open_ssh_sg,
        open_all_sg,
        cluster_sg,
        node_sg,
        bastion_sg,
        insecure_node,
    })
}
