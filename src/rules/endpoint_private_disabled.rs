use super::{FixText, ResourceType::Cluster, Rule, RuleMeta, RuleResult, Severity};
use crate::model::ClusterSnapshot;
use crate::settings::Settings;

pub const RULE: Rule = Rule {
    meta: RuleMeta {
        id: "endpoint-private-disabled",
        reads: &[],
        severity: Severity::Medium,
        title: "Private API endpoint access is disabled",
        description: "`endpointPrivateAccess` is false: nodes and pods in the VPC reach the Kubernetes API \
            through the public endpoint, so node-to-control-plane traffic leaves the VPC, and the public \
            endpoint cannot be turned off without cutting the nodes off.",
        resolution: "Turn private endpoint access on (aws eks update-cluster-config --name <cluster> \
            --resources-vpc-config endpointPrivateAccess=true); the VPC needs DNS hostnames and DNS \
            resolution enabled. Then consider restricting or turning off public access.",
        references: &[
            "https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html",
            "https://docs.aws.amazon.com/eks/latest/userguide/infrastructure-security.html",
            "CIS EKS 5.4.2",
        ],
        remediable: true,
        fix_permission: Some("eks:UpdateClusterConfig"),
        fix: Some(FixText {
            changes: "One `UpdateClusterConfig` with `endpointPrivateAccess=true`.",
            never: "Change public access or its CIDRs.",
        }),
    },
    check: evaluate,
};

fn evaluate(s: &ClusterSnapshot, _cfg: &Settings) -> Vec<RuleResult> {
    let m = &RULE.meta;
    let name = &s.cluster.name;
    let ep = match s.cluster.endpoint.as_ref() {
        Ok(ep) => ep,
        Err(why) => {
            return vec![RuleResult::unknown(
                m,
                Cluster,
                name,
                "endpoint access settings",
                why,
            )]
        }
    };
    let r = if ep.private_access {
        RuleResult::pass(
            m,
            Cluster,
            name,
            format!("private endpoint access is on for cluster {name}"),
        )
    } else {
        let msg = if ep.public_access {
            format!(
                "cluster {name} has endpointPrivateAccess=false: node-to-API traffic goes through the \
                 public endpoint and leaves the VPC"
            )
        } else {
            format!(
                "cluster {name} has endpointPrivateAccess=false and endpointPublicAccess=false: \
                 the API endpoint is reachable from nowhere"
            )
        };
        RuleResult::fail(m, Cluster, name, msg)
    };
    vec![r
        .with("endpoint_private_access", ep.private_access.to_string())
        .with("endpoint_public_access", ep.public_access.to_string())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::{self, baseline, endpoint_mut};
    use crate::rules::Status;

    #[test]
    fn verdicts() {
        // (private, public, expected)
        let cases = [
            (false, true, Status::Fail),
            (false, false, Status::Fail),
            (true, true, Status::Pass),
            (true, false, Status::Pass),
        ];
        for (private, public, want) in cases {
            let mut s = baseline();
            endpoint_mut(&mut s).private_access = private;
            endpoint_mut(&mut s).public_access = public;
            let r = evaluate(&s, &Settings::default());
            assert_eq!(r.len(), 1);
            assert_eq!(
                r[0].status, want,
                "private={private} public={public}: {}",
                r[0].message
            );
            assert_eq!(r[0].resource_type, Cluster);
            assert_eq!(r[0].resource_id, "prod");
        }
    }

    #[test]
    fn failure_names_the_cluster_and_value() {
        let mut s = baseline();
        endpoint_mut(&mut s).private_access = false;
        let r = &evaluate(&s, &Settings::default())[0];
        assert!(
            r.message.contains("prod") && r.message.contains("endpointPrivateAccess=false"),
            "{}",
            r.message
        );
        assert_eq!(r.evidence["endpoint_private_access"], "false");
    }

    #[test]
    fn unreadable_endpoint_is_unknown() {
        let mut s = baseline();
        s.cluster.endpoint = testkit::denied();
        let r = evaluate(&s, &Settings::default());
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].status, Status::Unknown);
        assert!(
            r[0].message.contains("AccessDeniedException"),
            "{}",
            r[0].message
        );
    }
}
