//! The nodes: managed nodegroups (with the launch template versions they run) and the instances that
//! carry the cluster's tag.

use super::errors::{classify, Failure};
use super::page::{every_page, gone_is_empty, plain, Round};
use super::{convert, filter, shared, Clients, CollectError, FAN_OUT};
use crate::model::*;
use aws_sdk_ec2::operation::describe_launch_template_versions::DescribeLaunchTemplateVersionsOutput;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::{stream, StreamExt};
use std::collections::{BTreeMap, BTreeSet};

/// Every managed nodegroup, described (ListNodegroups, then DescribeNodegroup for each, bounded), with
/// the launch template version each runs when a rule reads it.
pub(super) async fn nodegroups(
    clients: &Clients,
    cluster: &str,
    plan: &impl ReadPlan,
    at: Round<'_>,
) -> Result<Fact<Vec<Nodegroup>>, CollectError> {
    if !plan.needs(Part::Nodegroups) {
        return Ok(super::not_collected(Part::Nodegroups));
    }
    let pages = clients
        .eks
        .list_nodegroups()
        .cluster_name(cluster)
        .into_paginator()
        .send();
    // The cluster vanished between calls: DescribeCluster reports that.
    let keep = |p: aws_sdk_eks::operation::list_nodegroups::ListNodegroupsOutput,
                out: &mut Vec<String>| out.extend(p.nodegroups().iter().cloned());
    let names = every_page("ListNodegroups", pages, at, keep, gone_is_empty).await?;
    let mut ngs = match names {
        Fact::Known(names) if !names.is_empty() => {
            describe_nodegroups(clients, cluster, names, at.next()).await?
        }
        other => other.map(|_| vec![]),
    };
    if let Fact::Known(ngs) = &mut ngs {
        launch_templates(clients, ngs, plan, at.next().next()).await?;
    }
    Ok(ngs)
}

async fn describe_nodegroups(
    clients: &Clients,
    cluster: &str,
    names: Vec<String>,
    at: Round<'_>,
) -> Result<Fact<Vec<Nodegroup>>, CollectError> {
    let results: Vec<Result<Option<Nodegroup>, Failure>> = stream::iter(names)
        .map(|ng| async move {
            at.call();
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
        .buffered(FAN_OUT)
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
/// Inside a run with peers, one read serves the cluster and its peers.
pub(super) async fn instances(
    clients: &Clients,
    cluster: &str,
    plan: &impl ReadPlan,
    at: Round<'_>,
) -> Result<Fact<Vec<Instance>>, CollectError> {
    if !plan.needs(Part::Instances) {
        return Ok(super::not_collected(Part::Instances));
    }
    let together = |names: Vec<String>| instances_of(clients, names, at);
    if let Some(found) = shared::peer_instances(cluster, together).await {
        return found;
    }
    let alone = instances_of(clients, vec![cluster.to_string()], at).await?;
    Ok(alone.map(|m| m.get(cluster).cloned().unwrap_or_default()))
}

const CLUSTER_TAG: &str = "kubernetes.io/cluster/";

/// The live instances of `clusters`, by the cluster whose tag each carries.
async fn instances_of(
    clients: &Clients,
    clusters: Vec<String>,
    at: Round<'_>,
) -> Result<Fact<shared::InstancesByCluster>, CollectError> {
    let pages = clients
        .ec2
        .describe_instances()
        .filters(filter(
            "tag-key",
            clusters.iter().map(|c| format!("{CLUSTER_TAG}{c}")),
        ))
        .filters(filter(
            "instance-state-name",
            ["pending", "running", "stopping", "stopped"],
        ))
        .into_paginator()
        .send();
    let wanted: BTreeSet<&str> = clusters.iter().map(String::as_str).collect();
    let keep = |p: aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput,
                out: &mut Vec<(String, Instance)>| {
        for i in p.reservations().iter().flat_map(|r| r.instances()) {
            let Some(converted) = convert::instance(i) else {
                continue;
            };
            let owners = i
                .tags()
                .iter()
                .filter_map(|t| t.key()?.strip_prefix(CLUSTER_TAG));
            for owner in owners.filter(|o| wanted.contains(o)) {
                out.push((owner.to_string(), converted.clone()));
            }
        }
    };
    let found = every_page("DescribeInstances", pages, at, keep, plain).await?;
    Ok(found.map(|pairs| {
        let mut by_cluster: BTreeMap<String, Vec<Instance>> = BTreeMap::new();
        for (cluster, i) in pairs {
            by_cluster.entry(cluster).or_default().push(i);
        }
        std::sync::Arc::new(by_cluster)
    }))
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

/// Fills each nodegroup's launch template with the version it runs (or why that is unknown).
async fn launch_templates(
    clients: &Clients,
    ngs: &mut [Nodegroup],
    plan: &impl ReadPlan,
    at: Round<'_>,
) -> Result<(), CollectError> {
    let read = if plan.needs(Part::LaunchTemplates) {
        describe_template_versions(clients, &templates_in_use(ngs), at).await?
    } else {
        BTreeMap::new()
    };
    for lt in ngs.iter_mut().filter_map(|ng| ng.launch_template.as_mut()) {
        lt.in_use = if plan.needs(Part::LaunchTemplates) {
            resolve_template(lt, &read)
        } else {
            super::not_collected(Part::LaunchTemplates)
        };
    }
    Ok(())
}

/// One `DescribeLaunchTemplateVersions` per template, for exactly the versions in use (aliases included).
async fn describe_template_versions(
    clients: &Clients,
    templates: &BTreeMap<TemplateKey, BTreeSet<String>>,
    at: Round<'_>,
) -> Result<TemplateVersions, CollectError> {
    let results: Vec<(TemplateKey, Result<TemplateRead, CollectError>)> = stream::iter(templates)
        .map(|(key, versions)| async move {
            (
                key.clone(),
                template_versions(clients, key, versions, at).await,
            )
        })
        .buffer_unordered(FAN_OUT)
        .collect()
        .await;
    let mut out = BTreeMap::new();
    for (key, r) in results {
        out.insert(key, r?);
    }
    Ok(out)
}

async fn template_versions(
    clients: &Clients,
    key: &TemplateKey,
    versions: &BTreeSet<String>,
    at: Round<'_>,
) -> Result<TemplateRead, CollectError> {
    let req = clients
        .ec2
        .describe_launch_template_versions()
        .set_versions(Some(versions.iter().cloned().collect()));
    let req = match key {
        TemplateKey::Id(id) => req.launch_template_id(id),
        TemplateKey::Name(name) => req.launch_template_name(name),
    };
    let pages = req.into_paginator().send();
    let keep = |p: DescribeLaunchTemplateVersionsOutput,
                out: &mut Vec<(bool, LaunchTemplateVersion)>| {
        out.extend(p.launch_template_versions().iter().filter_map(|v| {
            convert::launch_template_version(v).map(|lv| (v.default_version().unwrap_or(false), lv))
        }))
    };
    // A template or version that is gone or malformed: unknown for its nodegroups.
    let invalid = |e: &SdkError<_, HttpResponse>| {
        let code = e
            .code()
            .filter(|c| c.starts_with("InvalidLaunchTemplate"))?;
        Some(Fact::unknown(code, e.message().unwrap_or_default()))
    };
    every_page("DescribeLaunchTemplateVersions", pages, at, keep, invalid).await
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

#[cfg(test)]
mod tests {
    use super::*;

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
