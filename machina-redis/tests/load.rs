//! Three replica **processes** share one group of 10 in flight and 50
//! starts per second for 10 s, 20 callers each: in every 1 s window at
//! most 50 starts (from the starts each replica records, and from Redis'
//! own start log, sampled), never more than 10 leases held (sampled from
//! Redis), and the quota used to at least 95 %.

mod support;

use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use machina_core::limit::{Limiter, Limits};
use machina_redis::testing::RedisServer;
use machina_redis::{Redis, RedisGroup};

/// Where the child replicas find Redis.
const CHILD_URL: &str = "MACHINA_REDIS_LOAD_URL";
/// How long the load runs.
const RUN: Duration = Duration::from_secs(10);
/// Starts per second allowed.
const RATE: usize = 50;

fn limits() -> Limits {
    Limits::new()
        .max_in_flight(10)
        .max_starts(RATE as u32, Duration::from_secs(1))
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// A replica: 20 callers take a slot, hold it 20 ms, give it back, until
/// the run ends; it prints `start <µs since the epoch>` for every start.
#[test]
fn child_load_replica() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let tokio_rt = support::tokio(1);
    tokio_rt.block_on(async {
        let rt = machina_tokio::runtime().unwrap();
        let redis = Redis::open(&url).unwrap().prefix("load");
        let group = RedisGroup::builder(&redis, &rt, "api", limits())
            .build()
            .unwrap();
        let starts = Arc::new(Mutex::new(Vec::new()));
        let end = Instant::now() + RUN;
        let callers: Vec<_> = (0..20)
            .map(|_| {
                let (group, rt2, starts) = (group.clone(), rt.clone(), starts.clone());
                rt.spawn(async move {
                    while Instant::now() < end {
                        let Ok(Ok(permit)) =
                            rt2.timeout(end - Instant::now(), group.acquire()).await
                        else {
                            break;
                        };
                        starts.lock().unwrap().push(unix_micros());
                        rt2.sleep(Duration::from_millis(20)).await;
                        drop(permit);
                    }
                })
                .unwrap()
            })
            .collect();
        for caller in callers {
            caller.await.unwrap();
        }
        for start in starts.lock().unwrap().iter() {
            println!("start {start}");
        }
        println!("done");
    });
}

#[test]
fn three_replica_processes_share_fifty_starts_per_second() {
    let server = RedisServer::start().unwrap();
    let mut children: Vec<_> = (0..3)
        .map(|_| {
            support::child("child_load_replica", CHILD_URL, server.url())
                .spawn()
                .unwrap()
        })
        .collect();
    let readers: Vec<_> = children
        .iter_mut()
        .map(|child| {
            let stdout = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                BufReader::new(stdout)
                    .lines()
                    .map_while(Result::ok)
                    .filter_map(|line| {
                        let words: Vec<&str> = line.split_whitespace().collect();
                        match words[..] {
                            [.., "start", at] => at.parse::<u64>().ok(),
                            _ => None,
                        }
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();

    // Redis' own view, sampled while the load runs.
    let tokio_rt = support::tokio(0);
    let (most_in_window, most_leases) = tokio_rt.block_on(async {
        let redis = Redis::open(server.url()).unwrap().prefix("load");
        let keys = redis.keys().group("api");
        let mut connection = redis.connection().await.unwrap();
        let (mut window, mut leases) = (0usize, 0usize);
        let until = Instant::now() + RUN + Duration::from_secs(2);
        while Instant::now() < until {
            let now_us = unix_micros();
            let (in_window, held): (usize, usize) = redis::pipe()
                .cmd("ZCOUNT")
                .arg(&keys.starts)
                .arg(now_us.saturating_sub(1_000_000) + 1)
                .arg("+inf")
                .cmd("ZCOUNT")
                .arg(&keys.leases)
                .arg(now_us)
                .arg("+inf")
                .query_async(&mut connection)
                .await
                .unwrap();
            window = window.max(in_window);
            leases = leases.max(held);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (window, leases)
    });
    let mut starts: Vec<u64> = readers
        .into_iter()
        .flat_map(|reader| reader.join().unwrap())
        .collect();
    for child in &mut children {
        assert!(child.wait().unwrap().success());
    }
    starts.sort_unstable();

    assert!(
        most_in_window <= RATE,
        "Redis' log held {most_in_window} starts in 1 s"
    );
    assert!(most_leases <= 10, "Redis held {most_leases} leases");
    // Stamped after the answer: allow 50 ms of noise at the window's edge
    // (Redis' own log, above, is exact).
    for (i, &start) in starts.iter().enumerate() {
        let within = starts[i..]
            .iter()
            .take_while(|&&s| s < start + 950_000)
            .count();
        assert!(within <= RATE, "{within} starts within 1 s of start {i}");
    }
    // The quota from the first start to the last: 50 at once, then 50
    // more every second.
    let span = starts.last().unwrap() - starts.first().unwrap();
    let quota = RATE * (span / 1_000_000 + 1) as usize;
    let used = starts.len() as f64 / quota as f64;
    assert!(
        used >= 0.95,
        "{} starts of a quota of {quota} ({:.1} %)",
        starts.len(),
        used * 100.0
    );
    assert!(
        starts.len() <= quota,
        "{} starts over a quota of {quota}",
        starts.len()
    );
    eprintln!(
        "3 replicas, {} s: {} starts ({:.1} % of the quota), at most {most_in_window} in Redis' 1 s window, at most {most_leases} leases",
        RUN.as_secs(),
        starts.len(),
        used * 100.0
    );
}
