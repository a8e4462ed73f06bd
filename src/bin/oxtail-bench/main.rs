//! `oxtail-bench`: prints a table of measured figures (median, p10, p90) for
//! oxtail's hot paths. Figures are printed, never asserted.
//!
//! Usage: `cargo run --release --bin oxtail-bench -- [--only AREA] [--samples N]
//! [--other-cmd 'SHELL COMMAND']`.
//!
//! `--other-cmd` names another implementation's command (e.g. the Node
//! original's server) so scenarios that drive a command measure both the same
//! way; scenarios that only call the in-process store ignore it.
//!
//! Adding an area: write `src/bin/oxtail-bench/<area>.rs` with
//! `pub fn run(ctx: &Ctx) -> Vec<Row>` (and optionally
//! `pub fn child(args: &[String]) -> i32` for helper processes, reached as
//! `oxtail-bench __child <area> ...`), then add one line to [`AREAS`].

mod hooks;
mod messaging;
mod server;
mod store;

use std::time::Duration;

/// One benchmark area: name, runner, optional helper-process entry point.
pub struct Area {
    pub name: &'static str,
    pub run: fn(&Ctx) -> Vec<Row>,
    pub child: Option<fn(&[String]) -> i32>,
}

/// Every area, in print order. One line per area.
const AREAS: &[Area] = &[
    area("store", store::run, Some(store::child)),
    area("hooks", hooks::run, None),
    area("server", server::run, None),
    area("messaging", messaging::run, Some(messaging::child)),
];

const fn area(
    name: &'static str,
    run: fn(&Ctx) -> Vec<Row>,
    child: Option<fn(&[String]) -> i32>,
) -> Area {
    Area { name, run, child }
}

/// Options every scenario sees.
pub struct Ctx {
    /// Samples per figure (`--samples`, default 200).
    pub samples: usize,
    /// Another implementation's command (`--other-cmd`), if given.
    pub other_cmd: Option<String>,
    /// This executable, for re-executing helper processes.
    pub exe: std::path::PathBuf,
}

/// One printed row: a figure with its samples (already in `unit`).
pub struct Row {
    pub name: String,
    pub unit: &'static str,
    pub samples: Vec<f64>,
}

impl Row {
    pub fn new(name: impl Into<String>, unit: &'static str, samples: Vec<f64>) -> Row {
        Row {
            name: name.into(),
            unit,
            samples,
        }
    }

    /// A row from durations, in microseconds.
    pub fn micros(name: impl Into<String>, samples: &[Duration]) -> Row {
        Row::new(
            name,
            "µs",
            samples.iter().map(|d| d.as_secs_f64() * 1e6).collect(),
        )
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v.abs() >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn print_rows(rows: &[Row]) {
    let w = rows
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(10)
        .max(10);
    println!(
        "{:<w$}  {:>10}  {:>10}  {:>10}  {:>4}  unit",
        "figure", "median", "p10", "p90", "n"
    );
    for r in rows {
        let mut s = r.samples.clone();
        s.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{:<w$}  {:>10}  {:>10}  {:>10}  {:>4}  {}",
            r.name,
            fmt(percentile(&s, 0.5)),
            fmt(percentile(&s, 0.1)),
            fmt(percentile(&s, 0.9)),
            s.len(),
            r.unit
        );
    }
}

const USAGE: &str = "usage: oxtail-bench [--only AREA] [--samples N] [--other-cmd 'CMD']";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("__child") {
        let area = args.get(2).cloned().unwrap_or_default();
        let code = AREAS
            .iter()
            .find(|a| a.name == area)
            .and_then(|a| a.child)
            .map_or(2, |child| child(&args[3..]));
        std::process::exit(code);
    }
    let mut ctx = Ctx {
        samples: 200,
        other_cmd: None,
        exe: std::env::current_exe().expect("own executable path"),
    };
    let mut only: Option<String> = None;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--only" => only = it.next().cloned(),
            "--samples" => {
                ctx.samples = it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                    eprintln!("{USAGE}");
                    std::process::exit(2)
                })
            }
            "--other-cmd" => ctx.other_cmd = it.next().cloned(),
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => {
                eprintln!("unknown argument {other}\n{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let mut rows = Vec::new();
    for area in AREAS {
        if only.as_deref().is_some_and(|o| o != area.name) {
            continue;
        }
        rows.extend((area.run)(&ctx));
    }
    print_rows(&rows);
}
