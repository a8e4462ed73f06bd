//! Strict JSON documents that setup edits (`~/.claude.json`,
//! `$CODEX_HOME/hooks.json`): parse, then print back in the file's own style.
//!
//! Invariants defended:
//! - malformed JSON (or a root that is not an object) is refused, never
//!   "repaired" — both clients read these files with strict parsers;
//! - keys keep their order (serde_json `preserve_order`), the file's indent
//!   unit and its trailing-newline choice are kept, so a file printed the way
//!   the clients print it (2-space `JSON.stringify`) changes only where we edit.

use serde_json::{Map, Value};

/// A parsed JSON object document and how it was laid out.
#[derive(Debug, Clone)]
pub struct JsonDoc {
    pub root: Map<String, Value>,
    indent: String,
    trailing_newline: bool,
}

impl JsonDoc {
    /// Parse `text` (`None` or blank = a new, empty document). `what` names
    /// the file in errors.
    pub fn parse(text: Option<&str>, what: &str) -> Result<JsonDoc, String> {
        let text = text.unwrap_or("");
        if text.trim().is_empty() {
            return Ok(JsonDoc {
                root: Map::new(),
                indent: "  ".into(),
                trailing_newline: true,
            });
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|e| format!("{what} is not valid JSON ({e}); fix it by hand first"))?;
        let Value::Object(root) = value else {
            return Err(format!(
                "{what} does not hold a JSON object at its top level; fix it by hand first"
            ));
        };
        Ok(JsonDoc {
            root,
            indent: detect_indent(text),
            trailing_newline: text.ends_with('\n'),
        })
    }

    /// The document printed in its original style.
    pub fn render(&self) -> String {
        use serde::Serialize;
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(self.indent.as_bytes());
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        // Serialising a Map of Values into a Vec cannot fail.
        let _ = Value::Object(self.root.clone()).serialize(&mut ser);
        let mut s = String::from_utf8(out).unwrap_or_default();
        if self.trailing_newline {
            s.push('\n');
        }
        s
    }
}

/// The object at `root[key]`, created empty when absent; an error when the
/// key holds something else.
pub fn object_at<'a>(
    root: &'a mut Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<&'a mut Map<String, Value>, String> {
    let slot = root
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    match slot {
        Value::Object(m) => Ok(m),
        other => Err(format!(
            "{what}: \"{key}\" is {} where an object was expected; fix it by hand first",
            kind(other)
        )),
    }
}

/// A word for the JSON type of `v`, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The leading whitespace of the first indented line, or two spaces.
fn detect_indent(text: &str) -> String {
    for line in text.lines().skip(1) {
        let ws: String = line
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        if !ws.is_empty() && ws.len() < line.len() {
            return ws;
        }
    }
    "  ".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_client_style_and_other_indents() {
        let two = "{\n  \"b\": 1,\n  \"a\": {\n    \"x\": [\n      1\n    ]\n  }\n}";
        assert_eq!(JsonDoc::parse(Some(two), "f").unwrap().render(), two);
        let four = "{\n    \"z\": true,\n    \"a\": null\n}\n";
        assert_eq!(JsonDoc::parse(Some(four), "f").unwrap().render(), four);
        let tab = "{\n\t\"k\": \"v\"\n}\n";
        assert_eq!(JsonDoc::parse(Some(tab), "f").unwrap().render(), tab);
    }

    #[test]
    fn refuses_malformed_and_non_objects() {
        assert!(JsonDoc::parse(Some("{\"a\": "), "f").is_err());
        assert!(JsonDoc::parse(Some("[1]"), "f").is_err());
        assert!(JsonDoc::parse(Some("{\"a\":1,}"), "f").is_err());
        assert!(JsonDoc::parse(Some("  \n"), "f").unwrap().root.is_empty());
        let mut doc = JsonDoc::parse(Some("{\"m\": 3}"), "f").unwrap();
        assert!(object_at(&mut doc.root, "m", "f").is_err());
    }
}
