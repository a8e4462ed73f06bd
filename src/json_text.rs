//! JSON text that JavaScript's `JSON.parse` accepts but `serde_json` refuses,
//! repaired into text that `serde_json` decodes the way the original reads it.
//!
//! Three kinds of valid JSON text fail in `serde_json` and parse in Node:
//! - a `\uD800`–`\uDFFF` escape that is not half of a valid surrogate pair
//!   (JavaScript holds a lone surrogate; Node writes it to disk or a pipe as
//!   U+FFFD) — rewritten as `\ufffd`;
//! - a number beyond the `f64` range (`1e400`; JavaScript reads `Infinity`,
//!   which `JSON.stringify` writes as `null`) — rewritten as `null`;
//! - nesting deeper than `serde_json`'s recursion limit (optional, callers pick
//!   the depth) — the too-deep container is replaced by `null` and reported,
//!   so the caller can refuse the text while still reading its shallow parts.
//!
//! Invariant defended: the repair changes nothing else. Valid surrogate pairs,
//! escaped backslashes (`\\ud800` is the text `\ud800`, not an escape), other
//! escapes, strings and in-range numbers are copied byte for byte, and text
//! that needs no repair is not copied at all.

/// `serde_json`'s default recursion limit: text nested this deep or deeper
/// fails to decode (`[` 127 times nests fine, 128 times does not).
pub const SERDE_DEPTH_LIMIT: usize = 128;

/// The outcome of [`repair`] when something was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    /// The repaired text.
    pub text: String,
    /// Lone surrogate escapes were replaced.
    pub surrogates: bool,
    /// A container nested deeper than the limit was replaced by `null`.
    pub too_deep: bool,
}

/// Repair `text` (see the module doc); containers nested deeper than
/// `max_depth` become `null`. `None` when nothing needed a change.
pub fn repair(text: &str, max_depth: usize) -> Option<Repaired> {
    repair_with(text, max_depth, "\\ufffd")
}

/// [`repair`] with `lone` (a JSON escape) written for each lone surrogate.
pub fn repair_with(text: &str, max_depth: usize, lone: &str) -> Option<Repaired> {
    let b = text.as_bytes();
    let mut out = Edits::new(text);
    let (mut surrogates, mut too_deep) = (false, false);
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = scan_string(b, i, &mut |at| {
                    out.replace(at, at + 6, lone);
                    surrogates = true;
                });
            }
            b'[' | b'{' if depth >= max_depth => {
                let end = skip_container(b, i);
                out.replace(i, end, "null");
                too_deep = true;
                i = end;
            }
            b'[' | b'{' => {
                depth += 1;
                i += 1;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            // A whole run of number characters is one token, so `.5e999`
            // is never read from its middle.
            b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9' => {
                let end = number_end(b, i);
                if is_infinite_number(&text[i..end]) {
                    out.replace(i, end, "null");
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    out.finish().map(|text| Repaired {
        text,
        surrogates,
        too_deep,
    })
}

/// The texts of the elements of the JSON array `text` (surrounding
/// whitespace trimmed), found without decoding them, so that each element
/// can be repaired on its own. `None` when `text` is not an array; the
/// caller has checked that it is valid JSON.
pub fn array_elements(text: &str) -> Option<Vec<&str>> {
    let open = text.len() - text.trim_start().len();
    if text.as_bytes().get(open) != Some(&b'[') {
        return None;
    }
    let mut cuts = vec![open];
    let end = walk_container(text.as_bytes(), open, &mut |comma| cuts.push(comma))?;
    cuts.push(end - 1);
    let out: Vec<&str> = cuts
        .windows(2)
        .map(|w| text[w[0] + 1..w[1]].trim())
        .collect();
    // `[]` and `[ ]` have no element.
    Some(if out == [""] { Vec::new() } else { out })
}

/// Copy-on-write edits of a text, applied left to right.
struct Edits<'a> {
    src: &'a str,
    out: Option<String>,
    copied: usize,
}

impl<'a> Edits<'a> {
    fn new(src: &'a str) -> Self {
        Edits {
            src,
            out: None,
            copied: 0,
        }
    }

    fn replace(&mut self, start: usize, end: usize, with: &str) {
        let out = self
            .out
            .get_or_insert_with(|| String::with_capacity(self.src.len()));
        out.push_str(&self.src[self.copied..start]);
        out.push_str(with);
        self.copied = end;
    }

    fn finish(self) -> Option<String> {
        let mut out = self.out?;
        out.push_str(&self.src[self.copied..]);
        Some(out)
    }
}

/// Four hex digits at the start of `b`.
fn hex4(b: &[u8]) -> Option<u16> {
    let digits = b.get(..4)?;
    digits.iter().try_fold(0u16, |acc, &c| {
        let d = (c as char).to_digit(16)?;
        Some((acc << 4) | d as u16)
    })
}

/// Scan the string whose opening quote is at `start`; call `lone` with the
/// offset of every lone surrogate escape. Returns the offset after the
/// closing quote (the end of `b` when the string is unterminated).
fn scan_string(b: &[u8], start: usize, lone: &mut dyn FnMut(usize)) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'"' => return i + 1,
            b'\\' if b.get(i + 1) == Some(&b'u') => {
                let Some(unit) = hex4(&b[i + 2..]) else {
                    i += 2;
                    continue;
                };
                match unit {
                    0xD800..=0xDBFF => {
                        let low = (b.get(i + 6) == Some(&b'\\') && b.get(i + 7) == Some(&b'u'))
                            .then(|| hex4(&b[i + 8..]))
                            .flatten();
                        if matches!(low, Some(0xDC00..=0xDFFF)) {
                            i += 12;
                            continue;
                        }
                        lone(i);
                    }
                    0xDC00..=0xDFFF => lone(i),
                    _ => {}
                }
                i += 6;
            }
            // Any other escape, `\\` and `\"` included, is two bytes.
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    b.len()
}

/// The offset after the container opened at `start` (strings inside are
/// skipped whole; the end of `b` when it is never closed).
fn skip_container(b: &[u8], start: usize) -> usize {
    walk_container(b, start, &mut |_| {}).unwrap_or(b.len())
}

/// Walk the container opened at `start`, calling `comma` with the offset of
/// each comma directly inside it; the offset after its closing bracket, or
/// `None` when it is never closed.
fn walk_container(b: &[u8], start: usize, comma: &mut dyn FnMut(usize)) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = scan_string(b, i, &mut |_| {});
                continue;
            }
            b'[' | b'{' => depth += 1,
            b',' if depth == 1 => comma(i),
            b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The end of the run of number characters starting at `start`.
fn number_end(b: &[u8], start: usize) -> usize {
    let len = b[start..]
        .iter()
        .take_while(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
        .count();
    start + len
}

/// A JSON number token (RFC 8259 grammar) whose value is beyond `f64`.
fn is_infinite_number(tok: &str) -> bool {
    is_json_number(tok.as_bytes()) && tok.parse::<f64>().is_ok_and(f64::is_infinite)
}

/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
fn is_json_number(t: &[u8]) -> bool {
    let digits = |i: usize| {
        t[i.min(t.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let mut i = usize::from(t.first() == Some(&b'-'));
    match t.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i += digits(i),
        _ => return false,
    }
    if t.get(i) == Some(&b'.') {
        let n = digits(i + 1);
        if n == 0 {
            return false;
        }
        i += 1 + n;
    }
    if matches!(t.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(t.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let n = digits(i);
        if n == 0 {
            return false;
        }
        i += n;
    }
    i == t.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn fixed(text: &str) -> String {
        repair(text, usize::MAX).map_or_else(|| text.to_string(), |r| r.text)
    }

    fn parsed(text: &str) -> Value {
        serde_json::from_str(&fixed(text)).unwrap()
    }

    #[test]
    fn lone_surrogates_become_replacement_chars_and_pairs_stay() {
        assert_eq!(parsed(r#"["a\ud800b"]"#), json!(["a\u{fffd}b"]));
        assert_eq!(parsed(r#"["\udc00"]"#), json!(["\u{fffd}"]));
        assert_eq!(
            parsed(r#"["\uDBFF\uDBFF\uDFFF"]"#),
            json!(["\u{fffd}\u{10ffff}"])
        );
        assert_eq!(parsed(r#"["\ud83d\ude00 \ud83d"]"#), json!(["😀 \u{fffd}"]));
        assert_eq!(
            parsed(r#"{"k\ud800":"\ud800\n"}"#),
            json!({"k\u{fffd}": "\u{fffd}\n"})
        );
        // A trailing high surrogate at the end of the string.
        assert_eq!(parsed(r#"["x\ud800"]"#), json!(["x\u{fffd}"]));
    }

    #[test]
    fn escaped_backslashes_and_other_escapes_are_not_surrogates() {
        for text in [
            r#"["\\ud800"]"#,
            r#"["\\\\ud800"]"#,
            r#"["\"\ud83d\ude00\u00e9\n"]"#,
            r#"["\u12"]"#,
            r#"{"a":1.5e300,"b":-0,"c":1e-400}"#,
            r#"["1e400", "\"1e400"]"#,
        ] {
            assert_eq!(repair(text, usize::MAX), None, "{text}");
        }
        assert_eq!(
            parsed(r#"["\\ud800", "\\\ud800"]"#),
            json!(["\\ud800", "\\\u{fffd}"])
        );
    }

    #[test]
    fn out_of_range_numbers_become_null_like_json_stringify_of_infinity() {
        let r = repair(r#"{"a":1e400,"b":[-1E+999, 2],"c":"1e400"}"#, usize::MAX).unwrap();
        assert_eq!(r.text, r#"{"a":null,"b":[null, 2],"c":"1e400"}"#);
        assert!(!r.surrogates && !r.too_deep);
        let huge = format!("[1{}]", "0".repeat(400));
        assert_eq!(fixed(&huge), "[null]");
        // Not a JSON number: left for the decoder to refuse.
        assert_eq!(repair("[1.e400, 01e999, .5e999]", usize::MAX), None);
    }

    #[test]
    fn too_deep_containers_are_cut_and_reported() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let text = format!(r#"{{"id":7,"deep":{deep},"s":"[{{"}}"#);
        assert!(serde_json::from_str::<Value>(&text).is_err());
        let r = repair(&text, 4).unwrap();
        assert!(r.too_deep);
        let v: Value = serde_json::from_str(&r.text).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["deep"], json!([[[null]]]));
        assert_eq!(v["s"], "[{");
        // Brackets inside strings never count.
        let shallow = r#"{"a":"[[[[[[[[[[","b":["]]]]"]}"#;
        assert_eq!(repair(shallow, 2), None);
    }

    #[test]
    fn the_serde_depth_limit_is_what_serde_json_enforces() {
        let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(serde_json::from_str::<Value>(&nest(SERDE_DEPTH_LIMIT - 1)).is_ok());
        assert!(serde_json::from_str::<Value>(&nest(SERDE_DEPTH_LIMIT)).is_err());
        let r = repair(&nest(SERDE_DEPTH_LIMIT), SERDE_DEPTH_LIMIT - 1).unwrap();
        assert!(r.too_deep && serde_json::from_str::<Value>(&r.text).is_ok());
        assert_eq!(
            repair(&nest(SERDE_DEPTH_LIMIT - 1), SERDE_DEPTH_LIMIT - 1),
            None
        );
    }

    #[test]
    fn array_elements_split_at_top_level_commas_only() {
        assert_eq!(array_elements(" [ ] "), Some(vec![]));
        assert_eq!(
            array_elements(r#"[1, {"a":[2,3],"b":"x,]\""}, "\ud800" ,[]]"#),
            Some(vec!["1", r#"{"a":[2,3],"b":"x,]\""}"#, r#""\ud800""#, "[]"])
        );
        assert_eq!(array_elements(r#"{"a":[1,2]}"#), None);
        assert_eq!(array_elements("42"), None);
    }

    #[test]
    fn an_alternative_replacement_tells_lone_surrogates_from_real_fffd() {
        let text = r#"["\ufffd", "\udc00"]"#;
        let r = repair_with(text, usize::MAX, "\\ufdd0").unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&r.text).unwrap(),
            json!(["\u{fffd}", "\u{fdd0}"])
        );
    }
}
