//! Messaging figures that must not grow with the size of the world, end to
//! end over MCP stdio for ours and `--other-cmd` the same way:
//! - `send_message` from A to B with R other live sessions in the registry,
//!   for every R of `--registry` (a [`Population`] of sleeping processes);
//! - one `read_my_messages` with Q messages queued for the reader (Q = 1,000
//!   and 10,000): the call returns its budget and puts the rest back.

use std::time::{Duration, Instant};

use serde_json::json;

use oxtail::store::mailbox;
use oxtail::store::message::{Message, NewMessage};

use super::super::mcp::{Impl, Sandbox, Server, cpu_ns, impls, session_id, settle};
use super::super::population::Population;
use super::super::{Ctx, Row};
use super::stdio::messages;

const TAG_SEND: u32 = 0x5701_0010;
const TAG_POP: u32 = 0x5701_0011;
const TAG_READ: u32 = 0x5701_0012;
/// Untimed sends before the timed ones (first calls fault in code and
/// create the store's directories).
const WARM_UP: usize = 20;
/// Queue depths of the read figure.
const QUEUED: [usize; 2] = [1_000, 10_000];

pub fn run(ctx: &Ctx) -> Vec<Row> {
    let all = impls(ctx);
    let mut rows = Vec::new();
    for &r in &ctx.registry {
        let pop = Population::spawn(r);
        rows.extend(send_with_registry(
            &all,
            &pop,
            (ctx.samples / 2).clamp(20, 100),
        ));
    }
    for q in QUEUED {
        let n = if q > 1_000 { 15 } else { 40 };
        rows.extend(read_with_queue(&all, q, n.min(ctx.samples.max(5))));
    }
    rows
}

/// Per implementation, one after the other (the other's servers stopped, so
/// neither runs beside the other's idle timers or on caches it just
/// emptied): a sandbox with A and B claimed and the registry also holding
/// `pop`'s entries; once the servers are idle, A sends 200 B to B by session
/// id ([`WARM_UP`] untimed, then `samples` timed); B drains now and then (untimed) so
/// its mailbox stays small.
fn send_with_registry(all: &[Impl], pop: &Population, samples: usize) -> Vec<Row> {
    let (a_sid, b_sid) = (session_id(TAG_SEND, 1), session_id(TAG_SEND, 2));
    let send = json!({"target": b_sid, "body": "x".repeat(200)});
    let mut rows = Vec::new();
    for imp in all {
        let sb = Sandbox::new("scale");
        pop.register(&sb.layout().sessions_dir(), &sb.project(), TAG_POP);
        let mut a = Server::start_claimed(imp, &sb, &a_sid);
        let mut b = Server::start_claimed(imp, &sb, &b_sid);
        settle(&[a.pid(), b.pid()]);
        let (mut times, mut cpu) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
        for i in 0..samples + WARM_UP {
            let c0 = cpu_ns(a.pid());
            let t = Instant::now();
            let r = a.call("send_message", send.clone());
            let d = t.elapsed();
            assert_eq!(r["ok"], true, "{}: send with registry: {r}", imp.label);
            if i >= WARM_UP {
                times.push(d.as_secs_f64() * 1e6);
                if let (Some(c0), Some(c1)) = (c0, cpu_ns(a.pid())) {
                    cpu.push(c1.saturating_sub(c0) as f64 / 1e3);
                }
            }
            if i % 20 == 19 {
                b.call("read_my_messages", json!({}));
            }
        }
        let left = std::fs::read_dir(sb.layout().sessions_dir()).map_or(0, |d| d.count());
        if left < pop.len() {
            eprintln!(
                "{}: registry shrank to {left} files during the run (expected ≥ {})",
                imp.label,
                pop.len()
            );
        }
        let name = format!(
            "messaging stdio: send_message with {} other registry entries",
            pop.len()
        );
        rows.push(Row::new(name.clone(), "µs", times).of(imp.label));
        if !cpu.is_empty() {
            rows.push(Row::new(format!("{name}, sender CPU"), "µs", cpu).of(imp.label));
        }
    }
    rows
}

/// Per implementation, one after the other: B's mailbox is topped up to
/// `queued` messages (written in the shared format straight into the
/// sandbox's store), then one read_my_messages is timed; it returns its
/// budget and requeues the rest.
fn read_with_queue(all: &[Impl], queued: usize, samples: usize) -> Vec<Row> {
    let (a_sid, b_sid) = (session_id(TAG_READ, 1), session_id(TAG_READ, 2));
    let body = "benchmark backlog message: please look at src/x.rs \u{2014} \"quoted\"\nthanks";
    let name = format!("messaging stdio: read_my_messages with {queued} queued");
    let mut rows = Vec::new();
    for imp in all {
        let sb = Sandbox::new("queue");
        let mut b = Server::start_claimed(imp, &sb, &b_sid);
        settle(&[b.pid()]);
        let (mut times, mut cpu) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
        let mut present = 0;
        for i in 0..samples + 2 {
            let top_up: Vec<Message> = (present..queued)
                .map(|_| Message::build(body, Some(&a_sid), &NewMessage::default()))
                .collect();
            mailbox::requeue_many(&sb.layout(), b.pid(), &top_up).expect("fill mailbox");
            let c0 = cpu_ns(b.pid());
            let t = Instant::now();
            let got = b.call("read_my_messages", json!({}));
            let d = t.elapsed();
            // Its after-reply work (receipts) counts as the read's CPU too.
            std::thread::sleep(Duration::from_millis(5));
            let c1 = cpu_ns(b.pid());
            let n = messages(&got).len();
            assert!(n > 0, "{}: read with {queued} queued: {got}", imp.label);
            present = queued - n;
            if i >= 2 {
                times.push(d.as_secs_f64() * 1e6);
                if let (Some(c0), Some(c1)) = (c0, c1) {
                    cpu.push(c1.saturating_sub(c0) as f64 / 1e3);
                }
            }
        }
        rows.push(Row::new(name.clone(), "µs", times).of(imp.label));
        if !cpu.is_empty() {
            rows.push(Row::new(format!("{name}, reader CPU"), "µs", cpu).of(imp.label));
        }
    }
    rows
}
