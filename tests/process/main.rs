//! `ProcessService` with real child processes (`sh -c`), on every real
//! runtime: output logged under the service's name, SIGTERM then SIGKILL
//! on stop, an exit that brings the stack down, respawns, and a command
//! that cannot run.

#![cfg(unix)]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use machina_core::service::{ProcessService, RestartPolicy, Supervisor};
use machina_core::waits::Wait;
use machina_test::real_runtimes;

/// Every log line of this test binary, as `service|message`.
fn logged() -> &'static Arc<Mutex<Vec<String>>> {
    static LINES: OnceLock<Arc<Mutex<Vec<String>>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = lines.clone();
        let writer = move || Capture(sink.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_writer(writer)
            .with_ansi(false)
            .without_time()
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        lines
    })
}

struct Capture(Arc<Mutex<Vec<String>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(buf).into_owned());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn lines_with(text: &str) -> Vec<String> {
    logged()
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(text))
        .cloned()
        .collect()
}

/// Waits (really) until `check` holds, for at most 5 s.
async fn eventually(rt: &machina_core::Runtime, what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "never: {what}");
        rt.sleep(Duration::from_millis(20)).await;
    }
}

fn sh(script: &str) -> ProcessService {
    ProcessService::new("sh").args(["-c", script])
}

real_runtimes! {
    /// Output goes to the log with the service's name; SIGTERM ends a
    /// child that honours it at once.
    async fn output_is_logged_and_sigterm_stops_it(rt: Runtime, env: Env) {
        logged();
        let tag = format!("out-{:?}", env.kind);
        let script = format!(
            "trap 'echo {tag}-term; exit 0' TERM; echo {tag}-hello; echo {tag}-oops >&2; while true; do sleep 0.02; done"
        );
        let service = format!("svc-{tag}");
        let stack = Supervisor::builder(&rt)
            .service(&service, sh(&script).stop_grace(Duration::from_secs(5)), &[])
            .build()
            .unwrap();
        stack.start().await.unwrap();
        eventually(&rt, "both lines logged", || {
            !lines_with(&format!("{tag}-hello")).is_empty() && !lines_with(&format!("{tag}-oops")).is_empty()
        })
        .await;
        let hello = &lines_with(&format!("{tag}-hello"))[0];
        assert!(hello.contains("INFO") && hello.contains(&service), "{hello}");
        assert!(lines_with(&format!("{tag}-oops"))[0].contains("WARN"));
        let t0 = Instant::now();
        let report = stack.stop().await;
        assert!(report.is_clean(), "{report:?}");
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
        eventually(&rt, "the trap ran", || !lines_with(&format!("{tag}-term")).is_empty()).await;
    }

    /// A child that ignores SIGTERM is killed after the grace period.
    async fn a_child_ignoring_sigterm_is_killed_after_the_grace(rt: Runtime, env: Env) {
        let stack = Supervisor::builder(&rt)
            .service(
                "stubborn",
                sh("trap '' TERM; while true; do sleep 0.02; done").stop_grace(Duration::from_millis(300)),
                &[],
            )
            .build()
            .unwrap();
        stack.start().await.unwrap();
        rt.sleep(Duration::from_millis(100)).await;
        let t0 = Instant::now();
        let report = stack.stop().await;
        let took = t0.elapsed();
        assert!(report.is_clean(), "{report:?}");
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }

    /// An exit while the stack runs is a failure of the stack.
    async fn an_exit_while_running_brings_the_stack_down(rt: Runtime, env: Env) {
        let stack = Supervisor::builder(&rt)
            .service("quitter", sh("sleep 0.1; exit 3"), &[])
            .build()
            .unwrap();
        stack.start().await.unwrap();
        let (service, error) = stack.failure().await.unwrap();
        assert_eq!(service, "quitter");
        assert!(error.to_string().contains("exit status: 3"), "{error}");
        stack.stop().await;
    }

    /// A respawning service runs again after each exit, up to its limit.
    async fn a_respawning_service_runs_again_up_to_its_limit(rt: Runtime, env: Env) {
        logged();
        let tag = format!("respawn-{:?}", env.kind);
        let policy = RestartPolicy::OnFailure {
            waits: Wait::Fixed(Duration::from_millis(50)),
            max_restarts: 2,
        };
        let stack = Supervisor::builder(&rt)
            .service(&tag, sh(&format!("echo {tag}-ran; exit 1")).respawn(policy), &[])
            .build()
            .unwrap();
        stack.start().await.unwrap();
        let (service, _) = stack.failure().await.unwrap();
        assert_eq!(service, tag);
        eventually(&rt, "three runs logged", || lines_with(&format!("{tag}-ran")).len() == 3).await;
        stack.stop().await;
    }

    /// A program that does not exist fails the start, with its name.
    async fn a_command_that_cannot_run_fails_the_start(rt: Runtime, env: Env) {
        let stack = Supervisor::builder(&rt)
            .service("ghost", ProcessService::new("/nonexistent/machina-ghost"), &[])
            .build()
            .unwrap();
        let error = stack.start().await.unwrap_err();
        assert_eq!(error.service, "ghost");
        assert!(error.to_string().contains("machina-ghost"), "{error}");
    }
}

/// A service stack dropped without a stop (a forced exit aborts what is
/// left) does not leave its child running.
#[test]
fn an_abandoned_run_kills_its_child() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pid_file = std::env::temp_dir().join(format!("machina-orphan-{}", std::process::id()));
    let _ = std::fs::remove_file(&pid_file);
    runtime.block_on(async {
        let rt = machina_tokio::runtime().unwrap();
        let script = format!("echo $$ > {}; exec sleep 30", pid_file.display());
        let stack = Supervisor::builder(&rt)
            .service("orphan", sh(&script), &[])
            .build()
            .unwrap();
        stack.start().await.unwrap();
        eventually(&rt, "the pid is written", || {
            std::fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n'))
        })
        .await;
        // Abort everything without stopping: what a forced exit does.
        drop(stack);
    });
    drop(runtime);
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_owned();
    let _ = std::fs::remove_file(&pid_file);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ");
        if !alive {
            break;
        }
        assert!(Instant::now() < deadline, "child {pid} still alive");
        std::thread::sleep(Duration::from_millis(50));
    }
}
