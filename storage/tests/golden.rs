//! Golden files of the degraded-mode journal: entries a crash left on disk
//! must still decode after an upgrade, or acknowledged writes are lost.
//!
//! `tests/golden/journal/v<N>/` holds one [`JournalRecord`] of every kind of
//! write exactly as a build writing schema version N encoded it. The files
//! are written once, by the build of their version:
//! `DISPATCH_WRITE_GOLDEN=1 cargo test -p dispatch-storage --test golden`
//! adds missing files of the current version and never overwrites one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use dispatch_storage::codec;
use dispatch_storage::journal::{JournalRecord, SnapshotWrite, Write};
use dispatch_storage::{Kind, LogEntry};

fn record(write: Write) -> JournalRecord {
    JournalRecord { writer: "dispatch-1.example".into(), epoch: 7, write }
}

/// One record of every kind of write, by file name.
fn version_2() -> Vec<(&'static str, JournalRecord)> {
    vec![
        ("put", record(Write::Snapshot(Kind::Contractor, 42, SnapshotWrite::Put(b"DSPS contractor".to_vec())))),
        ("final", record(Write::Snapshot(Kind::Job, 9_000_001, SnapshotWrite::Final(b"DSPS job".to_vec())))),
        ("delete", record(Write::Snapshot(Kind::Job, 9_000_002, SnapshotWrite::Delete))),
        ("event", record(Write::Event(9_000_001, LogEntry::new(3, 1_795_420_800_123, b"DSPS chat".to_vec())))),
    ]
}

fn dir(version: u16) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/journal").join(format!("v{version}"))
}

fn check_version(version: u16, goldens: &[(&str, JournalRecord)]) -> Result<()> {
    let dir = dir(version);
    let write = version == codec::SCHEMA_VERSION && std::env::var_os("DISPATCH_WRITE_GOLDEN").is_some();
    for (name, expected) in goldens {
        let path = dir.join(format!("{name}.bin"));
        if write && !path.exists() {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&path, codec::encode(expected)?)?;
        }
        let blob = std::fs::read(&path).with_context(|| format!("{} (write it with DISPATCH_WRITE_GOLDEN=1)", path.display()))?;
        let decoded: JournalRecord = codec::decode(&blob).with_context(|| format!("decoding {}", path.display()))?;
        if &decoded != expected {
            bail!("{} decodes to {decoded:?}, not {expected:?}", path.display());
        }
    }
    for entry in std::fs::read_dir(&dir)? {
        let file = entry?.file_name().to_string_lossy().into_owned();
        if !goldens.iter().any(|(name, _)| file == format!("{name}.bin")) {
            bail!("{} has {file}, which no golden value describes", dir.display());
        }
    }
    Ok(())
}

#[test]
fn journal_entries_of_schema_version_2_still_decode() -> Result<()> {
    check_version(2, &version_2())
}

/// Version 3 (payments) left the journal's layout as it was: the same records.
#[test]
fn journal_entries_of_schema_version_3_decode() -> Result<()> {
    assert_eq!(codec::SCHEMA_VERSION, 3, "a new schema version needs journal golden files and a test here");
    check_version(3, &version_2())
}
