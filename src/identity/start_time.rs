//! When did a process start? The one owner of that question for the crate:
//! the client binding (`identity::follow`, `server::follow`) and the pid-reuse
//! check of `oxtail status` both ask it.
//!
//! Invariant defended: a start time is read, never guessed — from `/proc`
//! (`btime` + field 22 of `/proc/<pid>/stat`, exact, no process spawned) on
//! Linux, else from one `ps -o pid=,etime=` call (to the second); a pid
//! neither answers for has no start time.

use std::collections::HashMap;
use std::process::{Command, Stdio};

/// When process `pid` started, in Unix seconds.
pub fn start_time_s(pid: u32) -> Option<i64> {
    start_times(&[pid], crate::clock::now_s())
        .get(&pid)
        .copied()
}

/// Start times (unix seconds) of the given live pids: `/proc` first, `ps`
/// for whatever it could not answer.
pub fn start_times(pids: &[u32], now_s: i64) -> HashMap<u32, i64> {
    let mut out = HashMap::new();
    if pids.is_empty() {
        return out;
    }
    if let Some(boot) = proc_boot_time() {
        let ticks = clock_ticks();
        for &pid in pids {
            if let Some(t) = proc_start_ticks(pid) {
                out.insert(pid, boot + (t / ticks) as i64);
            }
        }
    }
    let rest: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|p| !out.contains_key(p))
        .collect();
    out.extend(ps_start_times(&rest, now_s));
    out
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// `btime` of `/proc/stat` (Linux).
fn proc_boot_time() -> Option<i64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Field 22 (`starttime`, clock ticks since boot) of `/proc/<pid>/stat`.
fn proc_start_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_start(&text)
}

/// `starttime` from a `/proc/<pid>/stat` line. The command name (field 2) is
/// in parentheses and may itself hold spaces or parentheses, so fields are
/// counted from the last `)`.
pub fn parse_stat_start(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards; starttime is field 22.
    after.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// One `ps -o pid=,etime= -p <pids>` call: start = now - elapsed.
fn ps_start_times(pids: &[u32], now_s: i64) -> HashMap<u32, i64> {
    if pids.is_empty() {
        return HashMap::new();
    }
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    let Ok(out) = Command::new("ps")
        .args(["-o", "pid=,etime=", "-p", &list.join(",")])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return HashMap::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let pid = f.next()?.parse::<u32>().ok()?;
            let elapsed = parse_etime(f.next()?)?;
            Some((pid, now_s - elapsed))
        })
        .collect()
}

/// POSIX `etime`: `[[dd-]hh:]mm:ss` → seconds.
pub fn parse_etime(s: &str) -> Option<i64> {
    let (days, clock) = match s.split_once('-') {
        Some((d, rest)) => (d.parse::<i64>().ok()?, rest),
        None => (0, s),
    };
    let parts: Vec<i64> = clock
        .split(':')
        .map(|p| p.parse::<i64>().ok())
        .collect::<Option<_>>()?;
    let (h, m, sec) = match parts[..] {
        [m, s] => (0, m, s),
        [h, m, s] => (h, m, s),
        _ => return None,
    };
    Some(((days * 24 + h) * 60 + m) * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etime_forms() {
        assert_eq!(parse_etime("00:05"), Some(5));
        assert_eq!(parse_etime("12:34"), Some(754));
        assert_eq!(parse_etime("01:00:00"), Some(3600));
        assert_eq!(
            parse_etime("2-03:04:05"),
            Some(2 * 86400 + 3 * 3600 + 4 * 60 + 5)
        );
        for bad in ["", "5", "a:b", "1:2:3:4", "x-00:01"] {
            assert_eq!(parse_etime(bad), None, "{bad}");
        }
    }

    #[test]
    fn stat_start_survives_odd_command_names() {
        let fields: Vec<String> = (3..=25).map(|i| i.to_string()).collect();
        let rest = fields.join(" ");
        assert_eq!(parse_stat_start(&format!("42 (a b) {rest}")), Some(22));
        assert_eq!(parse_stat_start(&format!("42 (x) y)) {rest}")), Some(22));
        assert_eq!(parse_stat_start("42 (short) R 1"), None);
    }

    #[test]
    fn ps_and_proc_agree_on_this_process() {
        let me = std::process::id();
        let now = crate::clock::now_s();
        let ps = ps_start_times(&[me], now);
        let all = start_times(&[me], now);
        let (Some(a), Some(b)) = (ps.get(&me), all.get(&me)) else {
            eprintln!("note: no ps on this machine; the ps fallback is not exercised");
            return;
        };
        assert!((a - b).abs() <= 2, "ps {a} vs proc/any {b}");
        assert!(*a <= now && now - *a < 86_400, "{a} {now}");
    }
}
