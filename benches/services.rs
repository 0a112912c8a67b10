//! Start and shut down 1 000 trivial services: Machina's `Supervisor`
//! against `tokio-graceful-shutdown` running 1 000 trivial subsystems, on a
//! tokio multi-thread runtime (2 workers), side by side.
//!
//! Run: `cargo bench --bench services`

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use machina_core::service::{Service, ServiceContext, ServiceFuture, Supervisor};
use tokio_graceful_shutdown::{SubsystemBuilder, SubsystemHandle, Toplevel};

const SERVICES: usize = 1_000;

struct Trivial;

impl Service for Trivial {
    fn start(self: Arc<Self>, _ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async { Ok(()) })
    }
}

type Boxed = Box<dyn std::error::Error + Send + Sync>;

async fn trivial(subsys: &mut SubsystemHandle) -> Result<(), Boxed> {
    subsys.on_shutdown_requested().await;
    Ok(())
}

async fn root(subsys: &mut SubsystemHandle) {
    for i in 0..SERVICES {
        subsys.start(SubsystemBuilder::new(format!("s{i}"), trivial));
    }
    subsys.request_shutdown();
}

fn start_and_stop(c: &mut Criterion) {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let rt = tokio_rt.block_on(async { machina_tokio::runtime().expect("inside tokio") });
    let names: Vec<String> = (0..SERVICES).map(|i| format!("s{i}")).collect();

    let mut group = c.benchmark_group("start_and_stop_1000_services");
    group.sample_size(20);
    group.bench_function("machina_supervisor", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Building the graph is timed too, as the peer's subsystem
                // creation is.
                let start = Instant::now();
                let mut builder = Supervisor::builder(&rt);
                for name in &names {
                    builder = builder.service(name, Trivial, &[]);
                }
                let supervisor = builder.build().expect("graph");
                tokio_rt.block_on(async {
                    supervisor.start().await.expect("start");
                    supervisor.stop().await;
                });
                total += start.elapsed();
            }
            total
        })
    });
    group.bench_function("tokio_graceful_shutdown", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                tokio_rt
                    .block_on(async {
                        Toplevel::new(root)
                            .handle_shutdown_requests(Duration::from_secs(5))
                            .await
                    })
                    .expect("shutdown");
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, start_and_stop);
criterion_main!(benches);
