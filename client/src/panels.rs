//! Panels as data: what a panel says is built by plain functions into a [`PanelSpec`], and each
//! display draws the spec its own way. The desktop draws it as a screen overlay (here); the VR
//! mode draws the same specs onto textures in the world. Keeping the wording out of the drawing
//! code is what lets both show the same wallet, stall and confirmation panels.

use bevy::asset::RenderAssetUsages;
use bevy::image::ImageSampler;
use bevy::prelude::*;
use bevy::render::render_resource::{Extent3d, TextureDimension, TextureFormat};
use sanctuary_wallet::QrMatrix;

/// How a line should look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Ordinary text.
    Plain,
    /// Something that went well or a figure to notice.
    Good,
    /// Something that needs the person's attention.
    Warn,
    /// What keys or commands do.
    Hint,
}

/// One panel's content.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelSpec {
    /// The heading.
    pub title: String,
    /// The lines, top to bottom.
    pub lines: Vec<(Tone, String)>,
    /// A QR code to show under the lines.
    pub qr: Option<QrMatrix>,
}

impl PanelSpec {
    /// An empty panel with a heading.
    pub fn new(title: impl Into<String>) -> Self {
        Self { title: title.into(), lines: Vec::new(), qr: None }
    }

    /// Adds a line.
    pub fn line(&mut self, tone: Tone, text: impl Into<String>) -> &mut Self {
        self.lines.push((tone, text.into()));
        self
    }

    /// All the text, for tests and logs.
    pub fn text(&self) -> String {
        let mut text = self.title.clone();
        for (_, line) in &self.lines {
            text.push('\n');
            text.push_str(line);
        }
        text
    }
}

/// Where a desktop panel sits on the screen.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanelSlot {
    /// Left, under the status line: the wallet.
    Wallet,
    /// Centre, lower half: a stall's offer.
    Stall,
    /// The middle of the screen: a payment to confirm.
    Confirm,
}

/// The spec a desktop panel shows now (`None` hides it).
#[derive(Component, Debug, Default)]
pub struct PanelContent(pub Option<PanelSpec>);

#[derive(Component, Debug)]
struct PanelBody;

#[derive(Component, Debug)]
struct PanelQr;

/// The drawn spec, to redraw only on change.
#[derive(Component, Debug, Default)]
struct Drawn(Option<PanelSpec>);

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Startup, spawn_panels).add_systems(Update, draw_panels.in_set(crate::Frame::Present));
}

fn spawn_panels(mut commands: Commands) {
    for slot in [PanelSlot::Wallet, PanelSlot::Stall, PanelSlot::Confirm] {
        let at = match slot {
            PanelSlot::Wallet => {
                Node { left: Val::Px(12.0), top: Val::Px(90.0), max_width: Val::Px(570.0), ..default() }
            }
            // Right, under the network status: beside the wallet panel, never over it.
            PanelSlot::Stall => Node { right: Val::Px(10.0), top: Val::Px(84.0), width: Val::Px(360.0), ..default() },
            PanelSlot::Confirm => Node {
                left: Val::Percent(50.0),
                top: Val::Percent(30.0),
                margin: UiRect::left(Val::Px(-230.0)),
                width: Val::Px(460.0),
                ..default()
            },
        };
        let border = match slot {
            PanelSlot::Confirm => Color::srgb(1.0, 0.75, 0.2),
            _ => Color::srgb(0.3, 0.9, 1.0),
        };
        commands
            .spawn((
                slot,
                PanelContent::default(),
                Drawn::default(),
                Node {
                    position_type: PositionType::Absolute,
                    // Text on the left, a QR code (when there is one) on the right.
                    flex_direction: FlexDirection::Row,
                    align_items: AlignItems::FlexStart,
                    padding: UiRect::all(Val::Px(10.0)),
                    column_gap: Val::Px(12.0),
                    border: UiRect::all(Val::Px(2.0)),
                    ..at
                },
                BorderColor::all(border),
                BackgroundColor(Color::srgba(0.01, 0.02, 0.07, 0.92)),
                // Above the labels that float over the world.
                GlobalZIndex(10),
                Visibility::Hidden,
            ))
            .with_children(|panel| {
                panel.spawn((
                    PanelBody,
                    Text::new(""),
                    TextFont { font_size: FontSize::Px(14.0), ..default() },
                    TextColor(Color::srgb(0.9, 0.95, 1.0)),
                ));
                panel.spawn((
                    PanelQr,
                    ImageNode::default(),
                    Node { width: Val::Px(150.0), height: Val::Px(150.0), display: Display::None, ..default() },
                ));
            });
    }
}

fn tone_colour(tone: Tone) -> Color {
    match tone {
        Tone::Plain => Color::srgb(0.9, 0.95, 1.0),
        Tone::Good => Color::srgb(0.45, 1.0, 0.6),
        Tone::Warn => Color::srgb(1.0, 0.7, 0.3),
        Tone::Hint => Color::srgb(0.6, 0.7, 0.85),
    }
}

fn draw_panels(
    mut commands: Commands,
    mut panels: Query<(&PanelContent, &mut Drawn, &mut Visibility, &Children), Without<PanelQr>>,
    bodies: Query<Entity, With<PanelBody>>,
    mut qrs: Query<(&mut ImageNode, &mut Node), With<PanelQr>>,
    mut images: ResMut<Assets<Image>>,
) {
    for (content, mut drawn, mut visibility, children) in &mut panels {
        if content.0 == drawn.0 {
            continue;
        }
        drawn.0 = content.0.clone();
        let Some(spec) = &content.0 else {
            *visibility = Visibility::Hidden;
            continue;
        };
        *visibility = Visibility::Inherited;
        for child in children.iter() {
            if let Ok(body) = bodies.get(child) {
                // The heading, then one span per line in its tone.
                let mut body = commands.entity(body);
                body.despawn_children();
                body.insert(Text::new(spec.title.clone()));
                body.insert(TextColor(Color::WHITE));
                body.with_children(|spans| {
                    for (tone, line) in &spec.lines {
                        spans.spawn((
                            TextSpan::new(format!("\n{line}")),
                            TextFont { font_size: FontSize::Px(14.0), ..default() },
                            TextColor(tone_colour(*tone)),
                        ));
                    }
                });
            }
            if let Ok((mut image, mut node)) = qrs.get_mut(child) {
                match &spec.qr {
                    Some(qr) => {
                        image.image = images.add(qr_image(qr));
                        node.display = Display::Flex;
                    }
                    None => node.display = Display::None,
                }
            }
        }
    }
}

/// A QR code as an image: black modules on white with the standard four-module quiet zone, one
/// pixel per module, sampled without smoothing so it stays sharp at any size.
pub fn qr_image(qr: &QrMatrix) -> Image {
    let quiet = 4;
    let side = qr.width + 2 * quiet;
    let mut pixels = vec![255u8; side * side * 4];
    for y in 0..qr.width {
        for x in 0..qr.width {
            if qr.dark.get(y * qr.width + x).copied().unwrap_or(false) {
                let at = ((y + quiet) * side + x + quiet) * 4;
                pixels[at..at + 3].copy_from_slice(&[0, 0, 0]);
            }
        }
    }
    let size = Extent3d { width: side as u32, height: side as u32, depth_or_array_layers: 1 };
    let mut image = Image::new(
        size,
        TextureDimension::D2,
        pixels,
        TextureFormat::Rgba8UnormSrgb,
        RenderAssetUsages::MAIN_WORLD | RenderAssetUsages::RENDER_WORLD,
    );
    image.sampler = ImageSampler::nearest();
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_images_have_a_quiet_zone_and_dark_modules() {
        let qr = QrMatrix::encode("bitcoin:bcrt1qexample").expect("encodes");
        let image = qr_image(&qr);
        let side = qr.width + 8;
        assert_eq!(image.width() as usize, side);
        let data = image.data.as_ref().expect("pixels");
        assert!(data[..side * 4 * 4].iter().all(|byte| *byte == 255), "the top quiet zone is white");
        let dark = data.chunks(4).filter(|pixel| pixel[0] == 0).count();
        assert_eq!(dark, qr.dark.iter().filter(|dark| **dark).count());
    }
}
