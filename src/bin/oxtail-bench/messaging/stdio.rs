//! Messaging figures end to end: real server processes driven over MCP stdio,
//! for ours and for `--other-cmd`, the same way. Every server runs as Claude
//! Code (`CLAUDECODE=1`) in a private sandbox with wakes off and claims its
//! own session id with `claim_session` after the handshake.
//! - send_message (A) + read_my_messages (B) round trip: median, p10/p90, p99;
//! - 4 sender servers × 500 messages into one receiver server that drains
//!   concurrently: messages/s (to the last receipt), lost, duplicated, failed;
//! - ask_peer latency against a responder server the bench drives: it polls
//!   read_my_messages, sleeps [`RESPONDER_DELAY`], then reply_to_message.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::super::mcp::{Impl, Sandbox, Server, cpu_ns, impls, session_id, settle};
use super::super::{Ctx, Row};
use super::{PER_SENDER, RESPONDER_DELAY, SENDERS, percentile};

const TAG_RT: u32 = 0x5701_0001;
const TAG_FAN: u32 = 0x5701_0002;
const TAG_ASK: u32 = 0x5701_0003;

pub fn run(ctx: &Ctx) -> Vec<Row> {
    let mut rows = Vec::new();
    for imp in &impls(ctx) {
        rows.extend(round_trip(imp, ctx.samples.max(100)));
        rows.extend(fan_in(imp));
        rows.extend(ask_latency(imp, (ctx.samples / 10).clamp(10, 40)));
    }
    rows
}

pub(super) fn messages(v: &Value) -> &[Value] {
    v["messages"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// A (claimed) sends 200 B to B; B reads it back. Timed together, and each
/// half apart; an MCP `ping` to B alongside is the stdio floor of one call.
fn round_trip(imp: &Impl, samples: usize) -> Vec<Row> {
    let sb = Sandbox::new("rt");
    let (a_sid, b_sid) = (session_id(TAG_RT, 1), session_id(TAG_RT, 2));
    let mut a = Server::start_claimed(imp, &sb, &a_sid);
    let mut b = Server::start_claimed(imp, &sb, &b_sid);
    let send = json!({"target": b_sid, "body": "x".repeat(200)});
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let (mut total, mut sends, mut reads, mut pings) = (vec![], vec![], vec![], vec![]);
    for i in 0..samples + 10 {
        let t = Instant::now();
        let sent = a.call("send_message", send.clone());
        let t_sent = t.elapsed();
        let got = b.call("read_my_messages", json!({}));
        let elapsed = t.elapsed();
        let ok = sent["ok"] == true
            && messages(&got).len() == 1
            && messages(&got)[0]["id"] == sent["message_id"];
        assert!(ok, "{}: round trip: sent {sent} got {got}", imp.label);
        let t = Instant::now();
        let pong = b.request("ping", json!({}));
        let ping = t.elapsed();
        assert!(pong.get("result").is_some(), "{}: ping: {pong}", imp.label);
        if i >= 10 {
            total.push(us(elapsed));
            sends.push(us(t_sent));
            reads.push(us(elapsed - t_sent));
            pings.push(us(ping));
        }
    }
    let p99 = percentile(&total, 0.99);
    let name = "messaging stdio: send+read round trip";
    vec![
        Row::new(name, "µs", total).of(imp.label),
        Row::new(format!("{name} p99"), "µs", vec![p99]).of(imp.label),
        Row::new(format!("{name}: send_message part"), "µs", sends).of(imp.label),
        Row::new(format!("{name}: read_my_messages part"), "µs", reads).of(imp.label),
        Row::new(
            "messaging stdio: ping (stdio floor of one call)",
            "µs",
            pings,
        )
        .of(imp.label),
    ]
}

/// Rounds of [`fan_in_round`]; one sample per round.
const FAN_IN_ROUNDS: usize = 3;

fn fan_in(imp: &Impl) -> Vec<Row> {
    let mut s: [Vec<f64>; 5] = Default::default();
    for _ in 0..FAN_IN_ROUNDS {
        for (v, x) in s.iter_mut().zip(fan_in_round(imp)) {
            v.push(x);
        }
    }
    let [rate, lost, dup, failed, cpu] = s;
    let name = format!("messaging stdio: fan-in {SENDERS} servers x {PER_SENDER}");
    vec![
        Row::new(format!("{name} throughput"), "msg/s", rate).of(imp.label),
        Row::new(format!("{name} lost"), "msgs", lost).of(imp.label),
        Row::new(format!("{name} duplicated"), "msgs", dup).of(imp.label),
        Row::new(format!("{name} send failed"), "msgs", failed).of(imp.label),
        Row::new(format!("{name} server CPU per message"), "µs", cpu).of(imp.label),
    ]
}

/// 4 sender servers, each driven by its own thread, send 500 messages each
/// to one receiver server that this thread drains with read_my_messages.
/// Returns [messages/s to the last receipt, lost, duplicated, failed sends,
/// CPU of all five servers per message (µs)].
fn fan_in_round(imp: &Impl) -> [f64; 5] {
    let sb = Sandbox::new("fanin");
    let r_sid = session_id(TAG_FAN, 0xfff);
    let mut receiver = Server::start_claimed(imp, &sb, &r_sid);
    let mut senders: Vec<Server> = (0..SENDERS)
        .map(|i| Server::start_claimed(imp, &sb, &session_id(TAG_FAN, i)))
        .collect();
    let total = SENDERS * PER_SENDER;
    let pids: Vec<u32> = senders
        .iter()
        .map(Server::pid)
        .chain([receiver.pid()])
        .collect();
    settle(&pids);
    let cpu = || pids.iter().filter_map(|&p| cpu_ns(p)).sum::<u64>();
    let cpu0 = cpu();
    let start = Instant::now();
    let (sent, failed, received, seen, last) = std::thread::scope(|s| {
        let handles: Vec<_> = senders
            .iter_mut()
            .enumerate()
            .map(|(i, srv)| {
                let r_sid = &r_sid;
                s.spawn(move || {
                    let (mut ids, mut failed) = (Vec::with_capacity(PER_SENDER), 0usize);
                    for j in 0..PER_SENDER {
                        let body = format!("s{i} m{j}");
                        let r = srv.call("send_message", json!({"target": r_sid, "body": body}));
                        match r["message_id"].as_str() {
                            Some(id) if r["ok"] == true => ids.push(id.to_string()),
                            _ => {
                                if failed == 0 {
                                    eprintln!("fan-in sender {i}: send failed: {r}");
                                }
                                failed += 1;
                            }
                        }
                    }
                    (ids, failed)
                })
            })
            .collect();
        let mut seen = HashSet::with_capacity(total);
        let (mut received, mut last) = (0usize, Duration::ZERO);
        let deadline = Instant::now() + Duration::from_secs(180);
        while Instant::now() < deadline {
            let done = handles.iter().all(|h| h.is_finished());
            let got = receiver.call("read_my_messages", json!({}));
            let msgs = messages(&got);
            for m in msgs {
                received += 1;
                seen.insert(m["id"].as_str().unwrap_or_default().to_string());
            }
            if !msgs.is_empty() {
                last = start.elapsed();
            }
            if done && (seen.len() >= total || (msgs.is_empty() && got["deferred_count"].is_null()))
            {
                break;
            }
            if msgs.is_empty() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let (mut sent, mut failed) = (Vec::with_capacity(total), 0);
        for h in handles {
            let (ids, f) = h.join().expect("sender thread");
            sent.extend(ids);
            failed += f;
        }
        (sent, failed, received, seen, last)
    });
    let cpu_per_msg = cpu().saturating_sub(cpu0) as f64 / 1e3 / total as f64;
    let lost = sent.iter().filter(|id| !seen.contains(*id)).count();
    [
        seen.len() as f64 / last.as_secs_f64().max(1e-9),
        lost as f64,
        (received - seen.len()) as f64,
        failed as f64,
        cpu_per_msg,
    ]
}

/// ask_peer from one server to a responder server that the bench answers
/// through: poll read_my_messages, sleep the delay, reply_to_message.
fn ask_latency(imp: &Impl, samples: usize) -> Vec<Row> {
    let sb = Sandbox::new("ask");
    let (q_sid, p_sid) = (session_id(TAG_ASK, 1), session_id(TAG_ASK, 2));
    let mut asker = Server::start_claimed(imp, &sb, &q_sid);
    let mut responder = Server::start_claimed(imp, &sb, &p_sid);
    let stop = AtomicBool::new(false);
    let mut latency = Vec::with_capacity(samples);
    std::thread::scope(|s| {
        let answering = s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let got = responder.call("read_my_messages", json!({}));
                let msgs = messages(&got);
                if msgs.is_empty() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                for m in msgs.iter().filter(|m| m["request_id"].is_string()) {
                    std::thread::sleep(RESPONDER_DELAY);
                    let r = responder.call(
                        "reply_to_message",
                        json!({"message_id": m["id"], "body": "answer"}),
                    );
                    if r["ok"] != true {
                        eprintln!("{}: reply_to_message failed: {r}", imp.label);
                    }
                }
            }
        });
        let ask = json!({"target": p_sid, "body": "q", "timeout_ms": 10_000});
        for i in 0..samples + 2 {
            let t = Instant::now();
            let out = asker.call("ask_peer", ask.clone());
            let elapsed = t.elapsed();
            if out["timed_out"] != false || out["reply"].is_null() {
                eprintln!("{}: ask_peer without a reply: {out}", imp.label);
                continue;
            }
            if i >= 2 {
                latency.push(elapsed.as_secs_f64() * 1e3);
            }
        }
        stop.store(true, Ordering::Relaxed);
        answering.join().expect("responder thread");
    });
    vec![
        Row::new(
            format!(
                "messaging stdio: ask_peer latency, responder replies after {} ms",
                RESPONDER_DELAY.as_millis()
            ),
            "ms",
            latency,
        )
        .of(imp.label),
    ]
}
