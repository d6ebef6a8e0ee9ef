use super::{FixText, ResourceType::Cluster, Rule, RuleMeta, RuleResult, Severity};
use crate::model::ClusterSnapshot;
use crate::settings::Settings;

pub const RULE: Rule = Rule {
    meta: RuleMeta {
        id: "auth-configmap-only",
        reads: &[],
        severity: Severity::Medium,
        title: "Cluster access is governed only by the aws-auth ConfigMap",
        description: "`accessConfig.authenticationMode` is `CONFIG_MAP`: who may reach the Kubernetes API is \
            decided by the `aws-auth` ConfigMap inside the cluster, which IAM cannot audit or restrict, a \
            malformed edit can lock every operator out, and anyone who can edit it can grant themselves \
            system:masters. Access entries (modes `API_AND_CONFIG_MAP` or `API`) put access under the EKS \
            API, CloudTrail and IAM policy.",
        resolution: "Switch to access entries: aws eks update-cluster-config --name <cluster> --access-config \
            authenticationMode=API_AND_CONFIG_MAP (one-way: a cluster cannot go back to CONFIG_MAP), migrate \
            the aws-auth mappings to access entries (aws eks create-access-entry ...), then move to API.",
        references: &[
            "https://docs.aws.amazon.com/eks/latest/userguide/grant-k8s-access.html",
            "https://docs.aws.amazon.com/eks/latest/userguide/setting-up-access-entries.html",
            "https://docs.aws.amazon.com/eks/latest/best-practices/identity-and-access-management.html",
        ],
        remediable: true,
        fix_permission: Some("eks:UpdateClusterConfig"),
        fix: Some(FixText {
            changes: "`UpdateClusterConfig` `authenticationMode=API_AND_CONFIG_MAP` (one-way in EKS).",
            never: "Move to API-only, touch the aws-auth ConfigMap, or create access entries.",
        }),
    },
    check: evaluate,
};

fn evaluate(s: &ClusterSnapshot, _cfg: &Settings) -> Vec<RuleResult> {
    let m = &RULE.meta;
    let name = &s.cluster.name;
    let r = match s.cluster.authentication_mode.as_ref() {
        Err(why) => RuleResult::unknown(m, Cluster, name, "the authentication mode", why),
        Ok(mode) if mode == "CONFIG_MAP" => RuleResult::fail(
            m,
            Cluster,
            name,
            format!(
                "cluster {name} authenticates only through the aws-auth ConfigMap (authenticationMode \
                 CONFIG_MAP): access is not governed by IAM access entries"
            ),
        ),
        Ok(mode) => RuleResult::pass(
            m,
            Cluster,
            name,
            format!("cluster {name} uses access entries (authenticationMode {mode})"),
        ),
    };
    let mode = s.cluster.authentication_mode.known().cloned();
    match mode {
        Some(mode) => vec![r.with("authentication_mode", mode)],
        None => vec![r],
    }
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
            (Fact::Known("CONFIG_MAP".to_string()), Status::Fail),
            (Fact::Known("API_AND_CONFIG_MAP".to_string()), Status::Pass),
            (Fact::Known("API".to_string()), Status::Pass),
            (testkit::denied(), Status::Unknown),
        ];
        for (mode, want) in cases {
            let mut s = baseline();
            s.cluster.authentication_mode = mode.clone();
            let r = evaluate(&s, &Settings::default());
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].status, want, "{mode:?}: {}", r[0].message);
            assert_eq!(
                (r[0].resource_type, r[0].resource_id.as_str()),
                (Cluster, "prod")
            );
        }
    }

    #[test]
    fn failure_names_the_mode_and_unknown_the_reason() {
        let mut s = baseline();
        s.cluster.authentication_mode = Fact::Known("CONFIG_MAP".into());
        let r = &evaluate(&s, &Settings::default())[0];
        assert_eq!(r.evidence["authentication_mode"], "CONFIG_MAP");
        assert!(r.message.contains("aws-auth"), "{}", r.message);
        s.cluster.authentication_mode =
            Fact::unknown("NotReturned", "the API answered without accessConfig");
        let r = &evaluate(&s, &Settings::default())[0];
        assert!(r.message.contains("NotReturned"), "{}", r.message);
    }
}
