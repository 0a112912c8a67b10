//! [`TokioSockets`]: the [`Sockets`] of a tokio runtime — `tokio::net`,
//! seen as `futures-io` streams through `tokio-util`'s compat layer.

use std::io;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};

use machina_core::rt::{Connection, IoFuture, Sockets, TcpListen, UdpIo};
use tokio::runtime::Handle;
use tokio_util::compat::TokioAsyncReadCompatExt;

/// Sockets on the I/O driver of the tokio runtime behind a handle.
#[derive(Debug, Clone)]
pub struct TokioSockets {
    handle: Handle,
    /// Whether the runtime has its I/O driver (probed once: tokio panics,
    /// rather than erring, on a socket made without one).
    io_driver: Arc<OnceLock<bool>>,
}

impl TokioSockets {
    /// Sockets on the runtime behind `handle`.
    pub fn new(handle: Handle) -> Self {
        TokioSockets {
            handle,
            io_driver: Arc::new(OnceLock::new()),
        }
    }

    fn check_io(&self) -> io::Result<()> {
        let enabled = *self.io_driver.get_or_init(|| {
            let _entered = self.handle.enter();
            let probe = || -> io::Result<()> {
                let socket = std::net::UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
                socket.set_nonblocking(true)?;
                tokio::net::UdpSocket::from_std(socket).map(drop)
            };
            matches!(catch_unwind(AssertUnwindSafe(probe)), Ok(Ok(())))
        });
        if enabled {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the tokio runtime has no I/O driver: build it with .enable_io() (or .enable_all())",
            ))
        }
    }
}

struct TokioListener(tokio::net::TcpListener);

impl TcpListen for TokioListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn accept(&self) -> IoFuture<'_, (Connection, SocketAddr)> {
        Box::pin(async move {
            let (stream, peer) = self.0.accept().await?;
            // Small writes (a request, an echo) must not wait for Nagle.
            stream.set_nodelay(true)?;
            Ok((Box::new(stream.compat()) as Connection, peer))
        })
    }
}

struct TokioUdp(tokio::net::UdpSocket);

impl UdpIo for TokioUdp {
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

impl Sockets for TokioSockets {
    fn bind_tcp(&self, addr: SocketAddr) -> IoFuture<'static, Box<dyn TcpListen>> {
        let this = self.clone();
        Box::pin(async move {
            this.check_io()?;
            let listener = std::net::TcpListener::bind(addr)?;
            listener.set_nonblocking(true)?;
            let _entered = this.handle.enter();
            let listener = tokio::net::TcpListener::from_std(listener)?;
            Ok(Box::new(TokioListener(listener)) as Box<dyn TcpListen>)
        })
    }

    fn connect_tcp(&self, addr: String) -> IoFuture<'static, Connection> {
        let this = self.clone();
        Box::pin(async move {
            this.check_io()?;
            let stream = tokio::net::TcpStream::connect(addr.as_str()).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream.compat()) as Connection)
        })
    }

    fn bind_udp(&self, addr: SocketAddr) -> IoFuture<'static, Box<dyn UdpIo>> {
        let this = self.clone();
        Box::pin(async move {
            this.check_io()?;
            let socket = std::net::UdpSocket::bind(addr)?;
            socket.set_nonblocking(true)?;
            let _entered = this.handle.enter();
            let socket = tokio::net::UdpSocket::from_std(socket)?;
            Ok(Box::new(TokioUdp(socket)) as Box<dyn UdpIo>)
        })
    }
}
