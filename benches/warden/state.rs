//! The finding lifecycle's cost: DynamoDB calls per evaluation of one cluster (a change, no change, a fix
//! resolving a finding), and two concurrent invocations on one change → messages published.

use crate::common::{self, seed, CallCounter};
use crate::{fleet, Error, Report, ACCOUNT};
use eks_warden::handler::{handle, Context};
use eks_warden::settings::Settings;
use eks_warden::state::store::Store;
use eks_warden::state::Lifecycle;
use serde_json::json;

fn context(
    conf: &aws_config::SdkConfig,
    clients: &eks_warden::collect::Clients,
    topic: &str,
    table: &str,
    counter: &CallCounter,
) -> Context {
    let dynamo = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(conf)
            .interceptor(counter.clone())
            .build(),
    );
    let mut ctx = Context::new(conf, clients.clone(), Settings::default());
    ctx.topic_arn = Some(topic.to_string());
    let _ = ctx.home_account.set(ACCOUNT.into());
    ctx.state = Some(Lifecycle::new(conf, Store::new(dynamo, table)));
    ctx
}

pub async fn state_bench(report: &mut Report) -> Result<(), Error> {
    println!("state: DynamoDB calls per evaluation with a state table");
    let region = "ap-southeast-2";
    let (clients, _) = common::clients(region).await;
    let conf = common::sdk_config(region).await;
    let s = fleet::three_nodegroups(&clients, region, "state-a").await?;
    let open = [seed::Ingress::Cidr("tcp", 22, 22, "0.0.0.0/0")];
    seed::authorize(&clients.ec2, &s.node_sg, &open).await?;
    let table = "eks-warden-bench-state";
    Store::new(aws_sdk_dynamodb::Client::new(&conf), table)
        .create_table()
        .await?;
    let topic = fleet::topic(&conf, "eks-warden-state-bench").await?;
    let counter = CallCounter::default();
    let ctx = context(&conf, &clients, &topic, table, &counter);
    let payload = json!({"clusters": [s.cluster]});
    let mut rows = vec![];
    for what in [
        "first evaluation (all new)",
        "the same state again",
        "after the fix (resolved)",
    ] {
        if what.starts_with("after") {
            clients
                .ec2
                .revoke_security_group_ingress()
                .group_id(&s.node_sg)
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .cidr_ip("0.0.0.0/0")
                .send()
                .await?;
        }
        let before = counter.operations().len();
        let run = handle(&ctx, &payload).await?;
        let ops = counter.operations()[before..].to_vec();
        rows.push((what, ops, run.published.len()));
    }
    for (what, ops, published) in &rows {
        let reads = ops.iter().filter(|o| *o == "Query").count();
        let writes = ops
            .iter()
            .filter(|o| *o == "PutItem" || *o == "TransactWriteItems")
            .count();
        report.row(
            "state",
            &format!("DynamoDB calls, {what}; messages {published}"),
            format!("{} ({})", ops.len(), ops.join(" + ")),
            "1 read + 1 conditional write (+ pending delete)",
            Some(reads == 1 && writes == 1),
        );
    }
    // Two invocations racing on one change (an SQS redelivery): one message.
    seed::authorize(&clients.ec2, &s.node_sg, &open).await?;
    let (c1, c2) = (CallCounter::default(), CallCounter::default());
    let (a, b) = (
        context(&conf, &clients, &topic, table, &c1),
        context(&conf, &clients, &topic, table, &c2),
    );
    let (ra, rb) = tokio::join!(handle(&a, &payload), handle(&b, &payload));
    let published = ra?.published.len() + rb?.published.len();
    report.row(
        "state",
        "two concurrent invocations on one change → messages",
        published.to_string(),
        "1",
        Some(published == 1),
    );
    Ok(())
}
