//! `--screenshot PATH --frames N`: render N frames, save a picture of the window, exit.

use std::path::{Path, PathBuf};

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};

use crate::Frame;

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Update, take_screenshot.run_if(resource_exists::<ScreenshotPlan>).in_set(Frame::Present));
}

/// How many frames to wait for the GPU to hand back the picture before giving up.
const CAPTURE_TIMEOUT_FRAMES: u32 = 600;

/// A picture to take after some frames, and where to save it.
#[derive(Resource, Debug, Clone)]
pub struct ScreenshotPlan {
    path: PathBuf,
    frames: u32,
    frames_seen: u32,
    requested: bool,
    /// Other people's avatars to wait for before counting, and the frames waited so far.
    avatars: usize,
    waited: u32,
}

/// The most frames to wait for avatars before taking the picture anyway.
const MAX_AVATAR_WAIT_FRAMES: u32 = 4000;

impl ScreenshotPlan {
    /// Saves a picture to `path` after `frames` frames.
    pub fn new(path: PathBuf, frames: u32) -> Self {
        Self { path, frames, frames_seen: 0, requested: false, avatars: 0, waited: 0 }
    }

    /// Counts the frames only once `avatars` other people's avatars are drawn from their models.
    pub fn after_avatars(self, avatars: usize) -> Self {
        Self { avatars, ..self }
    }

    /// Checks before any rendering starts that a PNG can be written at `path`, creating its
    /// directory if needed.
    pub fn check_path(path: &Path) -> Result<(), ScreenshotPathError> {
        let is_png = path.extension().is_some_and(|extension| extension.eq_ignore_ascii_case("png"));
        if !is_png {
            return Err(ScreenshotPathError::NotPng { path: path.to_owned() });
        }
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|source| ScreenshotPathError::CannotCreateFolder { folder: parent.to_owned(), source })?;
        }
        Ok(())
    }
}

/// Why a screenshot could not be saved where it was asked for.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScreenshotPathError {
    /// Pictures are saved as PNG; the path must say so.
    #[error("--screenshot saves PNG files; give a path ending in .png, not '{}'", path.display())]
    NotPng {
        /// The path given.
        path: PathBuf,
    },
    /// The folder for the picture does not exist and cannot be made.
    #[error("cannot create the folder '{}' for the screenshot: {source}", folder.display())]
    CannotCreateFolder {
        /// The folder.
        folder: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
}

fn take_screenshot(
    mut commands: Commands,
    mut plan: ResMut<ScreenshotPlan>,
    drawn: Res<crate::avatar_rigs::AvatarsDrawn>,
    mut exit: MessageWriter<AppExit>,
) {
    if drawn.people < plan.avatars && plan.waited < MAX_AVATAR_WAIT_FRAMES {
        plan.waited += 1;
        if plan.waited == MAX_AVATAR_WAIT_FRAMES {
            warn!(
                "{} of {} avatars drawn after {MAX_AVATAR_WAIT_FRAMES} frames; taking the picture anyway",
                drawn.people, plan.avatars
            );
        }
        return;
    }
    plan.frames_seen += 1;
    if !plan.requested && plan.frames_seen >= plan.frames {
        plan.requested = true;
        let path = plan.path.clone();
        commands.spawn(Screenshot::primary_window()).observe(
            move |captured: On<ScreenshotCaptured>, mut exit: MessageWriter<AppExit>| {
                let saved = captured
                    .image
                    .clone()
                    .try_into_dynamic()
                    .map_err(|error| error.to_string())
                    .and_then(|picture| picture.to_rgb8().save(&path).map_err(|error| error.to_string()));
                match saved {
                    Ok(()) => {
                        info!("saved the screenshot to {}", path.display());
                        if let Some(mib) = peak_resident_mib() {
                            info!("peak resident memory: {mib} MiB");
                        }
                        exit.write(AppExit::Success);
                    }
                    Err(error) => {
                        error!("could not save the screenshot to {}: {error}", path.display());
                        exit.write(AppExit::from_code(3));
                    }
                }
            },
        );
    } else if plan.requested && plan.frames_seen > plan.frames + CAPTURE_TIMEOUT_FRAMES {
        error!("no picture came back from the GPU after {CAPTURE_TIMEOUT_FRAMES} frames; giving up");
        exit.write(AppExit::from_code(4));
    }
}

/// The most memory this process has held resident so far, MiB (Linux only).
pub fn peak_resident_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_png_paths_are_accepted() {
        let error = ScreenshotPlan::check_path(Path::new("picture.jpg")).unwrap_err();
        assert!(matches!(error, ScreenshotPathError::NotPng { .. }));
        assert!(error.to_string().contains(".png"), "{error}");
        assert!(ScreenshotPlan::check_path(Path::new("no-extension")).is_err());
    }

    #[test]
    fn the_folder_is_created() {
        let folder = std::env::temp_dir().join(format!("sanctuary-shot-{}", std::process::id())).join("nested");
        let _ = std::fs::remove_dir_all(&folder);
        ScreenshotPlan::check_path(&folder.join("x.PNG")).expect("a PNG path in a new folder is fine");
        assert!(folder.is_dir());
        let _ = std::fs::remove_dir_all(folder.parent().unwrap_or(&folder));
    }

    #[test]
    fn an_impossible_folder_is_a_clear_error() {
        // A file standing where the folder should be.
        let file = std::env::temp_dir().join(format!("sanctuary-shot-file-{}", std::process::id()));
        std::fs::write(&file, b"not a folder").expect("temp is writable");
        let error = ScreenshotPlan::check_path(&file.join("x.png")).unwrap_err();
        assert!(matches!(error, ScreenshotPathError::CannotCreateFolder { .. }));
        assert!(error.to_string().contains("cannot create the folder"), "{error}");
        let _ = std::fs::remove_file(file);
    }
}
