//! oxtail: a local MCP stdio server that lets parallel coding agents on one
//! machine see each other and exchange messages.
//!
//! Layers point downward only: `cli` and `server` (tools) call `delivery`,
//! `project`, `identity`, `transcripts` and `wake`, which call `store`; `store`
//! calls nothing above it. AGENTS.md keeps the module map.

pub mod cli;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod delivery_status;
pub mod handoff;
pub mod identity;
pub mod json_text;
pub mod mcp_client;
pub mod project;
pub mod server;
pub mod status;
pub mod store;
pub mod trace;
pub mod transcripts;
pub mod wake;
