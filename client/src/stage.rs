//! The lecture hall's stage in the client: the shared state and the slide showing come from the
//! node (`Event::Stage`, `Event::Slide`); the slide is decoded off the main thread, within
//! limits (a slide's file may come from anyone), and goes onto the hall's screen at its own
//! shape. The status line says who presents, which slide shows, whose hands are up and who has
//! the floor.
//!
//! `/slides FOLDER` presents; `/stage next|prev|N|floor NAME|give NAME` moves the stage for its
//! presenter; `/hand` raises one's hand (see `stage_command`).

use std::sync::mpsc::{Receiver, TryRecvError};

use bevy::asset::RenderAssetUsages;
use bevy::platform::cell::SyncCell;
use bevy::prelude::*;
use bevy::render::render_resource::{Extent3d, TextureDimension, TextureFormat};
use sanctuary_engine::{PublicKey, RegionId, RoomKind, Surface};
use sanctuary_net::{Event, StageView};

use crate::Frame;
use crate::materials::ScreenMaterial;
use crate::network::Social;
use crate::stage_command::MAX_SLIDE_SIDE;
use crate::world::{CurrentRegion, StructureView};

/// The most memory a slide may take decoded (a 8192 × 8192 slide is 256 MiB as RGBA).
const MAX_SLIDE_ALLOC: u64 = 300 << 20;

/// A slide decoded: its hash, width, height and RGBA pixels.
type Decoded = ([u8; 32], Result<(u32, u32, Vec<u8>), String>);

/// The stage as this client shows it.
#[derive(Resource, Default)]
pub struct Lecture {
    /// The shared state, as the node last said.
    pub view: Option<StageView>,
    /// The slide being decoded off the main thread.
    decoding: Option<SyncCell<Receiver<Decoded>>>,
    /// The newest slide that came while another was decoding: one decoder at a time, however
    /// fast a presenter pages through large slides.
    waiting: Option<([u8; 32], Vec<u8>)>,
    /// A slide decoded and not yet on the screen.
    ready: Option<([u8; 32], UVec2, Vec<u8>)>,
    /// The slide on the screen.
    shown: Option<[u8; 32]>,
    /// The texture the screen shows, and its size.
    image: Option<(Handle<Image>, UVec2)>,
    /// Why the slide cannot be shown, if it cannot.
    pub problem: Option<String>,
}

impl Lecture {
    /// Takes what the node says about the stage.
    pub fn take(&mut self, event: &Event) {
        match event {
            Event::Stage(view) => self.view = Some(view.clone()),
            Event::Slide { hash, bytes } => self.decode(*hash, bytes.clone()),
            _ => {}
        }
    }

    fn decode(&mut self, hash: [u8; 32], bytes: Vec<u8>) {
        if self.decoding.is_some() {
            self.waiting = Some((hash, bytes));
            return;
        }
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let started = std::thread::Builder::new().name("slide decoder".into()).spawn(move || {
            let _ = sender.send((hash, decode_slide(&bytes)));
        });
        self.problem = started.err().map(|error| format!("the slide cannot be decoded: {error}"));
        self.decoding = Some(SyncCell::new(receiver));
    }

    /// The slide decoded, when it is the one showing.
    fn take_decoded(&mut self) {
        let Some(receiver) = self.decoding.as_mut() else { return };
        let received = match receiver.get().try_recv() {
            Ok(decoded) => Some(decoded),
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => None,
        };
        self.decoding = None;
        if let Some((hash, bytes)) = self.waiting.take() {
            self.decode(hash, bytes);
        }
        let Some((hash, result)) = received else { return };
        let showing = self.view.as_ref().and_then(|view| view.state.slide).map(|slide| slide.hash);
        if showing != Some(hash) {
            return;
        }
        match result {
            Ok((width, height, rgba)) => {
                self.problem = None;
                self.ready = Some((hash, UVec2::new(width, height), rgba));
            }
            Err(problem) => self.problem = Some(problem),
        }
    }

    /// The stage in a line for the status: who presents, the slide, hands and the floor;
    /// names as `name_of` gives them.
    pub fn status(&self, name_of: impl Fn(&[u8; 32]) -> String) -> Option<String> {
        let view = self.view.as_ref()?;
        let state = &view.state;
        let mut line =
            if view.ours { "you present".to_owned() } else { format!("{} presents", name_of(&state.presenter)) };
        if state.slides == 0 {
            line.push_str(", no slides yet");
        } else {
            line.push_str(&format!(", slide {} of {}", u32::from(state.current) + 1, state.slides));
        }
        if let Some(problem) = &self.problem {
            line.push_str(&format!(" ({problem})"));
        } else if state.slide.is_some() && self.shown != state.slide.map(|slide| slide.hash) {
            line.push_str(" (arriving)");
        }
        if !state.hands.is_empty() {
            let hands: Vec<String> = state.hands.iter().take(5).map(&name_of).collect();
            let more = state.hands.len().saturating_sub(5);
            let more = if more > 0 { format!(" and {more} more") } else { String::new() };
            line.push_str(&format!(" | hands up: {}{more}", hands.join(", ")));
        }
        if let Some(floor) = &state.floor {
            line.push_str(&format!(" | the floor: {}", name_of(floor)));
        }
        Some(line)
    }
}

/// The name the status gives a key: "you", the name of someone here, or the key's beginning.
pub fn name_of(social: &Social, key: &[u8; 32]) -> String {
    let Ok(key) = PublicKey::from_bytes(*key) else { return "someone".into() };
    if social.me == Some(key) {
        return "you".into();
    }
    social.crowd.get(&key).map_or_else(|| key.short(), |person| person.name.clone())
}

/// Decodes a slide's file within the limits: at most [`MAX_SLIDE_SIDE`] a side and
/// [`MAX_SLIDE_ALLOC`] of memory, whatever its header claims.
fn decode_slide(bytes: &[u8]) -> Result<(u32, u32, Vec<u8>), String> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|error| format!("the slide cannot be read: {error}"))?;
    if !matches!(reader.format(), Some(image::ImageFormat::Png | image::ImageFormat::Jpeg)) {
        return Err("the slide is not a PNG or JPEG image".into());
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SLIDE_SIDE);
    limits.max_image_height = Some(MAX_SLIDE_SIDE);
    limits.max_alloc = Some(MAX_SLIDE_ALLOC);
    reader.limits(limits);
    let picture = reader.decode().map_err(|error| format!("the slide cannot be shown: {error}"))?;
    let rgba = picture.to_rgba8();
    Ok((rgba.width(), rgba.height(), rgba.into_raw()))
}

/// Marks a screen that shows the slides' texture.
#[derive(Component)]
struct ShowingSlide;

fn in_hall(region: Option<&CurrentRegion>) -> bool {
    region.is_some_and(|region| region.id() == RegionId::Room(RoomKind::LectureHall))
}

/// Puts the slide decoded onto the texture, the texture onto the hall's screen, and a blank
/// when the stage shows no slide.
fn show_slide(
    mut commands: Commands,
    mut lecture: ResMut<Lecture>,
    region: Option<Res<CurrentRegion>>,
    mut images: ResMut<Assets<Image>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
    screens: Query<(Entity, &StructureView), (With<MeshMaterial3d<ScreenMaterial>>, Without<ShowingSlide>)>,
) {
    if !in_hall(region.as_deref()) {
        // The screen went with the hall: the next visit starts afresh.
        if lecture.image.is_some() || lecture.view.is_some() {
            *lecture = Lecture::default();
        }
        return;
    }
    lecture.take_decoded();
    // Screens that do not show the slides yet (the hall's come in as it is built) show them.
    if let Some((handle, _)) = &lecture.image {
        for (entity, StructureView(structure)) in &screens {
            if structure.surface == Surface::Screen {
                let material = materials.add(crate::materials::picture_on_screen(handle.clone()));
                commands
                    .entity(entity)
                    .remove::<MeshMaterial3d<ScreenMaterial>>()
                    .insert((MeshMaterial3d(material), ShowingSlide));
            }
        }
    }
    let blank = lecture.shown.is_some() && lecture.view.as_ref().is_some_and(|view| view.state.slide.is_none());
    let (hash, size, rgba) = match lecture.ready.take() {
        Some(ready) => ready,
        // Nothing to show: a dark 16:9 screen.
        None if blank => ([0; 32], UVec2::new(16, 9), [24, 26, 30, 255].repeat(16 * 9)),
        None => return,
    };
    lecture.shown = (hash != [0; 32]).then_some(hash);
    let picture = Image::new(
        Extent3d { width: size.x, height: size.y, depth_or_array_layers: 1 },
        TextureDimension::D2,
        rgba,
        TextureFormat::Rgba8UnormSrgb,
        RenderAssetUsages::RENDER_WORLD,
    );
    // One image for every slide: the screen's material keeps pointing at it.
    let handle = match &lecture.image {
        Some((handle, _)) => {
            let handle = handle.clone();
            if images.insert(&handle, picture).is_err() {
                warn!("the slide could not be replaced");
            }
            handle
        }
        None => images.add(picture),
    };
    // The screens take it up next frame.
    lecture.image = Some((handle, size));
}

/// Fits the hall's screen to the slide's shape (as the cinema's does to a film's).
fn fit_screen(lecture: Res<Lecture>, mut screens: Query<(&StructureView, &mut Transform), With<ShowingSlide>>) {
    let Some((_, size)) = &lecture.image else { return };
    for (StructureView(structure), mut transform) in &mut screens {
        let full = structure.placement.scale;
        let scale = crate::cinema::fitted(full.truncate(), *size).extend(full.z);
        if transform.scale != scale {
            transform.scale = scale;
        }
    }
}

/// The stage's systems.
pub fn plugin(app: &mut App) {
    app.init_resource::<Lecture>().add_systems(Update, (show_slide, fit_screen).chain().in_set(Frame::Present));
}

#[cfg(test)]
mod tests {
    use super::*;
    use sanctuary_net::stage::{SlideRef, StageAction, StageState};

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = std::io::Cursor::new(Vec::new());
        image::RgbImage::from_pixel(width, height, image::Rgb([200, 10, 10]))
            .write_to(&mut bytes, image::ImageFormat::Png)
            .expect("encodes");
        bytes.into_inner()
    }

    #[test]
    fn slides_decode_within_limits() {
        let (width, height, rgba) = decode_slide(&png(40, 30)).expect("decodes");
        assert_eq!((width, height, rgba.len()), (40, 30, 40 * 30 * 4));
        assert_eq!(&rgba[..4], &[200, 10, 10, 255]);
        assert!(decode_slide(b"not an image at all").is_err());
        let mut cut = png(40, 30);
        cut.truncate(cut.len() / 2);
        assert!(decode_slide(&cut).is_err(), "a slide cut short");
        // A PNG whose header claims more than a slide may be is refused before it is decoded.
        let mut claims = png(1, 1);
        claims[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        assert!(decode_slide(&claims).is_err());
        let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";
        assert!(decode_slide(gif).is_err_and(|problem| problem.contains("PNG or JPEG")));
    }

    #[test]
    fn one_slide_decodes_at_a_time_and_only_the_newest_waits() {
        let mut lecture = Lecture::default();
        for seed in 1..=5u8 {
            lecture.take(&Event::Slide { hash: [seed; 32], bytes: png(400, 300) });
        }
        assert!(lecture.decoding.is_some());
        assert_eq!(lecture.waiting.as_ref().map(|(hash, _)| *hash), Some([5; 32]), "the newest waits, no others");
        // The first ends, the newest starts, and nothing is left waiting.
        while lecture.waiting.is_some() {
            lecture.take_decoded();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(lecture.decoding.is_some(), "the newest is decoding");
    }

    #[test]
    fn the_status_names_the_presenter_the_slide_the_hands_and_the_floor() {
        let deck: Vec<SlideRef> = (0..4).map(|seed| SlideRef { hash: [seed; 32], bytes: 10 }).collect();
        let state = StageState::new([1; 32]).apply(&StageAction::Present(deck.clone()), &[]).expect("presents");
        let state = state.apply(&StageAction::Next, &deck).expect("next");
        let state = state.hand([2; 32], true).expect("raised");
        let state = state.hand([3; 32], true).expect("raised");
        let state = state.apply(&StageAction::GiveFloor([3; 32]), &deck).expect("floor");
        let lecture = Lecture {
            view: Some(StageView { region: RegionId::Room(RoomKind::LectureHall), state, ours: false }),
            ..Lecture::default()
        };
        let names = |key: &[u8; 32]| ["?", "Ada", "Bo", "Cy"][usize::from(key[0]).min(3)].to_owned();
        assert_eq!(
            lecture.status(names).as_deref(),
            Some("Ada presents, slide 2 of 4 (arriving) | hands up: Bo | the floor: Cy")
        );
        assert_eq!(Lecture::default().status(names), None);
    }
}
