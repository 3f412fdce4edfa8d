//! What a microphone's sound goes through before it is encoded: WebRTC's audio processing in
//! pure Rust ([`sonora`]): a high-pass filter, echo cancellation (AEC3) against what our own
//! speakers play, noise suppression and automatic gain control (AGC2).
//!
//! The echo canceller needs the far end: the sound going out of the speakers. [`echo_tap`]
//! makes a kira effect for the main track that copies the final mix, mono and at 48 kHz, into a
//! lock-free ring; the [`VoiceProcessor`] on the capture thread drains that ring before each
//! frame it cleans. Without a tap (no output, or output into a file) echo cancellation has
//! nothing to cancel and is harmless.
//!
//! sonora is a young port; should it ever panic, the processor turns itself off and the raw
//! microphone goes on (with the reason kept for the HUD).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kira::effect::{Effect, EffectBuilder};
use kira::info::Info;
use sonora::config::{AdaptiveDigital, EchoCanceller, GainController2, HighPassFilter, NoiseSuppression};
use sonora::{AudioProcessing, Config, StreamConfig};

use crate::{FRAME_SAMPLES, Frame, SAMPLE_RATE};

/// sonora works in 10 ms chunks.
const CHUNK: usize = FRAME_SAMPLES / 2;
/// The far end kept waiting for the capture thread: 200 ms. A fuller ring drops what the
/// speakers play (the canceller then misses some echo; nothing blocks the audio thread).
pub const REFERENCE_RING: usize = 9_600;

/// The copy of what the speakers play, read on the capture thread.
pub struct EchoReference {
    samples: rtrb::Consumer<f32>,
    /// Samples the audio thread could not hand over (the ring was full).
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for EchoReference {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("EchoReference").field("waiting", &self.samples.slots()).finish_non_exhaustive()
    }
}

impl EchoReference {
    /// Samples of the far end dropped because the capture thread did not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A kira effect for the main track and the [`EchoReference`] it feeds.
pub fn echo_tap() -> (EchoTapBuilder, EchoReference) {
    let (producer, consumer) = rtrb::RingBuffer::new(REFERENCE_RING);
    let dropped = Arc::new(AtomicU64::new(0));
    (EchoTapBuilder { producer, dropped: dropped.clone() }, EchoReference { samples: consumer, dropped })
}

/// Builds the [`EchoTap`] effect (kira's builder pattern).
pub struct EchoTapBuilder {
    producer: rtrb::Producer<f32>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for EchoTapBuilder {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("EchoTapBuilder").finish_non_exhaustive()
    }
}

impl EffectBuilder for EchoTapBuilder {
    type Handle = ();

    fn build(self) -> (Box<dyn Effect>, Self::Handle) {
        let tap = EchoTap { producer: self.producer, dropped: self.dropped, phase: 0.0, previous: 0.0 };
        (Box::new(tap), ())
    }
}

/// Copies the mix (left and right averaged) at 48 kHz into the ring; leaves the sound as it
/// is.
struct EchoTap {
    producer: rtrb::Producer<f32>,
    dropped: Arc<AtomicU64>,
    /// Where the next 48 kHz sample falls between the previous output sample (0) and this one.
    phase: f64,
    previous: f32,
}

impl Effect for EchoTap {
    fn process(&mut self, input: &mut [kira::Frame], dt: f64, _info: &Info) {
        // 48 kHz samples per output sample.
        let step = f64::from(SAMPLE_RATE) * dt;
        let mut dropped = 0;
        for frame in input.iter() {
            let current = (frame.left + frame.right) * 0.5;
            self.phase += step;
            while self.phase >= 1.0 {
                self.phase -= 1.0;
                // The 48 kHz sample lies `phase / step` before `current`.
                let back = (self.phase / step) as f32;
                let sample = current + (self.previous - current) * back;
                if self.producer.push(sample).is_err() {
                    dropped += 1;
                }
            }
            self.previous = current;
        }
        if dropped > 0 {
            self.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
    }
}

/// Echo cancellation, noise suppression and gain control for one microphone.
pub struct VoiceProcessor {
    apm: Option<Box<AudioProcessing>>,
    reference: Option<EchoReference>,
    render: [f32; CHUNK],
    render_filled: usize,
    scratch: [f32; CHUNK],
    /// Why processing stopped, if it did.
    failure: Option<String>,
}

impl std::fmt::Debug for VoiceProcessor {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("VoiceProcessor")
            .field("running", &self.apm.is_some())
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

/// The settings: WebRTC's defaults for a voice call, with moderate (12 dB) noise suppression
/// and the adaptive digital gain (the microphone's own volume is not touched).
fn config() -> Config {
    Config {
        high_pass_filter: Some(HighPassFilter::default()),
        echo_canceller: Some(EchoCanceller::default()),
        noise_suppression: Some(NoiseSuppression::default()),
        gain_controller2: Some(GainController2 {
            adaptive_digital: Some(AdaptiveDigital::default()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl VoiceProcessor {
    /// A processor for a 48 kHz mono microphone, cancelling the echo of what `reference`
    /// carries (when there is one).
    pub fn new(reference: Option<EchoReference>) -> Self {
        let stream = StreamConfig::new(SAMPLE_RATE, 1);
        let built = catch_unwind(|| {
            Box::new(AudioProcessing::builder().config(config()).capture_config(stream).render_config(stream).build())
        });
        let (apm, failure) = match built {
            Ok(apm) => (Some(apm), None),
            Err(_) => (None, Some("audio processing could not start".to_owned())),
        };
        Self { apm, reference, render: [0.0; CHUNK], render_filled: 0, scratch: [0.0; CHUNK], failure }
    }

    /// Whether frames are being processed (false after a failure).
    pub fn running(&self) -> bool {
        self.apm.is_some()
    }

    /// Why processing stopped, if it did.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Gives the canceller a stretch of what the speakers played (48 kHz mono), for a
    /// processor fed by hand (tests); [`VoiceProcessor::process`] drains the tap by itself.
    pub fn far_end(&mut self, samples: &[f32]) {
        for &sample in samples {
            self.render_sample(sample);
        }
    }

    fn render_sample(&mut self, sample: f32) {
        self.render[self.render_filled] = if sample.is_finite() { sample.clamp(-1.0, 1.0) } else { 0.0 };
        self.render_filled += 1;
        if self.render_filled < CHUNK {
            return;
        }
        self.render_filled = 0;
        let Some(apm) = &mut self.apm else { return };
        let (render, scratch) = (&self.render, &mut self.scratch);
        let result = catch_unwind(AssertUnwindSafe(|| apm.process_render_f32(&[render], &mut [scratch])));
        self.check(result.map(|inner| inner.map_err(|error| format!("{error:?}"))));
    }

    /// Cleans one frame of microphone in place: first the far end that arrived since, then
    /// the frame in two 10 ms halves.
    pub fn process(&mut self, frame: &mut Frame) {
        if let Some(mut reference) = self.reference.take() {
            while let Ok(sample) = reference.samples.pop() {
                self.render_sample(sample);
            }
            self.reference = Some(reference);
        }
        for half in frame.chunks_exact_mut(CHUNK) {
            let Some(apm) = &mut self.apm else { return };
            self.scratch.copy_from_slice(half);
            let (input, output) = (&self.scratch, &mut *half);
            let result = catch_unwind(AssertUnwindSafe(|| apm.process_capture_f32(&[input], &mut [output])));
            self.check(result.map(|inner| inner.map_err(|error| format!("{error:?}"))));
            if self.apm.is_none() {
                // A half processed by a failing canceller is not trusted: the raw one goes on.
                half.copy_from_slice(&self.scratch);
            }
        }
    }

    /// Turns processing off for good after a panic; a returned error only skips that chunk.
    fn check(&mut self, result: Result<Result<(), String>, Box<dyn std::any::Any + Send>>) {
        if result.is_err() {
            self.apm = None;
            self.failure = Some("audio processing failed; the microphone goes out unprocessed".to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab;

    fn speech(text: &str) -> Vec<f32> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = lab::speak(dir.path(), text).expect("espeak-ng and sox make speech");
        crate::wav::read_mono(&path).expect("reads the speech")
    }

    fn rms(samples: &[f32]) -> f32 {
        (samples.iter().map(|sample| sample * sample).sum::<f32>() / samples.len().max(1) as f32).sqrt()
    }

    fn run(processor: &mut VoiceProcessor, microphone: &[f32], far: Option<&[f32]>) -> Vec<f32> {
        let mut out = Vec::with_capacity(microphone.len());
        for (index, chunk) in microphone.chunks_exact(FRAME_SAMPLES).enumerate() {
            if let Some(far) = far {
                processor.far_end(&far[index * FRAME_SAMPLES..(index + 1) * FRAME_SAMPLES]);
            }
            let mut frame = [0.0; FRAME_SAMPLES];
            frame.copy_from_slice(chunk);
            processor.process(&mut frame);
            out.extend_from_slice(&frame);
        }
        out
    }

    /// Deterministic white noise at `level` RMS.
    fn noise(samples: usize, level: f32, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..samples)
            .map(|_| {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * level * 3f32.sqrt()
            })
            .collect()
    }

    #[test]
    fn the_echo_of_our_speakers_is_cancelled() {
        let far = speech("The speakers play what somebody else says, and the microphone hears it again.");
        let far: Vec<f32> = far.iter().chain(far.iter()).copied().collect();
        // The room: the microphone hears the speakers 30 ms later at half the level.
        let delay = 1_440;
        let mut microphone = vec![0.0; far.len()];
        for (index, slot) in microphone.iter_mut().enumerate().skip(delay) {
            *slot = far[index - delay] * 0.5;
        }
        let mut processor = VoiceProcessor::new(None);
        let out = run(&mut processor, &microphone, Some(&far));
        // Judged on the second time through, once the canceller has found the echo path.
        let half = out.len() / 2;
        let before = rms(&microphone[half..]);
        let after = rms(&out[half..]);
        let cancelled = 20.0 * (before / after.max(1e-9)).log10();
        println!("echo {cancelled:.1} dB quieter");
        assert!(processor.running(), "{:?}", processor.failure());
        assert!(cancelled >= 20.0, "the echo is only {cancelled:.1} dB quieter");
    }

    #[test]
    fn without_the_far_end_the_echo_stays() {
        // The same room with no tap: the test above fails if the reference is not used.
        let far = speech("Nobody told the canceller what the speakers played.");
        let mut microphone = vec![0.0; far.len()];
        for (index, slot) in microphone.iter_mut().enumerate().skip(1_440) {
            *slot = far[index - 1_440] * 0.5;
        }
        let mut processor = VoiceProcessor::new(None);
        let out = run(&mut processor, &microphone, None);
        let reduced = 20.0 * (rms(&microphone) / rms(&out).max(1e-9)).log10();
        println!("with no far end, {reduced:.1} dB quieter");
        assert!(reduced < 10.0, "{reduced:.1} dB gone with nothing to cancel against");
    }

    #[test]
    fn steady_noise_is_suppressed_and_speech_kept() {
        let speech = speech("Noise suppression keeps the voice and takes away the hiss of the fan.");
        // Two seconds of a fan's hiss alone first (the suppressor learns it), then speech over
        // it, then the hiss alone again, where the noise left is measured.
        let lead = 96_000;
        let tail = 48_000;
        let hiss = noise(lead + speech.len() + tail, 0.02, 7);
        let mut microphone = hiss.clone();
        for (index, sample) in speech.iter().enumerate() {
            microphone[lead + index] += sample;
        }
        let mut processor = VoiceProcessor::new(None);
        let out = run(&mut processor, &microphone, None);
        let end = out.len();
        let quiet = end - tail / 2..end;
        let spoken = lead..lead + speech.len().min(end - lead);
        let snr_before = 20.0 * (rms(&microphone[spoken.clone()]) / rms(&microphone[quiet.clone()])).log10();
        let snr_after = 20.0 * (rms(&out[spoken.clone()]) / rms(&out[quiet]).max(1e-9)).log10();
        println!("speech over noise: {snr_before:.1} dB before, {snr_after:.1} dB after");
        assert!(snr_after >= snr_before + 6.0, "speech over noise went from {snr_before:.1} to {snr_after:.1} dB");
        let similarity = lab::correlation(&lab::envelope(&speech), &lab::envelope(&out[spoken]), 0);
        assert!(similarity > 0.8, "the speech changed: envelope correlation {similarity:.2}");
    }

    #[test]
    fn a_quiet_voice_is_brought_up() {
        let speech = speech("A person far from their microphone speaks quietly.");
        let quiet: Vec<f32> = speech.iter().chain(speech.iter()).chain(speech.iter()).map(|s| s * 0.05).collect();
        let mut processor = VoiceProcessor::new(None);
        let out = run(&mut processor, &quiet, None);
        let third = out.len() / 3;
        let gain = 20.0 * (rms(&out[2 * third..]) / rms(&quiet[2 * third..])).log10();
        println!("a quiet voice raised {gain:.1} dB");
        assert!(gain >= 6.0, "the quiet voice was raised only {gain:.1} dB");
        assert!(out.iter().all(|sample| sample.is_finite() && sample.abs() <= 1.0));
    }

    #[test]
    fn the_tap_copies_the_mix_at_48_khz() {
        let (builder, mut reference) = echo_tap();
        let (mut effect, ()) = builder.build();
        // An output at 44.1 kHz playing a steady 0.5 on the left and 0.1 on the right.
        let mut frames = vec![kira::Frame { left: 0.5, right: 0.1 }; 4_410];
        let info = kira::info::MockInfoBuilder::new().build();
        effect.process(&mut frames, 1.0 / 44_100.0, &info);
        let mut got = Vec::new();
        while let Ok(sample) = reference.samples.pop() {
            got.push(sample);
        }
        assert!((4_799..=4_801).contains(&got.len()), "{} samples for 100 ms", got.len());
        assert!(got[10..].iter().all(|sample| (sample - 0.3).abs() < 1e-4));
        assert!(frames.iter().all(|frame| frame.left == 0.5 && frame.right == 0.1), "the tap changed the sound");
    }
}
