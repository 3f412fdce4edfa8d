//! `cargo xtask bench world`: what the persistent world costs. Each figure is printed beside its
//! target (P4-P6 of TARGETS.md):
//!
//! - P4: a 64 MiB blob from one iroh-blobs store to another over loopback, against a plain TCP
//!   copy of the same bytes measured in the same run.
//! - P5: a new peer catching up on a city of 100,000 stored changes from a peer that holds them.
//! - P6: signed changes verified and applied per second, on one core.
//!
//! Options: `--smoke` for a quick check that it runs (small numbers, no targets judged).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use glam::Vec3;
use iroh::endpoint::presets;
use iroh::protocol::Router;
use iroh::{Endpoint, RelayMode};
use iroh_blobs::store::fs::FsStore;
use iroh_blobs::{BlobsProtocol, Hash};
use sanctuary_engine::{
    Change, Object, ObjectKind, Op, Placement, PublicKey, RegionId, Rgb, Shape, SignedChange, VERIFY_BATCH, Verifier,
    World, home_parcel,
};
use sanctuary_net::{Event, NetRuntime, NodeConfig, RelayChoice, SharedReplica, spawn_node};

/// P4: at least half the speed of a plain TCP copy.
const P4_RATIO: f64 = 0.5;
/// P5: a late joiner catches up on 100,000 changes within 5 s.
const P5_SECONDS: f64 = 5.0;
/// P6: at least 50,000 changes verified and applied per second on one core.
const P6_PER_SECOND: f64 = 50_000.0;

fn main() {
    let smoke = std::env::args().any(|arg| arg == "--smoke");
    let runtime = match NetRuntime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the network runtime: {error}");
            std::process::exit(1);
        }
    };
    let changes = if smoke { 2_000 } else { 100_000 };
    println!("signing {changes} changes by {} builders…", changes / 200);
    let history = history(changes);

    // P6 first: pure CPU, one thread.
    let runs: Vec<(f64, Breakdown)> = (0..if smoke { 1 } else { 5 }).map(|_| verify_and_apply(&history)).collect();
    let rate = median(runs.iter().map(|(rate, _)| *rate).collect());
    let part = |pick: fn(&Breakdown) -> f64| median(runs.iter().map(|(_, breakdown)| pick(breakdown)).collect());
    println!(
        "P6 µs per change: verify {:.1} in batches of {VERIFY_BATCH} ({:.1} with every change of a batch by \
         another author, {:.1} one by one), insert {:.1}, settle {:.1}",
        part(|b| b.verify),
        verify_interleaved(&history),
        verify_one_by_one(&history),
        part(|b| b.insert),
        part(|b| b.settle),
    );
    report(
        "P6 verify + apply, one core",
        format!("{rate:.0} changes/s"),
        (!smoke).then(|| rate / P6_PER_SECOND),
        "≥ 50,000/s",
    );

    // P5: a home node holding the city, then late joiners.
    let p5 = runtime.block_on(late_joiner(&history, if smoke { 1 } else { 3 }));
    match p5 {
        Ok(seconds) => report(
            &format!("P5 late joiner, {changes} changes"),
            format!("{seconds:.2} s"),
            (!smoke).then(|| P5_SECONDS / seconds),
            "≤ 5 s",
        ),
        // A late joiner that does not get the whole world is a defect, not a slow figure: the
        // smoke run in `cargo xtask test` must fail on it.
        Err(error) => {
            eprintln!("error: P5 failed: {error}");
            std::process::exit(1);
        }
    }

    // P4: 64 MiB over iroh-blobs against TCP.
    let size = if smoke { 4 << 20 } else { 64 << 20 };
    match runtime.block_on(blob_versus_tcp(size, if smoke { 1 } else { 3 })) {
        Ok(P4 { blob, quic, tcp }) => {
            let mib = size as f64 / (1 << 20) as f64;
            let line = |seconds: f64| {
                format!("{seconds:.3} s ({:.0} MiB/s, {:.0} % of TCP)", mib / seconds, tcp / seconds * 100.0)
            };
            println!("P4 plain TCP copy of {mib:.0} MiB: median {tcp:.3} s ({:.0} MiB/s)", mib / tcp);
            println!("P4 plain QUIC stream of {mib:.0} MiB (iroh's endpoints, TLS; the ceiling): {}", line(quic));
            report(
                &format!("P4 iroh-blobs fetch of {mib:.0} MiB"),
                format!("{}, {:.0} % of the plain QUIC stream", line(blob), quic / blob * 100.0),
                (!smoke).then(|| (tcp / blob) / P4_RATIO),
                "≥ 50 % of TCP",
            );
        }
        Err(error) => println!("P4 failed: {error}"),
    }
}

/// Prints a figure; `score` above 1 meets the target.
fn report(what: &str, figure: String, score: Option<f64>, target: &str) {
    match score {
        Some(score) => {
            let verdict = if score >= 1.0 { "met" } else { "MISSED" };
            println!("{what}: {figure}  (target {target}: {verdict}, {score:.2}× the target)");
        }
        None => println!("{what}: {figure}  (smoke run, target {target} not judged)"),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A city history: builders of 200 changes each (a claim, then objects placed and replaced on
/// their home parcels), in the order they were made.
fn history(changes: usize) -> Vec<Vec<u8>> {
    let builders = changes.div_ceil(200);
    let mut out = Vec::with_capacity(changes);
    for builder in 0..builders {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(builder as u64 + 1).to_le_bytes());
        let author = PublicKey::from_secret_seed(&seed);
        let parcel = home_parcel(&author);
        let centre = parcel.bounds().center();
        let sign = |seq: u64, op: Op| -> SignedChange { Change { author, seq, op }.sign(&seed) };
        out.push(sign(1, Op::Claim { parcel }).to_bytes());
        for step in 1..200u64 {
            let id = step % 100;
            let offset = Vec3::new((id % 10) as f32 - 5.0, 0.0, (id / 10) as f32 - 5.0);
            let object = Object {
                kind: ObjectKind::Primitive(Shape::Cuboid),
                placement: Placement::standing(Vec3::new(centre.x, 0.0, centre.y) + offset, Vec3::splat(0.8)),
                colour: Rgb::new(step as u8, 80, 200),
            };
            out.push(sign(1 + step, Op::Put { parcel, epoch: 0, id, object }).to_bytes());
        }
    }
    out.truncate(changes);
    out
}

/// Verifies and applies every change on this thread; returns changes per second.
///
/// The signatures are checked in batches ([`Verifier::verify_many`]), as a sync does; the
/// breakdown gives microseconds per change for each step.
fn verify_and_apply(history: &[Vec<u8>]) -> (f64, Breakdown) {
    let start = Instant::now();
    let verified = Verifier.verify_many(history);
    let checked = Instant::now();
    let mut world = World::new();
    for verified in verified.into_iter().flatten() {
        let _ = world.insert(verified);
    }
    let inserted = Instant::now();
    world.settle();
    let settled = Instant::now();
    assert_eq!(world.len(), history.len(), "every change is taken");
    let per_change = |from: Instant, to: Instant| (to - from).as_secs_f64() * 1e6 / history.len() as f64;
    let breakdown = Breakdown {
        verify: per_change(start, checked),
        insert: per_change(checked, inserted),
        settle: per_change(inserted, settled),
    };
    (history.len() as f64 / (settled - start).as_secs_f64(), breakdown)
}

/// Microseconds per change in each step of P6.
#[derive(Debug, Clone, Copy)]
struct Breakdown {
    verify: f64,
    insert: f64,
    settle: f64,
}

/// Microseconds per change to check signatures in batches where no two changes share an author
/// (the history is in runs of 200 by one builder; this takes one change from each in turn).
fn verify_interleaved(history: &[Vec<u8>]) -> f64 {
    let mut order: Vec<usize> = (0..history.len()).collect();
    order.sort_by_key(|index| (index % 200, index / 200));
    let interleaved: Vec<&[u8]> = order.iter().map(|index| history[*index].as_slice()).collect();
    let start = Instant::now();
    let taken = Verifier.verify_many(&interleaved).iter().filter(|outcome| outcome.is_ok()).count();
    assert_eq!(taken, history.len(), "every change verifies");
    start.elapsed().as_secs_f64() * 1e6 / history.len() as f64
}

/// Microseconds per change to check signatures one at a time, for comparison with the batches.
fn verify_one_by_one(history: &[Vec<u8>]) -> f64 {
    let start = Instant::now();
    let taken = history.iter().filter(|bytes| Verifier.verify(bytes).is_ok()).count();
    assert_eq!(taken, history.len(), "every change verifies");
    start.elapsed().as_secs_f64() * 1e6 / history.len() as f64
}

fn offline(dir: &std::path::Path, join: Vec<sanctuary_net::Ticket>) -> NodeConfig {
    let mut config = NodeConfig::new(dir);
    config.relays = RelayChoice::Disabled;
    config.lan_discovery = false;
    config.regions = vec![RegionId::City];
    config.join = join;
    config
}

/// Waits for an event matching `pick`, up to `limit`.
async fn wait_for<T>(
    handle: &mut sanctuary_net::NodeHandle,
    limit: Duration,
    mut pick: impl FnMut(Event) -> Option<T>,
) -> Result<T, String> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, handle.next_event()).await {
            Err(_) => return Err("timed out".into()),
            Ok(None) => return Err("the node stopped".into()),
            Ok(Some(Event::Failed(error))) => return Err(error),
            Ok(Some(event)) => {
                if let Some(found) = pick(event) {
                    return Ok(found);
                }
            }
        }
    }
}

/// Median seconds from a new peer's start until it holds the whole city, over `runs` joiners.
async fn late_joiner(history: &[Vec<u8>], runs: usize) -> Result<f64, String> {
    let home_dir = tempfile::tempdir().map_err(|error| error.to_string())?;
    {
        let (replica, _) = SharedReplica::open(home_dir.path()).map_err(|error| error.to_string())?;
        let applied = replica.apply_bytes(history, 2).map_err(|error| error.to_string())?;
        if applied.new.len() != history.len() {
            return Err(format!("only {} of {} changes were taken", applied.new.len(), history.len()));
        }
    }
    let mut home = spawn_node(&tokio::runtime::Handle::current(), offline(home_dir.path(), Vec::new()));
    let (ticket, home_world) = wait_for(&mut home, Duration::from_secs(30), |event| match event {
        Event::Started { ticket, world, .. } => Some((ticket, world)),
        _ => None,
    })
    .await?;
    let ticket: sanctuary_net::Ticket = ticket.parse().map_err(|_| "the ticket does not parse".to_owned())?;
    let expected = home_world.state_hash();
    // Each node also signs its own name into the world (`Op::Profile`): the joiner is whole
    // when it holds every change of the history, whatever else it holds.
    let ids: Vec<sanctuary_engine::ChangeId> =
        history.iter().filter_map(|bytes| SignedChange::decode(bytes).ok().map(|signed| signed.id())).collect();
    let holds_all = |world: &SharedReplica| {
        world.len() >= history.len() && {
            let world = world.world();
            ids.iter().all(|id| world.contains(id))
        }
    };
    let mut times = Vec::new();
    for _ in 0..runs {
        let dir = tempfile::tempdir().map_err(|error| error.to_string())?;
        let start = Instant::now();
        let mut joiner = spawn_node(&tokio::runtime::Handle::current(), offline(dir.path(), vec![ticket.clone()]));
        let world = wait_for(&mut joiner, Duration::from_secs(10), |event| match event {
            Event::Started { world, .. } => Some(world),
            _ => None,
        })
        .await?;
        // Whichever side asks, the changes arrive through a sync; watch the joiner's world fill.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !holds_all(&world) {
            if Instant::now() > deadline {
                return Err(format!("the joiner held {} of {} changes after 60 s", world.len(), history.len()));
            }
            while joiner.try_event().is_some() {}
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let took = start.elapsed().as_secs_f64();
        if !holds_all(&world) || world.state_hash() != expected {
            return Err(format!("the joiner holds {} changes, not the same state", world.len()));
        }
        println!("  a late joiner held all {} changes, same state hash, after {took:.2} s", history.len());
        times.push(took);
        joiner.shutdown().await;
    }
    home.shutdown().await;
    Ok(median(times))
}

/// Median seconds for a `size`-byte blob fetched over iroh-blobs and copied over plain TCP.
/// P4's medians in seconds: iroh-blobs between two stores, a plain QUIC stream on the same kind
/// of endpoints (what QUIC itself allows here: the ceiling for any protocol on it), and a plain
/// TCP copy; each ends in a file.
struct P4 {
    blob: f64,
    quic: f64,
    tcp: f64,
}

/// The ALPN of the plain QUIC copy P4 measures beside iroh-blobs.
const RAW_ALPN: &[u8] = b"sanctuary/bench/raw-copy";

/// Sends its bytes on one stream to whoever connects with [`RAW_ALPN`] and asks.
#[derive(Debug, Clone)]
struct RawCopy(std::sync::Arc<Vec<u8>>);

impl iroh::protocol::ProtocolHandler for RawCopy {
    async fn accept(&self, connection: iroh::endpoint::Connection) -> Result<(), iroh::protocol::AcceptError> {
        let (mut send, mut recv) = connection.accept_bi().await?;
        let mut asked = [0u8; 1];
        recv.read_exact(&mut asked).await.map_err(iroh::protocol::AcceptError::from_err)?;
        send.write_all(&self.0).await.map_err(iroh::protocol::AcceptError::from_err)?;
        send.finish().map_err(iroh::protocol::AcceptError::from_err)?;
        connection.closed().await;
        Ok(())
    }
}

/// A loopback endpoint as the node's (iroh's transport settings).
async fn bench_endpoint() -> Result<Endpoint, String> {
    Endpoint::builder(presets::Minimal).relay_mode(RelayMode::Disabled).bind().await.map_err(|error| error.to_string())
}

async fn blob_versus_tcp(size: usize, runs: usize) -> Result<P4, String> {
    let mut data = vec![0u8; size];
    let mut state = 0x9e3779b97f4a7c15u64;
    for chunk in data.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let bytes = state.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    let data = std::sync::Arc::new(data);
    let error = |error: &dyn std::fmt::Display| error.to_string();
    let provider_dir = tempfile::tempdir().map_err(|e| error(&e))?;
    let provider_store = FsStore::load(provider_dir.path()).await.map_err(|e| error(&e))?;
    let tag = provider_store.add_bytes(data.to_vec()).await.map_err(|e| error(&e))?;
    let hash: Hash = tag.hash;

    let (mut blob_times, mut quic_times) = (Vec::new(), Vec::new());
    let provider = bench_endpoint().await?;
    let router = Router::builder(provider.clone())
        .accept(iroh_blobs::ALPN, BlobsProtocol::new(&provider_store, None))
        .accept(RAW_ALPN, RawCopy(data.clone()))
        .spawn();
    let addr = provider.addr();
    {
        for _ in 0..runs {
            // iroh-blobs into a fresh store.
            let dir = tempfile::tempdir().map_err(|e| error(&e))?;
            let store = FsStore::load(dir.path()).await.map_err(|e| error(&e))?;
            let endpoint = bench_endpoint().await?;
            let start = Instant::now();
            let connection = endpoint.connect(addr.clone(), iroh_blobs::ALPN).await.map_err(|e| error(&e))?;
            store.remote().fetch(connection.clone(), hash).await.map_err(|e| format!("iroh-blobs: {e}"))?;
            blob_times.push(start.elapsed().as_secs_f64());
            let fetched = store.get_bytes(hash).await.map_err(|e| error(&e))?;
            if fetched.len() != size {
                return Err(format!("fetched {} bytes of {size}", fetched.len()));
            }
            connection.close(0u32.into(), b"done");
            store.shutdown().await.map_err(|e| error(&e))?;

            // A plain QUIC stream into a file.
            let start = Instant::now();
            let connection = endpoint.connect(addr.clone(), RAW_ALPN).await.map_err(|e| error(&e))?;
            let (mut send, mut recv) = connection.open_bi().await.map_err(|e| error(&e))?;
            send.write_all(&[1]).await.map_err(|e| error(&e))?;
            let target = tempfile::NamedTempFile::new().map_err(|e| error(&e))?;
            let mut file = target.reopen().map_err(|e| error(&e))?;
            let mut buffer = vec![0u8; 256 * 1024];
            let mut received = 0;
            while let Some(read) = recv.read(&mut buffer).await.map_err(|e| format!("QUIC stream: {e}"))? {
                file.write_all(&buffer[..read]).map_err(|e| error(&e))?;
                received += read;
            }
            quic_times.push(start.elapsed().as_secs_f64());
            if received != size {
                return Err(format!("QUIC moved {received} bytes of {size}"));
            }
            connection.close(0u32.into(), b"done");
            endpoint.close().await;
        }
    }
    let _ = router.shutdown().await;

    let mut tcp_times = Vec::new();
    for _ in 0..runs {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| error(&e))?;
        let port = listener.local_addr().map_err(|e| error(&e))?.port();
        let sender_data = data.clone();
        let sender = std::thread::spawn(move || -> std::io::Result<()> {
            let (mut stream, _) = listener.accept()?;
            stream.write_all(&sender_data)?;
            Ok(())
        });
        let start = Instant::now();
        // A copy ends in a file, as the blob store's does.
        let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| error(&e))?;
        let target = tempfile::NamedTempFile::new().map_err(|e| error(&e))?;
        let mut file = target.reopen().map_err(|e| error(&e))?;
        let mut buffer = vec![0u8; 256 * 1024];
        let mut received = 0;
        loop {
            let read = stream.read(&mut buffer).map_err(|e| error(&e))?;
            if read == 0 {
                break;
            }
            file.write_all(&buffer[..read]).map_err(|e| error(&e))?;
            received += read;
        }
        tcp_times.push(start.elapsed().as_secs_f64());
        let _ = sender.join();
        if received != size {
            return Err(format!("TCP moved {received} bytes of {size}"));
        }
    }
    Ok(P4 { blob: median(blob_times), quic: median(quic_times), tcp: median(tcp_times) })
}
