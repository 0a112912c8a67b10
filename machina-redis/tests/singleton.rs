//! Singleton emits against a real `redis-server`: with three replicas the
//! emit ticks once per period, on one replica; a leader that stops hands
//! over at once, a leader process killed with SIGKILL is replaced within
//! the lease TTL; tick numbers never repeat and fencing tokens only grow,
//! and a stale leader's fenced write is refused.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use machina_core::bot::{Admission, Event, Machina, TickGate};
use machina_core::rt::MissedTick;
use machina_core::schedule::Schedule;
use machina_redis::testing::RedisServer;
use machina_redis::{Redis, Singleton};
use machina_test::real_runtimes;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One run of the emit, as a replica saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    replica: usize,
    tick: u64,
    token: u64,
}

/// Tick numbers are consecutive (none repeated, none lost), and tokens
/// never go down.
fn check_runs(runs: &[Run]) {
    assert!(!runs.is_empty());
    for pair in runs.windows(2) {
        assert_eq!(pair[1].tick, pair[0].tick + 1, "{runs:?}");
        assert!(pair[1].token >= pair[0].token, "{runs:?}");
    }
}

real_runtimes! {
    /// Three replicas, a 100 ms emit: about one run per period, all on
    /// the leader; when the leader stops, another replica runs the next
    /// tick (the lease is resigned, not left to expire).
    async fn three_replicas_tick_once_per_period_and_hand_over_on_stop(rt: Runtime, env: Env) {
        let server = RedisServer::start().unwrap();
        let runs = Arc::new(Mutex::new(Vec::<Run>::new()));
        let mut bots = Vec::new();
        for replica in 0..3 {
            let redis = Redis::open(server.url()).unwrap().prefix("single");
            let gate = Singleton::builder(&redis, &rt, "report", ms(100))
                .lease_ttl(ms(2000))
                .build()
                .unwrap();
            let mut bot = Machina::builder(&rt);
            let seen = runs.clone();
            bot.emit("report", Schedule::fixed_rate("100ms", MissedTick::Skip).unwrap())
                .unwrap()
                .gate(gate)
                .register(move |event: Event| {
                    let seen = seen.clone();
                    async move {
                        let fence = event.fence().unwrap();
                        seen.lock().unwrap().push(Run { replica, tick: fence.tick, token: fence.token });
                    }
                })
                .unwrap();
            let bot = bot.build();
            let running = bot.clone();
            let run = rt.spawn(async move { running.run().await }).unwrap();
            bots.push(Some((bot, run)));
        }
        rt.sleep(ms(1000)).await;
        let leader = runs.lock().unwrap().last().expect("no run in 1 s").replica;
        let stopped = rt.now();
        let (bot, run) = bots[leader].take().unwrap();
        bot.shutdown(ms(200)).await;
        run.await.unwrap().unwrap();
        drop(bot); // the last handle on its gate: the lease is resigned
        let before = runs.lock().unwrap().clone();
        check_runs(&before);
        // 10 periods: about 10 runs (the first replica may start late).
        assert!((5..=12).contains(&before.len()), "{} runs in 1 s: {before:?}", before.len());
        assert!(before.iter().all(|r| r.replica == leader), "two replicas ran: {before:?}");

        rt.sleep(ms(700)).await;
        let after = runs.lock().unwrap().clone();
        check_runs(&after);
        let new = &after[before.len()..];
        assert!(!new.is_empty(), "nobody took over: {after:?}");
        assert!(new.iter().all(|r| r.replica != leader), "{after:?}");
        assert!(new[0].token > before.last().unwrap().token, "{after:?}");
        // Resigned: the next tick of another replica, not the 2 s TTL.
        assert!(new.len() >= 3, "took over late: {} runs in 700 ms after {:?}", new.len(), rt.now() - stopped);
        for (bot, run) in bots.into_iter().flatten() {
            bot.shutdown(ms(200)).await;
            run.await.unwrap().unwrap();
        }
    }
}

/// A leader cut off long enough to lose its lease: the new leader's token
/// is larger, and the old one's fenced write is refused.
#[test]
fn a_stale_leaders_fenced_write_is_refused() {
    let server = RedisServer::start().unwrap();
    let tokio_rt = support::tokio(2);
    tokio_rt.block_on(async {
        let rt = machina_tokio::runtime().unwrap();
        let redis = Redis::open(server.url()).unwrap().prefix("fence");
        let old = Singleton::builder(&redis, &rt, "e", ms(100))
            .build()
            .unwrap();
        let new = Singleton::builder(&redis, &rt, "e", ms(100))
            .build()
            .unwrap();
        let Admission::Run(stale) = old.admit("e").await.unwrap() else {
            panic!("the first replica to ask should lead");
        };
        assert_eq!(new.admit("e").await.unwrap(), Admission::Skip);
        // The old leader's lease runs out (it was cut off): the key goes.
        let mut connection = redis.connection().await.unwrap();
        let _: () = redis::cmd("DEL")
            .arg(&old.keys().leader)
            .query_async(&mut connection)
            .await
            .unwrap();
        tokio::time::sleep(ms(60)).await; // past half a period
        let Admission::Run(fresh) = new.admit("e").await.unwrap() else {
            panic!("the second replica should take over");
        };
        assert!(fresh.token > stale.token);
        assert_eq!(fresh.tick, stale.tick + 1);
        assert_eq!(new.current_token().await.unwrap(), fresh.token);
        let key = "{fence:emit:e}:state";
        assert!(!old.fenced_hset(stale, key, "owner", "old").await.unwrap());
        assert!(new.fenced_hset(fresh, key, "owner", "new").await.unwrap());
        // And the old replica, asking again, does not lead.
        assert_eq!(old.admit("e").await.unwrap(), Admission::Skip);
        assert!(!old.is_leader());
    });
}

/// Where the child replicas find Redis.
const CHILD_URL: &str = "MACHINA_REDIS_SINGLETON_URL";
/// Which replica a child is.
const CHILD_INDEX: &str = "MACHINA_REDIS_SINGLETON_INDEX";

/// A replica process: run by `a_killed_leader_is_replaced_within_the_ttl`
/// as a child of this test binary; alone (no `MACHINA_REDIS_SINGLETON_URL`)
/// it does nothing. Prints `run <replica> <tick> <token>` for each run.
#[test]
fn child_singleton_replica() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let replica: usize = std::env::var(CHILD_INDEX).unwrap().parse().unwrap();
    let tokio_rt = support::tokio(1);
    tokio_rt.block_on(async {
        let rt = machina_tokio::runtime().unwrap();
        let redis = Redis::open(&url).unwrap().prefix("killed");
        let gate = Singleton::builder(&redis, &rt, "report", ms(100))
            .lease_ttl(ms(600))
            .build()
            .unwrap();
        let mut bot = Machina::builder(&rt);
        bot.emit(
            "report",
            Schedule::fixed_rate("100ms", MissedTick::Skip).unwrap(),
        )
        .unwrap()
        .gate(gate)
        .register(move |event: Event| async move {
            let fence = event.fence().unwrap();
            println!("run {replica} {} {}", fence.tick, fence.token);
        })
        .unwrap();
        let bot = bot.build();
        bot.run().await.unwrap();
    });
}

/// Starts replica `index` and forwards its runs to `runs`.
fn spawn_replica(url: &str, index: usize, runs: mpsc::Sender<(Instant, Run)>) -> Child {
    let mut child = support::child("child_singleton_replica", CHILD_URL, url)
        .env(CHILD_INDEX, index.to_string())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // The first run shares its line with libtest's "test … ".
            let words: Vec<&str> = line.split_whitespace().collect();
            if let [.., "run", replica, tick, token] = words[..] {
                let run = Run {
                    replica: replica.parse().unwrap(),
                    tick: tick.parse().unwrap(),
                    token: token.parse().unwrap(),
                };
                let _ = runs.send((Instant::now(), run));
            }
        }
    });
    child
}

/// Three replica processes; the leader is killed with SIGKILL: another
/// replica runs the emit within the lease TTL (600 ms) plus a period, with
/// a larger token, and no tick number is run twice (the killed leader may
/// have taken a tick or two it never got to report).
#[test]
fn a_killed_leader_is_replaced_within_the_ttl() {
    let server = RedisServer::start().unwrap();
    let (tx, rx) = mpsc::channel();
    let mut children: Vec<Child> = (0..3)
        .map(|i| spawn_replica(server.url(), i, tx.clone()))
        .collect();
    let collect = |until: Instant, into: &mut Vec<(Instant, Run)>| {
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            if let Ok(run) = rx.recv_timeout(left) {
                into.push(run);
            }
        }
    };
    let mut runs = Vec::new();
    collect(Instant::now() + Duration::from_millis(1500), &mut runs);
    assert!(runs.len() >= 5, "too few runs before the kill: {runs:?}");
    let leader = runs.last().unwrap().1.replica;
    children[leader].kill().unwrap();
    children[leader].wait().unwrap();
    let killed = Instant::now();
    let before = runs.len();
    collect(killed + Duration::from_millis(1500), &mut runs);
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    let plain: Vec<Run> = runs.iter().map(|(_, run)| *run).collect();
    // The killed leader may have taken a tick or two whose lines it never
    // got out: numbers may be missing at the kill, none elsewhere, and
    // none is ever run twice.
    check_runs(&plain[..before]);
    check_runs(&plain[before..]);
    let skipped = plain[before].tick - plain[before - 1].tick;
    assert!((1..=3).contains(&skipped), "{plain:?}");
    let (first_at, first) = runs[before..].first().copied().expect("nobody took over");
    assert_ne!(first.replica, leader);
    assert!(first.token > plain[before - 1].token);
    let gap = first_at - killed;
    assert!(
        gap <= Duration::from_millis(600 + 100 + 300),
        "took over after {gap:?}"
    );
}
