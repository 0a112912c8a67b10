//! Files without blocking the executor (aiomisc's `aiomisc.io`): whole-file
//! reads, writes and appends, and a stream of lines, each run on the
//! runtime's blocking pool, so the same
//! code runs on every adapter and on the mock runtime; with the feature
//! `compression`, gzip or zstd on the way in and out.
//!
//! # When to use what
//!
//! These functions suit a service's occasional files: a state snapshot, a
//! report, a log to read back. A program bound to one runtime that streams
//! files all day gets the same from `tokio::fs` or `async-fs`, with finer
//! control (seek, partial reads). Every call here moves the whole work to
//! the blocking pool at once: a 1 GB read holds 1 GB.
//!
//! # Examples
//!
//! ```
//! use machina_core::fs::{self, Compression};
//! use machina_core::testing::MockRuntime;
//!
//! let dir = std::env::temp_dir().join(format!("machina-fs-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("journal.txt");
//! let mock = MockRuntime::new();
//! let rt = mock.runtime();
//! let lines = mock.block_on(async {
//!     fs::write(&rt, &path, b"first\n".to_vec(), Compression::None).await?;
//!     fs::append(&rt, &path, b"second\n".to_vec(), Compression::None).await?;
//!     fs::read_to_string(&rt, &path, Compression::None).await
//! })??;
//! assert_eq!(lines, "first\nsecond\n");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use futures::StreamExt;
use futures::stream::BoxStream;

use crate::rt::Runtime;

/// How a file's bytes are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Compression {
    /// As they are.
    #[default]
    None,
    /// gzip (feature `compression`); appends add a gzip member, and reads
    /// read every member.
    #[cfg(feature = "compression")]
    Gzip,
    /// zstd at level 3 (feature `compression`); appends add a frame, and
    /// reads read every frame.
    #[cfg(feature = "compression")]
    Zstd,
}

impl Compression {
    /// The encoding a file name's extension says: `.gz` gzip, `.zst` zstd,
    /// anything else none (the gzip and zstd cases need the feature
    /// `compression`).
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            #[cfg(feature = "compression")]
            Some("gz") => Compression::Gzip,
            #[cfg(feature = "compression")]
            Some("zst") => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// `bytes` encoded.
    fn encode(self, bytes: &[u8]) -> io::Result<Vec<u8>> {
        match self {
            Compression::None => Ok(bytes.to_vec()),
            #[cfg(feature = "compression")]
            Compression::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(bytes)?;
                encoder.finish()
            }
            #[cfg(feature = "compression")]
            Compression::Zstd => zstd::encode_all(bytes, 3),
        }
    }

    /// A reader of `file`'s decoded bytes.
    fn decoder(self, file: File) -> io::Result<Box<dyn Read + Send>> {
        let file = BufReader::new(file);
        Ok(match self {
            Compression::None => Box::new(file),
            #[cfg(feature = "compression")]
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(file)),
            #[cfg(feature = "compression")]
            Compression::Zstd => Box::new(zstd::Decoder::with_buffer(file)?),
        })
    }
}

/// Runs `work` on the blocking pool; a refused task or a panic is an I/O
/// error.
async fn blocking<T: Send + 'static>(
    rt: &Runtime,
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let task = rt.spawn_blocking(work).map_err(io::Error::other)?;
    task.await.map_err(io::Error::other)?
}

/// The whole file at `path`, decoded.
///
/// # Errors
/// The I/O error of opening or reading it (`NotFound` for a missing file),
/// or of decoding it.
pub async fn read(rt: &Runtime, path: impl AsRef<Path>, how: Compression) -> io::Result<Vec<u8>> {
    let path = path.as_ref().to_path_buf();
    blocking(rt, move || {
        let mut bytes = Vec::new();
        how.decoder(File::open(&path)?)?.read_to_end(&mut bytes)?;
        Ok(bytes)
    })
    .await
}

/// The whole file at `path`, decoded, as UTF-8 text.
///
/// # Errors
/// As [`read`]; `InvalidData` for text that is not UTF-8.
pub async fn read_to_string(
    rt: &Runtime,
    path: impl AsRef<Path>,
    how: Compression,
) -> io::Result<String> {
    let bytes = read(rt, path, how).await?;
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Writes `bytes`, encoded, as the whole file at `path` (created or
/// truncated), and flushes it to the disk.
///
/// # Errors
/// The I/O error of creating, writing or syncing it.
pub async fn write(
    rt: &Runtime,
    path: impl AsRef<Path>,
    bytes: Vec<u8>,
    how: Compression,
) -> io::Result<()> {
    put(rt, path.as_ref(), bytes, how, |path: &Path| {
        File::create(path)
    })
    .await
}

/// Appends `bytes`, encoded (a gzip member or zstd frame of their own), to
/// the file at `path`, creating it if needed, and flushes it to the disk.
///
/// # Errors
/// The I/O error of opening, writing or syncing it.
pub async fn append(
    rt: &Runtime,
    path: impl AsRef<Path>,
    bytes: Vec<u8>,
    how: Compression,
) -> io::Result<()> {
    let open = |path: &Path| OpenOptions::new().create(true).append(true).open(path);
    put(rt, path.as_ref(), bytes, how, open).await
}

/// Encodes `bytes`, writes them to the file `open` gives for `path`, and
/// syncs it, on the blocking pool.
async fn put(
    rt: &Runtime,
    path: &Path,
    bytes: Vec<u8>,
    how: Compression,
    open: impl FnOnce(&Path) -> io::Result<File> + Send + 'static,
) -> io::Result<()> {
    let path = path.to_path_buf();
    blocking(rt, move || {
        let encoded = how.encode(&bytes)?;
        let mut file = open(&path)?;
        file.write_all(&encoded)?;
        file.sync_all()
    })
    .await
}

/// The lines of the file at `path`, decoded, as they are read (without
/// their line ends): read 64 at a time on the blocking pool, the next batch
/// only when the reader has taken the last one.
///
/// # Errors
/// Each item is a line or the I/O error that ended the reading (the first
/// item, for a file that cannot be opened).
///
/// # Examples
///
/// ```
/// use futures::StreamExt;
/// use machina_core::fs::{self, Compression};
/// use machina_core::testing::MockRuntime;
///
/// let dir = std::env::temp_dir().join(format!("machina-lines-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("three.txt");
/// std::fs::write(&path, "a\nb\nc\n")?;
/// let mock = MockRuntime::new();
/// let lines: Vec<String> = mock.block_on(async {
///     let lines = fs::lines(&mock.runtime(), &path, Compression::None);
///     lines.map(Result::unwrap).collect().await
/// })?;
/// assert_eq!(lines, ["a", "b", "c"]);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn lines(
    rt: &Runtime,
    path: impl AsRef<Path>,
    how: Compression,
) -> BoxStream<'static, io::Result<String>> {
    /// Lines read per trip to the blocking pool.
    const BATCH: usize = 64;
    type Lines = io::Lines<BufReader<Box<dyn Read + Send>>>;
    enum Reading {
        Unopened(PathBuf),
        Open(Lines),
    }
    let start = Some((rt.clone(), Reading::Unopened(path.as_ref().to_path_buf())));
    futures::stream::unfold(start, move |state| async move {
        let (rt, reading) = state?;
        let batch = blocking(&rt, move || {
            let mut lines = match reading {
                Reading::Open(lines) => lines,
                Reading::Unopened(path) => BufReader::new(how.decoder(File::open(&path)?)?).lines(),
            };
            let mut out = Vec::with_capacity(BATCH);
            while out.len() < BATCH {
                match lines.next() {
                    Some(Ok(line)) => out.push(Ok(line)),
                    Some(Err(error)) => {
                        out.push(Err(error));
                        return Ok((out, None));
                    }
                    None => return Ok((out, None)),
                }
            }
            Ok((out, Some(lines)))
        })
        .await;
        Some(match batch {
            Ok((out, Some(lines))) => (out, Some((rt, Reading::Open(lines)))),
            Ok((out, None)) => (out, None),
            Err(error) => (vec![Err(error)], None),
        })
    })
    .flat_map(futures::stream::iter)
    .boxed()
}
