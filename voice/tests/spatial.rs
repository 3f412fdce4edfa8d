//! Spatial playback through kira, rendered without a sound card: a speaker to the listener's
//! left is heard louder on the left, one to the right on the right, a near one louder than a
//! far one, and what is heard is what was said.

use std::time::{Duration, Instant};

use sanctuary_voice::codec::VoiceEncoder;
use sanctuary_voice::lab::{align, speak};
use sanctuary_voice::output::CaptureBackend;
use sanctuary_voice::packet::VoicePacket;
use sanctuary_voice::playback::VoiceMixer;
use sanctuary_voice::processing::VoiceProcessor;
use sanctuary_voice::stream::frames;
use sanctuary_voice::{FRAME, FRAME_SAMPLES, wav};

/// Plays `speech` from a speaker at `position` to a listener at the origin facing −Z (right is
/// +X); returns what the listener heard.
fn heard_from(speech: &[f32], position: [f32; 3]) -> Vec<[f32; 2]> {
    heard_at_volume(speech, position, None)
}

/// As [`heard_from`], with the speaker's volume set to `volume` first, and a microphone's
/// processor draining the echo tap as a client's does.
fn heard_at_volume(speech: &[f32], position: [f32; 3], volume: Option<f32>) -> Vec<[f32; 2]> {
    let mut mixer = VoiceMixer::<CaptureBackend>::new(()).expect("playback starts");
    mixer.set_listener([0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]);
    let mut encoder = VoiceEncoder::new().expect("encoder");
    let speaker = [7u8; 32];
    if let Some(volume) = volume {
        mixer.set_volume(speaker, volume);
    }
    let mut processor = VoiceProcessor::new(mixer.take_echo_reference());
    assert!(mixer.take_echo_reference().is_none(), "one tap, taken once");
    let start = Instant::now();
    let mut out = Vec::new();
    let mut sequence = 0;
    for (index, frame) in frames(speech).iter().enumerate() {
        if let Some(payload) = encoder.encode(frame).expect("encodes") {
            let packet = VoicePacket { sequence, timestamp: (index * FRAME_SAMPLES) as u32, payload };
            sequence += 1;
            mixer.heard(speaker, position, &packet.to_bytes(), start + FRAME * index as u32).expect("plays");
        }
        out.extend(mixer.backend_mut().render(FRAME_SAMPLES));
        // The microphone's processor drains the tap as it cleans each frame.
        processor.process(&mut [0.0; FRAME_SAMPLES]);
    }
    out.extend(mixer.backend_mut().render(24_000));
    assert!(mixer.take_level(&speaker) > 0.01, "the speaker's level is shared back");
    assert_eq!(mixer.take_level(&speaker), 0.0, "and taken once");
    out
}

fn rms(samples: impl Iterator<Item = f32>) -> f64 {
    let (sum, count) =
        samples.fold((0.0f64, 0usize), |(sum, count), sample| (sum + f64::from(sample).powi(2), count + 1));
    (sum / count.max(1) as f64).sqrt()
}

fn decibels(a: f64, b: f64) -> f64 {
    20.0 * (a / b.max(1e-12)).log10()
}

#[test]
fn voices_come_from_where_people_stand() {
    let dir = tempfile::tempdir().expect("temp dir");
    let speech =
        wav::read_mono(&speak(dir.path(), "I am over here, on this side of you.").expect("speech")).expect("reads");

    let left = heard_from(&speech, [-3.0, 0.0, 0.0]);
    let right = heard_from(&speech, [3.0, 0.0, 0.0]);
    let far = heard_from(&speech, [-15.0, 0.0, 0.0]);
    let (left_l, left_r) = (rms(left.iter().map(|s| s[0])), rms(left.iter().map(|s| s[1])));
    let (right_l, right_r) = (rms(right.iter().map(|s| s[0])), rms(right.iter().map(|s| s[1])));
    let far_l = rms(far.iter().map(|s| s[0]));
    println!(
        "speaker 3 m left: left {:.1} dB over right; 3 m right: right {:.1} dB over left; 15 m left is {:.1} dB below 3 m left",
        decibels(left_l, left_r),
        decibels(right_r, right_l),
        decibels(left_l, far_l)
    );
    assert!(decibels(left_l, left_r) >= 3.0, "a speaker on the left is not louder on the left");
    assert!(decibels(right_r, right_l) >= 3.0, "a speaker on the right is not louder on the right");
    assert!(decibels(left_l, far_l) >= 6.0, "a far speaker is not quieter than a near one");

    // What the listener heard is what was said.
    let mono: Vec<f32> = left.iter().map(|sample| sample[0] + sample[1]).collect();
    let (lag, correlation) = align(&speech, &mono);
    println!("heard {:.1} ms after it was said, waveform correlation {correlation:.3}", lag as f64 / 48.0);
    assert!(correlation >= 0.7, "the voice played correlates only {correlation:.3} with the speech");
    assert!(Duration::from_secs_f64(lag as f64 / 48_000.0) <= Duration::from_millis(150));
}

#[test]
fn a_wav_file_stands_in_for_the_speakers() {
    use sanctuary_voice::output::{WavFileBackend, WavFileSettings};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("heard.wav");
    let tone: Vec<f32> = (0..48_000 / 2).map(|index| 0.4 * (index as f32 * 0.0576).sin()).collect();
    {
        let mut mixer =
            VoiceMixer::<WavFileBackend>::new(WavFileSettings { path: path.clone() }).expect("the file opens");
        let mut encoder = VoiceEncoder::new().expect("encoder");
        let start = Instant::now();
        for (index, frame) in frames(&tone).iter().enumerate() {
            std::thread::sleep((start + FRAME * index as u32).saturating_duration_since(Instant::now()));
            if let Some(payload) = encoder.encode(frame).expect("encodes") {
                let packet = VoicePacket { sequence: index as u32, timestamp: (index * FRAME_SAMPLES) as u32, payload };
                mixer.heard([1; 32], [2.0, 0.0, 0.0], &packet.to_bytes(), Instant::now()).expect("plays");
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let written = wav::read_mono(&path).expect("a WAV file was written");
    assert!(written.len() >= 48_000 / 2, "{} samples written", written.len());
    let loud = written.iter().filter(|sample| sample.abs() > 0.05).count();
    assert!(loud > 48_000 / 10, "the tone is not in the file ({loud} loud samples)");
    let bad = VoiceMixer::<WavFileBackend>::new(WavFileSettings { path: dir.path().join("missing/dir/x.wav") });
    assert!(bad.is_err(), "an output file that cannot be made is an error");
}

#[test]
fn a_person_can_be_turned_down_and_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let speech = wav::read_mono(&speak(dir.path(), "Turn me down if I am too loud.").expect("speech")).expect("reads");
    let level = |volume| {
        let out = heard_at_volume(&speech, [0.0, 0.0, -2.0], volume);
        rms(out.iter().map(|sample| sample[0] + sample[1]))
    };
    let (normal, half, louder, silent) = (level(None), level(Some(0.5)), level(Some(2.0)), level(Some(0.0)));
    println!(
        "half volume {:.1} dB, double {:.1} dB, off {:.1} dB",
        decibels(half, normal),
        decibels(louder, normal),
        decibels(silent, normal)
    );
    assert!((decibels(half, normal) + 6.0).abs() < 1.5, "half volume is {:.1} dB", decibels(half, normal));
    assert!(decibels(louder, normal) > 3.0, "double volume is {:.1} dB", decibels(louder, normal));
    assert!(decibels(silent, normal) < -40.0, "volume 0 still plays at {:.1} dB", decibels(silent, normal));
}

#[test]
fn sounds_play_once_and_ambience_loops_until_faded_out() {
    use sanctuary_voice::clip::Clip;
    let wav_bytes = |seconds: f32, frequency: f32| {
        let mut bytes = std::io::Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 24_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::new(&mut bytes, spec).expect("writer");
        for index in 0..(seconds * 24_000.0) as usize {
            let sample = (index as f32 / 24_000.0 * frequency * std::f32::consts::TAU).sin() * 0.5;
            writer.write_sample((sample * 32_767.0) as i16).expect("writes");
        }
        writer.finalize().expect("finishes");
        bytes.into_inner()
    };
    let level = |frames: &[[f32; 2]]| rms(frames.iter().map(|sample| sample[0]));
    let cue = Clip::from_wav("cue", &wav_bytes(0.2, 440.0)).expect("decodes");
    let bed = Clip::from_wav("bed", &wav_bytes(1.0, 220.0)).expect("decodes").looped(Duration::from_millis(100));

    let mut mixer = VoiceMixer::<CaptureBackend>::new(()).expect("playback starts");
    mixer.play_clip(&cue, 1.0).expect("plays");
    let first = mixer.backend_mut().render(4_800);
    let after = mixer.backend_mut().render(48_000);
    assert!(level(&first) > 0.1, "the cue is heard ({:.3})", level(&first));
    assert!(level(&after[24_000..]) < 1e-4, "and only once ({:.5})", level(&after[24_000..]));

    mixer.set_ambience(Some(&bed), 1.0);
    mixer.backend_mut().render(48_000 * 2); // the fade-in
    let later = mixer.backend_mut().render(48_000 * 3);
    assert!(level(&later[48_000 * 2..]) > 0.1, "the ambience still plays after three times its length");
    mixer.set_ambience(None, 1.0);
    mixer.backend_mut().render(48_000 * 2); // the fade-out
    let silence = mixer.backend_mut().render(48_000);
    assert!(level(&silence) < 1e-4, "the ambience faded out ({:.5})", level(&silence));
}

/// A film's sound from a screen 30 m away ahead and to the left (a cinema's back row): heard
/// at full volume, louder on the left, and (within the ring's delay) as long as it was fed; a
/// new film's track ends the old one's.
#[test]
fn a_films_sound_is_heard_from_the_screen() {
    let mut mixer = VoiceMixer::<CaptureBackend>::new(()).expect("playback starts");
    mixer.set_listener([0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]);
    let mut feed = mixer.play_film([-15.0, 3.2, -26.0]).expect("a film track");
    // Half a second of a 440 Hz tone at 48 kHz, stereo, fed in 20 ms blocks as a client does.
    let tone: Vec<f32> = (0..24_000)
        .flat_map(|n| {
            let sample = 0.25 * (std::f32::consts::TAU * 440.0 * n as f32 / 48_000.0).sin();
            [sample, sample]
        })
        .collect();
    let mut out = Vec::new();
    for block in tone.chunks(960 * 2) {
        feed.push(block, 48_000, 2);
        out.extend(mixer.backend_mut().render(960));
    }
    out.extend(mixer.backend_mut().render(48_000));
    let left = rms(out.iter().map(|frame| frame[0]));
    let right = rms(out.iter().map(|frame| frame[1]));
    assert!(left > 0.05, "the film is heard: left {left}, right {right}");
    assert!(left > right * 1.1, "from the left: left {left}, right {right}");
    let heard = out.iter().filter(|frame| frame[0].abs() > 0.01).count();
    assert!((20_000..30_000).contains(&heard), "{heard} samples heard of 24,000 fed");
    assert_eq!(feed.dropped, 0);
    // Another film: the first one's feed no longer reaches anything heard.
    let mut second = mixer.play_film([-6.0, 0.0, -8.0]).expect("a film track");
    second.push(&[0.0; 2], 48_000, 2);
    feed.push(&tone, 48_000, 2);
    let after = mixer.backend_mut().render(24_000);
    assert!(rms(after.iter().map(|frame| frame[0])) < 0.001, "the old film's track is gone");
}
