//! The accept loop and per-connection serving: connection limit, TLS accept and the
//! post-handshake judgement, hyper's HTTP/1.1 and HTTP/2 connections (chosen by ALPN;
//! hyper-util's auto detection on plain listeners), timeouts, the per-request pipeline
//! (route → certificate → evaluate → proxy → log), mode-generation closes and graceful
//! shutdown.
//!
//! Memory per idle connection is a benchmarked target (docs/BENCHMARKS.md), so a
//! connection's state is kept small: the handshake future and the TLS stream are boxed
//! (the first is freed after the handshake, the second is not copied into every future
//! that moves it), the hyper connection is boxed at its exact size, and no connection has
//! a timer or signal future of its own: one supervisor per listener (see [`Registry`])
//! handles the idle and header-read timeouts, mode changes and shutdown and asks single
//! connections to close through their [`CloseSignal`]. (hyper's own header-read timer
//! would arm and clear a timer per request.)

use std::collections::HashMap;
use std::fmt::Display;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use certgate_store::model::{CertAuthMode, ValidationFailure};
use futures_util::task::AtomicWaker;
use http::{header, HeaderValue, Request, Response, StatusCode, Version};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::evaluate::{evaluate, Decision, DenialReason, Presented};
use crate::header_mode::{take_header_cert, HeaderCert};
use crate::identity::{CertSource, ClientIdentity, IdentityVerdict};
use crate::response::{error_response, BoxError, ProxyBody};
use crate::runtime::Runtime;
use crate::settings::ProxySettings;
use crate::snapshot::Snapshot;
use crate::telemetry;
use crate::tls::{negotiated_h2, peer_chain, TlsFactory};
use crate::upstream::{Downstream, UpstreamClient};

/// How often the supervisor looks for connections past the idle or header-read timeout
/// (their resolution).
const TIMEOUT_SWEEP: Duration = Duration::from_secs(1);

/// State shared by every connection of one listener.
struct Shared {
    settings: ProxySettings,
    runtime: Arc<Runtime>,
    upstream: UpstreamClient,
    /// Detects HTTP/1.1 or HTTP/2 from the first bytes (plain listeners).
    http_auto: auto::Builder<TokioExecutor>,
    /// ALPN chose `http/1.1` (or nothing).
    http1: http1::Builder,
    /// ALPN chose `h2`.
    http2: http2::Builder<TokioExecutor>,
    started: Instant,
}

/// Runs the proxy listener until `shutdown` resolves, then drains in-flight requests (up
/// to `shutdown_grace`) and returns.
///
/// Fails at once when `settings.ssl` is on and the server chain or key is unusable.
pub async fn serve(
    listener: tokio::net::TcpListener,
    settings: ProxySettings,
    runtime: Arc<Runtime>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let tls = if settings.ssl {
        Some(TlsFactory::new(&settings, runtime.live())?)
    } else {
        None
    };
    let upstream = UpstreamClient::new(&settings)?;
    let http_auto = if settings.http2 {
        auto_builder(&settings)
    } else {
        auto_builder(&settings).http1_only()
    };
    let http1 = http1_builder(&settings);
    let http2 = http2_builder(&settings);
    let shared = Arc::new(Shared {
        upstream,
        http_auto,
        http1,
        http2,
        runtime,
        started: Instant::now(),
        settings,
    });
    let limit = Arc::new(Semaphore::new(shared.settings.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let registry = Arc::new(Registry::default());
    let mut tasks = JoinSet::new();
    tasks.spawn(supervise(
        registry.clone(),
        shared.runtime.clone(),
        stop_rx,
        Timeouts {
            idle: shared.settings.idle_timeout,
            header_read: shared.settings.header_read_timeout,
        },
    ));
    let mut tls_config: Option<(u64, TlsAcceptor)> = None;
    tokio::pin!(shutdown);

    loop {
        // Take a slot before accepting, so connections over the limit wait in the
        // kernel's accept queue instead of being accepted and starved.
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        while tasks.try_join_next().is_some() {}
        let snapshot = shared.runtime.snapshot();
        let acceptor = match &tls {
            None => None,
            Some(factory) => match &tls_config {
                Some((generation, acceptor)) if *generation == snapshot.tls_generation => {
                    Some(acceptor.clone())
                }
                _ => match factory.build(&snapshot) {
                    Ok(config) => {
                        let acceptor = TlsAcceptor::from(config);
                        tls_config = Some((snapshot.tls_generation, acceptor.clone()));
                        Some(acceptor)
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot build the TLS configuration; connection dropped");
                        continue;
                    }
                },
            },
        };
        let shared = shared.clone();
        let registry = registry.clone();
        tasks.spawn(async move {
            run_connection(
                shared,
                registry,
                stream,
                peer,
                acceptor,
                (snapshot.mode_generation, snapshot.mode),
                permit,
            )
            .await;
        });
    }

    drop(listener);
    let _ = stop_tx.send(true);
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(shared.settings.shutdown_grace, drain)
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; closing the remaining connections");
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    Ok(())
}

/// Protocol limits against greedy peers, set explicitly rather than inherited from
/// hyper's and h2's defaults (the values are theirs; docs/SECURITY.md "Limits" compares
/// them with nginx and Envoy).
mod limits {
    /// HTTP/1.1: header fields per request head; more gets 431.
    pub(super) const H1_MAX_HEADERS: usize = 100;
    /// HTTP/2: streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS);
    /// a stream over it is refused with RST_STREAM(REFUSED_STREAM).
    pub(super) const H2_MAX_CONCURRENT_STREAMS: u32 = 200;
    /// HTTP/2: streams the client reset before they were accepted; past it the
    /// connection ends with GOAWAY(ENHANCE_YOUR_CALM) (the "rapid reset" attack,
    /// CVE-2023-44487).
    pub(super) const H2_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
    /// HTTP/2: streams the server reset for protocol errors of the client; past it
    /// GOAWAY(ENHANCE_YOUR_CALM).
    pub(super) const H2_MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;
    /// HTTP/2: flow-control window per stream and per connection (bytes the client may
    /// send before the node reads them).
    pub(super) const H2_STREAM_WINDOW: u32 = 1024 * 1024;
    /// See [`H2_STREAM_WINDOW`].
    pub(super) const H2_CONNECTION_WINDOW: u32 = 1024 * 1024;
    /// HTTP/2: largest frame payload the node accepts (SETTINGS_MAX_FRAME_SIZE).
    pub(super) const H2_MAX_FRAME_SIZE: u32 = 16 * 1024;
    /// HTTP/2: response bytes buffered per stream for a client that does not read.
    pub(super) const H2_MAX_SEND_BUF_SIZE: usize = 400 * 1024;
}

/// Sets the HTTP/2 limits on an `http2::Builder` or on hyper-util's `Http2Builder`
/// (two types with the same methods).
macro_rules! h2_limits {
    ($builder:expr, $settings:expr) => {
        $builder
            .max_header_list_size(max_head($settings).1)
            .max_concurrent_streams(limits::H2_MAX_CONCURRENT_STREAMS)
            .max_pending_accept_reset_streams(limits::H2_MAX_PENDING_ACCEPT_RESET_STREAMS)
            .max_local_error_reset_streams(limits::H2_MAX_LOCAL_ERROR_RESET_STREAMS)
            .initial_stream_window_size(limits::H2_STREAM_WINDOW)
            .initial_connection_window_size(limits::H2_CONNECTION_WINDOW)
            .max_frame_size(limits::H2_MAX_FRAME_SIZE)
            .max_send_buf_size(limits::H2_MAX_SEND_BUF_SIZE)
    };
}

/// The largest request head: hyper refuses an HTTP/1.1 buffer under 8 KiB; past it a
/// request head gets 431 (HTTP/2: the header list, SETTINGS_MAX_HEADER_LIST_SIZE).
fn max_head(settings: &ProxySettings) -> (usize, u32) {
    let h1 = settings.max_header_bytes.max(8192);
    (
        h1,
        u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX),
    )
}

/// hyper's HTTP/1.1 settings.
fn http1_builder(settings: &ProxySettings) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        // Enforced by the supervisor instead (see the module docs).
        .header_read_timeout(None)
        // hyper refuses a buffer under 8 KiB; past it a request head gets 431.
        .max_buf_size(max_head(settings).0)
        // The exact limit (the buffer's is approximate: one read may overshoot it).
        .max_header_size(settings.max_header_bytes)
        .max_headers(limits::H1_MAX_HEADERS);
    builder
}

/// hyper's HTTP/2 settings.
fn http2_builder(settings: &ProxySettings) -> http2::Builder<TokioExecutor> {
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder.timer(TokioTimer::new());
    h2_limits!(builder, settings);
    builder
}

/// The same settings for protocol detection on plain listeners.
fn auto_builder(settings: &ProxySettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(None)
        .max_buf_size(max_head(settings).0)
        .max_headers(limits::H1_MAX_HEADERS);
    let mut h2 = builder.http2();
    h2.timer(TokioTimer::new());
    h2_limits!(h2, settings);
    builder
}

/// One connection: TLS (if any), the post-handshake judgement, then HTTP.
async fn run_connection(
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    accepted: (u64, CertAuthMode),
    _permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let Some(acceptor) = acceptor else {
        serve_http(
            &shared,
            &registry,
            Proto::Auto,
            stream,
            peer,
            (None, None),
            accepted,
        )
        .await;
        return;
    };
    // Boxed: the handshake's state is freed once it is done instead of sizing the
    // connection's task for its whole life.
    // The stream is boxed too, so the futures that move it stay small. (No named binding
    // for the handshake's result: it would keep its bytes in this task until the end.)
    let mut tls = match Box::pin(tokio::time::timeout(
        shared.settings.header_read_timeout,
        acceptor.accept(stream),
    ))
    .await
    {
        Ok(Ok(tls)) => Box::new(tls),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let (chain, h2, sni) = {
        let (_, conn) = tls.get_ref();
        // Lower-cased once here, so the SPEC §16 Host check is one comparison per request.
        let sni = conn
            .server_name()
            .map(|n| n.to_ascii_lowercase().into_boxed_str());
        (peer_chain(conn), negotiated_h2(conn), sni)
    };
    // Judge right after every handshake: a resumed session restores the peer chain
    // without the verifier being called.
    let snapshot = shared.runtime.snapshot();
    // A presented chain is judged even if the mode moved during the handshake: the
    // mode may come back while this connection lives.
    let identity =
        chain.map(|chain| ClientIdentity::shared(&chain, CertSource::Mtls, &snapshot.trust));
    if let Some(id) = &identity {
        if let IdentityVerdict::Denied(reason) = id.verdict {
            if snapshot.mode == CertAuthMode::Mtls
                && snapshot.validation_failure == ValidationFailure::Handshake
            {
                telemetry::record_denial(reason, "");
                tracing::info!(%peer, reason = reason.as_str(), "client certificate refused after the handshake; closing");
                let grace = shared.settings.header_read_timeout;
                let _ = tokio::time::timeout(grace, tls.shutdown()).await;
                return;
            }
        }
    }
    let proto = if h2 { Proto::Http2 } else { Proto::Http1 };
    serve_http(
        &shared,
        &registry,
        proto,
        tls,
        peer,
        (identity, sni),
        accepted,
    )
    .await;
}

/// The HTTP protocol of a connection.
#[derive(Debug, Clone, Copy)]
enum Proto {
    /// Plain listener: HTTP/1.1 or HTTP/2 (prior knowledge), detected from the first bytes.
    Auto,
    /// ALPN chose `http/1.1`, or nothing.
    Http1,
    /// ALPN chose `h2`.
    Http2,
}

/// Per-connection state the request handler sees.
struct ConnCtx {
    shared: Arc<Shared>,
    peer: SocketAddr,
    /// The peer's IP as an `X-Forwarded-For` value.
    peer_header: HeaderValue,
    listener_https: bool,
    /// mtls: the connection's identity, re-judged when the trust store moves.
    identity: Mutex<Option<Arc<ClientIdentity>>>,
    /// The TLS SNI, lower-cased; `None` on plain listeners and for clients without SNI.
    sni: Option<Box<str>>,
    /// The mode generation the connection was accepted under.
    mode_generation: u64,
    /// The mode the connection was accepted under.
    accepted_mode: CertAuthMode,
    /// Requests started on this connection.
    served: AtomicU64,
    /// Requests whose response is not completely handed to hyper yet.
    in_flight: AtomicU32,
    /// Milliseconds since listener start of the last request start or end.
    last_active_ms: AtomicU64,
    /// The connection speaks HTTP/2.
    h2: AtomicBool,
    /// Asks the connection to shut down gracefully.
    close: CloseSignal,
}

/// How a connection is asked to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
enum Close {
    /// Finish the requests in flight (HTTP/2: GOAWAY; HTTP/1.1: close when idle).
    Graceful = 1,
    /// Drop the connection now (a request head that did not arrive in time).
    Abort = 2,
}

/// A one-way "close" flag with the waker of the connection's task: polling it is an
/// atomic load and a waker comparison, cheap enough for every wake-up of a busy
/// connection. A stronger request overrides a weaker one.
#[derive(Default)]
struct CloseSignal {
    requested: AtomicU8,
    waker: AtomicWaker,
}

impl CloseSignal {
    fn request(&self, how: Close) {
        self.requested.fetch_max(how as u8, Ordering::AcqRel);
        self.waker.wake();
    }

    fn load(&self) -> Option<Close> {
        match self.requested.load(Ordering::Acquire) {
            0 => None,
            1 => Some(Close::Graceful),
            _ => Some(Close::Abort),
        }
    }

    fn poll_requested(&self, cx: &mut Context<'_>) -> Poll<Close> {
        if let Some(how) = self.load() {
            return Poll::Ready(how);
        }
        self.waker.register(cx.waker());
        // A request between the load and the registration woke the old waker.
        match self.load() {
            Some(how) => Poll::Ready(how),
            None => Poll::Pending,
        }
    }
}

/// The open connections of one listener, for the signals that reach many of them at
/// once: server shutdown, a mode change (HTTP/2 connections move to a new connection)
/// and the idle timeout. One supervisor task and one timer per listener serve them all,
/// so an idle connection costs no wake-ups and no timer entry of its own.
#[derive(Default)]
struct Registry {
    inner: Mutex<RegistryInner>,
}

#[derive(Default)]
struct RegistryInner {
    next_id: u64,
    live: HashMap<u64, Arc<ConnCtx>>,
    /// Shutdown began: connections registering from now on close at once.
    stopping: bool,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, RegistryInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a connection until the returned guard drops.
    fn register(self: &Arc<Self>, ctx: &Arc<ConnCtx>) -> Registration {
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.live.insert(id, ctx.clone());
        if inner.stopping {
            ctx.close.request(Close::Graceful);
        }
        Registration {
            registry: self.clone(),
            id,
        }
    }

    /// Asks every connection for which `how` returns a way to close to close so.
    fn close_where(&self, how: impl Fn(&ConnCtx) -> Option<Close>) {
        for ctx in self.lock().live.values() {
            if let Some(how) = how(ctx) {
                ctx.close.request(how);
            }
        }
    }

    /// Shutdown: every connection, present and future, closes gracefully.
    fn stop_all(&self) {
        let mut inner = self.lock();
        inner.stopping = true;
        for ctx in inner.live.values() {
            ctx.close.request(Close::Graceful);
        }
    }
}

/// A connection's place in its [`Registry`]; removes it on drop.
struct Registration {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().live.remove(&self.id);
    }
}

/// The timeouts the supervisor enforces.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    /// No request activity on a connection for this long closes it.
    idle: Duration,
    /// An HTTP/1.1 connection without a request in flight must deliver a complete
    /// request head this long after its last activity (covers slow heads and, as hyper's
    /// own timer did, keep-alive connections waiting for their next request).
    header_read: Duration,
}

impl Timeouts {
    /// How `c` must close, if one of the timeouts ran out.
    fn expired(&self, c: &ConnCtx) -> Option<Close> {
        let idle = c.idle_for();
        if idle >= self.header_read
            && !c.h2.load(Ordering::Relaxed)
            && c.in_flight.load(Ordering::Relaxed) == 0
        {
            // Waiting for (the rest of) a request head: nothing to finish.
            Some(Close::Abort)
        } else if idle >= self.idle {
            Some(Close::Graceful)
        } else {
            None
        }
    }
}

/// The listener's supervisor: shutdown, mode changes and the timeout sweep.
async fn supervise(
    registry: Arc<Registry>,
    runtime: Arc<Runtime>,
    mut stop: watch::Receiver<bool>,
    timeouts: Timeouts,
) {
    let mut modes = runtime.mode_changes();
    let mut watch_modes = true;
    let mut sweep = tokio::time::interval(TIMEOUT_SWEEP);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    registry.stop_all();
                    return;
                }
            }
            r = modes.changed(), if watch_modes => {
                if r.is_err() {
                    watch_modes = false;
                    continue;
                }
                // SPEC §2. HTTP/2: GOAWAY to every old connection; the streams the
                // client sent before it are still read and judged per request, later
                // ones are refused. HTTP/1.1 once it has served a request: closed when
                // idle, or after its current response. (A request racing that close
                // is one the rule may leave unanswered.) An HTTP/1.1 connection that
                // has served nothing keeps its one request.
                let generation = *modes.borrow_and_update();
                registry.close_where(|c| {
                    (c.mode_generation != generation
                        && (c.h2.load(Ordering::Relaxed)
                            || c.served.load(Ordering::Relaxed) > 0))
                        .then_some(Close::Graceful)
                });
            }
            _ = sweep.tick() => {
                registry.close_where(|c| timeouts.expired(c));
            }
        }
    }
}

impl ConnCtx {
    fn touch(&self) {
        let ms = u64::try_from(self.shared.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_active_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let now = self.shared.started.elapsed();
        now.saturating_sub(Duration::from_millis(
            self.last_active_ms.load(Ordering::Relaxed),
        ))
    }

    /// The connection's identity, re-judged first if its verdict is stale.
    fn current_identity(&self, snapshot: &Snapshot) -> Option<Arc<ClientIdentity>> {
        let mut slot = self.identity.lock().unwrap_or_else(|p| p.into_inner());
        let id = slot.as_ref()?;
        if id.is_stale(&snapshot.trust) {
            let fresh = ClientIdentity::shared(&id.chain, id.source, &snapshot.trust);
            *slot = Some(fresh.clone());
            return Some(fresh);
        }
        Some(id.clone())
    }
}

async fn serve_http<I>(
    shared: &Arc<Shared>,
    registry: &Arc<Registry>,
    proto: Proto,
    io: I,
    peer: SocketAddr,
    (identity, sni): (Option<Arc<ClientIdentity>>, Option<Box<str>>),
    (mode_generation, accepted_mode): (u64, CertAuthMode),
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ctx = Arc::new(ConnCtx {
        shared: shared.clone(),
        peer,
        peer_header: HeaderValue::from_str(&peer.ip().to_canonical().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
        listener_https: shared.settings.ssl,
        identity: Mutex::new(identity),
        sni,
        mode_generation,
        accepted_mode,
        served: AtomicU64::new(0),
        in_flight: AtomicU32::new(0),
        last_active_ms: AtomicU64::new(0),
        h2: AtomicBool::new(matches!(proto, Proto::Http2)),
        close: CloseSignal::default(),
    });
    ctx.touch();
    let _registration = registry.register(&ctx);
    // A mode change between the accept and the registration did not see this connection.
    if matches!(proto, Proto::Http2) && shared.runtime.snapshot().mode_generation != mode_generation
    {
        ctx.close.request(Close::Graceful);
    }
    let svc_ctx = ctx.clone();
    let service = service_fn(move |req| {
        let in_flight = InFlight::enter(svc_ctx.clone());
        async move {
            // Boxed: hyper keeps a slot of this future's size for every connection,
            // idle or not; the pipeline's state only needs to live during a request.
            let resp = Box::pin(handle(&in_flight.0, req)).await?;
            Ok::<_, h2::Error>(resp.map(|body| TrackedBody {
                body,
                _in_flight: in_flight,
            }))
        }
    });
    let io = TokioIo::new(io);
    // Each protocol's connection is boxed at its own size.
    match proto {
        Proto::Auto => {
            let conn = Box::pin(shared.http_auto.serve_connection(io, service));
            drive(&ctx, conn, |c| c.graceful_shutdown()).await;
        }
        Proto::Http1 => {
            let conn = Box::pin(shared.http1.serve_connection(io, service));
            drive(&ctx, conn, |c| c.graceful_shutdown()).await;
        }
        Proto::Http2 => {
            let conn = Box::pin(shared.http2.serve_connection(io, service));
            drive(&ctx, conn, |c| c.graceful_shutdown()).await;
        }
    }
}

/// Runs a hyper connection to its end, shutting it down gracefully (or dropping it) once
/// its [`CloseSignal`] is raised.
async fn drive<C, E>(ctx: &ConnCtx, mut conn: Pin<Box<C>>, graceful: impl Fn(Pin<&mut C>))
where
    C: Future<Output = Result<(), E>>,
    E: Display,
{
    let mut closing = false;
    let res = poll_fn(|cx| {
        match ctx.close.poll_requested(cx) {
            Poll::Ready(Close::Abort) => {
                tracing::debug!(peer = %ctx.peer, "no complete request head in time; closing");
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Close::Graceful) if !closing => {
                closing = true;
                graceful(conn.as_mut());
            }
            _ => {}
        }
        conn.as_mut().poll(cx)
    })
    .await;
    if let Err(e) = res {
        tracing::debug!(peer = %ctx.peer, error = %e, "connection ended with an error");
    }
}

/// Counts a request in [`ConnCtx::in_flight`] until dropped: when hyper drops the
/// response body after sending it, or the request is cancelled. Entering and leaving
/// count as activity for the timeouts.
struct InFlight(Arc<ConnCtx>);

impl InFlight {
    fn enter(ctx: Arc<ConnCtx>) -> InFlight {
        ctx.in_flight.fetch_add(1, Ordering::Relaxed);
        ctx.touch();
        InFlight(ctx)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request [`InFlight`] until hyper is done with it.
struct TrackedBody {
    body: ProxyBody,
    _in_flight: InFlight,
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// What the mode-change rule of SPEC §2 makes of `decision`, the new settings' answer to
/// a request on a connection accepted under an older mode generation: `Some` answer, or
/// `None` to refuse the request unanswered (HTTP/1.1: the connection closes without a
/// response; HTTP/2: `RST_STREAM(REFUSED_STREAM)`), which a client may retry on a new
/// connection.
///
/// - The connection's first request may be served under the old mode: a connection
///   accepted under `none` passes a request the new settings refuse for want of a
///   certificate (`none` passed it, and the connection could not present one).
///   Otherwise the new settings judge it (a certificate the new mode finds bad, e.g.
///   a header-mode header, is refused as usual).
/// - Any later request is judged under the new settings, except that a refusal for
///   want of a certificate on a connection that could not present one (accepted under
///   `none` or `header`, now `mtls`: its handshake asked for no certificate) is refused
///   unanswered rather than answered 401, so a client holding a valid certificate
///   loses nothing by retrying on a new connection.
///
/// No request is ever served under the old mode except the first, and a request that
/// satisfies the new settings is always served.
fn after_mode_change(
    accepted: CertAuthMode,
    current: CertAuthMode,
    first_request: bool,
    decision: Decision,
    routed: bool,
) -> Option<Decision> {
    let Decision::Deny { status, reason } = decision else {
        return Some(decision);
    };
    if status != StatusCode::UNAUTHORIZED {
        return Some(decision);
    }
    if first_request && accepted == CertAuthMode::None {
        return Some(if routed {
            Decision::Proxy
        } else {
            Decision::NotFound
        });
    }
    let could_not_present = accepted != CertAuthMode::Mtls && current == CertAuthMode::Mtls;
    if could_not_present && reason == DenialReason::NoCertificate {
        return None;
    }
    Some(decision)
}

/// A request refused unanswered by [`after_mode_change`]. hyper closes an HTTP/1.1
/// connection whose service fails without writing a response, and resets an HTTP/2
/// stream with the `h2::Reason` it finds in the error.
#[derive(Debug)]
struct Refused;

impl From<Refused> for h2::Error {
    fn from(_: Refused) -> h2::Error {
        h2::Error::from(h2::Reason::REFUSED_STREAM)
    }
}

/// The per-request pipeline. `Err` refuses the request unanswered.
async fn handle(ctx: &ConnCtx, mut req: Request<Incoming>) -> Result<Response<ProxyBody>, Refused> {
    let start = Instant::now();
    let first_request = ctx.served.fetch_add(1, Ordering::Relaxed) == 0;
    let version = req.version();
    if version == Version::HTTP_2 {
        ctx.h2.store(true, Ordering::Relaxed);
    }
    let snapshot = ctx.shared.runtime.snapshot();
    let method = req.method().clone();
    // Routing and forwarding read the one normal path (crate::path); a target that cannot
    // be read one way is refused before anything else.
    if let Err(e) = crate::route::normalize_target(&mut req) {
        return Ok(refuse_target(
            ctx,
            start,
            &method,
            req.uri().path(),
            version,
            e,
        ));
    }
    let path = req.uri().path().to_owned();
    let route = snapshot.routes.lookup(&path).cloned();

    // SPEC §16: a Host other than the SNI is refused before any certificate check.
    let misdirected =
        snapshot.sni_host_check && ctx.sni.as_deref().is_some_and(|sni| !host_is(&req, sni));

    // SPEC §3 step 3: the certificate.
    let peer_ip = ctx.peer.ip();
    let mut identity: Option<Arc<ClientIdentity>> = None;
    let mut from_untrusted_proxy = false;
    match snapshot.mode {
        _ if misdirected => {}
        CertAuthMode::Mtls => identity = ctx.current_identity(&snapshot),
        CertAuthMode::Header => match take_header_cert(&snapshot, req.headers_mut(), peer_ip) {
            HeaderCert::Absent => {}
            HeaderCert::FromUntrustedProxy => from_untrusted_proxy = true,
            HeaderCert::Present(id) => identity = Some(id),
        },
        CertAuthMode::None => {}
    }
    let presented = match (&identity, from_untrusted_proxy) {
        (Some(id), _) => Presented::Certificate(id),
        (None, true) => Presented::FromUntrustedProxy,
        (None, false) => Presented::None,
    };
    let mut decision = if misdirected {
        Decision::Deny {
            status: StatusCode::MISDIRECTED_REQUEST,
            reason: DenialReason::MisdirectedRequest,
        }
    } else {
        evaluate(&snapshot, route.as_deref(), presented)
    };
    // SPEC §2: a connection of an older mode generation (one integer compare per request).
    if snapshot.mode_generation != ctx.mode_generation {
        match after_mode_change(
            ctx.accepted_mode,
            snapshot.mode,
            first_request,
            decision,
            route.is_some(),
        ) {
            Some(d) => decision = d,
            None => {
                tracing::debug!(peer = %ctx.peer, "request on a connection of the old mode refused unanswered");
                ctx.close.request(Close::Graceful);
                return Err(Refused);
            }
        }
    }
    let api = route.as_ref().map(|r| r.name.as_str()).unwrap_or("");
    let mut denial = None;
    if !matches!(decision, Decision::Deny { .. })
        && identity.as_ref().is_some_and(|id| id.revocation_soft_pass)
    {
        telemetry::record_soft_pass(api);
    }
    let mut resp = match (decision, route.as_deref()) {
        (Decision::Deny { status, reason }, _) => {
            telemetry::record_denial(reason, api);
            denial = Some(reason);
            error_response(status)
        }
        (Decision::Proxy, Some(route)) => {
            let forwarded = if snapshot.forward.any() && snapshot.mode != CertAuthMode::None {
                identity.as_deref()
            } else {
                None
            };
            let down = Downstream {
                peer: peer_ip,
                peer_header: &ctx.peer_header,
                peer_is_trusted_proxy: snapshot.is_trusted_proxy(peer_ip),
                listener_https: ctx.listener_https,
                identity: forwarded,
                forward: snapshot.forward,
                cert_header: snapshot.header.as_ref().map(|h| &h.name),
            };
            // Boxed: only proxied requests need the upstream exchange's state.
            Box::pin(ctx.shared.upstream.forward(req, route, &down)).await
        }
        (Decision::NotFound, _) | (Decision::Proxy, None) => error_response(StatusCode::NOT_FOUND),
    };

    // A connection of an older mode generation closes after this response.
    if ctx.shared.runtime.snapshot().mode_generation != ctx.mode_generation {
        if version != Version::HTTP_2 {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        ctx.close.request(Close::Graceful);
    }

    let status = resp.status().as_u16();
    match route.as_deref() {
        Some(r) => r.counters.record(status),
        None => telemetry::unrouted_counters().record(status),
    }
    if let Some(id) = identity.as_ref() {
        snapshot.inventory.record(
            id,
            crate::inventory::Seen {
                api: route.as_deref().map(|r| (r.name.as_str(), path.as_str())),
                denied: denial,
            },
        );
    }
    let info = identity.as_ref().and_then(|id| id.info.as_ref());
    tracing::info!(
        target: "certgate::access",
        api,
        status,
        latency_ms = start.elapsed().as_secs_f64() * 1000.0,
        method = %method,
        path = %path,
        peer = %ctx.peer,
        subject = info.map(|i| i.subject.to_string()).unwrap_or_default(),
        fingerprint = info.map(|i| i.fingerprint_sha256.as_str()).unwrap_or(""),
        reason = denial.map(|r| r.as_str()).unwrap_or(""),
    );
    Ok(resp)
}

/// Whether the request's host (`Host`, else the `:authority`), without its port and one
/// trailing dot, is `sni` (lower case), ASCII case-insensitively. No host at all is not.
pub(crate) fn host_is<B>(req: &Request<B>, sni: &str) -> bool {
    let host = match req.headers().get(header::HOST) {
        Some(h) => h.to_str().ok(),
        None => req.uri().authority().map(|a| a.as_str()),
    };
    let Some(host) = host else {
        return false;
    };
    host_without_port(host).eq_ignore_ascii_case(sni)
}

/// `example.com:8443` → `example.com`, `[::1]:443` → `::1`, `example.com.` → `example.com`.
fn host_without_port(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    name.strip_suffix('.').unwrap_or(name)
}

/// The answer to a request whose target is refused ([`crate::route::TargetError`]):
/// 400/501 with the JSON body, counted as unrouted and logged. HTTP/1.1 closes after it
/// (a client that sends such targets gets no second request on the connection).
fn refuse_target(
    ctx: &ConnCtx,
    start: Instant,
    method: &http::Method,
    path: &str,
    version: Version,
    error: crate::route::TargetError,
) -> Response<ProxyBody> {
    let mut resp = error_response(error.status());
    if version != Version::HTTP_2 {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let status = resp.status().as_u16();
    telemetry::unrouted_counters().record(status);
    tracing::info!(
        target: "certgate::access",
        api = "",
        status,
        latency_ms = start.elapsed().as_secs_f64() * 1000.0,
        method = %method,
        path = %path,
        peer = %ctx.peer,
        reason = %error,
    );
    resp
}
