//! TLS servers and clients, with certificates made in the test (rcgen).

use futures::{AsyncReadExt, AsyncWriteExt};
use machina_core::net::{ClientTls, NetError, ServerTls, TcpClient, TcpServer};
use machina_core::rt::Connection;
use machina_test::real_runtimes;

use crate::serve;

/// A self-signed certificate for `localhost` and 127.0.0.1: (cert PEM,
/// key PEM).
fn localhost_cert() -> (String, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("certificate");
    (certified.cert.pem(), certified.signing_key.serialize_pem())
}

async fn echo(conn: Connection, _peer: std::net::SocketAddr) -> Result<(), machina_core::BoxError> {
    let (reader, mut writer) = conn.split();
    futures::io::copy(reader, &mut writer).await?;
    Ok(())
}

real_runtimes! {
    /// A TLS echo: the client trusts the test's certificate and checks the
    /// name; a client that trusts another certificate is refused, and the
    /// server counts the failed handshake and serves on.
    async fn tls_echo_and_a_refused_handshake(rt: Runtime, env: Env) {
        let (cert, key) = localhost_cert();
        let server = TcpServer::builder("127.0.0.1:0", echo)
            .tls(ServerTls::from_pem(cert.as_bytes(), key.as_bytes()).unwrap())
            .build()
            .unwrap();
        let stack = serve(&rt, "tls-echo", server.clone()).await;
        let addr = server.local_addr().unwrap().to_string();

        let client = TcpClient::builder(addr.clone())
            .tls(ClientTls::trusting_pem(cert.as_bytes(), "localhost").unwrap())
            .build()
            .unwrap();
        let mut conn = client.connect(&rt).await.expect("handshake");
        conn.write_all(b"secret").await.unwrap();
        conn.flush().await.unwrap();
        let mut back = [0u8; 6];
        conn.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"secret");
        drop(conn);

        let (other, _) = localhost_cert();
        let stranger = TcpClient::builder(addr)
            .tls(ClientTls::trusting_pem(other.as_bytes(), "localhost").unwrap())
            .build()
            .unwrap();
        let refused = stranger.connect(&rt).await.map(drop).unwrap_err();
        assert!(matches!(refused, NetError::Connect { .. }), "{refused}");
        assert!(refused.to_string().contains("certificate"), "{refused}");
        for _ in 0..200 {
            if server.stats().handshake_failures == 1 {
                break;
            }
            rt.sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(server.stats().handshake_failures, 1);
        assert!(stack.stop().await.is_clean());
    }
}

#[test]
fn certificates_load_from_pem_files_and_bad_ones_are_named() {
    let dir = std::env::temp_dir().join(format!("machina-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = localhost_cert();
    std::fs::write(dir.join("cert.pem"), &cert).unwrap();
    std::fs::write(dir.join("key.pem"), &key).unwrap();
    assert!(ServerTls::from_pem_files(dir.join("cert.pem"), dir.join("key.pem")).is_ok());
    assert!(ClientTls::trusting_pem_file(dir.join("cert.pem"), "localhost").is_ok());
    let missing = ServerTls::from_pem_files(dir.join("nope.pem"), dir.join("key.pem")).unwrap_err();
    assert!(missing.to_string().contains("nope.pem"), "{missing}");
    let (_, other_key) = localhost_cert();
    let mismatch = ServerTls::from_pem(cert.as_bytes(), other_key.as_bytes()).unwrap_err();
    assert!(
        mismatch
            .to_string()
            .starts_with("invalid TLS configuration"),
        "{mismatch}"
    );
    let name = ClientTls::trusting_pem(cert.as_bytes(), "not a name!").unwrap_err();
    assert!(name.to_string().contains("not a name!"), "{name}");
    std::fs::remove_dir_all(dir).unwrap();
}
