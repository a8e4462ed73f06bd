//! Who the agent behind this server is: client type and session id, from the
//! environment, the `initialize` handshake, detection strategies, sticky claims
//! and (ours) the `_meta` Codex sends with every `tools/call` (server spec §1.4,
//! §6).
//!
//! Invariant defended (monotonic identity): once a session id is set, only an
//! explicit claim replaces it; detection may still refine type, cwd and
//! transcript path.

pub mod detect;
pub mod follow;
pub mod proctree;
pub mod start_time;
pub mod sticky;

use std::collections::HashMap;

use crate::store::registry::{Client, ClientType};
use crate::transcripts::transcript_path_for;

/// Source name of an id learned from a Codex `tools/call` `_meta.threadId`.
pub const SOURCE_TOOLS_CALL_META: &str = "tools-call-meta";

/// A view of the environment (the process env, or a fixed map in tests).
#[derive(Debug, Clone, Default)]
pub struct EnvVars {
    fixed: Option<HashMap<String, String>>,
}

impl EnvVars {
    /// The live process environment.
    pub fn process() -> EnvVars {
        EnvVars { fixed: None }
    }

    /// A fixed environment (tests).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> EnvVars {
        EnvVars {
            fixed: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        match &self.fixed {
            Some(m) => m.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
    }

    /// The value when set and non-empty.
    pub fn non_empty(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty())
    }
}

/// A client of `client_type` whose id (when there is one) came from the env.
fn env_client(client_type: ClientType, sid: Option<String>, cwd: &str) -> Client {
    Client {
        client_type,
        transcript_path: sid
            .as_deref()
            .and_then(|s| transcript_path_for(client_type, s, cwd)),
        session_id_source: sid.as_ref().map(|_| "env".to_string()),
        session_id: sid,
        cwd: cwd.to_string(),
        ..Client::default()
    }
}

fn claude_client(env: &EnvVars, cwd: &str) -> Client {
    // An empty CLAUDE_CODE_SESSION_ID is normalised to null (safe divergence).
    let sid = env.non_empty("CLAUDE_CODE_SESSION_ID");
    env_client(ClientType::ClaudeCode, sid, cwd)
}

fn codex_client(env: &EnvVars, cwd: &str) -> Client {
    let sid = env
        .non_empty("CODEX_THREAD_ID")
        .or_else(|| env.non_empty("CODEX_COMPANION_SESSION_ID"));
    env_client(ClientType::Codex, sid, cwd)
}

/// §1.4.1: the client as the environment describes it.
pub fn client_from_env(env: &EnvVars, cwd: &str) -> Client {
    if env.get("CLAUDECODE").as_deref() == Some("1") {
        return claude_client(env, cwd);
    }
    let codex_marker = [
        "CODEX_HOME",
        "CODEX_THREAD_ID",
        "CODEX_COMPANION_SESSION_ID",
        "CODEX_RUNTIME",
    ]
    .iter()
    .any(|k| env.non_empty(k).is_some());
    if codex_marker {
        return codex_client(env, cwd);
    }
    Client {
        cwd: cwd.to_string(),
        ..Client::default()
    }
}

/// §1.4.2: the client as the `initialize` `clientInfo.name` describes it
/// (`claude` before `codex`), falling back to the environment.
pub fn client_from_handshake(name: Option<&str>, env: &EnvVars, cwd: &str) -> Client {
    let lower = name.map(str::to_lowercase).unwrap_or_default();
    if lower.contains("claude") {
        claude_client(env, cwd)
    } else if lower.contains("codex") {
        codex_client(env, cwd)
    } else {
        client_from_env(env, cwd)
    }
}

/// §6.7 monotonic merge of a freshly detected client into the current one.
pub fn merge(current: &Client, detected: &Client) -> Client {
    let Some(sid) = current.id() else {
        // The client-process binding is ours, not detection's: keep it.
        return Client {
            pid: current.pid,
            pid_started_at: current.pid_started_at,
            previous_session_ids: current.previous_session_ids.clone(),
            ..detected.clone()
        };
    };
    let client_type = if detected.client_type == ClientType::Unknown {
        current.client_type
    } else {
        detected.client_type
    };
    let cwd = if detected.cwd.is_empty() {
        current.cwd.clone()
    } else {
        detected.cwd.clone()
    };
    let transcript_path = if client_type == ClientType::Unknown {
        current.transcript_path.clone()
    } else {
        transcript_path_for(client_type, sid, &cwd).or_else(|| current.transcript_path.clone())
    };
    Client {
        client_type,
        session_id: current.session_id.clone(),
        transcript_path,
        session_id_source: current.session_id_source.clone(),
        cwd,
        pid: current.pid,
        pid_started_at: current.pid_started_at,
        previous_session_ids: current.previous_session_ids.clone(),
    }
}

/// A session id that may safely become part of a path: non-empty, at most
/// [`MAX_ID_LEN`] bytes, no `/`, no `..`, no NUL or other control character.
pub fn is_safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.contains('/')
        && !id.contains("..")
        && !id.chars().any(char::is_control)
}

/// Longest accepted session id or target, in bytes.
pub const MAX_ID_LEN: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_detection() {
        let c = client_from_env(
            &EnvVars::from_pairs(&[("CLAUDECODE", "1"), ("CLAUDE_CODE_SESSION_ID", "")]),
            "/p",
        );
        assert_eq!(c.client_type, ClientType::ClaudeCode);
        assert_eq!(c.session_id, None);
        let c = client_from_env(
            &EnvVars::from_pairs(&[("CODEX_HOME", "/nonexistent/codex-home")]),
            "/p",
        );
        assert_eq!(c.client_type, ClientType::Codex);
        let c = client_from_env(&EnvVars::from_pairs(&[("CODEX_SESSION_ID", "x")]), "/p");
        assert_eq!(c.client_type, ClientType::Unknown);
        assert_eq!(c.cwd, "/p");
        let c = client_from_handshake(Some("codex-mcp-client"), &EnvVars::from_pairs(&[]), "/p");
        assert_eq!(c.client_type, ClientType::Codex);
        let c = client_from_handshake(Some("Claude-Codex"), &EnvVars::from_pairs(&[]), "/p");
        assert_eq!(c.client_type, ClientType::ClaudeCode);
    }

    #[test]
    fn merge_is_monotonic() {
        let current = Client {
            client_type: ClientType::Unknown,
            session_id: Some("claimed".into()),
            transcript_path: Some("/t".into()),
            session_id_source: Some("self-register".into()),
            cwd: "/p".into(),

            ..Client::default()
        };
        let detected = Client {
            client_type: ClientType::Unknown,
            session_id: Some("other".into()),
            session_id_source: Some("env".into()),
            cwd: "/q".into(),
            ..Client::default()
        };
        let m = merge(&current, &detected);
        assert_eq!(m.session_id.as_deref(), Some("claimed"));
        assert_eq!(m.session_id_source.as_deref(), Some("self-register"));
        assert_eq!(m.cwd, "/q");
        assert_eq!(m.transcript_path.as_deref(), Some("/t"));
        let empty = Client {
            session_id: Some(String::new()),
            ..current.clone()
        };
        assert_eq!(merge(&empty, &detected), detected);
    }

    #[test]
    fn safe_ids() {
        assert!(is_safe_id("0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"));
        for bad in ["", "a/b", "..", "a..b", "a\0b", "a\nb"] {
            assert!(!is_safe_id(bad), "{bad:?}");
        }
        assert!(!is_safe_id(&"x".repeat(MAX_ID_LEN + 1)));
    }
}
