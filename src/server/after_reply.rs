//! Work that must wait until a tool's answer has actually left the process:
//! delivery receipts (`read_my_messages`, `ask_peer`) are written only once the
//! JSON-RPC response carrying the messages is flushed to stdout, and the
//! messages go back to the mailbox if it could not be written.
//!
//! [`AfterReply`] holds the pending actions by JSON-RPC request id; [`StdoutTap`]
//! wraps rmcp's stdout writer, notices each complete response line and, once
//! the writer has flushed it, runs that request's actions with `true`; a write
//! or flush error runs every pending action with `false`.
//!
//! Invariants defended:
//! - a receipt never claims a delivery whose answer never left the process;
//! - messages drained for an answer that could not be written are put back,
//!   not lost (a duplicate, same id, is possible if the client read part of it);
//! - no action is kept forever: shutdown runs the rest with `false`, and an
//!   action older than [`MAX_PENDING`] is run with `false` when the next one is
//!   registered (its response was never written, e.g. a cancelled call);
//! - zero cost when nothing waits: lines are only inspected while an action is
//!   pending, and only the `id` member is decoded.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rmcp::model::RequestId;
use serde::Deserialize;
use serde_json::Value;
use tokio::io::AsyncWrite;

/// An action run once: `true` = the answer was flushed to stdout.
pub type Action = Box<dyn FnOnce(bool) + Send>;

/// An action whose response has not been seen for this long is given up.
pub const MAX_PENDING: Duration = Duration::from_secs(120);

#[derive(Default)]
struct Pending {
    by_id: HashMap<String, Vec<(Instant, Action)>>,
}

/// The pending actions, by request id.
#[derive(Default)]
pub struct AfterReply {
    pending: Mutex<Pending>,
}

/// The key of a JSON-RPC id: its JSON text (`5`, `"abc"`).
fn key_of(id: &Value) -> String {
    id.to_string()
}

impl AfterReply {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `action` once the response to request `id` is flushed.
    pub fn register(&self, id: &RequestId, action: Action) {
        let key = serde_json::to_value(id)
            .map(|v| key_of(&v))
            .unwrap_or_default();
        let stale = {
            let mut p = self.lock();
            let stale = take_stale(&mut p, Instant::now());
            p.by_id
                .entry(key)
                .or_default()
                .push((Instant::now(), action));
            stale
        };
        for a in stale {
            a(false);
        }
    }

    fn is_empty(&self) -> bool {
        self.lock().by_id.is_empty()
    }

    fn take(&self, key: &str) -> Vec<Action> {
        self.lock()
            .by_id
            .remove(key)
            .map(|v| v.into_iter().map(|(_, a)| a).collect())
            .unwrap_or_default()
    }

    /// Run every pending action with `false` (shutdown, a broken stdout).
    pub fn fail_all(&self) {
        let all: Vec<Action> = {
            let mut p = self.lock();
            p.by_id
                .drain()
                .flat_map(|(_, v)| v.into_iter().map(|(_, a)| a))
                .collect()
        };
        for a in all {
            a(false);
        }
    }
}

fn take_stale(p: &mut Pending, now: Instant) -> Vec<Action> {
    let mut out = Vec::new();
    p.by_id.retain(|_, v| {
        let (old, keep): (Vec<_>, Vec<_>) = std::mem::take(v)
            .into_iter()
            .partition(|(at, _)| now.duration_since(*at) > MAX_PENDING);
        out.extend(old.into_iter().map(|(_, a)| a));
        *v = keep;
        !v.is_empty()
    });
    out
}

#[derive(Deserialize)]
struct IdProbe {
    #[serde(default)]
    id: Option<Value>,
}

/// rmcp's stdout writer with the flush notifications of [`AfterReply`].
pub struct StdoutTap<W> {
    inner: W,
    hooks: Arc<AfterReply>,
    /// Bytes of the line being written, kept only while `capture` is set.
    line: Vec<u8>,
    /// Whether the current line is inspected (decided at its first byte).
    capture: bool,
    at_line_start: bool,
    /// Ids of complete lines not yet flushed.
    written: Vec<String>,
}

impl<W> StdoutTap<W> {
    pub fn new(inner: W, hooks: Arc<AfterReply>) -> Self {
        StdoutTap {
            inner,
            hooks,
            line: Vec::new(),
            capture: false,
            at_line_start: true,
            written: Vec::new(),
        }
    }

    fn observe(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.at_line_start {
                self.capture = !self.hooks.is_empty();
                self.at_line_start = false;
            }
            let (chunk, done) = match memchr::memchr(b'\n', bytes) {
                Some(i) => (&bytes[..i], Some(i + 1)),
                None => (bytes, None),
            };
            if self.capture {
                self.line.extend_from_slice(chunk);
            }
            match done {
                Some(n) => {
                    if self.capture
                        && let Ok(IdProbe { id: Some(id) }) = serde_json::from_slice(&self.line)
                    {
                        self.written.push(key_of(&id));
                    }
                    self.line.clear();
                    self.at_line_start = true;
                    bytes = &bytes[n..];
                }
                None => bytes = &[],
            }
        }
    }

    fn flushed(&mut self) {
        for key in std::mem::take(&mut self.written) {
            for a in self.hooks.take(&key) {
                a(true);
            }
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for StdoutTap<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        match &res {
            Poll::Ready(Ok(n)) => {
                let n = *n;
                self.observe(&buf[..n]);
            }
            Poll::Ready(Err(_)) => self.hooks.fail_all(),
            Poll::Pending => {}
        }
        res
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let res = Pin::new(&mut self.inner).poll_flush(cx);
        match &res {
            Poll::Ready(Ok(())) => self.flushed(),
            Poll::Ready(Err(_)) => self.hooks.fail_all(),
            Poll::Pending => {}
        }
        res
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncWriteExt;

    fn counter(hooks: &AfterReply, id: RequestId) -> (Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let (ok, bad) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (o, b) = (Arc::clone(&ok), Arc::clone(&bad));
        hooks.register(
            &id,
            Box::new(move |flushed| {
                if flushed { &o } else { &b }.fetch_add(1, Ordering::SeqCst);
            }),
        );
        (ok, bad)
    }

    #[tokio::test]
    async fn runs_after_the_matching_line_is_flushed() {
        let hooks = Arc::new(AfterReply::default());
        let (ok, bad) = counter(&hooks, RequestId::Number(7));
        let (ok_s, _) = counter(&hooks, RequestId::String("x".into()));
        let mut tap = StdoutTap::new(Vec::<u8>::new(), Arc::clone(&hooks));
        tap.write_all(br#"{"jsonrpc":"2.0","id":8,"result":{}}"#)
            .await
            .unwrap();
        tap.write_all(b"\n{\"jsonrpc\":\"2.0\",\"id\":7,")
            .await
            .unwrap();
        tap.flush().await.unwrap();
        assert_eq!(ok.load(Ordering::SeqCst), 0, "line 7 not complete yet");
        tap.write_all(b"\"result\":{}}\n").await.unwrap();
        assert_eq!(ok.load(Ordering::SeqCst), 0, "not flushed yet");
        tap.flush().await.unwrap();
        assert_eq!(
            (ok.load(Ordering::SeqCst), bad.load(Ordering::SeqCst)),
            (1, 0)
        );
        tap.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"result\":{}}\n")
            .await
            .unwrap();
        tap.flush().await.unwrap();
        assert_eq!(ok_s.load(Ordering::SeqCst), 1);
        assert!(hooks.is_empty());
    }

    #[test]
    fn fail_all_runs_the_rest_with_false() {
        let hooks = AfterReply::default();
        let (ok, bad) = counter(&hooks, RequestId::Number(1));
        hooks.fail_all();
        hooks.fail_all();
        assert_eq!(
            (ok.load(Ordering::SeqCst), bad.load(Ordering::SeqCst)),
            (0, 1)
        );
    }
}
