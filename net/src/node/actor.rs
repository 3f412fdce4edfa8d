//! The task that owns the node: it opens the endpoint, the stores and every protocol, then
//! routes commands, helper tasks' messages, mDNS discoveries and a 25 ms tick to the module each
//! belongs to. It holds no protocol's state of its own beyond the connection status.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{Stream, StreamExt};
use iroh::address_lookup::MemoryLookup;
use iroh::endpoint::presets;
use iroh::protocol::Router;
use iroh::{Endpoint, RelayMode, SecretKey};
use iroh_gossip::Gossip;
use iroh_mdns_address_lookup::{DiscoveryEvent, MdnsAddressLookup};
use iroh_tickets::endpoint::EndpointTicket;
use sanctuary_engine::avatar::AvatarRef;
use sanctuary_engine::{ModelSummary, Op, PublicKey, RegionId};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::agents::Agents;
use super::avatar::load_avatar;
use super::blocks::Blocks;
use super::board::{BoardProtocol, Whiteboard};
use super::cells::Cells;
use super::directory::Directory;
use super::gate::Gate;
use super::links::{Admitted, Positions};
use super::meeting::Meeting;
use super::near::{Here, Near, NearProtocol};
use super::outbox::{Outbox, OutboxEntry};
use super::presence::{Regions, subscribe};
use super::receipts::{ReceiptProtocol, Receipts};
use super::rooms::{PrivateRooms, RoomProtocol};
use super::sale::{SaleDesk, SaleProtocol};
use super::screen::Screen;
use super::stage::Stage;
use super::trust::{TrustState, TrustView};
use super::voice::{Voice, VoiceDatagram, VoiceProtocol, VoiceSender};
use super::volumes::Volumes;
use super::world::{Wanted, WorldSync};
use super::{Command, DirectLine, Event, NodeConfig, Profile, RelayChoice, RelayState, Status, world_topic};
use crate::assets::AssetStore;
use crate::cells::Cell;
use crate::direct::Undelivered;
use crate::direct::{DirectProtocol, DirectStore, KeepError};
use crate::film_store::{FILM_GC_INTERVAL, FilmStore};
use crate::inbox::NetStats;
use crate::replica::{Applied, AuthorError, SharedReplica, SyncProtocol, SyncReport};
use crate::store::{self, Paths};
use crate::uploads::Uploads;
use crate::wire::{MAX_MESSAGE_BYTES, RegionMessage, Signed, WorldMessage};
use crate::{alpn, load_or_create_identity};

/// The service name under which peers announce themselves on the local network.
const MDNS_SERVICE: &str = "sanctuary";

/// Microseconds since 1970 on this machine's clock.
pub(super) fn wall_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_micros() as u64).unwrap_or(0)
}

/// Sequence numbers that always grow, even across restarts (they start from the clock) and
/// when the clock steps back.
#[derive(Debug, Default)]
pub(super) struct SequenceClock {
    last: std::sync::atomic::AtomicU64,
}

impl SequenceClock {
    fn next(&self) -> u64 {
        use std::sync::atomic::Ordering;
        let now = wall_micros();
        let previous = self
            .last
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| Some(now.max(last.saturating_add(1))))
            .unwrap_or(now);
        now.max(previous.saturating_add(1))
    }
}

/// A task that stops when this is dropped.
#[derive(Debug)]
pub(super) struct TaskGuard(pub(super) JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Messages from the node's helper tasks to its loop.
#[derive(Debug)]
pub(super) enum Internal {
    World(Signed<WorldMessage>),
    Region(RegionId, Signed<RegionMessage>),
    /// Heard on the topic of a cell of a region (see [`crate::cells`]).
    Cell(RegionId, Cell, Signed<RegionMessage>),
    Neighbour {
        scope: Scope,
        peer: iroh::PublicKey,
        up: bool,
    },
    Ended(Scope),
    DirectDone {
        id: u64,
        result: Result<(), Undelivered>,
    },
    Trust(Box<TrustView>),
    Built {
        op: Op,
        result: Result<Vec<u8>, AuthorError>,
    },
    Applied(Applied),
    Synced {
        peer: iroh::PublicKey,
        result: Result<SyncReport, String>,
    },
    Refetch {
        wanted: Wanted,
        hint: Option<PublicKey>,
        attempt: u32,
    },
    Worn(Result<(AvatarRef, String, ModelSummary), String>),
    VoiceDialled {
        peer: iroh::PublicKey,
        result: Result<iroh::endpoint::Connection, String>,
    },
    NearDialled {
        peer: iroh::PublicKey,
        result: Result<iroh::endpoint::Connection, String>,
    },
    FilmShared(Result<([u8; 32], u64, String, std::path::PathBuf), String>),
    DeckShared(Result<Vec<crate::stage::SlideRef>, String>),
    SlideFetched([u8; 32]),
    BoardFetched(Box<Result<crate::whiteboard::Board, String>>),
    RoomHanded {
        from: iroh::PublicKey,
        bytes: Vec<u8>,
    },
    SaleAsked {
        buyer: PublicKey,
        ask: super::sale::Ask,
        reply: tokio::sync::oneshot::Sender<Vec<u8>>,
    },
    RoomPushed {
        to: [u8; 32],
        bytes: Vec<u8>,
        handed: bool,
    },
    ReceivedBlobs(crate::assets::Served),
    KeptChecked {
        kept: Vec<(iroh::PublicKey, u64)>,
        asked: usize,
        all: u64,
    },
    Hosting(Box<crate::hosting::HostingPlan>),
}

/// Which topic something was heard on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// The world topic.
    World,
    /// A region's topic (or a private room's).
    Region(RegionId),
    /// The topic of a cell of a region.
    Cell(RegionId, Cell),
}

impl Scope {
    /// The region, for a region's or a cell's topic.
    pub(super) fn region(self) -> Option<RegionId> {
        match self {
            Scope::World => None,
            Scope::Region(region) | Scope::Cell(region, _) => Some(region),
        }
    }
}

impl From<(Scope, Signed<WorldMessage>)> for Internal {
    fn from((_, message): (Scope, Signed<WorldMessage>)) -> Self {
        Internal::World(message)
    }
}

impl From<(Scope, Signed<RegionMessage>)> for Internal {
    fn from((scope, message): (Scope, Signed<RegionMessage>)) -> Self {
        match scope {
            Scope::Cell(region, cell) => Internal::Cell(region, cell, message),
            Scope::Region(region) => Internal::Region(region, message),
            Scope::World => Internal::Region(RegionId::Lobby, message),
        }
    }
}

/// Where a topic's task sends what it heard: messages into a bounded queue, dropped (and
/// counted) when the node's loop is behind, and neighbour changes into an unbounded one
/// (gossip's own membership bounds them). Neither ever waits, so the node's loop, gossip's actor
/// and the topics' tasks can never wait on each other in a circle (the loop waits on gossip when
/// it broadcasts; gossip waits on a topic's task to take what arrived).
#[derive(Debug, Clone)]
pub(super) struct TopicOut {
    pub(super) messages: mpsc::Sender<Internal>,
    pub(super) control: mpsc::UnboundedSender<Internal>,
}

/// The node: what every module shares (identity, endpoint, stores, the way out to the program),
/// and each module's own state.
pub(super) struct Node {
    pub(super) secret: SecretKey,
    pub(super) me: iroh::PublicKey,
    pub(super) me_key: PublicKey,
    relays: RelayChoice,
    pub(super) endpoint: Endpoint,
    /// Who we block.
    pub(super) blocks: Blocks,
    /// Trust worked out, and the shields.
    pub(super) trust: TrustState,
    /// Volumes and mutes the person set.
    pub(super) volumes: Volumes,
    router: Router,
    pub(super) gossip: Gossip,
    pub(super) gate: Arc<Gate>,
    pub(super) voice: Voice,
    /// Where people are, from their signed poses: for voice and near poses.
    pub(super) positions: Positions,
    pub(super) near: Near,
    memory: MemoryLookup,
    pub(super) profile: Profile,
    /// The avatar we wear (`None`: a plain body).
    pub(super) avatar: Option<AvatarRef>,
    /// The offer we take tips through.
    pub(super) tip_offer: Option<String>,
    /// Our agent's card, and the agents heard (`agents`).
    pub(super) agents: Agents,
    pub(super) paths: Paths,
    pub(super) events: mpsc::Sender<Event>,
    pub(super) stats: Arc<NetStats>,
    pub(super) internal_tx: mpsc::Sender<Internal>,
    internal_rx: mpsc::Receiver<Internal>,
    /// What the topics' tasks send (see [`TopicOut`]).
    pub(super) topic_out: TopicOut,
    control_rx: mpsc::UnboundedReceiver<Internal>,
    clock: SequenceClock,
    pub(super) replica: SharedReplica,
    pub(super) assets: AssetStore,
    /// Films shared and watched, let go when nobody holds them.
    pub(super) films: FilmStore,
    /// Fetches models into `assets`, pooling its connections across fetches.
    pub(super) downloader: iroh_blobs::api::downloader::Downloader,
    pub(super) direct_store: Arc<DirectStore>,
    direct_rx: mpsc::Receiver<Result<DirectLine, KeepError>>,
    sync_rx: mpsc::Receiver<SyncReport>,
    /// Region topics (`presence`).
    pub(super) regions: Regions,
    /// The cells of the current region: what we hear of it depends on where we are.
    pub(super) cells: Cells,
    /// The world topic (`directory`).
    pub(super) directory: Directory,
    /// Private messages on their way (`outbox`).
    pub(super) outbox: Outbox,
    /// Syncing and fetching (`world`).
    pub(super) world_sync: WorldSync,
    /// The screen of the region we are in (`screen`).
    pub(super) screen: Screen,
    /// The lecture hall's stage, when we are in it (`stage`).
    pub(super) stage: Stage,
    pub(super) meeting: Meeting,
    pub(super) whiteboard: Whiteboard,
    /// Our private room and those we may enter (`rooms`).
    pub(super) rooms: PrivateRooms,
    /// Buyers' asks waiting for the program's invoice.
    pub(super) sales: SaleDesk,
    /// Receipts we sign for what we receive, and our record of those others sign (`receipts`).
    pub(super) receipts: Receipts,
    last_status: Option<Status>,
    last_status_check: Instant,
    ticket: String,
    /// Held while the node runs: the data directory is ours.
    _lock: std::fs::File,
}

impl Node {
    pub(super) async fn start(
        config: NodeConfig,
        events: mpsc::Sender<Event>,
        stats: Arc<NetStats>,
        voice_out: mpsc::Sender<VoiceDatagram>,
        voice_sender: VoiceSender,
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
        // The gate checks every message before gossip relays it.
        let vouched = crate::inbox::Vouched::default();
        let gate = Gate::new(stats.clone(), vouched.clone());
        let gossip = Gossip::builder()
            .max_message_size(2 * MAX_MESSAGE_BYTES)
            .message_filter(gate.clone())
            .spawn(endpoint.clone());
        let (internal_tx, internal_rx) = mpsc::channel(4096);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let topic_out = TopicOut { messages: internal_tx.clone(), control: control_tx };
        let paths = Paths::new(&config.data_dir);
        let (direct_store, mut history) = DirectStore::open(paths.direct());
        let (blocks, blocks_problem) = Blocks::open(paths.blocks());
        if let Some(problem) = blocks_problem {
            let _ = events.send(Event::Notice(problem)).await;
        }
        history.retain(|line| !blocks.contains(line.from.as_bytes()));
        let (direct_tx, direct_rx) = mpsc::channel(64);
        let (volumes, volumes_problem) = Volumes::open(paths.volumes());
        if let Some(problem) = volumes_problem {
            let _ = events.send(Event::Notice(problem)).await;
        }
        let (trust, trust_problem) = TrustState::open(paths.shields(), vouched);
        if let Some(problem) = trust_problem {
            let _ = events.send(Event::Notice(problem)).await;
        }
        let (meeting, meeting_problem) = Meeting::open(paths.polls());
        if let Some(problem) = meeting_problem {
            let _ = events.send(Event::Notice(problem)).await;
        }
        let shared_board = Arc::default();
        let (whiteboard, board_problem) = Whiteboard::open(paths.board(), Arc::clone(&shared_board));
        if let Some(problem) = board_problem {
            let _ = events.send(Event::Notice(problem)).await;
        }
        let (rooms, rooms_problem) = PrivateRooms::open(paths.rooms(), me.as_bytes())?;
        if let Some(problem) = rooms_problem {
            let _ = events.send(Event::Notice(problem)).await;
        }
        let (receipts, receipts_problems) = Receipts::open(&config.data_dir);
        for problem in receipts_problems {
            let _ = events.send(Event::Notice(problem)).await;
        }
        let direct =
            DirectProtocol::new(me, direct_store.clone(), direct_tx, stats.clone(), blocks.clone(), trust.door.clone());
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
        let audible = Admitted::default();
        let (near_admitted, near_here) = (Admitted::default(), Here::default());
        let sync = SyncProtocol::new(replica.clone(), sync_tx);
        let films = FilmStore::open(&config.data_dir.join("films"), FILM_GC_INTERVAL)
            .await
            .map_err(|error| format!("cannot open the film store: {error}"))?;
        let (uploads, upload_events) = Uploads::start(config.upload_rate);
        // One count and one cap for everything served, films and models alike.
        let film_blobs = iroh_blobs::BlobsProtocol::new(films.assets().store(), Some(upload_events.clone()));
        let blobs = iroh_blobs::BlobsProtocol::new(assets.store(), Some(upload_events));
        let router = Router::builder(endpoint.clone())
            .accept(alpn::GOSSIP, gossip.clone())
            .accept(alpn::DIRECT, direct)
            .accept(alpn::WORLD, sync)
            .accept(alpn::BLOBS, blobs)
            .accept(alpn::FILMS, film_blobs)
            .accept(alpn::BOARD, BoardProtocol::new(shared_board))
            .accept(alpn::ROOM, RoomProtocol::new(internal_tx.clone()))
            .accept(alpn::SALE, SaleProtocol::new(internal_tx.clone()))
            .accept(alpn::RECEIPT, ReceiptProtocol::new(me, receipts.record.clone(), Some(uploads.clone())))
            .accept(alpn::VOICE, VoiceProtocol::new(audible.clone(), gate.clone(), voice_out, stats.clone()))
            .accept(
                alpn::POSE,
                NearProtocol::new(
                    near_admitted.clone(),
                    near_here.clone(),
                    gate.clone(),
                    events.clone(),
                    stats.clone(),
                ),
            )
            .spawn();

        for ticket in &config.join {
            memory.add_endpoint_info(ticket.0.endpoint_addr().clone());
        }
        let bootstrap: Vec<iroh::PublicKey> = config.join.iter().map(|ticket| ticket.0.endpoint_addr().id).collect();
        let bootstrap_peers = bootstrap.clone();
        let (world, world_task) =
            subscribe::<WorldMessage>(&gossip, &gate, world_topic(), Scope::World, bootstrap, me, &topic_out, None)
                .await?;

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
        let saved: Option<Profile> = store::read_whole(&paths.profile()).ok().flatten();
        let fallback = saved.unwrap_or_else(|| Profile::guest(&me_key));
        let profile =
            Profile::new(config.name.as_deref().unwrap_or(&fallback.name), config.colour.unwrap_or(fallback.colour));
        let profile = if profile.name.is_empty() { Profile::guest(&me_key) } else { profile };
        if let Err(error) = store::write_atomic(&paths.profile(), &profile) {
            let _ = events.send(Event::Notice(format!("the profile could not be saved: {error}"))).await;
        }
        let avatar = load_avatar(&paths, &events).await;
        let agents = Agents::new(config.agent, &me)?;
        let ticket = EndpointTicket::new(endpoint.addr()).to_string();
        let long_ago = Instant::now().checked_sub(Duration::from_secs(60)).unwrap_or_else(Instant::now);
        let downloader = assets.downloader(&endpoint);
        let world_sync =
            WorldSync::new(config.hosting.clone(), replica.clone(), secret.to_bytes(), internal_tx.clone());
        let mut node = Node {
            secret,
            me,
            me_key,
            relays: config.relays,
            endpoint,
            router,
            gossip,
            gate,
            memory,
            profile,
            avatar,
            tip_offer: None,
            agents,
            paths,
            events,
            stats,
            internal_tx,
            internal_rx,
            topic_out,
            control_rx,
            clock: SequenceClock::default(),
            replica: replica.clone(),
            assets: assets.clone(),
            films,
            downloader,
            direct_store,
            direct_rx,
            sync_rx,
            regions: Regions::default(),
            cells: Cells::default(),
            voice: Voice::new(audible, voice_sender),
            positions: Positions::new(blocks.clone()),
            near: Near::new(near_admitted, near_here),
            blocks,
            trust,
            volumes,
            directory: Directory::new(world, world_task),
            outbox: Outbox::new(outbox),
            world_sync,
            screen: Screen::new(config.max_film_bytes),
            stage: Stage::default(),
            meeting,
            whiteboard,
            rooms,
            sales: SaleDesk::default(),
            receipts,
            last_status: None,
            last_status_check: long_ago,
            ticket: ticket.clone(),
            _lock: lock,
        };
        node.emit(Event::Started {
            id: me_key,
            ticket,
            profile: node.profile.clone(),
            world: replica,
            assets,
            uploads,
        })
        .await;
        node.emit(Event::DirectHistory(history)).await;
        node.emit(Event::Wearing { avatar: node.avatar, name: None, summary: None }).await;
        node.emit(Event::Blocks(node.blocks.list())).await;
        node.emit(Event::Shields(node.trust.shields)).await;
        node.emit(Event::Volumes(node.volumes.list())).await;
        node.tell_own_contribution().await;
        node.sign_profile();
        node.tell_rooms().await;
        node.refresh_trust();
        node.set_regions(config.regions).await;
        // The peers of the tickets are asked straight into our regions too, without waiting to
        // hear on the world topic where they are.
        for subscription in node.regions.subscriptions.iter().filter(|sub| sub.room.is_none()) {
            let _ = subscription.sender.join_peers(bootstrap_peers.clone()).await;
        }
        Ok((node, mdns_events))
    }

    pub(super) async fn run(
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
                Some(control) = self.control_rx.recv() => self.internal(control).await,
                Some(arrived) = self.direct_rx.recv() => match arrived {
                    Ok(line) => self.emit(Event::Direct(line)).await,
                    Err(error) => self.emit(Event::Notice(format!("a private message was refused: {error}"))).await,
                },
                // A sync another peer asked of us.
                Some(report) = self.sync_rx.recv() => self.synced(report).await,
                Some(found) = next_discovery(&mut mdns) => self.discovered(found).await,
                _ = tick.tick() => self.tick().await,
            }
        }
        self.shutdown().await;
    }

    pub(super) async fn emit(&self, event: Event) {
        let _ = self.events.send(event).await;
    }

    pub(super) fn clock_next(&self) -> u64 {
        self.clock.next()
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Regions(regions) => self.set_regions(regions).await,
            Command::Pose(pose) => self.regions.pose = Some(pose),
            Command::Mic(state) => self.regions.mic = Some(state),
            Command::Shields(shields) => self.set_shields(shields).await,
            Command::Volume { person, volume } => self.set_volume(person, volume).await,
            Command::Block(key) => self.block(key, true).await,
            Command::Unblock(key) => self.block(key, false).await,
            Command::Hearing { region, hearing } => self.voice.set_rule(region, hearing),
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
                let _ = self.directory.sender().join_peers(vec![id]).await;
                for subscription in self.regions.subscriptions.iter().filter(|sub| sub.room.is_none()) {
                    let _ = subscription.sender.join_peers(vec![id]).await;
                }
                self.emit(Event::Notice(format!("joining {}", id.fmt_short()))).await;
            }
            Command::Profile(profile) => {
                self.profile = Profile::new(&profile.name, profile.colour);
                if let Err(error) = store::write_atomic(&self.paths.profile(), &self.profile) {
                    self.emit(Event::Notice(format!("the profile could not be saved: {error}"))).await;
                }
                self.regions.sent_pose = None;
                self.announce().await;
                self.sign_profile();
            }
            Command::Build(op) => self.build(op),
            Command::Import(path) => self.import(path),
            Command::Fetch { model, hint } => self.fetch(Wanted::Model(model), hint),
            Command::AskContribution(person) => self.ask_contribution(person).await,
            Command::FetchAvatar { avatar, hint } => self.fetch(Wanted::Avatar(avatar), hint),
            Command::Wear(path) => self.wear(path).await,
            Command::TipOffer(offer) => self.set_tip_offer(offer).await,
            Command::AskSale { seller, listing } => self.ask_sale(seller, listing),
            Command::AnswerSale { ask, answer } => self.answer_sale(ask, answer),
            Command::AskHosting { host, mib, months } => self.ask_hosting(host, mib, months),
            Command::AnswerHosting { ask, answer } => self.answer_hosting(ask, answer),
            Command::PaidHosting(paid) => self.world_sync.set_paid(paid),
            Command::ShareFilm(path) => self.share_film(path),
            Command::Screen(action) => self.screen_action(action).await,
            Command::Present(paths) => self.present(paths),
            Command::Stage(action) => self.stage_action(action).await,
            Command::Hand(up) => self.raise_hand(up).await,
            Command::OpenPoll { question, options, open_for } => self.open_poll(question, options, open_for).await,
            Command::Vote { poll, choice } => self.vote(poll, choice).await,
            Command::ExportPoll { poll, to } => self.export_poll(poll, to).await,
            Command::Draw(stroke) => self.draw(stroke).await,
            Command::ClearBoard => self.clear_board().await,
            command @ (Command::Invite(_) | Command::Uninvite(_) | Command::Visit(_)) => {
                self.room_command(command).await
            }
            Command::Shutdown => {}
        }
    }

    async fn internal(&mut self, internal: Internal) {
        match internal {
            Internal::World(message) => self.heard_in_world(message).await,
            Internal::Region(region, message) => self.heard_in_region(region, message).await,
            Internal::Cell(region, cell, message) => self.heard_in_cell(region, cell, message).await,
            Internal::Neighbour { scope: Scope::Cell(region, cell), peer, up } => {
                self.cell_neighbour(region, cell, peer, up)
            }
            Internal::Neighbour { scope, peer, up } => {
                self.world_neighbour(scope.region(), peer, up);
                self.region_neighbour(scope.region(), peer, up);
            }
            Internal::Ended(Scope::World) => self.rejoin_world().await,
            Internal::Ended(Scope::Region(region)) => self.rejoin_region(region).await,
            Internal::Ended(Scope::Cell(region, cell)) => self.rejoin_cell(region, cell).await,
            Internal::DirectDone { id, result } => self.delivery_done(id, result).await,
            Internal::Trust(view) => self.trust_computed(*view).await,
            Internal::Built { op, result } => self.built(op, result).await,
            Internal::Applied(applied) => self.applied(applied).await,
            Internal::Synced { peer, result } => self.sync_done(peer, result).await,
            Internal::Refetch { wanted, hint, attempt } => self.fetch_attempt(wanted, hint, attempt),
            Internal::Hosting(plan) => self.hosting_planned(plan).await,
            Internal::ReceivedBlobs(served) => self.received_blobs(served),
            Internal::KeptChecked { kept, asked, all } => self.kept_checked(kept, asked, all),
            Internal::Worn(result) => self.worn(result).await,
            Internal::VoiceDialled { peer, result } => self.voice_dialled(peer, result),
            Internal::NearDialled { peer, result } => self.near_dialled(peer, result),
            Internal::FilmShared(result) => self.film_shared(result).await,
            Internal::DeckShared(deck) => self.deck_shared(deck).await,
            Internal::SlideFetched(hash) => self.slide_fetched(hash).await,
            Internal::BoardFetched(result) => self.board_fetched(*result),
            Internal::RoomHanded { from, bytes } => self.room_handed(from, bytes).await,
            Internal::SaleAsked { buyer, ask, reply } => self.sale_asked(buyer, ask, reply).await,
            Internal::RoomPushed { to, bytes, handed } => self.room_pushed(to, bytes, handed),
        }
    }

    async fn tick(&mut self) {
        let now = Instant::now();
        self.update_cells(now).await;
        self.send_pose(now).await;
        self.cells_tick(now).await;
        self.directory_tick(now).await;
        self.world_tick(now);
        self.outbox_tick(now);
        self.voice_tick(now);
        self.near_tick(now);
        self.trust_tick();
        self.screen_tick(now).await;
        self.stage_tick(now).await;
        self.meeting_tick(now).await;
        self.board_tick(now).await;
        self.rooms_tick(now);
        self.receipts_tick(now).await;
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
        let socket = &self.endpoint.metrics().socket;
        let status = Status {
            relay,
            known_peers: self.directory.len(),
            neighbours: self.regions.current().map_or(0, |sub| sub.neighbours.len()),
            crowd: self.regions.crowd(),
            voice_listeners: self.voice.sender.listeners(),
            near_neighbours: self.near.neighbours(),
            cells: self.cells.listening(),
            far_cells: self.cells.far.len(),
            bytes_sent: socket.send_ipv4.get() + socket.send_ipv6.get() + socket.send_relay.get(),
            bytes_received: socket.recv_data_ipv4.get() + socket.recv_data_ipv6.get() + socket.recv_data_relay.get(),
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
        for problem in [self.meeting.save(), self.whiteboard.save()].into_iter().flatten() {
            self.emit(Event::Notice(problem)).await;
        }
        for problem in self.receipts.save() {
            self.emit(Event::Notice(problem)).await;
        }
        self.leave_regions().await;
        self.say_gone().await;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
