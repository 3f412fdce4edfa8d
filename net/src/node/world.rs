//! The world: our own changes (checked, signed, stored, then sent on the city topic), changes
//! from others (verified and applied off the loop), syncing with neighbours
//! ([`crate::replica`], `sanctuary/world/1`), and models fetched from whoever holds them
//! ([`crate::assets`], iroh-blobs).
//!
//! A home node keeps what its hosting plan says ([`crate::hosting`]): the plan is worked out
//! again off the loop, at most once every [`REPLAN_PAUSE`], whenever the world changed.
//!
//! Bounds: the sync protocol's own (see [`crate::replica`]); at most [`MAX_FETCHES`] models are
//! fetched at once, each from at most [`MAX_PROVIDERS`] peers (the placer first, then the hosts
//! the placer names, then whoever is near), tried [`FETCH_ATTEMPTS`] times with a doubling
//! back-off; a home node keeps models up to its quotas of bytes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sanctuary_engine::avatar::{AVATAR_BYTES, AvatarRef, avatar_limits};
use sanctuary_engine::{ModelLimits, ModelRef, ModelSummary, Op, PublicKey, RegionId};
use tokio::sync::mpsc;

use super::Event;
use super::actor::{Internal, Node, wall_micros};
use crate::alpn;
use crate::assets::{AssetError, model_limits};
use crate::hosting::{HostingPlan, HostingPolicy, plan};
use crate::node::world_topic;
use crate::replica::{Applied, AuthorError, SharedReplica, SyncReport, sync_with};
use crate::wire::{RegionMessage, WorldMessage, encode};

/// How often the world is compared with a neighbour's, to heal changes gossip dropped.
const ANTI_ENTROPY_INTERVAL: Duration = Duration::from_secs(60);
/// How long after a failed comparison with a neighbour still there it is tried again.
const SYNC_RETRY: Duration = Duration::from_secs(2);
/// How many peers are asked for an asset.
const MAX_PROVIDERS: usize = 8;
/// Models fetched at once.
const MAX_FETCHES: usize = 4;
/// How often a model nobody could provide is tried.
const FETCH_ATTEMPTS: u32 = 4;
/// The wait before the second try; it doubles with each.
const FETCH_BACKOFF: Duration = Duration::from_secs(1);
/// The least time between two workings-out of a home node's hosting plan.
const REPLAN_PAUSE: Duration = Duration::from_secs(1);

/// Syncing and fetching.
pub(super) struct WorldSync {
    /// Peers we have compared the world with since they last came (cleared when they go, so a
    /// returning peer is compared again at once).
    pub(super) synced_with: HashSet<iroh::PublicKey>,
    /// Peers we are comparing with now, and since when (at most one comparison each; a city's
    /// neighbours).
    syncing: HashMap<iroh::PublicKey, Instant>,
    last_anti_entropy: Instant,
    /// When we made the oldest change that no neighbour heard (none was there when it was said):
    /// the next neighbour to come is compared with at once, whichever of us has the smaller id.
    /// Only a comparison we started after it clears it (one already under way had summed up the
    /// world without it).
    unheard: Option<Instant>,
    /// Neighbours whose comparison failed, and when to try again (only those still neighbours,
    /// so the map is no larger than the city's active view).
    retry: HashMap<iroh::PublicKey, Instant>,
    /// Models being fetched now (or waiting to be tried again).
    fetching: Arc<Mutex<HashSet<[u8; 32]>>>,
    /// Fetches running at once.
    fetch_slots: Arc<tokio::sync::Semaphore>,
    /// What a home node keeps, when it keeps anything.
    hosting: Option<Hosting>,
    /// Our own changes to make, in order, on the builder thread.
    builder: std::sync::mpsc::Sender<(u64, Op)>,
}

impl WorldSync {
    /// Keeping what `hosting` says (a home node), or nothing; our own changes are made in
    /// `replica` with `secret`, and reported on `internal`.
    pub(super) fn new(
        hosting: Option<HostingPolicy>,
        replica: SharedReplica,
        secret: [u8; 32],
        internal: mpsc::Sender<Internal>,
    ) -> Self {
        let (builder, orders) = std::sync::mpsc::channel::<(u64, Op)>();
        // The thread ends when the node (and so this sender) is gone. Should it fail to start,
        // `orders` is dropped with it and every build is refused with a reason.
        let _ = std::thread::Builder::new().name("sanctuary-builder".into()).spawn(move || {
            let secret = zeroize::Zeroizing::new(secret);
            while let Ok((seq, op)) = orders.recv() {
                let result = replica.author(&secret, seq, op).map(|signed| signed.to_bytes());
                if internal.blocking_send(Internal::Built { op, result }).is_err() {
                    break;
                }
            }
        });
        Self {
            synced_with: HashSet::new(),
            syncing: HashMap::new(),
            last_anti_entropy: Instant::now(),
            unheard: None,
            retry: HashMap::new(),
            fetching: Arc::new(Mutex::new(HashSet::new())),
            fetch_slots: Arc::new(tokio::sync::Semaphore::new(MAX_FETCHES)),
            hosting: hosting.map(Hosting::new),
            builder,
        }
    }

    /// Whether this node keeps things for others (a home node).
    pub(super) fn hosts(&self) -> bool {
        self.hosting.is_some()
    }

    /// What people paid for now: kept as granted, from the next plan on.
    pub(super) fn set_paid(&mut self, paid: BTreeMap<PublicKey, u64>) {
        let Some(hosting) = self.hosting.as_mut() else { return };
        if hosting.policy.paid != paid {
            let mut policy = (*hosting.policy).clone();
            // The policy's bound on the plan: no more payers than people kept for.
            policy.paid = paid.into_iter().take(crate::hosting::MAX_KEPT_FOR).collect();
            hosting.policy = Arc::new(policy);
            hosting.dirty = true;
        }
    }

    /// The world changed: a home node works out what to keep again.
    fn world_changed(&mut self) {
        if let Some(hosting) = self.hosting.as_mut() {
            hosting.dirty = true;
        }
    }

    /// A change of ours was said at `at` with no neighbour to hear it.
    fn said_to_nobody(&mut self, at: Instant) {
        self.unheard.get_or_insert(at);
    }

    /// A comparison we began at `started` ended: what nobody heard before it began has been
    /// handed over; what came after, it summed up without.
    fn compared(&mut self, started: Instant) {
        if self.unheard.is_some_and(|since| since < started) {
            self.unheard = None;
        }
    }
}

/// A model to fetch: one placed in the world, or someone's avatar.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wanted {
    /// A placed model: it must draw no more triangles and be no larger than its placer said.
    Model(ModelRef),
    /// An avatar: within the avatar budget and no more bytes than its wearer said.
    Avatar(AvatarRef),
}

impl Wanted {
    pub(super) fn hash(&self) -> [u8; 32] {
        match self {
            Wanted::Model(model) => model.hash,
            Wanted::Avatar(avatar) => avatar.hash,
        }
    }

    pub(super) fn limits(&self) -> ModelLimits {
        match self {
            Wanted::Model(_) => model_limits(),
            Wanted::Avatar(avatar) => ModelLimits { max_bytes: avatar.bytes.min(AVATAR_BYTES), ..avatar_limits() },
        }
    }

    /// Why the model that came is not what was declared, if it is not.
    fn refusal(&self, summary: &ModelSummary) -> Option<String> {
        match self {
            Wanted::Model(model) if summary.triangles > u64::from(model.triangles) => {
                Some(format!("it draws {} triangles but its placer declared {}", summary.triangles, model.triangles))
            }
            Wanted::Model(model) if !fits_within(summary.bounds, model.min, model.max) => {
                Some("it is larger than its placer declared".to_owned())
            }
            Wanted::Model(_) | Wanted::Avatar(_) => None,
        }
    }
}

/// A home node's keeping: its policy, and the models its last plan asked for.
#[derive(Debug)]
struct Hosting {
    policy: Arc<HostingPolicy>,
    /// The world changed since the plan was last worked out.
    dirty: bool,
    /// A plan is being worked out now.
    planning: bool,
    last_plan: Option<Instant>,
    /// The models the last plan keeps (each fetched once when it joined the plan).
    kept: HashSet<[u8; 32]>,
}

impl Hosting {
    fn new(policy: HostingPolicy) -> Self {
        Self { policy: Arc::new(policy), dirty: true, planning: false, last_plan: None, kept: HashSet::new() }
    }
}

impl Node {
    /// Makes our change on the builder thread: storing it waits for the disk, and our changes
    /// are made one after another in the order they were asked for (a move then a removal of
    /// the same object must not swap).
    pub(super) fn build(&mut self, op: Op) {
        let seq = self.clock_next();
        if self.world_sync.builder.send((seq, op)).is_err() {
            let reason = "the builder thread has stopped".to_owned();
            let _ = self.events.try_send(Event::BuildRefused { op, reason });
        }
    }

    /// Signs our name and colour into the world when they are not what the world holds of us
    /// (so that people see who we are while we are away; see `Op::Profile`).
    pub(super) fn sign_profile(&mut self) {
        let Some(name) = sanctuary_engine::ProfileName::new(&self.profile.name) else { return };
        let colour = self.profile.colour;
        if self.replica.world().profile_of(&self.me_key) != Some((name, colour)) {
            self.build(Op::Profile { name, colour });
        }
    }

    /// Our change is made and stored (or refused): pass it on and tell the program.
    pub(super) async fn built(&mut self, op: Op, result: Result<Vec<u8>, AuthorError>) {
        match result {
            Ok(bytes) => {
                self.world_sync.world_changed();
                if let Op::Host { kept: true, .. } = op {
                    self.receipts.kept_check_soon();
                }
                match op.parcel() {
                    Some(parcel) => {
                        if let Some((sender, heard)) =
                            self.regions.city().map(|city| (city.sender.clone(), !city.neighbours.is_empty()))
                        {
                            self.broadcast(&sender, RegionId::City, &RegionMessage::Change(bytes)).await;
                            // Gossip said to nobody is lost: the next neighbour compares with us.
                            if !heard {
                                self.world_sync.said_to_nobody(Instant::now());
                            }
                        }
                        self.emit(Event::WorldChanged(vec![parcel])).await;
                    }
                    // A statement: everyone online hears it on the world topic.
                    None => {
                        let sequence = self.clock_next();
                        let message = WorldMessage::Change(bytes);
                        if let Ok(bytes) = encode(&self.secret, world_topic().as_bytes(), sequence, &message) {
                            let _ = self.directory.sender().broadcast(bytes.into()).await;
                        }
                        self.refresh_trust();
                    }
                }
                self.emit(Event::Built(op)).await;
            }
            Err(error) => self.emit(Event::BuildRefused { op, reason: error.to_string() }).await,
        }
    }

    /// A change from the city topic: verified, applied and stored off the loop.
    pub(super) fn apply_change(&self, bytes: Vec<u8>) {
        let (replica, internal, events) = (self.replica.clone(), self.internal_tx.clone(), self.events.clone());
        tokio::task::spawn_blocking(move || match replica.apply_bytes(&[bytes], 1) {
            Ok(applied) => {
                let _ = internal.blocking_send(Internal::Applied(applied));
            }
            // Not stored means not taken: the next sync brings it again.
            Err(error) => {
                let _ = events.blocking_send(Event::Notice(format!("a world change could not be saved: {error}")));
            }
        });
    }

    /// Changes were applied: keep their models (a home node) and tell the program.
    pub(super) async fn applied(&mut self, applied: Applied) {
        if !applied.new.is_empty() {
            self.world_sync.world_changed();
        }
        if applied.statements {
            self.refresh_trust();
        }
        if !applied.parcels.is_empty() {
            self.emit(Event::WorldChanged(applied.parcels)).await;
        }
    }

    /// Imports a model from disk into the asset store.
    pub(super) fn import(&self, path: PathBuf) {
        let (assets, events) = (self.assets.clone(), self.events.clone());
        tokio::spawn(async move {
            let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
            let event = match assets.import(&path).await {
                Ok((model, summary)) => Event::Imported { model, name, summary },
                Err(error) => Event::AssetFailed { hash: [0; 32], reason: format!("{name}: {error}") },
            };
            let _ = events.send(event).await;
        });
    }

    /// Fetches a model (placed, or someone's avatar) from the hinted peer and whoever is near,
    /// unless it is here already or on its way.
    pub(super) fn fetch(&mut self, wanted: Wanted, hint: Option<PublicKey>) {
        if !self.world_sync.fetching.lock().is_ok_and(|mut set| set.insert(wanted.hash())) {
            return;
        }
        self.fetch_attempt(wanted, hint, 0);
    }

    /// One try at fetching a model. When nobody could provide it, it is tried again after a
    /// back-off (1 s, 2 s, 4 s), asking whoever is around then, the next holder first.
    pub(super) fn fetch_attempt(&mut self, wanted: Wanted, hint: Option<PublicKey>, attempt: u32) {
        let mut providers: Vec<iroh::PublicKey> = Vec::new();
        for subscription in &self.regions.subscriptions {
            providers.extend(subscription.neighbours.iter().copied());
        }
        providers.extend(self.directory.peers());
        let mut seen = HashSet::new();
        providers.retain(|peer| *peer != self.me && seen.insert(*peer));
        if !providers.is_empty() {
            let turn = attempt as usize % providers.len();
            providers.rotate_left(turn);
        }
        if let Some(hint) = hint.and_then(|key| iroh::PublicKey::from_bytes(key.as_bytes()).ok())
            && hint != self.me
        {
            providers.retain(|peer| *peer != hint);
            providers.insert(0, hint);
        }
        // Then the hosts the placer names: their home node, friends' nodes pinning their things.
        if let Some(hint) = hint {
            let hosts = self.replica.world().hosts_of(&hint);
            let hosts = hosts.iter().filter_map(|key| iroh::PublicKey::from_bytes(key.as_bytes()).ok());
            let at = usize::from(providers.first().is_some_and(|first| first.as_bytes() == hint.as_bytes()));
            for (offset, host) in hosts.filter(|host| *host != self.me).enumerate() {
                providers.retain(|peer| *peer != host);
                providers.insert((at + offset).min(providers.len()), host);
            }
        }
        providers.truncate(MAX_PROVIDERS);
        let fetching = self.world_sync.fetching.clone();
        let (assets, downloader, events) = (self.assets.clone(), self.downloader.clone(), self.events.clone());
        let (slots, internal) = (self.world_sync.fetch_slots.clone(), self.internal_tx.clone());
        tokio::spawn(async move {
            let (hash, limits) = (wanted.hash(), wanted.limits());
            let Ok(slot) = slots.acquire().await else { return };
            if let Ok((_, summary)) = assets.checked_model(hash, &limits).await {
                fetching.lock().map(|mut set| set.remove(&hash)).ok();
                let _ = events.send(Event::AssetReady { hash, summary }).await;
                return;
            }
            let progress_events = events.clone();
            let mut served = crate::assets::Served::default();
            let told = move |done, total| {
                let _ = progress_events.try_send(Event::AssetProgress { hash, done, total });
            };
            let result = assets.fetch_counted(&downloader, hash, &limits, providers, told, &mut served).await;
            if !served.is_empty() {
                let _ = internal.send(Internal::ReceivedBlobs(served)).await;
            }
            let event = match result {
                Err(AssetError::Unavailable(_)) if attempt + 1 < FETCH_ATTEMPTS => {
                    drop(slot);
                    tokio::time::sleep(FETCH_BACKOFF.saturating_mul(1 << attempt.min(8))).await;
                    let _ = internal.send(Internal::Refetch { wanted, hint, attempt: attempt + 1 }).await;
                    return;
                }
                Ok(summary) => match wanted.refusal(&summary) {
                    Some(reason) => Event::AssetFailed { hash, reason },
                    None => Event::AssetReady { hash, summary },
                },
                Err(error) => Event::AssetFailed { hash, reason: error.to_string() },
            };
            // Done, either way: a later request may try again.
            fetching.lock().map(|mut set| set.remove(&hash)).ok();
            let _ = events.send(event).await;
        });
    }

    /// A home node works out what to keep, off the loop, when the world changed and the last
    /// plan is at least [`REPLAN_PAUSE`] old.
    fn replan(&mut self, now: Instant) {
        let Some(hosting) = self.world_sync.hosting.as_mut() else { return };
        if !hosting.dirty || hosting.planning || hosting.last_plan.is_some_and(|at| now < at + REPLAN_PAUSE) {
            return;
        }
        hosting.dirty = false;
        hosting.planning = true;
        let (replica, internal, policy) = (self.replica.clone(), self.internal_tx.clone(), hosting.policy.clone());
        let Ok(me) = PublicKey::from_bytes(*self.me.as_bytes()) else { return };
        tokio::task::spawn_blocking(move || {
            let plan = plan(&mut replica.world(), &me, &policy);
            let _ = internal.blocking_send(Internal::Hosting(Box::new(plan)));
        });
    }

    /// A plan was worked out: fetch what joined it, and tell the program (the status page).
    pub(super) async fn hosting_planned(&mut self, plan: Box<HostingPlan>) {
        let Some(hosting) = self.world_sync.hosting.as_mut() else { return };
        hosting.planning = false;
        hosting.last_plan = Some(Instant::now());
        let wanted: HashSet<[u8; 32]> = plan.models.iter().map(|(model, _)| model.hash).collect();
        let new: Vec<(ModelRef, PublicKey)> =
            plan.models.iter().filter(|(model, _)| !hosting.kept.contains(&model.hash)).copied().collect();
        hosting.kept = wanted;
        for (model, person) in new {
            self.fetch(Wanted::Model(model), Some(person));
        }
        self.emit(Event::Hosting(plan)).await;
    }

    /// A gossip neighbour came or went: a new one in the city is compared with, once per pair
    /// while both run (the one with the smaller id asks, so that the changes cross once); one
    /// that went is compared again when it comes back. Each side learns of the other at its own
    /// moment, so a change we made while we had no neighbour yet may have missed the comparison
    /// the other side began: then we ask too.
    pub(super) fn world_neighbour(&mut self, region: Option<RegionId>, peer: iroh::PublicKey, up: bool) {
        if !up {
            self.world_sync.synced_with.remove(&peer);
            self.world_sync.retry.remove(&peer);
        } else if matches!(region, Some(RegionId::City) | None)
            && !self.world_sync.synced_with.contains(&peer)
            && (self.me < peer || self.world_sync.unheard.is_some())
        {
            self.sync(peer);
        }
    }

    /// Compares the world with `peer` in the background (unless a comparison with them is
    /// running already).
    pub(super) fn sync(&mut self, peer: iroh::PublicKey) {
        if peer == self.me || self.world_sync.syncing.contains_key(&peer) {
            return;
        }
        self.world_sync.syncing.insert(peer, Instant::now());
        self.world_sync.synced_with.insert(peer);
        let (replica, endpoint, internal) = (self.replica.clone(), self.endpoint.clone(), self.internal_tx.clone());
        tokio::spawn(async move {
            let result = async {
                let connection = endpoint.connect(peer, alpn::WORLD).await.map_err(|error| error.to_string())?;
                let report = sync_with(&replica, &connection).await.map_err(|error| error.to_string());
                connection.close(0u32.into(), b"synced");
                report
            }
            .await;
            let _ = internal.send(Internal::Synced { peer, result }).await;
        });
    }

    /// A sync we asked for ended.
    pub(super) async fn sync_done(&mut self, peer: iroh::PublicKey, result: Result<SyncReport, String>) {
        match result {
            Ok(report) => {
                if let Some(started) = self.world_sync.syncing.get(&peer).copied() {
                    self.world_sync.compared(started);
                }
                self.synced(SyncReport { peer: Some(peer), ..report }).await;
            }
            // Not reachable now (or not a Sanctuary peer): tried again shortly while it stays a
            // neighbour, else when next met.
            Err(_) => {
                self.world_sync.syncing.remove(&peer);
                self.world_sync.synced_with.remove(&peer);
                if self.regions.city().is_some_and(|city| city.neighbours.contains(&peer)) {
                    self.world_sync.retry.insert(peer, Instant::now() + SYNC_RETRY);
                }
            }
        }
    }

    /// A sync ended, asked by us or by the other side. When it brought changes we lacked (a
    /// partition healing, a peer back from a journey), our other city neighbours probably lack
    /// them too: compare with each of them now rather than at the next anti-entropy round.
    pub(super) async fn synced(&mut self, report: SyncReport) {
        if let Some(peer) = report.peer {
            self.world_sync.synced_with.insert(peer);
            self.world_sync.syncing.remove(&peer);
            self.received_changes(peer, report.received);
        }
        if report.received > 0 {
            let others: Vec<iroh::PublicKey> = self
                .regions
                .city()
                .map(|city| city.neighbours.iter().copied().filter(|peer| Some(*peer) != report.peer).collect())
                .unwrap_or_default();
            for peer in others {
                self.sync(peer);
            }
        }
        if !report.new.is_empty() {
            self.world_sync.world_changed();
        }
        if report.statements {
            self.refresh_trust();
        }
        if !report.parcels.is_empty() {
            self.emit(Event::WorldChanged(report.parcels)).await;
        }
        if let Some(peer) = report.peer.and_then(|peer| PublicKey::from_bytes(*peer.as_bytes()).ok()) {
            let (received, sent) = (report.received, report.sent);
            self.emit(Event::Synced { peer, received, sent }).await;
        }
    }

    /// Every minute, compares the world with a city neighbour (anti-entropy).
    pub(super) fn world_tick(&mut self, now: Instant) {
        self.replan(now);
        let due: Vec<iroh::PublicKey> =
            self.world_sync.retry.iter().filter(|(_, at)| **at <= now).map(|(peer, _)| *peer).collect();
        for peer in due {
            self.world_sync.retry.remove(&peer);
            self.sync(peer);
        }
        if now.duration_since(self.world_sync.last_anti_entropy) >= ANTI_ENTROPY_INTERVAL {
            self.world_sync.last_anti_entropy = now;
            let neighbours: Vec<iroh::PublicKey> =
                self.regions.city().map(|city| city.neighbours.iter().copied().collect()).unwrap_or_default();
            if !neighbours.is_empty() {
                let pick = neighbours[(wall_micros() as usize / 1000) % neighbours.len()];
                self.sync(pick);
            }
        }
    }
}

/// Whether a model's real bounds lie within the box its placer declared (to a millimetre).
fn fits_within(bounds: Option<([f32; 3], [f32; 3])>, min: [f32; 3], max: [f32; 3]) -> bool {
    let Some((low, high)) = bounds else { return false };
    (0..3).all(|axis| low[axis] >= min[axis] - 1e-3 && high[axis] <= max[axis] + 1e-3)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A change said to nobody while a comparison was under way is still owed to the next
    /// neighbour when that comparison ends; a comparison begun after it settles it.
    #[test]
    fn only_a_comparison_begun_after_an_unheard_change_settles_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (replica, _) = SharedReplica::open(dir.path()).expect("opens");
        let (internal, _kept) = mpsc::channel(4);
        let mut sync = WorldSync::new(None, replica, [3; 32], internal);
        let start = Instant::now();
        let (began, said, later) = (start, start + Duration::from_millis(10), start + Duration::from_millis(20));
        sync.said_to_nobody(said);
        sync.compared(began);
        assert_eq!(sync.unheard, Some(said), "a comparison begun before the change did not carry it");
        sync.said_to_nobody(later);
        assert_eq!(sync.unheard, Some(said), "the oldest unheard change counts");
        sync.compared(later + Duration::from_millis(1));
        assert_eq!(sync.unheard, None, "one begun after it did");
    }
}
