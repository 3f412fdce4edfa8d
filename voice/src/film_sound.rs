//! A film's sound, played from the screen: a spatial track at the screen whose sound takes
//! stereo frames from a ring the program fills as the film plays ([`FilmFeed`]), resampled from
//! the film's rate to the card's. The whole room hears it at full volume from the screen's side,
//! fading only beyond ([`FILM_NEAR`], [`FILM_FAR`]).
//!
//! Bounds: the ring holds [`FILM_RING_SECONDS`] of 48 kHz frames; a fuller ring takes no more
//! (the program feeds only what is due soon). An empty ring plays silence.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use kira::Frame as KiraFrame;
use kira::sound::{Sound, SoundData};

/// Within this distance (m) of the screen its sound is at full volume: every seat of a cinema
/// (its back row is about 35 m from the screen).
pub const FILM_NEAR: f32 = 40.0;
/// At this distance (m) it is silent.
pub const FILM_FAR: f32 = 120.0;
/// Seconds of frames the ring holds.
pub const FILM_RING_SECONDS: usize = 2;
/// The most frames the ring holds (two seconds at the highest rate taken).
const RING_FRAMES: usize = FILM_RING_SECONDS * 96_000;
/// The lowest and highest sample rates taken.
const RATES: std::ops::RangeInclusive<u32> = 8_000..=96_000;

/// The program's end of a film's sound: push the film's samples as they come due.
pub struct FilmFeed {
    frames: rtrb::Producer<KiraFrame>,
    rate: Arc<AtomicU32>,
    stopped: Arc<AtomicBool>,
    /// Frames dropped because the ring was full.
    pub dropped: u64,
}

impl std::fmt::Debug for FilmFeed {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("FilmFeed").field("dropped", &self.dropped).finish_non_exhaustive()
    }
}

impl FilmFeed {
    /// Pushes interleaved samples of `channels` channels at `rate` Hz (mono is heard on both
    /// sides; beyond two channels, the first two). Samples that do not fit the ring are dropped
    /// and counted; a rate outside 8 to 96 kHz or no channels drops the block.
    pub fn push(&mut self, samples: &[f32], rate: u32, channels: u16) {
        if channels == 0 || !RATES.contains(&rate) {
            self.dropped += (samples.len() / usize::from(channels.max(1))) as u64;
            return;
        }
        self.rate.store(rate, Ordering::Relaxed);
        for frame in samples.chunks_exact(usize::from(channels)) {
            let (left, right) = match frame {
                [mono] => (*mono, *mono),
                [left, right, ..] => (*left, *right),
                [] => continue,
            };
            let clean = |sample: f32| if sample.is_finite() { sample.clamp(-1.0, 1.0) } else { 0.0 };
            if self.frames.push(KiraFrame { left: clean(left), right: clean(right) }).is_err() {
                self.dropped += 1;
            }
        }
    }

    /// Frames waiting to be played.
    pub fn waiting(&self) -> usize {
        RING_FRAMES - self.frames.slots()
    }

    /// Seconds of sound waiting to be played.
    pub fn waiting_seconds(&self) -> f64 {
        self.waiting() as f64 / f64::from(self.rate.load(Ordering::Relaxed).max(1))
    }
}

impl Drop for FilmFeed {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
    }
}

/// The sound card's end: kira asks it for frames.
pub struct FilmSound {
    frames: rtrb::Consumer<KiraFrame>,
    rate: Arc<AtomicU32>,
    stopped: Arc<AtomicBool>,
    phase: f64,
    previous: KiraFrame,
    current: KiraFrame,
}

impl std::fmt::Debug for FilmSound {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("FilmSound").finish_non_exhaustive()
    }
}

/// A film's sound and the feed that fills it.
pub fn film_sound() -> (FilmSound, FilmFeed) {
    let (producer, consumer) = rtrb::RingBuffer::new(RING_FRAMES);
    let rate = Arc::new(AtomicU32::new(48_000));
    let stopped = Arc::new(AtomicBool::new(false));
    let sound = FilmSound {
        frames: consumer,
        rate: rate.clone(),
        stopped: stopped.clone(),
        phase: 0.0,
        previous: KiraFrame::ZERO,
        current: KiraFrame::ZERO,
    };
    (sound, FilmFeed { frames: producer, rate, stopped, dropped: 0 })
}

impl FilmSound {
    /// Renders `out`, `dt` seconds a frame, from the ring; silence where it ran dry.
    pub fn render(&mut self, out: &mut [KiraFrame], dt: f64) {
        let step = f64::from(self.rate.load(Ordering::Relaxed)) * dt;
        for frame in out {
            self.phase += step;
            while self.phase >= 1.0 {
                self.previous = self.current;
                self.current = self.frames.pop().unwrap_or(KiraFrame::ZERO);
                self.phase -= 1.0;
            }
            let t = self.phase as f32;
            *frame = KiraFrame {
                left: self.previous.left + (self.current.left - self.previous.left) * t,
                right: self.previous.right + (self.current.right - self.previous.right) * t,
            };
        }
    }
}

impl Sound for FilmSound {
    fn process(&mut self, out: &mut [KiraFrame], dt: f64, _info: &kira::info::Info) {
        self.render(out, dt);
    }

    fn finished(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }
}

/// Hands a [`FilmSound`] to kira.
pub(crate) struct FilmSoundData(pub(crate) FilmSound);

impl SoundData for FilmSoundData {
    type Error = std::convert::Infallible;
    type Handle = ();

    fn into_sound(self) -> Result<(Box<dyn Sound>, Self::Handle), Self::Error> {
        Ok((Box::new(self.0), ()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_film_is_heard_at_the_cards_rate_and_silence_follows_when_it_runs_dry() {
        let (mut sound, mut feed) = film_sound();
        // A second of a 24 kHz stereo ramp: left rises, right falls.
        let samples: Vec<f32> = (0..24_000).flat_map(|n| [n as f32 / 24_000.0, -(n as f32) / 24_000.0]).collect();
        feed.push(&samples, 24_000, 2);
        assert_eq!(feed.waiting(), 24_000);
        assert!((feed.waiting_seconds() - 1.0).abs() < 1e-9);
        // The card runs at 48 kHz: one second of it takes the whole second of film.
        let mut out = vec![KiraFrame::ZERO; 48_000];
        sound.render(&mut out, 1.0 / 48_000.0);
        assert!(feed.waiting() <= 1, "{} frames left", feed.waiting());
        let middle = out[24_000];
        assert!((middle.left - 0.5).abs() < 0.01 && (middle.right + 0.5).abs() < 0.01, "{middle:?}");
        let mut after = vec![KiraFrame { left: 1.0, right: 1.0 }; 480];
        sound.render(&mut after, 1.0 / 48_000.0);
        assert!(after[10..].iter().all(|frame| frame.left == 0.0 && frame.right == 0.0), "silence when dry");
    }

    #[test]
    fn what_does_not_fit_or_makes_no_sense_is_dropped_and_counted() {
        let (_sound, mut feed) = film_sound();
        feed.push(&[0.1; 10], 1_000, 1);
        feed.push(&[0.1; 10], 48_000, 0);
        assert_eq!(feed.waiting(), 0);
        // Mono fills both sides; the ring takes two seconds at 96 kHz and no more.
        feed.push(&vec![f32::NAN; RING_FRAMES + 100], 96_000, 1);
        assert_eq!(feed.waiting(), RING_FRAMES);
        assert_eq!(feed.dropped, 100 + 10 + 10);
        let (mut sound, mut feed) = film_sound();
        feed.push(&[f32::INFINITY, 2.0, 0.5], 48_000, 1);
        let mut out = vec![KiraFrame::ZERO; 4];
        sound.render(&mut out, 1.0 / 48_000.0);
        assert!(out.iter().all(|frame| frame.left.abs() <= 1.0 && frame.right.abs() <= 1.0), "{out:?}");
        drop(feed);
        assert!(sound.finished());
    }
}
