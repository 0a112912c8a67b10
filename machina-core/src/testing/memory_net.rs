//! [`MemoryNet`]: a loopback network in memory, as [`Sockets`] — so the
//! network services and clients run on the mock runtime, and their
//! timeouts, drains and reconnect waits are tested exactly on virtual
//! time.
//!
//! TCP connections are pairs of bounded in-memory pipes (a writer waits
//! while the peer's buffer is full); UDP datagrams are queued per socket.
//! Ports are this network's own: binding a taken address fails with
//! `AddrInUse`, connecting where nobody listens with `ConnectionRefused`,
//! a dropped listener refuses from then on, a dropped end is end-of-file
//! to its peer.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures::channel::mpsc;
use futures::io::{AsyncRead, AsyncWrite};
use futures::{SinkExt, StreamExt};

use crate::rt::{Connection, IoFuture, Sockets, TcpListen, UdpIo};

/// How many bytes a pipe holds before its writer waits.
const PIPE_CAPACITY: usize = 64 * 1024;

/// An in-memory network; clones share it.
///
/// # Examples
///
/// ```
/// use machina_core::testing::{MemoryNet, MockRuntime};
/// use futures::{AsyncReadExt, AsyncWriteExt};
/// use std::sync::Arc;
///
/// let mock = MockRuntime::new();
/// let rt = mock.runtime().with_sockets(Arc::new(MemoryNet::new()));
/// let echoed = mock.block_on(async move {
///     let sockets = rt.sockets().unwrap();
///     let listener = sockets.bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
///     let addr = listener.local_addr().unwrap();
///     let mut client = sockets.connect_tcp(addr.to_string()).await.unwrap();
///     let (mut server, _peer) = listener.accept().await.unwrap();
///     client.write_all(b"ping").await.unwrap();
///     let mut buf = [0; 4];
///     server.read_exact(&mut buf).await.unwrap();
///     buf
/// }).unwrap();
/// assert_eq!(&echoed, b"ping");
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryNet {
    inner: Arc<Mutex<Net>>,
}

#[derive(Debug, Default)]
struct Net {
    listeners: HashMap<SocketAddr, mpsc::UnboundedSender<(Connection, SocketAddr)>>,
    udp: HashMap<SocketAddr, mpsc::UnboundedSender<(Vec<u8>, SocketAddr)>>,
    next_port: u16,
}

impl Net {
    /// `addr`, with a port of this network's own for port 0.
    fn assign(&mut self, mut addr: SocketAddr) -> SocketAddr {
        if addr.port() == 0 {
            loop {
                self.next_port = self.next_port.max(40_000).wrapping_add(1).max(40_001);
                addr.set_port(self.next_port);
                if !self.listeners.contains_key(&addr) && !self.udp.contains_key(&addr) {
                    break;
                }
            }
        }
        addr
    }
}

impl MemoryNet {
    /// An empty network.
    pub fn new() -> Self {
        MemoryNet::default()
    }

    fn net(&self) -> std::sync::MutexGuard<'_, Net> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One direction of a connection.
#[derive(Debug, Default)]
struct Pipe {
    bytes: VecDeque<u8>,
    /// The writer closed (or dropped) its end: the reader sees EOF once
    /// the bytes are read.
    write_closed: bool,
    /// The reader dropped its end: writes fail.
    read_closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

type SharedPipe = Arc<Mutex<Pipe>>;

fn lock(pipe: &SharedPipe) -> std::sync::MutexGuard<'_, Pipe> {
    pipe.lock().unwrap_or_else(|p| p.into_inner())
}

/// One end of an in-memory TCP connection.
#[derive(Debug)]
struct MemoryStream {
    incoming: SharedPipe,
    outgoing: SharedPipe,
}

fn pair() -> (MemoryStream, MemoryStream) {
    let (a, b) = (SharedPipe::default(), SharedPipe::default());
    (
        MemoryStream {
            incoming: a.clone(),
            outgoing: b.clone(),
        },
        MemoryStream {
            incoming: b,
            outgoing: a,
        },
    )
}

impl AsyncRead for MemoryStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut pipe = lock(&self.incoming);
        if pipe.bytes.is_empty() {
            if pipe.write_closed {
                return Poll::Ready(Ok(0));
            }
            pipe.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(pipe.bytes.len());
        for (slot, byte) in buf.iter_mut().zip(pipe.bytes.drain(..n)) {
            *slot = byte;
        }
        if let Some(writer) = pipe.writer.take() {
            writer.wake();
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for MemoryStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut pipe = lock(&self.outgoing);
        if pipe.read_closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if pipe.write_closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "this end was closed",
            )));
        }
        let room = PIPE_CAPACITY - pipe.bytes.len();
        if room == 0 {
            pipe.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(buf.len());
        pipe.bytes.extend(&buf[..n]);
        if let Some(reader) = pipe.reader.take() {
            reader.wake();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut pipe = lock(&self.outgoing);
        pipe.write_closed = true;
        if let Some(reader) = pipe.reader.take() {
            reader.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for MemoryStream {
    fn drop(&mut self) {
        let mut outgoing = lock(&self.outgoing);
        outgoing.write_closed = true;
        if let Some(reader) = outgoing.reader.take() {
            reader.wake();
        }
        drop(outgoing);
        let mut incoming = lock(&self.incoming);
        incoming.read_closed = true;
        incoming.bytes.clear();
        if let Some(writer) = incoming.writer.take() {
            writer.wake();
        }
    }
}

struct MemoryListener {
    net: MemoryNet,
    addr: SocketAddr,
    incoming: futures::lock::Mutex<mpsc::UnboundedReceiver<(Connection, SocketAddr)>>,
}

impl TcpListen for MemoryListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }

    fn accept(&self) -> IoFuture<'_, (Connection, SocketAddr)> {
        Box::pin(async move {
            let mut incoming = self.incoming.lock().await;
            incoming.next().await.ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotConnected, "the listener was closed")
            })
        })
    }
}

impl Drop for MemoryListener {
    fn drop(&mut self) {
        self.net.net().listeners.remove(&self.addr);
    }
}

struct MemoryUdp {
    net: MemoryNet,
    addr: SocketAddr,
    incoming: futures::lock::Mutex<mpsc::UnboundedReceiver<(Vec<u8>, SocketAddr)>>,
}

impl UdpIo for MemoryUdp {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }

    fn recv_from<'a>(&'a self, buf: &'a mut [u8]) -> IoFuture<'a, (usize, SocketAddr)> {
        Box::pin(async move {
            let mut incoming = self.incoming.lock().await;
            let (datagram, from) = incoming.next().await.ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotConnected, "the socket was closed")
            })?;
            let n = datagram.len().min(buf.len());
            buf[..n].copy_from_slice(&datagram[..n]);
            Ok((n, from))
        })
    }

    fn send_to<'a>(&'a self, buf: &'a [u8], target: SocketAddr) -> IoFuture<'a, usize> {
        // Like UDP: a datagram to nobody is lost, not an error.
        let to = self.net.net().udp.get(&target).cloned();
        let (datagram, from) = (buf.to_vec(), self.addr);
        Box::pin(async move {
            if let Some(mut to) = to {
                let _ = to.send((datagram, from)).await;
            }
            Ok(buf.len())
        })
    }
}

impl Drop for MemoryUdp {
    fn drop(&mut self) {
        self.net.net().udp.remove(&self.addr);
    }
}

/// Takes `addr` in `map`, or says it is in use.
fn claim<T>(
    map: &mut HashMap<SocketAddr, mpsc::UnboundedSender<T>>,
    addr: SocketAddr,
) -> io::Result<mpsc::UnboundedReceiver<T>> {
    match map.entry(addr) {
        std::collections::hash_map::Entry::Occupied(_) => Err(io::ErrorKind::AddrInUse.into()),
        std::collections::hash_map::Entry::Vacant(slot) => {
            let (tx, rx) = mpsc::unbounded();
            slot.insert(tx);
            Ok(rx)
        }
    }
}

impl Sockets for MemoryNet {
    fn bind_tcp(&self, addr: SocketAddr) -> IoFuture<'static, Box<dyn TcpListen>> {
        let bound = {
            let mut net = self.net();
            let addr = net.assign(addr);
            claim(&mut net.listeners, addr).map(|rx| MemoryListener {
                net: self.clone(),
                addr,
                incoming: futures::lock::Mutex::new(rx),
            })
        };
        Box::pin(async move { bound.map(|l| Box::new(l) as Box<dyn TcpListen>) })
    }

    fn connect_tcp(&self, addr: String) -> IoFuture<'static, Connection> {
        let connected = (|| {
            let target: SocketAddr = addr.parse().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{addr:?} is not ip:port (the in-memory network has no names)"),
                )
            })?;
            let mut net = self.net();
            let listener = net
                .listeners
                .get(&target)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::ConnectionRefused))?;
            let local = net.assign(SocketAddr::new(target.ip(), 0));
            drop(net);
            let (client, server) = pair();
            listener
                .unbounded_send((Box::new(server) as Connection, local))
                .map_err(|_| io::Error::from(io::ErrorKind::ConnectionRefused))?;
            Ok(Box::new(client) as Connection)
        })();
        Box::pin(async move { connected })
    }

    fn bind_udp(&self, addr: SocketAddr) -> IoFuture<'static, Box<dyn UdpIo>> {
        let bound = {
            let mut net = self.net();
            let addr = net.assign(addr);
            claim(&mut net.udp, addr).map(|rx| MemoryUdp {
                net: self.clone(),
                addr,
                incoming: futures::lock::Mutex::new(rx),
            })
        };
        Box::pin(async move { bound.map(|s| Box::new(s) as Box<dyn UdpIo>) })
    }
}
