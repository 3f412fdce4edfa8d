//! The wallet's own persistence: bdk's changesets appended to a crash-safe log.
//!
//! bdk's file store encodes with bincode, which this project does not use (it is unmaintained,
//! see the README), and SQLite would be a large C dependency for one append-only file. So
//! `wallet.log` holds one record per persisted changeset: a little-endian `u32` length, the
//! changeset as JSON (bdk's changesets are designed for serde and JSON reads them back exactly),
//! and the first 8 bytes of its BLAKE3. Every append is synced to disk before it returns. On
//! open, records are read up to the first incomplete or damaged one (a write torn by a crash) and
//! the file is cut there; the changesets read are merged into the wallet's state.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bdk_wallet::chain::Merge;
use bdk_wallet::{ChangeSet, WalletPersister};

/// The largest record: far above any real changeset (a full scan of a busy wallet is a few MB).
const MAX_RECORD: usize = 256 * 1024 * 1024;

/// An append-only log of wallet changesets.
#[derive(Debug)]
pub struct WalletStore {
    path: PathBuf,
    file: File,
    /// Bytes cut from a torn tail when opened.
    cut: u64,
}

fn checksum(bytes: &[u8]) -> [u8; 8] {
    let mut sum = [0u8; 8];
    sum.copy_from_slice(&blake3::hash(bytes).as_bytes()[..8]);
    sum
}

/// Reads a log's bytes: every intact changeset, merged, and the length of the intact part. A
/// record with a good checksum that does not decode was written by another version: that is an
/// error (stop rather than guess, and keep the file as it is).
pub fn parse_log(bytes: &[u8]) -> Result<(ChangeSet, usize), String> {
    let mut merged = ChangeSet::default();
    let mut at = 0usize;
    while let Some(header) = bytes.get(at..at + 4) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > MAX_RECORD {
            break;
        }
        let (Some(body), Some(sum)) = (bytes.get(at + 4..at + 4 + len), bytes.get(at + 4 + len..at + 4 + len + 8))
        else {
            break;
        };
        if sum != checksum(body) {
            break;
        }
        let changeset: ChangeSet = serde_json::from_slice(body)
            .map_err(|error| format!("the record at byte {at} is not a wallet changeset: {error}"))?;
        merged.merge(changeset);
        at += 4 + len + 8;
    }
    Ok((merged, at))
}

/// The bytes of a small log as the wallet writes it (two changesets), for fuzzing and tests.
pub fn example_log() -> Vec<u8> {
    let first = ChangeSet { network: Some(bdk_wallet::bitcoin::Network::Regtest), ..ChangeSet::default() };
    let mut bytes = Vec::new();
    for changeset in [first, ChangeSet::default()] {
        let body = serde_json::to_vec(&changeset).unwrap_or_default();
        bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&checksum(&body));
    }
    bytes
}

impl WalletStore {
    /// Opens (or creates) the log at `path`.
    pub fn open(path: &Path) -> io::Result<Self> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().read(true).append(true).create(true).open(path)?;
        Ok(Self { path: path.to_owned(), file, cut: 0 })
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of a torn tail cut off when the log was read (0 after a clean stop).
    pub fn cut(&self) -> u64 {
        self.cut
    }

    /// Reads every intact changeset, merged, and cuts a torn tail.
    fn read_all(&mut self) -> io::Result<ChangeSet> {
        let mut bytes = Vec::new();
        self.file.seek(SeekFrom::Start(0))?;
        self.file.read_to_end(&mut bytes)?;
        let (merged, at) = parse_log(&bytes)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {error}", self.path.display())))?;
        let cut = (bytes.len() - at) as u64;
        if cut > 0 {
            self.file.set_len(at as u64)?;
            self.file.sync_all()?;
        }
        self.file.seek(SeekFrom::End(0))?;
        self.cut = cut;
        Ok(merged)
    }

    /// Appends one changeset and syncs it: when this returns `Ok`, it survives a crash.
    fn append(&mut self, changeset: &ChangeSet) -> io::Result<()> {
        if changeset.is_empty() {
            return Ok(());
        }
        let body = serde_json::to_vec(changeset).map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
        if body.len() > MAX_RECORD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "wallet changeset too large to store"));
        }
        let mut record = Vec::with_capacity(body.len() + 12);
        record.extend_from_slice(&(body.len() as u32).to_le_bytes());
        record.extend_from_slice(&body);
        record.extend_from_slice(&checksum(&body));
        self.file.write_all(&record)?;
        self.file.sync_data()
    }
}

impl WalletPersister for WalletStore {
    type Error = io::Error;

    fn initialize(store: &mut Self) -> Result<ChangeSet, io::Error> {
        store.read_all()
    }

    fn persist(store: &mut Self, changeset: &ChangeSet) -> Result<(), io::Error> {
        store.append(changeset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bdk_wallet::bitcoin::Network;
    use bdk_wallet::{KeychainKind, Wallet};

    const EXTERNAL: &str = "wpkh(tprv8ZgxMBicQKsPdy6LMhUtFHAgpocR8GC6QmwMSFpZs7h6Eziw3SpThFfczTDh5rW2krkqffa11UpX3XkeTTB2FvzZKWXqPY54Y6Rq4AQ5R8L/84'/1'/0'/0/*)";
    const INTERNAL: &str = "wpkh(tprv8ZgxMBicQKsPdy6LMhUtFHAgpocR8GC6QmwMSFpZs7h6Eziw3SpThFfczTDh5rW2krkqffa11UpX3XkeTTB2FvzZKWXqPY54Y6Rq4AQ5R8L/84'/1'/0'/1/*)";

    #[test]
    fn a_wallet_reopens_with_its_addresses_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("wallet.log");
        let revealed = {
            let mut store = WalletStore::open(&path).expect("open");
            let mut wallet =
                Wallet::create(EXTERNAL, INTERNAL).network(Network::Regtest).create_wallet(&mut store).expect("create");
            wallet.reveal_next_address(KeychainKind::External);
            let address = wallet.reveal_next_address(KeychainKind::External).address;
            wallet.persist(&mut store).expect("persist");
            address
        };
        // A crash in the middle of the next append leaves half a record.
        let mut file = OpenOptions::new().append(true).open(&path).expect("append");
        file.write_all(&[200, 1, 0, 0, b'{', b'"']).expect("torn write");
        drop(file);

        let mut store = WalletStore::open(&path).expect("reopen");
        let mut wallet = Wallet::load()
            .descriptor(KeychainKind::External, Some(EXTERNAL))
            .descriptor(KeychainKind::Internal, Some(INTERNAL))
            .check_network(Network::Regtest)
            .load_wallet(&mut store)
            .expect("load")
            .expect("a wallet was stored");
        assert_eq!(store.cut(), 6, "the torn tail is cut");
        assert_eq!(wallet.derivation_index(KeychainKind::External), Some(1));
        assert_eq!(wallet.peek_address(KeychainKind::External, 1).address, revealed);
        // Appending after the cut works and reads back.
        wallet.reveal_next_address(KeychainKind::External);
        wallet.persist(&mut store).expect("persist after the cut");
        let mut store = WalletStore::open(&path).expect("reopen again");
        let wallet = Wallet::load().load_wallet(&mut store).expect("load").expect("stored");
        assert_eq!(wallet.derivation_index(KeychainKind::External), Some(2));
    }

    #[test]
    fn garbage_is_never_read_as_a_wallet() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("wallet.log");
        fs::write(&path, b"this is not a wallet log at all, just text").expect("write");
        let mut store = WalletStore::open(&path).expect("open");
        let loaded = Wallet::load().load_wallet(&mut store).expect("an empty log loads as no wallet");
        assert!(loaded.is_none());
    }
}
