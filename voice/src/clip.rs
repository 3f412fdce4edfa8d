//! The world's own sounds (a portal's whoosh, a build placed, a payment; each region's
//! ambience) as kira sound data, decoded from WAV bytes by `hound` (the sounds ship inside the
//! program, so nothing is looked for on disk). An ambience loops without a click: its last
//! stretch is cross-faded into its start.

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use kira::sound::static_sound::{StaticSoundData, StaticSoundSettings};

use crate::wav::WavError;

/// The longest sound taken: a minute (an ambience loops; nothing longer is needed).
pub const MAX_CLIP_SECONDS: u32 = 60;

/// A sound ready to play, as often as wanted.
#[derive(Debug, Clone)]
pub struct Clip {
    data: StaticSoundData,
}

impl Clip {
    /// Decodes a 16-bit or float WAV, mono or stereo, at any rate up to 192 kHz and at most
    /// [`MAX_CLIP_SECONDS`] long. `name` is for the error.
    pub fn from_wav(name: &str, bytes: &[u8]) -> Result<Self, WavError> {
        let bad = |reason: String| WavError::Unreadable { path: name.to_owned(), reason };
        let reader = hound::WavReader::new(Cursor::new(bytes)).map_err(|error| bad(error.to_string()))?;
        let spec = reader.spec();
        if !(1..=2).contains(&spec.channels) || !(8_000..=192_000).contains(&spec.sample_rate) {
            return Err(bad(format!(
                "{} channels at {} Hz: mono or stereo, 8–192 kHz",
                spec.channels, spec.sample_rate
            )));
        }
        let frames = u64::from(reader.duration());
        if frames > u64::from(spec.sample_rate) * u64::from(MAX_CLIP_SECONDS) {
            return Err(bad(format!("longer than {MAX_CLIP_SECONDS} s")));
        }
        let samples: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Int, 16) => reader
                .into_samples::<i16>()
                .map(|sample| sample.map(|value| f32::from(value) / 32_768.0))
                .collect::<Result<_, _>>(),
            (hound::SampleFormat::Float, 32) => reader.into_samples::<f32>().collect::<Result<_, _>>(),
            (format, bits) => return Err(bad(format!("{bits}-bit {format:?} samples: 16-bit or float only"))),
        }
        .map_err(|error| bad(error.to_string()))?;
        let frames: Vec<kira::Frame> = if spec.channels == 1 {
            samples.iter().map(|sample| kira::Frame::from_mono(finite(*sample))).collect()
        } else {
            samples.chunks_exact(2).map(|pair| kira::Frame { left: finite(pair[0]), right: finite(pair[1]) }).collect()
        };
        if frames.is_empty() {
            return Err(bad("no samples".into()));
        }
        let data = StaticSoundData {
            sample_rate: spec.sample_rate,
            frames: Arc::from(frames),
            settings: StaticSoundSettings::default(),
            slice: None,
        };
        Ok(Self { data })
    }

    /// This sound as a seamless loop: the last `crossfade` is faded into the start and cut
    /// off, and playback loops over the whole.
    pub fn looped(&self, crossfade: Duration) -> Self {
        let frames = &self.data.frames;
        let fade = ((crossfade.as_secs_f64() * f64::from(self.data.sample_rate)) as usize).min(frames.len() / 2);
        let keep = frames.len() - fade;
        let mut looped: Vec<kira::Frame> = frames[..keep].to_vec();
        for (index, slot) in looped.iter_mut().take(fade).enumerate() {
            // Equal power: the tail fades out as the head fades in.
            let t = (index as f32 + 0.5) / fade as f32;
            let (head, tail) = ((t * std::f32::consts::FRAC_PI_2).sin(), (t * std::f32::consts::FRAC_PI_2).cos());
            let end = frames[keep + index];
            *slot =
                kira::Frame { left: slot.left * head + end.left * tail, right: slot.right * head + end.right * tail };
        }
        let data = StaticSoundData {
            sample_rate: self.data.sample_rate,
            frames: Arc::from(looped),
            settings: StaticSoundSettings::default().loop_region(..),
            slice: None,
        };
        Self { data }
    }

    /// Its length.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.data.frames.len() as f64 / f64::from(self.data.sample_rate))
    }

    /// The samples (left, right), for checks.
    pub fn frames(&self) -> &[kira::Frame] {
        &self.data.frames
    }

    pub(crate) fn data(&self) -> &StaticSoundData {
        &self.data
    }
}

fn finite(sample: f32) -> f32 {
    if sample.is_finite() { sample.clamp(-1.0, 1.0) } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(spec: hound::WavSpec, samples: &[i16]) -> Vec<u8> {
        let mut bytes = Cursor::new(Vec::new());
        let mut writer = hound::WavWriter::new(&mut bytes, spec).expect("writer");
        for sample in samples {
            writer.write_sample(*sample).expect("writes");
        }
        writer.finalize().expect("finishes");
        bytes.into_inner()
    }

    fn mono(rate: u32) -> hound::WavSpec {
        hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int }
    }

    #[test]
    fn wav_bytes_become_a_clip_and_bad_ones_an_error() {
        let tone: Vec<i16> = (0..2_400).map(|index| ((index as f32 * 0.1).sin() * 16_000.0) as i16).collect();
        let clip = Clip::from_wav("tone", &wav(mono(24_000), &tone)).expect("decodes");
        assert_eq!(clip.frames().len(), 2_400);
        assert_eq!(clip.duration(), Duration::from_millis(100));
        assert!(clip.frames().iter().all(|frame| frame.left == frame.right && frame.left.abs() < 0.5));

        assert!(Clip::from_wav("nothing", &[]).is_err());
        assert!(Clip::from_wav("garbage", b"RIFF\x10\0\0\0WAVEfmt nonsense").is_err());
        assert!(Clip::from_wav("empty", &wav(mono(24_000), &[])).is_err());
        let six = hound::WavSpec { channels: 6, ..mono(48_000) };
        assert!(Clip::from_wav("surround", &wav(six, &[0; 12])).is_err());
        let long = vec![0i16; 8_000 * (MAX_CLIP_SECONDS as usize + 1)];
        let error = Clip::from_wav("long.wav", &wav(mono(8_000), &long)).expect_err("too long");
        assert!(error.to_string().contains("long.wav"), "{error}");
    }

    #[test]
    fn a_loop_joins_without_a_jump() {
        // A ramp from −0.5 to 0.5: looped naively, it would jump by a whole unit at the seam.
        let ramp: Vec<i16> = (0..16_000).map(|index| ((index as f32 / 16_000.0 - 0.5) * 32_000.0) as i16).collect();
        let clip = Clip::from_wav("ramp", &wav(mono(16_000), &ramp)).expect("decodes");
        let looped = clip.looped(Duration::from_millis(250));
        let frames = looped.frames();
        assert_eq!(frames.len(), 12_000, "the cross-faded tail is cut off");
        let seam = (frames[frames.len() - 1].left - frames[0].left).abs();
        let step = (frames[1].left - frames[0].left).abs();
        assert!(seam < 0.01, "the loop jumps by {seam} where it starts again");
        assert!(step < 0.01, "the start jumps by {step}");
    }
}
