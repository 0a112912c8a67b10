//! The health service: `/healthz`, `/readyz` through a stack's start and
//! shutdown, `/metrics` scraped and parsed, and what it answers to
//! requests it does not serve.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use machina_core::limit::{ConcurrentGroup, Limits};
use machina_core::net::{HealthService, TcpClient};
use machina_core::rt::Runtime;
use machina_core::service::{Service, ServiceContext, ServiceFuture, StopContext, Supervisor};
use machina_core::stats::Stats;
use machina_test::real_runtimes;

/// Sends `request` (raw HTTP/1.1) and reads the answer to the end:
/// (status, body).
pub(crate) async fn raw(rt: &Runtime, addr: std::net::SocketAddr, request: &str) -> (u16, String) {
    let client = TcpClient::builder(addr.to_string()).build().unwrap();
    let mut conn = client.connect(rt).await.expect("connected");
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    let status = answer[9..12].parse().expect("a status");
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `GET path` with `Connection: close`.
pub(crate) async fn get(rt: &Runtime, addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    raw(
        rt,
        addr,
        &format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n"),
    )
    .await
}

/// The samples of a Prometheus text exposition: `name{labels}` → value.
pub(crate) fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("series and value");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

/// Takes `start_ms` to start and `stop_ms` to stop.
struct Slow {
    rt: Runtime,
    start_ms: u64,
    stop_ms: u64,
}

impl Service for Slow {
    fn start(self: Arc<Self>, _ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            self.rt.sleep(Duration::from_millis(self.start_ms)).await;
            Ok(())
        })
    }

    fn stop(self: Arc<Self>, _ctx: StopContext) -> ServiceFuture {
        Box::pin(async move {
            self.rt.sleep(Duration::from_millis(self.stop_ms)).await;
            Ok(())
        })
    }
}

real_runtimes! {
    /// `/readyz` says 503 while a service starts, 200 once all run, 503
    /// as soon as the shutdown begins (while a slow stop runs), and
    /// nothing answers after; `/healthz` is 200 throughout.
    async fn readyz_follows_the_stack_through_start_and_shutdown(rt: Runtime, env: Env) {
        let health = HealthService::builder("127.0.0.1:0").build().unwrap();
        let stack = Arc::new(
            Supervisor::builder(&rt)
                .service("health", health.clone(), &[])
                .service("db", Slow { rt: rt.clone(), start_ms: 400, stop_ms: 0 }, &["health"])
                .service("worker", Slow { rt: rt.clone(), start_ms: 0, stop_ms: 400 }, &["db"])
                .build()
                .unwrap(),
        );
        let starting = rt.spawn({
            let stack = stack.clone();
            async move { stack.start().await.map_err(|e| e.to_string()) }
        }).unwrap();
        let addr = loop {
            if let Some(addr) = health.local_addr() {
                break addr;
            }
            rt.sleep(Duration::from_millis(5)).await;
        };
        assert_eq!(get(&rt, addr, "/healthz").await, (200, "ok\n".to_owned()));
        let (status, body) = get(&rt, addr, "/readyz").await;
        assert_eq!(status, 503);
        assert_eq!(body, "not ready: not running: db, worker\n");
        starting.await.unwrap().unwrap();
        assert_eq!(get(&rt, addr, "/readyz").await, (200, "ready\n".to_owned()));

        let stopping = rt.spawn({
            let stack = stack.clone();
            async move { stack.stop().await.is_clean() }
        }).unwrap();
        rt.sleep(Duration::from_millis(100)).await; // the worker's stop runs
        let (status, body) = get(&rt, addr, "/readyz").await;
        assert_eq!(status, 503);
        assert!(body.starts_with("not ready: shutting down"), "{body}");
        assert!(body.contains("stopping: worker"), "{body}");
        assert_eq!(get(&rt, addr, "/healthz").await.0, 200, "alive while it stops");
        assert!(stopping.await.unwrap());
        let after = TcpClient::builder(addr.to_string()).build().unwrap().connect(&rt).await;
        assert!(after.is_err(), "the health endpoints stop last, with the stack");
    }

    /// `/metrics` is the Stats set in the Prometheus text format, read anew
    /// at each scrape; other paths and methods get 404 and 405; one
    /// keep-alive connection serves several requests.
    async fn metrics_are_scraped_and_parsed(rt: Runtime, env: Env) {
        let stats = Stats::new();
        let api = ConcurrentGroup::new(&rt, "api", Limits::new().max_in_flight(2)).unwrap();
        stats.add_group(&api);
        let health = HealthService::builder("127.0.0.1:0").stats(stats.clone()).build().unwrap();
        stats.add_tcp_server("health", health.server());
        let stack = Supervisor::builder(&rt).service("health", health.clone(), &[]).build().unwrap();
        stack.start().await.unwrap();
        let addr = health.local_addr().unwrap();

        let held = api.acquire().await;
        let (status, body) = get(&rt, addr, "/metrics").await;
        assert_eq!(status, 200);
        let samples = parse_metrics(&body);
        assert_eq!(samples[r#"machina_group_acquired{name="api"}"#], 1.0);
        assert_eq!(samples[r#"machina_group_in_flight{name="api"}"#], 1.0);
        assert!(body.contains("# TYPE machina_group_in_flight gauge"), "{body}");
        drop(held);
        let samples = parse_metrics(&get(&rt, addr, "/metrics").await.1);
        assert_eq!(samples[r#"machina_group_in_flight{name="api"}"#], 0.0);
        assert!(samples[r#"machina_tcp_server_accepted{name="health"}"#] >= 2.0);

        assert_eq!(get(&rt, addr, "/nope").await.0, 404);
        assert_eq!(raw(&rt, addr, "POST /healthz HTTP/1.1\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi").await.0, 405);
        assert_eq!(raw(&rt, addr, "NONSENSE\r\n\r\n").await.0, 400);
        let (status, body) = raw(
            &rt,
            addr,
            "GET /healthz HTTP/1.1\r\n\r\nGET /readyz?verbose HTTP/1.1\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(status, 200);
        assert!(body.contains("ok\nHTTP/1.1 200 OK"), "two answers on one connection: {body}");
        assert!(body.ends_with("ready\n"), "{body}");
        assert!(stack.stop().await.is_clean());
    }
}
