//! A minimal Lambda Runtime API on loopback — just enough of `/2018-06-01/runtime` for `lambda_runtime` 1.x:
//! `GET …/invocation/next` hands out the armed payloads one by one (and then holds the request open, as
//! Lambda does between invocations), `POST …/invocation/{id}/response` and the error routes are recorded.
//! Every request is reported with the instant it arrived, so the harness can time init and invocations.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

#[derive(Debug)]
pub enum ApiEvent {
    /// The function asked for its next event.
    Next { at: Instant },
    /// It answered the invocation handed out last.
    Response { at: Instant, body: Vec<u8> },
    /// It reported an init or invocation error.
    Error { path: String, body: Vec<u8> },
}

#[derive(Default)]
struct Script {
    payloads: Vec<String>,
    served: usize,
    generation: u64,
    function_arn: String,
}

pub struct RuntimeApi {
    /// `127.0.0.1:PORT`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub addr: String,
    script: Arc<Mutex<Script>>,
    rx: mpsc::UnboundedReceiver<ApiEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind runtime API");
        let addr = listener
            .local_addr()
            .expect("runtime API address")
            .to_string();
        let script: Arc<Mutex<Script>> = Arc::default();
        let (tx, rx) = mpsc::unbounded_channel();
        let s = script.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (s, tx) = (s.clone(), tx.clone());
                tokio::spawn(async move {
                    let _ = serve(conn, &s, &tx).await;
                });
            }
        });
        RuntimeApi {
            addr,
            script,
            rx,
            task,
        }
    }

    /// The payloads the next function process will receive, in order; events of earlier runs are dropped.
    pub fn arm(&mut self, payloads: Vec<String>, region: &str) {
        while self.rx.try_recv().is_ok() {}
        let mut s = self.script.lock().expect("runtime API script");
        s.generation += 1;
        s.served = 0;
        s.payloads = payloads;
        s.function_arn = format!("arn:aws:lambda:{region}:123456789012:function:eks-warden");
    }

    pub async fn next_event(&mut self, timeout: Duration) -> Result<ApiEvent, String> {
        match tokio::time::timeout(timeout, self.rx.recv()).await {
            Ok(Some(e)) => Ok(e),
            Ok(None) => Err("the runtime API stopped".into()),
            Err(_) => Err(format!("no request from the function within {timeout:?}")),
        }
    }
}

/// A keep-alive HTTP/1.1 connection with its read buffer.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn fill(&mut self) -> std::io::Result<bool> {
        let mut chunk = [0u8; 16384];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// One line without its CRLF; `None` at end of stream.
    async fn line(&mut self) -> std::io::Result<Option<String>> {
        loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..p]).into_owned();
                self.buf.drain(..p + 2);
                return Ok(Some(line));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    async fn take(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Method, path and body of the next request (Content-Length or chunked body).
    async fn request(&mut self) -> std::io::Result<Option<(String, String, Vec<u8>)>> {
        let Some(start) = self.line().await? else {
            return Ok(None);
        };
        let mut parts = start.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let (mut length, mut chunked) = (0usize, false);
        loop {
            let Some(h) = self.line().await? else {
                return Ok(None);
            };
            if h.is_empty() {
                break;
            }
            let h = h.to_ascii_lowercase();
            if let Some(v) = h.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            } else if h.starts_with("transfer-encoding:") && h.contains("chunked") {
                chunked = true;
            }
        }
        let body = if chunked {
            let mut body = Vec::new();
            loop {
                let size_line = self
                    .line()
                    .await?
                    .ok_or(std::io::ErrorKind::UnexpectedEof)?;
                let size =
                    usize::from_str_radix(size_line.split(';').next().unwrap_or("0").trim(), 16)
                        .map_err(|_| std::io::Error::other("bad chunk size"))?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    while let Some(t) = self.line().await? {
                        if t.is_empty() {
                            break;
                        }
                    }
                    break body;
                }
                body.extend(self.take(size).await?);
                self.take(2).await?;
            }
        } else {
            self.take(length).await?
        };
        Ok(Some((method, path, body)))
    }

    async fn answer(&mut self, status: &str, headers: &str, body: &[u8]) -> std::io::Result<()> {
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{headers}content-length: {}\r\n\r\n",
            body.len()
        );
        self.stream.write_all(head.as_bytes()).await?;
        self.stream.write_all(body).await
    }
}

async fn serve(
    stream: TcpStream,
    script: &Mutex<Script>,
    tx: &mpsc::UnboundedSender<ApiEvent>,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
    };
    while let Some((method, path, body)) = conn.request().await? {
        let at = Instant::now();
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let _ = tx.send(ApiEvent::Next { at });
            let next = {
                let mut s = script
                    .lock()
                    .map_err(|_| std::io::Error::other("poisoned"))?;
                (s.served < s.payloads.len()).then(|| {
                    s.served += 1;
                    (
                        s.payloads[s.served - 1].clone(),
                        format!("bench-{}-{}", s.generation, s.served),
                        s.function_arn.clone(),
                    )
                })
            };
            let Some((payload, id, arn)) = next else {
                // Nothing more to invoke: hold the request, as Lambda does, until the process goes away.
                while conn.fill().await? {}
                return Ok(());
            };
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis()
                + 900_000;
            let headers = format!(
                "lambda-runtime-aws-request-id: {id}\r\nlambda-runtime-deadline-ms: {deadline}\r\n\
                 lambda-runtime-invoked-function-arn: {arn}\r\n\
                 lambda-runtime-trace-id: Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0\r\n"
            );
            conn.answer("200 OK", &headers, payload.as_bytes()).await?;
        } else if method == "POST"
            && path.contains("/runtime/invocation/")
            && path.ends_with("/response")
        {
            let _ = tx.send(ApiEvent::Response { at, body });
            conn.answer("202 Accepted", "", br#"{"status":"OK"}"#)
                .await?;
        } else if method == "POST" && path.ends_with("/error") {
            let _ = tx.send(ApiEvent::Error { path, body });
            conn.answer("202 Accepted", "", br#"{"status":"OK"}"#)
                .await?;
        } else {
            conn.answer("404 Not Found", "", br#"{"errorMessage":"unknown route"}"#)
                .await?;
        }
    }
    Ok(())
}
