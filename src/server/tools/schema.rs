//! Declarative tool parameters: one table per tool yields both the advertised
//! JSON Schema and the argument validation (server spec §1.3).
//!
//! Invariants defended: a tool body only ever sees arguments of the declared
//! types within the declared limits; every rejection is an `isError` result
//! whose text names the field and the limit (the original's SDK wording:
//! `MCP error -32602: Input validation error: Invalid arguments for tool <name>:`
//! followed by a pretty-printed issue list); unknown extra keys are ignored.

use serde_json::{Map, Value, json};

use crate::identity::{MAX_ID_LEN, is_safe_id};
use crate::store::paths::is_message_id;

/// JavaScript's `Number.MAX_SAFE_INTEGER`.
pub const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

/// The type and limits of one parameter.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A string. `min_len`/`max_len` count UTF-16 code units (as the original
    /// does); `max_utf8_bytes` is a custom byte limit with its own message;
    /// `safe_id` rejects `/`, `..`, control characters and more than
    /// [`MAX_ID_LEN`] bytes (not advertised in the schema).
    Str {
        min_len: Option<usize>,
        max_len: Option<usize>,
        max_utf8_bytes: Option<usize>,
        safe_id: bool,
    },
    Bool,
    /// An integer within the safe range; the bounds are advertised as given.
    Int {
        minimum: Option<i64>,
        exclusive_minimum: Option<i64>,
        maximum: Option<i64>,
    },
    /// One of the listed strings.
    Enum(&'static [&'static str]),
    /// A message id as the send tools return it: 16 lowercase hex characters
    /// (advertised as a `pattern`).
    MessageId,
}

impl Kind {
    /// A plain string.
    pub const STR: Kind = Kind::Str {
        min_len: None,
        max_len: None,
        max_utf8_bytes: None,
        safe_id: false,
    };
    /// A session id or target: non-empty and path-safe.
    pub const ID: Kind = Kind::Str {
        min_len: Some(1),
        max_len: None,
        max_utf8_bytes: None,
        safe_id: true,
    };
    /// An integer advertised with the safe-integer range (zod's `int()`).
    pub const INT: Kind = Kind::Int {
        minimum: Some(-MAX_SAFE_INTEGER),
        exclusive_minimum: None,
        maximum: Some(MAX_SAFE_INTEGER),
    };
}

/// One declared parameter.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    pub description: &'static str,
}

/// A tool's name, description, parameters and behaviour hints.
#[derive(Debug)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub params: &'static [Param],
    pub hints: Hints,
}

/// The MCP tool annotations a tool advertises (beyond the original, which
/// sends none): clients use them to decide on their own whether a call needs
/// the user's approval. Every oxtail tool works on this user's oxtail peers on
/// this machine only, so `openWorldHint` is always false.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hints {
    /// Changes nothing a peer or the user can see (a tool that only refines
    /// its own cached identity still counts as reading).
    pub read_only: bool,
    /// May remove or overwrite something (meaningful when not read-only).
    pub destructive: bool,
    /// Repeating the call with the same arguments changes nothing more.
    pub idempotent: bool,
}

impl Hints {
    /// Looks things up; changes nothing.
    pub const READ_ONLY: Hints = Hints {
        read_only: true,
        destructive: false,
        idempotent: true,
    };
    /// Sets this server's own identity or state card to the given value.
    pub const SETS_OWN_STATE: Hints = Hints {
        read_only: false,
        destructive: false,
        idempotent: true,
    };
    /// Moves messages: sends one to a peer's mailbox, or hands the caller
    /// what its own mailbox holds. Not read-only, but not destructive either:
    /// nothing is lost, a message only travels from sender to receiver (a
    /// drain returns each message once, to the agent it was for). Not
    /// idempotent: each call moves more. (Codex asks before a tool that says
    /// it is destructive, and `codex exec` then fails it: marking the drain
    /// destructive would make Codex refuse to read its own mail.)
    pub const MESSAGES: Hints = Hints {
        read_only: false,
        destructive: false,
        idempotent: false,
    };

    /// The rmcp annotations object. `destructiveHint` and `idempotentHint`
    /// only mean something for a tool that is not read-only, so a read-only
    /// tool sends just `readOnlyHint` and `openWorldHint`.
    pub fn to_annotations(self) -> rmcp::model::ToolAnnotations {
        let a = rmcp::model::ToolAnnotations::new().read_only(self.read_only);
        let a = if self.read_only {
            a
        } else {
            a.destructive(self.destructive).idempotent(self.idempotent)
        };
        a.open_world(false)
    }
}

impl ToolSpec {
    /// The advertised input schema.
    pub fn input_schema(&self) -> Map<String, Value> {
        let mut props = Map::new();
        for p in self.params {
            props.insert(p.name.into(), Value::Object(property_schema(p)));
        }
        let mut schema = Map::new();
        schema.insert(
            "$schema".into(),
            json!("http://json-schema.org/draft-07/schema#"),
        );
        schema.insert("type".into(), json!("object"));
        schema.insert("properties".into(), Value::Object(props));
        let required: Vec<&str> = self
            .params
            .iter()
            .filter(|p| p.required)
            .map(|p| p.name)
            .collect();
        if !required.is_empty() {
            schema.insert("required".into(), json!(required));
        }
        schema
    }

    /// The `tools/list` entry.
    pub fn to_tool(&self) -> rmcp::model::Tool {
        rmcp::model::Tool::new(self.name, self.description, self.input_schema())
            .annotate(self.hints.to_annotations())
    }

    /// Validate `args`; `Err` carries the full `isError` text.
    pub fn validate(&self, args: &Map<String, Value>) -> Result<(), String> {
        let issues: Vec<Value> = self
            .params
            .iter()
            .flat_map(|p| check(p, args.get(p.name)))
            .collect();
        if issues.is_empty() {
            return Ok(());
        }
        Err(validation_error_text(self.name, &issues))
    }
}

/// `MCP error -32602: Input validation error: Invalid arguments for tool
/// <tool>: <pretty issues>` — for tools that check something beyond [`Kind`].
pub fn validation_error_text(tool: &str, issues: &[Value]) -> String {
    let list = serde_json::to_string_pretty(issues).unwrap_or_default();
    format!("MCP error -32602: Input validation error: Invalid arguments for tool {tool}: {list}")
}

/// A `custom` issue naming `field`.
pub fn custom_issue(field: &str, message: &str) -> Value {
    json!({"code": "custom", "path": [field], "message": message})
}

/// One property's schema, keys in the original's order: zod puts the
/// `description` of an `.optional().describe()` field first and that of a
/// required field last.
fn property_schema(p: &Param) -> Map<String, Value> {
    let mut m = Map::new();
    if !p.required {
        m.insert("description".into(), json!(p.description));
    }
    match p.kind {
        Kind::Str {
            min_len, max_len, ..
        } => {
            m.insert("type".into(), json!("string"));
            if let Some(n) = min_len {
                m.insert("minLength".into(), json!(n));
            }
            if let Some(n) = max_len {
                m.insert("maxLength".into(), json!(n));
            }
        }
        Kind::Bool => {
            m.insert("type".into(), json!("boolean"));
        }
        Kind::Int {
            minimum,
            exclusive_minimum,
            maximum,
        } => {
            m.insert("type".into(), json!("integer"));
            if let Some(n) = exclusive_minimum {
                m.insert("exclusiveMinimum".into(), json!(n));
            }
            if let Some(n) = minimum {
                m.insert("minimum".into(), json!(n));
            }
            if let Some(n) = maximum {
                m.insert("maximum".into(), json!(n));
            }
        }
        Kind::Enum(values) => {
            m.insert("type".into(), json!("string"));
            m.insert("enum".into(), json!(values));
        }
        Kind::MessageId => {
            m.insert("type".into(), json!("string"));
            m.insert("pattern".into(), json!("^[0-9a-f]{16}$"));
        }
    }
    if p.required {
        m.insert("description".into(), json!(p.description));
    }
    m
}

fn received(v: Option<&Value>) -> &'static str {
    match v {
        None => "undefined",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

fn invalid_type(name: &str, expected: &str, v: Option<&Value>) -> Value {
    json!({
        "expected": expected,
        "code": "invalid_type",
        "path": [name],
        "message": format!("Invalid input: expected {expected}, received {}", received(v)),
    })
}

/// The issues of one parameter (zod stops at a type mismatch but reports
/// every bound an integer breaks).
fn check(p: &Param, v: Option<&Value>) -> Vec<Value> {
    if v.is_none() && !p.required {
        return Vec::new();
    }
    if let Kind::Int {
        minimum,
        exclusive_minimum,
        maximum,
    } = p.kind
    {
        return check_int(p.name, minimum, exclusive_minimum, maximum, v);
    }
    check_scalar(p, v).into_iter().collect()
}

fn check_scalar(p: &Param, v: Option<&Value>) -> Option<Value> {
    match p.kind {
        Kind::Str {
            min_len,
            max_len,
            max_utf8_bytes,
            safe_id,
        } => {
            let Some(Value::String(s)) = v else {
                return Some(invalid_type(p.name, "string", v));
            };
            let units = s.encode_utf16().count();
            if let Some(min) = min_len.filter(|&m| units < m) {
                return Some(json!({
                    "origin": "string", "code": "too_small", "minimum": min, "inclusive": true, "path": [p.name],
                    "message": format!("Too small: expected string to have >={min} characters"),
                }));
            }
            if let Some(max) = max_len.filter(|&m| units > m) {
                return Some(json!({
                    "origin": "string", "code": "too_big", "maximum": max, "inclusive": true, "path": [p.name],
                    "message": format!("Too big: expected string to have <={max} characters"),
                }));
            }
            if let Some(max) = max_utf8_bytes.filter(|&m| s.len() > m) {
                return Some(custom_issue(
                    p.name,
                    &format!("{} exceeds {max} UTF-8 bytes", p.name),
                ));
            }
            if safe_id && !s.is_empty() && !is_safe_id(s) {
                return Some(custom_issue(
                    p.name,
                    &format!(
                        "{} must be 1..{MAX_ID_LEN} bytes without '/', '..' or control characters",
                        p.name
                    ),
                ));
            }
            None
        }
        Kind::Bool => match v {
            Some(Value::Bool(_)) => None,
            _ => Some(invalid_type(p.name, "boolean", v)),
        },
        Kind::Enum(values) => match v {
            Some(Value::String(s)) if values.contains(&s.as_str()) => None,
            _ => {
                let quoted: Vec<String> = values.iter().map(|s| format!("\"{s}\"")).collect();
                Some(json!({
                    "code": "invalid_value", "values": values, "path": [p.name],
                    "message": format!("Invalid option: expected one of {}", quoted.join("|")),
                }))
            }
        },
        Kind::MessageId => match v {
            Some(Value::String(s)) if is_message_id(s) => None,
            Some(Value::String(_)) => Some(custom_issue(
                p.name,
                &format!("{} is the 16-hex id returned by the send tools", p.name),
            )),
            _ => Some(invalid_type(p.name, "string", v)),
        },
        Kind::Int { .. } => None,
    }
}

/// An integer: integral and within the safe range, then the declared bounds.
fn check_int(
    name: &str,
    minimum: Option<i64>,
    exclusive_minimum: Option<i64>,
    maximum: Option<i64>,
    v: Option<&Value>,
) -> Vec<Value> {
    let Some(Value::Number(n)) = v else {
        return vec![invalid_type(name, "number", v)];
    };
    let f = n.as_f64().unwrap_or(f64::NAN);
    if !f.is_finite() || f.fract() != 0.0 {
        return vec![json!({
            "expected": "int", "format": "safeint", "code": "invalid_type", "path": [name],
            "message": "Invalid input: expected int, received number",
        })];
    }
    let too_small = |min: i64, inclusive: bool| {
        let rel = if inclusive { ">=" } else { ">" };
        json!({
            "origin": "number", "code": "too_small", "minimum": min, "inclusive": inclusive, "path": [name],
            "message": format!("Too small: expected number to be {rel}{min}"),
        })
    };
    // zod reports the safe-integer bound (origin "int", with a note)
    // first, then any declared bound the value also breaks.
    let safe = MAX_SAFE_INTEGER as f64;
    let mut issues = Vec::new();
    if f > safe {
        issues.push(json!({
            "code": "too_big", "maximum": MAX_SAFE_INTEGER, "note": SAFE_INT_NOTE, "origin": "int",
            "inclusive": true, "path": [name],
            "message": format!("Too big: expected int to be <={MAX_SAFE_INTEGER}"),
        }));
    } else if f < -safe {
        issues.push(json!({
            "code": "too_small", "minimum": -MAX_SAFE_INTEGER, "note": SAFE_INT_NOTE, "origin": "int",
            "inclusive": true, "path": [name],
            "message": format!("Too small: expected int to be >=-{MAX_SAFE_INTEGER}"),
        }));
    }
    if let Some(max) = maximum.filter(|&m| m < MAX_SAFE_INTEGER && f > m as f64) {
        issues.push(json!({
            "origin": "number", "code": "too_big", "maximum": max, "inclusive": true, "path": [name],
            "message": format!("Too big: expected number to be <={max}"),
        }));
    }
    if let Some(min) = exclusive_minimum.filter(|&m| f <= m as f64) {
        issues.push(too_small(min, false));
    }
    if let Some(min) = minimum.filter(|&m| m > -MAX_SAFE_INTEGER && f < m as f64) {
        issues.push(too_small(min, true));
    }
    issues
}

/// zod's note on an integer outside the safe range.
const SAFE_INT_NOTE: &str = "Integers must be within the safe integer range.";

/// Typed access to validated arguments.
pub struct Args<'a>(pub &'a Map<String, Value>);

impl<'a> Args<'a> {
    pub fn str(&self, name: &str) -> Option<&'a str> {
        self.0.get(name).and_then(Value::as_str)
    }

    pub fn bool(&self, name: &str) -> Option<bool> {
        self.0.get(name).and_then(Value::as_bool)
    }

    /// An integer argument (validated to be integral and within the safe range).
    pub fn int(&self, name: &str) -> Option<i64> {
        let n = self.0.get(name)?.as_number()?;
        n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static SPEC: ToolSpec = ToolSpec {
        name: "t",
        description: "d",
        hints: Hints::READ_ONLY,
        params: &[
            Param {
                name: "id",
                kind: Kind::ID,
                required: true,
                description: "i",
            },
            Param {
                name: "purpose",
                kind: Kind::Str {
                    min_len: None,
                    max_len: Some(200),
                    max_utf8_bytes: None,
                    safe_id: false,
                },
                required: false,
                description: "p",
            },
            Param {
                name: "n",
                kind: Kind::INT,
                required: false,
                description: "n",
            },
            Param {
                name: "mode",
                kind: Kind::Enum(&["a", "b"]),
                required: false,
                description: "m",
            },
            Param {
                name: "flag",
                kind: Kind::Bool,
                required: false,
                description: "f",
            },
            Param {
                name: "body",
                kind: Kind::Str {
                    min_len: Some(1),
                    max_len: None,
                    max_utf8_bytes: Some(8192),
                    safe_id: false,
                },
                required: false,
                description: "b",
            },
            Param {
                name: "timeout_ms",
                kind: Kind::Int {
                    minimum: None,
                    exclusive_minimum: Some(0),
                    maximum: Some(300_000),
                },
                required: false,
                description: "t",
            },
        ],
    };

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn schema_shape() {
        let s = Value::Object(SPEC.input_schema());
        assert_eq!(s["$schema"], "http://json-schema.org/draft-07/schema#");
        assert_eq!(s["required"], json!(["id"]));
        assert_eq!(s["properties"]["id"]["minLength"], 1);
        assert_eq!(s["properties"]["n"]["maximum"], MAX_SAFE_INTEGER);
        assert_eq!(s["properties"]["timeout_ms"]["exclusiveMinimum"], 0);
        assert!(s["properties"]["timeout_ms"].get("minimum").is_none());
        assert_eq!(s["properties"]["mode"]["enum"], json!(["a", "b"]));
        assert!(s.get("additionalProperties").is_none());
    }

    #[test]
    fn property_key_order_follows_zod() {
        let s = Value::Object(SPEC.input_schema());
        let keys = |name: &str| -> Vec<String> {
            s["properties"][name]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        // Required: description last; optional: description first.
        assert_eq!(keys("id"), ["type", "minLength", "description"]);
        assert_eq!(keys("mode"), ["description", "type", "enum"]);
        assert_eq!(
            keys("timeout_ms"),
            ["description", "type", "exclusiveMinimum", "maximum"]
        );
    }

    #[test]
    fn unsafe_integers_get_zods_int_issue_then_declared_bounds() {
        let err = SPEC
            .validate(&args(json!({"id": "x", "n": 1e20})))
            .unwrap_err();
        let list: Value = serde_json::from_str(&err[err.find('[').unwrap()..]).unwrap();
        assert_eq!(
            list,
            json!([{"code": "too_big", "maximum": MAX_SAFE_INTEGER, "note": SAFE_INT_NOTE,
                    "origin": "int", "inclusive": true, "path": ["n"],
                    "message": "Too big: expected int to be <=9007199254740991"}])
        );
        let err = SPEC
            .validate(&args(json!({"id": "x", "timeout_ms": -1e20})))
            .unwrap_err();
        assert!(
            err.contains("expected int to be >=-9007199254740991"),
            "{err}"
        );
        assert!(err.contains("expected number to be >0"), "{err}");
    }

    #[test]
    fn accepts_good_and_ignores_extras() {
        let a = args(
            json!({"id": "abc", "purpose": "x", "n": 3.0, "mode": "a", "flag": true, "extra": [1]}),
        );
        assert!(SPEC.validate(&a).is_ok());
        assert_eq!(Args(&a).int("n"), Some(3));
    }

    #[test]
    fn rejects_with_field_and_limit() {
        let cases = [
            (json!({}), "id"),
            (json!({"id": 5}), "expected string"),
            (json!({"id": ""}), ">=1"),
            (json!({"id": "a/b"}), "'/'"),
            (json!({"id": "a..b"}), "id"),
            (json!({"id": "a\u{0}b"}), "control"),
            (json!({"id": "x", "purpose": "p".repeat(201)}), "<=200"),
            (json!({"id": "x", "n": 1.5}), "expected int"),
            (json!({"id": "x", "n": 1e20}), "9007199254740991"),
            (json!({"id": "x", "n": "3"}), "expected number"),
            (json!({"id": "x", "mode": "c"}), "\\\"a\\\"|\\\"b\\\""),
            (json!({"id": "x", "flag": null}), "received null"),
            (
                json!({"id": "x", "body": "é".repeat(4097)}),
                "body exceeds 8192 UTF-8 bytes",
            ),
            (json!({"id": "x", "timeout_ms": 0}), ">0"),
            (json!({"id": "x", "timeout_ms": 300001}), "<=300000"),
        ];
        for (a, needle) in cases {
            let err = SPEC.validate(&args(a.clone())).unwrap_err();
            assert!(
                err.starts_with(
                    "MCP error -32602: Input validation error: Invalid arguments for tool t: "
                ),
                "{err}"
            );
            assert!(err.contains(needle), "{a} -> {err}");
        }
        // Emoji count as two UTF-16 units: 100 emoji = 200 units is fine, 101 is not.
        assert!(
            SPEC.validate(&args(json!({"id": "x", "purpose": "😀".repeat(100)})))
                .is_ok()
        );
        assert!(
            SPEC.validate(&args(json!({"id": "x", "purpose": "😀".repeat(101)})))
                .is_err()
        );
    }
}
