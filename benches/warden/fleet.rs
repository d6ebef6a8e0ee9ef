//! What the benchmarks evaluate, seeded through the SDK with the tests' seeding helpers: one cluster
//! with three nodegroups, a three-cluster account for the storm, fleets of 50 and 200 clusters.

use crate::common::seed::{self, ClusterSpec, Ingress, Ssh};
use eks_warden::collect::Clients;
use futures::{stream, StreamExt, TryStreamExt};

pub type Error = seed::Error;

/// One cluster as a platform team runs it: private subnets in two AZs, a restricted public endpoint,
/// audit logs and Secrets encryption on, two nodegroups with SSH only from a bastion and a third from
/// a launch template, one node per nodegroup.
pub struct ThreeNodegroups {
    pub cluster: String,
    pub network: seed::Network,
    pub node_sg: String,
    pub instances: Vec<String>,
}

pub async fn three_nodegroups(
    clients: &Clients,
    region: &str,
    name: &str,
) -> Result<ThreeNodegroups, Error> {
    let (eks, ec2) = (&clients.eks, &clients.ec2);
    let net = seed::network(ec2, region).await?;
    let bastion = seed::security_group(
        ec2,
        &net.vpc,
        &format!("{name}-bastion"),
        &[Ingress::Cidr("tcp", 22, 22, "198.51.100.0/24")],
    )
    .await?;
    let control =
        seed::security_group(ec2, &net.vpc, &format!("{name}-control-plane"), &[]).await?;
    let node_sg = seed::security_group(
        ec2,
        &net.vpc,
        &format!("{name}-nodes"),
        &[Ingress::Group(&control)],
    )
    .await?;
    seed::tag(
        ec2,
        &node_sg,
        &format!("kubernetes.io/cluster/{name}"),
        "owned",
    )
    .await?;
    seed::cluster_with(
        eks,
        ClusterSpec {
            name,
            subnets: net.private.to_vec(),
            security_groups: vec![control.clone()],
            public: true,
            private: true,
            public_cidrs: &["203.0.113.0/24"],
            tags: &[("team", "platform")],
        },
        seed::HARDENED,
    )
    .await?;
    let private: Vec<&str> = net.private.iter().map(String::as_str).collect();
    seed::nodegroup(eks, name, "general", &private, Ssh::From(&[&bastion])).await?;
    seed::nodegroup(eks, name, "batch", &private, Ssh::From(&[&bastion])).await?;
    let template =
        seed::launch_template(ec2, &format!("{name}-nodes"), Some(("required", 1))).await?;
    seed::nodegroup_from_template(eks, name, "gpu", &private, &template, None).await?;
    let mut instances = Vec::new();
    for (i, ng) in ["general", "batch", "gpu"].iter().enumerate() {
        let subnet = &net.private[i % 2];
        instances.push(
            seed::node_with(
                ec2,
                name,
                Some(ng),
                subnet,
                &[&node_sg],
                Some(("required", 1)),
            )
            .await?,
        );
    }
    Ok(ThreeNodegroups {
        cluster: name.to_string(),
        network: net,
        node_sg,
        instances,
    })
}

/// `n` clusters, 25 to a VPC, with a mix of settings so every rule has work: each has its own node
/// security group (one in four open to SSH from anywhere), two nodegroups (one in seven with SSH open),
/// one node instance; one in five sits in public subnets, one in three has a world-open endpoint.
pub async fn fleet(clients: &Clients, region: &str, n: usize) -> Result<Vec<String>, Error> {
    let (eks, ec2) = (&clients.eks, &clients.ec2);
    let mut networks = Vec::new();
    for _ in 0..n.div_ceil(25) {
        let net = seed::network(ec2, region).await?;
        let bastion = seed::security_group(
            ec2,
            &net.vpc,
            "bastion",
            &[Ingress::Cidr("tcp", 22, 22, "198.51.100.0/24")],
        )
        .await?;
        seed::map_public_ip(ec2, &net.public[0], true).await?;
        networks.push((net, bastion));
    }
    let networks = &networks;
    stream::iter(0..n)
        .map(|i| async move {
            let (net, bastion) = &networks[i / 25];
            let name = format!("fleet-{i:03}");
            let ingress = if i % 4 == 0 {
                vec![
                    Ingress::Cidr("tcp", 22, 22, "0.0.0.0/0"),
                    Ingress::Group(bastion),
                ]
            } else {
                vec![Ingress::Group(bastion)]
            };
            let sg =
                seed::security_group(ec2, &net.vpc, &format!("{name}-nodes"), &ingress).await?;
            let subnets = if i % 5 == 0 {
                &net.public
            } else {
                &net.private
            };
            let cidrs: &[&str] = if i % 3 == 0 {
                &["0.0.0.0/0"]
            } else {
                &["203.0.113.0/24"]
            };
            let spec = ClusterSpec {
                name: &name,
                subnets: subnets.to_vec(),
                security_groups: vec![sg.clone()],
                public: true,
                private: i % 2 == 0,
                public_cidrs: cidrs,
                tags: &[("team", "fleet")],
            };
            if i % 2 == 0 {
                seed::cluster_with(eks, spec, seed::HARDENED).await?;
            } else {
                seed::cluster(eks, spec).await?;
            }
            let subnet_ids: Vec<&str> = subnets.iter().map(String::as_str).collect();
            let ssh = if i % 7 == 0 {
                Ssh::OpenToWorld
            } else {
                Ssh::From(&[bastion.as_str()])
            };
            seed::nodegroup(eks, &name, "general", &subnet_ids, ssh).await?;
            seed::nodegroup(
                eks,
                &name,
                "system",
                &subnet_ids,
                Ssh::From(&[bastion.as_str()]),
            )
            .await?;
            seed::node(ec2, &name, Some("general"), &subnets[i % 2], &[&sg]).await?;
            Ok::<_, Error>(name)
        })
        .buffer_unordered(6)
        .try_collect()
        .await
}

/// The storm's account: three clusters (`storm-a`, `-b`, `-c`) with three nodegroups each and a launch
/// template tagged for each (CreateLaunchTemplateVersion records resolve through it).
pub async fn storm_clusters(
    clients: &Clients,
    region: &str,
) -> Result<Vec<super::storm::StormCluster>, Error> {
    let mut clusters = Vec::new();
    for name in ["storm-a", "storm-b", "storm-c"] {
        let s = three_nodegroups(clients, region, name).await?;
        let template =
            seed::cluster_launch_template(&clients.ec2, &format!("{name}-lt"), name).await?;
        clusters.push(super::storm::StormCluster {
            name: name.into(),
            node_sg: s.node_sg.clone(),
            instance: s.instances[0].clone(),
            subnet: s.network.private[0].clone(),
            route_table: s.network.private_table.clone(),
            template,
        });
    }
    Ok(clusters)
}

pub async fn topic(conf: &aws_config::SdkConfig, name: &str) -> Result<String, Error> {
    let out = aws_sdk_sns::Client::new(conf)
        .create_topic()
        .name(name)
        .send()
        .await?;
    Ok(out.topic_arn().ok_or("no topic arn")?.to_string())
}
