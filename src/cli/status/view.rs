//! What each part of a status screen says, as plain strings: the one-shot
//! table and the live screen both draw these, so they never disagree.
//!
//! Invariant defended: text that came from the store (names, purposes,
//! bodies, session ids) is scrubbed of control and bidi-override characters
//! before it reaches a terminal, so a peer cannot move the cursor, clear the
//! screen or reorder what the operator reads.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::status::Snapshot;
use crate::status::model::{
    Agent, CommsMessage, CommsStatus, Confidence, DeliveryState, Liveness, LivenessReason,
    UnownedMailbox, Wait,
};

/// Column titles of the agent table, in order (`PROJECT` joins after
/// `AGENT` when every project is shown).
pub const COLUMNS: [&str; 8] = [
    "AGENT",
    "TYPE",
    "SID",
    "LIVENESS",
    "UNREAD",
    "LAST DELIVERY",
    "WAITING ON",
    "STATE",
];

/// The column titles of snapshot `s`. The last one (STATE) is the one that
/// absorbs a narrow terminal.
pub fn columns(s: &Snapshot) -> Vec<&'static str> {
    let mut c = COLUMNS.to_vec();
    if s.all_projects {
        c.insert(1, "PROJECT");
    }
    c
}

/// A compact age: `4s`, `3m`, `2h`, `5d`; `?` when unknown.
pub fn age(secs: Option<i64>) -> String {
    match secs {
        None => "?".into(),
        Some(s) if s < 60 => format!("{s}s"),
        Some(s) if s < 3600 => format!("{}m", s / 60),
        Some(s) if s < 86_400 => format!("{}h", s / 3600),
        Some(s) => format!("{}d", s / 86_400),
    }
}

/// Replace control characters (C0, DEL, C1), bidi controls and line
/// separators with a space; keep everything else.
pub fn scrub(s: &str) -> String {
    s.chars()
        .map(|c| if is_unsafe(c) { ' ' } else { c })
        .collect()
}

fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{2028}' | '\u{2029}'
            | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Cut `s` to at most `width` terminal columns, ending in `…` when cut.
pub fn fit(s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// `s` padded with spaces to `width` columns.
pub fn pad(s: &str, width: usize) -> String {
    let w = s.width();
    let mut out = s.to_string();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(w)));
    out
}

/// Terminal width of `s`.
pub fn width(s: &str) -> usize {
    s.width()
}

pub fn liveness(a: &Agent) -> String {
    let age = age(a.activity_age_s);
    match (a.liveness, a.liveness_reason) {
        (Liveness::Busy, _) => format!("busy {age}"),
        (Liveness::Idle, _) => format!("idle {age}"),
        (Liveness::Unknown, LivenessReason::BusyStale) => format!("busy? {age}"),
        (Liveness::Unknown, _) => "alive".into(),
        (Liveness::Dead, LivenessReason::PidReused) => "dead (pid reused)".into(),
        (Liveness::Dead, _) => "dead".into(),
    }
}

pub fn unread(a: &Agent) -> String {
    let n = a.unread.to_string();
    let n = if a.unread_confidence == Confidence::Low {
        n + "?"
    } else {
        n
    };
    if a.stranded {
        format!("{n} STRANDED")
    } else {
        n
    }
}

pub fn delivery(a: &Agent) -> String {
    match (&a.last_delivery, a.last_delivery_state) {
        (Some(d), _) => match &d.via {
            Some(via) => format!("{} ago ({})", age(d.age_s), scrub(via)),
            None => format!("{} ago", age(d.age_s)),
        },
        (None, DeliveryState::None) => "-".into(),
        (None, _) => "?".into(),
    }
}

/// `beta 2m`, with `DEADLOCK` / `ORPHANED` flags and `+N` more asks.
pub fn waiting(a: &Agent) -> String {
    let (Some(n), Some(w)) = (a.open_asks, &a.waiting) else {
        return match a.open_asks {
            None => "?".into(),
            Some(_) => "-".into(),
        };
    };
    let mut s = format!("{} {}", target(w), age(w.age_s));
    if w.cycle_all_live {
        s.push_str(" DEADLOCK");
    } else if w.orphaned {
        s.push_str(" ORPHANED");
    }
    if n > 1 {
        s.push_str(&format!(" +{}", n - 1));
    }
    s
}

fn target(w: &Wait) -> String {
    match (&w.target_name, &w.target_short_id) {
        (Some(n), _) => scrub(n),
        (None, Some(s)) => format!("{} (gone)", scrub(s)),
        (None, None) => "(unknown)".into(),
    }
}

pub fn state(a: &Agent) -> String {
    match &a.purpose {
        Some(p) => match a.purpose_age_s {
            Some(s) => format!("{} ({})", scrub(p), age(Some(s))),
            None => scrub(p),
        },
        None => "-".into(),
    }
}

/// The cells of one agent row, in [`columns`] order.
pub fn agent_cells(s: &Snapshot, a: &Agent) -> Vec<String> {
    let mut c = vec![
        scrub(&a.name),
        scrub(&a.client_type),
        scrub(&a.short_id),
        liveness(a),
        unread(a),
        delivery(a),
        waiting(a),
        state(a),
    ];
    if s.all_projects {
        c.insert(1, scrub(&a.project_root));
    }
    c
}

/// The natural width of each column of `s` (title and every cell).
pub fn column_widths(s: &Snapshot, rows: &[Vec<String>]) -> Vec<usize> {
    let mut w: Vec<usize> = columns(s).iter().map(|c| width(c)).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            w[i] = w[i].max(width(cell));
        }
    }
    w
}

/// The one line that says whether anything needs a person.
pub fn attention(s: &Snapshot) -> String {
    let t = &s.trouble;
    let mut parts = Vec::new();
    if t.deadlocks > 0 {
        parts.push(plural(t.deadlocks, "deadlock", "deadlocks"));
    }
    if t.orphaned > 0 {
        parts.push(plural(t.orphaned, "orphaned wait", "orphaned waits"));
    }
    if t.stranded_mail > 0 {
        parts.push(format!(
            "{} for dead agents ({})",
            plural(t.stranded_mail, "message stranded", "messages stranded"),
            scrub(&t.stranded_mail_owners.join(", "))
        ));
    }
    if parts.is_empty() {
        let mut ok = "OK: nothing needs you".to_string();
        if t.stale_cycles > 0 {
            ok.push_str(&format!(
                " ({})",
                plural(t.stale_cycles, "stale wait cycle", "stale wait cycles")
            ));
        }
        return ok;
    }
    format!("NEEDS YOU: {}", parts.join(" · "))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `project /path · 3 agents (1 dead)` or `all projects · …`.
pub fn heading(s: &Snapshot) -> String {
    let scope = match &s.project_root {
        Some(p) => format!("project {}", scrub(p)),
        None => "all projects".into(),
    };
    let dead = s
        .agents
        .iter()
        .filter(|a| a.liveness == Liveness::Dead)
        .count();
    let n = plural(s.agents.len(), "agent", "agents");
    if dead > 0 {
        format!("{scope} · {n} ({dead} dead)")
    } else {
        format!("{scope} · {n}")
    }
}

/// What the store does not record, as one note (empty when it records all).
pub fn unknown_note(s: &Snapshot) -> Option<String> {
    let mut missing = Vec::new();
    if !s.records.receipts {
        missing.push("delivery receipts (LAST DELIVERY)");
    }
    if !s.records.pending_asks {
        missing.push("open asks (WAITING ON)");
    }
    (!missing.is_empty()).then(|| format!("? = not recorded by this store: {}", missing.join(", ")))
}

/// One line per wait-graph edge.
pub fn wait_line(w: &Wait) -> String {
    let mut s = format!(
        "{} -> {}  {}  request {}",
        scrub(&w.requester_name),
        target(w),
        age(w.age_s),
        scrub(&w.request_id)
    );
    if let Some(st) = &w.state {
        s.push_str(&format!(" ({})", scrub(st)));
    }
    if w.cycle_all_live {
        s.push_str("  DEADLOCK: a cycle of live agents");
    } else if w.in_cycle {
        s.push_str("  stale cycle (a member is dead)");
    } else if w.orphaned {
        s.push_str("  ORPHANED: the target is dead or gone");
    }
    s
}

/// One line per mailbox without a registry entry.
pub fn unowned_line(m: &UnownedMailbox) -> String {
    let owner = if m.stranded {
        "owner dead: STRANDED"
    } else {
        "pid alive, not registered"
    };
    let q = if m.unread_confidence == Confidence::Low {
        "?"
    } else {
        ""
    };
    let from = if m.senders.is_empty() {
        "unknown senders".to_string()
    } else {
        let short: Vec<String> = m
            .senders
            .iter()
            .map(|s| crate::status::model::short_sid(s))
            .collect();
        format!("from {}", scrub(&short.join(", ")))
    };
    format!(
        "mailbox of pid {}: {}{} queued, {owner}, {from}",
        m.server_pid,
        plural(m.unread, "message", "messages"),
        q
    )
}

/// One log line: age, sender → receiver, status, and the body when present.
pub fn log_line(m: &CommsMessage, now_s: i64) -> String {
    let ago = m.at.map(|at| now_s - at as i64).filter(|d| *d >= 0);
    let status = match (m.status, &m.via) {
        (CommsStatus::Delivered, Some(v)) => format!("delivered ({})", scrub(v)),
        (CommsStatus::Delivered, None) => "delivered".into(),
        (CommsStatus::Queued, _) => "queued".into(),
        (CommsStatus::Unknown, _) => "taken, no receipt".into(),
    };
    let kind = match (&m.request_id, &m.reply_to) {
        (Some(_), _) => " (ask)",
        (None, Some(_)) => " (reply)",
        _ => "",
    };
    let mut s = format!(
        "{:>4} ago  {} -> {}{kind}  {status}",
        age(ago),
        scrub(&m.from_name),
        scrub(&m.to_name)
    );
    if let Some(b) = &m.body {
        s.push_str(&format!("  \"{}\"", scrub(b)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(age(None), "?");
        assert_eq!(age(Some(0)), "0s");
        assert_eq!(age(Some(59)), "59s");
        assert_eq!(age(Some(60)), "1m");
        assert_eq!(age(Some(3599)), "59m");
        assert_eq!(age(Some(7200)), "2h");
        assert_eq!(age(Some(3 * 86_400)), "3d");
    }

    #[test]
    fn scrub_removes_terminal_controls_and_bidi_overrides() {
        assert_eq!(
            scrub("ok\x1b[2Jx\ny\u{202E}z\u{2067}\u{7f}\u{9b}"),
            "ok [2Jx y z   "
        );
        assert_eq!(scrub("naïve 日本 😀"), "naïve 日本 😀");
    }

    #[test]
    fn fit_counts_terminal_columns() {
        assert_eq!(fit("hello", 5), "hello");
        assert_eq!(fit("hello world", 6), "hello…");
        assert_eq!(fit("日本語テキスト", 7), "日本語…");
        assert_eq!(width(&fit("日本語テキスト", 7)), 7);
        assert_eq!(fit("abc", 0), "");
        assert_eq!(pad("日本", 6), "日本  ");
    }
}
