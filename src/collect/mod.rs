//! The only module that reads AWS: builds a [`ClusterSnapshot`] with as few calls, and as few rounds of
//! calls that wait for one another, as the data allows.
//!
//! Each read starts as soon as what it needs has answered (the files say what each reads):
//! 1. `DescribeCluster`, `ListNodegroups`, `DescribeInstances` (by the cluster tag; it carries the
//!    metadata options too) and `ListAddons` — all need only the name;
//! 2. once DescribeCluster (and DescribeInstances) answer: `DescribeSubnets` and `DescribeRouteTables`
//!    of the cluster's VPC (once per run for all its clusters), `DescribeSecurityGroups` of the cluster's
//!    and the nodes' groups, `ListAccessEntries` holding the cluster-admin policy (none in `CONFIG_MAP`
//!    mode), `DescribeClusterVersions` (once per run and version), `DescribeAddon vpc-cni` when its
//!    configuration decides a verdict; once ListNodegroups answers: `DescribeNodegroup` for each;
//! 3. `DescribeSecurityGroupRules` for world-open groups (the rule ids a fix revokes),
//!    `ListAssociatedAccessPolicies` per admin-holding principal, `DescribeLaunchTemplateVersions` per
//!    template in use, and the subnets and groups only a nodegroup names.
//!
//! A fourth round happens only when a nodegroup alone names a world-open group, or DescribeCluster
//! does not name the VPC. The reads of a part no enabled rule declares ([`ReadPlan`]) are not made, and
//! the part is recorded as `NotCollected`.
//!
//! Calls that fail for lack of permission, because a resource is gone, or because the endpoint does not
//! offer the API (a 4xx answer that carries no AWS error code, such as an emulator's 404 page), leave an
//! explicit [`Fact::Unknown`]; anything else (throttling after the SDK's retries, 5xx, network) fails the
//! evaluation, so a rule never judges half-read state.

mod access;
mod addons;
mod cluster;
mod convert;
mod endpoint_flags;
mod errors;
mod network;
mod nodes;
mod page;
pub mod shared;

pub use cluster::list_clusters;
pub use errors::error_line;

use crate::model::*;
use aws_sdk_ec2::types::Filter;
use futures::FutureExt;
use network::Wanted;
use page::{Round, Tally};
use tracing::debug;

/// The SDK clients of one account and region.
#[derive(Clone, Debug)]
pub struct Clients {
    pub eks: aws_sdk_eks::Client,
    pub ec2: aws_sdk_ec2::Client,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Clients {
            eks: aws_sdk_eks::Client::new(config),
            ec2: aws_sdk_ec2::Client::new(config),
        }
    }
}

/// How many nodegroups (or access entries, or launch templates) are described at once.
const FAN_OUT: usize = 8;

/// An evaluation that cannot go on.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CollectError {
    #[error("cluster {0:?} not found")]
    ClusterNotFound(String),
    #[error("{op} failed: {code}: {message}")]
    Aws {
        op: &'static str,
        code: String,
        message: String,
    },
}

/// What a collection cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CollectStats {
    /// AWS requests made (each page of a paginated call counts).
    pub calls: u32,
    /// The longest chain of requests that each waited for the one before (what latency multiplies).
    pub rounds: u32,
}

fn not_collected<T>(part: Part) -> Fact<T> {
    Fact::unknown(
        "NotCollected",
        format!("{part:?} not read: no enabled rule reads it"),
    )
}

/// Reads one cluster's whole security picture, for every rule.
pub async fn collect(
    clients: &Clients,
    name: &str,
) -> Result<(ClusterSnapshot, CollectStats), CollectError> {
    collect_with(clients, name, &crate::settings::Settings::default()).await
}

/// Reads one cluster's security picture: what `plan` (the enabled rules) needs, nothing else. Outside a
/// run's shared reads, the collection has its own, so what it reads twice it reads once.
pub async fn collect_with(
    clients: &Clients,
    name: &str,
    plan: &impl ReadPlan,
) -> Result<(ClusterSnapshot, CollectStats), CollectError> {
    // Boxed: the reads' futures are large, and a deep caller (a test thread) has a small stack.
    let read = Box::pin(read_cluster(clients, name, plan));
    if shared::in_run() {
        read.await
    } else {
        shared::within(Default::default(), read).await
    }
}

async fn read_cluster(
    clients: &Clients,
    name: &str,
    plan: &impl ReadPlan,
) -> Result<(ClusterSnapshot, CollectStats), CollectError> {
    let tally = Tally::default();
    let r1 = Round::first(&tally);
    let cluster = Box::pin(cluster::describe(clients, name, r1)).shared();
    let instances = Box::pin(nodes::instances(clients, name, plan, r1)).shared();
    let early = async {
        let (c, i) = tokio::join!(cluster.clone(), instances.clone());
        Ok::<_, CollectError>(Wanted::of_cluster(&c?, &i?))
    }
    .shared();
    let (network, nodes, addons, admins, version) = tokio::join!(
        async {
            Box::pin(network::read(
                clients,
                early.clone().await?,
                plan,
                r1.next(),
            ))
            .await
        },
        async {
            let ngs = Box::pin(nodes::nodegroups(clients, name, plan, r1)).await?;
            let extra = Wanted::of_nodegroups(&ngs, &early.clone().await?);
            let late = match extra.is_empty() {
                true => None,
                false => {
                    Some(Box::pin(network::read(clients, extra, plan, r1.next().next())).await?)
                }
            };
            Ok::<_, CollectError>((ngs, late))
        },
        async {
            let (c, names) = tokio::join!(cluster.clone(), addons::names(clients, name, plan, r1));
            Box::pin(addons::with_configuration(
                clients,
                &c?,
                names?,
                plan,
                r1.next(),
            ))
            .await
        },
        async {
            let mode = cluster.clone().await?.authentication_mode;
            Box::pin(access::admin_entries(clients, name, &mode, plan, r1.next())).await
        },
        async {
            let version = cluster.clone().await?.version;
            Box::pin(cluster::version_support(
                clients,
                version.as_deref(),
                plan,
                r1.next(),
            ))
            .await
        },
    );
    // The cluster's own failure (gone, denied) is the one to report.
    let cluster = cluster.clone().await?;
    let (nodegroups, late) = nodes?;
    let network = match late {
        Some(late) => network?.merge(late),
        None => network?,
    };
    let (subnets, security_groups) = network.place();
    let (account, region) = convert::account_and_region(&cluster.arn);
    let stats = CollectStats {
        calls: tally.calls(),
        rounds: tally.rounds(),
    };
    debug!(cluster = %name, aws_calls = stats.calls, rounds = stats.rounds, "collected cluster snapshot");
    let snapshot = ClusterSnapshot {
        account,
        region,
        cluster,
        subnets,
        security_groups,
        nodegroups,
        instances: instances.clone().await?,
        addons: addons?,
        cluster_admin_entries: admins?,
        version_support: version?,
    };
    Ok((snapshot, stats))
}

fn filter<I, S>(name: &str, values: I) -> Filter
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    values
        .into_iter()
        .fold(Filter::builder().name(name), |b, v| b.values(v.as_ref()))
        .build()
}
