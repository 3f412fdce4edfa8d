//! What the node keeps on disk: chat per region, private messages, and the outbox of private
//! messages not yet delivered. Logs are appended record by record (a little-endian `u32`
//! length, then postcard) and synced; a torn last record after a crash is skipped on reading,
//! never the records before it. The outbox is small and rewritten whole, atomically.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest record read back; anything larger is damage, not data.
const MAX_RECORD: usize = 64 * 1024;

/// Appends `record` to the log at `path` and syncs it to disk.
pub(crate) fn append<T: Serialize>(path: &Path, record: &T) -> io::Result<()> {
    let body = postcard::to_allocvec(record).map_err(io::Error::other)?;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut bytes = Vec::with_capacity(body.len() + 4);
    bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&body);
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(&bytes)?;
    file.sync_data()
}

/// The bytes [`append`] writes for `record`.
pub(crate) fn record_len<T: Serialize>(record: &T) -> u64 {
    postcard::to_allocvec(record).map_or(0, |body| body.len() as u64 + 4)
}

/// Reads the last `keep` records of the log at `path`. A missing file is an empty log; a
/// damaged tail ends the reading there.
pub(crate) fn read_tail<T: DeserializeOwned>(path: &Path, keep: usize) -> io::Result<Vec<T>> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut file) => file.read_to_end(&mut bytes)?,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    Ok(parse_tail(&bytes, keep))
}

/// The last `keep` records of a log's bytes, up to the first damaged one.
pub(crate) fn parse_tail<T: DeserializeOwned>(bytes: &[u8], keep: usize) -> Vec<T> {
    let mut records = std::collections::VecDeque::with_capacity(keep.min(1024));
    let mut rest = bytes;
    while rest.len() >= 4 {
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > MAX_RECORD || rest.len() - 4 < len {
            break;
        }
        let Ok(record) = postcard::from_bytes::<T>(&rest[4..4 + len]) else { break };
        records.push_back(record);
        if records.len() > keep {
            records.pop_front();
        }
        rest = &rest[4 + len..];
    }
    records.into()
}

/// Writes `value` to `path` through a synced temporary file and a rename, so that a crash
/// leaves either the old file or the new one.
pub(crate) fn write_atomic<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = postcard::to_allocvec(value).map_err(io::Error::other)?;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let temporary = path.with_extension("tmp");
    let mut file = File::create(&temporary)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    fs::rename(&temporary, path)
}

/// Reads what [`write_atomic`] wrote; `None` if there is no file yet.
pub(crate) fn read_whole<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => postcard::from_bytes(&bytes).map(Some).map_err(|error| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{} is damaged: {error}", path.display()))
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Where each thing lives under the data directory.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    root: PathBuf,
}

impl Paths {
    pub(crate) fn new(root: &Path) -> Self {
        Self { root: root.to_owned() }
    }

    pub(crate) fn chat(&self, region: sanctuary_engine::RegionId) -> PathBuf {
        self.root.join("chat").join(format!("{}.log", region.slug()))
    }

    pub(crate) fn direct(&self) -> PathBuf {
        self.root.join("direct.log")
    }

    pub(crate) fn blocks(&self) -> PathBuf {
        self.root.join("blocks.bin")
    }

    pub(crate) fn shields(&self) -> PathBuf {
        self.root.join("shields.bin")
    }

    pub(crate) fn volumes(&self) -> PathBuf {
        self.root.join("volumes.bin")
    }

    pub(crate) fn profile(&self) -> PathBuf {
        self.root.join("profile.bin")
    }

    /// The avatar worn, kept for next time.
    pub(crate) fn avatar(&self) -> PathBuf {
        self.root.join("avatar.bin")
    }

    /// Our private room and the keys of the rooms we are invited to.
    pub(crate) fn rooms(&self) -> PathBuf {
        self.root.join("rooms.bin")
    }

    /// The meeting room's whiteboard.
    pub(crate) fn board(&self) -> PathBuf {
        self.root.join("board.bin")
    }

    /// The meeting room's polls and their ballots.
    pub(crate) fn polls(&self) -> PathBuf {
        self.root.join("polls.bin")
    }

    pub(crate) fn outbox(&self) -> PathBuf {
        self.root.join("outbox.bin")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_survive_a_torn_tail() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("chat").join("lobby.log");
        for index in 0..5u32 {
            append(&path, &(index, format!("line {index}"))).expect("appends");
        }
        // A crash in the middle of the sixth record.
        let mut file = OpenOptions::new().append(true).open(&path).expect("opens");
        file.write_all(&[40, 0, 0, 0, 1, 2]).expect("writes");
        let lines: Vec<(u32, String)> = read_tail(&path, 3).expect("reads");
        assert_eq!(lines, vec![(2, "line 2".into()), (3, "line 3".into()), (4, "line 4".into())]);
        let none: Vec<(u32, String)> = read_tail(&dir.path().join("missing.log"), 3).expect("reads");
        assert!(none.is_empty());
    }

    proptest::proptest! {
        /// Whatever bytes a log or an atomic file holds (damage, another program's file),
        /// reading never panics and never allocates past what the file holds.
        #[test]
        fn damaged_files_are_read_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("any.log");
            fs::write(&path, &bytes).expect("writes");
            let _ = read_tail::<(u64, String)>(&path, 10);
            let _ = read_tail::<crate::node::DirectLine>(&path, 10);
            let _ = read_whole::<Vec<(u64, Vec<u8>)>>(&path);
        }
    }

    #[test]
    fn atomic_files_round_trip_and_damage_is_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("outbox.bin");
        assert_eq!(read_whole::<Vec<u64>>(&path).expect("reads"), None);
        write_atomic(&path, &vec![1u64, 2, 3]).expect("writes");
        assert_eq!(read_whole::<Vec<u64>>(&path).expect("reads"), Some(vec![1, 2, 3]));
        fs::write(&path, [0xff, 0xff, 0xff]).expect("writes");
        assert!(read_whole::<Vec<u64>>(&path).is_err());
    }
}
