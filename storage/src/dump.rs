//! A portable, versioned dump of snapshot stores: every snapshot and every
//! job's event log, city by city, to move state between backends and to back
//! up (`dispatch snapshot export` / `import`).
//!
//! The file is a sequence of records, each a little-endian `u32` length and
//! then a [`codec`] envelope (magic, schema version, CRC-32,
//! bincode): a [`Record::Header`] with the dump format version, then per city
//! a [`Record::City`], its snapshots and events, and a [`Record::End`] with
//! their counts. A truncated, reordered or corrupted file is an error, never
//! a partial import that looks whole.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::{Result, StorageError};
use crate::store::{Kind, LogEntry, SnapshotStore};

impl codec::Versioned for Record {}

/// The dump format this build writes and reads.
pub const DUMP_FORMAT: u16 = 1;

/// Records read or written per store call.
const PAGE: usize = 1_000;

/// Largest record accepted on import (a snapshot blob is far smaller).
const MAX_RECORD: u32 = 64 * 1024 * 1024;

/// One record of a dump file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record {
    /// First record: the dump format and when it was made.
    Header {
        /// [`DUMP_FORMAT`].
        format: u16,
        /// When, ms since the Unix epoch.
        created_ms: i64,
    },
    /// A city's section starts.
    City {
        /// The city's name.
        name: String,
    },
    /// One snapshot.
    Snapshot {
        /// What it is of (an unknown kind fails to decode).
        kind: Kind,
        /// Its id.
        id: u64,
        /// The blob, as stored.
        blob: Vec<u8>,
    },
    /// One entry of a job's event log.
    Event {
        /// The job.
        job: u64,
        /// The entry.
        entry: LogEntry,
    },
    /// A city's section ends: what it held.
    End {
        /// Snapshots in the section.
        snapshots: u64,
        /// Event log entries in the section.
        events: u64,
    },
}

/// What a city's section held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Snapshots.
    pub snapshots: u64,
    /// Event log entries.
    pub events: u64,
}

fn bad(message: impl Into<String>) -> StorageError {
    StorageError::Backend(format!("dump: {}", message.into()))
}

fn io(e: std::io::Error) -> StorageError {
    bad(e.to_string())
}

/// Writes dump records.
pub struct DumpWriter<W: Write> {
    out: W,
}

impl<W: Write> DumpWriter<W> {
    /// Starts a dump: writes the header.
    pub fn new(mut out: W, created_ms: i64) -> Result<Self> {
        write_record(&mut out, &Record::Header { format: DUMP_FORMAT, created_ms })?;
        Ok(Self { out })
    }

    /// Writes one city's section: every snapshot of `store`, then every event.
    pub async fn city(&mut self, name: &str, store: &dyn SnapshotStore) -> Result<Counts> {
        write_record(&mut self.out, &Record::City { name: name.to_owned() })?;
        let mut counts = Counts::default();
        for kind in Kind::ALL {
            let mut after = None;
            loop {
                let page = store.scan(kind, after, PAGE).await?;
                let Some(&(last, _)) = page.last() else { break };
                for (id, blob) in page {
                    write_record(&mut self.out, &Record::Snapshot { kind, id, blob })?;
                    counts.snapshots += 1;
                }
                after = Some(last);
            }
        }
        let mut after = None;
        loop {
            let page = store.scan_events(after, PAGE).await?;
            let Some((job, entry)) = page.last() else { break };
            after = Some((*job, entry.seq));
            for (job, entry) in page {
                write_record(&mut self.out, &Record::Event { job, entry })?;
                counts.events += 1;
            }
        }
        write_record(&mut self.out, &Record::End { snapshots: counts.snapshots, events: counts.events })?;
        Ok(counts)
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> Result<W> {
        self.out.flush().map_err(io)?;
        Ok(self.out)
    }
}

fn write_record(out: &mut impl Write, record: &Record) -> Result<()> {
    let bytes = codec::encode(record)?;
    let len = u32::try_from(bytes.len()).map_err(|_| bad("a record over 4 GiB"))?;
    out.write_all(&len.to_le_bytes()).map_err(io)?;
    out.write_all(&bytes).map_err(io)
}

/// Reads dump records.
pub struct DumpReader<R: Read> {
    input: R,
    /// When the dump was made, ms since the Unix epoch.
    pub created_ms: i64,
}

impl<R: Read> DumpReader<R> {
    /// Opens a dump: reads and checks the header.
    pub fn new(mut input: R) -> Result<Self> {
        match read_record(&mut input)? {
            Some(Record::Header { format: DUMP_FORMAT, created_ms }) => Ok(Self { input, created_ms }),
            Some(Record::Header { format, .. }) => Err(bad(format!("format {format} is not supported (this build reads {DUMP_FORMAT})"))),
            Some(_) => Err(bad("no header: not a dispatch dump")),
            None => Err(bad("empty file")),
        }
    }

    /// The next city's name, or `None` at the end of the file.
    pub fn next_city(&mut self) -> Result<Option<String>> {
        match read_record(&mut self.input)? {
            Some(Record::City { name }) => Ok(Some(name)),
            Some(other) => Err(bad(format!("expected a city section, found {}", describe(&other)))),
            None => Ok(None),
        }
    }

    /// Reads the current city's section into `store`, which must hold no
    /// events yet (their sequence numbers are kept as they were).
    pub async fn import_city(&mut self, store: &dyn SnapshotStore) -> Result<Counts> {
        if !store.scan_events(None, 1).await?.is_empty() {
            return Err(bad("the target store already holds event logs; import into an empty one"));
        }
        let mut counts = Counts::default();
        let mut batch = Vec::new();
        loop {
            let record = read_record(&mut self.input)?.ok_or_else(|| bad("truncated: the file ends inside a city section"))?;
            match record {
                Record::Snapshot { kind, id, blob } => {
                    batch.push((kind, id, blob));
                    counts.snapshots += 1;
                    if batch.len() >= PAGE {
                        store.put_batch(std::mem::take(&mut batch)).await?;
                    }
                }
                Record::Event { job, entry } => {
                    if !batch.is_empty() {
                        store.put_batch(std::mem::take(&mut batch)).await?;
                    }
                    store.append_event(job, entry).await?;
                    counts.events += 1;
                }
                Record::End { snapshots, events } => {
                    if !batch.is_empty() {
                        store.put_batch(std::mem::take(&mut batch)).await?;
                    }
                    if (snapshots, events) != (counts.snapshots, counts.events) {
                        return Err(bad(format!(
                            "the section says {snapshots} snapshots and {events} events but holds {} and {}",
                            counts.snapshots, counts.events
                        )));
                    }
                    return Ok(counts);
                }
                other => return Err(bad(format!("unexpected {} inside a city section", describe(&other)))),
            }
        }
    }
}

fn describe(record: &Record) -> &'static str {
    match record {
        Record::Header { .. } => "header",
        Record::City { .. } => "city",
        Record::Snapshot { .. } => "snapshot",
        Record::Event { .. } => "event",
        Record::End { .. } => "end of section",
    }
}

/// The next record, or `None` at a clean end of file.
fn read_record(input: &mut impl Read) -> Result<Option<Record>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len[..1]) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(io(e)),
    }
    input.read_exact(&mut len[1..]).map_err(|_| bad("truncated record length"))?;
    let len = u32::from_le_bytes(len);
    if len > MAX_RECORD {
        return Err(bad(format!("a record of {len} bytes is over the {MAX_RECORD}-byte limit")));
    }
    let mut bytes = vec![0u8; len as usize];
    input.read_exact(&mut bytes).map_err(|_| bad("truncated record"))?;
    codec::decode(&bytes).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    async fn filled() -> MemoryStore {
        let store = MemoryStore::new();
        store.put_batch((0..2_500u64).map(|i| (Kind::Contractor, i, i.to_le_bytes().to_vec())).collect()).await.unwrap();
        store.put(Kind::Job, 7, b"job seven".to_vec()).await.unwrap();
        store.put(Kind::Job, 9, b"job nine".to_vec()).await.unwrap();
        for job in [7u64, 8] {
            for i in 0..3 {
                store.append_event(job, LogEntry::new(i + 1, i as i64, format!("{job}:{i}").into_bytes())).await.unwrap();
            }
        }
        store
    }

    async fn dump(stores: &[(&str, &MemoryStore)]) -> Vec<u8> {
        let mut writer = DumpWriter::new(Vec::new(), 42).unwrap();
        for (name, store) in stores {
            writer.city(name, *store).await.unwrap();
        }
        writer.finish().unwrap()
    }

    #[tokio::test]
    async fn a_dump_restores_every_snapshot_and_event_city_by_city() {
        let (a, b) = (filled().await, MemoryStore::new());
        b.put(Kind::Job, 1, b"b's job".to_vec()).await.unwrap();
        let bytes = dump(&[("a", &a), ("b", &b)]).await;
        let mut reader = DumpReader::new(bytes.as_slice()).unwrap();
        assert_eq!(reader.created_ms, 42);
        assert_eq!(reader.next_city().unwrap().as_deref(), Some("a"));
        let restored = MemoryStore::new();
        assert_eq!(reader.import_city(&restored).await.unwrap(), Counts { snapshots: 2_502, events: 6 });
        assert_eq!(reader.next_city().unwrap().as_deref(), Some("b"));
        let restored_b = MemoryStore::new();
        assert_eq!(reader.import_city(&restored_b).await.unwrap(), Counts { snapshots: 1, events: 0 });
        assert_eq!(reader.next_city().unwrap(), None);
        for kind in Kind::ALL {
            assert_eq!(restored.scan(kind, None, 10_000).await.unwrap(), a.scan(kind, None, 10_000).await.unwrap());
        }
        assert_eq!(restored.scan_events(None, 100).await.unwrap(), a.scan_events(None, 100).await.unwrap());
        assert_eq!(restored_b.get(Kind::Job, 1).await.unwrap().as_deref(), Some(&b"b's job"[..]));
    }

    /// Imports every city of `bytes` into fresh stores.
    async fn import_all(bytes: &[u8]) -> Result<()> {
        let mut reader = DumpReader::new(bytes)?;
        while reader.next_city()?.is_some() {
            reader.import_city(&MemoryStore::new()).await?;
        }
        Ok(())
    }

    #[tokio::test]
    async fn truncated_corrupt_and_foreign_files_are_refused() {
        let a = filled().await;
        let bytes = dump(&[("a", &a)]).await;
        // Cut anywhere: never a silent partial import.
        for cut in [bytes.len() - 1, bytes.len() / 2, 40, 30] {
            assert!(import_all(&bytes[..cut]).await.is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x40;
        assert!(import_all(&flipped).await.is_err());
        import_all(&bytes).await.unwrap();
        assert!(DumpReader::new(&b"not a dump at all"[..]).is_err());
        assert!(DumpReader::new(&b""[..]).err().is_some_and(|e| e.to_string().contains("empty")));
        // A target that already has logs is refused before anything is written.
        let mut reader = DumpReader::new(bytes.as_slice()).unwrap();
        reader.next_city().unwrap();
        let busy = MemoryStore::new();
        busy.append_event(1, LogEntry::new(1, 0, b"x".to_vec())).await.unwrap();
        assert!(reader.import_city(&busy).await.unwrap_err().to_string().contains("empty one"));
    }
}
