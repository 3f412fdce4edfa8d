//! The command line: `sanctuary --help` tells all.

use std::path::PathBuf;

use clap::Parser;
use sanctuary_engine::{LOBBY_DRIFTERS, RegionId};

/// Sanctuary: a peer-to-peer virtual world. Starts the desktop client in the lobby.
#[derive(Debug, Clone, Parser)]
#[command(name = "sanctuary", version, about, long_about = None)]
pub struct Args {
    /// Where to start: lobby, city, marketplace, cinema, lecture-hall, meeting or private.
    #[arg(long, default_value = "lobby", value_parser = parse_region)]
    pub region: RegionId,

    /// Window width in pixels.
    #[arg(long, default_value_t = 1280, value_parser = clap::value_parser!(u32).range(320..=16384))]
    pub width: u32,

    /// Window height in pixels.
    #[arg(long, default_value_t = 720, value_parser = clap::value_parser!(u32).range(240..=16384))]
    pub height: u32,

    /// Render `--frames` frames, save a picture of the window to this PNG file and exit.
    #[arg(long, value_name = "PATH")]
    pub screenshot: Option<PathBuf>,

    /// How many frames to render before taking the `--screenshot`.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub frames: u32,

    /// How many placeholder avatars float through the lobby.
    #[arg(long, default_value_t = LOBBY_DRIFTERS, value_parser = parse_drifters)]
    pub avatars: usize,

    /// Never look for a VR headset; always use the window.
    #[arg(long)]
    pub flat: bool,
}

fn parse_region(text: &str) -> Result<RegionId, String> {
    text.parse().map_err(|error: sanctuary_engine::UnknownRegion| error.to_string())
}

fn parse_drifters(text: &str) -> Result<usize, String> {
    let count: usize = text.parse().map_err(|_| format!("'{text}' is not a whole number"))?;
    if count > 100_000 {
        return Err(format!("{count} avatars is more than the lobby shows (at most 100000)"));
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_start_in_the_lobby() {
        let args = Args::try_parse_from(["sanctuary"]).expect("no arguments is fine");
        assert_eq!(args.region, RegionId::Lobby);
        assert_eq!((args.width, args.height), (1280, 720));
        assert!(args.screenshot.is_none());
    }

    #[test]
    fn bad_input_is_refused_with_a_message() {
        let error = Args::try_parse_from(["sanctuary", "--region", "moon"]).unwrap_err().to_string();
        assert!(error.contains("lecture-hall"), "{error}");
        assert!(Args::try_parse_from(["sanctuary", "--width", "10"]).is_err());
        assert!(Args::try_parse_from(["sanctuary", "--frames", "0"]).is_err());
        assert!(Args::try_parse_from(["sanctuary", "--avatars", "many"]).is_err());
    }

    #[test]
    fn screenshot_options_parse() {
        let args =
            Args::try_parse_from(["sanctuary", "--region", "cinema", "--screenshot", "/tmp/x.png", "--frames", "5"])
                .expect("valid");
        assert_eq!(args.region.slug(), "cinema");
        assert_eq!(args.frames, 5);
        assert_eq!(args.screenshot, Some(PathBuf::from("/tmp/x.png")));
    }
}
