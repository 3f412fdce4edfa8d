//! `cargo xtask bench video`, its network half: a film shared in the cinema between nodes in
//! this process, on loopback (no relays).
//!
//! - Time to first frame: from `Command::ShareFilm` on the sharer to a viewer's player handing
//!   out the first picture (the film hashed, the state gossiped, the index and first segments
//!   fetched, the film opened and decoded), median of five fresh pairs of nodes.
//! - Upload per viewer: one sharer and 1, 5 or 10 viewers read the whole film at once; what the
//!   sharer uploads in all and per viewer, and what viewers upload to each other. Every node
//!   holds to the default upload rate. The sharer's upload should not grow with the audience.
//!
//! `--smoke` uses a short film, one run and two viewers, to show that the benchmark still runs;
//! `--audience N` measures the uploads for N viewers alone.

use std::path::Path;
use std::process::Command as Process;
use std::time::{Duration, Instant};

use sanctuary_engine::{RegionId, RoomKind};
use sanctuary_net::{Command, DEFAULT_UPLOAD_RATE};
use sanctuary_tests::peers::{Peer, offline_config, wait_until};
use sanctuary_video::{Film, Limits, Player, PlayerState};

/// A 720p film of `seconds` at about 4 Mbit/s, its index first.
fn make_film(path: &Path, seconds: u32) {
    let status = Process::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=24"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string(), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-b:v", "4M"])
        .args(["-c:a", "aac", "-movflags", "+faststart"])
        .arg(path)
        .status()
        .unwrap_or_else(|error| panic!("ffmpeg could not start ({error}); `cargo xtask setup` installs it"));
    assert!(status.success(), "ffmpeg could not make the film");
}

async fn in_cinema(dir: &Path, name: &str, join: Option<&sanctuary_net::Ticket>) -> Peer {
    let mut config = offline_config(dir, name, join);
    config.regions = vec![RegionId::Room(RoomKind::Cinema)];
    Peer::start(config).await
}

/// Seconds from sharing to a viewer's first picture, with fresh nodes.
async fn first_frame(film: &Path) -> f64 {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let mut sharer = in_cinema(dirs[0].path(), "Ada", None).await;
    let mut viewer = in_cinema(dirs[1].path(), "Bo", Some(&sharer.ticket)).await;
    wait_until(&mut [&mut sharer, &mut viewer], Duration::from_secs(20), "the two meet", |peer| {
        peer.status.as_ref().is_some_and(|status| status.neighbours > 0)
    })
    .await;
    let start = Instant::now();
    sharer.handle.send(Command::ShareFilm(film.to_owned()));
    wait_until(&mut [&mut viewer], Duration::from_secs(30), "the viewer has the film", |peer| {
        peer.film.is_some() && peer.screen.is_some()
    })
    .await;
    let source = viewer.film.clone().expect("a film");
    let view = viewer.screen.clone().expect("a screen");
    tokio::task::spawn_blocking(move || {
        let size = source.size();
        let film = Film::from_seekable(move || source.reader(), size, Limits::default()).expect("the film opens");
        let mut player = Player::new(film);
        let deadline = Instant::now() + Duration::from_secs(30);
        while player.picture_at(view.position_now()).is_none() {
            assert!(!matches!(player.state(), PlayerState::Failed(_)), "the film failed: {:?}", player.state());
            assert!(Instant::now() < deadline, "no picture in 30 s");
            std::thread::sleep(Duration::from_millis(1));
        }
    })
    .await
    .expect("joins");
    start.elapsed().as_secs_f64()
}

/// One sharer and `viewers` viewers each read the whole film as fast as it comes (a viewer
/// fetches what it reads, a little ahead): (sharer's bytes, the viewers' bytes to each other,
/// seconds until all had read it).
async fn audience(film: &Path, size: u64, viewers: usize) -> (u64, u64, f64) {
    let dirs: Vec<tempfile::TempDir> = (0..=viewers).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let mut sharer = in_cinema(dirs[0].path(), "Ada", None).await;
    let mut audience = Vec::new();
    for (n, dir) in dirs[1..].iter().enumerate() {
        audience.push(in_cinema(dir.path(), &format!("Viewer {n}"), Some(&sharer.ticket)).await);
    }
    {
        let mut everyone: Vec<&mut Peer> = std::iter::once(&mut sharer).chain(audience.iter_mut()).collect();
        wait_until(&mut everyone, Duration::from_secs(30), "everyone meets", |peer| {
            peer.status.as_ref().is_some_and(|status| status.neighbours > 0)
        })
        .await;
    }
    let start = Instant::now();
    sharer.handle.send(Command::ShareFilm(film.to_owned()));
    let mut everyone: Vec<&mut Peer> = std::iter::once(&mut sharer).chain(audience.iter_mut()).collect();
    wait_until(&mut everyone, Duration::from_secs(30), "every viewer has the film", |peer| peer.film.is_some()).await;
    let reads: Vec<_> = audience
        .iter()
        .map(|viewer| {
            let mut reader = viewer.film.as_ref().expect("a film").reader();
            tokio::task::spawn_blocking(move || std::io::copy(&mut reader, &mut std::io::sink()))
        })
        .collect();
    for read in reads {
        let read = read.await.expect("joins").expect("the film reads");
        assert_eq!(read, size, "a viewer read the whole film");
    }
    let seconds = start.elapsed().as_secs_f64();
    let from_sharer = sharer.uploads.counts().total;
    let between: u64 = audience.iter().map(|viewer| viewer.uploads.counts().total).sum();
    (from_sharer, between, seconds)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let smoke = std::env::args().any(|arg| arg == "--smoke");
    let dir = tempfile::tempdir().expect("temp dir");
    let film = dir.path().join("film.mp4");
    let seconds = if smoke { 2 } else { 20 };
    make_film(&film, seconds);
    let size = std::fs::metadata(&film).expect("made").len();
    println!(
        "the cinema on loopback: a {seconds} s 720p film of {:.1} MB, H.264 at 4 Mbit/s with AAC",
        size as f64 / 1e6
    );

    // `--audience N`: only the uploads, for N viewers.
    let only: Option<usize> = std::env::args()
        .skip_while(|arg| arg != "--audience")
        .nth(1)
        .map(|count| count.parse().expect("--audience takes a number of viewers"));
    let runs = if smoke {
        1
    } else if only.is_some() {
        0
    } else {
        5
    };
    let mut times = Vec::new();
    for _ in 0..runs {
        times.push(first_frame(&film).await);
    }
    times.sort_by(f64::total_cmp);
    if let (Some(median), Some(slowest)) = (times.get(times.len() / 2), times.last()) {
        println!(
            "time to first frame after /play: median {:.0} ms, slowest {:.0} ms ({runs} runs)",
            median * 1000.0,
            slowest * 1000.0
        );
    }

    println!(
        "uploads as every viewer reads the whole film at once (each node at most {} MiB/s):",
        DEFAULT_UPLOAD_RATE >> 20
    );
    println!(
        "{:>7}  {:>13}  {:>16}  {:>18}  {:>9}",
        "viewers", "sharer (MB)", "sharer / viewer", "viewers to others", "seconds"
    );
    let audiences: Vec<usize> = match only {
        Some(viewers) => vec![viewers],
        None if smoke => vec![2],
        None => vec![1, 5, 10],
    };
    for viewers in audiences {
        let (from_sharer, between, seconds) = audience(&film, size, viewers).await;
        println!(
            "{viewers:>7}  {:>13.1}  {:>15.2}x  {:>15.1} MB  {seconds:>9.1}",
            from_sharer as f64 / 1e6,
            from_sharer as f64 / size as f64 / viewers as f64,
            between as f64 / 1e6,
        );
    }
    println!("(sharer / viewer: the sharer's upload per viewer, in films; 1.00x is a whole film to each)");
}
