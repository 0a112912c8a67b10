//! Log format `journald` for real: `service_stack` runs in a private mount
//! namespace (`unshare`) whose `/run/systemd/journal` is a directory of
//! this test, so the datagrams `tracing-journald` sends to the journal's
//! fixed socket path arrive at a socket the test reads. No systemd needed,
//! and the machine's own journal is never touched.

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// A directory that is removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("machina-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Mount namespaces need root; anywhere else these tests say so and pass.
fn can_unshare() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        eprintln!("skipped: a private mount namespace needs root (CI runs as root)");
    }
    root
}

/// Runs `service_stack --for 300` with `MACHINA_LOG_FORMAT=journald` in a
/// mount namespace with an empty `/run`, into which `journal_dir` (if any)
/// is mounted as `/run/systemd/journal`.
fn run_with_journal(journal_dir: Option<&Path>) -> Output {
    let script = "mount -t tmpfs machina-test /run && mkdir -p /run/systemd/journal \
                  && if [ -n \"$0\" ]; then mount --bind \"$0\" /run/systemd/journal; fi \
                  && exec \"$1\" --for 300";
    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .arg(journal_dir.map(Path::as_os_str).unwrap_or_default())
        .arg(env!("CARGO_BIN_EXE_service_stack"))
        .env("MACHINA_LOG_FORMAT", "journald")
        .env("MACHINA_LOG_LEVEL", "info")
        .output()
        .expect("unshare runs");
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("unshare:"),
        "the namespace could not be made: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// One journal entry in the native protocol: `KEY=value\n`, or for values
/// that may hold newlines `KEY\n` + little-endian u64 length + bytes + `\n`.
fn parse_entry(mut data: &[u8]) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    while !data.is_empty() {
        let line_end = data.iter().position(|&b| b == b'\n').expect("field ends");
        let line = &data[..line_end];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            let key = String::from_utf8_lossy(&line[..eq]).into_owned();
            let value = String::from_utf8_lossy(&line[eq + 1..]).into_owned();
            fields.insert(key, value);
            data = &data[line_end + 1..];
        } else {
            let key = String::from_utf8_lossy(line).into_owned();
            let rest = &data[line_end + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().expect("length")) as usize;
            let value = String::from_utf8_lossy(&rest[8..8 + len]).into_owned();
            assert_eq!(rest[8 + len], b'\n', "a binary field ends with a newline");
            fields.insert(key, value);
            data = &rest[8 + len + 1..];
        }
    }
    fields
}

#[test]
fn events_reach_the_journal_socket_with_priority_and_identifier() {
    if !can_unshare() {
        return;
    }
    let dir = TempDir::new("journal");
    let socket = UnixDatagram::bind(dir.0.join("socket")).expect("journal socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");

    let output = run_with_journal(Some(&dir.0));
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("stopped"),
        "the stack ran"
    );

    let mut entries = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(n) = socket.recv(&mut buf) {
        // The layer probes the socket with one empty datagram.
        if n > 0 {
            entries.push(parse_entry(&buf[..n]));
        }
    }
    let tick = entries
        .iter()
        .find(|e| {
            e.get("MESSAGE")
                .is_some_and(|m| m.contains("reporter tick"))
        })
        .unwrap_or_else(|| panic!("no reporter tick among {entries:?}"));
    assert_eq!(tick["PRIORITY"], "5", "INFO is notice: {tick:?}");
    assert_eq!(tick["SYSLOG_IDENTIFIER"], "service_stack", "{tick:?}");
    assert!(tick.contains_key("TARGET") && tick.contains_key("CODE_FILE"));
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("reporter tick"),
        "journald replaces standard error"
    );
}

#[test]
fn a_missing_journal_is_refused_before_anything_starts() {
    if !can_unshare() {
        return;
    }
    let output = run_with_journal(None);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot reach the systemd journal at /run/systemd/journal/socket"),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).is_empty(),
        "nothing started"
    );
}
