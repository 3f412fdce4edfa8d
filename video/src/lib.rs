//! Films for the cinema (issue 17), without devices or network: a film's container is read
//! (MP4, Matroska or WebM, by Symphonia), its H.264 video decoded (`rust_h264`) and each picture
//! turned into RGBA with the time it is to be shown at.
//!
//! Everything a file says is treated as hostile: sizes are checked against [`Limits`] before a
//! picture is decoded, and should a demuxer or decoder panic on a file nobody foresaw, the film
//! is refused from then on rather than the program ended ([`FilmError::Broken`]).

mod audio;
mod colour;
mod film;
mod h264;
mod player;

pub use audio::{AudioCodec, Sound};
pub use colour::{Planes, yuv_to_rgba};
pub use film::{Film, FilmInfo, VideoCodec};
pub use player::{Player, PlayerState};

/// The most seconds of sound a film keeps decoded ahead of what is taken; older blocks go first.
pub const MAX_SOUND_SECONDS: f64 = 8.0;
/// The most blocks of sound kept whatever their times say (a file can give every block the same
/// time); each block is at most a packet's samples.
pub const MAX_SOUND_BLOCKS: usize = 1024;

/// Adds `sound` to `sounds`, the oldest going while they span more than [`MAX_SOUND_SECONDS`] or
/// number more than [`MAX_SOUND_BLOCKS`].
fn keep_sound(sounds: &mut std::collections::VecDeque<Sound>, sound: Sound) {
    sounds.push_back(sound);
    while let (Some(oldest), Some(newest)) = (sounds.front(), sounds.back()) {
        if newest.time - oldest.time <= MAX_SOUND_SECONDS && sounds.len() <= MAX_SOUND_BLOCKS {
            break;
        }
        sounds.pop_front();
    }
}

/// What a film may be, so that a file cannot make a viewer decode more than a screen shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The widest picture, in pixels.
    pub max_width: u32,
    /// The tallest picture, in pixels.
    pub max_height: u32,
    /// The most pictures decoded ahead of the one shown (the decoder's reorder depth included).
    pub max_buffered: usize,
}

impl Default for Limits {
    /// Up to 4K UHD (3840×2160), sixteen pictures ahead.
    fn default() -> Self {
        Self { max_width: 3840, max_height: 2160, max_buffered: 16 }
    }
}

/// One decoded picture, to be shown at `time`.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height` pixels, four bytes each (red, green, blue, alpha), rows top to bottom.
    pub rgba: Vec<u8>,
    /// Seconds from the start of the film.
    pub time: f64,
}

/// Why a film cannot be played, in words for the person who chose it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilmError {
    /// The file is not a container Sanctuary reads.
    #[error(
        "not a film Sanctuary can read ({0}); MP4, Matroska and WebM are, for example `ffmpeg -i IN -c:v libx264 -c:a aac OUT.mp4`"
    )]
    NotAFilm(String),
    /// The container is read, but what is in it is not.
    #[error("{0}; convert it with `ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p -c:a aac OUT.mp4`")]
    Unsupported(String),
    /// The pictures are larger than [`Limits`] allow.
    #[error(
        "the film is {width}x{height} pixels, over the limit of {max_width}x{max_height}; convert it smaller, for example `ffmpeg -i IN -vf scale=-2:1080 OUT.mp4`"
    )]
    TooLarge {
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
        /// The widest allowed.
        max_width: u32,
        /// The tallest allowed.
        max_height: u32,
    },
    /// The file cannot be opened or read at all.
    #[error("the film cannot be read: {0}")]
    Unreadable(String),
    /// The file is damaged (or hostile) where it was read.
    #[error("the film is damaged: {0}")]
    Broken(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sound_kept_is_bounded_by_time_and_by_count() {
        let block = |time: f64| Sound { rate: 48_000, channels: 1, samples: vec![0.0; 960], time };
        let mut sounds = std::collections::VecDeque::new();
        for n in 0..1000 {
            keep_sound(&mut sounds, block(f64::from(n) * 0.02));
        }
        let span = sounds.back().map(|sound| sound.time).unwrap_or(0.0)
            - sounds.front().map(|sound| sound.time).unwrap_or(0.0);
        assert!(span <= MAX_SOUND_SECONDS, "{span} s kept");
        // Every block at the same time, as a hostile file can say: the count still bounds it.
        let mut same = std::collections::VecDeque::new();
        for _ in 0..5000 {
            keep_sound(&mut same, block(1.0));
        }
        assert_eq!(same.len(), MAX_SOUND_BLOCKS);
    }
}
