//! The world as this peer holds it: every signed change it has taken, kept in an append-only log
//! on disk, and the sync protocol that hands a late joiner the changes it lacks.
//!
//! **The log** (`world/changes.log`): one record per change, a little-endian `u32` length, the
//! change's bytes, and the first 8 bytes of their BLAKE3 as a checksum. A change is acknowledged
//! (to the builder, to gossip) only after its record is synced to disk, and nobody waits for
//! that sync while holding the world (see [`SharedReplica`]). Opening the log reads
//! records up to the first one that is incomplete or fails its checksum (a write torn by a crash
//! or power loss) and cuts the file there, so the next append follows the last good record.
//!
//! **Sync** (`sanctuary/world/1`): the asking peer sends a summary of what it holds (for each
//! of 256 buckets by the first byte of change ids, a count and the XOR of the ids). The answering
//! peer sends, for every bucket that differs, either all its changes of that bucket (when the
//! asker has none there) or the ids it holds there. The asker replies with the ids it wants and
//! the changes it has that the other lacks; the answerer sends what was wanted. Every change is
//! verified and checked by the rules on arrival, whoever sent it: sync moves bytes, it never
//! vouches for them.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use iroh::endpoint::{Connection, RecvStream, SendStream};
use iroh::protocol::{AcceptError, ProtocolHandler};
use sanctuary_engine::trade::ListingView;
use sanctuary_engine::{
    Change, ChangeId, Inserted, MAX_CHANGE_BYTES, Op, ParcelCoord, ParcelState, PublicKey, Rejection, SignedChange,
    VERIFY_BATCH, Verified, Verifier, World,
};
use serde::{Deserialize, Serialize};

use crate::inbox::RateLimiter;

/// The append-only, crash-safe log of changes.
#[derive(Debug)]
pub struct WorldLog {
    path: PathBuf,
    file: File,
}

/// Checksum of a record: the first 8 bytes of BLAKE3 of the change's bytes.
fn checksum(bytes: &[u8]) -> [u8; 8] {
    let hash = blake3::hash(bytes);
    let mut sum = [0u8; 8];
    sum.copy_from_slice(&hash.as_bytes()[..8]);
    sum
}

/// Reads the records of a log's bytes up to the first one that is incomplete, too long or fails
/// its checksum; returns them and the length of the good part.
pub fn parse_log(bytes: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let mut records = Vec::new();
    let mut at = 0usize;
    while let Some(header) = bytes.get(at..at + 4) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > MAX_CHANGE_BYTES {
            break;
        }
        let (Some(body), Some(sum)) = (bytes.get(at + 4..at + 4 + len), bytes.get(at + 4 + len..at + 4 + len + 8))
        else {
            break;
        };
        if sum != checksum(body) {
            break;
        }
        records.push(body.to_vec());
        at += 4 + len + 8;
    }
    (records, at)
}

impl WorldLog {
    /// Opens (or creates) the log at `path` and reads back every intact record. A torn tail is
    /// cut off; the records before it are kept. Returns the log, the records and the bytes cut.
    pub fn open(path: &Path) -> io::Result<(Self, Vec<Vec<u8>>, u64)> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (records, at) = parse_log(&bytes);
        let cut = (bytes.len() - at) as u64;
        if cut > 0 {
            file.set_len(at as u64)?;
            file.sync_all()?;
            file.seek(SeekFrom::End(0))?;
        }
        Ok((Self { path: path.to_owned(), file }, records, cut))
    }

    /// Appends changes and syncs them to disk: when this returns `Ok`, they survive a crash.
    pub fn append(&mut self, changes: &[Vec<u8>]) -> io::Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut buffer = Vec::with_capacity(changes.iter().map(|bytes| bytes.len() + 12).sum());
        for bytes in changes {
            buffer.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            buffer.extend_from_slice(bytes);
            buffer.extend_from_slice(&checksum(bytes));
        }
        self.file.write_all(&buffer)?;
        self.file.sync_data()
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What opening a replica found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenReport {
    /// Changes read back.
    pub records: usize,
    /// Bytes of a torn tail cut off (0 after a clean stop).
    pub cut_bytes: u64,
}

/// What applying a batch of changes from the network did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Changes taken and stored, as bytes (to pass on).
    pub new: Vec<Vec<u8>>,
    /// Parcels whose state may have changed.
    pub parcels: Vec<ParcelCoord>,
    /// Whether trust statements were among the new changes.
    pub statements: bool,
    /// Changes already held.
    pub duplicates: usize,
    /// Changes refused (bad bytes, bad signature, or the rules).
    pub refused: usize,
}

/// The world and its log, for one owner (a test, a tool): [`SharedReplica`] is what the node
/// and the program share.
#[derive(Debug)]
pub struct Replica {
    world: World,
    log: WorldLog,
}

/// A replica shared between the node's loop, the sync protocol and the program.
///
/// The world and its log have a lock each, and nobody holds the world's while waiting for the
/// disk: a change is checked and taken under the world's lock (memory only), then written and
/// synced under the log's. The program reads parcels and listings under the world's lock
/// alone, so a slow disk never stalls a frame.
#[derive(Debug, Clone)]
pub struct SharedReplica {
    world: Arc<Mutex<World>>,
    log: Arc<Mutex<WorldLog>>,
}

impl Replica {
    /// Opens the replica kept under `data_dir`. Changes read back from our own log were
    /// verified before they were written; their checksums guard against damage.
    pub fn open(data_dir: &Path) -> io::Result<(Self, OpenReport)> {
        let (log, records, cut_bytes) = WorldLog::open(&data_dir.join("world").join("changes.log"))?;
        let mut world = World::new();
        for bytes in &records {
            // A record that no longer decodes (written by another version) is skipped, not fatal.
            if let Ok(signed) = SignedChange::decode(bytes) {
                let _ = world.insert(Verified { signed, id: signed.id() });
            }
        }
        Ok((Self { world, log }, OpenReport { records: records.len(), cut_bytes }))
    }

    /// The world.
    pub fn world(&mut self) -> &mut World {
        &mut self.world
    }

    /// Takes changes verified elsewhere, stores the new ones, and says what happened. The log
    /// is synced once for the whole batch.
    pub fn apply_verified(&mut self, verified: Vec<Verified>) -> io::Result<Applied> {
        let applied = insert_all(&mut self.world, verified);
        self.log.append(&applied.new)?;
        Ok(applied)
    }

    /// Makes, signs, stores and returns our own change, if the rules allow it.
    pub fn author(&mut self, secret_seed: &[u8; 32], seq: u64, op: Op) -> Result<SignedChange, AuthorError> {
        let signed = sign_checked(&mut self.world, secret_seed, seq, op)?;
        self.world.insert(Verified { signed, id: signed.id() }).map_err(AuthorError::Refused)?;
        self.log.append(&[signed.to_bytes()]).map_err(|error| AuthorError::Disk(error.to_string()))?;
        Ok(signed)
    }
}

/// Takes verified changes into `world` (memory only) and says which are new.
fn insert_all(world: &mut World, verified: Vec<Verified>) -> Applied {
    let mut applied = Applied::default();
    let mut parcels = HashSet::new();
    for change in verified {
        match world.insert(change) {
            Ok(Inserted::New) => {
                applied.new.push(change.signed.to_bytes());
                match change.signed.change.op.parcel() {
                    Some(parcel) => {
                        parcels.insert(parcel);
                    }
                    None => applied.statements = true,
                }
            }
            Ok(Inserted::Duplicate) => applied.duplicates += 1,
            Err(_) => applied.refused += 1,
        }
    }
    applied.parcels = parcels.into_iter().collect();
    applied.parcels.sort();
    applied
}

/// Checks our own change against `world` and signs it.
fn sign_checked(world: &mut World, secret_seed: &[u8; 32], seq: u64, op: Op) -> Result<SignedChange, AuthorError> {
    let author = PublicKey::from_secret_seed(secret_seed);
    world.check(author, &op).map_err(AuthorError::Refused)?;
    Ok(Change { author, seq, op }.sign(secret_seed))
}

/// The summary that starts a sync.
fn summary(world: &World) -> Vec<(u32, [u8; 32])> {
    let mut buckets = vec![(0u32, [0u8; 32]); 256];
    for id in world.changes() {
        let bucket = &mut buckets[usize::from(id.0[0])];
        bucket.0 += 1;
        for (into, byte) in bucket.1.iter_mut().zip(id.0) {
            *into ^= byte;
        }
    }
    buckets
}

/// The ids held, by bucket (the first byte of the id).
fn buckets(world: &World) -> Vec<Vec<ChangeId>> {
    let mut buckets = vec![Vec::new(); 256];
    for id in world.changes() {
        buckets[usize::from(id.0[0])].push(id);
    }
    buckets
}

/// The bytes of held changes in causal order: claims, then transfers, then edits (each by epoch
/// and sequence), then trade records. A receiver then meets every change after the ownership it
/// depends on, so nothing it is sent has to wait for a transfer (see
/// `sanctuary_engine::MAX_WAITING_PER_AUTHOR`).
fn bytes_of(world: &World, ids: impl IntoIterator<Item = ChangeId>) -> Vec<Vec<u8>> {
    let mut changes: Vec<&SignedChange> = ids.into_iter().filter_map(|id| world.get(&id)).collect();
    changes.sort_by_key(|signed| causal_rank(&signed.change));
    changes.into_iter().map(SignedChange::to_bytes).collect()
}

/// Where a change comes in [`bytes_of`]'s order.
fn causal_rank(change: &Change) -> (u8, u32, u64) {
    match change.op {
        Op::Claim { .. } => (0, 0, change.seq),
        Op::Transfer { epoch, .. } => (1, epoch, change.seq),
        Op::Put { epoch, .. } | Op::Remove { epoch, .. } | Op::Ban { epoch, .. } => (2, epoch, change.seq),
        Op::List { .. }
        | Op::Withdraw { .. }
        | Op::Buy { .. }
        | Op::BuyLightning { .. }
        | Op::Trust { .. }
        | Op::Host { .. }
        | Op::Profile { .. } => (3, 0, change.seq),
    }
}

/// Why our own change was not made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuthorError {
    /// The rules refuse it (not our land, over budget…).
    #[error("{0}")]
    Refused(Rejection),
    /// It could not be stored, so it was not made.
    #[error("it could not be saved: {0}")]
    Disk(String),
}

impl SharedReplica {
    /// Opens the replica under `data_dir`.
    pub fn open(data_dir: &Path) -> io::Result<(Self, OpenReport)> {
        let (Replica { world, log }, report) = Replica::open(data_dir)?;
        Ok((Self { world: Arc::new(Mutex::new(world)), log: Arc::new(Mutex::new(log)) }, report))
    }

    /// The world, locked, for reading or for quick work in memory; never hold it across I/O. A
    /// panic elsewhere while it was held does not poison it for good: the world's state is
    /// rebuilt from its changes on every settle.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn log(&self) -> MutexGuard<'_, WorldLog> {
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The settled state of one parcel.
    pub fn parcel(&self, parcel: ParcelCoord) -> ParcelState {
        self.world().parcel(parcel)
    }

    /// Whether `author` may make `op` now.
    pub fn check(&self, author: PublicKey, op: &Op) -> Result<(), Rejection> {
        self.world().check(author, op)
    }

    /// Every listing held, with withdrawals and claims.
    pub fn listings(&self) -> Vec<ListingView> {
        self.world().listings()
    }

    /// The hash of the whole applied state.
    pub fn state_hash(&self) -> [u8; 32] {
        self.world().state_hash()
    }

    /// How many changes are held.
    pub fn len(&self) -> usize {
        self.world().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes, signs and stores our own change, if the rules allow it: checked under the world's
    /// lock, written to disk under the log's, then taken into the world. When this returns
    /// `Ok`, the change survives a crash.
    pub fn author(&self, secret_seed: &[u8; 32], seq: u64, op: Op) -> Result<SignedChange, AuthorError> {
        let signed = sign_checked(&mut self.world(), secret_seed, seq, op)?;
        self.log().append(&[signed.to_bytes()]).map_err(|error| AuthorError::Disk(error.to_string()))?;
        // Another change may have come in meanwhile and made ours moot; the record on disk is
        // then refused again when the log is read back, as it is now.
        self.world().insert(Verified { signed, id: signed.id() }).map_err(AuthorError::Refused)?;
        Ok(signed)
    }

    /// Takes verified changes into the world, then stores the new ones (one sync of the log for
    /// the batch).
    fn apply_verified(&self, verified: Vec<Verified>) -> io::Result<Applied> {
        let applied = insert_all(&mut self.world(), verified);
        self.log().append(&applied.new)?;
        Ok(applied)
    }

    /// Verifies raw changes on up to `threads` threads (signature checks are the costly part
    /// and need no lock), then applies and stores them.
    pub fn apply_bytes(&self, changes: &[Vec<u8>], threads: usize) -> io::Result<Applied> {
        let threads = threads.clamp(1, 8);
        let chunk = changes.len().div_ceil(threads).max(1);
        let mut refused = 0;
        let mut verified = Vec::with_capacity(changes.len());
        let mut take = |outcomes: Vec<Result<Verified, _>>| {
            for outcome in outcomes {
                match outcome {
                    Ok(change) => verified.push(change),
                    Err(_) => refused += 1,
                }
            }
        };
        if threads == 1 || changes.len() < 2 * VERIFY_BATCH {
            // A change or a few from gossip: not worth starting threads for.
            take(Verifier.verify_many(changes));
        } else {
            std::thread::scope(|scope| {
                let workers: Vec<_> =
                    changes.chunks(chunk).map(|part| scope.spawn(move || Verifier.verify_many(part))).collect();
                for worker in workers {
                    take(worker.join().unwrap_or_default());
                }
            });
        }
        let mut applied = self.apply_verified(verified)?;
        applied.refused += refused;
        Ok(applied)
    }
}

/// One frame of the sync protocol.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Frame {
    /// What the asker holds: (count, XOR of ids) for each of 256 buckets.
    Summary(Vec<(u32, [u8; 32])>),
    /// The ids the answerer holds in one bucket.
    Ids(Vec<ChangeId>),
    /// The answerer has listed every differing bucket.
    IdsDone,
    /// Ids the asker wants.
    Want(Vec<ChangeId>),
    /// Changes, as bytes.
    Changes(Vec<Vec<u8>>),
    /// This side has sent everything.
    Done,
}

/// The largest frame: a few thousand changes or ids.
const MAX_FRAME: usize = 4 * 1024 * 1024;
/// Changes per `Changes` frame.
const CHANGES_PER_FRAME: usize = 2_000;
/// Ids per `Ids` or `Want` frame.
const IDS_PER_FRAME: usize = 20_000;
/// The most frames one phase of a sync may take, whatever the peer sends.
const MAX_FRAMES: usize = 10_000;
/// The most change ids one sync takes from the other side, in `Ids` or `Want` frames (32 MB).
const MAX_SYNC_IDS: usize = 1_000_000;
/// How long the other side may take to send the next frame.
const FRAME_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one whole sync may take.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(300);
/// Syncs answered at once, for everyone together; more are turned away.
const MAX_ANSWERING: usize = 4;
/// Syncs one peer may ask of us: a few at once, then one a minute.
const ASKS_PER_PEER: (u32, f64) = (3, 1.0 / 60.0);

async fn write_frame(send: &mut SendStream, frame: &Frame) -> io::Result<()> {
    let body = postcard::to_allocvec(frame).map_err(io::Error::other)?;
    send.write_all(&(body.len() as u32).to_le_bytes()).await.map_err(io::Error::other)?;
    send.write_all(&body).await.map_err(io::Error::other)
}

async fn read_frame(recv: &mut RecvStream) -> io::Result<Frame> {
    tokio::time::timeout(FRAME_TIMEOUT, read_frame_now(recv))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the other side stopped sending"))?
}

async fn read_frame_now(recv: &mut RecvStream) -> io::Result<Frame> {
    let mut len = [0u8; 4];
    recv.read_exact(&mut len).await.map_err(io::Error::other)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("a sync frame of {len} bytes")));
    }
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await.map_err(io::Error::other)?;
    decode_frame(&body)
}

/// Decodes the body of one sync frame (after its length prefix) from untrusted bytes.
pub(crate) fn decode_frame(body: &[u8]) -> io::Result<Frame> {
    postcard::from_bytes(body).map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.to_string()))
}

async fn send_changes(send: &mut SendStream, changes: Vec<Vec<u8>>) -> io::Result<()> {
    for part in changes.chunks(CHANGES_PER_FRAME) {
        write_frame(send, &Frame::Changes(part.to_vec())).await?;
    }
    Ok(())
}

/// Verifies and applies received changes off the async threads.
async fn take_changes(replica: &SharedReplica, changes: Vec<Vec<u8>>, report: &mut SyncReport) -> io::Result<()> {
    let replica = replica.clone();
    let applied =
        tokio::task::spawn_blocking(move || replica.apply_bytes(&changes, 2)).await.map_err(io::Error::other)??;
    report.received += applied.new.len();
    report.refused += applied.refused;
    report.parcels.extend(applied.parcels);
    report.statements |= applied.statements;
    report.new.extend(applied.new);
    Ok(())
}

/// What one sync did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// The other side (set for syncs we answered).
    pub peer: Option<iroh::PublicKey>,
    /// Changes we took that we did not hold.
    pub received: usize,
    /// Changes we sent the other side.
    pub sent: usize,
    /// Changes refused on arrival.
    pub refused: usize,
    /// Parcels that may have changed.
    pub parcels: Vec<ParcelCoord>,
    /// Whether trust statements were among the new changes.
    pub statements: bool,
    /// The new changes' bytes.
    pub new: Vec<Vec<u8>>,
}

/// Syncs with the peer at the other end of `connection`: we ask, they answer. Gives up after
/// [`SYNC_TIMEOUT`], or when the other side is silent for 20 s.
pub async fn sync_with(replica: &SharedReplica, connection: &Connection) -> io::Result<SyncReport> {
    tokio::time::timeout(SYNC_TIMEOUT, ask(replica, connection))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the sync took too long"))?
}

async fn ask(replica: &SharedReplica, connection: &Connection) -> io::Result<SyncReport> {
    let (mut send, mut recv) = connection.open_bi().await.map_err(io::Error::other)?;
    let summary = summary(&replica.world());
    write_frame(&mut send, &Frame::Summary(summary.clone())).await?;
    let mut report = SyncReport::default();
    let Frame::Summary(their_summary) = read_frame(&mut recv).await? else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "a sync answer starts with a summary"));
    };
    // Buckets they hold nothing of: everything we hold there goes to them.
    let mut buckets_listed: HashSet<u8> = (0..=255u8)
        .filter(|bucket| their_summary.get(usize::from(*bucket)).is_some_and(|(count, _)| *count == 0))
        .filter(|bucket| summary[usize::from(*bucket)].0 > 0)
        .collect();
    let mut theirs: HashSet<ChangeId> = HashSet::new();
    for _ in 0..MAX_FRAMES {
        match read_frame(&mut recv).await? {
            Frame::Changes(changes) => take_changes(replica, changes, &mut report).await?,
            Frame::Ids(ids) => {
                if theirs.len().saturating_add(ids.len()) > MAX_SYNC_IDS {
                    return Err(too_many("ids"));
                }
                for id in ids {
                    buckets_listed.insert(id.0[0]);
                    theirs.insert(id);
                }
            }
            Frame::IdsDone => break,
            _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "unexpected sync frame")),
        }
    }
    // What they listed and we lack, we want; what we hold in those buckets and they lack, we give.
    let (want, give) = {
        let world = replica.world();
        let want: Vec<ChangeId> = theirs.iter().filter(|id| !world.contains(id)).copied().collect();
        let mut buckets = buckets(&world);
        let give: Vec<ChangeId> = buckets_listed
            .iter()
            .flat_map(|bucket| std::mem::take(&mut buckets[usize::from(*bucket)]))
            .filter(|id| !theirs.contains(id))
            .collect();
        (want, bytes_of(&world, give))
    };
    for part in want.chunks(IDS_PER_FRAME) {
        write_frame(&mut send, &Frame::Want(part.to_vec())).await?;
    }
    report.sent += give.len();
    send_changes(&mut send, give).await?;
    write_frame(&mut send, &Frame::Done).await?;
    for _ in 0..MAX_FRAMES {
        match read_frame(&mut recv).await? {
            Frame::Changes(changes) => take_changes(replica, changes, &mut report).await?,
            Frame::Done => break,
            _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "unexpected sync frame")),
        }
    }
    let _ = send.finish();
    Ok(report)
}

fn too_many(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("the other side sent more than {MAX_SYNC_IDS} {what}"))
}

/// Answers one sync request on a stream pair.
async fn answer(replica: &SharedReplica, mut send: SendStream, mut recv: RecvStream) -> io::Result<SyncReport> {
    let Frame::Summary(their_summary) = read_frame(&mut recv).await? else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "a sync starts with a summary"));
    };
    if their_summary.len() != 256 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "a summary has 256 buckets"));
    }
    let (ours, full, listed) = {
        let world = replica.world();
        let ours = summary(&world);
        let mut buckets = buckets(&world);
        let mut full = Vec::new();
        let mut listed = Vec::new();
        for (bucket, (mine, theirs)) in ours.iter().zip(&their_summary).enumerate() {
            if mine == theirs || mine.0 == 0 {
                continue;
            }
            let ids = std::mem::take(&mut buckets[bucket]);
            if theirs.0 == 0 { full.extend(ids) } else { listed.extend(ids) }
        }
        (ours, full, listed)
    };
    write_frame(&mut send, &Frame::Summary(ours)).await?;
    let mut report = SyncReport::default();
    for part in listed.chunks(IDS_PER_FRAME) {
        write_frame(&mut send, &Frame::Ids(part.to_vec())).await?;
    }
    write_frame(&mut send, &Frame::IdsDone).await?;
    // Only ids we hold count, each once: what we send back is bounded by what we have.
    let mut wanted = HashSet::new();
    for _ in 0..MAX_FRAMES {
        match read_frame(&mut recv).await? {
            Frame::Want(ids) => {
                if wanted.len().saturating_add(ids.len()) > MAX_SYNC_IDS {
                    return Err(too_many("wanted ids"));
                }
                let world = replica.world();
                wanted.extend(ids.into_iter().filter(|id| world.contains(id)));
            }
            Frame::Changes(changes) => take_changes(replica, changes, &mut report).await?,
            Frame::Done => break,
            _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "unexpected sync frame")),
        }
    }
    // Everything goes in one causal order, the buckets the asker lacks and the ids it wanted
    // alike: a claim whose id falls in a bucket the asker holds something of is wanted, and sent
    // before the edits in buckets it lacks (sent apart, the edits came first, and all but
    // `MAX_WAITING_PER_AUTHOR` of them were refused until the next sync a minute later).
    let give = bytes_of(&replica.world(), full.into_iter().chain(wanted));
    report.sent += give.len();
    send_changes(&mut send, give).await?;
    write_frame(&mut send, &Frame::Done).await?;
    let _ = send.finish();
    // Wait for the asker to read everything before the connection may close.
    let _ = recv.read_to_end(16).await;
    Ok(report)
}

/// The sync protocol's handler on the router. Changes that arrive through it are reported on
/// `arrivals` so the node can tell the program and pass them on. At most four syncs are
/// answered at once, each peer may ask a few times and then once a minute, and each answer
/// ends after [`SYNC_TIMEOUT`].
#[derive(Debug, Clone)]
pub struct SyncProtocol {
    replica: SharedReplica,
    arrivals: tokio::sync::mpsc::Sender<SyncReport>,
    answering: Arc<tokio::sync::Semaphore>,
    asks: Arc<Mutex<RateLimiter<iroh::PublicKey>>>,
    start: Instant,
    refused: Arc<std::sync::atomic::AtomicU64>,
}

impl SyncProtocol {
    /// A handler answering from `replica` and reporting on `arrivals`.
    pub fn new(replica: SharedReplica, arrivals: tokio::sync::mpsc::Sender<SyncReport>) -> Self {
        Self {
            replica,
            arrivals,
            answering: Arc::new(tokio::sync::Semaphore::new(MAX_ANSWERING)),
            asks: Arc::new(Mutex::new(RateLimiter::with_rate(ASKS_PER_PEER.0, ASKS_PER_PEER.1))),
            start: Instant::now(),
            refused: Arc::default(),
        }
    }

    /// Syncs turned away (too many at once, or asked too often).
    pub fn refused(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl ProtocolHandler for SyncProtocol {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let peer = connection.remote_id();
        while let Ok((send, recv)) = connection.accept_bi().await {
            let allowed = self.asks.lock().is_ok_and(|mut asks| asks.allow(peer, self.start.elapsed()));
            let permit = if allowed { self.answering.clone().try_acquire_owned().ok() } else { None };
            let Some(_permit) = permit else {
                self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                break;
            };
            let answered = tokio::time::timeout(SYNC_TIMEOUT, answer(&self.replica, send, recv)).await;
            match answered {
                Ok(Ok(report)) => {
                    let _ = self.arrivals.send(SyncReport { peer: Some(peer), ..report }).await;
                }
                Ok(Err(_)) | Err(_) => break,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glam::Vec3;
    use sanctuary_engine::{Object, ObjectKind, Placement, Rgb, Shape, home_parcel};

    fn build_op(seed: &[u8; 32], id: u64) -> Op {
        let parcel = home_parcel(&PublicKey::from_secret_seed(seed));
        let centre = parcel.bounds().center();
        let base = Vec3::new(centre.x + (id % 10) as f32 - 5.0, 0.0, centre.y);
        Op::Put {
            parcel,
            epoch: 0,
            id,
            object: Object {
                kind: ObjectKind::Primitive(Shape::Cuboid),
                placement: Placement::standing(base, Vec3::ONE),
                colour: Rgb::new(1, 2, 3),
            },
        }
    }

    #[test]
    fn changes_survive_a_restart_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().expect("temp dir");
        let seed = [4u8; 32];
        let hash = {
            let (mut replica, report) = Replica::open(dir.path()).expect("opens");
            assert_eq!(report, OpenReport::default());
            let parcel = home_parcel(&PublicKey::from_secret_seed(&seed));
            replica.author(&seed, 1, Op::Claim { parcel }).expect("claim");
            for id in 0..5 {
                replica.author(&seed, 2 + id, build_op(&seed, id)).expect("build");
            }
            replica.world().state_hash()
        };
        // A crash in the middle of a record.
        let path = dir.path().join("world").join("changes.log");
        let mut file = OpenOptions::new().append(true).open(&path).expect("opens");
        file.write_all(&[90, 0, 0, 0, 1, 2, 3]).expect("writes");
        drop(file);
        let length_before = fs::metadata(&path).expect("exists").len();
        let (mut replica, report) = Replica::open(dir.path()).expect("opens after the crash");
        assert_eq!(report.records, 6);
        assert_eq!(report.cut_bytes, 7);
        assert_eq!(fs::metadata(&path).expect("exists").len(), length_before - 7);
        assert_eq!(replica.world().state_hash(), hash);
        // New changes follow the last good record and are read back too.
        replica.author(&seed, 20, build_op(&seed, 9)).expect("build");
        drop(replica);
        let (replica, report) = Replica::open(dir.path()).expect("opens");
        assert_eq!(report.records, 7);
        assert_eq!(report.cut_bytes, 0);
        drop(replica);
    }

    #[test]
    fn our_own_changes_obey_the_rules() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut replica, _) = Replica::open(dir.path()).expect("opens");
        let seed = [4u8; 32];
        let theirs = build_op(&[5u8; 32], 1);
        assert!(matches!(replica.author(&seed, 1, theirs), Err(AuthorError::Refused(Rejection::Unclaimed))));
        assert!(replica.world().is_empty());
    }

    /// The program reads parcels every frame and listings every second; a change being written
    /// must not make it wait for the disk. Here the disk is held (the log's lock, as a slow
    /// `sync_data` holds it) while a change comes in: reads still answer, and show the change.
    /// (When the world and its log shared one lock, every read waited for the write.)
    #[test]
    fn readers_do_not_wait_for_the_disk() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (replica, _) = SharedReplica::open(dir.path()).expect("opens");
        let seed = [4u8; 32];
        let me = PublicKey::from_secret_seed(&seed);
        let parcel = home_parcel(&me);
        replica.author(&seed, 1, Op::Claim { parcel }).expect("claim");
        let change = Change { author: me, seq: 2, op: build_op(&seed, 1) }.sign(&seed).to_bytes();
        let disk = replica.log();
        let writer = {
            let replica = replica.clone();
            std::thread::spawn(move || replica.apply_bytes(&[change], 1))
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while replica.len() < 2 {
            assert!(Instant::now() < deadline, "the change never reached the world while the disk was busy");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(replica.parcel(parcel).objects.len(), 1);
        assert!(replica.check(me, &build_op(&seed, 2)).is_ok());
        assert!(replica.listings().is_empty());
        assert!(!writer.is_finished(), "the writer is still waiting for the disk");
        drop(disk);
        let applied = writer.join().expect("no panic").expect("stored");
        assert_eq!(applied.new.len(), 1);
        drop(replica);
        let (reopened, _) = SharedReplica::open(dir.path()).expect("opens");
        assert_eq!(reopened.len(), 2, "and it is on disk");
    }

    proptest::proptest! {
        /// Whatever bytes the log holds, opening it never panics and keeps only whole records.
        #[test]
        fn any_log_opens(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4096)) {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("world").join("changes.log");
            fs::create_dir_all(path.parent().expect("parent")).expect("dir");
            fs::write(&path, &bytes).expect("writes");
            let (_, report) = Replica::open(dir.path()).expect("opens");
            proptest::prop_assert!(report.cut_bytes <= bytes.len() as u64);
        }
    }

    /// A builder's claim and edits, the edits more than a receiver holds waiting for a claim.
    fn builder_history(seed: &[u8; 32], edits: u64) -> Vec<Vec<u8>> {
        let author = PublicKey::from_secret_seed(seed);
        let mut history = vec![Change { author, seq: 1, op: Op::Claim { parcel: home_parcel(&author) } }.sign(seed)];
        history.extend((1..=edits).map(|id| Change { author, seq: 1 + id, op: build_op(seed, id) }.sign(seed)));
        history.iter().map(SignedChange::to_bytes).collect()
    }

    /// A late joiner that already holds one change (its own profile, say) in the bucket of a
    /// builder's claim gets the claim and every edit in one sync: the claim, listed and wanted,
    /// must not come after the edits from the buckets the joiner lacks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_claim_in_a_bucket_both_hold_comes_before_its_edits() {
        use iroh::address_lookup::MemoryLookup;
        use iroh::endpoint::presets;
        use iroh::protocol::Router;
        use iroh::{Endpoint, RelayMode};

        let seed = [21u8; 32];
        let history = builder_history(&seed, sanctuary_engine::MAX_WAITING_PER_AUTHOR as u64 * 2);
        let claim_bucket = blake3::hash(&history[0]).as_bytes()[0];
        // Another person's claim whose id shares the claim's bucket.
        let mate = (0u32..)
            .map(|n| {
                let mut other = [0u8; 32];
                other[..4].copy_from_slice(&n.to_le_bytes());
                other[31] = 0xee;
                let author = PublicKey::from_secret_seed(&other);
                Change { author, seq: 1, op: Op::Claim { parcel: home_parcel(&author) } }.sign(&other).to_bytes()
            })
            .find(|bytes| blake3::hash(bytes).as_bytes()[0] == claim_bucket)
            .expect("some claim shares the bucket");
        let (answer_dir, ask_dir) = (tempfile::tempdir().expect("temp dir"), tempfile::tempdir().expect("temp dir"));
        let (answerer, _) = SharedReplica::open(answer_dir.path()).expect("opens");
        let (asker, _) = SharedReplica::open(ask_dir.path()).expect("opens");
        assert_eq!(answerer.apply_bytes(&history, 1).expect("stored").new.len(), history.len());
        assert_eq!(asker.apply_bytes(std::slice::from_ref(&mate), 1).expect("stored").new.len(), 1);

        let (arrivals, _kept) = tokio::sync::mpsc::channel(4);
        let server = Endpoint::builder(presets::Minimal).relay_mode(RelayMode::Disabled).bind().await.expect("binds");
        let _router = Router::builder(server.clone())
            .accept(crate::alpn::WORLD, SyncProtocol::new(answerer.clone(), arrivals))
            .spawn();
        let client = Endpoint::builder(presets::Minimal).relay_mode(RelayMode::Disabled).bind().await.expect("binds");
        let memory = MemoryLookup::new();
        client.address_lookup().expect("lookup").add(memory.clone());
        memory.add_endpoint_info(server.addr());
        let connection = client.connect(server.id(), crate::alpn::WORLD).await.expect("connects");
        let report = sync_with(&asker, &connection).await.expect("syncs");
        assert_eq!(report.refused, 0, "nothing was refused for want of its claim");
        assert_eq!(asker.len(), history.len() + 1, "one sync brings the whole history");
        assert_eq!(answerer.len(), history.len() + 1, "and the asker's own change goes back");
    }

    /// An answerer that lists more ids than any world holds, for ever.
    #[derive(Debug, Clone)]
    struct Liar;

    impl ProtocolHandler for Liar {
        async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
            let Ok((mut send, mut recv)) = connection.accept_bi().await else { return Ok(()) };
            let _ = read_frame(&mut recv).await;
            let _ = write_frame(&mut send, &Frame::Summary(vec![(1, [7; 32]); 256])).await;
            let mut next = 0u64;
            for _ in 0..(MAX_SYNC_IDS / IDS_PER_FRAME + 10) {
                let ids = (0..IDS_PER_FRAME)
                    .map(|_| {
                        next += 1;
                        let mut id = [0u8; 32];
                        id[..8].copy_from_slice(&next.to_le_bytes());
                        ChangeId(id)
                    })
                    .collect();
                if write_frame(&mut send, &Frame::Ids(ids)).await.is_err() {
                    break;
                }
            }
            let _ = write_frame(&mut send, &Frame::IdsDone).await;
            connection.closed().await;
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_answerer_listing_endless_ids_is_cut_off_at_the_cap() {
        use iroh::address_lookup::MemoryLookup;
        use iroh::endpoint::presets;
        use iroh::protocol::Router;
        use iroh::{Endpoint, RelayMode};

        let liar = Endpoint::builder(presets::Minimal).relay_mode(RelayMode::Disabled).bind().await.expect("binds");
        let _router = Router::builder(liar.clone()).accept(crate::alpn::WORLD, Liar).spawn();
        let asker = Endpoint::builder(presets::Minimal).relay_mode(RelayMode::Disabled).bind().await.expect("binds");
        let memory = MemoryLookup::new();
        asker.address_lookup().expect("lookup").add(memory.clone());
        memory.add_endpoint_info(liar.addr());
        let connection = asker.connect(liar.id(), crate::alpn::WORLD).await.expect("connects");
        let dir = tempfile::tempdir().expect("temp dir");
        let (replica, _) = SharedReplica::open(dir.path()).expect("opens");
        let error = sync_with(&replica, &connection).await.expect_err("an endless list is refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
        assert!(error.to_string().contains("more than 1000000 ids"), "{error}");
        assert_eq!(replica.len(), 0);
    }
}
