//! Speech through the whole receive path, with no sound card and no network: espeak-ng speaks a
//! sentence, the sender encodes it frame by frame, a simulated link delays, jitters and drops
//! the datagrams, and a listener's [`Speaker`] plays them out every 20 ms. What comes out is
//! compared with what went in.

use std::time::Duration;

use sanctuary_voice::codec::VoiceEncoder;
use sanctuary_voice::lab::{Link, align, correlation, envelope, longest_gap, send, speak};
use sanctuary_voice::packet::VoicePacket;
use sanctuary_voice::stream::{FrameKind, Speaker, frames};
use sanctuary_voice::{FRAME, FRAME_SAMPLES, SAMPLE_RATE, wav};

#[test]
fn speech_arrives_whole_through_jitter_and_loss() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = speak(
        dir.path(),
        "Welcome to the lobby of Sanctuary. The city is through the portal on your left, and the rooms are upstairs.",
    )
    .expect("speech for the test");
    let speech = wav::read_mono(&path).expect("reads the speech");
    assert!(speech.len() > 3 * SAMPLE_RATE as usize, "espeak-ng spoke {} samples", speech.len());

    let clean = Link { base: Duration::from_millis(30), jitter: Duration::ZERO, loss: 0.0 };
    let rough = Link { base: Duration::from_millis(30), jitter: Duration::from_millis(40), loss: 0.10 };
    // Thresholds: measured 0.95/0.96 clean and 0.60/0.89 rough (one alignment for the whole
    // sentence, while the rough link's buffer shifts its delay a few times); a pipeline that
    // drops, misorders or garbles frames falls far below.
    for (name, link, least_waveform, least_envelope) in
        [("clean", clean, 0.85, 0.9), ("10 % loss, 40 ms jitter", rough, 0.45, 0.8)]
    {
        let heard = send(&speech, &link, 0x5eed_0001).expect("the codec runs");
        let (lag, waveform) = align(&speech, &heard.samples);
        let (envelope_sent, envelope_heard) = (envelope(&speech), envelope(&heard.samples));
        let shape = correlation(&envelope_sent, &envelope_heard, lag / 480);
        let gap = longest_gap(&speech, &heard, lag);
        let seconds = speech.len() as f64 / f64::from(SAMPLE_RATE);
        let kbit = heard.sent_bytes as f64 * 8.0 / seconds / 1000.0;
        let count = |wanted: FrameKind| heard.kinds.iter().filter(|kind| **kind == wanted).count();
        println!(
            "{name}: mouth to ear {:.1} ms, waveform correlation {waveform:.3}, envelope {shape:.3}, longest gap in speech {} ms, \
             {} packets for {seconds:.1} s ({kbit:.1} kbit/s with headers); frames: {} voice, {} recovered, {} concealed",
            lag as f64 * 1000.0 / f64::from(SAMPLE_RATE),
            gap * 20,
            heard.sent_packets,
            count(FrameKind::Voice),
            count(FrameKind::Recovered),
            count(FrameKind::Concealed),
        );
        assert!(waveform >= least_waveform, "{name}: the waveforms correlate only {waveform:.3}");
        assert!(shape >= least_envelope, "{name}: the loudness envelopes correlate only {shape:.3}");
        assert!(gap <= 3, "{name}: a gap of {} ms in the speech", gap * 20);
        assert!(kbit <= 32.0, "{name}: {kbit:.1} kbit/s");
        // The measure bites: the same speech a quarter of a second off does not match.
        let off = correlation(&speech, &heard.samples, lag + SAMPLE_RATE as usize / 4);
        assert!(off < 0.3, "{name}: misaligned speech still correlates {off:.3}");
    }
}

#[test]
fn garbage_datagrams_are_refused_and_the_voice_goes_on() {
    let mut speaker = Speaker::new().expect("speaker");
    let mut encoder = VoiceEncoder::new().expect("encoder");
    let tone: Vec<f32> = (0..SAMPLE_RATE as usize)
        .map(|index| 0.3 * (index as f32 * 440.0 * std::f32::consts::TAU / SAMPLE_RATE as f32).sin())
        .collect();
    let mut voiced = 0;
    for (index, frame) in frames(&tone).iter().enumerate() {
        let now = FRAME * index as u32;
        assert!(speaker.push_datagram(&[1, 2, 3], now).is_err());
        // Well-formed, but its payload is not Opus.
        let bogus = VoicePacket { sequence: 0, timestamp: 7, payload: vec![0xff; 200] };
        let _ = speaker.push_datagram(&bogus.to_bytes(), now);
        if let Some(payload) = encoder.encode(frame).expect("encodes") {
            let packet = VoicePacket { sequence: index as u32, timestamp: (index * FRAME_SAMPLES) as u32, payload };
            speaker.push_datagram(&packet.to_bytes(), now).expect("takes it");
        }
        let mut out = [0.0; FRAME_SAMPLES];
        if speaker.next_frame(now, &mut out) == FrameKind::Voice {
            voiced += 1;
        }
        assert!(out.iter().all(|sample| sample.is_finite() && sample.abs() <= 1.5));
    }
    assert!(speaker.refused() >= 50);
    assert!(voiced >= 30, "only {voiced} frames of voice among the garbage");
}
