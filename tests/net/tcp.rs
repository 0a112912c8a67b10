//! TCP servers: echo, errors and panics counted, drain on stop, the
//! connection limit, bad settings.

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use machina_core::limit::{ConcurrentGroup, Limits};
use machina_core::net::{NetError, TcpClient, TcpServer};
use machina_core::rt::{Connection, Runtime};
use machina_core::service::Supervisor;
use machina_core::testing::MockRuntime;
use machina_test::real_runtimes;

use crate::{eventually, serve};

async fn echo(conn: Connection, _peer: std::net::SocketAddr) -> Result<(), machina_core::BoxError> {
    let (reader, mut writer) = conn.split();
    futures::io::copy(reader, &mut writer).await?;
    Ok(())
}

async fn connect(rt: &Runtime, server: &TcpServer) -> Connection {
    let addr = server.local_addr().expect("bound").to_string();
    TcpClient::builder(addr)
        .build()
        .unwrap()
        .connect(rt)
        .await
        .expect("connected")
}

/// Writes `line` and reads as many bytes back.
async fn round_trip(conn: &mut Connection, line: &[u8]) -> Vec<u8> {
    conn.write_all(line).await.unwrap();
    let mut back = vec![0; line.len()];
    conn.read_exact(&mut back).await.unwrap();
    back
}

real_runtimes! {
    /// Two clients at once get their own bytes back; the stats count both.
    async fn tcp_echo_serves_each_connection_in_its_own_task(rt: Runtime, env: Env) {
        let server = TcpServer::builder("127.0.0.1:0", echo).build().unwrap();
        let stack = serve(&rt, "echo", server.clone()).await;
        let mut a = connect(&rt, &server).await;
        let mut b = connect(&rt, &server).await;
        assert_eq!(round_trip(&mut a, b"hello from a").await, b"hello from a");
        assert_eq!(round_trip(&mut b, b"b").await, b"b");
        assert_eq!(round_trip(&mut a, b"again").await, b"again");
        drop((a, b));
        eventually(&rt, "both connections finished", || server.stats().finished == 2).await;
        let stats = server.stats();
        assert_eq!((stats.accepted, stats.active, stats.failed), (2, 0, 0));
        assert!(stack.stop().await.is_clean());
        assert_eq!(server.local_addr(), None, "unbound after stop");
    }

    /// A handler's error or panic is counted and the server keeps serving.
    async fn handler_errors_and_panics_are_counted_not_fatal(rt: Runtime, env: Env) {
        let server = TcpServer::builder("127.0.0.1:0", |mut conn: Connection, _peer| async move {
            let mut first = [0u8; 1];
            conn.read_exact(&mut first).await?;
            match first[0] {
                b'e' => Err("the client asked for an error".into()),
                b'p' => panic!("the client asked for a panic"),
                _ => {
                    conn.write_all(b"ok").await?;
                    Ok(())
                }
            }
        })
        .build()
        .unwrap();
        let stack = serve(&rt, "picky", server.clone()).await;
        for byte in [b"e", b"p"] {
            let mut conn = connect(&rt, &server).await;
            conn.write_all(byte).await.unwrap();
            let mut rest = Vec::new();
            let _ = conn.read_to_end(&mut rest).await; // closed by the server
        }
        let mut conn = connect(&rt, &server).await;
        assert_eq!(round_trip(&mut conn, b"k").await[..1], *b"o");
        eventually(&rt, "three handlers ended", || {
            let s = server.stats();
            s.failed + s.panicked + s.finished == 3
        })
        .await;
        let stats = server.stats();
        assert_eq!((stats.failed, stats.panicked, stats.finished), (1, 1, 1));
        assert!(stack.stop().await.is_clean(), "the server itself never failed");
    }

    /// At stop, a slow connection finishes within the drain timeout; a
    /// hung one is cancelled when it runs out; new connections are refused.
    async fn stop_drains_slow_connections_and_cancels_hung_ones(rt: Runtime, env: Env) {
        let handler_rt = rt.clone();
        let server = TcpServer::builder("127.0.0.1:0", move |mut conn: Connection, _peer| {
            let rt = handler_rt.clone();
            async move {
                let mut what = [0u8; 1];
                conn.read_exact(&mut what).await?;
                if what[0] == b'h' {
                    std::future::pending::<()>().await; // hung
                }
                rt.sleep(Duration::from_millis(300)).await;
                conn.write_all(b"bye").await?;
                Ok(())
            }
        })
        .drain_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
        let stack = serve(&rt, "slow", server.clone()).await;
        let addr = server.local_addr().unwrap();
        let mut slow = connect(&rt, &server).await;
        let mut hung = connect(&rt, &server).await;
        slow.write_all(b"s").await.unwrap();
        hung.write_all(b"h").await.unwrap();
        eventually(&rt, "both handlers run", || server.stats().active == 2).await;
        let started = rt.now();
        let report = stack.stop().await;
        let took = rt.now() - started;
        assert!(report.is_clean(), "{report:?}");
        env.assert_about(took, Duration::from_secs(1), Duration::from_millis(900));
        let mut bye = Vec::new();
        slow.read_to_end(&mut bye).await.unwrap();
        assert_eq!(bye, b"bye", "the slow connection finished its answer");
        let mut nothing = Vec::new();
        let _ = hung.read_to_end(&mut nothing).await;
        assert!(nothing.is_empty());
        let stats = server.stats();
        assert_eq!((stats.finished, stats.cancelled, stats.active), (1, 1, 0));
        let refused = TcpClient::builder(addr.to_string()).build().unwrap().connect(&rt).await;
        assert!(matches!(refused, Err(NetError::Connect { .. })), "{:?}", refused.map(drop));
    }

    /// With a group of one in flight, the second connection's handler
    /// starts only when the first connection closes.
    async fn a_connection_limit_holds_connections_back(rt: Runtime, env: Env) {
        let one = ConcurrentGroup::new(&rt, "connections", Limits::new().max_in_flight(1)).unwrap();
        let server = TcpServer::builder("127.0.0.1:0", |mut conn: Connection, _peer| async move {
            conn.write_all(b"hi").await?;
            let mut rest = Vec::new();
            conn.read_to_end(&mut rest).await?;
            Ok(())
        })
        .max_connections(one.clone())
        .build()
        .unwrap();
        let stack = serve(&rt, "limited", server.clone()).await;
        let mut first = connect(&rt, &server).await;
        let mut second = connect(&rt, &server).await;
        let mut hi = [0u8; 2];
        first.read_exact(&mut hi).await.unwrap();
        assert_eq!(one.in_flight(), 1);
        let early = rt.timeout(Duration::from_millis(200), second.read_exact(&mut hi)).await;
        assert!(early.is_err(), "the second connection was served while the first was open");
        assert_eq!(server.stats().accepted, 1);
        drop(first);
        second.read_exact(&mut hi).await.unwrap();
        assert_eq!(&hi, b"hi");
        assert_eq!(server.stats().accepted, 2);
        drop(second);
        assert!(stack.stop().await.is_clean());
        eventually(&rt, "the permits came back", || one.in_flight() == 0).await;
    }

    /// Binding an address already in use fails the start with the address.
    async fn a_port_in_use_fails_the_start(rt: Runtime, env: Env) {
        let first = TcpServer::builder("127.0.0.1:0", echo).build().unwrap();
        let stack = serve(&rt, "first", first.clone()).await;
        let taken = first.local_addr().unwrap();
        let second = TcpServer::builder(taken, echo).build().unwrap();
        let err = Supervisor::builder(&rt)
            .service("second", second, &[])
            .build()
            .unwrap()
            .start()
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&format!("could not bind {taken}")), "{text}");
        stack.stop().await;
    }
}

#[test]
fn the_mock_runtime_says_it_has_no_sockets() {
    let mock = MockRuntime::new();
    let server = TcpServer::builder("127.0.0.1:0", echo).build().unwrap();
    let stack = Supervisor::builder(&mock.runtime())
        .service("echo", server, &[])
        .build()
        .unwrap();
    let err = mock
        .block_on(async move { stack.start().await.unwrap_err() })
        .unwrap();
    assert!(
        err.to_string().contains("the mock runtime has no sockets"),
        "{err}"
    );
}

#[test]
fn bad_settings_are_refused_when_built() {
    let err = TcpServer::builder("localhost:80", echo)
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("invalid socket address \"localhost:80\""),
        "{err}"
    );
    let err = TcpServer::builder("127.0.0.1:0", echo)
        .handshake_timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(
        err.to_string().starts_with("invalid handshake timeout"),
        "{err}"
    );
    assert!(TcpClient::builder("no-port").build().is_err());
    assert!(TcpClient::builder(":80").build().is_err());
    assert!(TcpClient::builder("example.com:443").build().is_ok());
}
