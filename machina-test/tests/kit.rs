//! The public kit as a user meets it: a test body written with
//! `cross_runtime!` runs on all five runtimes, on the runtime it says.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use machina_test::{Kind, cross_runtime, real_runtimes};

/// The kinds the body below has run on, in this process.
static SEEN: Mutex<Vec<Kind>> = Mutex::new(Vec::new());

cross_runtime! {
    /// Spawns, sleeps and joins: what any bot does.
    async fn a_user_body(rt: Runtime, env: Env) {
        let t0 = rt.now();
        let task = rt.spawn({
            let rt = rt.clone();
            async move {
                rt.sleep(Duration::from_millis(30)).await;
                7
            }
        });
        assert_eq!(task.unwrap().await.unwrap(), 7);
        env.assert_elapsed(rt.now() - t0, Duration::from_millis(30));
        // The runtime handed in is the one `env` names.
        let expected = match env.kind {
            Kind::Mock => "mock",
            Kind::TokioMultiThread | Kind::TokioCurrentThread => "tokio",
            Kind::Smol => "smol",
            Kind::AsyncStd => "async-std",
            _ => unreachable!("a kind this test does not know"),
        };
        assert_eq!(rt.label(), expected);
        SEEN.lock().unwrap().push(env.kind);
    }
}

real_runtimes! {
    /// A blocking call finishes on a real runtime's blocking pool.
    async fn blocking_work_on_real_runtimes(rt: Runtime, env: Env) {
        assert!(!env.is_virtual());
        let sum = rt.spawn_blocking(|| (1..=10u32).sum::<u32>()).unwrap().await.unwrap();
        assert_eq!(sum, 55);
    }
}

#[test]
fn the_macro_made_one_test_per_runtime_and_each_ran_where_it_says() {
    a_user_body::mock();
    a_user_body::tokio_mt();
    a_user_body::tokio_ct();
    a_user_body::smol();
    a_user_body::async_std();
    let seen: HashSet<Kind> = SEEN.lock().unwrap().iter().copied().collect();
    let all: HashSet<Kind> = [
        Kind::Mock,
        Kind::TokioMultiThread,
        Kind::TokioCurrentThread,
        Kind::Smol,
        Kind::AsyncStd,
    ]
    .into();
    assert_eq!(seen, all);
}

#[test]
#[should_panic(expected = "exact virtual time")]
fn a_wrong_instant_fails_on_the_mock_runtime() {
    machina_test::run_mock(|rt, env| async move {
        let t0 = rt.now();
        rt.sleep(Duration::from_millis(10)).await;
        env.assert_elapsed(rt.now() - t0, Duration::from_millis(11));
    });
}

#[test]
fn a_stack_on_virtual_time_and_a_free_port() {
    use machina_core::service::{Service, ServiceContext, ServiceFuture, StopContext};
    use std::sync::Arc;

    /// Listens on the port it is given until stopped.
    struct Listener(u16);
    impl Service for Listener {
        fn start(self: Arc<Self>, _ctx: ServiceContext) -> ServiceFuture {
            let port = self.0;
            Box::pin(async move {
                std::net::TcpListener::bind(("127.0.0.1", port))?;
                Ok(())
            })
        }
        fn stop(self: Arc<Self>, ctx: StopContext) -> ServiceFuture {
            Box::pin(async move {
                ctx.runtime().sleep(Duration::from_secs(5)).await;
                Ok(())
            })
        }
    }

    let port = machina_test::free_port().unwrap();
    let stack =
        machina_test::MockStack::start(|stack| stack.service("listener", Listener(port), &[]))
            .unwrap();
    assert_eq!(stack.supervisor().running_services(), ["listener"]);
    let t0 = stack.mock().now();
    let report = stack.stop().unwrap();
    assert_eq!(report.stopped, ["listener"]);
    assert_eq!(
        stack.mock().now() - t0,
        Duration::from_secs(5),
        "a virtual 5 s stop"
    );
}
