//! `list_project_sessions`: the tmux sessions of a project joined with the
//! registry, one row per agent (or grouped with `compact:true`) (server spec §4.1).
//!
//! Invariant defended: scope comes only from tmux (the session path or any pane
//! path in the project, nested repositories excluded); registry entries outside
//! the listed tmux sessions never appear.

use serde_json::{Map, Value, json};

use super::common::{map_result, payload};
use super::schema::{Hints, Kind, Param, ToolSpec};
use super::{ToolCall, ToolFuture};
use crate::project::{path_belongs_to_project_scope, working_root};
use crate::server::ServerCtx;
use crate::server::lifecycle::process_cwd;
use crate::server::tmux_query::{self, SessionRow};
use crate::store::registry::{self, Entry};

pub static SPEC: ToolSpec = ToolSpec {
    name: "list_project_sessions",
    hints: Hints::READ_ONLY,
    description: "List the agent sessions in or under a project root, each with its client_type, client_session_id and `state` card (see set_my_state): the cheapest way to see what peers are doing. Default shape: one `sessions[]` row per agent; key on `client_session_id`, not `name` (peers sharing a tmux session share a name). `compact:true` groups co-located agents under one `tmux_sessions[]` entry instead. Pass project_root when you know it; omitted, it is inferred from the server's cwd.",
    params: &[
        Param {
            name: "project_root",
            kind: Kind::STR,
            required: false,
            description: "Absolute path of the project root (recommended). Omitted: the server walks up from its own cwd to the nearest .git ancestor.",
        },
        Param {
            name: "compact",
            kind: Kind::Bool,
            required: false,
            description: "true: return the grouped `tmux_sessions[]` shape (tmux fields once, agents nested) instead of the flat `sessions[]` rows. Default false.",
        },
    ],
};

pub fn call(ctx: &ServerCtx, call: ToolCall) -> ToolFuture<'_> {
    Box::pin(async move {
        let a = call.args();
        let (root, inferred) = working_root(a.str("project_root"), &process_cwd());
        let (rows, error) = tmux_query::list_sessions(&ctx.tmux);
        let panes = if rows.is_empty() {
            Default::default()
        } else {
            tmux_query::pane_paths_by_session(&ctx.tmux)
        };
        let in_scope: Vec<SessionRow> = rows
            .into_iter()
            .filter(|r| {
                path_belongs_to_project_scope(&r.path, &root)
                    || panes.get(&r.name).is_some_and(|ps| {
                        ps.iter().any(|p| path_belongs_to_project_scope(p, &root))
                    })
            })
            .collect();
        let registry = if in_scope.is_empty() {
            Vec::new()
        } else {
            registry::read_all(&ctx.layout)
        };
        let flat = join_rows(&in_scope, &registry);
        let mut out = payload();
        out.insert("project_root".into(), Value::from(root));
        out.insert("inferred".into(), Value::from(inferred));
        if a.bool("compact") == Some(true) {
            out.insert("tmux_sessions".into(), Value::Array(to_compact(&flat)));
        } else {
            out.insert(
                "sessions".into(),
                Value::Array(flat.into_iter().map(Value::Object).collect()),
            );
        }
        out.insert("error".into(), error.map_or(Value::Null, Value::from));
        map_result(out)
    })
}

fn tmux_fields(r: &SessionRow) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), Value::from(r.name.clone()));
    m.insert("path".into(), Value::from(r.path.clone()));
    m.insert("attached".into(), Value::from(r.attached));
    m.insert("created_at".into(), Value::from(r.created_at));
    m.insert("windows".into(), Value::from(r.windows));
    m
}

/// One row per registry entry bound to each in-scope tmux session (readAll
/// order), or one all-null row for a session without entries.
pub fn join_rows(rows: &[SessionRow], registry: &[Entry]) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    for r in rows {
        let agents: Vec<&Entry> = registry
            .iter()
            .filter(|e| e.tmux_session.as_deref() == Some(r.name.as_str()))
            .collect();
        if agents.is_empty() {
            let mut m = tmux_fields(r);
            m.insert("client_type".into(), Value::Null);
            m.insert("client_session_id".into(), Value::Null);
            m.insert("state".into(), Value::Null);
            out.push(m);
        }
        for e in agents {
            let mut m = tmux_fields(r);
            m.insert(
                "client_type".into(),
                Value::from(e.client.client_type.as_str()),
            );
            m.insert(
                "client_session_id".into(),
                e.client.session_id.clone().map_or(Value::Null, Value::from),
            );
            m.insert(
                "state".into(),
                e.state.as_ref().map_or(Value::Null, |s| json!(s)),
            );
            out.push(m);
        }
    }
    out
}

/// Group flat rows by tmux name (first-appearance order); the all-null
/// placeholder row becomes `agents: []`.
pub fn to_compact(flat: &[Map<String, Value>]) -> Vec<Value> {
    let mut groups: Vec<Map<String, Value>> = Vec::new();
    for row in flat {
        let name = row.get("name").cloned().unwrap_or(Value::Null);
        let idx = match groups.iter().position(|g| g.get("name") == Some(&name)) {
            Some(i) => i,
            None => {
                let mut g = Map::new();
                for k in ["name", "path", "attached", "created_at", "windows"] {
                    g.insert(k.into(), row.get(k).cloned().unwrap_or(Value::Null));
                }
                g.insert("agents".into(), Value::Array(Vec::new()));
                groups.push(g);
                groups.len() - 1
            }
        };
        let agent_keys = ["client_type", "client_session_id", "state"];
        if agent_keys
            .iter()
            .any(|k| row.get(*k).is_some_and(|v| !v.is_null()))
        {
            let mut agent = Map::new();
            for k in agent_keys {
                agent.insert(k.into(), row.get(k).cloned().unwrap_or(Value::Null));
            }
            if let Some(Value::Array(list)) = groups[idx].get_mut("agents") {
                list.push(Value::Object(agent));
            }
        }
    }
    groups.into_iter().map(Value::Object).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::registry::{Client, ClientType, StateCard};

    fn row(name: &str) -> SessionRow {
        SessionRow {
            name: name.into(),
            path: "/p".into(),
            attached: true,
            created_at: 1,
            windows: 2,
        }
    }

    fn entry(pid: u32, sid: Option<&str>, tmux: &str) -> Entry {
        Entry {
            server_pid: pid,
            started_at: 1,
            client: Client {
                client_type: ClientType::ClaudeCode,
                session_id: sid.map(str::to_string),
                cwd: "/p".into(),
                ..Client::default()
            },
            tmux_pane: None,
            tmux_session: Some(tmux.into()),
            state: sid.map(|_| StateCard {
                purpose: Some("x".into()),
                updated_at: 5,
            }),
            capabilities: None,
        }
    }

    #[test]
    fn join_shapes() {
        let reg = vec![
            entry(1, Some("a"), "shared"),
            entry(2, Some("b"), "shared"),
            entry(3, Some("c"), "solo"),
            entry(4, Some("z"), "elsewhere"),
        ];
        let rows = join_rows(&[row("shared"), row("solo"), row("empty")], &reg);
        assert_eq!(rows.len(), 4);
        let ids: Vec<Value> = rows
            .iter()
            .map(|r| r["client_session_id"].clone())
            .collect();
        assert_eq!(ids, vec![json!("a"), json!("b"), json!("c"), Value::Null]);
        assert_eq!(rows[0]["name"], rows[1]["name"]);
        assert_eq!(rows[3]["client_type"], Value::Null);
        assert_eq!(rows[3]["state"], Value::Null);
        let keys: Vec<&str> = rows[0].keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "name",
                "path",
                "attached",
                "created_at",
                "windows",
                "client_type",
                "client_session_id",
                "state"
            ]
        );

        let compact = to_compact(&rows);
        assert_eq!(compact.len(), 3);
        assert_eq!(compact[0]["agents"].as_array().unwrap().len(), 2);
        assert_eq!(compact[0]["agents"][1]["client_session_id"], "b");
        assert_eq!(compact[0]["agents"][0]["state"]["purpose"], "x");
        assert_eq!(compact[2]["agents"], json!([]));
        let flat_json = serde_json::to_string(&rows).unwrap();
        let compact_json = serde_json::to_string(&compact).unwrap();
        assert!(compact_json.len() < flat_json.len());
    }
}
