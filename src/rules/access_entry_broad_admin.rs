use super::{
    ResourceType::{AccessEntry, Cluster},
    Rule, RuleMeta, RuleResult, Severity,
};
use crate::model::ClusterSnapshot;
use crate::model::Part;
use crate::settings::{principal_matches, Settings};

/// The access policy that maps to Kubernetes `cluster-admin`.
pub use crate::model::CLUSTER_ADMIN_POLICY;

pub const RULE: Rule = Rule {
    meta: RuleMeta {
        id: "access-entry-broad-admin",
        reads: &[Part::AccessEntries],
        severity: Severity::Medium,
        title: "An access entry grants cluster-admin to a principal outside the allow-list",
        description: "An IAM principal's access entry has `AmazonEKSClusterAdminPolicy` associated with \
            cluster scope, which is Kubernetes `cluster-admin` on every namespace, and the principal is not in \
            EKS_WARDEN_ALLOWED_ADMIN_PRINCIPALS (ARNs, `*` wildcards). With no allow-list every such \
            principal fails, including the cluster creator's bootstrap entry.",
        resolution: "Disassociate the policy (aws eks disassociate-access-policy --cluster-name <cluster> \
            --principal-arn <arn> --policy-arn arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy) \
            and grant a narrower one (AmazonEKSAdminPolicy, AmazonEKSEditPolicy, or namespace scope); or add \
            the principal to the allow-list if it is a break-glass administrator.",
        references: &[
            "https://docs.aws.amazon.com/eks/latest/userguide/access-policies.html",
            "https://docs.aws.amazon.com/eks/latest/userguide/access-policy-permissions.html",
            "https://docs.aws.amazon.com/eks/latest/best-practices/identity-and-access-management.html",
            "CIS EKS 4.1.1",
        ],
        remediable: false,
        fix_permission: None,
        fix: None,
    },
    check: evaluate,
};

fn evaluate(s: &ClusterSnapshot, cfg: &Settings) -> Vec<RuleResult> {
    let m = &RULE.meta;
    let name = &s.cluster.name;
    let entries = match s.cluster_admin_entries.as_ref() {
        Ok(e) => e,
        Err(why) => {
            return vec![RuleResult::unknown(
                m,
                Cluster,
                name,
                "access entries holding AmazonEKSClusterAdminPolicy",
                why,
            )]
        }
    };
    let mut out = Vec::new();
    for e in entries {
        let arn = &e.principal_arn;
        let policies = match e.policies.as_ref() {
            Ok(p) => p,
            Err(why) => {
                out.push(RuleResult::unknown(
                    m,
                    AccessEntry,
                    arn,
                    &format!("the access policies of {arn}"),
                    why,
                ));
                continue;
            }
        };
        let cluster_wide = policies
            .iter()
            .any(|p| p.policy_arn == CLUSTER_ADMIN_POLICY && p.scope == "cluster");
        if !cluster_wide {
            let namespaces: Vec<&str> = policies
                .iter()
                .filter(|p| p.policy_arn == CLUSTER_ADMIN_POLICY)
                .flat_map(|p| p.namespaces.iter().map(String::as_str))
                .collect();
            out.push(
                RuleResult::pass(
                    m,
                    AccessEntry,
                    arn,
                    format!(
                        "{arn} holds AmazonEKSClusterAdminPolicy only in namespaces {}",
                        namespaces.join(", ")
                    ),
                )
                .with("namespaces", namespaces.join(",")),
            );
            continue;
        }
        match cfg
            .allowed_admin_principals
            .iter()
            .find(|p| principal_matches(p, arn))
        {
            Some(pattern) => out.push(
                RuleResult::pass(
                    m,
                    AccessEntry,
                    arn,
                    format!("{arn} is cluster-admin and allowed by {pattern}"),
                )
                .with("allowed_by", pattern.clone()),
            ),
            None => out.push(
                RuleResult::fail(
                    m,
                    AccessEntry,
                    arn,
                    format!(
                        "{arn} is cluster-admin (AmazonEKSClusterAdminPolicy, cluster scope) and is not in \
                         the allowed admin principals{}",
                        if cfg.allowed_admin_principals.is_empty() {
                            " (none are configured)"
                        } else {
                            ""
                        }
                    ),
                )
                .with("principal_arn", arn.clone())
                .with("policy_arn", CLUSTER_ADMIN_POLICY),
            ),
        }
    }
    if out.is_empty() {
        out.push(RuleResult::pass(
            m,
            Cluster,
            name,
            format!("no access entry of cluster {name} holds AmazonEKSClusterAdminPolicy"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AccessEntry as Entry, AccessPolicyAssociation, Fact};
    use crate::rules::testkit::{self, baseline};
    use crate::rules::{ResourceType, Status};

    const ADMIN: &str = "arn:aws:iam::111122223333:role/platform-admin";
    const CI: &str = "arn:aws:iam::111122223333:role/ci-deployer";

    fn policy(arn: &str, scope: &str) -> AccessPolicyAssociation {
        AccessPolicyAssociation {
            policy_arn: arn.into(),
            scope: scope.into(),
            namespaces: if scope == "namespace" {
                vec!["apps".into()]
            } else {
                vec![]
            },
        }
    }

    fn entry(arn: &str, policies: Fact<Vec<AccessPolicyAssociation>>) -> Entry {
        Entry {
            principal_arn: arn.into(),
            policies,
        }
    }

    fn verdicts(entries: Fact<Vec<Entry>>, allow: &[&str]) -> Vec<(ResourceType, String, Status)> {
        let mut s = baseline();
        s.cluster_admin_entries = entries;
        let cfg = Settings {
            allowed_admin_principals: allow.iter().map(|a| a.to_string()).collect(),
            ..Settings::default()
        };
        evaluate(&s, &cfg)
            .into_iter()
            .map(|r| (r.resource_type, r.resource_id, r.status))
            .collect()
    }

    type Case = (
        &'static str,
        Fact<Vec<Entry>>,
        &'static [&'static str],
        Vec<(ResourceType, String, Status)>,
    );

    #[test]
    fn table() {
        use ResourceType::{AccessEntry as E, Cluster as C};
        use Status::*;
        let admin = || Fact::Known(vec![policy(CLUSTER_ADMIN_POLICY, "cluster")]);
        let cases: Vec<Case> = vec![
            (
                "no admin entries",
                Fact::Known(vec![]),
                &[],
                vec![(C, "prod".into(), Pass)],
            ),
            (
                "admin, no allow-list",
                Fact::Known(vec![entry(CI, admin())]),
                &[],
                vec![(E, CI.into(), Fail)],
            ),
            (
                "admin, allowed",
                Fact::Known(vec![entry(ADMIN, admin())]),
                &[ADMIN],
                vec![(E, ADMIN.into(), Pass)],
            ),
            (
                "allowed by wildcard, other fails",
                Fact::Known(vec![entry(ADMIN, admin()), entry(CI, admin())]),
                &["arn:aws:iam::111122223333:role/platform-*"],
                vec![(E, ADMIN.into(), Pass), (E, CI.into(), Fail)],
            ),
            (
                "namespace scope only",
                Fact::Known(vec![entry(
                    CI,
                    Fact::Known(vec![policy(CLUSTER_ADMIN_POLICY, "namespace")]),
                )]),
                &[],
                vec![(E, CI.into(), Pass)],
            ),
            (
                "entries denied",
                testkit::denied(),
                &[],
                vec![(C, "prod".into(), Unknown)],
            ),
            (
                "policies of one entry denied",
                Fact::Known(vec![entry(CI, testkit::denied()), entry(ADMIN, admin())]),
                &[ADMIN],
                vec![(E, CI.into(), Unknown), (E, ADMIN.into(), Pass)],
            ),
        ];
        for (what, entries, allow, want) in cases {
            assert_eq!(verdicts(entries, allow), want, "{what}");
        }
    }

    #[test]
    fn failure_names_principal_and_policy() {
        let mut s = baseline();
        s.cluster_admin_entries = Fact::Known(vec![entry(
            CI,
            Fact::Known(vec![
                policy(
                    "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy",
                    "cluster",
                ),
                policy(CLUSTER_ADMIN_POLICY, "cluster"),
            ]),
        )]);
        let r = evaluate(&s, &Settings::default()).remove(0);
        assert_eq!(r.status, Status::Fail);
        assert_eq!(r.evidence["principal_arn"], CI);
        assert_eq!(r.evidence["policy_arn"], CLUSTER_ADMIN_POLICY);
        assert!(r.message.contains("none are configured"), "{}", r.message);
    }
}
