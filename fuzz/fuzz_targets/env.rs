//! The entrypoint's environment settings on any values: never a panic; a
//! shutdown timeout or a log setting is accepted or refused with an error,
//! and an entrypoint builds exactly when every setting is accepted.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use machina_core::service::{Entrypoint, EnvConfig, LogConfig};
use machina_core::testing::MockRuntime;

#[derive(Debug, Arbitrary)]
struct Input {
    shutdown_timeout: Option<String>,
    log_level: Option<String>,
    log_format: Option<String>,
}

fuzz_target!(|input: Input| {
    let env = EnvConfig::from_lookup(|name| match name {
        EnvConfig::SHUTDOWN_TIMEOUT => input.shutdown_timeout.clone(),
        EnvConfig::LOG_LEVEL => input.log_level.clone(),
        EnvConfig::LOG_FORMAT => input.log_format.clone(),
        _ => None,
    });
    let timeout_ok = env.shutdown_timeout().is_ok();
    // `journald` is refused without the feature or the journal: an error,
    // not a panic.
    let logging_ok = LogConfig::new().apply_env(&env).is_ok();
    let mock = MockRuntime::new();
    let built = Entrypoint::builder(&mock.runtime())
        .default_logging()
        .env(env)
        .build();
    assert_eq!(built.is_ok(), timeout_ok && logging_ok);
});
