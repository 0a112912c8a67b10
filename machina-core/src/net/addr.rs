//! [`BindAddr`]: what a server may be told to bind to — a `SocketAddr`,
//! or text such as `"127.0.0.1:0"` that is checked when the server is
//! built, not when it starts.

use std::net::{IpAddr, SocketAddr};

use super::error::NetError;

/// An address to bind to: a [`SocketAddr`], an `(IpAddr, u16)` pair, or
/// its text (`"0.0.0.0:8080"`, `"[::1]:0"`).
pub trait BindAddr {
    /// The address.
    ///
    /// # Errors
    /// [`NetError::Address`] for text that is not `ip:port`.
    fn socket_addr(self) -> Result<SocketAddr, NetError>;
}

impl BindAddr for SocketAddr {
    fn socket_addr(self) -> Result<SocketAddr, NetError> {
        Ok(self)
    }
}

impl BindAddr for (IpAddr, u16) {
    fn socket_addr(self) -> Result<SocketAddr, NetError> {
        Ok(SocketAddr::from(self))
    }
}

impl BindAddr for &str {
    fn socket_addr(self) -> Result<SocketAddr, NetError> {
        self.parse().map_err(|_| NetError::Address {
            given: self.to_owned(),
        })
    }
}

impl BindAddr for String {
    fn socket_addr(self) -> Result<SocketAddr, NetError> {
        self.as_str().socket_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_checked_and_refused_with_what_was_given() {
        assert_eq!("127.0.0.1:80".socket_addr().unwrap().port(), 80);
        assert!("[::1]:0".socket_addr().unwrap().is_ipv6());
        let err = "localhost:80".socket_addr().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid socket address \"localhost:80\""),
            "{err}"
        );
        assert!("127.0.0.1".socket_addr().is_err());
    }
}
