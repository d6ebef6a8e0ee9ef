//! The cluster's EKS add-ons: their names, and the configuration of those whose configuration decides
//! a verdict (the plan names them).

use super::errors::{is_not_found, unreadable_or_fatal};
use super::page::{every_page, gone_is_empty, Round};
use super::{Clients, CollectError};
use crate::model::*;
use aws_sdk_eks::operation::list_addons::ListAddonsOutput;

/// Add-on names (paginated).
pub(super) async fn names(
    clients: &Clients,
    cluster: &str,
    plan: &impl ReadPlan,
    at: Round<'_>,
) -> Result<Fact<Vec<String>>, CollectError> {
    if !plan.needs(Part::Addons) {
        return Ok(super::not_collected(Part::Addons));
    }
    let pages = clients
        .eks
        .list_addons()
        .cluster_name(cluster)
        .into_paginator()
        .send();
    let keep = |p: ListAddonsOutput, out: &mut Vec<String>| out.extend(p.addons().iter().cloned());
    // The cluster vanished between calls: DescribeCluster reports that.
    every_page("ListAddons", pages, at, keep, gone_is_empty).await
}

/// The add-ons with the configuration of those the plan names (given the cluster's tags); the others'
/// configuration is `NotCollected`. An add-on deleted since it was listed is left out.
pub(super) async fn with_configuration(
    clients: &Clients,
    cluster: &Cluster,
    names: Fact<Vec<String>>,
    plan: &impl ReadPlan,
    at: Round<'_>,
) -> Result<Fact<Vec<Addon>>, CollectError> {
    let Fact::Known(names) = names else {
        return Ok(names.map(|_| vec![]));
    };
    let wanted = plan.addon_configurations(cluster, &names);
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let configuration_values = if wanted.contains(&name) {
            match configuration(clients, &cluster.name, &name, at).await? {
                Some(c) => c,
                None => continue,
            }
        } else {
            Fact::unknown(
                "NotCollected",
                "no rule needs this add-on's configuration here",
            )
        };
        out.push(Addon {
            name,
            configuration_values,
        });
    }
    Ok(Fact::Known(out))
}

/// One add-on's `configurationValues`; `None` when the add-on was deleted since it was listed.
async fn configuration(
    clients: &Clients,
    cluster: &str,
    addon: &str,
    at: Round<'_>,
) -> Result<Option<Fact<Option<String>>>, CollectError> {
    at.call();
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
