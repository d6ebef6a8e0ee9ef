//! The organization sweep when a member account cannot be reached: AssumeRole into it is denied, as AWS
//! denies it when the role is missing or does not trust the function. That scope is reported with its
//! account, region and reason — in-line (the CLI) and fanned out through the queue (the Lambda) — and every
//! other scope is still swept.
//!
//! The emulator assumes any role it is asked for, so a loopback proxy in front of it answers AssumeRole
//! for the one denied role with STS's own 403 `AccessDenied` document; everything else is forwarded.

use crate::common;

use common::report::reached;
use common::seed;
use eks_warden::collect::Clients;
use eks_warden::handler::{handle, Context, MemberAccounts};
use eks_warden::settings::Settings;
use serde_json::json;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ACCOUNT: &str = "123456789012";
const ROLE: &str = "eks-warden-member";
const REACHABLE: [&str; 2] = ["111111111111", "222222222222"];
const DENIED: &str = "444444444444";
const REGIONS: [&str; 2] = ["ap-south-2", "ap-east-2"];

/// Forwards to the emulator, except STS AssumeRole of `denied`'s member role, answered 403 AccessDenied.
struct DenyingProxy {
    endpoint: String,
    denied: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DenyingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DenyingProxy {
    async fn start(upstream: &str, denied_account: &str) -> DenyingProxy {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let denied = Arc::new(AtomicU32::new(0));
        // The role ARN as it appears in the form-encoded AssumeRole body.
        let arn = format!("RoleArn=arn%3Aaws%3Aiam%3A%3A{denied_account}%3Arole%2F{ROLE}");
        let d = denied.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (up, arn, d) = (upstream.clone(), arn.clone(), d.clone());
                tokio::spawn(async move {
                    let _ = serve(conn, &up, &arn, &d).await;
                });
            }
        });
        DenyingProxy {
            endpoint,
            denied,
            task,
        }
    }
}

async fn serve(
    mut conn: TcpStream,
    upstream: &str,
    arn: &str,
    denied: &AtomicU32,
) -> std::io::Result<()> {
    let Some(req) = common::proxy::read_request(&mut conn).await? else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&req).to_string();
    if text.contains("Action=AssumeRole") && text.contains(arn) {
        denied.fetch_add(1, Ordering::SeqCst);
        let body = format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>\
             <Code>AccessDenied</Code><Message>User: arn:aws:sts::{ACCOUNT}:assumed-role/eks-warden/fn is not \
             authorized to perform: sts:AssumeRole on resource: arn:aws:iam::{DENIED}:role/{ROLE}</Message>\
             </Error><RequestId>denied</RequestId></ErrorResponse>"
        );
        let resp = format!(
            "HTTP/1.1 403 Forbidden\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        return conn.write_all(resp.as_bytes()).await;
    }
    // The upstream closes after its answer; the client is told this connection ends too.
    let head_end = text.find("\r\n\r\n").map_or(req.len(), |p| p + 4);
    let mut out = req[..head_end - 2].to_vec();
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out.extend_from_slice(&req[head_end..]);
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(&out).await?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp).await?;
    if let Some(p) = resp.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&resp[..p]).to_ascii_lowercase();
        if !head.contains("\r\nconnection:") {
            resp.splice(p..p, b"\r\nconnection: close".iter().copied());
        }
    }
    conn.write_all(&resp).await
}

/// The denied account's scopes, one per region, each naming the account, the region and AccessDenied.
fn assert_denied_reported(run: &eks_warden::handler::RunSummary) {
    let mut what: Vec<&str> = run.unreachable.iter().map(|u| u.what.as_str()).collect();
    what.sort();
    let mut expected: Vec<String> = REGIONS
        .iter()
        .map(|r| format!("sweep {DENIED}/{r}"))
        .collect();
    expected.sort();
    assert_eq!(what, expected, "{run:?}");
    // The reason is STS's answer in one line, not the failed ListClusters' transport error.
    let reason = format!("sts:AssumeRole arn:aws:iam::{DENIED}:role/{ROLE}: AccessDenied: User: ");
    for u in &run.unreachable {
        assert!(u.error.starts_with(&reason), "{u:?}");
        assert!(
            u.error
                .contains("not authorized to perform: sts:AssumeRole"),
            "{u:?}"
        );
        assert!(!u.error.contains('\n') && u.error.len() < 400, "{u:?}");
    }
    // Reported, and never by failing the sweep: retrying would not make the role assumable.
    assert!(run.failures.is_empty(), "{:?}", run.failures);
    assert!(run.batch_item_failures.is_empty());
}

/// Guards the unreachable scope: AssumeRole denied in one member account → both its regions are in
/// `unreachable` with account, region and reason, and the other accounts' clusters are all evaluated.
#[tokio::test]
async fn a_member_account_that_denies_assume_role_is_reported_and_the_rest_swept() {
    let mut expected = vec![];
    for a in REACHABLE {
        for r in REGIONS {
            let c = common::context::member_clients(&common::sdk_config(r).await, a).await;
            let net = seed::network(&c.ec2, r).await.unwrap();
            let name = format!("c-{}-{r}", &a[..3]);
            seed::cluster(&c.eks, seed::ClusterSpec::private(&name, &net))
                .await
                .unwrap();
            expected.push((a.to_string(), r.to_string(), name));
        }
    }
    expected.sort();

    let home = "ap-northeast-1";
    let proxy = DenyingProxy::start(&common::emulator().endpoint, DENIED).await;
    let conf = common::sdk_config(home)
        .await
        .to_builder()
        .endpoint_url(&proxy.endpoint)
        .build();
    let mut ctx = Context::new(&conf, Clients::new(&conf), Settings::default());
    let _ = ctx.home_account.set(ACCOUNT.into());
    ctx.member_role = Some(ROLE.into());
    // The denied account in the middle: the accounts after it are swept too.
    ctx.member_accounts = Some(MemberAccounts::List(vec![
        REACHABLE[0].into(),
        DENIED.into(),
        REACHABLE[1].into(),
    ]));
    ctx.regions = REGIONS.iter().map(|r| r.to_string()).collect();
    let schedule = json!({"version": "0", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": ACCOUNT, "region": home, "detail": {}});

    // In-line, as the CLI runs it.
    let run = handle(&ctx, &schedule).await.unwrap();
    assert!(
        proxy.denied.load(Ordering::SeqCst) > 0,
        "nothing was denied"
    );
    assert_denied_reported(&run);
    assert_eq!(reached(&run), expected);
    let summary = serde_json::to_value(&run).unwrap();
    assert_eq!(summary["unreachable"].as_array().map(Vec::len), Some(2));

    // Fanned out, as the Lambda runs it: the scope messages, then one message per reachable cluster.
    let queue = common::sns::Queue::create(&common::sdk_config(home).await, "sweep-denied").await;
    ctx.recheck = Some(queue.as_recheck());
    let run = handle(&ctx, &schedule).await.unwrap();
    assert_eq!(run.fanned_out.len(), 6, "{run:?}");
    let scopes = queue.records().await;
    assert_eq!(scopes.len(), 6);
    let run = handle(&ctx, &json!({"Records": scopes})).await.unwrap();
    assert_denied_reported(&run);
    let mut queued: Vec<(String, String, String)> = run
        .fanned_out
        .iter()
        .map(|f| {
            let cluster = f.cluster.clone().unwrap_or_default();
            (f.account.clone(), f.region.clone(), cluster)
        })
        .collect();
    queued.sort();
    assert_eq!(queued, expected);
    let per_cluster = queue.records().await;
    let run = handle(&ctx, &json!({"Records": per_cluster}))
        .await
        .unwrap();
    assert!(run.batch_item_failures.is_empty(), "{:?}", run.failures);
    assert_eq!(reached(&run), expected);
}
