//! `cargo xtask bench net`: what presence costs on the wire, how fast gossip delivers it
//! between peers in one process, and the CPU time per frame to take in a crowd of remote
//! avatars. Each figure is printed beside its target (P1-P3 of TARGETS.md).
//!
//! Options: `--smoke` for a quick check that it runs (small numbers, no targets judged).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glam::{Quat, Vec3};
use iroh::SecretKey;
use sanctuary_engine::{PublicKey, RegionId};
use sanctuary_net::inbox::Inbox;
use sanctuary_net::wire::{RegionMessage, encode};
use sanctuary_net::{
    DOWNLINK_BUDGET_BITS_PER_SECOND, Event, NetStats, NodeConfig, PoseFrame, Presence, QuantisedTransform, RelayChoice,
    RemoteCrowd, pose_interval, region_topic, spawn_node,
};

/// P1: 1,000 remote avatars within 2 ms of CPU per frame on one core.
const P1_BUDGET_MS: f64 = 2.0;
/// P2: at most 16 kbit/s up per avatar at 20 Hz.
const P2_UP_KBIT: f64 = 16.0;
/// P3: p95 delivery within 100 ms with 8 peers, 200 ms with 32.
const P3_TARGETS_MS: [(usize, f64); 2] = [(8, 100.0), (32, 200.0)];
/// Bytes a message costs beyond its content on the wire (gossip framing, QUIC, UDP, IP).
const WIRE_OVERHEAD: usize = 64;

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

fn presence(x: f32) -> RegionMessage {
    RegionMessage::Presence(Presence { name: "Guest 3fa2".into(), colour: [200, 120, 40], pose: pose(x) })
}

fn wall_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_micros() as u64).unwrap_or(0)
}

/// P2: the size of a pose message and what the crowd-scaled rate makes of it.
fn pose_traffic() {
    let secret = SecretKey::from_bytes(&[7; 32]);
    let topic = region_topic(RegionId::Lobby);
    let bytes = encode(&secret, topic.as_bytes(), wall_micros(), &presence(12.5)).map(|bytes| bytes.len()).unwrap_or(0);
    let up_kbit = |bytes: usize| (bytes * 8 * 20) as f64 / 1000.0;
    println!("P2 pose traffic");
    println!(
        "  one signed pose (head and both hands, name, colour): {bytes} bytes, of which 96 are the author key and \
         the signature"
    );
    println!(
        "  up per avatar at 20 Hz: {:.1} kbit/s of messages, {:.1} kbit/s with ~{WIRE_OVERHEAD} bytes of framing \
         (target {P2_UP_KBIT} kbit/s: {:.2} of it without framing)",
        up_kbit(bytes),
        up_kbit(bytes + WIRE_OVERHEAD),
        up_kbit(bytes) / P2_UP_KBIT
    );
    println!("  down per client as the region fills (senders slow down to keep the sum within the budget):");
    println!("{:>10}  {:>14}  {:>16}  {:>10}", "people", "pose interval", "down (kbit/s)", "target");
    for people in [2usize, 8, 32, 100, 1_000, 10_000] {
        let interval = pose_interval(people - 1, bytes);
        let down = (people - 1) as f64 * ((bytes + WIRE_OVERHEAD) * 8) as f64 / interval.as_secs_f64() / 1000.0;
        let budget = DOWNLINK_BUDGET_BITS_PER_SECOND as f64 / 1000.0;
        let verdict = if down <= budget { "met" } else { "over" };
        println!("{people:>10}  {:>11.0} ms  {down:>16.0}  {budget:>6.0} {verdict}", interval.as_secs_f64() * 1000.0);
    }
}

/// P1: per frame at 60 Hz, the poses that arrive are checked (size, decode, signature, rate,
/// replay) and stored, then every avatar is interpolated for the frame. One thread.
fn receive_cost(smoke: bool) {
    println!("\nP1 receive, verify and interpolate remote avatars (simulated feed, one thread, 60 frames a second)");
    println!(
        "{:>8}  {:>18}  {:>12}  {:>12}  {:>10}",
        "avatars", "poses each (Hz)", "median (ms)", "p95 (ms)", "of 2 ms"
    );
    let cases: Vec<(usize, f64)> = if smoke {
        vec![(100, 20.0)]
    } else {
        let rate = |people: usize| 1.0 / pose_interval(people - 1, 180).as_secs_f64();
        vec![(1_000, rate(1_000)), (1_000, 20.0), (10_000, rate(10_000))]
    };
    for (avatars, hertz) in cases {
        let frames = if smoke { 30 } else { 240 };
        let (median, p95) = receive_frames(avatars, hertz, frames);
        println!("{avatars:>8}  {hertz:>18.1}  {median:>12.3}  {p95:>12.3}  {:>10.2}", median / P1_BUDGET_MS);
    }
    println!("  (the first row is the rate senders use at that crowd size; 20 Hz from everyone is the worst case)");
}

fn receive_frames(avatars: usize, hertz: f64, frames: usize) -> (f64, f64) {
    let topic = region_topic(RegionId::Lobby);
    let secrets: Vec<SecretKey> = (0..avatars)
        .map(|index| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(index as u64 + 1).to_le_bytes());
            SecretKey::from_bytes(&seed)
        })
        .collect();
    let me = SecretKey::from_bytes(&[255; 32]).public();
    let mut inbox = Inbox::<RegionMessage>::new(*topic.as_bytes(), me, Arc::new(NetStats::default()));
    let mut crowd = RemoteCrowd::default();
    let frame = Duration::from_micros(16_667);
    let per_frame = avatars as f64 * hertz * frame.as_secs_f64();
    let start_micros = wall_micros();
    // Prepare the feed first (signing is the senders' cost, not ours): each frame's messages.
    let warm_up = 30;
    let mut feed: Vec<Vec<Vec<u8>>> = Vec::with_capacity(frames + warm_up);
    let mut owed = 0.0;
    let mut next_sender = 0usize;
    for index in 0..frames + warm_up {
        owed += per_frame;
        let mut messages = Vec::new();
        // Everyone appears in the first frame, as on arrival in a full region.
        let count = if index == 0 { avatars } else { owed as usize };
        owed -= count as f64;
        for _ in 0..count {
            let sender = next_sender % avatars;
            next_sender += 1;
            let sequence = start_micros + index as u64 * 16_667 + sender as u64;
            if let Ok(bytes) = encode(&secrets[sender], topic.as_bytes(), sequence, &presence(index as f32 * 0.01)) {
                messages.push(bytes);
            }
        }
        feed.push(messages);
    }
    let mut times = Vec::with_capacity(frames);
    for (index, messages) in feed.iter().enumerate() {
        let now = Duration::from_micros(index as u64 * 16_667);
        let local = start_micros + index as u64 * 16_667 + 5_000;
        let started = Instant::now();
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
    assert_eq!(crowd.len(), avatars, "every avatar was taken in");
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[(times.len() - 1) * 95 / 100])
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
        for (index, sender) in senders.iter().enumerate() {
            let _ = sender.send(sanctuary_net::Command::Pose(pose(step + index as f32)));
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
