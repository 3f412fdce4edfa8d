//! Voice between people within hearing range, as QUIC datagrams on direct connections
//! (`alpn::VOICE`): end to end encrypted and authenticated by iroh, so a datagram's speaker is
//! the connection's peer and nothing is signed.
//!
//! Who hears whom: the [`MAX_LISTENERS`] nearest people in our region whose heads are within
//! [`HEARING_DISTANCE`] of ours (as their poses say). We keep a connection to each of them and
//! the program's capture thread sends each 20 ms frame to all of them at once through a
//! [`VoiceSender`] (sending a datagram never waits); nobody else gets a datagram. The same rule
//! decides whose voice we take in: a datagram from anyone else is dropped on arrival.
//!
//! A region may ask for other rules ([`Hearing`], given by the program from the room's own
//! state): in a private room only its members hear and are heard; on a stage the presenter's
//! voice reaches everyone in the region (the [`MAX_STAGE_LISTENERS`] nearest), wherever they
//! stand, while the others still hear only those near. Each side applies the rules to both what
//! it sends and what it takes in, so a peer that ignores them reaches nobody who keeps them.
//!
//! Bounds: datagrams of at most [`MAX_VOICE_DATAGRAM`] bytes; per speaker a burst of
//! [`DATAGRAMS_PER_SPEAKER`].0 and then .1 a second (a voice sends 50); voice connections taken
//! only from people in range, one per person (a new one replaces the old), closed once they
//! have been out of range for a while, at most [`MAX_SPEAKERS`] at once, none from a neighbour
//! the gate cut off; [`MAX_DIALS`] dials at once, and a person whose connection failed or was
//! closed is dialled again only after a pause; what the program
//! has not read yet waits in a queue of [`VOICE_QUEUE`] datagrams, past which new ones are
//! dropped (and counted); positions of at most [`MAX_AUTHORS`] people.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use glam::Vec3;
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler};
use sanctuary_engine::{PublicKey, RegionId};
use tokio::sync::mpsc;

use super::PRESENCE_TIMEOUT;
use super::actor::{Internal, Node};
use super::gate::Gate;
use crate::alpn;
use crate::inbox::{MAX_AUTHORS, NetStats, RateLimiter};

/// How far a voice carries, in metres (head to head).
pub const HEARING_DISTANCE: f32 = 20.0;
/// The most people our voice goes to at once (the nearest within hearing distance): the up-link
/// budget is this many streams of about 25 kbit/s.
pub const MAX_LISTENERS: usize = 16;
/// The most voice connections taken in at once.
pub const MAX_SPEAKERS: usize = 64;
/// The largest voice datagram taken or sent.
pub const MAX_VOICE_DATAGRAM: usize = 512;
/// Datagrams one speaker may send: a burst, then a rate (a voice sends 50 a second).
pub const DATAGRAMS_PER_SPEAKER: (u32, u32) = (25, 60);
/// Datagrams waiting for the program.
pub const VOICE_QUEUE: usize = 1024;
/// The most people a presenter's voice goes to at once (the up-link budget of a stage: this
/// many streams of about 25 kbit/s, 1.6 Mbit/s).
pub const MAX_STAGE_LISTENERS: usize = 64;
/// The most people on a stage at once: the presenter and whoever has the floor.
pub const MAX_ON_STAGE: usize = 2;
/// The most members a private room's rule names.
pub const MAX_MEMBERS: usize = 256;

/// Who hears whom in a region, beyond nearness: what a room asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Hearing {
    /// The nearest [`MAX_LISTENERS`] within [`HEARING_DISTANCE`] (the lobby, the city, most
    /// rooms).
    #[default]
    Near,
    /// Only these people hear and are heard, each by the nearest of the others (a private
    /// room's members; at most [`MAX_MEMBERS`], more are not taken). Someone not on the list
    /// hears nobody and nobody hears them.
    Members(BTreeSet<PublicKey>),
    /// These people's voices reach everyone in the region (the nearest
    /// [`MAX_STAGE_LISTENERS`]) wherever they stand, and everyone takes them in; the rest is as
    /// [`Hearing::Near`] (a lecture hall's presenter and whoever has the floor; at most
    /// [`MAX_ON_STAGE`], more are not taken).
    Stage(Vec<PublicKey>),
}

impl Hearing {
    /// The rule within its bounds: a list of members cut to [`MAX_MEMBERS`].
    fn bounded(self) -> Self {
        match self {
            Hearing::Members(members) if members.len() > MAX_MEMBERS => {
                Hearing::Members(members.into_iter().take(MAX_MEMBERS).collect())
            }
            Hearing::Stage(mut speakers) => {
                speakers.truncate(MAX_ON_STAGE);
                Hearing::Stage(speakers)
            }
            other => other,
        }
    }
}
/// How long a connection to someone who walked out of range is kept (they may come back).
const LINGER: Duration = Duration::from_secs(5);
/// How long after a failed dial the same person is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(10);
/// How long after they closed our connection (busy, or we were not in their range yet) the
/// same person is dialled again.
const REDIAL_AFTER: Duration = Duration::from_secs(1);
/// How long a voice connection from someone not (yet) in our range is held before it is turned
/// away.
const ADMIT_GRACE: Duration = Duration::from_secs(2);
/// How long a dial may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often who is in range is worked out again.
const PICK_EVERY: Duration = Duration::from_millis(250);
/// Voice dials under way at once: people walking into range are dialled a few at a time.
const MAX_DIALS: usize = 4;

/// A voice datagram as it arrived.
#[derive(Debug, Clone)]
pub struct VoiceDatagram {
    /// Who spoke (the connection's peer).
    pub from: PublicKey,
    /// The datagram (see `sanctuary_voice::packet`).
    pub bytes: Bytes,
    /// When it arrived.
    pub arrival: Instant,
}

/// Sends our voice to everyone in hearing range; cheap to clone, and it never waits, so the
/// program's capture thread calls it directly.
#[derive(Debug, Clone, Default)]
pub struct VoiceSender {
    listeners: Arc<RwLock<Vec<(iroh::PublicKey, Connection)>>>,
    sent_bytes: Arc<AtomicU64>,
}

impl VoiceSender {
    /// Sends one datagram to everyone in range; returns how many it went to. Larger than
    /// [`MAX_VOICE_DATAGRAM`] goes to nobody.
    pub fn send(&self, datagram: &[u8]) -> usize {
        if datagram.len() > MAX_VOICE_DATAGRAM {
            return 0;
        }
        let bytes = Bytes::copy_from_slice(datagram);
        let listeners = self.listeners.read().unwrap_or_else(PoisonError::into_inner);
        let reached =
            listeners.iter().filter(|(_, connection)| connection.send_datagram(bytes.clone()).is_ok()).count();
        self.sent_bytes.fetch_add((reached * datagram.len()) as u64, Ordering::Relaxed);
        reached
    }

    /// How many people our voice goes to now.
    pub fn listeners(&self) -> usize {
        self.listeners.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Who our voice goes to now.
    pub fn listener_ids(&self) -> Vec<PublicKey> {
        let listeners = self.listeners.read().unwrap_or_else(PoisonError::into_inner);
        listeners.iter().filter_map(|(peer, _)| PublicKey::from_bytes(*peer.as_bytes()).ok()).collect()
    }

    /// Voice bytes sent so far, all listeners together.
    pub fn sent_bytes(&self) -> u64 {
        self.sent_bytes.load(Ordering::Relaxed)
    }
}

/// Whose voice we take in: the people in hearing range, shared with the protocol handler.
#[derive(Debug, Clone, Default)]
pub(crate) struct Audible(Arc<RwLock<HashSet<iroh::PublicKey>>>);

impl Audible {
    fn contains(&self, peer: &iroh::PublicKey) -> bool {
        self.0.read().unwrap_or_else(PoisonError::into_inner).contains(peer)
    }

    fn set(&self, peers: HashSet<iroh::PublicKey>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = peers;
    }
}

/// Takes voice connections: datagrams from people in range go to the program.
#[derive(Debug, Clone)]
pub(crate) struct VoiceProtocol {
    audible: Audible,
    gate: Arc<Gate>,
    out: mpsc::Sender<VoiceDatagram>,
    open: Arc<AtomicUsize>,
    /// Each speaker's connection (its stable id): one per person.
    speakers: Arc<std::sync::Mutex<HashMap<iroh::PublicKey, Connection>>>,
    stats: Arc<NetStats>,
}

impl VoiceProtocol {
    pub(crate) fn new(
        audible: Audible,
        gate: Arc<Gate>,
        out: mpsc::Sender<VoiceDatagram>,
        stats: Arc<NetStats>,
    ) -> Self {
        Self { audible, gate, out, open: Arc::new(AtomicUsize::new(0)), speakers: Arc::default(), stats }
    }
}

/// Gives a connection's place back when its task ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ProtocolHandler for VoiceProtocol {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let remote = connection.remote_id();
        let Ok(from) = PublicKey::from_bytes(*remote.as_bytes()) else { return Ok(()) };
        if !iroh_gossip::net::MessageFilter::allows(&*self.gate, remote) {
            connection.close(403u32.into(), b"refused");
            return Ok(());
        }
        // One connection per person: a new one replaces the old.
        let replaced = self.speakers.lock().unwrap_or_else(PoisonError::into_inner).insert(remote, connection.clone());
        if let Some(old) = replaced {
            old.close(0u32.into(), b"replaced");
        }
        let _forget = Forget { speakers: self.speakers.clone(), peer: remote, id: connection.stable_id() };
        if self.open.fetch_add(1, Ordering::Relaxed) >= MAX_SPEAKERS {
            self.open.fetch_sub(1, Ordering::Relaxed);
            connection.close(503u32.into(), b"busy");
            return Ok(());
        }
        let _slot = Slot(self.open.clone());
        let start = Instant::now();
        let mut budget: RateLimiter<()> = RateLimiter::new(DATAGRAMS_PER_SPEAKER.0, DATAGRAMS_PER_SPEAKER.1);
        // Someone who just walked into range may dial before we worked out that they are in it
        // (we do every 250 ms): their datagrams are dropped meanwhile, and if they are not in
        // range after a moment's grace they are turned away. Later, someone out of range for a
        // while is let go.
        let mut heard_in_range = false;
        let mut out_of_range_since: Option<Instant> = None;
        loop {
            let read = tokio::time::timeout(PICK_EVERY, connection.read_datagram()).await;
            let in_range = self.audible.contains(&remote);
            if in_range {
                heard_in_range = true;
                out_of_range_since = None;
            } else if !heard_in_range && start.elapsed() > ADMIT_GRACE {
                connection.close(403u32.into(), b"not in hearing range");
                break;
            } else if heard_in_range && out_of_range_since.get_or_insert_with(Instant::now).elapsed() > LINGER {
                connection.close(0u32.into(), b"out of range");
                break;
            }
            let bytes = match read {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(_)) => break,
                Err(_) => continue,
            };
            if bytes.len() > MAX_VOICE_DATAGRAM || !budget.allow((), start.elapsed()) || !in_range {
                self.stats.count_flooded();
                continue;
            }
            let datagram = VoiceDatagram { from, bytes, arrival: Instant::now() };
            match self.out.try_send(datagram) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => self.stats.count_dropped_event(),
                Err(mpsc::error::TrySendError::Closed(_)) => break,
            }
        }
        Ok(())
    }
}

/// Forgets a speaker's connection when its task ends, unless a newer one replaced it.
struct Forget {
    speakers: Arc<std::sync::Mutex<HashMap<iroh::PublicKey, Connection>>>,
    peer: iroh::PublicKey,
    id: usize,
}

impl Drop for Forget {
    fn drop(&mut self) {
        let mut speakers = self.speakers.lock().unwrap_or_else(PoisonError::into_inner);
        if speakers.get(&self.peer).is_some_and(|connection| connection.stable_id() == self.id) {
            speakers.remove(&self.peer);
        }
    }
}

/// A person our voice goes to, or should.
enum Listener {
    Dialling,
    Open { connection: Connection, out_of_range_since: Option<Instant> },
    Failed { until: Instant },
}

/// The node's side of voice: where people are, and our connections to those in range.
#[derive(Default)]
pub(super) struct Voice {
    /// Where each person's head was last, in which region, and when.
    heard: HashMap<iroh::PublicKey, (RegionId, Vec3, Instant)>,
    listeners: HashMap<iroh::PublicKey, Listener>,
    pub(super) audible: Audible,
    pub(super) sender: VoiceSender,
    last_pick: Option<Instant>,
    /// Each region's rule where it is not [`Hearing::Near`] (one per region: a handful).
    rules: HashMap<RegionId, Hearing>,
    /// People we block: neither heard nor spoken to.
    blocks: super::blocks::Blocks,
    /// Dials under way (aborted with the node).
    dials: tokio::task::JoinSet<()>,
}

impl Voice {
    pub(super) fn new(audible: Audible, sender: VoiceSender, blocks: super::blocks::Blocks) -> Self {
        Self { audible, sender, blocks, ..Self::default() }
    }

    /// Notes where `author`'s head is.
    pub(super) fn heard(&mut self, author: iroh::PublicKey, region: RegionId, head: Vec3) {
        if self.heard.len() >= MAX_AUTHORS && !self.heard.contains_key(&author) {
            let now = Instant::now();
            self.heard.retain(|_, (_, _, at)| now.duration_since(*at) < PRESENCE_TIMEOUT);
            if self.heard.len() >= MAX_AUTHORS {
                return;
            }
        }
        self.heard.insert(author, (region, head, Instant::now()));
    }

    /// Sets `region`'s rule.
    pub(super) fn set_rule(&mut self, region: RegionId, hearing: Hearing) {
        match hearing.bounded() {
            Hearing::Near => {
                self.rules.remove(&region);
            }
            hearing => {
                self.rules.insert(region, hearing);
            }
        }
    }

    /// Everyone posing in `region` (but `me`), with their distance from `at`, nearest first.
    fn around(&self, region: RegionId, at: Vec3, me: &iroh::PublicKey, now: Instant) -> Vec<(f32, iroh::PublicKey)> {
        let mut around: Vec<(f32, iroh::PublicKey)> = self
            .heard
            .iter()
            .filter(|(peer, (their_region, _, heard))| {
                *peer != me
                    && *their_region == region
                    && now.duration_since(*heard) < PRESENCE_TIMEOUT
                    && !self.blocks.contains(peer.as_bytes())
            })
            .map(|(peer, (_, head, _))| (head.distance(at), *peer))
            .filter(|(distance, _)| distance.is_finite())
            .collect();
        around.sort_by(|a, b| a.0.total_cmp(&b.0));
        around
    }

    /// Whom our voice goes to, nearest first, and whose we take in, for `me` standing at `at`
    /// in `region` under its rule.
    fn in_range(
        &self,
        region: RegionId,
        at: Vec3,
        me: &iroh::PublicKey,
        now: Instant,
    ) -> (Vec<iroh::PublicKey>, HashSet<iroh::PublicKey>) {
        let around = self.around(region, at, me, now);
        let near = |allowed: &dyn Fn(&iroh::PublicKey) -> bool| -> Vec<iroh::PublicKey> {
            around
                .iter()
                .filter(|(distance, peer)| *distance <= HEARING_DISTANCE && allowed(peer))
                .take(MAX_LISTENERS)
                .map(|(_, peer)| *peer)
                .collect()
        };
        match self.rules.get(&region) {
            None | Some(Hearing::Near) => {
                let near = near(&|_| true);
                let audible = near.iter().copied().collect();
                (near, audible)
            }
            Some(Hearing::Members(members)) => {
                let member = |peer: &iroh::PublicKey| members.iter().any(|key| key.as_bytes() == peer.as_bytes());
                if !member(me) {
                    return (Vec::new(), HashSet::new());
                }
                let near = near(&member);
                let audible = near.iter().copied().collect();
                (near, audible)
            }
            Some(Hearing::Stage(speakers)) => {
                let on_stage = |peer: &iroh::PublicKey| speakers.iter().any(|key| key.as_bytes() == peer.as_bytes());
                if on_stage(me) {
                    let mut hall: Vec<iroh::PublicKey> =
                        around.iter().take(MAX_STAGE_LISTENERS).map(|(_, peer)| *peer).collect();
                    // The other one on the stage, wherever they stand.
                    let others = around.iter().map(|(_, peer)| *peer).filter(|peer| on_stage(peer) && peer != me);
                    for speaker in others.collect::<Vec<_>>() {
                        if !hall.contains(&speaker) {
                            hall.push(speaker);
                        }
                    }
                    // Those near, and whoever else is on the stage (the presenter hears the floor).
                    let mut audible: HashSet<iroh::PublicKey> = near(&|_| true).into_iter().collect();
                    audible.extend(around.iter().map(|(_, peer)| *peer).filter(|peer| on_stage(peer) && peer != me));
                    return (hall, audible);
                }
                let near = near(&|_| true);
                let mut audible: HashSet<iroh::PublicKey> = near.iter().copied().collect();
                audible.extend(around.iter().map(|(_, peer)| *peer).filter(|peer| on_stage(peer)));
                (near, audible)
            }
        }
    }

    /// Shares the open connections of people in range with the sender.
    fn publish(&self) {
        let open: Vec<(iroh::PublicKey, Connection)> = self
            .listeners
            .iter()
            .filter_map(|(peer, listener)| match listener {
                Listener::Open { connection, out_of_range_since: None } => Some((*peer, connection.clone())),
                _ => None,
            })
            .collect();
        *self.sender.listeners.write().unwrap_or_else(PoisonError::into_inner) = open;
    }
}

impl Node {
    /// Works out who is in hearing range, dials those we have no connection to, and lets go
    /// of those gone for a while.
    pub(super) fn voice_tick(&mut self, now: Instant) {
        if self.voice.last_pick.is_some_and(|last| now.duration_since(last) < PICK_EVERY) {
            return;
        }
        self.voice.last_pick = Some(now);
        while self.voice.dials.try_join_next().is_some() {}
        let here = self.regions.current().map(|subscription| subscription.region).zip(self.regions.pose);
        let me = self.endpoint.id();
        let (in_range, audible) =
            here.map(|(region, pose)| self.voice.in_range(region, pose.head.position(), &me, now)).unwrap_or_default();
        let wanted: HashSet<iroh::PublicKey> = in_range.iter().copied().collect();
        self.voice.audible.set(audible);
        // A connection the other side closed (busy, out of its range, gone) is tried again
        // only after a pause.
        for listener in self.voice.listeners.values_mut() {
            if let Listener::Open { connection, .. } = listener
                && connection.close_reason().is_some()
            {
                *listener = Listener::Failed { until: now + REDIAL_AFTER };
            }
        }
        let mut dialling =
            self.voice.listeners.values().filter(|listener| matches!(listener, Listener::Dialling)).count();
        for peer in &in_range {
            let dial = match self.voice.listeners.get_mut(peer) {
                None => true,
                Some(Listener::Failed { until }) => *until <= now,
                Some(Listener::Open { out_of_range_since, .. }) => {
                    *out_of_range_since = None;
                    false
                }
                Some(Listener::Dialling) => false,
            };
            if dial && dialling < MAX_DIALS {
                dialling += 1;
                self.voice.listeners.insert(*peer, Listener::Dialling);
                let (endpoint, peer, control) = (self.endpoint.clone(), *peer, self.topic_out.control.clone());
                self.voice.dials.spawn(async move {
                    let result = match tokio::time::timeout(DIAL_TIMEOUT, endpoint.connect(peer, alpn::VOICE)).await {
                        Ok(Ok(connection)) => Ok(connection),
                        Ok(Err(error)) => Err(error.to_string()),
                        Err(_) => Err("timed out".to_owned()),
                    };
                    let _ = control.send(Internal::VoiceDialled { peer, result });
                });
            }
        }
        self.voice.listeners.retain(|peer, listener| match listener {
            Listener::Open { connection, out_of_range_since } if !wanted.contains(peer) => {
                let since = *out_of_range_since.get_or_insert(now);
                let keep = now.duration_since(since) < LINGER && connection.close_reason().is_none();
                if !keep {
                    connection.close(0u32.into(), b"out of range");
                }
                keep
            }
            Listener::Open { connection, .. } => connection.close_reason().is_none(),
            Listener::Failed { until } => *until > now || wanted.contains(peer),
            Listener::Dialling => true,
        });
        self.voice.heard.retain(|_, (_, _, at)| now.duration_since(*at) < PRESENCE_TIMEOUT);
        self.voice.publish();
    }

    /// A dial for voice ended.
    pub(super) fn voice_dialled(&mut self, peer: iroh::PublicKey, result: Result<Connection, String>) {
        let listener = match result {
            Ok(connection) => Listener::Open { connection, out_of_range_since: None },
            Err(_) => Listener::Failed { until: Instant::now() + RETRY_AFTER },
        };
        self.voice.listeners.insert(peer, listener);
        self.voice.publish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> iroh::PublicKey {
        iroh::SecretKey::from_bytes(&[seed; 32]).public()
    }

    fn engine_key(seed: u8) -> PublicKey {
        PublicKey::from_bytes(*key(seed).as_bytes()).expect("a valid key")
    }

    /// People 1..=n standing along x at `spacing` metres from the origin, in `region`.
    fn crowd(region: RegionId, n: u8, spacing: f32) -> Voice {
        let mut voice = Voice::default();
        for seed in 1..=n {
            voice.heard(key(seed), region, Vec3::new(f32::from(seed) * spacing, 1.7, 0.0));
        }
        voice
    }

    #[test]
    fn the_near_hear_each_other_and_nobody_else() {
        let region = RegionId::Lobby;
        let voice = crowd(region, 30, 1.0);
        let me = key(0);
        let (to, from) = voice.in_range(region, Vec3::new(0.0, 1.7, 0.0), &me, Instant::now());
        assert_eq!(to.len(), MAX_LISTENERS, "the nearest sixteen");
        assert_eq!(to[0], key(1), "nearest first");
        assert_eq!(from, to.iter().copied().collect(), "heard from whom we speak to");
        let (to, _) = voice.in_range(RegionId::City, Vec3::ZERO, &me, Instant::now());
        assert!(to.is_empty(), "nobody from another region");
    }

    #[test]
    fn a_private_room_hears_only_its_members() {
        let region = RegionId::Room(sanctuary_engine::RoomKind::Private);
        let mut voice = crowd(region, 5, 1.0);
        let members: BTreeSet<PublicKey> = [engine_key(0), engine_key(2), engine_key(4)].into_iter().collect();
        voice.set_rule(region, Hearing::Members(members));
        let now = Instant::now();
        let (to, from) = voice.in_range(region, Vec3::new(0.0, 1.7, 0.0), &key(0), now);
        assert_eq!(to, vec![key(2), key(4)], "members only, nearest first");
        assert_eq!(from, [key(2), key(4)].into_iter().collect());
        let (to, from) = voice.in_range(region, Vec3::new(1.0, 1.7, 0.0), &key(1), now);
        assert!(to.is_empty() && from.is_empty(), "an outsider hears and reaches nobody");
        voice.set_rule(region, Hearing::Near);
        assert_eq!(voice.in_range(region, Vec3::new(1.0, 1.7, 0.0), &key(1), now).0.len(), 4, "the rule undone");
        let many: BTreeSet<PublicKey> = (0..=255).map(engine_key).chain((0..100).map(|_| engine_key(9))).collect();
        voice.set_rule(region, Hearing::Members(many));
        assert!(matches!(voice.rules.get(&region), Some(Hearing::Members(kept)) if kept.len() <= MAX_MEMBERS));
    }

    #[test]
    fn the_presenter_reaches_the_hall_and_the_hall_hears_the_presenter() {
        let region = RegionId::Room(sanctuary_engine::RoomKind::LectureHall);
        // 100 people, 0.5 m apart: the far ones 50 m away, beyond any voice's reach.
        let mut voice = crowd(region, 100, 0.5);
        voice.heard(key(200), region, Vec3::new(0.0, 1.7, 0.0));
        voice.set_rule(region, Hearing::Stage(vec![engine_key(200)]));
        let now = Instant::now();
        // The presenter, at the origin.
        let (to, from) = voice.in_range(region, Vec3::new(0.0, 1.7, 0.0), &key(200), now);
        assert_eq!(to.len(), MAX_STAGE_LISTENERS, "the presenter reaches the nearest 64, however far");
        assert!(to.contains(&key(64)), "32 m away");
        assert_eq!(from.len(), MAX_LISTENERS, "but hears only those near");
        // Someone at the back, 50 m from the stage.
        let back = Vec3::new(50.0, 1.7, 0.0);
        let (to, from) = voice.in_range(region, back, &key(100), now);
        assert!(from.contains(&key(200)), "the back row takes the presenter's voice in");
        assert!(!to.contains(&key(200)), "but does not reach the presenter");
        assert!(to.len() <= MAX_LISTENERS);
        // Given the floor, the one at the back reaches the hall too, and the presenter hears them.
        voice.set_rule(region, Hearing::Stage(vec![engine_key(200), engine_key(100)]));
        let (to, _) = voice.in_range(region, back, &key(100), now);
        assert_eq!(to.len(), MAX_STAGE_LISTENERS + 1, "the nearest 64 and the presenter");
        assert!(to.contains(&key(40)) && to.contains(&key(200)), "30 and 50 m away");
        let (_, from) = voice.in_range(region, Vec3::new(0.0, 1.7, 0.0), &key(200), now);
        assert!(from.contains(&key(100)), "the presenter hears whoever has the floor");
        voice.set_rule(region, Hearing::Stage((0..5).map(engine_key).collect()));
        assert!(matches!(voice.rules.get(&region), Some(Hearing::Stage(on)) if on.len() == MAX_ON_STAGE));
    }
}
