//! Ownership reads: who else uses a security group a fix is about to change.
//!
//! Rules judge everything a cluster is exposed through; fixes act only on what it alone uses. A group is
//! the cluster's because DescribeCluster or its nodes name it (the snapshot); who *else* uses it is read
//! here, only when a fix is about to act, so evaluations and sweeps never pay for it: one
//! DescribeNetworkInterfaces per batch of groups, and DescribeCluster of the region's other clusters.

use crate::collect::{self, Clients};
use crate::model::ClusterSnapshot;
use aws_sdk_ec2::types::{Filter, NetworkInterface};
use std::collections::{BTreeMap, BTreeSet};

/// Group ids per DescribeNetworkInterfaces filter (EC2 accepts up to 200 values per filter).
const GROUPS_PER_CALL: usize = 100;

/// Someone other than the cluster that uses a security group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtherUser {
    /// A network interface that belongs to no part of this cluster.
    Interface { id: String, what: String },
    /// Another EKS cluster of the region, and whether it is exempt from the rule being fixed.
    Cluster { name: String, exempt: bool },
}

impl std::fmt::Display for OtherUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OtherUser::Interface { id, what } if what.is_empty() => {
                write!(f, "network interface {id}")
            }
            OtherUser::Interface { id, what } => write!(f, "network interface {id} ({what})"),
            OtherUser::Cluster { name, exempt: true } => write!(f, "cluster {name} (exempt)"),
            OtherUser::Cluster { name, .. } => write!(f, "cluster {name}"),
        }
    }
}

/// The other users of each group in `groups`; a group nobody else uses maps to an empty list.
pub async fn other_users(
    clients: &Clients,
    s: &ClusterSnapshot,
    groups: &BTreeSet<String>,
    rule_id: &str,
) -> Result<BTreeMap<String, Vec<OtherUser>>, String> {
    let mut out: BTreeMap<String, Vec<OtherUser>> =
        groups.iter().map(|g| (g.clone(), vec![])).collect();
    let wanted: Vec<String> = groups.iter().cloned().collect();
    let mut other_control_planes: BTreeSet<String> = BTreeSet::new();
    for batch in wanted.chunks(GROUPS_PER_CALL) {
        let mut pages = clients
            .ec2
            .describe_network_interfaces()
            .filters(
                Filter::builder()
                    .name("group-id")
                    .set_values(Some(batch.to_vec()))
                    .build(),
            )
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| collect::error_line("DescribeNetworkInterfaces", &e))?;
            for eni in page.network_interfaces() {
                let user = match classify(eni, s) {
                    Whose::Ours => continue,
                    Whose::ControlPlaneOf(name) => {
                        other_control_planes.insert(name);
                        continue;
                    }
                    Whose::Other(u) => u,
                };
                for g in eni.groups().iter().filter_map(|g| g.group_id()) {
                    if let Some(users) = out.get_mut(g) {
                        users.push(user.clone());
                    }
                }
            }
        }
    }
    for name in collect::list_clusters(clients)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|n| *n != s.cluster.name)
    {
        let used = cluster_groups(clients, &name).await?;
        let Some((used, tags)) = used else { continue };
        let exempt = crate::rules::exemptions(&tags)
            .iter()
            .any(|id| id == "*" || id == rule_id);
        other_control_planes.remove(&name);
        for g in used.intersection(groups) {
            if let Some(users) = out.get_mut(g) {
                users.push(OtherUser::Cluster {
                    name: name.clone(),
                    exempt,
                });
            }
        }
    }
    Ok(out)
}

/// The control-plane groups and tags of another cluster; `None` when it was deleted meanwhile.
async fn cluster_groups(
    clients: &Clients,
    name: &str,
) -> Result<Option<(BTreeSet<String>, BTreeMap<String, String>)>, String> {
    let out = match clients.eks.describe_cluster().name(name).send().await {
        Ok(o) => o,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(collect::error_line("DescribeCluster", &e)),
    };
    let Some(c) = out.cluster() else {
        return Ok(None);
    };
    let mut groups = BTreeSet::new();
    if let Some(v) = c.resources_vpc_config() {
        groups.extend(v.cluster_security_group_id().map(str::to_string));
        groups.extend(v.security_group_ids().iter().cloned());
    }
    let tags = c
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    Ok(Some((groups, tags)))
}

enum Whose {
    Ours,
    /// A control-plane interface of another cluster: reported through that cluster, with its exemptions.
    ControlPlaneOf(String),
    Other(OtherUser),
}

/// Tags by which the VPC CNI, the VPC resource controller and EKS mark interfaces of a cluster.
fn tagged_cluster(eni: &NetworkInterface) -> Option<String> {
    eni.tag_set().iter().find_map(|t| {
        let (k, v) = (t.key()?, t.value().unwrap_or_default());
        match k {
            "cluster.k8s.amazonaws.com/name" | "eks:cluster-name" => Some(v.to_string()),
            _ => k.strip_prefix("kubernetes.io/cluster/").map(str::to_string),
        }
    })
}

/// Whether an interface is the cluster's own: its control plane ("Amazon EKS <name>", requester-managed),
/// its nodes (attached to a node instance: primary, secondary and trunk interfaces), the VPC CNI's branch
/// interfaces and Fargate pods' interfaces (tagged with the cluster's name).
fn classify(eni: &NetworkInterface, s: &ClusterSnapshot) -> Whose {
    let name = &s.cluster.name;
    let description = eni.description().unwrap_or_default();
    if let Some(owner) = description.strip_prefix("Amazon EKS ") {
        if eni.requester_managed() == Some(true) || owner == name {
            return if owner == name {
                Whose::Ours
            } else {
                Whose::ControlPlaneOf(owner.to_string())
            };
        }
    }
    let instance = eni.attachment().and_then(|a| a.instance_id());
    if let (Some(i), Ok(nodes)) = (instance, s.instances.as_ref()) {
        if nodes.iter().any(|n| n.id == i) {
            return Whose::Ours;
        }
    }
    if tagged_cluster(eni).as_deref() == Some(name.as_str()) {
        return Whose::Ours;
    }
    let id = eni.network_interface_id().unwrap_or_default().to_string();
    let mut what = Vec::new();
    if let Some(i) = instance {
        what.push(format!("instance {i}"));
    }
    if !description.is_empty() {
        what.push(format!("\"{description}\""));
    }
    if let Some(c) = tagged_cluster(eni) {
        what.push(format!("cluster {c}"));
    }
    Whose::Other(OtherUser::Interface {
        id,
        what: what.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{NetworkInterfaceAttachment, Tag};

    fn eni(description: &str, instance: Option<&str>, managed: bool) -> NetworkInterface {
        NetworkInterface::builder()
            .network_interface_id("eni-1")
            .description(description)
            .requester_managed(managed)
            .set_attachment(
                instance.map(|i| NetworkInterfaceAttachment::builder().instance_id(i).build()),
            )
            .build()
    }

    #[test]
    fn interfaces_of_the_cluster_are_its_own_and_the_rest_are_named() {
        let s = crate::rules::testkit::baseline();
        let name = s.cluster.name.clone();
        assert!(matches!(
            classify(&eni(&format!("Amazon EKS {name}"), None, true), &s),
            Whose::Ours
        ));
        assert!(matches!(
            classify(&eni("Amazon EKS other", None, true), &s),
            Whose::ControlPlaneOf(n) if n == "other"
        ));
        let node = s
            .instances
            .known()
            .and_then(|i| i.first())
            .map(|i| i.id.clone());
        if let Some(node) = node {
            assert!(matches!(
                classify(&eni("", Some(&node), false), &s),
                Whose::Ours
            ));
        }
        let branch = NetworkInterface::builder()
            .network_interface_id("eni-2")
            .description("aws-k8s-branch-eni")
            .tag_set(
                Tag::builder()
                    .key(format!("kubernetes.io/cluster/{name}"))
                    .value("owned")
                    .build(),
            )
            .build();
        assert!(matches!(classify(&branch, &s), Whose::Ours));
        let Whose::Other(u) = classify(&eni("web server", Some("i-web"), false), &s) else {
            panic!("a web server's interface is not the cluster's")
        };
        assert_eq!(
            u.to_string(),
            "network interface eni-1 (instance i-web, \"web server\")"
        );
    }
}
