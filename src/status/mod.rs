//! `oxtail status`: who is here, who is busy, idle or dead, who has unread
//! mail, who waits on whom, what was said and what is stuck.
//!
//! Layers, pointing down: [`facts`] reads the store and the process table
//! (read-only: no locks, no reaping, no writes); [`model`] turns those facts
//! into a [`model::Snapshot`] by a pure function; the renderers in
//! `cli::status` only draw snapshots. [`sources`] is the boundary for record
//! kinds whose store readers live elsewhere (receipts, open asks).

pub mod facts;
pub mod model;
pub mod process;
pub mod sources;
pub mod waits;

use crate::store::paths::Layout;

pub use facts::Scope;
pub use model::{Options, Snapshot};

/// Read the store now and build the snapshot.
pub fn snapshot(layout: &Layout, scope: &Scope, opts: &Options) -> Snapshot {
    model::build(&gather(layout, scope, opts), opts)
}

/// Read the store now (the facts a snapshot is built from).
pub fn gather(layout: &Layout, scope: &Scope, opts: &Options) -> facts::Facts {
    let store_sources = sources::StoreSources::new(layout);
    facts::gather(
        layout,
        &store_sources.sources(),
        scope,
        crate::clock::now_ms(),
        opts.log,
    )
}
