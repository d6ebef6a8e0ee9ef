//! Resolving a whole batch of resources to clusters at once: each (kind, id) once, the ids of one kind in
//! one filtered call (up to 200 values a call), the kinds concurrently. Filters, not `…Ids` parameters: one
//! id that no longer exists fails a whole `…Ids` call but is simply absent from a filtered answer.
//!
//! Attachments decide, tags only hint. A cluster tag that names a cluster the region does not have is a
//! hint that failed: the resource's attachments (node instances using it) and the region index (control
//! planes using it) are always consulted, so a stale tag never hides the real cluster. Every cluster found
//! comes with the evidence that led to it.

use crate::collect::{error_line, Clients};
use crate::route::{cluster_from_arn, clusters_from_tags, Kind};
use aws_sdk_ec2::types::{Filter, Instance, Tag};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::collections::{BTreeMap, BTreeSet};

/// Values one EC2 filter accepts in a call.
pub const FILTER_VALUES: usize = 200;
/// The clusters one resource led to, each with the evidence that led there.
pub type Leads = BTreeMap<String, BTreeSet<String>>;

/// A resource an event names.
pub type Resource = (Kind, String);

fn filter(name: &str, values: &[String]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.to_vec()))
        .build()
}

fn tag_pairs(tags: &[Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter()
        .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default())))
}

fn lead(leads: &mut Leads, cluster: &str, evidence: String) {
    leads
        .entry(cluster.to_string())
        .or_default()
        .insert(evidence);
}

/// The clusters of every node instance that `uses` the resource, each lead worded by `say` with the
/// instance id.
fn lead_instances(
    leads: &mut Leads,
    nodes: &[(Instance, BTreeSet<String>)],
    uses: impl Fn(&Instance) -> bool,
    say: impl Fn(&str) -> String,
) {
    for (i, clusters) in nodes.iter().filter(|(i, _)| uses(i)) {
        let inst = i.instance_id().unwrap_or("?");
        for c in clusters {
            lead(leads, c, say(inst));
        }
    }
}

/// A resource that leads through another (a route table through its subnet, an interface through its
/// group): each cluster the other leads to, with each piece of its evidence, worded by `say`.
fn lead_through(leads: &mut Leads, via: Option<&Leads>, say: impl Fn(&str) -> String) {
    for (cluster, evidence) in via.into_iter().flatten() {
        for e in evidence {
            lead(leads, cluster, say(e));
        }
    }
}

/// Every page of a filtered EC2 read, for each chunk of ids in turn.
macro_rules! pages {
    ($ec2:expr, $op:ident, $name:literal, $filter:expr, $ids:expr, $items:ident) => {{
        let mut all = Vec::new();
        for chunk in $ids.chunks(FILTER_VALUES) {
            let mut p = $ec2
                .$op()
                .filters(filter($filter, chunk))
                .into_paginator()
                .send();
            while let Some(page) = p.next().await {
                let page = page.map_err(|e| error_line($name, &e))?;
                all.extend(page.$items().iter().cloned());
            }
        }
        all
    }};
}

mod index;
use index::Index;
pub use index::{IndexedCluster, RegionIndex};

/// Resolves resources to clusters with the clients of one account and region.
pub struct BatchResolver<'a> {
    pub clients: &'a Clients,
    pub index: &'a RegionIndex,
}

/// Per resource: the clusters it led to (empty: none), or the AWS error that kept it from being resolved
/// (retryable).
pub type Resolved = BTreeMap<Resource, Result<Leads, String>>;

impl BatchResolver<'_> {
    /// Resolves every resource, each kind once for the whole batch, kinds concurrently.
    pub async fn resolve(&self, resources: &BTreeSet<Resource>) -> Resolved {
        let mut by_kind: BTreeMap<Kind, Vec<String>> = BTreeMap::new();
        for (k, id) in resources {
            by_kind.entry(*k).or_default().push(id.clone());
        }
        let tasks = by_kind.into_iter().map(|(kind, ids)| async move {
            let r = self.kind(kind, &ids).await;
            (kind, ids, r)
        });
        let mut out = Resolved::new();
        for (kind, ids, r) in futures::future::join_all(tasks).await {
            match r {
                Ok(mut found) => {
                    for id in ids {
                        let leads = found.remove(&id).unwrap_or_default();
                        out.insert((kind, id), Ok(leads));
                    }
                }
                Err(e) => {
                    for id in ids {
                        out.insert((kind, id), Err(e.clone()));
                    }
                }
            }
        }
        out
    }

    async fn kind(&self, kind: Kind, ids: &[String]) -> Result<BTreeMap<String, Leads>, String> {
        match kind {
            Kind::Cluster => Ok(ids
                .iter()
                .map(|id| {
                    let mut l = Leads::new();
                    lead(&mut l, id, "named in the event".into());
                    (id.clone(), l)
                })
                .collect()),
            Kind::EksArn => Ok(ids
                .iter()
                .map(|id| {
                    let mut l = Leads::new();
                    if let Some(c) = cluster_from_arn(id) {
                        lead(&mut l, &c, format!("EKS ARN {id}"));
                    }
                    (id.clone(), l)
                })
                .collect()),
            Kind::SecurityGroup => self.security_groups(ids).await,
            Kind::Subnet => self.subnets(ids).await,
            Kind::RouteTable => self.route_tables("route-table-id", ids).await,
            Kind::RouteTableAssociation => {
                self.route_tables("association.route-table-association-id", ids)
                    .await
            }
            Kind::NetworkInterface => self.network_interfaces(ids).await,
            Kind::Instance => {
                let found = self.instances("instance-id", ids).await?;
                Ok(ids
                    .iter()
                    .map(|id| {
                        let mut l = Leads::new();
                        for (i, clusters) in &found {
                            if i.instance_id() == Some(id.as_str()) {
                                for c in clusters {
                                    lead(
                                        &mut l,
                                        c,
                                        format!("instance {id} carries the cluster tag"),
                                    );
                                }
                            }
                        }
                        (id.clone(), l)
                    })
                    .collect())
            }
            Kind::LaunchTemplate => self.launch_templates(ids).await,
            // Tagging calls are re-kinded by id prefix when routed; an id of no known kind leads nowhere.
            Kind::Tagged => Ok(BTreeMap::new()),
        }
    }

    /// Instances matching a filter, with the clusters their tags name.
    async fn instances(
        &self,
        by: &str,
        values: &[String],
    ) -> Result<Vec<(Instance, BTreeSet<String>)>, String> {
        if values.is_empty() {
            return Ok(vec![]);
        }
        let reservations = pages!(
            self.clients.ec2,
            describe_instances,
            "DescribeInstances",
            by,
            values,
            reservations
        );
        Ok(reservations
            .iter()
            .flat_map(|r| r.instances())
            .map(|i| (i.clone(), clusters_from_tags(tag_pairs(i.tags()))))
            .filter(|(_, c)| !c.is_empty())
            .collect())
    }

    /// Tags that name a cluster the index knows; a tag naming any other cluster is a failed hint.
    fn hinted(&self, idx: &Index, tags: &[Tag], id: &str, leads: &mut Leads) {
        for c in clusters_from_tags(tag_pairs(tags)) {
            if idx.contains_key(&c) {
                lead(leads, &c, format!("tag on {id}"));
            } else {
                tracing::info!(resource = %id, cluster = %c, "tag names a cluster the region does not have: ignored as a hint");
            }
        }
    }

    async fn security_groups(&self, ids: &[String]) -> Result<BTreeMap<String, Leads>, String> {
        let ec2 = &self.clients.ec2;
        let (groups, users, idx) = tokio::join!(
            async {
                Ok::<_, String>(pages!(
                    ec2,
                    describe_security_groups,
                    "DescribeSecurityGroups",
                    "group-id",
                    ids,
                    security_groups
                ))
            },
            self.instances("instance.group-id", ids),
            self.index.get(self.clients),
        );
        let (groups, users, idx) = (groups?, users?, idx?);
        let mut out = BTreeMap::new();
        for g in &groups {
            let Some(id) = g.group_id() else { continue };
            let mut leads = Leads::new();
            self.hinted(&idx, g.tags(), id, &mut leads);
            let uses = |i: &Instance| {
                i.security_groups().iter().any(|s| s.group_id() == Some(id))
                    || i.network_interfaces()
                        .iter()
                        .flat_map(|n| n.groups())
                        .any(|s| s.group_id() == Some(id))
            };
            lead_instances(&mut leads, &users, uses, |inst| {
                format!("node instance {inst} uses {id}")
            });
            for (c, ic) in idx.iter().filter(|(_, c)| c.groups.contains(id)) {
                let _ = ic;
                lead(&mut leads, c, format!("control plane uses {id}"));
            }
            out.insert(id.to_string(), leads);
        }
        Ok(out)
    }

    async fn subnets(&self, ids: &[String]) -> Result<BTreeMap<String, Leads>, String> {
        let ec2 = &self.clients.ec2;
        let (subnets, users, idx) = tokio::join!(
            async {
                Ok::<_, String>(pages!(
                    ec2,
                    describe_subnets,
                    "DescribeSubnets",
                    "subnet-id",
                    ids,
                    subnets
                ))
            },
            self.instances("subnet-id", ids),
            self.index.get(self.clients),
        );
        let (subnets, users, idx) = (subnets?, users?, idx?);
        let mut out: BTreeMap<String, Leads> = BTreeMap::new();
        for s in &subnets {
            if let Some(id) = s.subnet_id() {
                self.hinted(&idx, s.tags(), id, out.entry(id.to_string()).or_default());
            }
        }
        for id in ids {
            let leads = out.entry(id.clone()).or_default();
            let within = |i: &Instance| i.subnet_id() == Some(id.as_str());
            lead_instances(leads, &users, within, |inst| {
                format!("node instance {inst} is in {id}")
            });
            for c in idx
                .iter()
                .filter(|(_, c)| c.subnets.contains(id))
                .map(|(n, _)| n)
            {
                lead(leads, c, format!("control plane is in {id}"));
            }
        }
        Ok(out)
    }

    /// A route table's subnets; the main table stands for every subnet of its VPC.
    async fn route_tables(
        &self,
        by: &str,
        ids: &[String],
    ) -> Result<BTreeMap<String, Leads>, String> {
        let tables = pages!(
            self.clients.ec2,
            describe_route_tables,
            "DescribeRouteTables",
            by,
            ids,
            route_tables
        );
        let mut subnets: BTreeSet<String> = BTreeSet::new();
        for t in &tables {
            subnets.extend(
                t.associations()
                    .iter()
                    .filter_map(|a| a.subnet_id().map(str::to_string)),
            );
        }
        let subnets: Vec<String> = subnets.into_iter().collect();
        let (by_subnet, idx) = tokio::join!(self.subnets(&subnets), self.index.get(self.clients));
        let (by_subnet, idx) = (by_subnet?, idx?);
        let mut out = BTreeMap::new();
        for id in ids {
            let mut leads = Leads::new();
            let matches = tables.iter().filter(|t| {
                t.route_table_id() == Some(id.as_str())
                    || t.associations()
                        .iter()
                        .any(|a| a.route_table_association_id() == Some(id.as_str()))
            });
            for t in matches {
                let rtb = t.route_table_id().unwrap_or("?");
                if t.associations().iter().any(|a| a.main() == Some(true)) {
                    if let Some(vpc) = t.vpc_id() {
                        for c in idx.iter().filter(|(_, c)| c.vpc.as_deref() == Some(vpc)) {
                            lead(
                                &mut leads,
                                c.0,
                                format!("{rtb} is the main route table of {vpc}"),
                            );
                        }
                    }
                }
                for s in t.associations().iter().filter_map(|a| a.subnet_id()) {
                    lead_through(&mut leads, by_subnet.get(s), |e| {
                        format!("{rtb} routes {s}: {e}")
                    });
                }
            }
            out.insert(id.clone(), leads);
        }
        Ok(out)
    }

    async fn network_interfaces(&self, ids: &[String]) -> Result<BTreeMap<String, Leads>, String> {
        let enis = pages!(
            self.clients.ec2,
            describe_network_interfaces,
            "DescribeNetworkInterfaces",
            "network-interface-id",
            ids,
            network_interfaces
        );
        let instances: Vec<String> = enis
            .iter()
            .filter_map(|e| e.attachment()?.instance_id().map(str::to_string))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let groups: Vec<String> = enis
            .iter()
            .flat_map(|e| {
                e.groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(str::to_string))
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let (by_instance, by_group, idx) = tokio::join!(
            self.instances("instance-id", &instances),
            async {
                if groups.is_empty() {
                    Ok(BTreeMap::new())
                } else {
                    self.security_groups(&groups).await
                }
            },
            self.index.get(self.clients),
        );
        let (by_instance, by_group, idx) = (by_instance?, by_group?, idx?);
        let mut out = BTreeMap::new();
        for eni in &enis {
            let Some(id) = eni.network_interface_id() else {
                continue;
            };
            let mut leads = Leads::new();
            // EKS names its control-plane interfaces "Amazon EKS <cluster>".
            if let Some(name) = eni
                .description()
                .and_then(|d| d.strip_prefix("Amazon EKS "))
            {
                lead(
                    &mut leads,
                    name,
                    format!("{id} is a control-plane interface of {name}"),
                );
            }
            self.hinted(&idx, eni.tag_set(), id, &mut leads);
            if let Some(inst) = eni.attachment().and_then(|a| a.instance_id()) {
                let attached = |i: &Instance| i.instance_id() == Some(inst);
                lead_instances(&mut leads, &by_instance, attached, |inst| {
                    format!("{id} is attached to node instance {inst}")
                });
            }
            for g in eni.groups().iter().filter_map(|g| g.group_id()) {
                lead_through(&mut leads, by_group.get(g), |e| {
                    format!("{id} uses {g}: {e}")
                });
            }
            out.insert(id.to_string(), leads);
        }
        Ok(out)
    }

    async fn launch_templates(&self, ids: &[String]) -> Result<BTreeMap<String, Leads>, String> {
        let (by_id, names): (Vec<String>, Vec<String>) =
            ids.iter().cloned().partition(|i| i.starts_with("lt-"));
        // DescribeLaunchTemplates has no id filter: ids go in one call, and only when one of them is gone
        // (the whole call fails) one call each.
        let mut templates = pages!(
            self.clients.ec2,
            describe_launch_templates,
            "DescribeLaunchTemplates",
            "launch-template-name",
            names,
            launch_templates
        );
        for chunk in by_id.chunks(FILTER_VALUES) {
            match self.templates_by_id(chunk).await {
                Ok(t) => templates.extend(t),
                Err(e) if chunk.len() > 1 && e.code().is_some_and(|c| c.contains("NotFound")) => {
                    for one in chunk {
                        match self.templates_by_id(std::slice::from_ref(one)).await {
                            Ok(t) => templates.extend(t),
                            Err(e) if e.code().is_some_and(|c| c.contains("NotFound")) => {}
                            Err(e) => return Err(error_line("DescribeLaunchTemplates", &e)),
                        }
                    }
                }
                Err(e) if e.code().is_some_and(|c| c.contains("NotFound")) => {}
                Err(e) => return Err(error_line("DescribeLaunchTemplates", &e)),
            }
        }
        let template_ids: Vec<String> = templates
            .iter()
            .filter_map(|t| t.launch_template_id().map(str::to_string))
            .collect();
        let (launched, idx) = tokio::join!(
            self.instances("tag:aws:ec2launchtemplate:id", &template_ids),
            self.index.get(self.clients),
        );
        let (launched, idx) = (launched?, idx?);
        let mut out = BTreeMap::new();
        for t in &templates {
            let lt_id = t.launch_template_id().unwrap_or_default();
            let mut leads = Leads::new();
            self.hinted(&idx, t.tags(), lt_id, &mut leads);
            for (i, clusters) in &launched {
                let from =
                    tag_pairs(i.tags()).any(|(k, v)| k == "aws:ec2launchtemplate:id" && v == lt_id);
                if from {
                    for c in clusters {
                        let inst = i.instance_id().unwrap_or("?");
                        lead(
                            &mut leads,
                            c,
                            format!("node instance {inst} was launched from {lt_id}"),
                        );
                    }
                }
            }
            for key in [t.launch_template_id(), t.launch_template_name()]
                .into_iter()
                .flatten()
            {
                out.insert(key.to_string(), leads.clone());
            }
        }
        Ok(out)
    }

    async fn templates_by_id(
        &self,
        ids: &[String],
    ) -> Result<
        Vec<aws_sdk_ec2::types::LaunchTemplate>,
        aws_smithy_runtime_api::client::result::SdkError<
            aws_sdk_ec2::operation::describe_launch_templates::DescribeLaunchTemplatesError,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
    > {
        let out = self
            .clients
            .ec2
            .describe_launch_templates()
            .set_launch_template_ids(Some(ids.to_vec()))
            .send()
            .await?;
        Ok(out.launch_templates().to_vec())
    }
}
