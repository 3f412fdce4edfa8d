//! The client's own materials, drawn by the WGSL shaders in `shaders/`: the neon grid and the
//! screens. The shaders are compiled into the binary, so the client runs from any directory.

use bevy::asset::uuid_handle;
use bevy::prelude::*;
use bevy::render::render_resource::AsBindGroup;
use bevy::shader::ShaderRef;

const NEON_GRID_SHADER: Handle<Shader> = uuid_handle!("3c9f6d0e-5b1a-4f2e-9a7d-8e4b2c1f0a11");
const SCREEN_SHADER: Handle<Shader> = uuid_handle!("7a2e4c19-0d3b-4e8f-b6a5-1c9d8e7f6a22");

pub(super) fn plugin(app: &mut App) {
    let mut shaders = app.world_mut().resource_mut::<Assets<Shader>>();
    // Inserting under a fixed id cannot fail; an error here would mean Bevy changed the API.
    for (handle, source, path) in [
        (&NEON_GRID_SHADER, include_str!("../../shaders/neon_grid.wgsl"), "shaders/neon_grid.wgsl"),
        (&SCREEN_SHADER, include_str!("../../shaders/screen.wgsl"), "shaders/screen.wgsl"),
    ] {
        if let Err(error) = shaders.insert(handle.id(), Shader::from_wgsl(source, path)) {
            error!("could not register {path}: {error}");
        }
    }
    app.add_plugins((MaterialPlugin::<NeonGridMaterial>::default(), MaterialPlugin::<ScreenMaterial>::default()));
}

/// The glowing grid of streets and parcels (`shaders/neon_grid.wgsl`).
#[derive(Asset, TypePath, AsBindGroup, Debug, Clone)]
pub struct NeonGridMaterial {
    /// Parcel borders.
    #[uniform(0)]
    pub line_colour: LinearRgba,
    /// Street edges and pulses.
    #[uniform(0)]
    pub street_colour: LinearRgba,
    /// The ground.
    #[uniform(0)]
    pub base_colour: LinearRgba,
    /// x: parcel size, y: street width, z: parcels per block side.
    #[uniform(0)]
    pub dims: Vec4,
    /// rgb: fog colour, w: visibility in metres.
    #[uniform(0)]
    pub fog: Vec4,
}

impl Material for NeonGridMaterial {
    fn fragment_shader() -> ShaderRef {
        NEON_GRID_SHADER.into()
    }
}

/// An unlit material showing `picture` on a screen. Screens are cuboids, whose front face puts
/// the texture's first row at the bottom, so the picture is flipped to stand upright.
pub fn picture_on_screen(picture: Handle<Image>) -> StandardMaterial {
    StandardMaterial { base_color_texture: Some(picture), unlit: true, ..default() }.flipped(false, true)
}

/// What a screen shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScreenShows {
    /// A film (the cinema).
    Film,
    /// Slides (the lecture hall).
    Slides,
    /// A dashboard (the meeting room).
    Display,
}

/// A screen with a moving picture (`shaders/screen.wgsl`).
#[derive(Asset, TypePath, AsBindGroup, Debug, Clone)]
pub struct ScreenMaterial {
    /// The main colour.
    #[uniform(0)]
    pub tint: LinearRgba,
    /// x: what it shows (0 film, 1 slides, 2 display), y: brightness.
    #[uniform(0)]
    pub mode: Vec4,
}

impl ScreenMaterial {
    /// A screen showing `shows` in `tint`, `brightness` times as bright as white paper.
    pub fn new(shows: ScreenShows, tint: LinearRgba, brightness: f32) -> Self {
        let mode = match shows {
            ScreenShows::Film => 0.0,
            ScreenShows::Slides => 1.0,
            ScreenShows::Display => 2.0,
        };
        Self { tint, mode: Vec4::new(mode, brightness, 0.0, 0.0) }
    }
}

impl Material for ScreenMaterial {
    fn fragment_shader() -> ShaderRef {
        SCREEN_SHADER.into()
    }
}
