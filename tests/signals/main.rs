//! Real OS signals (Unix), on each adapter: run the `service_stack`
//! program with `--runtime tokio|smol|async-std`, send it SIGTERM, and
//! check from its output that the services stopped in reverse order with
//! exit code 0; that a stop hanging past the shutdown timeout ends with
//! the forced-exit code; and that a second signal forces the exit.

#![cfg(unix)]

#[cfg(all(target_os = "linux", feature = "journald"))]
mod journald;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Starts the program and returns it with a channel of its output lines.
fn launch(args: &[&str], env: &[(&str, &str)]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_service_stack"))
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .expect("service_stack starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

/// Collects lines until one contains `marker` (or 20 s pass).
fn read_until(rx: &mpsc::Receiver<String>, marker: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            let done = line.contains(marker);
            seen.push(line);
            if done {
                return;
            }
        }
    }
    panic!("no line with {marker:?} in {seen:?}");
}

fn send(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Waits for the exit code (20 s at most).
fn wait(child: &mut Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code().expect("an exit code, not a signal");
        }
        assert!(Instant::now() < deadline, "the program did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sigterm_stops_the_services_in_reverse_order_and_exits_0(runtime: &str) {
    let (mut child, rx) = launch(&["--runtime", runtime], &[]);
    let mut seen = Vec::new();
    read_until(&rx, "all services ready", &mut seen);
    send(&child, "TERM");
    read_until(&rx, "exit code", &mut seen);
    assert_eq!(wait(&mut child), 0, "{seen:?}");
    let at = |text: &str| {
        seen.iter()
            .position(|l| l.starts_with(text))
            .unwrap_or_else(|| panic!("{text:?} in {seen:?}"))
    };
    assert!(at("shutting down") < at("worker: stopped"));
    assert!(at("worker: stopped") < at("cache: stopped"));
    assert!(at("cache: stopped") < at("db: closed"));
}

fn a_stop_past_the_shutdown_timeout_forces_exit_code_70(runtime: &str) {
    let (mut child, rx) = launch(
        &["--runtime", runtime, "--stuck-stop"],
        &[("MACHINA_SHUTDOWN_TIMEOUT", "300ms")],
    );
    let mut seen = Vec::new();
    read_until(&rx, "all services ready", &mut seen);
    send(&child, "TERM");
    assert_eq!(wait(&mut child), 70, "{seen:?}");
}

fn a_second_signal_forces_the_exit_at_once(runtime: &str) {
    let (mut child, rx) = launch(&["--runtime", runtime, "--stuck-stop"], &[]);
    let mut seen = Vec::new();
    read_until(&rx, "all services ready", &mut seen);
    send(&child, "INT");
    read_until(&rx, "worker: stop hangs", &mut seen);
    let started = Instant::now();
    send(&child, "INT");
    assert_eq!(wait(&mut child), 70, "{seen:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "forced before the 2 s timeout"
    );
}

fn the_cron_job_fires_on_whole_seconds(runtime: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_service_stack"))
        .args(["--runtime", runtime, "--for", "2100"])
        .output()
        .expect("service_stack runs");
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let ticks: Vec<(u64, u32)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("clock: "))
        .map(|t| {
            let (secs, millis) = t.split_once('.').expect("secs.millis");
            (secs.parse().unwrap(), millis.parse().unwrap())
        })
        .collect();
    assert!(ticks.len() >= 2, "{stdout}");
    for pair in ticks.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + 1, "one run per second: {ticks:?}");
    }
    // Runs start at whole seconds (a generous margin for a loaded machine).
    assert!(ticks.iter().all(|&(_, ms)| ms < 500), "{ticks:?}");
}

macro_rules! on_each_adapter {
    ($($test:ident),*) => {$(
        mod $test {
            #[test]
            fn tokio() {
                super::$test("tokio");
            }

            #[test]
            fn smol() {
                super::$test("smol");
            }

            #[test]
            fn async_std() {
                super::$test("async-std");
            }
        }
    )*};
}

on_each_adapter!(
    sigterm_stops_the_services_in_reverse_order_and_exits_0,
    a_stop_past_the_shutdown_timeout_forces_exit_code_70,
    a_second_signal_forces_the_exit_at_once,
    the_cron_job_fires_on_whole_seconds
);

/// Logging follows MACHINA_LOG_FORMAT; a bad format is refused before
/// anything starts.
#[test]
fn logging_follows_the_environment() {
    let output = Command::new(env!("CARGO_BIN_EXE_service_stack"))
        .args(["--for", "300"])
        .env("MACHINA_LOG_FORMAT", "json")
        .env("MACHINA_LOG_LEVEL", "info")
        .output()
        .expect("service_stack runs");
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let json_tick = stderr
        .lines()
        .find(|l| l.contains("reporter tick"))
        .unwrap_or_else(|| panic!("no log line in {stderr}"));
    assert!(
        json_tick.starts_with('{') && json_tick.contains("\"level\":\"INFO\""),
        "{json_tick}"
    );

    let refused = Command::new(env!("CARGO_BIN_EXE_service_stack"))
        .args(["--for", "300"])
        .env("MACHINA_LOG_FORMAT", "xml")
        .output()
        .expect("service_stack runs");
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown log format \"xml\""));
    assert!(
        String::from_utf8_lossy(&refused.stdout).is_empty(),
        "nothing started"
    );
}
