//! Background tasks under a restart policy: restarts with a growing
//! backoff, and the failure once the restarts are spent.

use super::*;

/// A service whose background task fails its first `failures` runs (or
/// every run), recording when each run starts.
struct Flaky {
    rt: Runtime,
    runs: Arc<Mutex<Vec<u128>>>,
    failures: Option<usize>,
    policy: RestartPolicy,
}

impl Service for Flaky {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let t0 = self.rt.now();
            let this = self.clone();
            ctx.spawn_restarting(self.policy, move || {
                let this = this.clone();
                async move {
                    let run = {
                        let mut runs = this.runs.lock().unwrap();
                        runs.push((this.rt.now() - t0).as_millis());
                        runs.len()
                    };
                    if this.failures.is_none_or(|f| run <= f) {
                        return Err(format!("run {run} failed").into());
                    }
                    std::future::pending::<()>().await;
                    Ok(())
                }
            });
            Ok(())
        })
    }
}

fn stack(rt: &Runtime, failures: Option<usize>) -> (Supervisor, Arc<Mutex<Vec<u128>>>) {
    let runs = Arc::new(Mutex::new(Vec::new()));
    let flaky = Flaky {
        rt: rt.clone(),
        runs: runs.clone(),
        failures,
        policy: RestartPolicy::on_failure(ms(100), 2),
    };
    (
        Supervisor::builder(rt)
            .service("flaky", flaky, &[])
            .build()
            .unwrap(),
        runs,
    )
}

#[test]
fn a_failing_task_is_restarted_with_a_growing_backoff() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let (stack, runs) = stack(&rt, Some(2));
    mock.block_on(async { stack.start().await.unwrap() })
        .unwrap();
    mock.advance(Duration::from_secs(5)).unwrap();
    assert_eq!(
        *runs.lock().unwrap(),
        [0, 100, 300],
        "backoff 100 ms, then 200 ms"
    );
    mock.block_on(async {
        let report = stack.stop().await;
        assert_eq!(report.stopped, ["flaky"]);
    })
    .unwrap();
}

#[test]
fn once_the_restarts_are_spent_the_failure_is_reported() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let (stack, runs) = stack(&rt, None);
    let (service, error) = mock
        .block_on(async {
            stack.start().await.unwrap();
            stack.failure().await.unwrap()
        })
        .unwrap();
    assert_eq!(service, "flaky");
    assert_eq!(error.to_string(), "run 3 failed");
    assert_eq!(*runs.lock().unwrap(), [0, 100, 300]);
    assert_eq!(mock.elapsed(), ms(300));
}
