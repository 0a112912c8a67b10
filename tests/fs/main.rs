//! `machina_core::fs` on every runtime: whole-file round trips, appends,
//! lines in batches, each encoding (none, gzip, zstd), and the errors.

use std::io::ErrorKind;
use std::path::PathBuf;

use futures::StreamExt;
use machina_core::fs::{self, Compression};
use machina_test::{Env, cross_runtime};

/// A fresh directory for one test on one runtime.
fn scratch(test: &str, env: &Env) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "machina-fs-{}-{test}-{:?}",
        std::process::id(),
        env.kind
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

const ENCODINGS: [(Compression, &str, &[u8]); 3] = [
    (Compression::None, "txt", b""),
    // gzip's magic bytes, and zstd's frame magic.
    (Compression::Gzip, "gz", &[0x1f, 0x8b]),
    (Compression::Zstd, "zst", &[0x28, 0xb5, 0x2f, 0xfd]),
];

cross_runtime! {
    /// Write, append and read back in every encoding; the bytes on disk
    /// are the encoding's, and the name's extension says which it is.
    async fn write_append_and_read_back_in_every_encoding(rt: Runtime, env: Env) {
        let dir = scratch("roundtrip", &env);
        for (how, ext, magic) in ENCODINGS {
            let path = dir.join(format!("journal.{ext}"));
            assert_eq!(Compression::from_path(&path), how);
            fs::write(&rt, &path, b"alpha\n".to_vec(), how).await.unwrap();
            fs::append(&rt, &path, b"beta\n".to_vec(), how).await.unwrap();
            let text = fs::read_to_string(&rt, &path, how).await.unwrap();
            assert_eq!(text, "alpha\nbeta\n", "{how:?}");
            let raw = std::fs::read(&path).unwrap();
            assert!(raw.starts_with(magic), "{how:?}: {:02x?}", &raw[..4.min(raw.len())]);
            // A write replaces what was there.
            fs::write(&rt, &path, b"gamma\n".to_vec(), how).await.unwrap();
            assert_eq!(fs::read(&rt, &path, how).await.unwrap(), b"gamma\n");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// 200 lines come in order across batches of 64, in every encoding;
    /// dropping the stream early is fine.
    async fn lines_come_in_order_across_batches(rt: Runtime, env: Env) {
        let dir = scratch("lines", &env);
        let text: String = (0..200).map(|n| format!("line {n}\n")).collect();
        for (how, ext, _) in ENCODINGS {
            let path = dir.join(format!("many.{ext}"));
            fs::write(&rt, &path, text.clone().into_bytes(), how).await.unwrap();
            let lines: Vec<String> = fs::lines(&rt, &path, how)
                .map(|line| line.unwrap())
                .collect()
                .await;
            assert_eq!(lines.len(), 200, "{how:?}");
            assert_eq!(lines[0], "line 0");
            assert_eq!(lines[199], "line 199");
            let first_three: Vec<_> = fs::lines(&rt, &path, how).take(3).collect().await;
            assert_eq!(first_three.len(), 3);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A missing file is `NotFound` (as the first line, for `lines`); text
    /// that is not UTF-8 is `InvalidData`; a file that is not gzip fails to
    /// decode instead of reading as garbage.
    async fn errors_say_what_went_wrong(rt: Runtime, env: Env) {
        let dir = scratch("errors", &env);
        let missing = dir.join("missing.txt");
        let err = fs::read(&rt, &missing, Compression::None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let first = fs::lines(&rt, &missing, Compression::None).next().await;
        assert_eq!(first.unwrap().unwrap_err().kind(), ErrorKind::NotFound);

        let binary = dir.join("binary.bin");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        let err = fs::read_to_string(&rt, &binary, Compression::None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);

        let plain = dir.join("plain.gz");
        std::fs::write(&plain, "not gzip at all").unwrap();
        assert!(fs::read(&rt, &plain, Compression::Gzip).await.is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
