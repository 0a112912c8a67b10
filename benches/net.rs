//! The network edge under load, each peer in the same run:
//! - TCP echo through Machina's `TcpServer` against a hand-written accept
//!   loop on the same runtime (tokio, then smol): both servers run the
//!   same echo loop (read up to 4 KiB, write it back) on one executor
//!   thread;
//! - HTTP "hello" through Machina's `HttpService` against bare
//!   `axum::serve` with the same router, on one tokio worker.
//!
//! The load generator is the same for every server: 16 keep-alive
//! connections on a one-thread tokio runtime of its own, each sending a
//! 64-byte message (or a `GET /`) and waiting for the answer, for a fixed
//! time; it records every round trip's latency. Rounds interleave the
//! peers (A B A B …) so a slow phase of the machine hits both; each row
//! prints round trips per second and p50/p99 latency per round.
//!
//! First, criterion rows: one round trip at a time on one connection
//! (client and server on one current-thread tokio runtime), Machina and
//! the peer one after the other in the same run.
//!
//! Run: `cargo bench --bench net` (`-- --rounds 3 --secs 2` are the
//! defaults; `-- --round-trips-only` or `-- --load-only` for one part;
//! `-- --count KIND N` for instruction counts, see `count`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use machina_core::net::TcpServer;
use machina_core::rt::{Connection, Runtime};
use machina_core::service::Supervisor;

const CONNECTIONS: usize = 16;
const MESSAGE: usize = 64;

/// One round's figures.
#[derive(Debug, Clone, Copy)]
struct Round {
    per_sec: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Latencies (ns) to a round's figures.
fn figures(mut latencies: Vec<u64>, secs: f64) -> Round {
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Round {
        per_sec: latencies.len() as f64 / secs,
        p50_us: at(0.50) as f64 / 1e3,
        p99_us: at(0.99) as f64 / 1e3,
    }
}

/// The load: `CONNECTIONS` echo clients for `secs`.
fn echo_load(addr: SocketAddr, secs: f64) -> Round {
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    client.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let mut tasks = Vec::new();
        for _ in 0..CONNECTIONS {
            tasks.push(tokio::spawn(async move {
                let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
                conn.set_nodelay(true).unwrap();
                let (out, mut back) = ([7u8; MESSAGE], [0u8; MESSAGE]);
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    conn.write_all(&out).await.unwrap();
                    conn.read_exact(&mut back).await.unwrap();
                    latencies.push(sent.elapsed().as_nanos() as u64);
                }
                latencies
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        figures(all, secs)
    })
}

/// The load: `CONNECTIONS` keep-alive HTTP/1.1 clients for `secs`.
fn http_load(addr: SocketAddr, secs: f64) -> Round {
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    client.block_on(async move {
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let mut tasks = Vec::new();
        for _ in 0..CONNECTIONS {
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap();
                let url = format!("http://{addr}/");
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let body = http.get(&url).send().await.unwrap().bytes().await.unwrap();
                    assert_eq!(&body[..], b"hello");
                    latencies.push(sent.elapsed().as_nanos() as u64);
                }
                latencies
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        figures(all, secs)
    })
}

/// Machina's echo handler: the same loop as the hand-written servers.
async fn machina_echo(
    mut conn: Connection,
    _peer: SocketAddr,
) -> Result<(), machina_core::BoxError> {
    use futures::{AsyncReadExt, AsyncWriteExt};
    let mut buf = [0u8; 4096];
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        conn.write_all(&buf[..n]).await?;
    }
}

/// Starts Machina's echo server on `rt`, driven by `block_on`.
fn machina_server<B: Fn(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>)>(
    rt: &Runtime,
    block_on: B,
) -> (Arc<Supervisor>, SocketAddr) {
    let server = TcpServer::builder("127.0.0.1:0", machina_echo)
        .build()
        .unwrap();
    let stack = Arc::new(
        Supervisor::builder(rt)
            .service("echo", server.clone(), &[])
            .build()
            .unwrap(),
    );
    let starting = stack.clone();
    block_on(Box::pin(async move { starting.start().await.unwrap() }));
    (stack, server.local_addr().unwrap())
}

/// The hand-written peer on tokio: an accept loop spawning one task per
/// connection that runs the same echo loop as Machina's handler.
async fn hand_echo_tokio() -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            conn.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = conn.read(&mut buf).await {
                    if conn.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn tokio_rows(rounds: usize, secs: f64) {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let rt = server_rt
        .block_on(async { machina_tokio::runtime() })
        .unwrap();
    let (stack, machina_addr) = machina_server(&rt, |f| server_rt.block_on(f));
    let hand_addr = server_rt.block_on(hand_echo_tokio());
    compare(
        "tcp echo, tokio (1 worker)",
        rounds,
        secs,
        || echo_load(machina_addr, secs),
        || echo_load(hand_addr, secs),
    );
    server_rt.block_on(async move { stack.stop().await });
}

fn smol_rows(rounds: usize, secs: f64) {
    let executor = Arc::new(async_executor::Executor::new());
    let (mut stop, stopped) = async_channel_pair();
    let driver = {
        let executor = executor.clone();
        std::thread::spawn(move || {
            smol::block_on(executor.run(async move { stopped.recv().await.ok() }))
        })
    };
    let rt = machina_smol::runtime_on(&executor);
    let (stack, machina_addr) = machina_server(&rt, smol::block_on);
    let hand_addr = smol::block_on(async {
        let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let spawner = executor.clone();
        executor
            .spawn(async move {
                use futures::{AsyncReadExt, AsyncWriteExt};
                loop {
                    let (mut conn, _) = listener.accept().await.unwrap();
                    conn.set_nodelay(true).unwrap();
                    spawner
                        .spawn(async move {
                            let mut buf = [0u8; 4096];
                            loop {
                                let n = match conn.read(&mut buf).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => n,
                                };
                                if conn.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        })
                        .detach();
                }
            })
            .detach();
        addr
    });
    compare(
        "tcp echo, smol (1 executor thread)",
        rounds,
        secs,
        || echo_load(machina_addr, secs),
        || echo_load(hand_addr, secs),
    );
    smol::block_on(async move { stack.stop().await });
    let _ = stop.try_send(());
    driver.join().unwrap();
}

/// A one-shot channel as a pair (the smol executor's thread waits on it).
fn async_channel_pair() -> (futures::channel::mpsc::Sender<()>, Stopper) {
    let (tx, rx) = futures::channel::mpsc::channel(1);
    (tx, Stopper(rx))
}

struct Stopper(futures::channel::mpsc::Receiver<()>);

impl Stopper {
    async fn recv(mut self) -> Result<(), ()> {
        use futures::StreamExt;
        self.0.next().await.ok_or(())
    }
}

fn http_rows(rounds: usize, secs: f64) {
    use axum::Router;
    use axum::routing::get;
    let app = || Router::new().route("/", get(|| async { "hello" }));
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let rt = server_rt
        .block_on(async { machina_tokio::runtime() })
        .unwrap();
    let web = machina_tokio::http::HttpService::builder("127.0.0.1:0", app())
        .build()
        .unwrap();
    let stack = Arc::new(
        Supervisor::builder(&rt)
            .service("web", web.clone(), &[])
            .build()
            .unwrap(),
    );
    let starting = stack.clone();
    server_rt.block_on(async move { starting.start().await.unwrap() });
    let machina_addr = web.local_addr().unwrap();
    let bare_addr = server_rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app()).await.unwrap() });
        addr
    });
    compare(
        "http hello, axum (1 worker)",
        rounds,
        secs,
        || http_load(machina_addr, secs),
        || http_load(bare_addr, secs),
    );
    server_rt.block_on(async move { stack.stop().await });
}

/// Runs `machina` and `peer` interleaved, `rounds` times each, and prints
/// both and their ratios.
fn compare(
    name: &str,
    rounds: usize,
    secs: f64,
    machina: impl Fn() -> Round,
    peer: impl Fn() -> Round,
) {
    println!("{name}: {CONNECTIONS} connections, {secs} s per run");
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let (m, p) = if round % 2 == 1 {
            let m = machina();
            (m, peer())
        } else {
            let p = peer();
            (machina(), p)
        };
        println!(
            "  round {round}: machina {:>9.0}/s p50 {:>6.1} us p99 {:>6.1} us | peer {:>9.0}/s p50 {:>6.1} us p99 {:>6.1} us | throughput {:.3}x, p99 {:.3}x",
            m.per_sec,
            m.p50_us,
            m.p99_us,
            p.per_sec,
            p.p50_us,
            p.p99_us,
            m.per_sec / p.per_sec,
            m.p99_us / p.p99_us
        );
        ratios.push((m.per_sec / p.per_sec, m.p99_us / p.p99_us));
    }
    let range = |f: fn(&(f64, f64)) -> f64| {
        let values: Vec<f64> = ratios.iter().map(f).collect();
        (
            values.iter().cloned().fold(f64::MAX, f64::min),
            values.iter().cloned().fold(0.0, f64::max),
        )
    };
    let (t_lo, t_hi) = range(|r| r.0);
    let (p_lo, p_hi) = range(|r| r.1);
    println!("  => throughput {t_lo:.3}-{t_hi:.3}x the peer, p99 latency {p_lo:.3}-{p_hi:.3}x");
}

/// Machina's servers and the peers on one current-thread tokio runtime.
struct OneThread {
    tokio_rt: tokio::runtime::Runtime,
    /// (name, address) of the TCP echo servers: Machina, hand-written.
    tcp: [(&'static str, SocketAddr); 2],
    /// (name, address) of the HTTP servers: Machina, bare `axum::serve`.
    http: [(&'static str, SocketAddr); 2],
    stacks: Vec<Arc<Supervisor>>,
}

fn one_thread_servers() -> OneThread {
    use axum::Router;
    use axum::routing::get;
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rt = tokio_rt
        .block_on(async { machina_tokio::runtime() })
        .unwrap();
    let (tcp_stack, machina_addr) = machina_server(&rt, |f| tokio_rt.block_on(f));
    let hand_addr = tokio_rt.block_on(hand_echo_tokio());
    let app = || Router::new().route("/", get(|| async { "hello" }));
    let web = machina_tokio::http::HttpService::builder("127.0.0.1:0", app())
        .build()
        .unwrap();
    let http_stack = Arc::new(
        Supervisor::builder(&rt)
            .service("web", web.clone(), &[])
            .build()
            .unwrap(),
    );
    let starting = http_stack.clone();
    tokio_rt.block_on(async move { starting.start().await.unwrap() });
    let bare_addr = tokio_rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app()).await.unwrap() });
        addr
    });
    OneThread {
        tokio_rt,
        tcp: [("machina", machina_addr), ("hand_written", hand_addr)],
        http: [
            ("machina", web.local_addr().unwrap()),
            ("bare_axum_serve", bare_addr),
        ],
        stacks: vec![tcp_stack, http_stack],
    }
}

impl OneThread {
    /// A client connection to the echo server at `addr`, and a function
    /// making one round trip on it.
    fn echo_client(&self, addr: SocketAddr) -> impl FnMut() + '_ {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut conn = self.tokio_rt.block_on(async {
            let conn = tokio::net::TcpStream::connect(addr).await.unwrap();
            conn.set_nodelay(true).unwrap();
            conn
        });
        move || {
            self.tokio_rt.block_on(async {
                let mut back = [0u8; MESSAGE];
                conn.write_all(&[7u8; MESSAGE]).await.unwrap();
                conn.read_exact(&mut back).await.unwrap();
            })
        }
    }

    /// A keep-alive HTTP client of the server at `addr`, and a function
    /// making one request with it.
    fn http_client(&self, addr: SocketAddr) -> impl FnMut() + '_ {
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/");
        move || {
            self.tokio_rt.block_on(async {
                let body = client
                    .get(&url)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                assert_eq!(&body[..], b"hello");
            })
        }
    }

    fn stop(self) {
        for stack in self.stacks {
            self.tokio_rt.block_on(async move { stack.stop().await });
        }
    }
}

/// One round trip at a time on one connection, client and servers on one
/// current-thread runtime.
fn round_trip_rows() {
    use criterion::Criterion;
    let mut c = Criterion::default()
        .sample_size(60)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    let servers = one_thread_servers();
    let mut group = c.benchmark_group("tcp_echo_round_trip_tokio_current_thread");
    for (name, addr) in servers.tcp {
        let mut round_trip = servers.echo_client(addr);
        group.bench_function(name, |b| b.iter(&mut round_trip));
    }
    group.finish();
    let mut group = c.benchmark_group("http_hello_one_request_tokio_current_thread");
    for (name, addr) in servers.http {
        let mut request = servers.http_client(addr);
        group.bench_function(name, |b| b.iter(&mut request));
    }
    group.finish();
    servers.stop();
}

/// `--count KIND N`: N round trips against one server and nothing else,
/// for an instruction count (`valgrind --tool=callgrind`, less the same
/// command with N = 0): KIND is `tcp-machina`, `tcp-hand`,
/// `http-machina` or `http-bare`.
fn count(kind: &str, n: usize) {
    let servers = one_thread_servers();
    let mut once: Box<dyn FnMut() + '_> = match kind {
        "tcp-machina" => Box::new(servers.echo_client(servers.tcp[0].1)),
        "tcp-hand" => Box::new(servers.echo_client(servers.tcp[1].1)),
        "http-machina" => Box::new(servers.http_client(servers.http[0].1)),
        "http-bare" => Box::new(servers.http_client(servers.http[1].1)),
        other => panic!("unknown --count kind {other:?}"),
    };
    // The connection (and, for HTTP, the client's pool) is set up by the
    // first round trip: it is made in the N = 0 run too.
    once();
    for _ in 0..n {
        once();
    }
    drop(once);
    servers.stop();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: f64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    if let Some(at) = args.iter().position(|a| a == "--count") {
        let n = args
            .get(at + 2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(1000);
        count(&args[at + 1], n);
        return;
    }
    // `cargo test --benches` runs bench binaries with `--test`: keep it short.
    let quick = args.iter().any(|a| a == "--test");
    let rounds = if quick {
        1
    } else {
        arg("--rounds", 3.0) as usize
    };
    let secs = if quick { 0.2 } else { arg("--secs", 2.0) };
    if !quick && !args.iter().any(|a| a == "--load-only") {
        round_trip_rows();
    }
    if args.iter().any(|a| a == "--round-trips-only") {
        return;
    }
    tokio_rows(rounds, secs);
    smol_rows(rounds, secs);
    http_rows(rounds, secs);
}
