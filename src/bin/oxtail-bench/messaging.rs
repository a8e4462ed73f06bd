//! Messaging figures. [`stdio`] drives real server processes over MCP (ours
//! and `--other-cmd`); the in-process figures here call the real tool bodies
//! (target resolution, ledger, mailbox, budget) under a private temp root:
//! - send_message + read_my_messages round trip (median, p10/p90, and p99);
//! - 4 sender processes × 500 messages into one receiver draining concurrently:
//!   messages/s, lost and duplicated counts;
//! - ask_peer latency against a responder that answers after a known delay
//!   (reported as the overhead above that delay).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use oxtail::delivery;
use oxtail::server::tools::ask_peer::{self, AskSettings, Cancel};
use oxtail::server::tools::read_my_messages::{self, Budget};
use oxtail::server::tools::send_message;
use oxtail::store::mailbox;
use oxtail::store::message::NewMessage;
use oxtail::store::paths::Layout;
use oxtail::store::registry::{self, Client, ClientType, Entry};
use oxtail::wake::tmux::Tmux;
use oxtail::wake::{Strategy, WakeSettings, Waker};

use super::{Ctx, Row};

mod stdio;

const RECEIVER: &str = "bbbbbbbb-0000-4000-8000-00000000000b";
const SENDER: &str = "aaaaaaaa-0000-4000-8000-00000000000a";
const SENDERS: usize = 4;
const PER_SENDER: usize = 500;
const RESPONDER_DELAY: Duration = Duration::from_millis(50);

/// A temp root with a git project, removed on drop.
struct World {
    root: PathBuf,
}

impl World {
    fn new() -> World {
        let mut b = [0u8; 6];
        rand::fill(&mut b[..]);
        let root = std::env::temp_dir().join(format!("oxtail-bench-msg-{}", hex::encode(b)));
        std::fs::create_dir_all(root.join("project/.git")).expect("temp dir");
        World { root }
    }
    fn layout(&self) -> Layout {
        Layout::at(self.root.join(".oxtail"))
    }
    fn project(&self) -> String {
        self.root.join("project").to_string_lossy().into_owned()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A live process standing in for the receiving server (its pid keys the
/// mailbox; the receiver's reads run in this process).
struct Sleeper(Child);

impl Sleeper {
    fn new() -> Sleeper {
        Sleeper(
            Command::new("sleep")
                .arg("600")
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn sleep"),
        )
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn entry(pid: u32, sid: &str, cwd: &str) -> Entry {
    let client = Client {
        client_type: ClientType::ClaudeCode,
        session_id: Some(sid.to_string()),
        session_id_source: Some("self-register".into()),
        cwd: cwd.to_string(),
        ..Client::default()
    };
    Entry::new(pid, 1_700_000_000, client)
}

fn waker(layout: &Layout) -> &'static Waker {
    let settings = WakeSettings {
        strategy: Strategy::Off,
        ..WakeSettings::default()
    };
    Box::leak(Box::new(Waker::new(
        settings,
        Some(layout.clone()),
        Tmux::ambient(),
    )))
}

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s.get(((s.len().saturating_sub(1)) as f64 * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

pub fn run(ctx: &Ctx) -> Vec<Row> {
    let mut rows = round_trip(ctx.samples.max(100));
    rows.extend(fan_in(ctx));
    rows.extend(ask_latency((ctx.samples / 10).clamp(10, 40)));
    rows.extend(stdio::run(ctx));
    rows
}

/// send_message (A → B) then read_my_messages (B), both tool bodies.
fn round_trip(samples: usize) -> Vec<Row> {
    let world = World::new();
    let layout = world.layout();
    let receiver = Sleeper::new();
    let caller = entry(std::process::id(), SENDER, &world.project());
    let peer = entry(receiver.0.id(), RECEIVER, &world.project());
    registry::register(&layout, &caller).expect("register caller");
    registry::register(&layout, &peer).expect("register peer");
    let w = waker(&layout);
    let send = args(json!({"target": RECEIVER, "body": "x".repeat(200)}));
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        let sent = send_message::run(&layout, &caller, w, &send).expect("send");
        let (got, handoff) =
            read_my_messages::run(&layout, &peer, Budget::default()).expect("read");
        handoff.finish(true);
        let elapsed = t.elapsed();
        assert_eq!(got["messages"][0]["id"], sent["message_id"]);
        times.push(elapsed.as_secs_f64() * 1e6);
    }
    let p99 = percentile(&times, 0.99);
    vec![
        Row::new("messaging in-process: send+read round trip", "µs", times),
        Row::new(
            "messaging in-process: send+read round trip p99",
            "µs",
            vec![p99],
        ),
    ]
}

/// Helper process: `__child messaging sender <root> <index> <count>`.
pub fn child(args_in: &[String]) -> i32 {
    let [kind, root, index, count] = args_in else {
        return 2;
    };
    if kind != "sender" {
        return 2;
    }
    let (Ok(index), Ok(count)) = (index.parse::<usize>(), count.parse::<usize>()) else {
        return 2;
    };
    let root = Path::new(root);
    let layout = Layout::at(root.join(".oxtail"));
    let sid = format!("5e{index:06}-0000-4000-8000-000000000000");
    let me = entry(
        std::process::id(),
        &sid,
        &root.join("project").to_string_lossy(),
    );
    if registry::register(&layout, &me).is_err() {
        return 1;
    }
    let w = waker(&layout);
    for i in 0..count {
        let a = args(json!({"target": RECEIVER, "body": format!("s{index} m{i}")}));
        if send_message::run(&layout, &me, w, &a).is_err() {
            return 1;
        }
    }
    registry::unregister(&layout, std::process::id());
    0
}

/// 4 sender processes × 500 messages; this process drains as the receiver.
fn fan_in(ctx: &Ctx) -> Vec<Row> {
    let world = World::new();
    let layout = world.layout();
    let receiver = Sleeper::new();
    let peer = entry(receiver.0.id(), RECEIVER, &world.project());
    registry::register(&layout, &peer).expect("register receiver");
    let start = Instant::now();
    let mut children: Vec<Child> = (0..SENDERS)
        .map(|i| {
            Command::new(&ctx.exe)
                .args(["__child", "messaging", "sender"])
                .arg(&world.root)
                .arg(i.to_string())
                .arg(PER_SENDER.to_string())
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn sender")
        })
        .collect();
    let total = SENDERS * PER_SENDER;
    let mut ids = HashSet::new();
    let mut received = 0usize;
    let mut senders_done = false;
    let mut failures = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let (got, handoff) =
            read_my_messages::run(&layout, &peer, Budget::default()).expect("read");
        handoff.finish(true);
        let msgs = got["messages"].as_array().cloned().unwrap_or_default();
        for m in &msgs {
            received += 1;
            ids.insert(m["id"].as_str().unwrap_or_default().to_string());
        }
        if !senders_done
            && children
                .iter_mut()
                .all(|c| matches!(c.try_wait(), Ok(Some(_))))
        {
            senders_done = true;
            failures = children
                .iter_mut()
                .map(|c| c.wait().is_ok_and(|s| s.success()))
                .filter(|ok| !ok)
                .count();
        }
        if senders_done && msgs.is_empty() && got.get("deferred_count").is_none() {
            break;
        }
        if msgs.is_empty() {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    if failures > 0 {
        eprintln!("messaging fan-in: {failures} sender process(es) failed");
    }
    let unique = ids.len();
    vec![
        Row::new(
            format!("messaging in-process: fan-in {SENDERS} procs x {PER_SENDER} throughput"),
            "msg/s",
            vec![total as f64 / elapsed],
        ),
        Row::new(
            "messaging in-process: fan-in lost",
            "msgs",
            vec![total.saturating_sub(unique) as f64],
        ),
        Row::new(
            "messaging in-process: fan-in duplicated",
            "msgs",
            vec![(received - unique) as f64],
        ),
    ]
}

/// ask_peer against a responder thread that answers `RESPONDER_DELAY` after the
/// question lands; the figure is the wall time minus that delay.
fn ask_latency(samples: usize) -> Vec<Row> {
    let world = World::new();
    let layout = world.layout();
    let responder_proc = Sleeper::new();
    let caller = entry(std::process::id(), SENDER, &world.project());
    let peer = entry(responder_proc.0.id(), RECEIVER, &world.project());
    registry::register(&layout, &caller).expect("register caller");
    registry::register(&layout, &peer).expect("register peer");
    let stop = Arc::new(AtomicBool::new(false));
    let responder = {
        let (layout, stop, peer_pid, caller_pid) = (
            layout.clone(),
            stop.clone(),
            peer.server_pid,
            caller.server_pid,
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let qs = mailbox::drain(&layout, peer_pid).unwrap_or_default();
                for q in qs {
                    std::thread::sleep(RESPONDER_DELAY);
                    let opts = NewMessage {
                        reply_to: q.request_id(),
                        ..NewMessage::default()
                    };
                    let _ = delivery::deliver(
                        &layout,
                        Some(SENDER),
                        caller_pid,
                        "answer",
                        Some(RECEIVER),
                        &opts,
                    );
                }
                std::thread::sleep(Duration::from_micros(500));
            }
        })
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let w = waker(&layout);
    let settings = AskSettings {
        default_timeout_ms: 10_000.0,
        max_timeout_ms: 100_000.0,
    };
    let mut overhead = Vec::with_capacity(samples);
    for _ in 0..samples {
        let a = args(json!({"target": RECEIVER, "body": "q"}));
        let (_tx, cancel) = Cancel::channel();
        let t = Instant::now();
        let out = rt
            .block_on(ask_peer::run(
                layout.clone(),
                caller.clone(),
                w,
                settings,
                a,
                cancel,
            ))
            .expect("ask");
        let elapsed = t.elapsed();
        let (out, handoff) = out;
        handoff.finish(true);
        if out["timed_out"] != false {
            eprintln!("messaging ask: timed out: {out}");
            continue;
        }
        overhead.push((elapsed.as_secs_f64() - RESPONDER_DELAY.as_secs_f64()) * 1e3);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = responder.join();
    vec![Row::new(
        format!(
            "messaging in-process: ask_peer latency above a {} ms responder",
            RESPONDER_DELAY.as_millis()
        ),
        "ms",
        overhead,
    )]
}
