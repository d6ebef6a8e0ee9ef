use super::{FixText, ResourceType::Cluster, Rule, RuleMeta, RuleResult, Severity};
use crate::model::ClusterSnapshot;
use crate::settings::{parse_cidr, Settings};

pub const RULE: Rule = Rule {
    meta: RuleMeta {
        id: "endpoint-public-unrestricted",
        reads: &[],
        severity: Severity::High,
        title: "Public API endpoint is open beyond the allowed CIDRs",
        description: "The cluster's Kubernetes API endpoint is reachable from the internet and `publicAccessCidrs` \
            holds a CIDR outside the configured allow-list; with no allow-list, a CIDR of the whole internet \
            (0.0.0.0/0, ::/0) or any prefix shorter than /8.",
        resolution: "Restrict `publicAccessCidrs` to the networks operators use (aws eks update-cluster-config \
            --resources-vpc-config publicAccessCidrs=...), or turn public access off and private access on.",
        references: &[
            "https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html",
            "https://docs.aws.amazon.com/eks/latest/userguide/infrastructure-security.html",
            "CIS EKS 5.4.1",
            "Security Hub EKS.1",
        ],
        remediable: true,
        fix_permission: Some("eks:UpdateClusterConfig"),
        fix: Some(FixText {
            changes: "One `UpdateClusterConfig`: `publicAccessCidrs` set to the allow-list (`EKS_WARDEN_ALLOWED_PUBLIC_CIDRS`), with private access turned on in the same update when it is off and `endpoint-private-disabled` is opted in too; with no allow-list and `EKS_WARDEN_ALLOW_PUBLIC_ENDPOINT_OFF=true`, public access off with private access on in the same update.",
            never: "Narrow or turn off public access while private access stays off (nodes and operators outside the list would lose the API); turn public access off without that explicit permission; act while the cluster is not ACTIVE or another cluster update is pending.",
        }),
    },
    check: evaluate,
};

fn evaluate(s: &ClusterSnapshot, cfg: &Settings) -> Vec<RuleResult> {
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
    if !ep.public_access {
        return vec![RuleResult::pass(
            m,
            Cluster,
            name,
            "public endpoint access is off",
        )];
    }
    let mut offending = Vec::new();
    for raw in &ep.public_access_cidrs {
        let net = match parse_cidr(raw) {
            Ok(net) => net,
            Err(e) => {
                return vec![RuleResult::unknown(
                    m,
                    Cluster,
                    name,
                    "public access CIDRs",
                    &crate::model::Unreadable::new("InvalidCidr", format!("{raw:?}: {e}")),
                )]
            }
        };
        let allowed = if cfg.allowed_public_cidrs.is_empty() {
            net.prefix_len() >= 8
        } else {
            cfg.allowed_public_cidrs.iter().any(|a| a.contains(&net))
        };
        if !allowed {
            offending.push(raw.clone());
        }
    }
    if ep.public_access_cidrs.is_empty() {
        // EKS answers ["0.0.0.0/0"] when no list was set; an empty list is not a restriction.
        offending.push("(none: open to all)".into());
    }
    if offending.is_empty() {
        return vec![RuleResult::pass(
            m,
            Cluster,
            name,
            format!(
                "public endpoint restricted to {}",
                ep.public_access_cidrs.join(", ")
            ),
        )];
    }
    let against = if cfg.allowed_public_cidrs.is_empty() {
        "no allow-list is set and these cover the internet or a /0-/7 block".to_string()
    } else {
        let list: Vec<String> = cfg
            .allowed_public_cidrs
            .iter()
            .map(|n| n.to_string())
            .collect();
        format!("outside the allow-list {}", list.join(", "))
    };
    vec![RuleResult::fail(
        m,
        Cluster,
        name,
        format!(
            "public API endpoint open to {} ({against})",
            offending.join(", ")
        ),
    )
    .with("public_access_cidrs", offending.join(","))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::{self, baseline, endpoint_mut};
    use crate::rules::Status;

    fn run(cidrs: &[&str], allow: &[&str]) -> RuleResult {
        let mut s = baseline();
        endpoint_mut(&mut s).public_access_cidrs = cidrs.iter().map(|c| c.to_string()).collect();
        let cfg = Settings {
            allowed_public_cidrs: allow.iter().map(|a| a.parse().unwrap()).collect(),
            ..Settings::default()
        };
        let mut r = evaluate(&s, &cfg);
        assert_eq!(r.len(), 1);
        r.remove(0)
    }

    #[test]
    fn verdicts() {
        let cases: &[(&[&str], &[&str], Status)] = &[
            (&["0.0.0.0/0"], &[], Status::Fail),
            (&["::/0"], &[], Status::Fail),
            (&["0.0.0.0/1", "128.0.0.0/1"], &[], Status::Fail),
            (&["10.0.0.0/7"], &[], Status::Fail),
            (&[], &[], Status::Fail),
            (&["203.0.113.0/24"], &[], Status::Pass),
            (&["10.0.0.0/8"], &[], Status::Pass),
            (&["203.0.113.8/29"], &["203.0.113.0/24"], Status::Pass),
            (
                &["203.0.113.0/24"],
                &["203.0.113.0/24", "198.51.100.0/24"],
                Status::Pass,
            ),
            (&["203.0.113.0/23"], &["203.0.113.0/24"], Status::Fail),
            (&["198.51.100.7/32"], &["203.0.113.0/24"], Status::Fail),
            (&["0.0.0.0/0"], &["0.0.0.0/0"], Status::Pass),
            (&["not-a-cidr"], &[], Status::Unknown),
        ];
        for (cidrs, allow, want) in cases {
            let r = run(cidrs, allow);
            assert_eq!(
                r.status, *want,
                "{cidrs:?} against {allow:?}: {}",
                r.message
            );
        }
    }

    #[test]
    fn failure_names_only_the_offending_cidr() {
        let r = run(&["203.0.113.8/29", "0.0.0.0/0"], &["203.0.113.0/24"]);
        assert_eq!(r.evidence["public_access_cidrs"], "0.0.0.0/0");
        assert!(
            r.message.contains("outside the allow-list 203.0.113.0/24"),
            "{}",
            r.message
        );
    }

    #[test]
    fn public_access_off_passes_whatever_the_cidrs() {
        let mut s = baseline();
        endpoint_mut(&mut s).public_access = false;
        endpoint_mut(&mut s).public_access_cidrs = vec!["0.0.0.0/0".into()];
        assert_eq!(evaluate(&s, &Settings::default())[0].status, Status::Pass);
    }

    #[test]
    fn unreadable_endpoint_is_unknown() {
        let mut s = baseline();
        s.cluster.endpoint = testkit::denied();
        let r = &evaluate(&s, &Settings::default())[0];
        assert_eq!(r.status, Status::Unknown);
        assert!(r.message.contains("AccessDeniedException"), "{}", r.message);
    }
}
