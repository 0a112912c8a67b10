//! Clients: a connect that times out or is refused, and a robust client
//! that survives its server's restart.

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use machina_core::net::{NetError, ReadyWhen, RobustClient, TcpClient, TcpServer};
use machina_core::rt::Connection;
use machina_core::stats::Stats;
use machina_core::waits::Wait;
use machina_test::{free_port, real_runtimes};

use crate::support::{Log, entries, log, push};
use crate::{eventually, serve};

async fn echo(conn: Connection, _peer: std::net::SocketAddr) -> Result<(), machina_core::BoxError> {
    let (reader, mut writer) = conn.split();
    futures::io::copy(reader, &mut writer).await?;
    Ok(())
}

/// A handler that says `ping`, logs the echo, then reads until the
/// server closes the connection.
fn pinger(
    seen: Log,
) -> impl Fn(Connection) -> futures::future::BoxFuture<'static, Result<(), machina_core::BoxError>>
+ Send
+ Sync
+ 'static {
    move |mut conn: Connection| {
        let seen = seen.clone();
        Box::pin(async move {
            conn.write_all(b"ping").await?;
            let mut back = [0u8; 4];
            conn.read_exact(&mut back).await?;
            push(&seen, String::from_utf8_lossy(&back).into_owned());
            let mut rest = Vec::new();
            conn.read_to_end(&mut rest).await?;
            Ok(())
        })
    }
}

real_runtimes! {
    /// The server goes away and comes back on the same port: the client
    /// notices, fails to connect while it is down, waits, reconnects with
    /// a fresh connection, and counts it all.
    async fn a_robust_client_survives_a_server_restart(rt: Runtime, env: Env) {
        let port = free_port().unwrap();
        let addr = format!("127.0.0.1:{port}");
        let server = TcpServer::builder(addr.as_str(), echo).drain_timeout(Duration::from_millis(100)).build().unwrap();
        let server_stack = serve(&rt, "echo", server).await;

        let seen = log();
        let client = RobustClient::builder(TcpClient::builder(addr.clone()).build().unwrap(), pinger(seen.clone()))
            .waits(Wait::Fixed(Duration::from_millis(50)))
            .build();
        let stats = Stats::new();
        stats.add_client("feed", &client);
        let client_stack = serve(&rt, "feed", client.clone()).await;
        assert!(client.is_connected(), "ready once connected");
        eventually(&rt, "the first echo", || entries(&seen).len() == 1).await;

        server_stack.stop().await;
        eventually(&rt, "a failed reconnect", || client.stats().connect_failures >= 1).await;
        assert!(!client.is_connected());

        let again = TcpServer::builder(addr.as_str(), echo).build().unwrap();
        let server_stack = serve(&rt, "echo", again).await;
        eventually(&rt, "the second echo", || entries(&seen).len() == 2).await;
        assert_eq!(entries(&seen), ["ping", "ping"]);
        let s = client.stats();
        assert_eq!((s.connects, s.reconnects, s.connected), (2, 1, 1));
        let reconnects = stats.snapshot().into_iter().find(|s| s.counter == "reconnects").unwrap();
        assert_eq!((reconnects.kind, reconnects.value), ("client", 1.0));

        assert!(client_stack.stop().await.is_clean());
        assert!(!client.is_connected());
        server_stack.stop().await;
    }

    /// Started with nobody listening: `ReadyWhen::Started` is ready at
    /// once and keeps trying; a plain connect is refused with the address.
    async fn nobody_listening(rt: Runtime, env: Env) {
        let addr = format!("127.0.0.1:{}", free_port().unwrap());
        let refused = TcpClient::builder(addr.clone()).build().unwrap().connect(&rt).await.map(drop).unwrap_err();
        assert!(matches!(refused, NetError::Connect { .. }), "{refused}");
        assert!(refused.to_string().contains(&addr), "{refused}");

        let seen = log();
        let client = RobustClient::builder(TcpClient::builder(addr.clone()).build().unwrap(), pinger(seen.clone()))
            .waits(Wait::Fixed(Duration::from_millis(20)))
            .ready_when(ReadyWhen::Started)
            .build();
        let stack = serve(&rt, "feed", client.clone()).await;
        eventually(&rt, "three failed connects", || client.stats().connect_failures >= 3).await;
        let server_stack = serve(&rt, "echo", TcpServer::builder(addr.as_str(), echo).build().unwrap()).await;
        eventually(&rt, "the echo", || entries(&seen).len() == 1).await;
        assert_eq!(client.stats().reconnects, 0, "the first connection is not a reconnect");
        assert!(stack.stop().await.is_clean());
        server_stack.stop().await;
    }
}
