//! Shared groups against a real `redis-server` (one per test, on a free
//! loopback port), on every real runtime: replicas — each a `RedisGroup`
//! with its own connection — share one in-flight cap and one window; a
//! dead replica's slots come back within the lease TTL and a live one's
//! never expire; a release wakes a waiter on another replica at once;
//! Redis going away fails closed, waits, or falls back to a local group,
//! as configured, and leaks no slot; a password in the URL works and is
//! never printed.

mod support;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use machina_core::decision::Reason;
use machina_core::limit::{ConcurrentGroup, Limiter, LimiterError, Limits};
use machina_core::waits::Wait;
use machina_redis::testing::RedisServer;
use machina_redis::{OnUnavailable, Redis, RedisGroup};
use machina_test::real_runtimes;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The lease TTL of the replicas here: short, so the tests are quick, yet
/// three renewal periods of 200 ms, so a loaded machine does not lose a
/// live lease.
const LEASE_TTL_MS: u64 = 600;

/// A replica's view of the group: its own `Redis` (so its own connection)
/// and its own `RedisGroup`.
fn replica(server: &RedisServer, rt: &machina_test::Runtime, limits: Limits) -> RedisGroup {
    let redis = Redis::open(server.url()).unwrap().prefix("test");
    RedisGroup::builder(&redis, rt, "api", limits)
        .lease_ttl(ms(LEASE_TTL_MS))
        .build()
        .unwrap()
}

real_runtimes! {
    /// Three replicas, eight calls each, one group of 3 in flight and 12
    /// starts per 300 ms: never more than 3 running, never more than 12
    /// starts in any 300 ms, and every call served.
    async fn replicas_share_the_in_flight_cap_and_the_window(rt: Runtime, env: Env) {
        let server = RedisServer::start().unwrap();
        let limits = Limits::new().max_in_flight(3).max_starts(12, ms(300));
        let running = Arc::new(AtomicU32::new(0));
        let most = Arc::new(AtomicU32::new(0));
        let starts = Arc::new(Mutex::new(Vec::new()));
        let mut calls = Vec::new();
        let t0 = rt.now();
        for _ in 0..3 {
            let group = replica(&server, &rt, limits);
            for _ in 0..8 {
                let (group, rt2) = (group.clone(), rt.clone());
                let (running, most, starts) = (running.clone(), most.clone(), starts.clone());
                calls.push(rt.spawn(async move {
                    let permit = group.acquire().await.unwrap();
                    starts.lock().unwrap().push(rt2.now());
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    rt2.sleep(ms(20)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    drop(permit);
                }).unwrap());
            }
        }
        for call in calls {
            call.await.unwrap();
        }
        assert!(most.load(Ordering::SeqCst) <= 3, "{} ran at once", most.load(Ordering::SeqCst));
        let mut starts = starts.lock().unwrap().clone();
        starts.sort();
        assert_eq!(starts.len(), 24);
        // Starts are stamped here, after the answer: allow 50 ms of
        // scheduling noise at the window's edge (Redis' own log is checked
        // exactly by the load test).
        for (i, &start) in starts.iter().enumerate() {
            let within = starts[i..].iter().take_while(|&&s| s < start + ms(250)).count();
            assert!(within <= 12, "{within} starts within 300 ms of start {i}");
        }
        // 24 starts at 12 per 300 ms cannot all happen in less than 300 ms.
        assert!(rt.now() - t0 >= ms(300), "{:?}", rt.now() - t0);
    }

    /// A replica process killed with SIGKILL while it holds all ten slots
    /// gives them back within the TTL (plus one renewal period); a live
    /// replica that holds a slot three TTLs long keeps it.
    async fn a_killed_replicas_slots_return_within_the_ttl_a_live_ones_never(rt: Runtime, env: Env) {
        let server = RedisServer::start().unwrap();
        let limits = Limits::new().max_in_flight(10);
        let survivor = replica(&server, &rt, limits);
        let mut child = support::child("child_replica_holding_ten_slots", CHILD_URL, server.url())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
        assert!(
            lines.any(|line| line.is_ok_and(|line| line.contains("holding ten slots"))),
            "the child replica never took its slots"
        );
        let refused = survivor.try_acquire().await.unwrap_err();
        assert_eq!(refused.refusal().reason, Reason::InFlight);
        child.kill().unwrap(); // SIGKILL: nothing released, nothing renewed
        child.wait().unwrap();
        let died = rt.now();
        let mut back = Vec::new();
        for _ in 0..10 {
            back.push(survivor.acquire().await.unwrap());
        }
        let took = rt.now() - died;
        // Within the TTL plus one renewal period (200 ms), with 300 ms of
        // slack for a loaded machine.
        assert!(
            took <= ms(LEASE_TTL_MS + 200 + 300),
            "the ten slots came back after {took:?}"
        );
        drop(back);

        // A live holder: renewed every 200 ms, held for three TTLs.
        let holder = replica(&server, &rt, Limits::new().max_in_flight(1));
        let other = replica(&server, &rt, Limits::new().max_in_flight(1));
        let held = holder.acquire().await.unwrap();
        let until = rt.now() + ms(3 * LEASE_TTL_MS);
        while rt.now() < until {
            assert!(other.try_acquire().await.is_err(), "a live replica's lease expired");
            rt.sleep(ms(50)).await;
        }
        drop(held);
        let freed = rt.now();
        let next = other.acquire().await.unwrap();
        assert!(rt.now() - freed < ms(LEASE_TTL_MS), "the released slot took {:?}", rt.now() - freed);
        drop(next);
    }

    /// With a 10 s TTL, a waiter on one replica gets the slot another
    /// replica releases at once: woken by the release's message, not by
    /// the lease's expiry.
    async fn a_release_wakes_a_waiter_on_another_replica(rt: Runtime, env: Env) {
        let server = RedisServer::start().unwrap();
        let redis = Redis::open(server.url()).unwrap();
        let build = || {
            RedisGroup::builder(&redis, &rt, "one", Limits::new().max_in_flight(1))
                .lease_ttl(Duration::from_secs(10))
                .build()
                .unwrap()
        };
        let (a, b) = (build(), build());
        let held = a.acquire().await.unwrap();
        // Let b's subscription settle, then make b wait.
        rt.sleep(ms(100)).await;
        let waiter = {
            let (b, rt2) = (b.clone(), rt.clone());
            rt.spawn(async move {
                let permit = b.acquire().await.unwrap();
                (rt2.now(), permit)
            })
            .unwrap()
        };
        rt.sleep(ms(100)).await;
        let released = rt.now();
        drop(held);
        let (got, permit) = waiter.await.unwrap();
        assert!(got - released < ms(1000), "woken {:?} after the release", got - released);
        assert!(b.stats().notifications >= 1, "{:?}", b.stats());
        assert_eq!(b.stats().granted, 1);
        drop(permit);
    }

    /// Redis down: fail closed refuses with `Unavailable`; the local
    /// fallback serves from its own group; waiting serves once Redis is
    /// back. Afterwards every slot is free again (nothing leaked).
    async fn an_unreachable_redis_fails_closed_falls_back_or_waits(rt: Runtime, env: Env) {
        let mut server = RedisServer::start().unwrap();
        if !server.is_own() {
            return; // an external Redis is not ours to stop
        }
        let redis = Redis::open(server.url())
            .unwrap()
            .connect_timeout(ms(200))
            .response_timeout(ms(200));
        let limits = Limits::new().max_in_flight(1);
        let closed = RedisGroup::builder(&redis, &rt, "g", limits).build().unwrap();
        let local = ConcurrentGroup::new(&rt, "g-local", Limits::new().max_in_flight(1)).unwrap();
        let fallback = RedisGroup::builder(&redis, &rt, "g", limits)
            .on_unavailable(OnUnavailable::FallbackLocal(local.clone()))
            .build()
            .unwrap();
        let patient = RedisGroup::builder(&redis, &rt, "g", limits)
            .on_unavailable(OnUnavailable::Wait(Wait::Fixed(ms(50))))
            .build()
            .unwrap();
        // Up: one lease, given back.
        drop(closed.acquire().await.unwrap());

        server.kill().unwrap();
        match closed.try_acquire().await {
            Err(LimiterError::Unavailable { error, .. }) => {
                assert!(error.to_string().contains("unavailable"), "{error}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert!(matches!(closed.acquire().await, Err(LimiterError::Unavailable { .. })));
        let local_permit = fallback.acquire().await.unwrap();
        assert!(local.try_acquire().is_err(), "the fallback took the local slot");
        assert_eq!(fallback.stats().fallbacks, 1);
        drop(local_permit);

        let waiting = {
            let (patient, rt2) = (patient.clone(), rt.clone());
            rt.spawn(async move {
                let permit = patient.acquire().await.unwrap();
                (rt2.now(), permit)
            })
            .unwrap()
        };
        rt.sleep(ms(300)).await;
        let resumed = Instant::now();
        server.resume().unwrap();
        let (_, permit) = waiting.await.unwrap();
        assert!(resumed.elapsed() < Duration::from_secs(3));
        drop(permit);
        // Every slot free again: the cap of 1 admits a call at once.
        let mut admitted = false;
        for _ in 0..100 {
            if let Ok(permit) = closed.try_acquire().await {
                drop(permit);
                admitted = true;
                break;
            }
            rt.sleep(ms(10)).await;
        }
        assert!(admitted, "a slot leaked across the outage");
    }
}

/// Where the child replica finds Redis.
const CHILD_URL: &str = "MACHINA_REDIS_CHILD_URL";

/// The replica that is killed: run as a child process of this test binary
/// by `a_killed_replicas_slots_return_within_the_ttl_a_live_ones_never`;
/// on its own (no `MACHINA_REDIS_CHILD_URL`) it does nothing.
#[test]
fn child_replica_holding_ten_slots() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let tokio_rt = support::tokio(0);
    tokio_rt.block_on(async {
        let rt = machina_tokio::runtime().unwrap();
        let redis = Redis::open(&url).unwrap().prefix("test");
        let group = RedisGroup::builder(&redis, &rt, "api", Limits::new().max_in_flight(10))
            .lease_ttl(ms(LEASE_TTL_MS))
            .build()
            .unwrap();
        let mut held = Vec::new();
        for _ in 0..10 {
            held.push(group.acquire().await.unwrap());
        }
        println!("holding ten slots");
        std::future::pending::<()>().await;
    });
}

/// A password in the URL works, and neither `Debug` nor an error prints
/// it.
#[test]
fn a_password_in_the_url_works_and_is_never_printed() {
    let server = RedisServer::start_with_password("s3cret-pw").unwrap();
    if !server.is_own() {
        return;
    }
    let port = server.port().unwrap();
    let tokio_rt = support::tokio(0);
    tokio_rt.block_on(async {
        let good = Redis::open(server.url()).unwrap();
        good.ping().await.unwrap();
        assert!(!format!("{good:?}").contains("s3cret"));
        let bad = Redis::open(&format!("redis://:wrong-pw@127.0.0.1:{port}/")).unwrap();
        let err = bad.ping().await.unwrap_err();
        assert!(!err.to_string().contains("wrong-pw"), "{err}");
        let none = Redis::open(&format!("redis://127.0.0.1:{port}/")).unwrap();
        assert!(none.ping().await.is_err());
    });
}

/// An acquire cancelled while Redis is slow (its answer never read) leaks
/// no slot: the lease it may have been granted is released as soon as
/// Redis answers, long before its 30 s TTL.
#[test]
fn a_cancelled_acquire_leaks_no_slot() {
    let server = RedisServer::start().unwrap();
    if !server.is_own() {
        return;
    }
    let tokio_rt = support::tokio(2);
    tokio_rt.block_on(async {
        let rt = machina_tokio::runtime().unwrap();
        let redis = Redis::open(server.url()).unwrap().prefix("cancel");
        let build = |redis: &Redis| {
            RedisGroup::builder(redis, &rt, "one", Limits::new().max_in_flight(1))
                .lease_ttl(Duration::from_secs(30))
                .build()
                .unwrap()
        };
        let group = build(&redis);
        // Connected, and the script loaded, first: so that the acquire
        // below is sent and runs once Redis wakes (not stuck connecting,
        // nor answered NOSCRIPT).
        drop(group.acquire().await.unwrap());
        tokio::time::sleep(ms(50)).await;
        // Redis stalls for 500 ms (from another connection).
        let sleeper = Redis::open(server.url()).unwrap();
        let stall = tokio::spawn(async move {
            let mut connection = sleeper.connection().await.unwrap();
            let _: () = redis::cmd("DEBUG")
                .arg("SLEEP")
                .arg("0.5")
                .query_async(&mut connection)
                .await
                .unwrap();
        });
        tokio::time::sleep(ms(50)).await;
        let cancelled = rt.timeout(ms(100), group.acquire()).await;
        assert!(cancelled.is_err(), "the acquire should have been cut off");
        stall.await.unwrap();
        let other = build(&Redis::open(server.url()).unwrap().prefix("cancel"));
        let mut admitted = false;
        for _ in 0..100 {
            if let Ok(permit) = other.try_acquire().await {
                drop(permit);
                admitted = true;
                break;
            }
            tokio::time::sleep(ms(10)).await;
        }
        assert!(admitted, "the cancelled acquire's lease leaked");
    });
}

/// A `rediss://` URL with a password: TLS against the server's own
/// certificate works (a ping, a shared group's decision); the public roots
/// alone do not trust it; the password is never printed.
#[cfg(feature = "tls")]
#[test]
fn tls_with_a_password_works() {
    let server = match RedisServer::start_with_tls("tls-pw") {
        Ok(server) => server,
        Err(error) if std::env::var(machina_redis::testing::REDIS_URL_VAR).is_ok() => {
            eprintln!("skipped: {error}");
            return;
        }
        Err(error) => panic!("{error}"),
    };
    assert!(server.url().starts_with("rediss://"));
    let certificate = server.certificate().unwrap();
    let tokio_rt = support::tokio(0);
    tokio_rt.block_on(async {
        let rt = machina_tokio::runtime().unwrap();
        let redis = Redis::open_tls(server.url(), &certificate).unwrap();
        redis.ping().await.unwrap();
        assert!(!format!("{redis:?}").contains("tls-pw"));
        let group = RedisGroup::builder(&redis, &rt, "tls", Limits::new().max_in_flight(1))
            .build()
            .unwrap();
        drop(group.try_acquire().await.unwrap());
        let untrusted = Redis::open(server.url()).unwrap();
        let err = untrusted.ping().await.unwrap_err();
        assert!(!err.to_string().contains("tls-pw"), "{err}");
    });
}
