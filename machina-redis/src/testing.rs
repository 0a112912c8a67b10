//! A `redis-server` of a test's own (feature `test-util`): started on a
//! free loopback port in a temporary directory, stopped (and the directory
//! removed) on drop — so a test can also kill or restart it.
//!
//! With `MACHINA_REDIS_URL` set, [`RedisServer::start`] uses that server
//! instead of starting one (then [`RedisServer::restart`] and
//! [`RedisServer::kill`] are refused: the server is not the test's).
//! `redis-server` must be on the `PATH` otherwise; Debian's package is
//! `redis-server`.

use std::io;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The variable naming a Redis to use instead of starting one.
pub const REDIS_URL_VAR: &str = "MACHINA_REDIS_URL";

/// How long a started server may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A test's Redis; see the module docs.
#[derive(Debug)]
pub struct RedisServer {
    url: String,
    own: Option<Own>,
}

/// A server this process started.
#[derive(Debug)]
struct Own {
    port: u16,
    dir: PathBuf,
    aof: bool,
    password: Option<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server with no persistence (or uses `MACHINA_REDIS_URL`).
    ///
    /// # Errors
    /// The I/O error if `redis-server` cannot be started or does not
    /// answer within 10 s.
    pub fn start() -> io::Result<Self> {
        Self::start_with(false, None)
    }

    /// Starts a server that asks for `password` (`requirepass`); its
    /// [`url`](Self::url) carries it. With `MACHINA_REDIS_URL` set, that
    /// server is used as it is.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_with_password(password: &str) -> io::Result<Self> {
        Self::start_with(false, Some(password.to_owned()))
    }

    /// Starts a server with the append-only file on (`appendfsync always`),
    /// so that what it accepted survives a restart.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_with_aof() -> io::Result<Self> {
        Self::start_with(true, None)
    }

    fn start_with(aof: bool, password: Option<String>) -> io::Result<Self> {
        if let Ok(url) = std::env::var(REDIS_URL_VAR) {
            return Ok(RedisServer { url, own: None });
        }
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!(
            "machina-redis-{}-{port}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        ));
        std::fs::create_dir_all(&dir)?;
        let url = match &password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{port}/"),
            None => format!("redis://127.0.0.1:{port}/"),
        };
        let mut own = Own {
            port,
            dir,
            aof,
            password,
            child: None,
        };
        own.spawn()?;
        Ok(RedisServer {
            url,
            own: Some(own),
        })
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port of a server this test started.
    pub fn port(&self) -> Option<u16> {
        self.own.as_ref().map(|own| own.port)
    }

    /// Stops the server at once (SIGKILL) and starts it again on the same
    /// port, with the same data directory (so with AOF on, what it had
    /// accepted is back).
    ///
    /// # Errors
    /// An error if the server is not this test's, or cannot be started.
    pub fn restart(&mut self) -> io::Result<()> {
        let own = self.own_mut()?;
        own.kill();
        own.spawn()
    }

    /// Stops the server at once (SIGKILL); [`resume`](Self::resume) starts
    /// it again.
    ///
    /// # Errors
    /// An error if the server is not this test's.
    pub fn kill(&mut self) -> io::Result<()> {
        self.own_mut()?.kill();
        Ok(())
    }

    /// Starts a killed server again on the same port and data.
    ///
    /// # Errors
    /// As [`restart`](Self::restart).
    pub fn resume(&mut self) -> io::Result<()> {
        self.own_mut()?.spawn()
    }

    /// Whether this test started the server (and so may kill it).
    pub fn is_own(&self) -> bool {
        self.own.is_some()
    }

    fn own_mut(&mut self) -> io::Result<&mut Own> {
        self.own.as_mut().ok_or_else(|| {
            io::Error::other(format!(
                "the Redis at {REDIS_URL_VAR} is not this test's to stop or restart"
            ))
        })
    }
}

impl Own {
    fn spawn(&mut self) -> io::Result<()> {
        let mut command = Command::new("redis-server");
        command
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(&self.dir)
            .arg("--save")
            .arg("")
            .args(["--daemonize", "no", "--loglevel", "warning"]);
        if let Some(password) = &self.password {
            command.arg("--requirepass").arg(password);
        }
        if self.aof {
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot start redis-server ({e}); install it (Debian: redis-server)"),
                )
            })?;
        self.child = Some(child);
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            if ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("redis-server on port {} did not answer", self.port),
        ))
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Own {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether a Redis on `port` answers `PING` (with `+PONG`, or with an
/// error while it loads its data: then not yet).
fn ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    // `+PONG`, or `-NOAUTH` from a server that asks for a password: up
    // either way (`-LOADING` is not).
    let mut answer = [0u8; 5];
    stream.read_exact(&mut answer).is_ok() && (&answer == b"+PONG" || &answer == b"-NOAU")
}

/// A loopback port free at the time of asking.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}
