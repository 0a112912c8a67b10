//! A small service stack: a "database", a cache that needs it, a
//! periodic reporter, a cron job printing the time on whole seconds, a
//! worker that needs the database and the cache, an external heartbeat
//! command (a `ProcessService`), and a `StatsReporter` logging the worker's
//! group every 2 s. Under systemd (`NOTIFY_SOCKET`) it notifies readiness,
//! stopping and watchdog pings. It starts them in
//! order, runs until Ctrl+C / SIGTERM or for a few seconds (`--for <ms>`,
//! 5000 by default; `--forever` waits for a signal), then stops them
//! dependents first (the services no one depends on together), printing
//! each step. `--stuck-stop` makes the worker's
//! stop hang, to show the forced exit (code 70) when the shutdown timeout
//! (`MACHINA_SHUTDOWN_TIMEOUT`, default 2s here) runs out. `--runtime
//! tokio|smol|async-std` picks the adapter (tokio by default): the stack is
//! the same code on each. `--own-tracing` sets up `tracing` in the program
//! itself (JSON lines), so the entrypoint's logging set-up stands aside.
//! `--load` adds a bot (a `BotService`) that queues 10 064 ten-second
//! calls into a group of 64 as it starts, to show a shutdown under load:
//! the bot's grace period (1 s) runs out, and every call is named as
//! cancelled.
//!
//! The stack serves `/healthz`, `/readyz` and `/metrics` (its stats, in
//! the Prometheus format) on every runtime (`--health <addr>`, any free
//! loopback port by default); on tokio it also serves an axum app
//! (`--http <addr>`) and gRPC with the standard health service
//! (`--grpc <addr>`). Each prints where it listens once the stack is up.
//!
//! Run: `cargo run --bin service_stack` (Ctrl+C to stop it early)

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use machina_tokio::BoxError;
use machina_tokio::bot::{BotService, Machina};
use machina_tokio::limit::{ConcurrentGroup, Limits};
use machina_tokio::net::HealthService;
use machina_tokio::rt::Runtime;
use machina_tokio::service::{
    EntrypointBuilder, FORCED_EXIT_CODE, Key, PeriodicService, ProcessService, Service,
    ServiceContext, ServiceFuture, StatsReporter, StopContext,
};
use machina_tokio::stats::Stats;

const DB_URL: Key<String> = Key::new("db_url");

struct Database(Runtime);

impl Service for Database {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            println!("db: connecting");
            self.0.sleep(Duration::from_millis(50)).await;
            ctx.context()
                .set(DB_URL, "postgres://localhost/app".to_owned());
            println!("db: ready");
            Ok(())
        })
    }

    fn stop(self: Arc<Self>, ctx: StopContext) -> ServiceFuture {
        let reason = ctx.reason().clone();
        Box::pin(async move {
            println!("db: closed ({reason:?})");
            Ok(())
        })
    }
}

struct Cache;

impl Service for Cache {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let url = ctx.context().get(DB_URL).await;
            println!("cache: warmed from {url}");
            Ok(())
        })
    }

    fn stop(self: Arc<Self>, ctx: StopContext) -> ServiceFuture {
        let reason = ctx.reason().clone();
        Box::pin(async move {
            println!("cache: stopped ({reason:?})");
            Ok(())
        })
    }
}

struct Worker {
    rt: Runtime,
    stuck_stop: bool,
    /// One batch at a time; the stats reporter logs its counters.
    batches: ConcurrentGroup,
}

impl Service for Worker {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            println!("worker: ready");
            ctx.ready();
            // Keeps working in the background until stopped.
            let mut n = 0u64;
            loop {
                let _permit = self.batches.acquire().await;
                self.rt.sleep(Duration::from_millis(300)).await;
                n += 1;
                println!("worker: processed batch {n}");
            }
        })
    }

    fn stop(self: Arc<Self>, ctx: StopContext) -> ServiceFuture {
        let reason = ctx.reason().clone();
        Box::pin(async move {
            if self.stuck_stop {
                println!("worker: stop hangs");
                self.rt.sleep(Duration::from_secs(3600)).await;
            }
            println!("worker: stopped ({reason:?})");
            Ok(())
        })
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let run_for = match flag("--for") {
        _ if args.iter().any(|a| a == "--forever") => None,
        Some(ms) => match ms.parse::<u64>() {
            Ok(ms) => Some(ms),
            Err(_) => {
                eprintln!("service_stack: --for takes milliseconds, not {ms:?}");
                return ExitCode::FAILURE;
            }
        },
        None => Some(5000),
    };
    let stuck_stop = args.iter().any(|a| a == "--stuck-stop");
    let load = args.iter().any(|a| a == "--load");
    let addr = |name: &str| flag(name).unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let health_addr = addr("--health");
    let (http_addr, grpc_addr) = (addr("--http"), addr("--grpc"));
    if args.iter().any(|a| a == "--own-tracing") {
        tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::stderr)
            .init();
    }
    let outcome = match flag("--runtime").as_deref().unwrap_or("tokio") {
        "tokio" => on_tokio(
            run_for,
            stuck_stop,
            load,
            &health_addr,
            &http_addr,
            &grpc_addr,
        ),
        "smol" => smol::block_on(async {
            run(
                machina_smol::entrypoint()?,
                machina_smol::runtime(),
                run_for,
                stuck_stop,
                load,
                &health_addr,
                Vec::new(),
            )
            .await
        }),
        "async-std" => async_std::task::block_on(async {
            run(
                machina_async_std::entrypoint()?,
                machina_async_std::runtime(),
                run_for,
                stuck_stop,
                load,
                &health_addr,
                Vec::new(),
            )
            .await
        }),
        other => Err(format!("unknown runtime {other:?}; use tokio, smol or async-std").into()),
    };
    match outcome {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(error) => {
            eprintln!("service_stack: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A network service of the stack: its name, the service, and where it
/// listens once started.
type Endpoint = (
    &'static str,
    Arc<dyn Service>,
    Box<dyn Fn() -> Option<SocketAddr> + Send + Sync>,
);

fn on_tokio(
    run_for: Option<u64>,
    stuck_stop: bool,
    load: bool,
    health_addr: &str,
    http_addr: &str,
    grpc_addr: &str,
) -> Result<i32, BoxError> {
    use machina_tokio::grpc::GrpcService;
    use machina_tokio::http::HttpService;

    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|| async { "hello from service_stack\n" }),
    );
    let web = HttpService::builder(http_addr, app).build()?;
    let grpc = GrpcService::builder(grpc_addr, tonic::service::Routes::default()).build()?;
    let (web_at, grpc_at) = (web.clone(), grpc.clone());
    let endpoints: Vec<Endpoint> = vec![
        ("http", Arc::new(web), Box::new(move || web_at.local_addr())),
        (
            "grpc",
            Arc::new(grpc),
            Box::new(move || grpc_at.local_addr()),
        ),
    ];
    tokio_rt.block_on(async {
        run(
            machina_tokio::entrypoint()?,
            machina_tokio::runtime()?,
            run_for,
            stuck_stop,
            load,
            health_addr,
            endpoints,
        )
        .await
    })
}

/// The bot of `--load`: 64 calls in flight and 10 000 queued as it starts.
fn loaded_bot(rt: &Runtime) -> Result<Machina, BoxError> {
    let mut bot = Machina::builder(rt);
    bot.group("api", Limits::new().max_in_flight(64))?;
    let call_rt = rt.clone();
    let call = bot
        .execute("call", move |n: u32| {
            let rt = call_rt.clone();
            async move {
                rt.sleep(Duration::from_secs(10)).await;
                Ok::<u32, BoxError>(n)
            }
        })
        .groups(["api"])
        .register()?;
    bot.on_startup(move |_bot| {
        let call = call.clone();
        async move {
            for n in 0..10_064 {
                call.spawn(n)?.detach();
            }
            println!("bot: 10064 calls spawned");
            Ok(())
        }
    });
    Ok(bot.build())
}

/// The stack, written once against the runtime boundary.
async fn run(
    entry: EntrypointBuilder,
    rt: Runtime,
    run_for: Option<u64>,
    stuck_stop: bool,
    load: bool,
    health_addr: &str,
    mut endpoints: Vec<Endpoint>,
) -> Result<i32, BoxError> {
    let reporter = PeriodicService::new("reporter", "200ms", || async {
        println!("reporter: tick");
        tracing::info!("reporter tick");
        Ok::<(), BoxError>(())
    })?;
    // A cron job on whole seconds, in calendar time.
    let clock_rt = rt.clone();
    let clock = PeriodicService::cron("clock", "* * * * * *", "UTC", move || {
        let now = clock_rt.calendar_now();
        async move {
            let since_epoch = now
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            println!(
                "clock: {}.{:03}",
                since_epoch.as_secs(),
                since_epoch.subsec_millis()
            );
            Ok::<(), BoxError>(())
        }
    })?;
    let batches = ConcurrentGroup::new(&rt, "batches", Limits::new().max_in_flight(1))?;
    let stats = Stats::new();
    stats.add_group(&batches);
    // Health, readiness and the stats for Prometheus, on any runtime; it
    // depends on nothing, so it starts first and stops last, and /readyz
    // says 503 from the moment the shutdown begins.
    let health = HealthService::builder(health_addr)
        .stats(stats.clone())
        .build()?;
    let health_at = health.clone();
    endpoints.insert(
        0,
        (
            "health",
            Arc::new(health),
            Box::new(move || health_at.local_addr()),
        ),
    );

    // An external command: it prints a heartbeat (logged under its
    // service's name) and ends by itself if this program goes away.
    let heartbeat = ProcessService::new("sh")
        .args([
            "-c",
            "while kill -0 $PPID 2>/dev/null; do echo beat; sleep 1; done",
        ])
        .stop_grace(Duration::from_millis(500));
    // Logs go to standard error (the adapters' entrypoint sets that up);
    // MACHINA_LOG_LEVEL and MACHINA_LOG_FORMAT (plain, color, json;
    // journald when built with `--features journald`) adjust them.
    let mut entry = entry;
    let mut addresses = Vec::new();
    for (name, service, at) in endpoints {
        entry = entry.service(name, service, &[]);
        addresses.push((name, at));
    }
    let addresses = Arc::new(addresses);
    let entrypoint = entry
        .shutdown_timeout(Duration::from_secs(2))
        .service("db", Database(rt.clone()), &[])
        .service("cache", Cache, &["db"])
        .service("reporter", reporter, &[])
        .service("clock", clock, &[])
        .service(
            "worker",
            Worker {
                rt: rt.clone(),
                stuck_stop,
                batches,
            },
            &["db", "cache"],
        )
        .service("heartbeat", heartbeat, &[])
        .service(
            "stats",
            StatsReporter::new(stats, Duration::from_secs(2)),
            &[],
        )
        .pre_start(|hook| async move { println!("starting: {:?}", hook.services()) })
        .post_start(move |_| {
            for (name, at) in addresses.iter() {
                if let Some(addr) = at() {
                    println!("{name}: listening on {addr}");
                }
            }
            async {}
        })
        .post_start(|hook| async move {
            let url = hook.context().try_get(DB_URL);
            println!(
                "all services ready: {:?} (db at {})",
                hook.services(),
                url.as_deref().map_or("?", String::as_str)
            );
        })
        .pre_stop(|_| async { println!("shutting down") })
        .post_stop(|hook| async move { println!("stopped, in order: {:?}", hook.services()) });
    let (entrypoint, bot) = if load {
        let bot = loaded_bot(&rt)?;
        let service = BotService::new(bot.clone(), Duration::from_secs(1));
        (entrypoint.service("bot", service, &[]), Some(bot))
    } else {
        (entrypoint, None)
    };
    let entrypoint = entrypoint.build()?;
    let outcome = match run_for {
        Some(ms) => entrypoint.run(rt.sleep(Duration::from_millis(ms))).await,
        None => entrypoint.run_forever().await,
    };
    if let Some(report) = bot.and_then(|bot| bot.last_shutdown()) {
        println!(
            "bot: {} finished, {} cancelled at shutdown",
            report.executes_finished.len(),
            report.executes_cancelled.len()
        );
    }
    println!("exit code {}", outcome.exit_code);
    if outcome.exit_code == FORCED_EXIT_CODE {
        // Something did not stop: leave now rather than wait for it while
        // the runtime shuts down.
        outcome.exit();
    }
    Ok(outcome.exit_code)
}
