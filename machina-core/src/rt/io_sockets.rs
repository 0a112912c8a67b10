//! [`IoSockets`] (feature `io`): the [`Sockets`] of async-io's reactor,
//! through `async-net`, shared by the smol and async-std adapters (both
//! drive async-io) instead of a copy in each.

use std::io;
use std::net::SocketAddr;

use super::sockets::{Connection, IoFuture, Sockets, TcpListen, UdpIo};

/// Sockets on async-io's reactor (`async-net`).
///
/// # Examples
///
/// ```
/// use machina_core::rt::{IoSockets, Sockets};
/// use futures::{AsyncReadExt, AsyncWriteExt};
///
/// futures::executor::block_on(async {
///     let sockets = IoSockets::new();
///     let listener = sockets.bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
///     let addr = listener.local_addr().unwrap();
///     let mut client = sockets.connect_tcp(addr.to_string()).await.unwrap();
///     let (mut server, _peer) = listener.accept().await.unwrap();
///     client.write_all(b"ping").await.unwrap();
///     let mut buf = [0; 4];
///     server.read_exact(&mut buf).await.unwrap();
///     assert_eq!(&buf, b"ping");
/// });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct IoSockets {
    _private: (),
}

impl IoSockets {
    /// Sockets on async-io's reactor.
    pub fn new() -> Self {
        IoSockets { _private: () }
    }
}

struct IoListener(async_net::TcpListener);

impl TcpListen for IoListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn accept(&self) -> IoFuture<'_, (Connection, SocketAddr)> {
        Box::pin(async move {
            let (stream, peer) = self.0.accept().await?;
            // Small writes (a request, an echo) must not wait for Nagle.
            stream.set_nodelay(true)?;
            Ok((Box::new(stream) as Connection, peer))
        })
    }
}

struct IoUdp(async_net::UdpSocket);

impl UdpIo for IoUdp {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn recv_from<'a>(&'a self, buf: &'a mut [u8]) -> IoFuture<'a, (usize, SocketAddr)> {
        Box::pin(self.0.recv_from(buf))
    }

    fn send_to<'a>(&'a self, buf: &'a [u8], target: SocketAddr) -> IoFuture<'a, usize> {
        Box::pin(self.0.send_to(buf, target))
    }
}

impl Sockets for IoSockets {
    fn bind_tcp(&self, addr: SocketAddr) -> IoFuture<'static, Box<dyn TcpListen>> {
        Box::pin(async move {
            let listener = async_net::TcpListener::bind(addr).await?;
            Ok(Box::new(IoListener(listener)) as Box<dyn TcpListen>)
        })
    }

    fn connect_tcp(&self, addr: String) -> IoFuture<'static, Connection> {
        Box::pin(async move {
            let stream = async_net::TcpStream::connect(addr.as_str()).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as Connection)
        })
    }

    fn bind_udp(&self, addr: SocketAddr) -> IoFuture<'static, Box<dyn UdpIo>> {
        Box::pin(async move {
            let socket = async_net::UdpSocket::bind(addr).await?;
            Ok(Box::new(IoUdp(socket)) as Box<dyn UdpIo>)
        })
    }
}
