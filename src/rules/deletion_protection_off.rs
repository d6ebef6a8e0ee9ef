use super::{FixText, ResourceType::Cluster, Rule, RuleMeta, RuleResult, Severity};
use crate::model::ClusterSnapshot;
use crate::settings::Settings;

pub const RULE: Rule = Rule {
    meta: RuleMeta {
        id: "deletion-protection-off",
        reads: &[],
        severity: Severity::Low,
        title: "Cluster deletion protection is off",
        description: "`deletionProtection` is false: one DeleteCluster call (a mistaken script, a Terraform \
            plan that replaces the cluster) removes the control plane and everything scheduled on it.",
        resolution: "aws eks update-cluster-config --name <cluster> --deletion-protection. Deleting the cluster \
            later takes an explicit --no-deletion-protection first.",
        references: &[
            "https://docs.aws.amazon.com/eks/latest/userguide/deletion-protection.html",
        ],
        remediable: true,
        fix_permission: Some("eks:UpdateClusterConfig"),
        fix: Some(FixText {
            changes: "`UpdateClusterConfig` `deletionProtection=true`.",
            never: "Turn deletion protection off.",
        }),
    },
    check: evaluate,
};

fn evaluate(s: &ClusterSnapshot, _cfg: &Settings) -> Vec<RuleResult> {
    let m = &RULE.meta;
    let name = &s.cluster.name;
    vec![match s.cluster.deletion_protection.as_ref() {
        Err(why) => RuleResult::unknown(m, Cluster, name, "deletion protection", why),
        Ok(true) => RuleResult::pass(
            m,
            Cluster,
            name,
            format!("cluster {name} has deletion protection on"),
        ),
        Ok(false) => RuleResult::fail(
            m,
            Cluster,
            name,
            format!("cluster {name} has deletion protection off: a single DeleteCluster call removes it"),
        ),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Fact;
    use crate::rules::testkit::{self, baseline};
    use crate::rules::Status;

    #[test]
    fn verdicts() {
        let cases = [
            (Fact::Known(true), Status::Pass),
            (Fact::Known(false), Status::Fail),
            (testkit::denied(), Status::Unknown),
        ];
        for (dp, want) in cases {
            let mut s = baseline();
            s.cluster.deletion_protection = dp.clone();
            let r = evaluate(&s, &Settings::default());
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].status, want, "{dp:?}: {}", r[0].message);
            assert_eq!(r[0].resource_type, Cluster);
        }
    }
}
