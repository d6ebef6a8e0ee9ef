//! Reads that the clusters of one run share (a sweep, a scan, a batch): a VPC's route tables and the
//! region's Kubernetes version support are read once, not once per cluster. Scoped to the run (a task-local
//! set around the evaluations), so nothing outlives it and a later run never sees stale tables.

use crate::model::VersionSupport;
use aws_sdk_ec2::types::RouteTable;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Shared {
    /// Held while route tables are looked up and read, so clusters evaluated at once wait for one read
    /// of their VPC instead of each making it.
    route_reads: Arc<tokio::sync::Mutex<()>>,
    /// vpc id → its route tables.
    route_tables: Mutex<HashMap<String, Vec<RouteTable>>>,
    /// (region, version) → what DescribeClusterVersions said.
    versions: Mutex<HashMap<(String, String), Option<VersionSupport>>>,
}

tokio::task_local! {
    static SHARED: Arc<Shared>;
}

/// Runs `work` with `shared` as the run's shared reads.
pub async fn within<F: Future>(shared: Arc<Shared>, work: F) -> F::Output {
    SHARED.scope(shared, work).await
}

fn current() -> Option<Arc<Shared>> {
    SHARED.try_with(Arc::clone).ok()
}

/// Serializes route-table reads within the run (none outside a run).
pub(super) async fn route_read_guard() -> Option<tokio::sync::OwnedMutexGuard<()>> {
    let s = current()?;
    Some(s.route_reads.clone().lock_owned().await)
}

/// The cached tables of `vpcs`, and the VPCs still to read.
pub(super) fn route_tables(vpcs: &[String]) -> (Vec<RouteTable>, Vec<String>) {
    let Some(s) = current() else {
        return (vec![], vpcs.to_vec());
    };
    let Ok(cached) = s.route_tables.lock() else {
        return (vec![], vpcs.to_vec());
    };
    let mut hit = vec![];
    let mut missing = vec![];
    for v in vpcs {
        match cached.get(v) {
            Some(t) => hit.extend(t.iter().cloned()),
            None => missing.push(v.clone()),
        }
    }
    (hit, missing)
}

/// Remembers the tables read for `vpcs` (a VPC with none is remembered as having none).
pub(super) fn keep_route_tables(vpcs: &[String], tables: &[RouteTable]) {
    let Some(s) = current() else { return };
    if let Ok(mut cached) = s.route_tables.lock() {
        for v in vpcs {
            let of_vpc = tables
                .iter()
                .filter(|t| t.vpc_id() == Some(v.as_str()))
                .cloned()
                .collect();
            cached.insert(v.clone(), of_vpc);
        }
    };
}

pub(super) fn version(region: &str, version: &str) -> Option<Option<VersionSupport>> {
    let s = current()?;
    let cached = s.versions.lock().ok()?;
    cached
        .get(&(region.to_string(), version.to_string()))
        .cloned()
}

pub(super) fn keep_version(region: &str, version: &str, support: &Option<VersionSupport>) {
    let Some(s) = current() else { return };
    if let Ok(mut cached) = s.versions.lock() {
        cached.insert((region.to_string(), version.to_string()), support.clone());
    };
}
