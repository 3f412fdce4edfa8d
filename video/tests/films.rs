//! Films as people have them, made by an independent tool (Debian's `ffmpeg`, with x264 and
//! libaom) from pictures drawn here: each picture shows its own number as eight bars, black for
//! 0 and white for 1, so that what decodes can be checked picture by picture.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use std::time::{Duration, Instant};

use sanctuary_video::{Film, FilmError, Limits, Picture, Player, PlayerState};

const WIDTH: u32 = 320;
const HEIGHT: u32 = 240;
const RATE: u32 = 24;

/// The picture numbered `n`: eight bars, the most significant bit on the left.
fn numbered(n: u32, width: u32, height: u32) -> Vec<u8> {
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for _ in 0..height {
        for x in 0..width {
            let bit = 7 - (x * 8 / width);
            let on = (n >> bit) & 1 == 1;
            rgb.extend_from_slice(if on { &[255, 255, 255] } else { &[0, 0, 0] });
        }
    }
    rgb
}

/// The number a decoded picture shows.
fn number_of(picture: &Picture) -> u32 {
    let row = picture.height / 2;
    (0..8).fold(0, |number, bar| {
        let x = (bar * 2 + 1) * picture.width / 16;
        let at = ((row * picture.width + x) * 4) as usize;
        (number << 1) | u32::from(picture.rgba[at] > 128)
    })
}

/// Encodes `frames` numbered pictures with ffmpeg into `path`, with `codec` options.
fn make_film(path: &Path, frames: u32, width: u32, height: u32, codec: &[&str]) {
    let mut child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24"])
        .args(["-s", &format!("{width}x{height}"), "-r", &RATE.to_string(), "-i", "-"])
        .args(codec)
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("ffmpeg runs (`cargo xtask setup` installs it)");
    let mut input = child.stdin.take().expect("stdin");
    for n in 0..frames {
        input.write_all(&numbered(n, width, height)).expect("ffmpeg reads its pictures");
    }
    drop(input);
    assert!(child.wait().expect("ffmpeg ends").success(), "ffmpeg could not make {}", path.display());
}

const H264: &[&str] = &["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-crf", "16"];

fn every_picture(film: &mut Film) -> Vec<Picture> {
    let mut pictures = Vec::new();
    while let Some(picture) = film.next_picture().expect("decodes") {
        pictures.push(picture);
    }
    pictures
}

#[test]
fn h264_films_in_mp4_and_matroska_decode_every_picture_in_order_at_its_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    for name in ["numbered.mp4", "numbered.mkv"] {
        let path = dir.path().join(name);
        // x264 puts B-frames in by default: pictures come out of the decoder reordered.
        make_film(&path, 60, WIDTH, HEIGHT, H264);
        let mut film = Film::from_bytes(std::fs::read(&path).expect("made"), Limits::default()).expect(name);
        assert_eq!((film.info().width, film.info().height), (WIDTH, HEIGHT), "{name}");
        let pictures = every_picture(&mut film);
        assert_eq!(pictures.len(), 60, "{name}: every picture");
        for (n, picture) in pictures.iter().enumerate() {
            assert_eq!(number_of(picture), n as u32, "{name}: picture {n} shows the wrong number");
            let expected = n as f64 / f64::from(RATE);
            assert!(
                (picture.time - expected).abs() < 0.002,
                "{name}: picture {n} at {} s, not {expected}",
                picture.time
            );
            assert_eq!(picture.rgba.len(), (WIDTH * HEIGHT * 4) as usize);
        }
        assert!(matches!(film.next_picture(), Ok(None)), "{name}: the end stays the end");
    }
}

#[test]
fn films_sanctuary_cannot_play_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Larger than the limits: refused before a picture is decoded.
    let big = dir.path().join("big.mp4");
    make_film(&big, 2, 640, 480, H264);
    let small_limits = Limits { max_width: 320, max_height: 240, ..Limits::default() };
    match Film::from_bytes(std::fs::read(&big).expect("made"), small_limits) {
        Err(FilmError::TooLarge { width: 640, height: 480, .. }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // Another codec: named, with how to convert it.
    let av1 = dir.path().join("av1.mkv");
    make_film(&av1, 2, 64, 64, &["-c:v", "libaom-av1", "-cpu-used", "8", "-crf", "50"]);
    let error = Film::from_bytes(std::fs::read(&av1).expect("made"), Limits::default()).expect_err("not H.264 yet");
    assert!(error.to_string().contains("AV1") && error.to_string().contains("ffmpeg"), "{error}");
    // Not a film at all.
    let error = Film::from_bytes(b"just some text, not a film".to_vec(), Limits::default()).expect_err("refused");
    assert!(matches!(error, FilmError::NotAFilm(_)), "{error:?}");
    assert!(Film::from_bytes(Vec::new(), Limits::default()).is_err(), "an empty file");
}

#[test]
fn a_film_on_the_disk_plays_from_it_and_seeks_back_after_its_end() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("numbered.mp4");
    make_film(&path, 48, WIDTH, HEIGHT, H264);
    let mut film = Film::from_file(&path, Limits::default()).expect("opens");
    assert_eq!(every_picture(&mut film).len(), 48);
    // Symphonia's MP4 reader cannot seek back from its end: the file is opened again.
    film.seek(1.0).expect("seeks back");
    assert_eq!(film.next_picture().expect("decodes").map(|picture| number_of(&picture)), Some(24));
    let missing = Film::from_file(&dir.path().join("missing.mp4"), Limits::default()).expect_err("no such file");
    assert!(matches!(missing, FilmError::Unreadable(_)), "{missing:?}");
}

#[test]
fn a_film_cut_short_plays_up_to_the_cut() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("numbered.mkv");
    make_film(&path, 48, WIDTH, HEIGHT, H264);
    let whole = std::fs::read(&path).expect("made");
    // As a film arrives: read from its start, its length unknown.
    let arrived = std::io::Cursor::new(whole[..whole.len() * 2 / 3].to_vec());
    let mut film = Film::from_stream(arrived, Limits::default()).expect("its start reads");
    let mut shown = 0;
    loop {
        match film.next_picture() {
            Ok(Some(picture)) => {
                assert_eq!(number_of(&picture), shown, "in order up to the cut");
                shown += 1;
            }
            Ok(None) | Err(FilmError::Broken(_)) => break,
            Err(other) => panic!("a cut film is cut, not {other:?}"),
        }
    }
    assert!((10..48).contains(&shown), "played {shown} of 48 pictures before the cut");
}

/// A ten-second film of 160×120 numbered pictures with a key picture every two seconds.
fn ten_seconds(dir: &Path, name: &str) -> Vec<u8> {
    let path = dir.join(name);
    let keyed: Vec<&str> =
        H264.iter().copied().chain(["-g", "48", "-keyint_min", "48", "-sc_threshold", "0"]).collect();
    make_film(&path, 240, 160, 120, &keyed);
    std::fs::read(&path).expect("made")
}

#[test]
fn a_seek_lands_on_the_picture_shown_then_in_both_containers() {
    let dir = tempfile::tempdir().expect("temp dir");
    for name in ["ten.mp4", "ten.mkv"] {
        let mut film = Film::from_bytes(ten_seconds(dir.path(), name), Limits::default()).expect(name);
        // Forward past several key pictures, back, between two key pictures, to the start, to
        // the last picture, and past the end.
        for to in [7.3, 2.5, 4.99, 0.0, 9.96, 3.0] {
            film.seek(to).unwrap_or_else(|error| panic!("{name}: a seek to {to} s: {error}"));
            let picture = film.next_picture().expect("decodes").expect("a picture there");
            // The picture due then: the last one whose time has come.
            let expected = (to * f64::from(RATE) + 1e-6).floor() as u32;
            assert_eq!(number_of(&picture), expected, "{name}: after a seek to {to} s");
            let due = f64::from(expected) / f64::from(RATE);
            assert!((picture.time - due).abs() < 0.002, "{name}: picture {expected} at {} s, not {due}", picture.time);
            let following = film.next_picture().expect("decodes");
            if expected < 239 {
                assert_eq!(
                    following.map(|picture| number_of(&picture)),
                    Some(expected + 1),
                    "{name}: and on from there"
                );
            }
        }
        // Past the end, the last picture is the one due; then the end.
        film.seek(60.0).expect("a seek past the end");
        let last = film.next_picture().expect("decodes").map(|picture| number_of(&picture));
        assert_eq!(last, Some(239), "{name}");
        assert!(matches!(film.next_picture(), Ok(None)), "{name}: then the end");
    }
}

/// Asks `player` for the picture at `time` until it is there (the thread decodes meanwhile).
fn shown_at(player: &mut Player, time: f64) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(picture) = player.picture_at(time)
            && (picture.time - time).abs() <= 0.5 / f64::from(RATE) + 0.001
        {
            return number_of(picture);
        }
        if let PlayerState::Failed(error) = player.state() {
            panic!("the player failed: {error}");
        }
        assert!(Instant::now() < deadline, "no picture for {time} s in 30 s ({:?})", player.state());
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_player_shows_the_picture_due_and_goes_where_it_is_sent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let film = Film::from_bytes(ten_seconds(dir.path(), "ten.mkv"), Limits::default()).expect("opens");
    let mut player = Player::new(film);
    // Asked halfway through each picture's time (Matroska keeps times to the millisecond).
    let middle = |n: u32| (f64::from(n) + 0.5) / f64::from(RATE);
    assert_eq!(shown_at(&mut player, middle(0)), 0);
    // The clock moves on; each time asked shows the picture due then.
    for n in [1u32, 2, 5, 24, 30] {
        assert_eq!(shown_at(&mut player, middle(n)), n);
    }
    // Paused: the same time, the same picture.
    assert_eq!(player.picture_at(middle(30)).map(number_of), Some(30));
    // Sent ahead and back.
    player.seek(middle(144));
    assert_eq!(shown_at(&mut player, middle(144)), 144);
    player.seek(middle(36));
    assert_eq!(shown_at(&mut player, middle(36)), 36);
    assert_eq!(shown_at(&mut player, middle(48)), 48, "and on from there");
    // To the end.
    player.seek(middle(237));
    shown_at(&mut player, middle(237));
    let deadline = Instant::now() + Duration::from_secs(30);
    while *player.state() != PlayerState::Ended {
        player.picture_at(20.0);
        assert!(Instant::now() < deadline, "never ended: {:?}", player.state());
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(player.picture_at(20.0).map(number_of), Some(239), "the last picture stays");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// A small film changed anywhere, as a hostile file would be, plays or is refused; it never
    /// panics, and nothing it gives is larger than the limits.
    #[test]
    fn a_damaged_film_is_refused_or_played_never_a_panic(
        changes in proptest::collection::vec((0usize..1 << 20, proptest::prelude::any::<u8>()), 1..12),
        matroska in proptest::prelude::any::<bool>(),
        seek_to in proptest::option::of(0.0f64..1.5),
    ) {
        let film = small_film(matroska);
        let mut damaged = film.to_vec();
        for (at, byte) in changes {
            let at = at % damaged.len();
            damaged[at] = byte;
        }
        let limits = Limits::default();
        if let Ok(mut film) = Film::from_bytes(damaged, limits) {
            if let Some(to) = seek_to {
                let _ = film.seek(to);
            }
            for _ in 0..64 {
                match film.next_picture() {
                    Ok(Some(picture)) => {
                        proptest::prop_assert!(picture.width <= limits.max_width && picture.height <= limits.max_height);
                        proptest::prop_assert_eq!(picture.rgba.len(), (picture.width * picture.height * 4) as usize);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}

/// A 64×48 film of twelve pictures, made once per test run.
fn small_film(matroska: bool) -> &'static [u8] {
    static FILMS: std::sync::OnceLock<(Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
    let films = FILMS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let make = |name: &str| {
            let path = dir.path().join(name);
            make_film(&path, 12, 64, 48, H264);
            std::fs::read(&path).expect("made")
        };
        (make("small.mp4"), make("small.mkv"))
    });
    if matroska { &films.1 } else { &films.0 }
}

/// Zero crossings a second of one channel of `sounds`: twice the frequency of a pure tone.
fn tone_frequency(sounds: &[sanctuary_video::Sound]) -> f64 {
    let channels = usize::from(sounds[0].channels);
    let first: Vec<f32> = sounds.iter().flat_map(|sound| sound.samples.iter().step_by(channels).copied()).collect();
    let crossings = first.windows(2).filter(|pair| (pair[0] < 0.0) != (pair[1] < 0.0)).count();
    crossings as f64 / 2.0 / (first.len() as f64 / f64::from(sounds[0].rate))
}

#[test]
fn a_films_sound_decodes_alongside_its_pictures_in_aac_and_opus() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, audio, rate) in [("tone.mp4", "aac", 44_100u32), ("tone.mkv", "libopus", 48_000)] {
        let path = dir.path().join(name);
        let options: Vec<&str> = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=2"]
            .into_iter()
            .chain(H264.iter().copied())
            .chain(["-c:a", audio, "-b:a", "96k", "-shortest"])
            .collect();
        make_film(&path, 48, 160, 120, &options);
        let mut film = Film::from_bytes(std::fs::read(&path).expect("made"), Limits::default()).expect(name);
        assert!(film.info().audio.is_some(), "{name}: its sound is decoded ({:?})", film.info().silent_because);
        let mut sounds = Vec::new();
        let mut pictures = 0;
        while film.next_picture().expect("decodes").is_some() {
            pictures += 1;
            while let Some(sound) = film.take_sound() {
                sounds.push(sound);
            }
        }
        while let Some(sound) = film.take_sound() {
            sounds.push(sound);
        }
        assert_eq!(pictures, 48, "{name}");
        assert!(!sounds.is_empty(), "{name}: some sound");
        assert_eq!(sounds[0].rate, rate, "{name}");
        let seconds: f64 = sounds
            .iter()
            .map(|sound| sound.samples.len() as f64 / f64::from(sound.channels) / f64::from(sound.rate))
            .sum();
        assert!((1.8..=2.2).contains(&seconds), "{name}: {seconds} s of sound for 2 s");
        assert!(sounds.windows(2).all(|pair| pair[0].time <= pair[1].time), "{name}: in order");
        let frequency = tone_frequency(&sounds);
        assert!((frequency - 440.0).abs() < 10.0, "{name}: a 440 Hz tone heard as {frequency:.0} Hz");
        assert!(sounds.iter().all(|sound| sound.samples.iter().all(|sample| sample.abs() <= 1.0)));
    }
}

/// Two seconds of numbered pictures (160×120) with a 440 Hz tone in Opus, in Matroska.
fn two_seconds_of_tone() -> Film {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tone.mkv");
    let options: Vec<&str> = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2"]
        .into_iter()
        .chain(H264.iter().copied())
        .chain(["-c:a", "libopus", "-shortest"])
        .collect();
    make_film(&path, 48, 160, 120, &options);
    Film::from_bytes(std::fs::read(&path).expect("made"), Limits::default()).expect("opens")
}

/// One call takes every message waiting: the sound decoded ahead does not hold back the
/// pictures behind it. (Each call used to take one block of sound and stop, so a client drawing
/// a few frames a second never showed a picture of a film with sound.)
#[test]
fn one_call_reaches_the_picture_due_past_the_sound_waiting() {
    let film = two_seconds_of_tone();
    let mut player = Player::new(film);
    // The decoder fills what it may hold ahead, sound and pictures interleaved.
    std::thread::sleep(Duration::from_millis(1500));
    let time = 2.5 / f64::from(RATE);
    assert_eq!(player.picture_at(time).map(number_of), Some(2), "one call, after {:?}", player.state());
}

#[test]
fn a_player_hands_over_the_sound_too() {
    let film = two_seconds_of_tone();
    let mut player = Player::new(film);
    let mut heard = 0.0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while *player.state() != PlayerState::Ended {
        player.picture_at(10.0);
        while let Some(sound) = player.take_sound() {
            heard += sound.samples.len() as f64 / f64::from(sound.channels) / f64::from(sound.rate);
        }
        assert!(Instant::now() < deadline, "never ended: {:?}", player.state());
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(heard > 1.5, "heard {heard} s of 2");
}
