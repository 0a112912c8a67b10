//! UDP servers: a round trip through the server's socket, and handler
//! failures counted.

use std::net::SocketAddr;
use std::time::Duration;

use machina_core::net::{Reply, UdpServer};
use machina_test::real_runtimes;

use crate::serve;

real_runtimes! {
    /// Datagrams come back upper-cased to their sender; one that asks for
    /// an error is counted as failed and the server answers the next.
    async fn udp_round_trip(rt: Runtime, env: Env) {
        let server = UdpServer::builder("127.0.0.1:0", |datagram: Vec<u8>, peer: SocketAddr, reply: Reply| async move {
            if datagram == b"fail" {
                return Err("asked to fail".into());
            }
            reply.send_to(&datagram.to_ascii_uppercase(), peer).await?;
            Ok(())
        })
        .build()
        .unwrap();
        let stack = serve(&rt, "upper", server.clone()).await;
        let target = server.local_addr().unwrap();
        let client = rt.sockets().unwrap().bind_udp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let mut buf = [0u8; 64];
        client.send_to(b"fail", target).await.unwrap();
        for word in [&b"ping"[..], b"udp"] {
            client.send_to(word, target).await.unwrap();
            let (len, from) = rt
                .timeout(Duration::from_secs(5), client.recv_from(&mut buf))
                .await
                .expect("an answer")
                .unwrap();
            assert_eq!((&buf[..len], from), (&word.to_ascii_uppercase()[..], target));
        }
        for _ in 0..200 {
            // The answer can reach the client before its handler is
            // counted as finished: wait for all three to be counted.
            let s = server.stats();
            if s.failed + s.finished == 3 {
                break;
            }
            rt.sleep(Duration::from_millis(10)).await;
        }
        let stats = server.stats();
        assert_eq!((stats.accepted, stats.finished, stats.failed), (3, 2, 1));
        assert!(stack.stop().await.is_clean());
        assert_eq!(server.local_addr(), None);
    }
}

#[test]
fn a_zero_buffer_is_refused() {
    let err = UdpServer::builder(
        "127.0.0.1:0",
        |_d: Vec<u8>, _p: SocketAddr, _r: Reply| async { Ok(()) },
    )
    .max_datagram(0)
    .build()
    .unwrap_err();
    assert!(err.to_string().starts_with("invalid max_datagram"), "{err}");
}
