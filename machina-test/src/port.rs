//! [`free_port`]: an unused loopback port for a server under test.

use std::io;
use std::net::{Ipv4Addr, TcpListener};

/// A TCP port on 127.0.0.1 that nothing listens on now: the operating
/// system's choice for a listener bound to port 0, which is then closed.
/// Another process may take it before the test binds it; a server that can
/// bind port 0 itself and report its address avoids that race.
///
/// # Errors
/// The I/O error of binding the probe listener.
///
/// # Examples
///
/// ```
/// let port = machina_test::free_port().unwrap();
/// assert_ne!(port, 0);
/// let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
/// assert_eq!(listener.local_addr().unwrap().port(), port);
/// ```
pub fn free_port() -> io::Result<u16> {
    let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(probe.local_addr()?.port())
}
