//! The person's identity key on disk: made on first run, the same node id ever after.

use std::io::Write;
use std::path::{Path, PathBuf};

use iroh::SecretKey;

/// The file that holds the secret key: 32 raw bytes, readable by its owner only.
pub const IDENTITY_FILE: &str = "identity.key";

/// Why the identity could not be loaded or made. A key file that exists but cannot be read is
/// never replaced: it is someone's identity.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The key file could not be read.
    #[error("cannot read the identity key at {path}: {source}")]
    Read {
        /// The key file.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The key file exists but is not 32 bytes; it is left as it is.
    #[error(
        "the identity key at {path} is damaged ({len} bytes, expected 32); it was left untouched. \
         Restore it from a backup, or move it away to start with a new identity"
    )]
    Damaged {
        /// The key file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// A new key file could not be written.
    #[error("cannot save a new identity key at {path}: {source}")]
    Write {
        /// The key file.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
}

/// Loads the secret key from `dir`, or makes one and saves it there if there is none yet.
pub fn load_or_create_identity(dir: &Path) -> Result<SecretKey, IdentityError> {
    let path = dir.join(IDENTITY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let bytes: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| IdentityError::Damaged { path: path.clone(), len: bytes.len() })?;
            Ok(SecretKey::from_bytes(&bytes))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            write_new_key(&path, &key).map_err(|source| IdentityError::Write { path, source })?;
            Ok(key)
        }
        Err(source) => Err(IdentityError::Read { path, source }),
    }
}

/// Writes the key to a temporary file, syncs it and renames it into place, so that a crash
/// leaves either no key file or a whole one.
pub(crate) fn write_new_key(path: &Path, key: &SecretKey) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = path.with_extension("key.new");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary)?;
    file.write_all(&key.to_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    if let Some(dir) = path.parent() {
        // Make the rename itself durable.
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sanctuary-identity-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn the_identity_survives_a_restart() {
        let dir = scratch("restart");
        let first = load_or_create_identity(&dir).expect("made");
        let again = load_or_create_identity(&dir).expect("loaded");
        assert_eq!(first.public(), again.public());
        assert_eq!(std::fs::read(dir.join(IDENTITY_FILE)).expect("saved").len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(IDENTITY_FILE)).expect("saved").permissions().mode();
            assert_eq!(mode & 0o077, 0, "others must not read the key (mode {mode:o})");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_damaged_key_is_reported_and_left_alone() {
        let dir = scratch("damaged");
        std::fs::create_dir_all(&dir).expect("temp is writable");
        std::fs::write(dir.join(IDENTITY_FILE), b"short").expect("written");
        let error = load_or_create_identity(&dir).unwrap_err();
        assert!(matches!(error, IdentityError::Damaged { len: 5, .. }), "{error}");
        assert_eq!(std::fs::read(dir.join(IDENTITY_FILE)).expect("still there"), b"short");
        let _ = std::fs::remove_dir_all(dir);
    }
}
