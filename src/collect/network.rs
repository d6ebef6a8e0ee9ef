//! The network around a cluster: subnets with their effective route tables, and security groups (with
//! the rule ids of world-open permissions, which a fix revokes by id).
//!
//! A VPC's subnets and route tables are read by VPC, once per run (the clusters of a sweep share them);
//! subnets outside the cluster's VPC, and groups, are read by id through filters, so one id that no
//! longer exists never fails a call.

use super::convert::{self, RawSubnet};
use super::page::{every_page, plain, Round};
use super::{filter, shared, Clients, CollectError};
use crate::model::*;
use aws_sdk_ec2::operation::describe_security_group_rules::DescribeSecurityGroupRulesOutput;
use aws_sdk_ec2::types::RouteTable;
use std::collections::{BTreeMap, BTreeSet};

/// The network ids one evaluation reads.
#[derive(Debug, Default, Clone)]
pub(super) struct Wanted {
    pub subnets: BTreeSet<String>,
    pub groups: BTreeSet<String>,
    /// VPCs known before any subnet is read (the cluster's).
    pub vpcs: BTreeSet<String>,
    /// Read the groups' rule ids alongside the groups (one call more, one round less): for groups
    /// learnt late, whose rule ids would otherwise cost a fourth round.
    pub rule_ids_at_once: bool,
}

impl Wanted {
    /// What the cluster and its tagged instances name: known after the first round.
    pub fn of_cluster(cluster: &Cluster, instances: &Fact<Vec<Instance>>) -> Self {
        let mut w = Wanted {
            subnets: cluster.subnet_ids.iter().cloned().collect(),
            groups: cluster
                .cluster_security_group_id
                .iter()
                .chain(&cluster.security_group_ids)
                .cloned()
                .collect(),
            vpcs: cluster.vpc_id.iter().cloned().collect(),
            rule_ids_at_once: false,
        };
        for i in instances.known().into_iter().flatten() {
            w.subnets.extend(i.subnet_id.iter().cloned());
            w.groups.extend(i.security_group_ids.iter().cloned());
        }
        w
    }

    /// What the nodegroups name beyond `already`.
    pub fn of_nodegroups(ngs: &Fact<Vec<Nodegroup>>, already: &Wanted) -> Self {
        let mut w = Wanted::default();
        for ng in ngs.known().into_iter().flatten() {
            w.subnets.extend(ng.subnet_ids.iter().cloned());
            w.groups
                .extend(ng.remote_access_security_group.iter().cloned());
        }
        w.subnets.retain(|s| !already.subnets.contains(s));
        w.groups.retain(|g| !already.groups.contains(g));
        w.vpcs = already.vpcs.clone();
        w.rule_ids_at_once = true;
        w
    }

    pub fn is_empty(&self) -> bool {
        self.subnets.is_empty() && self.groups.is_empty()
    }
}

/// What was read of the network, before it is placed into the snapshot.
pub(super) struct Network {
    asked: Wanted,
    subnets: Fact<BTreeMap<String, RawSubnet>>,
    tables: BTreeMap<String, Fact<Vec<RouteTable>>>,
    groups: BTreeMap<String, Fact<SecurityGroup>>,
}

/// Reads `want` starting `at` a round: subnets, route tables of the known VPCs and groups at once;
/// then, only when needed, subnets that are not in those VPCs, the route tables of VPCs learnt from
/// subnets, and the rule ids of world-open groups.
pub(super) async fn read(
    clients: &Clients,
    want: Wanted,
    plan: &impl ReadPlan,
    at: Round<'_>,
) -> Result<Network, CollectError> {
    let (subnets_needed, groups_needed) =
        (plan.needs(Part::Subnets), plan.needs(Part::SecurityGroups));
    let eager = groups_needed && want.rule_ids_at_once;
    let (subnets, tables, groups, eager_ids) = tokio::join!(
        async {
            match subnets_needed {
                true => subnets(clients, &want, at).await,
                false => Ok(super::not_collected(Part::Subnets)),
            }
        },
        async {
            match subnets_needed {
                true => route_tables(clients, &want.vpcs, at).await,
                false => Ok(BTreeMap::new()),
            }
        },
        async {
            match groups_needed {
                true => security_groups(clients, &want.groups, at).await,
                false => Ok(not_collected_groups(&want.groups)),
            }
        },
        async {
            match eager {
                true => group_rules(clients, want.groups.iter().collect(), at).await,
                false => Ok(None),
            }
        },
    );
    let (subnets, mut tables, mut groups) = (subnets?, tables?, groups?);
    let open = match eager {
        true => BTreeSet::new(),
        false => open_groups(&groups),
    };
    let late_vpcs: BTreeSet<String> = subnets
        .known()
        .into_iter()
        .flat_map(|s| s.values().map(|s| s.vpc_id.clone()))
        .filter(|v| !tables.contains_key(v))
        .collect();
    let (late_tables, rule_ids) = tokio::join!(
        route_tables(clients, &late_vpcs, at.next()),
        group_rules(clients, open, at.next()),
    );
    tables.extend(late_tables?);
    let rule_ids = eager_ids?.into_iter().chain(rule_ids?).flatten();
    for (gid, ingress) in rule_ids {
        if let Some(Fact::Known(g)) = groups.get_mut(&gid) {
            g.ingress = convert::union_rules(std::mem::take(&mut g.ingress), ingress);
        }
    }
    Ok(Network {
        asked: want,
        subnets,
        tables,
        groups,
    })
}

impl Network {
    /// Adds a later read (the nodegroups' own subnets and groups).
    pub fn merge(mut self, other: Network) -> Network {
        self.asked.subnets.extend(other.asked.subnets);
        self.asked.groups.extend(other.asked.groups);
        self.subnets = match (self.subnets, other.subnets) {
            (Fact::Known(mut a), Fact::Known(b)) => {
                a.extend(b);
                Fact::Known(a)
            }
            (Fact::Unknown(u), _) | (_, Fact::Unknown(u)) => Fact::Unknown(u),
        };
        for (vpc, t) in other.tables {
            self.tables.entry(vpc).or_insert(t);
        }
        self.groups.extend(other.groups);
        self
    }

    /// Each asked subnet with its effective route table, and each asked group; an id that was asked
    /// for but not returned does not exist.
    pub fn place(
        mut self,
    ) -> (
        BTreeMap<String, Fact<Subnet>>,
        BTreeMap<String, Fact<SecurityGroup>>,
    ) {
        let tables = all_tables(&self.tables);
        let subnets = convert::place_subnets(&self.asked.subnets, self.subnets, &tables);
        let groups = self
            .asked
            .groups
            .iter()
            .map(|id| {
                let fact = self.groups.remove(id).unwrap_or_else(|| {
                    Fact::unknown(
                        "InvalidGroup.NotFound",
                        format!("security group {id} does not exist"),
                    )
                });
                (id.clone(), fact)
            })
            .collect();
        (subnets, groups)
    }
}

/// Every table read, `Unknown` when any VPC's tables could not be read (no subnet is then judged on
/// a guess).
fn all_tables(tables: &BTreeMap<String, Fact<Vec<RouteTable>>>) -> Fact<Vec<RouteTable>> {
    let mut out = Vec::new();
    for t in tables.values() {
        match t {
            Fact::Known(t) => out.extend(t.iter().cloned()),
            Fact::Unknown(u) => return Fact::Unknown(u.clone()),
        }
    }
    Fact::Known(out)
}

fn not_collected_groups(ids: &BTreeSet<String>) -> BTreeMap<String, Fact<SecurityGroup>> {
    ids.iter()
        .map(|id| (id.clone(), super::not_collected(Part::SecurityGroups)))
        .collect()
}

/// The wanted subnets: those of the known VPCs from the run's shared read of each VPC, the rest by id
/// (in the next round, as only then is it known which they are).
async fn subnets(
    clients: &Clients,
    want: &Wanted,
    at: Round<'_>,
) -> Result<Fact<BTreeMap<String, RawSubnet>>, CollectError> {
    let mut found = BTreeMap::new();
    for vpc in &want.vpcs {
        let read = shared::subnets(vpc, subnets_where(clients, "vpc-id", [vpc], at)).await?;
        match read {
            Fact::Known(all) => found.extend(
                all.into_iter()
                    .filter(|s| want.subnets.contains(&s.id))
                    .map(|s| (s.id.clone(), s)),
            ),
            Fact::Unknown(u) => return Ok(Fact::Unknown(u)),
        }
    }
    let rest: BTreeSet<&String> = want
        .subnets
        .iter()
        .filter(|id| !found.contains_key(*id))
        .collect();
    if !rest.is_empty() {
        let at = if want.vpcs.is_empty() { at } else { at.next() };
        match subnets_where(clients, "subnet-id", rest, at).await? {
            Fact::Known(more) => found.extend(more.into_iter().map(|s| (s.id.clone(), s))),
            Fact::Unknown(u) => return Ok(Fact::Unknown(u)),
        }
    }
    Ok(Fact::Known(found))
}

async fn subnets_where<I, S>(
    clients: &Clients,
    name: &str,
    values: I,
    at: Round<'_>,
) -> Result<Fact<Vec<RawSubnet>>, CollectError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let pages = clients
        .ec2
        .describe_subnets()
        .filters(filter(name, values))
        .into_paginator()
        .send();
    let keep = |p: aws_sdk_ec2::operation::describe_subnets::DescribeSubnetsOutput,
                out: &mut Vec<RawSubnet>| {
        out.extend(p.subnets().iter().filter_map(convert::subnet))
    };
    every_page("DescribeSubnets", pages, at, keep, plain).await
}

/// The route tables of each VPC, from the run's shared read of it (one call for all VPCs not yet read
/// would not be shareable per VPC; clusters rarely span more than one).
async fn route_tables(
    clients: &Clients,
    vpcs: &BTreeSet<String>,
    at: Round<'_>,
) -> Result<BTreeMap<String, Fact<Vec<RouteTable>>>, CollectError> {
    let mut out = BTreeMap::new();
    for vpc in vpcs {
        let pages = clients
            .ec2
            .describe_route_tables()
            .filters(filter("vpc-id", [vpc]))
            .into_paginator()
            .send();
        let keep = |p: aws_sdk_ec2::operation::describe_route_tables::DescribeRouteTablesOutput,
                    out: &mut Vec<RouteTable>| {
            out.extend(p.route_tables().iter().cloned())
        };
        let read = every_page("DescribeRouteTables", pages, at, keep, plain);
        out.insert(vpc.clone(), shared::route_tables(vpc, read).await?);
    }
    Ok(out)
}

/// Security groups by id, each `Known`, or `Unknown` for all when the call is denied.
/// A group that does not exist is simply absent here.
async fn security_groups(
    clients: &Clients,
    ids: &BTreeSet<String>,
    at: Round<'_>,
) -> Result<BTreeMap<String, Fact<SecurityGroup>>, CollectError> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let pages = clients
        .ec2
        .describe_security_groups()
        .filters(filter("group-id", ids))
        .into_paginator()
        .send();
    let keep =
        |p: aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput,
         out: &mut Vec<SecurityGroup>| {
            out.extend(
                p.security_groups()
                    .iter()
                    .filter_map(convert::security_group),
            )
        };
    Ok(
        match every_page("DescribeSecurityGroups", pages, at, keep, plain).await? {
            Fact::Known(groups) => groups
                .into_iter()
                .map(|g| (g.id.clone(), Fact::Known(g)))
                .collect(),
            Fact::Unknown(u) => ids
                .iter()
                .map(|id| (id.clone(), Fact::Unknown(u.clone())))
                .collect(),
        },
    )
}

/// The groups with a world-open permission: the rule ids of those are what a fix revokes.
fn open_groups(groups: &BTreeMap<String, Fact<SecurityGroup>>) -> BTreeSet<&String> {
    groups
        .values()
        .filter_map(|g| g.known())
        .filter(|g| g.ingress.iter().any(|r| r.world_source().is_some()))
        .map(|g| &g.id)
        .collect()
}

/// Ingress rules with their rule ids, by group. `None` when denied: the rules from
/// `DescribeSecurityGroups` stand, without ids.
async fn group_rules(
    clients: &Clients,
    open: BTreeSet<&String>,
    at: Round<'_>,
) -> Result<Option<BTreeMap<String, Vec<IngressRule>>>, CollectError> {
    if open.is_empty() {
        return Ok(None);
    }
    let pages = clients
        .ec2
        .describe_security_group_rules()
        .filters(filter("group-id", &open))
        .into_paginator()
        .send();
    let keep = |p: DescribeSecurityGroupRulesOutput, out: &mut Vec<(String, IngressRule)>| {
        out.extend(
            p.security_group_rules()
                .iter()
                .filter(|r| r.is_egress() != Some(true))
                .filter_map(|r| Some((r.group_id()?.to_string(), convert::group_rule(r)))),
        )
    };
    let read = every_page("DescribeSecurityGroupRules", pages, at, keep, plain).await?;
    Ok(read.known().map(|rules| {
        let mut out: BTreeMap<String, Vec<IngressRule>> =
            open.iter().map(|g| (g.to_string(), vec![])).collect();
        for (gid, rule) in rules {
            out.entry(gid.clone()).or_default().push(rule.clone());
        }
        out
    }))
}
