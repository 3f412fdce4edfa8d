//! The `blob://` asset source: Bevy reads imported models straight from the node's iroh-blobs
//! store, by hash. A path is `blob://<bundle hash in hex>/<file name>`; `model.glb` names the
//! bundle's main file, and the relative names a glTF gives its buffers and textures resolve to
//! the same bundle. Only files of a bundle held in full and checked are served.

use std::path::{Component, Path};
use std::sync::{Arc, OnceLock};

use bevy::asset::io::{AssetReader, AssetReaderError, AssetSourceBuilder, PathStream, Reader, VecReader};
use bevy::prelude::*;
use sanctuary_net::AssetStore;

use crate::avatars::DEFAULT_AVATARS;

/// The name under which a bundle's main file is asked for.
pub const MAIN_FILE: &str = "model.glb";

/// The store and the runtime it lives on, set once the node has started.
#[derive(Resource, Debug, Clone, Default)]
pub struct BlobSlot(pub Arc<OnceLock<(AssetStore, tokio::runtime::Handle)>>);

/// Registers the `blob` source; must come before Bevy's asset plugin.
pub fn register(app: &mut App) -> BlobSlot {
    let slot = BlobSlot::default();
    let reader_slot = slot.clone();
    app.register_asset_source(
        "blob",
        AssetSourceBuilder::new(move || Box::new(BlobReader { slot: reader_slot.clone() })),
    );
    app.register_asset_source("shipped", AssetSourceBuilder::new(|| Box::new(ShippedReader)));
    app.insert_resource(slot.clone());
    slot
}

/// The asset path of the avatar that ships at `index` of [`DEFAULT_AVATARS`].
pub fn shipped_path(index: usize) -> bevy::asset::AssetPath<'static> {
    let name = DEFAULT_AVATARS.get(index).map_or("none", |(name, _)| name);
    bevy::asset::AssetPath::from_path_buf(std::path::PathBuf::from(format!("{name}.glb"))).with_source("shipped")
}

/// The `shipped` source: the avatars built into the program, as `<name>.glb`.
struct ShippedReader;

impl AssetReader for ShippedReader {
    async fn read<'a>(&'a self, path: &'a Path) -> Result<impl Reader + 'a, AssetReaderError> {
        let name = path.to_str().and_then(|path| path.strip_suffix(".glb"));
        DEFAULT_AVATARS
            .iter()
            .find(|(shipped, _)| Some(*shipped) == name)
            .map(|(_, bytes)| VecReader::new(bytes.to_vec()))
            .ok_or_else(|| AssetReaderError::NotFound(path.to_path_buf()))
    }

    async fn read_meta<'a>(&'a self, path: &'a Path) -> Result<impl Reader + 'a, AssetReaderError> {
        Err::<VecReader, _>(AssetReaderError::NotFound(path.to_path_buf()))
    }

    async fn read_directory<'a>(&'a self, path: &'a Path) -> Result<Box<PathStream>, AssetReaderError> {
        Err(AssetReaderError::NotFound(path.to_path_buf()))
    }

    async fn is_directory<'a>(&'a self, _path: &'a Path) -> Result<bool, AssetReaderError> {
        Ok(false)
    }
}

/// The asset path of a model's main file.
pub fn model_path(hash: &[u8; 32]) -> bevy::asset::AssetPath<'static> {
    let hex: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
    bevy::asset::AssetPath::from_path_buf(std::path::PathBuf::from(format!("{hex}/{MAIN_FILE}"))).with_source("blob")
}

/// Splits `<hex>/<name>` into the hash and a safe relative name (normal components only).
fn split(path: &Path) -> Option<([u8; 32], String)> {
    let mut components = path.components();
    let Some(Component::Normal(hex)) = components.next() else { return None };
    let hex = hex.to_str()?;
    if hex.len() != 64 || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    let mut hash = [0u8; 32];
    for (byte, pair) in hash.iter_mut().zip(hex.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    let mut parts = Vec::new();
    for component in components {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?.to_owned()),
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| (hash, parts.join("/")))
}

struct BlobReader {
    slot: BlobSlot,
}

impl AssetReader for BlobReader {
    async fn read<'a>(&'a self, path: &'a Path) -> Result<impl Reader + 'a, AssetReaderError> {
        let not_found = || AssetReaderError::NotFound(path.to_path_buf());
        let (hash, name) = split(path).ok_or_else(not_found)?;
        let (store, runtime) = self.slot.0.get().cloned().ok_or_else(not_found)?;
        let bytes = runtime
            .spawn(async move {
                if name == MAIN_FILE {
                    let bundle = store.bundle(hash).await?;
                    let main = bundle.files.first()?.name.clone();
                    store.read_file(hash, &main).await
                } else {
                    store.read_file(hash, &name).await
                }
            })
            .await
            .ok()
            .flatten()
            .ok_or_else(not_found)?;
        Ok(VecReader::new(bytes))
    }

    async fn read_meta<'a>(&'a self, path: &'a Path) -> Result<impl Reader + 'a, AssetReaderError> {
        Err::<VecReader, _>(AssetReaderError::NotFound(path.to_path_buf()))
    }

    async fn read_directory<'a>(&'a self, path: &'a Path) -> Result<Box<PathStream>, AssetReaderError> {
        Err(AssetReaderError::NotFound(path.to_path_buf()))
    }

    async fn is_directory<'a>(&'a self, _path: &'a Path) -> Result<bool, AssetReaderError> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hash_and_plain_names_are_served() {
        let hex = "ab".repeat(32);
        assert_eq!(split(Path::new(&format!("{hex}/model.glb"))), Some(([0xab; 32], "model.glb".into())));
        assert_eq!(split(Path::new(&format!("{hex}/textures/a.png"))), Some(([0xab; 32], "textures/a.png".into())));
        assert_eq!(split(Path::new(&format!("{hex}/../x.bin"))), None);
        assert_eq!(split(Path::new(&hex)), None);
        assert_eq!(split(Path::new("nothex/model.glb")), None);
        assert_eq!(split(Path::new("../etc/passwd")), None);
    }
}
