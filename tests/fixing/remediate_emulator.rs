//! Remediation against the emulator: each fix applied and verified, dry-run proven to write nothing, and
//! each guardrail shown stopping its action.

use crate::common;

use common::seeded::Seeded;

use common::context::{allowing_public, context_over, fix_policy as policy};
use common::seed::{self, ClusterSpec, Ingress, Ssh};
use eks_warden::collect::Clients;
use eks_warden::remediate::{remediate, Action, Budget, Mode, NoHistory, Outcome, Policy, Run};
use eks_warden::scan::evaluate_cluster;
use eks_warden::settings::Settings;

async fn run(
    clients: &Clients,
    cluster: &str,
    settings: &Settings,
    policy: &Policy,
) -> Vec<eks_warden::remediate::Remediation> {
    let report = evaluate_cluster(clients, cluster, settings).await.unwrap();
    let budget = Budget::new(policy.max_fixes);
    let mut history = NoHistory;
    let mut fixes = Run {
        budget: &budget,
        history: &mut history,
    };
    remediate(
        clients,
        cluster,
        &report.results,
        settings,
        policy,
        &mut fixes,
    )
    .await
    .unwrap()
    .remediations
}

#[tokio::test]
async fn revoke_world_open_rule_by_id_and_a_second_run_changes_nothing() {
    let region = "us-west-1";
    let s = Seeded::new(region).await;
    let (clients, counter) = (s.clients.clone(), s.counter.clone());
    let sg = s
        .group(
            "web",
            &[seed::OPEN_SSH, Ingress::Cidr("tcp", 443, 443, "10.0.0.0/8")],
        )
        .await;
    s.private_cluster("web", &[&sg]).await;
    let settings = Settings::default();

    // Dry-run: the exact call, and not one write.
    let before = counter.writes().len();
    let planned = run(
        &clients,
        "web",
        &settings,
        &policy(Mode::DryRun, &["sg-open-ingress"]),
    )
    .await;
    assert_eq!(planned.len(), 1);
    assert_eq!(planned[0].outcome, Outcome::Planned);
    assert_eq!(
        planned[0].permission,
        Some("ec2:RevokeSecurityGroupIngress")
    );
    assert_eq!(
        counter.writes().len(),
        before,
        "dry-run wrote: {:?}",
        counter.writes()
    );

    // Remediate: exactly the offending rule goes, the other stays; the revoked rule is reported whole.
    let done = run(
        &clients,
        "web",
        &settings,
        &policy(Mode::Remediate, &["sg-open-ingress"]),
    )
    .await;
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0].outcome, Outcome::Remediated, "{done:?}");
    let Some(Action::RevokeSecurityGroupIngress {
        rule_ids, revoked, ..
    }) = &done[0].action
    else {
        panic!("{done:?}")
    };
    assert_eq!(revoked[0].cidr_ipv4.as_deref(), Some("0.0.0.0/0"));
    assert_eq!(revoked[0].from_port, Some(22));
    let left = clients
        .ec2
        .describe_security_group_rules()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("group-id")
                .values(&sg)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let ingress: Vec<_> = left
        .security_group_rules()
        .iter()
        .filter(|r| r.is_egress() == Some(false))
        .collect();
    assert_eq!(ingress.len(), 1);
    assert_eq!(ingress[0].cidr_ipv4(), Some("10.0.0.0/8"));
    assert!(!ingress
        .iter()
        .any(|r| rule_ids.contains(&r.security_group_rule_id().unwrap_or_default().to_string())));

    // Idempotent: the second run finds nothing to fix and writes nothing.
    let writes = counter.writes().len();
    let again = run(
        &clients,
        "web",
        &settings,
        &policy(Mode::Remediate, &["sg-open-ingress"]),
    )
    .await;
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(counter.writes().len(), writes);
}

#[tokio::test]
async fn subnet_public_ip_fix_and_instances_left_to_people() {
    let region = "ap-south-1";
    let s = Seeded::new(region).await;
    let (clients, net) = (s.clients.clone(), s.net.clone());
    let bastion = s.group("bastion", &[]).await;
    seed::map_public_ip(&clients.ec2, &net.private[0], true)
        .await
        .unwrap();
    s.private_cluster("ips", &[]).await;
    s.nodegroup("ips", "ng", &[&net.private[0]], Ssh::From(&[&bastion]))
        .await;
    let node = seed::node(
        &clients.ec2,
        "ips",
        Some("ng"),
        &net.private[0],
        &[&bastion],
    )
    .await
    .unwrap();
    let done = run(
        &clients,
        "ips",
        &Settings::default(),
        &policy(Mode::Remediate, &["nodes-public-ip"]),
    )
    .await;
    let subnet = done
        .iter()
        .find(|m| m.resource_id == net.private[0])
        .expect("subnet fix");
    assert_eq!(subnet.outcome, Outcome::Remediated, "{done:?}");
    // The node's address is reported on its nodegroup ("ng"), and replacing nodes is left to people.
    let _ = node;
    let inst = done
        .iter()
        .find(|m| m.resource_id == "ng")
        .expect("nodegroup verdict");
    assert_eq!(inst.outcome, Outcome::Skipped);
    assert!(inst.detail.contains("until replaced"), "{}", inst.detail);
    let s = clients
        .ec2
        .describe_subnets()
        .subnet_ids(&net.private[0])
        .send()
        .await
        .unwrap();
    assert_eq!(s.subnets()[0].map_public_ip_on_launch(), Some(false));
}

#[tokio::test]
async fn endpoint_fixes_one_update_per_pass_and_the_public_guardrails() {
    let region = "eu-west-3";
    let s = Seeded::new(region).await;
    let (clients, net, counter) = (s.clients.clone(), s.net.clone(), s.counter.clone());
    let spec = |name| ClusterSpec::public_open(name, &net);
    s.cluster(spec("both")).await;
    let both = &["endpoint-public-unrestricted", "endpoint-private-disabled"];

    // No allow-list and no permission to turn public off: the public fix is refused, private goes on.
    let done = run(
        &clients,
        "both",
        &Settings::default(),
        &policy(Mode::Remediate, both),
    )
    .await;
    let public = done
        .iter()
        .find(|m| m.rule_id == "endpoint-public-unrestricted")
        .unwrap();
    assert_eq!(public.outcome, Outcome::Skipped);
    assert!(public.detail.contains("no allow-list"), "{}", public.detail);
    let private = done
        .iter()
        .find(|m| m.rule_id == "endpoint-private-disabled")
        .unwrap();
    assert_eq!(private.outcome, Outcome::Remediated, "{done:?}");

    // With an allow-list: two cluster updates wanted, one made, the other deferred to the re-check.
    s.cluster(spec("allow")).await;
    let settings = allowing_public(&["203.0.113.0/24"]);
    let writes = counter.writes().len();
    let report = evaluate_cluster(&clients, "allow", &settings)
        .await
        .unwrap();
    let budget = Budget::new(10);
    let mut history = NoHistory;
    let pass = remediate(
        &clients,
        "allow",
        &report.results,
        &settings,
        &policy(Mode::Remediate, both),
        &mut Run {
            budget: &budget,
            history: &mut history,
        },
    )
    .await
    .unwrap();
    let outcomes: Vec<Outcome> = pass.remediations.iter().map(|m| m.outcome).collect();
    assert_eq!(
        outcomes,
        vec![Outcome::Remediated, Outcome::Skipped],
        "{:?}",
        pass.remediations
    );
    assert!(pass.remediations[1]
        .detail
        .contains("one cluster update at a time"));
    assert!(pass.recheck);
    assert_eq!(
        counter.writes()[writes..],
        ["UpdateClusterConfig".to_string()]
    );
    let d = clients
        .eks
        .describe_cluster()
        .name("allow")
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.cluster()
            .unwrap()
            .resources_vpc_config()
            .unwrap()
            .public_access_cidrs(),
        ["203.0.113.0/24"]
    );

    // Allowed to turn public off: private goes on in the same request, never public off alone.
    s.cluster(spec("off")).await;
    let mut p = policy(Mode::DryRun, &["endpoint-public-unrestricted"]);
    p.allow_public_endpoint_off = true;
    let planned = run(&clients, "off", &Settings::default(), &p).await;
    assert_eq!(
        planned[0].action,
        Some(Action::UpdateClusterConfig {
            cluster: "off".into(),
            endpoint_public_access: Some(false),
            endpoint_private_access: Some(true),
            public_access_cidrs: None
        })
    );
}

#[tokio::test]
async fn exempt_findings_are_never_touched() {
    let region = "eu-south-1";
    let s = Seeded::new(region).await;
    let (clients, net, counter) = (s.clients.clone(), s.net.clone(), s.counter.clone());
    s.cluster(
        ClusterSpec::no_endpoint("legacy", &net)
            .tagged(&[("eks-warden:exempt", "endpoint-private-disabled")]),
    )
    .await;
    let writes = counter.writes().len();
    let done = run(
        &clients,
        "legacy",
        &Settings::default(),
        &policy(Mode::Remediate, &["endpoint-private-disabled"]),
    )
    .await;
    assert!(done.is_empty(), "{done:?}");
    assert_eq!(counter.writes().len(), writes, "{:?}", counter.writes());
}

#[tokio::test]
async fn the_fixs_own_cloudtrail_echo_does_not_start_a_loop() {
    use eks_warden::handler::handle;
    let region = "me-south-1";
    let s = Seeded::new(region).await;
    let (clients, net, counter) = (s.clients.clone(), s.net.clone(), s.counter.clone());
    s.cluster(ClusterSpec::no_endpoint("echo", &net)).await;
    let conf = common::sdk_config(region).await;
    let mut ctx = context_over(&conf, clients.clone());
    ctx.policy = policy(Mode::Remediate, &["endpoint-private-disabled"]);
    let event = serde_json::json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.eks", "region": region,
        "detail": {"eventSource": "eks.amazonaws.com", "eventName": "UpdateClusterConfig",
            "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/eks-warden/fn"},
            "requestParameters": {"name": "echo", "resourcesVpcConfig": {"endpointPrivateAccess": true}}}});
    let first = handle(&ctx, &event).await.unwrap();
    assert_eq!(
        first.clusters[0].remediations[0].outcome,
        Outcome::Remediated,
        "{first:?}"
    );
    let writes = counter.writes().len();
    // The fix's own UpdateClusterConfig comes back through CloudTrail: evaluated, nothing to do.
    for _ in 0..3 {
        let echo = handle(&ctx, &event).await.unwrap();
        assert!(echo.clusters[0].remediations.is_empty(), "{echo:?}");
        assert!(echo.rechecks.is_empty());
    }
    assert_eq!(counter.writes().len(), writes);
}

#[tokio::test]
async fn scan_fix_dry_run_from_the_terminal() {
    let region = "af-south-1";
    let s = Seeded::new(region).await;
    let (clients, net, counter) = (s.clients.clone(), s.net.clone(), s.counter.clone());
    let sg = seed::security_group(
        &clients.ec2,
        &net.vpc,
        "open",
        // The narrower 443 rule keeps a path to the private-only endpoint, so the open rule may go.
        &[
            Ingress::Cidr("-1", -1, -1, "0.0.0.0/0"),
            Ingress::Cidr("tcp", 443, 443, "10.0.0.0/8"),
        ],
    )
    .await
    .unwrap();
    s.private_cluster("cli", &[&sg]).await;
    let o = common::run_cli(
        region,
        &[
            "scan",
            "--fix",
            "--dry-run",
            "--fix-rule",
            "sg-open-ingress",
            "--format",
            "json",
        ],
    );
    common::assert_exit(&o, 1);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = &v["clusters"][0]["remediations"][0];
    assert_eq!(m["outcome"], "planned");
    assert_eq!(m["action"]["call"], "RevokeSecurityGroupIngress");
    assert_eq!(m["action"]["group_id"], sg.as_str());
    assert_eq!(m["permission"], "ec2:RevokeSecurityGroupIngress");
    // Still open: the dry run changed nothing.
    let r = evaluate_cluster(&clients, "cli", &Settings::default())
        .await
        .unwrap();
    assert!(r.failures().any(|f| f.rule_id == "sg-open-ingress"));
    let _ = counter;
    // --fix needs to be told what it may fix.
    let o = common::run_cli(region, &["scan", "--fix"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--fix-rule"));
}

#[tokio::test]
async fn logging_and_node_imds_fixes_are_applied_and_verified() {
    let region = "il-central-1";
    let s = Seeded::new(region).await;
    let (clients, net) = (s.clients.clone(), s.net.clone());
    let sg = s.group("nodes", &[]).await;
    s.private_cluster("logs", &[]).await;
    let node = seed::node(&clients.ec2, "logs", None, &net.private[0], &[&sg])
        .await
        .unwrap();
    clients
        .ec2
        .modify_instance_metadata_options()
        .instance_id(&node)
        .http_tokens(aws_sdk_ec2::types::HttpTokensState::Optional)
        .http_put_response_hop_limit(2)
        .send()
        .await
        .unwrap();
    let settings = Settings::default();
    let rules = ["control-plane-logging-incomplete", "nodes-imdsv1"];
    let done = run(
        &clients,
        "logs",
        &settings,
        &policy(Mode::Remediate, &rules),
    )
    .await;
    let outcome = |rule: &str| {
        done.iter()
            .find(|m| m.rule_id == rule)
            .map(|m| (m.outcome, m.detail.clone()))
    };
    assert_eq!(
        outcome("control-plane-logging-incomplete").map(|o| o.0),
        Some(Outcome::Remediated),
        "{done:?}"
    );
    assert_eq!(
        outcome("nodes-imdsv1").map(|o| o.0),
        Some(Outcome::Remediated),
        "{done:?}"
    );
    let i = clients
        .ec2
        .describe_instances()
        .instance_ids(&node)
        .send()
        .await
        .unwrap();
    let md = i.reservations()[0].instances()[0]
        .metadata_options()
        .unwrap()
        .clone();
    assert_eq!(
        md.http_tokens(),
        Some(&aws_sdk_ec2::types::HttpTokensState::Required)
    );
    assert_eq!(md.http_put_response_hop_limit(), Some(1));
    let after = evaluate_cluster(&clients, "logs", &settings).await.unwrap();
    assert!(
        !after
            .failures()
            .any(|f| rules.contains(&f.rule_id.as_str())),
        "{:?}",
        after.results
    );
}
