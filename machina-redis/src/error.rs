//! [`RedisError`]: what can go wrong between Machina and Redis. No variant
//! carries the URL's password: a server is named by host, port and
//! database only.

/// A Redis operation that did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// The URL does not parse (it is not repeated: it may hold a
    /// password).
    #[error(
        "invalid Redis URL: {reason}; expected redis://[[user]:password@]host[:port][/db] \
         or rediss://… (TLS, feature `tls`)"
    )]
    Url {
        /// Why it was refused.
        reason: String,
    },
    /// Redis could not be reached, or did not answer in time.
    #[error("Redis at {server} is unavailable: {source}")]
    Unavailable {
        /// The server, as `host:port/db`.
        server: String,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// Redis answered with an error (a script that failed, say).
    #[error("Redis at {server} refused the command: {source}")]
    Command {
        /// The server, as `host:port/db`.
        server: String,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// Redis answered something a Machina script never returns (another
    /// program writing Machina's keys, say).
    #[error("Redis at {server} answered {answer}, which {what} never returns")]
    Unexpected {
        /// The server, as `host:port/db`.
        server: String,
        /// What was asked.
        what: &'static str,
        /// What came back.
        answer: String,
    },
}

impl RedisError {
    /// Whether the error is the connection's (retrying on a new connection
    /// may succeed), not the command's.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, RedisError::Unavailable { .. })
    }

    /// Classifies a client error for `server`.
    pub(crate) fn from_client(server: &str, source: redis::RedisError) -> Self {
        let server = server.to_owned();
        if source.is_io_error()
            || source.is_connection_dropped()
            || source.is_connection_refusal()
            || source.is_timeout()
            || source.is_unrecoverable_error()
            // A restarted server answers LOADING while it reads its AOF.
            || matches!(
                source.kind(),
                redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading)
            )
        {
            RedisError::Unavailable { server, source }
        } else {
            RedisError::Command { server, source }
        }
    }
}
