//! Wakes decided by real `oxtail` servers against a private tmux server (own
//! `TMUX_TMPDIR`): the prompt lands in the pane the process tree verifies for the
//! peer, never in a pane a registry entry merely claims; busy, debounced,
//! disabled and reply auto-wake outcomes. Skips when tmux is not installed.

mod messaging_support;

use std::fs;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use oxtail::wake::WAKE_TEXT;
use oxtail::wake::tmux::Tmux;

use messaging_support::*;

const SID_D: &str = "dddddddd-0000-4000-8000-000000000004";

struct TmuxServer(Tmux);

impl Drop for TmuxServer {
    fn drop(&mut self) {
        let _ = self.0.run(&["kill-server"]);
    }
}

#[test]
fn servers_wake_only_verified_panes() {
    if !Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("tmux not installed: skipping");
        return;
    }
    let world = World::new();
    // The servers run plain `tmux`: the default socket under TMUX_TMPDIR.
    let tmux = TmuxServer(Tmux::private(&world.tmux_tmpdir, None));
    let pidfile = world.home.join("peer.pid");
    let script = format!("sleep 300 & echo $! > {}; exec cat", pidfile.display());
    tmux.0
        .run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "peer",
            "-x",
            "200",
            "-y",
            "30",
            "sh",
            "-c",
            &script,
        ])
        .unwrap();
    wait_until("peer pid", || {
        fs::read_to_string(&pidfile).is_ok_and(|s| s.trim().parse::<u32>().is_ok())
    });
    let peer_pid: u32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let pane = tmux
        .0
        .run(&["display-message", "-p", "-t", "peer", "#{pane_id}"])
        .unwrap()
        .trim()
        .to_string();
    let screen = || {
        tmux.0
            .run(&["capture-pane", "-p", "-J", "-t", "peer"])
            .unwrap()
            .matches(WAKE_TEXT)
            .count()
    };

    let mut e = entry_json(peer_pid, Some(SID_C), &world.project, Some("peer"), true);
    e["tmux_pane"] = json!(pane);
    world.fake_entry(peer_pid, e);
    // A liar: a live process outside every pane whose entry names the real pane.
    let liar = Sleeper::new();
    let mut l = entry_json(liar.pid(), Some(SID_D), &world.project, None, true);
    l["tmux_pane"] = json!(pane);
    world.fake_entry(liar.pid(), l);

    // A short confirm window keeps the second wake inside the debounce window.
    let mut a = world.server(&[("OXTAIL_WAKE_CONFIRM_MS", "1")]);
    a.claim(SID_A);
    let send = |s: &mut Server, target: &str, extra: serde_json::Value| {
        let mut args = json!({"target": target, "body": "hello"});
        args.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        s.tool("send_message", args).json()
    };

    let fired = send(&mut a, SID_C, json!({"wake": "auto"}));
    // Keystrokes typed, but no receipt (the pane runs `cat`): unconfirmed.
    assert_eq!(fired["wake_status"], "fired_unconfirmed", "{fired}");
    assert_eq!(fired["wake_path"], "tmux", "{fired}");
    assert!(fired.get("delivery_outlook").is_none(), "{fired}");
    wait_until("the prompt in the pane", || screen() >= 2); // typed + echoed by cat
    assert_eq!(
        send(&mut a, SID_C, json!({"wake": "auto"}))["wake_status"],
        "skipped_debounced"
    );
    assert_eq!(
        send(&mut a, SID_D, json!({"wake": "auto"}))["wake_status"],
        "skipped_no_target"
    );
    let skipped = world.traces("ask_peer_wake_skipped");
    let nv = skipped
        .iter()
        .find(|t| t["reason"] == "no-verified-pane")
        .unwrap();
    assert_eq!(
        nv["server_pid"],
        liar.pid(),
        "the peer pid fills the fixed slot"
    );
    assert_eq!(nv["cached"], pane.as_str());

    let layout = world.layout();
    fs::create_dir_all(layout.activity_dir()).unwrap();
    fs::write(layout.activity_marker(SID_C), "busy").unwrap();
    let mut b = world.server(&[]);
    b.claim(SID_B);
    assert_eq!(
        send(&mut b, SID_C, json!({"wake": "auto"}))["wake_status"],
        "skipped_busy"
    );
    fs::write(layout.activity_marker(SID_C), "idle").unwrap();
    let mut off = world.server(&[("OXTAIL_ASK_PEER_WAKE_STRATEGY", "off")]);
    assert_eq!(
        send(&mut off, SID_C, json!({"wake": "auto"}))["wake_status"],
        "disabled"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(screen(), 2, "only the one verified wake typed anything");

    // Reply auto-wake to a fresh idle peer fires once per reply_to.
    let r = send(&mut b, SID_C, json!({"reply_to": "req-1"}));
    assert_eq!(r["wake_status"], "fired_unconfirmed", "{r}");
    assert_eq!(r["wake_reason"], "reply_to_default");
    wait_until("the reply wake", || screen() >= 4);
    let mut c = world.server(&[]);
    c.claim("eeeeeeee-0000-4000-8000-000000000005");
    assert_eq!(
        send(&mut c, SID_C, json!({"reply_to": "req-1"}))["wake_status"],
        "skipped_deduped"
    );
    let vias: Vec<String> = world
        .traces("wake_outcome")
        .iter()
        .map(|t| t["via"].as_str().unwrap().to_string())
        .collect();
    assert!(
        vias.contains(&"reply_default".to_string()) && vias.contains(&"send_message".to_string())
    );

    // diagnose over this very trace.
    let out = Command::new(env!("CARGO_BIN_EXE_oxtail"))
        .arg("diagnose")
        .env("MCP_TRACE_FILE", &world.trace)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("  send_message: ") && text.contains("fired_unconfirmed 1"),
        "{text}"
    );
}
