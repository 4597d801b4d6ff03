//! What one client connection may hold: a time for its request headers (hyper's own timer,
//! which also runs while a kept-alive connection waits for its next request), a time a request
//! body may stall, a time the whole connection may go without a byte either way, and a number
//! of connections per peer address. Without them a client that sends a few bytes and then
//! nothing, without any token, holds a connection and its memory for ever.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The limits of one client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// From the first byte a request may arrive (or the end of the previous response) to the
    /// end of its headers.
    pub header_timeout: Duration,
    /// How long a request body may go without a byte while the gateway waits for it.
    pub body_timeout: Duration,
    /// How long a connection may go without a byte read or written (a client that stops
    /// reading its response, an upstream that stops answering). Upgraded connections
    /// (websockets) are not counted once relayed.
    pub idle_timeout: Duration,
    /// Connections one peer address may hold at once; more are answered 503 and closed.
    pub per_peer: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            // Longer than the upstream's own time to answer (proxy::HEADER_TIMEOUT), so a
            // slow upstream is answered 504 rather than cut off.
            idle_timeout: Duration::from_secs(330),
            per_peer: 256,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body stalled longer than the body timeout")]
    Stalled,
    #[error("request body: {0}")]
    Read(#[from] hyper::Error),
}

/// A request body that fails when it has kept the gateway waiting for `gap` without a byte.
/// The clock runs only while someone waits for the body, so an upstream that reads slowly
/// does not count against the client.
pub struct TimedBody {
    inner: Incoming,
    gap: Duration,
    sleep: Pin<Box<Sleep>>,
    waiting: bool,
}

impl TimedBody {
    pub fn new(inner: Incoming, gap: Duration) -> TimedBody {
        TimedBody {
            inner,
            gap,
            sleep: Box::pin(tokio::time::sleep(gap)),
            waiting: false,
        }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                Poll::Ready(frame.map(|f| f.map_err(BodyError::Read)))
            }
            Poll::Pending => {
                if !this.waiting {
                    this.waiting = true;
                    let deadline = Instant::now() + this.gap;
                    this.sleep.as_mut().reset(deadline);
                }
                match this.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyError::Stalled))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// When a connection last moved a byte, in milliseconds since it was accepted.
#[derive(Clone)]
pub struct Activity {
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Default for Activity {
    /// A connection accepted now.
    fn default() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Activity {
    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// When the connection is idle for `idle` if nothing moves before.
    pub fn deadline(&self, idle: Duration) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + idle
    }
}

/// A connection that records its activity.
pub struct Tracked<T> {
    inner: T,
    activity: Activity,
}

impl<T> Tracked<T> {
    pub fn new(inner: T, activity: Activity) -> Tracked<T> {
        Tracked { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Connections held per peer address.
#[derive(Default, Clone)]
pub struct Peers {
    held: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection of a peer; gives its place back when dropped.
pub struct PeerSlot {
    peers: Peers,
    ip: IpAddr,
}

impl Peers {
    /// A place for one more connection of `ip`, if it holds fewer than `limit`.
    pub fn admit(&self, ip: IpAddr, limit: usize) -> Option<PeerSlot> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let count = held.entry(ip).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            peers: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut held = self.peers.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = held.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_capped_each_and_slots_come_back() {
        let peers = Peers::default();
        let a: IpAddr = [127, 0, 0, 2].into();
        let b: IpAddr = [127, 0, 0, 3].into();
        let first = peers.admit(a, 2).unwrap();
        let _second = peers.admit(a, 2).unwrap();
        assert!(peers.admit(a, 2).is_none());
        assert!(peers.admit(b, 2).is_some(), "another peer has its own");
        drop(first);
        assert!(peers.admit(a, 2).is_some());
    }
}
