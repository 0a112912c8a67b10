//! A real nginx on loopback for tests that need a server with its own idea
//! of a rate: started as a child process from a config in a temporary
//! directory, killed and cleaned up when the [`Nginx`] guard drops (also
//! when the test panics).
//!
//! It owns starting, stopping and reading nginx's logs; what the server
//! answers is the caller's `server { … }` block. It does not install nginx:
//! `.ci/run` does, and a test that needs it fails when it is missing.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long nginx may take to accept connections after it is started.
const STARTUP_LIMIT: Duration = Duration::from_secs(10);

/// A running nginx, killed when dropped.
#[derive(Debug)]
pub(crate) struct Nginx {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Nginx {
    /// Starts nginx with `http` as the body of its `http { … }` block.
    ///
    /// In `http`, `{dir}` stands for the server's temporary directory (for
    /// roots and logs) and `{port}` for a free loopback port; the caller's
    /// `server` should `listen 127.0.0.1:{port};`. Everything nginx writes
    /// (pid, logs, temp files) stays inside `{dir}`.
    ///
    /// # Panics
    /// If nginx is not installed, or does not accept connections within
    /// [`STARTUP_LIMIT`]; the message carries nginx's own error log.
    pub(crate) fn start(name: &str, http: &str) -> Nginx {
        let binary = find_binary();
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "machina-nginx-{name}-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("nginx temp dir");
        let port = free_port();
        let dir_str = dir.to_str().expect("temp dir is UTF-8");
        let http = http
            .replace("{dir}", dir_str)
            .replace("{port}", &port.to_string());
        let conf = format!(
            "daemon off;\n\
             master_process off;\n\
             worker_processes 1;\n\
             pid {dir_str}/nginx.pid;\n\
             error_log {dir_str}/error.log info;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n\
             client_body_temp_path {dir_str}/client_body;\n\
             proxy_temp_path {dir_str}/proxy;\n\
             fastcgi_temp_path {dir_str}/fastcgi;\n\
             uwsgi_temp_path {dir_str}/uwsgi;\n\
             scgi_temp_path {dir_str}/scgi;\n\
             {http}\n\
             }}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("write nginx.conf");
        let stderr = std::fs::File::create(dir.join("stderr.log")).expect("stderr log");
        let child = Command::new(&binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("could not run {}: {e}", binary.display()));
        let mut nginx = Nginx { child, dir, port };
        nginx.wait_until_accepting();
        nginx
    }

    /// The loopback port nginx listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The server's temporary directory (`{dir}` in its config).
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// What nginx has written to the file `name` in its directory so far
    /// (empty if nothing).
    pub(crate) fn read(&self, name: &str) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(self.dir.join(name)) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    fn wait_until_accepting(&mut self) {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + STARTUP_LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("nginx child status") {
                panic!(
                    "nginx exited at startup ({status}):\n{}{}",
                    self.read("stderr.log"),
                    self.read("error.log")
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not accept connections on {addr} within {STARTUP_LIMIT:?}:\n{}",
                self.read("error.log")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `/usr/sbin/nginx`, or `nginx` on `PATH`.
///
/// # Panics
/// If there is none: a test that asked for nginx cannot run without it, and
/// CI installs it, so a missing nginx is a failure, not a skip.
fn find_binary() -> PathBuf {
    let standard = PathBuf::from("/usr/sbin/nginx");
    if standard.is_file() {
        return standard;
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nginx is not installed (not at /usr/sbin/nginx nor on PATH): \
                 install it (`apt-get install -y nginx-light`, as .ci/run does) \
                 or leave out --ignored"
            )
        })
}

/// A loopback port that was free a moment ago: bound to port 0, read, and
/// released for nginx to take.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}
