//! In-process wake debounce: one stamp per session id, shared by every keystroke
//! wake of this server (ask_peer, `wake:"auto"`, reply auto-wake).
//!
//! Invariant defended: two wakes of one session within the window coalesce into
//! one; the map stays bounded (past 256 entries, stamps older than 10 windows are
//! swept). Cross-process coordination is intentionally not attempted.

use std::collections::HashMap;
use std::sync::Mutex;

/// Map size above which a stamp sweeps old entries.
pub const SWEEP_THRESHOLD: usize = 256;

#[derive(Debug)]
pub struct Debounce {
    window_ms: f64,
    stamps: Mutex<HashMap<String, f64>>,
}

impl Debounce {
    pub fn new(window_ms: f64) -> Debounce {
        Debounce {
            window_ms,
            stamps: Mutex::new(HashMap::new()),
        }
    }

    pub fn window_ms(&self) -> f64 {
        self.window_ms
    }

    /// A stamp exists and `now - stamp < window`.
    pub fn recently_woke(&self, key: &str, now_ms: f64) -> bool {
        let stamps = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        stamps.get(key).is_some_and(|t| now_ms - t < self.window_ms)
    }

    /// Record a wake of `key` at `now_ms`, sweeping stale entries past the threshold.
    pub fn stamp(&self, key: &str, now_ms: f64) {
        let mut stamps = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        stamps.insert(key.to_string(), now_ms);
        if stamps.len() > SWEEP_THRESHOLD {
            let horizon = 10.0 * self.window_ms;
            stamps.retain(|_, t| now_ms - *t <= horizon);
        }
    }

    /// Check and stamp in one step: `true` when the caller may wake (and the
    /// stamp is now set), `false` when debounced. Two concurrent callers cannot
    /// both win.
    pub fn try_claim(&self, key: &str, now_ms: f64) -> bool {
        let mut stamps = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        if stamps.get(key).is_some_and(|t| now_ms - t < self.window_ms) {
            return false;
        }
        stamps.insert(key.to_string(), now_ms);
        if stamps.len() > SWEEP_THRESHOLD {
            let horizon = 10.0 * self.window_ms;
            stamps.retain(|_, t| now_ms - *t <= horizon);
        }
        true
    }

    pub fn len(&self) -> usize {
        self.stamps.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_store_never_debounces() {
        assert!(!Debounce::new(1000.0).recently_woke("a", 0.0));
    }

    #[test]
    fn window_edges() {
        let d = Debounce::new(1000.0);
        d.stamp("a", 5_000.0);
        assert!(d.recently_woke("a", 5_000.0));
        assert!(d.recently_woke("a", 5_999.0));
        assert!(!d.recently_woke("a", 6_000.0));
        assert!(!d.recently_woke("a", 9_000.0));
    }

    #[test]
    fn per_key_and_later_stamp_extends() {
        let d = Debounce::new(1000.0);
        d.stamp("a", 0.0);
        assert!(!d.recently_woke("b", 10.0));
        d.stamp("a", 900.0);
        assert!(d.recently_woke("a", 1_500.0));
    }

    #[test]
    fn sweep_keeps_the_new_entry() {
        let d = Debounce::new(1000.0);
        for i in 0..300 {
            d.stamp(&format!("k{i}"), i as f64);
        }
        d.stamp("new", 1_000_000.0);
        assert_eq!(d.len(), 1);
        assert!(d.recently_woke("new", 1_000_000.0));
    }

    #[test]
    fn try_claim_coalesces() {
        let d = Debounce::new(1000.0);
        assert!(d.try_claim("a", 0.0));
        assert!(!d.try_claim("a", 10.0));
        assert!(d.try_claim("a", 1_000.0));
    }
}
