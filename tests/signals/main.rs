//! Real OS signals (Unix), on each adapter: run the `service_stack`
//! program with `--runtime tokio|smol|async-std`, send it SIGTERM, and
//! check from its output that the services stopped in reverse order with
//! exit code 0; that a stop hanging past the shutdown timeout ends with
//! the forced-exit code; that a second signal forces the exit; and that a
//! shutdown under load names every call it cancels.

#![cfg(unix)]

#[cfg(all(target_os = "linux", feature = "journald"))]
mod journald;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Starts the program and returns it with a channel of its output lines
/// (standard output and standard error, each line whole).
fn launch(args: &[&str], env: &[(&str, &str)]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_service_stack"))
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("service_stack starts");
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    forward(stdout, tx.clone());
    forward(stderr, tx);
    (child, rx)
}

fn forward(from: impl std::io::Read + Send + 'static, to: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            if to.send(line).is_err() {
                return;
            }
        }
    });
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

fn sigterm_stops_dependents_first_and_exits_0(runtime: &str) {
    let (mut child, rx) = launch(&["--runtime", runtime, "--forever"], &[]);
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
    // The hooks in order around the stops, and each service told why.
    assert!(at("starting: [") < at("all services ready"));
    assert!(at("all services ready") < at("shutting down"));
    assert!(at("shutting down") < at("worker: stopped (Signal)"));
    assert!(at("worker: stopped (Signal)") < at("cache: stopped (Signal)"));
    assert!(at("cache: stopped (Signal)") < at("db: closed (Signal)"));
    // Dependents first: worker, then cache, then db; the services with no
    // dependency between them (reporter, clock) stop alongside.
    let order = &seen[at("stopped, in order: [")];
    let pos = |name: &str| {
        order
            .find(&format!("\"{name}\""))
            .unwrap_or_else(|| panic!("{name} in {order}"))
    };
    assert!(at("db: closed (Signal)") < at("stopped, in order: ["));
    assert!(
        pos("worker") < pos("cache") && pos("cache") < pos("db"),
        "{order}"
    );
    assert!(
        order.contains("\"reporter\"") && order.contains("\"clock\""),
        "{order}"
    );
}

fn a_stop_past_the_shutdown_timeout_forces_exit_code_70(runtime: &str) {
    let (mut child, rx) = launch(
        &["--runtime", runtime, "--stuck-stop", "--forever"],
        &[("MACHINA_SHUTDOWN_TIMEOUT", "300ms")],
    );
    let mut seen = Vec::new();
    read_until(&rx, "all services ready", &mut seen);
    let signalled = Instant::now();
    send(&child, "TERM");
    read_until(&rx, "shutdown timed out", &mut seen);
    assert_eq!(wait(&mut child), 70, "{seen:?}");
    // 300 ms from the environment, not the program's own 2 s.
    assert!(
        signalled.elapsed() < Duration::from_millis(1500),
        "{:?}",
        signalled.elapsed()
    );
    let forced = seen.last().expect("the forced-exit line");
    assert!(
        forced.contains("worker"),
        "names what did not stop: {forced}"
    );
}

fn a_second_signal_forces_the_exit_at_once(runtime: &str) {
    let (mut child, rx) = launch(&["--runtime", runtime, "--stuck-stop", "--forever"], &[]);
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

/// SIGTERM while a bot has 64 ten-second calls running and 10 000
/// queued: the bot's grace period (1 s) runs out, every call is named as
/// cancelled (none dropped silently), and the program exits cleanly within
/// the stack's shutdown timeout (2 s).
fn sigterm_under_load_names_every_call_and_exits_in_time(runtime: &str) {
    let (mut child, rx) = launch(&["--runtime", runtime, "--forever", "--load"], &[]);
    let mut seen = Vec::new();
    read_until(&rx, "all services ready", &mut seen);
    // The bot spawns its calls as it starts, in the background: the line
    // may come before or after the stack is ready.
    if !seen.iter().any(|l| l == "bot: 10064 calls spawned") {
        read_until(&rx, "bot: 10064 calls spawned", &mut seen);
    }
    let signalled = Instant::now();
    send(&child, "TERM");
    read_until(&rx, "exit code", &mut seen);
    let code = wait(&mut child);
    let took = signalled.elapsed();
    assert_eq!(code, 0, "{seen:?}");
    assert!(
        seen.iter()
            .any(|l| l == "bot: 0 finished, 10064 cancelled at shutdown"),
        "{seen:?}"
    );
    assert!(
        took >= Duration::from_secs(1),
        "the grace period was waited: {took:?}"
    );
    assert!(
        took < Duration::from_secs(4),
        "within the shutdown timeout: {took:?}"
    );
}

/// Under a stand-in for systemd (a real unix datagram socket named by
/// `NOTIFY_SOCKET`, a watchdog of 400 ms in `WATCHDOG_USEC`): `READY=1`
/// once the stack has started, `WATCHDOG=1` about every 200 ms, and
/// `STOPPING=1` when SIGTERM starts the shutdown.
fn systemd_hears_ready_watchdog_pings_and_stopping(runtime: &str) {
    use std::os::unix::net::UnixDatagram;
    let dir = std::env::temp_dir().join(format!("machina-notify-{}-{runtime}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let (messages_tx, messages) = mpsc::channel::<(Instant, String)>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match socket.recv(&mut buf) {
                Ok(n) => {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if messages_tx.send((Instant::now(), text)).is_err() {
                        return;
                    }
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return,
            }
        }
    });
    let socket_path = path.to_str().expect("a UTF-8 path").to_owned();
    let (mut child, rx) = launch(
        &["--runtime", runtime, "--forever"],
        &[("NOTIFY_SOCKET", &socket_path), ("WATCHDOG_USEC", "400000")],
    );
    let mut seen = Vec::new();
    read_until(&rx, "all services ready", &mut seen);
    std::thread::sleep(Duration::from_millis(1000));
    send(&child, "TERM");
    read_until(&rx, "exit code", &mut seen);
    assert_eq!(wait(&mut child), 0, "{seen:?}");
    std::thread::sleep(Duration::from_millis(200));
    let got: Vec<(Instant, String)> = messages.try_iter().collect();
    let _ = std::fs::remove_dir_all(&dir);
    let first = |text: &str| {
        got.iter()
            .position(|(_, m)| m.lines().any(|l| l == text))
            .unwrap_or_else(|| panic!("{text:?} in {got:?}"))
    };
    assert!(first("READY=1") < first("STOPPING=1"), "{got:?}");
    assert!(
        got.iter()
            .any(|(_, m)| m.lines().any(|l| l.starts_with("STATUS=running: "))),
        "{got:?}"
    );
    let pings: Vec<Instant> = got
        .iter()
        .filter(|(_, m)| m.lines().any(|l| l == "WATCHDOG=1"))
        .map(|(at, _)| *at)
        .collect();
    // About 1.2 s of run at one ping per 200 ms: at least four, spaced
    // well under 600 ms (1.5 watchdog intervals, a margin for a loaded
    // machine; the exact cadence is checked on virtual time).
    assert!(pings.len() >= 4, "{got:?}");
    assert!(
        pings
            .windows(2)
            .all(|w| w[1] - w[0] < Duration::from_millis(600)),
        "{pings:?}"
    );
}

/// `GET path` over a plain blocking socket: (status, body).
fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).expect("connects");
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).expect("an answer");
    let status = answer[9..12].parse().expect("a status");
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Where the program says `name` listens.
fn listening(seen: &[String], name: &str) -> String {
    let prefix = format!("{name}: listening on ");
    seen.iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{prefix:?} in {seen:?}"))
        .to_owned()
}

fn the_stack_serves_health_readiness_and_metrics(runtime: &str) {
    let (mut child, rx) = launch(&["--runtime", runtime, "--forever"], &[]);
    let mut seen = Vec::new();
    read_until(&rx, "all services ready", &mut seen);
    let health = listening(&seen, "health");
    assert_eq!(http_get(&health, "/healthz"), (200, "ok\n".to_owned()));
    assert_eq!(http_get(&health, "/readyz"), (200, "ready\n".to_owned()));
    let (status, metrics) = http_get(&health, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("machina_group_in_flight{name=\"batches\"}"),
        "{metrics}"
    );
    if runtime == "tokio" {
        let web = listening(&seen, "http");
        assert_eq!(
            http_get(&web, "/"),
            (200, "hello from service_stack\n".to_owned())
        );
        let grpc = listening(&seen, "grpc");
        std::net::TcpStream::connect(&grpc).expect("the gRPC port accepts");
    } else {
        assert!(
            !seen.iter().any(|l| l.starts_with("http: listening")),
            "HTTP is tokio-only"
        );
    }
    send(&child, "TERM");
    read_until(&rx, "exit code", &mut seen);
    assert_eq!(wait(&mut child), 0, "{seen:?}");
    assert!(
        std::net::TcpStream::connect(&health).is_err(),
        "stopped with the stack"
    );
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
    sigterm_stops_dependents_first_and_exits_0,
    a_stop_past_the_shutdown_timeout_forces_exit_code_70,
    a_second_signal_forces_the_exit_at_once,
    the_cron_job_fires_on_whole_seconds,
    sigterm_under_load_names_every_call_and_exits_in_time,
    systemd_hears_ready_watchdog_pings_and_stopping,
    the_stack_serves_health_readiness_and_metrics
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

/// Runs `service_stack --for 300` with `env` and `args`.
fn run_briefly(env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_service_stack"))
        .args(["--for", "300"])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("service_stack runs")
}

/// MACHINA_LOG_LEVEL filters: at `warn` the info ticks are not logged
/// (the program still runs and prints them on standard output).
#[test]
fn the_log_level_from_the_environment_filters() {
    let output = run_briefly(&[("MACHINA_LOG_LEVEL", "warn")], &[]);
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).contains("reporter: tick"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("reporter tick"), "{stderr}");

    let output = run_briefly(&[("MACHINA_LOG_LEVEL", "info")], &[]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("reporter tick"));
}

/// `color` writes ANSI colour codes; `plain` none.
#[test]
fn the_color_format_colours_and_plain_does_not() {
    let coloured = run_briefly(&[("MACHINA_LOG_FORMAT", "color")], &[]);
    assert_eq!(coloured.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&coloured.stderr);
    let tick = stderr
        .lines()
        .find(|l| l.contains("reporter tick"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(tick.contains("\u{1b}["), "{tick:?}");
    let plain = run_briefly(&[("MACHINA_LOG_FORMAT", "plain")], &[]);
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(
        stderr.contains("reporter tick") && !stderr.contains('\u{1b}'),
        "{stderr:?}"
    );
}

/// A program that sets up `tracing` itself keeps its own subscriber: the
/// entrypoint's (plain text here) stands aside.
#[test]
fn logging_stands_aside_when_the_program_set_up_tracing() {
    let output = run_briefly(&[("MACHINA_LOG_FORMAT", "plain")], &["--own-tracing"]);
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tick = stderr
        .lines()
        .find(|l| l.contains("reporter tick"))
        .unwrap_or_else(|| panic!("no tick in {stderr}"));
    assert!(
        tick.starts_with('{'),
        "the program's JSON, not plain: {tick}"
    );
}

/// A MACHINA_SHUTDOWN_TIMEOUT that does not parse is refused before
/// anything starts.
#[test]
fn a_bad_shutdown_timeout_is_refused() {
    let output = run_briefly(&[("MACHINA_SHUTDOWN_TIMEOUT", "1x")], &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid MACHINA_SHUTDOWN_TIMEOUT \"1x\""),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).is_empty(),
        "nothing started"
    );
}

/// With no arguments the example runs for a few seconds and then shuts
/// down in order by itself.
#[test]
fn the_example_ends_by_itself_after_a_few_seconds() {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_service_stack"))
        .output()
        .expect("service_stack runs");
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("db: closed (Shutdown)"), "{stdout}");
    assert!(started.elapsed() >= Duration::from_secs(5));
}
