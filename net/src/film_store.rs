//! The films a node holds: a blob store of their own, beside the models' ([`AssetStore`]), so
//! that films can be let go without touching anything else.
//!
//! Films are a cache. Anyone may queue a film of up to 8 GiB, and a viewer keeps what it
//! watched; kept for good, a few evenings of strangers' films would fill a disk. So the film
//! store is emptied when the node starts (it held others' films and references to files shared
//! from here, which sharing again restores), and collected every [`FILM_GC_INTERVAL`]: a film
//! goes unless it was shared from here (those are tagged) or is held ([`FilmStore::hold`]) by
//! someone reading or fetching it.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use iroh_blobs::Hash;
use iroh_blobs::store::{GcConfig, ProtectCb, ProtectOutcome};

use crate::assets::{AssetError, AssetStore};

/// How often films nobody holds are let go.
pub const FILM_GC_INTERVAL: Duration = Duration::from_secs(60);

/// Films held, by hash, and how many holds each has.
type Holds = Arc<Mutex<HashMap<[u8; 32], usize>>>;

fn lock(holds: &Holds) -> MutexGuard<'_, HashMap<[u8; 32], usize>> {
    holds.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The film store (see the module's documentation).
#[derive(Debug, Clone)]
pub struct FilmStore {
    store: AssetStore,
    holds: Holds,
}

impl FilmStore {
    /// Opens the film store in `dir`, emptied first, letting go of films nobody holds every
    /// `every`.
    pub async fn open(dir: &Path, every: Duration) -> Result<Self, AssetError> {
        let failed =
            |what: &str, error: std::io::Error| AssetError::Store(format!("cannot {what} {}: {error}", dir.display()));
        match std::fs::remove_dir_all(dir) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(failed("empty", error)),
        }
        std::fs::create_dir_all(dir).map_err(|error| failed("create", error))?;
        let holds = Holds::default();
        let held = holds.clone();
        let protect: ProtectCb = Arc::new(move |live: &mut HashSet<Hash>| {
            live.extend(lock(&held).keys().map(|hash| Hash::from_bytes(*hash)));
            Box::pin(async { ProtectOutcome::Continue })
        });
        let store = AssetStore::open_collected(dir, GcConfig { interval: every, add_protected: Some(protect) }).await?;
        Ok(Self { store, holds })
    }

    /// The store itself, for sharing, fetching and serving films.
    pub fn assets(&self) -> &AssetStore {
        &self.store
    }

    /// Keeps the film `hash` (all of it that is here, and what arrives) while the hold lives.
    pub fn hold(&self, hash: [u8; 32]) -> FilmHold {
        let mut holds = lock(&self.holds);
        let count = holds.entry(hash).or_default();
        *count = count.saturating_add(1);
        FilmHold { hash, holds: self.holds.clone() }
    }
}

/// A film kept from being let go (see [`FilmStore::hold`]).
#[derive(Debug)]
pub struct FilmHold {
    hash: [u8; 32],
    holds: Holds,
}

impl Drop for FilmHold {
    fn drop(&mut self) {
        let mut holds = lock(&self.holds);
        if let Some(count) = holds.get_mut(&self.hash) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                holds.remove(&self.hash);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iroh_blobs::api::blobs::BlobStatus;

    async fn here(films: &FilmStore, hash: Hash) -> bool {
        matches!(films.assets().store().status(hash).await, Ok(BlobStatus::Complete { .. }))
    }

    /// A film fetched (untagged) stays while it is held and goes at the next collection once
    /// it is not; a film shared from here (tagged) stays; a store opened again starts empty.
    #[tokio::test]
    async fn films_nobody_holds_are_let_go() {
        let dir = tempfile::tempdir().expect("temp dir");
        let every = Duration::from_millis(50);
        let films = FilmStore::open(dir.path(), every).await.expect("opens");
        // Added as a fetch leaves a film: held by nothing but a temporary tag, which goes.
        let tag = films.assets().store().add_bytes(vec![1u8; 50_000]).temp_tag().await.expect("adds");
        let fetched = tag.hash();
        let hold = films.hold(*fetched.as_bytes());
        let second = films.hold(*fetched.as_bytes());
        drop(tag);
        let shared = films.assets().store().add_bytes(vec![2u8; 50_000]).with_tag().await.expect("adds").hash;
        tokio::time::sleep(every * 6).await;
        assert!(here(&films, fetched).await, "a held film was let go");
        drop(hold);
        tokio::time::sleep(every * 6).await;
        assert!(here(&films, fetched).await, "a film still held once was let go");
        drop(second);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while here(&films, fetched).await {
            assert!(tokio::time::Instant::now() < deadline, "a film nobody holds was kept");
            tokio::time::sleep(every).await;
        }
        assert!(here(&films, shared).await, "a film shared from here was let go");
        films.assets().store().shutdown().await.expect("shuts down");
        drop(films);
        let again = FilmStore::open(dir.path(), FILM_GC_INTERVAL).await.expect("opens again");
        assert!(!here(&again, shared).await, "the store was not emptied when opened");
    }
}
