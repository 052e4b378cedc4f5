//! certgate-loadgen: a small HTTP load generator that presents a TLS client certificate.
//!
//! h2load and wrk cannot send client certificates and `oha` resumes TLS sessions, so the
//! benchmark harness (bench/run.sh) uses this tool. Modes:
//! - `keepalive`: N connections, each sends requests back to back (HTTP/1.1, or HTTP/2
//!   with `--http2` and `--streams` concurrent streams per connection);
//! - `handshake`: N concurrent workers, each opens a new TCP + TLS connection per request
//!   with session resumption disabled (every handshake is full) and sends one request
//!   with `Connection: close`;
//! - `--hold N`: opens N mTLS connections (one request each, to prove the proxy accepted
//!   the certificate), keeps them idle for `--duration` seconds, reports how many stayed
//!   open.
//!
//! The client presents one certificate (`--cert`/`--key`) or, with `--client-pool N`, a
//! different certificate per handshake, issued at start-up by a given CA.
//!
//! The result is one JSON line on stdout: `{requests, errors, duration_s, rps, p50_ms,
//! p99_ms, ...}`.

mod hist;
mod raw;
mod tls;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use clap::Parser;
use http::header::{HeaderName, HeaderValue, CONNECTION, HOST};
use http::{HeaderMap, Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::hist::Histogram;

/// How requests are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    /// Persistent connections, requests back to back.
    Keepalive,
    /// A new connection (full TLS handshake) per request.
    Handshake,
}

/// Which HTTP/1.1 client the keep-alive mode uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Client {
    /// The minimal built-in client (bench/loadgen/src/raw.rs): cheapest per request.
    Raw,
    /// hyper's client connection.
    Hyper,
}

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "certgate-loadgen",
    about = "HTTP load generator with TLS client certificates"
)]
struct Args {
    /// Target URL: https://127.0.0.1:8443/path (TLS) or http://127.0.0.1:8080/path.
    url: String,
    /// keepalive or handshake.
    #[arg(long, value_enum, default_value = "keepalive")]
    mode: Mode,
    /// Speak HTTP/2 (ALPN h2 over TLS; prior knowledge over plain http).
    #[arg(long)]
    http2: bool,
    /// Connections (keepalive, hold: opening concurrency) or concurrent workers (handshake).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// HTTP/2 only: concurrent streams per connection.
    #[arg(long, default_value_t = 1)]
    streams: usize,
    /// Measured seconds (hold mode: seconds the connections are held).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring (not counted).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Client certificate chain (PEM, leaf first).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Present N distinct client certificates, one per handshake round-robin, issued at
    /// start-up by --client-ca-cert/--client-ca-key (instead of --cert/--key).
    #[arg(long)]
    client_pool: Option<usize>,
    /// CA certificate (PEM) that issues the --client-pool certificates.
    #[arg(long)]
    client_ca_cert: Option<PathBuf>,
    /// CA private key (PEM) that issues the --client-pool certificates.
    #[arg(long)]
    client_ca_key: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
    /// CA certificate(s) that sign the server certificate (PEM); required for https
    /// unless --no-verify-server.
    #[arg(long)]
    cacert: Option<PathBuf>,
    /// Do not check the server's certificate (saves the client the chain verification,
    /// which otherwise costs it about as much as the server's side of a full handshake).
    #[arg(long)]
    no_verify_server: bool,
    /// TLS server name to send and verify; over TLS also the request's Host (with the port).
    #[arg(long, default_value = "localhost")]
    sni: String,
    /// Extra request header `NAME:VALUE` (repeatable).
    #[arg(long)]
    header: Vec<String>,
    /// Extra request header whose value is a file's content, `NAME:FILE` (repeatable);
    /// one trailing newline is dropped.
    #[arg(long)]
    header_file: Vec<String>,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Hold mode: open this many connections and keep them idle.
    #[arg(long)]
    hold: Option<usize>,
    /// File written when the load starts (after start-up work such as --client-pool), or
    /// in hold mode (with `{"held": n}`) once every connection is open.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Key exchange groups offered.
    #[arg(long, value_enum, default_value = "x25519")]
    kx: tls::Kx,
    /// Per request timeout in seconds (handshake mode: connect + handshake + request).
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Status counted as success; any other status counts as an error.
    #[arg(long, default_value_t = 200)]
    expect_status: u16,
    /// HTTP/1.1 client of the keep-alive mode (HTTP/2 and handshake mode use hyper).
    #[arg(long, value_enum, default_value = "raw")]
    client: Client,
}

/// Where to connect and what to ask.
struct Target {
    host: String,
    port: u16,
    authority: String,
    path: String,
    uri_abs: Uri,
    /// `None` for plain http.
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// The client certificate pool, if any (for its counters).
    pool: Option<Arc<tls::ClientPool>>,
    http2: bool,
    headers: HeaderMap,
    /// The whole HTTP/1.1 keep-alive request, serialised once (raw client).
    raw_request: Vec<u8>,
    timeout: Duration,
    expect_status: u16,
}

/// A ready-to-use HTTP connection.
enum Sender {
    H1(http1::SendRequest<Empty<Bytes>>),
    H2(http2::SendRequest<Empty<Bytes>>),
}

/// One connection: its sender, whether its TLS session was resumed, and a flag set when
/// the connection ends.
struct Conn {
    sender: Sender,
    resumed: bool,
    closed: Arc<AtomicBool>,
}

/// Counters of one task; merged at the end.
#[derive(Default)]
struct Stats {
    hist: Histogram,
    requests: u64,
    errors: u64,
    handshakes: u64,
    resumed: u64,
    error_kinds: BTreeMap<String, u64>,
}

impl Stats {
    fn error(&mut self, e: &anyhow::Error) {
        self.errors += 1;
        let mut kind = format!("{e:#}");
        kind.truncate(160);
        if self.error_kinds.len() < 20 || self.error_kinds.contains_key(&kind) {
            *self.error_kinds.entry(kind).or_default() += 1;
        }
    }

    fn merge(&mut self, o: Stats) {
        self.hist.merge(&o.hist);
        self.requests += o.requests;
        self.errors += o.errors;
        self.handshakes += o.handshakes;
        self.resumed += o.resumed;
        for (k, v) in o.error_kinds {
            *self.error_kinds.entry(k).or_default() += v;
        }
    }
}

/// Parses `NAME:VALUE` headers and `NAME:FILE` header files.
fn parse_headers(args: &Args) -> anyhow::Result<HeaderMap> {
    let mut map = HeaderMap::new();
    let mut add = |name: &str, value: &str| -> anyhow::Result<()> {
        let n = HeaderName::from_bytes(name.trim().as_bytes())
            .with_context(|| format!("bad header name {name:?}"))?;
        let v = HeaderValue::from_str(value.trim_start())
            .with_context(|| format!("bad value for header {name:?}"))?;
        map.append(n, v);
        Ok(())
    };
    for h in &args.header {
        let (n, v) = h
            .split_once(':')
            .ok_or_else(|| anyhow!("--header wants NAME:VALUE, got {h:?}"))?;
        add(n, v)?;
    }
    for h in &args.header_file {
        let (n, f) = h
            .split_once(':')
            .ok_or_else(|| anyhow!("--header-file wants NAME:FILE, got {h:?}"))?;
        let text = std::fs::read_to_string(f).with_context(|| format!("cannot read {f}"))?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        add(n, text)?;
    }
    Ok(map)
}

fn client_auth(args: &Args) -> anyhow::Result<tls::ClientAuth<'_>> {
    match (
        args.cert.as_deref(),
        args.key.as_deref(),
        args.client_pool,
        args.client_ca_cert.as_deref(),
        args.client_ca_key.as_deref(),
    ) {
        (Some(cert), Some(key), None, _, _) => Ok(tls::ClientAuth::Single { cert, key }),
        (None, None, Some(n), Some(ca), Some(ca_key)) => Ok(tls::ClientAuth::Pool(Arc::new(
            tls::ClientPool::generate(n, ca, ca_key)?,
        ))),
        (None, None, None, _, _) => Ok(tls::ClientAuth::None),
        _ => bail!(
            "give --cert and --key, or --client-pool with --client-ca-cert and --client-ca-key"
        ),
    }
}

fn build_target(args: &Args, resumption: bool) -> anyhow::Result<Target> {
    let uri: Uri = args.url.parse().context("bad URL")?;
    let tls_on = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => bail!("URL must start with http:// or https://"),
    };
    let host = uri.host().ok_or_else(|| anyhow!("URL has no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls_on { 443 } else { 80 });
    // Over TLS the Host names the server the handshake named (SNI), as a browser's does:
    // certgate answers 421 to a Host other than the SNI (SPEC §16 sni_host_check).
    let authority = if tls_on {
        format!("{}:{port}", args.sni)
    } else {
        uri.authority()
            .map(|a| a.as_str().to_string())
            .ok_or_else(|| anyhow!("URL has no authority"))?
    };
    let path = uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.as_str().to_string());
    let mut pool = None;
    let tls = if tls_on {
        let auth = client_auth(args)?;
        if let tls::ClientAuth::Pool(p) = &auth {
            pool = Some(p.clone());
        }
        let cfg = tls::client_config(&tls::TlsOptions {
            auth,
            cacert: args.cacert.as_deref(),
            no_verify_server: args.no_verify_server,
            http2: args.http2,
            resumption,
            kx: args.kx,
        })?;
        let name = ServerName::try_from(args.sni.clone()).context("bad --sni")?;
        Some((TlsConnector::from(cfg), name))
    } else {
        None
    };
    let headers = parse_headers(args)?;
    let mut raw_request = format!("GET {path} HTTP/1.1\r\nhost: {authority}\r\n").into_bytes();
    for (k, v) in &headers {
        raw_request.extend_from_slice(k.as_str().as_bytes());
        raw_request.extend_from_slice(b": ");
        raw_request.extend_from_slice(v.as_bytes());
        raw_request.extend_from_slice(b"\r\n");
    }
    raw_request.extend_from_slice(b"\r\n");
    // HTTP/2's :authority is the Host of HTTP/1.1: the SNI's name over TLS.
    let uri_abs = if tls_on {
        format!("https://{authority}{path}")
            .parse()
            .context("URL with the --sni name")?
    } else {
        uri
    };
    Ok(Target {
        host,
        port,
        authority,
        path,
        uri_abs,
        tls,
        pool,
        http2: args.http2,
        headers,
        raw_request,
        timeout: Duration::from_secs_f64(args.timeout),
        expect_status: args.expect_status,
    })
}

/// Runs hyper's client handshake over any stream and spawns the connection driver.
async fn http_handshake<I>(io: I, http2: bool) -> anyhow::Result<(Sender, Arc<AtomicBool>)>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let closed = Arc::new(AtomicBool::new(false));
    let flag = closed.clone();
    let io = TokioIo::new(io);
    let sender = if http2 {
        let (s, conn) = http2::handshake(TokioExecutor::new(), io)
            .await
            .context("HTTP/2 handshake")?;
        tokio::spawn(async move {
            let _ = conn.await;
            flag.store(true, Ordering::Relaxed);
        });
        Sender::H2(s)
    } else {
        let (s, conn) = http1::handshake(io).await.context("HTTP/1 handshake")?;
        tokio::spawn(async move {
            let _ = conn.await;
            flag.store(true, Ordering::Relaxed);
        });
        Sender::H1(s)
    };
    Ok((sender, closed))
}

async fn connect_tcp(t: &Target) -> anyhow::Result<TcpStream> {
    let tcp = TcpStream::connect((t.host.as_str(), t.port))
        .await
        .context("connect")?;
    tcp.set_nodelay(true).context("TCP_NODELAY")?;
    Ok(tcp)
}

/// TCP connect and TLS handshake; also says whether the session was resumed.
async fn connect_tls(
    t: &Target,
    connector: &TlsConnector,
    name: &ServerName<'static>,
) -> anyhow::Result<(tokio_rustls::client::TlsStream<TcpStream>, bool)> {
    let tcp = connect_tcp(t).await?;
    let stream = connector
        .connect(name.clone(), tcp)
        .await
        .context("TLS handshake")?;
    let (_, conn) = stream.get_ref();
    let resumed = tls::was_resumed(conn);
    if t.http2 && !tls::negotiated_h2(conn) {
        bail!("the server did not negotiate h2 (ALPN)");
    }
    Ok((stream, resumed))
}

/// Opens a TCP (and TLS) connection and a hyper HTTP connection over it.
async fn connect(t: &Target) -> anyhow::Result<Conn> {
    match &t.tls {
        None => {
            let tcp = connect_tcp(t).await?;
            let (sender, closed) = http_handshake(tcp, t.http2).await?;
            Ok(Conn {
                sender,
                resumed: false,
                closed,
            })
        }
        Some((connector, name)) => {
            let (stream, resumed) = connect_tls(t, connector, name).await?;
            let (sender, closed) = http_handshake(stream, t.http2).await?;
            Ok(Conn {
                sender,
                resumed,
                closed,
            })
        }
    }
}

/// Requests back to back on one raw HTTP/1.1 connection until `end`, an error or a close.
async fn raw_loop<S>(t: &Target, io: S, measure: Instant, end: Instant, stats: &mut Stats)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut conn = raw::RawConn::new(io);
    while Instant::now() < end {
        let started = Instant::now();
        let res = tokio::time::timeout(t.timeout, conn.request(&t.raw_request))
            .await
            .unwrap_or_else(|_| Err(anyhow!("timeout")));
        let done = Instant::now();
        let counted = started >= measure && done <= end;
        match res {
            Ok(r) if r.status == t.expect_status => {
                if counted {
                    stats.requests += 1;
                    stats.hist.record(elapsed_us(started));
                }
                if r.close {
                    return;
                }
            }
            Ok(r) => {
                if counted {
                    stats.error(&anyhow!("status {}", r.status));
                }
                if r.close {
                    return;
                }
            }
            Err(e) => {
                if counted {
                    stats.error(&e);
                }
                return;
            }
        }
    }
}

/// A keep-alive worker on the raw HTTP/1.1 client: one connection, reconnecting after
/// errors.
async fn raw_worker(t: Arc<Target>, measure: Instant, end: Instant) -> Stats {
    let mut stats = Stats::default();
    while Instant::now() < end {
        let opened = tokio::time::timeout(t.timeout, async {
            match &t.tls {
                None => Ok((None, Some(connect_tcp(&t).await?), false)),
                Some((connector, name)) => {
                    let (s, resumed) = connect_tls(&t, connector, name).await?;
                    Ok::<_, anyhow::Error>((Some(s), None, resumed))
                }
            }
        })
        .await
        .unwrap_or_else(|_| Err(anyhow!("connect timeout")));
        match opened {
            Ok((tls_stream, tcp, resumed)) => {
                stats.handshakes += 1;
                stats.resumed += u64::from(resumed);
                if let Some(s) = tls_stream {
                    raw_loop(&t, s, measure, end, &mut stats).await;
                } else if let Some(s) = tcp {
                    raw_loop(&t, s, measure, end, &mut stats).await;
                }
            }
            Err(e) => {
                if Instant::now() >= measure {
                    stats.error(&e);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    stats
}

fn build_request(t: &Target, close: bool) -> anyhow::Result<Request<Empty<Bytes>>> {
    let mut req = if t.http2 {
        Request::get(t.uri_abs.clone()).body(Empty::new())?
    } else {
        let mut r = Request::get(t.path.as_str()).body(Empty::new())?;
        r.headers_mut()
            .insert(HOST, HeaderValue::from_str(&t.authority)?);
        if close {
            r.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        r
    };
    for (k, v) in &t.headers {
        req.headers_mut().append(k, v.clone());
    }
    Ok(req)
}

/// Sends one request and reads the whole response body.
async fn send(sender: &mut Sender, req: Request<Empty<Bytes>>, expect: u16) -> anyhow::Result<()> {
    let resp = match sender {
        Sender::H1(s) => {
            s.ready().await.context("connection closed")?;
            s.send_request(req).await.context("request")?
        }
        Sender::H2(s) => {
            s.ready().await.context("connection closed")?;
            s.send_request(req).await.context("request")?
        }
    };
    let status = resp.status().as_u16();
    resp.into_body().collect().await.context("response body")?;
    if status != expect {
        bail!("status {status}");
    }
    Ok(())
}

fn elapsed_us(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// One keep-alive stream loop over a shared sender until `end` or an error.
async fn stream_loop(
    t: &Target,
    mut sender: Sender,
    measure: Instant,
    end: Instant,
    stats: &mut Stats,
) -> bool {
    while Instant::now() < end {
        let started = Instant::now();
        let res = match build_request(t, false) {
            Ok(req) => tokio::time::timeout(t.timeout, send(&mut sender, req, t.expect_status))
                .await
                .unwrap_or_else(|_| Err(anyhow!("timeout"))),
            Err(e) => Err(e),
        };
        let done = Instant::now();
        let counted = started >= measure && done <= end;
        match res {
            Ok(()) => {
                if counted {
                    stats.requests += 1;
                    stats.hist.record(elapsed_us(started));
                }
            }
            Err(e) => {
                if counted {
                    stats.error(&e);
                }
                return false;
            }
        }
    }
    true
}

/// A keep-alive worker: one connection (reconnecting after errors) with `streams`
/// concurrent request loops.
async fn keepalive_worker(t: Arc<Target>, streams: usize, measure: Instant, end: Instant) -> Stats {
    let mut stats = Stats::default();
    while Instant::now() < end {
        let conn = match tokio::time::timeout(t.timeout, connect(&t)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                if Instant::now() >= measure {
                    stats.error(&e);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(_) => {
                if Instant::now() >= measure {
                    stats.error(&anyhow!("connect timeout"));
                }
                continue;
            }
        };
        stats.handshakes += 1;
        stats.resumed += u64::from(conn.resumed);
        match conn.sender {
            Sender::H2(s) if streams > 1 => {
                let futs = (0..streams).map(|_| {
                    let t = t.clone();
                    let s = s.clone();
                    async move {
                        let mut st = Stats::default();
                        stream_loop(&t, Sender::H2(s), measure, end, &mut st).await;
                        st
                    }
                });
                for st in futures_util::future::join_all(futs).await {
                    stats.merge(st);
                }
            }
            sender => {
                stream_loop(&t, sender, measure, end, &mut stats).await;
            }
        }
    }
    stats
}

/// A handshake worker: connect, full handshake, one request with `Connection: close`.
async fn handshake_worker(t: Arc<Target>, measure: Instant, end: Instant) -> Stats {
    let mut stats = Stats::default();
    while Instant::now() < end {
        let started = Instant::now();
        let res = tokio::time::timeout(t.timeout, async {
            let mut conn = connect(&t).await?;
            let req = build_request(&t, true)?;
            send(&mut conn.sender, req, t.expect_status).await?;
            Ok::<bool, anyhow::Error>(conn.resumed)
        })
        .await
        .unwrap_or_else(|_| Err(anyhow!("timeout")));
        let done = Instant::now();
        if started < measure || done > end {
            continue;
        }
        match res {
            Ok(resumed) => {
                stats.requests += 1;
                stats.handshakes += 1;
                stats.resumed += u64::from(resumed);
                stats.hist.record(elapsed_us(started));
            }
            Err(e) => {
                stats.error(&e);
                // A refused connection fails fast; do not spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    stats
}

/// Process CPU seconds (user + system) from /proc/self/stat; `None` off Linux.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux configuration this harness runs on.
    Some((utime + stime) / 100.0)
}

fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0 * 1000.0).round() / 1000.0
}

async fn run_load(args: &Args) -> anyhow::Result<serde_json::Value> {
    if args.connections == 0 || args.streams == 0 {
        bail!("--connections and --streams must be at least 1");
    }
    if !(args.duration > 0.0 && args.warmup >= 0.0) {
        bail!("--duration must be positive and --warmup not negative");
    }
    let resumption = args.mode == Mode::Keepalive;
    let t = Arc::new(build_target(args, resumption)?);
    if let Some(f) = &args.ready_file {
        std::fs::write(f, "{}").with_context(|| format!("cannot write {}", f.display()))?;
    }
    let start = Instant::now();
    let measure = start + Duration::from_secs_f64(args.warmup);
    let end = measure + Duration::from_secs_f64(args.duration);

    let cpu_probe = tokio::spawn(async move {
        tokio::time::sleep_until(measure).await;
        let a = cpu_seconds();
        tokio::time::sleep_until(end).await;
        let b = cpu_seconds();
        a.zip(b)
            .map(|(a, b)| (b - a) / (end - measure).as_secs_f64())
    });

    let mut handles = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let t = t.clone();
        handles.push(match args.mode {
            Mode::Keepalive if !args.http2 && args.client == Client::Raw => {
                tokio::spawn(raw_worker(t, measure, end))
            }
            Mode::Keepalive => tokio::spawn(keepalive_worker(t, args.streams, measure, end)),
            Mode::Handshake => tokio::spawn(handshake_worker(t, measure, end)),
        });
    }
    let grace = end + t.timeout + Duration::from_secs(2);
    let mut total = Stats::default();
    for h in handles {
        let abort = h.abort_handle();
        match tokio::time::timeout_at(grace, h).await {
            Ok(Ok(s)) => total.merge(s),
            Ok(Err(e)) => total.error(&anyhow!("worker failed: {e}")),
            Err(_) => {
                abort.abort();
                total.error(&anyhow!("worker did not stop in time"));
            }
        }
    }
    let client_cpu = cpu_probe.await.ok().flatten();
    let d = args.duration;
    Ok(json!({
        "requests": total.requests,
        "errors": total.errors,
        "duration_s": d,
        "rps": (total.requests as f64 / d * 10.0).round() / 10.0,
        "p50_ms": ms(total.hist.quantile_us(0.50)),
        "p99_ms": ms(total.hist.quantile_us(0.99)),
        "p90_ms": ms(total.hist.quantile_us(0.90)),
        "max_ms": ms(total.hist.max_us()),
        "mean_ms": (total.hist.mean_us() / 10.0).round() / 100.0,
        "mode": match args.mode { Mode::Keepalive => "keepalive", Mode::Handshake => "handshake" },
        "http2": args.http2,
        "connections": args.connections,
        "streams": if args.http2 { args.streams } else { 1 },
        "client": if args.mode == Mode::Keepalive && !args.http2 && args.client == Client::Raw { "raw" } else { "hyper" },
        "handshakes": total.handshakes,
        "resumed": total.resumed,
        "client_cpu": client_cpu.map(|c| (c * 1000.0).round() / 1000.0),
        "client_pool": t.pool.as_ref().map(|p| p.len()),
        "client_certs_presented": t.pool.as_ref().map(|p| p.used()),
        "error_kinds": total.error_kinds,
    }))
}

async fn run_hold(args: &Args, n: usize) -> anyhow::Result<serde_json::Value> {
    let t = Arc::new(build_target(args, false)?);
    let sem = Arc::new(Semaphore::new(args.connections.max(1)));
    let started = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for _ in 0..n {
        let t = t.clone();
        let sem = sem.clone();
        handles.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.map_err(|e| anyhow!("{e}"))?;
            tokio::time::timeout(t.timeout, async {
                let mut conn = connect(&t).await?;
                let req = build_request(&t, false)?;
                send(&mut conn.sender, req, t.expect_status).await?;
                Ok::<Conn, anyhow::Error>(conn)
            })
            .await
            .unwrap_or_else(|_| Err(anyhow!("timeout")))
        }));
    }
    let mut conns = Vec::with_capacity(n);
    let mut stats = Stats::default();
    for h in handles {
        match h.await {
            Ok(Ok(c)) => conns.push(c),
            Ok(Err(e)) => stats.error(&e),
            Err(e) => stats.error(&anyhow!("task failed: {e}")),
        }
    }
    let open_s = started.elapsed().as_secs_f64();
    let held = conns.len();
    if let Some(f) = &args.ready_file {
        std::fs::write(
            f,
            json!({ "held": held, "errors": stats.errors }).to_string(),
        )
        .with_context(|| format!("cannot write {}", f.display()))?;
    }
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    let alive = conns
        .iter()
        .filter(|c| !c.closed.load(Ordering::Relaxed))
        .count();
    drop(conns);
    Ok(json!({
        "mode": "hold",
        "requested": n,
        "held": held,
        "alive_at_end": alive,
        "errors": stats.errors,
        "open_s": (open_s * 100.0).round() / 100.0,
        "hold_s": args.duration,
        "error_kinds": stats.error_kinds,
    }))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("certgate-loadgen: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let res = rt.block_on(async {
        match args.hold {
            Some(n) => run_hold(&args, n).await,
            None => run_load(&args).await,
        }
    });
    // Do not wait for lingering connection tasks.
    rt.shutdown_timeout(Duration::from_millis(200));
    match res {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("certgate-loadgen: {e:#}");
            ExitCode::from(2)
        }
    }
}
