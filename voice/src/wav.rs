//! WAV files as a microphone and as a speaker: 48 kHz, 16-bit or float. What a machine without
//! a sound card (CI, a home node, a test) uses instead of devices.

use std::path::Path;

use crate::SAMPLE_RATE;

/// The longest file read as a microphone (ten minutes): a bound on what a file can make us hold.
pub const MAX_SECONDS: u32 = 600;

/// Why a WAV file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// Not a readable WAV file.
    #[error("{path}: not a readable WAV file: {reason}")]
    Unreadable {
        /// Which file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A sample rate other than 48 kHz.
    #[error("{path}: {rate} Hz; voice needs 48000 Hz (convert it with `sox in.wav -r 48000 out.wav`)")]
    Rate {
        /// Which file.
        path: String,
        /// Its rate.
        rate: u32,
    },
    /// Longer than [`MAX_SECONDS`].
    #[error("{path}: longer than {MAX_SECONDS} s")]
    TooLong {
        /// Which file.
        path: String,
    },
    /// The file could not be written.
    #[error("{path}: cannot write: {reason}")]
    Write {
        /// Which file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Reads a 48 kHz WAV file as mono samples in −1..1 (channels are averaged).
pub fn read_mono(path: &Path) -> Result<Vec<f32>, WavError> {
    let name = path.display().to_string();
    let unreadable = |error: hound::Error| WavError::Unreadable { path: name.clone(), reason: error.to_string() };
    let mut reader = hound::WavReader::open(path).map_err(unreadable)?;
    let spec = reader.spec();
    if spec.sample_rate != SAMPLE_RATE {
        return Err(WavError::Rate { path: name, rate: spec.sample_rate });
    }
    let channels = usize::from(spec.channels.max(1));
    if u64::from(reader.duration()) > u64::from(MAX_SECONDS) * u64::from(SAMPLE_RATE) {
        return Err(WavError::TooLong { path: name });
    }
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => reader.samples::<f32>().collect::<Result<_, _>>().map_err(unreadable)?,
        (hound::SampleFormat::Int, bits @ 1..=32) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|sample| sample.map(|value| value as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(unreadable)?
        }
        (format, bits) => {
            return Err(WavError::Unreadable { path: name, reason: format!("{bits}-bit {format:?} samples") });
        }
    };
    Ok(interleaved.chunks(channels).map(|frame| frame.iter().sum::<f32>() / frame.len() as f32).collect())
}

/// Starts a 16-bit 48 kHz stereo WAV file at `path` (what [`write_stereo`] and the WAV output
/// write).
pub fn create_stereo(path: &Path) -> Result<hound::WavWriter<std::io::BufWriter<std::fs::File>>, WavError> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    hound::WavWriter::create(path, spec)
        .map_err(|error| WavError::Write { path: path.display().to_string(), reason: error.to_string() })
}

/// A sample in −1..1 as 16 bits (louder is clipped).
pub fn to_i16(sample: f32) -> i16 {
    (sample.clamp(-1.0, 1.0) * f32::from(i16::MAX)) as i16
}

/// Writes stereo samples (left, right) in −1..1 as a 16-bit 48 kHz WAV file.
pub fn write_stereo(path: &Path, samples: &[[f32; 2]]) -> Result<(), WavError> {
    let name = path.display().to_string();
    let failed = |error: hound::Error| WavError::Write { path: name.clone(), reason: error.to_string() };
    let mut writer = create_stereo(path)?;
    for frame in samples {
        for sample in frame {
            writer.write_sample(to_i16(*sample)).map_err(failed)?;
        }
    }
    writer.finalize().map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stereo_written_reads_back_as_its_mono_mix_and_bad_files_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out.wav");
        write_stereo(&path, &[[0.5, 0.0], [-0.5, -0.25], [1.5, 1.5]]).expect("writes");
        let mono = read_mono(&path).expect("reads");
        assert_eq!(mono.len(), 3);
        assert!((mono[0] - 0.25).abs() < 1e-3 && (mono[1] + 0.375).abs() < 1e-3 && (mono[2] - 1.0).abs() < 1e-3);
        let garbage = dir.path().join("garbage.wav");
        std::fs::write(&garbage, b"RIFF\x10\x00\x00\x00WAVEfmt nonsense").expect("writes");
        assert!(matches!(read_mono(&garbage), Err(WavError::Unreadable { .. })));
        assert!(matches!(read_mono(&dir.path().join("missing.wav")), Err(WavError::Unreadable { .. })));
        let slow = dir.path().join("slow.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 22_050,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        hound::WavWriter::create(&slow, spec).expect("creates").finalize().expect("writes");
        assert!(matches!(read_mono(&slow), Err(WavError::Rate { rate: 22_050, .. })));
    }
}
