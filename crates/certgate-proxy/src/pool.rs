//! Pooled HTTP/1.1 connections to upstreams, on hyper's connection-level client.
//!
//! hyper-util's general-purpose client spawns a task per request to put a connection back
//! once its response is read, races connects against its pool and hashes the pool key
//! twice per request; on the keep-alive path that was a visible share of certgate's CPU
//! (docs/BENCHMARKS.md). This pool does only what a reverse proxy needs: per upstream
//! (scheme and authority) a LIFO list of idle connections; a connection goes back when
//! its response body has been read to the end ([`PooledBody`]), and one whose response
//! was abandoned is closed instead. A request that could not be written because its
//! pooled connection turned out closed is sent again on another connection (nothing of it
//! reached the upstream, so this is safe for any method).

use std::collections::HashMap;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;

/// Errors of an upstream exchange.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PoolError {
    /// The TCP (or TLS) connection could not be made.
    #[error("connect: {0}")]
    Connect(Box<dyn std::error::Error + Send + Sync>),
    /// The HTTP/1.1 handshake or exchange failed.
    #[error("{0}")]
    Http(#[from] hyper::Error),
}

impl PoolError {
    /// Whether the connection itself could not be made.
    pub(crate) fn is_connect(&self) -> bool {
        matches!(self, PoolError::Connect(_))
    }
}

type Key = (Scheme, Authority);

/// An idle connection and when it became idle.
struct Idle {
    sender: SendRequest<Incoming>,
    since: Instant,
}

struct Inner {
    connector: HttpsConnector<HttpConnector>,
    max_idle_per_host: usize,
    idle_timeout: Duration,
    idle: Mutex<HashMap<Key, Vec<Idle>>>,
}

/// The pool; cheap to clone (shared).
#[derive(Clone)]
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

impl Pool {
    /// A pool connecting through `connector`, keeping at most `max_idle_per_host` idle
    /// connections per upstream, each for at most `idle_timeout`.
    pub(crate) fn new(
        connector: HttpsConnector<HttpConnector>,
        max_idle_per_host: usize,
        idle_timeout: Duration,
    ) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                connector,
                max_idle_per_host,
                idle_timeout,
                idle: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn idle(&self) -> MutexGuard<'_, HashMap<Key, Vec<Idle>>> {
        self.inner.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `req` (origin-form URI) to `scheme://authority` on a pooled connection or a
    /// new one, and returns the response head; its body hands the connection back.
    pub(crate) async fn send(
        &self,
        scheme: &Scheme,
        authority: &Authority,
        mut req: Request<Incoming>,
    ) -> Result<Response<PooledBody>, PoolError> {
        let key = (scheme.clone(), authority.clone());
        // Idle connections first. One that refuses the request (closed, or not done
        // with its previous response yet) returns it unsent and is set aside.
        let mut skipped = Vec::new();
        // Ok: done (a response or an error); Err: no idle connection took the request.
        let pooled = loop {
            let Some(mut sender) = self.checkout(&key) else {
                break Err(req);
            };
            match sender.try_send_request(req).await {
                Ok(resp) => break Ok(Ok(self.pooled(resp, key.clone(), sender))),
                Err(mut e) => match e.take_message() {
                    Some(unsent) => {
                        req = unsent;
                        skipped.push(sender);
                    }
                    None => break Ok(Err(e.into_error().into())),
                },
            }
        };
        for sender in skipped {
            self.checkin(key.clone(), sender);
        }
        let req = match pooled {
            Ok(done) => return done,
            Err(req) => req,
        };
        // Boxed: connecting is rare, and its state would size every exchange.
        let mut sender = Box::pin(self.connect(scheme, authority)).await?;
        match sender.try_send_request(req).await {
            Ok(resp) => Ok(self.pooled(resp, key, sender)),
            Err(e) => Err(e.into_error().into()),
        }
    }

    /// The most recently used idle connection to `key` that is still open and fresh.
    fn checkout(&self, key: &Key) -> Option<SendRequest<Incoming>> {
        let mut idle = self.idle();
        let list = idle.get_mut(key)?;
        while let Some(entry) = list.pop() {
            if entry.sender.is_closed() {
                continue;
            }
            if entry.since.elapsed() >= self.inner.idle_timeout {
                // Everything below is older still.
                list.clear();
                return None;
            }
            return Some(entry.sender);
        }
        None
    }

    /// Keeps `sender` for the next request to `key`, if it is open and there is room.
    fn checkin(&self, key: Key, sender: SendRequest<Incoming>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle();
        let list = idle.entry(key).or_default();
        if list.len() < self.inner.max_idle_per_host {
            list.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    fn pooled(
        &self,
        resp: Response<Incoming>,
        key: Key,
        sender: SendRequest<Incoming>,
    ) -> Response<PooledBody> {
        let back = Return {
            pool: self.clone(),
            key,
            sender,
        };
        // No body to wait for (e.g. 204, HEAD): the connection is free already.
        let back = if resp.body().is_end_stream() {
            back.checkin();
            None
        } else {
            Some(back)
        };
        resp.map(|inner| PooledBody { inner, back })
    }

    async fn connect(
        &self,
        scheme: &Scheme,
        authority: &Authority,
    ) -> Result<SendRequest<Incoming>, PoolError> {
        let uri = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| PoolError::Connect(e.into()))?;
        let mut connector = self.inner.connector.clone();
        poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(PoolError::Connect)?;
        let io = connector.call(uri).await.map_err(PoolError::Connect)?;
        let (sender, conn) = http1::Builder::new().handshake(io).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// A connection to hand back once its response body is read.
struct Return {
    pool: Pool,
    key: Key,
    sender: SendRequest<Incoming>,
}

impl Return {
    fn checkin(self) {
        self.pool.checkin(self.key, self.sender);
    }
}

/// An upstream response body; at its end the connection goes back to the pool. Dropped
/// before its end, it drops the connection (hyper closes it: the rest of the response
/// would have to be read first).
pub(crate) struct PooledBody {
    inner: Incoming,
    back: Option<Return>,
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => self.inner.is_end_stream(),
            // A broken response: its connection is not reused.
            Poll::Ready(Some(Err(_))) => {
                self.back = None;
                false
            }
            Poll::Pending => false,
        };
        if ended {
            if let Some(r) = self.back.take() {
                r.checkin();
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
