//! Services and what they share (facet's and aiomisc's services).
//!
//! - [`Context`]: values shared under typed keys; `get` waits until set.
//!
//! The `Service` trait, the dependency-graph `Supervisor` and the
//! entrypoint are the services issue's next steps; this module holds the
//! part that is done.

mod context;

pub use context::{Context, Key};
