//! Microphones at other rates than 48 kHz, and with several channels: mixed down to mono and
//! resampled by linear interpolation (speech has little above 8 kHz, far below any card's
//! Nyquist frequency, so nothing finer is needed).

use crate::SAMPLE_RATE;

/// Interleaved samples at any rate and channel count in, 48 kHz mono out.
#[derive(Debug, Clone)]
pub struct ToVoiceRate {
    channels: usize,
    /// Input samples per output sample.
    step: f64,
    /// Where the next output sample falls after `previous` (0..1 of the way to the next input).
    phase: f64,
    previous: f32,
}

impl ToVoiceRate {
    /// A converter from `rate` Hz with `channels` interleaved channels.
    pub fn new(rate: u32, channels: u16) -> Self {
        Self {
            channels: usize::from(channels.max(1)),
            step: f64::from(rate.max(1)) / f64::from(SAMPLE_RATE),
            phase: 0.0,
            previous: 0.0,
        }
    }

    /// Converts `input`, appending to `out`.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) {
        for frame in input.chunks(self.channels) {
            let current = frame.iter().sum::<f32>() / frame.len() as f32;
            while self.phase < 1.0 {
                out.push(self.previous + (current - self.previous) * self.phase as f32);
                self.phase += self.step;
            }
            self.phase -= 1.0;
            self.previous = current;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stereo_44_1_khz_tone_comes_out_as_48_khz_mono() {
        let tone = |rate: f32, index: usize| (index as f32 / rate * 440.0 * std::f32::consts::TAU).sin() * 0.5;
        let input: Vec<f32> = (0..44_100).flat_map(|index| [tone(44_100.0, index), tone(44_100.0, index)]).collect();
        let mut converter = ToVoiceRate::new(44_100, 2);
        let mut out = Vec::new();
        for chunk in input.chunks(882) {
            converter.push(chunk, &mut out);
        }
        assert!((47_990..=48_010).contains(&out.len()), "{} samples for one second", out.len());
        // Linear interpolation lags one input sample behind.
        let expected =
            |index: usize| (((index as f32 / 48_000.0) - 1.0 / 44_100.0) * 440.0 * std::f32::consts::TAU).sin() * 0.5;
        let worst =
            out.iter().enumerate().skip(2).map(|(index, sample)| (sample - expected(index)).abs()).fold(0.0, f32::max);
        assert!(worst < 0.02, "off by up to {worst}");
        let mut same = ToVoiceRate::new(48_000, 1);
        let mut copied = Vec::new();
        same.push(&[0.1, 0.2, 0.3], &mut copied);
        assert_eq!(copied.len(), 3);
    }
}
