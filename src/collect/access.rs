//! Who administers the cluster: access entries that hold the cluster-admin policy, with every policy
//! association of each (so the rule sees the scope of that policy).

use super::errors::is_not_found;
use super::page::{every_page, Round};
use super::{convert, Clients, CollectError, FAN_OUT};
use crate::model::*;
use aws_sdk_eks::operation::list_access_entries::ListAccessEntriesOutput;
use aws_sdk_eks::operation::list_associated_access_policies::ListAssociatedAccessPoliciesOutput;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::{stream, StreamExt};

/// Principals whose access entry has [`CLUSTER_ADMIN_POLICY`] associated (the API filters by policy,
/// so entries that grant less cost no call), each with all its associations. In `CONFIG_MAP` mode
/// there are no access entries at all.
pub(super) async fn admin_entries(
    clients: &Clients,
    cluster: &str,
    mode: &Fact<String>,
    plan: &impl ReadPlan,
    at: Round<'_>,
) -> Result<Fact<Vec<AccessEntry>>, CollectError> {
    if !plan.needs(Part::AccessEntries) {
        return Ok(super::not_collected(Part::AccessEntries));
    }
    if mode.known().is_some_and(|m| m == "CONFIG_MAP") {
        return Ok(Fact::Known(vec![]));
    }
    let pages = clients
        .eks
        .list_access_entries()
        .cluster_name(cluster)
        .associated_policy_arn(CLUSTER_ADMIN_POLICY)
        .into_paginator()
        .send();
    let keep = |p: ListAccessEntriesOutput, out: &mut Vec<String>| {
        out.extend(p.access_entries().iter().cloned())
    };
    match every_page("ListAccessEntries", pages, at, keep, not_listable).await? {
        Fact::Known(principals) => {
            associated_policies(clients, cluster, principals, at.next()).await
        }
        Fact::Unknown(u) => Ok(Fact::Unknown(u)),
    }
}

/// The cluster is gone (nothing to judge), or its mode does not allow access entries (read while the
/// mode was unknown: the answer says which).
fn not_listable<E: ProvideErrorMetadata>(
    e: &SdkError<E, HttpResponse>,
) -> Option<Fact<Vec<String>>> {
    if is_not_found(e) {
        return Some(Fact::Known(vec![]));
    }
    (e.code() == Some("InvalidRequestException")).then(|| {
        Fact::unknown(
            "InvalidRequestException",
            e.message().unwrap_or_default().to_string(),
        )
    })
}

async fn associated_policies(
    clients: &Clients,
    cluster: &str,
    principals: Vec<String>,
    at: Round<'_>,
) -> Result<Fact<Vec<AccessEntry>>, CollectError> {
    let results: Vec<Result<Option<AccessEntry>, CollectError>> = stream::iter(principals)
        .map(|principal| entry(clients, cluster, principal, at))
        .buffered(FAN_OUT)
        .collect()
        .await;
    let mut out = Vec::new();
    for r in results {
        out.extend(r?);
    }
    Ok(Fact::Known(out))
}

/// One principal's associations; `None` when its entry was deleted since it was listed.
async fn entry(
    clients: &Clients,
    cluster: &str,
    principal: String,
    at: Round<'_>,
) -> Result<Option<AccessEntry>, CollectError> {
    let pages = clients
        .eks
        .list_associated_access_policies()
        .cluster_name(cluster)
        .principal_arn(&principal)
        .into_paginator()
        .send();
    let keep = |p: ListAssociatedAccessPoliciesOutput, out: &mut Vec<AccessPolicyAssociation>| {
        out.extend(
            p.associated_access_policies()
                .iter()
                .filter_map(convert::access_policy),
        )
    };
    let gone = |e: &SdkError<_, HttpResponse>| {
        is_not_found(e).then(|| Fact::unknown(GONE, "the access entry was deleted"))
    };
    match every_page("ListAssociatedAccessPolicies", pages, at, keep, gone).await? {
        Fact::Unknown(u) if u.code == GONE => Ok(None),
        policies => Ok(Some(AccessEntry {
            principal_arn: principal,
            policies,
        })),
    }
}

/// Marks an entry deleted since it was listed (never leaves this module).
const GONE: &str = "eks-warden:EntryGone";
