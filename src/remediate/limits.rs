//! Limits on how much a run may change: a budget of write calls per invocation, and the flapping stop.
//!
//! The budget keeps one bad evaluation from rewriting a whole account at once; what does not fit is
//! deferred to the re-check. Flapping needs memory across invocations: a [`FixHistory`] is the port through
//! which the state store lends it (one history per cluster, loaded with the cluster's state item and saved
//! with it). Without a state store, [`NoHistory`] remembers nothing and flapping cannot be seen.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

/// Write calls one invocation may make (`EKS_WARDEN_MAX_FIXES`).
pub const DEFAULT_MAX_FIXES: u32 = 10;
/// Fixes of one finding within [`FLAP_WINDOW_SECS`] after which eks-warden stops fixing it.
pub const FLAP_LIMIT: usize = 3;
pub const FLAP_WINDOW_SECS: i64 = 24 * 3600;

/// The write calls left in this invocation, shared by every cluster it fixes.
#[derive(Debug)]
pub struct Budget {
    max: u32,
    left: AtomicU32,
}

impl Budget {
    pub fn new(max: u32) -> Self {
        Budget {
            max,
            left: AtomicU32::new(max),
        }
    }

    pub fn max(&self) -> u32 {
        self.max
    }

    /// Takes up to `wanted` calls; returns how many were granted (0 when spent).
    pub fn take(&self, wanted: u32) -> u32 {
        let mut granted = 0;
        let _ = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                granted = left.min(wanted);
                Some(left - granted)
            });
        granted
    }
}

/// When fixes were applied, per (rule id, resource id) of one cluster, in seconds since the epoch.
pub trait FixHistory: Send {
    fn applied(&self, rule_id: &str, resource_id: &str) -> Vec<i64>;
    fn record(&mut self, rule_id: &str, resource_id: &str, at: i64);
}

/// No state store: nothing is remembered, so flapping is never reported.
#[derive(Debug, Default)]
pub struct NoHistory;

impl FixHistory for NoHistory {
    fn applied(&self, _: &str, _: &str) -> Vec<i64> {
        vec![]
    }
    fn record(&mut self, _: &str, _: &str, _: i64) {}
}

/// A history held in memory: the shape a state item serialises, and what tests use.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MemoryHistory(pub BTreeMap<(String, String), Vec<i64>>);

impl FixHistory for MemoryHistory {
    fn applied(&self, rule_id: &str, resource_id: &str) -> Vec<i64> {
        self.0
            .get(&(rule_id.to_string(), resource_id.to_string()))
            .cloned()
            .unwrap_or_default()
    }
    fn record(&mut self, rule_id: &str, resource_id: &str, at: i64) {
        let times = self
            .0
            .entry((rule_id.to_string(), resource_id.to_string()))
            .or_default();
        times.retain(|t| at - *t < FLAP_WINDOW_SECS);
        times.push(at);
    }
}

/// `Err` when this finding was fixed [`FLAP_LIMIT`] times in the last day: something puts it back.
pub fn not_flapping(
    history: &dyn FixHistory,
    rule_id: &str,
    resource_id: &str,
    now: i64,
) -> Result<(), String> {
    let recent = history
        .applied(rule_id, resource_id)
        .into_iter()
        .filter(|t| now - *t < FLAP_WINDOW_SECS)
        .count();
    if recent < FLAP_LIMIT {
        return Ok(());
    }
    Err(format!(
        "flapping: fixed {recent} times in the last 24 hours and it came back each time; something \
         re-adds this (the Kubernetes service controller, Terraform, Firewall Manager?): find it before \
         fixing again"
    ))
}

/// Seconds since the epoch, for the history.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_grants_what_is_left_and_no_more() {
        let b = Budget::new(3);
        assert_eq!(b.take(2), 2);
        assert_eq!(b.take(2), 1);
        assert_eq!(b.take(1), 0);
    }

    #[test]
    fn three_fixes_in_a_day_stop_the_fourth() {
        let mut h = MemoryHistory::default();
        let now = 1_000_000;
        for t in [now - 30 * 3600, now - 3600, now - 600] {
            h.record("sg-open-ingress", "sg-1", t);
        }
        // The oldest is outside the window: two recent fixes, not yet flapping.
        assert!(not_flapping(&h, "sg-open-ingress", "sg-1", now).is_ok());
        h.record("sg-open-ingress", "sg-1", now - 60);
        let e = not_flapping(&h, "sg-open-ingress", "sg-1", now).unwrap_err();
        assert!(e.contains("flapping") && e.contains("Terraform"), "{e}");
        assert!(not_flapping(&h, "sg-open-ingress", "sg-2", now).is_ok());
        assert!(not_flapping(&NoHistory, "sg-open-ingress", "sg-1", now).is_ok());
    }
}
