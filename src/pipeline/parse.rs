//! Stage 1, parse: the payload → triggers, each with the SQS message it came in. A record that can never
//! succeed (unreadable, an invalid region or account, an empty cluster name, a re-check past its limit) is
//! dropped here with its reason: retrying it would only loop until the dead-letter queue.

use super::summary::RunSummary;
use crate::event::{parse_payload, PayloadError, Trigger};
use serde_json::Value;
use tracing::warn;

/// One trigger and the SQS message that carried it.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub message_id: Option<String>,
    pub trigger: Trigger,
}

/// Re-check attempts accepted when no re-check queue says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

pub fn parse(
    payload: &Value,
    max_attempts: u32,
    run: &mut RunSummary,
) -> Result<Vec<Parsed>, PayloadError> {
    let mut out = Vec::new();
    for item in parse_payload(payload)? {
        let checked = item
            .trigger
            .and_then(|t| check(&t, max_attempts).map(|()| t));
        match checked {
            Ok(trigger) => out.push(Parsed {
                message_id: item.message_id,
                trigger,
            }),
            Err(reason) => {
                warn!(message_id = ?item.message_id, %reason, "ignored input");
                run.ignore(
                    item.message_id.clone().unwrap_or_default(),
                    reason,
                    item.message_id,
                );
            }
        }
    }
    Ok(out)
}

/// Why a trigger can never succeed, if it cannot.
fn check(t: &Trigger, max_attempts: u32) -> Result<(), String> {
    let (account, region, clusters): (Option<&str>, Option<&str>, Vec<&str>) = match t {
        Trigger::CloudTrail(e) => (e.account.as_deref(), e.region.as_deref(), vec![]),
        Trigger::Schedule { account, region } => (account.as_deref(), region.as_deref(), vec![]),
        Trigger::Sweep { account, region } => (Some(account), Some(region), vec![]),
        Trigger::Direct {
            clusters,
            account,
            region,
        } => (
            account.as_deref(),
            region.as_deref(),
            clusters.iter().map(String::as_str).collect(),
        ),
        Trigger::Recheck(r) => {
            if r.attempt > max_attempts {
                return Err(format!(
                    "re-check attempt {} is past the limit of {max_attempts}",
                    r.attempt
                ));
            }
            let account = Some(r.account.as_str()).filter(|a| !a.is_empty());
            (account, Some(r.region.as_str()), vec![r.cluster.as_str()])
        }
    };
    if let Some(r) = region.filter(|r| !valid_region(r)) {
        return Err(format!("{r:?} is not an AWS region"));
    }
    if let Some(a) = account.filter(|a| !valid_account(a)) {
        return Err(format!("{a:?} is not an AWS account id"));
    }
    if let Some(c) = clusters.iter().find(|c| !valid_cluster_name(c)) {
        return Err(format!("{c:?} is not an EKS cluster name"));
    }
    Ok(())
}

/// `eu-west-1`, `us-gov-west-1`, `cn-north-1`, `us-isob-east-1`: letters in parts, a number last.
pub fn valid_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    r.len() <= 32
        && parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Twelve digits.
pub fn valid_account(a: &str) -> bool {
    a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())
}

/// What EKS accepts: 1–100 characters, a letter or digit first, then letters, digits, `-` and `_`.
pub fn valid_cluster_name(c: &str) -> bool {
    (1..=100).contains(&c.len())
        && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        for r in ["eu-west-1", "us-gov-west-1", "cn-north-1", "us-isob-east-1"] {
            assert!(valid_region(r), "{r}");
        }
        for r in ["", "eu-west", "EU-west-1", "eu--1", "../etc", "eu-west-1a"] {
            assert!(!valid_region(r), "{r}");
        }
        assert!(valid_account("123456789012"));
        assert!(!valid_account("12345") && !valid_account("12345678901a"));
        assert!(valid_cluster_name("prod_eu-1"));
        for c in ["", "-x", "a b", &"x".repeat(101)] {
            assert!(!valid_cluster_name(c), "{c}");
        }
    }

    /// Guards failure isolation: records that can never succeed are dropped with a reason, not retried.
    #[test]
    fn records_that_can_never_succeed_are_dropped_with_their_reason() {
        let rec = |id: &str, body: Value| json!({"messageId": id, "body": body.to_string()});
        let payload = json!({"Records": [
            rec("bad-region", json!({"kind": "recheck", "account": "123456789012", "region": "mars-1", "cluster": "a", "attempt": 1})),
            rec("empty-name", json!({"kind": "recheck", "account": "123456789012", "region": "eu-west-1", "cluster": "", "attempt": 1})),
            rec("at-limit", json!({"kind": "recheck", "account": "123456789012", "region": "eu-west-1", "cluster": "a", "attempt": u32::MAX})),
            rec("direct", json!({"clusters": ["a"], "region": "eu-west-1", "account": "123456789012"})),
            rec("good", json!({"kind": "recheck", "account": "123456789012", "region": "eu-west-1", "cluster": "a", "attempt": 5})),
        ]});
        let mut run = RunSummary::default();
        let items = parse(&payload, 5, &mut run).unwrap();
        let kept: Vec<_> = items
            .iter()
            .filter_map(|i| i.message_id.as_deref())
            .collect();
        assert_eq!(kept, vec!["direct", "good"]);
        let dropped: Vec<_> = run.ignored.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(dropped, vec!["bad-region", "empty-name", "at-limit"]);
        assert!(run.ignored[2].reason.contains("past the limit"));
    }
}
