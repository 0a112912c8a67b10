//! [`Redis`]: where Machina's shared state lives — a `redis::Client`, one
//! multiplexed connection made on first use and made again after it
//! breaks, the key prefix, and the connect/response timeouts (a slow
//! Redis is an unavailable one, never a hung call).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client};

use crate::error::RedisError;
use crate::keys::Keys;
use crate::sync::lock;

/// A Redis server and the prefix of Machina's keys in it; cheap to clone.
///
/// Nothing connects until first use; a connection that breaks is made
/// again by the next operation (the callers decide how long to wait
/// between tries). The URL's password is never printed: `Debug` and every
/// error name the server as `host:port/db`.
///
/// # Examples
///
/// ```
/// use machina_redis::Redis;
///
/// let redis = Redis::open("redis://:hunter2@127.0.0.1:6379/2").unwrap().prefix("bots");
/// assert_eq!(redis.server(), "127.0.0.1:6379/2");
/// assert!(!format!("{redis:?}").contains("hunter2"));
/// assert!(Redis::open("http://127.0.0.1").is_err());
/// ```
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    server: String,
    keys: Keys,
    connect_timeout: Duration,
    response_timeout: Duration,
    connection: Mutex<Option<MultiplexedConnection>>,
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("server", &self.inner.server)
            .field("prefix", &self.inner.keys.prefix())
            .finish_non_exhaustive()
    }
}

/// The default time to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The default time to wait for an answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

impl Redis {
    /// A Redis at `url` (`redis://`, or `rediss://` with feature `tls`),
    /// keys under the prefix `machina`.
    ///
    /// # Errors
    /// [`RedisError::Url`] if the URL does not parse.
    pub fn open(url: &str) -> Result<Self, RedisError> {
        #[cfg(feature = "tls")]
        install_crypto_provider();
        let client = Client::open(url).map_err(|e| RedisError::Url {
            // The client's messages do not quote the URL; make sure.
            reason: e.to_string().replace(url, "<the URL>"),
        })?;
        Ok(Self::from_client(url, client))
    }

    /// A Redis at a `rediss://` URL whose certificate is signed by
    /// `root_cert_pem` (a private CA, or the server's own self-signed
    /// certificate) instead of a public root (feature `tls`).
    ///
    /// # Errors
    /// [`RedisError::Url`] if the URL or the certificate does not parse.
    #[cfg(feature = "tls")]
    pub fn open_tls(url: &str, root_cert_pem: &[u8]) -> Result<Self, RedisError> {
        install_crypto_provider();
        let certificates = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(root_cert_pem.to_vec()),
        };
        let client = Client::build_with_tls(url, certificates).map_err(|e| RedisError::Url {
            reason: e.to_string().replace(url, "<the URL>"),
        })?;
        Ok(Self::from_client(url, client))
    }

    fn from_client(url: &str, client: Client) -> Self {
        Redis {
            inner: Arc::new(Inner {
                server: server_of(url),
                client,
                keys: Keys::new("machina"),
                connect_timeout: CONNECT_TIMEOUT,
                response_timeout: RESPONSE_TIMEOUT,
                connection: Mutex::new(None),
            }),
        }
    }

    fn with(self, change: impl FnOnce(&mut Inner)) -> Self {
        let inner = &*self.inner;
        let mut copy = Inner {
            client: inner.client.clone(),
            server: inner.server.clone(),
            keys: inner.keys.clone(),
            connect_timeout: inner.connect_timeout,
            response_timeout: inner.response_timeout,
            connection: Mutex::new(None),
        };
        change(&mut copy);
        Redis {
            inner: Arc::new(copy),
        }
    }

    /// Every key Machina writes starts with `prefix:` (default `machina`);
    /// see [`keys`](crate::keys) for the names.
    pub fn prefix(self, prefix: &str) -> Self {
        self.with(|inner| inner.keys = Keys::new(prefix))
    }

    /// How long connecting may take (default 2 s).
    pub fn connect_timeout(self, timeout: Duration) -> Self {
        self.with(|inner| inner.connect_timeout = timeout)
    }

    /// How long an answer may take (default 2 s); a slower Redis counts as
    /// unavailable.
    pub fn response_timeout(self, timeout: Duration) -> Self {
        self.with(|inner| inner.response_timeout = timeout)
    }

    /// The server as `host:port/db`.
    pub fn server(&self) -> &str {
        &self.inner.server
    }

    /// The key names.
    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// The underlying client (for a pub/sub connection, say).
    pub(crate) fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The shared connection, made if there is none.
    ///
    /// # Errors
    /// [`RedisError::Unavailable`] if Redis cannot be reached in time.
    pub async fn connection(&self) -> Result<MultiplexedConnection, RedisError> {
        if let Some(connection) = lock(&self.inner.connection).clone() {
            return Ok(connection);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.inner.connect_timeout))
            .set_response_timeout(Some(self.inner.response_timeout));
        let connection = self
            .inner
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| self.error(e))?;
        tracing::debug!(server = %self.inner.server, "connected to Redis");
        *lock(&self.inner.connection) = Some(connection.clone());
        Ok(connection)
    }

    /// Classifies `error`; a connection-level one drops the shared
    /// connection, so that the next operation connects again.
    pub(crate) fn error(&self, error: redis::RedisError) -> RedisError {
        let error = RedisError::from_client(&self.inner.server, error);
        if error.is_unavailable() {
            lock(&self.inner.connection).take();
        }
        error
    }

    /// One `PING` round trip (a health check, and the benchmarks' unit).
    ///
    /// # Errors
    /// [`RedisError`] if Redis does not answer `PONG`.
    pub async fn ping(&self) -> Result<(), RedisError> {
        let mut connection = self.connection().await?;
        let answer: String = redis::cmd("PING")
            .query_async(&mut connection)
            .await
            .map_err(|e| self.error(e))?;
        if answer == "PONG" {
            Ok(())
        } else {
            Err(RedisError::Unexpected {
                server: self.inner.server.clone(),
                what: "PING",
                answer,
            })
        }
    }
}

/// rustls needs one process-wide crypto provider; when several crates
/// enable different ones it cannot choose, so `ring` is installed unless
/// the program installed one already.
#[cfg(feature = "tls")]
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: one is in place.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// `host:port/db` of a Redis URL, without user or password.
fn server_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = if host.contains(':') || host.is_empty() {
        host.to_owned()
    } else {
        format!("{host}:6379")
    };
    let db = path
        .split(['?', '#'])
        .next()
        .filter(|db| !db.is_empty())
        .unwrap_or("0");
    format!("{host}/{db}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_is_named_without_user_or_password() {
        assert_eq!(server_of("redis://u:p@h:7000/3"), "h:7000/3");
        assert_eq!(server_of("redis://:p%40ss@h"), "h:6379/0");
        assert_eq!(server_of("rediss://h:1/?protocol=resp3"), "h:1/0");
        assert_eq!(server_of("redis://127.0.0.1:6379"), "127.0.0.1:6379/0");
    }

    #[test]
    fn a_bad_url_is_refused_without_repeating_it() {
        let err = Redis::open("redis//secret@nowhere").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(err.to_string().contains("redis://"), "{err}");
    }
}
