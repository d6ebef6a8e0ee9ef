//! Every rule against emulated AWS: the real SDK clients over HTTP to moto.
//!
//! moto has no EKS add-ons, access entries or cluster versions (it answers a 404 page) and its
//! DescribeCluster omits `accessConfig` and `deletionProtection`: the rules that need those are UNKNOWN
//! here and are proven with aws-smithy-mocks in `catalog_mocked.rs`.

use crate::common;

use common::seeded::Seeded;

use common::context::{allowing_public, disabling};
use common::report::{fails, statuses};
use common::seed::{self, ClusterSpec, Ingress, Ssh};
use eks_warden::rules::{ResourceType, Severity, Status};
use eks_warden::scan::evaluate_cluster;
use eks_warden::settings::Settings;

/// The collector's call budget for a cluster with `nodegroups` managed nodegroups and `admins` principals
/// holding AmazonEKSClusterAdminPolicy (README, "How it reads a cluster"): 10 + N + T + A, plus at most
/// one DescribeAddon, one DescribeSecurityGroupRules and a second DescribeRouteTables, where T ≤ N is the
/// number of distinct launch templates.
fn budget(nodegroups: u32, admins: u32) -> u32 {
    13 + 2 * nodegroups + admins
}

#[tokio::test]
async fn each_rule_fires_exactly_where_seeded() {
    let region = "eu-west-2";
    let (clients, counter, demo) = common::seeded::demo(region).await;
    let settings = Settings::default();

    let before = counter.get();
    let insecure = evaluate_cluster(&clients, "insecure", &settings)
        .await
        .unwrap();
    let insecure_calls = counter.get() - before;
    assert_eq!(insecure.account, "123456789012");
    assert_eq!(insecure.region, region);
    assert_eq!(
        insecure.aws_calls, insecure_calls,
        "the collector's own count matches the wire"
    );
    // One nodegroup, no launch template, no add-on, CONFIG_MAP (no access entries to list).
    assert!(
        insecure_calls <= budget(1, 0),
        "{insecure_calls} calls for one nodegroup"
    );

    let on_cluster = |rule: &str| {
        let f = fails(&insecure, rule);
        assert_eq!(f.len(), 1, "{rule}: {:#?}", insecure.results);
        assert_eq!(f[0].resource_type, ResourceType::Cluster, "{rule}");
    };
    on_cluster("endpoint-public-unrestricted");
    on_cluster("endpoint-private-disabled");
    on_cluster("subnets-single-az");
    on_cluster("vpc-no-private-subnet");

    let public_subnet = &demo.network.public[0];
    let f = fails(&insecure, "nodes-in-public-subnet");
    assert_eq!(f.len(), 1);
    assert_eq!(&f[0].resource_id, public_subnet);

    // The node's public address is reported per nodegroup, the node named in the evidence.
    let ip = fails(&insecure, "nodes-public-ip");
    let mut found: Vec<(ResourceType, String)> = ip
        .iter()
        .map(|r| (r.resource_type, r.resource_id.clone()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            (ResourceType::Subnet, public_subnet.clone()),
            (ResourceType::Nodegroup, "workers".to_string()),
        ]
    );
    let workers = ip.iter().find(|r| r.resource_id == "workers").unwrap();
    assert_eq!(workers.evidence["instances"], demo.insecure_node);

    // The two seeded groups, and the group EKS made for the nodegroup's SSH from anywhere.
    let sg = fails(&insecure, "sg-open-ingress");
    assert_eq!(sg.len(), 3, "{sg:#?}");
    let remote_sg = clients
        .eks
        .describe_nodegroup()
        .cluster_name("insecure")
        .nodegroup_name("workers")
        .send()
        .await
        .unwrap()
        .nodegroup()
        .and_then(|n| n.resources())
        .and_then(|r| r.remote_access_security_group())
        .unwrap()
        .to_string();
    let remote = sg.iter().find(|r| r.resource_id == remote_sg).unwrap();
    assert_eq!(remote.evidence["ports"], "tcp/22", "{remote:?}");
    let ssh = sg
        .iter()
        .find(|r| r.resource_id == demo.open_ssh_sg)
        .expect("ssh rule flagged");
    assert_eq!(ssh.severity, Severity::High);
    assert!(
        ssh.evidence
            .get("rule_id")
            .is_some_and(|id| id.starts_with("sgr-")),
        "{ssh:?}"
    );
    let all = sg
        .iter()
        .find(|r| r.resource_id == demo.open_all_sg)
        .expect("all-traffic rule flagged");
    assert_eq!(all.severity, Severity::Critical);

    let ng = fails(&insecure, "nodegroup-ssh-open");
    assert_eq!(ng.len(), 1);
    assert_eq!(ng[0].resource_id, "workers");

    // The catalog's rules that moto can serve: logging off, no Secrets encryption, a node on IMDSv1.
    on_cluster("control-plane-logging-incomplete");
    let logs = fails(&insecure, "control-plane-logging-incomplete");
    assert_eq!(logs[0].evidence["missing"], "api,audit,authenticator");
    on_cluster("secrets-not-encrypted");
    let imds = fails(&insecure, "nodes-imdsv1");
    assert_eq!(imds.len(), 1, "{imds:#?}");
    assert_eq!(
        (imds[0].resource_type, imds[0].resource_id.as_str()),
        (ResourceType::Nodegroup, "workers")
    );
    assert_eq!(imds[0].evidence["instances"], demo.insecure_node);
    assert!(
        imds[0].message.contains("HttpTokens=optional"),
        "{}",
        imds[0].message
    );
    // The control-plane settings the emulator's EKS extension serves: no network policy engine, the
    // aws-auth ConfigMap only, Kubernetes 1.30 past standard support, no deletion protection.
    on_cluster("network-policy-not-enforced");
    on_cluster("auth-configmap-only");
    on_cluster("version-unsupported");
    on_cluster("deletion-protection-off");
    assert_eq!(
        statuses(&insecure, "access-entry-broad-admin"),
        vec![("insecure".to_string(), Status::Pass)],
        "CONFIG_MAP: no access entries at all"
    );

    // The compliant cluster: every rule of the catalog passes.
    let compliant = evaluate_cluster(&clients, "compliant", &settings)
        .await
        .unwrap();
    let not_pass: Vec<_> = compliant
        .results
        .iter()
        .filter(|r| r.status != Status::Pass)
        .collect();
    assert!(not_pass.is_empty(), "{not_pass:#?}");
    for rule in eks_warden::rules::ALL {
        assert!(
            compliant.results.iter().any(|r| r.rule_id == rule.meta.id),
            "{} gave no verdict",
            rule.meta.id
        );
    }
    // No nodegroups, two instances, the vpc-cni add-on described, access entries listed.
    assert!(
        compliant.aws_calls <= budget(0, 0),
        "{} calls",
        compliant.aws_calls
    );
}

#[tokio::test]
async fn main_route_table_decides_for_unassociated_subnets() {
    let region = "us-west-2";
    let s = Seeded::new(region).await;
    let (clients, net) = (s.clients.clone(), s.net.clone());
    let ec2 = &clients.ec2;
    // The main table routes to the internet; a subnet with no explicit association inherits it.
    ec2.create_route()
        .route_table_id(&net.main_table)
        .destination_cidr_block("0.0.0.0/0")
        .gateway_id(&net.igw)
        .send()
        .await
        .unwrap();
    let inherits = seed::subnet(ec2, &net.vpc, "10.0.9.0/24", "us-west-2c")
        .await
        .unwrap();
    let bastion = s.group("bastion", &[]).await;
    s.private_cluster("main-table", &[]).await;
    s.nodegroup(
        "main-table",
        "ng",
        &[&inherits, &net.private[0]],
        Ssh::From(&[&bastion]),
    )
    .await;

    let r = evaluate_cluster(&clients, "main-table", &Settings::default())
        .await
        .unwrap();
    let f = fails(&r, "nodes-in-public-subnet");
    assert_eq!(f.len(), 1, "{:#?}", r.results);
    assert_eq!(f[0].resource_id, inherits);
    assert!(
        f[0].evidence.values().any(|v| v == &net.main_table),
        "{:?}",
        f[0].evidence
    );
    let mut st = statuses(&r, "nodes-in-public-subnet");
    st.sort();
    assert!(st.contains(&(net.private[0].clone(), Status::Pass)));
    // The cluster's own subnets are private: these pass.
    assert_eq!(statuses(&r, "vpc-no-private-subnet")[0].1, Status::Pass);
    assert_eq!(
        statuses(&r, "endpoint-public-unrestricted")[0].1,
        Status::Pass
    );
    // moto invents a remote-access group id that does not exist in EC2: it is unknown, not a failure,
    // and does not stop the other groups from being judged.
    assert!(fails(&r, "sg-open-ingress").is_empty());
    assert!(fails(&r, "nodegroup-ssh-open").is_empty());
}

#[tokio::test]
async fn ipv6_world_rule_and_call_budget_with_three_nodegroups() {
    let region = "ap-east-2";
    let s = Seeded::new(region).await;
    let (clients, net, counter) = (s.clients.clone(), s.net.clone(), s.counter.clone());
    let v6 = s
        .group("v6-open", &[Ingress::Cidr("tcp", 443, 443, "::/0")])
        .await;
    let bastion = s.group("bastion", &[]).await;
    s.cluster(ClusterSpec::public_restricted("three", &net, &["198.51.100.0/24"]).groups([&v6]))
        .await;
    for ng in ["a", "b", "c"] {
        s.nodegroup(
            "three",
            ng,
            &[&net.private[0], &net.private[1]],
            Ssh::From(&[&bastion]),
        )
        .await;
    }
    let before = counter.get();
    let r = evaluate_cluster(&clients, "three", &Settings::default())
        .await
        .unwrap();
    let calls = counter.get() - before;
    // Measured 13: the 11 of one nodegroup plus two more DescribeNodegroup.
    assert!(calls <= budget(3, 0), "{calls} calls for 3 nodegroups");
    let f = fails(&r, "sg-open-ingress");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].resource_id, v6);
    assert_eq!(f[0].severity, Severity::High);
    assert_eq!(f[0].evidence.get("cidr").map(String::as_str), Some("::/0"));
}

#[tokio::test]
async fn exemption_tags_and_allow_list_in_the_emulator() {
    let region = "eu-central-1";
    let s = Seeded::new(region).await;
    let (clients, net) = (s.clients.clone(), s.net.clone());
    let ec2 = &clients.ec2;
    let open = s
        .group("open", &[Ingress::Cidr("tcp", 80, 80, "0.0.0.0/0")])
        .await;
    seed::tag(ec2, &open, "eks-warden:exempt", "sg-open-ingress")
        .await
        .unwrap();
    s.cluster(
        ClusterSpec::public_only("exempt", &net, &["203.0.113.8/29"])
            .groups([&open])
            .tagged(&[("eks-warden:exempt", "endpoint-private-disabled")]),
    )
    .await;
    let r = evaluate_cluster(&clients, "exempt", &Settings::default())
        .await
        .unwrap();
    assert_eq!(
        statuses(&r, "endpoint-private-disabled")[0].1,
        Status::Exempt
    );
    // The exempt group, and the cluster security group EKS created (ingress only from itself).
    let cluster_sg = clients
        .eks
        .describe_cluster()
        .name("exempt")
        .send()
        .await
        .unwrap()
        .cluster()
        .and_then(|c| c.resources_vpc_config())
        .and_then(|v| v.cluster_security_group_id())
        .unwrap()
        .to_string();
    let mut sg = statuses(&r, "sg-open-ingress");
    sg.sort();
    let mut want = vec![(open.clone(), Status::Exempt), (cluster_sg, Status::Pass)];
    want.sort();
    assert_eq!(sg, want);

    // /29 is a narrow range: it passes without an allow-list, and inside 203.0.113.0/24, but not against another list.
    let inside = allowing_public(&["203.0.113.0/24"]);
    let outside = allowing_public(&["198.51.100.0/24"]);
    for (settings, want) in [
        (Settings::default(), Status::Pass),
        (inside, Status::Pass),
        (outside, Status::Fail),
    ] {
        let r = evaluate_cluster(&clients, "exempt", &settings)
            .await
            .unwrap();
        assert_eq!(statuses(&r, "endpoint-public-unrestricted")[0].1, want);
    }
}

#[tokio::test]
async fn launch_template_version_in_use_decides_imds() {
    let region = "us-east-1";
    let (clients, counter) = common::clients(region).await;
    let (eks, ec2) = (&clients.eks, &clients.ec2);
    let net = seed::network(ec2, region).await.unwrap();
    seed::cluster(eks, ClusterSpec::private("templated", &net))
        .await
        .unwrap();
    // Version 1 (the default) requires IMDSv2 with hop limit 1; version 2 (the latest) allows IMDSv1 and
    // two hops; another template sets no metadata options at all.
    let lt = seed::launch_template(ec2, "nodes", Some(("required", 1)))
        .await
        .unwrap();
    let v2 = seed::launch_template_version(ec2, &lt, ("optional", 2))
        .await
        .unwrap();
    assert_eq!(v2, 2);
    let bare = seed::launch_template(ec2, "bare", None).await.unwrap();
    let subnets = [net.private[0].as_str()];
    for (ng, template, version) in [
        ("pinned", &lt, Some("1")),
        ("default", &lt, None),
        ("latest", &lt, Some("$Latest")),
        ("bare", &bare, None),
    ] {
        seed::nodegroup_from_template(eks, "templated", ng, &subnets, template, version)
            .await
            .unwrap();
    }
    // moto does not copy a template's metadata options to instances: nodes are judged on their own.
    seed::node_with(
        ec2,
        "templated",
        Some("pinned"),
        &net.private[0],
        &[],
        Some(("required", 1)),
    )
    .await
    .unwrap();

    let before = counter.get();
    let r = evaluate_cluster(&clients, "templated", &Settings::default())
        .await
        .unwrap();
    let calls = counter.get() - before;
    // 4 nodegroups over 2 templates: one DescribeLaunchTemplateVersions per template. Measured 15.
    assert!(calls <= budget(4, 0), "{calls} calls for 4 nodegroups");
    let mut st = statuses(&r, "nodes-imdsv1");
    st.sort();
    assert_eq!(
        st,
        vec![
            ("bare".to_string(), Status::Fail),
            ("default".to_string(), Status::Pass),
            ("latest".to_string(), Status::Fail),
            ("pinned".to_string(), Status::Pass),
            ("templated".to_string(), Status::Pass),
        ]
    );
    let latest = r
        .results
        .iter()
        .find(|x| x.rule_id == "nodes-imdsv1" && x.resource_id == "latest")
        .unwrap();
    assert_eq!(latest.evidence["launch_template"], lt);
    assert_eq!(latest.evidence["launch_template_version"], "2");
    assert!(
        latest.message.contains("HttpTokens=optional") && latest.message.contains("hop limit 2"),
        "{}",
        latest.message
    );
    let default = r
        .results
        .iter()
        .find(|x| x.rule_id == "nodes-imdsv1" && x.resource_id == "default")
        .unwrap();
    assert_eq!(default.evidence["launch_template_version"], "1");

    // With the rule disabled the templates are not read at all.
    let before = counter.get();
    let without = disabling(&["nodes-imdsv1"]);
    let r = evaluate_cluster(&clients, "templated", &without)
        .await
        .unwrap();
    assert_eq!(counter.get() - before, calls - 2);
    assert!(r.results.iter().all(|x| x.rule_id != "nodes-imdsv1"));
}

/// The seed document's eight rules alone keep the core budget of 6 + 2N calls: the catalog's other
/// reads (add-ons, access entries, versions, launch templates) are made only for the rules that need them.
#[tokio::test]
async fn seed_rules_alone_stay_within_six_plus_two_n() {
    let region = "af-south-1";
    let (clients, counter, demo) = common::seeded::demo(region).await;
    let bastion = demo.bastion_sg.clone();
    for ng in ["b", "c"] {
        seed::nodegroup(
            &clients.eks,
            "insecure",
            ng,
            &[&demo.network.private[0]],
            Ssh::From(&[&bastion]),
        )
        .await
        .unwrap();
    }
    let seed_rules = [
        "endpoint-public-unrestricted",
        "endpoint-private-disabled",
        "subnets-single-az",
        "vpc-no-private-subnet",
        "nodes-in-public-subnet",
        "nodes-public-ip",
        "sg-open-ingress",
        "nodegroup-ssh-open",
    ];
    let settings = Settings {
        disabled_rules: eks_warden::rules::ALL
            .iter()
            .map(|r| r.meta.id.to_string())
            .filter(|id| !seed_rules.contains(&id.as_str()))
            .collect(),
        ..Settings::default()
    };
    for (cluster, nodegroups) in [("insecure", 3), ("compliant", 0)] {
        let before = counter.get();
        evaluate_cluster(&clients, cluster, &settings)
            .await
            .unwrap();
        let calls = counter.get() - before;
        eprintln!("{cluster}: {calls} AWS calls with {nodegroups} nodegroups, seed rules only");
        assert!(
            calls <= 6 + 2 * nodegroups,
            "{cluster}: {calls} calls for {nodegroups} nodegroups"
        );
    }
}
