//! The node: an iroh endpoint and router on a tokio runtime, with gossip for presence and chat
//! and a direct protocol for private messages. The program talks to it only through a
//! [`NodeHandle`]: commands in, events out, never a blocking call.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{Stream, StreamExt};
use iroh::address_lookup::MemoryLookup;
use iroh::endpoint::{Connection, presets};
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use iroh::{Endpoint, RelayMode, SecretKey};
use iroh_gossip::api::{Event as GossipEvent, GossipReceiver, GossipSender};
use iroh_gossip::{Gossip, TopicId};
use iroh_mdns_address_lookup::{DiscoveryEvent, MdnsAddressLookup};
use iroh_tickets::endpoint::EndpointTicket;
use sanctuary_engine::{ModelRef, ModelSummary, Op, ParcelCoord, PublicKey, RegionId};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::assets::AssetStore;
use crate::inbox::{Inbox, Limited, NetStats, RateLimiter, StatsSnapshot};
use crate::replica::{Applied, AuthorError, SharedReplica, SyncProtocol, SyncReport, sync_with};
use crate::store::{self, Paths};
use crate::wire::{
    DirectText, MAX_MESSAGE_BYTES, MAX_NAME_CHARS, MAX_REGIONS_PER_PEER, MAX_TEXT_CHARS, PoseFrame, Presence,
    RegionMessage, Signed, WorldMessage, decode, encode,
};
use crate::{alpn, load_or_create_identity, region_topic};

/// The most a client receives of other people's poses, whatever the crowd (P2 of TARGETS.md):
/// senders slow down as the region fills so that the sum stays below it.
pub const DOWNLINK_BUDGET_BITS_PER_SECOND: u64 = 1_000_000;
/// The fastest pose rate: 20 a second.
pub const FASTEST_POSE_INTERVAL: Duration = Duration::from_millis(50);
/// A pose is sent at least this often even when nothing moved, so that newcomers see everyone
/// and silence can mean "gone".
pub const POSE_KEEPALIVE: Duration = Duration::from_secs(2);
/// Someone not heard from for this long has left.
pub const PRESENCE_TIMEOUT: Duration = Duration::from_secs(7);
/// Below this many gossip neighbours in a region, peers heard to be there are asked to join.
const WANTED_NEIGHBOURS: usize = 3;
/// How often each peer says on the world topic where it is.
const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(3);
/// Peers not heard on the world topic for this long are forgotten.
const DIRECTORY_TIMEOUT: Duration = Duration::from_secs(15);
/// How often undelivered private messages are tried again.
const OUTBOX_RETRY: Duration = Duration::from_secs(5);
/// How long a private message may take to reach its recipient before it waits in the outbox.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(8);
/// Chat lines handed back on entering a region.
const CHAT_HISTORY: usize = 200;
/// Bytes a pose costs on the wire beyond its message: gossip framing and QUIC/UDP/IP headers.
const POSE_OVERHEAD_BYTES: u64 = 64;
/// The service name under which peers announce themselves on the local network.
const MDNS_SERVICE: &str = "sanctuary";
/// How often the world is compared with a neighbour's, to heal changes gossip dropped.
const ANTI_ENTROPY_INTERVAL: Duration = Duration::from_secs(60);
/// How many peers are asked for an asset.
const MAX_PROVIDERS: usize = 8;

/// The time between two poses when `others` people share the region and a pose message is
/// `message_bytes` long: 20 a second while the crowd is small, slower as it grows, so that
/// everyone's poses together stay within 80 % of [`DOWNLINK_BUDGET_BITS_PER_SECOND`] (the rest is
/// left for chat and the world topic). Never slower than [`POSE_KEEPALIVE`].
pub fn pose_interval(others: usize, message_bytes: usize) -> Duration {
    let bits = (message_bytes as u64 + POSE_OVERHEAD_BYTES) * 8;
    let share = DOWNLINK_BUDGET_BITS_PER_SECOND * 8 / 10 / (others.max(1) as u64);
    let interval = Duration::from_secs_f64(bits as f64 / share.max(1) as f64);
    interval.clamp(FASTEST_POSE_INTERVAL, POSE_KEEPALIVE)
}

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
    /// Fetch a model from whoever has it: `hint` (its placer, say) first, then neighbours.
    Fetch {
        /// The model.
        model: ModelRef,
        /// A peer likely to have it.
        hint: Option<PublicKey>,
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
    },
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
    stats: Arc<NetStats>,
    task: Option<JoinHandle<()>>,
}

impl NodeHandle {
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
    let task = runtime.spawn(run(config, command_rx, event_tx, stats.clone()));
    NodeHandle { commands, events, stats, task: Some(task) }
}

async fn run(
    config: NodeConfig,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<Event>,
    stats: Arc<NetStats>,
) {
    match Node::start(config, events.clone(), stats).await {
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

/// Microseconds since 1970 on this machine's clock.
fn wall_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_micros() as u64).unwrap_or(0)
}

/// Sequence numbers that always grow, even across restarts (they start from the clock) and
/// when the clock steps back.
#[derive(Debug, Default)]
struct SequenceClock {
    last: std::sync::atomic::AtomicU64,
}

impl SequenceClock {
    fn next(&self) -> u64 {
        use std::sync::atomic::Ordering;
        let now = wall_micros();
        let previous =
            self.last.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| Some(now.max(last + 1))).unwrap_or(now);
        now.max(previous + 1)
    }
}

/// A task that stops when this is dropped.
#[derive(Debug)]
struct TaskGuard(JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Messages from the node's helper tasks to its loop.
#[derive(Debug)]
enum Internal {
    World(Signed<WorldMessage>),
    Region(RegionId, Signed<RegionMessage>),
    Neighbour { region: Option<RegionId>, peer: iroh::PublicKey, up: bool },
    Ended(Option<RegionId>),
    DirectIn(Signed<DirectText>),
    DirectDone { id: u64, result: Result<(), String> },
    Built { op: Op, result: Result<Vec<u8>, AuthorError> },
    Applied(Applied),
    Synced { peer: iroh::PublicKey, result: Result<SyncReport, String> },
}

struct Subscription {
    region: RegionId,
    sender: GossipSender,
    neighbours: HashSet<iroh::PublicKey>,
    /// Peers already asked to join us here. Gossip keeps a handful of neighbours per topic and
    /// spreads messages through them; asking everyone we hear of would churn connections.
    asked: HashSet<iroh::PublicKey>,
    _task: TaskGuard,
}

#[derive(Debug)]
struct Known {
    regions: Vec<RegionId>,
    heard: Instant,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OutboxEntry {
    line: DirectLine,
    bytes: Vec<u8>,
    #[serde(skip)]
    reported: bool,
}

struct Node {
    secret: SecretKey,
    me: iroh::PublicKey,
    me_key: PublicKey,
    relays: RelayChoice,
    endpoint: Endpoint,
    router: Router,
    gossip: Gossip,
    memory: MemoryLookup,
    profile: Profile,
    paths: Paths,
    events: mpsc::Sender<Event>,
    stats: Arc<NetStats>,
    internal_tx: mpsc::Sender<Internal>,
    internal_rx: mpsc::Receiver<Internal>,
    world: GossipSender,
    world_task: TaskGuard,
    regions: Vec<Subscription>,
    directory: HashMap<iroh::PublicKey, Known>,
    pose: Option<PoseFrame>,
    sent_pose: Option<(PoseFrame, Instant)>,
    pose_bytes: usize,
    clock: SequenceClock,
    outbox: Vec<OutboxEntry>,
    in_flight: HashSet<u64>,
    seen_direct: HashSet<(PublicKey, u64)>,
    last_announce: Instant,
    last_outbox_try: Instant,
    last_status: Option<Status>,
    last_status_check: Instant,
    ticket: String,
    replica: SharedReplica,
    assets: AssetStore,
    /// Fetches models into `assets`, pooling its connections across fetches.
    downloader: iroh_blobs::api::downloader::Downloader,
    sync_rx: mpsc::Receiver<SyncReport>,
    /// Peers we have compared the world with since we started.
    synced_with: HashSet<iroh::PublicKey>,
    last_anti_entropy: Instant,
    /// Models being fetched now.
    fetching: Arc<Mutex<HashSet<[u8; 32]>>>,
    /// Held while the node runs: the data directory is ours.
    _lock: std::fs::File,
}

impl Node {
    async fn start(
        config: NodeConfig,
        events: mpsc::Sender<Event>,
        stats: Arc<NetStats>,
    ) -> Result<(Node, Option<impl Stream<Item = DiscoveryEvent> + Unpin>), String> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|error| format!("cannot create the data directory {}: {error}", config.data_dir.display()))?;
        // One node per data directory: two would share one identity and could not meet.
        let lock_path = config.data_dir.join("node.lock");
        let lock = std::fs::File::create(&lock_path)
            .map_err(|error| format!("cannot create {}: {error}", lock_path.display()))?;
        if lock.try_lock().is_err() {
            return Err(format!(
                "another Sanctuary is already using {} (and its identity); start this one with \
                 --data-dir OTHER_DIR",
                config.data_dir.display()
            ));
        }
        let secret = load_or_create_identity(&config.data_dir).map_err(|error| error.to_string())?;
        let me = secret.public();
        let me_key =
            PublicKey::from_bytes(*me.as_bytes()).map_err(|error| format!("our own key is unusable: {error}"))?;
        let builder = match config.relays {
            RelayChoice::Public => Endpoint::builder(presets::N0),
            RelayChoice::Disabled => Endpoint::builder(presets::Minimal).relay_mode(RelayMode::Disabled),
        };
        let endpoint = builder
            .secret_key(secret.clone())
            .bind()
            .await
            .map_err(|error| format!("cannot open a network endpoint: {error}"))?;
        let lookup = endpoint.address_lookup().map_err(|error| format!("the endpoint closed at once: {error}"))?;
        let memory = MemoryLookup::new();
        lookup.add(memory.clone());
        let mut mdns_events = None;
        if config.lan_discovery {
            match MdnsAddressLookup::builder().service_name(MDNS_SERVICE).build(me) {
                Ok(mdns) => {
                    lookup.add(mdns.clone());
                    mdns_events = Some(mdns.subscribe().await);
                }
                Err(error) => {
                    let _ = events.send(Event::Notice(format!("local network discovery is off: {error}"))).await;
                }
            }
        }
        // Gossip itself carries up to twice our limit, so that oversized messages reach the inbox
        // and are counted there instead of vanishing inside gossip.
        let gossip = Gossip::builder().max_message_size(2 * MAX_MESSAGE_BYTES).spawn(endpoint.clone());
        let (internal_tx, internal_rx) = mpsc::channel(4096);
        let direct = DirectProtocol {
            me,
            internal: internal_tx.clone(),
            stats: stats.clone(),
            limiter: Arc::new(Mutex::new(RateLimiter::new(10, 2))),
            start: Instant::now(),
        };
        let (replica, opened) = SharedReplica::open(&config.data_dir)
            .map_err(|error| format!("cannot open the world store in {}: {error}", config.data_dir.display()))?;
        if opened.cut_bytes > 0 {
            let _ = events
                .send(Event::Notice(format!(
                    "the world store ended in a half-written change ({} bytes, from a crash); it was cut off",
                    opened.cut_bytes
                )))
                .await;
        }
        let assets = AssetStore::open(&config.data_dir.join("blobs"))
            .await
            .map_err(|error| format!("cannot open the asset store: {error}"))?;
        let (sync_tx, sync_rx) = mpsc::channel(64);
        let sync = SyncProtocol { replica: replica.clone(), arrivals: sync_tx };
        let blobs = iroh_blobs::BlobsProtocol::new(assets.store(), None);
        let router = Router::builder(endpoint.clone())
            .accept(alpn::GOSSIP, gossip.clone())
            .accept(alpn::DIRECT, direct)
            .accept(alpn::WORLD, sync)
            .accept(alpn::BLOBS, blobs)
            .spawn();

        for ticket in &config.join {
            memory.add_endpoint_info(ticket.0.endpoint_addr().clone());
        }
        let bootstrap: Vec<iroh::PublicKey> = config.join.iter().map(|ticket| ticket.0.endpoint_addr().id).collect();
        let bootstrap_peers = bootstrap.clone();
        let (world, world_task) =
            subscribe::<WorldMessage>(&gossip, world_topic(), None, bootstrap, me, &stats, &internal_tx).await?;

        let paths = Paths::new(&config.data_dir);
        let outbox: Vec<OutboxEntry> = match store::read_whole(&paths.outbox()) {
            Ok(outbox) => outbox.unwrap_or_default(),
            Err(error) => {
                let _ = events
                    .send(Event::Notice(format!("the outbox could not be read and is kept aside: {error}")))
                    .await;
                let _ = std::fs::rename(paths.outbox(), paths.outbox().with_extension("damaged"));
                Vec::new()
            }
        };
        let history: Vec<DirectLine> = store::read_tail(&paths.direct(), 500).unwrap_or_default();
        let seen_direct = history.iter().map(|line| (line.from, line.id)).collect();
        let saved: Option<Profile> = store::read_whole(&paths.profile()).ok().flatten();
        let fallback = saved.unwrap_or_else(|| Profile::guest(&me_key));
        let profile =
            Profile::new(config.name.as_deref().unwrap_or(&fallback.name), config.colour.unwrap_or(fallback.colour));
        let profile = if profile.name.is_empty() { Profile::guest(&me_key) } else { profile };
        if let Err(error) = store::write_atomic(&paths.profile(), &profile) {
            let _ = events.send(Event::Notice(format!("the profile could not be saved: {error}"))).await;
        }
        let ticket = EndpointTicket::new(endpoint.addr()).to_string();
        let long_ago = Instant::now().checked_sub(Duration::from_secs(60)).unwrap_or_else(Instant::now);
        let downloader = assets.downloader(&endpoint);
        let mut node = Node {
            secret,
            me,
            me_key,
            relays: config.relays,
            endpoint,
            router,
            gossip,
            memory,
            profile,
            paths,
            events,
            stats,
            internal_tx,
            internal_rx,
            world,
            world_task,
            regions: Vec::new(),
            directory: HashMap::new(),
            pose: None,
            sent_pose: None,
            pose_bytes: 120,
            clock: SequenceClock::default(),
            outbox,
            in_flight: HashSet::new(),
            seen_direct,
            last_announce: long_ago,
            last_outbox_try: long_ago,
            last_status: None,
            last_status_check: long_ago,
            ticket: ticket.clone(),
            replica: replica.clone(),
            downloader,
            assets: assets.clone(),
            sync_rx,
            synced_with: HashSet::new(),
            last_anti_entropy: Instant::now(),
            fetching: Arc::new(Mutex::new(HashSet::new())),
            _lock: lock,
        };
        node.emit(Event::Started { id: me_key, ticket, profile: node.profile.clone(), world: replica, assets }).await;
        node.emit(Event::DirectHistory(history)).await;
        node.set_regions(config.regions).await;
        // The peers of the tickets are asked straight into our regions too, without waiting to
        // hear on the world topic where they are.
        for subscription in &node.regions {
            let _ = subscription.sender.join_peers(bootstrap_peers.clone()).await;
        }
        Ok((node, mdns_events))
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut mdns: Option<impl Stream<Item = DiscoveryEvent> + Unpin>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(25));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    None | Some(Command::Shutdown) => break,
                    Some(command) => self.command(command).await,
                },
                Some(internal) = self.internal_rx.recv() => self.internal(internal).await,
                Some(report) = self.sync_rx.recv() => {
                    // A sync another peer asked of us.
                    if let Some(peer) = report.peer {
                        self.synced_with.insert(peer);
                    }
                    self.synced(report).await;
                }
                Some(found) = next_discovery(&mut mdns) => self.discovered(found).await,
                _ = tick.tick() => self.tick().await,
            }
        }
        self.shutdown().await;
    }

    async fn emit(&self, event: Event) {
        let _ = self.events.send(event).await;
    }

    fn current(&self) -> Option<&Subscription> {
        self.regions.first()
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Regions(regions) => self.set_regions(regions).await,
            Command::Pose(pose) => self.pose = Some(pose),
            Command::Chat(text) => self.chat(text).await,
            Command::Direct { to, text } => self.direct(to, text).await,
            Command::Join(ticket) => {
                let addr = ticket.0.endpoint_addr().clone();
                let id = addr.id;
                if id == self.me {
                    self.emit(Event::Notice("that is your own ticket".into())).await;
                    return;
                }
                self.memory.add_endpoint_info(addr);
                let _ = self.world.join_peers(vec![id]).await;
                for subscription in &self.regions {
                    let _ = subscription.sender.join_peers(vec![id]).await;
                }
                self.emit(Event::Notice(format!("joining {}", id.fmt_short()))).await;
            }
            Command::Profile(profile) => {
                self.profile = Profile::new(&profile.name, profile.colour);
                if let Err(error) = store::write_atomic(&self.paths.profile(), &self.profile) {
                    self.emit(Event::Notice(format!("the profile could not be saved: {error}"))).await;
                }
                self.sent_pose = None;
                self.announce().await;
            }
            Command::Build(op) => self.build(op),
            Command::Import(path) => self.import(path),
            Command::Fetch { model, hint } => self.fetch(model, hint),
            Command::Shutdown => {}
        }
    }

    /// Makes our change on a blocking thread: storing it waits for the disk.
    fn build(&mut self, op: Op) {
        let (replica, seed, seq, internal) =
            (self.replica.clone(), self.secret.to_bytes(), self.clock_next(), self.internal_tx.clone());
        tokio::task::spawn_blocking(move || {
            let result = replica.lock().author(&seed, seq, op).map(|signed| signed.to_bytes());
            let _ = internal.blocking_send(Internal::Built { op, result });
        });
    }

    fn import(&self, path: PathBuf) {
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

    /// Fetches a model from the hinted peer and whoever is near, unless it is here already.
    fn fetch(&mut self, model: ModelRef, hint: Option<PublicKey>) {
        let fetching = self.fetching.clone();
        if !fetching.lock().is_ok_and(|mut set| set.insert(model.hash)) {
            return;
        }
        let mut providers: Vec<iroh::PublicKey> =
            hint.and_then(|key| iroh::PublicKey::from_bytes(key.as_bytes()).ok()).into_iter().collect();
        for subscription in &self.regions {
            providers.extend(subscription.neighbours.iter().copied());
        }
        providers.extend(self.directory.keys().copied());
        let mut seen = HashSet::new();
        providers.retain(|peer| *peer != self.me && seen.insert(*peer));
        providers.truncate(MAX_PROVIDERS);
        let (assets, downloader, events) = (self.assets.clone(), self.downloader.clone(), self.events.clone());
        tokio::spawn(async move {
            let hash = model.hash;
            if let Ok((_, summary)) = assets.checked_model(hash).await {
                fetching.lock().map(|mut set| set.remove(&hash)).ok();
                let _ = events.send(Event::AssetReady { hash, summary }).await;
                return;
            }
            let progress_events = events.clone();
            let result = assets
                .fetch(&downloader, hash, providers, move |done, total| {
                    let _ = progress_events.try_send(Event::AssetProgress { hash, done, total });
                })
                .await;
            let event = match result {
                Ok(summary) if summary.triangles > u64::from(model.triangles) => Event::AssetFailed {
                    hash,
                    reason: format!(
                        "it draws {} triangles but its placer declared {}",
                        summary.triangles, model.triangles
                    ),
                },
                Ok(summary) if !fits_within(summary.bounds, model.min, model.max) => {
                    Event::AssetFailed { hash, reason: "it is larger than its placer declared".to_owned() }
                }
                Ok(summary) => Event::AssetReady { hash, summary },
                Err(error) => Event::AssetFailed { hash, reason: error.to_string() },
            };
            // Done, either way: a later request may try again.
            fetching.lock().map(|mut set| set.remove(&hash)).ok();
            let _ = events.send(event).await;
        });
    }

    /// Compares the world with `peer` in the background.
    fn sync(&mut self, peer: iroh::PublicKey) {
        if peer == self.me {
            return;
        }
        self.synced_with.insert(peer);
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

    async fn synced(&mut self, report: SyncReport) {
        if !report.parcels.is_empty() {
            self.emit(Event::WorldChanged(report.parcels)).await;
        }
        if let Some(peer) = report.peer.and_then(|peer| PublicKey::from_bytes(*peer.as_bytes()).ok()) {
            let (received, sent) = (report.received, report.sent);
            self.emit(Event::Synced { peer, received, sent }).await;
        }
    }

    fn city(&self) -> Option<&Subscription> {
        self.regions.iter().find(|subscription| subscription.region == RegionId::City)
    }

    async fn set_regions(&mut self, mut wanted: Vec<RegionId>) {
        let mut unique = BTreeSet::new();
        wanted.retain(|region| unique.insert(*region));
        wanted.truncate(MAX_REGIONS_PER_PEER);
        let mut kept = Vec::new();
        for subscription in std::mem::take(&mut self.regions) {
            if wanted.contains(&subscription.region) {
                kept.push(subscription);
            } else {
                self.broadcast(&subscription.sender, subscription.region, &RegionMessage::Leave).await;
            }
        }
        for region in wanted {
            if let Some(at) = kept.iter().position(|subscription| subscription.region == region) {
                self.regions.push(kept.remove(at));
                continue;
            }
            let bootstrap: Vec<iroh::PublicKey> = self
                .directory
                .iter()
                .filter(|(_, known)| known.regions.contains(&region))
                .map(|(peer, _)| *peer)
                .collect();
            match subscribe::<RegionMessage>(
                &self.gossip,
                region_topic(region),
                Some(region),
                bootstrap,
                self.me,
                &self.stats,
                &self.internal_tx,
            )
            .await
            {
                Ok((sender, task)) => {
                    self.regions.push(Subscription {
                        region,
                        sender,
                        neighbours: HashSet::new(),
                        asked: HashSet::new(),
                        _task: task,
                    });
                    let lines = store::read_tail(&self.paths.chat(region), CHAT_HISTORY).unwrap_or_default();
                    self.emit(Event::ChatHistory { region, lines }).await;
                }
                Err(error) => self.emit(Event::Notice(error)).await,
            }
        }
        self.sent_pose = None;
        self.announce().await;
    }

    async fn broadcast(&self, sender: &GossipSender, region: RegionId, message: &RegionMessage) -> Option<u64> {
        let sequence = self.clock_next();
        match encode(&self.secret, region_topic(region).as_bytes(), sequence, message) {
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

    fn clock_next(&self) -> u64 {
        self.clock.next()
    }

    async fn chat(&mut self, text: String) {
        let text = text.trim().to_owned();
        if text.is_empty() {
            return;
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            self.emit(Event::Notice(format!("a chat line is at most {MAX_TEXT_CHARS} characters"))).await;
            return;
        }
        let Some(subscription) = self.current() else {
            self.emit(Event::Notice("not in a region yet".into())).await;
            return;
        };
        let region = subscription.region;
        let message = RegionMessage::Chat { name: self.profile.name.clone(), text: text.clone() };
        if let Some(sequence) = self.broadcast(&subscription.sender, region, &message).await {
            let line = ChatLine { region, author: self.me_key, name: self.profile.name.clone(), text, sequence };
            self.keep_chat(&line).await;
            self.emit(Event::Chat(line)).await;
        }
    }

    /// Appends a chat line to the region's log on a blocking thread: a synced write takes
    /// milliseconds, and the node's loop must not wait for the disk while poses stream in.
    /// (Lines are read back sorted by their author's sequence, so the order of appends does not
    /// matter.)
    async fn keep_chat(&self, line: &ChatLine) {
        let (path, line, events) = (self.paths.chat(line.region), line.clone(), self.events.clone());
        tokio::task::spawn_blocking(move || {
            if let Err(error) = store::append(&path, &line) {
                let _ = events.blocking_send(Event::Notice(format!("chat could not be saved: {error}")));
            }
        });
    }

    async fn direct(&mut self, to: PublicKey, text: String) {
        let text = text.trim().to_owned();
        if text.is_empty() {
            return;
        }
        if to == self.me_key {
            self.emit(Event::Notice("that is you".into())).await;
            return;
        }
        let id = self.clock_next();
        let body = DirectText { name: self.profile.name.clone(), text: text.clone() };
        let bytes = match encode(&self.secret, to.as_bytes(), id, &body) {
            Ok(bytes) => bytes,
            Err(error) => {
                self.emit(Event::Notice(format!("not sent: {error}"))).await;
                return;
            }
        };
        let line = DirectLine { id, from: self.me_key, to, name: self.profile.name.clone(), text };
        if let Err(error) = store::append(&self.paths.direct(), &line) {
            self.emit(Event::Notice(format!("the message could not be saved: {error}"))).await;
        }
        self.outbox.push(OutboxEntry { line: line.clone(), bytes, reported: false });
        self.save_outbox().await;
        self.emit(Event::Direct(line)).await;
        self.try_deliver(id);
    }

    async fn save_outbox(&self) {
        if let Err(error) = store::write_atomic(&self.paths.outbox(), &self.outbox) {
            self.emit(Event::Notice(format!("the outbox could not be saved: {error}"))).await;
        }
    }

    fn try_deliver(&mut self, id: u64) {
        let Some(entry) = self.outbox.iter().find(|entry| entry.line.id == id) else { return };
        if !self.in_flight.insert(id) {
            return;
        }
        let Ok(to) = iroh::PublicKey::from_bytes(entry.line.to.as_bytes()) else { return };
        let endpoint = self.endpoint.clone();
        let bytes = entry.bytes.clone();
        let internal = self.internal_tx.clone();
        tokio::spawn(async move {
            let result = match tokio::time::timeout(DELIVERY_TIMEOUT, deliver(&endpoint, to, &bytes)).await {
                Ok(result) => result,
                Err(_) => Err("no answer in time".to_owned()),
            };
            let _ = internal.send(Internal::DirectDone { id, result }).await;
        });
    }

    async fn announce(&mut self) {
        self.last_announce = Instant::now();
        let message = WorldMessage::Here {
            regions: self.regions.iter().map(|sub| sub.region).collect(),
            name: self.profile.name.clone(),
        };
        let sequence = self.clock_next();
        if let Ok(bytes) = encode(&self.secret, world_topic().as_bytes(), sequence, &message) {
            let _ = self.world.broadcast(bytes.into()).await;
        }
    }

    async fn internal(&mut self, internal: Internal) {
        match internal {
            Internal::World(message) => self.heard_in_world(message).await,
            Internal::Region(region, message) => self.heard_in_region(region, message).await,
            Internal::Neighbour { region, peer, up } => {
                // A new neighbour in the city: compare worlds, once per pair while we run. Both
                // sides see the neighbour arrive; the one with the smaller id asks, so that the
                // changes cross once, not twice at the same time.
                if up && region == Some(RegionId::City) && !self.synced_with.contains(&peer) && self.me < peer {
                    self.sync(peer);
                }
                if let Some(subscription) = self.regions.iter_mut().find(|sub| Some(sub.region) == region) {
                    if up {
                        subscription.neighbours.insert(peer);
                        // A new neighbour here: let them see us at once, not at the next keepalive.
                        self.sent_pose = None;
                    } else {
                        subscription.neighbours.remove(&peer);
                        if subscription.neighbours.is_empty() {
                            // Alone: anyone heard of may be asked again.
                            subscription.asked.clear();
                        }
                    }
                }
            }
            Internal::Ended(None) => {
                let peers: Vec<iroh::PublicKey> = self.directory.keys().copied().collect();
                match subscribe::<WorldMessage>(
                    &self.gossip,
                    world_topic(),
                    None,
                    peers,
                    self.me,
                    &self.stats,
                    &self.internal_tx,
                )
                .await
                {
                    Ok((sender, task)) => {
                        self.world = sender;
                        self.world_task = task;
                    }
                    Err(error) => self.emit(Event::Notice(error)).await,
                }
            }
            Internal::Ended(Some(region)) => {
                // The subscription fell behind and was closed: join again.
                let regions: Vec<RegionId> = self.regions.iter().map(|sub| sub.region).collect();
                if regions.contains(&region) {
                    self.regions.retain(|sub| sub.region != region);
                    self.set_regions(regions).await;
                }
            }
            Internal::DirectIn(message) => {
                let Ok(from) = PublicKey::from_bytes(*message.author.as_bytes()) else { return };
                if !self.seen_direct.insert((from, message.sequence)) {
                    return;
                }
                let line = DirectLine {
                    id: message.sequence,
                    from,
                    to: self.me_key,
                    name: message.body.name,
                    text: message.body.text,
                };
                if let Err(error) = store::append(&self.paths.direct(), &line) {
                    self.emit(Event::Notice(format!("a private message could not be saved: {error}"))).await;
                }
                self.emit(Event::Direct(line)).await;
            }
            Internal::Built { op, result } => match result {
                Ok(bytes) => {
                    if let Some(sender) = self.city().map(|city| city.sender.clone()) {
                        self.broadcast(&sender, RegionId::City, &RegionMessage::Change(bytes)).await;
                    }
                    self.emit(Event::WorldChanged(vec![op.parcel()])).await;
                    self.emit(Event::Built(op)).await;
                }
                Err(error) => self.emit(Event::BuildRefused { op, reason: error.to_string() }).await,
            },
            Internal::Applied(applied) => {
                if !applied.parcels.is_empty() {
                    self.emit(Event::WorldChanged(applied.parcels)).await;
                }
            }
            Internal::Synced { peer, result } => match result {
                Ok(report) => self.synced(SyncReport { peer: Some(peer), ..report }).await,
                // Not reachable now (or not a Sanctuary peer): may be tried again when next met.
                Err(_) => {
                    self.synced_with.remove(&peer);
                }
            },
            Internal::DirectDone { id, result } => {
                self.in_flight.remove(&id);
                let Some(at) = self.outbox.iter().position(|entry| entry.line.id == id) else { return };
                match result {
                    Ok(()) => {
                        let entry = self.outbox.remove(at);
                        self.save_outbox().await;
                        self.emit(Event::DirectOutcome { id, to: entry.line.to, outcome: Delivery::Delivered }).await;
                    }
                    Err(reason) => {
                        let entry = &mut self.outbox[at];
                        if !entry.reported {
                            entry.reported = true;
                            let to = entry.line.to;
                            self.emit(Event::DirectOutcome { id, to, outcome: Delivery::Queued { reason } }).await;
                        }
                    }
                }
            }
        }
    }

    async fn heard_in_world(&mut self, message: Signed<WorldMessage>) {
        match message.body {
            WorldMessage::Here { regions, .. } => {
                let peer = message.author;
                let first_time = !self.directory.contains_key(&peer);
                for subscription in &mut self.regions {
                    let wanted = subscription.neighbours.len() < WANTED_NEIGHBOURS
                        && regions.contains(&subscription.region)
                        && !subscription.neighbours.contains(&peer);
                    if wanted && subscription.asked.insert(peer) {
                        let _ = subscription.sender.join_peers(vec![peer]).await;
                    }
                }
                self.directory.insert(peer, Known { regions, heard: Instant::now() });
                if first_time {
                    // A peer we had not heard: anything waiting for them goes now.
                    let waiting: Vec<u64> = self
                        .outbox
                        .iter()
                        .filter(|entry| entry.line.to.as_bytes() == peer.as_bytes())
                        .map(|e| e.line.id)
                        .collect();
                    for id in waiting {
                        self.try_deliver(id);
                    }
                }
            }
            WorldMessage::Gone => {
                self.directory.remove(&message.author);
            }
        }
    }

    async fn heard_in_region(&mut self, region: RegionId, message: Signed<RegionMessage>) {
        let Ok(author) = PublicKey::from_bytes(*message.author.as_bytes()) else { return };
        match message.body {
            RegionMessage::Presence(presence) => {
                let event = Event::Presence { region, author, sequence: message.sequence, presence };
                // Poses come often and the next one replaces this: drop rather than wait.
                if self.events.try_send(event).is_err() {
                    self.stats.count_dropped_event();
                }
            }
            RegionMessage::Chat { name, text } => {
                let line = ChatLine { region, author, name, text, sequence: message.sequence };
                self.keep_chat(&line).await;
                self.emit(Event::Chat(line)).await;
            }
            RegionMessage::Leave => self.emit(Event::Left { region, author }).await,
            RegionMessage::Change(bytes) => {
                let (replica, internal, events) = (self.replica.clone(), self.internal_tx.clone(), self.events.clone());
                tokio::task::spawn_blocking(move || match replica.apply_bytes(&[bytes], 1) {
                    Ok(applied) => {
                        let _ = internal.blocking_send(Internal::Applied(applied));
                    }
                    // Not stored means not taken: the next sync brings it again.
                    Err(error) => {
                        let _ =
                            events.blocking_send(Event::Notice(format!("a world change could not be saved: {error}")));
                    }
                });
            }
        }
    }

    async fn discovered(&mut self, found: DiscoveryEvent) {
        if let DiscoveryEvent::Discovered { endpoint_info, .. } = found {
            let peer = endpoint_info.endpoint_id;
            if peer != self.me && !self.directory.contains_key(&peer) {
                let _ = self.world.join_peers(vec![peer]).await;
            }
        }
    }

    async fn tick(&mut self) {
        let now = Instant::now();
        if let (Some(pose), Some(subscription)) = (self.pose, self.current()) {
            let (region, sender) = (subscription.region, subscription.sender.clone());
            let others = self.directory.values().filter(|known| known.regions.contains(&region)).count();
            let interval = pose_interval(others, self.pose_bytes);
            let due = match self.sent_pose {
                None => true,
                Some((sent, at)) => {
                    let since = now.duration_since(at);
                    (sent != pose && since >= interval) || since >= POSE_KEEPALIVE
                }
            };
            if due {
                let presence = Presence { name: self.profile.name.clone(), colour: self.profile.colour, pose };
                let sequence = self.clock_next();
                let message = RegionMessage::Presence(presence);
                if let Ok(bytes) = encode(&self.secret, region_topic(region).as_bytes(), sequence, &message) {
                    self.pose_bytes = bytes.len();
                    let _ = sender.broadcast(bytes.into()).await;
                }
                self.sent_pose = Some((pose, now));
            }
        }
        if now.duration_since(self.last_announce) >= ANNOUNCE_INTERVAL {
            self.announce().await;
            self.directory.retain(|_, known| now.duration_since(known.heard) < DIRECTORY_TIMEOUT);
        }
        if now.duration_since(self.last_anti_entropy) >= ANTI_ENTROPY_INTERVAL {
            self.last_anti_entropy = now;
            let neighbours: Vec<iroh::PublicKey> =
                self.city().map(|city| city.neighbours.iter().copied().collect()).unwrap_or_default();
            if !neighbours.is_empty() {
                let pick = neighbours[(wall_micros() as usize / 1000) % neighbours.len()];
                self.sync(pick);
            }
        }
        if now.duration_since(self.last_outbox_try) >= OUTBOX_RETRY {
            self.last_outbox_try = now;
            let waiting: Vec<u64> = self.outbox.iter().map(|entry| entry.line.id).collect();
            for id in waiting {
                self.try_deliver(id);
            }
        }
        // Connection state and addresses change slowly: look twice a second, not every tick.
        if now.duration_since(self.last_status_check) < Duration::from_millis(500) {
            return;
        }
        self.last_status_check = now;
        let addr = self.endpoint.addr();
        let relay = match self.relays {
            RelayChoice::Disabled => RelayState::Disabled,
            RelayChoice::Public if addr.relay_urls().next().is_some() => RelayState::Connected,
            RelayChoice::Public => RelayState::Connecting,
        };
        let status = Status {
            relay,
            known_peers: self.directory.len(),
            neighbours: self.current().map_or(0, |sub| sub.neighbours.len()),
            outbox: self.outbox.len(),
        };
        if self.last_status.as_ref() != Some(&status) {
            self.last_status = Some(status.clone());
            self.emit(Event::Status(status)).await;
        }
        let ticket = EndpointTicket::new(addr).to_string();
        if ticket != self.ticket {
            self.ticket = ticket.clone();
            self.emit(Event::Ticket(ticket)).await;
        }
    }

    async fn shutdown(mut self) {
        for subscription in std::mem::take(&mut self.regions) {
            self.broadcast(&subscription.sender, subscription.region, &RegionMessage::Leave).await;
        }
        let sequence = self.clock_next();
        if let Ok(bytes) = encode(&self.secret, world_topic().as_bytes(), sequence, &WorldMessage::Gone) {
            let _ = self.world.broadcast(bytes.into()).await;
        }
        // Give the goodbyes a moment to leave before the connections close.
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Err(error) = self.router.shutdown().await {
            self.emit(Event::Notice(format!("the node did not stop cleanly: {error}"))).await;
        }
        self.endpoint.close().await;
    }
}

async fn next_discovery(stream: &mut Option<impl Stream<Item = DiscoveryEvent> + Unpin>) -> Option<DiscoveryEvent> {
    match stream {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

/// Whether a model's real bounds lie within the box its placer declared (to a millimetre).
fn fits_within(bounds: Option<([f32; 3], [f32; 3])>, min: [f32; 3], max: [f32; 3]) -> bool {
    let Some((low, high)) = bounds else { return false };
    (0..3).all(|axis| low[axis] >= min[axis] - 1e-3 && high[axis] <= max[axis] + 1e-3)
}

/// Joins a gossip topic and starts the task that checks what arrives on it.
async fn subscribe<T>(
    gossip: &Gossip,
    topic: TopicId,
    region: Option<RegionId>,
    bootstrap: Vec<iroh::PublicKey>,
    me: iroh::PublicKey,
    stats: &Arc<NetStats>,
    internal: &mpsc::Sender<Internal>,
) -> Result<(GossipSender, TaskGuard), String>
where
    T: Limited + Send + 'static,
    Internal: From<(Option<RegionId>, Signed<T>)>,
{
    let topic_handle =
        gossip.subscribe(topic, bootstrap).await.map_err(|error| format!("cannot join a gossip topic: {error}"))?;
    let (sender, receiver) = topic_handle.split();
    let inbox = Inbox::<T>::new(*topic.as_bytes(), me, stats.clone());
    let task = tokio::spawn(forward(region, receiver, inbox, internal.clone()));
    Ok((sender, TaskGuard(task)))
}

impl From<(Option<RegionId>, Signed<WorldMessage>)> for Internal {
    fn from((_, message): (Option<RegionId>, Signed<WorldMessage>)) -> Self {
        Internal::World(message)
    }
}

impl From<(Option<RegionId>, Signed<RegionMessage>)> for Internal {
    fn from((region, message): (Option<RegionId>, Signed<RegionMessage>)) -> Self {
        Internal::Region(region.unwrap_or(RegionId::Lobby), message)
    }
}

/// Reads a topic's events, checks each message (see [`Inbox`]) and passes on those believed.
async fn forward<T>(
    region: Option<RegionId>,
    mut receiver: GossipReceiver,
    mut inbox: Inbox<T>,
    internal: mpsc::Sender<Internal>,
) where
    T: Limited + Send + 'static,
    Internal: From<(Option<RegionId>, Signed<T>)>,
{
    let start = Instant::now();
    let mut tidy = tokio::time::interval(Duration::from_secs(30));
    loop {
        tokio::select! {
            event = receiver.next() => {
                let internal_event = match event {
                    Some(Ok(GossipEvent::Received(message))) => {
                        match inbox.accept(&message.content, start.elapsed()) {
                            Some(message) => Internal::from((region, message)),
                            None => continue,
                        }
                    }
                    Some(Ok(GossipEvent::NeighborUp(peer))) => Internal::Neighbour { region, peer, up: true },
                    Some(Ok(GossipEvent::NeighborDown(peer))) => Internal::Neighbour { region, peer, up: false },
                    Some(Ok(GossipEvent::Lagged)) => continue,
                    Some(Err(_)) | None => {
                        let _ = internal.send(Internal::Ended(region)).await;
                        return;
                    }
                };
                if internal.send(internal_event).await.is_err() {
                    return;
                }
            }
            _ = tidy.tick() => inbox.tidy(start.elapsed(), wall_micros()),
        }
    }
}

/// Sends one private message over a direct connection and waits for the recipient's "ok".
async fn deliver(endpoint: &Endpoint, to: iroh::PublicKey, bytes: &[u8]) -> Result<(), String> {
    let connection = endpoint.connect(to, alpn::DIRECT).await.map_err(|error| format!("cannot reach them: {error}"))?;
    let (mut send, mut recv) = connection.open_bi().await.map_err(|error| error.to_string())?;
    send.write_all(bytes).await.map_err(|error| error.to_string())?;
    send.finish().map_err(|error| error.to_string())?;
    let reply = recv.read_to_end(16).await.map_err(|error| error.to_string())?;
    connection.close(0u32.into(), b"sent");
    if reply == b"ok" { Ok(()) } else { Err("their node refused the message".to_owned()) }
}

/// Accepts private messages: one per stream, checked like everything else, from the person
/// the connection's key proves to be on the other end.
#[derive(Debug, Clone)]
struct DirectProtocol {
    me: iroh::PublicKey,
    internal: mpsc::Sender<Internal>,
    stats: Arc<NetStats>,
    limiter: Arc<Mutex<RateLimiter>>,
    start: Instant,
}

impl ProtocolHandler for DirectProtocol {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let remote = connection.remote_id();
        while let Ok((mut send, mut recv)) = connection.accept_bi().await {
            let verdict: &[u8] = match recv.read_to_end(MAX_MESSAGE_BYTES).await {
                Err(_) => {
                    self.stats.count_error(&crate::wire::WireError::TooLarge { len: MAX_MESSAGE_BYTES + 1 });
                    b"no"
                }
                Ok(bytes) => match decode::<DirectText>(&bytes, self.me.as_bytes()) {
                    Ok(message) if message.author == remote => {
                        let allowed = self
                            .limiter
                            .lock()
                            .map(|mut limiter| limiter.allow(remote, self.start.elapsed()))
                            .unwrap_or(false);
                        if allowed {
                            self.stats.count_accepted();
                            let _ = self.internal.send(Internal::DirectIn(message)).await;
                            b"ok"
                        } else {
                            self.stats.count_flooded();
                            b"no"
                        }
                    }
                    Ok(_) => {
                        self.stats.count_error(&crate::wire::WireError::BadSignature);
                        b"no"
                    }
                    Err(error) => {
                        self.stats.count_error(&error);
                        b"no"
                    }
                },
            };
            if send.write_all(verdict).await.is_err() || send.finish().is_err() {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pose_rate_falls_as_the_region_fills_and_stays_within_the_budget() {
        assert_eq!(pose_interval(0, 158), FASTEST_POSE_INTERVAL);
        assert_eq!(pose_interval(7, 158), FASTEST_POSE_INTERVAL);
        for others in [31usize, 99, 500, 999] {
            let interval = pose_interval(others, 158);
            let down = others as f64 * (158.0 + 64.0) * 8.0 / interval.as_secs_f64();
            assert!(down <= DOWNLINK_BUDGET_BITS_PER_SECOND as f64, "{others} others: {down} bit/s");
        }
        assert_eq!(pose_interval(100_000, 158), POSE_KEEPALIVE);
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

    #[test]
    fn sequences_always_grow() {
        let clock = SequenceClock::default();
        let mut last = 0;
        for _ in 0..10_000 {
            let next = clock.next();
            assert!(next > last);
            last = next;
        }
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
