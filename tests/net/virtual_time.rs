//! The network services on the mock runtime, over the in-memory network
//! (`testing::MemoryNet`): a drain timeout and reconnect waits asserted
//! exactly on virtual time, a refused connect, a UDP answer.

use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use machina_core::net::{
    NetError, ReadyWhen, Reply, RobustClient, TcpClient, TcpServer, UdpServer,
};
use machina_core::rt::{Connection, Runtime};
use machina_core::service::Supervisor;
use machina_core::testing::{MemoryNet, MockRuntime};
use machina_core::waits::Wait;

fn mock() -> (MockRuntime, Runtime) {
    let mock = MockRuntime::new();
    let rt = mock.runtime().with_sockets(Arc::new(MemoryNet::new()));
    (mock, rt)
}

async fn stack(
    rt: &Runtime,
    name: &str,
    service: impl machina_core::service::Service,
) -> Supervisor {
    let stack = Supervisor::builder(rt)
        .service(name, service, &[])
        .build()
        .unwrap();
    stack.start().await.unwrap();
    stack
}

#[test]
fn a_hung_connection_is_cancelled_exactly_at_the_drain_timeout() {
    let (mock, rt) = mock();
    let handler_rt = rt.clone();
    let server = TcpServer::builder("10.0.0.1:80", move |mut conn: Connection, _peer| {
        let rt = handler_rt.clone();
        async move {
            let mut what = [0u8; 1];
            conn.read_exact(&mut what).await?;
            // 's' finishes after 3 s, anything else never.
            if what[0] == b's' {
                rt.sleep(Duration::from_secs(3)).await;
                conn.write_all(b"done").await?;
                return Ok(());
            }
            std::future::pending().await
        }
    })
    .drain_timeout(Duration::from_secs(5))
    .build()
    .unwrap();
    let probe = server.clone();
    let (took, slow_answer) = mock
        .block_on(async move {
            let stack = stack(&rt, "tcp", probe.clone()).await;
            let client = TcpClient::builder("10.0.0.1:80").build().unwrap();
            let mut slow = client.connect(&rt).await.unwrap();
            let mut hung = client.connect(&rt).await.unwrap();
            slow.write_all(b"s").await.unwrap();
            hung.write_all(b"h").await.unwrap();
            rt.sleep(Duration::from_millis(1)).await;
            assert_eq!(probe.stats().active, 2);
            let before = rt.now();
            assert!(stack.stop().await.is_clean());
            let took = rt.now() - before;
            let mut answer = Vec::new();
            slow.read_to_end(&mut answer).await.unwrap();
            (took, answer)
        })
        .unwrap();
    assert_eq!(
        took,
        Duration::from_secs(5),
        "the drain ran to its timeout, not a moment more"
    );
    assert_eq!(slow_answer, b"done");
    let stats = server.stats();
    assert_eq!((stats.finished, stats.cancelled, stats.active), (1, 1, 0));
}

#[test]
fn a_robust_client_reconnects_after_exactly_its_waits() {
    let (mock, rt) = mock();
    let client = RobustClient::builder(
        TcpClient::builder("10.0.0.2:9000").build().unwrap(),
        |mut conn: Connection| async move {
            let mut rest = Vec::new();
            conn.read_to_end(&mut rest).await?;
            Ok(())
        },
    )
    .waits(Wait::Fixed(Duration::from_secs(2)))
    .ready_when(ReadyWhen::Started)
    .build();
    let probe = client.clone();
    mock.block_on(async move {
        let start = rt.now();
        let clients = stack(&rt, "feed", probe.clone()).await;
        // Nobody listens: a failed connect at 0, 2, 4 s.
        rt.sleep(Duration::from_secs(5)).await;
        assert_eq!(probe.stats().connect_failures, 3);
        // A server from 5 s: the next try, at 6 s, connects.
        let server =
            TcpServer::builder("10.0.0.2:9000", |mut conn: Connection, _peer| async move {
                conn.write_all(b"hello").await?;
                Ok(()) // and closes
            })
            .build()
            .unwrap();
        let servers = stack(&rt, "server", server).await;
        rt.sleep(Duration::from_millis(999)).await;
        assert_eq!(probe.stats().connects, 0, "still waiting at 5.999 s");
        rt.sleep(Duration::from_millis(2)).await;
        let s = probe.stats();
        assert_eq!((s.connects, s.connect_failures), (1, 3), "connected at 6 s");
        // The server closes each connection: one reconnect per wait.
        rt.sleep(Duration::from_secs(4)).await;
        assert_eq!(probe.stats().reconnects, 2, "at 8 s and 10 s");
        assert_eq!(rt.now() - start, Duration::from_millis(10_001));
        clients.stop().await;
        servers.stop().await;
    })
    .unwrap();
}

#[test]
fn a_connect_to_nobody_is_refused_and_udp_answers() {
    let (mock, rt) = mock();
    mock.block_on(async move {
        let refused = TcpClient::builder("10.0.0.3:1")
            .build()
            .unwrap()
            .connect(&rt)
            .await;
        assert!(matches!(refused, Err(NetError::Connect { .. })));
        // A UDP answer through the in-memory network.
        let server =
            UdpServer::builder("10.0.0.3:53", |d: Vec<u8>, peer, reply: Reply| async move {
                reply.send_to(&d, peer).await?;
                Ok(())
            })
            .build()
            .unwrap();
        let servers = stack(&rt, "udp", server).await;
        let socket = rt
            .sockets()
            .unwrap()
            .bind_udp("10.0.0.4:0".parse().unwrap())
            .await
            .unwrap();
        socket
            .send_to(b"q", "10.0.0.3:53".parse().unwrap())
            .await
            .unwrap();
        let mut buf = [0u8; 8];
        let (n, from) = socket.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from.port()), (&b"q"[..], 53));
        servers.stop().await;
    })
    .unwrap();
}

#[test]
fn a_silent_tls_client_is_dropped_exactly_at_the_handshake_timeout() {
    let (mock, rt) = mock();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let tls = machina_core::net::ServerTls::from_pem(
        certified.cert.pem().as_bytes(),
        certified.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    let server = TcpServer::builder("10.0.0.5:443", |_conn: Connection, _peer| async { Ok(()) })
        .tls(tls)
        .handshake_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let probe = server.clone();
    let (closed_after, failures) = mock
        .block_on(async move {
            let servers = stack(&rt, "tls", probe.clone()).await;
            let mut silent = TcpClient::builder("10.0.0.5:443")
                .build()
                .unwrap()
                .connect(&rt)
                .await
                .unwrap();
            let before = rt.now();
            let mut nothing = Vec::new();
            silent.read_to_end(&mut nothing).await.unwrap();
            let closed_after = rt.now() - before;
            servers.stop().await;
            (closed_after, probe.stats().handshake_failures)
        })
        .unwrap();
    assert_eq!(closed_after, Duration::from_secs(2));
    assert_eq!(failures, 1);
}
