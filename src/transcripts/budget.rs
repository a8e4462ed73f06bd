//! The count and byte budgets of transcript reads (server spec §5.4).
//!
//! Invariant defended: the byte budget walks newest-first, cuts at most one
//! message (at a code-point boundary, with a `…[+NB truncated]` marker) and drops
//! everything older, so the newest context always survives.

use serde_json::Value;

use super::{Budget, Message};

pub const DEFAULT_LIMIT: i64 = 20;
pub const DEFAULT_MAX_BYTES: i64 = 24_000;

/// `limit` clamped to 1..=1000 (default 20).
pub fn clamp_limit(limit: Option<i64>) -> usize {
    limit.unwrap_or(DEFAULT_LIMIT).clamp(1, 1000) as usize
}

/// `max_bytes` clamped to 256..=1_000_000 (default 24 000).
pub fn clamp_max_bytes(max_bytes: Option<i64>) -> usize {
    max_bytes.unwrap_or(DEFAULT_MAX_BYTES).clamp(256, 1_000_000) as usize
}

/// The longest prefix of whole code points of `s` within `max` bytes.
pub fn utf8_prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Apply the byte budget (newest first) and the timestamp gate; returns the
/// kept messages in chronological order and whether bytes were cut.
pub fn apply_bytes(kept: Vec<Message>, b: Budget) -> (Vec<Message>, bool) {
    let mut remaining = b.max_bytes;
    let mut out: Vec<Message> = Vec::with_capacity(kept.len());
    let mut truncated = false;
    for mut m in kept.into_iter().rev() {
        let len = m.text.len();
        if len <= remaining {
            remaining -= len;
            out.push(m);
            continue;
        }
        truncated = true;
        if remaining > 0 {
            let head = utf8_prefix(&m.text, remaining);
            let dropped = len - head.len();
            m.text = format!("{head}…[+{dropped}B truncated]");
            out.push(m);
        }
        break;
    }
    out.reverse();
    if !b.include_timestamps {
        for m in &mut out {
            m.timestamp = Value::Null;
        }
    }
    (out, truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> Message {
        Message {
            role: "user".into(),
            text: text.into(),
            timestamp: Value::from("2026-01-01T00:00:00Z"),
        }
    }

    fn budget(limit: usize, max_bytes: usize) -> Budget {
        Budget {
            limit,
            max_bytes,
            include_timestamps: false,
        }
    }

    #[test]
    fn clamps() {
        assert_eq!(clamp_limit(Some(0)), 1);
        assert_eq!(clamp_limit(Some(5000)), 1000);
        assert_eq!(clamp_limit(None), 20);
        assert_eq!(clamp_max_bytes(Some(-3)), 256);
        assert_eq!(clamp_max_bytes(None), 24_000);
    }

    #[test]
    fn one_big_message_keeps_its_head() {
        let (out, cut) = apply_bytes(vec![msg(&"x".repeat(5000))], budget(20, 1000));
        assert!(cut);
        assert!(out[0].text.starts_with(&"x".repeat(1000)));
        assert!(out[0].text.ends_with("…[+4000B truncated]"));
        assert!(out[0].text.len() <= 1040);
        assert_eq!(out[0].timestamp, Value::Null);
    }

    #[test]
    fn newest_first_and_drop_older() {
        let m = |c: &str| msg(&c.repeat(100));
        let (out, cut) = apply_bytes(vec![m("a"), m("b"), m("c")], budget(20, 150));
        assert!(cut);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].text, "c".repeat(100));
        assert!(out[0].text.starts_with(&"b".repeat(50)));
        assert!(out[0].text.ends_with("…[+50B truncated]"));
    }

    #[test]
    fn never_splits_an_emoji() {
        let text = "😀".repeat(300);
        let (out, _) = apply_bytes(vec![msg(&text)], budget(20, 1001));
        let head = out[0].text.split('…').next().unwrap();
        assert_eq!(head.len(), 1000);
    }

    #[test]
    fn timestamps_kept_when_asked() {
        let b = Budget {
            limit: 5,
            max_bytes: 1000,
            include_timestamps: true,
        };
        let (out, cut) = apply_bytes(vec![msg("hi")], b);
        assert!(!cut);
        assert_eq!(out[0].timestamp, Value::from("2026-01-01T00:00:00Z"));
    }
}
