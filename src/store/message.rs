//! The mailbox record (messaging.md §2): building, serialising, parsing.
//!
//! Invariants defended:
//! - every line this crate writes starts with the fixed prefix
//!   `{"schema_version":1,"id":"<16 lowercase hex>","body":"` — checked before
//!   every write, and a line that fails the check is refused, never written;
//! - keys are in the §2.2 order (our one addition, `to_session_id`, comes after
//!   every 0.14 key) and strings are escaped exactly like
//!   `JSON.stringify` (serde_json's compact writer: `\"`, `\\`, `\b\f\n\r\t`,
//!   other controls as lowercase `\u00xx`, everything else raw UTF-8), and
//!   integral numbers never gain a `.0`;
//! - a line is never rejected for a lone UTF-16 surrogate escape (`\ud800`):
//!   such escapes decode to U+FFFD, because rejecting means a drain drops it;
//! - a parsed record keeps every key (unknown ones too) in JavaScript object
//!   order, so ledger records and tool output show what was on disk.

use serde_json::{Map, Value};

use super::error::{StoreError, StoreResult};
use crate::config::js_number_value;

/// Optional correlation fields of a new message (empty = absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewMessage<'a> {
    pub request_id: Option<&'a str>,
    pub reply_to: Option<&'a str>,
    pub source_message_id: Option<&'a str>,
    /// Beyond the original: the session id the sender addressed (the target id,
    /// or the peer's current id for a tmux-name target). Written last, after
    /// every 0.14 key; a receiver that has since moved to another id labels
    /// the message as addressed to its previous id.
    pub to_session_id: Option<&'a str>,
    /// The question a late reply answers (new, last key: see [`Message::build`]).
    pub answers_message_id: Option<&'a str>,
}

/// One mailbox / ledger record: a JSON object with every key it was read with.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    fields: Map<String, Value>,
}

/// 16 lowercase hex characters from the thread CSPRNG (message ids and
/// `ask_peer` request ids, §2.4).
pub fn new_hex_id() -> String {
    let mut bytes = [0u8; 8];
    rand::fill(&mut bytes[..]);
    hex::encode(bytes)
}

/// Seconds since the Unix epoch (floor).
pub fn now_secs() -> u64 {
    crate::clock::now_s() as u64
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

impl Message {
    /// Build a fresh message (§5.1): new id, `enqueued_at` now (seconds),
    /// `body_bytes` = UTF-8 length, `origin` `"peer"`, optional fields only
    /// when non-empty.
    pub fn build(body: &str, from_session_id: Option<&str>, opts: &NewMessage<'_>) -> Message {
        Message::build_with(new_hex_id(), now_secs(), body, from_session_id, opts)
    }

    /// [`Message::build`] with an explicit id and time (tests, golden lines).
    pub fn build_with(
        id: String,
        enqueued_at: u64,
        body: &str,
        from_session_id: Option<&str>,
        opts: &NewMessage<'_>,
    ) -> Message {
        let mut m = Map::new();
        m.insert("schema_version".into(), Value::from(1));
        m.insert("id".into(), Value::from(id));
        m.insert("body".into(), Value::from(body));
        m.insert("enqueued_at".into(), Value::from(enqueued_at));
        m.insert("body_bytes".into(), Value::from(body.len()));
        m.insert("origin".into(), Value::from("peer"));
        for (key, val) in [
            ("from_session_id", from_session_id),
            ("request_id", opts.request_id),
            ("reply_to", opts.reply_to),
            ("source_message_id", opts.source_message_id),
            ("to_session_id", opts.to_session_id),
            ("answers_message_id", opts.answers_message_id),
        ] {
            if let Some(v) = non_empty(val) {
                m.insert(key.into(), Value::from(v));
            }
        }
        Message { fields: m }
    }

    /// Wrap an already-parsed object.
    pub fn from_map(fields: Map<String, Value>) -> Message {
        Message { fields }
    }

    /// All keys, in order.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.fields
    }

    /// A JSON object value of the whole record (for tool output).
    pub fn to_value(&self) -> Value {
        Value::Object(self.fields.clone())
    }

    fn str_field(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }

    /// `id` when it is a string.
    pub fn id(&self) -> Option<&str> {
        self.str_field("id")
    }

    /// `body` when it is a string.
    pub fn body(&self) -> Option<&str> {
        self.str_field("body")
    }

    pub fn from_session_id(&self) -> Option<&str> {
        self.str_field("from_session_id")
    }

    pub fn request_id(&self) -> Option<&str> {
        self.str_field("request_id")
    }

    pub fn reply_to(&self) -> Option<&str> {
        self.str_field("reply_to")
    }

    pub fn source_message_id(&self) -> Option<&str> {
        self.str_field("source_message_id")
    }

    /// `to_session_id` when it is a string (ours; absent in 0.14 lines).
    pub fn to_session_id(&self) -> Option<&str> {
        self.str_field("to_session_id")
    }

    /// `answers_message_id`: set on a late reply to a pending `ask_peer`, the
    /// question's message id (beyond the original; a new key after the
    /// 0.14 ones, which 0.14 readers skip and a 0.14 requeue drops).
    pub fn answers_message_id(&self) -> Option<&str> {
        self.str_field("answers_message_id")
    }

    /// `enqueued_at` when it is a number.
    pub fn enqueued_at(&self) -> Option<f64> {
        self.fields.get("enqueued_at").and_then(Value::as_f64)
    }

    /// Budget size (§9.3): `body_bytes` if numeric, else the body's UTF-8 length.
    pub fn size_bytes(&self) -> u64 {
        match self.fields.get("body_bytes").and_then(Value::as_f64) {
            Some(n) if n >= 0.0 => n as u64,
            Some(_) => 0,
            None => self.body().map_or(0, |b| b.len() as u64),
        }
    }

    /// `schema_version` is the number 1.
    pub fn is_schema_v1(&self) -> bool {
        self.fields.get("schema_version").and_then(Value::as_f64) == Some(1.0)
    }

    /// The full-drain validity rule (§2.7): schema 1, string `id`, string `body`.
    pub fn is_drainable(&self) -> bool {
        self.is_schema_v1() && self.id().is_some() && self.body().is_some()
    }

    /// The mailbox line of this record (§5.10 re-serialisation), with its
    /// trailing `\n`. Known keys only, §2.2 order; refused (nothing to write)
    /// unless the result carries the fixed prefix.
    pub fn to_line(&self) -> StoreResult<String> {
        let f = &self.fields;
        // Written straight from the held values (no copy of the record): the
        // keys are plain ASCII, each value goes through the same compact,
        // JavaScript-numbered serialiser as [`to_compact`].
        let mut out = Vec::with_capacity(160 + js_utf8_len(f.get("body")));
        out.push(b'{');
        let mut first = true;
        let mut put = |out: &mut Vec<u8>, key: &str, v: &Value| {
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"\":");
            let _ = serde_json::to_writer(&mut *out, &JsNumbers(v));
        };
        for key in ["schema_version", "id", "body", "enqueued_at"] {
            if let Some(v) = f.get(key) {
                put(&mut out, key, v);
            }
        }
        match f.get("body_bytes") {
            Some(v) if !v.is_null() => put(&mut out, "body_bytes", v),
            _ => put(
                &mut out,
                "body_bytes",
                &Value::from(js_utf8_len(f.get("body"))),
            ),
        }
        match f.get("origin") {
            Some(v) if !v.is_null() => put(&mut out, "origin", v),
            _ => put(&mut out, "origin", &Value::from("peer")),
        }
        for key in [
            "from_session_id",
            "request_id",
            "reply_to",
            "source_message_id",
            "to_session_id",
            "answers_message_id",
        ] {
            if let Some(v) = f.get(key).filter(|v| js_truthy(v)) {
                put(&mut out, key, v);
            }
        }
        out.push(b'}');
        let mut line = String::from_utf8(out).unwrap_or_default();
        check_prefix(&line)?;
        line.push('\n');
        Ok(line)
    }

    /// Compact JSON of the whole record, every key kept (the ledger format).
    pub fn to_record_json(&self) -> String {
        serde_json::to_string(&JsFields(&self.fields)).unwrap_or_default()
    }

    /// Parse one line (§2.7): any JSON object, tolerant of lone surrogate
    /// escapes. `None` for anything else. No schema check.
    pub fn parse_line(line: &str) -> Option<Message> {
        match parse_json(line)? {
            Value::Object(m) => Some(Message::from_map(js_key_order(m))),
            _ => None,
        }
    }
}

/// UTF-8 length of a string body (0 for non-strings, as `Buffer.byteLength` of
/// their string form is not reproduced).
fn js_utf8_len(v: Option<&Value>) -> usize {
    v.and_then(Value::as_str).map_or(0, str::len)
}

/// JavaScript truthiness of a JSON value.
fn js_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0 && !x.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// The §2.2 prefix: `{"schema_version":1,"id":"` + 16 `[0-9a-f]` + `","body":"`.
pub fn has_fixed_prefix(line: &str) -> bool {
    const HEAD: &str = "{\"schema_version\":1,\"id\":\"";
    const TAIL: &str = "\",\"body\":\"";
    let b = line.as_bytes();
    b.len() >= HEAD.len() + 16 + TAIL.len()
        && line.starts_with(HEAD)
        && b[HEAD.len()..HEAD.len() + 16]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
        && line[HEAD.len() + 16..].starts_with(TAIL)
}

fn check_prefix(line: &str) -> StoreResult<()> {
    if has_fixed_prefix(line) {
        return Ok(());
    }
    let shown: String = line.chars().take(60).collect();
    Err(StoreError::InvalidRecord {
        reason: format!(
            "line does not start with {{\"schema_version\":1,\"id\":\"<16 hex>\",\"body\":\" : {shown}"
        ),
    })
}

/// Compact JSON exactly as `JSON.stringify` writes it for our values:
/// integral floats are written as integers.
pub fn to_compact(v: &Value) -> String {
    serde_json::to_string(&JsNumbers(v)).unwrap_or_default()
}

/// A value serialised with JavaScript's number printing (an integral float
/// as an integer), without copying it.
struct JsNumbers<'a>(&'a Value);

impl serde::Serialize for JsNumbers<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        match self.0 {
            Value::Number(n) if !n.is_i64() && !n.is_u64() => match n.as_f64() {
                Some(x) => js_number_value(x).serialize(s),
                None => self.0.serialize(s),
            },
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(&JsNumbers(v))?;
                }
                seq.end()
            }
            Value::Object(m) => JsFields(m).serialize(s),
            other => other.serialize(s),
        }
    }
}

/// An object's members, serialised as [`JsNumbers`] does.
struct JsFields<'a>(&'a Map<String, Value>);

impl serde::Serialize for JsFields<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, &JsNumbers(v))?;
        }
        map.end()
    }
}

/// Parse JSON text the way `JSON.parse` reads it: lone surrogate escapes
/// become U+FFFD and out-of-range numbers `null` instead of failing
/// ([`crate::json_text`]).
pub fn parse_json(text: &str) -> Option<Value> {
    match serde_json::from_str(text) {
        Ok(v) => Some(v),
        Err(_) => {
            let fixed = crate::json_text::repair(text, usize::MAX)?;
            serde_json::from_str(&fixed.text).ok()
        }
    }
}

/// A canonical array index key (`"0"`, `"42"`, below 2^32 − 1, no leading 0).
fn is_array_index(k: &str) -> bool {
    !k.is_empty()
        && k.bytes().all(|b| b.is_ascii_digit())
        && (k == "0" || !k.starts_with('0'))
        && k.parse::<u64>().is_ok_and(|n| n < u32::MAX as u64)
}

/// JavaScript property order: array-index keys first (ascending), then the
/// rest in insertion order. Applied to nested objects too.
fn js_key_order(m: Map<String, Value>) -> Map<String, Value> {
    let needs = |m: &Map<String, Value>| m.keys().any(|k| is_array_index(k));
    let nested = m.values().any(|v| matches!(v, Value::Object(_)));
    if !needs(&m) && !nested {
        return m;
    }
    let fix = |v: Value| match v {
        Value::Object(inner) => Value::Object(js_key_order(inner)),
        other => other,
    };
    if !needs(&m) {
        return m.into_iter().map(|(k, v)| (k, fix(v))).collect();
    }
    let mut idx: Vec<(u64, String, Value)> = Vec::new();
    let mut rest = Map::new();
    for (k, v) in m {
        if is_array_index(&k) {
            idx.push((k.parse().unwrap_or(0), k, fix(v)));
        } else {
            rest.insert(k, fix(v));
        }
    }
    idx.sort_by_key(|e| e.0);
    let mut out = Map::new();
    for (_, k, v) in idx {
        out.insert(k, v);
    }
    out.extend(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_prefix_check() {
        assert!(has_fixed_prefix(
            "{\"schema_version\":1,\"id\":\"0123456789abcdef\",\"body\":\"x\"}"
        ));
        assert!(!has_fixed_prefix(
            "{\"schema_version\":1,\"id\":\"0123456789ABCDEF\",\"body\":\"x\"}"
        ));
        assert!(!has_fixed_prefix(
            "{\"schema_version\":1,\"id\":\"0123456789abcde\",\"body\":\"x\"}"
        ));
        assert!(!has_fixed_prefix(
            "{\"schema_version\":2,\"id\":\"0123456789abcdef\",\"body\":\"x\"}"
        ));
    }

    #[test]
    fn lone_surrogates_become_replacement_chars() {
        let m = Message::parse_line(
            r#"{"schema_version":1,"id":"0123456789abcdef","body":"a\ud800b\udc00c\\ud800"}"#,
        )
        .unwrap();
        assert_eq!(m.body(), Some("a\u{fffd}b\u{fffd}c\\ud800"));
        let pair = Message::parse_line(r#"{"b":"\ud83d\ude00 \ud83d"}"#).unwrap();
        assert_eq!(pair.fields()["b"], "😀 \u{fffd}");
        assert!(Message::parse_line("{\"b\":\"\\ud800\"").is_none());
    }

    #[test]
    fn array_index_keys_move_first_like_javascript() {
        let m = Message::parse_line(r#"{"b":1,"7":2,"a":3,"0":4,"07":5,"b":6}"#).unwrap();
        let keys: Vec<_> = m.fields().keys().cloned().collect();
        assert_eq!(keys, ["0", "7", "b", "a", "07"]);
        assert_eq!(
            m.fields()["b"],
            6,
            "duplicate keeps first position, last value"
        );
    }

    #[test]
    fn integral_floats_serialise_as_integers() {
        let m = Message::parse_line(
            r#"{"schema_version":1.0,"id":"0123456789abcdef","body":"x","enqueued_at":5.0,"body_bytes":1e0}"#,
        )
        .unwrap();
        assert_eq!(
            m.to_line().unwrap(),
            "{\"schema_version\":1,\"id\":\"0123456789abcdef\",\"body\":\"x\",\"enqueued_at\":5,\"body_bytes\":1,\"origin\":\"peer\"}\n"
        );
    }
}
