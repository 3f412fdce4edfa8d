//! Direct connections to the people near us, shared by voice (`voice.rs`) and near poses
//! (`near.rs`): where people are ([`Positions`], learned from their signed poses), our
//! connections to those we pick ([`Links`]: dialled a few at a time, let go once they have been
//! out of range for a while, dialled again after a pause when they failed), and the checks on a
//! connection someone else opens to us ([`Inbound`]).
//!
//! Each side dials the people it sends to and reads what arrives on the connections others
//! dialled, so a datagram's sender is always the connection's peer, and each side applies its
//! own rule to both what it sends and what it takes in.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use glam::Vec3;
use iroh::Endpoint;
use iroh::endpoint::Connection;
use sanctuary_engine::{PublicKey, RegionId};
use tokio::sync::mpsc;

use super::actor::Internal;
use super::blocks::Blocks;
use super::gate::Gate;
use super::presence_timeout;
use crate::inbox::{MAX_AUTHORS, NetStats, RateLimiter};

/// How long a connection to someone who walked out of range is kept (they may come back).
pub(super) const LINGER: Duration = Duration::from_secs(5);
/// How long after a failed dial the same person is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(10);
/// How long after they closed our connection (busy, or we were not in their range yet) the
/// same person is dialled again.
const REDIAL_AFTER: Duration = Duration::from_secs(1);
/// How long a connection from someone not (yet) in our range is held before it is turned away.
const ADMIT_GRACE: Duration = Duration::from_secs(2);
/// How long a dial may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often who is in range is worked out again.
pub(super) const PICK_EVERY: Duration = Duration::from_millis(250);
/// Dials under way at once, per kind of link: people walking into range are dialled a few at a
/// time.
pub(super) const MAX_DIALS: usize = 4;

/// Where each person's head was last, in which region and when, as their signed poses said; at
/// most [`MAX_AUTHORS`] people.
#[derive(Debug, Default)]
pub(super) struct Positions {
    heard: HashMap<iroh::PublicKey, (RegionId, Vec3, Instant)>,
    /// People we block: never picked.
    blocks: Blocks,
}

impl Positions {
    pub(super) fn new(blocks: Blocks) -> Self {
        Self { heard: HashMap::new(), blocks }
    }

    /// Notes where `author`'s head is.
    pub(super) fn heard(&mut self, author: iroh::PublicKey, region: RegionId, head: Vec3) {
        if self.heard.len() >= MAX_AUTHORS && !self.heard.contains_key(&author) {
            self.expire(Instant::now());
            if self.heard.len() >= MAX_AUTHORS {
                return;
            }
        }
        self.heard.insert(author, (region, head, Instant::now()));
    }

    /// Forgets who has not posed for the crowd's [`presence_timeout`].
    pub(super) fn expire(&mut self, now: Instant) {
        let timeout = presence_timeout(self.heard.len());
        self.heard.retain(|_, (_, _, at)| now.duration_since(*at) < timeout);
    }

    /// Everyone posing in `region` (but `me` and those we block), with their distance from
    /// `at`, nearest first.
    pub(super) fn around(
        &self,
        region: RegionId,
        at: Vec3,
        me: &iroh::PublicKey,
        now: Instant,
    ) -> Vec<(f32, iroh::PublicKey)> {
        let timeout = presence_timeout(self.heard.len());
        let mut around: Vec<(f32, iroh::PublicKey)> = self
            .heard
            .iter()
            .filter(|(peer, (their_region, _, heard))| {
                *peer != me
                    && *their_region == region
                    && now.duration_since(*heard) < timeout
                    && !self.blocks.contains(peer.as_bytes())
            })
            .map(|(peer, (_, head, _))| (head.distance(at), *peer))
            .filter(|(distance, _)| distance.is_finite())
            .collect();
        around.sort_by(|a, b| a.0.total_cmp(&b.0));
        around
    }
}

/// Whose connections we take in: the people in range, shared with the protocol handler.
#[derive(Debug, Clone, Default)]
pub(crate) struct Admitted(Arc<RwLock<HashSet<iroh::PublicKey>>>);

impl Admitted {
    pub(super) fn contains(&self, peer: &iroh::PublicKey) -> bool {
        self.0.read().unwrap_or_else(PoisonError::into_inner).contains(peer)
    }

    pub(super) fn set(&self, peers: HashSet<iroh::PublicKey>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = peers;
    }
}

/// The open connections of the people we send to, shared with whoever sends (the program's
/// capture thread for voice, the node's loop for poses); sending a datagram never waits.
#[derive(Debug, Clone, Default)]
pub(crate) struct Open(Arc<RwLock<Vec<(iroh::PublicKey, Connection)>>>);

impl Open {
    /// Sends `bytes` to everyone; returns how many it went to.
    pub(super) fn send(&self, bytes: &Bytes) -> usize {
        let open = self.0.read().unwrap_or_else(PoisonError::into_inner);
        open.iter().filter(|(_, connection)| connection.send_datagram(bytes.clone()).is_ok()).count()
    }

    /// How many people we send to.
    pub(super) fn len(&self) -> usize {
        self.0.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Who we send to.
    pub(super) fn ids(&self) -> Vec<PublicKey> {
        let open = self.0.read().unwrap_or_else(PoisonError::into_inner);
        open.iter().filter_map(|(peer, _)| PublicKey::from_bytes(*peer.as_bytes()).ok()).collect()
    }
}

/// A person we send to, or should.
enum Link {
    Dialling,
    Open { connection: Connection, out_of_range_since: Option<Instant> },
    Failed { until: Instant },
}

/// Our connections of one kind (one ALPN) to the people we pick.
pub(super) struct Links {
    alpn: &'static [u8],
    links: HashMap<iroh::PublicKey, Link>,
    pub(super) open: Open,
    /// Dials under way (aborted with the node).
    dials: tokio::task::JoinSet<()>,
}

impl Links {
    pub(super) fn new(alpn: &'static [u8], open: Open) -> Self {
        Self { alpn, links: HashMap::new(), open, dials: tokio::task::JoinSet::new() }
    }

    /// Dials those in `wanted` we have no connection to (a few at a time), and lets go of
    /// those out of it for [`LINGER`]. A finished dial comes back through `control` as
    /// `report(peer, result)`.
    pub(super) fn keep(
        &mut self,
        wanted: &[iroh::PublicKey],
        now: Instant,
        endpoint: &Endpoint,
        control: &mpsc::UnboundedSender<Internal>,
        report: fn(iroh::PublicKey, Result<Connection, String>) -> Internal,
    ) {
        while self.dials.try_join_next().is_some() {}
        // A connection the other side closed (busy, out of its range, gone) is tried again
        // only after a pause.
        for link in self.links.values_mut() {
            if let Link::Open { connection, .. } = link
                && connection.close_reason().is_some()
            {
                *link = Link::Failed { until: now + REDIAL_AFTER };
            }
        }
        let mut dialling = self.links.values().filter(|link| matches!(link, Link::Dialling)).count();
        for peer in wanted {
            let dial = match self.links.get_mut(peer) {
                None => true,
                Some(Link::Failed { until }) => *until <= now,
                Some(Link::Open { out_of_range_since, .. }) => {
                    *out_of_range_since = None;
                    false
                }
                Some(Link::Dialling) => false,
            };
            if dial && dialling < MAX_DIALS {
                dialling += 1;
                self.links.insert(*peer, Link::Dialling);
                let (endpoint, peer, control, alpn) = (endpoint.clone(), *peer, control.clone(), self.alpn);
                self.dials.spawn(async move {
                    let result = match tokio::time::timeout(DIAL_TIMEOUT, endpoint.connect(peer, alpn)).await {
                        Ok(Ok(connection)) => Ok(connection),
                        Ok(Err(error)) => Err(error.to_string()),
                        Err(_) => Err("timed out".to_owned()),
                    };
                    let _ = control.send(report(peer, result));
                });
            }
        }
        let wanted: HashSet<&iroh::PublicKey> = wanted.iter().collect();
        self.links.retain(|peer, link| match link {
            Link::Open { connection, out_of_range_since } if !wanted.contains(peer) => {
                let since = *out_of_range_since.get_or_insert(now);
                let keep = now.duration_since(since) < LINGER && connection.close_reason().is_none();
                if !keep {
                    connection.close(0u32.into(), b"out of range");
                }
                keep
            }
            Link::Open { connection, .. } => connection.close_reason().is_none(),
            Link::Failed { until } => *until > now || wanted.contains(peer),
            Link::Dialling => true,
        });
        self.publish();
    }

    /// A dial ended.
    pub(super) fn dialled(&mut self, peer: iroh::PublicKey, result: Result<Connection, String>) {
        let link = match result {
            Ok(connection) => Link::Open { connection, out_of_range_since: None },
            Err(_) => Link::Failed { until: Instant::now() + RETRY_AFTER },
        };
        self.links.insert(peer, link);
        self.publish();
    }

    /// Shares the open connections of people in range with the sender.
    fn publish(&self) {
        let open: Vec<(iroh::PublicKey, Connection)> = self
            .links
            .iter()
            .filter_map(|(peer, link)| match link {
                Link::Open { connection, out_of_range_since: None } => Some((*peer, connection.clone())),
                _ => None,
            })
            .collect();
        *self.open.0.write().unwrap_or_else(PoisonError::into_inner) = open;
    }
}

/// What [`Inbound::serve`]'s caller does with a datagram that passed the connection's checks.
pub(super) enum Taken {
    /// Keep reading.
    Next,
    /// The program has gone: stop.
    Stop,
}

/// The limits of one kind of inbound link.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Connections taken in at once.
    pub(super) connections: usize,
    /// The largest datagram taken.
    pub(super) datagram_bytes: usize,
    /// Datagrams per connection: a burst, then a rate per second.
    pub(super) rate: (u32, u32),
}

/// The checks on connections others open to us, for one kind of link.
#[derive(Debug, Clone)]
pub(super) struct Inbound {
    admitted: Admitted,
    gate: Arc<Gate>,
    limits: Limits,
    open: Arc<AtomicUsize>,
    /// Each peer's connection (its stable id): one per person.
    peers: Arc<std::sync::Mutex<HashMap<iroh::PublicKey, Connection>>>,
    pub(super) stats: Arc<NetStats>,
}

impl Inbound {
    pub(super) fn new(admitted: Admitted, gate: Arc<Gate>, limits: Limits, stats: Arc<NetStats>) -> Self {
        Self { admitted, gate, limits, open: Arc::new(AtomicUsize::new(0)), peers: Arc::default(), stats }
    }

    /// Serves one connection until it ends: refused when the gate cut its peer off or too many
    /// are open, one per person (a new one replaces the old), held only while its peer is
    /// admitted (a grace at first, a linger at the end), each datagram within the size and the
    /// rate, and only then handed to `take` with the peer's key.
    pub(super) async fn serve(&self, connection: Connection, mut take: impl FnMut(PublicKey, Bytes) -> Taken) {
        let remote = connection.remote_id();
        let Ok(from) = PublicKey::from_bytes(*remote.as_bytes()) else { return };
        if !iroh_gossip::net::MessageFilter::allows(&*self.gate, remote) {
            connection.close(403u32.into(), b"refused");
            return;
        }
        let replaced = self.peers.lock().unwrap_or_else(PoisonError::into_inner).insert(remote, connection.clone());
        if let Some(old) = replaced {
            old.close(0u32.into(), b"replaced");
        }
        let _forget = Forget { peers: self.peers.clone(), peer: remote, id: connection.stable_id() };
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.limits.connections {
            self.open.fetch_sub(1, Ordering::Relaxed);
            connection.close(503u32.into(), b"busy");
            return;
        }
        let _slot = Slot(self.open.clone());
        let start = Instant::now();
        let mut budget: RateLimiter<()> = RateLimiter::new(self.limits.rate.0, self.limits.rate.1);
        // Someone who just walked into range may dial before we worked out that they are in it
        // (we do every 250 ms): their datagrams are dropped meanwhile, and if they are not in
        // range after a moment's grace they are turned away. Later, someone out of range for a
        // while is let go.
        let mut admitted_once = false;
        let mut out_of_range_since: Option<Instant> = None;
        loop {
            let read = tokio::time::timeout(PICK_EVERY, connection.read_datagram()).await;
            let admitted = self.admitted.contains(&remote);
            if admitted {
                admitted_once = true;
                out_of_range_since = None;
            } else if !admitted_once && start.elapsed() > ADMIT_GRACE {
                connection.close(403u32.into(), b"not in range");
                break;
            } else if admitted_once && out_of_range_since.get_or_insert_with(Instant::now).elapsed() > LINGER {
                connection.close(0u32.into(), b"out of range");
                break;
            }
            let bytes = match read {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(_)) => break,
                Err(_) => continue,
            };
            if bytes.len() > self.limits.datagram_bytes || !budget.allow((), start.elapsed()) || !admitted {
                self.stats.count_flooded();
                continue;
            }
            if let Taken::Stop = take(from, bytes) {
                break;
            }
        }
    }
}

/// Gives a connection's place back when its task ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Forgets a peer's connection when its task ends, unless a newer one replaced it.
struct Forget {
    peers: Arc<std::sync::Mutex<HashMap<iroh::PublicKey, Connection>>>,
    peer: iroh::PublicKey,
    id: usize,
}

impl Drop for Forget {
    fn drop(&mut self) {
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        if peers.get(&self.peer).is_some_and(|connection| connection.stable_id() == self.id) {
            peers.remove(&self.peer);
        }
    }
}
