//! Films carried by their viewers: a shared film is one iroh-blobs blob (BLAKE3-verified as it
//! streams), fetched in segments of [`SEGMENT_BYTES`] from whoever holds them, the segment being
//! read first, so that playback starts after the first segments arrive and viewers serve each
//! other as well as the one who shared it.
//!
//! - [`share_film`] adds a file to the store in place (it is not copied).
//! - [`fetch_film`] is the task that fetches one film, up to [`PREFETCH_SEGMENTS`] ahead of
//!   where it is read: it watches what each holder has
//!   (iroh-blobs' observe request), and fetches up to [`PARALLEL`] segments at once, each from
//!   one holder: the segment a reader waits for first, then the rarest of the next
//!   [`WINDOW`], from holders other than the sharer where any has it, so that the sharer's upload
//!   does not grow with the audience. It records who served which ranges.
//! - [`FilmSource`] is what the program reads: a [`FilmReader`] per decoder (`Read + Seek`, for
//!   a blocking thread), which waits for a segment it needs and says so ([`FilmProgress`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use iroh::endpoint::Connection;
use iroh::{Endpoint, EndpointAddr};
use iroh_blobs::BlobFormat;
use iroh_blobs::Hash;
use iroh_blobs::api::blobs::{AddPathOptions, Bitfield, ImportMode};
use iroh_blobs::protocol::{ChunkRanges, ChunkRangesExt, GetRequest, ObserveRequest};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::assets::{AssetError, AssetStore};
use crate::film_store::{FilmHold, FilmStore};

/// The unit a film is fetched and read in.
pub const SEGMENT_BYTES: u64 = 1 << 20;
/// Segments fetched at once, each from its own holder where there are enough.
pub const PARALLEL: usize = 4;
/// How far ahead of the reader the rarest segment is looked for.
pub const WINDOW: usize = 16;
/// How far ahead of the reader segments are fetched: 64 MiB, a minute of a 4K film.
pub const PREFETCH_SEGMENTS: usize = 64;
/// The most holders a viewer fetches from.
pub const MAX_SOURCES: usize = 8;
/// A reader waiting this long for a segment gives up with an error (the film then shows
/// what the decoder makes of it: the end, or a broken film).
pub const READ_PATIENCE: Duration = Duration::from_secs(60);
/// A holder that failed is not asked again for this long.
/// How long a reader waits for a segment another viewer is fetching, while what that viewer
/// holds does not grow, before asking the sharer for it as well (that viewer has stalled).
pub const HANDOVER_PATIENCE: Duration = Duration::from_secs(2);
/// The longest a reader waits for a segment another viewer is fetching, however it grows: a
/// holder that claims to be fetching a segment for ever (a lie costs nothing) delays a reader
/// by this at most, and then the segment comes from the sharer.
pub const HANDOVER_MOST: Duration = Duration::from_secs(5);
/// The longest a viewer in company waits before asking the sharer for a segment its reader
/// needs and no one else has begun to fetch (each viewer waits its own part of it).
pub const STAGGER: Duration = Duration::from_millis(500);
const RETRY_AFTER: Duration = Duration::from_secs(3);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Adds the film at `path` to the film store, referenced in place and tagged (so that it is
/// kept while the node runs); its hash and size.
pub async fn share_film(films: &FilmStore, path: &Path, max_bytes: u64) -> Result<([u8; 32], u64), AssetError> {
    let store = films.assets();
    let failed = |reason: String| AssetError::Read { path: path.display().to_string(), reason };
    let size = std::fs::metadata(path).map_err(|error| failed(error.to_string()))?.len();
    if size == 0 {
        return Err(failed("the file is empty".into()));
    }
    if size > max_bytes {
        return Err(AssetError::Model(format!("the film is {size} bytes; at most {max_bytes} may be shared")));
    }
    let path = std::path::absolute(path).map_err(|error| failed(error.to_string()))?;
    let options = AddPathOptions { path, format: BlobFormat::Raw, mode: ImportMode::TryReference };
    let tag = store
        .store()
        .add_path_with_opts(options)
        .with_tag()
        .await
        .map_err(|error| AssetError::Store(error.to_string()))?;
    Ok((*tag.hash.as_bytes(), size))
}

/// Who served how much of a film, and which ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Served {
    /// Bytes received from them.
    pub bytes: u64,
    /// The byte ranges, merged.
    pub ranges: Vec<Range<u64>>,
}

/// How a film's fetch stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilmProgress {
    /// The film's size.
    pub size: u64,
    /// Bytes held here.
    pub held: u64,
    /// Who served what, by key.
    pub from: BTreeMap<[u8; 32], Served>,
    /// A reader waits for bytes nobody has sent yet.
    pub buffering: bool,
    /// Holders known (the sharer included).
    pub holders: usize,
}

#[derive(Debug)]
struct FetchState {
    have: Vec<bool>,
    /// The segment a reader waits for, if one does, and since when.
    waiting: Option<(usize, Instant)>,
    /// Where the reader read last.
    reading: usize,
    from: BTreeMap<[u8; 32], Served>,
    holders: usize,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<FetchState>,
    arrived: Condvar,
}

/// A film being fetched (or held whole): readers for decoders, and how it stands.
#[derive(Debug, Clone)]
pub struct FilmSource {
    hash: [u8; 32],
    size: u64,
    store: AssetStore,
    runtime: tokio::runtime::Handle,
    shared: Arc<Shared>,
    /// Keeps the film in the film store.
    _hold: Arc<FilmHold>,
}

fn segments(size: u64) -> usize {
    size.div_ceil(SEGMENT_BYTES) as usize
}

fn segment_range(index: usize, size: u64) -> Range<u64> {
    let start = index as u64 * SEGMENT_BYTES;
    start..(start + SEGMENT_BYTES).min(size)
}

impl FilmSource {
    /// A film of `size` bytes to be had by `hash`, read with the store on `runtime`. Segments
    /// already held whole are marked at once (the sharer's, or a fetch begun before).
    /// The film is held in `films` (not let go) while any clone of the source lives.
    pub async fn new(films: &FilmStore, hash: [u8; 32], size: u64, runtime: tokio::runtime::Handle) -> Self {
        let hold = Arc::new(films.hold(hash));
        let store = films.assets().clone();
        let mut have = vec![false; segments(size)];
        if let Ok(local) = store.store().observe(Hash::from_bytes(hash)).await {
            mark_held(&mut have, &local, size);
        }
        let state = FetchState { have, waiting: None, reading: 0, from: BTreeMap::new(), holders: 0 };
        Self {
            hash,
            size,
            store,
            runtime,
            shared: Arc::new(Shared { state: Mutex::new(state), arrived: Condvar::new() }),
            _hold: hold,
        }
    }

    /// The film's hash.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// The film's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether every segment is here.
    pub fn complete(&self) -> bool {
        lock(&self.shared.state).have.iter().all(|held| *held)
    }

    /// How the fetch stands.
    pub fn progress(&self) -> FilmProgress {
        let state = lock(&self.shared.state);
        let held = state.have.iter().enumerate().filter(|(_, held)| **held).map(|(index, _)| {
            let range = segment_range(index, self.size);
            range.end - range.start
        });
        FilmProgress {
            size: self.size,
            held: held.sum(),
            from: state.from.clone(),
            buffering: state.waiting.is_some(),
            holders: state.holders,
        }
    }

    /// A reader from the start of the film. Use it off the runtime (it blocks).
    pub fn reader(&self) -> FilmReader {
        FilmReader { source: self.clone(), position: 0, cached: None }
    }

    fn segment_arrived(&self, index: usize, from: [u8; 32]) {
        let range = segment_range(index, self.size);
        let mut state = lock(&self.shared.state);
        match state.have.get_mut(index) {
            Some(held) if !*held => *held = true,
            // Fetched twice (a holder's answer raced another's): counted once.
            _ => return,
        }
        let served = state.from.entry(from).or_default();
        served.bytes = served.bytes.saturating_add(range.end - range.start);
        add_range(&mut served.ranges, range);
        drop(state);
        self.shared.arrived.notify_all();
    }

    /// Waits for segment `index` (saying so while it waits); false when it did not come.
    fn wait_for(&self, index: usize) -> bool {
        let started = Instant::now();
        let mut state = lock(&self.shared.state);
        state.reading = index;
        while !state.have.get(index).copied().unwrap_or(false) {
            if started.elapsed() > READ_PATIENCE {
                state.waiting = None;
                return false;
            }
            state.waiting = Some((index, started));
            state = match self.shared.arrived.wait_timeout(state, Duration::from_millis(200)) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        state.waiting = None;
        true
    }

    /// The segments a fetch should take next, in order of need: the one a reader waits for
    /// (or reads), then the following ones up to [`PREFETCH_SEGMENTS`] ahead, so that what a
    /// viewer fetches follows what it watches (a film of gigabytes queued by a stranger costs
    /// a viewer only the part it plays).
    fn wanted(&self, busy: &HashSet<usize>) -> Vec<usize> {
        let state = lock(&self.shared.state);
        let count = state.have.len();
        let from = state.waiting.map_or(state.reading, |(index, _)| index).min(count.saturating_sub(1));
        (from..count.min(from.saturating_add(PREFETCH_SEGMENTS)))
            .filter(|index| !state.have[*index] && !busy.contains(index))
            .collect()
    }

    fn set_holders(&self, holders: usize) {
        lock(&self.shared.state).holders = holders;
    }
}

/// Marks the segments `bitfield` holds whole.
fn mark_held(have: &mut [bool], bitfield: &Bitfield, size: u64) {
    for (index, held) in have.iter_mut().enumerate() {
        let range = segment_range(index, size);
        *held = *held || ChunkRanges::bytes(range).is_subset(&bitfield.ranges);
    }
}

/// Adds `range` to sorted, merged `ranges`.
fn add_range(ranges: &mut Vec<Range<u64>>, range: Range<u64>) {
    ranges.push(range);
    ranges.sort_by_key(|range| range.start);
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for range in ranges.drain(..) {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    *ranges = merged;
}

/// Reads a film from its segments, waiting for any not here yet. `Read + Seek`, for a decoder
/// on a thread of its own.
#[derive(Debug)]
pub struct FilmReader {
    source: FilmSource,
    position: u64,
    cached: Option<(usize, bytes::Bytes)>,
}

impl FilmReader {
    /// The film's size.
    pub fn len(&self) -> u64 {
        self.source.size
    }

    /// Whether the film is empty (never, for a shared film).
    pub fn is_empty(&self) -> bool {
        self.source.size == 0
    }
}

impl Read for FilmReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.position >= self.source.size || buffer.is_empty() {
            return Ok(0);
        }
        let index = (self.position / SEGMENT_BYTES) as usize;
        if self.cached.as_ref().is_none_or(|(cached, _)| *cached != index) {
            if !self.source.wait_for(index) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no one sent this part of the film in time",
                ));
            }
            let range = segment_range(index, self.source.size);
            let hash = Hash::from_bytes(self.source.hash);
            let store = self.source.store.store().clone();
            let bytes = self
                .source
                .runtime
                .block_on(async move { store.export_ranges(hash, range).concatenate().await })
                .map_err(|error| std::io::Error::other(error.to_string()))?;
            self.cached = Some((index, bytes.into()));
        }
        let Some((_, bytes)) = &self.cached else { return Ok(0) };
        let offset = (self.position % SEGMENT_BYTES) as usize;
        let available = bytes.get(offset..).unwrap_or_default();
        let count = available.len().min(buffer.len());
        buffer[..count].copy_from_slice(&available[..count]);
        self.position += count as u64;
        Ok(count)
    }
}

impl Seek for FilmReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.source.size.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        let target =
            target.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.position = target;
        Ok(target)
    }
}

/// What the fetch knows of one holder.
#[derive(Debug, Default)]
struct Holder {
    /// Where to dial it.
    addr: Option<EndpointAddr>,
    connection: Option<Connection>,
    bitfield: Option<Bitfield>,
    busy: usize,
    dialing: bool,
    failed_at: Option<Instant>,
    /// When what it holds last grew.
    grew_at: Option<Instant>,
    /// Watches what it holds; dropped with the holder.
    observer: Option<tokio::task::AbortHandle>,
}

impl Drop for Holder {
    fn drop(&mut self) {
        if let Some(observer) = self.observer.take() {
            observer.abort();
        }
    }
}

/// A segment fetched (or not) from a holder.
struct Fetched {
    index: usize,
    holder: iroh::PublicKey,
    result: Result<(), String>,
}

/// Bitfield updates from the holders' observe streams.
type Observed = (iroh::PublicKey, Bitfield);
/// A holder dialled.
type Dialled = (iroh::PublicKey, Result<Connection, String>);

/// Fetches the film of `source` from `holders` (a list that changes as viewers come and go,
/// each with where to dial it; `sharer` among them is asked only for what no one else has)
/// until it is here whole. `company` is how many others were in the room as it began (the
/// sharer among them): with more than the sharer, other viewers are likely to want the same
/// segments at the same moment, and a segment only the sharer has is asked for after a short
/// wait of each viewer's own ([`STAGGER`]), so that one viewer fetches it and the rest take it
/// from them.
pub async fn fetch_film(
    source: FilmSource,
    endpoint: Endpoint,
    sharer: iroh::PublicKey,
    mut holders: watch::Receiver<Vec<EndpointAddr>>,
    company: usize,
) {
    let crowded = company > 1;
    let began = Instant::now();
    let hash = Hash::from_bytes(source.hash);
    let mut known: HashMap<iroh::PublicKey, Holder> = HashMap::new();
    let mut running: JoinSet<Fetched> = JoinSet::new();
    let mut busy: HashSet<usize> = HashSet::new();
    let (observed_tx, mut observed) = tokio::sync::mpsc::channel::<Observed>(64);
    let (dialled_tx, mut dialled) = tokio::sync::mpsc::channel::<Dialled>(MAX_SOURCES);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        if source.complete() {
            return;
        }
        // Holders come and go.
        {
            let listed: Vec<EndpointAddr> = holders.borrow_and_update().clone();
            known.retain(|key, _| listed.iter().any(|addr| addr.id == *key));
            for addr in listed.into_iter().filter(|addr| addr.id != endpoint.id()).take(MAX_SOURCES) {
                let key = addr.id;
                known.entry(key).or_default().addr = Some(addr);
            }
            source.set_holders(known.len());
        }
        for (key, holder) in &mut known {
            let retry = holder.failed_at.is_none_or(|at| at.elapsed() > RETRY_AFTER);
            if holder.connection.is_none() && !holder.dialing && retry {
                // Dialled off the loop: a holder that does not answer holds up no one.
                holder.dialing = true;
                let (endpoint, out, key) = (endpoint.clone(), dialled_tx.clone(), *key);
                let addr = holder.addr.clone().unwrap_or_else(|| EndpointAddr::new(key));
                tokio::spawn(async move {
                    let result = endpoint.connect(addr, crate::alpn::FILMS).await.map_err(|error| error.to_string());
                    let _ = out.send((key, result)).await;
                });
            }
        }
        // Start fetches while there is room.
        while running.len() < PARALLEL {
            let Some((index, key)) = choose(&source, &known, &busy, sharer, endpoint.id(), crowded, began) else {
                break;
            };
            let Some(holder) = known.get_mut(&key) else { break };
            let Some(connection) = holder.connection.clone() else { break };
            holder.busy += 1;
            busy.insert(index);
            let store = source.store.store().clone();
            let range = segment_range(index, source.size);
            running.spawn(async move {
                let request = GetRequest::blob_ranges(hash, ChunkRanges::bytes(range));
                let result = store.remote().execute_get(connection, request).complete().await;
                Fetched { index, holder: key, result: result.map(|_| ()).map_err(|error| error.to_string()) }
            });
        }
        tokio::select! {
            Some(done) = running.join_next() => {
                let Ok(done) = done else { continue };
                busy.remove(&done.index);
                let holder = known.get_mut(&done.holder);
                if let Some(holder) = holder {
                    holder.busy = holder.busy.saturating_sub(1);
                    if done.result.is_err() {
                        // A broken connection or a holder that lied about what it has.
                        holder.connection = None;
                        holder.bitfield = None;
                        holder.failed_at = Some(Instant::now());
                        if let Some(observer) = holder.observer.take() {
                            observer.abort();
                        }
                    }
                }
                if done.result.is_ok() && held_locally(&source, done.index).await {
                    source.segment_arrived(done.index, *done.holder.as_bytes());
                }
            }
            Some((key, result)) = dialled.recv() => {
                let Some(holder) = known.get_mut(&key) else { continue };
                holder.dialing = false;
                match result {
                    Ok(connection) => {
                        let stream =
                            source.store.store().remote().observe(connection.clone(), ObserveRequest::new(hash));
                        let out = observed_tx.clone();
                        let task = tokio::spawn(async move {
                            let mut stream = std::pin::pin!(stream);
                            while let Some(update) = stream.next().await {
                                let Ok(update) = update else { break };
                                if out.send((key, update)).await.is_err() {
                                    break;
                                }
                            }
                        });
                        holder.observer = Some(task.abort_handle());
                        holder.connection = Some(connection);
                        holder.failed_at = None;
                    }
                    Err(_) => holder.failed_at = Some(Instant::now()),
                }
            }
            Some((key, update)) = observed.recv() => {
                if let Some(holder) = known.get_mut(&key) {
                    holder.grew_at = Some(Instant::now());
                    match &mut holder.bitfield {
                        Some(bitfield) => {
                            bitfield.update(&update);
                        }
                        None => holder.bitfield = Some(update),
                    }
                }
            }
            changed = holders.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tick.tick() => {}
        }
    }
}

/// Whether segment `index` is in the store whole (verified as it arrived).
async fn held_locally(source: &FilmSource, index: usize) -> bool {
    let Ok(local) = source.store.store().observe(Hash::from_bytes(source.hash)).await else { return false };
    ChunkRanges::bytes(segment_range(index, source.size)).is_subset(&local.ranges)
}

/// The next segment to fetch and from whom, so that the sharer sends each segment about once
/// however many watch, and the viewers pass it on:
/// 1. the segment a reader waits for, from a viewer who has it whole; else, while another
///    viewer is fetching it (has part of it, and what it holds grew in the last
///    [`HANDOVER_PATIENCE`]), nothing for up to [`HANDOVER_MOST`] (it is taken from them once
///    whole, which is sooner than a second copy from the sharer); else from the sharer (when `crowded`, once the reader has waited
///    its own part of [`STAGGER`] for this segment, so that viewers waiting for the same
///    segment do not all ask the sharer for it at once);
/// 2. otherwise the first of the next [`WINDOW`] segments that a viewer other than the sharer
///    has whole, from them;
/// 3. otherwise, from the sharer, the first of the segments wanted (up to
///    [`PREFETCH_SEGMENTS`] ahead) that no other holder has any part of and that is this
///    viewer's to fetch (see [`rank`]), so that viewers fetch different segments and trade
///    them. A viewer asks the sharer for one segment at a time while others are there to
///    trade with, and in company not in the first twice [`STAGGER`].
fn choose(
    source: &FilmSource,
    known: &HashMap<iroh::PublicKey, Holder>,
    busy: &HashSet<usize>,
    sharer: iroh::PublicKey,
    me: iroh::PublicKey,
    crowded: bool,
    began: Instant,
) -> Option<(usize, iroh::PublicKey)> {
    let chunks = |index: usize| ChunkRanges::bytes(segment_range(index, source.size));
    let whole = |holder: &Holder, index: usize| {
        holder.bitfield.as_ref().is_some_and(|bitfield| chunks(index).is_subset(&bitfield.ranges))
    };
    let some = |holder: &Holder, index: usize| {
        holder.bitfield.as_ref().is_some_and(|bitfield| !(&chunks(index) & &bitfield.ranges).is_empty())
    };
    let alone = known.keys().all(|key| *key == sharer);
    let shuffle = |index: usize| rank(&me, index);
    let ready = |key: &iroh::PublicKey, holder: &Holder| {
        let most = if *key == sharer && !alone { 1 } else { 2 };
        holder.connection.is_some() && holder.busy < most
    };
    let best = |index: usize, sharer_too: bool| {
        known
            .iter()
            .filter(|(key, holder)| whole(holder, index) && ready(key, holder) && (sharer_too || **key != sharer))
            .min_by_key(|(key, holder)| (**key == sharer, holder.busy, **key))
            .map(|(key, _)| (index, *key))
    };
    // Another viewer has part of the segment and its holding still grows: it is fetching it.
    let fetched_by_another = |index: usize| {
        known.iter().any(|(key, holder)| {
            let growing = holder.grew_at.is_some_and(|at| at.elapsed() < HANDOVER_PATIENCE);
            *key != sharer && growing && some(holder, index) && !whole(holder, index)
        })
    };
    let waiting = {
        let state = lock(&source.shared.state);
        state.waiting.filter(|(index, _)| !busy.contains(index) && !state.have.get(*index).copied().unwrap_or(true))
    };
    if let Some((index, since)) = waiting {
        if let Some(found) = best(index, false) {
            return Some(found);
        }
        let waited = since.elapsed();
        let patient = waits_for_handover(fetched_by_another(index), waited);
        let turn = !crowded || waited >= STAGGER.mul_f64((shuffle(index) >> 11) as f64 / (1u64 << 53) as f64);
        if let Some(found) = best(index, true).filter(|_| !patient && turn) {
            return Some(found);
        }
    }
    let wanted = source.wanted(busy);
    if let Some(found) = wanted.iter().take(WINDOW).find_map(|index| best(*index, false)) {
        return Some(found);
    }
    // In company, nothing is fetched ahead from the sharer in the first moment, while the
    // viewers starting together learn of each other.
    if crowded && began.elapsed() < 2 * STAGGER {
        return None;
    }
    // A segment is this viewer's to fetch ahead from the sharer when this viewer's rank for it
    // beats that of every other viewer it is in touch with (rendezvous hashing): viewers who
    // know each other agree on who fetches what without a word, and the sharer sends each
    // segment once. The others' segments come from them.
    let viewers: Vec<&iroh::PublicKey> = known
        .iter()
        .filter(|(key, holder)| **key != sharer && holder.connection.is_some() && holder.bitfield.is_some())
        .map(|(key, _)| key)
        .collect();
    let mine = |index: usize| viewers.iter().all(|key| rank(key, index) < shuffle(index));
    wanted
        .into_iter()
        // The segment waited for is asked of the sharer by the rule above alone.
        .filter(|index| waiting.is_none_or(|(waited, _)| waited != *index))
        .filter(|index| known.iter().all(|(key, holder)| *key == sharer || !some(holder, *index)))
        .find(|index| mine(*index))
        .and_then(|index| best(index, true))
}

/// Whether a reader that has `waited` for a segment another viewer is `fetching` keeps waiting
/// for that viewer rather than asking the sharer (see [`HANDOVER_MOST`]).
fn waits_for_handover(fetching: bool, waited: Duration) -> bool {
    fetching && waited < HANDOVER_MOST
}

/// A viewer's rank for a segment: a number that looks random, the same wherever it is worked
/// out (SplitMix64 of the key's first bytes and the segment).
fn rank(key: &iroh::PublicKey, index: usize) -> u64 {
    let seed = u64::from_le_bytes(key.as_bytes()[..8].try_into().unwrap_or_default());
    let mut mixed = seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    mixed ^ (mixed >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uploads::Uploads;
    use iroh::RelayMode;
    use iroh::endpoint::presets;
    use iroh::protocol::Router;

    /// A peer: a store and an endpoint that serves it (uploads counted and capped at `rate`).
    /// Peers have no address lookup: they dial each other at the addresses the holders' list
    /// gives, as viewers do.
    struct Peer {
        store: FilmStore,
        endpoint: Endpoint,
        uploads: Uploads,
        _router: Router,
    }

    async fn peer(dir: &Path, rate: Option<u64>) -> Peer {
        let store = FilmStore::open(dir, crate::film_store::FILM_GC_INTERVAL).await.expect("store");
        let endpoint = Endpoint::builder(presets::Minimal).relay_mode(RelayMode::Disabled).bind().await.expect("binds");
        let (uploads, events) = Uploads::start(rate);
        let router = Router::builder(endpoint.clone())
            .accept(crate::alpn::FILMS, iroh_blobs::BlobsProtocol::new(store.assets().store(), Some(events)))
            .spawn();
        Peer { store, endpoint, uploads, _router: router }
    }

    /// Bytes that differ everywhere, so that a segment read from the wrong place shows.
    fn film_bytes(size: usize) -> Vec<u8> {
        (0..size).map(|n| (n as u32).wrapping_mul(2_654_435_761).to_le_bytes()[n % 4 % 3]).collect()
    }

    /// One person shares a film, uploading at most 4 MiB a second; four viewers, who reach
    /// each other only by the addresses in the holders' list, read it as it arrives. All read
    /// it whole and right, each takes part of it from other viewers, and the sharer sends less
    /// than 1.5 times the film (it would send it four times to viewers fetching only from it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn viewers_stream_a_film_from_the_sharer_and_from_each_other() {
        let dir = tempfile::tempdir().expect("temp dir");
        let size = 12 * SEGMENT_BYTES as usize + 12_345;
        let bytes = film_bytes(size);
        let path = dir.path().join("film.mkv");
        std::fs::write(&path, &bytes).expect("writes");
        let sharer = peer(&dir.path().join("a"), Some(4 << 20)).await;
        let mut viewers = Vec::new();
        for name in ["b", "c", "d", "e"] {
            viewers.push(peer(&dir.path().join(name), None).await);
        }
        let (hash, shared_size) = share_film(&sharer.store, &path, u64::MAX).await.expect("shares");
        assert_eq!((hash, shared_size), (*blake3::hash(&bytes).as_bytes(), size as u64));
        let everyone: Vec<EndpointAddr> =
            std::iter::once(&sharer).chain(&viewers).map(|peer| peer.endpoint.addr()).collect();
        let (_holders_tx, holders) = watch::channel(everyone);
        let mut reads = Vec::new();
        let mut sources = Vec::new();
        for viewer in &viewers {
            let source = FilmSource::new(&viewer.store, hash, size as u64, tokio::runtime::Handle::current()).await;
            assert!(!source.complete());
            let fetch = fetch_film(source.clone(), viewer.endpoint.clone(), sharer.endpoint.id(), holders.clone(), 4);
            tokio::spawn(fetch);
            let mut reader = source.reader();
            // Read as a player does: a little at a time, at about twice the sharer's rate.
            reads.push(tokio::task::spawn_blocking(move || {
                let mut read = Vec::new();
                let mut piece = vec![0u8; 64 * 1024];
                loop {
                    let count = reader.read(&mut piece)?;
                    if count == 0 {
                        return Ok::<_, std::io::Error>(read);
                    }
                    read.extend_from_slice(&piece[..count]);
                    std::thread::sleep(Duration::from_millis(8));
                }
            }));
            sources.push(source);
        }
        for read in reads {
            let read = read.await.expect("joins").expect("reads");
            assert!(read == bytes, "a viewer read other bytes than were shared");
        }
        let sharer_key = *sharer.endpoint.id().as_bytes();
        for (n, source) in sources.iter().enumerate() {
            let progress = source.progress();
            assert_eq!(progress.held, size as u64);
            let total: u64 = progress.from.values().map(|served| served.bytes).sum();
            assert_eq!(total, size as u64, "every byte came from someone, once");
            assert!(progress.from.keys().any(|key| *key != sharer_key), "viewer {n} took nothing from other viewers");
        }
        let sent = sharer.uploads.counts().total;
        assert!(sent < 3 * size as u64 / 2, "the sharer sent {sent} bytes of a {size}-byte film to four viewers");
    }

    #[test]
    fn a_reader_waits_for_another_viewers_fetch_only_so_long() {
        assert!(waits_for_handover(true, Duration::from_secs(1)));
        assert!(!waits_for_handover(false, Duration::ZERO), "nobody else is fetching it");
        assert!(
            !waits_for_handover(true, HANDOVER_MOST),
            "a holder that says it fetches the segment for ever holds a reader up no longer"
        );
    }

    #[test]
    fn ranges_merge() {
        let mut ranges = Vec::new();
        add_range(&mut ranges, 10..20);
        add_range(&mut ranges, 0..5);
        add_range(&mut ranges, 20..30);
        add_range(&mut ranges, 4..8);
        assert_eq!(ranges, vec![0..8, 10..30]);
    }

    #[test]
    fn segments_cover_the_film() {
        assert_eq!(segments(1), 1);
        assert_eq!(segments(SEGMENT_BYTES), 1);
        assert_eq!(segments(SEGMENT_BYTES + 1), 2);
        assert_eq!(segment_range(1, SEGMENT_BYTES + 7), SEGMENT_BYTES..SEGMENT_BYTES + 7);
    }
}
