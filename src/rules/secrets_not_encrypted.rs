use super::{FixText, ResourceType::Cluster, Rule, RuleMeta, RuleResult, Severity};
use crate::model::ClusterSnapshot;
use crate::settings::Settings;

pub const RULE: Rule = Rule {
    meta: RuleMeta {
        id: "secrets-not-encrypted",
        reads: &[],
        severity: Severity::Medium,
        title: "Kubernetes Secrets are not envelope-encrypted with a KMS key",
        description: "The cluster has no `encryptionConfig` for the `secrets` resource: Secrets in etcd are \
            protected only by EKS's own encryption, with no customer KMS key whose policy, rotation and \
            CloudTrail record you control.",
        resolution: "Associate a symmetric KMS key (aws eks associate-encryption-config --cluster-name <cluster> \
            --encryption-config '[{\"resources\":[\"secrets\"],\"provider\":{\"keyArn\":\"<key-arn>\"}}]'). \
            This cannot be undone, the key must stay enabled for the cluster's life, and the caller also \
            needs kms:DescribeKey and kms:CreateGrant on the key. Afterwards re-write existing Secrets \
            (kubectl get secrets -A -o json | kubectl replace -f -) so they are encrypted too.",
        references: &[
            "https://docs.aws.amazon.com/eks/latest/userguide/envelope-encryption.html",
            "CIS EKS 5.3.1",
            "Security Hub EKS.3",
        ],
        remediable: true,
        fix_permission: Some("eks:AssociateEncryptionConfig"),
        fix: Some(FixText {
            changes: "`AssociateEncryptionConfig` of `secrets` with the key in `EKS_WARDEN_SECRETS_KMS_KEY_ARN` (irreversible).",
            never: "Act without a configured key, or pick or create a key.",
        }),
    },
    check: evaluate,
};

fn evaluate(s: &ClusterSnapshot, _cfg: &Settings) -> Vec<RuleResult> {
    let m = &RULE.meta;
    let name = &s.cluster.name;
    let configs = match s.cluster.encryption.as_ref() {
        Ok(c) => c,
        Err(why) => {
            return vec![RuleResult::unknown(
                m,
                Cluster,
                name,
                "the encryption configuration",
                why,
            )]
        }
    };
    let secrets = configs
        .iter()
        .find(|c| c.resources.iter().any(|r| r == "secrets"));
    vec![match secrets {
        Some(c) => {
            let key = c.key_arn.as_deref().unwrap_or("(key not returned)");
            RuleResult::pass(
                m,
                Cluster,
                name,
                format!("Secrets of cluster {name} are envelope-encrypted with KMS key {key}"),
            )
            .with("key_arn", key)
        }
        None => RuleResult::fail(
            m,
            Cluster,
            name,
            format!("cluster {name} has no KMS envelope encryption for Secrets"),
        ),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EncryptionConfig, Fact};
    use crate::rules::testkit::{self, baseline};
    use crate::rules::Status;

    fn config(resources: &[&str]) -> EncryptionConfig {
        EncryptionConfig {
            resources: resources.iter().map(|r| r.to_string()).collect(),
            key_arn: Some("arn:aws:kms:eu-west-1:111122223333:key/k".into()),
        }
    }

    #[test]
    fn verdicts() {
        let cases = [
            (Fact::Known(vec![config(&["secrets"])]), Status::Pass),
            (Fact::Known(vec![]), Status::Fail),
            (Fact::Known(vec![config(&[])]), Status::Fail),
            (testkit::denied(), Status::Unknown),
        ];
        for (enc, want) in cases {
            let mut s = baseline();
            s.cluster.encryption = enc.clone();
            let r = evaluate(&s, &Settings::default());
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].status, want, "{enc:?}: {}", r[0].message);
        }
    }

    #[test]
    fn pass_names_the_key() {
        let r = evaluate(&baseline(), &Settings::default()).remove(0);
        assert_eq!(
            r.evidence["key_arn"],
            "arn:aws:kms:eu-west-1:111122223333:key/k"
        );
    }
}
