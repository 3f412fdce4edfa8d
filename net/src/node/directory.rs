//! The world topic: every peer says every 3 s, signed, which regions it is in, so that peers
//! find the others of their region whichever peer they met first; and peers found on the local
//! network are asked onto it.
//!
//! Bounds: at most [`MAX_DIRECTORY`] peers are remembered (the one heard least recently goes
//! first), each for 15 s after it was last heard; at most [`MAX_ASKED`] peers are asked into
//! one region while it has too few neighbours. The world topic's inbox limits each key to a
//! burst of 5 and 2 messages a second.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use iroh_gossip::api::GossipSender;
use iroh_mdns_address_lookup::DiscoveryEvent;
use sanctuary_engine::RegionId;

use super::actor::{Node, Scope, TaskGuard};
use super::presence::subscribe;
use super::{Event, Whereabouts, world_topic};
use crate::wire::{Signed, WorldMessage, encode};

/// Below this many gossip neighbours in a region, peers heard to be there are asked to join.
const WANTED_NEIGHBOURS: usize = 3;
/// How often each peer says on the world topic where it is.
const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(3);
/// Peers not heard on the world topic for this long are forgotten.
const DIRECTORY_TIMEOUT: Duration = Duration::from_secs(15);
/// The most peers remembered from the world topic.
pub(super) const MAX_DIRECTORY: usize = 4_096;
/// The most peers asked to join us in one region before we have neighbours there.
const MAX_ASKED: usize = 256;

/// A peer heard on the world topic.
#[derive(Debug)]
struct Known {
    regions: Vec<RegionId>,
    /// The name they said (checked and cleaned like every name).
    name: String,
    heard: Instant,
}

/// The world topic and who was heard on it.
pub(super) struct Directory {
    sender: GossipSender,
    _task: TaskGuard,
    peers: HashMap<iroh::PublicKey, Known>,
    last_announce: Instant,
    /// What the program was last told of the whereabouts of the people the person has a word
    /// with (see [`Event::Whereabouts`]).
    last_whereabouts: Vec<Whereabouts>,
}

impl Directory {
    /// The world topic joined through `sender` (read by the task `task`).
    pub(super) fn new(sender: GossipSender, task: TaskGuard) -> Self {
        let long_ago = Instant::now().checked_sub(Duration::from_secs(60)).unwrap_or_else(Instant::now);
        Self { sender, _task: task, peers: HashMap::new(), last_announce: long_ago, last_whereabouts: Vec::new() }
    }

    /// The world topic's sender.
    pub(super) fn sender(&self) -> &GossipSender {
        &self.sender
    }

    /// Peers heard to be in `region`.
    pub(super) fn peers_in(&self, region: RegionId) -> Vec<iroh::PublicKey> {
        self.peers.iter().filter(|(_, known)| known.regions.contains(&region)).map(|(peer, _)| *peer).collect()
    }

    /// Every peer heard lately.
    pub(super) fn peers(&self) -> impl Iterator<Item = iroh::PublicKey> + '_ {
        self.peers.keys().copied()
    }

    /// How many peers were heard lately.
    pub(super) fn len(&self) -> usize {
        self.peers.len()
    }

    /// Remembers that `peer` is in `regions`; `true` if it was not known.
    fn heard(&mut self, peer: iroh::PublicKey, regions: Vec<RegionId>, name: String) -> bool {
        let first_time = !self.peers.contains_key(&peer);
        if first_time && self.peers.len() >= MAX_DIRECTORY {
            let oldest = self.peers.iter().min_by_key(|(_, known)| known.heard).map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                self.peers.remove(&oldest);
            }
        }
        self.peers.insert(peer, Known { regions, name, heard: Instant::now() });
        first_time
    }
}

impl Node {
    /// Says on the world topic which regions we are in.
    pub(super) async fn announce(&mut self) {
        self.directory.last_announce = Instant::now();
        // A private room is not listed: nobody learns who is in one.
        let message = WorldMessage::Here {
            regions: self.regions.subscriptions.iter().filter(|sub| sub.room.is_none()).map(|sub| sub.region).collect(),
            name: self.profile.name.clone(),
        };
        let sequence = self.clock_next();
        if let Ok(bytes) = encode(&self.secret, world_topic().as_bytes(), sequence, &message) {
            let _ = self.directory.sender.broadcast(bytes.into()).await;
        }
    }

    /// Says goodbye on the world topic.
    pub(super) async fn say_gone(&mut self) {
        let sequence = self.clock_next();
        if let Ok(bytes) = encode(&self.secret, world_topic().as_bytes(), sequence, &WorldMessage::Gone) {
            let _ = self.directory.sender.broadcast(bytes.into()).await;
        }
    }

    /// Announces every few seconds and forgets peers not heard for a while.
    pub(super) async fn directory_tick(&mut self, now: Instant) {
        if now.duration_since(self.directory.last_announce) >= ANNOUNCE_INTERVAL {
            self.announce().await;
            self.directory.peers.retain(|_, known| now.duration_since(known.heard) < DIRECTORY_TIMEOUT);
            self.tell_whereabouts().await;
        }
    }

    /// Tells the program, when it changed, where the people the person has a word with (either
    /// way: friends, requests, acquaintances) are online: at most the 1,000 standing statements
    /// of one's own and those about one, found in the directory.
    pub(super) async fn tell_whereabouts(&mut self) {
        let Some(view) = self.trust.last.clone() else { return };
        let mut online: Vec<Whereabouts> = view
            .mine
            .keys()
            .chain(view.of_me.keys())
            .filter_map(|key| {
                let peer = iroh::PublicKey::from_bytes(key.as_bytes()).ok()?;
                let known = self.directory.peers.get(&peer)?;
                Some(Whereabouts { key: *key, name: known.name.clone(), regions: known.regions.clone() })
            })
            .collect();
        online.sort_by_key(|seen| seen.key);
        online.dedup_by(|a, b| a.key == b.key);
        if online != self.directory.last_whereabouts {
            self.directory.last_whereabouts.clone_from(&online);
            self.emit(Event::Whereabouts(online)).await;
        }
    }

    /// A message believed on the world topic.
    pub(super) async fn heard_in_world(&mut self, message: Signed<WorldMessage>) {
        match message.body {
            WorldMessage::Here { regions, name } => {
                let peer = message.author;
                for subscription in &mut self.regions.subscriptions {
                    // A private room's members are asked in wherever they are (nobody says they
                    // are in one); nobody else is.
                    let there = match &subscription.room {
                        Some((key, _)) => key.admits(peer.as_bytes()),
                        None => regions.contains(&subscription.region),
                    };
                    let wanted = subscription.neighbours.len() < WANTED_NEIGHBOURS
                        && there
                        && !subscription.neighbours.contains(&peer);
                    if wanted && subscription.asked.len() < MAX_ASKED && subscription.asked.insert(peer) {
                        let _ = subscription.sender.join_peers(vec![peer]).await;
                    }
                }
                if self.directory.heard(peer, regions, name) {
                    // A peer we had not heard: anything waiting for them goes now.
                    self.deliver_to(peer);
                }
            }
            WorldMessage::Gone => {
                self.directory.peers.remove(&message.author);
            }
            WorldMessage::Change(bytes) => self.apply_change(bytes),
        }
    }

    /// The world topic's subscription ended: join it again through the peers we know.
    pub(super) async fn rejoin_world(&mut self) {
        let peers: Vec<iroh::PublicKey> = self.directory.peers().collect();
        match subscribe::<WorldMessage>(
            &self.gossip,
            &self.gate,
            world_topic(),
            Scope::World,
            peers,
            self.me,
            &self.topic_out,
            None,
        )
        .await
        {
            Ok((sender, task)) => {
                self.directory.sender = sender;
                self.directory._task = task;
            }
            Err(error) => self.emit(Event::Notice(error)).await,
        }
    }

    /// A peer found on the local network is asked onto the world topic.
    pub(super) async fn discovered(&mut self, found: DiscoveryEvent) {
        if let DiscoveryEvent::Discovered { endpoint_info, .. } = found {
            let peer = endpoint_info.endpoint_id;
            if peer != self.me && !self.directory.peers.contains_key(&peer) {
                let _ = self.directory.sender.join_peers(vec![peer]).await;
            }
        }
    }
}
