//! How loud the person hears each other person (a volume of 0 is a mute), kept on disk so that
//! mutes hold after a restart like blocks do. The program plays the volumes; the node keeps them.
//!
//! Bounds: at most [`MAX_KEPT_VOLUMES`] people (a full list refuses more, with a notice); each
//! volume between 0 and [`MAX_PERSON_VOLUME`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use sanctuary_engine::PublicKey;

use super::Event;
use super::actor::Node;
use crate::store;

/// People whose volume is kept.
pub const MAX_KEPT_VOLUMES: usize = 1_024;
/// The loudest anyone may be turned up to (twice as loud as they send, as playback allows).
pub const MAX_PERSON_VOLUME: f32 = 2.0;

/// The volumes set, by key, and where they are kept.
#[derive(Debug, Default)]
pub(super) struct Volumes {
    set: BTreeMap<[u8; 32], f32>,
    path: Option<PathBuf>,
}

impl Volumes {
    /// The volumes kept at `path` (none when there is no file yet); a file that cannot be read
    /// is reported and left alone until the next change.
    pub(super) fn open(path: PathBuf) -> (Self, Option<String>) {
        let (set, problem) = match store::read_whole::<Vec<([u8; 32], f32)>>(&path) {
            Ok(Some(kept)) => {
                let valid = kept
                    .into_iter()
                    .filter(|(key, volume)| PublicKey::from_bytes(*key).is_ok() && volume.is_finite())
                    .map(|(key, volume)| (key, volume.clamp(0.0, MAX_PERSON_VOLUME)))
                    .take(MAX_KEPT_VOLUMES)
                    .collect();
                (valid, None)
            }
            Ok(None) => (BTreeMap::new(), None),
            Err(error) => (BTreeMap::new(), Some(format!("the volumes (mutes) could not be read ({error})"))),
        };
        (Self { set, path: Some(path) }, problem)
    }

    /// Sets `key`'s volume (1.0, the normal one, is not kept) and writes the list down.
    pub(super) fn set(&mut self, key: PublicKey, volume: f32) -> Result<(), String> {
        let volume = if volume.is_finite() { volume.clamp(0.0, MAX_PERSON_VOLUME) } else { 1.0 };
        let bytes = *key.as_bytes();
        if (volume - 1.0).abs() < 1e-3 {
            if self.set.remove(&bytes).is_none() {
                return Ok(());
            }
        } else {
            if !self.set.contains_key(&bytes) && self.set.len() >= MAX_KEPT_VOLUMES {
                return Err(format!(
                    "{MAX_KEPT_VOLUMES} people have a volume of their own already; set someone back to normal first"
                ));
            }
            self.set.insert(bytes, volume);
        }
        if let Some(path) = &self.path {
            let list: Vec<([u8; 32], f32)> = self.set.iter().map(|(key, volume)| (*key, *volume)).collect();
            store::write_atomic(path, &list).map_err(|error| format!("the volumes could not be saved: {error}"))?;
        }
        Ok(())
    }

    /// Every volume kept, in key order.
    pub(super) fn list(&self) -> Vec<(PublicKey, f32)> {
        self.set.iter().filter_map(|(key, volume)| PublicKey::from_bytes(*key).ok().map(|key| (key, *volume))).collect()
    }
}

impl Node {
    /// The person turned someone up, down or off.
    pub(super) async fn set_volume(&mut self, person: PublicKey, volume: f32) {
        if let Err(why) = self.volumes.set(person, volume) {
            self.emit(Event::Notice(why)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> PublicKey {
        PublicKey::from_secret_seed(&[seed; 32])
    }

    #[test]
    fn mutes_and_volumes_are_kept_across_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("volumes.bin");
        {
            let (mut volumes, problem) = Volumes::open(path.clone());
            assert!(problem.is_none());
            volumes.set(key(1), 0.0).expect("muted");
            volumes.set(key(2), 9.0).expect("turned up, to the most");
            volumes.set(key(3), 0.5).expect("turned down");
            volumes.set(key(3), 1.0).expect("back to normal: not kept");
            volumes.set(key(4), f32::NAN).expect("nonsense is the normal volume");
        }
        let (volumes, _) = Volumes::open(path.clone());
        let mut kept = volumes.list();
        kept.sort_by_key(|(key, _)| *key);
        let mut expected = vec![(key(1), 0.0), (key(2), MAX_PERSON_VOLUME)];
        expected.sort_by_key(|(key, _)| *key);
        assert_eq!(kept, expected);
        std::fs::write(&path, b"garbage").expect("writes");
        let (volumes, problem) = Volumes::open(path);
        assert!(problem.is_some() && volumes.list().is_empty());
    }

    #[test]
    fn the_list_is_bounded() {
        let mut volumes = Volumes::default();
        for n in 0..MAX_KEPT_VOLUMES as u32 {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&n.to_le_bytes());
            volumes.set(PublicKey::from_secret_seed(&seed), 0.0).expect("room");
        }
        assert!(volumes.set(key(200), 0.0).is_err_and(|why| why.contains("back to normal first")));
        let first = volumes.list()[0].0;
        volumes.set(first, 1.0).expect("one back to normal");
        volumes.set(key(200), 0.0).expect("room again");
    }
}
