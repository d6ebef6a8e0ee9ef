use super::{
    ResourceType::{Cluster, Nodegroup},
    Rule, RuleMeta, RuleResult, Severity,
};
use crate::model::ClusterSnapshot;
use crate::model::Part;
use crate::settings::Settings;

pub const RULE: Rule = Rule {
    meta: RuleMeta {
        id: "nodegroup-ssh-open",
        reads: &[Part::Nodegroups],
        severity: Severity::High,
        title: "Managed nodegroup allows SSH from anywhere",
        description: "A managed nodegroup has `remoteAccess` with an EC2 SSH key and no \
            `sourceSecurityGroups`: EKS then opens port 22 on its nodes to 0.0.0.0/0 through the \
            remote-access security group it creates.",
        resolution: "Remote access cannot be changed on an existing nodegroup. Create a replacement nodegroup \
            (aws eks create-nodegroup ...) either without --remote-access (use SSM Session Manager instead) \
            or with --remote-access ec2SshKey=<key>,sourceSecurityGroups=<sg>, move the workloads, then \
            delete the old one (aws eks delete-nodegroup --cluster-name <cluster> --nodegroup-name <name>).",
        references: &[
            "https://docs.aws.amazon.com/eks/latest/userguide/create-managed-node-group.html",
            "https://docs.aws.amazon.com/eks/latest/APIReference/API_RemoteAccessConfig.html",
            "https://docs.aws.amazon.com/eks/latest/userguide/infrastructure-security.html",
            "Security Hub EC2.13",
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
    let nodegroups = match s.nodegroups.as_ref() {
        Ok(ngs) => ngs,
        Err(why) => {
            return vec![RuleResult::unknown(
                m,
                Cluster,
                name,
                "managed nodegroups",
                why,
            )]
        }
    };
    if nodegroups.is_empty() {
        return vec![RuleResult::pass(
            m,
            Cluster,
            name,
            format!("cluster {name} has no managed nodegroups"),
        )];
    }
    nodegroups
        .iter()
        .map(|ng| {
            let id = &ng.name;
            let Some(ra) = &ng.remote_access else {
                return RuleResult::pass(m, Nodegroup, id, format!("nodegroup {id} has no SSH remote access"));
            };
            let Some(key) = &ra.ec2_ssh_key else {
                return RuleResult::pass(m, Nodegroup, id, format!("nodegroup {id} has no SSH key for remote access"));
            };
            if !ra.source_security_groups.is_empty() {
                let sgs = ra.source_security_groups.join(",");
                return RuleResult::pass(
                    m,
                    Nodegroup,
                    id,
                    format!("nodegroup {id} allows SSH only from security groups {sgs}"),
                )
                .with("source_security_groups", sgs);
            }
            let mut r = RuleResult::fail(
                m,
                Nodegroup,
                id,
                format!("nodegroup {id} allows SSH (port 22) from 0.0.0.0/0 with key {key}: no sourceSecurityGroups"),
            )
            .with("ec2_ssh_key", key.clone());
            if let Some(sg) = &ng.remote_access_security_group {
                r = r.with("remote_access_security_group", sg.clone());
            }
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RemoteAccess;
    use crate::rules::testkit::{self, baseline, nodegroups_mut};
    use crate::rules::Status;

    fn run(remote_access: Option<RemoteAccess>) -> RuleResult {
        let mut s = baseline();
        nodegroups_mut(&mut s)[0].remote_access = remote_access;
        nodegroups_mut(&mut s)[0].remote_access_security_group = Some("sg-0remote000000004".into());
        let mut r = evaluate(&s, &Settings::default());
        assert_eq!(r.len(), 1);
        r.remove(0)
    }

    fn ra(key: Option<&str>, sgs: &[&str]) -> Option<RemoteAccess> {
        Some(RemoteAccess {
            ec2_ssh_key: key.map(str::to_string),
            source_security_groups: sgs.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn verdicts() {
        let cases = [
            (ra(Some("ops"), &[]), Status::Fail),
            (ra(Some("ops"), &["sg-0bastion00000006"]), Status::Pass),
            (ra(None, &[]), Status::Pass),
            (None, Status::Pass),
        ];
        for (remote_access, want) in cases {
            let r = run(remote_access.clone());
            assert_eq!(r.status, want, "{remote_access:?}: {}", r.message);
            assert_eq!(
                (r.resource_type, r.resource_id.as_str()),
                (Nodegroup, "general")
            );
        }
    }

    #[test]
    fn failure_names_nodegroup_key_and_group() {
        let r = run(ra(Some("ops"), &[]));
        assert!(
            r.message.contains("general") && r.message.contains("0.0.0.0/0"),
            "{}",
            r.message
        );
        assert_eq!(r.evidence["ec2_ssh_key"], "ops");
        assert_eq!(
            r.evidence["remote_access_security_group"],
            "sg-0remote000000004"
        );
    }

    #[test]
    fn one_result_per_nodegroup() {
        let mut s = baseline();
        let mut open = nodegroups_mut(&mut s)[0].clone();
        open.name = "debug".into();
        open.remote_access = ra(Some("ops"), &[]);
        nodegroups_mut(&mut s).push(open);
        let got: Vec<(String, Status)> = evaluate(&s, &Settings::default())
            .into_iter()
            .map(|r| (r.resource_id, r.status))
            .collect();
        assert_eq!(
            got,
            vec![
                ("general".into(), Status::Pass),
                ("debug".into(), Status::Fail)
            ]
        );
    }

    #[test]
    fn unreadable_nodegroups_is_unknown() {
        let mut s = baseline();
        s.nodegroups = testkit::denied();
        let r = evaluate(&s, &Settings::default());
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].resource_type, r[0].status),
            (Cluster, Status::Unknown)
        );
        assert!(
            r[0].message.contains("AccessDeniedException"),
            "{}",
            r[0].message
        );
    }

    #[test]
    fn no_nodegroups_passes() {
        let mut s = baseline();
        nodegroups_mut(&mut s).clear();
        assert_eq!(evaluate(&s, &Settings::default())[0].status, Status::Pass);
    }
}
