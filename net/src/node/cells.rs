//! The cells of the region we are in (see [`crate::cells`]): joining the topics of the block
//! around us as we move, saying what is about us on our own cell's, and reporting our cell to
//! the region when we rank lowest in it.
//!
//! Bounds: at most [`MAX_BLOCK`] cell topics, each through its own inbox; the people heard in
//! them, at most [`MAX_AUTHORS`] for [`presence_timeout`]; the far crowd, at most
//! [`crate::cells::MAX_FAR_CELLS`] summaries, and [`MAX_FAR_DOTS`] dots told to the program;
//! at most [`ASKS_PER_SECOND`] peers asked into each cell topic a second.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use glam::Vec3;
use iroh_gossip::TopicId;
use iroh_gossip::api::GossipSender;
use sanctuary_engine::RegionId;

use super::actor::{Node, Scope, TaskGuard};
use super::presence::subscribe;
use super::{Event, presence_timeout};
use crate::cells::{
    Block, Cell, CrowdSummary, Dot, FarCrowd, FarDot, MAX_BLOCK, MAX_DOTS, cell_topic, has_cells, rank,
};
use crate::inbox::MAX_AUTHORS;
use crate::wire::{RegionMessage, Signed};

/// The most far dots told to the program: the nearest cells' first.
pub const MAX_FAR_DOTS: usize = 4_096;
/// How many peers may be asked into one of our cell topics each second (several arrive at once
/// in a new cell; a flood of made-up summaries dials no more than this).
const ASKS_PER_SECOND: u8 = 4;
/// How often the program is told of the far crowd (when it changed).
const FAR_TELL_INTERVAL: Duration = Duration::from_secs(1);
/// The most peers given to a new cell topic to join through.
const CELL_BOOTSTRAP: usize = 8;
/// A cell topic with fewer gossip neighbours than this asks each new neighbour on the region's
/// topic in.
const WANTED_CELL_NEIGHBOURS: usize = 2;
/// The most new region neighbours waiting to be asked into our cell topics.
const MAX_NEWCOMERS: usize = 16;

/// One cell topic we listen on.
struct CellTopic {
    cell: Cell,
    topic: TopicId,
    sender: GossipSender,
    neighbours: HashSet<iroh::PublicKey>,
    /// When the current second of asks began, and how many were asked in it.
    asked: (Option<Instant>, u8),
    _task: TaskGuard,
}

/// Someone heard on a cell topic.
#[derive(Debug, Clone, Copy)]
struct Member {
    cell: Cell,
    position: Vec3,
    colour: [u8; 3],
    heard: Instant,
}

/// The cells of the current region, when it has them.
#[derive(Default)]
pub(super) struct Cells {
    region: Option<RegionId>,
    block: Option<Block>,
    topics: Vec<CellTopic>,
    /// The cell we are in: what is about us is said on its topic.
    own: Option<Cell>,
    /// The people heard on our cells' topics lately, and where.
    members: HashMap<iroh::PublicKey, Member>,
    /// Far cells, as their reporters summed them up.
    pub(super) far: FarCrowd,
    /// When we last reported our cell; `None` reports at the next tick if we rank lowest.
    sent_summary: Option<Instant>,
    /// The cell we reported last: withdrawn when we leave it.
    reported: Option<Cell>,
    summary_bytes: usize,
    /// What the program was last told of the far crowd, and when.
    told: Option<(Vec<FarDot>, u64, Instant)>,
    /// When the people heard and the far cells were last gone through for who fell silent.
    tidied: Option<Instant>,
    /// New neighbours on the region's topic, to be asked into the cell topics that have few.
    newcomers: Vec<iroh::PublicKey>,
}

impl Cells {
    /// Our own cell's topic and sender, when we are in a region with cells.
    pub(super) fn own_topic(&self) -> Option<(TopicId, GossipSender)> {
        let own = self.own?;
        self.topics.iter().find(|topic| topic.cell == own).map(|topic| (topic.topic, topic.sender.clone()))
    }

    /// How many cell topics we listen on.
    pub(super) fn listening(&self) -> usize {
        self.topics.len()
    }

    /// Peers known to be in `cell`: people heard there, and its reporter.
    fn known_in(&self, cell: Cell, me: iroh::PublicKey) -> Vec<iroh::PublicKey> {
        let mut peers: Vec<iroh::PublicKey> =
            self.members.iter().filter(|(_, member)| member.cell == cell).map(|(peer, _)| *peer).collect();
        if let Some(peer) = self.far.reporter(cell).and_then(|reporter| iroh::PublicKey::from_bytes(&reporter).ok()) {
            peers.push(peer);
        }
        peers.retain(|peer| *peer != me);
        peers.sort_unstable();
        peers.dedup();
        peers.truncate(CELL_BOOTSTRAP);
        peers
    }

    /// Whether `cell` is one of ours and the message kind belongs on a cell topic: what is about
    /// its author (pose, microphone, look, tip offer, agent's card). Anything else there is not
    /// taken.
    fn takes(&self, region: RegionId, cell: Cell, body: &RegionMessage) -> bool {
        self.region == Some(region)
            && self.topics.iter().any(|topic| topic.cell == cell)
            && matches!(
                body,
                RegionMessage::Presence(_)
                    | RegionMessage::Mic(_)
                    | RegionMessage::Look(_)
                    | RegionMessage::Tips(_)
                    | RegionMessage::Agent(_)
            )
    }
}

impl Node {
    /// Joins the topics of the block around us and leaves the others, as we move or change
    /// region (around the region's origin until we have a pose); forgets who has not been heard
    /// lately.
    pub(super) async fn update_cells(&mut self, now: Instant) {
        // Once a second, not every tick: thousands may be heard.
        if self.cells.tidied.is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(1)) {
            self.cells.tidied = Some(now);
            let timeout = presence_timeout(self.cells.members.len());
            self.cells.members.retain(|_, member| now.saturating_duration_since(member.heard) < timeout);
            self.cells.far.expire(now);
        }
        let region = self.regions.current().filter(|sub| sub.room.is_none()).map(|sub| sub.region);
        let region = region.filter(|region| has_cells(*region));
        // Someone who has not said where they are (a home node) listens at the region's middle.
        let head = self.regions.pose.map_or(Vec3::ZERO, |pose| pose.head.position());
        let Some(region) = region else {
            if self.cells.region.is_some() {
                self.cells = Cells::default();
            }
            return;
        };
        if self.cells.region != Some(region) {
            self.cells = Cells { region: Some(region), ..Cells::default() };
        }
        let own = Cell::of(region, head);
        if self.cells.own != Some(own) {
            self.cells.own = Some(own);
            if let Some(left) = self.cells.reported.take().filter(|cell| *cell != own) {
                let withdrawal = CrowdSummary { cell: left, count: 0, dots: Vec::new() };
                self.say_summary(region, withdrawal).await;
            }
            // New people may hear us here: they learn our look and microphone, and our cell may
            // need its reporter.
            self.regions.sent_pose = None;
            self.cells.sent_summary = None;
        }
        let block = Block::around(region, head, self.cells.block);
        if self.cells.block == Some(block) && self.cells.topics.len() == block.count() {
            return;
        }
        self.cells.block = Some(block);
        let wanted = block.cells();
        self.cells.topics.retain(|topic| wanted.contains(&topic.cell));
        for cell in wanted {
            if self.cells.topics.iter().any(|topic| topic.cell == cell) || self.cells.topics.len() >= MAX_BLOCK {
                continue;
            }
            let topic = cell_topic(region, cell);
            // Those known to be there, then our neighbours on the region's topic: we are
            // connected to them and they are often nearby. Whoever is not on the cell's topic
            // ignores the join. (A reporter heard only through others may be unreachable: where
            // there is no relay and no address lookup, only gossip's own messages carry
            // addresses.)
            let mut bootstrap = self.cells.known_in(cell, self.me);
            if let Some(subscription) = self.regions.current() {
                let room = CELL_BOOTSTRAP.saturating_sub(bootstrap.len());
                let others = subscription.neighbours.iter().filter(|peer| !bootstrap.contains(peer)).take(room);
                let others: Vec<iroh::PublicKey> = others.copied().collect();
                bootstrap.extend(others);
            }
            let scope = Scope::Cell(region, cell);
            match subscribe::<RegionMessage>(
                &self.gossip,
                &self.gate,
                topic,
                scope,
                bootstrap,
                self.me,
                &self.topic_out,
                None,
            )
            .await
            {
                Ok((sender, task)) => self.cells.topics.push(CellTopic {
                    cell,
                    topic,
                    sender,
                    neighbours: HashSet::new(),
                    asked: (None, 0),
                    _task: task,
                }),
                Err(error) => self.emit(Event::Notice(error)).await,
            }
        }
    }

    /// A message believed on a cell's topic: what is about its author is taken as if said on
    /// the region's; where they are is noted for our cell's summary and for finding people.
    pub(super) async fn heard_in_cell(&mut self, region: RegionId, cell: Cell, message: Signed<RegionMessage>) {
        if !self.cells.takes(region, cell, &message.body) {
            self.stats.count_malformed();
            return;
        }
        if let RegionMessage::Presence(presence) = &message.body {
            let position = presence.pose.head.position();
            let here = Cell::of(region, position);
            // Heard here: anything it reported of another cell is past.
            self.cells.far.moved(message.author.as_bytes(), here);
            let members = &mut self.cells.members;
            if members.len() < MAX_AUTHORS || members.contains_key(&message.author) {
                let member = Member { cell: here, position, colour: presence.colour, heard: Instant::now() };
                members.insert(message.author, member);
            }
        }
        self.heard_in_region(region, message).await;
    }

    /// A gossip neighbour came or went on a cell's topic.
    pub(super) fn cell_neighbour(&mut self, region: RegionId, cell: Cell, peer: iroh::PublicKey, up: bool) {
        if self.cells.region != Some(region) {
            return;
        }
        let Some(topic) = self.cells.topics.iter_mut().find(|topic| topic.cell == cell) else { return };
        if up {
            topic.neighbours.insert(peer);
            // Let them see us at once, not at the next keepalive.
            self.regions.sent_pose = None;
        } else {
            topic.neighbours.remove(&peer);
        }
    }

    /// A cell topic's subscription ended: it is joined again at the next tick.
    pub(super) async fn rejoin_cell(&mut self, region: RegionId, cell: Cell) {
        if self.cells.region == Some(region) {
            self.cells.topics.retain(|topic| topic.cell != cell);
            self.cells.block = None;
        }
    }

    /// A cell's summary heard on the region's topic: kept for the far crowd, and its reporter,
    /// someone known to be in that cell, asked to join us there if it is one of ours, this
    /// second's asks are not spent, and either we do not hear its presence there or it counts
    /// no more than half of those we know there (it does not hear us). Two groups in one cell
    /// that do not hear each other merge this way, and someone who came back is found again
    /// (gossip may still count their old connection a neighbour, and we may still remember
    /// their presence from before, so neither is proof that they hear us).
    pub(super) async fn heard_summary(&mut self, region: RegionId, reporter: iroh::PublicKey, summary: CrowdSummary) {
        if self.cells.region != Some(region) || reporter == self.me {
            return;
        }
        let cell = summary.cell;
        let counted = usize::try_from(summary.count).unwrap_or(usize::MAX);
        let now = Instant::now();
        self.cells.far.heard(region, *reporter.as_bytes(), summary, now);
        let Some(topic) = self.cells.topics.iter_mut().find(|topic| topic.cell == cell) else { return };
        let heard_there = self.cells.members.get(&reporter).is_some_and(|member| member.cell == cell);
        // Counted only for a reporter we hear there (few, and rate-limited): a stream of fresh
        // keys' summaries costs no pass over everyone heard.
        let misses_us = || {
            let known_there = self.cells.members.values().filter(|member| member.cell == cell).count()
                + usize::from(self.cells.own == Some(cell));
            counted.saturating_mul(2) <= known_there
        };
        if !heard_there || misses_us() {
            if topic.asked.0.is_none_or(|began| now.saturating_duration_since(began) >= Duration::from_secs(1)) {
                topic.asked = (Some(now), 0);
            }
            if topic.asked.1 >= ASKS_PER_SECOND {
                return;
            }
            topic.asked.1 += 1;
            let _ = topic.sender.join_peers(vec![reporter]).await;
        }
    }

    /// Someone left the region: their report and place are forgotten, and they are no longer
    /// counted a neighbour in our cells (gossip may not have noticed their connection go yet;
    /// should they come back, their summary asks them in again).
    pub(super) fn left_cells(&mut self, author: &iroh::PublicKey) {
        self.cells.members.remove(author);
        self.cells.far.forget(author.as_bytes());
        for topic in &mut self.cells.topics {
            topic.neighbours.remove(author);
        }
    }

    /// A new neighbour on the region's topic: our cell's summary goes out again soon, so that
    /// whoever is new there finds our cell, and they are asked into our cell topics that have
    /// few neighbours (at the next tick).
    pub(super) fn region_newcomer_for_cells(&mut self, peer: iroh::PublicKey) {
        self.cells.sent_summary = None;
        if self.cells.newcomers.len() < MAX_NEWCOMERS && !self.cells.newcomers.contains(&peer) {
            self.cells.newcomers.push(peer);
        }
    }

    /// Asks the new neighbours on the region's topic into each cell topic of ours with fewer
    /// than [`WANTED_CELL_NEIGHBOURS`]: a peer that came back, or one whose cell's reporter it
    /// cannot reach, joins its cells through whoever it is connected to.
    async fn ask_newcomers_into_cells(&mut self) {
        if self.cells.newcomers.is_empty() {
            return;
        }
        let newcomers = std::mem::take(&mut self.cells.newcomers);
        for topic in self.cells.topics.iter().filter(|topic| topic.neighbours.len() < WANTED_CELL_NEIGHBOURS) {
            let _ = topic.sender.join_peers(newcomers.clone()).await;
        }
    }

    /// Says a cell's summary on the region's topic.
    async fn say_summary(&mut self, region: RegionId, summary: CrowdSummary) {
        if let Some(sender) = self.regions.current().map(|sub| sub.sender.clone())
            && let Ok(bytes) = self.seal(region, self.clock_next(), &RegionMessage::Crowd(summary))
        {
            self.cells.summary_bytes = bytes.len();
            let _ = sender.broadcast(bytes.into()).await;
        }
    }

    /// Reports our cell on the region's topic when we rank lowest among those we hear in it,
    /// at the pace [`crate::cells::summary_interval`] sets; tells the program of the far crowd
    /// when it changed.
    pub(super) async fn cells_tick(&mut self, now: Instant) {
        self.ask_newcomers_into_cells().await;
        let (Some(region), Some(own), Some(pose)) = (self.cells.region, self.cells.own, self.regions.pose) else {
            return;
        };
        let interval = crate::cells::summary_interval(self.cells.far.len() + 1, self.cells.summary_bytes.max(200));
        let due = self.cells.sent_summary.is_none_or(|at| now.saturating_duration_since(at) >= interval);
        if due {
            self.cells.sent_summary = Some(now);
            let mine = rank(self.me.as_bytes(), region, own);
            let mut here: Vec<(&iroh::PublicKey, &Member)> =
                self.cells.members.iter().filter(|(_, member)| member.cell == own).collect();
            if here.iter().all(|(peer, _)| rank(peer.as_bytes(), region, own) > mine) {
                // The most recently heard first: if the cell holds more than the dots, those
                // shown are the ones moving.
                here.sort_unstable_by_key(|(_, member)| std::cmp::Reverse(member.heard));
                let me = Dot { at: own.dot(pose.head.position()), colour: self.profile.colour };
                let others = here.iter().map(|(_, member)| Dot { at: own.dot(member.position), colour: member.colour });
                let dots: Vec<Dot> = std::iter::once(me).chain(others).take(MAX_DOTS).collect();
                let count = u32::try_from(here.len() + 1).unwrap_or(u32::MAX).min(crate::cells::MAX_CELL_COUNT);
                let summary = CrowdSummary { cell: own, count, dots };
                self.say_summary(region, summary).await;
                self.cells.reported = Some(own);
            } else {
                self.cells.reported = None;
            }
        }
        let told_lately =
            self.cells.told.as_ref().is_some_and(|(_, _, at)| now.saturating_duration_since(*at) < FAR_TELL_INTERVAL);
        if told_lately {
            return;
        }
        let (mut dots, people) = self.cells.far.outside(self.cells.block.as_ref());
        let head = pose.head.position();
        dots.sort_by(|a, b| a.position.distance_squared(head).total_cmp(&b.position.distance_squared(head)));
        dots.truncate(MAX_FAR_DOTS);
        let changed = self.cells.told.as_ref().is_none_or(|(told, count, _)| *told != dots || *count != people);
        if changed {
            self.emit(Event::FarCrowd { region, dots: dots.clone(), people }).await;
        }
        self.cells.told = Some((dots, people, now));
    }
}
