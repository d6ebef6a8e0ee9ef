//! The only module that reads AWS: builds a [`ClusterSnapshot`] with as few calls as the data allows.
//!
//! Rounds of calls (each round's calls run concurrently):
//! 1. `DescribeCluster`, `ListNodegroups` and `DescribeInstances` (by the cluster tag) — all need only the name;
//! 2. `DescribeNodegroup` for each nodegroup (bounded fan-out);
//! 3. `DescribeSubnets` and `DescribeSecurityGroups` for every id gathered, and `DescribeRouteTables` for the
//!    VPC when the cluster names it;
//! 4. only when needed: `DescribeRouteTables` for a VPC the cluster did not name, and
//!    `DescribeSecurityGroupRules` for groups with a world-open permission (to learn the rule ids a fix revokes).
//!
//! Calls that fail for lack of permission, or because a resource is gone, leave an explicit
//! [`Fact::Unknown`]; anything else (throttling after the SDK's retries, 5xx, network) fails the evaluation,
//! so a rule never judges half-read state.

mod convert;

use crate::model::*;
use aws_sdk_ec2::types::Filter;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::{stream, StreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};
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

/// How many nodegroups are described at once.
const NODEGROUP_FAN_OUT: usize = 8;

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
    /// Dependent rounds of requests.
    pub rounds: u32,
}

#[derive(Default)]
struct Counter(AtomicU32);

impl Counter {
    fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Error codes that mean "this caller may not read this", or "this API is not offered here":
/// the data becomes unknown, the evaluation goes on.
fn is_unreadable_code(code: &str) -> bool {
    matches!(
        code,
        "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "UnauthorizedException"
            | "UnsupportedOperation"
            | "InvalidAction"
            | "OptInRequired"
            | "NotAuthorized"
    )
}

enum Failure {
    /// Record as unknown and go on.
    Unreadable(Unreadable),
    /// Stop this evaluation.
    Fatal(CollectError),
}

fn classify<E, R>(op: &'static str, err: SdkError<E, R>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = err.code().map(str::to_string);
    let message = err.message().map(str::to_string).unwrap_or_else(|| {
        one_line(&aws_smithy_types::error::display::DisplayErrorContext(&err).to_string())
    });
    match code {
        Some(code) if is_unreadable_code(&code) => {
            Failure::Unreadable(Unreadable::new(code, message))
        }
        code => Failure::Fatal(CollectError::Aws {
            op,
            code: code.unwrap_or_else(|| transport_code(&err).to_string()),
            message,
        }),
    }
}

fn transport_code<E, R>(err: &SdkError<E, R>) -> &'static str {
    match err {
        SdkError::TimeoutError(_) => "Timeout",
        SdkError::DispatchFailure(_) => "ConnectionFailure",
        SdkError::ResponseError(_) => "UnreadableResponse",
        SdkError::ConstructionFailure(_) => "RequestConstruction",
        _ => "Unknown",
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Lists every cluster name in the region (paginated).
pub async fn list_clusters(clients: &Clients) -> Result<Vec<String>, CollectError> {
    clients
        .eks
        .list_clusters()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| match classify("ListClusters", e) {
            Failure::Fatal(f) => f,
            Failure::Unreadable(u) => CollectError::Aws {
                op: "ListClusters",
                code: u.code,
                message: u.message,
            },
        })
}

/// Reads one cluster's whole security picture.
pub async fn collect(
    clients: &Clients,
    name: &str,
) -> Result<(ClusterSnapshot, CollectStats), CollectError> {
    let calls = Counter::default();
    let mut rounds = 1;

    // Round 1: everything that needs only the cluster's name.
    let (cluster, nodegroup_names, instances) = tokio::join!(
        describe_cluster(clients, name, &calls),
        list_nodegroups(clients, name, &calls),
        describe_instances(clients, name, &calls),
    );
    let cluster = cluster?;
    let nodegroup_names = nodegroup_names?;
    let instances = instances?;

    // Round 2: each nodegroup.
    let nodegroups = match nodegroup_names {
        Fact::Known(names) if !names.is_empty() => {
            rounds += 1;
            describe_nodegroups(clients, name, names, &calls).await?
        }
        Fact::Known(_) => Fact::Known(vec![]),
        Fact::Unknown(u) => Fact::Unknown(u),
    };

    // Round 3: subnets, security groups and (when the VPC is known) route tables, all at once.
    let mut subnet_ids: BTreeSet<String> = cluster.subnet_ids.iter().cloned().collect();
    let mut group_ids: BTreeSet<String> = cluster
        .cluster_security_group_id
        .iter()
        .chain(&cluster.security_group_ids)
        .cloned()
        .collect();
    if let Fact::Known(ngs) = &nodegroups {
        for ng in ngs {
            subnet_ids.extend(ng.subnet_ids.iter().cloned());
            group_ids.extend(ng.remote_access_security_group.iter().cloned());
        }
    }
    if let Fact::Known(insts) = &instances {
        for i in insts {
            subnet_ids.extend(i.subnet_id.iter().cloned());
            group_ids.extend(i.security_group_ids.iter().cloned());
        }
    }
    let early_vpcs: BTreeSet<String> = cluster.vpc_id.iter().cloned().collect();
    rounds += 1;
    let (subnets, groups, early_tables) = tokio::join!(
        describe_subnets(clients, &subnet_ids, &calls),
        describe_security_groups(clients, &group_ids, &calls),
        describe_route_tables(clients, &early_vpcs, &calls),
    );
    let subnets = subnets?;
    let mut groups = groups?;
    let mut tables = early_tables?;

    // Round 4, only when needed.
    let subnet_vpcs: BTreeSet<String> = match &subnets {
        Fact::Known(s) => s.values().map(|s| s.vpc_id.clone()).collect(),
        Fact::Unknown(_) => BTreeSet::new(),
    };
    let late_vpcs: BTreeSet<String> = subnet_vpcs.difference(&early_vpcs).cloned().collect();
    let open_groups: BTreeSet<String> = groups
        .values()
        .filter_map(|g| g.known())
        .filter(|g| g.ingress.iter().any(|r| r.world_source().is_some()))
        .map(|g| g.id.clone())
        .collect();
    if !late_vpcs.is_empty() || !open_groups.is_empty() {
        rounds += 1;
        let (late_tables, rule_ids) = tokio::join!(
            describe_route_tables(clients, &late_vpcs, &calls),
            describe_security_group_rules(clients, &open_groups, &calls),
        );
        tables = merge_tables(tables, late_tables?);
        if let Some(rules) = rule_ids? {
            for (gid, ingress) in rules {
                if let Some(Fact::Known(g)) = groups.get_mut(&gid) {
                    g.ingress = ingress;
                }
            }
        }
    }

    let subnets = convert::place_subnets(&subnet_ids, subnets, &tables);
    let security_groups = group_ids
        .iter()
        .map(|id| {
            let fact = groups.remove(id).unwrap_or_else(|| {
                Fact::unknown(
                    "InvalidGroup.NotFound",
                    format!("security group {id} does not exist"),
                )
            });
            (id.clone(), fact)
        })
        .collect();

    let (account, region) = convert::account_and_region(&cluster.arn);
    let stats = CollectStats {
        calls: calls.0.load(Ordering::Relaxed),
        rounds,
    };
    debug!(cluster = %name, aws_calls = stats.calls, rounds = stats.rounds, "collected cluster snapshot");
    Ok((
        ClusterSnapshot {
            account,
            region,
            cluster,
            subnets,
            security_groups,
            nodegroups,
            instances,
        },
        stats,
    ))
}

async fn describe_cluster(
    clients: &Clients,
    name: &str,
    calls: &Counter,
) -> Result<Cluster, CollectError> {
    calls.add();
    let out = clients.eks.describe_cluster().name(name).send().await;
    match out {
        Ok(out) => match out.cluster() {
            Some(c) => Ok(convert::cluster(c, name)),
            None => Err(CollectError::ClusterNotFound(name.to_string())),
        },
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_resource_not_found_exception()) =>
        {
            Err(CollectError::ClusterNotFound(name.to_string()))
        }
        Err(e) => match classify("DescribeCluster", e) {
            Failure::Fatal(f) => Err(f),
            // Without the cluster itself there is nothing to evaluate.
            Failure::Unreadable(u) => Err(CollectError::Aws {
                op: "DescribeCluster",
                code: u.code,
                message: u.message,
            }),
        },
    }
}

async fn list_nodegroups(
    clients: &Clients,
    name: &str,
    calls: &Counter,
) -> Result<Fact<Vec<String>>, CollectError> {
    let mut pages = clients
        .eks
        .list_nodegroups()
        .cluster_name(name)
        .into_paginator()
        .send();
    let mut names = Vec::new();
    while let Some(page) = pages.next().await {
        calls.add();
        match page {
            Ok(p) => names.extend(p.nodegroups().iter().cloned()),
            // The cluster vanished between calls: DescribeCluster reports that.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_not_found_exception()) =>
            {
                return Ok(Fact::Known(vec![]))
            }
            Err(e) => return unreadable_or_fatal("ListNodegroups", e),
        }
    }
    Ok(Fact::Known(names))
}

async fn describe_nodegroups(
    clients: &Clients,
    cluster: &str,
    names: Vec<String>,
    calls: &Counter,
) -> Result<Fact<Vec<Nodegroup>>, CollectError> {
    let results: Vec<Result<Option<Nodegroup>, Failure>> = stream::iter(names)
        .map(|ng| async move {
            calls.add();
            match clients
                .eks
                .describe_nodegroup()
                .cluster_name(cluster)
                .nodegroup_name(&ng)
                .send()
                .await
            {
                Ok(out) => Ok(out.nodegroup().map(convert::nodegroup)),
                // Deleted since it was listed: it has no nodes left to judge.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_resource_not_found_exception()) =>
                {
                    Ok(None)
                }
                Err(e) => Err(classify("DescribeNodegroup", e)),
            }
        })
        .buffered(NODEGROUP_FAN_OUT)
        .collect()
        .await;
    let mut out = Vec::new();
    for r in results {
        match r {
            Ok(Some(ng)) => out.push(ng),
            Ok(None) => {}
            // One unreadable nodegroup makes the list incomplete: judge none rather than some.
            Err(Failure::Unreadable(u)) => return Ok(Fact::Unknown(u)),
            Err(Failure::Fatal(f)) => return Err(f),
        }
    }
    Ok(Fact::Known(out))
}

/// Node instances carry `kubernetes.io/cluster/<name>` (managed nodegroups, self-managed nodes, Karpenter).
async fn describe_instances(
    clients: &Clients,
    name: &str,
    calls: &Counter,
) -> Result<Fact<Vec<Instance>>, CollectError> {
    let mut pages = clients
        .ec2
        .describe_instances()
        .filters(filter("tag-key", [format!("kubernetes.io/cluster/{name}")]))
        .filters(filter(
            "instance-state-name",
            ["pending", "running", "stopping", "stopped"],
        ))
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        calls.add();
        match page {
            Ok(p) => out.extend(
                p.reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .filter_map(convert::instance),
            ),
            Err(e) => return unreadable_or_fatal("DescribeInstances", e),
        }
    }
    Ok(Fact::Known(out))
}

/// Subnets by id. A filter (not `SubnetIds`) so that one missing subnet does not fail the whole call.
async fn describe_subnets(
    clients: &Clients,
    ids: &BTreeSet<String>,
    calls: &Counter,
) -> Result<Fact<BTreeMap<String, convert::RawSubnet>>, CollectError> {
    if ids.is_empty() {
        return Ok(Fact::Known(BTreeMap::new()));
    }
    let mut pages = clients
        .ec2
        .describe_subnets()
        .filters(filter("subnet-id", ids))
        .into_paginator()
        .send();
    let mut out = BTreeMap::new();
    while let Some(page) = pages.next().await {
        calls.add();
        match page {
            Ok(p) => {
                for s in p.subnets().iter().filter_map(convert::subnet) {
                    out.insert(s.id.clone(), s);
                }
            }
            Err(e) => return unreadable_or_fatal("DescribeSubnets", e),
        }
    }
    Ok(Fact::Known(out))
}

async fn describe_route_tables(
    clients: &Clients,
    vpcs: &BTreeSet<String>,
    calls: &Counter,
) -> Result<Fact<Vec<aws_sdk_ec2::types::RouteTable>>, CollectError> {
    if vpcs.is_empty() {
        return Ok(Fact::Known(vec![]));
    }
    let mut pages = clients
        .ec2
        .describe_route_tables()
        .filters(filter("vpc-id", vpcs))
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        calls.add();
        match page {
            Ok(p) => out.extend(p.route_tables().iter().cloned()),
            Err(e) => return unreadable_or_fatal("DescribeRouteTables", e),
        }
    }
    Ok(Fact::Known(out))
}

fn merge_tables(
    a: Fact<Vec<aws_sdk_ec2::types::RouteTable>>,
    b: Fact<Vec<aws_sdk_ec2::types::RouteTable>>,
) -> Fact<Vec<aws_sdk_ec2::types::RouteTable>> {
    match (a, b) {
        (Fact::Known(mut a), Fact::Known(b)) => {
            a.extend(b);
            Fact::Known(a)
        }
        (Fact::Unknown(u), _) | (_, Fact::Unknown(u)) => Fact::Unknown(u),
    }
}

/// Security groups by id, each `Known`, or `Unknown` for all when the call is denied.
/// A group that does not exist is simply absent here (filtered, so one stale id does not fail the call).
async fn describe_security_groups(
    clients: &Clients,
    ids: &BTreeSet<String>,
    calls: &Counter,
) -> Result<BTreeMap<String, Fact<SecurityGroup>>, CollectError> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut pages = clients
        .ec2
        .describe_security_groups()
        .filters(filter("group-id", ids))
        .into_paginator()
        .send();
    let mut out = BTreeMap::new();
    while let Some(page) = pages.next().await {
        calls.add();
        match page {
            Ok(p) => {
                for g in p
                    .security_groups()
                    .iter()
                    .filter_map(convert::security_group)
                {
                    out.insert(g.id.clone(), Fact::Known(g));
                }
            }
            Err(e) => match classify("DescribeSecurityGroups", e) {
                Failure::Unreadable(u) => {
                    return Ok(ids
                        .iter()
                        .map(|id| (id.clone(), Fact::Unknown(u.clone())))
                        .collect())
                }
                Failure::Fatal(f) => return Err(f),
            },
        }
    }
    Ok(out)
}

/// Ingress rules with their rule ids, by group. `None` when denied: the rules from
/// `DescribeSecurityGroups` stand, without ids.
async fn describe_security_group_rules(
    clients: &Clients,
    groups: &BTreeSet<String>,
    calls: &Counter,
) -> Result<Option<BTreeMap<String, Vec<IngressRule>>>, CollectError> {
    if groups.is_empty() {
        return Ok(None);
    }
    let mut pages = clients
        .ec2
        .describe_security_group_rules()
        .filters(filter("group-id", groups))
        .into_paginator()
        .send();
    let mut out: BTreeMap<String, Vec<IngressRule>> =
        groups.iter().map(|g| (g.clone(), vec![])).collect();
    while let Some(page) = pages.next().await {
        calls.add();
        match page {
            Ok(p) => {
                for r in p.security_group_rules() {
                    if r.is_egress() == Some(true) {
                        continue;
                    }
                    if let (Some(gid), rule) = (r.group_id(), convert::group_rule(r)) {
                        out.entry(gid.to_string()).or_default().push(rule);
                    }
                }
            }
            Err(e) => match classify("DescribeSecurityGroupRules", e) {
                Failure::Unreadable(_) => return Ok(None),
                Failure::Fatal(f) => return Err(f),
            },
        }
    }
    Ok(Some(out))
}

fn unreadable_or_fatal<T, E, R>(
    op: &'static str,
    e: SdkError<E, R>,
) -> Result<Fact<T>, CollectError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match classify(op, e) {
        Failure::Unreadable(u) => Ok(Fact::Unknown(u)),
        Failure::Fatal(f) => Err(f),
    }
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
