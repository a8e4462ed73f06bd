//! A line filter behind rmcp's stdout: every JSON-RPC error carries an `id`.
//!
//! JSON-RPC 2.0 §5 requires the `id` member in every response, `null` when
//! the request's id could not be read (parse error, invalid request). rmcp
//! 3.11 follows MCP 2026-07-28 instead and leaves the member out, writing
//! `{"jsonrpc":"2.0","error":…}` for a request such as `{}`, `42` or `[]`
//! ([`super::stdin_guard`] hands rmcp only such requests without a usable
//! id). This filter rewrites the start of exactly those lines to
//! `{"jsonrpc":"2.0","id":null,"error":…}`; every other byte passes through
//! unchanged, in order.
//!
//! Invariant defended: each line rmcp writes comes out as one line, whole
//! and in order; only the id-less error prefix is changed. Bytes are held
//! only while a line's first bytes cannot yet tell (under 26 bytes), and a
//! flush or shutdown writes everything accepted before it returns.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::AsyncWrite;

/// How rmcp serialises an error response without an id (pinned by a test).
const ID_LESS: &[u8] = br#"{"jsonrpc":"2.0","error":"#;
/// What it becomes.
const WITH_NULL_ID: &[u8] = br#"{"jsonrpc":"2.0","id":null,"error":"#;
/// Above this many pending bytes a write waits for the inner writer.
const HIGH_WATER: usize = 64 * 1024;

/// Wraps the stdout writer; see the module doc.
pub struct StdoutGuard<W> {
    inner: W,
    /// Filtered bytes not yet written to `inner` (from `sent` on).
    pending: Vec<u8>,
    sent: usize,
    /// The start of the current line while it may still be [`ID_LESS`].
    head: Vec<u8>,
    /// Past the decision point of the current line.
    mid_line: bool,
}

impl<W> StdoutGuard<W> {
    pub fn new(inner: W) -> Self {
        StdoutGuard {
            inner,
            pending: Vec::new(),
            sent: 0,
            head: Vec::new(),
            mid_line: false,
        }
    }

    /// Filter `buf` into `pending`.
    fn accept(&mut self, mut buf: &[u8]) {
        while !buf.is_empty() {
            if self.mid_line {
                let take = memchr::memchr(b'\n', buf).map_or(buf.len(), |p| p + 1);
                self.pending.extend_from_slice(&buf[..take]);
                self.mid_line = buf[take - 1] != b'\n';
                buf = &buf[take..];
                continue;
            }
            // Still deciding: collect the head until it stops matching.
            let want = ID_LESS.len() - self.head.len();
            let take = buf[..want.min(buf.len())]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(want.min(buf.len()), |p| p + 1);
            self.head.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.head == ID_LESS {
                self.pending.extend_from_slice(WITH_NULL_ID);
                self.head.clear();
                self.mid_line = true;
            } else if !ID_LESS.starts_with(&self.head) {
                self.pending.append(&mut self.head);
                self.mid_line = self.pending.last() != Some(&b'\n');
            }
        }
    }

    /// Write `pending` into `inner` until it is empty.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>
    where
        W: AsyncWrite + Unpin,
    {
        while self.sent < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.pending.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for StdoutGuard<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.pending.len() - self.sent >= HIGH_WATER {
            ready!(self.drain(cx))?;
        }
        self.accept(buf);
        // Start writing now; what the inner writer cannot take yet waits
        // for the next write or flush.
        if let Poll::Ready(Err(e)) = self.drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // An undecided head is an unfinished line: it goes out as it is.
        let mut head = std::mem::take(&mut self.head);
        self.pending.append(&mut head);
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{ErrorData, ServerJsonRpcMessage};
    use tokio::io::AsyncWriteExt;

    async fn filtered(chunks: &[&[u8]]) -> Vec<u8> {
        let mut g = StdoutGuard::new(Vec::new());
        for c in chunks {
            g.write_all(c).await.unwrap();
        }
        g.flush().await.unwrap();
        g.inner
    }

    #[test]
    fn rmcp_writes_id_less_errors_with_the_expected_prefix() {
        let msg =
            ServerJsonRpcMessage::error(ErrorData::invalid_request("Invalid request", None), None);
        let text = serde_json::to_string(&msg).unwrap();
        assert!(text.as_bytes().starts_with(ID_LESS), "{text}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn id_less_errors_get_a_null_id_and_everything_else_passes() {
        let input = concat!(
            r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid request"}}"#,
            "\n",
            r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"x"}}"#,
            "\n",
            r#"{"jsonrpc":"2.0","id":4,"result":{"t":"{\"jsonrpc\":\"2.0\",\"error\":"}}"#,
            "\n",
            "{\"jsonrpc\"\n",
            r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid request"}}"#,
            "\n",
        );
        let want = input.replace(
            r#"{"jsonrpc":"2.0","error":{"code""#,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code""#,
        );
        assert_eq!(
            String::from_utf8(filtered(&[input.as_bytes()]).await).unwrap(),
            want
        );
        // The same bytes split at every position come out the same.
        let b = input.as_bytes();
        for cut in 0..b.len() {
            let out = filtered(&[&b[..cut], &b[cut..]]).await;
            assert_eq!(String::from_utf8(out).unwrap(), want, "cut at {cut}");
        }
        let bytewise: Vec<&[u8]> = b.chunks(1).collect();
        assert_eq!(String::from_utf8(filtered(&bytewise).await).unwrap(), want);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn shutdown_writes_an_undecided_head() {
        let mut g = StdoutGuard::new(Vec::new());
        g.write_all(br#"{"jsonrpc":"2"#).await.unwrap();
        g.shutdown().await.unwrap();
        assert_eq!(g.inner, br#"{"jsonrpc":"2"#);
    }
}
