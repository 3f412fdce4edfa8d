//! The node: an iroh endpoint and router on a tokio runtime of its own, one module per
//! protocol, and an actor that routes between them. The program talks to it only through a
//! [`NodeHandle`]: commands in, events out, never a blocking call.
//!
//! - `actor`: the task that owns the node: it starts everything, then `select!`s over commands,
//!   helper tasks, mDNS and a 25 ms tick, and hands each to the module it belongs to.
//! - `presence`: region topics (poses, chat, leaving, world changes passed on).
//! - `directory`: the world topic (who is in which region), and asking peers into our regions.
//! - `outbox`: sending private messages until they are acknowledged
//!   (receiving them is [`crate::direct`]).
//! - `world`: our own changes, syncing with neighbours, and fetching and keeping models.
//!
//! Each module keeps its own state and its own bounds; ARCHITECTURE.md lists them.

mod actor;
mod agents;
mod avatar;
mod blocks;
mod board;
mod cells;
mod directory;
pub mod export;
mod gate;
mod links;
mod meeting;
mod near;
mod outbox;
mod presence;
mod receipts;
mod rooms;
mod sale;
mod screen;
mod stage;
mod trust;
mod voice;
mod volumes;

pub use blocks::MAX_BLOCKS;
pub use cells::MAX_FAR_DOTS;
pub use meeting::PollView;
pub use near::{
    MAX_NEAR, MAX_NEAR_CONNECTIONS, NEAR_DISTANCE, NEAR_KEEPALIVE, NEAR_POSE_INTERVAL, POSES_PER_NEIGHBOUR,
};
pub use receipts::read_record;
pub use rooms::RoomsView;
pub use sale::{ANSWER_TIMEOUT as SALE_ANSWER_TIMEOUT, HostingOffer, MAX_INVOICE_CHARS, SaleOffer};
pub use screen::ScreenView;
pub use stage::StageView;
pub(crate) use trust::Door;
pub use trust::TrustView;
pub use voice::{
    DATAGRAMS_PER_SPEAKER, HEARING_DISTANCE, Hearing, MAX_LISTENERS, MAX_MEMBERS, MAX_ON_STAGE, MAX_SPEAKERS,
    MAX_STAGE_LISTENERS, MAX_VOICE_DATAGRAM, VOICE_QUEUE, VoiceDatagram, VoiceSender,
};
pub use volumes::{MAX_KEPT_VOLUMES, MAX_PERSON_VOLUME};
mod world;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use iroh_gossip::TopicId;
use iroh_tickets::endpoint::EndpointTicket;
use sanctuary_engine::avatar::AvatarRef;
use sanctuary_engine::shields::Shields;
use sanctuary_engine::{ModelRef, ModelSummary, Op, ParcelCoord, PublicKey, RegionId};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::assets::AssetStore;
use crate::inbox::{NetStats, StatsSnapshot};
use crate::replica::SharedReplica;
use crate::wire::{MAX_NAME_CHARS, MicState, PoseFrame, Presence};
use actor::Node;
pub(crate) use blocks::Blocks;
pub(crate) use outbox::OutboxEntry;

/// The most a client receives of other people's poses, whatever the crowd (P2 of TARGETS.md):
/// senders slow down as the region fills so that the sum stays below it.
pub const DOWNLINK_BUDGET_BITS_PER_SECOND: u64 = 1_000_000;
/// The fastest pose rate: 20 a second.
pub const FASTEST_POSE_INTERVAL: Duration = Duration::from_millis(50);
/// A pose is sent at least this often even when nothing moved, so that newcomers see everyone
/// and silence can mean "gone" (less often in a crowd: see [`pose_interval`]).
pub const POSE_KEEPALIVE: Duration = Duration::from_secs(2);
/// The slowest pose rate, in the densest crowd (about 5,000 people in one block of cells):
/// receivers wait longer for them there (see [`presence_timeout`]).
pub const SLOWEST_POSE_INTERVAL: Duration = Duration::from_secs(30);
/// The slowest the microphone's state and the avatar worn are said again, in the densest crowd
/// (newcomers hear both at once all the same).
pub const SLOWEST_ABOUT_KEEPALIVE: Duration = Duration::from_secs(300);
/// How often our microphone's state is said again though it did not change (for anyone who
/// missed it).
pub const MIC_KEEPALIVE: Duration = Duration::from_secs(10);

/// How often the avatar worn is said again when nothing changed, for whoever missed it.
pub const LOOK_KEEPALIVE: Duration = Duration::from_secs(10);

/// How often the tip offer is said again when nothing changed (newcomers hear it at once).
pub const TIPS_KEEPALIVE: Duration = Duration::from_secs(30);

/// How often an agent says its card again when nothing changed (newcomers hear it at once,
/// right after the pose, so that it is labelled from the start).
pub const AGENT_KEEPALIVE: Duration = Duration::from_secs(30);
/// Someone not heard from for this long has left, in a crowd small enough for a pose every
/// 2.5 s or more often (see [`presence_timeout`] for a denser one).
pub const PRESENCE_TIMEOUT: Duration = Duration::from_secs(7);
/// The pose message size [`presence_timeout`] assumes: more than a signed presence with a long
/// name takes, so that no sender in the crowd is slower than receivers expect.
const TIMEOUT_POSE_BYTES: usize = 256;

/// How long someone not heard from is still believed there when `others` people share the cells
/// we listen on: [`PRESENCE_TIMEOUT`] in a small crowd; in a dense one, where honest senders
/// pose only every few seconds ([`pose_interval`]), twice their interval and two seconds more,
/// so that one lost pose does not make anyone vanish. Whoever counts the crowd counts it over
/// this same window, so that a dense crowd does not look smaller for being slow.
pub fn presence_timeout(others: usize) -> Duration {
    let interval = pose_interval(others, TIMEOUT_POSE_BYTES);
    (interval * 2 + Duration::from_secs(2)).max(PRESENCE_TIMEOUT)
}
/// Bytes a pose costs on the wire beyond its message: gossip framing and QUIC/UDP/IP headers.
const POSE_OVERHEAD_BYTES: u64 = 64;

/// What the near neighbours' pose datagrams may take of a downlink at most: [`MAX_NEAR`] people
/// at 20 a second, each datagram with about 48 bytes of QUIC, UDP and IP around it.
pub const NEAR_DOWNLINK_BITS_PER_SECOND: u64 =
    MAX_NEAR as u64 * 20 * (crate::near_pose::POSE_DATAGRAM_BYTES as u64 + 48) * 8;

/// The time between two signed poses on gossip when `others` people share the region and a pose
/// message is `message_bytes` long: 20 a second while the crowd is small, slower as it grows, so
/// that everyone's poses together stay within 60 % of what [`DOWNLINK_BUDGET_BITS_PER_SECOND`]
/// leaves beside the near neighbours' datagrams ([`NEAR_DOWNLINK_BITS_PER_SECOND`]; 10 % goes to
/// everyone's microphone and look, see [`about_keepalive`], 10 % (100 kbit/s) to the far crowd's
/// summaries, and the rest is left for chat and the world topic). `others` is the crowd of the
/// cells we listen on (see [`crate::cells`]), or of the whole region where it has no cells.
/// Never slower than [`SLOWEST_POSE_INTERVAL`]: past about 5,000 people in one block of cells,
/// the budget is passed.
pub fn pose_interval(others: usize, message_bytes: usize) -> Duration {
    let bits = (message_bytes as u64 + POSE_OVERHEAD_BYTES) * 8;
    let share = gossip_share(6) / (others.max(1) as u64);
    let interval = Duration::from_secs_f64(bits as f64 / share.max(1) as f64);
    interval.clamp(FASTEST_POSE_INTERVAL, SLOWEST_POSE_INTERVAL)
}

/// Tenths of what the downlink budget leaves beside the near neighbours' datagrams.
fn gossip_share(tenths: u64) -> u64 {
    DOWNLINK_BUDGET_BITS_PER_SECOND.saturating_sub(NEAR_DOWNLINK_BITS_PER_SECOND) * tenths / 10
}

/// How often our microphone's state and the avatar we wear are said again when nothing changed,
/// with `others` in the crowd: every [`MIC_KEEPALIVE`] in a small one, less often as it grows so
/// that everyone's two such messages (about 200 bytes each with their framing) take at most a
/// tenth of what the near datagrams leave, and never less often than
/// [`SLOWEST_ABOUT_KEEPALIVE`].
pub fn about_keepalive(others: usize) -> Duration {
    let bits = others.max(1) as u64 * 2 * 200 * 8;
    Duration::from_secs_f64(bits as f64 / gossip_share(1).max(1) as f64).clamp(MIC_KEEPALIVE, SLOWEST_ABOUT_KEEPALIVE)
}

/// How fast a peer uploads by default: 4 MiB a second (32 Mbit/s), several films' worth.
pub const DEFAULT_UPLOAD_RATE: u64 = 4 << 20;

/// Which way the node reaches peers beyond the local network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RelayChoice {
    /// iroh's public relays and its DNS address lookup: works across the internet.
    #[default]
    Public,
    /// No relays and no lookups over the internet: this machine and the local network only.
    Disabled,
}

/// How a person appears to others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The name above their head (at most [`MAX_NAME_CHARS`] characters; longer is cut).
    pub name: String,
    /// Their avatar's colour.
    pub colour: [u8; 3],
}

impl Profile {
    /// A profile with `name` cut to the allowed length and stripped of control characters.
    pub fn new(name: &str, colour: [u8; 3]) -> Self {
        let name: String = name.chars().filter(|c| !c.is_control()).take(MAX_NAME_CHARS).collect();
        Self { name: name.trim().to_owned(), colour }
    }

    /// A name and a bright colour made from a key, for people who did not choose one.
    pub fn guest(key: &PublicKey) -> Self {
        let bytes = key.as_bytes();
        let hue = f32::from(bytes[0]) / 255.0 * 6.0;
        let channel = |offset: f32| {
            let distance = ((hue + offset) % 6.0 - 3.0).abs();
            ((distance - 1.0).clamp(0.0, 1.0) * 200.0 + 55.0) as u8
        };
        Self { name: format!("Guest {}", &key.short()[..4]), colour: [channel(0.0), channel(4.0), channel(2.0)] }
    }
}

/// A ticket: how to reach a node (its id and addresses), as text to paste.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket(EndpointTicket);

/// Why text is not a ticket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Sanctuary ticket (expected the text that another peer shows as its ticket, starting \"endpoint\")")]
pub struct TicketError;

impl FromStr for Ticket {
    type Err = TicketError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        EndpointTicket::from_str(&text).map(Ticket).map_err(|_| TicketError)
    }
}

impl fmt::Display for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Ticket {
    /// The node this ticket reaches.
    pub fn id(&self) -> Option<PublicKey> {
        PublicKey::from_bytes(*self.0.endpoint_addr().id.as_bytes()).ok()
    }
}

/// How the node starts.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Where the identity key, chat history and outbox live.
    pub data_dir: PathBuf,
    /// Relays or not.
    pub relays: RelayChoice,
    /// Find peers on the local network by mDNS.
    pub lan_discovery: bool,
    /// The name to show; `None` keeps the last one chosen (or a guest name from the key).
    pub name: Option<String>,
    /// The avatar's colour; `None` keeps the last one (or one made from the key).
    pub colour: Option<[u8; 3]>,
    /// The regions to be in from the start; the first takes poses and chat.
    pub regions: Vec<RegionId>,
    /// Peers to meet from the start.
    pub join: Vec<Ticket>,
    /// What to keep (fetch and hold) for whom: what a home node does, so that it serves its
    /// owner's and their friends' models while they are away (see [`crate::hosting`]).
    pub hosting: Option<crate::hosting::HostingPolicy>,
    /// The largest film this peer fetches or shares on a screen, in bytes.
    pub max_film_bytes: u64,
    /// The most bytes a second this peer uploads from its store (films, models, avatars) to
    /// everyone together; `None`: no limit.
    pub upload_rate: Option<u64>,
    /// This node is an AI agent: the card its operator signed for its key, said beside the
    /// pose (see [`crate::agent`]). A card for another key is refused at the start.
    pub agent: Option<crate::agent::AgentCard>,
}

impl NodeConfig {
    /// A node keeping its files in `data_dir`, in the lobby, with public relays and LAN
    /// discovery.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            relays: RelayChoice::Public,
            lan_discovery: true,
            name: None,
            colour: None,
            regions: vec![RegionId::Lobby],
            join: Vec::new(),
            hosting: None,
            max_film_bytes: crate::screen::DEFAULT_MAX_FILM_BYTES,
            upload_rate: Some(DEFAULT_UPLOAD_RATE),
            agent: None,
        }
    }
}

/// What the program asks of the node.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Command {
    /// Be in these regions: one for a person (where they are), several for a home node. The
    /// first takes poses and chat. Others are left, saying goodbye.
    Regions(Vec<RegionId>),
    /// Where I am now; sent when it changed, at most 20 times a second.
    Pose(PoseFrame),
    /// Say something in the first region.
    Chat(String),
    /// How our microphone is set, for the others to show (said in the first region).
    Mic(MicState),
    /// Wear the model at this path (a `.glb`, `.gltf` or `.vrm` with its files), checked
    /// against the avatar budget and kept; `None` takes it off.
    Wear(Option<PathBuf>),
    /// Ask `seller`'s node for an invoice for their Lightning `listing` (answered with
    /// [`Event::SaleOffered`]).
    AskSale {
        /// The seller.
        seller: PublicKey,
        /// The listing.
        listing: sanctuary_engine::ChangeId,
    },
    /// Answer a buyer's ask ([`Event::SaleAsked`]): an invoice and its payment hash, which the
    /// node vouches for with our key, or why not.
    AnswerSale {
        /// The ask.
        ask: u64,
        /// The invoice and its payment hash, or the reason for a refusal.
        answer: Result<(String, [u8; 32]), String>,
    },
    /// Ask the home node `host` for an invoice for keeping `mib` MiB of our models for
    /// `months` months (answered with [`Event::HostingOffered`]).
    AskHosting {
        /// The node.
        host: PublicKey,
        /// How much.
        mib: u32,
        /// How long.
        months: u16,
    },
    /// Answer someone's ask for paid hosting ([`Event::HostingAsked`]): an invoice, its
    /// payment hash and its amount, whose terms the node signs with our key, or why not.
    AnswerHosting {
        /// The ask.
        ask: u64,
        /// The invoice, its payment hash and amount, or the reason for a refusal.
        answer: Result<(String, [u8; 32], u64), String>,
    },
    /// What people have paid for, running now (bytes by person, see
    /// [`crate::paid_hosting::PaidBook::quotas`]): kept for them as for a `--pin`, once they
    /// name this node. Only for a node that keeps things for others.
    PaidHosting(std::collections::BTreeMap<PublicKey, u64>),
    /// The BOLT12 offer others may tip us through, said beside our look (`None`: no tips).
    /// Refused with a notice unless it looks like an offer ([`crate::check_tip_offer`]).
    TipOffer(Option<String>),
    /// Fetch someone's avatar from them (`hint`) or whoever is near.
    FetchAvatar {
        /// The avatar.
        avatar: AvatarRef,
        /// Its wearer.
        hint: Option<PublicKey>,
    },
    /// How loud the person hears someone (0 mutes them; 1 is normal): kept on disk so that
    /// mutes hold after a restart (`Event::Volumes` gives them back at the start).
    Volume {
        /// Whom.
        person: PublicKey,
        /// 0 to [`MAX_PERSON_VOLUME`].
        volume: f32,
    },
    /// The person's shields: used at once (private messages meet theirs at our door) and kept
    /// on disk; `Event::Shields` answers.
    Shields(Shields),
    /// Block someone: their chat, private messages, voice and presence stop reaching us at
    /// once and after a restart (`Event::Blocks` answers with the list).
    Block(PublicKey),
    /// Undo a block.
    Unblock(PublicKey),
    /// Who hears whom in a region (a room's rule, from its own state); `Hearing::Near`
    /// undoes it.
    Hearing {
        /// Where.
        region: RegionId,
        /// The rule.
        hearing: Hearing,
    },
    /// A private message.
    Direct {
        /// To whom.
        to: PublicKey,
        /// What.
        text: String,
    },
    /// Meet the peer of a ticket.
    Join(Ticket),
    /// Change name or colour.
    Profile(Profile),
    /// Make a change to the world (signed with our key and a fresh sequence number), if the
    /// rules allow it; stored before it is acknowledged, then passed to the region.
    Build(Op),
    /// Import a `.glb` or `.gltf` (and the files it names) into the asset store.
    Import(PathBuf),
    /// Ask `person`'s node for their contribution record (receipts others signed for them);
    /// `Event::Contribution` answers once it is checked (our own key answers at once).
    AskContribution(PublicKey),
    /// Fetch a model from whoever has it: `hint` (its placer, say) first, then neighbours.
    Fetch {
        /// The model.
        model: ModelRef,
        /// A peer likely to have it.
        hint: Option<PublicKey>,
    },
    /// Share the film at this path on the screen of the region we are in: it is queued (and
    /// plays at once on an idle screen); `Event::Film` hands out its source, `Event::Screen`
    /// the state.
    ShareFilm(PathBuf),
    /// Move the screen (play, pause, seek, next, hand over), when we control it.
    Screen(crate::screen::ScreenAction),
    /// Show these slides (PNG or JPEG files, in this order) on the lecture hall's stage, from
    /// the first, when we may present: `Event::Stage` says the state, `Event::Slide` hands out
    /// the slide showing.
    Present(Vec<PathBuf>),
    /// Move the stage (a slide, the floor, a hand lowered, hand over), when we present.
    Stage(crate::stage::StageAction),
    /// Raise (`true`) or lower our hand in the lecture hall.
    Hand(bool),
    /// Open a poll in the meeting room, open for this long from now (at most a week):
    /// `Event::Polls` shows it, `Event::PollRefused` says why not.
    OpenPoll {
        /// The question.
        question: String,
        /// Two to eight options.
        options: Vec<String>,
        /// How long it stays open.
        open_for: Duration,
    },
    /// Vote for an option (counting from 0) of a poll in the meeting room; a later vote
    /// replaces ours until the poll closes.
    Vote {
        /// The poll's id.
        poll: [u8; 32],
        /// The option.
        choice: u8,
    },
    /// Draw a stroke on the meeting room's whiteboard (its author and date are set here):
    /// `Event::Board` shows the board, `Event::BoardRefused` says why not.
    Draw(crate::whiteboard::Stroke),
    /// Clear the meeting room's whiteboard: all of it when it is ours, else our own strokes.
    ClearBoard,
    /// Invite someone into our private room: they are handed its key (and told in a private
    /// message); `Event::Rooms` shows the members.
    Invite(PublicKey),
    /// Take someone out of our private room: a new key is handed to the others, and what is
    /// said from then on is sealed with it.
    Uninvite(PublicKey),
    /// Whose private room the private room region is (`None`: our own), for the next time we
    /// go in; refused (`Event::RoomRefused`) without an invitation.
    Visit(Option<PublicKey>),
    /// Write a poll's results, every vote with its signature, as CSV to a file:
    /// `Event::PollExported` says where.
    ExportPoll {
        /// The poll's id.
        poll: [u8; 32],
        /// The file.
        to: PathBuf,
    },
    /// Leave every region, say goodbye and stop.
    Shutdown,
}

/// A line of chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatLine {
    /// Where it was said.
    pub region: RegionId,
    /// Who said it.
    pub author: PublicKey,
    /// Their name then.
    pub name: String,
    /// What.
    pub text: String,
    /// The author's sequence (their clock in µs): lines sort by it.
    pub sequence: u64,
}

/// A private message, either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectLine {
    /// The sender's sequence: with `from`, it names the message.
    pub id: u64,
    /// Who wrote it.
    pub from: PublicKey,
    /// For whom.
    pub to: PublicKey,
    /// The sender's name.
    pub name: String,
    /// What.
    pub text: String,
}

/// Where someone is online, as they said on the world topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whereabouts {
    /// Who.
    pub key: PublicKey,
    /// The name they go by.
    pub name: String,
    /// The regions they are in.
    pub regions: Vec<RegionId>,
}

/// What became of a private message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The recipient's node has it.
    Delivered,
    /// They could not be reached; it waits in the outbox and goes when they can be.
    Queued {
        /// Why not now.
        reason: String,
    },
    /// Their shield takes private messages only from people they trust more; it was dropped
    /// from the outbox.
    Refused {
        /// What to tell the sender.
        reason: String,
    },
}

/// Whether the node reaches a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayState {
    /// Offline mode: no relays.
    Disabled,
    /// Trying.
    Connecting,
    /// Reachable from anywhere through a relay.
    Connected,
}

/// The node's connection state, sent when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Relays.
    pub relay: RelayState,
    /// Peers heard on the world topic lately.
    pub known_peers: usize,
    /// Gossip neighbours in the first region.
    pub neighbours: usize,
    /// The crowd that sets our pose rate: people whose poses we took in the first region in the
    /// last 7 s (keys that only say they are here do not count).
    pub crowd: usize,
    /// The people our voice goes to now (those in hearing range we are connected to).
    pub voice_listeners: usize,
    /// The people who get our pose twenty times a second now (the nearest, connected).
    pub near_neighbours: usize,
    /// The cell topics we listen on (see [`crate::cells`]): 0 outside the lobby and the city.
    pub cells: usize,
    /// The far cells whose summaries we hold.
    pub far_cells: usize,
    /// Bytes sent since the node started, as UDP payloads (QUIC and all; not UDP and IP headers).
    pub bytes_sent: u64,
    /// Bytes received since the node started, likewise.
    pub bytes_received: u64,
    /// Private messages waiting to be delivered.
    pub outbox: usize,
}

/// What the node tells the program.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The node is up.
    Started {
        /// Our id (our public key).
        id: PublicKey,
        /// Our ticket.
        ticket: String,
        /// Our name and colour.
        profile: Profile,
        /// The world as we hold it (shared with the node, read by the program).
        world: SharedReplica,
        /// The asset store (the program's asset reader serves models from it).
        assets: AssetStore,
        /// What we upload, counted per peer.
        uploads: crate::uploads::Uploads,
    },
    /// A home node worked out again what it keeps, and for whom.
    Hosting(Box<crate::hosting::HostingPlan>),
    /// Someone's contribution record (ours when `person` is us, at start and as it grows):
    /// the sum, and the receipts it was checked from (those that count most).
    Contribution {
        /// Whose.
        person: PublicKey,
        /// The sum of the receipts.
        contribution: crate::receipts::Contribution,
        /// The receipts, each checked: for that person, signed by its receiver.
        receipts: Arc<Vec<crate::receipts::SignedReceipt>>,
        /// Whether their node answered (when not, the rest is empty).
        reached: bool,
    },
    /// The screen of the region we are in changed (or its controller's clock was learnt
    /// better).
    Screen(ScreenView),
    /// The film showing on the screen: read it (it streams in as it is read).
    Film(crate::films::FilmSource),
    /// A film could not be shared or a screen action was refused, and why.
    ScreenRefused(String),
    /// The lecture hall's stage changed.
    Stage(StageView),
    /// The slide showing on the stage, whole: an image file's bytes (PNG or JPEG, as its
    /// presenter says; not yet decoded or checked).
    Slide {
        /// Its hash.
        hash: [u8; 32],
        /// The file.
        bytes: Vec<u8>,
    },
    /// Slides could not be shown, a stage action or a hand was refused, and why.
    StageRefused(String),
    /// The meeting room's polls (every one held, the oldest first) changed.
    Polls(Vec<PollView>),
    /// A poll could not be opened, voted on or exported, and why.
    PollRefused(String),
    /// A poll's results were written here.
    PollExported(PathBuf),
    /// The meeting room's whiteboard changed: every stroke on it, the oldest first.
    Board(Vec<crate::whiteboard::Stroke>),
    /// A stroke or clear could not be made, and why.
    BoardRefused(String),
    /// Our private room's members, the rooms we are invited to, and whose we are visiting.
    Rooms(RoomsView),
    /// The door of a private room refused us, or something about our room failed, and why.
    RoomRefused(String),
    /// The state of these parcels may have changed.
    WorldChanged(Vec<ParcelCoord>),
    /// Our change is made, stored and sent.
    Built(Op),
    /// Our change was refused (not our land, over budget, the disk failed), and why.
    BuildRefused {
        /// The change.
        op: Op,
        /// Why.
        reason: String,
    },
    /// A sync with a peer finished.
    Synced {
        /// Who.
        peer: PublicKey,
        /// Changes we took.
        received: usize,
        /// Changes we gave.
        sent: usize,
    },
    /// A model was imported: place it with this reference.
    Imported {
        /// The reference structures use.
        model: ModelRef,
        /// The file's name.
        name: String,
        /// What the checks found.
        summary: ModelSummary,
    },
    /// A model is on its way.
    AssetProgress {
        /// The model.
        hash: [u8; 32],
        /// Bytes here so far.
        done: u64,
        /// Bytes in all.
        total: u64,
    },
    /// A model is here, checked, and can be loaded.
    AssetReady {
        /// The model.
        hash: [u8; 32],
        /// What the checks found.
        summary: ModelSummary,
    },
    /// A model could not be had or failed its checks; show a placeholder.
    AssetFailed {
        /// The model (all zeros for an import that failed).
        hash: [u8; 32],
        /// Why.
        reason: String,
    },
    /// Our addresses changed; this is the new ticket.
    Ticket(String),
    /// Connection state.
    Status(Status),
    /// Someone's presence in a region.
    Presence {
        /// Where.
        region: RegionId,
        /// Who.
        author: PublicKey,
        /// Their sequence (their clock in µs).
        sequence: u64,
        /// Name, colour, pose.
        presence: Presence,
    },
    /// A near neighbour's pose, from a datagram on a direct connection (see [`NEAR_DISTANCE`]):
    /// it moves someone already known from their [`Event::Presence`], and nothing else.
    NearPose {
        /// Where.
        region: RegionId,
        /// Who (the connection's peer).
        author: PublicKey,
        /// Their clock in µs, as a presence's sequence.
        stamp: u64,
        /// Head and hands.
        pose: PoseFrame,
    },
    /// How someone's microphone is set.
    Mic {
        /// Where.
        region: RegionId,
        /// Who.
        author: PublicKey,
        /// Off, live or muted.
        state: MicState,
    },
    /// Someone is an AI agent, run by `operator` (their card checked): label them as one,
    /// always. Agents the agents shield hides are not told at all (and leave when it closes).
    Agent {
        /// Where.
        region: RegionId,
        /// The agent.
        author: PublicKey,
        /// Who runs it.
        operator: PublicKey,
    },
    /// The model someone wears (`None`: a plain body).
    Look {
        /// Where.
        region: RegionId,
        /// Who.
        author: PublicKey,
        /// Their avatar.
        avatar: Option<AvatarRef>,
    },
    /// A buyer asks for an invoice for our Lightning listing: answer with
    /// [`Command::AnswerSale`] within [`SALE_ANSWER_TIMEOUT`].
    SaleAsked {
        /// The ask's number.
        ask: u64,
        /// Who asks (their connection's key: the voucher names them).
        buyer: PublicKey,
        /// Which listing.
        listing: sanctuary_engine::ChangeId,
    },
    /// Someone asks to have `mib` MiB of their models kept for `months` months, for pay: answer
    /// with [`Command::AnswerHosting`] within [`SALE_ANSWER_TIMEOUT`].
    HostingAsked {
        /// The ask's number.
        ask: u64,
        /// Who asks (their connection's key: the terms name them).
        person: PublicKey,
        /// How much.
        mib: u32,
        /// How long.
        months: u16,
    },
    /// A home node answered our [`Command::AskHosting`].
    HostingOffered {
        /// The node.
        host: PublicKey,
        /// How much was asked for.
        mib: u32,
        /// How long.
        months: u16,
        /// An invoice with the node's signed terms, or a refusal.
        offer: HostingOffer,
    },
    /// A seller's node answered our [`Command::AskSale`].
    SaleOffered {
        /// The seller.
        seller: PublicKey,
        /// The listing.
        listing: sanctuary_engine::ChangeId,
        /// An invoice with its voucher, or a refusal.
        offer: SaleOffer,
    },
    /// The offer someone takes tips through (`None`: they take none now).
    Tips {
        /// Where.
        region: RegionId,
        /// Who.
        author: PublicKey,
        /// Their offer, shaped like one (the wallet reads it before paying).
        offer: Option<String>,
    },
    /// We now wear `avatar` (at the start too), or a plain body; `name` is the file's name when
    /// it was just put on.
    Wearing {
        /// The avatar.
        avatar: Option<AvatarRef>,
        /// The file it came from, when it was just put on.
        name: Option<String>,
        /// What the checks found, when it was just put on.
        summary: Option<ModelSummary>,
    },
    /// The avatar could not be put on, and why.
    AvatarRefused(String),
    /// Everyone we block (at the start, and after each change).
    Blocks(Vec<PublicKey>),
    /// The person's trust, worked out again whenever the statements held change (and at the
    /// start). Our own statements are made with `Command::Build(Op::Trust { .. })`.
    Trust(Arc<TrustView>),
    /// The person's shields (at the start, and after each change).
    Shields(Shields),
    /// The volumes (and mutes) the person set, kept from before (at the start).
    Volumes(Vec<(PublicKey, f32)>),
    /// Where the people the person has a word with (either way) are online now, by key, as
    /// they last said on the world topic; sent when it changes. Those not listed are offline
    /// (or not heard for 15 s).
    Whereabouts(Vec<Whereabouts>),
    /// The crowd beyond the cells we listen on, as their reporters sum it up (see
    /// [`crate::cells`]): sent about once a second when it changed.
    FarCrowd {
        /// Where.
        region: RegionId,
        /// Up to [`MAX_FAR_DOTS`] of them, nearest first: where and in what colour.
        dots: Vec<crate::cells::FarDot>,
        /// How many the summaries count in all.
        people: u64,
    },
    /// Someone left a region.
    Left {
        /// Where.
        region: RegionId,
        /// Who.
        author: PublicKey,
    },
    /// A line of chat (ours too, once sent).
    Chat(ChatLine),
    /// The stored chat of a region just entered, oldest first.
    ChatHistory {
        /// Which region.
        region: RegionId,
        /// The lines.
        lines: Vec<ChatLine>,
    },
    /// A private message, received or sent by us.
    Direct(DirectLine),
    /// Stored private messages, oldest first, at start.
    DirectHistory(Vec<DirectLine>),
    /// What became of a private message we sent.
    DirectOutcome {
        /// The message's id.
        id: u64,
        /// Its recipient.
        to: PublicKey,
        /// Delivered or waiting.
        outcome: Delivery,
    },
    /// Something the person should know (a refused command, a disk problem).
    Notice(String),
    /// The node could not start or stopped with an error.
    Failed(String),
    /// The node has stopped.
    Stopped,
}

/// The program's side of a node: send commands, read events. Nothing here blocks.
#[derive(Debug)]
pub struct NodeHandle {
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::Receiver<Event>,
    voice: Option<mpsc::Receiver<VoiceDatagram>>,
    voice_sender: VoiceSender,
    stats: Arc<NetStats>,
    task: Option<JoinHandle<()>>,
}

impl NodeHandle {
    /// The voice datagrams that arrive from people in hearing range, for the program's audio
    /// side to take once (later calls get `None`). Until taken they wait, up to
    /// [`voice::VOICE_QUEUE`]; past that new ones are dropped and counted.
    pub fn take_voice(&mut self) -> Option<mpsc::Receiver<VoiceDatagram>> {
        self.voice.take()
    }

    /// Sends our voice to the people in hearing range (see [`VoiceSender`]).
    pub fn voice_sender(&self) -> VoiceSender {
        self.voice_sender.clone()
    }

    /// Sends a command; `false` if the node has stopped.
    pub fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok()
    }

    /// The next event if one is waiting.
    pub fn try_event(&mut self) -> Option<Event> {
        self.events.try_recv().ok()
    }

    /// Waits for the next event; `None` once the node has stopped and every event was read.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// What was received and refused so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Asks the node to stop and waits until it has.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    /// Asks the node to stop and waits until it has; the handle stays, with no node behind it.
    pub async fn stop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// A tokio runtime of its own for the node, so that the program's frame loop never waits on it.
#[derive(Debug)]
pub struct NetRuntime {
    runtime: tokio::runtime::Runtime,
}

impl NetRuntime {
    /// Two worker threads named `sanctuary-net`.
    pub fn new() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sanctuary-net")
            .enable_all()
            .build()?;
        Ok(Self { runtime })
    }

    /// Runs `future` to its end on this runtime, blocking the calling thread (for a program
    /// whose main thread has nothing else to do, such as the home node).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The runtime's handle, to spawn nodes on.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime.handle()
    }
}

/// Starts a node on `runtime`. Errors (a damaged identity file, no network) come back as
/// [`Event::Failed`].
pub fn spawn_node(runtime: &tokio::runtime::Handle, config: NodeConfig) -> NodeHandle {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (event_tx, events) = mpsc::channel(8192);
    let stats = Arc::new(NetStats::default());
    let (voice_tx, voice) = mpsc::channel(VOICE_QUEUE);
    let voice_sender = VoiceSender::default();
    let task = runtime.spawn(run(config, command_rx, event_tx, stats.clone(), voice_tx, voice_sender.clone()));
    NodeHandle { commands, events, voice: Some(voice), voice_sender, stats, task: Some(task) }
}

async fn run(
    config: NodeConfig,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<Event>,
    stats: Arc<NetStats>,
    voice_out: mpsc::Sender<VoiceDatagram>,
    voice_sender: VoiceSender,
) {
    match Node::start(config, events.clone(), stats, voice_out, voice_sender).await {
        Ok((node, mdns)) => node.run(commands, mdns).await,
        Err(error) => {
            let _ = events.send(Event::Failed(error)).await;
        }
    }
    let _ = events.send(Event::Stopped).await;
}

/// The world topic every peer joins, to learn who is in which region.
pub fn world_topic() -> TopicId {
    TopicId::from_bytes(*blake3::Hasher::new_derive_key("sanctuary world topic v1").finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use iroh::SecretKey;

    #[test]
    fn pose_rate_falls_as_the_region_fills_and_stays_within_the_budget() {
        assert_eq!(pose_interval(0, 158), FASTEST_POSE_INTERVAL);
        assert_eq!(pose_interval(7, 158), FASTEST_POSE_INTERVAL);
        // With the near neighbours' datagrams beside them, within the budget up to the crowd
        // where the keepalive floor binds.
        // With the near neighbours' datagrams, everyone's keepalives and the far summaries beside
        // them, within the budget up to the crowd where the slowest rate binds.
        for others in [31usize, 99, 300, 450, 800, 1_600, 3_000, 4_500] {
            let interval = pose_interval(others, 158);
            let gossip = others as f64 * (158.0 + 64.0) * 8.0 / interval.as_secs_f64();
            let about = others as f64 * 2.0 * 200.0 * 8.0 / about_keepalive(others).as_secs_f64();
            let far = crate::cells::FAR_DOWNLINK_BITS_PER_SECOND as f64;
            let down = gossip + about + far + NEAR_DOWNLINK_BITS_PER_SECOND as f64;
            assert!(down <= DOWNLINK_BUDGET_BITS_PER_SECOND as f64, "{others} others: {down} bit/s");
        }
        assert_eq!(pose_interval(100_000, 158), SLOWEST_POSE_INTERVAL);
        // Receivers wait for two intervals and more, whatever the crowd, and no less than the
        // small crowd's timeout; the wait only grows with the crowd.
        assert_eq!(presence_timeout(0), PRESENCE_TIMEOUT);
        assert_eq!(presence_timeout(200), PRESENCE_TIMEOUT);
        let mut before = PRESENCE_TIMEOUT;
        for others in [31usize, 300, 800, 1_600, 4_500, 100_000] {
            let timeout = presence_timeout(others);
            assert!(timeout > pose_interval(others, 200) * 2, "{others} others: {timeout:?}");
            assert!(timeout >= before);
            before = timeout;
        }
        assert!(presence_timeout(4_500) > Duration::from_secs(40), "a dense block's wait follows its slow poses");
        assert_eq!(about_keepalive(3), MIC_KEEPALIVE);
        assert_eq!(about_keepalive(100_000), SLOWEST_ABOUT_KEEPALIVE);
    }

    #[test]
    fn tickets_round_trip_and_junk_is_refused() {
        let secret = SecretKey::from_bytes(&[4; 32]);
        let addr = iroh::EndpointAddr::from(secret.public());
        let ticket = Ticket(EndpointTicket::new(addr));
        let text = ticket.to_string();
        // Pasted with line breaks and spaces around it.
        let pasted = format!("  {}\n{}  ", &text[..20], &text[20..]);
        assert_eq!(pasted.parse::<Ticket>(), Ok(ticket.clone()));
        assert_eq!(ticket.id().map(|id| *id.as_bytes()), Some(*secret.public().as_bytes()));
        assert_eq!("endpoint".parse::<Ticket>(), Err(TicketError));
        assert_eq!("".parse::<Ticket>(), Err(TicketError));
    }

    #[test]
    fn profiles_are_cleaned_and_guests_get_a_name_and_colour() {
        let profile = Profile::new("  Ada\u{7}\n Lovelace with a very long name indeed, too long  ", [1, 2, 3]);
        assert!(profile.name.chars().count() <= MAX_NAME_CHARS);
        assert!(!profile.name.chars().any(char::is_control));
        assert!(profile.name.starts_with("Ada"));
        let key = PublicKey::from_secret_seed(&[9; 32]);
        let guest = Profile::guest(&key);
        assert!(guest.name.starts_with("Guest "));
        assert!(guest.colour.iter().any(|&channel| channel > 200), "a bright colour: {:?}", guest.colour);
    }

    #[tokio::test]
    async fn a_second_node_on_the_same_data_directory_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = NodeConfig::new(dir.path());
        config.relays = RelayChoice::Disabled;
        config.lan_discovery = false;
        let mut first = spawn_node(&tokio::runtime::Handle::current(), config.clone());
        loop {
            match first.next_event().await {
                Some(Event::Started { .. }) => break,
                Some(Event::Failed(error)) => panic!("the first node failed: {error}"),
                Some(_) => {}
                None => panic!("the first node stopped"),
            }
        }
        let mut second = spawn_node(&tokio::runtime::Handle::current(), config.clone());
        let failure = loop {
            match second.next_event().await {
                Some(Event::Failed(error)) => break error,
                Some(Event::Started { .. }) => panic!("two nodes on one data directory"),
                Some(_) => {}
                None => panic!("no failure reported"),
            }
        };
        assert!(failure.contains("--data-dir"), "{failure}");
        first.shutdown().await;
        // Once the first has stopped, the directory is free again.
        let mut third = spawn_node(&tokio::runtime::Handle::current(), config);
        loop {
            match third.next_event().await {
                Some(Event::Started { .. }) => break,
                Some(Event::Failed(error)) => panic!("the directory was not freed: {error}"),
                Some(_) => {}
                None => panic!("the third node stopped"),
            }
        }
        third.shutdown().await;
    }

    proptest::proptest! {
        /// Whatever someone pastes as a ticket, parsing never panics.
        #[test]
        fn any_text_as_a_ticket_is_handled(text in ".{0,300}") {
            let _ = text.parse::<Ticket>();
        }
    }
}
