//! The only module that reads AWS: builds a [`ClusterSnapshot`] with as few calls as the data allows.
//!
//! Rounds of calls (each round's calls run concurrently):
//! 1. `DescribeCluster`, `ListNodegroups`, `DescribeInstances` (by the cluster tag; it carries the metadata
//!    options too) and `ListAddons` — all need only the name;
//! 2. `DescribeNodegroup` for each nodegroup (bounded fan-out); `ListAccessEntries` filtered to holders of
//!    `AmazonEKSClusterAdminPolicy` (skipped in `CONFIG_MAP` mode, where entries cannot exist);
//!    `DescribeClusterVersions` for the cluster's version; `DescribeAddon vpc-cni` only when its
//!    configuration decides the network-policy verdict (no engine add-on, no declaration tag);
//! 3. `DescribeSubnets` and `DescribeSecurityGroups` for every id gathered, `DescribeRouteTables` for the
//!    VPC when the cluster names it, `ListAssociatedAccessPolicies` per admin-holding principal (for the
//!    scope), and `DescribeLaunchTemplateVersions` per distinct launch template the nodegroups use;
//! 4. only when needed: `DescribeRouteTables` for a VPC the cluster did not name, and
//!    `DescribeSecurityGroupRules` for groups with a world-open permission (to learn the rule ids a fix revokes).
//!
//! The reads that serve a single rule are skipped when that rule is disabled, and the data is recorded as
//! `NotCollected`.
//!
//! Calls that fail for lack of permission, because a resource is gone, or because the endpoint does not
//! offer the API (a 4xx answer that carries no AWS error code, such as an emulator's 404 page), leave an
//! explicit [`Fact::Unknown`]; anything else (throttling after the SDK's retries, 5xx, network) fails the
//! evaluation, so a rule never judges half-read state.

mod convert;
mod endpoint_flags;
pub mod shared;

use crate::model::*;
use crate::rules;
use crate::settings::Settings;
use aws_sdk_ec2::types::Filter;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
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

/// How many nodegroups (or access entries, or launch templates) are described at once.
const NODEGROUP_FAN_OUT: usize = 8;

/// The rules that alone need a read; when one is disabled its calls are not made.
const NETWORK_POLICY_RULE: &str = "network-policy-not-enforced";
const ADMIN_ENTRY_RULE: &str = "access-entry-broad-admin";
const VERSION_RULE: &str = "version-unsupported";
const IMDS_RULE: &str = "nodes-imdsv1";

fn not_collected<T>(rule: &str) -> Fact<T> {
    Fact::unknown(
        "NotCollected",
        format!("not read because rule {rule} is disabled"),
    )
}

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
    fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
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

fn classify<E>(op: &'static str, err: SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().map(str::to_string);
    // An endpoint without the API (an emulator, a partition where it is not launched yet, a proxy)
    // answers a client error whose body is no AWS error at all, typically a 404 page. Retrying cannot
    // change that: the data is unknown, the evaluation goes on. (Server errors stay fatal: transient.)
    let status = err.raw_response().map(|r| r.status().as_u16());
    if let (None, Some(status @ 400..=499)) = (&code, status) {
        return Failure::Unreadable(if status == 404 {
            Unreadable::new(
                "NotImplemented",
                format!("{op} is not offered by this endpoint (HTTP 404 without an AWS error)"),
            )
        } else {
            Unreadable::new(
                "UnrecognizedResponse",
                format!("{op} answered HTTP {status} without an AWS error code"),
            )
        });
    }
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

/// One readable line for an SDK error: `OP: Code: message` when AWS said what went wrong, else the
/// transport's kind and the error chain on one line (never the raw response dump).
pub fn error_line<E, R>(op: &str, err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{op}: {code}: {message}"),
        (Some(code), None) => format!("{op}: {code}"),
        _ => format!(
            "{op}: {}: {}",
            transport_code(err),
            one_line(&aws_smithy_types::error::display::DisplayErrorContext(err).to_string())
        ),
    }
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

/// Reads one cluster's whole security picture, for every rule.
pub async fn collect(
    clients: &Clients,
    name: &str,
) -> Result<(ClusterSnapshot, CollectStats), CollectError> {
    collect_with(clients, name, &Settings::default()).await
}

/// Reads one cluster's security picture, skipping the reads that only disabled rules need.
pub async fn collect_with(
    clients: &Clients,
    name: &str,
    settings: &Settings,
) -> Result<(ClusterSnapshot, CollectStats), CollectError> {
    let calls = Counter::default();
    let mut rounds = 1;

    // Round 1: everything that needs only the cluster's name.
    let (cluster, nodegroup_names, instances, addon_names) = tokio::join!(
        describe_cluster(clients, name, &calls),
        list_nodegroups(clients, name, &calls),
        describe_instances(clients, name, &calls),
        list_addons(clients, name, settings, &calls),
    );
    let cluster = cluster?;
    let nodegroup_names = nodegroup_names?;
    let instances = instances?;
    let addon_names = addon_names?;

    // Round 2: each nodegroup, and what needs the cluster's own answer (its mode, version, tags).
    let vpc_cni_decides = match &addon_names {
        Fact::Known(names) => {
            names.iter().any(|n| n == rules::VPC_CNI)
                && rules::declared_engine(&cluster.tags).is_none()
                && rules::engine_addon(names.iter().map(String::as_str), settings).is_none()
        }
        Fact::Unknown(_) => false,
    };
    let before = calls.get();
    let (nodegroups, admin_principals, version_support, vpc_cni_config) = tokio::join!(
        async {
            match nodegroup_names {
                Fact::Known(names) if !names.is_empty() => {
                    describe_nodegroups(clients, name, names, &calls).await
                }
                Fact::Known(_) => Ok(Fact::Known(vec![])),
                Fact::Unknown(u) => Ok(Fact::Unknown(u)),
            }
        },
        list_admin_entries(
            clients,
            name,
            &cluster.authentication_mode,
            settings,
            &calls
        ),
        describe_version(clients, cluster.version.as_deref(), settings, &calls),
        async {
            if vpc_cni_decides {
                describe_addon(clients, name, rules::VPC_CNI, &calls).await
            } else {
                Ok(None)
            }
        },
    );
    if calls.get() > before {
        rounds += 1;
    }
    let mut nodegroups = nodegroups?;
    let admin_principals = admin_principals?;
    let version_support = version_support?;
    let vpc_cni_config = vpc_cni_config?;
    let addons = addon_names.map(|names| {
        names
            .into_iter()
            .filter_map(|n| {
                let configuration_values = if n == rules::VPC_CNI && vpc_cni_decides {
                    // Deleted since it was listed: no add-on to judge.
                    vpc_cni_config.clone()?
                } else {
                    Fact::unknown(
                        "NotCollected",
                        "no rule needs this add-on's configuration here",
                    )
                };
                Some(Addon {
                    name: n,
                    configuration_values,
                })
            })
            .collect()
    });

    // Round 3: subnets, security groups and (when the VPC is known) route tables, all at once; with the
    // scope of each admin-holding access entry and the launch template versions the nodegroups use.
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
    let templates = match &nodegroups {
        Fact::Known(ngs) if settings.enabled(IMDS_RULE) => templates_in_use(ngs),
        _ => BTreeMap::new(),
    };
    let before = calls.get();
    let (subnets, groups, early_tables, cluster_admin_entries, template_versions) = tokio::join!(
        describe_subnets(clients, &subnet_ids, &calls),
        describe_security_groups(clients, &group_ids, &calls),
        describe_route_tables(clients, &early_vpcs, &calls),
        associated_policies(clients, name, admin_principals, &calls),
        describe_template_versions(clients, &templates, &calls),
    );
    let subnets = subnets?;
    let mut groups = groups?;
    let mut tables = early_tables?;
    let cluster_admin_entries = cluster_admin_entries?;
    let template_versions = template_versions?;
    if calls.get() > before {
        rounds += 1;
    }
    if let Fact::Known(ngs) = &mut nodegroups {
        for lt in ngs.iter_mut().filter_map(|ng| ng.launch_template.as_mut()) {
            lt.in_use = if settings.enabled(IMDS_RULE) {
                resolve_template(lt, &template_versions)
            } else {
                not_collected(IMDS_RULE)
            };
        }
    }

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
                    g.ingress = convert::union_rules(std::mem::take(&mut g.ingress), ingress);
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
        calls: calls.get(),
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
            addons,
            cluster_admin_entries,
            version_support,
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
    let flags = endpoint_flags::EndpointFlags::default();
    let out = clients
        .eks
        .describe_cluster()
        .name(name)
        .customize()
        .interceptor(flags.clone())
        .send()
        .await;
    match out {
        Ok(out) => match out.cluster() {
            Some(c) => Ok(endpoint_flags::unless_missing(
                convert::cluster(c, name),
                &flags,
            )),
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
    let vpcs: Vec<String> = vpcs.iter().cloned().collect();
    // Tables another cluster of this run already read (clusters share VPCs).
    let _guard = shared::route_read_guard().await;
    let (mut out, missing) = shared::route_tables(&vpcs);
    if missing.is_empty() {
        return Ok(Fact::Known(out));
    }
    let mut pages = clients
        .ec2
        .describe_route_tables()
        .filters(filter("vpc-id", &missing))
        .into_paginator()
        .send();
    let mut read = Vec::new();
    while let Some(page) = pages.next().await {
        calls.add();
        match page {
            Ok(p) => read.extend(p.route_tables().iter().cloned()),
            Err(e) => return unreadable_or_fatal("DescribeRouteTables", e),
        }
    }
    shared::keep_route_tables(&missing, &read);
    out.extend(read);
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

fn is_not_found<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    e.code() == Some("ResourceNotFoundException")
}

/// Add-on names (paginated). Needed only by the network-policy rule.
async fn list_addons(
    clients: &Clients,
    name: &str,
    settings: &Settings,
    calls: &Counter,
) -> Result<Fact<Vec<String>>, CollectError> {
    if !settings.enabled(NETWORK_POLICY_RULE) {
        return Ok(not_collected(NETWORK_POLICY_RULE));
    }
    let mut pages = clients
        .eks
        .list_addons()
        .cluster_name(name)
        .into_paginator()
        .send();
    let mut names = Vec::new();
    while let Some(page) = pages.next().await {
        calls.add();
        match page {
            Ok(p) => names.extend(p.addons().iter().cloned()),
            // The cluster vanished between calls: DescribeCluster reports that.
            Err(e) if is_not_found(&e) => return Ok(Fact::Known(vec![])),
            Err(e) => return unreadable_or_fatal("ListAddons", e),
        }
    }
    Ok(Fact::Known(names))
}

/// One add-on's `configurationValues`; `None` when the add-on was deleted since it was listed.
async fn describe_addon(
    clients: &Clients,
    cluster: &str,
    addon: &str,
    calls: &Counter,
) -> Result<Option<Fact<Option<String>>>, CollectError> {
    calls.add();
    match clients
        .eks
        .describe_addon()
        .cluster_name(cluster)
        .addon_name(addon)
        .send()
        .await
    {
        Ok(out) => Ok(Some(Fact::Known(
            out.addon()
                .and_then(|a| a.configuration_values())
                .filter(|v| !v.trim().is_empty())
                .map(str::to_string),
        ))),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => unreadable_or_fatal("DescribeAddon", e).map(Some),
    }
}

/// Principals whose access entry has `AmazonEKSClusterAdminPolicy` associated (the API filters by policy,
/// so entries that grant less cost no call). In `CONFIG_MAP` mode there are no access entries at all.
async fn list_admin_entries(
    clients: &Clients,
    name: &str,
    mode: &Fact<String>,
    settings: &Settings,
    calls: &Counter,
) -> Result<Fact<Vec<String>>, CollectError> {
    if !settings.enabled(ADMIN_ENTRY_RULE) {
        return Ok(not_collected(ADMIN_ENTRY_RULE));
    }
    if mode.known().is_some_and(|m| m == "CONFIG_MAP") {
        return Ok(Fact::Known(vec![]));
    }
    let mut pages = clients
        .eks
        .list_access_entries()
        .cluster_name(name)
        .associated_policy_arn(rules::CLUSTER_ADMIN_POLICY)
        .into_paginator()
        .send();
    let mut principals = Vec::new();
    while let Some(page) = pages.next().await {
        calls.add();
        match page {
            Ok(p) => principals.extend(p.access_entries().iter().cloned()),
            Err(e) if is_not_found(&e) => return Ok(Fact::Known(vec![])),
            // The authentication mode does not allow access entries (read while the mode was unknown).
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_invalid_request_exception()) =>
            {
                let message = e.message().unwrap_or_default().to_string();
                return Ok(Fact::unknown("InvalidRequestException", message));
            }
            Err(e) => return unreadable_or_fatal("ListAccessEntries", e),
        }
    }
    Ok(Fact::Known(principals))
}

/// Every policy association of each principal, so the rule sees the scope of its admin policy.
async fn associated_policies(
    clients: &Clients,
    cluster: &str,
    principals: Fact<Vec<String>>,
    calls: &Counter,
) -> Result<Fact<Vec<AccessEntry>>, CollectError> {
    let principals = match principals {
        Fact::Known(p) => p,
        Fact::Unknown(u) => return Ok(Fact::Unknown(u)),
    };
    let results: Vec<Result<Option<AccessEntry>, CollectError>> = stream::iter(principals)
        .map(|principal| async move {
            let mut pages = clients
                .eks
                .list_associated_access_policies()
                .cluster_name(cluster)
                .principal_arn(&principal)
                .into_paginator()
                .send();
            let mut policies = Vec::new();
            while let Some(page) = pages.next().await {
                calls.add();
                match page {
                    Ok(p) => policies.extend(
                        p.associated_access_policies()
                            .iter()
                            .filter_map(convert::access_policy),
                    ),
                    // The entry was deleted since it was listed.
                    Err(e) if is_not_found(&e) => return Ok(None),
                    Err(e) => {
                        let policies = unreadable_or_fatal("ListAssociatedAccessPolicies", e)?;
                        return Ok(Some(AccessEntry {
                            principal_arn: principal,
                            policies,
                        }));
                    }
                }
            }
            Ok(Some(AccessEntry {
                principal_arn: principal,
                policies: Fact::Known(policies),
            }))
        })
        .buffered(NODEGROUP_FAN_OUT)
        .collect()
        .await;
    let mut out = Vec::new();
    for r in results {
        out.extend(r?);
    }
    Ok(Fact::Known(out))
}

/// EKS's support status of one Kubernetes version (with `includeAll`, so unsupported ones are listed too).
async fn describe_version(
    clients: &Clients,
    version: Option<&str>,
    settings: &Settings,
    calls: &Counter,
) -> Result<Fact<Option<VersionSupport>>, CollectError> {
    if !settings.enabled(VERSION_RULE) {
        return Ok(not_collected(VERSION_RULE));
    }
    let Some(version) = version else {
        return Ok(Fact::unknown(
            "NotReturned",
            "DescribeCluster answered without the Kubernetes version",
        ));
    };
    let region = clients
        .eks
        .config()
        .region()
        .map(|r| r.to_string())
        .unwrap_or_default();
    if let Some(known) = shared::version(&region, version) {
        return Ok(Fact::Known(known));
    }
    let mut pages = clients
        .eks
        .describe_cluster_versions()
        .cluster_versions(version)
        .include_all(true)
        .into_paginator()
        .send();
    let mut found = None;
    while let Some(page) = pages.next().await {
        calls.add();
        match page {
            Ok(p) => {
                found = found.or_else(|| {
                    p.cluster_versions()
                        .iter()
                        .filter(|v| v.cluster_version() == Some(version))
                        .find_map(convert::version_support)
                })
            }
            Err(e) => return unreadable_or_fatal("DescribeClusterVersions", e),
        }
    }
    shared::keep_version(&region, version, &found);
    Ok(Fact::Known(found))
}

/// A launch template as nodegroups name it: by id when EKS reports one, else by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum TemplateKey {
    Id(String),
    Name(String),
}

impl std::fmt::Display for TemplateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateKey::Id(id) => f.write_str(id),
            TemplateKey::Name(name) => write!(f, "named {name}"),
        }
    }
}

fn template_key(lt: &LaunchTemplateRef) -> Option<TemplateKey> {
    match (&lt.id, &lt.name) {
        (Some(id), _) => Some(TemplateKey::Id(id.clone())),
        (None, Some(name)) => Some(TemplateKey::Name(name.clone())),
        (None, None) => None,
    }
}

/// The version a reference means: absent is the template's default.
fn wanted_version(lt: &LaunchTemplateRef) -> String {
    lt.version.clone().unwrap_or_else(|| "$Default".into())
}

/// Each distinct template the nodegroups use, with the versions asked of it.
fn templates_in_use(ngs: &[Nodegroup]) -> BTreeMap<TemplateKey, BTreeSet<String>> {
    let mut out: BTreeMap<TemplateKey, BTreeSet<String>> = BTreeMap::new();
    for lt in ngs.iter().filter_map(|ng| ng.launch_template.as_ref()) {
        if let Some(key) = template_key(lt) {
            out.entry(key).or_default().insert(wanted_version(lt));
        }
    }
    out
}

/// The versions read of one template, each with whether it is the template's default.
type TemplateRead = Fact<Vec<(bool, LaunchTemplateVersion)>>;
type TemplateVersions = BTreeMap<TemplateKey, TemplateRead>;

/// One `DescribeLaunchTemplateVersions` per template, for exactly the versions in use (aliases included).
async fn describe_template_versions(
    clients: &Clients,
    templates: &BTreeMap<TemplateKey, BTreeSet<String>>,
    calls: &Counter,
) -> Result<TemplateVersions, CollectError> {
    let results: Vec<(TemplateKey, Result<TemplateRead, CollectError>)> = stream::iter(templates)
        .map(|(key, versions)| async move {
            let req = clients
                .ec2
                .describe_launch_template_versions()
                .set_versions(Some(versions.iter().cloned().collect()));
            let req = match key {
                TemplateKey::Id(id) => req.launch_template_id(id),
                TemplateKey::Name(name) => req.launch_template_name(name),
            };
            let mut pages = req.into_paginator().send();
            let mut out = Vec::new();
            while let Some(page) = pages.next().await {
                calls.add();
                match page {
                    Ok(p) => out.extend(p.launch_template_versions().iter().filter_map(|v| {
                        convert::launch_template_version(v)
                            .map(|lv| (v.default_version().unwrap_or(false), lv))
                    })),
                    // A template or version that is gone or malformed: unknown for its nodegroups.
                    Err(e)
                        if e.code()
                            .is_some_and(|c| c.starts_with("InvalidLaunchTemplate")) =>
                    {
                        let code = e.code().unwrap_or_default().to_string();
                        let message = e.message().unwrap_or_default().to_string();
                        return (key.clone(), Ok(Fact::unknown(code, message)));
                    }
                    Err(e) => {
                        return (
                            key.clone(),
                            unreadable_or_fatal("DescribeLaunchTemplateVersions", e),
                        )
                    }
                }
            }
            (key.clone(), Ok(Fact::Known(out)))
        })
        .buffer_unordered(NODEGROUP_FAN_OUT)
        .collect()
        .await;
    let mut out = BTreeMap::new();
    for (key, r) in results {
        out.insert(key, r?);
    }
    Ok(out)
}

fn resolve_template(
    lt: &LaunchTemplateRef,
    read: &TemplateVersions,
) -> Fact<LaunchTemplateVersion> {
    let Some(key) = template_key(lt) else {
        return Fact::unknown(
            "NotReturned",
            "DescribeNodegroup named a launch template without id or name",
        );
    };
    let wanted = wanted_version(lt);
    match read.get(&key) {
        Some(Fact::Known(versions)) => match convert::pick_version(&wanted, versions) {
            Some(v) => Fact::Known(v.clone()),
            None => Fact::unknown(
                "NotReturned",
                format!("version {wanted} of launch template {key} was not returned"),
            ),
        },
        Some(Fact::Unknown(u)) => Fact::Unknown(u.clone()),
        None => Fact::unknown("NotCollected", "the launch template was not read"),
    }
}

fn unreadable_or_fatal<T, E>(
    op: &'static str,
    e: SdkError<E, HttpResponse>,
) -> Result<Fact<T>, CollectError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skippable_reads_name_real_rules() {
        for id in [
            NETWORK_POLICY_RULE,
            ADMIN_ENTRY_RULE,
            VERSION_RULE,
            IMDS_RULE,
        ] {
            assert!(rules::find(id).is_some(), "{id} is not in the catalog");
        }
    }

    fn ng(name: &str, lt: Option<(&str, Option<&str>)>) -> Nodegroup {
        Nodegroup {
            name: name.into(),
            status: "ACTIVE".into(),
            subnet_ids: vec![],
            remote_access: None,
            remote_access_security_group: None,
            launch_template: lt.map(|(id, version)| LaunchTemplateRef {
                id: Some(id.into()),
                name: None,
                version: version.map(str::to_string),
                in_use: Fact::unknown("NotCollected", ""),
            }),
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn one_read_per_template_with_every_version_in_use() {
        let ngs = [
            ng("a", Some(("lt-1", Some("3")))),
            ng("b", Some(("lt-1", None))),
            ng("c", Some(("lt-2", Some("$Latest")))),
            ng("d", None),
        ];
        let got = templates_in_use(&ngs);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[&TemplateKey::Id("lt-1".into())],
            ["$Default".to_string(), "3".to_string()].into()
        );
        assert_eq!(
            got[&TemplateKey::Id("lt-2".into())],
            ["$Latest".to_string()].into()
        );
    }
}
