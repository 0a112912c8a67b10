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

/// Waits (a little, on the real clock) until `done` holds.
pub(crate) async fn eventually(rt: &Runtime, what: &str, done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        rt.sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

/// A started stack of one service named `name`.
pub(crate) async fn serve(rt: &Runtime, name: &str, service: impl Service) -> Supervisor {
    let stack = Supervisor::builder(rt)
        .service(name, service, &[])
        .build()
        .expect("stack");
    stack.start().await.expect("started");
    stack
}
