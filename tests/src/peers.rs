//! Several network nodes in one process: start them offline on loopback, collect what each one
//! hears, and wait for conditions with a deadline.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sanctuary_engine::avatar::AvatarRef;
use sanctuary_engine::shields::{Category, Reach, Shields};
use sanctuary_engine::{ModelRef, Op, PublicKey, RegionId};
use sanctuary_net::{
    AssetStore, ChatLine, Delivery, DirectLine, Event, MicState, NodeConfig, NodeHandle, PoseFrame, Presence,
    RelayChoice, SharedReplica, StatsSnapshot, Status, Ticket, TrustView, spawn_node,
};

/// One node and everything it has heard.
#[derive(Debug)]
pub struct Peer {
    /// The node.
    pub handle: NodeHandle,
    /// Its id.
    pub id: PublicKey,
    /// Its ticket.
    pub ticket: Ticket,
    /// Its data directory.
    pub dir: PathBuf,
    /// The newest presence heard from each person, by region.
    pub presences: HashMap<(RegionId, PublicKey), Presence>,
    /// Near neighbours' pose datagrams, in order: who, their stamp, the pose.
    pub near_poses: Vec<(PublicKey, u64, PoseFrame)>,
    /// The far crowd as the node last told it: the dots, and how many they count in all.
    pub far: Option<(Vec<sanctuary_net::cells::FarDot>, u64)>,
    /// Who left.
    pub left: Vec<PublicKey>,
    /// Microphone states heard, in order: who, and how it was set.
    pub mics: Vec<(PublicKey, MicState)>,
    /// Whom it blocks, as it last said.
    pub blocks: Vec<PublicKey>,
    /// Chat lines heard (and said).
    pub chat: Vec<ChatLine>,
    /// Stored chat handed back on entering regions.
    pub history: Vec<ChatLine>,
    /// Private messages sent and received.
    pub direct: Vec<DirectLine>,
    /// Stored private messages handed back at start.
    pub direct_history: Vec<DirectLine>,
    /// What became of private messages sent.
    pub outcomes: Vec<(u64, Delivery)>,
    /// The world it holds.
    pub world: SharedReplica,
    /// Its asset store.
    pub assets: AssetStore,
    /// Its own changes made.
    pub built: Vec<Op>,
    /// Its own changes refused, and why.
    pub refused: Vec<(Op, String)>,
    /// Syncs finished: with whom, changes received, changes sent.
    pub synced: Vec<(PublicKey, usize, usize)>,
    /// Models imported.
    pub imported: Vec<ModelRef>,
    /// Models fetched and checked.
    pub ready: Vec<[u8; 32]>,
    /// Models that failed, and why.
    pub failed: Vec<([u8; 32], String)>,
    /// Progress reports of model fetches: (done, total).
    pub progress: Vec<(u64, u64)>,
    /// Notices.
    pub notices: Vec<String>,
    /// The newest status.
    pub status: Option<Status>,
    /// The newest trust worked out.
    pub trust: Option<Arc<TrustView>>,
    /// The shields as the node last said.
    pub shields: Option<Shields>,
    /// Where the people it has a word with are, as the node last said.
    pub whereabouts: Vec<sanctuary_net::Whereabouts>,
    /// The volumes (and mutes) kept from before, as the node said at its start.
    pub volumes: Option<Vec<(PublicKey, f32)>>,
    /// What each person was last said to wear.
    pub looks: HashMap<PublicKey, Option<AvatarRef>>,
    /// The offer each person last said they take tips through.
    pub tips: HashMap<PublicKey, Option<String>>,
    /// The AI agents heard, and who runs each.
    pub agents: HashMap<PublicKey, PublicKey>,
    /// What we wear, as the node last said.
    pub wearing: Option<Option<AvatarRef>>,
    /// Avatars that could not be put on, and why.
    pub avatar_refused: Vec<String>,
    /// The screen as the node last said.
    pub screen: Option<sanctuary_net::ScreenView>,
    /// The film showing, as the node last handed it out.
    pub film: Option<sanctuary_net::films::FilmSource>,
    /// Films refused and screen actions refused, and why.
    pub screen_refused: Vec<String>,
    /// The lecture hall's stage as the node last said.
    pub stage: Option<sanctuary_net::StageView>,
    /// The slides handed out, in order: their hash and bytes.
    pub slides: Vec<([u8; 32], Vec<u8>)>,
    /// Slides, stage actions and hands refused, and why.
    pub stage_refused: Vec<String>,
    /// The meeting room's polls as the node last said.
    pub polls: Vec<sanctuary_net::PollView>,
    /// Polls, votes and exports refused, and why.
    pub poll_refused: Vec<String>,
    /// Where poll results were written.
    pub exported: Vec<PathBuf>,
    /// The meeting room's whiteboard as the node last said.
    pub board: Vec<sanctuary_net::whiteboard::Stroke>,
    /// Strokes and clears refused, and why.
    pub board_refused: Vec<String>,
    /// Its private room and those it may enter, as last told.
    pub rooms: Option<sanctuary_net::RoomsView>,
    /// Private rooms' doors that refused it, and why.
    pub room_refused: Vec<String>,
    /// What it uploads.
    pub uploads: sanctuary_net::uploads::Uploads,
    /// What it keeps and for whom (a home node), as last worked out.
    pub hosting: Option<Box<sanctuary_net::hosting::HostingPlan>>,
    /// Contribution records told (ours, and those asked for): whose, the sum, the checked
    /// receipts, and whether their node answered.
    pub contributions: Vec<Contribution>,
}

/// A contribution record as the node told it.
pub type Contribution =
    (PublicKey, sanctuary_net::receipts::Contribution, Arc<Vec<sanctuary_net::receipts::SignedReceipt>>, bool);

/// Standing at `x` along the lobby's line z = -4, head at 1.7 m, hands at the sides.
pub fn standing(x: f32) -> PoseFrame {
    use sanctuary_net::QuantisedTransform;
    let at = |dx: f32| QuantisedTransform::new(glam::Vec3::new(x + dx, 1.7, -4.0), glam::Quat::IDENTITY);
    PoseFrame { head: at(0.0), left_hand: at(-0.3), right_hand: at(0.3) }
}

/// An offline node configuration (relays disabled, no LAN discovery) keeping its files in `dir`.
pub fn offline_config(dir: &Path, name: &str, join: Option<&Ticket>) -> NodeConfig {
    let mut config = NodeConfig::new(dir);
    config.relays = RelayChoice::Disabled;
    config.lan_discovery = false;
    config.name = Some(name.to_owned());
    config.colour = Some([200, 100, 50]);
    config.join = join.cloned().into_iter().collect();
    config
}

impl Peer {
    /// Starts a node on the current tokio runtime and waits until it is up.
    pub async fn start(config: NodeConfig) -> Peer {
        let dir = config.data_dir.clone();
        let mut handle = spawn_node(&tokio::runtime::Handle::current(), config);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let event = tokio::time::timeout_at(deadline.into(), handle.next_event())
                .await
                .expect("the node starts within 20 s")
                .expect("the node runs");
            match event {
                Event::Started { id, ticket, world, assets, uploads, .. } => {
                    let ticket = ticket.parse().expect("the node's own ticket parses");
                    return Peer {
                        handle,
                        id,
                        ticket,
                        dir,
                        presences: HashMap::new(),
                        near_poses: Vec::new(),
                        far: None,
                        left: Vec::new(),
                        mics: Vec::new(),
                        blocks: Vec::new(),
                        chat: Vec::new(),
                        history: Vec::new(),
                        direct: Vec::new(),
                        direct_history: Vec::new(),
                        outcomes: Vec::new(),
                        world,
                        assets,
                        built: Vec::new(),
                        refused: Vec::new(),
                        synced: Vec::new(),
                        imported: Vec::new(),
                        ready: Vec::new(),
                        failed: Vec::new(),
                        progress: Vec::new(),
                        notices: Vec::new(),
                        status: None,
                        trust: None,
                        shields: None,
                        whereabouts: Vec::new(),
                        volumes: None,
                        looks: HashMap::new(),
                        tips: HashMap::new(),
                        agents: HashMap::new(),
                        wearing: None,
                        avatar_refused: Vec::new(),
                        screen: None,
                        film: None,
                        screen_refused: Vec::new(),
                        stage: None,
                        slides: Vec::new(),
                        stage_refused: Vec::new(),
                        polls: Vec::new(),
                        poll_refused: Vec::new(),
                        exported: Vec::new(),
                        board: Vec::new(),
                        board_refused: Vec::new(),
                        rooms: None,
                        room_refused: Vec::new(),
                        uploads,
                        hosting: None,
                        contributions: Vec::new(),
                    };
                }
                Event::Failed(error) => panic!("the node failed to start: {error}"),
                _ => {}
            }
        }
    }

    /// Takes every event waiting.
    pub fn pump(&mut self) {
        while let Some(event) = self.handle.try_event() {
            match event {
                Event::Presence { region, author, presence, .. } => {
                    self.presences.insert((region, author), presence);
                }
                Event::NearPose { author, stamp, pose, .. } => self.near_poses.push((author, stamp, pose)),
                Event::FarCrowd { dots, people, .. } => self.far = Some((dots, people)),
                Event::Left { author, .. } => self.left.push(author),
                Event::Mic { author, state, .. } => self.mics.push((author, state)),
                Event::Blocks(keys) => self.blocks = keys,
                Event::Chat(line) => self.chat.push(line),
                Event::ChatHistory { lines, .. } => self.history.extend(lines),
                Event::Direct(line) => self.direct.push(line),
                Event::DirectHistory(lines) => self.direct_history.extend(lines),
                Event::DirectOutcome { id, outcome, .. } => self.outcomes.push((id, outcome)),
                Event::Failed(error) => panic!("node failed: {error}"),
                // The node signs our name into the world by itself; tests count what they built.
                Event::Built(Op::Profile { .. }) => {}
                Event::Built(op) => self.built.push(op),
                Event::BuildRefused { op, reason } => self.refused.push((op, reason)),
                Event::Synced { peer, received, sent } => self.synced.push((peer, received, sent)),
                Event::Imported { model, .. } => self.imported.push(model),
                Event::AssetReady { hash, .. } => self.ready.push(hash),
                Event::AssetFailed { hash, reason } => self.failed.push((hash, reason)),
                Event::AssetProgress { done, total, .. } => self.progress.push((done, total)),
                Event::Notice(notice) => self.notices.push(notice),
                Event::Status(status) => self.status = Some(status),
                Event::Trust(view) => self.trust = Some(view),
                Event::Shields(shields) => self.shields = Some(shields),
                Event::Whereabouts(online) => self.whereabouts = online,
                Event::Volumes(kept) => self.volumes = Some(kept),
                Event::Look { author, avatar, .. } => {
                    self.looks.insert(author, avatar);
                }
                Event::Tips { author, offer, .. } => {
                    self.tips.insert(author, offer);
                }
                Event::Agent { author, operator, .. } => {
                    self.agents.insert(author, operator);
                }
                Event::Wearing { avatar, .. } => self.wearing = Some(avatar),
                Event::AvatarRefused(reason) => self.avatar_refused.push(reason),
                Event::Screen(view) => self.screen = Some(view),
                Event::Film(source) => self.film = Some(source),
                Event::ScreenRefused(reason) => self.screen_refused.push(reason),
                Event::Stage(view) => self.stage = Some(view),
                Event::Slide { hash, bytes } => self.slides.push((hash, bytes)),
                Event::StageRefused(reason) => self.stage_refused.push(reason),
                Event::Polls(polls) => self.polls = polls,
                Event::PollRefused(reason) => self.poll_refused.push(reason),
                Event::PollExported(path) => self.exported.push(path),
                Event::Board(strokes) => self.board = strokes,
                Event::BoardRefused(reason) => self.board_refused.push(reason),
                Event::Rooms(view) => self.rooms = Some(view),
                Event::RoomRefused(reason) => self.room_refused.push(reason),
                Event::Hosting(plan) => self.hosting = Some(plan),
                Event::Contribution { person, contribution, receipts, reached } => {
                    self.contributions.push((person, contribution, receipts, reached))
                }
                _ => {}
            }
        }
    }

    /// The pose last heard from `author` in the lobby.
    pub fn pose_of(&self, author: PublicKey) -> Option<PoseFrame> {
        self.presences.get(&(RegionId::Lobby, author)).map(|presence| presence.pose)
    }

    /// Lowers the private-message shield so that strangers' messages come in (the default
    /// refuses them), for tests of delivery itself.
    pub fn take_messages_from_strangers(&self) {
        let mut shields = Shields::default();
        shields.set(Category::Direct, Reach::Everyone);
        self.handle.send(sanctuary_net::Command::Shields(shields));
    }

    /// The counters of what it received and refused.
    pub fn stats(&self) -> StatsSnapshot {
        self.handle.stats()
    }
}

/// Pumps every peer until `done` holds for all of them, or panics with `what` after `limit`.
/// Returns how long it took.
pub async fn wait_until(
    peers: &mut [&mut Peer],
    limit: Duration,
    what: &str,
    mut done: impl FnMut(&Peer) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        for peer in peers.iter_mut() {
            peer.pump();
        }
        if peers.iter().all(|peer| done(peer)) {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
