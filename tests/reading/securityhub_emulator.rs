//! The Security Hub sink against the emulator's Security Hub, through `handle`: a world-open rule becomes
//! a FAILED finding with the report's id; once revoked, that finding is archived as PASSED; re-imports
//! update, never duplicate.

use crate::common;

use aws_sdk_securityhub::types::{ComplianceStatus, RecordState};
use common::seed;
use eks_warden::handler::handle;
use serde_json::json;

async fn hub_findings(
    conf: &aws_config::SdkConfig,
) -> Vec<aws_sdk_securityhub::types::AwsSecurityFinding> {
    aws_sdk_securityhub::Client::new(conf)
        .get_findings()
        .max_results(100)
        .send()
        .await
        .unwrap()
        .findings()
        .to_vec()
}

/// Guards: the sink imports with stable ids, flips a fixed finding to PASSED/ARCHIVED, and never duplicates.
#[test]
fn security_hub_follows_a_finding_from_new_to_resolved() {
    // The SDK's Security Hub finding model is large: unoptimised test builds need more stack than a test
    // thread's 2 MiB (the CLI and the Lambda run on the main thread's 8 MiB, in release).
    std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(new_to_resolved())
        })
        .expect("a test thread")
        .join()
        .expect("the scenario passes");
}

async fn new_to_resolved() {
    let region = "ap-southeast-3";
    let (clients, _) = common::clients(region).await;
    let (_, open) = seed::open_ssh_cluster(
        &clients.eks,
        &clients.ec2,
        region,
        "hub",
        Default::default(),
    )
    .await
    .unwrap();
    let conf = common::sdk_config(region).await;
    let mut ctx = common::context::context_over(&conf, clients.clone());
    ctx.security_hub = true;
    let invoke = json!({"clusters": ["hub"]});

    let run = handle(&ctx, &invoke).await.unwrap();
    assert!(run.failures.is_empty(), "{:?}", run.failures);
    let report = &run.clusters[0];
    let open_finding = report
        .failures()
        .find(|r| r.rule_id == "sg-open-ingress" && r.resource_id == open)
        .expect("the world-open group fails")
        .finding_id
        .clone();
    let known = report
        .results
        .iter()
        .filter(|r| r.status != eks_warden::rules::Status::Unknown)
        .count();
    let stored = hub_findings(&conf).await;
    assert_eq!(
        stored.len(),
        known,
        "every PASS, FAIL and EXEMPT, UNKNOWN left out"
    );
    let f = stored
        .iter()
        .find(|f| f.id() == Some(open_finding.as_str()))
        .expect("imported with the report's finding id");
    assert_eq!(
        f.compliance().and_then(|c| c.status()),
        Some(&ComplianceStatus::Failed)
    );

    // The same state again: updated in place, no duplicate.
    handle(&ctx, &invoke).await.unwrap();
    assert_eq!(hub_findings(&conf).await.len(), known);

    // Fixed: the world-open permission is revoked; its finding is archived as PASSED.
    seed::revoke(&clients.ec2, &open, &[seed::OPEN_SSH])
        .await
        .unwrap();
    let run = handle(&ctx, &invoke).await.unwrap();
    assert!(run.failures.is_empty(), "{:?}", run.failures);
    let stored = hub_findings(&conf).await;
    let f = stored
        .iter()
        .find(|f| f.id() == Some(open_finding.as_str()))
        .unwrap();
    assert_eq!(f.record_state(), Some(&RecordState::Archived));
    assert_eq!(
        f.compliance().and_then(|c| c.status()),
        Some(&ComplianceStatus::Passed)
    );
    let same_id = stored
        .iter()
        .filter(|f| f.id() == Some(open_finding.as_str()))
        .count();
    assert_eq!(same_id, 1, "re-imports update, never duplicate");
}
