//! Blocks: keys whose chat, private messages, voice, microphone state and presence never reach
//! us, kept on disk so that they hold after a restart. A block is one person's choice: what the
//! blocked key sends is still checked and relayed to others (who decide for themselves), and
//! their world changes still count (the world is everyone's; hiding their builds is the
//! program's part).
//!
//! Bounds: at most [`MAX_BLOCKS`] keys (a full list refuses more, with a notice).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use sanctuary_engine::PublicKey;

use crate::store;

/// Keys one person may block.
pub const MAX_BLOCKS: usize = 10_000;

/// The blocked keys, shared by the node and its protocol handlers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Blocks {
    /// As bytes, so that asking (for every message that arrives) is a lookup, not a key check.
    keys: Arc<RwLock<BTreeSet<[u8; 32]>>>,
    path: Option<PathBuf>,
}

impl Blocks {
    /// The list kept at `path` (empty when there is none yet); a file that cannot be read is
    /// reported and left alone (not overwritten until the person blocks or unblocks someone).
    pub(crate) fn open(path: PathBuf) -> (Self, Option<String>) {
        let (keys, problem) = match store::read_whole::<Vec<[u8; 32]>>(&path) {
            Ok(Some(keys)) => {
                let valid: BTreeSet<[u8; 32]> =
                    keys.into_iter().filter(|bytes| PublicKey::from_bytes(*bytes).is_ok()).take(MAX_BLOCKS).collect();
                (valid, None)
            }
            Ok(None) => (BTreeSet::new(), None),
            Err(error) => (BTreeSet::new(), Some(format!("the block list could not be read ({error})"))),
        };
        (Self { keys: Arc::new(RwLock::new(keys)), path: Some(path) }, problem)
    }

    /// Whether `key` is blocked.
    pub(crate) fn contains(&self, key: &[u8; 32]) -> bool {
        self.keys.read().unwrap_or_else(PoisonError::into_inner).contains(key)
    }

    /// Blocks (`true`) or unblocks `key`, and writes the list down. `Ok(false)` when nothing
    /// changed.
    pub(crate) fn set(&self, key: PublicKey, blocked: bool) -> Result<bool, String> {
        let list = {
            let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
            let changed = if blocked {
                if keys.len() >= MAX_BLOCKS && !keys.contains(key.as_bytes()) {
                    return Err(format!("{MAX_BLOCKS} people are blocked already; unblock someone first"));
                }
                keys.insert(*key.as_bytes())
            } else {
                keys.remove(key.as_bytes())
            };
            if !changed {
                return Ok(false);
            }
            keys.iter().copied().collect::<Vec<[u8; 32]>>()
        };
        if let Some(path) = &self.path {
            store::write_atomic(path, &list).map_err(|error| format!("the block list could not be saved: {error}"))?;
        }
        Ok(true)
    }

    /// Everyone blocked, in order.
    pub(crate) fn list(&self) -> Vec<PublicKey> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.iter().filter_map(|bytes| PublicKey::from_bytes(*bytes).ok()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> PublicKey {
        PublicKey::from_secret_seed(&[seed; 32])
    }

    #[test]
    fn blocks_are_kept_across_a_restart_and_bounded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("blocks.bin");
        {
            let (blocks, problem) = Blocks::open(path.clone());
            assert!(problem.is_none());
            assert_eq!(blocks.set(key(1), true), Ok(true));
            assert_eq!(blocks.set(key(1), true), Ok(false), "once is enough");
            assert_eq!(blocks.set(key(2), true), Ok(true));
            assert_eq!(blocks.set(key(2), false), Ok(true), "undone");
        }
        let (blocks, _) = Blocks::open(path.clone());
        assert!(blocks.contains(key(1).as_bytes()) && !blocks.contains(key(2).as_bytes()));
        assert_eq!(blocks.list(), vec![key(1)]);
        std::fs::write(&path, b"not a block list").expect("writes");
        let (blocks, problem) = Blocks::open(path.clone());
        assert!(problem.is_some_and(|problem| problem.contains("could not be read")));
        assert!(blocks.list().is_empty());
    }

    #[test]
    fn the_list_is_bounded() {
        let blocks = Blocks::default();
        for n in 0..MAX_BLOCKS as u32 {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&n.to_le_bytes());
            assert_eq!(blocks.set(PublicKey::from_secret_seed(&seed), true), Ok(true));
        }
        let refused = blocks.set(key(255), true);
        assert!(refused.is_err_and(|why| why.contains("unblock someone first")));
        let first = blocks.list()[0];
        assert_eq!(blocks.set(first, false), Ok(true));
        assert_eq!(blocks.set(key(255), true), Ok(true), "room again");
    }
}
