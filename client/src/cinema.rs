//! The cinema's screen in the client: the shared screen's state and the film showing come from
//! the node (`Event::Screen`, `Event::Film`); the film is opened off the main thread (opening
//! reads its index, which may still be arriving), decoded by a [`Player`] on its own thread,
//! and the picture due at the shared position goes onto the screen's texture each frame. A jump
//! in the shared position (a seek, a late start) seeks the player.
//!
//! `/play PATH` shares a film; `/screen play|pause|next|seek SECONDS` moves the screen for
//! whoever controls it.

use std::sync::mpsc::{Receiver, TryRecvError};

use bevy::asset::RenderAssetUsages;
use bevy::platform::cell::SyncCell;
use bevy::prelude::*;
use bevy::render::render_resource::{Extent3d, TextureDimension, TextureFormat};
use sanctuary_engine::Surface;
use sanctuary_net::films::FilmSource;
use sanctuary_net::screen::ScreenAction;
use sanctuary_net::{Event, ScreenView};
use sanctuary_video::{Film, FilmError, Limits, Picture, Player, PlayerState};

use crate::Frame;
use crate::materials::ScreenMaterial;
use crate::world::StructureView;

/// How far the player may be from the shared position before it seeks, in seconds.
const SEEK_WHEN_OFF_BY: f64 = 1.0;
/// How far ahead of the shared position a seek aims, so that the decoder arrives in time.
const SEEK_LEAD: f64 = 0.3;
/// The least time between two seeks of our own: a decoder that cannot keep up is not sent
/// seeking every frame.
const SEEK_EVERY: std::time::Duration = std::time::Duration::from_secs(3);

/// The screen as this client shows it.
#[derive(Resource, Default)]
pub struct Cinema {
    /// The shared state, as the node last said.
    pub view: Option<ScreenView>,
    /// The film showing.
    source: Option<FilmSource>,
    /// The film being opened off the main thread.
    opening: Option<SyncCell<Receiver<Result<Film, FilmError>>>>,
    player: Option<SyncCell<Player>>,
    /// Why the film cannot be shown, if it cannot.
    pub problem: Option<String>,
    /// The texture the screen shows, and its size.
    image: Option<(Handle<Image>, UVec2)>,
    /// The time of the picture on it.
    shown: Option<f64>,
    /// When we last sent the player seeking.
    sought: Option<std::time::Instant>,
}

impl Cinema {
    /// Takes what the node says about the screen.
    pub fn take(&mut self, event: &Event) {
        match event {
            Event::Screen(view) => self.view = Some(view.clone()),
            Event::Film(source) => self.open(source.clone()),
            _ => {}
        }
    }

    fn open(&mut self, source: FilmSource) {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let reading = source.clone();
        let started = std::thread::Builder::new().name("film opener".into()).spawn(move || {
            let size = reading.size();
            let _ = sender.send(Film::from_seekable(move || reading.reader(), size, Limits::default()));
        });
        self.problem = started.err().map(|error| format!("the film cannot be opened: {error}"));
        self.source = Some(source);
        self.opening = Some(SyncCell::new(receiver));
        self.player = None;
        self.shown = None;
        self.sought = None;
    }

    /// The picture due now, if it changed since the last one shown.
    fn due_picture(&mut self) -> Option<Picture> {
        if let Some(opening) = &mut self.opening {
            match opening.get().try_recv() {
                Ok(Ok(film)) => {
                    self.player = Some(SyncCell::new(Player::new(film)));
                    self.opening = None;
                }
                Ok(Err(error)) => {
                    self.problem = Some(error.to_string());
                    self.opening = None;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => self.opening = None,
            }
        }
        let view = self.view.as_ref()?;
        let (position, lead) = (view.position_now(), if view.state.clock.playing() { SEEK_LEAD } else { 0.0 });
        let player = self.player.as_mut()?.get();
        while player.take_sound().is_some() {}
        // Far from the shared position (a seek, a late start, a decoder that fell behind): seek,
        // but not again before the last seek had time to land.
        let at = self.shown.unwrap_or(0.0);
        let may_seek = self.sought.is_none_or(|sought| sought.elapsed() > SEEK_EVERY);
        if (at - position).abs() > SEEK_WHEN_OFF_BY && may_seek && !matches!(player.state(), PlayerState::Failed(_)) {
            player.seek(position + lead);
            self.sought = Some(std::time::Instant::now());
        }
        let picture = player.picture_at(position)?;
        if self.shown == Some(picture.time) {
            return None;
        }
        self.shown = Some(picture.time);
        Some(picture.clone())
    }

    /// A line saying what the screen shows, for the HUD.
    pub fn status(&self) -> Option<String> {
        let view = self.view.as_ref()?;
        let film = view.state.film()?;
        let position = view.position_now().max(0.0) as u64;
        let state = if view.state.clock.playing() { "playing" } else { "paused" };
        let mut line = format!("{} | {state} {}:{:02}", film.name, position / 60, position % 60);
        if let Some(progress) = self.source.as_ref().map(FilmSource::progress) {
            if progress.buffering {
                line.push_str(" | buffering");
            }
            if progress.held < progress.size {
                line.push_str(&format!(" | {}% here", progress.held * 100 / progress.size.max(1)));
            }
        }
        let queued = view.state.queue.len().saturating_sub(view.state.current as usize + 1);
        if queued > 0 {
            line.push_str(&format!(" | {queued} queued"));
        }
        line.push_str(if view.ours { " | you control it" } else { "" });
        if let Some(problem) = &self.problem {
            line = format!("{}: {problem}", film.name);
        }
        Some(line)
    }
}

/// The screen action typed after `/screen`.
pub fn screen_action(text: &str) -> Result<ScreenAction, String> {
    let mut words = text.split_whitespace();
    let usage = "usage: /screen play | pause | next | seek SECONDS (or M:SS)";
    match words.next() {
        Some("play") => Ok(ScreenAction::Play),
        Some("pause") => Ok(ScreenAction::Pause),
        Some("next") => Ok(ScreenAction::Next),
        Some("seek") => {
            let at = words.next().ok_or(usage)?;
            let seconds = match at.split_once(':') {
                Some((minutes, seconds)) => minutes
                    .parse::<u32>()
                    .ok()
                    .zip(seconds.parse::<f64>().ok())
                    .map(|(minutes, seconds)| f64::from(minutes) * 60.0 + seconds),
                None => at.parse::<f64>().ok(),
            };
            match seconds {
                Some(seconds) if seconds.is_finite() && seconds >= 0.0 => Ok(ScreenAction::Seek(seconds)),
                _ => Err(usage.into()),
            }
        }
        _ => Err(usage.into()),
    }
}

/// Marks a screen that shows the film's texture.
#[derive(Component)]
struct ShowingFilm;

/// Puts the picture due onto the screen's texture, and the texture onto the cinema's screen.
fn show_film(
    mut commands: Commands,
    mut cinema: ResMut<Cinema>,
    mut images: ResMut<Assets<Image>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
    screens: Query<(Entity, &StructureView), (With<MeshMaterial3d<ScreenMaterial>>, Without<ShowingFilm>)>,
) {
    let Some(picture) = cinema.due_picture() else { return };
    let size = UVec2::new(picture.width, picture.height);
    let fresh = || {
        Image::new(
            Extent3d { width: size.x, height: size.y, depth_or_array_layers: 1 },
            TextureDimension::D2,
            picture.rgba.clone(),
            TextureFormat::Rgba8UnormSrgb,
            RenderAssetUsages::RENDER_WORLD,
        )
    };
    let handle = match &cinema.image {
        Some((handle, held)) if *held == size => {
            if let Some(mut image) = images.get_mut(handle) {
                image.data = Some(picture.rgba.clone());
            }
            handle.clone()
        }
        _ => {
            let handle = images.add(fresh());
            cinema.image = Some((handle.clone(), size));
            handle
        }
    };
    for (entity, StructureView(structure)) in &screens {
        if structure.surface != Surface::Screen {
            continue;
        }
        let material =
            materials.add(StandardMaterial { base_color_texture: Some(handle.clone()), unlit: true, ..default() });
        commands
            .entity(entity)
            .remove::<MeshMaterial3d<ScreenMaterial>>()
            .insert((MeshMaterial3d(material), ShowingFilm));
    }
}

/// The cinema's systems.
pub fn plugin(app: &mut App) {
    app.init_resource::<Cinema>().add_systems(Update, show_film.in_set(Frame::Present));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screen_actions_are_read_from_what_was_typed() {
        assert_eq!(screen_action("play"), Ok(ScreenAction::Play));
        assert_eq!(screen_action(" pause "), Ok(ScreenAction::Pause));
        assert_eq!(screen_action("next"), Ok(ScreenAction::Next));
        assert_eq!(screen_action("seek 90"), Ok(ScreenAction::Seek(90.0)));
        assert_eq!(screen_action("seek 1:30.5"), Ok(ScreenAction::Seek(90.5)));
        for bad in ["", "seek", "seek -3", "seek NaN", "seek inf", "seek 1:x", "rewind"] {
            assert!(screen_action(bad).is_err(), "{bad:?} was taken");
        }
    }
}
