//! [`ProcessService`]: an external command as a service (aiomisc's
//! `ProcessService` and `RespawningProcessService`), on any runtime: the
//! child's output is read and its exit awaited on the runtime's blocking
//! pool, so no adapter needs a process API of its own (Unix, feature
//! `process`).

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::channel::oneshot;

use super::supervisor::{RestartPolicy, Service, ServiceContext, ServiceFuture, StopContext};
use crate::error::BoxError;
use crate::rt::Runtime;

/// An external command run as a service: started with the stack, its
/// standard output and error logged line by line (`info` and `warn`, with
/// the service's name), stopped with SIGTERM and, after a grace period,
/// SIGKILL. An exit while the stack runs is a failure of the service — it
/// brings the stack down — unless [`respawn`](Self::respawn) restarts it.
///
/// The program must exist: a command that cannot be spawned fails the
/// start. Each running child holds two threads of the blocking pool (its
/// output) and one waiting for its exit.
///
/// # Examples
///
/// ```no_run
/// use machina_core::service::{ProcessService, RestartPolicy, Supervisor};
/// use std::time::Duration;
///
/// # fn stack(rt: &machina_core::Runtime) -> Result<Supervisor, machina_core::BoxError> {
/// let worker = ProcessService::new("python3")
///     .args(["-m", "worker"])
///     .env("WORKER_QUEUE", "jobs")
///     .current_dir("/srv/app")
///     .stop_grace(Duration::from_secs(5))
///     .respawn(RestartPolicy::on_failure(Duration::from_secs(1), 10));
/// Ok(Supervisor::builder(rt).service("worker", worker, &[]).build()?)
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ProcessService {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    grace: Duration,
    restart: RestartPolicy,
    running: Arc<Mutex<Running>>,
}

/// The child of the current run, as far as a stop needs it.
#[derive(Debug, Default)]
struct Running {
    pid: Option<u32>,
    /// Completes when the current child has exited.
    exited: Option<oneshot::Receiver<()>>,
    stopping: bool,
}

/// How long a stop waits after SIGKILL for the exit to be seen.
const AFTER_KILL: Duration = Duration::from_secs(2);

impl ProcessService {
    /// Runs `program` (looked up in `PATH` if it has no slash).
    pub fn new(program: impl Into<OsString>) -> Self {
        ProcessService {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            grace: Duration::from_secs(10),
            restart: RestartPolicy::Never,
            running: Arc::default(),
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the child (on top of this
    /// process's environment).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs the child in `dir`.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// How long a stop waits after SIGTERM before SIGKILL (default 10 s).
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Restarts the command when it exits (aiomisc's
    /// `RespawningProcessService`) under `policy`: after each of its
    /// waits, up to its limit; an exit after that brings the stack down.
    pub fn respawn(mut self, policy: RestartPolicy) -> Self {
        self.restart = policy;
        self
    }

    fn running(&self) -> MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn spawn_child(&self) -> std::io::Result<Child> {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        command.spawn()
    }

    /// Runs `child` to its exit: logs its output, then says how it ended.
    async fn supervise(
        self: Arc<Self>,
        rt: Runtime,
        name: Arc<str>,
        mut child: Child,
    ) -> Result<(), BoxError> {
        let (exited_tx, exited_rx) = oneshot::channel();
        {
            let mut running = self.running();
            running.pid = Some(child.id());
            running.exited = Some(exited_rx);
        }
        // If this run is abandoned (a forced exit aborts the service's
        // tasks), the child must not outlive it.
        let _orphan_guard = KillOnDrop {
            pid: child.id(),
            running: self.running.clone(),
        };
        if let Some(out) = child.stdout.take() {
            forward(&rt, name.clone(), out, false)?;
        }
        if let Some(err) = child.stderr.take() {
            forward(&rt, name.clone(), err, true)?;
        }
        let status = rt
            .spawn_blocking(move || child.wait())?
            .await
            .map_err(|e| Box::new(e) as BoxError)??;
        let stopping = {
            let mut running = self.running();
            running.pid = None;
            running.stopping
        };
        let _ = exited_tx.send(());
        if stopping {
            tracing::info!(service = %name, %status, "process stopped");
            return Ok(());
        }
        Err(format!(
            "process {:?} of service {name:?} exited ({status})",
            self.program
        )
        .into())
    }
}

/// Kills the child if its run ends without seeing it exit.
struct KillOnDrop {
    pid: u32,
    running: Arc<Mutex<Running>>,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.pid == Some(self.pid) {
            tracing::warn!(pid = self.pid, "process run abandoned; killing the child");
            signal(self.pid, rustix::process::Signal::KILL);
        }
    }
}

/// Logs each line of `from` with the service's name, on the blocking pool.
fn forward(
    rt: &Runtime,
    name: Arc<str>,
    from: impl Read + Send + 'static,
    stderr: bool,
) -> Result<(), BoxError> {
    rt.spawn_blocking(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { return };
            if stderr {
                tracing::warn!(service = %name, stream = "stderr", "{line}");
            } else {
                tracing::info!(service = %name, stream = "stdout", "{line}");
            }
        }
    })?
    .detach();
    Ok(())
}

/// Sends `signal` to process `pid`; a process that is gone already is
/// not an error.
fn signal(pid: u32, signal: rustix::process::Signal) {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    if let Err(error) = rustix::process::kill_process(pid, signal)
        && error != rustix::io::Errno::SRCH
    {
        tracing::warn!(%error, ?signal, "could not signal the process");
    }
}

impl Service for ProcessService {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            self.running().stopping = false;
            // The first child is spawned here, so a command that cannot run
            // fails the start; respawns happen in the background.
            let mut first = Some(
                self.spawn_child()
                    .map_err(|e| format!("cannot run {:?}: {e}", self.program))?,
            );
            let (rt, name) = (ctx.runtime().clone(), Arc::<str>::from(ctx.name()));
            let this = self.clone();
            ctx.spawn_restarting(self.restart, move || {
                let (this, rt, name) = (this.clone(), rt.clone(), name.clone());
                let child = first.take();
                async move {
                    let child = match child {
                        Some(child) => child,
                        None => this.spawn_child()?,
                    };
                    this.supervise(rt, name, child).await
                }
            });
            Ok(())
        })
    }

    fn stop(self: Arc<Self>, ctx: StopContext) -> ServiceFuture {
        Box::pin(async move {
            let (pid, exited) = {
                let mut running = self.running();
                running.stopping = true;
                (running.pid, running.exited.take())
            };
            let (Some(pid), Some(exited)) = (pid, exited) else {
                return Ok(());
            };
            signal(pid, rustix::process::Signal::TERM);
            let rt = ctx.runtime();
            let exited = futures::FutureExt::shared(exited);
            if rt.timeout(self.grace, exited.clone()).await.is_ok() {
                return Ok(());
            }
            tracing::warn!(service = ctx.name(), grace = ?self.grace, "process ignored SIGTERM; killing it");
            signal(pid, rustix::process::Signal::KILL);
            rt.timeout(AFTER_KILL, exited)
                .await
                .map_err(|_| format!("process {pid} did not exit after SIGKILL"))?
                .ok();
            Ok(())
        })
    }

    fn graceful_shutdown_timeout(&self) -> Option<Duration> {
        Some(self.grace.saturating_add(AFTER_KILL))
    }
}
