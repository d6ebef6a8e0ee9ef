//! `make demo`: the main job against the emulator named by AWS_ENDPOINT_URL.
//!
//! Seeds an account with an insecure and a compliant cluster, subscribes an SQS queue to the findings
//! topic, sends an `AuthorizeSecurityGroupIngress` CloudTrail event (a node security group opened to
//! 0.0.0.0/0) through `eks-warden handle`, and prints what the subscriber received. Then `eks-warden scan`.

#[path = "../tests/common/seed.rs"]
mod seed;

use serde_json::Value;
use std::process::Command;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let bin = std::env::args()
        .nth(1)
        .ok_or("usage: demo <directory of the eks-warden binary>")?;
    let eks_warden = format!("{bin}/eks-warden");
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let region = config
        .region()
        .map(|r| r.to_string())
        .ok_or("set AWS_REGION")?;
    let eks = aws_sdk_eks::Client::new(&config);
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let sns = aws_sdk_sns::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);

    let demo = seed::demo_account(&eks, &ec2, &region).await?;
    println!(
        "# seeded clusters `insecure` and `compliant` in {region} (emulated account 123456789012)"
    );

    let topic = sns
        .create_topic()
        .name("eks-warden-findings")
        .send()
        .await?
        .topic_arn()
        .unwrap_or_default()
        .to_string();
    let queue = sqs
        .create_queue()
        .queue_name("findings-subscriber")
        .send()
        .await?
        .queue_url()
        .unwrap_or_default()
        .to_string();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .ok_or("no queue arn")?;
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(arn)
        .send()
        .await?;

    // The CloudTrail record of someone opening the insecure cluster's node group to the world.
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/ec2-authorize-sg-ingress-items.json"
    ))?
    .replace("sg-PLACEHOLDER", &demo.open_all_sg)
    .replace("\"eu-west-1\"", &format!("\"{region}\""));
    let event_file = std::env::temp_dir().join("eks-warden-demo-event.json");
    std::fs::write(&event_file, &fixture)?;
    println!(
        "\n$ eks-warden handle events/ec2-authorize-sg-ingress-items.json   (group {})",
        demo.open_all_sg
    );
    let out = Command::new(&eks_warden)
        .arg("handle")
        .arg(&event_file)
        .env("EKS_WARDEN_TOPIC_ARN", &topic)
        .output()?;
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout)?;
    println!(
        "triggers: {}\nevaluated: {}\npublished: {}\nbatchItemFailures: {}",
        summary["triggers"],
        summary["evaluated"],
        summary["published"],
        summary["batchItemFailures"]
    );
    for c in summary["clusters"].as_array().into_iter().flatten() {
        println!("findings on {}:", c["cluster"]);
        for r in c["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["status"] == "FAIL")
        {
            println!(
                "  {:<8} {:<29} {} {}",
                r["severity"].as_str().unwrap_or(""),
                r["rule_id"].as_str().unwrap_or(""),
                r["resource_type"].as_str().unwrap_or(""),
                r["resource_id"].as_str().unwrap_or("")
            );
        }
    }

    println!("\n# what the SNS topic's SQS subscriber received");
    let got = sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .send()
        .await?;
    for m in got.messages() {
        let envelope: Value = serde_json::from_str(m.body().unwrap_or("{}"))?;
        println!("Subject: {}", envelope["Subject"].as_str().unwrap_or(""));
        println!("MessageAttributes:");
        if let Some(attrs) = envelope["MessageAttributes"].as_object() {
            for (k, v) in attrs {
                println!(
                    "  {k} ({}): {}",
                    v["Type"].as_str().unwrap_or(""),
                    v["Value"].as_str().unwrap_or("")
                );
            }
        }
        let body: Value = serde_json::from_str(envelope["Message"].as_str().unwrap_or("{}"))?;
        println!(
            "Message (the sqs/default/lambda form):\n{}",
            serde_json::to_string_pretty(&body)?
        );
    }
    if !out.status.success() {
        return Err(format!("eks-warden handle exited {:?}", out.status.code()).into());
    }
    Ok(())
}
