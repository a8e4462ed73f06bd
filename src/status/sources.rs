//! The records `oxtail status` reads through a narrow boundary because their
//! store modules come from other work: delivery receipts (`receipts/`) and
//! open asks (`pending-ask/`). The model sees them only as the two traits
//! below, so a store reader can be plugged in (see [`StoreSources`]) and the
//! model can be tested with in-memory fixtures.
//!
//! Invariant defended: a kind of record this machine does not write reads as
//! *not recorded*, and the view then says "unknown" for what depends on it —
//! never "nothing delivered" or "nobody waiting".

use std::path::PathBuf;

use serde::Serialize;

use crate::store::paths::Layout;
use crate::store::{pending_ask, receipts};

/// A delivery receipt: message `message_id` reached its recipient's model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Receipt {
    pub message_id: String,
    /// Unix milliseconds (a receipt with only `delivered_at` seconds: × 1000).
    pub delivered_at_ms: i64,
    /// `hook`, `read_my_messages`, `ask_peer_reply`, or what a newer peer wrote.
    pub via: Option<String>,
    pub recipient_session_id: Option<String>,
}

/// An open ask: `requester_session_id` asked (request `request_id`) and has
/// not had its reply yet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenAsk {
    pub requester_session_id: String,
    pub request_id: String,
    /// The awaited peer's session id, when the record names it.
    pub target_session_id: Option<String>,
    /// The id of the ask message, when the record names it.
    pub message_id: Option<String>,
    /// When the ask started (unix milliseconds).
    pub at_ms: i64,
    /// `waiting` (the ask_peer call is still blocking) or `pending` (it timed
    /// out and a late reply is awaited); `None` when the record does not say.
    pub state: Option<String>,
}

/// Where delivery receipts come from.
pub trait ReceiptSource {
    /// Whether this store records receipts at all.
    fn recorded(&self) -> bool;
    /// The receipt of `message_id`, if one exists.
    fn receipt(&self, message_id: &str) -> Option<Receipt>;
    /// A directory whose changes should refresh a live view.
    fn watch_dir(&self) -> Option<PathBuf> {
        None
    }
}

/// Where open asks come from.
pub trait AskSource {
    /// Whether this store records open asks at all.
    fn recorded(&self) -> bool;
    /// Every open ask on the machine (expired records already left out).
    fn open_asks(&self) -> Vec<OpenAsk>;
    /// A directory whose changes should refresh a live view.
    fn watch_dir(&self) -> Option<PathBuf> {
        None
    }
}

/// A record kind this build does not read yet: everything is unknown.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotRecorded;

impl ReceiptSource for NotRecorded {
    fn recorded(&self) -> bool {
        false
    }
    fn receipt(&self, _message_id: &str) -> Option<Receipt> {
        None
    }
}

impl AskSource for NotRecorded {
    fn recorded(&self) -> bool {
        false
    }
    fn open_asks(&self) -> Vec<OpenAsk> {
        Vec::new()
    }
}

/// The two sources a snapshot reads.
pub struct Sources<'a> {
    pub receipts: &'a dyn ReceiptSource,
    pub asks: &'a dyn AskSource,
}

/// Receipts from `store::receipts` (day logs under `receipts/`), written by our
/// servers and hooks and by the original's later versions; a 0.14 peer
/// writes none, so what it delivered has no receipt (shown as unknown).
pub struct StoreReceipts {
    layout: Layout,
}

impl ReceiptSource for StoreReceipts {
    fn recorded(&self) -> bool {
        true
    }

    fn receipt(&self, message_id: &str) -> Option<Receipt> {
        receipts::read(&self.layout, message_id).map(|r| Receipt {
            message_id: r.message_id,
            delivered_at_ms: r.delivered_at_ms,
            via: Some(r.via),
            recipient_session_id: r.recipient_session_id,
        })
    }

    fn watch_dir(&self) -> Option<PathBuf> {
        Some(self.layout.receipts_dir())
    }
}

/// Open asks from `store::pending_ask` (`pending-ask/p-<hash>`): ours are
/// written while the ask waits (`waiting`) and after its timeout (`pending`);
/// the original's later versions write them only at the timeout (no
/// `state`, read as `pending`). Expired records are left out.
pub struct StoreAsks {
    layout: Layout,
}

impl AskSource for StoreAsks {
    fn recorded(&self) -> bool {
        true
    }

    fn open_asks(&self) -> Vec<OpenAsk> {
        let ttl = pending_ask::ttl_ms();
        pending_ask::list(&self.layout)
            .into_iter()
            .filter(|a| a.is_live(ttl))
            .map(|a| OpenAsk {
                requester_session_id: a.session_id,
                request_id: a.request_id,
                target_session_id: a.target,
                message_id: a.message_id,
                at_ms: a.at_ms,
                state: Some(a.state.as_str().to_string()),
            })
            .collect()
    }

    fn watch_dir(&self) -> Option<PathBuf> {
        Some(self.layout.pending_ask_dir())
    }
}

/// The production sources for a store layout.
pub struct StoreSources {
    receipts: StoreReceipts,
    asks: StoreAsks,
}

impl StoreSources {
    pub fn new(layout: &Layout) -> StoreSources {
        StoreSources {
            receipts: StoreReceipts {
                layout: layout.clone(),
            },
            asks: StoreAsks {
                layout: layout.clone(),
            },
        }
    }

    pub fn sources(&self) -> Sources<'_> {
        Sources {
            receipts: &self.receipts,
            asks: &self.asks,
        }
    }
}
