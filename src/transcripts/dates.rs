//! Calendar helpers for Codex's `sessions/YYYY/MM/DD` directories.
//!
//! Invariant defended: the day list is exactly the original's — for 0, 1 and 2
//! days back, the UTC date then the local date, de-duplicated in order — so a
//! rollout written just after midnight in either zone is still found.

/// UTC `YYYY/MM/DD` of a Unix time in seconds (times before the epoch, which
/// a running clock never produces here, read as the epoch).
pub fn utc_day(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    // `YYYY-MM-DDTHH:MM:SSZ`
    let stamp = humantime::format_rfc3339_seconds(t).to_string();
    stamp[..10].replace('-', "/")
}

/// Local-time `YYYY/MM/DD` of a Unix time in seconds (honours `TZ`).
pub fn local_day(secs: i64) -> String {
    let t: libc::time_t = secs as libc::time_t;
    // SAFETY: localtime_r writes into the zeroed struct we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        return utc_day(secs);
    }
    format!(
        "{:04}/{:02}/{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday
    )
}

/// The candidate day directories (relative), newest first, de-duplicated.
pub fn recent_day_dirs(now_ms: i64) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(6);
    for i in 0..3 {
        let secs = (now_ms - i * 86_400_000).div_euclid(1000);
        for d in [utc_day(secs), local_day(secs)] {
            if !out.contains(&d) {
                out.push(d);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(utc_day(0), "1970/01/01");
        assert_eq!(utc_day(951_782_400), "2000/02/29");
        assert_eq!(utc_day(1_780_000_000), "2026/05/28");
        let dirs = recent_day_dirs(1_780_000_000_000);
        assert!(dirs.len() >= 3 && dirs.len() <= 6);
        assert_eq!(dirs[0], "2026/05/28");
        assert!(dirs.contains(&"2026/05/26".to_string()));
    }
}
