use super::{
    FixText,
    ResourceType::{Cluster, Instance, Nodegroup},
    Rule, RuleMeta, RuleResult, Severity,
};
use crate::model::Part;
use crate::model::{ClusterSnapshot, MetadataOptions};
use crate::settings::Settings;

pub const RULE: Rule = Rule {
    meta: RuleMeta {
        id: "nodes-imdsv1",
        reads: &[Part::Nodegroups, Part::LaunchTemplates, Part::Instances],
        severity: Severity::High,
        title: "Nodes allow IMDSv1 or let pods reach the instance metadata service",
        description: "A node instance, or the launch-template version a managed nodegroup uses, does not \
            require IMDSv2 session tokens (`HttpTokens` optional, or unset in the template) or allows a \
            response hop limit above 1. IMDSv1 answers any SSRF-style GET; a hop limit of 2 or more lets \
            every pod fetch the node role's credentials. An instance or template with the metadata endpoint \
            disabled passes.",
        resolution: "Create a launch template version with MetadataOptions HttpTokens=required and \
            HttpPutResponseHopLimit=1 and roll the nodegroup to it (aws eks update-nodegroup-version \
            --launch-template name=<lt>,version=<n>); for running instances, aws ec2 \
            modify-instance-metadata-options --instance-id <id> --http-tokens required \
            --http-put-response-hop-limit 1. Pods that need AWS credentials should use EKS Pod Identity or \
            IRSA instead of the node role.",
        references: &[
            "https://docs.aws.amazon.com/eks/latest/best-practices/identity-and-access-management.html",
            "https://docs.aws.amazon.com/eks/latest/userguide/launch-templates.html",
            "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-options.html",
            "Security Hub EC2.8",
            "Security Hub EC2.170",
        ],
        remediable: true,
        fix_permission: Some("ec2:ModifyInstanceMetadataOptions"),
        fix: Some(FixText {
            changes: "`ModifyInstanceMetadataOptions` `HttpTokens=required`, hop limit 1, on each node instance the finding lists, within the write limit.",
            never: "Change launch templates or nodegroups (a person rolls a template version with the same options, or new nodes come back on IMDSv1); stop or replace instances.",
        }),
    },
    check: evaluate,
};

/// What is wrong with these options; empty when they keep IMDS to IMDSv2 on the node itself.
fn problems(o: &MetadataOptions) -> Vec<String> {
    if o.endpoint_disabled() {
        return vec![];
    }
    let mut out = Vec::new();
    if !o.tokens_required() {
        out.push(match &o.http_tokens {
            Some(t) => format!("allows IMDSv1 (HttpTokens={t})"),
            None => "does not require IMDSv2 (HttpTokens unset)".to_string(),
        });
    }
    if let Some(h) = o.http_put_response_hop_limit.filter(|h| *h > 1) {
        out.push(format!(
            "hop limit {h} lets pods reach the metadata service"
        ));
    }
    out
}

fn with_options(r: RuleResult, o: &MetadataOptions) -> RuleResult {
    let mut r = r;
    if let Some(t) = &o.http_tokens {
        r = r.with("http_tokens", t.clone());
    }
    if let Some(h) = o.http_put_response_hop_limit {
        r = r.with("hop_limit", h.to_string());
    }
    if let Some(e) = &o.http_endpoint {
        r = r.with("http_endpoint", e.clone());
    }
    r
}

fn evaluate(s: &ClusterSnapshot, _cfg: &Settings) -> Vec<RuleResult> {
    let m = &RULE.meta;
    let name = &s.cluster.name;
    let mut out = Vec::new();
    match s.nodegroups.as_ref() {
        Err(why) => out.push(RuleResult::unknown(
            m,
            Cluster,
            name,
            "managed nodegroups",
            why,
        )),
        Ok(ngs) => {
            for ng in ngs {
                let Some(lt) = &ng.launch_template else {
                    continue;
                };
                let what = format!("the launch template version nodegroup {} uses", ng.name);
                let v = match lt.in_use.as_ref() {
                    Ok(v) => v,
                    Err(why) => {
                        out.push(RuleResult::unknown(m, Nodegroup, &ng.name, &what, why));
                        continue;
                    }
                };
                let label = format!(
                    "launch template {} version {}",
                    v.template_id, v.version_number
                );
                let r = match &v.metadata_options {
                    None => RuleResult::fail(
                        m,
                        Nodegroup,
                        &ng.name,
                        format!(
                            "nodegroup {}: {label} sets no metadata options, so IMDSv2 is not required",
                            ng.name
                        ),
                    ),
                    Some(o) => {
                        let p = problems(o);
                        let r = if p.is_empty() {
                            RuleResult::pass(
                                m,
                                Nodegroup,
                                &ng.name,
                                format!("nodegroup {}: {label} requires IMDSv2 with hop limit 1", ng.name),
                            )
                        } else {
                            RuleResult::fail(
                                m,
                                Nodegroup,
                                &ng.name,
                                format!("nodegroup {}: {label} {}", ng.name, p.join(" and ")),
                            )
                        };
                        with_options(r, o)
                    }
                };
                out.push(
                    r.with("launch_template", v.template_id.clone())
                        .with("launch_template_version", v.version_number.to_string()),
                );
            }
        }
    }
    match s.instances.as_ref() {
        Err(why) => out.push(RuleResult::unknown(m, Cluster, name, "node instances", why)),
        Ok(instances) => {
            let mut bad = 0;
            let mut failing = Vec::new();
            for i in instances {
                let o = match i.metadata_options.as_ref() {
                    Ok(o) => o,
                    Err(why) => {
                        bad += 1;
                        out.push(RuleResult::unknown(
                            m,
                            Instance,
                            &i.id,
                            &format!("the metadata options of {}", i.id),
                            why,
                        ));
                        continue;
                    }
                };
                let p = problems(o);
                if !p.is_empty() {
                    bad += 1;
                    failing.push((i, p));
                }
            }
            out.extend(
                super::by_node_group(failing)
                    .into_iter()
                    .map(|((rt, id), members)| judge_group(rt, &id, &members)),
            );
            if bad == 0 {
                out.push(RuleResult::pass(
                    m,
                    Cluster,
                    name,
                    format!(
                        "all {} node instance(s) of cluster {name} require IMDSv2 with hop limit 1 (or have \
                         the metadata endpoint off)",
                        instances.len()
                    ),
                ));
            }
        }
    }
    out
}

/// One result for the failing instances of one nodegroup (or subnet), with the instances as evidence.
fn judge_group(
    rt: super::ResourceType,
    id: &str,
    members: &[(&crate::model::Instance, Vec<String>)],
) -> RuleResult {
    let ids: Vec<&str> = members.iter().map(|(i, _)| i.id.as_str()).collect();
    let details: Vec<String> = members
        .iter()
        .take(3)
        .map(|(i, p)| format!("{} {}", i.id, p.join(" and ")))
        .collect();
    super::instance_group_fail(
        &RULE.meta,
        (rt, id),
        &ids,
        &details,
        "instance(s) allow IMDSv1 or let pods reach the metadata service",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Fact, LaunchTemplateRef, LaunchTemplateVersion};
    use crate::rules::testkit::{self, baseline, instances_mut, nodegroups_mut};
    use crate::rules::{ResourceType, Status};

    type Row = (ResourceType, String, Status);
    type Mutate = fn(&mut ClusterSnapshot);
    const I: &str = "i-0000000000000000a";

    fn opts(tokens: Option<&str>, hop: Option<i32>) -> MetadataOptions {
        MetadataOptions {
            http_tokens: tokens.map(str::to_string),
            http_put_response_hop_limit: hop,
            http_endpoint: Some("enabled".into()),
        }
    }

    fn template(s: &mut ClusterSnapshot, metadata: Option<MetadataOptions>) {
        nodegroups_mut(s)[0].launch_template = Some(LaunchTemplateRef {
            id: Some("lt-0123456789abcdef0".into()),
            name: None,
            version: Some("$Latest".into()),
            in_use: Fact::Known(LaunchTemplateVersion {
                template_id: "lt-0123456789abcdef0".into(),
                template_name: Some("nodes".into()),
                version_number: 4,
                metadata_options: metadata,
            }),
        });
    }

    fn verdicts(s: &ClusterSnapshot) -> Vec<Row> {
        evaluate(s, &Settings::default())
            .into_iter()
            .map(|r| (r.resource_type, r.resource_id, r.status))
            .collect()
    }

    fn row(rt: ResourceType, id: &str, st: Status) -> Row {
        (rt, id.to_string(), st)
    }

    #[test]
    fn table() {
        use ResourceType::{Cluster as C, Instance as In, Nodegroup as N};
        use Status::*;
        let cases: &[(&str, Mutate, Vec<Row>)] = &[
            ("baseline", |_| {}, vec![row(C, "prod", Pass)]),
            (
                "instance allows IMDSv1",
                |s| {
                    instances_mut(s)[0].metadata_options =
                        Fact::Known(opts(Some("optional"), Some(1)))
                },
                vec![row(N, "general", Fail)],
            ),
            (
                "instance hop limit 2",
                |s| {
                    instances_mut(s)[0].metadata_options =
                        Fact::Known(opts(Some("required"), Some(2)))
                },
                vec![row(N, "general", Fail)],
            ),
            (
                "instance endpoint off",
                |s| {
                    instances_mut(s)[0].metadata_options = Fact::Known(MetadataOptions {
                        http_endpoint: Some("disabled".into()),
                        ..opts(Some("optional"), Some(3))
                    })
                },
                vec![row(C, "prod", Pass)],
            ),
            (
                "instance options unreadable",
                |s| instances_mut(s)[0].metadata_options = testkit::denied(),
                vec![row(In, I, Unknown)],
            ),
            (
                "instances unreadable",
                |s| s.instances = testkit::denied(),
                vec![row(C, "prod", Unknown)],
            ),
            (
                "template requires v2, hop 1",
                |s| template(s, Some(opts(Some("required"), Some(1)))),
                vec![row(N, "general", Pass), row(C, "prod", Pass)],
            ),
            (
                "template optional",
                |s| template(s, Some(opts(Some("optional"), None))),
                vec![row(N, "general", Fail), row(C, "prod", Pass)],
            ),
            (
                "template hop limit 2",
                |s| template(s, Some(opts(Some("required"), Some(2)))),
                vec![row(N, "general", Fail), row(C, "prod", Pass)],
            ),
            (
                "template without metadata options",
                |s| template(s, None),
                vec![row(N, "general", Fail), row(C, "prod", Pass)],
            ),
            (
                "template required, hop unset",
                |s| template(s, Some(opts(Some("required"), None))),
                vec![row(N, "general", Pass), row(C, "prod", Pass)],
            ),
            (
                "template version unreadable",
                |s| {
                    template(s, None);
                    if let Some(lt) = nodegroups_mut(s)[0].launch_template.as_mut() {
                        lt.in_use = testkit::denied();
                    }
                },
                vec![row(N, "general", Unknown), row(C, "prod", Pass)],
            ),
            (
                "nodegroups unreadable",
                |s| s.nodegroups = testkit::denied(),
                vec![row(C, "prod", Unknown), row(C, "prod", Pass)],
            ),
        ];
        for (what, mutate, want) in cases {
            let mut s = baseline();
            mutate(&mut s);
            assert_eq!(&verdicts(&s), want, "{what}");
        }
    }

    #[test]
    fn failures_say_what_is_wrong() {
        let mut s = baseline();
        instances_mut(&mut s)[0].metadata_options = Fact::Known(opts(Some("optional"), Some(2)));
        template(&mut s, None);
        let r = evaluate(&s, &Settings::default());
        assert!(
            r[0].message.contains("lt-0123456789abcdef0 version 4")
                && r[0].message.contains("not required"),
            "{}",
            r[0].message
        );
        assert_eq!(r[0].evidence["launch_template_version"], "4");
        assert!(
            r[1].message.contains("HttpTokens=optional") && r[1].message.contains("hop limit 2"),
            "{}",
            r[1].message
        );
        assert_eq!(r[1].evidence["instances"], I);
        assert_eq!(r[1].evidence["nodegroup"], "general");
        assert_eq!(r[1].discriminator.as_deref(), Some("instances"));
    }

    /// Scaling a nodegroup out or in changes the evidence of its one result, never the set of results.
    #[test]
    fn instances_aggregate_per_nodegroup_and_subnet() {
        let mut s = baseline();
        let mut node = instances_mut(&mut s)[0].clone();
        node.metadata_options = Fact::Known(opts(Some("optional"), Some(1)));
        let mut nodes = vec![];
        for n in 0..3 {
            nodes.push(crate::model::Instance {
                id: format!("i-{n}"),
                ..node.clone()
            });
        }
        nodes.push(crate::model::Instance {
            id: "i-self".into(),
            nodegroup: None,
            subnet_id: Some(testkit::SUBNET_B.into()),
            ..node.clone()
        });
        *instances_mut(&mut s) = nodes;
        let r: Vec<RuleResult> = evaluate(&s, &Settings::default())
            .into_iter()
            .filter(|r| r.status == Status::Fail)
            .collect();
        assert_eq!(r.len(), 2, "{r:#?}");
        let ng = r
            .iter()
            .find(|x| x.resource_type == ResourceType::Nodegroup)
            .unwrap();
        assert_eq!(ng.resource_id, "general");
        assert_eq!(ng.evidence["instances"], "i-0,i-1,i-2");
        assert!(ng
            .message
            .starts_with("nodegroup general: 3 instance(s) allow IMDSv1"));
        let sn = r.iter().find(|x| x.resource_id != "general").unwrap();
        assert_eq!(
            (sn.resource_type, sn.resource_id.as_str()),
            (ResourceType::Subnet, testkit::SUBNET_B)
        );
    }
}
