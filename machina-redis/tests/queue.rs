//! The shared execute queue against a real `redis-server`: calls run on a
//! consumer and return their results (or the execute's error); an entry
//! nobody can run goes to the dead-letter stream and its caller is told; a
//! full queue refuses; a consumer process killed with SIGKILL leaves its
//! entries pending, and another replica claims and handles each; an entry
//! delivered too often is dead-lettered; with AOF on, entries survive a
//! Redis restart.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use machina_core::bot::{Execute, Machina};
use machina_redis::testing::RedisServer;
use machina_redis::{QueueConsumer, QueueError, Redis, RedisQueue};
use machina_test::real_runtimes;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A bot with `double` (u64 → u64), `fail` (always an error) and `record`
/// (notes its argument in `seen`).
/// The test bot and its three executes.
struct TestBot {
    _bot: Machina,
    double: Execute<u64, u64>,
    fail: Execute<u64, ()>,
    record: Execute<u64, ()>,
}

fn bot(rt: &machina_test::Runtime, seen: Arc<Mutex<Vec<u64>>>) -> TestBot {
    let mut bot = Machina::builder(rt);
    let double = bot
        .execute(
            "double",
            |n: u64| async move { Ok::<_, std::io::Error>(n * 2) },
        )
        .register()
        .unwrap();
    let fail = bot
        .execute("fail", |n: u64| async move {
            Err::<(), _>(std::io::Error::other(format!("no luck with {n}")))
        })
        .register()
        .unwrap();
    let record = bot
        .execute("record", move |n: u64| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(n);
                Ok::<_, std::io::Error>(())
            }
        })
        .register()
        .unwrap();
    TestBot {
        _bot: bot.build(),
        double,
        fail,
        record,
    }
}

async fn dead_letters(redis: &Redis, queue: &RedisQueue) -> usize {
    let mut connection = redis.connection().await.unwrap();
    redis::cmd("XLEN")
        .arg(&queue.keys().dead)
        .query_async(&mut connection)
        .await
        .unwrap()
}

real_runtimes! {
    /// Calls and submits through the queue, run by a consumer on the same
    /// replica: results, the execute's error, dead letters.
    async fn calls_run_on_a_consumer_and_return_their_results(rt: Runtime, env: Env) {
        let server = RedisServer::start().unwrap();
        let redis = Redis::open(server.url()).unwrap().prefix("q");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let TestBot { _bot, double, fail, record } = bot(&rt, seen.clone());
        let queue = RedisQueue::builder(&redis, &rt, "jobs").build().unwrap();
        queue.handle(&double).unwrap();
        queue.handle(&fail).unwrap();
        queue.handle(&record).unwrap();
        assert!(matches!(queue.handle(&double), Err(QueueError::Duplicate { .. })));
        let consumer = Arc::new(queue.consumer());
        consumer.prepare().await.unwrap();
        let running = {
            let consumer = consumer.clone();
            rt.spawn(async move { consumer.run().await }).unwrap()
        };

        let four: u64 = queue.call("double", &2u64).await.unwrap();
        assert_eq!(four, 4);
        match queue.call::<_, ()>("fail", &7u64).await {
            Err(QueueError::Failed { execute, message }) => {
                assert_eq!(execute, "fail");
                assert!(message.contains("no luck with 7"), "{message}");
            }
            other => panic!("expected Failed, got {other:?}"),
        }
        match queue.call::<_, u64>("triple", &1u64).await {
            Err(QueueError::DeadLettered { reason, .. }) => assert!(reason.contains("triple"), "{reason}"),
            other => panic!("expected DeadLettered, got {other:?}"),
        }
        match queue.call::<_, u64>("double", "two").await {
            Err(QueueError::DeadLettered { reason, .. }) => assert!(reason.contains("decode"), "{reason}"),
            other => panic!("expected DeadLettered, got {other:?}"),
        }
        assert_eq!(dead_letters(&redis, &queue).await, 2);
        // Fire and forget: every one handled.
        for n in 0..20u64 {
            queue.submit("record", &n).await.unwrap();
        }
        for _ in 0..200 {
            if seen.lock().unwrap().len() == 20 {
                break;
            }
            rt.sleep(ms(10)).await;
        }
        let mut got = seen.lock().unwrap().clone();
        got.sort();
        assert_eq!(got, (0..20).collect::<Vec<_>>());
        consumer.stop().await;
        running.await.unwrap();
        let stats = queue.stats();
        assert_eq!((stats.handled, stats.failed, stats.dead_lettered), (22, 1, 2), "{stats:?}");
        assert_eq!(stats.acknowledged_twice, 0);
    }
}

/// A full queue refuses the entry instead of trimming older ones.
#[test]
fn a_full_queue_refuses_and_drops_nothing() {
    let server = RedisServer::start().unwrap();
    let tokio_rt = support::tokio(0);
    tokio_rt.block_on(async {
        let rt = machina_tokio::runtime().unwrap();
        let redis = Redis::open(server.url()).unwrap();
        let queue = RedisQueue::builder(&redis, &rt, "small")
            .max_len(3)
            .build()
            .unwrap();
        for n in 0..3u64 {
            queue.submit("record", &n).await.unwrap();
        }
        assert!(matches!(
            queue.submit("record", &3u64).await,
            Err(QueueError::Full { max: 3, .. })
        ));
        let mut connection = redis.connection().await.unwrap();
        let len: u64 = redis::cmd("XLEN")
            .arg(&queue.keys().stream)
            .query_async(&mut connection)
            .await
            .unwrap();
        assert_eq!(len, 3);
        assert!(matches!(
            RedisQueue::builder(&redis, &rt, "bad")
                .max_deliveries(0)
                .build(),
            Err(QueueError::Config { .. })
        ));
    });
}

/// Where the child consumer finds Redis.
const CHILD_URL: &str = "MACHINA_REDIS_QUEUE_URL";

/// A consumer that takes entries and never finishes them: run by
/// `a_killed_consumers_entries_are_claimed_and_each_handled` as a child
/// process of this test binary; alone it does nothing.
#[test]
fn child_stuck_consumer() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let tokio_rt = support::tokio(1);
    tokio_rt.block_on(async {
        let rt = machina_tokio::runtime().unwrap();
        let redis = Redis::open(&url).unwrap().prefix("killed");
        let mut bot = Machina::builder(&rt);
        let stuck = bot
            .execute("record", |n: u64| async move {
                println!("took {n}");
                std::future::pending::<()>().await;
                Ok::<(), std::io::Error>(())
            })
            .register()
            .unwrap();
        let _bot = bot.build();
        let queue = RedisQueue::builder(&redis, &rt, "jobs")
            .concurrency(64)
            .build()
            .unwrap();
        queue.handle(&stuck).unwrap();
        let consumer = queue.consumer();
        consumer.prepare().await.unwrap();
        consumer.run().await;
    });
}

/// Ten entries taken by a consumer process that is then killed with
/// SIGKILL: another replica claims them after `claim_after` and handles
/// each exactly once, acknowledging each once.
#[test]
fn a_killed_consumers_entries_are_claimed_and_each_handled() {
    let server = RedisServer::start().unwrap();
    let tokio_rt = support::tokio(2);
    tokio_rt.block_on(async {
        let rt = machina_tokio::runtime().unwrap();
        let redis = Redis::open(server.url()).unwrap().prefix("killed");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let TestBot { _bot, record, .. } = bot(&rt, seen.clone());
        let queue = RedisQueue::builder(&redis, &rt, "jobs")
            .claim_after(ms(300))
            .build()
            .unwrap();
        queue.handle(&record).unwrap();
        queue.consumer().prepare().await.unwrap();
        for n in 0..10u64 {
            queue.submit("record", &n).await.unwrap();
        }
        let mut child = support::child("child_stuck_consumer", CHILD_URL, server.url())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let took = std::thread::spawn(move || {
            use std::io::BufRead;
            std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                // The first shares its line with libtest's "test … ".
                .filter(|line| line.contains("took "))
                .take(10)
                .count()
        })
        .join()
        .unwrap();
        assert_eq!(took, 10, "the child did not take every entry");
        child.kill().unwrap();
        child.wait().unwrap();

        let consumer = Arc::new(queue.consumer());
        let running = {
            let consumer = consumer.clone();
            rt.spawn(async move { consumer.run().await }).unwrap()
        };
        for _ in 0..300 {
            if seen.lock().unwrap().len() >= 10 {
                break;
            }
            rt.sleep(ms(10)).await;
        }
        rt.sleep(ms(400)).await; // one more claim round: nothing is handled twice
        consumer.stop().await;
        running.await.unwrap();
        let mut got = seen.lock().unwrap().clone();
        got.sort();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        let stats = queue.stats();
        assert_eq!(
            (stats.claimed, stats.handled, stats.acknowledged_twice),
            (10, 10, 0),
            "{stats:?}"
        );
        let mut connection = redis.connection().await.unwrap();
        let pending: Vec<redis::Value> = redis::cmd("XPENDING")
            .arg(&queue.keys().stream)
            .arg("machina")
            .query_async(&mut connection)
            .await
            .unwrap();
        assert_eq!(
            pending.first(),
            Some(&redis::Value::Int(0)),
            "entries left pending: {pending:?}"
        );
    });
}

/// An entry delivered more than `max_deliveries` times (its consumers
/// kept dying) goes to the dead-letter stream; its caller is told.
#[test]
fn an_entry_delivered_too_often_is_dead_lettered() {
    let server = RedisServer::start().unwrap();
    let tokio_rt = support::tokio(2);
    tokio_rt.block_on(async {
        let rt = machina_tokio::runtime().unwrap();
        let redis = Redis::open(server.url()).unwrap().prefix("dlq");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let TestBot { _bot, double, .. } = bot(&rt, seen);
        let queue = RedisQueue::builder(&redis, &rt, "jobs")
            .claim_after(ms(50))
            .max_deliveries(2)
            .build()
            .unwrap();
        queue.handle(&double).unwrap();
        let consumer = Arc::new(queue.consumer());
        consumer.prepare().await.unwrap();
        let caller = {
            let queue = queue.clone();
            rt.spawn(async move { queue.call::<_, u64>("double", &5u64).await })
                .unwrap()
        };
        // Two consumers that died with the entry: delivered twice.
        let mut connection = redis.connection().await.unwrap();
        let stream = queue.keys().stream.clone();
        for _ in 0..100 {
            let len: u64 = redis::cmd("XLEN")
                .arg(&stream)
                .query_async(&mut connection)
                .await
                .unwrap();
            if len == 1 {
                break;
            }
            rt.sleep(ms(5)).await;
        }
        let _: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("machina")
            .arg("ghost-1")
            .arg("COUNT")
            .arg(1)
            .arg("STREAMS")
            .arg(&stream)
            .arg(">")
            .query_async(&mut connection)
            .await
            .unwrap();
        let _: redis::Value = redis::cmd("XAUTOCLAIM")
            .arg(&stream)
            .arg("machina")
            .arg("ghost-2")
            .arg(0)
            .arg("0-0")
            .query_async(&mut connection)
            .await
            .unwrap();
        rt.sleep(ms(60)).await;
        let running = {
            let consumer = consumer.clone();
            rt.spawn(async move { consumer.run().await }).unwrap()
        };
        match caller.await.unwrap() {
            Err(QueueError::DeadLettered { reason, .. }) => {
                assert!(reason.contains("too many"), "{reason}")
            }
            other => panic!("expected DeadLettered, got {other:?}"),
        }
        consumer.stop().await;
        running.await.unwrap();
        assert_eq!(dead_letters(&redis, &queue).await, 1);
        let dead: Vec<(String, HashMap<String, String>)> = {
            let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                .arg(&queue.keys().dead)
                .arg("-")
                .arg("+")
                .query_async(&mut connection)
                .await
                .unwrap();
            reply
                .ids
                .into_iter()
                .map(|id| {
                    let fields = id
                        .map
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                redis::from_redis_value::<String>(v.clone()).unwrap(),
                            )
                        })
                        .collect();
                    (id.id, fields)
                })
                .collect()
        };
        assert_eq!(dead[0].1["execute"], "double");
        assert_eq!(dead[0].1["deliveries"], "3");
    });
}

/// With AOF on, entries accepted before a Redis restart are handled after
/// it, every one.
#[test]
fn entries_survive_a_redis_restart_with_aof() {
    let mut server = RedisServer::start_with_aof().unwrap();
    if !server.is_own() {
        return;
    }
    let tokio_rt = support::tokio(2);
    tokio_rt.block_on(async {
        let rt = machina_tokio::runtime().unwrap();
        let redis = Redis::open(server.url()).unwrap().prefix("aof");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let TestBot { _bot, record, .. } = bot(&rt, seen.clone());
        let queue = RedisQueue::builder(&redis, &rt, "jobs").build().unwrap();
        queue.handle(&record).unwrap();
        queue.consumer().prepare().await.unwrap();
        for n in 0..30u64 {
            queue.submit("record", &n).await.unwrap();
        }
        server.restart().unwrap();
        let consumer: Arc<QueueConsumer> = Arc::new(queue.consumer());
        let running = {
            let consumer = consumer.clone();
            rt.spawn(async move { consumer.run().await }).unwrap()
        };
        for _ in 0..500 {
            if seen.lock().unwrap().len() >= 30 {
                break;
            }
            rt.sleep(ms(10)).await;
        }
        consumer.stop().await;
        running.await.unwrap();
        let mut got = seen.lock().unwrap().clone();
        got.sort();
        assert_eq!(got, (0..30).collect::<Vec<_>>());
    });
}
