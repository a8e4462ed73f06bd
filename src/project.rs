//! Project roots, scoping and messaging target resolution (server spec §3,
//! messaging spec §8).
//!
//! Invariants defended:
//! - a peer is only reachable inside the caller's project: a nested git
//!   repository is a different project, and ad-hoc (no-git) directories match
//!   only by ancestry;
//! - a target resolves to exactly one live peer whose registry file still shows
//!   the `started_at` we read (pid-reuse guard), never to ourselves;
//! - check order is fixed: not-found, ambiguous, self-send, cross-project.

use std::path::Path;

use serde_json::{Map, Value};

use crate::store::paths::Layout;
use crate::store::registry::{self, Entry};

/// A project root found by walking up to the nearest `.git` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRoot {
    pub root: String,
    pub found_git: bool,
}

/// Walk `start`, then each lexical parent, up to the first directory holding an
/// entry named `.git` (file or directory). Without one, the root is `start`.
pub fn find_project_root(start: &str) -> ProjectRoot {
    for dir in Path::new(start).ancestors() {
        if dir.as_os_str().is_empty() {
            continue;
        }
        if dir.join(".git").exists() {
            return ProjectRoot {
                root: dir.to_string_lossy().into_owned(),
                found_git: true,
            };
        }
    }
    ProjectRoot {
        root: start.to_string(),
        found_git: false,
    }
}

/// The canonical path, or `p` unchanged when canonicalisation fails.
pub fn safe_realpath(p: &str) -> String {
    std::fs::canonicalize(p)
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_else(|_| p.to_string())
}

/// `child == root`, or `child` starts with `root` plus one `/` (pure string test).
pub fn is_descendant_or_equal(child: &str, root: &str) -> bool {
    if child == root {
        return true;
    }
    if root.ends_with('/') {
        child.starts_with(root)
    } else {
        child.len() > root.len() && child.starts_with(root) && child.as_bytes()[root.len()] == b'/'
    }
}

/// The working root of a list/read call: `(resolved_root, inferred)`.
/// An omitted or empty `project_root` is inferred from the server's cwd.
pub fn working_root(project_root: Option<&str>, server_cwd: &str) -> (String, bool) {
    match project_root.filter(|r| !r.is_empty()) {
        Some(explicit) => (safe_realpath(explicit), false),
        None => (safe_realpath(&find_project_root(server_cwd).root), true),
    }
}

/// Whether `path` lies in the project at `resolved_root` and not inside a
/// nested git repository of its own.
pub fn path_belongs_to_project_scope(path: &str, resolved_root: &str) -> bool {
    let p = safe_realpath(path);
    if !is_descendant_or_equal(&p, resolved_root) {
        return false;
    }
    let pr = find_project_root(&p);
    !pr.found_git || safe_realpath(&pr.root) == resolved_root
}

/// Whether caller and peer (by their registry `client.cwd`) share a project.
pub fn project_roots_match(caller_cwd: &str, peer_cwd: &str) -> bool {
    let cp = find_project_root(caller_cwd);
    let pp = find_project_root(peer_cwd);
    let cr = safe_realpath(&cp.root);
    let pr = safe_realpath(&pp.root);
    if cp.found_git || pp.found_git {
        return cp.found_git && pp.found_git && cr == pr;
    }
    cr == pr
        || is_descendant_or_equal(&safe_realpath(peer_cwd), &cr)
        || is_descendant_or_equal(&safe_realpath(caller_cwd), &pr)
}

/// Exactly 36 characters of `[0-9a-f-]` (lowercase; dash positions unchecked).
pub fn is_uuid_shaped(s: &str) -> bool {
    s.len() == 36
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-')
}

/// Why a messaging target did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    NotFound,
    /// `candidates` are the non-null session ids; `note` is present only when
    /// some candidates are unclaimed.
    Ambiguous {
        candidates: Vec<String>,
        note: Option<String>,
    },
    SelfSend,
    CrossProject,
}

impl TargetError {
    /// The error code: `target-not-found`, `ambiguous-target`, `self-send`,
    /// `cross-project`.
    pub fn code(&self) -> &'static str {
        match self {
            TargetError::NotFound => "target-not-found",
            TargetError::Ambiguous { .. } => "ambiguous-target",
            TargetError::SelfSend => "self-send",
            TargetError::CrossProject => "cross-project",
        }
    }

    /// Append `ok:false`, `error`, and (ambiguous only) `candidates` and the
    /// optional `note` to a payload that already holds `schema_version`.
    pub fn write_into(&self, out: &mut Map<String, Value>) {
        out.insert("ok".into(), Value::Bool(false));
        out.insert("error".into(), Value::from(self.code()));
        if let TargetError::Ambiguous { candidates, note } = self {
            out.insert("candidates".into(), Value::from(candidates.clone()));
            if let Some(n) = note {
                out.insert("note".into(), Value::from(n.clone()));
            }
        }
    }
}

/// Resolve `target` (session UUID or tmux session name) for `caller`.
///
/// Beyond the original: a session UUID that is no live server's current id
/// resolves to the live server that holds it as a previous id (its client
/// moved on with `/clear` or `/resume`). A current id always wins over an
/// alias, and an id that is neither stays `target-not-found`.
pub fn resolve_target(layout: &Layout, target: &str, caller: &Entry) -> Result<Entry, TargetError> {
    let all = registry::read_all(layout);
    let by_id = is_uuid_shaped(target);
    let live = |e: &Entry| {
        registry::is_alive(e.server_pid)
            && registry::reread_started_at(layout, e.server_pid) == Some(e.started_at)
    };
    let mut candidates: Vec<Entry> = all
        .iter()
        .filter(|e| {
            if by_id {
                e.client.session_id.as_deref() == Some(target)
            } else {
                e.tmux_session.as_deref() == Some(target)
            }
        })
        .filter(|e| live(e))
        .cloned()
        .collect();
    if by_id && candidates.is_empty() {
        candidates = all
            .into_iter()
            .filter(|e| e.client.is_alias(target) && live(e))
            .collect();
    }
    match candidates.len() {
        0 => return Err(TargetError::NotFound),
        1 => {}
        n => {
            let ids: Vec<String> = candidates
                .iter()
                .filter_map(|e| e.client.session_id.clone())
                .collect();
            let unclaimed = n - ids.len();
            let note = (unclaimed > 0).then(|| {
                format!(
                    "{unclaimed} peer(s) in tmux session '{target}' are unclaimed; they must run claim_session to become addressable"
                )
            });
            return Err(TargetError::Ambiguous {
                candidates: ids,
                note,
            });
        }
    }
    let peer = candidates.into_iter().next().ok_or(TargetError::NotFound)?;
    let same_agent =
        caller.client.id().is_some() && peer.client.session_id.as_deref() == caller.client.id();
    if peer.server_pid == caller.server_pid || same_agent {
        return Err(TargetError::SelfSend);
    }
    if !project_roots_match(&caller.client.cwd, &peer.client.cwd) {
        return Err(TargetError::CrossProject);
    }
    Ok(peer)
}

/// The session id a send to `target` addresses at `peer`: the target itself
/// when it is one of the peer's ids, else (a tmux name) the peer's current id.
pub fn addressed_id<'a>(target: &'a str, peer: &'a Entry) -> Option<&'a str> {
    if peer.client.all_ids().contains(&target) {
        Some(target)
    } else {
        peer.client.id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn descendant_test_is_a_string_test() {
        assert!(is_descendant_or_equal("/a/b", "/a/b"));
        assert!(is_descendant_or_equal("/a/b/c", "/a/b"));
        assert!(!is_descendant_or_equal("/a/bc", "/a/b"));
        assert!(is_descendant_or_equal("/a/b", "/"));
        assert!(is_descendant_or_equal("/a/b/", "/a/b/"));
    }

    #[test]
    fn uuid_shape() {
        assert!(is_uuid_shaped("11111111-2222-3333-4444-555555555555"));
        assert!(!is_uuid_shaped("11111111-2222-3333-4444-55555555555A"));
        assert!(!is_uuid_shaped("manually-pinned-uuid"));
        assert!(is_uuid_shaped("------------------------------------"));
    }

    #[test]
    fn roots_nested_repos_and_adhoc_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(tmp.path()).unwrap();
        let repo = base.join("repo");
        fs::create_dir_all(repo.join(".git")).unwrap();
        fs::create_dir_all(repo.join("sub/nested")).unwrap();
        fs::write(repo.join("sub/nested/.git"), "gitdir: x").unwrap();
        let r = |p: &Path| p.to_string_lossy().into_owned();
        let pr = find_project_root(&r(&repo.join("sub")));
        assert_eq!(
            pr,
            ProjectRoot {
                root: r(&repo),
                found_git: true
            }
        );
        assert!(path_belongs_to_project_scope(
            &r(&repo.join("sub")),
            &r(&repo)
        ));
        assert!(!path_belongs_to_project_scope(
            &r(&repo.join("sub/nested")),
            &r(&repo)
        ));
        assert!(!path_belongs_to_project_scope(&r(&base), &r(&repo)));
        assert!(project_roots_match(&r(&repo), &r(&repo.join("sub"))));
        assert!(!project_roots_match(
            &r(&repo),
            &r(&repo.join("sub/nested"))
        ));
        let adhoc = base.join("adhoc");
        fs::create_dir_all(adhoc.join("deeper")).unwrap();
        assert!(project_roots_match(&r(&adhoc), &r(&adhoc.join("deeper"))));
        assert!(project_roots_match(&r(&adhoc.join("deeper")), &r(&adhoc)));
        assert!(!project_roots_match(&r(&adhoc), &r(&repo)));
        let (root, inferred) = working_root(None, &r(&repo.join("sub")));
        assert_eq!((root.as_str(), inferred), (r(&repo).as_str(), true));
        let (root, inferred) = working_root(Some(&r(&repo.join("sub"))), "/");
        assert_eq!((root, inferred), (r(&repo.join("sub")), false));
    }
}
