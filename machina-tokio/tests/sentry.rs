//! Sentry reports from an entrypoint (feature `sentry`), against a real
//! loopback HTTP listener given as the DSN: the envelopes it receives are
//! parsed back, and each failure — an execute's, a loop's, a service's —
//! arrives as an event tagged with the name of what failed, before `run`
//! returns (the entrypoint flushed). A Sentry that never answers cannot
//! hold the exit past the shutdown timeout.
//!
//! One test function: the Sentry client and the `tracing` subscriber are
//! process-wide, so the two parts run in order.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use machina_core::BoxError;
use machina_core::bot::Machina;
use machina_core::loops::Loop;
use machina_core::schedule::Schedule;
use machina_core::service::{
    EnvConfig, Service, ServiceContext, ServiceFuture, Signals, entrypoint_with,
};
use serde_json::Value;

/// One request as the listener read it.
#[derive(Debug, Clone)]
struct Request {
    path: String,
    auth: String,
    body: Vec<u8>,
}

/// A loopback HTTP listener that answers every request `200 {}` and keeps
/// what it was sent.
fn capture_server() -> (String, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let keep = keep.clone();
            std::thread::spawn(move || serve(stream, &keep));
        }
    });
    (format!("http://public@{addr}/42"), seen)
}

/// Serves one connection's requests (keep-alive) until it closes.
fn serve(stream: TcpStream, seen: &Mutex<Vec<Request>>) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    // A Sentry that takes its time: unless the entrypoint flushed, the
    // reports would arrive after `run` returned.
    while let Some(request) = {
        std::thread::sleep(Duration::from_millis(150));
        read_request(&mut reader)
    } {
        seen.lock().unwrap().push(request);
        let answer =
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// Reads one HTTP/1.1 request: its path, `X-Sentry-Auth` and body (by
/// `Content-Length` or chunked); `None` at the end of the connection.
fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let path = line.split_whitespace().nth(1)?.to_owned();
    let (mut length, mut chunked, mut auth) = (0usize, false, String::new());
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "transfer-encoding" => chunked = value.trim().eq_ignore_ascii_case("chunked"),
            "x-sentry-auth" => auth = value.trim().to_owned(),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).ok()?;
            let size = usize::from_str_radix(line.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body).ok()?;
    }
    Some(Request { path, auth, body })
}

/// The items of a Sentry envelope: each item's header and payload.
fn envelope_items(body: &[u8]) -> Vec<(Value, Value)> {
    let mut rest = body;
    let next_line = |rest: &mut &[u8]| -> Option<Vec<u8>> {
        if rest.is_empty() {
            return None;
        }
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = rest[..end].to_vec();
        *rest = &rest[(end + 1).min(rest.len())..];
        Some(line)
    };
    let header: Value = serde_json::from_slice(&next_line(&mut rest).unwrap()).unwrap();
    assert!(header.is_object(), "envelope header {header}");
    let mut items = Vec::new();
    while let Some(line) = next_line(&mut rest) {
        if line.is_empty() {
            continue;
        }
        let item: Value = serde_json::from_slice(&line).unwrap();
        let payload = match item["length"].as_u64() {
            Some(length) => {
                let length = length as usize;
                let payload = rest[..length].to_vec();
                rest = &rest[length..];
                if rest.first() == Some(&b'\n') {
                    rest = &rest[1..];
                }
                payload
            }
            None => next_line(&mut rest).unwrap_or_default(),
        };
        let payload = serde_json::from_slice(&payload).unwrap_or(Value::Null);
        items.push((item, payload));
    }
    items
}

/// The events among what the listener received.
fn events(seen: &Mutex<Vec<Request>>) -> Vec<Value> {
    let seen = seen.lock().unwrap();
    seen.iter()
        .flat_map(|request| envelope_items(&request.body))
        .filter(|(item, _)| item["type"] == "event")
        .map(|(_, payload)| payload)
        .collect()
}

/// An event's level (Sentry leaves out `error`, the default).
fn level(event: &Value) -> &str {
    event["level"].as_str().unwrap_or("error")
}

/// A service whose background task fails when told to.
struct Database {
    fail: Mutex<Option<oneshot::Receiver<()>>>,
}

impl Service for Database {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        let told = self.fail.lock().unwrap().take();
        Box::pin(async move {
            ctx.spawn(async move {
                if let Some(told) = told {
                    let _ = told.await;
                }
                Err::<(), BoxError>("connection pool poisoned".into())
            });
            Ok(())
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("upstream refused: {0}")]
struct Upstream(u16);

/// The environment of a run reporting to `dsn`, with `shutdown_timeout`
/// for the flush.
fn env(dsn: String, shutdown_timeout: &'static str) -> EnvConfig {
    EnvConfig::from_lookup(move |name| match name {
        EnvConfig::SENTRY_DSN => Some(dsn.clone()),
        EnvConfig::SENTRY_ENVIRONMENT => Some("ci".to_owned()),
        EnvConfig::SENTRY_RELEASE => Some("bot@9.0.1".to_owned()),
        EnvConfig::LOG_LEVEL => Some("info".to_owned()),
        EnvConfig::SHUTDOWN_TIMEOUT => Some(shutdown_timeout.to_owned()),
        _ => None,
    })
}

fn no_signals() -> Signals {
    Box::pin(futures::stream::pending())
}

#[test]
fn failures_reach_sentry_tagged_with_names_and_a_silent_sentry_cannot_hold_the_exit() {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    tokio_rt.block_on(reports_arrive_tagged_and_flushed());
    tokio_rt.block_on(a_silent_sentry_is_cut_at_the_timeout());
}

async fn reports_arrive_tagged_and_flushed() {
    let rt = machina_tokio::runtime().unwrap();
    let (dsn, seen) = capture_server();
    let (tell_db, told) = oneshot::channel();
    // A generous timeout: the server answers each envelope after 150 ms, and
    // on a loaded machine the reports must still all be flushed in it.
    let entrypoint = entrypoint_with(&rt, no_signals(), env(dsn, "20s"))
        .service(
            "db",
            Database {
                fail: Mutex::new(Some(told)),
            },
            &[],
        )
        .build()
        .unwrap();
    let main_rt = rt.clone();
    let outcome = entrypoint
        .run(async move {
            // An execute that fails.
            let mut bot = Machina::builder(&main_rt);
            let fetch = bot
                .execute("fetch", |_: ()| async { Err::<(), _>(Upstream(503)) })
                .register()
                .unwrap();
            let _bot = bot.build();
            assert!(fetch.spawn(()).unwrap().await.is_err());
            // A loop that ends with an error.
            let poll = Loop::builder(&main_rt, "poll", Schedule::after("10ms").unwrap())
                .build(|_: Loop| async { Err::<(), _>(Upstream(500)) });
            assert!(poll.start().unwrap().await.unwrap().is_err());
            // A service's background task that fails: the stack goes down.
            tell_db.send(()).unwrap();
            futures::future::pending::<()>().await;
        })
        .await;
    assert_eq!(outcome.exit_code, 1);
    assert_eq!(
        outcome.failure.as_ref().map(|(s, _)| s.as_str()),
        Some("db")
    );

    // Flushed by the time `run` returned: nothing to wait for.
    let requests = seen.lock().unwrap().clone();
    assert!(!requests.is_empty(), "no envelope was sent");
    for request in &requests {
        assert_eq!(request.path, "/api/42/envelope/");
        assert!(
            request.auth.contains("sentry_key=public"),
            "{}",
            request.auth
        );
    }
    let events = events(&seen);
    let tagged = |tag: &str, value: &str| {
        events
            .iter()
            .filter(|event| event["tags"][tag] == value)
            .collect::<Vec<_>>()
    };
    let fetch = tagged("execute", "fetch");
    assert_eq!(fetch.len(), 1, "{events:#?}");
    assert_eq!(level(fetch[0]), "warning");
    assert!(
        fetch[0].to_string().contains("upstream refused: 503"),
        "{}",
        fetch[0]
    );
    let poll = tagged("loop", "poll");
    assert_eq!(poll.len(), 1, "{events:#?}");
    assert_eq!(level(poll[0]), "error");
    assert!(
        poll[0].to_string().contains("upstream refused: 500"),
        "{}",
        poll[0]
    );
    let db = tagged("service", "db");
    assert!(!db.is_empty(), "{events:#?}");
    assert!(db.iter().all(|e| level(e) == "error"));
    assert!(
        db[0].to_string().contains("connection pool poisoned"),
        "{}",
        db[0]
    );
    for event in &events {
        assert_eq!(event["environment"], "ci");
        assert_eq!(event["release"], "bot@9.0.1");
    }
    // Info lines travel as breadcrumbs with the next event, never alone.
    assert!(events.iter().all(|e| level(e) != "info"), "{events:#?}");
}

async fn a_silent_sentry_is_cut_at_the_timeout() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            keep.lock().unwrap().push(stream);
        }
    });
    let rt = machina_tokio::runtime().unwrap();
    let entrypoint = entrypoint_with(&rt, no_signals(), env(format!("http://k@{addr}/7"), "1s"))
        .build()
        .unwrap();
    let started = Instant::now();
    let outcome = entrypoint
        .run(async {
            tracing::error!(service = "mailer", error = "smtp down", "giving up");
        })
        .await;
    let took = started.elapsed();
    assert_eq!(outcome.exit_code, 0);
    // The shutdown timeout is 1 s: the flush waits at most that.
    assert!(took < Duration::from_secs(3), "run took {took:?}");
    assert!(
        !held.lock().unwrap().is_empty(),
        "the report was never sent"
    );
}
