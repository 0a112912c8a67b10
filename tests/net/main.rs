//! The network services on real loopback sockets, on every real runtime
//! from one body each (the mock runtime has no sockets; that it says so
//! is tested here too): TCP and TLS echo, UDP, drain on stop, the
//! connection limit, handler failures, a robust client that survives
//! its server's restart, and the health endpoints.

#[path = "../support/mod.rs"]
mod support;

mod clients;
mod health;
mod tcp;
mod tls;
mod udp;
mod virtual_time;

use machina_core::rt::Runtime;
use machina_core::service::{Service, Supervisor};

/// A started stack of one service named `name`.
pub(crate) async fn serve(rt: &Runtime, name: &str, service: impl Service) -> Supervisor {
    let stack = Supervisor::builder(rt)
        .service(name, service, &[])
        .build()
        .expect("stack");
    stack.start().await.expect("started");
    stack
}
