//! Services on every runtime from one body each: dependency order, a
//! service that stays running after it is ready, and rollback.

#[path = "../support/mod.rs"]
mod support;

use machina_test::cross_runtime;

use std::sync::Arc;
use std::time::Duration;

use machina_core::rt::Runtime;
use machina_core::service::{
    Entrypoint, Key, Service, ServiceContext, ServiceFuture, StopContext, Supervisor,
};
use support::{Log, entries, log, push};

const PORT: Key<u16> = Key::new("port");

/// Starts after `delay_ms`, publishes `PORT` if it is the database, keeps
/// running after ready if `resident`, fails if `broken`.
struct Step {
    name: &'static str,
    rt: Runtime,
    log: Log,
    delay_ms: u64,
    resident: bool,
    broken: bool,
}

impl Service for Step {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            self.rt.sleep(Duration::from_millis(self.delay_ms)).await;
            if self.broken {
                return Err(format!("{} is broken", self.name).into());
            }
            if self.name == "db" {
                ctx.context().set(PORT, 5432);
            } else {
                assert_eq!(*ctx.context().get(PORT).await, 5432);
            }
            push(&self.log, format!("ready {}", self.name));
            if self.resident {
                ctx.ready();
                std::future::pending::<()>().await;
            }
            Ok(())
        })
    }

    fn stop(self: Arc<Self>, _ctx: StopContext) -> ServiceFuture {
        Box::pin(async move {
            push(&self.log, format!("stop {}", self.name));
            Ok(())
        })
    }
}

fn step(name: &'static str, rt: &Runtime, log: &Log, delay_ms: u64) -> Step {
    Step {
        name,
        rt: rt.clone(),
        log: log.clone(),
        delay_ms,
        resident: false,
        broken: false,
    }
}

cross_runtime! {
    /// Dependencies first, independent services together, reverse stop.
    async fn services_start_in_order_and_stop_in_reverse(rt: Runtime, env: Env) {
        let events = log();
        let stack = Supervisor::builder(&rt)
            .service("db", step("db", &rt, &events, 20), &[])
            .service("cache", Step { resident: true, ..step("cache", &rt, &events, 5) }, &["db"])
            .service("api", step("api", &rt, &events, 0), &["db", "cache"])
            .build()
            .unwrap();
        let start = rt.now();
        stack.start().await.unwrap();
        env.assert_elapsed(rt.now() - start, Duration::from_millis(25));
        assert_eq!(stack.running_services(), ["db", "cache", "api"]);
        let report = stack.stop().await;
        assert_eq!(report.stopped, ["api", "cache", "db"]);
        assert_eq!(
            entries(&events),
            ["ready db", "ready cache", "ready api", "stop api", "stop cache", "stop db"]
        );
    }

    /// A failed start stops what had started, in reverse.
    async fn a_failed_start_is_rolled_back(rt: Runtime, env: Env) {
        let events = log();
        let stack = Supervisor::builder(&rt)
            .service("db", step("db", &rt, &events, 0), &[])
            .service("api", Step { broken: true, ..step("api", &rt, &events, 5) }, &["db"])
            .build()
            .unwrap();
        let err = stack.start().await.unwrap_err();
        assert_eq!(err.service, "api");
        assert_eq!(err.rolled_back, ["db"]);
        assert_eq!(entries(&events), ["ready db", "stop db"]);
    }

    /// aiomisc's `run(main, *services)`: services up, main, services down.
    async fn run_starts_the_services_around_main(rt: Runtime, _env: Env) {
        let events = log();
        let services: Vec<(&str, Arc<dyn Service>)> = vec![
            ("db", Arc::new(step("db", &rt, &events, 0))),
            ("cache", Arc::new(Step { resident: true, ..step("cache", &rt, &events, 5) })),
        ];
        let main_log = events.clone();
        let main = async move {
            push(&main_log, "main".to_owned());
            7
        };
        let outcome = machina_core::service::run(Entrypoint::builder(&rt), main, services)
            .await
            .unwrap();
        assert_eq!((outcome.value, outcome.exit_code), (Some(7), 0));
        assert_eq!(entries(&events), ["ready db", "ready cache", "main", "stop cache", "stop db"]);

        let twice: Vec<(&str, Arc<dyn Service>)> = vec![
            ("db", Arc::new(step("db", &rt, &events, 0))),
            ("db", Arc::new(step("db", &rt, &events, 0))),
        ];
        let err = machina_core::service::run(Entrypoint::builder(&rt), async {}, twice).await.unwrap_err();
        assert!(err.to_string().contains("duplicate service name \"db\""), "{err}");
    }
}

/// Each adapter's own `run(main, services)` (aiomisc `run`): the services
/// come up, `main` runs, they go down in reverse; a duplicate name is an
/// error before anything starts.
mod adapter_run {
    use super::*;

    fn stack(rt: &Runtime, events: &Log) -> Vec<(&'static str, Arc<dyn Service>)> {
        vec![
            ("db", Arc::new(step("db", rt, events, 0))),
            ("cache", Arc::new(step("cache", rt, events, 5))),
        ]
    }

    fn check<E: std::fmt::Debug>(
        outcome: machina_core::service::Outcome<u8>,
        events: &Log,
        duplicate: Result<machina_core::service::Outcome<()>, E>,
    ) {
        assert_eq!((outcome.value, outcome.exit_code), (Some(9), 0));
        assert_eq!(
            entries(events),
            ["ready db", "ready cache", "main", "stop cache", "stop db"]
        );
        let err = format!("{:?}", duplicate.unwrap_err());
        assert!(err.contains("Duplicate(\"db\")"), "{err}");
    }

    #[test]
    fn tokio() {
        let tokio_rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio_rt.block_on(async {
            let rt = machina_tokio::runtime().unwrap();
            let events = log();
            let main_log = events.clone();
            let main = async move {
                push(&main_log, "main".to_owned());
                9u8
            };
            let outcome = machina_tokio::run(main, stack(&rt, &events)).await.unwrap();
            let twice = vec![stack(&rt, &events).remove(0), stack(&rt, &events).remove(0)];
            check(outcome, &events, machina_tokio::run(async {}, twice).await);
        });
    }

    #[test]
    fn smol() {
        smol::block_on(async {
            let rt = machina_smol::runtime();
            let events = log();
            let main_log = events.clone();
            let main = async move {
                push(&main_log, "main".to_owned());
                9u8
            };
            let outcome = machina_smol::run(main, stack(&rt, &events)).await.unwrap();
            let twice = vec![stack(&rt, &events).remove(0), stack(&rt, &events).remove(0)];
            check(outcome, &events, machina_smol::run(async {}, twice).await);
        });
    }

    #[test]
    fn async_std() {
        async_std::task::block_on(async {
            let rt = machina_async_std::runtime();
            let events = log();
            let main_log = events.clone();
            let main = async move {
                push(&main_log, "main".to_owned());
                9u8
            };
            let outcome = machina_async_std::run(main, stack(&rt, &events))
                .await
                .unwrap();
            let twice = vec![stack(&rt, &events).remove(0), stack(&rt, &events).remove(0)];
            check(
                outcome,
                &events,
                machina_async_std::run(async {}, twice).await,
            );
        });
    }
}
