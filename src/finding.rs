//! Finding identity: one stable id per (partition, account, region, cluster, rule, resource), the same in
//! every output (JSON report, `handle` summary, SNS, the state table), so a finding can be followed from
//! first seen to resolved.

use crate::rules::RuleResult;
use sha2::{Digest, Sha256};

/// The AWS partition of a region (`aws`, `aws-cn`, `aws-us-gov`, `aws-iso`, `aws-iso-b`).
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else {
        "aws"
    }
}

/// Where a finding lives: the cluster it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub cluster: &'a str,
}

/// The stable id of one result: `ewf-` and 32 hex digits of a SHA-256 over the identity's fields.
/// The status, severity and message are not part of it: a finding keeps its id from FAIL to PASS.
pub fn finding_id(scope: Scope<'_>, r: &RuleResult) -> String {
    let mut h = Sha256::new();
    let fields = [
        partition(scope.region),
        scope.account,
        scope.region,
        scope.cluster,
        r.rule_id.as_str(),
        r.resource_type.as_str(),
        r.resource_id.as_str(),
        r.discriminator.as_deref().unwrap_or(""),
    ];
    for f in fields {
        // Length-prefixed, so no two different field lists hash the same bytes.
        h.update((f.len() as u64).to_be_bytes());
        h.update(f.as_bytes());
    }
    let digest = h.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("ewf-{hex}")
}

/// Sets the finding id of every result of one cluster.
pub fn assign_ids(scope: Scope<'_>, results: &mut [RuleResult]) {
    for r in results {
        r.finding_id = finding_id(scope, r);
    }
}

/// `arn:<partition>:eks:<region>:<account>:cluster/<name>`, for a cluster whose ARN was not read.
pub fn cluster_arn(account: &str, region: &str, cluster: &str) -> String {
    format!(
        "arn:{}:eks:{region}:{account}:cluster/{cluster}",
        partition(region)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{ResourceType, Severity, Status};

    fn result(rule: &str, resource: &str) -> RuleResult {
        RuleResult {
            rule_id: rule.into(),
            severity: Severity::High,
            status: Status::Fail,
            resource_type: ResourceType::SecurityGroup,
            resource_id: resource.into(),
            message: "m".into(),
            evidence: Default::default(),
            discriminator: None,
            finding_id: String::new(),
        }
    }

    const S: Scope = Scope {
        account: "111122223333",
        region: "eu-west-1",
        cluster: "prod",
    };

    #[test]
    fn the_id_ignores_status_and_message_but_not_identity() {
        let a = result("sg-open-ingress", "sg-1");
        let mut b = a.clone();
        b.status = Status::Pass;
        b.message = "other".into();
        b.severity = Severity::Critical;
        assert_eq!(finding_id(S, &a), finding_id(S, &b));
        assert_ne!(
            finding_id(S, &a),
            finding_id(S, &result("sg-open-ingress", "sg-2"))
        );
        assert_ne!(finding_id(S, &a), finding_id(S, &a.clone().keyed("sgr-1")));
        let other = Scope {
            cluster: "staging",
            ..S
        };
        assert_ne!(finding_id(S, &a), finding_id(other, &a));
        // Pinned: an id must never change between releases, or every finding would be "new" again.
        assert_eq!(finding_id(S, &a).len(), 36);
        assert!(finding_id(S, &a).starts_with("ewf-"));
    }

    #[test]
    fn field_boundaries_matter() {
        let a = Scope {
            account: "1",
            region: "eu-west-1",
            cluster: "ab",
        };
        let b = Scope {
            account: "1a",
            region: "eu-west-1",
            cluster: "b",
        };
        let r = result("x", "y");
        assert_ne!(finding_id(a, &r), finding_id(b, &r));
    }

    #[test]
    fn partitions() {
        assert_eq!(partition("eu-west-1"), "aws");
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
        assert_eq!(
            cluster_arn("1", "cn-north-1", "c"),
            "arn:aws-cn:eks:cn-north-1:1:cluster/c"
        );
    }
}
