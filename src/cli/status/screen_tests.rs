//! Snapshot tests of the rendered screens (ratatui's test backend) and of the
//! one-shot table. Expected screens live in `snapshots/`; after an intended
//! change, run with `OXTAIL_UPDATE_SNAPSHOTS=1` and review the diff.

use std::path::PathBuf;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use serde_json::json;

use super::*;
use crate::cli::status::table;
use crate::status::model::tests::{A, ALIVE, B, C, EXITED, NOW, World, marker};
use crate::status::model::{self, Options};
use crate::store::registry::StateCard;

/// The buffer as text: one line per row, wide characters once, trailing
/// spaces trimmed.
fn text(buf: &Buffer) -> String {
    let w = buf.area.width as usize;
    let mut out = String::new();
    for row in buf.content.chunks(w) {
        let mut line = String::new();
        let mut skip = 0usize;
        for cell in row {
            if skip == 0 {
                line.push_str(cell.symbol());
            }
            skip = skip
                .max(unicode_width::UnicodeWidthStr::width(cell.symbol()))
                .saturating_sub(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn check(name: &str, got: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/cli/status/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("OXTAIL_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}; run with OXTAIL_UPDATE_SNAPSHOTS=1 and review it",
            path.display()
        )
    });
    assert_eq!(
        got, want,
        "screen {name} changed; if intended, rerun with OXTAIL_UPDATE_SNAPSHOTS=1"
    );
}

fn render(s: &crate::status::Snapshot, ui: &Ui, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, s, ui)).unwrap();
    text(t.backend().buffer())
}

/// Three agents: a busy one with a state card, an idle one, a dead one with
/// stranded mail; two messages in the ledgers.
fn fleet() -> World {
    let mut w = World::new();
    let a = w.agent(100, Some(A), Some("alpha"), ALIVE);
    a.activity = marker("busy", 4_000.0);
    a.entry.state = Some(StateCard {
        purpose: Some("fixing the parser".into()),
        updated_at: NOW / 1000 - 90,
    });
    let b = w.agent(101, Some(B), Some("beta"), ALIVE);
    b.activity = marker("idle", 180_000.0);
    b.entry.client.client_type = crate::store::registry::ClientType::Codex;
    w.agent(102, Some(C), Some("gamma"), EXITED);
    w.queue(102, "m3", Some(A));
    w.queue(101, "m2", Some(A));
    w.ledger(B, "m1", A, NOW / 1000 - 600, json!({"request_id": "r1"}));
    w.ledger(A, "m0", B, NOW / 1000 - 900, json!({}));
    w.ledger(B, "m2", A, NOW / 1000 - 30, json!({}));
    w.receipt("m1", NOW - 590_000, "hook");
    w
}

#[test]
fn screen_with_stranded_mail() {
    let w = fleet();
    let s = model::build(
        &w.facts,
        &Options {
            log: Some(200),
            bodies: false,
        },
    );
    check("stranded", &render(&s, &Ui::default(), 110, 20));
}

#[test]
fn screen_with_a_deadlock_and_the_log_open() {
    let mut w = fleet();
    w.ask(A, "r-ab", Some(B), NOW - 120_000);
    w.ask(B, "r-ba", Some(A), NOW - 60_000);
    let ui = Ui {
        show_log: true,
        ..Ui::default()
    };
    let s = model::build(
        &w.facts,
        &Options {
            log: Some(200),
            bodies: false,
        },
    );
    check("deadlock_log", &render(&s, &ui, 110, 30));
    // Bodies only when asked.
    let ui = Ui {
        show_log: true,
        bodies: true,
        ..Ui::default()
    };
    let s = model::build(
        &w.facts,
        &Options {
            log: Some(200),
            bodies: true,
        },
    );
    let screen = render(&s, &ui, 110, 30);
    assert!(screen.contains("\"body of m2\""), "{screen}");
    assert!(
        !render(
            &s,
            &Ui {
                show_log: true,
                ..Ui::default()
            },
            110,
            30
        )
        .contains("body of")
    );
}

#[test]
fn screen_of_an_empty_project_and_unknown_records() {
    let mut w = World::new();
    w.facts.asks = None;
    w.facts.receipts_recorded = false;
    let s = model::build(&w.facts, &Options::default());
    let screen = render(&s, &Ui::default(), 100, 12);
    check("empty", &screen);
    assert!(screen.contains(KEYS), "the keys are listed: {screen}");
}

#[test]
fn hostile_names_cannot_reach_the_terminal() {
    let mut w = World::new();
    w.agent(7, Some(A), Some("evil\x1b[2J\u{202E}name"), ALIVE)
        .entry
        .state = Some(StateCard {
        purpose: Some("line\nbreak\x07".into()),
        updated_at: 0,
    });
    let s = model::build(&w.facts, &Options::default());
    for out in [render(&s, &Ui::default(), 100, 12), table::render(&s, None)] {
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
        assert!(!out.contains('\u{202E}'));
        assert!(out.contains("evil [2J name"), "{out}");
    }
}

#[test]
fn one_shot_table() {
    let mut w = fleet();
    w.ask(A, "r-ab", Some(C), NOW - 45_000);
    let s = model::build(
        &w.facts,
        &Options {
            log: Some(20),
            bodies: false,
        },
    );
    check("oneshot", &table::render(&s, None));
    // A narrow terminal squeezes only the STATE column.
    let narrow = table::render(&s, Some(100));
    let row = narrow.lines().find(|l| l.starts_with("alpha")).unwrap();
    assert!(row.ends_with('…'), "{row}");
    assert!(unicode_width::UnicodeWidthStr::width(row) <= 100, "{row}");
}

#[test]
fn all_projects_adds_a_project_column() {
    let mut w = fleet();
    w.facts.scope = crate::status::Scope::All;
    let s = model::build(&w.facts, &Options::default());
    let out = table::render(&s, None);
    assert!(
        out.lines().any(|l| l.starts_with("AGENT  PROJECT")),
        "{out}"
    );
    assert!(out.contains("all projects"));
}
