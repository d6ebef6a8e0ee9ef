//! A region of the emulator with a fresh seeded network, and seeding that fails the test when it fails:
//! what most emulator tests start from, so that each states only its own clusters and groups.

use super::seed::{self, ClusterSpec, Ingress, Network, Ssh};
use super::CallCounter;
use eks_warden::collect::Clients;

pub struct Seeded {
    pub region: String,
    /// Clients against the emulator; `counter` counts their requests.
    pub clients: Clients,
    pub counter: CallCounter,
    pub net: Network,
}

impl Seeded {
    pub async fn new(region: &str) -> Seeded {
        let (clients, counter) = super::clients(region).await;
        let net = seed::network(&clients.ec2, region).await.unwrap();
        Seeded {
            region: region.to_string(),
            clients,
            counter,
            net,
        }
    }

    /// A security group in the network's VPC with these ingress permissions. Returns its id.
    pub async fn group(&self, name: &str, ingress: &[Ingress<'_>]) -> String {
        seed::security_group(&self.clients.ec2, &self.net.vpc, name, ingress)
            .await
            .unwrap()
    }

    /// Returns the cluster's ARN.
    pub async fn cluster(&self, spec: ClusterSpec<'_>) -> String {
        seed::cluster(&self.clients.eks, spec).await.unwrap()
    }

    /// A cluster with only a private endpoint, in the private subnets, with these extra groups.
    pub async fn private_cluster(&self, name: &str, groups: &[&str]) -> String {
        self.cluster(ClusterSpec::private(name, &self.net).groups(groups))
            .await
    }

    pub async fn nodegroup(&self, cluster: &str, name: &str, subnets: &[&str], ssh: Ssh<'_>) {
        seed::nodegroup(&self.clients.eks, cluster, name, subnets, ssh)
            .await
            .unwrap();
    }
}

/// The demo account ([`seed::demo_account`]) in `region`, and clients whose requests are counted.
pub async fn demo(region: &str) -> (Clients, CallCounter, seed::Demo) {
    let (clients, counter) = super::clients(region).await;
    let demo = seed::demo_account(&clients.eks, &clients.ec2, region)
        .await
        .unwrap();
    (clients, counter, demo)
}
