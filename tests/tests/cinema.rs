//! The cinema between peers: Ada shares a film whose every picture shows its number; Bo, in the
//! cinema with her, streams it from her as it plays and shows the same picture at the same moment;
//! after a seek and for Cy, who comes in late and fetches from both, the pictures agree too.

use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::time::Duration;

use sanctuary_engine::{RegionId, RoomKind};
use sanctuary_net::Command;
use sanctuary_net::screen::ScreenAction;
use sanctuary_tests::peers::{Peer, offline_config, wait_until};
use sanctuary_video::{Film, Limits, Picture};

const RATE: u32 = 25;
const FRAMES: u32 = 250;
const WIDTH: u32 = 320;
const HEIGHT: u32 = 240;

/// A picture showing `n` as eight vertical bars, white for a one.
fn numbered(n: u32) -> Vec<u8> {
    let mut rgb = Vec::with_capacity((WIDTH * HEIGHT * 3) as usize);
    for _ in 0..HEIGHT {
        for x in 0..WIDTH {
            let on = (n >> (7 - (x * 8 / WIDTH))) & 1 == 1;
            rgb.extend_from_slice(if on { &[255, 255, 255] } else { &[0, 0, 0] });
        }
    }
    rgb
}

fn number_of(picture: &Picture) -> u32 {
    let row = picture.height / 2;
    (0..8).fold(0, |number, bar| {
        let x = (bar * 2 + 1) * picture.width / 16;
        let at = ((row * picture.width + x) * 4) as usize;
        (number << 1) | u32::from(picture.rgba[at] > 128)
    })
}

/// Ten seconds of numbered pictures in H.264 at a steady 4 Mbit/s (about 5 MB, several
/// segments), a key picture every second, the index first.
fn make_film(path: &Path) {
    let mut child = Process::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24"])
        .args(["-s", &format!("{WIDTH}x{HEIGHT}"), "-r", &RATE.to_string(), "-i", "-"])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "25", "-b:v", "4M", "-minrate", "4M"])
        .args(["-maxrate", "4M", "-bufsize", "1M", "-x264-params", "nal-hrd=cbr", "-movflags", "+faststart"])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("ffmpeg runs (`cargo xtask setup` installs it)");
    let mut input = child.stdin.take().expect("stdin");
    for n in 0..FRAMES {
        std::io::Write::write_all(&mut input, &numbered(n)).expect("ffmpeg takes the pictures");
    }
    drop(input);
    assert!(child.wait().expect("ffmpeg ends").success(), "ffmpeg made the film");
}

/// Where each peer's screen is at one moment, and the picture each shows there.
async fn shown(peers: &[&Peer]) -> Vec<(f64, u32)> {
    let positions: Vec<f64> = peers.iter().map(|peer| peer.screen.as_ref().expect("a screen").position_now()).collect();
    let mut shown = Vec::new();
    for (peer, position) in peers.iter().zip(positions) {
        let source = peer.film.clone().expect("a film");
        let number = tokio::task::spawn_blocking(move || {
            let size = source.size();
            let mut film = Film::from_seekable(move || source.reader(), size, Limits::default()).expect("opens");
            film.seek(position).expect("seeks");
            film.next_picture().expect("decodes").map(|picture| number_of(&picture))
        })
        .await
        .expect("joins")
        .expect("a picture at that time");
        shown.push((position, number));
    }
    shown
}

/// The pictures agree within ±100 ms (two and a half pictures at 25 a second); returns the
/// largest gap between positions, in milliseconds.
fn agree(shown: &[(f64, u32)], what: &str) -> f64 {
    let (first_position, first_number) = shown[0];
    let mut worst: f64 = 0.0;
    for (position, number) in &shown[1..] {
        let gap = (position - first_position).abs() * 1000.0;
        worst = worst.max(gap);
        assert!(gap <= 100.0, "{what}: positions {first_position} and {position} are {gap} ms apart");
        assert!(number.abs_diff(first_number) <= 2, "{what}: pictures {first_number} and {number} are shown");
    }
    // And the picture is the one due at that position.
    let due = (first_position * f64::from(RATE)).floor() as u32;
    assert!(first_number.abs_diff(due) <= 1, "{what}: picture {first_number} shown at {first_position} s");
    worst
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_film_plays_in_step_for_viewers_after_a_seek_and_for_a_late_joiner() {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let path = dirs[3].path().join("numbers.mp4");
    make_film(&path);
    let size = std::fs::metadata(&path).expect("the film").len();
    assert!(size > 3 << 20, "the film spans several segments ({size} bytes)");
    let cinema = RegionId::Room(RoomKind::Cinema);
    let in_cinema = |dir: &Path, name: &str, join: Option<&sanctuary_net::Ticket>| {
        let mut config = offline_config(dir, name, join);
        config.regions = vec![cinema];
        config
    };
    let mut ada = Peer::start(in_cinema(dirs[0].path(), "Ada", None)).await;
    let mut bo = Peer::start(in_cinema(dirs[1].path(), "Bo", Some(&ada.ticket))).await;
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(20), "Ada and Bo meet in the cinema", |peer| {
        peer.status.as_ref().is_some_and(|status| status.neighbours > 0)
    })
    .await;

    ada.handle.send(Command::ShareFilm(path.clone()));
    let to_first =
        wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(20), "both have the film on the screen", |peer| {
            peer.film.is_some() && peer.screen.as_ref().is_some_and(|view| view.state.film().is_some())
        })
        .await;
    assert!(ada.screen.as_ref().is_some_and(|view| view.ours), "the sharer controls the screen");
    assert!(bo.screen.as_ref().is_some_and(|view| !view.ours && view.state.clock.playing()));
    // A second or so in, Bo streams and shows what Ada shows.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let playing = agree(&shown(&[&ada, &bo]).await, "playing");

    ada.handle.send(Command::Screen(ScreenAction::Seek(6.0)));
    let version = ada.screen.as_ref().map_or(0, |view| view.state.version);
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(10), "the seek reaches Bo", |peer| {
        peer.screen.as_ref().is_some_and(|view| view.state.version > version)
    })
    .await;
    let sought = shown(&[&ada, &bo]).await;
    assert!(sought[0].0 >= 6.0 && sought[0].0 < 8.0, "Ada is at {} s after seeking to 6 s", sought[0].0);
    let after_seek = agree(&sought, "after a seek");

    // Cy comes in late, and starts where the others are, fetching from both.
    let mut cy = Peer::start(in_cinema(dirs[2].path(), "Cy", Some(&ada.ticket))).await;
    wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(20), "Cy has the film on the screen", |peer| {
        peer.film.is_some() && peer.screen.as_ref().is_some_and(|view| view.state.film().is_some())
    })
    .await;
    let late = agree(&shown(&[&ada, &bo, &cy]).await, "a late joiner");
    let progress = cy.film.as_ref().expect("a film").progress();
    assert!(progress.held > 0 && !progress.from.is_empty(), "Cy fetched the film: {progress:?}");

    // Paused, everyone stops at the same picture.
    ada.handle.send(Command::Screen(ScreenAction::Pause));
    wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(10), "everyone is paused", |peer| {
        peer.screen.as_ref().is_some_and(|view| !view.state.clock.playing())
    })
    .await;
    let paused = shown(&[&ada, &bo, &cy]).await;
    assert!(paused.windows(2).all(|pair| pair[0] == pair[1]), "paused on one picture: {paused:?}");

    // Only the controller moves the screen.
    bo.handle.send(Command::Screen(ScreenAction::Play));
    wait_until(&mut [&mut bo], Duration::from_secs(10), "Bo is told he does not control the screen", |peer| {
        !peer.screen_refused.is_empty()
    })
    .await;

    // Until Ada hands it to him: then his moves reach everyone (a state handed on is signed by
    // the one who hands it, and names the new controller).
    let bo_key = *bo.id.as_bytes();
    ada.handle.send(Command::Screen(ScreenAction::HandOver(bo_key)));
    wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(10), "Bo controls the screen", |peer| {
        peer.screen.as_ref().is_some_and(|view| view.state.controller == bo_key)
    })
    .await;
    bo.handle.send(Command::Screen(ScreenAction::Play));
    wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(10), "Bo's play reaches everyone", |peer| {
        peer.screen.as_ref().is_some_and(|view| view.state.clock.playing() && view.state.controller == bo_key)
    })
    .await;
    println!(
        "cinema: first film state after {:.0} ms; sync error {playing:.1} ms playing, {after_seek:.1} ms after a seek, {late:.1} ms for a late joiner; Cy fetched from {} peers",
        to_first.as_secs_f64() * 1000.0,
        progress.from.len()
    );
}
