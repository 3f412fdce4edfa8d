//! Everything that is a person's, in one archive they can take to another machine:
//! `sanctuary export FILE` and `sanctuary import FILE`.
//!
//! The archive is a plain tar file (`tar -tf` lists it) under one folder, `sanctuary-export/`:
//! a README that explains it, then the files as they are in the data directory, then MANIFEST,
//! which names the person's key and every file's BLAKE3 and size. The identity key and the
//! private rooms' keys are sealed under a passphrase (see [`crate::sealed`]); everything else is
//! as private as the data directory itself (chats and private messages in the clear).
//!
//! An import is checked whole before anything is written where the person will find it: every
//! file against the manifest, the passphrase against the sealed key and the key against the
//! manifest, every world change's signature, every kept file against its own format. It is
//! unpacked into a staging folder beside the data directory and renamed into place only then,
//! and only into an empty or missing directory: nothing is ever overwritten.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sanctuary_engine::avatar::AvatarRef;
use sanctuary_engine::shields::Shields;
use sanctuary_engine::{ObjectKind, Op, PublicKey, Verifier};

use super::Profile;
use super::outbox::OutboxEntry;
use crate::assets::{AssetStore, Bundle};
use crate::hex::{from_hex, hex};
use crate::private_room::RoomsFile;
use crate::sealed;

/// The folder every path of an archive is under.
pub const ROOT: &str = "sanctuary-export";
/// The manifest's first line.
const MANIFEST_HEADER: &str = "sanctuary-export 1";
/// The most bytes one file of an archive may hold (a world log of millions of changes).
const MAX_FILE_BYTES: u64 = 4 << 30;
/// The most bytes a whole archive may unpack to.
const MAX_TOTAL_BYTES: u64 = 64 << 30;
/// The most files an archive may hold.
const MAX_FILES: usize = 100_000;
/// The most bytes of the README and MANIFEST.
const MAX_TEXT_BYTES: u64 = 16 << 20;

/// Files kept whole, by their path in the data directory (and the archive).
const PLAIN_FILES: [&str; 11] = [
    "profile.bin",
    "avatar.bin",
    "blocks.bin",
    "shields.bin",
    "volumes.bin",
    "outbox.bin",
    "direct.log",
    "show-avatars",
    "world/changes.log",
    "receipts.bin",
    "receipts-given.bin",
];

/// What went wrong, in words for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What happened.
        source: io::Error,
    },
    /// A node runs on the data directory.
    #[error("a Sanctuary is running on {0}; stop it first")]
    Running(PathBuf),
    /// Nothing to export.
    #[error("{0} holds no identity (identity.key); nothing to export")]
    NoIdentity(PathBuf),
    /// The archive file exists already.
    #[error("{0} exists already; choose another name")]
    Exists(PathBuf),
    /// The target directory holds something.
    #[error("{0} is not empty; import into an empty or new folder (--data-dir), nothing here is overwritten")]
    NotEmpty(PathBuf),
    /// The archive is damaged or not an export.
    #[error("the archive is refused: {0}")]
    Refused(String),
    /// The passphrase does not open the archive's identity.
    #[error("the passphrase does not open this archive's identity")]
    WrongPassphrase,
    /// Sealing failed.
    #[error("{0}")]
    Seal(sealed::SealError),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ExportError + '_ {
    move |source| ExportError::Io { path: path.to_owned(), source }
}

fn refused(why: impl Into<String>) -> ExportError {
    ExportError::Refused(why.into())
}

/// What an export or import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveReport {
    /// The person's key.
    pub key: PublicKey,
    /// Files in the archive (README and MANIFEST aside).
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// World changes carried (everyone's held; the person's own among them).
    pub changes: usize,
    /// Of those, the person's own.
    pub own_changes: usize,
    /// Blobs of the person's models and avatar carried.
    pub blobs: usize,
    /// Models of the person's that were not held here in full, so not carried.
    pub models_missing: usize,
}

/// Takes the data directory's lock, as a running node does, so that nothing changes under an
/// export or import.
fn lock(dir: &Path) -> Result<fs::File, ExportError> {
    let path = dir.join("node.lock");
    let file = fs::File::create(&path).map_err(io_at(&path))?;
    file.try_lock().map_err(|_| ExportError::Running(dir.to_owned()))?;
    Ok(file)
}

/// Writes everything of the person whose data directory is `data_dir` into a new archive at
/// `to`, the identity and room keys sealed under `passphrase`.
pub async fn export(data_dir: &Path, to: &Path, passphrase: &str) -> Result<ArchiveReport, ExportError> {
    export_with(data_dir, to, passphrase, sealed::Stretch::default()).await
}

/// [`export`] with the passphrase stretched as `stretch` says (tests stretch it less).
pub async fn export_with(
    data_dir: &Path,
    to: &Path,
    passphrase: &str,
    stretch: sealed::Stretch,
) -> Result<ArchiveReport, ExportError> {
    if to.exists() {
        return Err(ExportError::Exists(to.to_owned()));
    }
    let key_path = data_dir.join(crate::IDENTITY_FILE);
    if !key_path.is_file() {
        return Err(ExportError::NoIdentity(data_dir.to_owned()));
    }
    let _lock = lock(data_dir)?;
    let secret = zeroize::Zeroizing::new(fs::read(&key_path).map_err(io_at(&key_path))?);
    let secret_bytes: [u8; 32] =
        secret.as_slice().try_into().map_err(|_| refused(format!("{} is damaged", key_path.display())))?;
    let key = PublicKey::from_secret_seed(&secret_bytes);

    // Every file, by its path in the archive.
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    files.insert(
        "identity.sealed".into(),
        sealed::seal_with(&secret_bytes, passphrase, stretch).map_err(ExportError::Seal)?,
    );
    let rooms = data_dir.join("rooms.bin");
    if let Some(bytes) = read_if_there(&rooms)? {
        files.insert("rooms.sealed".into(), sealed::seal_with(&bytes, passphrase, stretch).map_err(ExportError::Seal)?);
    }
    for name in PLAIN_FILES {
        if let Some(bytes) = read_if_there(&data_dir.join(name))? {
            files.insert(name.into(), bytes);
        }
    }
    for region in sanctuary_engine::RegionId::all() {
        let name = format!("chat/{}.log", region.slug());
        if let Some(bytes) = read_if_there(&data_dir.join(&name))? {
            files.insert(name, bytes);
        }
    }
    for name in wallet_files(data_dir)? {
        if let Some(bytes) = read_if_there(&data_dir.join(&name))? {
            files.insert(name, bytes);
        }
    }

    // The world's changes held, and the models the person placed or wears.
    let (changes, own_changes, mut bundles) = match files.get("world/changes.log") {
        Some(log) => own_models(log, key),
        None => (0, 0, BTreeSet::new()),
    };
    if let Some(bytes) = files.get("avatar.bin")
        && let Ok(Some(avatar)) = postcard::from_bytes::<Option<AvatarRef>>(bytes)
    {
        bundles.insert(avatar.hash);
    }
    let (blobs, models_missing) = model_blobs(data_dir, &bundles).await;
    let blob_count = blobs.len();
    for (hash, bytes) in blobs {
        files.insert(format!("blobs/{}", hex(&hash)), bytes);
    }

    let report = ArchiveReport {
        key,
        files: files.len(),
        bytes: files.values().map(|bytes| bytes.len() as u64).sum(),
        changes,
        own_changes,
        blobs: blob_count,
        models_missing,
    };
    write_archive(to, key, &files)?;
    Ok(report)
}

fn read_if_there(path: &Path) -> Result<Option<Vec<u8>>, ExportError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ExportError::Io { path: path.to_owned(), source }),
    }
}

/// The wallet's files, by their path under the data directory: each network's sealed seed,
/// its log (descriptors and transactions) and its last ledger.
fn wallet_files(data_dir: &Path) -> Result<Vec<String>, ExportError> {
    let wallet = data_dir.join("wallet");
    let Ok(entries) = fs::read_dir(&wallet) else { return Ok(Vec::new()) };
    let mut names = Vec::new();
    for entry in entries.flatten().take(64) {
        let network = entry.file_name().to_string_lossy().into_owned();
        if !entry.path().is_dir() || !safe_word(&network) {
            continue;
        }
        for file in WALLET_FILES {
            names.push(format!("wallet/{network}/{file}"));
        }
        names.push(format!("wallet/{network}/lightning/{LIGHTNING_STATE}"));
    }
    names.sort();
    Ok(names)
}

/// A wallet network folder's files that are carried.
const WALLET_FILES: [&str; 3] = ["seed.sealed", "wallet.log", "ledger.csv"];
/// The Lightning node's state (its channels), in the wallet network folder's `lightning/`: the
/// recovery phrase cannot bring it back. Taken while nothing runs (the data directory's lock).
const LIGHTNING_STATE: &str = "ldk_node_data.sqlite";
/// The first bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// A name of lowercase letters and digits, 1 to 16 of them.
fn safe_word(word: &str) -> bool {
    (1..=16).contains(&word.len()) && word.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
}

/// The log's changes: how many, how many are `key`'s, and the bundles of the models `key`
/// placed.
fn own_models(log: &[u8], key: PublicKey) -> (usize, usize, BTreeSet<[u8; 32]>) {
    let (records, _) = crate::replica::parse_log(log);
    let verifier = Verifier;
    let (mut own, mut bundles) = (0, BTreeSet::new());
    for record in &records {
        let Ok(verified) = verifier.verify(record) else { continue };
        let change = verified.signed.change;
        if change.author != key {
            continue;
        }
        own += 1;
        if let Op::Put { object, .. } = &change.op
            && let ObjectKind::Model(model) = object.kind
        {
            bundles.insert(model.hash);
        }
    }
    (records.len(), own, bundles)
}

/// The blobs of these bundles held in full in the data directory's store (each bundle's
/// manifest, then its files), and how many bundles were not held in full.
async fn model_blobs(data_dir: &Path, bundles: &BTreeSet<[u8; 32]>) -> (Vec<([u8; 32], Vec<u8>)>, usize) {
    let blobs_dir = data_dir.join("blobs");
    if bundles.is_empty() || !blobs_dir.is_dir() {
        return (Vec::new(), bundles.len());
    }
    let Ok(store) = AssetStore::open(&blobs_dir).await else { return (Vec::new(), bundles.len()) };
    let (mut blobs, mut missing) = (Vec::new(), 0);
    for &hash in bundles {
        match bundle_blobs(&store, hash).await {
            Some(found) => blobs.extend(found),
            None => missing += 1,
        }
    }
    let _ = store.store().shutdown().await;
    (blobs, missing)
}

async fn bundle_blobs(store: &AssetStore, hash: [u8; 32]) -> Option<Vec<([u8; 32], Vec<u8>)>> {
    let bundle: Bundle = store.bundle(hash).await?;
    let manifest = store.complete_bytes(hash, 16 * 1024).await?;
    let mut blobs = vec![(hash, manifest)];
    for file in &bundle.files {
        blobs.push((file.hash, store.complete_bytes(file.hash, file.size).await?));
    }
    Some(blobs)
}

/// The README every archive starts with.
const README: &str = include_str!("export_readme.txt");

/// Writes the archive: README, the files by name, MANIFEST; to a temporary name, synced, then
/// renamed, so that a half-written archive never carries the final name.
fn write_archive(to: &Path, key: PublicKey, files: &BTreeMap<String, Vec<u8>>) -> Result<(), ExportError> {
    let partial = to.with_extension("partial");
    let file = fs::File::create(&partial).map_err(io_at(&partial))?;
    let mut builder = tar::Builder::new(io::BufWriter::new(file));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_secs());
    let mut add = |name: &str, bytes: &[u8]| -> io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(now);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, format!("{ROOT}/{name}"), bytes)
    };
    let mut manifest = format!("{MANIFEST_HEADER}\nkey {key}\n");
    add("README.txt", README.as_bytes()).map_err(io_at(&partial))?;
    for (name, bytes) in files {
        add(name, bytes).map_err(io_at(&partial))?;
        manifest.push_str(&format!("file {} {} {name}\n", blake3::hash(bytes).to_hex(), bytes.len()));
    }
    add("MANIFEST", manifest.as_bytes()).map_err(io_at(&partial))?;
    let mut writer = builder.into_inner().map_err(io_at(&partial))?;
    writer.flush().map_err(io_at(&partial))?;
    writer.get_ref().sync_all().map_err(io_at(&partial))?;
    drop(writer);
    fs::rename(&partial, to).map_err(io_at(to))
}

/// Whether `name` (a path in the archive, under [`ROOT`]) is one an archive may hold.
fn allowed(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        [single] => PLAIN_FILES.contains(single) || ["identity.sealed", "rooms.sealed"].contains(single),
        ["world", "changes.log"] => true,
        ["chat", file] => sanctuary_engine::RegionId::all().any(|region| *file == format!("{}.log", region.slug())),
        ["blobs", hash] => from_hex::<32>(hash).is_some() && *hash == hash.to_lowercase(),
        ["wallet", network, file] => safe_word(network) && WALLET_FILES.contains(file),
        ["wallet", network, "lightning", file] => safe_word(network) && *file == LIGHTNING_STATE,
        _ => false,
    }
}

/// Reads the archive at `archive` into a new data directory at `data_dir` (missing or empty),
/// opening its identity with `passphrase`. Checked whole first; see the module's notes.
pub async fn import(archive: &Path, data_dir: &Path, passphrase: &str) -> Result<ArchiveReport, ExportError> {
    if data_dir.exists() {
        let mut entries = fs::read_dir(data_dir).map_err(io_at(data_dir))?;
        if entries.next().is_some() {
            return Err(ExportError::NotEmpty(data_dir.to_owned()));
        }
    }
    let parent = data_dir.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io_at(parent))?;
    let name = data_dir.file_name().map_or_else(|| "data".into(), |name| name.to_string_lossy().into_owned());
    let staging = parent.join(format!(".{name}.import-{}", std::process::id()));
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(io_at(&staging))?;
    }
    fs::create_dir_all(&staging).map_err(io_at(&staging))?;
    let outcome = unpack_checked(archive, &staging, passphrase).await;
    match outcome {
        Ok(report) => {
            if data_dir.exists() {
                fs::remove_dir(data_dir).map_err(io_at(data_dir))?;
            }
            fs::rename(&staging, data_dir).map_err(io_at(data_dir))?;
            Ok(report)
        }
        Err(error) => {
            let _ = fs::remove_dir_all(&staging);
            Err(error)
        }
    }
}

async fn unpack_checked(archive: &Path, staging: &Path, passphrase: &str) -> Result<ArchiveReport, ExportError> {
    let file = fs::File::open(archive).map_err(io_at(archive))?;
    let mut tar = tar::Archive::new(io::BufReader::new(file));
    let entries = tar.entries().map_err(|error| refused(format!("not a tar archive: {error}")))?;
    // What each file is, as it came: its hash and size.
    let mut found: BTreeMap<String, (blake3::Hash, u64)> = BTreeMap::new();
    let (mut manifest, mut total) = (None, 0u64);
    let unpacked = staging.join(".unpacked");
    for entry in entries {
        let mut entry = entry.map_err(|error| refused(format!("damaged: {error}")))?;
        if found.len() >= MAX_FILES {
            return Err(refused(format!("more than {MAX_FILES} files")));
        }
        let path = entry.path().map_err(|error| refused(format!("a name that is not a path: {error}")))?;
        let path = path.to_string_lossy().into_owned();
        let name = path
            .strip_prefix(&format!("{ROOT}/"))
            .ok_or_else(|| refused(format!("{path} is outside {ROOT}/")))?
            .to_owned();
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(refused(format!("{name} is not a plain file")));
        }
        let size = entry.size();
        if name == "README.txt" || name == "MANIFEST" {
            if size > MAX_TEXT_BYTES {
                return Err(refused(format!("{name} is {size} bytes")));
            }
            let mut text = String::new();
            entry.read_to_string(&mut text).map_err(|error| refused(format!("{name}: {error}")))?;
            if name == "MANIFEST" {
                manifest = Some(text);
            }
            continue;
        }
        if !allowed(&name) {
            return Err(refused(format!("{name} is not something an export holds")));
        }
        if found.contains_key(&name) {
            return Err(refused(format!("{name} is in it twice")));
        }
        if size > MAX_FILE_BYTES {
            return Err(refused(format!("{name} is {size} bytes")));
        }
        total = total.checked_add(size).filter(|total| *total <= MAX_TOTAL_BYTES).ok_or_else(|| refused("too big"))?;
        let target = unpacked.join(&name);
        if let Some(folder) = target.parent() {
            fs::create_dir_all(folder).map_err(io_at(folder))?;
        }
        let mut out = fs::File::create(&target).map_err(io_at(&target))?;
        let mut hasher = blake3::Hasher::new();
        let mut buffer = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            let read = entry.read(&mut buffer).map_err(|error| refused(format!("{name}: {error}")))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            out.write_all(&buffer[..read]).map_err(io_at(&target))?;
            written += read as u64;
        }
        out.sync_all().map_err(io_at(&target))?;
        found.insert(name, (hasher.finalize(), written));
    }
    let manifest = manifest.ok_or_else(|| refused("it has no MANIFEST (cut short?)"))?;
    let key = check_manifest(&manifest, &found)?;
    let report = place(&unpacked, staging, key, passphrase, &found).await?;
    fs::remove_dir_all(&unpacked).map_err(io_at(&unpacked))?;
    Ok(report)
}

/// The manifest's key, if the manifest names exactly the files found, with their hashes and
/// sizes.
fn check_manifest(manifest: &str, found: &BTreeMap<String, (blake3::Hash, u64)>) -> Result<PublicKey, ExportError> {
    let mut lines = manifest.lines();
    if lines.next() != Some(MANIFEST_HEADER) {
        return Err(refused(format!(
            "not an export this program reads (its MANIFEST does not start with \"{MANIFEST_HEADER}\")"
        )));
    }
    let key = lines
        .next()
        .and_then(|line| line.strip_prefix("key "))
        .and_then(|key| key.parse::<PublicKey>().ok())
        .ok_or_else(|| refused("its MANIFEST names no key"))?;
    let mut listed = BTreeSet::new();
    for line in lines {
        let mut words = line.splitn(4, ' ');
        let (Some("file"), Some(hash), Some(size), Some(name)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(refused(format!("a MANIFEST line that is not a file: {line:?}")));
        };
        let (Some(hash), Ok(size)) = (from_hex::<32>(hash), size.parse::<u64>()) else {
            return Err(refused(format!("a MANIFEST line that is not a file: {line:?}")));
        };
        match found.get(name) {
            Some((got, got_size)) if *got.as_bytes() == hash && *got_size == size => {}
            Some(_) => return Err(refused(format!("{name} is not what the MANIFEST says (damaged or changed)"))),
            None => return Err(refused(format!("{name} is missing"))),
        }
        listed.insert(name.to_owned());
    }
    if let Some(extra) = found.keys().find(|name| !listed.contains(*name)) {
        return Err(refused(format!("{extra} is not in the MANIFEST")));
    }
    Ok(key)
}

/// Checks each file for what it is and moves it from `unpacked` to its place in `staging`.
async fn place(
    unpacked: &Path,
    staging: &Path,
    key: PublicKey,
    passphrase: &str,
    found: &BTreeMap<String, (blake3::Hash, u64)>,
) -> Result<ArchiveReport, ExportError> {
    let read = |name: &str| {
        let path = unpacked.join(name);
        fs::read(&path).map_err(io_at(&path))
    };
    // The identity: the passphrase opens it, and it is the key the manifest names.
    if !found.contains_key("identity.sealed") {
        return Err(refused("it holds no identity"));
    }
    let secret = sealed::open(&read("identity.sealed")?, passphrase).map_err(|error| match error {
        sealed::SealError::WrongPassphrase => ExportError::WrongPassphrase,
        other => refused(format!("identity.sealed: {other}")),
    })?;
    let secret: [u8; 32] = secret.as_slice().try_into().map_err(|_| refused("identity.sealed holds no key"))?;
    if PublicKey::from_secret_seed(&secret) != key {
        return Err(refused("its identity is not the key its MANIFEST names"));
    }
    crate::identity::write_new_key(&staging.join(crate::IDENTITY_FILE), &iroh::SecretKey::from_bytes(&secret))
        .map_err(io_at(staging))?;
    if found.contains_key("rooms.sealed") {
        let rooms = sealed::open(&read("rooms.sealed")?, passphrase)
            .map_err(|error| refused(format!("rooms.sealed: {error}")))?;
        postcard::from_bytes::<RoomsFile>(&rooms).map_err(|_| refused("rooms.sealed is not a rooms file"))?;
        write_file(&staging.join("rooms.bin"), &rooms)?;
    }
    // Each kept file is what it says it is.
    let mut report = ArchiveReport {
        key,
        files: found.len(),
        bytes: found.values().map(|(_, size)| size).sum(),
        changes: 0,
        own_changes: 0,
        blobs: 0,
        models_missing: 0,
    };
    let mut blobs = Vec::new();
    for name in found.keys() {
        if name == "identity.sealed" || name == "rooms.sealed" {
            continue;
        }
        if let Some(hash) = name.strip_prefix("blobs/") {
            blobs.push((from_hex::<32>(hash).ok_or_else(|| refused(format!("{name}: not a hash")))?, name.clone()));
            continue;
        }
        let bytes = read(name)?;
        check_kept(name, &bytes, key, &mut report)?;
        write_file(&staging.join(name), &bytes)?;
    }
    // Models and avatar: each blob is the bytes its name hashes to, added to a fresh store.
    if !blobs.is_empty() {
        let store = AssetStore::open(&staging.join("blobs"))
            .await
            .map_err(|error| refused(format!("the model store: {error}")))?;
        for (hash, name) in &blobs {
            let bytes = read(name)?;
            if *blake3::hash(&bytes).as_bytes() != *hash {
                return Err(refused(format!("{name} is not the bytes its name hashes to")));
            }
            store.store().add_bytes(bytes).await.map_err(|error| refused(format!("{name}: {error}")))?;
        }
        let _ = store.store().shutdown().await;
        report.blobs = blobs.len();
    }
    Ok(report)
}

/// Checks a kept file against its format.
fn check_kept(name: &str, bytes: &[u8], key: PublicKey, report: &mut ArchiveReport) -> Result<(), ExportError> {
    let whole =
        |ok: bool| if ok { Ok(()) } else { Err(refused(format!("{name} is damaged (not what it should hold)"))) };
    match name {
        "profile.bin" => whole(postcard::from_bytes::<Profile>(bytes).is_ok()),
        "avatar.bin" => whole(postcard::from_bytes::<Option<AvatarRef>>(bytes).is_ok()),
        "blocks.bin" => whole(postcard::from_bytes::<Vec<[u8; 32]>>(bytes).is_ok()),
        "shields.bin" => whole(
            postcard::from_bytes::<Shields>(bytes).is_ok()
                || postcard::from_bytes::<sanctuary_engine::shields::ShieldsBeforeAgents>(bytes).is_ok(),
        ),
        "volumes.bin" => whole(postcard::from_bytes::<Vec<([u8; 32], f32)>>(bytes).is_ok()),
        "outbox.bin" => whole(postcard::from_bytes::<Vec<OutboxEntry>>(bytes).is_ok()),
        "receipts-given.bin" => whole(postcard::from_bytes::<crate::receipts::Given>(bytes).is_ok()),
        // Every receipt must be for this person and signed by its receiver.
        "receipts.bin" => {
            let record: crate::receipts::Record = postcard::from_bytes(bytes)
                .map_err(|_| refused("receipts.bin is damaged (not what it should hold)"))?;
            let sound = |signed: &crate::receipts::SignedReceipt| {
                signed.receipt.server == *key.as_bytes() && signed.verify().is_ok()
            };
            if !record.all().iter().all(sound) {
                return Err(refused("receipts.bin holds a receipt that is not signed by its receiver for this key"));
            }
            Ok(())
        }
        "world/changes.log" => {
            let (records, read) = crate::replica::parse_log(bytes);
            if read != bytes.len() {
                return Err(refused("world/changes.log is damaged (a record does not check)"));
            }
            let verifier = Verifier;
            for (at, record) in records.iter().enumerate() {
                let verified = verifier.verify(record).map_err(|_| {
                    refused(format!("world/changes.log: change {} is not signed by its author", at + 1))
                })?;
                if verified.signed.change.author == key {
                    report.own_changes += 1;
                }
            }
            report.changes = records.len();
            Ok(())
        }
        name if name.ends_with(&format!("/lightning/{LIGHTNING_STATE}")) => whole(bytes.starts_with(SQLITE_HEADER)),
        // Logs are read record by record and a damaged tail is skipped, as the node does; the
        // wallet's files are the wallet's to read; the rank file is one word.
        _ => Ok(()),
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    if let Some(folder) = path.parent() {
        fs::create_dir_all(folder).map_err(io_at(folder))?;
    }
    let mut file = fs::File::create(path).map_err(io_at(path))?;
    file.write_all(bytes).map_err(io_at(path))?;
    file.sync_all().map_err(io_at(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipts::{Given, Record};

    /// The Lightning node's state travels under its own name only, and must be an SQLite file.
    #[test]
    fn lightning_state_is_allowed_by_name_and_checked() {
        assert!(allowed("wallet/regtest/lightning/ldk_node_data.sqlite"));
        assert!(!allowed("wallet/regtest/lightning/other.sqlite"));
        assert!(!allowed("wallet/../lightning/ldk_node_data.sqlite"));
        let key = PublicKey::from_bytes(*iroh::SecretKey::from_bytes(&[1; 32]).public().as_bytes()).expect("a key");
        let mut report =
            ArchiveReport { key, files: 0, bytes: 0, changes: 0, own_changes: 0, blobs: 0, models_missing: 0 };
        let name = "wallet/signet/lightning/ldk_node_data.sqlite";
        assert!(check_kept(name, b"SQLite format 3\0rest", key, &mut report).is_ok());
        assert!(check_kept(name, b"not a database at all", key, &mut report).is_err());
    }

    /// An archive's receipts must all be for its person and signed by their receivers: one
    /// written by the person with a stranger's name on it is refused.
    #[test]
    fn receipts_in_an_archive_are_checked() {
        let (server, receiver) = (iroh::SecretKey::from_bytes(&[1; 32]), iroh::SecretKey::from_bytes(&[2; 32]));
        let key = PublicKey::from_bytes(*server.public().as_bytes()).expect("a key");
        let mut report =
            ArchiveReport { key, files: 0, bytes: 0, changes: 0, own_changes: 0, blobs: 0, models_missing: 0 };
        let mut given = Given::default();
        given.add(*key.as_bytes(), 4096, 1, 0, 1);
        let signed = given.receipt(&receiver, *key.as_bytes(), 2).expect("counted");
        let mut record = Record::default();
        record.take(key.as_bytes(), receiver.public().as_bytes(), signed.clone(), 0).expect("taken");
        let bytes = postcard::to_allocvec(&record).expect("encodes");
        assert!(check_kept("receipts.bin", &bytes, key, &mut report).is_ok());
        // The same bytes under someone else's key: not their receipts.
        let other = PublicKey::from_bytes(*receiver.public().as_bytes()).expect("a key");
        assert!(check_kept("receipts.bin", &bytes, other, &mut report).is_err());
        // A receipt inflated after it was signed.
        let mut forged = signed;
        forged.receipt.blob_bytes = 1 << 40;
        let mut tampered: std::collections::HashMap<[u8; 32], crate::receipts::SignedReceipt> =
            std::collections::HashMap::new();
        tampered.insert(*receiver.public().as_bytes(), forged);
        let bytes = postcard::to_allocvec(&(tampered,)).expect("encodes");
        assert!(check_kept("receipts.bin", &bytes, key, &mut report).is_err());
        assert!(check_kept("receipts.bin", b"garbage", key, &mut report).is_err());
        assert!(
            check_kept("receipts-given.bin", &postcard::to_allocvec(&given).expect("encodes"), key, &mut report)
                .is_ok()
        );
    }
}
