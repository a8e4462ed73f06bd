//! Sticky-claim persistence and recovery for this server (server spec §6.8.3,
//! §6.8.5); the file format and matching live in `store::claims`.
//!
//! Invariant defended: claim-store trouble never fails a claim or startup —
//! every error is swallowed and recovery simply abstains.

use crate::clock::now_s;
use crate::store::claims::{self, ClaimRecord};
use crate::store::paths::Layout;
use crate::store::registry::{Client, ClientType, Entry};

use super::proctree;

/// Source name of an id recovered from a sticky claim.
pub const SOURCE_STICKY: &str = "sticky-claim";

/// Write (or refresh) the claim for `entry`. Skipped without an id or for an
/// unknown type; errors are ignored.
pub fn persist(layout: &Layout, entry: &Entry) {
    let Some(sid) = entry.client.id() else { return };
    if entry.client.client_type == ClientType::Unknown {
        return;
    }
    let rec = ClaimRecord {
        schema_version: 1,
        client_type: entry.client.client_type.as_str().to_string(),
        cwd: entry.client.cwd.clone(),
        ancestors: proctree::own_chain(),
        session_id: sid.to_string(),
        transcript_path: entry.client.transcript_path.clone(),
        claimed_at: now_s(),
        server_pid: entry.server_pid,
    };
    let _ = claims::write_claim(layout, &rec);
}

/// The client with a recovered id, when `client` has none, its type is known
/// and exactly one claim matches our ancestry.
pub fn recover(layout: &Layout, client: &Client) -> Option<Client> {
    if client.id().is_some() || client.client_type == ClientType::Unknown {
        return None;
    }
    if !layout.claims_dir().is_dir() {
        return None;
    }
    let chain = proctree::own_chain();
    let rec = claims::recover_claim(layout, client.client_type.as_str(), &client.cwd, &chain)?;
    let mut out = client.clone();
    out.session_id = Some(rec.session_id);
    out.session_id_source = Some(SOURCE_STICKY.to_string());
    out.transcript_path = rec.transcript_path;
    Some(out)
}
