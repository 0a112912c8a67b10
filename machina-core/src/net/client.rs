//! [`TcpClient`]: where to connect and how (aiomisc `TCPClient` /
//! `TLSClient`) — a timeout on the connect (and the TLS handshake), TLS
//! optional, the runtime's sockets.

use std::time::Duration;

use super::error::NetError;
use crate::rt::{Connection, Runtime};

/// The default time a connect (with its TLS handshake) may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to one address; see the module docs. Cheap to clone.
///
/// # Examples
///
/// ```
/// use machina_core::net::TcpClient;
/// use std::time::Duration;
///
/// let client = TcpClient::builder("127.0.0.1:6379")
///     .connect_timeout(Duration::from_secs(2))
///     .build()
///     .unwrap();
/// assert_eq!(client.addr(), "127.0.0.1:6379");
/// let zero = TcpClient::builder("127.0.0.1:6379").connect_timeout(Duration::ZERO).build();
/// assert!(zero.is_err());
/// ```
#[derive(Clone, Debug)]
pub struct TcpClient {
    addr: String,
    connect_timeout: Duration,
    #[cfg(feature = "tls")]
    tls: Option<super::ClientTls>,
}

/// Configures a [`TcpClient`].
#[derive(Debug)]
#[must_use = "call .build() to get the client"]
pub struct TcpClientBuilder {
    client: TcpClient,
}

impl TcpClient {
    /// A client of `addr`: `host:port`, or an IP address with a port.
    pub fn builder(addr: impl Into<String>) -> TcpClientBuilder {
        TcpClientBuilder {
            client: TcpClient {
                addr: addr.into(),
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                #[cfg(feature = "tls")]
                tls: None,
            },
        }
    }

    /// Where it connects.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Connects on `runtime`'s sockets, within the connect timeout (the
    /// TLS handshake included).
    ///
    /// # Errors
    /// [`NetError::NoSockets`] on a runtime without sockets,
    /// [`NetError::Connect`] when the connect or handshake fails,
    /// [`NetError::ConnectTimeout`] when it takes too long.
    pub async fn connect(&self, runtime: &Runtime) -> Result<Connection, NetError> {
        let sockets = runtime.sockets()?.clone();
        let attempt = async {
            let conn = sockets.connect_tcp(self.addr.clone()).await?;
            #[cfg(feature = "tls")]
            if let Some(tls) = &self.tls {
                return tls.upgrade(conn).await;
            }
            Ok(conn)
        };
        match runtime.timeout(self.connect_timeout, attempt).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(source)) => Err(NetError::Connect {
                addr: self.addr.clone(),
                source,
            }),
            Err(_) => Err(NetError::ConnectTimeout {
                addr: self.addr.clone(),
                after: self.connect_timeout,
            }),
        }
    }
}

impl TcpClientBuilder {
    /// How long a connect (with its TLS handshake) may take (default
    /// 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.client.connect_timeout = timeout;
        self
    }

    /// Speaks TLS over the connection.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: super::ClientTls) -> Self {
        self.client.tls = Some(tls);
        self
    }

    /// The client.
    ///
    /// # Errors
    /// [`NetError::Setting`] for a zero connect timeout,
    /// [`NetError::Address`] for an address without a port.
    pub fn build(self) -> Result<TcpClient, NetError> {
        if self.client.connect_timeout.is_zero() {
            return Err(NetError::Setting {
                setting: "connect timeout",
                why: "a zero timeout would fail every connect",
            });
        }
        let has_port = self
            .client
            .addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !has_port {
            return Err(NetError::Address {
                given: self.client.addr,
            });
        }
        Ok(self.client)
    }
}
