//! A discord.ext.tasks-style `Loop` on tokio: before/after hooks, a body
//! that retries a handled I/O error with backoff, `change_interval` from
//! inside the body, and a graceful `stop`.
//!
//! Run: `cargo run --example loop_hooks`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use machina_tokio::BoxError;
use machina_tokio::loops::{Loop, LoopEnd};
use machina_tokio::rt::MissedTick;
use machina_tokio::schedule::Schedule;

fn main() -> Result<(), BoxError> {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    tokio_rt.block_on(async {
        let rt = machina_tokio::runtime()?;
        let t0 = rt.now();
        let ms = move |rt: &machina_tokio::Runtime| (rt.now() - t0).as_millis();
        let flaky = Arc::new(AtomicBool::new(false));
        let printer = Loop::builder(
            &rt,
            "printer",
            Schedule::fixed_rate("200ms", MissedTick::Skip)?,
        )
        .reconnect_base(Duration::from_millis(20))
        .before_loop(move |lp: Loop| async move {
            println!(
                "[{:>4} ms] before_loop: starting {}",
                ms(lp.runtime()),
                lp.name()
            );
        })
        .after_loop(move |lp: Loop| async move {
            println!(
                "[{:>4} ms] after_loop: cancelled? {}",
                ms(lp.runtime()),
                lp.is_being_cancelled()
            );
        })
        .build(move |lp: Loop| {
            let flaky = flaky.clone();
            async move {
                let n = lp.current_loop();
                println!("[{:>4} ms] iteration {n}", ms(lp.runtime()));
                if n == 1 && !flaky.swap(true, Ordering::SeqCst) {
                    // A handled kind (I/O): retried after a short backoff,
                    // and the failed attempt is not counted.
                    println!("           iteration {n} hit a flaky connection; reconnecting");
                    return Err(std::io::Error::other("connection reset"));
                }
                if n == 2 {
                    println!("           speeding up: every 100 ms from now on");
                    lp.change_interval("100ms").expect("a valid interval");
                }
                Ok(())
            }
        });

        let run = printer.start()?;
        rt.sleep(Duration::from_millis(850)).await;
        println!("[{:>4} ms] asking the loop to stop", ms(&rt));
        printer.stop();
        let end = run.await??;
        assert_eq!(end, LoopEnd::Stopped);
        println!("[{:>4} ms] loop ended: {end:?}", ms(&rt));
        Ok::<(), BoxError>(())
    })
}
