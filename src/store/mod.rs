//! The on-disk protocol under `$HOME/.oxtail`: the only code that builds a path
//! there or parses a line of a file there.

pub mod activity;
pub mod autowake;
pub mod claims;
pub mod clients;
pub mod daylog;
pub mod error;
pub mod file;
pub mod idle_watch;
pub mod ledger;
pub mod lock;
pub mod mailbox;
pub mod message;
pub mod outbox;
pub mod paths;
pub mod pending_ask;
pub mod receipts;
pub mod registry;
pub mod registry_index;
