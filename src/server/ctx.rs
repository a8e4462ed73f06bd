//! The state every tool shares: the store layout, this server's own registry
//! entry (behind one lock), what the handshake told us, and the shutdown signal.
//!
//! Invariant defended: every mutation of the entry and its registry write happen
//! under the same lock, so a retry timer and a tool call never interleave
//! partial updates (server spec §1.10). The lock is never held across `.await`.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use super::after_reply::AfterReply;
use super::follow::FollowState;
use crate::identity::EnvVars;
use crate::store::paths::Layout;
use crate::store::registry::{self, Entry};
use crate::wake::tmux::Tmux;

/// Shared server state; one per process, behind an `Arc`.
pub struct ServerCtx {
    /// Where `~/.oxtail` is.
    pub layout: Layout,
    /// The environment identity detection reads.
    pub env: EnvVars,
    /// The tmux server peers live on.
    pub tmux: Tmux,
    /// Actions that wait for a tool's answer to reach stdout (receipts).
    pub after_reply: Arc<AfterReply>,
    entry: Mutex<Entry>,
    client_name: Mutex<Option<String>>,
    retries_scheduled: AtomicBool,
    shutdown: watch::Sender<bool>,
    /// What the client follower saw last (`server::follow`).
    pub follow: FollowState,
}

impl ServerCtx {
    pub fn new(layout: Layout, entry: Entry, env: EnvVars, tmux: Tmux) -> ServerCtx {
        ServerCtx {
            layout,
            env,
            tmux,
            after_reply: Arc::new(AfterReply::default()),
            entry: Mutex::new(entry),
            client_name: Mutex::new(None),
            retries_scheduled: AtomicBool::new(false),
            shutdown: watch::channel(false).0,
            follow: FollowState::default(),
        }
    }

    /// The entry lock (a poisoned lock is recovered: the entry is plain data).
    pub fn lock_entry(&self) -> MutexGuard<'_, Entry> {
        self.entry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A snapshot of our own entry.
    pub fn entry(&self) -> Entry {
        self.lock_entry().clone()
    }

    /// Our pid (the entry's `server_pid`).
    pub fn pid(&self) -> u32 {
        self.lock_entry().server_pid
    }

    /// Our session id, when set and non-empty.
    pub fn session_id(&self) -> Option<String> {
        self.lock_entry().client.id().map(str::to_string)
    }

    /// Mutate the entry and publish it, atomically with respect to other
    /// updates. Returns the published snapshot.
    pub fn update(&self, f: impl FnOnce(&mut Entry)) -> io::Result<Entry> {
        let mut guard = self.lock_entry();
        f(&mut guard);
        self.register_locked(&guard)?;
        Ok(guard.clone())
    }

    /// Publish the entry as it is.
    pub fn publish(&self) -> io::Result<()> {
        self.register_locked(&self.lock_entry())
    }

    /// Write `entry` to the registry; the caller holds the entry lock. Once
    /// shutdown began this writes nothing, so a late identity or tmux update
    /// can never put back the file [`ServerCtx::unregister`] removed.
    pub fn register_locked(&self, entry: &Entry) -> io::Result<()> {
        if self.is_shutting_down() {
            return Ok(());
        }
        registry::register(&self.layout, entry)
    }

    /// Remove our registry entry for good: shutdown is requested first, then
    /// the file is removed under the entry lock (see [`Self::register_locked`]).
    pub fn unregister(&self) {
        self.request_shutdown();
        let guard = self.lock_entry();
        registry::unregister(&self.layout, guard.server_pid);
    }

    /// `clientInfo.name` from `initialize`, once known.
    pub fn client_name(&self) -> Option<String> {
        self.client_name
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_client_name(&self, name: String) {
        *self.client_name.lock().unwrap_or_else(|p| p.into_inner()) = Some(name);
    }

    /// True the first time only (the late re-detect is scheduled once).
    pub fn claim_retry_schedule(&self) -> bool {
        !self.retries_scheduled.swap(true, Ordering::SeqCst)
    }

    /// Ask long-running tools (e.g. `ask_peer`) to stop: the server is exiting.
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Resolves once shutdown was requested (immediately if it already was).
    pub async fn shutdown_requested(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }
}
