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
    tls: bool,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server with no persistence (or uses `MACHINA_REDIS_URL`).
    ///
    /// # Errors
    /// The I/O error if `redis-server` cannot be started or does not
    /// answer within 10 s.
    pub fn start() -> io::Result<Self> {
        Self::start_with(false, None, false)
    }

    /// Starts a server that speaks only TLS, with a certificate for
    /// `127.0.0.1` signed by a CA of its own (both made by the `openssl`
    /// command), and asks
    /// for `password`; its [`url`](Self::url) is `rediss://` and carries
    /// the password, [`certificate`](Self::certificate) is the CA's PEM to
    /// trust. Not with `MACHINA_REDIS_URL` (refused).
    ///
    /// # Errors
    /// As [`start`](Self::start), or if `openssl` cannot make the
    /// certificate.
    pub fn start_with_tls(password: &str) -> io::Result<Self> {
        if std::env::var(REDIS_URL_VAR).is_ok() {
            return Err(io::Error::other(format!(
                "a TLS server is started by the test itself; unset {REDIS_URL_VAR}"
            )));
        }
        Self::start_with(false, Some(password.to_owned()), true)
    }

    /// The PEM certificate of the CA that signed the certificate of a TLS
    /// server this test started.
    ///
    /// # Errors
    /// The I/O error reading it, or if the server has no TLS.
    pub fn certificate(&self) -> io::Result<Vec<u8>> {
        match &self.own {
            Some(own) if own.tls => std::fs::read(own.dir.join("ca.pem")),
            _ => Err(io::Error::other("this Redis was not started with TLS")),
        }
    }

    /// Starts a server that asks for `password` (`requirepass`); its
    /// [`url`](Self::url) carries it. With `MACHINA_REDIS_URL` set, that
    /// server is used as it is.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_with_password(password: &str) -> io::Result<Self> {
        Self::start_with(false, Some(password.to_owned()), false)
    }

    /// Starts a server with the append-only file on (`appendfsync always`),
    /// so that what it accepted survives a restart.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_with_aof() -> io::Result<Self> {
        Self::start_with(true, None, false)
    }

    fn start_with(aof: bool, password: Option<String>, tls: bool) -> io::Result<Self> {
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
        let scheme = if tls { "rediss" } else { "redis" };
        let url = match &password {
            Some(password) => format!("{scheme}://:{password}@127.0.0.1:{port}/"),
            None => format!("{scheme}://127.0.0.1:{port}/"),
        };
        if tls {
            make_certificate(&dir)?;
        }
        let mut own = Own {
            port,
            dir,
            aof,
            password,
            tls,
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
        if self.tls {
            command
                .args(["--port", "0", "--tls-port"])
                .arg(self.port.to_string())
                .arg("--tls-cert-file")
                .arg(self.dir.join("cert.pem"))
                .arg("--tls-key-file")
                .arg(self.dir.join("key.pem"))
                .args(["--tls-auth-clients", "no"]);
        } else {
            command.arg("--port").arg(self.port.to_string());
        }
        command
            // `DEBUG SLEEP` lets a test make Redis slow.
            .args(["--enable-debug-command", "local"])
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
            let up = if self.tls {
                // Listening is enough: the handshake is the test's.
                TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok()
            } else {
                ping(self.port)
            };
            if up {
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

/// A private CA (`ca.pem`) and a certificate for `127.0.0.1` it signed
/// (`cert.pem`, `key.pem`) in `dir`, made with the `openssl` command.
fn make_certificate(dir: &std::path::Path) -> io::Result<()> {
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )?;
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=machina test CA",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "req.pem",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "req.pem",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            "cert.pem",
            "-extfile",
            "ext.cnf",
        ],
    ];
    for step in steps {
        let made = Command::new("openssl")
            .args(step)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot run openssl ({e}); install it"))
            })?;
        if !made.success() {
            return Err(io::Error::other(format!("openssl {} failed", step[0])));
        }
    }
    Ok(())
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
