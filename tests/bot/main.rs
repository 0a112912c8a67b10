//! The bot on every runtime from one body each: registration errors,
//! emits driving executes (typed and by name), errors that end one emit
//! only, panics, fire-and-forget failures, hooks, groups with retries, and
//! a shutdown that accounts for everything.

#[path = "../support/mod.rs"]
mod support;

use machina_test::cross_runtime;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use machina_core::BoxError;
use machina_core::bot::{BotError, Event, ExecuteError, Machina};
use machina_core::limit::Limits;
use machina_core::retry::{Retry, Rule};
use support::{entries, log, push};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[derive(Debug, thiserror::Error)]
#[error("HTTP {0}")]
struct HttpError(u16);

cross_runtime! {
    /// Duplicate names, unknown groups and bad intervals are refused while
    /// the bot is put together.
    async fn registration_mistakes_are_refused(rt: Runtime, env: Env) {
        let mut bot = Machina::builder(&rt);
        bot.group("g", Limits::new().max_in_flight(1)).unwrap();
        let dup = bot.group("g", Limits::new()).unwrap_err();
        assert!(matches!(dup, BotError::Duplicate { kind: "concurrent group", .. }));
        assert!(matches!(bot.group("zero", Limits::new().max_in_flight(0)), Err(BotError::Group(_))));
        let unknown = bot
            .execute("x", |n: u32| async move { Ok::<_, BoxError>(n) })
            .groups(["g", "missing"])
            .register()
            .unwrap_err();
        assert!(unknown.to_string().contains("unknown concurrent group \"missing\"; registered: g"), "{unknown}");
        bot.execute("x", |n: u32| async move { Ok::<_, BoxError>(n) }).register().unwrap();
        assert!(matches!(
            bot.execute("x", |n: u32| async move { Ok::<_, BoxError>(n) }).register(),
            Err(BotError::Duplicate { kind: "execute", .. })
        ));
        let bad = bot.emit("e", "1x").unwrap_err();
        assert!(bad.to_string().contains("invalid interval \"1x\""), "{bad}");
        bot.emit("e", "10ms").unwrap().count(1).register(|_e: Event| async {}).unwrap();
        assert!(matches!(
            bot.emit("e", "10ms").unwrap().register(|_e: Event| async {}),
            Err(BotError::Duplicate { kind: "emit", .. })
        ));
    }

    /// An emit drives an execute typed and by name; Event reports epoch,
    /// remaining runs and the previous run's duration; names and types are
    /// checked.
    async fn emits_drive_executes(rt: Runtime, env: Env) {
        let seen = log();
        let mut bot = Machina::builder(&rt);
        let double = bot
            .execute("double", |n: u32| async move { Ok::<_, BoxError>(n * 2) })
            .register()
            .unwrap();
        let seen2 = seen.clone();
        bot.emit("tick", "20ms").unwrap().count(3).register(move |event: Event| {
            let (double, seen) = (double.clone(), seen2.clone());
            async move {
                let direct = double.call(event.epoch() as u32).await.unwrap();
                let by_name = event.execute::<u32, u32>("double", 10).unwrap().await.unwrap();
                push(&seen, format!("{} {:?} {direct} {by_name}", event.epoch(), event.remaining()));
                assert!(matches!(event.execute::<u32, u32>("nope", 1), Err(BotError::Unknown { kind: "execute", .. })));
                let wrong = event.execute::<String, u32>("double", "x".into()).unwrap_err();
                assert!(matches!(wrong, BotError::TypeMismatch { .. }), "{wrong}");
                assert!(wrong.to_string().contains("takes fn(u32) -> u32"), "{wrong}");
                assert!(event.start("missing").is_err());
                if event.epoch() == 1 {
                    assert_eq!(event.previous_execution_time(), Duration::ZERO);
                }
            }
        }).unwrap();
        let bot = bot.build();
        let start = rt.now();
        let report = bot.run().await.unwrap();
        assert_eq!(*seen.lock().unwrap(), ["1 Some(2) 2 20", "2 Some(1) 4 20", "3 Some(0) 6 20"]);
        assert_eq!(report.stats.executes_ok, 3);
        env.assert_elapsed(rt.now() - start, ms(40));
    }

    /// An emit that fails ends alone; the others run on; run() reports it.
    async fn a_failing_emit_ends_alone(rt: Runtime, env: Env) {
        let runs = Arc::new(AtomicU32::new(0));
        let mut bot = Machina::builder(&rt);
        bot.emit("broken", "10ms").unwrap().register(|_e: Event| async {
            Err::<(), _>(HttpError(500))
        }).unwrap();
        let r = runs.clone();
        bot.emit("healthy", "10ms").unwrap().count(4).register(move |_e: Event| {
            r.fetch_add(1, Ordering::SeqCst);
            async {}
        }).unwrap();
        let err = bot.build().run().await.unwrap_err();
        assert_eq!(runs.load(Ordering::SeqCst), 4);
        let BotError::EmitsFailed(errors) = &err else { panic!("{err}") };
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, "broken");
        assert_eq!(errors[0].1.to_string(), "HTTP 500");
    }

    /// A panicking handler is an error for its caller; a fire-and-forget
    /// failure is counted; the bot runs on.
    async fn panics_and_fire_and_forget_failures_are_not_lost(rt: Runtime, env: Env) {
        let mut bot = Machina::builder(&rt);
        let boom = bot
            .execute("boom", |_: ()| async move {
                if true { panic!("handler blew up") }
                Ok::<(), BoxError>(())
            })
            .register()
            .unwrap();
        bot.execute("fails", |_: ()| async move { Err::<(), _>(HttpError(503)) }).register().unwrap();
        bot.emit("once", "1s").unwrap().count(1).register(move |event: Event| {
            let boom = boom.clone();
            async move {
                let err = boom.call(()).await.unwrap_err();
                assert!(matches!(err, ExecuteError::Panicked { .. }), "{err}");
                assert!(err.to_string().contains("handler blew up"));
                event.execute::<(), ()>("fails", ()).unwrap().detach();
                let spawned = boom.spawn(()).unwrap().await.unwrap_err();
                assert!(matches!(spawned, ExecuteError::Panicked { .. }));
            }
        }).unwrap();
        let report = bot.build().run().await.unwrap();
        assert_eq!(report.stats.executes_failed, 2, "the detached failure and the spawned panic");
    }

    /// Startup and shutdown hooks run in order, shutdown hooks also after a
    /// failed start.
    async fn hooks_run_in_order(rt: Runtime, env: Env) {
        let events = log();
        let mut bot = Machina::builder(&rt);
        for name in ["a", "b"] {
            let e = events.clone();
            bot.on_startup(move |_| { let e = e.clone(); async move { push(&e, format!("start {name}")); Ok(()) } });
            let e = events.clone();
            bot.on_shutdown(move |_| { let e = e.clone(); async move { push(&e, format!("stop {name}")); Ok(()) } });
        }
        let e = events.clone();
        bot.emit("tick", "1ms").unwrap().count(1).register(move |_ev: Event| { let e = e.clone(); async move { push(&e, "tick") } }).unwrap();
        bot.build().run().await.unwrap();
        assert_eq!(*events.lock().unwrap(), ["start a", "start b", "tick", "stop a", "stop b"]);

        let events = log();
        let mut bot = Machina::builder(&rt);
        bot.on_startup(|_| async { Err::<(), BoxError>("no database".into()) });
        let e = events.clone();
        bot.on_shutdown(move |_| { let e = e.clone(); async move { push(&e, "shutdown ran"); Ok(()) } });
        let e = events.clone();
        bot.emit("never", "1ms").unwrap().register(move |_ev: Event| { let e = e.clone(); async move { push(&e, "emit ran") } }).unwrap();
        let err = bot.build().run().await.unwrap_err();
        assert!(matches!(err, BotError::Startup(_)), "{err}");
        assert_eq!(*events.lock().unwrap(), ["shutdown ran"]);
    }

    /// A group and a retry together: each attempt is a new start in the
    /// window, and the retry wraps the call once.
    async fn group_and_retry_interact(rt: Runtime, env: Env) {
        let attempts = log();
        let start = rt.now();
        let mut bot = Machina::builder(&rt);
        bot.group("api", Limits::new().max_in_flight(4).max_starts(2, ms(100))).unwrap();
        let (a, rt2) = (attempts.clone(), rt.clone());
        let flaky = bot
            .execute("flaky", move |n: u32| {
                let (a, rt) = (a.clone(), rt2.clone());
                async move {
                    push(&a, format!("{n}@{}", (rt.now() - start).as_millis()));
                    if n == 0 && a.lock().unwrap().len() < 3 { Err(HttpError(503)) } else { Ok(n) }
                }
            })
            .groups(["api"])
            .retry(Retry::new().rule(Rule::fixed(ms(10)).on::<HttpError>().retries(3)))
            .register()
            .unwrap();
        bot.emit("go", "1s").unwrap().count(1).register(move |_e: Event| {
            let flaky = flaky.clone();
            async move { assert_eq!(flaky.call(0).await.unwrap(), 0); }
        }).unwrap();
        bot.build().run().await.unwrap();
        let attempts = attempts.lock().unwrap().clone();
        assert_eq!(attempts.len(), 3);
        if env.is_virtual() {
            // 2 starts per 100 ms: the third attempt waits for the window.
            assert_eq!(attempts, ["0@0", "0@10", "0@100"]);
        }
    }

    /// An emit that is not alive waits for an Event to start it; starting
    /// a running emit does nothing; a finished one starts afresh with its
    /// count; stop and cancel work by name.
    async fn events_start_stop_and_cancel_other_emits(rt: Runtime, env: Env) {
        let runs = log();
        let mut bot = Machina::builder(&rt);
        let r = runs.clone();
        bot.emit("worker", "10ms").unwrap().count(2).alive(false).register(move |event: Event| {
            let r = r.clone();
            async move { push(&r, format!("worker {}", event.epoch())) }
        }).unwrap();
        let r = runs.clone();
        let rt2 = rt.clone();
        bot.emit("sleeper", "10ms").unwrap().alive(false).register(move |event: Event| {
            let (r, rt) = (r.clone(), rt2.clone());
            async move {
                push(&r, format!("sleeper {}", event.epoch()));
                rt.sleep(ms(3_600_000)).await;
                push(&r, "sleeper woke");
            }
        }).unwrap();
        bot.emit("controller", "100ms").unwrap().count(3).register(|event: Event| async move {
            match event.epoch() {
                1 => {
                    event.start("worker").unwrap();
                    event.start("worker").unwrap(); // running: ignored
                    event.start("sleeper").unwrap();
                }
                2 => {
                    event.start("worker").unwrap(); // finished: starts afresh
                    event.stop("missing").unwrap_err();
                }
                _ => event.cancel("sleeper").unwrap(),
            }
        }).unwrap();
        let bot = bot.build();
        let start = rt.now();
        bot.run().await.unwrap();
        let runs = entries(&runs);
        let worker: Vec<_> = runs.iter().filter(|r| r.starts_with("worker")).cloned().collect();
        assert_eq!(worker, ["worker 1", "worker 2", "worker 1", "worker 2"]);
        assert_eq!(runs.iter().filter(|r| r.starts_with("sleeper")).cloned().collect::<Vec<_>>(), ["sleeper 1"]);
        assert!(!bot.emit("sleeper").unwrap().loop_handle().is_running());
        env.assert_elapsed(rt.now() - start, ms(200));
    }

    /// shutdown stops emits, waits for in-flight executes within the
    /// grace, cancels the rest, and says which was which.
    async fn shutdown_accounts_for_everything(rt: Runtime, env: Env) {
        let mut bot = Machina::builder(&rt);
        let rt2 = rt.clone();
        bot.execute("quick", move |_: ()| { let rt = rt2.clone(); async move { rt.sleep(ms(50)).await; Ok::<_, BoxError>(()) } }).register().unwrap();
        let rt3 = rt.clone();
        bot.execute("slow", move |_: ()| { let rt = rt3.clone(); async move { rt.sleep(ms(10_000)).await; Ok::<_, BoxError>(()) } }).register().unwrap();
        let (spawned_tx, spawned_rx) = futures::channel::oneshot::channel::<()>();
        let spawned_tx = Arc::new(Mutex::new(Some(spawned_tx)));
        bot.emit("spawner", "1ms").unwrap().register(move |event: Event| {
            let spawned_tx = spawned_tx.clone();
            async move {
                if event.epoch() == 1 {
                    event.execute::<(), ()>("quick", ()).unwrap().detach();
                    event.execute::<(), ()>("slow", ()).unwrap().detach();
                    if let Some(tx) = spawned_tx.lock().unwrap().take() {
                        let _ = tx.send(());
                    }
                }
            }
        }).unwrap();
        let bot = bot.build();
        let runner = { let bot = bot.clone(); rt.spawn(async move { bot.run().await }).unwrap() };
        // Both executes are in flight (and the emit runs) from here on.
        spawned_rx.await.unwrap();
        let report = bot.shutdown(ms(300)).await;
        assert_eq!(report.emits_stopped, ["spawner"]);
        assert!(report.emits_cancelled.is_empty());
        assert_eq!(report.executes_finished, ["quick"]);
        assert_eq!(report.executes_cancelled, ["slow"]);
        let run = runner.await.unwrap().unwrap();
        assert_eq!(run.stats.executes_ok, 1);
        assert_eq!(run.stats.executes_cancelled, 1);
    }
}

cross_runtime! {
    /// Groups are reachable through the handles registration returns: an
    /// execute names them by handle as well as by name; a handle of another
    /// bot, or a limiter registered under another name, is refused; a
    /// limiter kept elsewhere is registered like local limits. A failed
    /// call says which layer stopped it.
    async fn groups_by_typed_handle_and_layers_on_an_execute(rt: Runtime, env: Env) {
        use machina_core::bot::GroupRef;
        use machina_core::breaker::CircuitBreaker;
        use machina_core::call::{CallErrorKind, Layer};
        use machina_core::limit::{ConcurrentGroup, Group, Limiter};

        let mut bot = Machina::builder(&rt);
        let api = bot.group("api", Limits::new().max_in_flight(2)).unwrap();
        let remote = ConcurrentGroup::new(&rt, "shared", Limits::new().max_in_flight(1)).unwrap();
        let elsewhere: Arc<dyn Limiter> = Arc::new(remote.clone());
        let shared: Group = bot.group("shared", elsewhere.clone()).unwrap();
        assert_eq!(shared.name(), "shared");
        assert!(matches!(
            bot.group("renamed", elsewhere),
            Err(BotError::Group(machina_core::limit::LimitError::NameMismatch { .. }))
        ));
        let mut other = Machina::builder(&rt);
        let foreign = other.group("api", Limits::new()).unwrap();
        let refused = bot
            .execute("foreign", |n: u32| async move { Ok::<_, BoxError>(n) })
            .groups([&foreign])
            .register()
            .unwrap_err();
        assert!(matches!(refused, BotError::Unknown { kind: "concurrent group", .. }), "{refused}");

        let seen = Arc::new(Mutex::new(Vec::new()));
        let breaker = CircuitBreaker::builder("upstream").min_calls(1).build(&rt).unwrap();
        let work = {
            let (api2, remote2, seen2) = (api.clone(), remote.clone(), seen.clone());
            bot.execute("work", move |n: u32| {
                let (api, remote, seen) = (api2.clone(), remote2.clone(), seen2.clone());
                async move {
                    seen.lock().unwrap().push((api.in_flight(), remote.in_flight()));
                    if n == 0 { Err::<u32, BoxError>(Box::new(HttpError(503))) } else { Ok(n) }
                }
            })
            .groups([GroupRef::from(&api), "shared".into()])
            .breaker(breaker)
            .timeout(ms(500))
            .register()
            .unwrap()
        };
        let _bot = bot.build();
        assert_eq!(work.call(7).await.unwrap(), 7);
        // The handler's failure: the call error says so, with the error.
        let failed = work.call(0).await.unwrap_err();
        let call = failed.call_error().expect("a failed call");
        assert!(matches!(call.kind(), CallErrorKind::Failed { attempts: 1, .. }), "{call:?}");
        assert_eq!(failed.source_error().unwrap().to_string(), "HTTP 503");
        // One failure of one call trips the breaker: the next is refused
        // by that layer and never runs.
        let refused = work.call(9).await.unwrap_err();
        assert_eq!(
            refused.call_error().and_then(|c| c.layer()),
            Some(Layer::Breaker("upstream".into()))
        );
        assert_eq!(*seen.lock().unwrap(), [(1, 1), (1, 1)], "a slot in both while it runs");
        assert_eq!((api.in_flight(), remote.in_flight()), (0, 0));
    }
}

cross_runtime! {
    /// A run ends once its last execute does, also when thousands end on
    /// several worker threads at once (the book of running executes is
    /// sharded; the removal that empties it must wake the run), and counts
    /// every one of them. Repeated, so that a lost wake-up shows as a hang.
    async fn a_run_ends_when_its_last_execute_does(rt: Runtime, env: Env) {
        const CALLS: u32 = 2_000;
        for round in 0..10 {
            let mut bot = Machina::builder(&rt);
            bot.group("pool", Limits::new().max_in_flight(64)).unwrap();
            let rt2 = rt.clone();
            bot.execute("work", move |n: u32| {
                let rt = rt2.clone();
                async move {
                    if n.is_multiple_of(7) {
                        rt.sleep(ms(1)).await;
                    }
                    if n % 100 == 99 {
                        return Err(BoxError::from("every hundredth fails"));
                    }
                    Ok::<_, BoxError>(n)
                }
            })
            .groups(["pool"])
            .register()
            .unwrap();
            bot.emit("driver", "1s").unwrap().count(1).register(|event: Event| async move {
                for n in 0..CALLS {
                    event.execute::<u32, u32>("work", n).unwrap().detach();
                }
            }).unwrap();
            let run = rt.timeout(Duration::from_secs(60), bot.build().run()).await;
            let stats = run.expect("the run ended").unwrap().stats;
            assert_eq!(
                (stats.executes_ok, stats.executes_failed, stats.executes_cancelled),
                (u64::from(CALLS - CALLS / 100), u64::from(CALLS / 100), 0),
                "round {round}"
            );
        }
    }
}
