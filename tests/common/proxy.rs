//! A loopback HTTP proxy between the SDK and the emulator that injects faults: throttling in each
//! protocol's own error shape, 5xx, connection resets and slow answers. Bounded: it serves only while the
//! test holds it, and each fault applies to a counted number of requests or to matching ones.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Which AWS protocol a request speaks, from its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// EC2: query protocol, POST / with a form body, XML answers.
    Ec2Query,
    /// EKS: REST-JSON.
    RestJson,
    /// Anything else (SNS, SQS, STS).
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `RequestLimitExceeded` (EC2, HTTP 503) or `ThrottlingException` (EKS, HTTP 429).
    Throttle,
    /// HTTP 500 with the protocol's `InternalError` / `ServerException`.
    ServerError,
    /// Close the connection without answering.
    Reset,
    /// Answer correctly, after this long.
    Delay(Duration),
}

/// Which requests a fault hits.
#[derive(Debug, Clone)]
pub struct Plan {
    pub fault: Fault,
    pub protocol: Option<Protocol>,
    /// Hit every n-th matching request (1 = all).
    pub every: u32,
    /// Stop after this many hits (`u32::MAX`: persistent).
    pub limit: u32,
    /// Only requests whose raw text contains this (`Action=DescribeSubnets`, `/clusters/bad`).
    pub matching: Option<String>,
}

impl Plan {
    pub fn new(fault: Fault) -> Self {
        Plan {
            fault,
            protocol: None,
            every: 1,
            limit: u32::MAX,
            matching: None,
        }
    }
    pub fn on(mut self, p: Protocol) -> Self {
        self.protocol = Some(p);
        self
    }
    pub fn every(mut self, n: u32) -> Self {
        self.every = n;
        self
    }
    pub fn times(mut self, n: u32) -> Self {
        self.limit = n;
        self
    }
    pub fn matching(mut self, text: &str) -> Self {
        self.matching = Some(text.to_string());
        self
    }
}

/// Answers recorded from the upstream, by request (its request line and body), once recording is on.
type Recorded = Arc<Mutex<Option<HashMap<Vec<u8>, Vec<u8>>>>>;

pub struct FaultProxy {
    pub endpoint: String,
    plans: Arc<Mutex<Vec<Plan>>>,
    counters: Arc<Mutex<Vec<u32>>>,
    recorded: Recorded,
    pub injected: Arc<AtomicU32>,
    pub forwarded: Arc<AtomicU32>,
    /// Requests answered from the recording, without the upstream.
    pub replayed: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("proxy addr"));
        let plans: Arc<Mutex<Vec<Plan>>> = Arc::default();
        let injected = Arc::new(AtomicU32::new(0));
        let forwarded = Arc::new(AtomicU32::new(0));
        let replayed = Arc::new(AtomicU32::new(0));
        let counters: Arc<Mutex<Vec<u32>>> = Arc::default();
        let recorded: Recorded = Arc::default();
        let tally = Tally {
            injected: injected.clone(),
            forwarded: forwarded.clone(),
            replayed: replayed.clone(),
        };
        let (p, cs, rec) = (plans.clone(), counters.clone(), recorded.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let (p, c, r, t, up) = (
                    p.clone(),
                    cs.clone(),
                    rec.clone(),
                    tally.clone(),
                    upstream.clone(),
                );
                tokio::spawn(async move {
                    let _ = serve(conn, &up, (&p, &c), &r, &t).await;
                });
            }
        });
        FaultProxy {
            endpoint,
            plans,
            counters,
            recorded,
            injected,
            forwarded,
            replayed,
            task,
        }
    }

    /// From now on, records each answer of the upstream and answers a request seen before from the
    /// recording (after any fault's delay), as a service that answers in parallel would: the upstream's
    /// own service time no longer counts.
    pub fn record_and_replay(&self) {
        if let Ok(mut r) = self.recorded.lock() {
            r.get_or_insert_with(HashMap::new);
        }
    }

    /// Replaces the plans; their request counters start again from zero.
    pub fn set(&self, plans: Vec<Plan>) {
        if let (Ok(mut p), Ok(mut c)) = (self.plans.lock(), self.counters.lock()) {
            *p = plans;
            c.clear();
        }
    }

    pub fn clear(&self) {
        self.set(vec![]);
    }
}

/// Reads one HTTP/1.1 request (headers and a Content-Length body). `None` at end of stream.
pub async fn read_request(conn: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(Some(buf))
}

fn protocol_of(req: &[u8]) -> Protocol {
    let text = String::from_utf8_lossy(req);
    if text.contains("Action=") && text.contains("Version=2016-11-15") {
        Protocol::Ec2Query
    } else if text.starts_with("GET /clusters")
        || text.starts_with("POST /clusters")
        || text.contains("/cluster-versions")
    {
        Protocol::RestJson
    } else {
        Protocol::Other
    }
}

fn fault_response(fault: Fault, proto: Protocol) -> Option<String> {
    let (status, reason, code, body_type, body) = match (fault, proto) {
        (Fault::Throttle, Protocol::Ec2Query) => (503, "Service Unavailable", "", "text/xml",
            "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>fault</RequestID></Response>".to_string()),
        (Fault::Throttle, _) => (429, "Too Many Requests", "ThrottlingException", "application/json",
            r#"{"message":"Rate exceeded"}"#.to_string()),
        (Fault::ServerError, Protocol::Ec2Query) => (500, "Internal Server Error", "", "text/xml",
            "<Response><Errors><Error><Code>InternalError</Code><Message>An internal error has occurred.</Message></Error></Errors><RequestID>fault</RequestID></Response>".to_string()),
        (Fault::ServerError, _) => (500, "Internal Server Error", "ServerException", "application/json",
            r#"{"message":"An internal error occurred"}"#.to_string()),
        _ => return None,
    };
    let typ = if code.is_empty() {
        String::new()
    } else {
        format!("x-amzn-ErrorType: {code}\r\n")
    };
    Some(format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {body_type}\r\n{typ}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))
}

#[derive(Clone)]
struct Tally {
    injected: Arc<AtomicU32>,
    forwarded: Arc<AtomicU32>,
    replayed: Arc<AtomicU32>,
}

/// What identifies a request for the recording: its request line and its body.
fn request_key(req: &[u8]) -> Vec<u8> {
    let line = req
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(req.len());
    let body = req
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(req.len(), |p| p + 4);
    [&req[..line], &req[body..]].concat()
}

fn recorded_answer(recorded: &Recorded, req: &[u8]) -> Option<Vec<u8>> {
    let r = recorded.lock().ok()?;
    r.as_ref()?.get(&request_key(req)).cloned()
}

fn record(recorded: &Recorded, req: &[u8], resp: &[u8]) {
    if let Ok(mut r) = recorded.lock() {
        if let Some(map) = r.as_mut() {
            map.insert(request_key(req), resp.to_vec());
        }
    }
}

async fn serve(
    mut conn: TcpStream,
    upstream: &str,
    (plans, counters): (&Mutex<Vec<Plan>>, &Mutex<Vec<u32>>),
    recorded: &Recorded,
    tally: &Tally,
) -> std::io::Result<()> {
    let (injected, forwarded) = (&tally.injected, &tally.forwarded);
    // One request per connection: every answer closes it, so the client frames each exchange afresh.
    if let Some(req) = read_request(&mut conn).await? {
        let proto = protocol_of(&req);
        let fault = {
            let plans = plans.lock().map(|p| p.clone()).unwrap_or_default();
            let mut counters = counters
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?;
            let len = plans.len().max(counters.len());
            counters.resize(len, 0);
            let mut chosen = None;
            for (i, plan) in plans.iter().enumerate() {
                if plan.protocol.is_some_and(|p| p != proto) {
                    continue;
                }
                if let Some(m) = &plan.matching {
                    if !String::from_utf8_lossy(&req).contains(m.as_str()) {
                        continue;
                    }
                }
                let seen = counters[i];
                counters[i] += 1;
                let hits_so_far = seen / plan.every.max(1);
                if seen % plan.every.max(1) == 0 && hits_so_far < plan.limit {
                    chosen = Some(plan.fault);
                    break;
                }
            }
            chosen
        };
        match fault {
            Some(Fault::Reset) => {
                injected.fetch_add(1, Ordering::SeqCst);
                return Ok(()); // dropped without an answer
            }
            Some(Fault::Delay(d)) => {
                injected.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(d).await;
            }
            Some(f) => {
                if let Some(resp) = fault_response(f, proto) {
                    injected.fetch_add(1, Ordering::SeqCst);
                    conn.write_all(resp.as_bytes()).await?;
                    return Ok(());
                }
            }
            None => {}
        }
        if let Some(resp) = recorded_answer(recorded, &req) {
            tally.replayed.fetch_add(1, Ordering::SeqCst);
            return conn.write_all(&resp).await;
        }
        forwarded.fetch_add(1, Ordering::SeqCst);
        // One upstream connection per request, closed by the upstream after its answer.
        let mut up = TcpStream::connect(upstream).await?;
        let text = String::from_utf8_lossy(&req).to_string();
        let fixed = text.replacen("\r\n\r\n", "\r\nconnection: close\r\n\r\n", 1);
        let head_len = text.find("\r\n\r\n").map(|p| p + 4).unwrap_or(req.len());
        let mut out = fixed.as_bytes()
            [..fixed.find("\r\n\r\n").map(|p| p + 4).unwrap_or(fixed.len())]
            .to_vec();
        out.extend_from_slice(&req[head_len..]);
        up.write_all(&out).await?;
        let mut resp = Vec::new();
        up.read_to_end(&mut resp).await?;
        // Tell the client this connection ends too, so each request gets a fresh, framed exchange.
        if let Some(pos) = resp.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&resp[..pos]).to_ascii_lowercase();
            if !head.contains("\r\nconnection:") {
                resp.splice(pos..pos, b"\r\nconnection: close".iter().copied());
            }
        }
        record(recorded, &req, &resp);
        conn.write_all(&resp).await?;
        return Ok(());
    }
    Ok(())
}
