//! Three processes of one bot sharing Redis: one concurrent group (3 in
//! flight, 10 starts per second, kept in Redis) and one singleton emit
//! (a report every second, run by whichever replica leads). Each replica
//! prints what it ran; at the end each prints its totals, and the group's
//! limit held across all three.
//!
//! Run: `cargo run --example replicas` — it starts a `redis-server` of its
//! own on a free port (Debian: `sudo apt-get install -y redis-server`), or
//! uses `--redis redis://127.0.0.1:6379/` (or `MACHINA_REDIS_URL`).
//! `--seconds N` (default 4) sets how long the replicas run.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use machina_core::BoxError;
use machina_core::bot::{Event, Machina};
use machina_core::limit::Limits;
use machina_core::rt::MissedTick;
use machina_core::schedule::Schedule;
use machina_redis::testing::RedisServer;
use machina_redis::{Redis, RedisGroup, Singleton};

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let seconds: u64 = value("--seconds").map_or(Ok(4), |s| s.parse())?;
    if let Some(index) = value("--replica") {
        let url = value("--redis").ok_or("a replica needs --redis")?;
        return replica(index.parse()?, &url, seconds);
    }

    // The parent: a Redis, then three replicas of this program.
    let (_server, url) = match value("--redis").or_else(|| std::env::var("MACHINA_REDIS_URL").ok())
    {
        Some(url) => (None, url),
        None => {
            let server = RedisServer::start()
                .map_err(|e| format!("{e}; or pass --redis redis://host:port/"))?;
            let url = server.url().to_owned();
            println!("started redis-server at {url}");
            (Some(server), url)
        }
    };
    let exe = std::env::current_exe()?;
    let children: Vec<_> = (1..=3)
        .map(|index| {
            Command::new(&exe)
                .args(["--replica", &index.to_string(), "--redis", &url])
                .args(["--seconds", &seconds.to_string()])
                .stdout(Stdio::inherit())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    for mut child in children {
        child.wait()?;
    }
    println!(
        "done: at most 10 fetches started per second across the three replicas, 3 at a time, and one report per second"
    );
    Ok(())
}

/// One replica: the bot, for `seconds`.
fn replica(index: u32, url: &str, seconds: u64) -> Result<(), BoxError> {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    tokio_rt.block_on(async move {
        let rt = machina_tokio::runtime()?;
        let redis = Redis::open(url)?.prefix("replicas-example");
        let api = RedisGroup::builder(
            &redis,
            &rt,
            "api",
            Limits::new()
                .max_in_flight(3)
                .max_starts(10, Duration::from_secs(1)),
        )
        .lease_ttl(Duration::from_secs(2))
        .build()?;
        let report = Singleton::builder(&redis, &rt, "report", Duration::from_secs(1))
            .lease_ttl(Duration::from_secs(2))
            .build()?;

        let fetched = Arc::new(AtomicU64::new(0));
        let reports = Arc::new(AtomicU64::new(0));
        let t0 = rt.now();
        let mut bot = Machina::builder(&rt);
        bot.group("api", api)?;
        let (counter, clock) = (fetched.clone(), rt.clone());
        let fetch = bot
            .execute("fetch", move |n: u64| {
                let (counter, clock) = (counter.clone(), clock.clone());
                async move {
                    counter.fetch_add(1, Ordering::Relaxed);
                    let at = (clock.now() - t0).as_millis();
                    println!("[replica {index}] {at:>5} ms  fetch #{n}");
                    clock.sleep(Duration::from_millis(150)).await;
                    Ok::<_, std::io::Error>(())
                }
            })
            .groups(["api"])
            .register()?;
        // Every replica wants to fetch 8 times a second; together they may
        // start only 10.
        bot.emit("work", Schedule::fixed_rate("125ms", MissedTick::Skip)?)?
            .register(move |event: Event| {
                let task = fetch.spawn(event.epoch());
                async move {
                    task?.detach();
                    Ok::<(), BoxError>(())
                }
            })?;
        let (counter, clock) = (reports.clone(), rt.clone());
        bot.emit("report", Schedule::fixed_rate("1s", MissedTick::Skip)?)?
            .gate(report)
            .register(move |event: Event| {
                counter.fetch_add(1, Ordering::Relaxed);
                let fence = event.fence().expect("a gated emit has a fence");
                let at = (clock.now() - t0).as_millis();
                println!(
                    "[replica {index}] {at:>5} ms  REPORT tick {} (leader token {})",
                    fence.tick, fence.token
                );
                async {}
            })?;
        let bot = bot.build();
        let running = {
            let bot = bot.clone();
            rt.spawn(async move { bot.run().await })?
        };
        rt.sleep(Duration::from_secs(seconds)).await;
        bot.shutdown(Duration::from_secs(1)).await;
        let _ = running.await;
        println!(
            "[replica {index}] ran {} fetches and {} reports",
            fetched.load(Ordering::Relaxed),
            reports.load(Ordering::Relaxed)
        );
        Ok(())
    })
}
