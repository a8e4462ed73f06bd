//! A line filter in front of rmcp's stdin: every request gets an answer that
//! carries its id.
//!
//! rmcp 3.11 answers a line it cannot decode into its message types (say a
//! `tools/call` whose `params` is a string or whose `_meta` is an array) with a
//! JSON-RPC error that has no `id`, so the client waits for that id forever.
//! This filter decodes each complete line with rmcp's own message type first;
//! a line that fails but still names a usable `id` and `method` is rewritten
//! into a request for [`INVALID_REQUEST_METHOD`], which the handler answers
//! with a proper error under the original id. Every other line, including ones
//! with no id at all, passes through byte for byte.
//!
//! Invariant defended: nothing that looks like a request is ever left
//! unanswered; well-formed traffic is untouched.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use rmcp::model::{ClientJsonRpcMessage, ErrorCode};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, ReadBuf};

/// The method a rewritten request carries; never advertised.
pub const INVALID_REQUEST_METHOD: &str = "oxtail/undecodable-request";

/// Wraps the stdin reader; see the module doc.
pub struct StdinGuard<R> {
    inner: R,
    /// Bytes of the current, not yet complete line.
    partial: Vec<u8>,
    /// Filtered bytes ready for rmcp.
    ready: VecDeque<u8>,
    eof: bool,
}

impl<R> StdinGuard<R> {
    pub fn new(inner: R) -> Self {
        StdinGuard {
            inner,
            partial: Vec::new(),
            ready: VecDeque::new(),
            eof: false,
        }
    }

    fn take_lines(&mut self, incoming: &[u8]) {
        self.partial.extend_from_slice(incoming);
        while let Some(pos) = memchr::memchr(b'\n', &self.partial) {
            let line: Vec<u8> = self.partial.drain(..=pos).collect();
            let body = &line[..line.len() - 1];
            match rewrite(body) {
                Some(fixed) => {
                    self.ready.extend(fixed.as_bytes());
                    self.ready.push_back(b'\n');
                }
                None => self.ready.extend(&line),
            }
        }
    }
}

/// The replacement for an undecodable request line, or `None` to pass it on.
pub fn rewrite(line: &[u8]) -> Option<String> {
    if serde_json::from_slice::<ClientJsonRpcMessage>(line).is_ok() {
        return None;
    }
    let Value::Object(obj) = serde_json::from_slice::<Value>(line).ok()? else {
        return None;
    };
    let id = obj
        .get("id")
        .filter(|id| id.is_string() || id.is_i64() || id.is_u64())?;
    let method = obj.get("method")?.as_str()?;
    // A params problem is -32602; anything else about the envelope is -32600.
    let params_ok = match obj.get("params") {
        None => true,
        Some(Value::Object(p)) => {
            p.get("_meta").is_none_or(Value::is_object)
                && p.get("arguments")
                    .is_none_or(|a| a.is_object() || a.is_null())
        }
        Some(_) => false,
    };
    let (code, message) = if obj.get("jsonrpc") == Some(&json!("2.0")) && !params_ok {
        (
            ErrorCode::INVALID_PARAMS,
            format!(
                "Invalid params for {method}: params, params._meta and params.arguments must be objects"
            ),
        )
    } else {
        (
            ErrorCode::INVALID_REQUEST,
            format!("Invalid request for {method}: not a well-formed JSON-RPC 2.0 request"),
        )
    };
    Some(
        json!({
            "jsonrpc": "2.0",
            "id": id,
            "method": INVALID_REQUEST_METHOD,
            "params": {"code": code.0, "message": message},
        })
        .to_string(),
    )
}

impl<R: AsyncRead + Unpin> AsyncRead for StdinGuard<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if !self.ready.is_empty() {
                let n = self.ready.len().min(buf.remaining());
                let (a, b) = self.ready.as_slices();
                let from_a = n.min(a.len());
                buf.put_slice(&a[..from_a]);
                buf.put_slice(&b[..n - from_a]);
                self.ready.drain(..n);
                return Poll::Ready(Ok(()));
            }
            if self.eof {
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 8192];
            let mut chunk_buf = ReadBuf::new(&mut chunk);
            match Pin::new(&mut self.inner).poll_read(cx, &mut chunk_buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    let got = chunk_buf.filled().to_vec();
                    if got.is_empty() {
                        // End of input: an unterminated last line goes on as is.
                        let rest = std::mem::take(&mut self.partial);
                        self.ready.extend(rest);
                        self.eof = true;
                    } else {
                        self.take_lines(&got);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn well_formed_and_id_less_lines_pass_through() {
        for line in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x","arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","method":"tools/call","params":"x"}"#,
            "not json at all",
        ] {
            assert_eq!(rewrite(line.as_bytes()), None, "{line}");
        }
    }

    #[test]
    fn undecodable_requests_keep_their_id() {
        let fixed =
            rewrite(br#"{"jsonrpc":"2.0","id":904,"method":"tools/call","params":"x"}"#).unwrap();
        let v: Value = serde_json::from_str(&fixed).unwrap();
        assert_eq!(v["id"], 904);
        assert_eq!(v["method"], INVALID_REQUEST_METHOD);
        assert_eq!(v["params"]["code"], ErrorCode::INVALID_PARAMS.0);
        let fixed = rewrite(
            br#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"x","_meta":[true]}}"#,
        )
        .unwrap();
        let v: Value = serde_json::from_str(&fixed).unwrap();
        assert_eq!(v["id"], "a");
        // The rewrite itself decodes, so it is answered by the handler.
        assert!(serde_json::from_str::<ClientJsonRpcMessage>(&fixed).is_ok());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn filters_split_and_unterminated_input() {
        let input: &[u8] = b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":\"x\"}\nplain\ntail";
        let mut guard = StdinGuard::new(input);
        let mut out = String::new();
        guard.read_to_string(&mut out).await.unwrap();
        let lines: Vec<&str> = out.split('\n').collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].contains(INVALID_REQUEST_METHOD) && lines[0].contains("\"id\":7"));
        assert_eq!(lines[1], "plain");
        assert_eq!(lines[2], "tail");
    }
}
