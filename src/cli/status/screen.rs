//! The live screen of `oxtail status --watch`, drawn with ratatui from a
//! [`Snapshot`] and the viewer's toggles. Pure: no I/O, no clock, so the whole
//! screen is pinned by snapshot tests on ratatui's test backend.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, TableState};

use crate::status::Snapshot;
use crate::status::model::{Agent, Liveness};

use super::view;

/// The viewer's toggles (changed by keys, never by the store).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ui {
    /// `l`: the message log panel.
    pub show_log: bool,
    /// `b`: message bodies in the log.
    pub bodies: bool,
    /// `a`: every project instead of the current one.
    pub all: bool,
    /// `↑`/`↓`: the selected agent row.
    pub selected: usize,
}

/// The keys, as listed at the bottom of the screen.
pub const KEYS: &str = "q quit · l log · b bodies · a all projects · ↑↓ select · r refresh";

/// Lines of the log panel (borders included).
const LOG_HEIGHT: u16 = 12;
/// At most this many wait lines before the panel scrolls off.
const MAX_WAIT_LINES: usize = 6;

/// Draw the whole screen.
pub fn draw(frame: &mut Frame, s: &Snapshot, ui: &Ui) {
    let waits = wait_lines(s);
    let unowned: Vec<String> = s.unowned_mailboxes.iter().map(view::unowned_line).collect();
    let mut constraints = vec![
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(4),
        Constraint::Length(waits.len().min(MAX_WAIT_LINES) as u16 + 2),
    ];
    if !unowned.is_empty() {
        constraints.push(Constraint::Length(unowned.len().min(4) as u16 + 2));
    }
    if ui.show_log {
        constraints.push(Constraint::Length(LOG_HEIGHT));
    }
    let note = view::unknown_note(s);
    constraints.push(Constraint::Length(1 + u16::from(note.is_some())));
    let areas = Layout::vertical(constraints).split(frame.area());
    let mut next = areas.iter().copied();
    let mut take = || next.next().unwrap_or_default();

    frame.render_widget(
        Paragraph::new(format!("oxtail status · {}", view::heading(s)))
            .style(Style::new().add_modifier(Modifier::BOLD)),
        take(),
    );
    let attention = view::attention(s);
    let style = if s.trouble.needs_attention {
        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
    } else {
        Style::new().fg(Color::Green)
    };
    frame.render_widget(Paragraph::new(attention).style(style), take());
    agents(frame, take(), s, ui);
    panel(frame, take(), " Wait graph ", &waits);
    if !unowned.is_empty() {
        panel(
            frame,
            take(),
            " Mailboxes without a registry entry ",
            &unowned,
        );
    }
    if ui.show_log {
        log(frame, take(), s, ui);
    }
    let mut footer = Vec::new();
    if let Some(note) = note {
        footer.push(Line::styled(note, Style::new().fg(Color::DarkGray)));
    }
    footer.push(Line::styled(KEYS, Style::new().fg(Color::Cyan)));
    frame.render_widget(Paragraph::new(footer), take());
}

fn row_style(a: &Agent) -> Style {
    if a.stranded
        || a.waiting
            .as_ref()
            .is_some_and(|w| w.cycle_all_live || w.orphaned)
    {
        return Style::new().fg(Color::Red);
    }
    match a.liveness {
        Liveness::Busy => Style::new().fg(Color::Green),
        Liveness::Idle => Style::new().fg(Color::Yellow),
        Liveness::Unknown => Style::new(),
        Liveness::Dead => Style::new().fg(Color::DarkGray),
    }
}

fn agents(frame: &mut Frame, area: Rect, s: &Snapshot, ui: &Ui) {
    let block = Block::new().borders(Borders::ALL).title(" Agents ");
    if s.agents.is_empty() {
        frame.render_widget(
            Paragraph::new("no agents registered here").block(block),
            area,
        );
        return;
    }
    let cells: Vec<Vec<String>> = s.agents.iter().map(|a| view::agent_cells(s, a)).collect();
    let widths = view::column_widths(s, &cells);
    let last = widths.len() - 1;
    let constraints: Vec<Constraint> = widths
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            if i == last {
                Constraint::Fill(1)
            } else {
                Constraint::Length(w as u16)
            }
        })
        .collect();
    let rows = cells
        .into_iter()
        .zip(&s.agents)
        .map(|(c, a)| Row::new(c).style(row_style(a)));
    let header = Row::new(view::columns(s)).style(Style::new().add_modifier(Modifier::BOLD));
    let table = Table::new(rows, constraints)
        .header(header)
        .column_spacing(2)
        .block(block)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = TableState::new().with_selected(Some(ui.selected.min(s.agents.len() - 1)));
    frame.render_stateful_widget(table, area, &mut state);
}

fn wait_lines(s: &Snapshot) -> Vec<String> {
    if !s.records.pending_asks {
        return vec!["open asks are not recorded by this store (unknown)".into()];
    }
    if s.waits.is_empty() {
        return vec!["nobody is waiting".into()];
    }
    let mut lines: Vec<String> = s.waits.iter().map(view::wait_line).collect();
    if lines.len() > MAX_WAIT_LINES {
        let more = lines.len() - (MAX_WAIT_LINES - 1);
        lines.truncate(MAX_WAIT_LINES - 1);
        lines.push(format!("… {more} more (oxtail status --json)"));
    }
    lines
}

fn panel(frame: &mut Frame, area: Rect, title: &str, lines: &[String]) {
    let text: Vec<Line> = lines
        .iter()
        .map(|l| {
            let urgent = l.contains("DEADLOCK") || l.contains("ORPHANED") || l.contains("STRANDED");
            let style = if urgent {
                Style::new().fg(Color::Red)
            } else {
                Style::new()
            };
            Line::styled(l.clone(), style)
        })
        .collect();
    frame.render_widget(
        Paragraph::new(text).block(Block::new().borders(Borders::ALL).title(title.to_string())),
        area,
    );
}

fn log(frame: &mut Frame, area: Rect, s: &Snapshot, ui: &Ui) {
    let title = if ui.bodies {
        " Message log (newest last; bodies shown: b hides) "
    } else {
        " Message log (newest last; b shows bodies) "
    };
    let inner = area.height.saturating_sub(2) as usize;
    let all: Vec<String> = s
        .comms
        .iter()
        .flatten()
        .map(|m| {
            let mut m = m.clone();
            if !ui.bodies {
                m.body = None;
            }
            view::log_line(&m, s.generated_at)
        })
        .collect();
    let lines: Vec<String> = if all.is_empty() {
        vec!["no messages recorded".into()]
    } else {
        all[all.len().saturating_sub(inner)..].to_vec()
    };
    panel(frame, area, title, &lines);
}

#[cfg(test)]
#[path = "screen_tests.rs"]
mod tests;
