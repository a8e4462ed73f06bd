//! Ledger retention driven by `OXTAIL_RECEIVED_MAX` (messaging.md §6.4, §14
//! item 35). One test in its own binary: it sets process environment.

mod store_support;

use std::fs;

use oxtail::store::ledger;
use oxtail::store::message::{Message, NewMessage};
use store_support::{layout, traces};

const RECV: &str = "44444444-4444-4444-4444-444444444444";

fn set(v: &str) {
    // SAFETY: the only test of this binary; no other thread reads the env.
    unsafe { std::env::set_var("OXTAIL_RECEIVED_MAX", v) };
}

#[test]
fn retention_cap_follows_the_environment() {
    let (_t, l) = layout();
    for (v, want) in [
        ("10", 10),
        (" 1e1 ", 10),
        ("12.9", 12),
        ("0", 1000),
        ("-3", 1000),
        ("abc", 1000),
        ("Infinity", 1000),
        ("0x10", 16),
    ] {
        set(v);
        assert_eq!(ledger::retention_cap(), want, "{v:?}");
    }
    set("10");
    let msgs: Vec<_> = (0..15)
        .map(|i| Message::build(&format!("m{i}"), None, &NewMessage::default()))
        .collect();
    for m in &msgs {
        ledger::record(&l, RECV, m).unwrap();
    }
    for m in &msgs[..5] {
        assert!(ledger::lookup(&l, RECV, m.id().unwrap()).unwrap().is_none());
    }
    assert!(
        ledger::lookup(&l, RECV, msgs[14].id().unwrap())
            .unwrap()
            .is_some()
    );
    let text = fs::read_to_string(l.ledger(RECV)).unwrap();
    assert_eq!(text.lines().filter(|x| !x.is_empty()).count(), 10);
    let pruned = traces("received_ledger_pruned", RECV);
    assert_eq!(pruned.len(), 5);
    assert_eq!(pruned[0]["dropped"], 1);
    assert_eq!(pruned[0]["kept"], 10);

    // 0.5 floors to 0: every record leaves an empty ledger ("\n").
    set("0.5");
    ledger::record(&l, RECV, &msgs[0]).unwrap();
    assert_eq!(fs::read(l.ledger(RECV)).unwrap(), b"\n");

    // Large caps are compacted in batches (beyond the original, which
    // rewrites the whole ledger on every record): the file never holds fewer
    // than the cap's newest records nor more than cap + cap/8, and each
    // compaction is traced.
    set("200");
    let (_t2, l2) = layout();
    let slack = ledger::compaction_slack(200);
    assert_eq!(slack, 25);
    let msgs: Vec<_> = (0..300)
        .map(|i| Message::build(&format!("b{i}"), None, &NewMessage::default()))
        .collect();
    for (i, m) in msgs.iter().enumerate() {
        ledger::record(&l2, RECV, m).unwrap();
        let text = fs::read_to_string(l2.ledger(RECV)).unwrap();
        let n = text.lines().filter(|x| !x.is_empty()).count();
        assert!(
            n >= (i + 1).min(200) && n <= 225,
            "after {} records: {n} lines",
            i + 1
        );
    }
    for m in &msgs[100..] {
        assert!(
            ledger::lookup(&l2, RECV, m.id().unwrap())
                .unwrap()
                .is_some()
        );
    }
    assert!(
        ledger::lookup(&l2, RECV, msgs[0].id().unwrap())
            .unwrap()
            .is_none()
    );
    let pruned: Vec<_> = traces("received_ledger_pruned", RECV)
        .into_iter()
        .filter(|v| v["kept"] == 200)
        .collect();
    assert_eq!(
        pruned.len(),
        3,
        "one compaction per 26 records past 225 lines"
    );
    assert!(pruned.iter().all(|v| v["dropped"] == 26));
}
