use super::{ResourceType::Cluster, Rule, RuleMeta, RuleResult, Severity};
use crate::model::ClusterSnapshot;
use crate::model::Part;
use crate::settings::Settings;

pub const RULE: Rule = Rule {
    meta: RuleMeta {
        id: "version-unsupported",
        reads: &[Part::VersionSupport],
        severity: Severity::High,
        title: "Kubernetes version is out of standard support",
        description: "EKS (DescribeClusterVersions) reports the cluster's Kubernetes version in extended support \
            (no longer in standard support: fewer fixes, an extra hourly charge, a fixed end date) or \
            unsupported (past extended support: EKS upgrades it on its own schedule), or does not list it at all.",
        resolution: "Upgrade the control plane one minor version at a time (aws eks update-cluster-version \
            --name <cluster> --kubernetes-version <next>), after checking EKS upgrade insights and add-on \
            compatibility, then the nodegroups and add-ons, until the version is in standard support.",
        references: &[
            "https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html",
            "https://docs.aws.amazon.com/eks/latest/userguide/update-cluster.html",
            "Security Hub EKS.2",
        ],
        remediable: false,
        fix_permission: None,
        fix: None,
    },
    check: evaluate,
};

fn evaluate(s: &ClusterSnapshot, _cfg: &Settings) -> Vec<RuleResult> {
    let m = &RULE.meta;
    let name = &s.cluster.name;
    let version = s.cluster.version.as_deref().unwrap_or("(unknown)");
    let support = match s.version_support.as_ref() {
        Ok(v) => v,
        Err(why) => {
            return vec![RuleResult::unknown(
                m,
                Cluster,
                name,
                &format!("the support status of Kubernetes {version}"),
                why,
            )]
        }
    };
    let Some(v) = support else {
        return vec![RuleResult::fail(
            m,
            Cluster,
            name,
            format!(
                "cluster {name} runs Kubernetes {version}, which EKS no longer lists among its versions: \
                 long past the end of support"
            ),
        )
        .with("version", version)];
    };
    let ends = |d: &Option<String>| d.clone().unwrap_or_else(|| "an unannounced date".into());
    let r = match v.status.as_str() {
        "STANDARD_SUPPORT" => RuleResult::pass(
            m,
            Cluster,
            name,
            format!(
                "Kubernetes {} is in standard support until {}",
                v.version,
                ends(&v.end_of_standard_support)
            ),
        ),
        "EXTENDED_SUPPORT" => RuleResult::fail(
            m,
            Cluster,
            name,
            format!(
                "Kubernetes {} is out of standard support (ended {}) and in extended support (extra cost) \
                 until {}",
                v.version,
                ends(&v.end_of_standard_support),
                ends(&v.end_of_extended_support)
            ),
        ),
        "UNSUPPORTED" => RuleResult::fail(
            m,
            Cluster,
            name,
            format!(
                "Kubernetes {} is unsupported: extended support ended {}; EKS will upgrade the cluster \
                 automatically",
                v.version,
                ends(&v.end_of_extended_support)
            ),
        ),
        other => RuleResult::unknown(
            m,
            Cluster,
            name,
            &format!("the support status of Kubernetes {}", v.version),
            &crate::model::Unreadable::new(
                "UnrecognisedStatus",
                format!("EKS answered status {other:?}"),
            ),
        ),
    };
    let mut r = r
        .with("version", v.version.clone())
        .with("support", v.status.clone());
    if let Some(d) = &v.end_of_standard_support {
        r = r.with("end_of_standard_support", d.clone());
    }
    if let Some(d) = &v.end_of_extended_support {
        r = r.with("end_of_extended_support", d.clone());
    }
    vec![r]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Fact, VersionSupport};
    use crate::rules::testkit::{self, baseline};
    use crate::rules::Status;

    fn support(status: &str) -> Fact<Option<VersionSupport>> {
        Fact::Known(Some(VersionSupport {
            version: "1.31".into(),
            status: status.into(),
            end_of_standard_support: Some("2025-11-26".into()),
            end_of_extended_support: Some("2026-11-26".into()),
        }))
    }

    #[test]
    fn verdicts() {
        let cases = [
            (
                support("STANDARD_SUPPORT"),
                Status::Pass,
                "standard support until 2025-11-26",
            ),
            (
                support("EXTENDED_SUPPORT"),
                Status::Fail,
                "extended support (extra cost) until 2026-11-26",
            ),
            (
                support("UNSUPPORTED"),
                Status::Fail,
                "extended support ended 2026-11-26",
            ),
            (Fact::Known(None), Status::Fail, "no longer lists"),
            (support("SOMETHING_NEW"), Status::Unknown, "SOMETHING_NEW"),
            (testkit::denied(), Status::Unknown, "AccessDeniedException"),
        ];
        for (v, want, says) in cases {
            let mut s = baseline();
            s.version_support = v.clone();
            let r = evaluate(&s, &Settings::default());
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].status, want, "{v:?}: {}", r[0].message);
            assert!(r[0].message.contains(says), "{}", r[0].message);
        }
    }

    #[test]
    fn failure_carries_the_dates() {
        let mut s = baseline();
        s.version_support = support("EXTENDED_SUPPORT");
        let r = evaluate(&s, &Settings::default()).remove(0);
        assert_eq!(r.evidence["support"], "EXTENDED_SUPPORT");
        assert_eq!(r.evidence["end_of_extended_support"], "2026-11-26");
        assert_eq!(r.evidence["version"], "1.31");
    }
}
