//! Region topics: our pose and chat out, everyone else's in, through an [`Inbox`] per topic.
//!
//! Bounds: what each topic's inbox keeps (see [`crate::inbox`]) and what the gate keeps (see
//! [`super::gate`]); the crowd that sets our pose rate is the people whose poses we took in the last
//! seven seconds, at most [`MAX_AUTHORS`]; a region's chat log stops taking other people's lines
//! at [`MAX_CHAT_LOG_BYTES`] (they are still shown).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use iroh_gossip::api::{Event as GossipEvent, GossipReceiver, GossipSender};
use iroh_gossip::{Gossip, TopicId};
use sanctuary_engine::avatar::AvatarRef;
use sanctuary_engine::{PublicKey, RegionId};

use super::actor::{Internal, Node, Scope, TaskGuard, TopicOut};
use super::gate::{Gate, TopicGate};
use super::rooms::PRIVATE;
use super::{ChatLine, Event, POSE_KEEPALIVE, about_keepalive, pose_interval, presence_timeout};
use crate::inbox::{Limited, MAX_AUTHORS};
use crate::private_room::{RoomCipher, RoomKey};
use crate::region_topic;
use crate::store;
use crate::wire::{MAX_REGIONS_PER_PEER, MAX_TEXT_CHARS, MicState, PoseFrame, Presence, RegionMessage, Signed, encode};

/// Chat lines handed back on entering a region.
const CHAT_HISTORY: usize = 200;
/// The largest a region's chat log grows with other people's lines.
pub(super) const MAX_CHAT_LOG_BYTES: u64 = 64 * 1024 * 1024;
/// One region we are in.
pub(super) struct Subscription {
    pub(super) region: RegionId,
    /// The topic: the region's, or a private room's (named after its key).
    pub(super) topic: TopicId,
    /// A private room's key: who may be here, and what seals what is said.
    pub(super) room: Option<(RoomKey, RoomCipher)>,
    pub(super) sender: GossipSender,
    pub(super) neighbours: HashSet<iroh::PublicKey>,
    /// Peers already asked to join us here. Gossip keeps a handful of neighbours per topic and
    /// spreads messages through them; asking everyone we hear of would churn connections.
    pub(super) asked: HashSet<iroh::PublicKey>,
    _task: TaskGuard,
}

/// The regions we are in and our pose.
#[derive(Default)]
pub(super) struct Regions {
    /// The first takes poses and chat.
    pub(super) subscriptions: Vec<Subscription>,
    /// Who sent a pose in the first region lately: the crowd whose poses we receive, which sets
    /// our pose rate (not who says on the world topic that they are here: keys cost nothing).
    posing: HashMap<iroh::PublicKey, Instant>,
    /// Our pose as the program last gave it.
    pub(super) pose: Option<PoseFrame>,
    /// What we sent last, and when; `None` sends at the next tick.
    pub(super) sent_pose: Option<(PoseFrame, Instant)>,
    /// The size of our last pose message.
    pose_bytes: usize,
    /// Our microphone as the program last gave it (`None`: never said, as on a home node).
    pub(super) mic: Option<MicState>,
    /// What we said of it last, and when.
    sent_mic: Option<(MicState, Instant)>,
    /// The avatar we said we wear last, and when; `None` says it at the next tick.
    pub(super) sent_look: Option<(Option<AvatarRef>, Instant)>,
    /// When we said our tip offer last; `None` says it at the next tick.
    pub(super) sent_tips: Option<Instant>,
    /// Whether we ever said one (then "none" is worth saying when it goes).
    pub(super) sent_tips_ever: bool,
}

impl Regions {
    /// The region that takes poses and chat.
    pub(super) fn current(&self) -> Option<&Subscription> {
        self.subscriptions.first()
    }

    /// The city, if we are in it.
    pub(super) fn city(&self) -> Option<&Subscription> {
        self.subscriptions.iter().find(|subscription| subscription.region == RegionId::City)
    }

    /// The people whose poses we took in the first region lately: the crowd that sets our pose
    /// rate.
    pub(super) fn posed_lately(&self, key: &iroh::PublicKey) -> bool {
        let timeout = presence_timeout(self.posing.len());
        self.posing.get(key).is_some_and(|heard| heard.elapsed() < timeout)
    }

    /// Forgets that `key` posed here (they were hidden or blocked).
    pub(super) fn forget_posing(&mut self, key: &iroh::PublicKey) {
        self.posing.remove(key);
    }

    pub(super) fn crowd(&self) -> usize {
        let timeout = presence_timeout(self.posing.len());
        self.posing.values().filter(|heard| heard.elapsed() < timeout).count()
    }
}

impl Node {
    /// Be in `wanted` (the first takes poses and chat): leave the others, saying goodbye, and
    /// join the new ones, asking the peers heard to be there.
    pub(super) async fn set_regions(&mut self, mut wanted: Vec<RegionId>) {
        let mut unique = BTreeSet::new();
        wanted.retain(|region| unique.insert(*region));
        wanted.truncate(MAX_REGIONS_PER_PEER);
        if !wanted.contains(&PRIVATE) {
            self.left_private_room().await;
        }
        let mut kept = Vec::new();
        for subscription in std::mem::take(&mut self.regions.subscriptions) {
            if wanted.contains(&subscription.region) {
                kept.push(subscription);
            } else {
                self.say_leave(&subscription).await;
            }
        }
        for region in wanted {
            if let Some(at) = kept.iter().position(|subscription| subscription.region == region) {
                self.regions.subscriptions.push(kept.remove(at));
                continue;
            }
            // A private room is entered with its key only: its topic and members come from it,
            // and nobody is asked in who is not one.
            let room = if region == PRIVATE {
                match self.private_room_key().await {
                    Some(key) => Some(key),
                    None => continue,
                }
            } else {
                None
            };
            let (topic, bootstrap) = match &room {
                Some(key) => {
                    let members = key.members.iter().chain([&key.owner]);
                    let members = members.filter_map(|member| iroh::PublicKey::from_bytes(member).ok());
                    (key.topic(), members.filter(|member| *member != self.me).collect())
                }
                None => (region_topic(region), self.directory.peers_in(region)),
            };
            let room = room.map(|key| {
                let cipher = key.cipher();
                (key, cipher)
            });
            let cipher = room.as_ref().map(|(_, cipher)| cipher.clone());
            match subscribe::<RegionMessage>(
                &self.gossip,
                &self.gate,
                topic,
                Scope::Region(region),
                bootstrap,
                self.me,
                &self.topic_out,
                cipher,
            )
            .await
            {
                Ok((sender, task)) => {
                    if let Some((key, _)) = &room {
                        self.hear_members(key);
                    }
                    self.regions.subscriptions.push(Subscription {
                        region,
                        topic,
                        room,
                        sender,
                        neighbours: HashSet::new(),
                        asked: HashSet::new(),
                        _task: task,
                    });
                    let mut lines: Vec<ChatLine> =
                        store::read_tail(&self.paths.chat(region), CHAT_HISTORY).unwrap_or_default();
                    lines.retain(|line| {
                        !self.blocks.contains(line.author.as_bytes()) && !self.hides_agent_key(&line.author)
                    });
                    self.emit(Event::ChatHistory { region, lines }).await;
                }
                Err(error) => self.emit(Event::Notice(error)).await,
            }
        }
        self.regions.sent_pose = None;
        self.regions.posing.clear();
        self.announce().await;
    }

    /// Leaves `region` alone, saying goodbye there.
    pub(super) async fn leave_region(&mut self, region: RegionId) {
        let Some(at) = self.regions.subscriptions.iter().position(|sub| sub.region == region) else { return };
        let subscription = self.regions.subscriptions.remove(at);
        self.say_leave(&subscription).await;
    }

    /// A subscription fell behind and was closed: join again.
    pub(super) async fn rejoin_region(&mut self, region: RegionId) {
        let regions: Vec<RegionId> = self.regions.subscriptions.iter().map(|sub| sub.region).collect();
        if regions.contains(&region) {
            self.regions.subscriptions.retain(|sub| sub.region != region);
            self.set_regions(regions).await;
        }
    }

    /// A gossip neighbour came or went in `region`.
    pub(super) fn region_neighbour(&mut self, region: Option<RegionId>, peer: iroh::PublicKey, up: bool) {
        let Some(subscription) = self.regions.subscriptions.iter_mut().find(|sub| Some(sub.region) == region) else {
            return;
        };
        if up {
            subscription.neighbours.insert(peer);
            // A new neighbour here: let them see us at once, not at the next keepalive.
            self.regions.sent_pose = None;
            self.meeting_newcomer();
            self.region_newcomer_for_cells(peer);
        } else {
            subscription.neighbours.remove(&peer);
            if subscription.neighbours.is_empty() {
                // Alone: anyone heard of may be asked again.
                subscription.asked.clear();
            }
        }
    }

    /// Signs `message` for `region` with a fresh sequence and sends it; the sequence if sent.
    pub(super) async fn broadcast(
        &self,
        sender: &GossipSender,
        region: RegionId,
        message: &RegionMessage,
    ) -> Option<u64> {
        let sequence = self.clock_next();
        match self.seal(region, sequence, message) {
            Ok(bytes) => {
                let _ = sender.broadcast(bytes.into()).await;
                Some(sequence)
            }
            Err(error) => {
                self.emit(Event::Notice(format!("not sent: {error}"))).await;
                None
            }
        }
    }

    /// Says something about us (pose, microphone, look, tip offer) where those who can see us
    /// listen: our cell's topic in a region with cells, else the region's. The bytes sent, if
    /// sent.
    pub(super) async fn say_about_us(&self, message: &RegionMessage) -> Option<usize> {
        let sequence = self.clock_next();
        let (sealed, sender) = match self.cells.own_topic() {
            Some((topic, sender)) => (self.seal_for(topic, None, sequence, message), sender),
            None => {
                let subscription = self.regions.current()?;
                (self.seal(subscription.region, sequence, message), subscription.sender.clone())
            }
        };
        match sealed {
            Ok(bytes) => {
                let sent = bytes.len();
                let _ = sender.broadcast(bytes.into()).await;
                Some(sent)
            }
            Err(error) => {
                self.emit(Event::Notice(format!("not sent: {error}"))).await;
                None
            }
        }
    }

    /// Says goodbye on a subscription's topic (which may no longer be among ours).
    async fn say_leave(&self, subscription: &Subscription) {
        let cipher = subscription.room.as_ref().map(|(_, cipher)| cipher);
        if let Ok(bytes) = self.seal_for(subscription.topic, cipher, self.clock_next(), &RegionMessage::Leave) {
            let _ = subscription.sender.broadcast(bytes.into()).await;
        }
    }

    /// `message` signed for `region`'s topic, and sealed with its key in a private room.
    pub(super) fn seal(&self, region: RegionId, sequence: u64, message: &RegionMessage) -> Result<Vec<u8>, String> {
        let subscription = self.regions.subscriptions.iter().find(|subscription| subscription.region == region);
        let topic = subscription.map_or_else(|| region_topic(region), |subscription| subscription.topic);
        let cipher = subscription.and_then(|subscription| subscription.room.as_ref()).map(|(_, cipher)| cipher);
        self.seal_for(topic, cipher, sequence, message)
    }

    /// `message` signed for `topic`, and sealed with `cipher` when given.
    pub(super) fn seal_for(
        &self,
        topic: TopicId,
        cipher: Option<&RoomCipher>,
        sequence: u64,
        message: &RegionMessage,
    ) -> Result<Vec<u8>, String> {
        let bytes = encode(&self.secret, topic.as_bytes(), sequence, message).map_err(|error| error.to_string())?;
        match cipher {
            Some(cipher) => {
                let sealed = cipher.seal(&bytes);
                if sealed.is_empty() { Err("this machine has no randomness to seal with".into()) } else { Ok(sealed) }
            }
            None => Ok(bytes),
        }
    }

    /// Says `text` in the current region.
    pub(super) async fn chat(&mut self, text: String) {
        let text = text.trim().to_owned();
        if text.is_empty() {
            return;
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            self.emit(Event::Notice(format!("a chat line is at most {MAX_TEXT_CHARS} characters"))).await;
            return;
        }
        let Some(subscription) = self.regions.current() else {
            self.emit(Event::Notice("not in a region yet".into())).await;
            return;
        };
        let region = subscription.region;
        let message = RegionMessage::Chat { name: self.profile.name.clone(), text: text.clone() };
        if let Some(sequence) = self.broadcast(&subscription.sender, region, &message).await {
            let line = ChatLine { region, author: self.me_key, name: self.profile.name.clone(), text, sequence };
            self.keep_chat(&line, true);
            self.emit(Event::Chat(line)).await;
        }
    }

    /// Appends a chat line to the region's log on a blocking thread: a synced write takes
    /// milliseconds, and the node's loop must not wait for the disk while poses stream in.
    /// (Lines are read back sorted by their author's sequence, so the order of appends does not
    /// matter.) Other people's lines stop being kept at [`MAX_CHAT_LOG_BYTES`].
    fn keep_chat(&self, line: &ChatLine, ours: bool) {
        let (path, line, events) = (self.paths.chat(line.region), line.clone(), self.events.clone());
        tokio::task::spawn_blocking(move || {
            let size = std::fs::metadata(&path).map_or(0, |meta| meta.len());
            if !ours && size >= MAX_CHAT_LOG_BYTES {
                return;
            }
            if let Err(error) = store::append(&path, &line) {
                let _ = events.blocking_send(Event::Notice(format!("chat could not be saved: {error}")));
            }
        });
    }

    /// A message believed on a region topic.
    pub(super) async fn heard_in_region(&mut self, region: RegionId, message: Signed<RegionMessage>) {
        let Ok(author) = PublicKey::from_bytes(*message.author.as_bytes()) else { return };
        // Someone we block is neither seen nor heard; their world changes still count. So is an
        // agent the agents shield hides.
        if (self.blocks.contains(author.as_bytes()) || self.hides_agent(&message.author))
            && !matches!(message.body, RegionMessage::Change(_) | RegionMessage::Agent(_))
        {
            return;
        }
        match message.body {
            RegionMessage::Presence(presence) => {
                self.positions.heard(message.author, region, presence.pose.head.position());
                let posing = &mut self.regions.posing;
                if self.regions.subscriptions.first().is_some_and(|current| current.region == region)
                    && (posing.len() < MAX_AUTHORS || posing.contains_key(&message.author))
                    && posing.insert(message.author, Instant::now()).is_none()
                {
                    // Someone new here, perhaps not our neighbour: the polls are said again.
                    self.meeting_newcomer();
                }
                let event = Event::Presence { region, author, sequence: message.sequence, presence };
                // Poses come often and the next one replaces this: drop rather than wait.
                if self.events.try_send(event).is_err() {
                    self.stats.count_dropped_event();
                }
            }
            RegionMessage::Chat { name, text } => {
                let line = ChatLine { region, author, name, text, sequence: message.sequence };
                self.keep_chat(&line, false);
                self.emit(Event::Chat(line)).await;
            }
            RegionMessage::Leave => {
                self.left_cells(&message.author);
                self.stage_left(region, message.author).await;
                self.emit(Event::Left { region, author }).await;
            }
            RegionMessage::Change(bytes) => self.apply_change(bytes),
            RegionMessage::Mic(state) => self.emit(Event::Mic { region, author, state }).await,
            RegionMessage::Look(avatar) => self.emit(Event::Look { region, author, avatar }).await,
            RegionMessage::Tips(offer) => self.emit(Event::Tips { region, author, offer }).await,
            RegionMessage::Screen(screen) => self.heard_screen(region, message.author, message.sequence, screen).await,
            RegionMessage::Stage(stage) => self.heard_stage(region, message.author, stage).await,
            RegionMessage::Meeting(meeting) => self.heard_meeting(region, message.author, meeting),
            RegionMessage::Crowd(summary) => self.heard_summary(region, message.author, summary).await,
            RegionMessage::Agent(card) => self.heard_agent(region, message.author, card).await,
        }
    }

    /// Sends our pose when it is due: when it changed and the crowd's rate allows, or at the
    /// keepalive. Forgets who has not posed for a while.
    pub(super) async fn send_pose(&mut self, now: Instant) {
        let timeout = presence_timeout(self.regions.posing.len());
        self.regions.posing.retain(|_, heard| now.duration_since(*heard) < timeout);
        let (Some(pose), Some(_)) = (self.regions.pose, self.regions.current()) else { return };
        let interval = pose_interval(self.regions.posing.len(), self.regions.pose_bytes.max(120));
        let newcomers = self.regions.sent_pose.is_none();
        let due = match self.regions.sent_pose {
            None => true,
            Some((sent, at)) => {
                let since = now.duration_since(at);
                (sent != pose && since >= interval) || since >= POSE_KEEPALIVE.max(interval)
            }
        };
        if due {
            let presence = Presence { name: self.profile.name.clone(), colour: self.profile.colour, pose };
            if let Some(sent) = self.say_about_us(&RegionMessage::Presence(presence)).await {
                self.regions.pose_bytes = sent;
            }
            self.regions.sent_pose = Some((pose, now));
        }
        // After the pose, so that whoever is new knows who the microphone belongs to.
        self.send_mic(now, newcomers).await;
        self.send_look(now, newcomers).await;
        self.send_tips(now, newcomers).await;
        self.send_agent(now, newcomers).await;
        if newcomers {
            self.screen_newcomer();
            self.stage_newcomer();
            self.meeting_newcomer();
        }
    }

    /// Says how our microphone is set when it changed, when someone new may not know it
    /// (`newcomers`: a new neighbour, a new region), and every [`MIC_KEEPALIVE`].
    async fn send_mic(&mut self, now: Instant, newcomers: bool) {
        let (Some(mic), Some(_)) = (self.regions.mic, self.regions.current()) else { return };
        let due = match self.regions.sent_mic {
            None => true,
            Some((sent, at)) => {
                newcomers || sent != mic || now.duration_since(at) >= about_keepalive(self.regions.posing.len())
            }
        };
        if !due {
            return;
        }
        self.say_about_us(&RegionMessage::Mic(mic)).await;
        self.regions.sent_mic = Some((mic, now));
    }

    /// Blocks or unblocks `key`: at once, someone blocked leaves our view (and our voice's
    /// range at the next pick), and the list is saved.
    pub(super) async fn block(&mut self, key: PublicKey, blocked: bool) {
        match self.blocks.set(key, blocked) {
            Ok(true) => {
                if blocked {
                    if let Ok(peer) = iroh::PublicKey::from_bytes(key.as_bytes()) {
                        self.regions.posing.remove(&peer);
                    }
                    if let Some(region) = self.regions.current().map(|subscription| subscription.region) {
                        self.emit(Event::Left { region, author: key }).await;
                    }
                }
                self.emit(Event::Blocks(self.blocks.list())).await;
            }
            Ok(false) => {}
            Err(why) => self.emit(Event::Notice(why)).await,
        }
    }

    /// Says goodbye in every region.
    pub(super) async fn leave_regions(&mut self) {
        for subscription in std::mem::take(&mut self.regions.subscriptions) {
            self.say_leave(&subscription).await;
        }
    }
}

/// Joins a gossip topic, opens it at the gate (which checks what arrives, see [`super::gate`])
/// and starts the task that passes on its neighbour events.
pub(super) async fn subscribe<T>(
    gossip: &Gossip,
    gate: &Gate,
    topic: TopicId,
    scope: Scope,
    bootstrap: Vec<iroh::PublicKey>,
    me: iroh::PublicKey,
    out: &TopicOut,
    cipher: Option<RoomCipher>,
) -> Result<(GossipSender, TaskGuard), String>
where
    T: Limited + Send + 'static,
    Internal: From<(Scope, Signed<T>)>,
{
    // Open at the gate first, so that nothing arrives unchecked.
    let checks = gate.open::<T>(topic, scope, me, out.clone(), cipher);
    let topic_handle =
        gossip.subscribe(topic, bootstrap).await.map_err(|error| format!("cannot join a gossip topic: {error}"))?;
    let (sender, receiver) = topic_handle.split();
    let task = tokio::spawn(forward(scope, receiver, checks, out.clone()));
    Ok((sender, TaskGuard(task)))
}

/// Reads a topic's events and passes on its neighbours coming and going. Messages were checked
/// and passed on at the gate already; the topic stays open there while this task holds
/// `checks`.
async fn forward<T: Limited>(scope: Scope, mut receiver: GossipReceiver, checks: Arc<TopicGate<T>>, out: TopicOut) {
    let mut tidy = tokio::time::interval(Duration::from_secs(30));
    loop {
        tokio::select! {
            event = receiver.next() => {
                let control = match event {
                    Some(Ok(GossipEvent::Received(_))) | Some(Ok(GossipEvent::Lagged)) => continue,
                    Some(Ok(GossipEvent::NeighborUp(peer))) => Internal::Neighbour { scope, peer, up: true },
                    Some(Ok(GossipEvent::NeighborDown(peer))) => Internal::Neighbour { scope, peer, up: false },
                    Some(Err(_)) | None => {
                        let _ = out.control.send(Internal::Ended(scope));
                        return;
                    }
                };
                if out.control.send(control).is_err() {
                    return;
                }
            }
            _ = tidy.tick() => checks.tidy(),
        }
    }
}
