//! What several benches share: a current-thread tokio runtime with timers
//! and a Machina `Runtime` on it.

use machina_core::rt::Runtime;

/// A current-thread tokio runtime with timers, and a Machina runtime on it
/// (keep the first alive as long as the second is used).
pub(crate) fn tokio_runtime() -> (tokio::runtime::Runtime, Runtime) {
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio");
    let rt = machina_tokio::runtime_from(tokio_rt.handle().clone()).expect("timer");
    (tokio_rt, rt)
}
