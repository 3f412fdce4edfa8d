//! Content-addressed assets: imported models kept in an iroh-blobs store on disk, fetched from
//! any peer that has them, verified chunk by chunk (BLAKE3) as they stream in.
//!
//! A model is a *bundle*: its main `.glb` or `.gltf` file and the files it names (buffers,
//! textures), each a blob, listed in a small manifest that is a blob too. Structures name the
//! manifest's hash ([`sanctuary_engine::ModelRef`]); a peer that sees one fetches the manifest,
//! checks the sizes it declares against the budget, fetches the files, and checks the model
//! ([`sanctuary_engine::inspect_model`]) before anything decodes it.

use std::path::Path;

use futures_util::StreamExt;
use iroh::Endpoint;
use iroh_blobs::Hash;
use iroh_blobs::api::downloader::{DownloadProgressItem, Downloader};
use iroh_blobs::store::fs::FsStore;
use sanctuary_engine::avatar::{AvatarRef, avatar_limits, rank};
use sanctuary_engine::{ModelLimits, ModelRef, ModelSummary, budget, inspect_model, plain_model, referenced_files};
use serde::{Deserialize, Serialize};

/// The largest manifest read: a few dozen file names.
const MAX_MANIFEST_BYTES: usize = 16 * 1024;

/// One file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleFile {
    /// Its path relative to the main file, as the main file names it.
    pub name: String,
    /// BLAKE3 of its bytes.
    pub hash: [u8; 32],
    /// Its size.
    pub size: u64,
}

/// The manifest of a model: which file is the model and which files come with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// The main file's name (`scene.glb`, `model.gltf`).
    pub main: String,
    /// Every file, the main one first.
    pub files: Vec<BundleFile>,
}

impl Bundle {
    /// Bytes of all files together.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|file| file.size).sum()
    }

    fn file(&self, name: &str) -> Option<&BundleFile> {
        self.files.iter().find(|file| file.name == name)
    }
}

/// The limits every model must fit: one model may fill a parcel's budget, no more.
pub fn model_limits() -> ModelLimits {
    ModelLimits { max_bytes: budget::MODEL_BYTES, max_triangles: budget::TRIANGLES, ..ModelLimits::default() }
}

/// Why an asset could not be had.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AssetError {
    /// The file could not be read from disk.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// Which file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The model breaks a rule or a budget, or is malformed.
    #[error("{0}")]
    Model(String),
    /// The store failed.
    #[error("the asset store failed: {0}")]
    Store(String),
    /// No peer could provide it.
    #[error("no peer could provide it: {0}")]
    Unavailable(String),
}

/// The blob store, shared by the node, the importer and the program's asset reader.
#[derive(Debug, Clone)]
pub struct AssetStore {
    store: FsStore,
}

impl AssetStore {
    /// Opens (or creates) the store in `dir`.
    pub async fn open(dir: &Path) -> Result<Self, AssetError> {
        let store = FsStore::load(dir).await.map_err(|error| AssetError::Store(error.to_string()))?;
        Ok(Self { store })
    }

    /// Opens (or creates) a store in `dir` that deletes, every `gc.interval`, every blob
    /// neither tagged nor protected by `gc.add_protected`.
    pub(crate) async fn open_collected(dir: &Path, gc: iroh_blobs::store::GcConfig) -> Result<Self, AssetError> {
        let mut options = iroh_blobs::store::fs::options::Options::new(dir);
        options.gc = Some(gc);
        let store = FsStore::load_with_opts(dir.join("blobs.db"), options)
            .await
            .map_err(|error| AssetError::Store(error.to_string()))?;
        Ok(Self { store })
    }

    /// A downloader that fetches into this store over `endpoint`; keep one and reuse it (it
    /// pools its connections).
    pub fn downloader(&self, endpoint: &Endpoint) -> Downloader {
        Downloader::new(&self.store, endpoint)
    }

    /// The iroh-blobs store, for the router and the downloader.
    pub fn store(&self) -> &FsStore {
        &self.store
    }

    /// Imports a `.glb` or `.gltf` and the files it names from disk, after checking them all
    /// against the budget. Sizes are checked before anything is read whole.
    pub async fn import(&self, path: &Path) -> Result<(ModelRef, ModelSummary), AssetError> {
        let (hash, bytes, summary) = self.import_files(path, &model_limits()).await?;
        let (min, max) =
            summary.bounds.ok_or_else(|| AssetError::Model("the model declares no bounds for its meshes".into()))?;
        let triangles = u32::try_from(summary.triangles).unwrap_or(u32::MAX);
        Ok((ModelRef { hash, bytes, triangles, min, max }, summary))
    }

    /// Imports an avatar (a `.glb`, `.gltf` or `.vrm` and the files it names), after checking
    /// it against the avatar budget and ranking it.
    pub async fn import_avatar(&self, path: &Path) -> Result<(AvatarRef, ModelSummary), AssetError> {
        let (hash, bytes, summary) = self.import_files(path, &avatar_limits()).await?;
        let ranking = rank(&summary).map_err(|error| AssetError::Model(error.to_string()))?;
        Ok((AvatarRef { hash, bytes, rank: ranking.rank }, summary))
    }

    /// Reads a model and its files from disk within `limits`, checks them, and stores them as a
    /// bundle: its hash, its bytes in all, and what the checks found.
    async fn import_files(
        &self,
        path: &Path,
        limits: &ModelLimits,
    ) -> Result<([u8; 32], u64, ModelSummary), AssetError> {
        let read = |path: &Path, left: u64| -> Result<Vec<u8>, AssetError> {
            let failed = |reason: String| AssetError::Read { path: path.display().to_string(), reason };
            let size = std::fs::metadata(path).map_err(|error| failed(error.to_string()))?.len();
            if size > left {
                return Err(AssetError::Model(format!(
                    "{} is {size} bytes; a model may have {} bytes in all",
                    path.display(),
                    limits.max_bytes
                )));
            }
            std::fs::read(path).map_err(|error| failed(error.to_string()))
        };
        let main = read(path, limits.max_bytes)?;
        let main_name = path.file_name().and_then(|name| name.to_str()).unwrap_or("model.glb").to_owned();
        let names = referenced_files(&main, limits).map_err(|error| AssetError::Model(error.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut left = limits.max_bytes.saturating_sub(main.len() as u64);
        let mut files = vec![(main_name.clone(), main)];
        for name in names {
            if files.iter().any(|(known, _)| *known == name) {
                continue;
            }
            let bytes = read(&base.join(&name), left)?;
            left = left.saturating_sub(bytes.len() as u64);
            files.push((name, bytes));
        }
        // Made plain first when a tool saved bytes in ways not every loader reads (sparse
        // accessors, quantized meshes): one .glb is then stored and shared instead.
        let resource = |name: &str| files.iter().find(|(known, _)| known == name).map(|(_, bytes)| bytes.clone());
        if let Some(plain) =
            plain_model(&files[0].1, &resource, limits).map_err(|error| AssetError::Model(error.to_string()))?
        {
            let stem = Path::new(&main_name).file_stem().and_then(|stem| stem.to_str()).unwrap_or("model");
            files = vec![(format!("{stem}.glb"), plain)];
        }
        let summary = check_files(&files, limits)?;
        let main = files.first().map_or(main_name, |(name, _)| name.clone());
        let mut bundle = Bundle { main, files: Vec::new() };
        for (name, bytes) in files {
            let size = bytes.len() as u64;
            let tag = self.store.add_bytes(bytes).await.map_err(|error| AssetError::Store(error.to_string()))?;
            bundle.files.push(BundleFile { name, hash: *tag.hash.as_bytes(), size });
        }
        let manifest = postcard::to_allocvec(&bundle).map_err(|error| AssetError::Store(error.to_string()))?;
        let tag = self.store.add_bytes(manifest).await.map_err(|error| AssetError::Store(error.to_string()))?;
        Ok((*tag.hash.as_bytes(), bundle.total_size(), summary))
    }

    /// The manifest of a bundle held here, if it is complete and sane.
    pub async fn bundle(&self, hash: [u8; 32]) -> Option<Bundle> {
        let bytes = self.complete_bytes(hash, MAX_MANIFEST_BYTES as u64).await?;
        let bundle: Bundle = postcard::from_bytes(&bytes).ok()?;
        (bundle.files.len() <= model_limits().max_files && !bundle.files.is_empty()).then_some(bundle)
    }

    /// The bytes of a blob held here in full and no larger than `limit`.
    pub(crate) async fn complete_bytes(&self, hash: [u8; 32], limit: u64) -> Option<Vec<u8>> {
        use iroh_blobs::api::blobs::BlobStatus;
        match self.store.status(Hash::from_bytes(hash)).await.ok()? {
            BlobStatus::Complete { size } if size <= limit => {}
            _ => return None,
        }
        self.store.get_bytes(Hash::from_bytes(hash)).await.ok().map(|bytes| bytes.to_vec())
    }

    /// One file of a bundle held here, by the name the main file gives it (or the main file's
    /// own name). This is what the program's asset reader serves.
    pub async fn read_file(&self, bundle_hash: [u8; 32], name: &str) -> Option<Vec<u8>> {
        let bundle = self.bundle(bundle_hash).await?;
        let file = bundle.file(name)?;
        self.complete_bytes(file.hash, file.size).await
    }

    /// Reads a whole bundle held here and checks the model against `limits` ([`model_limits`]
    /// for a placed model, the avatar limits for an avatar).
    pub async fn checked_model(
        &self,
        hash: [u8; 32],
        limits: &ModelLimits,
    ) -> Result<(Bundle, ModelSummary), AssetError> {
        let bundle = self.bundle(hash).await.ok_or_else(|| AssetError::Unavailable("not here yet".into()))?;
        if bundle.total_size() > limits.max_bytes {
            return Err(AssetError::Model(format!(
                "the model is {} bytes; at most {}",
                bundle.total_size(),
                limits.max_bytes
            )));
        }
        let mut files = Vec::new();
        for file in &bundle.files {
            let bytes = self
                .complete_bytes(file.hash, file.size)
                .await
                .ok_or_else(|| AssetError::Unavailable(format!("{} is not here yet", file.name)))?;
            files.push((file.name.clone(), bytes));
        }
        // The main file is listed first.
        let summary = check_files(&files, limits)?;
        Ok((bundle, summary))
    }

    /// Fetches a bundle from `providers` (tried in turn), reporting the bytes received so far
    /// and the total, then checks it against `limits`. Parts already here are not fetched again.
    pub async fn fetch(
        &self,
        downloader: &Downloader,
        hash: [u8; 32],
        limits: &ModelLimits,
        providers: Vec<iroh::PublicKey>,
        progress: impl FnMut(u64, u64) + Send,
    ) -> Result<ModelSummary, AssetError> {
        let mut served = Served::default();
        self.fetch_counted(downloader, hash, limits, providers, progress, &mut served).await
    }

    /// [`AssetStore::fetch`], counting in `served` what each provider sent (for receipts, see
    /// [`crate::receipts`]), whether the fetch succeeds or not.
    pub async fn fetch_counted(
        &self,
        downloader: &Downloader,
        hash: [u8; 32],
        limits: &ModelLimits,
        providers: Vec<iroh::PublicKey>,
        mut progress: impl FnMut(u64, u64) + Send,
        served: &mut Served,
    ) -> Result<ModelSummary, AssetError> {
        if providers.is_empty() {
            return Err(AssetError::Unavailable("nobody who might have it is around".into()));
        }
        // The manifest first, and no more of it than a manifest may be.
        let manifest = Hash::from_bytes(hash);
        download(downloader, manifest, MAX_MANIFEST_BYTES as u64, providers.clone(), &mut |_| {}, served).await?;
        self.expect_complete(manifest, MAX_MANIFEST_BYTES as u64, "its manifest").await?;
        let bundle = self.bundle(hash).await.ok_or_else(|| AssetError::Model("its manifest is damaged".into()))?;
        // The sizes it declares, before any file is fetched.
        let total = bundle.files.iter().try_fold(0u64, |sum, file| sum.checked_add(file.size)).unwrap_or(u64::MAX);
        if total > limits.max_bytes {
            return Err(AssetError::Model(format!(
                "the model is {total} bytes; at most {} may come",
                limits.max_bytes
            )));
        }
        progress(0, total);
        let mut done = 0;
        for file in &bundle.files {
            let before = done;
            // Each file is asked for up to its declared size only: a provider cannot send more.
            let hash = Hash::from_bytes(file.hash);
            let mut told = |bytes: u64| progress(before + bytes.min(file.size), total);
            download(downloader, hash, file.size, providers.clone(), &mut told, served).await?;
            self.expect_complete(Hash::from_bytes(file.hash), file.size, &file.name).await?;
            done += file.size;
            progress(done, total);
        }
        self.checked_model(hash, limits).await.map(|(_, summary)| summary)
    }

    /// Fails unless the blob is here whole and at most `limit` bytes: a blob that is larger
    /// than its declared size is only ever fetched up to that size, and so stays partial.
    async fn expect_complete(&self, hash: Hash, limit: u64, what: &str) -> Result<(), AssetError> {
        use iroh_blobs::api::blobs::BlobStatus;
        match self.store.status(hash).await.map_err(|error| AssetError::Store(error.to_string()))? {
            BlobStatus::Complete { size } if size <= limit => Ok(()),
            BlobStatus::Complete { size } => {
                Err(AssetError::Model(format!("{what} is {size} bytes, more than the {limit} declared")))
            }
            BlobStatus::Partial { .. } => {
                Err(AssetError::Model(format!("{what} is larger than the {limit} bytes declared, or was cut short")))
            }
            BlobStatus::NotFound => Err(AssetError::Unavailable(format!("{what} did not arrive"))),
        }
    }
}

/// What each provider sent during fetches: `(provider, bytes, blobs completed)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Served {
    /// By provider, in the order they first sent something.
    pub by: Vec<(iroh::PublicKey, u64, u64)>,
}

impl Served {
    fn entry(&mut self, provider: iroh::PublicKey) -> &mut (iroh::PublicKey, u64, u64) {
        let at = match self.by.iter().position(|(id, _, _)| *id == provider) {
            Some(at) => at,
            None => {
                self.by.push((provider, 0, 0));
                self.by.len() - 1
            }
        };
        &mut self.by[at]
    }

    /// Whether nothing came from anyone.
    pub fn is_empty(&self) -> bool {
        self.by.iter().all(|(_, bytes, blobs)| *bytes == 0 && *blobs == 0)
    }
}

/// Downloads the first `limit` bytes of one blob (all of it, if it is no larger), reporting its
/// bytes as they come, and counting in `served` what each provider sent: the downloader asks
/// one provider at a time, so the bytes it reports after naming a provider came from it.
async fn download(
    downloader: &Downloader,
    hash: Hash,
    limit: u64,
    providers: Vec<iroh::PublicKey>,
    progress: &mut (dyn FnMut(u64) + Send),
    served: &mut Served,
) -> Result<(), AssetError> {
    use iroh_blobs::protocol::{ChunkRanges, ChunkRangesExt, GetRequest};
    // An empty range asks for nothing; the last chunk proves a blob's size (zero included).
    let ranges = if limit == 0 { ChunkRanges::last_chunk() } else { ChunkRanges::bytes(0..limit) };
    let mut stream = downloader
        .download(GetRequest::blob_ranges(hash, ranges), providers)
        .stream()
        .await
        .map_err(|error| AssetError::Unavailable(error.to_string()))?;
    let mut failed = None;
    let (mut current, mut seen) = (None, 0u64);
    while let Some(item) = stream.next().await {
        match item {
            DownloadProgressItem::TryProvider { id, .. } => current = Some(id),
            DownloadProgressItem::PartComplete { .. } => {
                if let Some(provider) = current {
                    served.entry(provider).2 += 1;
                }
            }
            DownloadProgressItem::Progress(bytes) => {
                if let Some(provider) = current
                    && bytes > seen
                {
                    let entry = served.entry(provider);
                    entry.1 = entry.1.saturating_add((bytes - seen).min(limit));
                }
                seen = seen.max(bytes);
                progress(bytes)
            }
            DownloadProgressItem::Error(error) => failed = Some(error.to_string()),
            DownloadProgressItem::DownloadError => failed = Some("every provider failed".to_owned()),
            _ => {}
        }
    }
    match failed {
        Some(reason) => Err(AssetError::Unavailable(reason)),
        None => Ok(()),
    }
}

/// Checks a model's files (the main one first) against the limits.
fn check_files(files: &[(String, Vec<u8>)], limits: &ModelLimits) -> Result<ModelSummary, AssetError> {
    let Some((_, main)) = files.first() else { return Err(AssetError::Model("an empty bundle".into())) };
    let resource = |name: &str| files.iter().find(|(known, _)| known == name).map(|(_, bytes)| bytes.clone());
    inspect_model(main, &resource, limits).map_err(|error| AssetError::Model(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use iroh::RelayMode;
    use iroh::address_lookup::MemoryLookup;
    use iroh::endpoint::presets;
    use iroh::protocol::Router;

    /// Bytes under `dir`, all files together.
    fn disk_use(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|entry| match entry.file_type() {
                        Ok(kind) if kind.is_dir() => disk_use(&entry.path()),
                        _ => entry.metadata().map_or(0, |meta| meta.len()),
                    })
                    .sum()
            })
            .unwrap_or(0)
    }

    /// A hostile holder serves bundles that lie: a file four times the size of the whole budget
    /// declared as 100 bytes, a "manifest" of a megabyte, a manifest declaring more than a
    /// parcel allows. Each is refused, and none of them is downloaded whole first (the model
    /// used to be fetched in full before its declared sizes were looked at).
    #[tokio::test]
    async fn lying_bundles_are_refused_before_they_are_downloaded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let holder = AssetStore::open(&dir.path().join("holder")).await.expect("store");
        let huge = holder.store().add_bytes(vec![7u8; 60 << 20]).await.expect("adds").hash;
        let lying = Bundle {
            main: "model.glb".into(),
            files: vec![BundleFile { name: "model.glb".into(), hash: *huge.as_bytes(), size: 100 }],
        };
        let lying = holder.store().add_bytes(postcard::to_allocvec(&lying).expect("encodes")).await.expect("adds");
        let fat_manifest = holder.store().add_bytes(vec![1u8; 1 << 20]).await.expect("adds");
        let greedy = Bundle {
            main: "model.glb".into(),
            files: vec![BundleFile { name: "model.glb".into(), hash: *huge.as_bytes(), size: 60 << 20 }],
        };
        let greedy = holder.store().add_bytes(postcard::to_allocvec(&greedy).expect("encodes")).await.expect("adds");
        let holder_endpoint =
            Endpoint::builder(presets::Minimal).relay_mode(RelayMode::Disabled).bind().await.expect("binds");
        let _router = Router::builder(holder_endpoint.clone())
            .accept(iroh_blobs::ALPN, iroh_blobs::BlobsProtocol::new(holder.store(), None))
            .spawn();

        let endpoint = Endpoint::builder(presets::Minimal).relay_mode(RelayMode::Disabled).bind().await.expect("binds");
        let memory = MemoryLookup::new();
        endpoint.address_lookup().expect("lookup").add(memory.clone());
        memory.add_endpoint_info(holder_endpoint.addr());
        let store_dir = dir.path().join("fetcher");
        let store = AssetStore::open(&store_dir).await.expect("store");
        let downloader = store.downloader(&endpoint);
        let providers = vec![holder_endpoint.id()];
        for (what, hash) in
            [("lying sizes", lying.hash), ("fat manifest", fat_manifest.hash), ("over budget", greedy.hash)]
        {
            let error = store.fetch(&downloader, *hash.as_bytes(), &model_limits(), providers.clone(), |_, _| {}).await;
            assert!(matches!(error, Err(AssetError::Model(_))), "{what}: {error:?}");
        }
        assert!(disk_use(&store_dir) < 4 << 20, "{} bytes were fetched", disk_use(&store_dir));
    }
}
