//! Result helpers shared by every tool, and the runner that moves a blocking
//! tool body off the async reactor.
//!
//! Invariant defended: a tool answer is exactly one text item holding compact
//! JSON whose first key is `schema_version: 1`, with no `isError` and no
//! `structuredContent`; failures the caller must see are `isError` results with
//! plain text (never a JSON-RPC error, never a panic).

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Map, Value};

/// A payload map that already starts with `"schema_version": 1`.
pub fn payload() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("schema_version".into(), Value::from(1));
    m
}

/// One text item with the compact JSON of `value`; `isError` absent.
pub fn json_result(value: Value) -> CallToolResult {
    let text = serde_json::to_string(&value).unwrap_or_else(|_| "{}".into());
    let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
    r.is_error = None;
    r
}

/// [`json_result`] of a payload map.
pub fn map_result(map: Map<String, Value>) -> CallToolResult {
    json_result(Value::Object(map))
}

/// An `isError: true` result with `text` verbatim (validation failures,
/// handler exceptions such as a registry write error).
pub fn error_result(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text.into())])
}

/// A `{schema_version, ok:false, error, message}` payload: a failure the caller
/// handles (not an `isError` result).
pub fn failure(error: &str, message: impl Into<String>) -> Value {
    let mut out = payload();
    out.insert("ok".into(), Value::Bool(false));
    out.insert("error".into(), Value::from(error));
    out.insert("message".into(), Value::from(message.into()));
    Value::Object(out)
}

/// Run a blocking tool body on the blocking pool and turn its outcome into the
/// tool result: `Ok` = compact JSON payload, `Err` = `isError` text.
pub async fn off_reactor(
    tool: &'static str,
    body: impl FnOnce() -> Result<Value, String> + Send + 'static,
) -> CallToolResult {
    match tokio::task::spawn_blocking(body).await {
        Ok(Ok(value)) => json_result(value),
        Ok(Err(text)) => error_result(text),
        Err(e) => error_result(format!("{tool}: internal task failed: {e}")),
    }
}
