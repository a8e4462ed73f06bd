//! Messaging target resolution (`project::resolve_target`, server spec §3.7,
//! messaging spec §8) over a real registry directory.

mod server_support;

use oxtail::project::{TargetError, resolve_target};
use oxtail::store::paths::Layout;
use oxtail::store::registry::{Entry, read_all};
use serde_json::{Map, Value, json};
use server_support::{Sandbox, Sleeper, dead_pid, entry_json};

const ME: &str = "11111111-1111-1111-1111-111111111111";
const PEER: &str = "22222222-2222-2222-2222-222222222222";

fn entry(v: Value) -> Entry {
    serde_json::from_value(v).unwrap()
}

#[test]
fn resolution_cases() {
    let sb = Sandbox::new();
    let layout = Layout::at(sb.home().join(".oxtail"));
    let proj = sb.proj();
    let me_pid = std::process::id();
    let caller = entry(entry_json(
        me_pid,
        "claude-code",
        Some(ME),
        &proj,
        None,
        None,
    ));
    sb.write_entry(
        me_pid,
        &entry_json(me_pid, "claude-code", Some(ME), &proj, None, None),
    );

    assert_eq!(
        resolve_target(&layout, PEER, &caller),
        Err(TargetError::NotFound)
    );
    assert_eq!(
        resolve_target(&layout, ME, &caller),
        Err(TargetError::SelfSend)
    );

    let peer = Sleeper::new();
    sb.write_entry(
        peer.pid(),
        &entry_json(
            peer.pid(),
            "codex",
            Some(PEER),
            &proj.join("src"),
            Some("work"),
            None,
        ),
    );
    let got = resolve_target(&layout, PEER, &caller).unwrap();
    assert_eq!(got.server_pid, peer.pid());
    assert_eq!(
        resolve_target(&layout, "work", &caller).unwrap().server_pid,
        peer.pid()
    );

    // A fresher live sibling holding the caller's id is still self.
    let sib = Sleeper::new();
    let mut v = entry_json(
        sib.pid(),
        "claude-code",
        Some(ME),
        &proj,
        Some("mine"),
        None,
    );
    v["started_at"] = json!(1_800_000_000);
    sb.write_entry(sib.pid(), &v);
    assert_eq!(
        resolve_target(&layout, "mine", &caller),
        Err(TargetError::SelfSend)
    );

    // Two live peers (one unclaimed) on one tmux name.
    let other = Sleeper::new();
    sb.write_entry(
        other.pid(),
        &entry_json(other.pid(), "claude-code", None, &proj, Some("work"), None),
    );
    match resolve_target(&layout, "work", &caller) {
        Err(TargetError::Ambiguous { candidates, note }) => {
            assert_eq!(candidates, vec![PEER.to_string()]);
            assert!(note.unwrap().contains("'work'"));
        }
        r => panic!("{r:?}"),
    }
    let mut out = Map::new();
    TargetError::Ambiguous {
        candidates: vec![PEER.into()],
        note: None,
    }
    .write_into(&mut out);
    assert_eq!(
        Value::Object(out),
        json!({"ok": false, "error": "ambiguous-target", "candidates": [PEER]})
    );

    // Cross-project: another repo, and a nested repo under ours.
    let far = Sleeper::new();
    let elsewhere = sb.root().join("elsewhere");
    std::fs::create_dir_all(elsewhere.join(".git")).unwrap();
    sb.write_entry(
        far.pid(),
        &entry_json(
            far.pid(),
            "claude-code",
            Some("33333333-3333-3333-3333-333333333333"),
            &elsewhere,
            None,
            None,
        ),
    );
    assert_eq!(
        resolve_target(&layout, "33333333-3333-3333-3333-333333333333", &caller),
        Err(TargetError::CrossProject)
    );
    let nested = proj.join("vendor/x");
    std::fs::create_dir_all(nested.join(".git")).unwrap();
    let inner = Sleeper::new();
    sb.write_entry(
        inner.pid(),
        &entry_json(
            inner.pid(),
            "claude-code",
            Some("44444444-4444-4444-4444-444444444444"),
            &nested,
            None,
            None,
        ),
    );
    assert_eq!(
        resolve_target(&layout, "44444444-4444-4444-4444-444444444444", &caller),
        Err(TargetError::CrossProject)
    );

    // A dead pid is not a target; a changed started_at (pid reuse) is not either.
    let dead = dead_pid();
    sb.write_entry(
        dead,
        &entry_json(
            dead,
            "claude-code",
            Some("55555555-5555-5555-5555-555555555555"),
            &proj,
            None,
            None,
        ),
    );
    assert_eq!(
        resolve_target(&layout, "55555555-5555-5555-5555-555555555555", &caller),
        Err(TargetError::NotFound)
    );
    assert!(read_all(&layout).iter().all(|e| e.server_pid != dead));
}
