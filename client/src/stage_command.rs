//! The lecture hall's commands from the chat box: `/slides` (the images to present, a folder
//! of them or files, checked here before they are shared; a PDF goes to `pdf_slides` first), `/stage` (move the slides, give or
//! take back the floor, lower a hand, hand the stage over) and, in `network::submit`, `/hand`.

use std::path::{Path, PathBuf};

use sanctuary_net::Command;
use sanctuary_net::stage::{MAX_SLIDE_BYTES, MAX_SLIDES, StageAction, slide_format};

use crate::network::{Social, person_named};

/// The largest slide shown, in pixels a side (a 4K slide is 3840 wide).
pub const MAX_SLIDE_SIDE: u32 = 8192;

/// The slides `/slides` names: every PNG and JPEG in a folder (by name), or the files given
/// (in order; a path with spaces is taken whole when it names a file or a folder). Each is
/// checked (an image the hall shows, within the size limits) so that a mistake is told here,
/// before anything is shared. The command and how many slides.
pub fn present(typed: &str) -> Result<(Command, usize), String> {
    let typed = typed.trim();
    let whole = Path::new(typed);
    let paths: Vec<PathBuf> = if whole.is_dir() {
        let entries = std::fs::read_dir(whole).map_err(|error| format!("{typed}: {error}"))?;
        let mut images: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .take(4096)
            .filter(|path| {
                path.extension()
                    .and_then(|extension| extension.to_str())
                    .is_some_and(|extension| ["png", "jpg", "jpeg"].contains(&extension.to_lowercase().as_str()))
            })
            .collect();
        images.sort();
        if images.is_empty() {
            return Err(format!("{typed} holds no PNG or JPEG images"));
        }
        images
    } else if whole.is_file() {
        vec![whole.to_owned()]
    } else {
        typed.split_whitespace().map(PathBuf::from).collect()
    };
    let count = paths.len();
    Ok((present_files(paths)?, count))
}

/// The node's command to present these pictures, each checked (see [`check_slide`]).
pub fn present_files(paths: Vec<PathBuf>) -> Result<Command, String> {
    if paths.len() > MAX_SLIDES {
        return Err(format!("{} slides; a deck holds at most {MAX_SLIDES}", paths.len()));
    }
    for path in &paths {
        check_slide(path)?;
    }
    Ok(Command::Present(paths))
}

/// [`present`], with what became of it told in the chat: the command, if the slides check.
pub fn present_told(typed: &str, social: &mut Social) -> Option<Command> {
    match present(typed) {
        Ok((command, count)) => {
            social.notice(format!("sharing {count} slides..."));
            Some(command)
        }
        Err(problem) => {
            social.notice(problem);
            None
        }
    }
}

/// Whether the file at `path` is a slide the hall shows: a PNG or JPEG of at most
/// [`MAX_SLIDE_BYTES`] and [`MAX_SLIDE_SIDE`] pixels a side.
fn check_slide(path: &Path) -> Result<(), String> {
    let shown = path.display();
    let size = std::fs::metadata(path).map_err(|error| format!("{shown}: {error}"))?.len();
    if size > MAX_SLIDE_BYTES {
        return Err(format!("{shown} is {size} bytes; a slide holds at most {} MiB", MAX_SLIDE_BYTES >> 20));
    }
    let mut first = [0u8; 8];
    let read = std::fs::File::open(path)
        .and_then(|mut file| std::io::Read::read(&mut file, &mut first))
        .map_err(|error| format!("{shown}: {error}"))?;
    if slide_format(&first[..read]).is_none() {
        return Err(format!("{shown} is not a PNG or JPEG image"));
    }
    let reader = image::ImageReader::open(path)
        .and_then(image::ImageReader::with_guessed_format)
        .map_err(|error| format!("{shown}: {error}"))?;
    let (width, height) = reader.into_dimensions().map_err(|error| format!("{shown}: {error}"))?;
    if width.max(height) > MAX_SLIDE_SIDE || width == 0 || height == 0 {
        return Err(format!("{shown} is {width}×{height}; a slide is at most {MAX_SLIDE_SIDE} pixels a side"));
    }
    Ok(())
}

/// What `/stage` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageWord {
    /// An action needing no one's name.
    Action(StageAction),
    /// Give the floor to the person of this name.
    Floor(String),
    /// Lower this person's hand.
    Lower(String),
    /// Hand the stage to this person.
    Give(String),
}

/// Reads what was typed after `/stage`.
pub fn stage_word(text: &str) -> Result<StageWord, String> {
    let usage = "usage: /stage next | prev | N (a slide) | floor NAME | floor back | lower NAME | give NAME";
    let mut words = text.split_whitespace();
    let first = words.next().ok_or(usage)?;
    let name = words.collect::<Vec<_>>().join(" ");
    let named =
        |word: fn(String) -> StageWord| if name.is_empty() { Err(usage.to_owned()) } else { Ok(word(name.clone())) };
    match first {
        "next" => Ok(StageWord::Action(StageAction::Next)),
        "prev" | "previous" | "back" => Ok(StageWord::Action(StageAction::Previous)),
        "floor" if name == "back" => Ok(StageWord::Action(StageAction::TakeFloor)),
        "floor" => named(StageWord::Floor),
        "lower" => named(StageWord::Lower),
        "give" => named(StageWord::Give),
        number => match number.parse::<u16>() {
            // People count slides from 1.
            Ok(n) if n >= 1 => Ok(StageWord::Action(StageAction::Go(n - 1))),
            _ => Err(usage.into()),
        },
    }
}

/// The node command for `/stage`, names looked up among the people here.
pub fn stage(social: &Social, text: &str) -> Result<Option<Command>, String> {
    let key = |name: &str| person_named(social, name).map(|key| *key.as_bytes());
    let action = match stage_word(text)? {
        StageWord::Action(action) => action,
        StageWord::Floor(name) => StageAction::GiveFloor(key(&name)?),
        StageWord::Lower(name) => StageAction::LowerHand(key(&name)?),
        StageWord::Give(name) => StageAction::HandOver(key(&name)?),
    };
    Ok(Some(Command::Stage(action)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_words_are_read_from_what_was_typed() {
        assert_eq!(stage_word("next"), Ok(StageWord::Action(StageAction::Next)));
        assert_eq!(stage_word(" prev "), Ok(StageWord::Action(StageAction::Previous)));
        assert_eq!(stage_word("3"), Ok(StageWord::Action(StageAction::Go(2))), "slides count from 1");
        assert_eq!(stage_word("floor back"), Ok(StageWord::Action(StageAction::TakeFloor)));
        assert_eq!(stage_word("floor Ada Lovelace"), Ok(StageWord::Floor("Ada Lovelace".into())));
        assert_eq!(stage_word("lower bo"), Ok(StageWord::Lower("bo".into())));
        assert_eq!(stage_word("give cy"), Ok(StageWord::Give("cy".into())));
        for wrong in ["", "0", "-1", "99999999", "floor", "give", "dance"] {
            assert!(stage_word(wrong).is_err(), "{wrong:?} was read");
        }
    }

    #[test]
    fn slides_are_checked_before_they_are_shared() {
        let dir = tempfile::tempdir().expect("temp dir");
        let image = image::RgbImage::from_pixel(32, 18, image::Rgb([10, 200, 30]));
        for name in ["b.png", "a.png", "c.jpg"] {
            image.save(dir.path().join(name)).expect("writes");
        }
        std::fs::write(dir.path().join("notes.txt"), "not a slide").expect("writes");
        // A folder: its images, by name.
        let (command, count) = present(&dir.path().display().to_string()).expect("a deck");
        let Command::Present(paths) = command else { panic!("not a presentation") };
        let names: Vec<String> =
            paths.iter().map(|path| path.file_name().expect("a name").to_string_lossy().into_owned()).collect();
        assert_eq!((names, count), (vec!["a.png".to_owned(), "b.png".into(), "c.jpg".into()], 3));
        // Files, in the order given.
        let two = format!("{} {}", dir.path().join("c.jpg").display(), dir.path().join("a.png").display());
        assert!(matches!(present(&two), Ok((Command::Present(paths), 2)) if paths[0].ends_with("c.jpg")));
        // Not images, missing, disguised, or too large a picture: told, not shared.
        let text = dir.path().join("notes.txt");
        assert!(present(&text.display().to_string()).is_err_and(|problem| problem.contains("not a PNG or JPEG")));
        assert!(present("/no/such/slide.png").is_err());
        let disguised = dir.path().join("fake.png");
        std::fs::write(&disguised, b"\x89PNG\r\n\x1a\nnothing after").expect("writes");
        assert!(present(&disguised.display().to_string()).is_err());
        let huge = dir.path().join("huge.png");
        image::GrayImage::new(MAX_SLIDE_SIDE + 1, 1).save(&huge).expect("writes");
        assert!(present(&huge.display().to_string()).is_err_and(|problem| problem.contains("pixels a side")));
        let empty = tempfile::tempdir().expect("temp dir");
        assert!(present(&empty.path().display().to_string()).is_err_and(|problem| problem.contains("no PNG")));
    }
}
