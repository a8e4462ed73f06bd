//! A line filter in front of rmcp's stdin: every request with an id gets
//! exactly one answer, whatever its bytes.
//!
//! rmcp 3.11 decodes each line with `serde_json` into its message types and
//! handles a failure by its category: a *syntax* error (the line is not JSON
//! to `serde_json`) is dropped without an answer, a *data* error (JSON of the
//! wrong shape) gets a -32600 without an `id`. Both leave a client waiting
//! for an id that never comes when the line is in fact a valid request:
//! - `serde_json` refuses valid JSON text that JavaScript reads — a lone
//!   surrogate escape (`"a\ud800b"`, what a JavaScript client writes for a
//!   broken surrogate pair), a number beyond `f64` (`1e400`), nesting deeper
//!   than 127 levels — and invalid UTF-8, which Node decodes as U+FFFD;
//! - a request whose `params` or `_meta` has the wrong type, or whose id is
//!   usable but whose envelope is not, fails as data.
//!
//! This filter decodes each complete line with rmcp's own message type
//! first, so well-formed traffic passes byte for byte. A line that fails is
//! read the way the original reads it: invalid UTF-8 and lone surrogates
//! become U+FFFD and out-of-range numbers `null` ([`json_text`]); if that
//! decodes, rmcp gets the repaired line and handles the request normally.
//! (A message body sent that way is stored with U+FFFD as UTF-8, where the
//! original's `JSON.stringify` writes the `\ud800` escape back: both are
//! lines a 0.14 peer reads, and U+FFFD's 3 bytes are what `Buffer.byteLength`
//! counts for a lone surrogate, so the 8192-byte limit is the same.)
//! Otherwise a request with a usable id (an integer or a string, not a
//! response) is rewritten into a request for [`INVALID_REQUEST_METHOD`],
//! which the handler answers with -32602/-32600 under that id. A too-deep
//! request is refused the same way (-32602) rather than cut. What is left
//! has no usable id: rmcp answers it -32600 and
//! [`super::stdout_guard`] gives that answer `"id": null` (JSON-RPC 2.0 §5).
//! A batch (non-empty array; beyond the original, whose SDK drops it
//! unanswered) is split into its elements, each handled as its own line, so
//! every request in it is answered once under its id, as separate lines, not
//! as one array. Lines that are not JSON at all stay unanswered, as in the
//! original's SDK and in rmcp (no id can be read, and answering noise invites
//! an error storm).
//!
//! A line longer than rmcp's limit (16 MiB) is passed on as it arrives
//! without being held, and rmcp discards it: the guard never buffers more
//! than one line of that size.
//!
//! Invariant defended: nothing that is valid JSON and carries a usable id is
//! left unanswered or answered under another id; a request whose id cannot
//! be read is answered once with `"id": null`; well-formed traffic is
//! untouched.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use rmcp::model::{ClientJsonRpcMessage, ErrorCode, RequestId};
use rmcp::transport::async_rw::DEFAULT_MAX_LINE_LENGTH;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, ReadBuf};

use crate::json_text::{self, SERDE_DEPTH_LIMIT};

/// The method a rewritten request carries; never advertised.
pub const INVALID_REQUEST_METHOD: &str = "oxtail/undecodable-request";

/// Deepest nesting a request may have (rmcp decodes with `serde_json`).
const MAX_DEPTH: usize = SERDE_DEPTH_LIMIT - 1;

/// Wraps the stdin reader; see the module doc.
pub struct StdinGuard<R> {
    inner: R,
    /// Bytes of the current, not yet complete line.
    partial: Vec<u8>,
    /// Inside a line longer than rmcp's limit: bytes go on unfiltered up to
    /// its newline.
    oversized: bool,
    /// Filtered bytes ready for rmcp.
    ready: VecDeque<u8>,
    eof: bool,
}

impl<R> StdinGuard<R> {
    pub fn new(inner: R) -> Self {
        StdinGuard {
            inner,
            partial: Vec::new(),
            oversized: false,
            ready: VecDeque::new(),
            eof: false,
        }
    }

    fn take_lines(&mut self, mut incoming: &[u8]) {
        while !incoming.is_empty() {
            let newline = memchr::memchr(b'\n', incoming);
            let take = newline.map_or(incoming.len(), |p| p + 1);
            let (chunk, rest) = incoming.split_at(take);
            incoming = rest;
            if self.oversized {
                self.ready.extend(chunk);
                self.oversized = newline.is_none();
                continue;
            }
            self.partial.extend_from_slice(chunk);
            if newline.is_none() {
                if self.partial.len() > DEFAULT_MAX_LINE_LENGTH {
                    self.ready.extend(self.partial.drain(..));
                    self.oversized = true;
                }
                continue;
            }
            let line = std::mem::take(&mut self.partial);
            match rewrite(&line[..line.len() - 1]) {
                Some(lines) => {
                    for l in lines {
                        self.ready.extend(l.as_bytes());
                        self.ready.push_back(b'\n');
                    }
                }
                None => self.ready.extend(&line),
            }
        }
    }
}

fn decodes(text: &[u8]) -> bool {
    serde_json::from_slice::<ClientJsonRpcMessage>(text).is_ok()
}

/// The lines rmcp gets instead of `line` (without its `\n`), or `None` to
/// pass it on unchanged.
pub fn rewrite(line: &[u8]) -> Option<Vec<String>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // rmcp skips a UTF-8 byte order mark (RFC 8259 §8.1); so do we.
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    if decodes(line) {
        return None;
    }
    let text = String::from_utf8_lossy(line);
    let (value, _) = decode_repaired(&text)?;
    match value {
        Value::Array(items) if !items.is_empty() => {
            let elements = json_text::array_elements(&text)?;
            Some(elements.into_iter().filter_map(one_message).collect())
        }
        _ => Some(one_message(&text).into_iter().collect()),
    }
}

/// `text` as JavaScript would read it, decoded, and the repaired text (with
/// whether a too-deep container was cut). `None` when it is not JSON.
fn decode_repaired(text: &str) -> Option<(Value, json_text::Repaired)> {
    let fixed = json_text::repair(text, MAX_DEPTH).unwrap_or_else(|| json_text::Repaired {
        text: text.to_string(),
        surrogates: false,
        too_deep: false,
    });
    let value = serde_json::from_str(&fixed.text).ok()?;
    Some((value, fixed))
}

/// What rmcp gets for one message (a line, or one element of a batch), or
/// `None` to drop it (a too-deep notification, which is never answered).
fn one_message(text: &str) -> Option<String> {
    let Some((value, fixed)) = decode_repaired(text) else {
        return Some(text.to_string());
    };
    let Value::Object(obj) = value else {
        // A scalar or a nested array: rmcp answers -32600 (id null).
        return Some(fixed.text);
    };
    let altered = id_altered(&obj, text, &fixed);
    if !fixed.too_deep && !altered && decodes(fixed.text.as_bytes()) {
        return Some(fixed.text);
    }
    let is_response = obj.contains_key("result") || obj.contains_key("error");
    match usable_id(&obj).filter(|_| !altered) {
        Some(id) if !is_response => Some(refusal(id, &obj, fixed.too_deep)),
        _ if fixed.too_deep && !obj.contains_key("id") => None,
        // `null` is sure to get rmcp's -32600 (id null); the repaired text
        // would be handled under a changed id, or with a part cut away.
        _ if fixed.too_deep || altered => Some("null".into()),
        _ => Some(fixed.text),
    }
}

/// The request id when rmcp can carry it back (its own `RequestId` rule: a
/// string, or an integer, also one written as `5.0`).
fn usable_id(obj: &Map<String, Value>) -> Option<Value> {
    let id = obj.get("id")?;
    serde_json::from_value::<RequestId>(id.clone())
        .is_ok()
        .then(|| id.clone())
}

/// Whether the repair changed the string `id` (it held a lone surrogate,
/// now U+FFFD): answering under it would answer another id than the
/// client's.
fn id_altered(obj: &Map<String, Value>, text: &str, fixed: &json_text::Repaired) -> bool {
    let Some(Value::String(id)) = obj.get("id") else {
        return false;
    };
    if !fixed.surrogates || !id.contains('\u{fffd}') {
        return false;
    }
    // Tell a lone surrogate from a real U+FFFD: mark lone ones apart.
    json_text::repair_with(text, MAX_DEPTH, "\\ufdd0")
        .and_then(|alt| serde_json::from_str::<Value>(&alt.text).ok())
        .is_none_or(|alt| alt.get("id").and_then(Value::as_str) != Some(id))
}

/// The request the handler answers with an error under `id`.
fn refusal(id: Value, obj: &Map<String, Value>, too_deep: bool) -> String {
    let method = obj.get("method").and_then(Value::as_str);
    let versioned = obj.get("jsonrpc") == Some(&json!("2.0"));
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
    let (code, message) = match method {
        Some(m) if versioned && too_deep => (
            ErrorCode::INVALID_PARAMS,
            format!("Invalid params for {m}: nested deeper than {MAX_DEPTH} levels"),
        ),
        Some(m) if versioned && !params_ok => (
            ErrorCode::INVALID_PARAMS,
            format!(
                "Invalid params for {m}: params, params._meta and params.arguments must be objects"
            ),
        ),
        Some(m) => (
            ErrorCode::INVALID_REQUEST,
            format!("Invalid request for {m}: not a well-formed JSON-RPC 2.0 request"),
        ),
        None => (
            ErrorCode::INVALID_REQUEST,
            "Invalid request: not a well-formed JSON-RPC 2.0 request (no method)".to_string(),
        ),
    };
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": INVALID_REQUEST_METHOD,
        "params": {"code": code.0, "message": message},
    })
    .to_string()
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

    fn one(line: &str) -> Value {
        let lines = rewrite(line.as_bytes()).unwrap_or_else(|| panic!("passed: {line}"));
        assert_eq!(lines.len(), 1, "{lines:?}");
        serde_json::from_str(&lines[0]).unwrap()
    }

    #[test]
    fn well_formed_and_unparseable_lines_pass_through() {
        for line in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x","arguments":{"b":"\ud83d\ude00 \\ud800"}}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}\r",
            "not json at all",
            r#"{"jsonrpc":"2.0","id":9,"method":"ping""#,
        ] {
            assert_eq!(rewrite(line.as_bytes()), None, "{line}");
        }
    }

    #[test]
    fn undecodable_requests_keep_their_id() {
        let v = one(r#"{"jsonrpc":"2.0","id":904,"method":"tools/call","params":"x"}"#);
        assert_eq!(v["id"], 904);
        assert_eq!(v["method"], INVALID_REQUEST_METHOD);
        assert_eq!(v["params"]["code"], ErrorCode::INVALID_PARAMS.0);
        let v = one(
            r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"x","_meta":[true]}}"#,
        );
        assert_eq!(v["id"], "a");
        // The rewrite itself decodes, so it is answered by the handler.
        assert!(serde_json::from_value::<ClientJsonRpcMessage>(v).is_ok());
        // No method, but an id and no result: a broken request, not a response.
        let v = one(r#"{"jsonrpc":"2.0","id":6}"#);
        assert_eq!(
            (v["id"].clone(), v["params"]["code"].clone()),
            (json!(6), json!(-32600))
        );
    }

    #[test]
    fn lone_surrogates_and_invalid_utf8_are_read_as_replacement_chars() {
        let v = one(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"send_message","arguments":{"body":"a\ud800b\udc00 \ud83d\ude00 \\ud800"}}}"#,
        );
        assert_eq!(v["method"], "tools/call");
        assert_eq!(
            v["params"]["arguments"]["body"],
            "a\u{fffd}b\u{fffd} 😀 \\ud800"
        );
        let line = b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"arguments\":{\"b\":\"\xff\"}}}";
        let lines = rewrite(line).unwrap();
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(
            (v["id"].clone(), v["params"]["arguments"]["b"].clone()),
            (json!(2), json!("\u{fffd}"))
        );
        // A method or key with a lone surrogate is repaired too.
        let v = one(r#"{"jsonrpc":"2.0","id":3,"method":"\ud800"}"#);
        assert_eq!(v["method"], "\u{fffd}");
        // A notification with one is still a notification.
        let v = one(
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,"reason":"\udc00"}}"#,
        );
        assert!(v.get("id").is_none() && v["params"]["reason"] == "\u{fffd}");
    }

    #[test]
    fn out_of_range_numbers_are_read_as_null() {
        let v = one(
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"x","arguments":{"n":1e400}}}"#,
        );
        assert_eq!(v["params"]["arguments"]["n"], Value::Null);
        assert_eq!(v["method"], "tools/call");
    }

    #[test]
    fn too_deep_requests_are_refused_under_their_id() {
        let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
        let v = one(&format!(
            r#"{{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{{"name":"x","arguments":{{"d":{deep}}}}}}}"#
        ));
        assert_eq!(v["id"], 5);
        assert_eq!(v["method"], INVALID_REQUEST_METHOD);
        assert_eq!(v["params"]["code"], ErrorCode::INVALID_PARAMS.0);
        assert!(v["params"]["message"].as_str().unwrap().contains("127"));
        // Without a usable id: one id-null answer; a notification: nothing.
        let lines = rewrite(format!(r#"{{"id":1.5,"d":{deep}}}"#).as_bytes()).unwrap();
        assert_eq!(lines, ["null"]);
        let lines = rewrite(
            format!(r#"{{"jsonrpc":"2.0","method":"notifications/x","params":{{"d":{deep}}}}}"#)
                .as_bytes(),
        )
        .unwrap();
        assert!(lines.is_empty());
        // 127 levels in all still decode untouched.
        let ok = format!(
            r#"{{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{{"name":"x","arguments":{{"d":{}{}}}}}}}"#,
            "[".repeat(MAX_DEPTH - 3),
            "]".repeat(MAX_DEPTH - 3)
        );
        assert_eq!(rewrite(ok.as_bytes()), None);
    }

    #[test]
    fn ids_rmcp_cannot_carry_back_are_not_used() {
        for line in [
            r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":[1],"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1e400,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":"\udc00","method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":"a\ud800","method":"ping"}"#,
        ] {
            let lines = rewrite(line.as_bytes()).unwrap();
            assert_eq!(lines.len(), 1, "{line}");
            assert!(
                !lines[0].contains(INVALID_REQUEST_METHOD),
                "{line} → {lines:?}"
            );
            assert!(!decodes(lines[0].as_bytes()), "{line} → {lines:?}");
        }
        // A real U+FFFD in the id is a usable id even next to a lone surrogate.
        let v = one(
            r#"{"jsonrpc":"2.0","id":"\ufffd","method":"tools/call","params":{"name":"\ud800"}}"#,
        );
        assert_eq!(v["id"], "\u{fffd}");
        assert_eq!(v["method"], "tools/call");
    }

    #[test]
    fn batches_are_split_into_their_elements() {
        let lines = rewrite(
            br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}, {"jsonrpc":"2.0","id":2,"method":"tools/call","params":"x"}, 42, {"jsonrpc":"2.0","method":"notifications/initialized"}, {"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"a\ud800"}}]"#,
        )
        .unwrap();
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert_eq!(lines[0], r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
        assert!(lines[1].contains(INVALID_REQUEST_METHOD) && lines[1].contains(r#""id":2"#));
        assert_eq!(lines[2], "42");
        assert!(decodes(lines[3].as_bytes()));
        assert!(decodes(lines[4].as_bytes()) && lines[4].contains(r#"a\ufffd"#));
        // The empty batch is one invalid request (JSON-RPC 2.0 §6).
        assert_eq!(rewrite(b"[]").unwrap(), ["[]"]);
        assert_eq!(rewrite(b" [ ] ").unwrap(), [" [ ] "]);
    }

    #[test]
    fn id_less_values_go_on_for_rmcp_to_refuse() {
        for line in ["{}", "42", "null", "\"x\"", "true", "[[]]"] {
            let lines = rewrite(line.as_bytes()).unwrap();
            assert!(
                lines.iter().all(|l| !decodes(l.as_bytes())),
                "{line}: {lines:?}"
            );
        }
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

    #[tokio::test(flavor = "current_thread")]
    async fn an_oversized_line_streams_through_without_being_held() {
        let mut input = vec![b'x'; DEFAULT_MAX_LINE_LENGTH + 100_000];
        input.extend_from_slice(
            b"\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":\"y\"}\n",
        );
        let mut guard = StdinGuard::new(&input[..]);
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut most_held = 0;
        loop {
            let n = guard.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            most_held = most_held.max(guard.partial.len());
            out.extend_from_slice(&buf[..n]);
        }
        assert!(
            most_held <= DEFAULT_MAX_LINE_LENGTH + 8192,
            "held {most_held}"
        );
        assert_eq!(
            &out[..DEFAULT_MAX_LINE_LENGTH + 100_001],
            &input[..DEFAULT_MAX_LINE_LENGTH + 100_001]
        );
        // The next line is filtered again.
        let tail = String::from_utf8(out[DEFAULT_MAX_LINE_LENGTH + 100_001..].to_vec()).unwrap();
        assert!(tail.contains(INVALID_REQUEST_METHOD), "{tail}");
    }
}
