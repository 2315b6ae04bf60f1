//! Checkpoints: the Kafka offsets of one epoch and a named section per barrier participant
//! (the engine state, the outboxes), written atomically so a crash at any moment leaves the
//! previous or the new checkpoint, never a mix.
//!
//! File `<state dir>/checkpoint.bin`, format version 2, little-endian:
//! ```text
//! magic "AWCKPT01" | version u32 | written_at_unix_ms i64 | epoch u64
//! offsets:   u32 count, then (topic: u32 len + bytes, partition i32, next_offset i64)
//! sections:  u32 count, then (name: u32 len + bytes, body: u32 len + bytes)
//! checksum:  u64 xxh3 of everything before it
//! ```
//! Written to `checkpoint.tmp`, fsynced, renamed over `checkpoint.bin`, then the directory is
//! fsynced. A checksum mismatch or unknown version is an error, not a silent fresh start.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::state::codec::{CodecError, Reader, Writer};

const MAGIC: &[u8; 8] = b"AWCKPT01";
pub const VERSION: u32 = 2;
pub const FILE_NAME: &str = "checkpoint.bin";

/// The next offset to read for one partition.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PartitionOffset {
    pub topic: String,
    pub partition: i32,
    pub next_offset: i64,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Checkpoint {
    pub written_at_unix_ms: i64,
    /// Barrier epoch: counts checkpoints since the state directory was created.
    pub epoch: u64,
    pub offsets: Vec<PartitionOffset>,
    /// One body per participant, by participant name.
    pub sections: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Error)]
pub enum CheckpointError {
    #[error("cannot {action} checkpoint {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: io::Error },
    #[error("checkpoint {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("checkpoint {path} has format version {found}; this build reads version {VERSION}")]
    Version { path: PathBuf, found: u32 },
}

impl Checkpoint {
    /// The body of one participant's section.
    pub fn section(&self, name: &str) -> Option<&[u8]> {
        self.sections.iter().find(|(n, _)| n == name).map(|(_, body)| body.as_slice())
    }

    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self.sections.iter().map(|(n, b)| n.len() + b.len() + 8).sum();
        let mut out = Vec::with_capacity(size + 64 * self.offsets.len() + 64);
        // Writing to a Vec cannot fail.
        let _ = self.encode_to(&mut out);
        out
    }

    /// Stream the encoding: the sections (the engine's is tens of MB) go out as they are,
    /// without being copied into one buffer first.
    fn encode_to(&self, out: &mut impl Write) -> io::Result<()> {
        let mut head = Writer::with_capacity(64 * self.offsets.len() + 64);
        head.raw(MAGIC);
        head.u32(VERSION);
        head.i64(self.written_at_unix_ms);
        head.u64(self.epoch);
        head.u32(self.offsets.len() as u32);
        for o in &self.offsets {
            head.str(&o.topic);
            head.i32(o.partition);
            head.i64(o.next_offset);
        }
        head.u32(self.sections.len() as u32);
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut put = |bytes: &[u8]| {
            hasher.update(bytes);
            out.write_all(bytes)
        };
        put(&head.buf)?;
        for (name, body) in &self.sections {
            let mut section_head = Writer::with_capacity(name.len() + 8);
            section_head.str(name);
            section_head.u32(body.len() as u32);
            put(&section_head.buf)?;
            put(body)?;
        }
        out.write_all(&hasher.digest().to_le_bytes())
    }

    pub fn decode(bytes: &[u8], path: &Path) -> Result<Checkpoint, CheckpointError> {
        let corrupt = |reason: String| CheckpointError::Corrupt { path: path.to_path_buf(), reason };
        if bytes.len() < MAGIC.len() + 12 + 8 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(corrupt("not an auditwatch checkpoint".into()));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        let expected = u64::from_le_bytes(sum.try_into().map_err(|_| corrupt("short checksum".into()))?);
        let mut r = Reader::new(&body[MAGIC.len()..]);
        let version = r.u32().map_err(|e| corrupt(e.to_string()))?;
        if version != VERSION {
            return Err(CheckpointError::Version { path: path.to_path_buf(), found: version });
        }
        if xxhash_rust::xxh3::xxh3_64(body) != expected {
            return Err(corrupt("checksum mismatch (torn or damaged file)".into()));
        }
        let parse = |r: &mut Reader| -> Result<Checkpoint, CodecError> {
            let written_at_unix_ms = r.i64()?;
            let epoch = r.u64()?;
            let n = r.count(16)?;
            let offsets = (0..n)
                .map(|_| Ok(PartitionOffset { topic: r.string()?, partition: r.i32()?, next_offset: r.i64()? }))
                .collect::<Result<_, CodecError>>()?;
            let n = r.count(8)?;
            let sections = (0..n).map(|_| Ok((r.string()?, r.bytes()?.to_vec()))).collect::<Result<_, CodecError>>()?;
            Ok(Checkpoint { written_at_unix_ms, epoch, offsets, sections })
        };
        let checkpoint = parse(&mut r).map_err(|e| corrupt(e.to_string()))?;
        if !r.is_empty() {
            return Err(corrupt("trailing bytes".into()));
        }
        Ok(checkpoint)
    }
}

/// Atomically replace `<dir>/checkpoint.bin`.
pub fn write(dir: &Path, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
    fn io<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> CheckpointError + 'p {
        move |source| CheckpointError::Io { action, path: path.to_path_buf(), source }
    }
    fs::create_dir_all(dir).map_err(io("create directory for", dir))?;
    let tmp = dir.join("checkpoint.tmp");
    let path = dir.join(FILE_NAME);
    let mut file = io::BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(io("create", &tmp))?);
    checkpoint.encode_to(&mut file).and_then(|()| file.flush()).map_err(io("write", &tmp))?;
    file.get_ref().sync_all().map_err(io("fsync", &tmp))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(io("rename into place", &path))?;
    // The rename is durable only once the directory entry is.
    File::open(dir).and_then(|d| d.sync_all()).map_err(io("fsync directory of", &path))?;
    Ok(())
}

/// The last checkpoint in `dir`, or `None` when there is none yet.
pub fn read(dir: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
    let path = dir.join(FILE_NAME);
    match fs::read(&path) {
        Ok(bytes) => Checkpoint::decode(&bytes, &path).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CheckpointError::Io { action: "read", path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            written_at_unix_ms: 1_767_571_200_000,
            epoch: 7,
            offsets: vec![PartitionOffset { topic: "audit.events".into(), partition: 3, next_offset: 42 }],
            sections: vec![("engine".into(), vec![1, 2, 3, 4]), ("alerts".into(), vec![5])],
        }
    }

    #[test]
    fn write_then_read_roundtrips() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_none());
        write(dir.path(), &sample()).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(sample()));
        assert!(!dir.path().join("checkpoint.tmp").exists());
    }

    #[test]
    fn damage_is_detected() {
        let bytes = sample().encode();
        let path = Path::new("x");
        for i in [MAGIC.len() + 5, bytes.len() / 2, bytes.len() - 9] {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x40;
            assert!(matches!(Checkpoint::decode(&damaged, path), Err(CheckpointError::Corrupt { .. })), "byte {i}");
        }
        assert!(Checkpoint::decode(&bytes[..bytes.len() - 1], path).is_err());
        let mut other_version = bytes.clone();
        other_version[MAGIC.len()] = 9;
        assert!(matches!(Checkpoint::decode(&other_version, path), Err(CheckpointError::Version { found: 9, .. })));
    }
}
