//! `oxtail-bench`: prints a table of measured figures (median, p10, p90) for
//! oxtail's hot paths. Figures are printed, never asserted.
//!
//! Usage: `cargo run --release --bin oxtail-bench -- [--only AREA] [--samples N]
//! [--other-cmd 'SHELL COMMAND'] [--other-hooks DIR]`.
//!
//! `--other-cmd` names another implementation's server command (e.g.
//! `node /tmp/oxtail-node/dist/server.js`) and `--other-hooks` a directory
//! holding its hook scripts (`pretooluse.sh`, ...): every scenario that drives
//! a server process or a hook then runs for both, the same way, and the table's
//! `impl` column says which is which (`ours` / `other`; `-` for floors that
//! belong to neither). In-process figures are ours only.
//!
//! Every scratch directory lives under `TMPDIR`; when it is unset and
//! `/dev/shm` exists the runner sets it to `/dev/shm` (tmpfs) and says so.
//!
//! Adding an area: write `src/bin/oxtail-bench/<area>.rs` with
//! `pub fn run(ctx: &Ctx) -> Vec<Row>` (and optionally
//! `pub fn child(args: &[String]) -> i32` for helper processes, reached as
//! `oxtail-bench __child <area> ...`), then add one line to [`AREAS`].

mod hooks;
mod lock;
mod mcp;
mod messaging;
mod server;
mod status;
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
    area("lock", lock::run, Some(lock::child)),
    area("hooks", hooks::run, None),
    area("server", server::run, None),
    area("messaging", messaging::run, Some(messaging::child)),
    area("status", status::run, None),
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
    /// Another implementation's hook scripts (`--other-hooks`), if given.
    pub other_hooks: Option<std::path::PathBuf>,
    /// This executable, for re-executing helper processes.
    pub exe: std::path::PathBuf,
}

/// One printed row: a figure with its samples (already in `unit`).
pub struct Row {
    pub name: String,
    /// Which implementation: `ours`, `other`, or `-` for a shared floor.
    pub imp: &'static str,
    pub unit: &'static str,
    pub samples: Vec<f64>,
}

impl Row {
    /// A row for our implementation (see [`Row::of`] for the others).
    pub fn new(name: impl Into<String>, unit: &'static str, samples: Vec<f64>) -> Row {
        Row {
            name: name.into(),
            imp: "ours",
            unit,
            samples,
        }
    }

    /// The same row, attributed to implementation `imp`.
    pub fn of(mut self, imp: &'static str) -> Row {
        self.imp = imp;
        self
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
        "{:<w$}  {:<5}  {:>10}  {:>10}  {:>10}  {:>4}  unit",
        "figure", "impl", "median", "p10", "p90", "n"
    );
    for r in rows {
        let mut s = r.samples.clone();
        s.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{:<w$}  {:<5}  {:>10}  {:>10}  {:>10}  {:>4}  {}",
            r.name,
            r.imp,
            fmt(percentile(&s, 0.5)),
            fmt(percentile(&s, 0.1)),
            fmt(percentile(&s, 0.9)),
            s.len(),
            r.unit
        );
    }
}

const USAGE: &str =
    "usage: oxtail-bench [--only AREA] [--samples N] [--other-cmd 'CMD'] [--other-hooks DIR]";

/// Points `TMPDIR` at `/dev/shm` when unset and available; returns a line
/// describing where scratch files live.
fn choose_tmpdir() -> String {
    if let Some(t) = std::env::var_os("TMPDIR").filter(|t| !t.is_empty()) {
        return format!(
            "scratch under TMPDIR={} (from the environment)",
            t.to_string_lossy()
        );
    }
    if std::path::Path::new("/dev/shm").is_dir() {
        // SAFETY: called from `main` before any thread is spawned.
        unsafe { std::env::set_var("TMPDIR", "/dev/shm") };
        return "scratch under TMPDIR=/dev/shm (tmpfs; set TMPDIR to override)".into();
    }
    format!(
        "scratch under {} (no /dev/shm; set TMPDIR to override)",
        std::env::temp_dir().display()
    )
}

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
        other_hooks: None,
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
            "--other-hooks" => ctx.other_hooks = it.next().map(Into::into),
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
    println!("{}", choose_tmpdir());
    if let Some(c) = &ctx.other_cmd {
        println!("other = --other-cmd {c}");
    }
    if let Some(d) = &ctx.other_hooks {
        println!("other hooks = {}", d.display());
    }
    if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", l.trim());
    }
    let mut rows = Vec::new();
    for area in AREAS {
        if only.as_deref().is_some_and(|o| o != area.name) {
            continue;
        }
        rows.extend((area.run)(&ctx));
    }
    print_rows(&rows);
    if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at end: {}", l.trim());
    }
}
