//! The MCP stdio server: process lifecycle around rmcp (server spec §1).
//!
//! `serve()` builds the registry entry, speaks MCP on stdin/stdout on a
//! current-thread tokio runtime, and exits on stdin EOF, SIGTERM, SIGINT or
//! SIGHUP after deleting its registry entry (ours: the original lingers on EOF
//! only by accident and ignores SIGHUP).
//!
//! Invariant defended: nothing but JSON-RPC is written to stdout; whatever ends
//! the session, the entry file is removed and the process exits within about a
//! second (in-flight tools are told to stop through the shutdown signal).

pub mod after_reply;
pub mod ctx;
pub mod follow;
pub mod handler;
pub mod late_replies;
pub mod lifecycle;
pub mod stdin_guard;
pub mod stdout_guard;
pub mod tmux_query;
pub mod tools;

use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rmcp::ServiceExt;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::watch;

pub use ctx::ServerCtx;
pub use handler::Handler;

use crate::identity::EnvVars;
use crate::store::paths::Layout;
use crate::store::registry::ClientType;
use crate::wake::tmux::Tmux;

/// How long in-flight requests may finish after stdin closes.
const EOF_GRACE: Duration = Duration::from_millis(500);

/// Delay before the process-tree tmux binding runs (off the handshake path).
const LATE_BIND_DELAY: Duration = Duration::from_millis(50);

/// How often a running server prunes receipts and outbox records.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(3600);

/// An `AsyncRead` that reports end-of-file on a watch channel, so the server
/// can exit promptly even when rmcp would wait for in-flight handlers.
struct EofNotify<R> {
    inner: R,
    eof: watch::Sender<bool>,
}

impl<R: AsyncRead + Unpin> AsyncRead for EofNotify<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(r) = &res
            && (r.is_err() || buf.filled().len() == before)
        {
            self.eof.send_replace(true);
        }
        res
    }
}

/// Serve MCP on stdio until the client goes away or a signal arrives.
pub fn serve() -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("oxtail: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(run());
    // Exit without waiting on the runtime: a blocking stdin read (non-Linux)
    // would otherwise delay shutdown until the next byte arrives.
    std::process::exit(code)
}

async fn run() -> i32 {
    // Handlers go in before the entry is published: a signal that arrives in
    // between must still run the cleanup, not kill us with the entry left.
    let signals = signals();
    let ctx = match lifecycle::startup(Layout::from_env(), EnvVars::process(), Tmux::ambient()) {
        Ok(ctx) => Arc::new(ctx),
        Err(e) => {
            eprintln!("oxtail: cannot write the session registry: {e}");
            return 1;
        }
    };
    let (eof_tx, mut eof_rx) = watch::channel(false);
    let (reader, writer) = rmcp::transport::io::stdio_pipes();
    let reader = EofNotify {
        inner: stdin_guard::StdinGuard::new(reader),
        eof: eof_tx,
    };
    // rmcp → id-null fix-up → flush notifications (receipts) → stdout.
    let writer = stdout_guard::StdoutGuard::new(after_reply::StdoutTap::new(
        writer,
        Arc::clone(&ctx.after_reply),
    ));
    let handler = Handler {
        ctx: Arc::clone(&ctx),
    };
    let late = Arc::clone(&ctx);
    tokio::spawn(async move {
        // After the handshake: the tmux/ps spawns must not slow it down.
        tokio::time::sleep(LATE_BIND_DELAY).await;
        let l = Arc::clone(&late);
        let _ = tokio::task::spawn_blocking(move || {
            lifecycle::bind_tmux_late(&l);
            follow::bind_start_time(&l);
        })
        .await;
        while !late.is_shutting_down() {
            let layout = late.layout.clone();
            let _ = tokio::task::spawn_blocking(move || lifecycle::housekeeping(&layout)).await;
            tokio::select! {
                _ = tokio::time::sleep(HOUSEKEEPING_EVERY) => {}
                _ = late.shutdown_requested() => {}
            }
        }
    });
    let asker = Arc::clone(&ctx);
    tokio::spawn(async move {
        let mut seen = late_replies::Seen::default();
        while !asker.is_shutting_down() {
            tokio::select! {
                _ = tokio::time::sleep(late_replies::EVERY) => {}
                _ = asker.shutdown_requested() => break,
            }
            let a = Arc::clone(&asker);
            let done = tokio::task::spawn_blocking(move || {
                late_replies::tick(&a, crate::wake::global(), &mut seen);
                seen
            })
            .await;
            match done {
                Ok(s) => seen = s,
                Err(_) => seen = late_replies::Seen::default(),
            }
        }
    });
    follow::spawn_watch(Arc::clone(&ctx));
    if ctx.entry().client.client_type == ClientType::ClaudeCode {
        // server.md §1.8: one stderr line when the hooks are missing or stale;
        // never installs anything and never delays the handshake.
        let layout = ctx.layout.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(hint) = crate::cli::hook_assets::freshness_hint(&layout) {
                eprintln!("{hint}");
            }
        });
    }
    let session = async move {
        if let Ok(running) = handler.serve((reader, writer)).await {
            let _ = running.waiting().await;
        }
    };
    let eof = async move {
        let _ = eof_rx.wait_for(|v| *v).await;
    };
    tokio::pin!(session);
    tokio::select! {
        _ = &mut session => {}
        _ = eof => {
            ctx.request_shutdown();
            let _ = tokio::time::timeout(EOF_GRACE, &mut session).await;
        }
        _ = signals => {}
    }
    ctx.request_shutdown();
    // Answers that never left: their drained messages go back to the mailbox.
    ctx.after_reply.fail_all();
    lifecycle::cleanup(&ctx);
    0
}

/// Installs the SIGTERM, SIGINT and SIGHUP handlers now; the future resolves
/// on the first of them.
fn signals() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mk = |k| signal(k).ok();
    let (term, int, hup) = (
        mk(SignalKind::terminate()),
        mk(SignalKind::interrupt()),
        mk(SignalKind::hangup()),
    );
    wait_signals(term, int, hup)
}

async fn wait_signals(
    mut term: Option<tokio::signal::unix::Signal>,
    mut int: Option<tokio::signal::unix::Signal>,
    mut hup: Option<tokio::signal::unix::Signal>,
) {
    async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
        match s {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    tokio::select! {
        _ = recv(&mut term) => {}
        _ = recv(&mut int) => {}
        _ = recv(&mut hup) => {}
    }
}
