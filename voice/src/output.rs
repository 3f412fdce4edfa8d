//! Outputs for kira without a sound card: one rendered on demand (tests, benchmarks) and one
//! that writes what would be heard into a WAV file in real time (`--voice-output`, CI).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kira::backend::{Backend, Renderer};

use crate::SAMPLE_RATE;
use crate::wav::{self, WavError};

/// An output rendered when asked ([`CaptureBackend::render`]), at 48 kHz.
#[derive(Default)]
pub struct CaptureBackend {
    renderer: Option<Renderer>,
}

impl std::fmt::Debug for CaptureBackend {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("CaptureBackend").field("started", &self.renderer.is_some()).finish()
    }
}

impl Backend for CaptureBackend {
    type Settings = ();
    type Error = std::convert::Infallible;

    fn setup(_: Self::Settings, _internal_buffer_size: usize) -> Result<(Self, u32), Self::Error> {
        Ok((Self { renderer: None }, SAMPLE_RATE))
    }

    fn start(&mut self, renderer: Renderer) -> Result<(), Self::Error> {
        self.renderer = Some(renderer);
        Ok(())
    }
}

impl CaptureBackend {
    /// Renders the next `frames` stereo samples (silence before kira started).
    pub fn render(&mut self, frames: usize) -> Vec<[f32; 2]> {
        let Some(renderer) = &mut self.renderer else { return vec![[0.0; 2]; frames] };
        let mut interleaved = vec![0.0f32; frames * 2];
        // kira renders in chunks of its internal buffer size at most.
        for chunk in interleaved.chunks_mut(256) {
            renderer.on_start_processing();
            renderer.process(chunk, 2);
        }
        interleaved.chunks(2).map(|pair| [pair[0], pair[1]]).collect()
    }
}

/// Where [`WavFileBackend`] writes.
#[derive(Debug, Clone)]
pub struct WavFileSettings {
    /// The file (made anew).
    pub path: PathBuf,
}

/// An output that renders in real time, 10 ms at a time, into a 16-bit 48 kHz stereo WAV file,
/// finished when the backend is dropped.
pub struct WavFileBackend {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for WavFileBackend {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("WavFileBackend").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Backend for WavFileBackend {
    type Settings = WavFileSettings;
    type Error = WavError;

    fn setup(settings: Self::Settings, _internal_buffer_size: usize) -> Result<(Self, u32), Self::Error> {
        // Fail now, not on the render thread, if the file cannot be made.
        std::fs::File::create(&settings.path).map_err(|error| WavError::Write {
            path: settings.path.display().to_string(),
            reason: error.to_string(),
        })?;
        Ok((Self { path: settings.path, stop: Arc::new(AtomicBool::new(false)), thread: None }, SAMPLE_RATE))
    }

    fn start(&mut self, mut renderer: Renderer) -> Result<(), Self::Error> {
        let mut writer = wav::create_stereo(&self.path)?;
        let stop = self.stop.clone();
        self.thread = Some(std::thread::spawn(move || {
            let chunk = SAMPLE_RATE as usize / 100;
            let mut buffer = vec![0.0f32; chunk * 2];
            let start = Instant::now();
            let mut written = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Keep pace with the wall clock, as a sound card would.
                let due = start + Duration::from_secs_f64(written as f64 / f64::from(SAMPLE_RATE));
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                for part in buffer.chunks_mut(512) {
                    renderer.on_start_processing();
                    renderer.process(part, 2);
                }
                for sample in &buffer {
                    if writer.write_sample(wav::to_i16(*sample)).is_err() {
                        return;
                    }
                }
                written += chunk as u64;
            }
            let _ = writer.finalize();
        }));
        Ok(())
    }
}

impl Drop for WavFileBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
