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
//! dropped (and counted); positions of at most [`crate::inbox::MAX_AUTHORS`] people.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use glam::Vec3;
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler};
use sanctuary_engine::{PublicKey, RegionId};
use tokio::sync::mpsc;

use super::actor::{Internal, Node};
use super::gate::Gate;
use super::links::{Admitted, Inbound, Limits, Links, Open, PICK_EVERY, Positions, Taken};
use crate::alpn;
use crate::inbox::NetStats;

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
    listeners: Open,
    sent_bytes: Arc<AtomicU64>,
}

impl VoiceSender {
    /// Sends one datagram to everyone in range; returns how many it went to. Larger than
    /// [`MAX_VOICE_DATAGRAM`] goes to nobody.
    pub fn send(&self, datagram: &[u8]) -> usize {
        if datagram.len() > MAX_VOICE_DATAGRAM {
            return 0;
        }
        let reached = self.listeners.send(&Bytes::copy_from_slice(datagram));
        self.sent_bytes.fetch_add((reached * datagram.len()) as u64, Ordering::Relaxed);
        reached
    }

    /// How many people our voice goes to now.
    pub fn listeners(&self) -> usize {
        self.listeners.len()
    }

    /// Who our voice goes to now.
    pub fn listener_ids(&self) -> Vec<PublicKey> {
        self.listeners.ids()
    }

    /// Voice bytes sent so far, all listeners together.
    pub fn sent_bytes(&self) -> u64 {
        self.sent_bytes.load(Ordering::Relaxed)
    }
}

/// Takes voice connections: datagrams from people in range go to the program.
#[derive(Debug, Clone)]
pub(crate) struct VoiceProtocol {
    inbound: Inbound,
    out: mpsc::Sender<VoiceDatagram>,
}

impl VoiceProtocol {
    pub(crate) fn new(
        audible: Admitted,
        gate: Arc<Gate>,
        out: mpsc::Sender<VoiceDatagram>,
        stats: Arc<NetStats>,
    ) -> Self {
        let limits =
            Limits { connections: MAX_SPEAKERS, datagram_bytes: MAX_VOICE_DATAGRAM, rate: DATAGRAMS_PER_SPEAKER };
        Self { inbound: Inbound::new(audible, gate, limits, stats), out }
    }
}

impl ProtocolHandler for VoiceProtocol {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        self.inbound
            .serve(connection, |from, bytes| {
                match self.out.try_send(VoiceDatagram { from, bytes, arrival: Instant::now() }) {
                    Ok(()) => Taken::Next,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        self.inbound.stats.count_dropped_event();
                        Taken::Next
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => Taken::Stop,
                }
            })
            .await;
        Ok(())
    }
}

/// The node's side of voice: each region's rule, and our connections to those in range.
pub(super) struct Voice {
    links: Links,
    pub(super) audible: Admitted,
    pub(super) sender: VoiceSender,
    last_pick: Option<Instant>,
    /// Each region's rule where it is not [`Hearing::Near`] (one per region: a handful).
    rules: HashMap<RegionId, Hearing>,
}

impl Voice {
    pub(super) fn new(audible: Admitted, sender: VoiceSender) -> Self {
        let links = Links::new(alpn::VOICE, sender.listeners.clone());
        Self { links, audible, sender, last_pick: None, rules: HashMap::new() }
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

    /// Whom our voice goes to, nearest first, and whose we take in, for `me` standing at `at`
    /// in `region` under its rule.
    fn in_range(
        &self,
        positions: &Positions,
        region: RegionId,
        at: Vec3,
        me: &iroh::PublicKey,
        now: Instant,
    ) -> (Vec<iroh::PublicKey>, HashSet<iroh::PublicKey>) {
        let around = positions.around(region, at, me, now);
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
}

impl Node {
    /// Works out who is in hearing range, dials those we have no connection to, and lets go
    /// of those gone for a while.
    pub(super) fn voice_tick(&mut self, now: Instant) {
        if self.voice.last_pick.is_some_and(|last| now.duration_since(last) < PICK_EVERY) {
            return;
        }
        self.voice.last_pick = Some(now);
        self.positions.expire(now);
        let here = self.regions.current().map(|subscription| subscription.region).zip(self.regions.pose);
        let me = self.endpoint.id();
        let (in_range, audible) = here
            .map(|(region, pose)| self.voice.in_range(&self.positions, region, pose.head.position(), &me, now))
            .unwrap_or_default();
        self.voice.audible.set(audible);
        let report = |peer, result| Internal::VoiceDialled { peer, result };
        self.voice.links.keep(&in_range, now, &self.endpoint, &self.topic_out.control, report);
    }

    /// A dial for voice ended.
    pub(super) fn voice_dialled(&mut self, peer: iroh::PublicKey, result: Result<Connection, String>) {
        self.voice.links.dialled(peer, result);
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
    fn crowd(region: RegionId, n: u8, spacing: f32) -> (Voice, Positions) {
        let mut positions = Positions::default();
        for seed in 1..=n {
            positions.heard(key(seed), region, Vec3::new(f32::from(seed) * spacing, 1.7, 0.0));
        }
        (Voice::new(Admitted::default(), VoiceSender::default()), positions)
    }

    #[test]
    fn the_near_hear_each_other_and_nobody_else() {
        let region = RegionId::Lobby;
        let (voice, positions) = crowd(region, 30, 1.0);
        let me = key(0);
        let (to, from) = voice.in_range(&positions, region, Vec3::new(0.0, 1.7, 0.0), &me, Instant::now());
        assert_eq!(to.len(), MAX_LISTENERS, "the nearest sixteen");
        assert_eq!(to[0], key(1), "nearest first");
        assert_eq!(from, to.iter().copied().collect(), "heard from whom we speak to");
        let (to, _) = voice.in_range(&positions, RegionId::City, Vec3::ZERO, &me, Instant::now());
        assert!(to.is_empty(), "nobody from another region");
    }

    #[test]
    fn a_private_room_hears_only_its_members() {
        let region = RegionId::Room(sanctuary_engine::RoomKind::Private);
        let (mut voice, positions) = crowd(region, 5, 1.0);
        let members: BTreeSet<PublicKey> = [engine_key(0), engine_key(2), engine_key(4)].into_iter().collect();
        voice.set_rule(region, Hearing::Members(members));
        let now = Instant::now();
        let (to, from) = voice.in_range(&positions, region, Vec3::new(0.0, 1.7, 0.0), &key(0), now);
        assert_eq!(to, vec![key(2), key(4)], "members only, nearest first");
        assert_eq!(from, [key(2), key(4)].into_iter().collect());
        let (to, from) = voice.in_range(&positions, region, Vec3::new(1.0, 1.7, 0.0), &key(1), now);
        assert!(to.is_empty() && from.is_empty(), "an outsider hears and reaches nobody");
        voice.set_rule(region, Hearing::Near);
        assert_eq!(
            voice.in_range(&positions, region, Vec3::new(1.0, 1.7, 0.0), &key(1), now).0.len(),
            4,
            "the rule undone"
        );
        let many: BTreeSet<PublicKey> = (0..=255).map(engine_key).chain((0..100).map(|_| engine_key(9))).collect();
        voice.set_rule(region, Hearing::Members(many));
        assert!(matches!(voice.rules.get(&region), Some(Hearing::Members(kept)) if kept.len() <= MAX_MEMBERS));
    }

    #[test]
    fn the_presenter_reaches_the_hall_and_the_hall_hears_the_presenter() {
        let region = RegionId::Room(sanctuary_engine::RoomKind::LectureHall);
        // 100 people, 0.5 m apart: the far ones 50 m away, beyond any voice's reach.
        let (mut voice, mut positions) = crowd(region, 100, 0.5);
        positions.heard(key(200), region, Vec3::new(0.0, 1.7, 0.0));
        voice.set_rule(region, Hearing::Stage(vec![engine_key(200)]));
        let now = Instant::now();
        // The presenter, at the origin.
        let (to, from) = voice.in_range(&positions, region, Vec3::new(0.0, 1.7, 0.0), &key(200), now);
        assert_eq!(to.len(), MAX_STAGE_LISTENERS, "the presenter reaches the nearest 64, however far");
        assert!(to.contains(&key(64)), "32 m away");
        assert_eq!(from.len(), MAX_LISTENERS, "but hears only those near");
        // Someone at the back, 50 m from the stage.
        let back = Vec3::new(50.0, 1.7, 0.0);
        let (to, from) = voice.in_range(&positions, region, back, &key(100), now);
        assert!(from.contains(&key(200)), "the back row takes the presenter's voice in");
        assert!(!to.contains(&key(200)), "but does not reach the presenter");
        assert!(to.len() <= MAX_LISTENERS);
        // Given the floor, the one at the back reaches the hall too, and the presenter hears them.
        voice.set_rule(region, Hearing::Stage(vec![engine_key(200), engine_key(100)]));
        let (to, _) = voice.in_range(&positions, region, back, &key(100), now);
        assert_eq!(to.len(), MAX_STAGE_LISTENERS + 1, "the nearest 64 and the presenter");
        assert!(to.contains(&key(40)) && to.contains(&key(200)), "30 and 50 m away");
        let (_, from) = voice.in_range(&positions, region, Vec3::new(0.0, 1.7, 0.0), &key(200), now);
        assert!(from.contains(&key(100)), "the presenter hears whoever has the floor");
        voice.set_rule(region, Hearing::Stage((0..5).map(engine_key).collect()));
        assert!(matches!(voice.rules.get(&region), Some(Hearing::Stage(on)) if on.len() == MAX_ON_STAGE));
    }
}
