//! The rmcp `ServerHandler`: handshake, tool listing and dispatch.
//!
//! Invariants defended: `serverInfo` is `{"name":"oxtail","version":"0.14.0"}`
//! with only the `tools` capability (`listChanged: true`) and no instructions;
//! `server/discover` and every method we do not implement get JSON-RPC -32601
//! (Claude Code then falls back to `initialize`); a tool never turns into a
//! JSON-RPC error — unknown tools and bad arguments are `isError` results.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CustomRequest, CustomResult, DiscoverResult,
    ErrorCode, Implementation, InitializeRequestParams, InitializeResult, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProtocolVersion, ServerCapabilities, ServerConfig,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use super::{ServerCtx, follow, lifecycle, stdin_guard, tools};

/// The version the original reports in `serverInfo`.
pub const SERVER_VERSION: &str = "0.14.0";

/// The handler rmcp drives; cheap to clone.
#[derive(Clone)]
pub struct Handler {
    pub ctx: Arc<ServerCtx>,
}

impl ServerHandler for Handler {
    fn get_info(&self) -> ServerConfig {
        let caps = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        let mut info = ServerConfig::new(caps);
        info.server_info = Implementation::new("oxtail", SERVER_VERSION);
        info.protocol_version = ProtocolVersion::V_2025_11_25;
        info
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        self.ctx.set_client_name(request.client_info.name.clone());
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    async fn discover(
        &self,
        _context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, McpError> {
        Err(method_not_found())
    }

    // rmcp words -32601 as the method name; the original's SDK (and clients
    // that log it) say "Method not found".
    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Err(method_not_found())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Err(method_not_found())
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Err(method_not_found())
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, McpError> {
        if request.method == stdin_guard::INVALID_REQUEST_METHOD {
            // A request rmcp could not decode, rewritten by the stdin guard so
            // that its error keeps the client's id.
            let params = request.params.unwrap_or_default();
            let code = params["code"].as_i64().unwrap_or(-32600) as i32;
            let message = params["message"].as_str().unwrap_or("Invalid request");
            return Err(McpError::new(ErrorCode(code), message.to_string(), None));
        }
        Err(method_not_found())
    }

    async fn on_initialized(&self, _context: NotificationContext<RoleServer>) {
        lifecycle::on_initialized(&self.ctx);
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools::list()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        lifecycle::adopt_call_meta(&self.ctx, &context.meta);
        if let Some(meta) = &request.meta {
            lifecycle::adopt_call_meta(&self.ctx, meta);
        }
        let call_meta: Option<&serde_json::Map<String, serde_json::Value>> = match &request.meta {
            Some(m) => Some(m),
            None => None,
        };
        follow::before_call(&self.ctx, [Some(&context.meta), call_meta]).await;
        let result = tools::dispatch(&self.ctx, &request.name, request.arguments, context).await;
        Ok(result.into())
    }
}

/// JSON-RPC -32601 worded as the original's SDK words it.
fn method_not_found() -> McpError {
    McpError::new(ErrorCode::METHOD_NOT_FOUND, "Method not found", None)
}
