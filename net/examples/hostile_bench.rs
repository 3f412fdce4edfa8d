//! `cargo xtask bench hostile` (also the end of `cargo xtask bench net`): R6 and R3 of
//! TARGETS.md, with offline nodes in one process.
//!
//! - R6 flooding: honest peers move and measure how long each other's poses take to arrive,
//!   first quietly, then while one key floods 10,000 correctly signed poses a second, then while
//!   1,000 fresh keys each send at their limit (25 poses a second). Printed: p50/p95 delivery
//!   beside the quiet baseline (target: p95 rises by at most 50 ms), what the honest peers
//!   refused, and the resident memory of the process (all honest peers and the attacker).
//! - R3 partitions: six peers in the city split into two groups that build apart, one of them
//!   killed and restarted meanwhile; then the groups are joined: the time until every peer
//!   holds the same world (target: 30 s).
//!
//! `--smoke` runs small numbers to check that it runs.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glam::{Quat, Vec3};
use iroh::SecretKey;
use iroh_gossip::api::GossipSender;
use sanctuary_engine::{Object, ObjectKind, Op, Placement, PublicKey, RegionId, Rgb, Shape, home_parcel};
use sanctuary_net::wire::{RegionMessage, encode};
use sanctuary_net::{
    Command, Event, MAX_MESSAGE_BYTES, NodeConfig, NodeHandle, PoseFrame, Presence, QuantisedTransform, RelayChoice,
    SharedReplica, StatsSnapshot, Ticket, region_topic, spawn_node,
};

/// R6: the honest peers' p95 may rise by this much under a flood.
const R6_RISE_MS: f64 = 50.0;
/// R3: every peer holds the same world this soon after the partition heals.
const R3_HEAL_S: f64 = 30.0;

fn wall_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_micros() as u64).unwrap_or(0)
}

fn resident_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? / 1024)
}

fn pose(x: f32) -> PoseFrame {
    let at = |dx: f32| QuantisedTransform::new(Vec3::new(x + dx, 1.7, -40.0), Quat::from_rotation_y(x * 0.1));
    PoseFrame { head: at(0.0), left_hand: at(-0.3), right_hand: at(0.3) }
}

fn fresh(index: u64) -> SecretKey {
    let mut seed = [0x77u8; 32];
    seed[..8].copy_from_slice(&index.to_le_bytes());
    SecretKey::from_bytes(&seed)
}

fn offline(dir: &std::path::Path, name: &str, join: Option<&Ticket>, region: RegionId) -> NodeConfig {
    let mut config = NodeConfig::new(dir);
    config.relays = RelayChoice::Disabled;
    config.lan_discovery = false;
    config.name = Some(name.to_owned());
    config.regions = vec![region];
    config.join = join.cloned().into_iter().collect();
    config
}

/// A started node: its handle, id, ticket and world.
struct Started {
    handle: NodeHandle,
    id: PublicKey,
    ticket: Ticket,
    world: SharedReplica,
}

async fn start(config: NodeConfig) -> Result<Started, String> {
    let mut handle = spawn_node(&tokio::runtime::Handle::current(), config);
    loop {
        match tokio::time::timeout(Duration::from_secs(20), handle.next_event()).await {
            Ok(Some(Event::Started { id, ticket, world, .. })) => {
                let ticket = ticket.parse().map_err(|error: sanctuary_net::TicketError| error.to_string())?;
                return Ok(Started { handle, id, ticket, world });
            }
            Ok(Some(Event::Failed(error))) => return Err(error),
            Ok(Some(_)) => {}
            _ => return Err("a node did not start".into()),
        }
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let smoke = std::env::args().any(|arg| arg == "--smoke");
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start a tokio runtime: {error}");
            std::process::exit(1);
        }
    };
    if let Err(error) = runtime.block_on(flooding(smoke)) {
        eprintln!("error: R6 could not be measured: {error}");
        std::process::exit(1);
    }
    if let Err(error) = runtime.block_on(partition(smoke)) {
        eprintln!("error: R3 could not be measured: {error}");
        std::process::exit(1);
    }
}

/// One flood: who sends, how fast, for how long.
struct Flood {
    name: &'static str,
    keys: u64,
    per_key_per_second: u64,
}

/// R6.
async fn flooding(smoke: bool) -> Result<(), String> {
    let peers = if smoke { 3 } else { 4 };
    let seconds = if smoke { 2 } else { 8 };
    let dirs: Vec<tempfile::TempDir> =
        (0..peers).map(|_| tempfile::tempdir().map_err(|error| error.to_string())).collect::<Result<_, _>>()?;
    let mut started: Vec<Started> = Vec::new();
    for (index, dir) in dirs.iter().enumerate() {
        let join = started.last().map(|peer| peer.ticket.clone());
        started.push(start(offline(dir.path(), &format!("peer {index}"), join.as_ref(), RegionId::Lobby)).await?);
    }
    let honest: HashSet<PublicKey> = started.iter().map(|peer| peer.id).collect();
    let target_ticket = started[0].ticket.to_string();
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let measuring = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    let mut readers = Vec::new();
    let stats_handles: Arc<Mutex<Vec<StatsSnapshot>>> = Arc::new(Mutex::new(vec![StatsSnapshot::default(); peers]));
    for (index, peer) in started.into_iter().enumerate() {
        let (latencies, measuring, honest, stats) =
            (latencies.clone(), measuring.clone(), honest.clone(), stats_handles.clone());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Command>();
        senders.push(tx);
        let mut handle = peer.handle;
        readers.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    command = rx.recv() => match command {
                        Some(command) => { handle.send(command); }
                        None => break,
                    },
                    event = handle.next_event() => match event {
                        Some(Event::Presence { author, sequence, .. }) => {
                            if measuring.load(Ordering::Relaxed) && honest.contains(&author) {
                                let latency = wall_micros().saturating_sub(sequence) as f64 / 1000.0;
                                latencies.lock().map(|mut all| all.push(latency)).ok();
                            }
                            stats.lock().map(|mut all| all[index] = handle.stats()).ok();
                        }
                        Some(_) => {}
                        None => break,
                    },
                }
            }
            handle.shutdown().await;
        }));
    }

    let topic = region_topic(RegionId::Lobby);
    let floods = [
        None,
        Some(Flood { name: "one key, 10,000 signed poses a second", keys: 1, per_key_per_second: 10_000 }),
        Some(Flood {
            name: "1,000 fresh keys, 25 poses a second each",
            keys: if smoke { 50 } else { 1_000 },
            per_key_per_second: 25,
        }),
    ];
    println!("R6 flooding: {peers} honest peers move every 100 ms; p50/p95 of their poses' delivery");
    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>11} {:>8} {:>12} {:>9}",
        "while", "p50 (ms)", "p95 (ms)", "rise", "refused", "cut off", "flood sent", "RSS MiB"
    );
    let mut quiet_p95 = f64::NAN;
    let mut step = 0.0f32;
    for flood in floods {
        let counts = || -> (u64, u64) {
            stats_handles
                .lock()
                .map(|all| (all.iter().map(StatsSnapshot::rejected).sum(), all.iter().map(|stats| stats.cut_off).sum()))
                .unwrap_or((0, 0))
        };
        let (before, cut_before) = counts();
        latencies.lock().map(|mut all| all.clear()).ok();
        // Each flood comes from a fresh attacker (the last one may have been cut off). One key
        // floods with the attacker's own key; the thousand keys are others it passes on.
        let attacker_key = SecretKey::generate();
        let attack = flood.as_ref().map(|flood| prepare(flood, seconds, topic.as_bytes(), &attacker_key));
        let attacker = match attack {
            Some(_) => Some(Attacker::join(&target_ticket, topic, attacker_key.clone()).await?),
            None => None,
        };
        measuring.store(true, Ordering::Relaxed);
        let sending = attack
            .zip(attacker.as_ref())
            .map(|(messages, attacker)| tokio::spawn(send_paced(attacker.sender.clone(), messages, seconds)));
        let end = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < end {
            step += 1.0;
            for (index, sender) in senders.iter().enumerate() {
                let _ = sender.send(Command::Pose(pose(step + index as f32)));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        measuring.store(false, Ordering::Relaxed);
        let sent = match sending {
            Some(task) => task.await.unwrap_or(0),
            None => 0,
        };
        if let Some(attacker) = attacker {
            attacker.leave().await;
        }
        // Let what is queued drain before the next phase.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut all = latencies.lock().map(|all| all.clone()).unwrap_or_default();
        all.sort_by(f64::total_cmp);
        let (p50, p95) = (percentile(&all, 0.5), percentile(&all, 0.95));
        let (after, cut_after) = counts();
        let cut = cut_after - cut_before;
        let rss = resident_mib().map_or_else(|| "?".to_owned(), |mib| mib.to_string());
        match flood {
            None => {
                quiet_p95 = p95;
                println!(
                    "{:<44} {p50:>9.1} {p95:>9.1} {:>9} {:>11} {cut:>8} {:>12} {rss:>9}",
                    "quiet",
                    "",
                    after - before,
                    ""
                );
            }
            Some(flood) => {
                let rise = p95 - quiet_p95;
                let verdict = if rise <= R6_RISE_MS { "met" } else { "MISSED" };
                println!(
                    "{:<44} {p50:>9.1} {p95:>9.1} {:>+6.1} {verdict:<2} {:>11} {cut:>8} {:>12} {rss:>9}",
                    flood.name,
                    rise,
                    after - before,
                    sent
                );
            }
        }
    }
    println!(
        "  (target R6: p95 rises by at most {R6_RISE_MS} ms; \"cut off\": attackers disconnected and refused by an honest peer;\n   RSS is the whole process: every honest peer and the attacker)"
    );
    let final_stats = stats_handles.lock().map(|all| all.clone()).unwrap_or_default();
    if let Some(first) = final_stats.first() {
        println!("  the first peer's counters: {first:?}");
    }
    drop(senders);
    for reader in readers {
        let _ = reader.await;
    }
    Ok(())
}

/// A hostile peer: plain iroh-gossip on the lobby topic, joined through the first honest peer.
struct Attacker {
    sender: GossipSender,
    drain: tokio::task::JoinHandle<()>,
    router: iroh::protocol::Router,
}

impl Attacker {
    async fn join(target_ticket: &str, topic: iroh_gossip::TopicId, secret: SecretKey) -> Result<Self, String> {
        let endpoint = iroh::Endpoint::builder(iroh::endpoint::presets::Minimal)
            .relay_mode(iroh::RelayMode::Disabled)
            .secret_key(secret)
            .bind()
            .await
            .map_err(|error| error.to_string())?;
        let memory = iroh::address_lookup::MemoryLookup::new();
        endpoint.address_lookup().map_err(|error| error.to_string())?.add(memory.clone());
        let ticket: iroh_tickets::endpoint::EndpointTicket =
            target_ticket.parse().map_err(|_| "a bad ticket".to_owned())?;
        memory.add_endpoint_info(ticket.endpoint_addr().clone());
        let gossip = iroh_gossip::Gossip::builder().max_message_size(2 * MAX_MESSAGE_BYTES).spawn(endpoint.clone());
        let router =
            iroh::protocol::Router::builder(endpoint.clone()).accept(iroh_gossip::ALPN, gossip.clone()).spawn();
        let joined = tokio::time::timeout(
            Duration::from_secs(10),
            gossip.subscribe_and_join(topic, vec![ticket.endpoint_addr().id]),
        )
        .await
        .map_err(|_| "the attacker could not join in time".to_owned())?
        .map_err(|error| error.to_string())?;
        let (sender, mut receiver) = joined.split();
        // Keep the attacker's own receiver drained.
        let drain = tokio::spawn(async move {
            use futures_util::StreamExt;
            while receiver.next().await.is_some() {}
        });
        Ok(Self { sender, drain, router })
    }

    async fn leave(self) {
        self.drain.abort();
        let _ = self.router.shutdown().await;
    }
}

/// Signs the flood beforehand (signing is the attacker's cost, not the honest peers'): for each
/// second, each key's messages, dated when they will be sent.
fn prepare(flood: &Flood, seconds: u64, topic: &[u8; 32], own: &SecretKey) -> Vec<Vec<Vec<u8>>> {
    let keys: Vec<SecretKey> = if flood.keys == 1 { vec![own.clone()] } else { (0..flood.keys).map(fresh).collect() };
    let start = wall_micros() + 200_000;
    let per_tick = (flood.keys * flood.per_key_per_second / 100).max(1);
    let ticks = seconds * 100;
    let mut plan = Vec::with_capacity(ticks as usize);
    let mut next = 0u64;
    for tick in 0..ticks {
        let mut messages = Vec::with_capacity(per_tick as usize);
        for _ in 0..per_tick {
            let key = &keys[(next % flood.keys) as usize];
            let sequence = start + tick * 10_000 + next % 10_000;
            let body = RegionMessage::Presence(Presence { name: "flood".into(), colour: [0, 0, 0], pose: pose(0.0) });
            if let Ok(bytes) = encode(key, topic, sequence, &body) {
                messages.push(bytes);
            }
            next += 1;
        }
        plan.push(messages);
    }
    plan
}

/// Sends one tick's messages every 10 ms; returns how many were sent.
async fn send_paced(sender: GossipSender, plan: Vec<Vec<Vec<u8>>>, seconds: u64) -> u64 {
    let mut sent = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let end = Instant::now() + Duration::from_secs(seconds);
    for messages in plan {
        tick.tick().await;
        if Instant::now() >= end {
            break;
        }
        for bytes in messages {
            if sender.broadcast(bytes.into()).await.is_ok() {
                sent += 1;
            }
        }
    }
    sent
}

/// A cuboid standing on `parcel`, `offset` metres from its centre.
fn block(parcel: sanctuary_engine::ParcelCoord, offset: f32) -> Object {
    let centre = parcel.bounds().center();
    Object {
        kind: ObjectKind::Primitive(Shape::Cuboid),
        placement: Placement::standing(Vec3::new(centre.x + offset, 0.0, centre.y), Vec3::ONE),
        colour: Rgb::new(40, 200, 220),
    }
}

/// R3.
async fn partition(smoke: bool) -> Result<(), String> {
    let per_group = if smoke { 2 } else { 3 };
    let builds = if smoke { 3 } else { 10 };
    let dirs: Vec<tempfile::TempDir> =
        (0..2 * per_group).map(|_| tempfile::tempdir().map_err(|error| error.to_string())).collect::<Result<_, _>>()?;
    let mut peers: Vec<Started> = Vec::new();
    for (index, dir) in dirs.iter().enumerate() {
        // Each group joins only among itself: two worlds that do not know of each other.
        let join = if index % per_group == 0 { None } else { peers.last().map(|peer| peer.ticket.clone()) };
        peers.push(start(offline(dir.path(), &format!("builder {index}"), join.as_ref(), RegionId::City)).await?);
    }
    // Everyone builds on their own parcel while apart.
    for peer in &peers {
        let parcel = home_parcel(&peer.id);
        peer.handle.send(Command::Build(Op::Claim { parcel }));
        for id in 0..builds {
            let object = block(parcel, id as f32 - builds as f32 / 2.0);
            peer.handle.send(Command::Build(Op::Put { parcel, epoch: 0, id, object }));
        }
    }
    // Each peer's claim, its builds, and the name it signs into the world (`Op::Profile`).
    let expected = 2 * per_group * (builds as usize + 2);
    // One peer of the second group is killed and comes back while the groups are apart.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let victim = per_group + 1;
    let restarted_from = peers[per_group].ticket.clone();
    let killed = peers.remove(victim);
    killed.handle.shutdown().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let back = start(offline(dirs[victim].path(), "builder back", Some(&restarted_from), RegionId::City)).await?;
    peers.insert(victim, back);
    // Each group agrees within itself first.
    let apart = Instant::now();
    loop {
        let first = peers[0].world.state_hash();
        let second = peers[per_group].world.state_hash();
        let agreed = |group: &[Started], hash| group.iter().all(|peer| peer.world.state_hash() == hash);
        if agreed(&peers[..per_group], first) && agreed(&peers[per_group..], second) && first != second {
            break;
        }
        if apart.elapsed() > Duration::from_secs(60) {
            return Err("the groups did not settle while apart".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        for peer in &mut peers {
            while peer.handle.try_event().is_some() {}
        }
    }
    println!(
        "\nR3 partition and heal: {} peers in the city, two groups of {per_group} building apart, one killed and restarted",
        2 * per_group
    );
    // Heal: one peer of the first group meets one of the second.
    let healed = Instant::now();
    peers[0].handle.send(Command::Join(peers[per_group].ticket.clone()));
    let converged = loop {
        for peer in &mut peers {
            while peer.handle.try_event().is_some() {}
        }
        let hash = peers[0].world.state_hash();
        if peers.iter().all(|peer| peer.world.state_hash() == hash && peer.world.len() == expected) {
            break Some(healed.elapsed());
        }
        if healed.elapsed() > Duration::from_secs(120) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    match converged {
        Some(took) => {
            let verdict = if took.as_secs_f64() <= R3_HEAL_S { "met" } else { "MISSED" };
            println!(
                "  every peer holds the same world ({expected} changes) {:.2} s after healing (target {R3_HEAL_S} s: {verdict})",
                took.as_secs_f64()
            );
        }
        None => {
            let counts: Vec<usize> = peers.iter().map(|peer| peer.world.len()).collect();
            println!(
                "  NOT converged 120 s after healing (target {R3_HEAL_S} s): changes held {counts:?} of {expected}"
            );
        }
    }
    for peer in peers {
        peer.handle.shutdown().await;
    }
    Ok(())
}
