//! Every fixture in events/ through the Lambda's code path against the emulator, with the resources it
//! names seeded, asserting which clusters were evaluated or why the event was ignored.

use crate::common;

use common::seeded::Seeded;

use common::seed::{self, Ssh};
use eks_warden::handler::handle;
use serde_json::Value;

/// The fixtures' region and account are the emulator's defaults.
const REGION: &str = "eu-west-1";

#[tokio::test]
async fn every_fixture_routes_to_its_cluster_or_is_ignored_with_a_reason() {
    let s = Seeded::new(REGION).await;
    let (clients, net) = (s.clients.clone(), s.net.clone());
    let ec2 = &clients.ec2;
    let sg = s.group("prod-extra", &[]).await;
    let bastion = s.group("bastion", &[]).await;
    s.private_cluster("prod", &[&sg]).await;
    s.nodegroup(
        "prod",
        "workers",
        &[&net.private[0]],
        Ssh::From(&[&bastion]),
    )
    .await;
    let instance = seed::node(ec2, "prod", Some("workers"), &net.private[0], &[&sg])
        .await
        .unwrap();
    let described = ec2
        .describe_instances()
        .instance_ids(&instance)
        .send()
        .await
        .unwrap();
    let eni = described.reservations()[0].instances()[0].network_interfaces()[0]
        .network_interface_id()
        .unwrap()
        .to_string();
    let tables = ec2
        .describe_route_tables()
        .route_table_ids(&net.private_table)
        .send()
        .await
        .unwrap();
    let assoc = tables.route_tables()[0]
        .associations()
        .iter()
        .find(|a| a.subnet_id() == Some(net.private[0].as_str()))
        .and_then(|a| a.route_table_association_id())
        .unwrap()
        .to_string();
    let lt = seed::cluster_launch_template(ec2, "prod-nodes", "prod")
        .await
        .unwrap();

    let replacements = [
        ("sg-PLACEHOLDER", sg.as_str()),
        ("subnet-PLACEHOLDER", net.private[0].as_str()),
        ("rtbassoc-PLACEHOLDER", assoc.as_str()),
        ("rtb-PLACEHOLDER", net.private_table.as_str()),
        ("eni-PLACEHOLDER", eni.as_str()),
        ("i-PLACEHOLDER", instance.as_str()),
        ("lt-PLACEHOLDER", lt.as_str()),
        ("vpc-PLACEHOLDER", net.vpc.as_str()),
        ("igw-PLACEHOLDER", net.igw.as_str()),
    ];
    let conf = common::sdk_config(REGION).await;
    let ctx = common::context::context_over(&conf, clients.clone());

    let ignored_because: &[(&str, &str)] = &[
        ("error-authorize-sg-ingress.json", "the call failed"),
        ("null-request-parameters.json", "names no resource"),
        (
            "unrelated-s3-put-bucket-policy.json",
            "not an event eks-warden acts on",
        ),
        ("unknown-ec2-event.json", "not an event eks-warden acts on"),
        (
            "ec2-create-tags-unrelated.json",
            "reads the tags of security groups, subnets, instances and launch templates only",
        ),
    ];
    let dir = format!("{}/events", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 40, "fixtures: {names:?}");
    let mut wrong = Vec::new();
    for name in &names {
        let mut text = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
        for (from, to) in replacements {
            text = text.replace(from, to);
        }
        let payload: Value = serde_json::from_str(&text).unwrap();
        let run = handle(&ctx, &payload)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let outcome = match ignored_because.iter().find(|(n, _)| n == name) {
            Some((_, why)) => {
                run.evaluated.is_empty() && run.ignored.iter().any(|i| i.reason.contains(why))
            }
            None => run.evaluated == vec!["prod".to_string()] && !run.failed(),
        };
        if !outcome {
            wrong.push(format!(
                "{name}: evaluated {:?}, ignored {:?}, failures {:?}",
                run.evaluated, run.ignored, run.failures
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} fixture(s) routed wrongly:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
