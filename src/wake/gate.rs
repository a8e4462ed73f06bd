//! The strict reply auto-wake gate: may a reply (`reply_to` set, `wake` unset)
//! wake its target?
//!
//! Invariant defended: a reply wakes a peer only when the peer is *fresh idle*
//! (its hook marked it `idle` less than the fresh-idle window ago), at most once per
//! (session id, reply_to) within the dedupe TTL and at most once per target per
//! min interval — across every server sharing `~/.oxtail/autowake`. The dedupe slot
//! is claimed before any keystroke, and a store failure is a skip, never an error.

use crate::config::positive_env;
use crate::store::activity::ActivitySnapshot;
use crate::store::autowake;
use crate::store::paths::Layout;

use super::WakeStatus;

/// The gate's windows (read once at startup in production).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutowakeSettings {
    pub fresh_idle_ms: f64,
    pub min_interval_ms: f64,
    pub dedupe_ttl_ms: f64,
}

impl Default for AutowakeSettings {
    fn default() -> Self {
        AutowakeSettings {
            fresh_idle_ms: 300_000.0,
            min_interval_ms: 4_000.0,
            dedupe_ttl_ms: 3_600_000.0,
        }
    }
}

impl AutowakeSettings {
    pub fn from_env() -> AutowakeSettings {
        let d = AutowakeSettings::default();
        AutowakeSettings {
            fresh_idle_ms: positive_env("OXTAIL_AUTOWAKE_FRESH_IDLE_MS", d.fresh_idle_ms),
            min_interval_ms: positive_env("OXTAIL_AUTOWAKE_MIN_INTERVAL_MS", d.min_interval_ms),
            dedupe_ttl_ms: positive_env("OXTAIL_AUTOWAKE_DEDUPE_TTL_MS", d.dedupe_ttl_ms),
        }
    }
}

/// The kill switch rule: value trimmed and lower-cased equals `off`.
pub fn kill_switch(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("off"))
}

/// `OXTAIL_AUTOWAKE`, read at every decision.
pub fn kill_switch_from_env() -> bool {
    kill_switch(std::env::var("OXTAIL_AUTOWAKE").ok().as_deref())
}

/// Marker present, exactly `idle`, and `0 <= age < fresh_idle_ms`.
pub fn is_fresh_idle(snapshot: Option<&ActivitySnapshot>, fresh_idle_ms: f64) -> bool {
    snapshot.is_some_and(|s| s.is("idle") && s.age_ms >= 0.0 && s.age_ms < fresh_idle_ms)
}

/// Decide; `Ok(())` = fire (the dedupe slot is now claimed), `Err(status)` = skip.
pub fn decide(
    layout: &Layout,
    settings: &AutowakeSettings,
    disabled: bool,
    session_id: Option<&str>,
    reply_to: &str,
    snapshot: Option<&ActivitySnapshot>,
    now_ms: f64,
) -> Result<(), WakeStatus> {
    if disabled {
        return Err(WakeStatus::Disabled);
    }
    let Some(session_id) = session_id.filter(|s| !s.is_empty()) else {
        return Err(WakeStatus::SkippedNoFreshIdle);
    };
    if !is_fresh_idle(snapshot, settings.fresh_idle_ms) {
        return Err(WakeStatus::SkippedNoFreshIdle);
    }
    if autowake::gc(layout, now_ms, settings.dedupe_ttl_ms).is_err() {
        return Err(WakeStatus::SkippedStoreError);
    }
    if autowake::deduped(layout, session_id, reply_to, now_ms, settings.dedupe_ttl_ms) {
        return Err(WakeStatus::SkippedDeduped);
    }
    if autowake::rate_limited(layout, session_id, now_ms, settings.min_interval_ms) {
        return Err(WakeStatus::SkippedRateLimited);
    }
    match autowake::claim(layout, session_id, reply_to, now_ms, settings.dedupe_ttl_ms) {
        Ok(true) => Ok(()),
        Ok(false) => Err(WakeStatus::SkippedDeduped),
        Err(_) => Err(WakeStatus::SkippedStoreError),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "11111111-1111-1111-1111-111111111111";
    const NOW: f64 = 1_800_000_000_000.0;

    fn idle(age_ms: f64) -> Option<ActivitySnapshot> {
        Some(ActivitySnapshot {
            status: "idle".into(),
            age_ms,
        })
    }

    fn count(layout: &Layout) -> usize {
        std::fs::read_dir(layout.autowake_dir())
            .map(|d| d.count())
            .unwrap_or(0)
    }

    #[test]
    fn kill_switch_values() {
        for off in ["off", "OFF", "  off  "] {
            assert!(kill_switch(Some(off)), "{off}");
        }
        assert!(!kill_switch(Some("auto")));
        assert!(!kill_switch(None));
    }

    #[test]
    fn fresh_idle_rule() {
        assert!(is_fresh_idle(idle(30_000.0).as_ref(), 300_000.0));
        assert!(!is_fresh_idle(idle(300_001.0).as_ref(), 300_000.0));
        assert!(!is_fresh_idle(idle(-1.0).as_ref(), 300_000.0));
        assert!(!is_fresh_idle(None, 300_000.0));
        let busy = ActivitySnapshot {
            status: "busy".into(),
            age_ms: 1.0,
        };
        assert!(!is_fresh_idle(Some(&busy), 300_000.0));
    }

    #[test]
    fn decisions() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::at(tmp.path());
        let s = AutowakeSettings::default();
        let d = |disabled, sid, reply: &str, snap: Option<ActivitySnapshot>, now| {
            decide(&layout, &s, disabled, sid, reply, snap.as_ref(), now)
        };
        assert_eq!(
            d(true, Some(SID), "a", idle(1.0), NOW),
            Err(WakeStatus::Disabled)
        );
        assert_eq!(count(&layout), 0);
        assert_eq!(
            d(false, None, "a", idle(1.0), NOW),
            Err(WakeStatus::SkippedNoFreshIdle)
        );
        assert_eq!(
            d(false, Some(SID), "a", None, NOW),
            Err(WakeStatus::SkippedNoFreshIdle)
        );
        assert_eq!(count(&layout), 0);
        assert_eq!(d(false, Some(SID), "a", idle(1.0), NOW), Ok(()));
        assert_eq!(count(&layout), 2);
        // Same pair after the rate window: deduped.
        assert_eq!(
            d(false, Some(SID), "a", idle(1.0), NOW + 5_000.0),
            Err(WakeStatus::SkippedDeduped)
        );
        // Other reply_to within half the interval: rate limited; after it: fire.
        assert_eq!(
            d(false, Some(SID), "b", idle(1.0), NOW + 2_000.0),
            Err(WakeStatus::SkippedRateLimited)
        );
        assert_eq!(d(false, Some(SID), "b", idle(1.0), NOW + 4_001.0), Ok(()));
        // Another session is not limited by the first one.
        let other = "22222222-2222-2222-2222-222222222222";
        assert_eq!(d(false, Some(other), "a", idle(1.0), NOW + 4_002.0), Ok(()));
        // After the TTL the same pair may fire again.
        assert_eq!(
            d(
                false,
                Some(SID),
                "a",
                idle(1.0),
                NOW + s.dedupe_ttl_ms + 60_000.0
            ),
            Ok(())
        );
    }

    #[test]
    fn store_error_is_a_status() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::at(tmp.path());
        std::fs::write(layout.autowake_dir(), "not a dir").unwrap();
        let s = AutowakeSettings::default();
        assert_eq!(
            decide(&layout, &s, false, Some(SID), "a", idle(1.0).as_ref(), NOW),
            Err(WakeStatus::SkippedStoreError)
        );
    }
}
