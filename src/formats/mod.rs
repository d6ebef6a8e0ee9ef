//! Findings in the formats security teams already collect: AWS Security Finding Format (Security Hub),
//! OCSF (Security Lake) and SARIF (code scanning). Each is a pure function of a scan report; the finding id
//! is the same as in the JSON report, so one finding can be followed across every tool.

pub mod asff;
pub mod ocsf;
pub mod sarif;

use crate::finding::partition;
use crate::rules::{self, ResourceType, RuleResult};
use crate::scan::ClusterReport;

/// The ARN of the resource a result judged (the nodegroup's without its generated suffix, which the
/// snapshot does not keep; an access entry is named by its principal's ARN).
pub fn resource_arn(c: &ClusterReport, r: &RuleResult) -> String {
    arn_of(c, r.resource_type, &r.resource_id)
}

/// The ARN of a resource of the cluster's account and region, by type and id.
pub fn arn_of(c: &ClusterReport, t: ResourceType, id: &str) -> String {
    let p = partition(&c.region);
    let (region, account) = (&c.region, &c.account);
    match t {
        ResourceType::Cluster => c.cluster_arn.clone(),
        ResourceType::SecurityGroup => {
            format!("arn:{p}:ec2:{region}:{account}:security-group/{id}")
        }
        ResourceType::Subnet => format!("arn:{p}:ec2:{region}:{account}:subnet/{id}"),
        ResourceType::Instance => format!("arn:{p}:ec2:{region}:{account}:instance/{id}"),
        ResourceType::Nodegroup => {
            format!(
                "arn:{p}:eks:{region}:{account}:nodegroup/{}/{id}",
                c.cluster
            )
        }
        ResourceType::AccessEntry if id.starts_with("arn:") => id.to_string(),
        ResourceType::AccessEntry => format!("{}/access-entry/{id}", c.cluster_arn),
    }
}

/// The resource type as Security Hub names it (also used by OCSF's `resources[].type`).
pub fn aws_resource_type(t: ResourceType) -> &'static str {
    match t {
        ResourceType::Cluster => "AwsEksCluster",
        ResourceType::SecurityGroup => "AwsEc2SecurityGroup",
        ResourceType::Subnet => "AwsEc2Subnet",
        ResourceType::Instance => "AwsEc2Instance",
        ResourceType::Nodegroup | ResourceType::AccessEntry => "Other",
    }
}

/// The rule's first documentation link (the EKS user guide page), for "learn more" links.
pub fn docs_url(rule_id: &str) -> Option<&'static str> {
    rules::find(rule_id)?
        .meta
        .references
        .iter()
        .copied()
        .find(|r| r.starts_with("https://"))
}

/// The references that name a standard control (`CIS EKS 5.4.1`, `Security Hub EKS.1`).
pub fn standards(rule_id: &str) -> Vec<&'static str> {
    rules::find(rule_id)
        .map(|r| {
            r.meta
                .references
                .iter()
                .copied()
                .filter(|x| !x.starts_with("https://"))
                .collect()
        })
        .unwrap_or_default()
}

/// At most `max` characters, cut on a character boundary with an ellipsis, as the formats' limits ask.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
pub(crate) mod fixture {
    use crate::rules::{ResourceType, RuleResult, Severity, Status};
    use crate::scan::{ClusterReport, ScanReport};

    pub fn result(rule: &str, status: Status, rt: ResourceType, id: &str) -> RuleResult {
        RuleResult {
            rule_id: rule.into(),
            severity: Severity::High,
            status,
            resource_type: rt,
            resource_id: id.into(),
            message: format!("{rule} on {id}"),
            evidence: [("cidr".to_string(), "0.0.0.0/0".to_string())].into(),
            discriminator: None,
            finding_id: format!("ewf-{rule}-{id}"),
        }
    }

    /// An ACTIVE cluster of account 111122223333 in eu-west-1 with these results, no owner and no fixes.
    pub fn cluster(name: &str, results: Vec<RuleResult>) -> ClusterReport {
        ClusterReport {
            account: "111122223333".into(),
            region: "eu-west-1".into(),
            cluster: name.into(),
            cluster_arn: format!("arn:aws:eks:eu-west-1:111122223333:cluster/{name}"),
            owner: None,
            status: "ACTIVE".into(),
            results,
            aws_calls: 9,
            remediations: vec![],
        }
    }

    /// One cluster with a FAIL, a PASS, an UNKNOWN and an EXEMPT result.
    pub fn report() -> ScanReport {
        use ResourceType::*;
        let results = vec![
            result("sg-open-ingress", Status::Fail, SecurityGroup, "sg-1"),
            result("endpoint-private-disabled", Status::Pass, Cluster, "prod"),
            result(
                "network-policy-not-enforced",
                Status::Unknown,
                Cluster,
                "prod",
            ),
            result("nodes-public-ip", Status::Exempt, Subnet, "subnet-1"),
        ];
        ScanReport {
            clusters: vec![ClusterReport {
                owner: Some("payments".into()),
                ..cluster("prod", results)
            }],
            generated_at: "2026-12-02T06:00:00Z".into(),
            ..ScanReport::default()
        }
    }
}
