//! Security groups, each with the rule ids of its world-open permissions (what a fix revokes).
//!
//! The groups of the cluster's VPC come from the run's one read of all that VPC's groups, and their
//! rule ids from one read for all the VPC's world-open groups: the clusters of a sweep share both.
//! Groups outside the VPC (or when the VPC is not known) are read by id.

use super::convert;
use super::network::Wanted;
use super::page::{every_page, plain, Round};
use super::{filter, shared, Clients, CollectError};
use crate::model::*;
use aws_sdk_ec2::operation::describe_security_group_rules::DescribeSecurityGroupRulesOutput;
use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput;
use std::collections::{BTreeMap, BTreeSet};

/// Rule ids by group; `None` when they could not be read (the rules stand without ids).
pub(super) type RuleIds = Option<BTreeMap<String, Vec<IngressRule>>>;

/// How many group ids one filter carries.
const IDS_PER_CALL: usize = 200;

/// The wanted groups, each `Known` (with rule ids where world-open) or `Unknown`; a wanted group that
/// does not exist is absent.
pub(super) async fn read(
    clients: &Clients,
    want: &Wanted,
    at: Round<'_>,
) -> Result<BTreeMap<String, Fact<SecurityGroup>>, CollectError> {
    let mut out = BTreeMap::new();
    for vpc in &want.vpcs {
        let all = shared::groups(vpc, groups_where(clients, "vpc-id", [vpc], at)).await?;
        let all = match all {
            Fact::Known(all) => all,
            Fact::Unknown(u) => return Ok(unknown(&want.groups, u)),
        };
        let open: BTreeSet<&String> = open_groups(all.iter());
        // Read (once for the VPC's open groups) only when one of the wanted groups is open.
        // A late read (groups a nodegroup names) starts after round 2, as the VPC's groups answered.
        let then = if want.rule_ids_at_once { at } else { at.next() };
        let ids = match open.iter().any(|id| want.groups.contains(*id)) {
            true => shared::rule_ids(vpc, rule_ids(clients, open, then)).await?,
            false => None,
        };
        for g in all.into_iter().filter(|g| want.groups.contains(&g.id)) {
            out.insert(g.id.clone(), Fact::Known(with_ids(g, &ids)));
        }
    }
    let rest: BTreeSet<&String> = want
        .groups
        .iter()
        .filter(|id| !out.contains_key(*id))
        .collect();
    if !rest.is_empty() {
        // Only once the VPC's read answered is it known which groups lie outside it.
        let at = if want.vpcs.is_empty() { at } else { at.next() };
        out.extend(by_id(clients, rest, want.rule_ids_at_once, at).await?);
    }
    Ok(out)
}

/// Groups by id; with `ids_at_once`, their rule ids in the same round (one call more, one round less).
async fn by_id(
    clients: &Clients,
    ids: BTreeSet<&String>,
    ids_at_once: bool,
    at: Round<'_>,
) -> Result<BTreeMap<String, Fact<SecurityGroup>>, CollectError> {
    let (groups, eager) = tokio::join!(groups_where(clients, "group-id", &ids, at), async {
        match ids_at_once {
            true => rule_ids(clients, ids.clone(), at).await,
            false => Ok(None),
        }
    });
    let groups = match groups? {
        Fact::Known(g) => g,
        Fact::Unknown(u) => return Ok(unknown(ids, u)),
    };
    let rules = match ids_at_once {
        true => eager?,
        false => rule_ids(clients, open_groups(groups.iter()), at.next()).await?,
    };
    Ok(groups
        .into_iter()
        .map(|g| (g.id.clone(), Fact::Known(with_ids(g, &rules))))
        .collect())
}

fn unknown<'a>(
    ids: impl IntoIterator<Item = &'a String>,
    u: Unreadable,
) -> BTreeMap<String, Fact<SecurityGroup>> {
    ids.into_iter()
        .map(|id| (id.clone(), Fact::Unknown(u.clone())))
        .collect()
}

fn with_ids(mut g: SecurityGroup, ids: &RuleIds) -> SecurityGroup {
    if let Some(ingress) = ids.as_ref().and_then(|ids| ids.get(&g.id)) {
        g.ingress = convert::union_rules(std::mem::take(&mut g.ingress), ingress.clone());
    }
    g
}

async fn groups_where<I, S>(
    clients: &Clients,
    name: &str,
    values: I,
    at: Round<'_>,
) -> Result<Fact<Vec<SecurityGroup>>, CollectError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let pages = clients
        .ec2
        .describe_security_groups()
        .filters(filter(name, values))
        .into_paginator()
        .send();
    let keep = |p: DescribeSecurityGroupsOutput, out: &mut Vec<SecurityGroup>| {
        out.extend(
            p.security_groups()
                .iter()
                .filter_map(convert::security_group),
        )
    };
    every_page("DescribeSecurityGroups", pages, at, keep, plain).await
}

/// The groups with a world-open permission: the rule ids of those are what a fix revokes.
fn open_groups<'a>(groups: impl Iterator<Item = &'a SecurityGroup>) -> BTreeSet<&'a String> {
    groups
        .filter(|g| g.ingress.iter().any(|r| r.world_source().is_some()))
        .map(|g| &g.id)
        .collect()
}

/// Ingress rules with their rule ids, by group, 200 groups a call. `None` when denied.
async fn rule_ids(
    clients: &Clients,
    groups: BTreeSet<&String>,
    at: Round<'_>,
) -> Result<RuleIds, CollectError> {
    let groups: Vec<&String> = groups.into_iter().collect();
    let mut out: BTreeMap<String, Vec<IngressRule>> = BTreeMap::new();
    for chunk in groups.chunks(IDS_PER_CALL) {
        let pages = clients
            .ec2
            .describe_security_group_rules()
            .filters(filter("group-id", chunk))
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
        match every_page("DescribeSecurityGroupRules", pages, at, keep, plain).await? {
            Fact::Known(rules) => {
                for (gid, rule) in rules {
                    out.entry(gid).or_default().push(rule);
                }
            }
            Fact::Unknown(_) => return Ok(None),
        }
    }
    Ok(Some(out))
}
