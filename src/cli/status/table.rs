//! The one-shot text view of `oxtail status`: heading, attention line, the
//! agent table, then the wait graph, unowned mailboxes, the message log and
//! notes — plain lines, no escape sequences, so it reads the same in a
//! terminal, a pipe or a log file.

use crate::status::Snapshot;

use super::view;

/// The narrowest the STATE column is squeezed to on a narrow terminal.
const MIN_STATE_WIDTH: usize = 12;

/// Render `s`; `max_width` (a terminal's width) squeezes the STATE column.
pub fn render(s: &Snapshot, max_width: Option<usize>) -> String {
    let mut out = Vec::new();
    out.push(format!("oxtail status · {}", view::heading(s)));
    out.push(view::attention(s));
    out.push(String::new());
    if s.agents.is_empty() {
        out.push("no agents registered here".into());
    } else {
        table(s, max_width, &mut out);
    }
    section(
        &mut out,
        "Waits (who waits on whom):",
        s.waits.iter().map(view::wait_line),
    );
    section(
        &mut out,
        "Mailboxes without a registry entry:",
        s.unowned_mailboxes.iter().map(view::unowned_line),
    );
    if let Some(log) = &s.comms {
        let lines: Vec<String> = log
            .iter()
            .map(|m| view::log_line(m, s.generated_at))
            .collect();
        if lines.is_empty() {
            section(
                &mut out,
                "Message log:",
                ["no messages recorded".to_string()].into_iter(),
            );
        } else {
            section(&mut out, "Message log (oldest first):", lines.into_iter());
        }
    }
    section(
        &mut out,
        "Warnings:",
        s.warnings.iter().map(|w| view::scrub(w)),
    );
    if let Some(note) = view::unknown_note(s) {
        out.push(String::new());
        out.push(note);
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

fn table(s: &Snapshot, max_width: Option<usize>, out: &mut Vec<String>) {
    let rows: Vec<Vec<String>> = s.agents.iter().map(|a| view::agent_cells(s, a)).collect();
    let mut widths = view::column_widths(s, &rows);
    let last = widths.len() - 1;
    if let Some(max) = max_width {
        let others: usize = widths[..last].iter().sum::<usize>() + 2 * last;
        let room = max.saturating_sub(others).max(MIN_STATE_WIDTH);
        widths[last] = widths[last].min(room);
    }
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == last {
                l.push_str(&view::fit(c, widths[i]));
            } else {
                l.push_str(&view::pad(c, widths[i]));
                l.push_str("  ");
            }
        }
        l.trim_end().to_string()
    };
    let titles: Vec<String> = view::columns(s).iter().map(|c| c.to_string()).collect();
    out.push(line(&titles));
    for r in &rows {
        out.push(line(r));
    }
}

fn section(out: &mut Vec<String>, title: &str, lines: impl Iterator<Item = String>) {
    let lines: Vec<String> = lines.collect();
    if lines.is_empty() {
        return;
    }
    out.push(String::new());
    out.push(title.to_string());
    out.extend(lines.into_iter().map(|l| format!("  {l}")));
}
