//! Calendar helpers for Codex's `sessions/YYYY/MM/DD` directories.
//!
//! Invariant defended: the day list is exactly the original's — for 0, 1 and 2
//! days back, the UTC date then the local date, de-duplicated in order — so a
//! rollout written just after midnight in either zone is still found.

/// `(year, month, day)` of a Unix day number (days since 1970-01-01), UTC.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// UTC `YYYY/MM/DD` of a Unix time in seconds.
pub fn utc_day(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}/{m:02}/{d:02}")
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

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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
