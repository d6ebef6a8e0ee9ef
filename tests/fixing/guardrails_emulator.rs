//! Fix guardrails against the emulator, through `eks-warden scan --fix --format json`: each guardrail beside
//! a positive control in which the same fix still acts where it is safe, each asserting the `skipped`
//! remediation and the reason it gives.

use crate::common;

use common::seeded::Seeded;

use common::context::fix_policy;
use common::seed::{self, ClusterSpec, Ingress, Ssh};
use eks_warden::collect::Clients;
use serde_json::Value;

/// `scan --fix` of `clusters` with `rules`, in JSON, with extra settings in the environment.
fn scan_fix(region: &str, clusters: &[&str], rules: &[&str], env: &[(&str, &str)]) -> Value {
    let mut args = vec!["scan"];
    for c in clusters {
        args.extend(["--cluster", c]);
    }
    args.extend(["--fix", "--format", "json"]);
    for r in rules {
        args.extend(["--fix-rule", r]);
    }
    let o = common::run_cli_env(region, &args, env);
    assert!(
        matches!(o.status.code(), Some(0) | Some(1)),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("a JSON report")
}

/// The remediation of `resource` in cluster `cluster` of a scan report.
fn remediation<'a>(report: &'a Value, cluster: &str, resource: &str) -> &'a Value {
    report["clusters"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["cluster"] == cluster))
        .and_then(|c| c["remediations"].as_array())
        .and_then(|ms| ms.iter().find(|m| m["resource_id"] == resource))
        .unwrap_or_else(|| panic!("no remediation of {resource} in {cluster}: {report:#}"))
}

fn skipped_because<'a>(m: &'a Value, words: &[&str]) -> &'a str {
    assert_eq!(m["outcome"], "skipped", "{m:#}");
    let detail = m["detail"].as_str().unwrap_or_default();
    for w in words {
        assert!(detail.contains(w), "{w:?} not in {detail:?}");
    }
    detail
}

async fn still_open(clients: &Clients, group: &str) -> bool {
    let g = clients
        .ec2
        .describe_security_groups()
        .group_ids(group)
        .send()
        .await
        .unwrap();
    g.security_groups()[0].ip_permissions().iter().any(|p| {
        p.ip_ranges()
            .iter()
            .any(|r| r.cidr_ip() == Some("0.0.0.0/0"))
    })
}

/// Guards: a security group that a network interface outside the cluster uses is never changed (a web
/// server behind it would lose its traffic). Control: a group only the cluster uses is revoked.
#[tokio::test]
async fn a_group_shared_with_an_interface_outside_the_cluster_is_left_alone() {
    let region = "ca-central-1";
    let s = Seeded::new(region).await;
    let (clients, net) = (s.clients.clone(), s.net.clone());
    let shared = s.group("shared", &[seed::OPEN_SSH]).await;
    let own = s.group("own", &[seed::OPEN_SSH]).await;
    let eni = clients
        .ec2
        .create_network_interface()
        .subnet_id(&net.private[0])
        .groups(&shared)
        .description("web server")
        .send()
        .await
        .unwrap();
    let eni = eni
        .network_interface()
        .and_then(|e| e.network_interface_id())
        .unwrap()
        .to_string();
    s.private_cluster("web", &[&shared, &own]).await;

    let report = scan_fix(region, &["web"], &["sg-open-ingress"], &[]);
    skipped_because(
        remediation(&report, "web", &shared),
        &[&eni, "web server", "EKS_WARDEN_FIX_SHARED"],
    );
    assert_eq!(remediation(&report, "web", &own)["outcome"], "remediated");
    assert!(still_open(&clients, &shared).await);
    assert!(!still_open(&clients, &own).await);
}

/// Guards: a group another cluster uses and is exempt from is never changed, not even with
/// `EKS_WARDEN_FIX_SHARED=true`. Control: shared with a cluster that is not exempt, the same setting lets
/// the fix act.
#[tokio::test]
async fn a_group_shared_with_an_exempt_cluster_is_never_changed() {
    let region = "eu-north-1";
    let s = Seeded::new(region).await;
    let (clients, net) = (s.clients.clone(), s.net.clone());
    let with_exempt = s.group("with-exempt", &[seed::OPEN_SSH]).await;
    let with_plain = s.group("with-plain", &[seed::OPEN_SSH]).await;
    s.private_cluster("fixer", &[&with_exempt, &with_plain])
        .await;
    s.cluster(
        ClusterSpec::private("legacy", &net)
            .groups([&with_exempt])
            .tagged(&[("eks-warden:exempt", "sg-open-ingress")]),
    )
    .await;
    s.private_cluster("plain", &[&with_plain]).await;

    let report = scan_fix(
        region,
        &["fixer"],
        &["sg-open-ingress"],
        &[("EKS_WARDEN_FIX_SHARED", "true")],
    );
    skipped_because(
        remediation(&report, "fixer", &with_exempt),
        &["cluster legacy (exempt)"],
    );
    assert_eq!(
        remediation(&report, "fixer", &with_plain)["outcome"],
        "remediated"
    );
    assert!(still_open(&clients, &with_exempt).await);

    // Without the setting, a group shared with any other cluster is left alone and the cluster is named.
    let plain2 = s.group("plain2", &[seed::OPEN_SSH]).await;
    s.private_cluster("fixer2", &[&plain2]).await;
    s.private_cluster("plain2", &[&plain2]).await;
    let report = scan_fix(region, &["fixer2"], &["sg-open-ingress"], &[]);
    skipped_because(
        remediation(&report, "fixer2", &plain2),
        &["cluster plain2", "shared"],
    );
}

/// Guards: narrowing the public endpoint to the allow-list while private access is off would cut nodes
/// and operators outside the list off the API; it happens only with private access turned on in the same
/// update. Control: with the private fix opted in too, one UpdateClusterConfig carries both.
#[tokio::test]
async fn endpoint_narrowing_never_leaves_private_access_off() {
    let region = "sa-east-1";
    let s = Seeded::new(region).await;
    let (clients, net) = (s.clients.clone(), s.net.clone());
    for name in ["narrow", "both"] {
        s.cluster(ClusterSpec::public_open(name, &net)).await;
    }
    let allow = [("EKS_WARDEN_ALLOWED_PUBLIC_CIDRS", "203.0.113.0/24")];
    let report = scan_fix(
        region,
        &["narrow"],
        &["endpoint-public-unrestricted"],
        &allow,
    );
    skipped_because(
        remediation(&report, "narrow", "narrow"),
        &[
            "private endpoint access is off",
            "endpoint-private-disabled",
        ],
    );
    let d = clients
        .eks
        .describe_cluster()
        .name("narrow")
        .send()
        .await
        .unwrap();
    let vpc = d.cluster().unwrap().resources_vpc_config().unwrap().clone();
    assert_eq!(vpc.public_access_cidrs(), ["0.0.0.0/0"]);

    let report = scan_fix(
        region,
        &["both"],
        &["endpoint-public-unrestricted", "endpoint-private-disabled"],
        &allow,
    );
    let public = report["clusters"][0]["remediations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["rule_id"] == "endpoint-public-unrestricted")
        .unwrap();
    assert_eq!(public["outcome"], "remediated", "{report:#}");
    assert_eq!(public["action"]["endpoint_private_access"], true);
    assert_eq!(public["action"]["public_access_cidrs"][0], "203.0.113.0/24");
    let d = clients
        .eks
        .describe_cluster()
        .name("both")
        .send()
        .await
        .unwrap();
    let vpc = d.cluster().unwrap().resources_vpc_config().unwrap().clone();
    assert!(vpc.endpoint_private_access());
    assert_eq!(vpc.public_access_cidrs(), ["203.0.113.0/24"]);
}

/// Guards: a node subnet whose default route goes to an internet gateway keeps `MapPublicIpOnLaunch`
/// (without public addresses its nodes could not pull images or reach the API). Control: a NAT-routed
/// node subnet stops assigning public addresses.
#[tokio::test]
async fn a_subnet_whose_only_way_out_is_an_internet_gateway_keeps_public_addresses() {
    let region = "ap-northeast-2";
    let s = Seeded::new(region).await;
    let (clients, net) = (s.clients.clone(), s.net.clone());
    let eip = clients.ec2.allocate_address().send().await.unwrap();
    let nat = clients
        .ec2
        .create_nat_gateway()
        .subnet_id(&net.public[1])
        .allocation_id(eip.allocation_id().unwrap())
        .send()
        .await
        .unwrap();
    let nat = nat
        .nat_gateway()
        .and_then(|n| n.nat_gateway_id())
        .unwrap()
        .to_string();
    let nat_table = seed::route_table(&clients.ec2, &net.vpc).await.unwrap();
    clients
        .ec2
        .create_route()
        .route_table_id(&nat_table)
        .destination_cidr_block("0.0.0.0/0")
        .nat_gateway_id(&nat)
        .send()
        .await
        .unwrap();
    let natted = &seed::subnet(
        &clients.ec2,
        &net.vpc,
        "10.0.10.0/24",
        &format!("{region}a"),
    )
    .await
    .unwrap();
    clients
        .ec2
        .associate_route_table()
        .route_table_id(&nat_table)
        .subnet_id(natted)
        .send()
        .await
        .unwrap();
    let igw_routed = &net.public[0];
    for s in [natted, igw_routed] {
        seed::map_public_ip(&clients.ec2, s, true).await.unwrap();
    }
    s.private_cluster("edge", &[]).await;
    s.nodegroup("edge", "public-ng", &[igw_routed], Ssh::From(&[]))
        .await;
    s.nodegroup("edge", "nat-ng", &[natted], Ssh::From(&[]))
        .await;

    let report = scan_fix(region, &["edge"], &["nodes-public-ip"], &[]);
    skipped_because(
        remediation(&report, "edge", igw_routed),
        &[&net.igw, "move the nodegroup to private subnets"],
    );
    assert_eq!(
        remediation(&report, "edge", natted)["outcome"],
        "remediated"
    );
    let map = |id: &str| {
        let c = clients.clone();
        let id = id.to_string();
        async move {
            c.ec2
                .describe_subnets()
                .subnet_ids(id)
                .send()
                .await
                .unwrap()
                .subnets()[0]
                .map_public_ip_on_launch()
        }
    };
    assert_eq!(map(igw_routed).await, Some(true));
    assert_eq!(map(natted).await, Some(false));
}

/// Guards: on a private-only endpoint, the world-open 443 rule of the control-plane groups is the only
/// way in when no narrower 443 rule exists; it stays. Control: beside a narrower 443 rule it is revoked.
#[tokio::test]
async fn the_sole_path_to_a_private_endpoint_stays() {
    let region = "eu-central-2";
    let s = Seeded::new(region).await;
    let sole = s
        .group("sole", &[Ingress::Cidr("tcp", 443, 443, "0.0.0.0/0")])
        .await;
    let narrowed = s
        .group(
            "narrowed",
            &[
                Ingress::Cidr("tcp", 443, 443, "0.0.0.0/0"),
                Ingress::Cidr("tcp", 443, 443, "10.8.0.0/16"),
            ],
        )
        .await;
    s.private_cluster("vault", &[&sole]).await;
    s.private_cluster("vpn", &[&narrowed]).await;
    let report = scan_fix(region, &["vault", "vpn"], &["sg-open-ingress"], &[]);
    skipped_because(
        remediation(&report, "vault", &sole),
        &["only ingress path", "private-only endpoint"],
    );
    assert_eq!(
        remediation(&report, "vpn", &narrowed)["outcome"],
        "remediated"
    );
}

/// Guards: at most `EKS_WARDEN_MAX_FIXES` write calls per invocation; the rest waits for the re-check.
/// Control: the first fix within the limit is applied.
#[tokio::test]
async fn the_fix_limit_defers_the_rest() {
    let region = "us-east-2";
    let s = Seeded::new(region).await;
    let counter = s.counter.clone();
    let a = s.group("a", &[seed::OPEN_SSH]).await;
    let b = s.group("b", &[seed::OPEN_SSH]).await;
    s.private_cluster("many", &[&a, &b]).await;
    let _ = counter;
    let report = scan_fix(
        region,
        &["many"],
        &["sg-open-ingress"],
        &[("EKS_WARDEN_MAX_FIXES", "1")],
    );
    let outcomes: Vec<&str> = [&a, &b]
        .iter()
        .map(|g| remediation(&report, "many", g)["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "remediated").count(),
        1,
        "{report:#}"
    );
    let deferred = [&a, &b]
        .into_iter()
        .map(|g| remediation(&report, "many", g))
        .find(|m| m["outcome"] == "skipped")
        .expect("one deferred");
    skipped_because(
        deferred,
        &["limit of 1 write calls", "EKS_WARDEN_MAX_FIXES"],
    );
}

/// Guards: a finding fixed three times within a day is not fixed a fourth time: something re-adds it,
/// and fixing again would only hide that. The fix history comes from the state store, so this drives the
/// remediation pass with an in-memory history and checks the remediations as `scan --format json` prints
/// them. Control: with two earlier fixes the same fix still acts.
#[tokio::test]
async fn a_flapping_finding_stops_being_fixed() {
    use eks_warden::remediate::{remediate, Budget, FixHistory, MemoryHistory, Mode, Run};
    use eks_warden::settings::Settings;
    let region = "ap-southeast-3";
    let s = Seeded::new(region).await;
    let clients = s.clients.clone();
    let flappy = s.group("flappy", &[seed::OPEN_SSH]).await;
    let calm = s.group("calm", &[seed::OPEN_SSH]).await;
    s.private_cluster("flap", &[&flappy, &calm]).await;
    let settings = Settings::default();
    let policy = fix_policy(Mode::Remediate, &["sg-open-ingress"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut history = MemoryHistory::default();
    for ago in [3 * 3600, 2 * 3600, 3600] {
        history.record("sg-open-ingress", &flappy, now - ago);
    }
    for ago in [2 * 3600, 3600] {
        history.record("sg-open-ingress", &calm, now - ago);
    }
    let report = eks_warden::scan::evaluate_cluster(&clients, "flap", &settings)
        .await
        .unwrap();
    let budget = Budget::new(10);
    let pass = remediate(
        &clients,
        "flap",
        &report.results,
        &settings,
        &policy,
        &mut Run {
            budget: &budget,
            history: &mut history,
        },
    )
    .await
    .unwrap();
    let json =
        serde_json::json!({"clusters": [{"cluster": "flap", "remediations": pass.remediations}]});
    skipped_because(
        remediation(&json, "flap", &flappy),
        &["flapping", "3 times", "Terraform"],
    );
    assert_eq!(remediation(&json, "flap", &calm)["outcome"], "remediated");
    assert_eq!(history.applied("sg-open-ingress", &calm).len(), 3);
    assert!(still_open(&clients, &flappy).await);
}

/// Fixing at scale: a pass over a nodegroup's IMDSv1 nodes reads the cluster once before and once after,
/// whatever the number of nodes, and the write limit cuts it to the budget with the rest deferred.
#[tokio::test]
async fn a_pass_over_many_nodes_reads_the_cluster_twice() {
    use eks_warden::remediate::{remediate_once, Mode, Policy};
    use eks_warden::settings::Settings;
    let region = "us-west-2";
    let s = Seeded::new(region).await;
    let (clients, net, counter) = (s.clients.clone(), s.net.clone(), s.counter.clone());
    let sg = s.group("nodes", &[]).await;
    s.private_cluster("fleet", &[]).await;
    s.nodegroup("fleet", "ng", &[&net.private[0]], Ssh::From(&[&sg]))
        .await;
    for _ in 0..12 {
        seed::node_with(
            &clients.ec2,
            "fleet",
            Some("ng"),
            &net.private[0],
            &[&sg],
            Some(("optional", 1)),
        )
        .await
        .unwrap();
    }
    let settings = Settings::default();
    let policy = |max| Policy {
        max_fixes: max,
        ..fix_policy(Mode::Remediate, &["nodes-imdsv1"])
    };
    let count = |from: usize, op: &str| {
        counter.operations()[from..]
            .iter()
            .filter(|o| o.as_str() == op)
            .count()
    };

    let report = eks_warden::scan::evaluate_cluster(&clients, "fleet", &settings)
        .await
        .unwrap();
    let from = counter.operations().len();
    let pass = remediate_once(&clients, "fleet", &report.results, &settings, &policy(5))
        .await
        .unwrap();
    let m = &pass.remediations[0];
    assert_eq!(
        (m.resource_id.as_str(), m.outcome),
        ("ng", eks_warden::remediate::Outcome::Remediated),
        "{m:?}"
    );
    assert!(m.detail.contains("5 of 12"), "{}", m.detail);
    assert!(pass.recheck);
    assert_eq!(count(from, "ModifyInstanceMetadataOptions"), 5);
    assert_eq!(count(from, "DescribeCluster"), 2);

    // The re-check finishes the rest: still two reads, seven writes.
    let report = eks_warden::scan::evaluate_cluster(&clients, "fleet", &settings)
        .await
        .unwrap();
    let from = counter.operations().len();
    let pass = remediate_once(&clients, "fleet", &report.results, &settings, &policy(20))
        .await
        .unwrap();
    assert_eq!(
        pass.remediations[0].detail,
        "applied and verified on a fresh read"
    );
    assert_eq!(count(from, "ModifyInstanceMetadataOptions"), 7);
    assert_eq!(count(from, "DescribeCluster"), 2);
    let after = eks_warden::scan::evaluate_cluster(&clients, "fleet", &settings)
        .await
        .unwrap();
    assert!(
        !after.failures().any(|f| f.rule_id == "nodes-imdsv1"),
        "{:?}",
        after.results
    );
}
