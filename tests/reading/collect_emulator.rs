//! The collector against the emulator over HTTP: how many dependent rounds one cluster costs, that the
//! reads follow what the enabled rules declare, and that the clusters of one run share their VPC's reads.

use crate::common;

use common::seed::{self, ClusterSpec, Ssh};
use eks_warden::collect::{collect_fresh, collect_with, shared, Clients};
use eks_warden::model::Fact;
use eks_warden::rules::ALL;
use eks_warden::settings::Settings;
use std::sync::Arc;

/// Only these rules enabled.
fn only(rules: &[&str]) -> Settings {
    Settings {
        disabled_rules: ALL
            .iter()
            .map(|r| r.meta.id.to_string())
            .filter(|id| !rules.contains(&id.as_str()))
            .collect(),
        ..Settings::default()
    }
}

fn count(ops: &[String], op: &str) -> usize {
    ops.iter().filter(|o| *o == op).count()
}

/// Everything wrong at once (world-open groups, whose rule ids cost a read after the groups; a
/// nodegroup with SSH from anywhere; an old version): every part is read, in at most three rounds
/// (DescribeCluster → DescribeSecurityGroups → DescribeSecurityGroupRules), with nothing unknown.
#[tokio::test]
async fn a_cluster_with_every_part_is_read_in_three_rounds() {
    let region = "ap-south-2";
    let (clients, _, _) = common::seeded::demo(region).await;
    let (s, stats) = collect_with(&clients, "insecure", &Settings::default())
        .await
        .unwrap();
    eprintln!("insecure: {} calls in {} rounds", stats.calls, stats.rounds);
    assert!(stats.rounds <= 3, "{} rounds", stats.rounds);
    assert!(s.nodegroups.known().is_some_and(|n| !n.is_empty()));
    assert!(s.instances.known().is_some_and(|i| !i.is_empty()));
    assert!(s.version_support.known().is_some());
    assert!(
        s.subnets.values().all(|f| f.known().is_some()),
        "{:?}",
        s.subnets
    );
    let groups: Vec<_> = s
        .security_groups
        .values()
        .filter_map(|g| g.known())
        .collect();
    assert_eq!(groups.len(), s.security_groups.len());
    // The world-open rules carry the ids a fix revokes.
    let open: Vec<_> = groups
        .iter()
        .flat_map(|g| &g.ingress)
        .filter(|r| r.world_source().is_some())
        .collect();
    assert!(!open.is_empty());
    assert!(open.iter().all(|r| r.rule_id.is_some()), "{open:?}");
}

/// A nodegroup whose SSH group is open to the world, with no node yet: the group is learnt only from
/// DescribeNodegroup (round 2), so its rule ids are read with it, not in a fourth round.
#[tokio::test]
async fn a_group_only_a_nodegroup_names_costs_no_fourth_round() {
    let region = "ap-southeast-4";
    let (clients, _) = common::clients(region).await;
    let net = seed::network(&clients.ec2, region).await.unwrap();
    seed::cluster(&clients.eks, ClusterSpec::private("late", &net))
        .await
        .unwrap();
    seed::nodegroup(
        &clients.eks,
        "late",
        "ssh",
        &[&net.private[0]],
        Ssh::OpenToWorld,
    )
    .await
    .unwrap();
    let (s, stats) = collect_with(&clients, "late", &Settings::default())
        .await
        .unwrap();
    let ng = &s.nodegroups.known().unwrap()[0];
    let sg = ng
        .remote_access_security_group
        .clone()
        .expect("remote-access group");
    let g = s.security_groups[&sg].known().expect("read");
    assert!(g
        .ingress
        .iter()
        .any(|r| r.world_source().is_some() && r.rule_id.is_some()));
    assert!(stats.rounds <= 3, "{} rounds", stats.rounds);
}

/// The collector reads only what the enabled rules declare: with only the endpoint rules, one
/// DescribeCluster; with only subnets-single-az, the cluster and its VPC's subnets and route tables.
#[tokio::test]
async fn reads_follow_the_enabled_rules_declarations() {
    let region = "eu-south-2";
    let (clients, counter) = common::clients(region).await;
    seed::demo_account(&clients.eks, &clients.ec2, region)
        .await
        .unwrap();
    let before = counter.operations().len();
    let endpoint = only(&["endpoint-public-unrestricted", "endpoint-private-disabled"]);
    let (s, stats) = collect_with(&clients, "insecure", &endpoint).await.unwrap();
    assert_eq!(
        counter.operations()[before..],
        ["DescribeCluster".to_string()]
    );
    assert_eq!((stats.calls, stats.rounds), (1, 1));
    for unknown in [
        s.nodegroups.known().is_none(),
        s.instances.known().is_none(),
        s.addons.known().is_none(),
        s.cluster_admin_entries.known().is_none(),
        s.version_support.known().is_none(),
    ] {
        assert!(unknown);
    }
    assert!(s
        .subnets
        .values()
        .all(|f| matches!(f, Fact::Unknown(u) if u.code == "NotCollected")));

    let before = counter.operations().len();
    let (s, _) = collect_with(&clients, "insecure", &only(&["subnets-single-az"]))
        .await
        .unwrap();
    let mut ops = counter.operations()[before..].to_vec();
    ops.sort();
    assert_eq!(
        ops,
        ["DescribeCluster", "DescribeRouteTables", "DescribeSubnets"]
    );
    assert!(s.subnets.values().all(|f| f.known().is_some()));
}

/// Six clusters on one VPC, collected in one run: the VPC's subnets, route tables and security groups
/// and the version's support are read once for all six, not once each.
#[tokio::test]
async fn clusters_of_one_run_read_what_they_share_once() {
    let region = "mx-central-1";
    let (clients, counter) = common::clients(region).await;
    let net = seed::network(&clients.ec2, region).await.unwrap();
    let names: Vec<String> = (0..6).map(|i| format!("shared-{i}")).collect();
    for n in &names {
        seed::cluster(&clients.eks, ClusterSpec::private(n, &net))
            .await
            .unwrap();
    }
    let before = counter.operations().len();
    let run = Arc::new(shared::Shared::default());
    let reads = names.iter().map(|n| {
        let clients: &Clients = &clients;
        shared::within(run.clone(), async move {
            collect_with(clients, n, &Settings::default()).await
        })
    });
    for r in futures::future::join_all(reads).await {
        r.unwrap();
    }
    let ops = counter.operations()[before..].to_vec();
    assert_eq!(count(&ops, "DescribeCluster"), 6);
    assert_eq!(count(&ops, "DescribeSubnets"), 1, "{ops:?}");
    assert_eq!(count(&ops, "DescribeRouteTables"), 1, "{ops:?}");
    assert_eq!(count(&ops, "DescribeSecurityGroups"), 1, "{ops:?}");
    assert!(count(&ops, "DescribeClusterVersions") <= 1, "{ops:?}");
}

/// Guards fixes against the run's shared reads: inside a run, a VPC's subnets are read once, so a
/// change made since (a fix) is not seen by `collect_with`; the read a fix decides on and verifies
/// with (`collect_fresh`) sees it.
#[tokio::test]
async fn a_fix_reads_afresh_inside_a_run() {
    let region = "ap-east-1";
    let (clients, _) = common::clients(region).await;
    let net = seed::network(&clients.ec2, region).await.unwrap();
    let subnet = net.private[0].clone();
    seed::cluster(&clients.eks, ClusterSpec::private("fresh", &net))
        .await
        .unwrap();
    let maps_public = |s: &eks_warden::model::ClusterSnapshot| {
        s.subnets[&subnet].known().unwrap().map_public_ip_on_launch
    };
    let run = Arc::new(shared::Shared::default());
    let settings = Settings::default();
    let (first, _) = shared::within(run.clone(), collect_with(&clients, "fresh", &settings))
        .await
        .unwrap();
    assert!(!maps_public(&first));
    seed::map_public_ip(&clients.ec2, &subnet, true)
        .await
        .unwrap();
    let (cached, _) = shared::within(run.clone(), collect_with(&clients, "fresh", &settings))
        .await
        .unwrap();
    assert!(!maps_public(&cached), "the run's read is shared");
    let (fresh, _) = shared::within(run, collect_fresh(&clients, "fresh", &settings))
        .await
        .unwrap();
    assert!(maps_public(&fresh), "a fix's read must see the change");
}

/// Three clusters of one scope, collected in one run with their peers named: one DescribeInstances for
/// the three, each cluster given its own nodes only (not a peer's, not a cluster outside the run's).
#[tokio::test]
async fn a_runs_clusters_read_their_nodes_together() {
    let region = "ap-southeast-7";
    let (clients, counter) = common::clients(region).await;
    let net = seed::network(&clients.ec2, region).await.unwrap();
    let names: Vec<String> = ["nodes-a", "nodes-b", "nodes-c"].map(String::from).into();
    let mut expected = std::collections::BTreeMap::new();
    for (i, n) in names.iter().enumerate() {
        seed::cluster(&clients.eks, ClusterSpec::private(n, &net))
            .await
            .unwrap();
        let mut ids = Vec::new();
        for _ in 0..i {
            ids.push(
                seed::node(&clients.ec2, n, None, &net.private[0], &[])
                    .await
                    .unwrap(),
            );
        }
        ids.sort();
        expected.insert(n.clone(), ids);
    }
    seed::node(&clients.ec2, "outsider", None, &net.private[0], &[])
        .await
        .unwrap();
    let before = counter.operations().len();
    let (run, peers) = (
        Arc::new(shared::Shared::default()),
        shared::Peers::new(names.clone()),
    );
    let reads = names.iter().map(|n| {
        let clients: &Clients = &clients;
        let work = async move { collect_with(clients, n, &Settings::default()).await };
        shared::within_peers(run.clone(), peers.clone(), work)
    });
    for (n, r) in names.iter().zip(futures::future::join_all(reads).await) {
        let (s, _) = r.unwrap();
        let mut ids: Vec<String> = s
            .instances
            .known()
            .unwrap()
            .iter()
            .map(|i| i.id.clone())
            .collect();
        ids.sort();
        assert_eq!(ids, expected[n], "{n}");
    }
    let ops = counter.operations()[before..].to_vec();
    assert_eq!(count(&ops, "DescribeInstances"), 1, "{ops:?}");
}
