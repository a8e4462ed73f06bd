//! The MCP tools: one file per tool, one line per tool in [`TOOLS`].
//!
//! # Adding a tool
//! 1. Create `src/server/tools/<name>.rs` exposing
//!    - `pub static SPEC: ToolSpec` — name, description, a [`schema::Param`]
//!      table and its [`schema::Hints`]; it yields the advertised
//!      `inputSchema` and `annotations` and the argument validation (type,
//!      required, length/byte/range limits, path-safe ids);
//!    - `pub fn call(ctx: &ServerCtx, call: ToolCall) -> ToolFuture<'_>` —
//!      usually `Box::pin(async move { ... })`, returning a `CallToolResult`
//!      built with [`common::map_result`] (compact JSON, `schema_version` first)
//!      or [`common::error_result`] (an `isError` text).
//! 2. Add `pub mod <name>;` below and `tool!(<name>)` to [`TOOLS`] at its
//!    position in the `tools/list` order.
//!
//! The dispatcher validates arguments before `call` runs, so a tool only sees
//! declared types within declared limits ([`schema::Args`] reads them). Tools
//! get the shared [`ServerCtx`] (layout, own entry behind a lock, shutdown
//! signal) and the [`ToolCall`] (arguments plus rmcp's `RequestContext`: `ct`
//! is cancelled by `notifications/cancelled`, `meta` is the call's `_meta`).

pub mod ask_peer;
pub mod claim_session;
pub mod common;
pub mod get_my_session;
pub mod list_project_sessions;
pub mod message_status;
pub mod read_my_messages;
pub mod read_session;
pub mod register_my_session;
pub mod reply_to_message;
pub mod schema;
pub mod send_message;
pub mod set_my_state;

use std::future::Future;
use std::pin::Pin;

use rmcp::RoleServer;
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use serde_json::{Map, Value};

pub use schema::{Args, Hints, Kind, Param, ToolSpec};

use super::ServerCtx;

/// One `tools/call`: validated arguments plus rmcp's request context.
pub struct ToolCall {
    pub args: Map<String, Value>,
    pub request: RequestContext<RoleServer>,
}

impl ToolCall {
    pub fn args(&self) -> Args<'_> {
        Args(&self.args)
    }
}

/// What a tool's `call` returns.
pub type ToolFuture<'a> = Pin<Box<dyn Future<Output = CallToolResult> + Send + 'a>>;

/// A table row: the spec and the entry point.
pub struct ToolDef {
    pub spec: &'static ToolSpec,
    pub call: for<'a> fn(&'a ServerCtx, ToolCall) -> ToolFuture<'a>,
}

macro_rules! tool {
    ($m:ident) => {
        ToolDef {
            spec: &$m::SPEC,
            call: $m::call,
        }
    };
}

/// Every tool, in `tools/list` order.
pub static TOOLS: &[ToolDef] = &[
    tool!(list_project_sessions),
    tool!(read_session),
    tool!(register_my_session),
    tool!(claim_session),
    tool!(get_my_session),
    tool!(set_my_state),
    tool!(send_message),
    tool!(reply_to_message),
    tool!(read_my_messages),
    tool!(ask_peer),
    // New after 0.14: the 0.14 tools keep their order, first.
    tool!(message_status),
];

/// The `tools/list` entries.
pub fn list() -> Vec<rmcp::model::Tool> {
    TOOLS.iter().map(|t| t.spec.to_tool()).collect()
}

/// Validate and run tool `name`. Unknown names and invalid arguments are
/// `isError` results, as in the original.
pub async fn dispatch(
    ctx: &ServerCtx,
    name: &str,
    args: Option<Map<String, Value>>,
    request: RequestContext<RoleServer>,
) -> CallToolResult {
    let Some(def) = TOOLS.iter().find(|t| t.spec.name == name) else {
        return common::error_result(format!("MCP error -32602: Tool {name} not found"));
    };
    let args = args.unwrap_or_default();
    if let Err(text) = def.spec.validate(&args) {
        return common::error_result(text);
    }
    (def.call)(ctx, ToolCall { args, request }).await
}
