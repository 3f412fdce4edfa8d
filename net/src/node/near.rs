//! Near poses: the [`MAX_NEAR`] nearest people within [`NEAR_DISTANCE`] get our pose twenty
//! times a second as a 49-byte datagram ([`crate::near_pose`]) on a direct connection
//! (`alpn::POSE`), and we take theirs the same way. Everyone else in the region, near ones
//! included, still gets our signed presence on gossip at the crowd's rate: it carries the name and
//! colour, tells people we are here, and keeps the far crowd moving.
//!
//! The connection proves the sender, so nothing is signed; what the inbox checks for a gossip
//! pose is checked here per connection instead: the peer is not cut off by the gate, is among
//! the people we picked (near, in our region, not blocked; a grace at first, a linger at the
//! end), within [`MAX_NEAR_CONNECTIONS`], within [`POSES_PER_NEIGHBOUR`], each datagram
//! [`POSE_DATAGRAM_BYTES`] long and of a known kind, meant for our region (the topic's first
//! bytes), newer than the last one on the connection and dated within
//! [`crate::inbox::MAX_CLOCK_SKEW`] of our clock. Every refusal is counted in [`NetStats`].
//! A datagram moves an avatar the program already knows from a signed presence, and nothing
//! else.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler};
use sanctuary_engine::RegionId;
use tokio::sync::mpsc;

use super::Event;
use super::actor::{Internal, Node, wall_micros};
use super::gate::Gate;
use super::links::{Admitted, Inbound, Limits, Links, Open, PICK_EVERY, Taken};
use crate::alpn;
use crate::inbox::{MAX_CLOCK_SKEW, NetStats};
use crate::near_pose::{POSE_DATAGRAM_BYTES, PoseDatagram};
use crate::wire::PoseFrame;

/// How near, head to head in metres, someone must be to get our pose at the full rate: the
/// engine's near level of detail (`sanctuary_engine::crowd::DetailLimits`).
pub const NEAR_DISTANCE: f32 = 16.0;
/// The most people who get our pose at the full rate: the engine's near level of detail.
pub const MAX_NEAR: usize = 32;
/// The most near-pose connections taken in at once.
pub const MAX_NEAR_CONNECTIONS: usize = 64;
/// Datagrams one neighbour may send: a burst, then a rate (poses come at 20 a second); the
/// gossip pose lane's.
pub const POSES_PER_NEIGHBOUR: (u32, u32) = (30, 25);
/// The fastest we send our pose to near neighbours: 20 a second.
pub const NEAR_POSE_INTERVAL: Duration = Duration::from_millis(50);
/// How often an unchanged pose is sent again, so that a neighbour's playback keeps a recent
/// sample.
pub const NEAR_KEEPALIVE: Duration = Duration::from_secs(1);

/// Which region we are in and the first bytes of its topic, shared with the protocol handler.
#[derive(Debug, Clone, Default)]
pub(crate) struct Here(Arc<RwLock<Option<(RegionId, [u8; 4])>>>);

impl Here {
    fn get(&self) -> Option<(RegionId, [u8; 4])> {
        *self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, here: Option<(RegionId, [u8; 4])>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = here;
    }
}

/// Takes near-pose connections: poses from the people we picked go to the program.
#[derive(Debug, Clone)]
pub(crate) struct NearProtocol {
    inbound: Inbound,
    here: Here,
    events: mpsc::Sender<Event>,
}

impl NearProtocol {
    pub(crate) fn new(
        admitted: Admitted,
        here: Here,
        gate: Arc<Gate>,
        events: mpsc::Sender<Event>,
        stats: Arc<NetStats>,
    ) -> Self {
        let limits = Limits {
            connections: MAX_NEAR_CONNECTIONS,
            datagram_bytes: POSE_DATAGRAM_BYTES,
            rate: POSES_PER_NEIGHBOUR,
        };
        Self { inbound: Inbound::new(admitted, gate, limits, stats), here, events }
    }

    /// Checks one datagram from `author`, whose last one on this connection was dated `last`.
    fn take(&self, author: sanctuary_engine::PublicKey, bytes: &[u8], last: &mut u64) -> Taken {
        let stats = &self.inbound.stats;
        let Ok(datagram) = PoseDatagram::decode(bytes) else {
            stats.count_malformed();
            return Taken::Next;
        };
        let Some((region, scope)) = self.here.get() else { return Taken::Next };
        if datagram.scope != scope {
            stats.count_malformed();
            return Taken::Next;
        }
        if datagram.stamp <= *last {
            stats.count_replayed();
            return Taken::Next;
        }
        let skew = u64::try_from(MAX_CLOCK_SKEW.as_micros()).unwrap_or(u64::MAX);
        if datagram.stamp.abs_diff(wall_micros()) > skew {
            stats.count_bad_clock();
            return Taken::Next;
        }
        *last = datagram.stamp;
        stats.count_near_pose();
        let event = Event::NearPose { region, author, stamp: datagram.stamp, pose: datagram.pose };
        match self.events.try_send(event) {
            Ok(()) => Taken::Next,
            // The next pose replaces this one: drop rather than wait.
            Err(mpsc::error::TrySendError::Full(_)) => {
                stats.count_dropped_event();
                Taken::Next
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Taken::Stop,
        }
    }
}

impl ProtocolHandler for NearProtocol {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let mut last = 0u64;
        self.inbound.serve(connection, |author, bytes| self.take(author, &bytes, &mut last)).await;
        Ok(())
    }
}

/// The node's side of near poses: our connections to the nearest, and what we sent last.
pub(super) struct Near {
    links: Links,
    admitted: Admitted,
    here: Here,
    last_pick: Option<Instant>,
    /// What we sent last, and when.
    sent: Option<(PoseFrame, Instant)>,
}

impl Near {
    pub(super) fn new(admitted: Admitted, here: Here) -> Self {
        Self { links: Links::new(alpn::POSE, Open::default()), admitted, here, last_pick: None, sent: None }
    }

    /// How many people get our pose at the full rate now.
    pub(super) fn neighbours(&self) -> usize {
        self.links.open.len()
    }
}

impl Node {
    /// Works out who is near (every [`PICK_EVERY`]) and keeps connections to them, and sends our
    /// pose to them when it changed (at most every [`NEAR_POSE_INTERVAL`]) or at the keepalive.
    pub(super) fn near_tick(&mut self, now: Instant) {
        let here = self.regions.current().map(|subscription| (subscription.region, subscription.topic));
        if self.near.last_pick.is_none_or(|last| now.duration_since(last) >= PICK_EVERY) {
            self.near.last_pick = Some(now);
            let me = self.endpoint.id();
            let near: Vec<iroh::PublicKey> = here
                .zip(self.regions.pose)
                .map(|((region, _), pose)| {
                    let around = self.positions.around(region, pose.head.position(), &me, now);
                    around
                        .into_iter()
                        .take_while(|(distance, _)| *distance <= NEAR_DISTANCE)
                        .take(MAX_NEAR)
                        .map(|(_, peer)| peer)
                        .collect()
                })
                .unwrap_or_default();
            self.near.here.set(here.map(|(region, topic)| (region, PoseDatagram::scope_of(topic.as_bytes()))));
            self.near.admitted.set(near.iter().copied().collect::<HashSet<_>>());
            let report = |peer, result| Internal::NearDialled { peer, result };
            self.near.links.keep(&near, now, &self.endpoint, &self.topic_out.control, report);
        }
        let (Some(pose), Some((_, topic))) = (self.regions.pose, here) else { return };
        if self.near.links.open.len() == 0 {
            return;
        }
        let due = match self.near.sent {
            None => true,
            Some((sent, at)) => {
                // The loop ticks every 25 ms with some jitter: a tick a little early for the
                // interval still sends, or 20 Hz would come out as 13.
                let since = now.duration_since(at) + NEAR_POSE_INTERVAL / 5;
                (sent != pose && since >= NEAR_POSE_INTERVAL) || since >= NEAR_KEEPALIVE
            }
        };
        if !due {
            return;
        }
        let datagram = PoseDatagram { scope: PoseDatagram::scope_of(topic.as_bytes()), stamp: self.clock_next(), pose };
        self.near.links.open.send(&Bytes::copy_from_slice(&datagram.encode()));
        self.near.sent = Some((pose, now));
    }

    /// A dial for near poses ended.
    pub(super) fn near_dialled(&mut self, peer: iroh::PublicKey, result: Result<Connection, String>) {
        self.near.links.dialled(peer, result);
    }
}
