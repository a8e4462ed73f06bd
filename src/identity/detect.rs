//! Session-id detection strategies and the diagnosis `get_my_session` shows
//! (server spec §6.1–§6.5).
//!
//! Invariants defended: every strategy runs and reports a hit or an abstention
//! with a reason; the first hit wins; birth-time only answers when exactly one
//! transcript was born within five minutes after this server started (two or
//! more is a structural, unfixable-by-retry ambiguity).

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde_json::{Map, Value, json};

use super::EnvVars;
use crate::store::registry::{Client, ClientType};
use crate::transcripts::{claude, codex, transcript_path_for};

/// Birth-time window after server start.
pub const BIRTH_WINDOW_MS: i64 = 300_000;
/// Longest Codex first line read for its `payload.cwd`.
pub const FIRST_LINE_CAP: u64 = 1 << 20;

/// One strategy's outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Hit {
        session_id: String,
        source: &'static str,
        confidence: &'static str,
    },
    Abstain {
        structural: bool,
        reason: String,
    },
}

impl Outcome {
    fn abstain(reason: impl Into<String>) -> Outcome {
        Outcome::Abstain {
            structural: false,
            reason: reason.into(),
        }
    }

    fn structural(reason: impl Into<String>) -> Outcome {
        Outcome::Abstain {
            structural: true,
            reason: reason.into(),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Outcome::Hit {
                session_id,
                source,
                confidence,
            } => {
                json!({"session_id": session_id, "source": source, "confidence": confidence})
            }
            Outcome::Abstain {
                structural: true,
                reason,
            } => {
                json!({"abstain": true, "structural": true, "reason": reason})
            }
            Outcome::Abstain {
                structural: false,
                reason,
            } => json!({"abstain": true, "reason": reason}),
        }
    }
}

/// The composed result of all strategies.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    pub per_strategy: Vec<(&'static str, Outcome)>,
    /// `(session_id, source, confidence, strategy)` of the first hit.
    pub winning: Option<(String, &'static str, &'static str, &'static str)>,
    pub client_type: ClientType,
}

impl Diagnosis {
    /// Every outcome is a structural abstention (and there is at least one).
    pub fn all_structural(&self) -> bool {
        !self.per_strategy.is_empty()
            && self.per_strategy.iter().all(|(_, o)| {
                matches!(
                    o,
                    Outcome::Abstain {
                        structural: true,
                        ..
                    }
                )
            })
    }

    pub fn per_strategy_json(&self) -> Value {
        let mut m = Map::new();
        for (name, o) in &self.per_strategy {
            m.insert((*name).into(), o.to_json());
        }
        Value::Object(m)
    }

    pub fn winning_json(&self) -> Value {
        match &self.winning {
            Some((sid, source, confidence, strategy)) => {
                json!({"session_id": sid, "source": source, "confidence": confidence, "strategy": strategy})
            }
            None => Value::Null,
        }
    }

    pub fn next_step_json(&self) -> Value {
        if self.winning.is_some() {
            return Value::Null;
        }
        next_step(self.client_type)
    }

    /// `{"per_strategy","winning","next_step"}`.
    pub fn to_json(&self) -> Value {
        json!({
            "per_strategy": self.per_strategy_json(),
            "winning": self.winning_json(),
            "next_step": self.next_step_json(),
        })
    }
}

/// What to do when nothing resolved the id.
pub fn next_step(t: ClientType) -> Value {
    let (var, cmd) = match t {
        ClientType::Codex => ("CODEX_THREAD_ID", "echo $CODEX_THREAD_ID"),
        _ => ("CLAUDE_CODE_SESSION_ID", "echo $CLAUDE_CODE_SESSION_ID"),
    };
    json!({
        "tool": "register_my_session",
        "instruction": format!("Run `{cmd}` in a shell tool subshell to read ${var}, then call register_my_session({{ session_id }}) with the value."),
        "bash_command": cmd,
    })
}

/// The `env` strategy.
pub fn env_strategy(t: ClientType, env: &EnvVars) -> Outcome {
    let hit = |sid: String| Outcome::Hit {
        session_id: sid,
        source: "env",
        confidence: "high",
    };
    match t {
        ClientType::ClaudeCode => match env.non_empty("CLAUDE_CODE_SESSION_ID") {
            Some(sid) => hit(sid),
            None => Outcome::structural(
                "CLAUDE_CODE_SESSION_ID is not in this MCP server's environment (Claude Code strips it from MCP children in some versions, and it goes stale after /clear); it is available in Bash subshells",
            ),
        },
        ClientType::Codex => match env
            .non_empty("CODEX_THREAD_ID")
            .or_else(|| env.non_empty("CODEX_COMPANION_SESSION_ID"))
        {
            Some(sid) => hit(sid),
            None => Outcome::abstain(
                "CODEX_THREAD_ID is not in this MCP server's environment (Codex passes its thread id with each tools/call instead)",
            ),
        },
        ClientType::Unknown => {
            Outcome::abstain("client type unknown: the env strategy needs claude-code or codex")
        }
    }
}

/// A transcript candidate: `(session_id, birth_ms)`.
pub type Candidate = (String, i64);

/// Creation time when the platform reports one, else mtime, else 0.
pub fn birth_ms(path: &Path) -> i64 {
    let Ok(meta) = fs::metadata(path) else {
        return 0;
    };
    let ms = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    };
    match meta.created().map(ms) {
        Ok(c) if c > 0 => c,
        _ => meta.modified().map(ms).unwrap_or(0),
    }
}

/// Claude candidates: every `*.jsonl` in the project directory of `cwd`
/// (current encoding, else the original's).
pub fn claude_candidates(cwd: &str) -> Vec<Candidate> {
    let Some(dir) = claude::project_dirs(cwd).into_iter().find(|d| d.is_dir()) else {
        return Vec::new();
    };
    let Ok(rd) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .filter_map(|de| {
            let name = de.file_name().to_string_lossy().into_owned();
            let sid = name.strip_suffix(".jsonl")?.to_string();
            Some((sid, birth_ms(&de.path())))
        })
        .collect()
}

/// The first `8-4-4-4-12` lowercase-hex UUID inside `s`.
pub fn find_uuid(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let groups = [8usize, 4, 4, 4, 12];
    'outer: for start in 0..b.len().saturating_sub(35) {
        let mut i = start;
        for (g, len) in groups.iter().enumerate() {
            for _ in 0..*len {
                match b.get(i) {
                    Some(c) if c.is_ascii_digit() || (b'a'..=b'f').contains(c) => i += 1,
                    _ => continue 'outer,
                }
            }
            if g < 4 {
                if b.get(i) != Some(&b'-') {
                    continue 'outer;
                }
                i += 1;
            }
        }
        return Some(&s[start..i]);
    }
    None
}

/// `payload.cwd` of a rollout's first line (read up to [`FIRST_LINE_CAP`]).
pub fn rollout_cwd(path: &Path) -> Option<String> {
    let f = fs::File::open(path).ok()?;
    let mut line = Vec::new();
    BufReader::new(f.take(FIRST_LINE_CAP))
        .read_until(b'\n', &mut line)
        .ok()?;
    let v: Value = serde_json::from_slice(&line).ok()?;
    v.get("payload")?.get("cwd")?.as_str().map(str::to_string)
}

/// Codex candidates: UUID-named rollouts in the recent day dirs whose first
/// line's `payload.cwd` equals `cwd` exactly.
pub fn codex_candidates(cwd: &str) -> Vec<Candidate> {
    let mut out = Vec::new();
    for dir in codex::recent_dirs() {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for de in rd.filter_map(Result::ok) {
            let name = de.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".jsonl") {
                continue;
            }
            let Some(sid) = find_uuid(&name) else {
                continue;
            };
            if rollout_cwd(&de.path()).as_deref() == Some(cwd) {
                out.push((sid.to_string(), birth_ms(&de.path())));
            }
        }
    }
    out
}

/// Pick the one candidate born in `(0, 5 min]` after `started_at_ms`.
pub fn pick(candidates: &[Candidate], started_at_ms: i64, placeholder: &str) -> Outcome {
    if candidates.is_empty() {
        return Outcome::abstain(format!(
            "no transcript files in {placeholder} (the session may not have started a transcript yet)"
        ));
    }
    let in_window: Vec<&Candidate> = candidates
        .iter()
        .filter(|(_, b)| {
            let delta = b - started_at_ms;
            delta > 0 && delta <= BIRTH_WINDOW_MS
        })
        .collect();
    match in_window.as_slice() {
        [] => Outcome::abstain(format!(
            "{} transcript file(s) but none born within 5min after this server started; retries are scheduled",
            candidates.len()
        )),
        [(sid, _)] => Outcome::Hit {
            session_id: sid.clone(),
            source: "birth-time",
            confidence: "medium",
        },
        many => Outcome::structural(format!(
            "{} post-start transcripts in 5min window — ambiguous (several agents in this project); call register_my_session",
            many.len()
        )),
    }
}

/// The `birth-time` strategy.
pub fn birth_time_strategy(t: ClientType, cwd: &str, started_at: i64) -> Outcome {
    let started_ms = started_at * 1000;
    match t {
        ClientType::ClaudeCode => pick(
            &claude_candidates(cwd),
            started_ms,
            "~/.claude/projects/<encoded-cwd>",
        ),
        ClientType::Codex => pick(
            &codex_candidates(cwd),
            started_ms,
            "~/.codex/sessions/<recent>",
        ),
        ClientType::Unknown => {
            Outcome::abstain("client type unknown: birth-time needs claude-code or codex")
        }
    }
}

/// Run every strategy in order (`env`, then `birth-time`).
pub fn diagnose(client: &Client, started_at: i64, env: &EnvVars) -> Diagnosis {
    let per_strategy = vec![
        ("env", env_strategy(client.client_type, env)),
        (
            "birth-time",
            birth_time_strategy(client.client_type, &client.cwd, started_at),
        ),
    ];
    let winning = per_strategy.iter().find_map(|(name, o)| match o {
        Outcome::Hit {
            session_id,
            source,
            confidence,
        } => Some((session_id.clone(), *source, *confidence, *name)),
        Outcome::Abstain { .. } => None,
    });
    Diagnosis {
        per_strategy,
        winning,
        client_type: client.client_type,
    }
}

/// Fill a missing id from the winning strategy. Unchanged (and no diagnosis)
/// when the id is already set or the type is unknown.
pub fn enrich(client: &Client, started_at: i64, env: &EnvVars) -> (Client, Option<Diagnosis>) {
    if client.id().is_some() || client.client_type == ClientType::Unknown {
        return (client.clone(), None);
    }
    let diag = diagnose(client, started_at, env);
    let mut out = client.clone();
    if let Some((sid, source, _, _)) = &diag.winning {
        out.transcript_path = transcript_path_for(client.client_type, sid, &client.cwd);
        out.session_id = Some(sid.clone());
        out.session_id_source = Some((*source).to_string());
    }
    (out, Some(diag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_finder() {
        let id = "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        assert_eq!(
            find_uuid(&format!("rollout-2026-05-28T20-26-40-{id}.jsonl")),
            Some(id)
        );
        assert_eq!(find_uuid("rollout-2026-05-28T20-26-40-nouuid.jsonl"), None);
        assert_eq!(find_uuid(id), Some(id));
    }

    #[test]
    fn delta_pick() {
        let start = 1_000_000;
        let c = |s: &str, b: i64| (s.to_string(), b);
        assert!(
            matches!(pick(&[c("a", start + 1000)], start, "x"), Outcome::Hit { ref session_id, .. } if session_id == "a")
        );
        assert!(matches!(
            pick(&[c("a", start - 1000)], start, "x"),
            Outcome::Abstain {
                structural: false,
                ..
            }
        ));
        assert!(matches!(
            pick(&[c("a", start + 360_000)], start, "x"),
            Outcome::Abstain {
                structural: false,
                ..
            }
        ));
        assert!(matches!(
            pick(&[c("a", start + 10), c("b", start + 20)], start, "x"),
            Outcome::Abstain {
                structural: true,
                ..
            }
        ));
        match pick(&[], start, "~/.claude/projects/<encoded-cwd>") {
            Outcome::Abstain { reason, .. } => assert!(
                reason.starts_with("no transcript files in ~/.claude/projects/<encoded-cwd>")
            ),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn env_strategy_rules() {
        let env = EnvVars::from_pairs(&[
            ("CODEX_THREAD_ID", "t"),
            ("CODEX_COMPANION_SESSION_ID", "c"),
            ("CLAUDE_CODE_SESSION_ID", "s"),
        ]);
        assert_eq!(
            env_strategy(ClientType::ClaudeCode, &env).to_json(),
            json!({"session_id":"s","source":"env","confidence":"high"})
        );
        assert!(
            matches!(env_strategy(ClientType::Codex, &env), Outcome::Hit { ref session_id, .. } if session_id == "t")
        );
        let env2 = EnvVars::from_pairs(&[
            ("CODEX_COMPANION_SESSION_ID", "c"),
            ("CODEX_SESSION_ID", "x"),
        ]);
        assert!(
            matches!(env_strategy(ClientType::Codex, &env2), Outcome::Hit { ref session_id, .. } if session_id == "c")
        );
        let env3 =
            EnvVars::from_pairs(&[("CODEX_SESSION_ID", "x"), ("CLAUDE_CODE_SESSION_ID", "")]);
        assert!(
            matches!(env_strategy(ClientType::Codex, &env3), Outcome::Abstain { ref reason, .. } if reason.contains("CODEX_THREAD_ID"))
        );
        match env_strategy(ClientType::ClaudeCode, &env3) {
            Outcome::Abstain {
                structural: true,
                reason,
            } => {
                assert!(
                    reason.contains("CLAUDE_CODE_SESSION_ID")
                        && reason.to_lowercase().contains("strips")
                )
            }
            o => panic!("{o:?}"),
        }
        assert!(
            matches!(env_strategy(ClientType::Unknown, &env), Outcome::Abstain { ref reason, .. } if reason.contains("unknown"))
        );
    }

    #[test]
    fn diagnosis_without_winner_points_at_register() {
        let env = EnvVars::from_pairs(&[]);
        let d = Diagnosis {
            per_strategy: vec![
                ("env", env_strategy(ClientType::Codex, &env)),
                ("birth-time", pick(&[], 0, "~/.codex/sessions/<recent>")),
            ],
            winning: None,
            client_type: ClientType::Codex,
        };
        let j = d.to_json();
        assert_eq!(j["next_step"]["tool"], "register_my_session");
        assert_eq!(j["next_step"]["bash_command"], "echo $CODEX_THREAD_ID");
        assert_eq!(j["winning"], Value::Null);
        assert!(!d.all_structural());
        for (_, o) in j["per_strategy"].as_object().unwrap() {
            assert!(o["reason"].as_str().is_some_and(|r| !r.is_empty()));
        }
    }
}
