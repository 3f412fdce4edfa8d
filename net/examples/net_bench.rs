//! `cargo xtask bench net`: what presence costs on the wire, how fast gossip delivers it
//! between peers in one process, and the CPU time per frame to take in a crowd of remote
//! avatars. Each figure is printed beside its target (P1-P3 of TARGETS.md).
//!
//! Options: `--smoke` for a quick check that it runs (small numbers, no targets judged).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glam::{Quat, Vec3};
use iroh::SecretKey;
use sanctuary_engine::LOBBY_RADIUS;
use sanctuary_engine::{PublicKey, RegionId};
use sanctuary_net::cells::{Block, CELL_SIZE, Cell, CrowdSummary, Dot, MAX_DOTS, MAX_FAR_CELLS, summary_interval};
use sanctuary_net::inbox::Inbox;
use sanctuary_net::near_pose::PoseDatagram;
use sanctuary_net::wire::{RegionMessage, encode};
use sanctuary_net::{
    DOWNLINK_BUDGET_BITS_PER_SECOND, Event, MAX_NEAR, NEAR_DISTANCE, NetStats, NodeConfig, PoseFrame, Presence,
    QuantisedTransform, RelayChoice, RemoteCrowd, SLOWEST_POSE_INTERVAL, about_keepalive, pose_interval, region_topic,
    spawn_node,
};

/// P1: 1,000 remote avatars within 2 ms of CPU per frame on one core.
const P1_BUDGET_MS: f64 = 2.0;
/// P2: at most 16 kbit/s up per avatar at 20 Hz.
const P2_UP_KBIT: f64 = 16.0;
/// P3: p95 delivery within 100 ms with 8 peers, 200 ms with 32.
const P3_TARGETS_MS: [(usize, f64); 2] = [(8, 100.0), (32, 200.0)];
/// Bytes a message costs beyond its content on the wire (gossip framing, QUIC, UDP, IP).
const WIRE_OVERHEAD: usize = 64;
/// Bytes a datagram costs beyond its content: a QUIC short header, frame header and AEAD tag,
/// UDP and IPv4.
const DATAGRAM_OVERHEAD: usize = 48;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let smoke = args.iter().any(|arg| arg == "--smoke");
    let only_delivery = args.iter().any(|arg| arg == "--delivery-only");
    let interval = match args.iter().position(|arg| arg == "--interval-ms") {
        None => Duration::from_millis(200),
        Some(at) => {
            match args.get(at + 1).and_then(|text| text.parse::<u64>().ok()).filter(|ms| (10..=10_000).contains(ms)) {
                Some(ms) => Duration::from_millis(ms),
                None => {
                    eprintln!("error: --interval-ms takes milliseconds from 10 to 10000");
                    std::process::exit(2);
                }
            }
        }
    };
    if !only_delivery {
        pose_traffic();
        receive_cost(smoke);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start a tokio runtime: {error}");
            std::process::exit(1);
        }
    };
    println!(
        "\nP3 gossip delivery on loopback (offline nodes in one process, 2 worker threads, each peer moves every {} ms)",
        interval.as_millis()
    );
    println!("{:>6}  {:>10}  {:>10}  {:>10}  {:>12}", "peers", "messages", "p50 (ms)", "p95 (ms)", "target p95");
    let sizes: &[(usize, f64)] = if smoke { &[(3, 100.0)] } else { &P3_TARGETS_MS };
    for &(peers, target) in sizes {
        match runtime.block_on(delivery(peers, if smoke { 2 } else { 6 }, interval)) {
            Ok(mut latencies) if !latencies.is_empty() => {
                latencies.sort_by(f64::total_cmp);
                let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
                let (p50, p95) = (at(0.5), at(0.95));
                let verdict = if p95 <= target { "met" } else { "MISSED" };
                println!(
                    "{peers:>6}  {:>10}  {p50:>10.1}  {p95:>10.1}  {:>7.0} ms {verdict} ({:.2} of it)",
                    latencies.len(),
                    target,
                    p95 / target
                );
            }
            Ok(_) => println!("{peers:>6}  no message was delivered"),
            Err(error) => println!("{peers:>6}  failed: {error}"),
        }
    }
}

fn pose(x: f32) -> PoseFrame {
    let at = |dx: f32| QuantisedTransform::new(Vec3::new(x + dx, 1.7, -46.0 + x * 0.5), Quat::from_rotation_y(x * 0.1));
    PoseFrame { head: at(0.0), left_hand: at(-0.28), right_hand: at(0.28) }
}

fn pose_at(head: Vec3) -> PoseFrame {
    let at = |dx: f32| QuantisedTransform::new(head + Vec3::new(dx, -0.6, 0.0), Quat::IDENTITY);
    PoseFrame { head: QuantisedTransform::new(head, Quat::IDENTITY), left_hand: at(-0.28), right_hand: at(0.28) }
}

fn presence(x: f32) -> RegionMessage {
    RegionMessage::Presence(Presence { name: "Guest 3fa2".into(), colour: [200, 120, 40], pose: pose(x) })
}

fn wall_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_micros() as u64).unwrap_or(0)
}

/// P2: the size of a near pose datagram and of a signed pose, and what the crowd-scaled gossip
/// rate and the near neighbours' datagrams make of them.
fn pose_traffic() {
    let secret = SecretKey::from_bytes(&[7; 32]);
    let topic = region_topic(RegionId::Lobby);
    let bytes = encode(&secret, topic.as_bytes(), wall_micros(), &presence(12.5)).map(|bytes| bytes.len()).unwrap_or(0);
    let datagram =
        PoseDatagram { scope: PoseDatagram::scope_of(topic.as_bytes()), stamp: wall_micros(), pose: pose(12.5) };
    let datagram_bytes = datagram.encode().len();
    let up_kbit = |bytes: usize| (bytes * 8 * 20) as f64 / 1000.0;
    let near_framed = up_kbit(datagram_bytes + DATAGRAM_OVERHEAD);
    println!("P2 pose traffic");
    println!(
        "  to each near neighbour (the {MAX_NEAR} nearest within {NEAR_DISTANCE} m), a datagram on a direct \
         connection: {datagram_bytes} bytes, no key or signature"
    );
    let verdict = if near_framed <= P2_UP_KBIT { "met" } else { "MISSED" };
    println!(
        "  up per stream at 20 Hz: {:.1} kbit/s of datagrams, {near_framed:.1} kbit/s with ~{DATAGRAM_OVERHEAD} bytes \
         of QUIC, UDP and IP (target {P2_UP_KBIT} kbit/s per stream: {verdict}, {:.2} of it); {:.0} kbit/s to all \
         {MAX_NEAR} near neighbours",
        up_kbit(datagram_bytes),
        near_framed / P2_UP_KBIT,
        near_framed * MAX_NEAR as f64
    );
    println!(
        "  to the whole region, a signed presence on gossip (name, colour, pose): {bytes} bytes, 96 of them key and \
         signature; {:.1} kbit/s were it sent at 20 Hz, so it is sent at the crowd's rate",
        up_kbit(bytes)
    );
    let summary_bytes =
        encode(&secret, topic.as_bytes(), wall_micros(), &full_summary()).map_or(0, |bytes| bytes.len());
    println!(
        "  down per client as the lobby fills, {CELL_SIZE} m cells: near datagrams from up to {MAX_NEAR} people at 20 \
         Hz; the signed presence of everyone in the block of cells around (2 x 2 x 2) at the block's rate, with their \
         microphone and look; a {summary_bytes}-byte summary of every other occupied cell. Each row places the crowd \
         at random, takes 25 of them as the client and gives the median and the worst:"
    );
    println!(
        "{:>8}  {:>9}  {:>7}  {:>9}  {:>10}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>10}",
        "people", "spread", "block", "interval", "far cells", "near", "block", "far", "down", "worst", "target"
    );
    for people in [2usize, 8, 32, 100, 450, 1_000, 10_000] {
        for spread in [Spread::Floating, Spread::Floor] {
            if people < 1_000 && spread == Spread::Floor {
                continue;
            }
            let views = downlink(people, spread, bytes, near_framed, summary_bytes);
            let median = views[views.len() / 2];
            let worst = views[views.len() - 1];
            let budget = DOWNLINK_BUDGET_BITS_PER_SECOND as f64 / 1000.0;
            let verdict = if worst.down <= budget { "met" } else { "over" };
            println!(
                "{people:>8}  {:>9}  {:>7}  {:>6.0} ms  {:>10}  {:>8.0}  {:>8.0}  {:>8.0}  {:>8.0}  {:>8.0}  {budget:>6.0} {verdict}",
                spread.name(),
                median.block,
                median.interval_ms,
                median.far_cells,
                median.near,
                median.gossip,
                median.far,
                median.down,
                worst.down,
            );
        }
    }
    println!(
        "  (kbit/s. Floating: in the lobby's {LOBBY_RADIUS} m atrium up to {FLOATING_HEIGHT} m; floor: everyone within \
         2 m of the floor. A block passes the budget past about 5,000 people, where the pose rate stops at one every \
         {} s)",
        SLOWEST_POSE_INTERVAL.as_secs()
    );
}

/// How a crowd fills the lobby in the P2 model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spread {
    /// Floating through the atrium, up to [`FLOATING_HEIGHT`].
    Floating,
    /// Everyone on the floor.
    Floor,
}

/// How high the floating crowd of the P2 model goes, in metres.
const FLOATING_HEIGHT: f32 = 480.0;

impl Spread {
    fn name(self) -> &'static str {
        match self {
            Spread::Floating => "floating",
            Spread::Floor => "floor",
        }
    }
}

/// What one client in the P2 model receives, kbit/s.
#[derive(Debug, Clone, Copy)]
struct Downlink {
    block: usize,
    interval_ms: f64,
    far_cells: usize,
    near: f64,
    gossip: f64,
    far: f64,
    down: f64,
}

/// `people` placed at random in the lobby by `spread`; for 25 of them, what they receive: the
/// near neighbours' datagrams, the block's presences at the rate its crowd sets (with everyone's
/// microphone and look at their keepalive), and the other occupied cells' summaries at their
/// pace. Sorted by the total.
fn downlink(people: usize, spread: Spread, pose_bytes: usize, near_framed: f64, summary_bytes: usize) -> Vec<Downlink> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ people as u64;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32
    };
    let positions: Vec<Vec3> = (0..people)
        .map(|_| {
            let (radius, angle) = (LOBBY_RADIUS * random().sqrt(), random() * std::f32::consts::TAU);
            let height = match spread {
                Spread::Floating => 1.7 + random() * FLOATING_HEIGHT,
                Spread::Floor => 1.7 + random() * 2.0,
            };
            Vec3::new(radius * angle.cos(), height, radius * angle.sin())
        })
        .collect();
    let cells: Vec<Cell> = positions.iter().map(|at| Cell::of(RegionId::Lobby, *at)).collect();
    let mut occupied = cells.clone();
    occupied.sort_unstable();
    occupied.dedup();
    let mut views: Vec<Downlink> = (0..25.min(people))
        .map(|client| {
            let me = positions[client];
            let block = Block::around(RegionId::Lobby, me, None);
            let others = (0..people).filter(|other| *other != client && block.contains(cells[*other])).count();
            let near = (0..people)
                .filter(|other| *other != client && positions[*other].distance(me) <= NEAR_DISTANCE)
                .count()
                .min(MAX_NEAR);
            let interval = pose_interval(others, pose_bytes);
            let bits = |bytes: usize| ((bytes + WIRE_OVERHEAD) * 8) as f64;
            let about = others as f64 * 2.0 * 200.0 * 8.0 / about_keepalive(others).as_secs_f64();
            let gossip = (others as f64 * bits(pose_bytes) / interval.as_secs_f64() + about) / 1000.0;
            let far_cells = occupied.iter().filter(|cell| !block.contains(**cell)).count();
            let pace = summary_interval(far_cells.min(MAX_FAR_CELLS), summary_bytes);
            let far = far_cells.min(MAX_FAR_CELLS) as f64 * bits(summary_bytes) / pace.as_secs_f64() / 1000.0;
            let near = near as f64 * near_framed;
            Downlink {
                block: others,
                interval_ms: interval.as_secs_f64() * 1000.0,
                far_cells,
                near,
                gossip,
                far,
                down: near + gossip + far,
            }
        })
        .collect();
    views.sort_by(|a, b| a.down.total_cmp(&b.down));
    views
}

/// A cell's summary with every dot it may hold: the largest one.
fn full_summary() -> RegionMessage {
    let dots = vec![Dot { at: [128, 20, 77], colour: [200, 120, 40] }; MAX_DOTS];
    RegionMessage::Crowd(CrowdSummary { cell: Cell { x: -1, y: 3, z: 0 }, count: 400, dots })
}

/// P1: per frame at 60 Hz, the poses that arrive are checked and stored, then every avatar is
/// interpolated for the frame. One thread. The nearest [`MAX_NEAR`] send datagrams at 20 Hz
/// (decoded and checked as `node::near` does: no signature); everyone else signed presences on
/// gossip at the crowd's rate (size, decode, signature, rate, replay: the inbox).
fn receive_cost(smoke: bool) {
    println!("\nP1 receive, verify and interpolate remote avatars (simulated feed, one thread, 60 frames a second)");
    println!(
        "{:>8}  {:>10}  {:>16}  {:>12}  {:>12}  {:>10}",
        "avatars", "near 20 Hz", "others each (Hz)", "median (ms)", "p95 (ms)", "of 2 ms"
    );
    let rate = |people: usize| 1.0 / pose_interval(people - 1, 180).as_secs_f64();
    // The crowd of the block around a median client of 10,000 in the lobby; the rest of them
    // come as summaries, a few a second.
    let block_of = |spread| {
        let mut blocks: Vec<usize> = downlink(10_000, spread, 180, 0.0, 500).iter().map(|view| view.block).collect();
        blocks.sort_unstable();
        blocks[blocks.len() / 2] + 1
    };
    let cases: Vec<(usize, usize, f64)> = if smoke {
        vec![(100, MAX_NEAR, rate(100))]
    } else {
        let (floating, floor) = (block_of(Spread::Floating), block_of(Spread::Floor));
        vec![(1_000, MAX_NEAR, rate(1_000)), (floating, MAX_NEAR, rate(floating)), (floor, MAX_NEAR, rate(floor))]
    };
    for (avatars, near, hertz) in cases {
        let frames = if smoke { 30 } else { 240 };
        let (median, p95, shown) = receive_frames(avatars, near, hertz, frames);
        let verdict = if smoke {
            ""
        } else if median <= P1_BUDGET_MS {
            " met"
        } else {
            " MISSED"
        };
        println!(
            "{avatars:>8}  {near:>10}  {hertz:>16.2}  {median:>12.3}  {p95:>12.3}  {:>10.2}{verdict}  ({shown} shown)",
            median / P1_BUDGET_MS
        );
    }
    println!(
        "  (P1 asks 1,000 within 2 ms: the first row has all 1,000 in the cells around the client. The others are the \
         block of a median client of 10,000 in the lobby, floating and on the floor: the rest of the 10,000 come as \
         cell summaries, dots without signatures to check per person)"
    );
}

/// One near neighbour's datagrams as `node::near` takes them: the right region, newer than the
/// last, within the clock's skew.
fn take_near(bytes: &[u8], scope: [u8; 4], last: &mut u64, local: u64) -> Option<PoseDatagram> {
    let datagram = PoseDatagram::decode(bytes).ok()?;
    let fresh = datagram.scope == scope && datagram.stamp > *last && datagram.stamp.abs_diff(local) < 300_000_000;
    fresh.then(|| {
        *last = datagram.stamp;
        datagram
    })
}

/// The median and p95 ms per frame, and how many avatars were shown at the end.
fn receive_frames(avatars: usize, near: usize, hertz: f64, frames: usize) -> (f64, f64, usize) {
    let topic = region_topic(RegionId::Lobby);
    let secrets: Vec<SecretKey> = (0..avatars)
        .map(|index| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(index as u64 + 1).to_le_bytes());
            SecretKey::from_bytes(&seed)
        })
        .collect();
    let me = SecretKey::from_bytes(&[255; 32]).public();
    let stats = Arc::new(NetStats::default());
    let mut inbox = Inbox::<RegionMessage>::new(*topic.as_bytes(), me, stats.clone());
    let mut crowd = RemoteCrowd::default();
    let frame = Duration::from_micros(16_667);
    let far = avatars - near;
    let per_frame = far as f64 * hertz * frame.as_secs_f64();
    let near_per_frame = near as f64 * 20.0 * frame.as_secs_f64();
    let start_micros = wall_micros();
    let scope = PoseDatagram::scope_of(topic.as_bytes());
    // Prepare the feed first (signing is the senders' cost, not ours): each frame's signed
    // messages and near datagrams (from senders 0..near).
    let warm_up = 30;
    let mut feed: Vec<(Vec<Vec<u8>>, Vec<(usize, Vec<u8>)>)> = Vec::with_capacity(frames + warm_up);
    let (mut owed, mut near_owed) = (0.0, 0.0);
    let (mut next_sender, mut next_near) = (0usize, 0usize);
    for index in 0..frames + warm_up {
        owed += per_frame;
        near_owed += near_per_frame;
        let mut messages = Vec::new();
        let sequence = |sender: usize| start_micros + index as u64 * 16_667 + sender as u64;
        let mut sign = |sender: usize| {
            if let Ok(bytes) =
                encode(&secrets[sender], topic.as_bytes(), sequence(sender), &presence(index as f32 * 0.01))
            {
                messages.push(bytes);
            }
        };
        // Everyone appears in the first frame, as on arrival in a full region.
        if index == 0 {
            (0..avatars).for_each(&mut sign);
        } else {
            let count = owed as usize;
            owed -= count as f64;
            for _ in 0..count {
                sign(near + next_sender % far.max(1));
                next_sender += 1;
            }
        }
        let mut datagrams = Vec::new();
        let count = if index == 0 { 0 } else { near_owed as usize };
        near_owed -= count as f64;
        for _ in 0..count {
            let sender = next_near % near.max(1);
            next_near += 1;
            let datagram = PoseDatagram { scope, stamp: sequence(sender), pose: pose(index as f32 * 0.01) };
            datagrams.push((sender, datagram.encode().to_vec()));
        }
        feed.push((messages, datagrams));
    }
    let near_keys: Vec<PublicKey> =
        secrets[..near].iter().filter_map(|secret| PublicKey::from_bytes(*secret.public().as_bytes()).ok()).collect();
    let mut last_stamps = vec![0u64; near];
    let mut times = Vec::with_capacity(frames);
    for (index, (messages, datagrams)) in feed.iter().enumerate() {
        let now = Duration::from_micros(index as u64 * 16_667);
        let local = start_micros + index as u64 * 16_667 + 5_000;
        let started = Instant::now();
        for (sender, bytes) in datagrams {
            if let (Some(datagram), Some(author)) =
                (take_near(bytes, scope, &mut last_stamps[*sender], local), near_keys.get(*sender))
            {
                crowd.insert_pose(author, datagram.stamp, datagram.pose, local);
            }
        }
        for bytes in messages {
            if let Some(message) = inbox.accept(bytes, now, local)
                && let RegionMessage::Presence(presence) = &message.body
                && let Ok(author) = PublicKey::from_bytes(*message.author.as_bytes())
            {
                crowd.insert(author, message.sequence, presence, local);
            }
        }
        let mut checksum = 0.0f32;
        for (_, avatar) in crowd.iter() {
            if let Some(pose) = avatar.pose_at(local) {
                checksum += pose.head.position.x;
            }
        }
        std::hint::black_box(checksum);
        if index >= warm_up {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    // Every near neighbour, and most of the crowd (see the note under the table).
    assert!(near_keys.iter().all(|key| crowd.get(key).is_some()), "a near neighbour is missing");
    assert!(crowd.len() * 4 >= avatars * 3, "only {} of {avatars} shown: {:?}", crowd.len(), stats.snapshot());
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[(times.len() - 1) * 95 / 100], crowd.len())
}

/// P3: `peers` offline nodes in the lobby, joined in a chain of tickets; each sends a new pose
/// every 200 ms for `seconds`; every delivery's latency (receipt minus the sender's clock,
/// which is the same clock here) is collected.
async fn delivery(peers: usize, seconds: u64, interval: Duration) -> Result<Vec<f64>, String> {
    let dirs: Vec<tempfile::TempDir> =
        (0..peers).map(|_| tempfile::tempdir().map_err(|error| error.to_string())).collect::<Result<_, _>>()?;
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    let mut tickets = Vec::new();
    for (index, dir) in dirs.iter().enumerate() {
        let mut config = NodeConfig::new(dir.path());
        config.relays = RelayChoice::Disabled;
        config.lan_discovery = false;
        config.name = Some(format!("peer {index}"));
        // Each joins through one of the earlier peers: a connected swarm without a hub.
        config.join = tickets.get(index.saturating_sub(1) / 2).cloned().into_iter().collect();
        let mut handle = spawn_node(&tokio::runtime::Handle::current(), config);
        let ticket = loop {
            match tokio::time::timeout(Duration::from_secs(20), handle.next_event()).await {
                Ok(Some(Event::Started { ticket, .. })) => break ticket,
                Ok(Some(Event::Failed(error))) => return Err(error),
                Ok(Some(_)) => {}
                _ => return Err("a node did not start".into()),
            }
        };
        tickets.push(ticket.parse().map_err(|error: sanctuary_net::TicketError| error.to_string())?);
        handles.push(handle);
    }
    // Let the swarm form before measuring.
    let settle = Instant::now() + Duration::from_secs(4);
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    let mut senders = Vec::new();
    for mut handle in handles {
        let latencies = latencies.clone();
        let measuring = measuring.clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<sanctuary_net::Command>();
        senders.push(tx);
        readers.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    command = rx.recv() => match command {
                        Some(command) => { handle.send(command); }
                        None => break,
                    },
                    event = handle.next_event() => match event {
                        Some(Event::Presence { sequence, .. }) => {
                            if measuring.load(std::sync::atomic::Ordering::Relaxed) {
                                let latency = wall_micros().saturating_sub(sequence) as f64 / 1000.0;
                                latencies.lock().map(|mut all| all.push(latency)).ok();
                            }
                        }
                        Some(_) => {}
                        None => break,
                    },
                }
            }
            handle.shutdown().await;
        }));
    }
    let mut step = 0.0f32;
    let end = settle + Duration::from_secs(seconds);
    while Instant::now() < end {
        if Instant::now() >= settle {
            measuring.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        step += 1.0;
        // All in one cell of the lobby, so that everyone hears everyone's presence on gossip: on
        // a lattice 12 m apart, each with a few near neighbours (their datagrams are not counted
        // here) and out of voice's hearing of most.
        for (index, sender) in senders.iter().enumerate() {
            let lattice = Vec3::new((index % 4) as f32, (index / 16) as f32, ((index / 4) % 4) as f32);
            let at = Vec3::new(2.0 + step * 0.01, 2.0, 2.0) + lattice * 12.0;
            let _ = sender.send(sanctuary_net::Command::Pose(pose_at(at)));
        }
        tokio::time::sleep(interval).await;
    }
    measuring.store(false, std::sync::atomic::Ordering::Relaxed);
    drop(senders);
    for reader in readers {
        let _ = reader.await;
    }
    let all = latencies.lock().map(|all| all.clone()).unwrap_or_default();
    Ok(all)
}
