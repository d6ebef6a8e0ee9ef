//! Every rule of the seed document against emulated AWS: the real SDK clients over HTTP to moto.

mod common;

use common::seed::{self, ClusterSpec, Ingress, Ssh};
use eks_warden::rules::{ResourceType, RuleResult, Severity, Status};
use eks_warden::scan::{evaluate_cluster, ClusterReport};
use eks_warden::settings::Settings;

fn fails<'a>(r: &'a ClusterReport, rule: &str) -> Vec<&'a RuleResult> {
    r.results
        .iter()
        .filter(|x| x.rule_id == rule && x.status == Status::Fail)
        .collect()
}

fn statuses(r: &ClusterReport, rule: &str) -> Vec<(String, Status)> {
    r.results
        .iter()
        .filter(|x| x.rule_id == rule)
        .map(|x| (x.resource_id.clone(), x.status))
        .collect()
}

#[tokio::test]
async fn each_rule_fires_exactly_where_seeded() {
    let region = "eu-west-1";
    let (clients, counter) = common::clients(region).await;
    let demo = seed::demo_account(&clients.eks, &clients.ec2, region)
        .await
        .unwrap();
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
    // One nodegroup: the budget is 6 + 2N = 8.
    assert!(
        insecure_calls <= 8,
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

    let mut ip: Vec<(ResourceType, String)> = fails(&insecure, "nodes-public-ip")
        .iter()
        .map(|r| (r.resource_type, r.resource_id.clone()))
        .collect();
    ip.sort();
    assert_eq!(
        ip,
        vec![
            (ResourceType::Subnet, public_subnet.clone()),
            (ResourceType::Instance, demo.insecure_node.clone())
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );

    let sg = fails(&insecure, "sg-open-ingress");
    assert_eq!(sg.len(), 2, "{sg:#?}");
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

    // The compliant cluster: every rule passes, nothing unknown.
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
    // No nodegroups, two instances: within 6 + 2N with N = 0.
    assert!(compliant.aws_calls <= 6, "{} calls", compliant.aws_calls);
}

#[tokio::test]
async fn main_route_table_decides_for_unassociated_subnets() {
    let region = "us-west-2";
    let (clients, _) = common::clients(region).await;
    let ec2 = &clients.ec2;
    let net = seed::network(ec2, region).await.unwrap();
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
    let bastion = seed::security_group(ec2, &net.vpc, "bastion", &[])
        .await
        .unwrap();
    seed::cluster(
        &clients.eks,
        ClusterSpec {
            name: "main-table",
            subnets: net.private.to_vec(),
            security_groups: vec![],
            public: false,
            private: true,
            public_cidrs: &[],
            tags: &[],
        },
    )
    .await
    .unwrap();
    seed::nodegroup(
        &clients.eks,
        "main-table",
        "ng",
        &[&inherits, &net.private[0]],
        Ssh::From(&[&bastion]),
    )
    .await
    .unwrap();

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
    let region = "ap-southeast-2";
    let (clients, counter) = common::clients(region).await;
    let ec2 = &clients.ec2;
    let net = seed::network(ec2, region).await.unwrap();
    let v6 = seed::security_group(
        ec2,
        &net.vpc,
        "v6-open",
        &[Ingress::Cidr("tcp", 443, 443, "::/0")],
    )
    .await
    .unwrap();
    let bastion = seed::security_group(ec2, &net.vpc, "bastion", &[])
        .await
        .unwrap();
    seed::cluster(
        &clients.eks,
        ClusterSpec {
            name: "three",
            subnets: net.private.to_vec(),
            security_groups: vec![v6.clone()],
            public: true,
            private: true,
            public_cidrs: &["198.51.100.0/24"],
            tags: &[],
        },
    )
    .await
    .unwrap();
    for ng in ["a", "b", "c"] {
        seed::nodegroup(
            &clients.eks,
            "three",
            ng,
            &[&net.private[0], &net.private[1]],
            Ssh::From(&[&bastion]),
        )
        .await
        .unwrap();
    }
    let before = counter.get();
    let r = evaluate_cluster(&clients, "three", &Settings::default())
        .await
        .unwrap();
    let calls = counter.get() - before;
    assert!(calls <= 6 + 2 * 3, "{calls} calls for 3 nodegroups");
    let f = fails(&r, "sg-open-ingress");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].resource_id, v6);
    assert_eq!(f[0].severity, Severity::High);
    assert_eq!(f[0].evidence.get("cidr").map(String::as_str), Some("::/0"));
}

#[tokio::test]
async fn exemption_tags_and_allow_list_in_the_emulator() {
    let region = "eu-central-1";
    let (clients, _) = common::clients(region).await;
    let ec2 = &clients.ec2;
    let net = seed::network(ec2, region).await.unwrap();
    let open = seed::security_group(
        ec2,
        &net.vpc,
        "open",
        &[Ingress::Cidr("tcp", 80, 80, "0.0.0.0/0")],
    )
    .await
    .unwrap();
    seed::tag(ec2, &open, "eks-warden:exempt", "sg-open-ingress")
        .await
        .unwrap();
    seed::cluster(
        &clients.eks,
        ClusterSpec {
            name: "exempt",
            subnets: net.private.to_vec(),
            security_groups: vec![open.clone()],
            public: true,
            private: false,
            public_cidrs: &["203.0.113.8/29"],
            tags: &[("eks-warden:exempt", "endpoint-private-disabled")],
        },
    )
    .await
    .unwrap();
    let r = evaluate_cluster(&clients, "exempt", &Settings::default())
        .await
        .unwrap();
    assert_eq!(
        statuses(&r, "endpoint-private-disabled")[0].1,
        Status::Exempt
    );
    assert_eq!(
        statuses(&r, "sg-open-ingress"),
        vec![(open.clone(), Status::Exempt)]
    );

    // /29 is a narrow range: it passes without an allow-list, and inside 203.0.113.0/24, but not against another list.
    let inside = Settings {
        allowed_public_cidrs: vec!["203.0.113.0/24".parse().unwrap()],
        ..Settings::default()
    };
    let outside = Settings {
        allowed_public_cidrs: vec!["198.51.100.0/24".parse().unwrap()],
        ..Settings::default()
    };
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
