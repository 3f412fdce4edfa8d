//! Films as people have them, made by an independent tool (Debian's `ffmpeg`, with x264 and
//! libaom) from pictures drawn here: each picture shows its own number as eight bars, black for
//! 0 and white for 1, so that what decodes can be checked picture by picture.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use sanctuary_video::{Film, FilmError, Limits, Picture};

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
        assert_eq!(film.next_picture(), Ok(None), "{name}: the end stays the end");
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

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// A small film changed anywhere, as a hostile file would be, plays or is refused; it never
    /// panics, and nothing it gives is larger than the limits.
    #[test]
    fn a_damaged_film_is_refused_or_played_never_a_panic(
        changes in proptest::collection::vec((0usize..1 << 20, proptest::prelude::any::<u8>()), 1..12),
        matroska in proptest::prelude::any::<bool>(),
    ) {
        let film = small_film(matroska);
        let mut damaged = film.to_vec();
        for (at, byte) in changes {
            let at = at % damaged.len();
            damaged[at] = byte;
        }
        let limits = Limits::default();
        if let Ok(mut film) = Film::from_bytes(damaged, limits) {
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
