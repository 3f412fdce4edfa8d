//! `sanctuary node`: the network node alone, with no window, until Ctrl-C or a stop from the
//! service manager (SIGTERM); its status page on a loopback port (see
//! `sanctuary_net::status_page`); with `--sell-hosting`, its wallet and hosting desk
//! ([`seller`]).

pub(crate) mod seller;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sanctuary_engine::{PublicKey, RegionId};
use sanctuary_net::hosting::{HostingPlan, HostingPolicy};
use sanctuary_net::status_page::{KeptRow, MAX_SERVED_LISTED, Served, StatusBoard, StatusServer, StatusSnapshot};
use sanctuary_net::uploads::Uploads;
use sanctuary_net::{Event, NetRuntime, RelayState, SharedReplica, Status, spawn_node};

use crate::cli::NodeArgs;

/// How often the status page's figures are brought up to date.
const STATUS_EVERY: Duration = Duration::from_secs(2);
/// How often the wallet thread's news is looked at, when the node sells hosting.
const WALLET_EVERY: Duration = Duration::from_millis(100);
/// How often the store on disk is measured (and the hosting ledger written).
const MEASURE_EVERY: Duration = Duration::from_secs(30);
/// Files looked at when measuring the store (a bound, not an expectation).
const MAX_MEASURED_FILES: usize = 200_000;

/// What the home node has learnt, for its status page.
#[derive(Debug)]
struct Watch {
    started: Instant,
    id: String,
    name: String,
    regions: Vec<String>,
    status: Option<Status>,
    world: Option<SharedReplica>,
    uploads: Option<Uploads>,
    stored_bytes: u64,
    owner: Option<PublicKey>,
    /// What the node keeps, and for whom, as last worked out.
    plan: Option<Box<HostingPlan>>,
    /// The names of the people in the plan, as heard in their presence.
    names: HashMap<PublicKey, String>,
    /// The people the plan lists (kept for or declined): whose presence names are kept. A set,
    /// since every presence heard in a crowd asks it.
    listed: HashSet<PublicKey>,
    /// What it served, by the receipts others signed for it.
    receipts: sanctuary_net::receipts::Contribution,
}

impl Watch {
    /// A presence was heard: the name is kept when the plan lists its person.
    fn heard(&mut self, key: PublicKey, name: &str) {
        if self.listed.contains(&key) {
            self.names.insert(key, name.to_owned());
        }
    }

    /// A new plan: names of people no longer in it are let go.
    fn planned(&mut self, plan: Box<HostingPlan>) {
        self.listed = plan.kept_for.iter().map(|kept| kept.person).chain(plan.declined.iter().copied()).collect();
        self.names.retain(|key, _| self.listed.contains(key));
        self.plan = Some(plan);
    }

    fn kept_rows(&self) -> Vec<KeptRow> {
        let Some(plan) = &self.plan else { return Vec::new() };
        // The world is locked once for every row, not once a row.
        let world = self.world.as_ref().map(SharedReplica::world);
        plan.kept_for
            .iter()
            .map(|kept| KeptRow {
                key: kept.person.to_string(),
                // As heard in their presence, else as they signed it into the world.
                name: self.names.get(&kept.person).cloned().or_else(|| {
                    let (name, _) = world.as_ref()?.profile_of(&kept.person)?;
                    Some(sanctuary_net::wire::clean_text(name.as_str()))
                }),
                role: kept.role.label().to_owned(),
                named: kept.named,
                quota: kept.quota,
                models: kept.models,
                bytes: kept.bytes,
                left_out: kept.left_out,
            })
            .collect()
    }

    fn snapshot(&self) -> StatusSnapshot {
        let counts = self.uploads.as_ref().map(Uploads::counts);
        let served_to = counts.as_ref().map(|counts| served_most(&counts.to)).unwrap_or_default();
        let status = self.status.as_ref();
        StatusSnapshot {
            id: self.id.clone(),
            name: self.name.clone(),
            uptime_s: self.started.elapsed().as_secs(),
            regions: self.regions.clone(),
            relay: match status.map(|status| status.relay) {
                Some(RelayState::Connected) => "connected".into(),
                Some(RelayState::Connecting) => "connecting".into(),
                Some(RelayState::Disabled) => "off (this machine and the local network only)".into(),
                None => "starting".into(),
            },
            known_peers: status.map_or(0, |status| status.known_peers),
            neighbours: status.map_or(0, |status| status.neighbours),
            crowd: status.map_or(0, |status| status.crowd),
            world_changes: self.world.as_ref().map_or(0, SharedReplica::len),
            stored_bytes: self.stored_bytes,
            served_bytes: counts.map_or(0, |counts| counts.total),
            served_to,
            owner: self.owner.map(|owner| owner.to_string()),
            kept_for: self.kept_rows(),
            kept_models: self.plan.as_ref().map_or(0, |plan| plan.models.len()),
            kept_bytes: self.plan.as_ref().map_or(0, |plan| plan.bytes),
            declined: self
                .plan
                .as_ref()
                .map(|plan| plan.declined.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            declined_count: self.plan.as_ref().map_or(0, |plan| plan.declined_count),
            receipts: self.receipts,
        }
    }
}

/// The peers served most, most first, at most [`MAX_SERVED_LISTED`].
fn served_most(to: &BTreeMap<[u8; 32], u64>) -> Vec<Served> {
    let mut served: Vec<(&[u8; 32], u64)> = to.iter().map(|(key, bytes)| (key, *bytes)).collect();
    served.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    served
        .into_iter()
        .take(MAX_SERVED_LISTED)
        .map(|(key, bytes)| Served { key: key.iter().map(|byte| format!("{byte:02x}")).collect(), bytes })
        .collect()
}

/// The bytes of the files under `dir` (at most [`MAX_MEASURED_FILES`] looked at).
fn stored_bytes(dir: &Path) -> u64 {
    let (mut total, mut seen, mut folders) = (0u64, 0usize, vec![dir.to_owned()]);
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else { continue };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_MEASURED_FILES {
                return total;
            }
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => folders.push(entry.path()),
                Ok(kind) if kind.is_file() => total += entry.metadata().map_or(0, |metadata| metadata.len()),
                _ => {}
            }
        }
    }
    total
}

/// Runs the home node until it is stopped.
pub fn run(args: &NodeArgs) -> ExitCode {
    let regions = if args.regions.is_empty() { vec![RegionId::Lobby, RegionId::City] } else { args.regions.clone() };
    let mut config = match args.network.node_config(regions.clone()) {
        Ok(Some(config)) => config,
        Ok(None) => {
            eprintln!("error: a home node is nothing without the network; drop --no-network");
            return ExitCode::from(2);
        }
        Err(problem) => {
            eprintln!("error: {problem}");
            return ExitCode::from(2);
        }
    };
    config.hosting = hosting_policy(args);
    let data_dir = config.data_dir.clone();
    let mut seller = match seller::Seller::start(args, &data_dir, config.hosting.is_some()) {
        Ok(seller) => seller,
        Err(problem) => {
            eprintln!("error: {problem}");
            return ExitCode::from(2);
        }
    };
    let runtime = match NetRuntime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the network runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut node = spawn_node(runtime.handle(), config);
    let (stop, mut stopped) = tokio::sync::mpsc::unbounded_channel();
    // Ctrl-C (SIGINT, which the systemd unit in the README stops it with too), and SIGTERM and
    // SIGHUP (launchd, `docker stop`, `timeout`): each stops it cleanly, the wallet locked and the
    // Lightning node's state written whole.
    if let Err(error) = ctrlc::set_handler(move || {
        let _ = stop.send(());
    }) {
        eprintln!("warning: Ctrl-C and SIGTERM cannot be caught ({error}); stopping the node ends it at once");
    }
    let board = StatusBoard::default();
    let _server = start_status_page(args.status_port, &board);
    let names: Vec<String> = regions.iter().map(|region| region.slug().to_owned()).collect();
    let mut watch = Watch {
        started: Instant::now(),
        id: String::new(),
        name: String::new(),
        regions: names.clone(),
        status: None,
        world: None,
        uploads: None,
        stored_bytes: 0,
        owner: args.owner,
        plan: None,
        names: HashMap::new(),
        listed: HashSet::new(),
        receipts: Default::default(),
    };
    if args.owner.is_none() {
        println!("no --owner given: nobody's things are kept but those of --pin (and all, with --keep-all)");
    }
    let blobs: PathBuf = data_dir.join("blobs");
    let outcome = runtime.block_on(async {
        let mut tick = tokio::time::interval(STATUS_EVERY);
        let mut wallet_tick = tokio::time::interval(WALLET_EVERY);
        let mut measured: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = stopped.recv() => return None,
                _ = tick.tick() => {
                    let measure = measured.is_none_or(|at| at.elapsed() >= MEASURE_EVERY);
                    if measure {
                        let dir = blobs.clone();
                        watch.stored_bytes = tokio::task::spawn_blocking(move || stored_bytes(&dir)).await.unwrap_or(0);
                        measured = Some(Instant::now());
                    }
                    if let Some(seller) = seller.as_mut() {
                        seller.round(&node, measure);
                    }
                    board.set(watch.snapshot());
                }
                _ = wallet_tick.tick(), if seller.is_some() => {
                    if let Some(seller) = seller.as_mut() {
                        seller.wallet_events(&node);
                    }
                }
                event = node.next_event() => {
                    if let (Some(seller), Some(event)) = (seller.as_mut(), event.as_ref()) {
                        seller.net_event(event, &node, &watch.id);
                    }
                    match event {
                    Some(Event::Started { id, ticket, profile, world, uploads, .. }) => {
                        println!("home node {id} ({}) keeping {}", profile.name, data_dir.display());
                        println!("regions: {}", names.join(", "));
                        println!("ticket: {ticket}");
                        (watch.id, watch.name) = (id.to_string(), profile.name);
                        (watch.world, watch.uploads) = (Some(world), Some(uploads));
                        board.set(watch.snapshot());
                        if let Some(seller) = seller.as_mut() {
                            seller.running(&node);
                        }
                    }
                    Some(Event::HostingAsked { ask, .. }) if seller.is_none() => {
                        let refusal = "this node does not sell hosting; ask its owner for a --pin".to_owned();
                        node.send(sanctuary_net::Command::AnswerHosting { ask, answer: Err(refusal) });
                    }
                    Some(Event::Ticket(ticket)) => println!("ticket: {ticket}"),
                    Some(Event::Status(status)) => {
                        println!("{} peers known, {} neighbours", status.known_peers, status.neighbours);
                        watch.status = Some(status);
                    }
                    Some(Event::Chat(line)) => println!("[{}] {}: {}", line.region, line.name, line.text),
                    Some(Event::Presence { author, presence, .. }) => watch.heard(author, &presence.name),
                    Some(Event::Contribution { person, contribution, .. }) if person.to_string() == watch.id => {
                        watch.receipts = contribution;
                    }
                    Some(Event::Hosting(plan)) => {
                        let people = plan.kept_for.len();
                        println!("keeping {} models ({} bytes) for {people} people", plan.models.len(), plan.bytes);
                        watch.planned(plan);
                    }
                    Some(Event::Notice(notice)) => println!("{notice}"),
                    Some(Event::Failed(error)) => return Some(error),
                    Some(_) => {}
                    None => return Some("the node stopped by itself".to_owned()),
                }},
            }
        }
    });
    match outcome {
        None => {
            println!("stopping: saying goodbye to peers...");
            runtime.block_on(node.shutdown());
            println!("stopped cleanly");
            ExitCode::SUCCESS
        }
        Some(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// What the node keeps, from its options: nothing with a quota of 0.
fn hosting_policy(args: &NodeArgs) -> Option<HostingPolicy> {
    if args.model_quota_mib == 0 {
        return None;
    }
    Some(HostingPolicy {
        owner: args.owner,
        friend_quota: args.friend_quota_mib.saturating_mul(1024 * 1024),
        grants: args.pins.iter().copied().collect(),
        paid: BTreeMap::new(),
        keep_all: args.keep_all,
        total: args.model_quota_mib.saturating_mul(1024 * 1024),
    })
}

/// The status page on `port` of the loopback address (none for 0, or when the port is taken:
/// the node goes on without it).
fn start_status_page(port: u16, board: &StatusBoard) -> Option<StatusServer> {
    if port == 0 {
        return None;
    }
    match StatusServer::start(SocketAddr::from(([127, 0, 0, 1], port)), board.clone()) {
        Ok(server) => {
            println!("status page: http://127.0.0.1:{}/ (and /status.json)", server.addr().port());
            Some(server)
        }
        Err(error) => {
            eprintln!("warning: no status page on port {port} ({error}); choose another with --status-port");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_is_measured_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("a/b")).expect("folders");
        std::fs::write(dir.path().join("one"), vec![0; 1000]).expect("writes");
        std::fs::write(dir.path().join("a/b/two"), vec![0; 234]).expect("writes");
        assert_eq!(stored_bytes(dir.path()), 1234);
        assert_eq!(stored_bytes(&dir.path().join("missing")), 0);
    }

    #[test]
    fn only_the_names_of_people_the_plan_lists_are_kept() {
        use sanctuary_net::hosting::{KeptFor, Role};
        let (ada, bo, cy) = (
            PublicKey::from_secret_seed(&[1; 32]),
            PublicKey::from_secret_seed(&[2; 32]),
            PublicKey::from_secret_seed(&[3; 32]),
        );
        let mut watch = Watch {
            started: Instant::now(),
            id: String::new(),
            name: String::new(),
            regions: Vec::new(),
            status: None,
            world: None,
            uploads: None,
            stored_bytes: 0,
            owner: Some(ada),
            plan: None,
            names: HashMap::new(),
            listed: HashSet::new(),
            receipts: Default::default(),
        };
        let kept = KeptFor { person: ada, role: Role::Owner, named: true, quota: 1, models: 0, bytes: 0, left_out: 0 };
        let plan =
            HostingPlan { kept_for: vec![kept], declined: vec![bo], declined_count: 1, ..HostingPlan::default() };
        watch.planned(Box::new(plan));
        for (key, name) in [(ada, "Ada"), (bo, "Bo"), (cy, "Cy")] {
            watch.heard(key, name);
        }
        assert_eq!(watch.names.len(), 2, "a passer-by's name is not kept");
        assert_eq!(watch.kept_rows()[0].name.as_deref(), Some("Ada"));
        watch.planned(Box::default());
        assert!(watch.names.is_empty(), "names of people no longer listed are let go");
    }

    #[test]
    fn the_page_lists_who_was_served_most_first() {
        let to: BTreeMap<[u8; 32], u64> = (0..40u8).map(|at| ([at; 32], u64::from(at % 7) * 100)).collect();
        let served = served_most(&to);
        assert_eq!(served.len(), MAX_SERVED_LISTED);
        assert!(served.windows(2).all(|pair| pair[0].bytes >= pair[1].bytes), "most first");
        assert_eq!((served[0].key.as_str(), served[0].bytes), ("06".repeat(32).as_str(), 600));
        let watch = Watch {
            started: Instant::now(),
            id: "id".into(),
            name: "Home".into(),
            regions: vec!["lobby".into()],
            status: None,
            world: None,
            uploads: None,
            stored_bytes: 42,
            owner: None,
            plan: None,
            names: HashMap::new(),
            listed: HashSet::new(),
            receipts: Default::default(),
        };
        let snapshot = watch.snapshot();
        assert_eq!((snapshot.served_bytes, snapshot.stored_bytes, snapshot.relay.as_str()), (0, 42, "starting"));
    }
}
