//! `oxtail status --watch`: the live loop. It re-reads the store when it
//! changes (file-system notifications on the store's directories, at most
//! every [`MIN_REBUILD`]) and at least every [`FULL_EVERY`]; every [`TICK`]
//! in between it only advances the clock and probes the processes again
//! (ages move and processes die without touching a file), which costs a
//! fraction of a store read. Between events it sleeps in the terminal's input
//! poll, so an idle view costs next to no CPU.
//!
//! Invariants defended: the terminal is restored (raw mode off, main screen
//! back) however the loop ends — `q`, Ctrl-C, SIGTERM/SIGHUP/SIGINT, an I/O
//! error, or a panic (ratatui's hook); the process never outlives its
//! terminal: a watchdog thread exits when the terminal hangs up (crossterm's
//! input poll spins on a hung-up tty and never returns, so the loop itself
//! could not notice) or when a stop signal was not honoured within
//! [`STOP_GRACE`]; and watching writes nothing: the watches are on
//! directories that exist, and our own reads (which inotify reports as
//! open/close-nowrite) never trigger a re-read.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecursiveMode, Watcher};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use crate::clock;
use crate::status::facts::Facts;
use crate::status::{self, Options, Scope, Snapshot, model};
use crate::store::paths::Layout;

use super::screen::{self, Ui};

/// The slowest refresh: ages and process liveness move without file events.
pub const TICK: Duration = Duration::from_secs(1);
/// The longest the view goes without re-reading the store (a safety net for
/// a missed notification; without notifications the store is read every tick).
pub const FULL_EVERY: Duration = Duration::from_secs(10);
/// Bursts of file events cause at most one rebuild per this interval.
pub const MIN_REBUILD: Duration = Duration::from_millis(50);
/// How long one wait for a key lasts (the loop's wake-up period).
const POLL: Duration = Duration::from_millis(50);
/// Messages kept for the log panel (more than it shows on a tall screen).
const LOG_KEEP: usize = 60;

static STOP: AtomicBool = AtomicBool::new(false);

/// How often the watchdog looks at the terminal and the stop flag.
const WATCHDOG_EVERY: Duration = Duration::from_millis(200);
/// How long the loop may take to honour a stop signal before the watchdog
/// ends the process itself.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// True when the terminal on stdin has hung up (its emulator or tmux server
/// went away): `poll(2)` reports POLLHUP / POLLERR / POLLNVAL.
fn terminal_hung_up() -> bool {
    let mut fds = libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut fds, 1, 0) };
    n > 0 && fds.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
}

/// Exit the process (terminal restored, best effort) when the terminal hung
/// up, or when a stop signal has not ended the loop within [`STOP_GRACE`].
fn spawn_watchdog() {
    let _ = std::thread::Builder::new()
        .name("status-watchdog".into())
        .spawn(|| {
            let mut stop_seen: Option<Instant> = None;
            loop {
                std::thread::sleep(WATCHDOG_EVERY);
                let overdue = STOP.load(Ordering::SeqCst)
                    && stop_seen.get_or_insert_with(Instant::now).elapsed() >= STOP_GRACE;
                if terminal_hung_up() || overdue {
                    ratatui::restore();
                    std::process::exit(0);
                }
            }
        });
}

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    for sig in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

/// Run the live view until the user quits.
pub fn run(layout: Layout, project: Scope, ui: Ui) -> ExitCode {
    install_signal_handlers();
    spawn_watchdog();
    let (tx, rx) = mpsc::channel();
    let mut fs = FsWatch::new(&layout, tx);
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            ratatui::restore();
            eprintln!("oxtail status --watch: cannot use this terminal: {e}");
            return ExitCode::from(1);
        }
    };
    let result = event_loop(&mut terminal, &layout, &project, ui, &mut fs, &rx);
    ratatui::restore();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oxtail status --watch: {e}");
            ExitCode::from(1)
        }
    }
}

/// What the screen shows and the facts it was built from.
struct Live<'a> {
    layout: &'a Layout,
    project: &'a Scope,
    facts: Facts,
    snap: Snapshot,
    read_at: Instant,
    ticked_at: Instant,
}

impl<'a> Live<'a> {
    fn new(layout: &'a Layout, project: &'a Scope, ui: &Ui) -> Live<'a> {
        let facts = status::gather(layout, &scope(project, ui), &options(ui));
        Live {
            layout,
            project,
            snap: model::build(&facts, &options(ui)),
            facts,
            read_at: Instant::now(),
            ticked_at: Instant::now(),
        }
    }

    /// Read the store again.
    fn reread(&mut self, ui: &Ui) {
        *self = Live::new(self.layout, self.project, ui);
    }

    /// Advance the clock and re-probe the processes; `true` if the screen
    /// changes.
    fn tick(&mut self, ui: &Ui) -> bool {
        self.facts.advance(clock::now_ms());
        self.ticked_at = Instant::now();
        let next = model::build(&self.facts, &options(ui));
        let changed = next != self.snap;
        self.snap = next;
        changed
    }
}

fn scope(project: &Scope, ui: &Ui) -> Scope {
    if ui.all { Scope::All } else { project.clone() }
}

fn options(ui: &Ui) -> Options {
    // The log costs a receipt read per message: only while it is shown.
    Options {
        log: ui.show_log.then_some(LOG_KEEP),
        bodies: ui.bodies,
    }
}

/// What a key asks for.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    Quit,
    Redraw,
    Rebuild,
    None,
}

/// Apply key `code` to `ui`.
fn on_key(code: KeyCode, mods: KeyModifiers, ui: &mut Ui, rows: usize) -> Action {
    match code {
        KeyCode::Char('q') | KeyCode::Esc => Action::Quit,
        KeyCode::Char('c') if mods.contains(KeyModifiers::CONTROL) => Action::Quit,
        KeyCode::Char('l') => {
            ui.show_log = !ui.show_log;
            Action::Rebuild
        }
        KeyCode::Char('b') => {
            ui.bodies = !ui.bodies;
            if ui.bodies {
                ui.show_log = true;
            }
            Action::Rebuild
        }
        KeyCode::Char('a') => {
            ui.all = !ui.all;
            ui.selected = 0;
            Action::Rebuild
        }
        KeyCode::Char('r') => Action::Rebuild,
        KeyCode::Up | KeyCode::Char('k') => {
            ui.selected = ui.selected.saturating_sub(1);
            Action::Redraw
        }
        KeyCode::Down | KeyCode::Char('j') => {
            ui.selected = (ui.selected + 1).min(rows.saturating_sub(1));
            Action::Redraw
        }
        _ => Action::None,
    }
}

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    layout: &Layout,
    project: &Scope,
    mut ui: Ui,
    fs: &mut FsWatch,
    rx: &Receiver<()>,
) -> io::Result<()> {
    let mut live = Live::new(layout, project, &ui);
    let mut dirty = true;
    let mut pending = false;
    while !STOP.load(Ordering::SeqCst) {
        if dirty {
            terminal.draw(|f| screen::draw(f, &live.snap, &ui))?;
            dirty = false;
        }
        if event::poll(POLL)? {
            match event::read()? {
                Event::Key(k) if k.kind != KeyEventKind::Release => {
                    match on_key(k.code, k.modifiers, &mut ui, live.snap.agents.len()) {
                        Action::Quit => break,
                        Action::Redraw => dirty = true,
                        Action::Rebuild => {
                            live.reread(&ui);
                            dirty = true;
                        }
                        Action::None => {}
                    }
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
        while rx.try_recv().is_ok() {
            pending = true;
        }
        let since_read = live.read_at.elapsed();
        let full_every = if fs.active() { FULL_EVERY } else { TICK };
        if (pending && since_read >= MIN_REBUILD) || since_read >= full_every {
            fs.rearm();
            let before = live.snap.clone();
            live.reread(&ui);
            pending = false;
            dirty |= live.snap != before;
        } else if live.ticked_at.elapsed() >= TICK {
            dirty |= live.tick(&ui);
        }
    }
    Ok(())
}

/// File-system notifications on the store's directories. Directories that do
/// not exist yet are picked up by [`FsWatch::rearm`] once they appear; while
/// the store root itself is missing, its parent (`HOME`) is watched so its
/// creation is seen.
struct FsWatch {
    watcher: Option<notify::RecommendedWatcher>,
    root: PathBuf,
    dirs: Vec<PathBuf>,
    watched: HashSet<PathBuf>,
}

impl FsWatch {
    fn new(layout: &Layout, tx: mpsc::Sender<()>) -> FsWatch {
        let root = layout.root().to_path_buf();
        let filter_root = root.clone();
        let handler = move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res
                && relevant(&ev, &filter_root)
            {
                let _ = tx.send(());
            }
        };
        let sources = status::sources::StoreSources::new(layout);
        let s = sources.sources();
        let mut dirs = vec![
            root.clone(),
            layout.sessions_dir(),
            layout.mailboxes_dir(),
            layout.received_dir(),
            layout.activity_dir(),
        ];
        dirs.extend(s.receipts.watch_dir());
        dirs.extend(s.asks.watch_dir());
        let mut w = FsWatch {
            watcher: notify::recommended_watcher(handler).ok(),
            root,
            dirs,
            watched: HashSet::new(),
        };
        w.rearm();
        w
    }

    /// Notifications arrive for at least the store root.
    fn active(&self) -> bool {
        self.watched.contains(&self.root)
    }

    /// Watch every directory of interest that exists and is not watched yet;
    /// forget the ones that went away (a re-created directory is a new one).
    fn rearm(&mut self) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        let mut wanted: Vec<&PathBuf> = self.dirs.iter().filter(|d| d.is_dir()).collect();
        let parent = self.root.parent().map(Path::to_path_buf);
        if !self.root.is_dir()
            && let Some(p) = &parent
        {
            wanted.push(p);
        }
        let stale: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|d| !wanted.contains(d))
            .cloned()
            .collect();
        for d in stale {
            let _ = watcher.unwatch(&d);
            self.watched.remove(&d);
        }
        for d in wanted {
            if !self.watched.contains(d) && watcher.watch(d, RecursiveMode::NonRecursive).is_ok() {
                self.watched.insert(d.clone());
            }
        }
    }
}

/// A change under the store root (not a mere open or read, which our own
/// snapshot makes).
fn relevant(ev: &notify::Event, root: &Path) -> bool {
    let kind_counts = match ev.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    };
    kind_counts && ev.paths.iter().any(|p| p.starts_with(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_toggle_and_quit() {
        let mut ui = Ui::default();
        let none = KeyModifiers::NONE;
        assert_eq!(on_key(KeyCode::Char('q'), none, &mut ui, 3), Action::Quit);
        assert_eq!(on_key(KeyCode::Esc, none, &mut ui, 3), Action::Quit);
        assert_eq!(
            on_key(KeyCode::Char('c'), KeyModifiers::CONTROL, &mut ui, 3),
            Action::Quit
        );
        assert_eq!(on_key(KeyCode::Char('c'), none, &mut ui, 3), Action::None);
        assert_eq!(
            on_key(KeyCode::Char('l'), none, &mut ui, 3),
            Action::Rebuild
        );
        assert!(ui.show_log);
        assert_eq!(
            on_key(KeyCode::Char('l'), none, &mut ui, 3),
            Action::Rebuild
        );
        assert!(!ui.show_log);
        assert_eq!(
            on_key(KeyCode::Char('b'), none, &mut ui, 3),
            Action::Rebuild
        );
        assert!(ui.bodies && ui.show_log, "showing bodies opens the log");
        assert_eq!(
            on_key(KeyCode::Char('a'), none, &mut ui, 3),
            Action::Rebuild
        );
        assert!(ui.all);
        for _ in 0..5 {
            on_key(KeyCode::Down, none, &mut ui, 3);
        }
        assert_eq!(ui.selected, 2, "selection stops at the last row");
        on_key(KeyCode::Char('k'), none, &mut ui, 3);
        assert_eq!(ui.selected, 1);
    }

    #[test]
    fn only_changes_under_the_root_count() {
        let root = Path::new("/h/.oxtail");
        let ev = |kind, p: &str| notify::Event::new(kind).add_path(PathBuf::from(p));
        use notify::event::{CreateKind, ModifyKind};
        assert!(relevant(
            &ev(
                EventKind::Create(CreateKind::File),
                "/h/.oxtail/mailboxes/1.jsonl"
            ),
            root
        ));
        assert!(relevant(
            &ev(EventKind::Modify(ModifyKind::Any), "/h/.oxtail"),
            root
        ));
        assert!(relevant(
            &ev(
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                "/h/.oxtail/activity/x"
            ),
            root
        ));
        assert!(!relevant(
            &ev(
                EventKind::Access(AccessKind::Open(AccessMode::Any)),
                "/h/.oxtail/sessions/1.json"
            ),
            root
        ));
        assert!(!relevant(
            &ev(
                EventKind::Access(AccessKind::Close(AccessMode::Read)),
                "/h/.oxtail/sessions/1.json"
            ),
            root
        ));
        assert!(!relevant(
            &ev(EventKind::Create(CreateKind::File), "/h/other"),
            root
        ));
    }
}
