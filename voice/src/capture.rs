//! The speaking side: microphone samples in, voice datagrams out. A [`Transmitter`] cuts samples
//! into 20 ms frames, decides whether to send each (push-to-talk held, or the open microphone
//! hearing a voice; never while muted), encodes it and hands the datagram on. [`WavMicrophone`]
//! is a microphone made of a WAV file, played in real time and looped (tests, CI,
//! `--voice-input`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::codec::{CodecError, VoiceEncoder};
use crate::packet::VoicePacket;
use crate::processing::VoiceProcessor;
use crate::wav::{self, WavError};
use crate::{FRAME, FRAME_SAMPLES, Frame};

/// The level (RMS) above which the open microphone takes a frame for speech: −40 dBFS.
pub const VOICE_LEVEL: f32 = 0.01;
/// How long the open microphone keeps sending after the voice fell below [`VOICE_LEVEL`], so
/// that the ends of words are not cut.
pub const HANGOVER: Duration = Duration::from_millis(300);

/// How the microphone decides when to send, shared between the program (keys, menu) and the
/// thread that captures.
#[derive(Debug, Default)]
pub struct MicControl {
    /// Open microphone: send whenever a voice is heard. Otherwise push-to-talk.
    pub open: AtomicBool,
    /// Push-to-talk is held.
    pub talking: AtomicBool,
    /// Nothing is sent, whatever else is set.
    pub muted: AtomicBool,
    /// The level of the last frame (RMS, as `f32` bits), for a meter.
    level: AtomicU32,
    /// Whether the last frame was sent.
    sending: AtomicBool,
    /// Whether the last frame went through echo cancellation, noise suppression and gain
    /// control.
    processed: AtomicBool,
}

impl MicControl {
    /// The level of the last frame captured (RMS, 0..1).
    pub fn level(&self) -> f32 {
        f32::from_bits(self.level.load(Ordering::Relaxed))
    }

    /// Whether our voice is going out right now.
    pub fn sending(&self) -> bool {
        self.sending.load(Ordering::Relaxed)
    }

    /// Whether the microphone is cleaned (echo, noise, gain) before it is sent.
    pub fn processed(&self) -> bool {
        self.processed.load(Ordering::Relaxed)
    }
}

/// Microphone samples to datagrams.
#[derive(Debug)]
pub struct Transmitter {
    encoder: VoiceEncoder,
    control: Arc<MicControl>,
    frame: Frame,
    filled: usize,
    /// Frames captured so far: the timestamp of the next is this × 960.
    frames: u32,
    sequence: u32,
    /// The open microphone last heard a voice at this frame.
    voice_at: Option<u32>,
    /// Echo cancellation, noise suppression and gain control, when set.
    processor: Option<VoiceProcessor>,
}

impl Transmitter {
    /// A transmitter following `control`.
    pub fn new(control: Arc<MicControl>) -> Result<Self, CodecError> {
        Ok(Self {
            encoder: VoiceEncoder::new()?,
            control,
            frame: [0.0; FRAME_SAMPLES],
            filled: 0,
            frames: 0,
            sequence: 0,
            voice_at: None,
            processor: None,
        })
    }

    /// Cleans every frame with `processor` before it is judged and encoded.
    pub fn with_processor(mut self, processor: VoiceProcessor) -> Self {
        self.processor = Some(processor);
        self
    }

    /// Takes 48 kHz mono samples; each whole frame that is to be sent is encoded and given to
    /// `send` as a datagram.
    pub fn push(&mut self, mut samples: &[f32], send: &mut impl FnMut(&[u8])) {
        while !samples.is_empty() {
            let take = (FRAME_SAMPLES - self.filled).min(samples.len());
            // A driver's NaN or infinity becomes silence, and nothing leaves −1..1.
            for (slot, sample) in self.frame[self.filled..self.filled + take].iter_mut().zip(&samples[..take]) {
                *slot = if sample.is_finite() { sample.clamp(-1.0, 1.0) } else { 0.0 };
            }
            self.filled += take;
            samples = &samples[take..];
            if self.filled == FRAME_SAMPLES {
                self.filled = 0;
                self.frame_done(send);
            }
        }
    }

    fn frame_done(&mut self, send: &mut impl FnMut(&[u8])) {
        let index = self.frames;
        self.frames = self.frames.wrapping_add(1);
        let processed = self.processor.as_mut().is_some_and(|processor| {
            processor.process(&mut self.frame);
            processor.running()
        });
        self.control.processed.store(processed, Ordering::Relaxed);
        let level = (self.frame.iter().map(|sample| sample * sample).sum::<f32>() / FRAME_SAMPLES as f32).sqrt();
        self.control.level.store(level.to_bits(), Ordering::Relaxed);
        if level >= VOICE_LEVEL {
            self.voice_at = Some(index);
        }
        let hangover = (HANGOVER.as_millis() / FRAME.as_millis()) as u32;
        let voiced = self.voice_at.is_some_and(|at| index.wrapping_sub(at) <= hangover);
        let wanted = if self.control.open.load(Ordering::Relaxed) {
            voiced
        } else {
            self.control.talking.load(Ordering::Relaxed)
        };
        let sending = wanted && !self.control.muted.load(Ordering::Relaxed);
        self.control.sending.store(sending, Ordering::Relaxed);
        // The encoder hears every frame (so that it stays in step); only what is sent counts.
        let Ok(payload) = self.encoder.encode(&self.frame) else { return };
        if let (true, Some(payload)) = (sending, payload) {
            let packet =
                VoicePacket { sequence: self.sequence, timestamp: index.wrapping_mul(FRAME_SAMPLES as u32), payload };
            self.sequence = self.sequence.wrapping_add(1);
            send(&packet.to_bytes());
        }
    }
}

/// A microphone that plays a WAV file in real time, over and over with a second of silence
/// between, on its own thread, until dropped.
#[derive(Debug)]
pub struct WavMicrophone {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WavMicrophone {
    /// Starts playing `path` (48 kHz) into a [`Transmitter`] following `control` (cleaned by
    /// `processor`, as a real microphone is); each datagram goes to `send`.
    pub fn start(
        path: &Path,
        control: Arc<MicControl>,
        processor: Option<VoiceProcessor>,
        mut send: impl FnMut(&[u8]) + Send + 'static,
    ) -> Result<Self, WavError> {
        let mut samples = wav::read_mono(path)?;
        samples.extend(std::iter::repeat_n(0.0, crate::SAMPLE_RATE as usize));
        let mut transmitter = Transmitter::new(control)
            .map_err(|error| WavError::Unreadable { path: path.display().to_string(), reason: error.to_string() })?;
        if let Some(processor) = processor {
            transmitter = transmitter.with_processor(processor);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let mut played = 0usize;
            while !stopping.load(Ordering::Relaxed) {
                // 10 ms at a time, as a sound card delivers it.
                let chunk = crate::SAMPLE_RATE as usize / 100;
                let due = start + Duration::from_secs_f64(played as f64 / f64::from(crate::SAMPLE_RATE));
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let at = played % samples.len();
                let end = (at + chunk).min(samples.len());
                transmitter.push(&samples[at..end], &mut send);
                played += end - at;
            }
        });
        Ok(Self { stop, thread: Some(thread) })
    }
}

impl Drop for WavMicrophone {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speech_like(seconds: f32) -> Vec<f32> {
        (0..(seconds * 48_000.0) as usize)
            .map(|index| {
                let t = index as f32 / 48_000.0;
                // Syllables: a 200 Hz voice switched on and off four times a second.
                if (t * 4.0).fract() < 0.6 { 0.3 * (t * 200.0 * std::f32::consts::TAU).sin() } else { 0.0 }
            })
            .collect()
    }

    fn sent(control: &Arc<MicControl>, samples: &[f32]) -> Vec<VoicePacket> {
        let mut transmitter = Transmitter::new(control.clone()).expect("encoder");
        let mut packets = Vec::new();
        // In odd-sized pieces, as a sound card delivers them.
        for chunk in samples.chunks(441) {
            transmitter.push(chunk, &mut |bytes| packets.push(VoicePacket::parse(bytes).expect("well formed")));
        }
        packets
    }

    #[test]
    fn samples_that_are_not_numbers_become_silence() {
        let control = Arc::new(MicControl::default());
        control.talking.store(true, Ordering::Relaxed);
        let mut samples = speech_like(0.2);
        samples[100] = f32::NAN;
        samples[200] = f32::INFINITY;
        samples[300] = 7.0;
        assert!(!sent(&control, &samples).is_empty());
        assert!(control.level().is_finite() && control.level() <= 1.0);
    }

    #[test]
    fn push_to_talk_sends_only_while_held_and_never_when_muted() {
        let control = Arc::new(MicControl::default());
        let speech = speech_like(1.0);
        assert!(sent(&control, &speech).is_empty(), "nothing without the key");
        control.talking.store(true, Ordering::Relaxed);
        let packets = sent(&control, &speech);
        assert!(packets.len() >= 40, "{} packets while held", packets.len());
        let sequences: Vec<u32> = packets.iter().map(|packet| packet.sequence).collect();
        assert_eq!(sequences, (0..packets.len() as u32).collect::<Vec<_>>(), "one sequence number after another");
        assert!(packets.windows(2).all(|pair| pair[1].timestamp > pair[0].timestamp));
        control.muted.store(true, Ordering::Relaxed);
        assert!(sent(&control, &speech).is_empty(), "nothing while muted");
        assert!(!control.sending());
    }

    #[test]
    fn the_open_microphone_sends_voice_and_not_silence() {
        let control = Arc::new(MicControl::default());
        control.open.store(true, Ordering::Relaxed);
        let mut samples = vec![0.0; 48_000];
        samples.extend(speech_like(1.0));
        samples.extend(vec![0.0; 48_000]);
        let packets = sent(&control, &samples);
        let first = packets.first().expect("the voice was sent").timestamp / FRAME_SAMPLES as u32;
        let last = packets.last().expect("sent").timestamp / FRAME_SAMPLES as u32;
        assert!((49..=51).contains(&first), "sending began at frame {first}, the voice at 50");
        // The voice ends by frame 100 (its last syllable at 95); the hangover adds at most 15 frames.
        assert!((90..=117).contains(&last), "sending ended at frame {last}");
        assert!(control.level() < VOICE_LEVEL);
    }
}
