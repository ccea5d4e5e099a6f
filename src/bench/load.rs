//! The load generator: N keep-alive HTTP/1.1 connections, each sending one token request at a
//! time until the phase ends or the pre-minted ID-JAGs run out.
//!
//! It speaks the small part of HTTP/1.1 the token endpoint needs (a POST with a
//! `Content-Length` body, a response framed by `Content-Length`) over a plain `TcpStream`, so
//! the generator costs little CPU on a machine it shares with the server. It runs on its own
//! current-thread runtimes, apart from the bench's main runtime.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::BenchError;
use super::server::Gateway;

/// Maximum wait for one response before the connection is counted as failed and reopened.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Maximum wait for a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most connection attempts per connection slot and phase.
const MAX_CONNECTS: u32 = 1000;
/// Largest response accepted, head and body.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
const FORM_PREFIX: &[u8] =
    b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";

/// Address and request head of the token endpoint under load.
#[derive(Debug)]
pub struct Target {
    addr: SocketAddr,
    /// The request line and headers up to the `Content-Length` value.
    head: Vec<u8>,
}

impl Target {
    /// Builds the target for the token endpoint of `gateway` on the server at `addr`.
    pub fn new(addr: SocketAddr, gateway: &Gateway) -> Self {
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ",
            gateway.token_path, gateway.authorization
        );
        Self {
            addr,
            head: head.into_bytes(),
        }
    }

    /// Writes the whole request for `assertion` into `buffer`. An ID-JAG contains only
    /// base64url characters and dots, which need no form encoding.
    fn write_request(&self, buffer: &mut Vec<u8>, assertion: &str) {
        buffer.clear();
        buffer.extend_from_slice(&self.head);
        let length = FORM_PREFIX.len() + assertion.len();
        buffer.extend_from_slice(length.to_string().as_bytes());
        buffer.extend_from_slice(b"\r\n\r\n");
        buffer.extend_from_slice(FORM_PREFIX);
        buffer.extend_from_slice(assertion.as_bytes());
    }
}

/// Pre-minted ID-JAGs, each handed out once.
#[derive(Debug)]
pub struct TokenPool {
    tokens: Vec<String>,
    next: AtomicUsize,
}

impl TokenPool {
    pub fn new(tokens: Vec<String>) -> Self {
        Self {
            tokens,
            next: AtomicUsize::new(0),
        }
    }

    fn take(&self) -> Option<&str> {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        self.tokens.get(index).map(String::as_str)
    }
}

/// Shape of one phase.
#[derive(Debug, Clone, Copy)]
pub struct LoadSettings {
    pub connections: usize,
    pub threads: usize,
    pub duration: Duration,
}

/// Figures of one phase.
#[derive(Debug, Clone, Default)]
pub struct PhaseResult {
    /// From the start until the last connection finished its last request.
    pub elapsed: Duration,
    /// Responses by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no complete response (connection failures, timeouts, bad framing).
    pub transport_errors: u64,
    pub latency: Latency,
    /// Whether the phase ended early because every pre-minted ID-JAG was used.
    pub tokens_ran_out: bool,
}

impl PhaseResult {
    /// Responses with this status.
    pub fn count(&self, status: u16) -> u64 {
        self.statuses.get(&status).copied().unwrap_or(0)
    }

    /// Responses with this status per second of the phase.
    pub fn rate(&self, status: u16) -> f64 {
        super::report::per_second(self.count(status), self.elapsed)
    }
}

/// Latency percentiles over every response of a phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latency {
    fn from_micros(mut samples: Vec<u32>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let count = samples.len();
        // Nearest-rank percentile: the smallest sample with at least `per_mille` thousandths
        // of the samples at or below it.
        let at = |per_mille: usize| {
            let rank = (per_mille * count).div_ceil(1000).clamp(1, count);
            Duration::from_micros(u64::from(samples[rank - 1]))
        };
        Self {
            p50: at(500),
            p90: at(900),
            p99: at(990),
            max: at(1000),
        }
    }
}

/// Runs one phase on `settings.threads` dedicated OS threads and returns the merged figures.
pub async fn run_phase(
    target: Arc<Target>,
    pool: Arc<TokenPool>,
    settings: LoadSettings,
) -> Result<PhaseResult, BenchError> {
    tokio::task::spawn_blocking(move || drive(&target, &pool, settings))
        .await
        .map_err(|error| BenchError::Task(format!("load generator: {error}")))?
}

fn drive(
    target: &Arc<Target>,
    pool: &Arc<TokenPool>,
    settings: LoadSettings,
) -> Result<PhaseResult, BenchError> {
    let started = Instant::now();
    let deadline = started + settings.duration;
    let per_thread = split_evenly(settings.connections, settings.threads);
    let outcomes = std::thread::scope(|scope| {
        let handles: Vec<_> = per_thread
            .into_iter()
            .map(|connections| {
                let (target, pool) = (Arc::clone(target), Arc::clone(pool));
                scope.spawn(move || run_thread(target, pool, connections, deadline))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .map_err(|_| BenchError::Task("a load generator thread panicked".into()))?
            })
            .collect::<Result<Vec<_>, BenchError>>()
    })?;

    let mut result = PhaseResult {
        elapsed: started.elapsed(),
        ..PhaseResult::default()
    };
    let mut samples = Vec::new();
    for outcome in outcomes.into_iter().flatten() {
        for (status, count) in outcome.statuses {
            *result.statuses.entry(status).or_default() += count;
        }
        result.transport_errors += outcome.transport_errors;
        result.tokens_ran_out |= outcome.tokens_ran_out;
        samples.extend(outcome.latencies_micros);
    }
    result.latency = Latency::from_micros(samples);
    Ok(result)
}

fn split_evenly(total: usize, parts: usize) -> Vec<usize> {
    (0..parts)
        .map(|part| total / parts + usize::from(part < total % parts))
        .collect()
}

fn run_thread(
    target: Arc<Target>,
    pool: Arc<TokenPool>,
    connections: usize,
    deadline: Instant,
) -> Result<Vec<ConnectionStats>, BenchError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BenchError::io("start a load generator runtime"))?;
    runtime.block_on(async move {
        let tasks: Vec<_> = (0..connections)
            .map(|_| {
                tokio::spawn(drive_connection(
                    Arc::clone(&target),
                    Arc::clone(&pool),
                    deadline,
                ))
            })
            .collect();
        let mut stats = Vec::with_capacity(tasks.len());
        for task in tasks {
            stats.push(
                task.await
                    .map_err(|error| BenchError::Task(format!("load connection: {error}")))?,
            );
        }
        Ok(stats)
    })
}

#[derive(Debug, Default)]
struct ConnectionStats {
    statuses: BTreeMap<u16, u64>,
    transport_errors: u64,
    latencies_micros: Vec<u32>,
    tokens_ran_out: bool,
}

async fn drive_connection(
    target: Arc<Target>,
    pool: Arc<TokenPool>,
    deadline: Instant,
) -> ConnectionStats {
    let mut stats = ConnectionStats::default();
    let mut connection: Option<Connection> = None;
    let mut connects = 0;
    let mut request = Vec::with_capacity(2048);
    while Instant::now() < deadline {
        let Some(assertion) = pool.take() else {
            stats.tokens_ran_out = true;
            break;
        };
        if connection.is_none() {
            if connects == MAX_CONNECTS {
                tracing::warn!(
                    connects,
                    "giving up on a load connection after repeated failures"
                );
                break;
            }
            connects += 1;
            connection = Connection::open(target.addr).await;
            if connection.is_none() {
                stats.transport_errors += 1;
                continue;
            }
        }
        let Some(open) = connection.as_mut() else {
            continue;
        };
        target.write_request(&mut request, assertion);
        let sent_at = Instant::now();
        match tokio::time::timeout(REQUEST_TIMEOUT, open.round_trip(&request)).await {
            Ok(Ok(response)) => {
                let micros = u32::try_from(sent_at.elapsed().as_micros()).unwrap_or(u32::MAX);
                stats.latencies_micros.push(micros);
                *stats.statuses.entry(response.status).or_default() += 1;
                if !response.keep_alive {
                    connection = None;
                }
            }
            Ok(Err(error)) => {
                tracing::debug!(%error, "token request failed");
                stats.transport_errors += 1;
                connection = None;
            }
            Err(_) => {
                tracing::debug!("token request timed out");
                stats.transport_errors += 1;
                connection = None;
            }
        }
    }
    stats
}

/// The parts of a response head the generator needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ResponseHead {
    status: u16,
    content_length: usize,
    keep_alive: bool,
}

/// Failure to read a response.
#[derive(Debug, thiserror::Error)]
enum HttpError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("response larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("malformed response head: {0}")]
    Malformed(&'static str),
}

/// One keep-alive connection with its read buffer.
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
    filled: usize,
}

impl Connection {
    async fn open(addr: SocketAddr) -> Option<Self> {
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%error, %addr, "connecting to the server failed");
                return None;
            }
            Err(_) => {
                tracing::debug!(%addr, "connecting to the server timed out");
                return None;
            }
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        Some(Self {
            stream,
            buffer: vec![0; 4096],
            filled: 0,
        })
    }

    async fn round_trip(&mut self, request: &[u8]) -> Result<ResponseHead, HttpError> {
        self.stream.write_all(request).await?;
        loop {
            if let Some(head_end) = find_head_end(&self.buffer[..self.filled]) {
                let head = parse_head(&self.buffer[..head_end])?;
                let total = head_end + 4 + head.content_length;
                if total > MAX_RESPONSE_BYTES {
                    return Err(HttpError::TooLarge);
                }
                while self.filled < total {
                    self.fill().await?;
                }
                self.buffer.copy_within(total..self.filled, 0);
                self.filled -= total;
                return Ok(head);
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> Result<(), HttpError> {
        if self.filled == self.buffer.len() {
            if self.buffer.len() >= MAX_RESPONSE_BYTES {
                return Err(HttpError::TooLarge);
            }
            self.buffer.resize(self.buffer.len() * 2, 0);
        }
        let read = self.stream.read(&mut self.buffer[self.filled..]).await?;
        if read == 0 {
            return Err(HttpError::Closed);
        }
        self.filled += read;
        Ok(())
    }
}

fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|window| window == b"\r\n\r\n")
}

/// Parses a status line and headers. Only `Content-Length` framing is supported, which is
/// what the server sends with its JSON responses.
fn parse_head(head: &[u8]) -> Result<ResponseHead, HttpError> {
    let text = std::str::from_utf8(head).map_err(|_| HttpError::Malformed("not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed("not an HTTP/1.x status line"));
    }
    let status = parts
        .next()
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or(HttpError::Malformed("invalid status code"))?;

    let mut content_length = None;
    let mut keep_alive = version == "HTTP/1.1";
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(HttpError::Malformed("header line without a colon"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| HttpError::Malformed("invalid Content-Length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::Malformed("Transfer-Encoding is not supported"));
        } else if name.eq_ignore_ascii_case("connection") {
            keep_alive = !value.eq_ignore_ascii_case("close");
        }
    }

    let content_length = match (content_length, status) {
        (Some(length), _) => length,
        (None, 204 | 304) => 0,
        (None, _) => return Err(HttpError::Malformed("no Content-Length")),
    };
    Ok(ResponseHead {
        status,
        content_length,
        keep_alive,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_head_reads_status_and_length() {
        let head =
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 42";
        let parsed = parse_head(head).unwrap();
        assert_eq!(parsed.status, 400);
        assert_eq!(parsed.content_length, 42);
        assert!(parsed.keep_alive);
    }

    #[test]
    fn parse_head_honours_connection_close() {
        let head = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0";
        assert!(!parse_head(head).unwrap().keep_alive);
    }

    #[test]
    fn parse_head_rejects_chunked() {
        let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked";
        assert!(parse_head(head).is_err());
    }

    #[test]
    fn latency_uses_nearest_rank() {
        let latency = Latency::from_micros((1..=100).rev().collect());
        assert_eq!(latency.p50, Duration::from_micros(50));
        assert_eq!(latency.p90, Duration::from_micros(90));
        assert_eq!(latency.p99, Duration::from_micros(99));
        assert_eq!(latency.max, Duration::from_micros(100));
    }

    #[test]
    fn split_evenly_spreads_remainder() {
        assert_eq!(split_evenly(64, 3), vec![22, 21, 21]);
        assert_eq!(split_evenly(2, 2), vec![1, 1]);
    }

    #[tokio::test]
    async fn connection_reads_two_responses_from_one_stream() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0; 1024];
            for body in ["{\"a\":1}", "{}"] {
                let _ = socket.read(&mut request).await.unwrap();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(response.as_bytes()).await.unwrap();
            }
        });
        let mut connection = Connection::open(addr).await.unwrap();
        let first = connection
            .round_trip(b"GET / HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let second = connection
            .round_trip(b"GET / HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        assert_eq!((first.status, first.content_length), (200, 7));
        assert_eq!((second.status, second.content_length), (200, 2));
        assert_eq!(connection.filled, 0);
        server.await.unwrap();
    }
}
