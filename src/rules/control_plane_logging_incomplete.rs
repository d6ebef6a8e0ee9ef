use super::{FixText, ResourceType::Cluster, Rule, RuleMeta, RuleResult, Severity};
use crate::model::ClusterSnapshot;
use crate::settings::Settings;
use std::collections::BTreeSet;

pub const RULE: Rule = Rule {
    meta: RuleMeta {
        id: "control-plane-logging-incomplete",
        reads: &[],
        severity: Severity::Medium,
        title: "Required control-plane log types are not all sent to CloudWatch",
        description: "Not every log type in EKS_WARDEN_REQUIRED_LOG_TYPES (default api, audit, authenticator) \
            is enabled in the cluster's `logging.clusterLogging`; every entry of that list is read, not only \
            the first. Without the audit and authenticator logs there is no record of who did what through the \
            Kubernetes API.",
        resolution: "aws eks update-cluster-config --name <cluster> --logging \
            '{\"clusterLogging\":[{\"types\":[\"api\",\"audit\",\"authenticator\"],\"enabled\":true}]}' \
            (list the missing types; the log group /aws/eks/<cluster>/cluster is created for you; set its \
            retention).",
        references: &[
            "https://docs.aws.amazon.com/eks/latest/userguide/control-plane-logs.html",
            "CIS EKS 2.1.1",
            "Security Hub EKS.8",
        ],
        remediable: true,
        fix_permission: Some("eks:UpdateClusterConfig"),
        fix: Some(FixText {
            changes: "One `UpdateClusterConfig` turning on the missing required log types.",
            never: "Turn any log type off.",
        }),
    },
    check: evaluate,
};

fn evaluate(s: &ClusterSnapshot, cfg: &Settings) -> Vec<RuleResult> {
    let m = &RULE.meta;
    let name = &s.cluster.name;
    let setups = match s.cluster.logging.as_ref() {
        Ok(l) => l,
        Err(why) => {
            return vec![RuleResult::unknown(
                m,
                Cluster,
                name,
                "the logging configuration",
                why,
            )]
        }
    };
    let enabled: BTreeSet<&str> = setups
        .iter()
        .filter(|l| l.enabled)
        .flat_map(|l| l.types.iter().map(String::as_str))
        .collect();
    let missing: Vec<&str> = cfg
        .required_log_types
        .iter()
        .map(String::as_str)
        .filter(|t| !enabled.contains(t))
        .collect();
    let enabled_list = enabled.iter().copied().collect::<Vec<_>>().join(",");
    let r = if missing.is_empty() {
        RuleResult::pass(
            m,
            Cluster,
            name,
            format!(
                "cluster {name} sends the required control-plane logs ({})",
                cfg.required_log_types
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    } else {
        RuleResult::fail(
            m,
            Cluster,
            name,
            format!(
                "cluster {name} does not send control-plane log type(s) {} (enabled: {})",
                missing.join(", "),
                if enabled.is_empty() {
                    "none"
                } else {
                    &enabled_list
                }
            ),
        )
        .with("missing", missing.join(","))
    };
    vec![r.with("enabled", enabled_list)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Fact, LogSetup};
    use crate::rules::testkit::{self, baseline};
    use crate::rules::Status;

    fn setup(types: &[&str], enabled: bool) -> LogSetup {
        LogSetup {
            types: types.iter().map(|t| t.to_string()).collect(),
            enabled,
        }
    }

    fn run(logging: Fact<Vec<LogSetup>>, required: &[&str]) -> RuleResult {
        let mut s = baseline();
        s.cluster.logging = logging;
        let mut cfg = Settings::default();
        if !required.is_empty() {
            cfg.required_log_types = required.iter().map(|t| t.to_string()).collect();
        }
        let mut r = evaluate(&s, &cfg);
        assert_eq!(r.len(), 1);
        r.remove(0)
    }

    type Case = (
        &'static str,
        Fact<Vec<LogSetup>>,
        &'static [&'static str],
        Status,
    );

    #[test]
    fn verdicts() {
        use Status::*;
        let all = [
            "api",
            "audit",
            "authenticator",
            "controllerManager",
            "scheduler",
        ];
        let cases: Vec<Case> = vec![
            ("all on", Fact::Known(vec![setup(&all, true)]), &[], Pass),
            ("all off", Fact::Known(vec![setup(&all, false)]), &[], Fail),
            (
                // EKS answers one disabled and one enabled entry; the enabled one is second here.
                "enabled entry second",
                Fact::Known(vec![
                    setup(&["controllerManager", "scheduler"], false),
                    setup(&["api", "audit", "authenticator"], true),
                ]),
                &[],
                Pass,
            ),
            (
                "split over two enabled entries",
                Fact::Known(vec![
                    setup(&["api"], true),
                    setup(&["audit", "authenticator"], true),
                ]),
                &[],
                Pass,
            ),
            (
                "authenticator off",
                Fact::Known(vec![
                    setup(&["api", "audit"], true),
                    setup(&["authenticator"], false),
                ]),
                &[],
                Fail,
            ),
            ("no entries", Fact::Known(vec![]), &[], Fail),
            (
                "audit only required",
                Fact::Known(vec![setup(&["audit"], true)]),
                &["audit"],
                Pass,
            ),
            (
                "scheduler required",
                Fact::Known(vec![setup(&["api", "audit", "authenticator"], true)]),
                &["scheduler"],
                Fail,
            ),
            ("unreadable", testkit::denied(), &[], Unknown),
        ];
        for (what, logging, required, want) in cases {
            let r = run(logging, required);
            assert_eq!(r.status, want, "{what}: {}", r.message);
        }
    }

    #[test]
    fn failure_names_exactly_the_missing_types() {
        let r = run(
            Fact::Known(vec![
                setup(&["api"], true),
                setup(&["audit", "authenticator", "scheduler"], false),
            ]),
            &[],
        );
        assert_eq!(r.evidence["missing"], "audit,authenticator");
        assert_eq!(r.evidence["enabled"], "api");
        assert!(r.message.contains("audit, authenticator"), "{}", r.message);
    }
}
