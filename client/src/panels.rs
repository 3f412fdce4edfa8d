//! Panels as data: what a panel says is built by plain functions into a [`PanelSpec`], and each
//! display draws the spec its own way. The desktop draws it as a screen overlay (here); the VR
//! mode draws the same specs onto textures in the world. Keeping the wording out of the drawing
//! code is what lets both show the same wallet, stall and confirmation panels.

use bevy::asset::RenderAssetUsages;
use bevy::image::ImageSampler;
use bevy::picking::hover::PickingInteraction;
use bevy::prelude::*;
use bevy::render::render_resource::{Extent3d, TextureDimension, TextureFormat};
use sanctuary_engine::RegionId;
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

/// What a panel's button does. Clicked with the mouse or the VR laser, it becomes a
/// [`PanelPressed`] message that the owning plugin carries out, exactly as its key would.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PanelAction {
    /// Open or close the wallet panel (P).
    ToggleWallet,
    /// Sync the wallet now (`/sync`).
    Sync,
    /// Show a fresh receive address (`/receive`).
    Receive,
    /// Lock the wallet (`/wallet lock`).
    Lock,
    /// Buy at the stall in reach (F).
    Buy,
    /// Pay the payment being confirmed (Y).
    Pay,
    /// Cancel the payment being confirmed (N).
    Cancel,
    /// Build mode on or off (B).
    ToggleBuild,
    /// Undo the last build edit (Ctrl+Z).
    Undo,
    /// Snap or smooth turning.
    ToggleTurning,
    /// The comfort vignette on or off.
    ToggleVignette,
    /// Standing or seated.
    ToggleStance,
    /// Point with the other hand.
    SwapHands,
    /// Mute or unmute the microphone (F4).
    ToggleMute,
    /// The open microphone or push-to-talk (F5).
    ToggleOpenMic,
    /// The next microphone this machine has (`/mic`).
    NextMicrophone,
    /// The next output this machine has (`/speaker`).
    NextOutput,
    /// Close the VR menu.
    CloseMenu,
    /// Open or close the shields panel (F6).
    ToggleShields,
    /// Move a shield to its next reach.
    CycleShield(sanctuary_engine::shields::Category),
    /// Open or close the avatar picker (F7).
    ToggleAvatars,
    /// Wear the shipped avatar with this index.
    WearShipped(u8),
    /// Wear a plain body.
    TakeOff,
    /// Show others' avatars up to the next rank.
    CycleShownRank,
    /// Open or close the cinema's panel (F8).
    ToggleCinema,
    /// Play or pause the screen (its controller).
    ScreenPlayPause,
    /// Ten seconds back.
    ScreenBack,
    /// Ten seconds on.
    ScreenOn,
    /// The next film in the queue.
    ScreenNext,
    /// Hand the screen to the person of this index among those here.
    ScreenHandOver(u8),
    /// Pause one's own view, or rejoin the room's.
    OwnView,
    /// Share the film of this index among those found in the Videos folder.
    ShareFound(u8),
    /// Open or close the lecture hall's panel (F9).
    ToggleStage,
    /// The slide before (the presenter).
    StagePrevious,
    /// The next slide (the presenter).
    StageNext,
    /// Give the floor to the hand of this index in the queue.
    StageFloor(u8),
    /// Take the floor back.
    StageTakeFloor,
    /// Hand the stage to the person of this index among those here.
    StageHandOver(u8),
    /// Raise one's hand.
    HandUp,
    /// Lower one's hand (or give the floor back).
    HandDown,
    /// Present the deck (a folder of images or a PDF) of this index among those found in the
    /// Pictures folder.
    PresentFound(u8),
    /// Open or close the market directory (F10).
    ToggleDirectory,
    /// Go to the stall of this index in the directory's list.
    DirectoryGo(u8),
    /// Open or close the meeting room's polls (F11).
    TogglePolls,
    /// Vote in the poll of this index (as listed) for the option of this index.
    PollVote(u8, u8),
    /// Export the results of the poll of this index.
    PollExport(u8),
    /// Take the whiteboard pen of this index (see `whiteboard::PENS`).
    BoardPen(u8),
    /// Erase one's own strokes from the whiteboard.
    BoardErase,
}

/// Whether a panel that opens by itself in `room` (as the room's board) opens now: we have just
/// come in. `opened_in` remembers the visit, so that a panel closed there stays closed until
/// we leave and come back.
pub fn opens_itself_in(room: RegionId, here: Option<RegionId>, opened_in: &mut Option<RegionId>) -> bool {
    if here == Some(room) && *opened_in != here {
        *opened_in = here;
        return true;
    }
    if here != *opened_in && here.is_some() {
        *opened_in = None;
    }
    false
}

/// A panel button was clicked.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub struct PanelPressed(pub PanelAction);

/// One panel's content.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelSpec {
    /// The heading.
    pub title: String,
    /// The lines, top to bottom.
    pub lines: Vec<(Tone, String)>,
    /// A QR code to show under the lines.
    pub qr: Option<QrMatrix>,
    /// Buttons under the lines, left to right.
    pub buttons: Vec<(String, PanelAction)>,
}

impl PanelSpec {
    /// An empty panel with a heading.
    pub fn new(title: impl Into<String>) -> Self {
        Self { title: title.into(), lines: Vec::new(), qr: None, buttons: Vec::new() }
    }

    /// Adds a button.
    pub fn button(&mut self, label: impl Into<String>, action: PanelAction) -> &mut Self {
        self.buttons.push((label.into(), action));
        self
    }

    /// Whether the panel has a button for `action`.
    pub fn offers(&self, action: PanelAction) -> bool {
        self.buttons.iter().any(|(_, offered)| *offered == action)
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
    /// Left of the middle, under the status line: the shields and friends.
    Shields,
    /// Right, under the network status: the avatar picker.
    Avatars,
    /// Right, lower down: the cinema's screen.
    Cinema,
    /// Right, lower down: the lecture hall's stage.
    Stage,
    /// Right, lower down: the market directory.
    Directory,
    /// Right, lower down: the meeting room's polls.
    Polls,
}

/// The spec a desktop panel shows now (`None` hides it).
#[derive(Component, Debug, Default)]
pub struct PanelContent(pub Option<PanelSpec>);

/// The drawn spec, to redraw only on change.
#[derive(Component, Debug, Default)]
struct Drawn(Option<PanelSpec>);

/// A drawn button: clicking it (mouse or laser) sends its action.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct PanelButton(pub PanelAction);

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Startup, spawn_panels)
        .add_systems(Update, (draw_panels, light_buttons).in_set(crate::Frame::Present))
        .add_observer(click_button);
}

/// A click on a panel button becomes its action. The mouse counts only while it is free: with
/// the pointer captured for looking around, the hidden cursor must not press a button (above
/// all not "pay").
fn click_button(
    click: On<Pointer<Click>>,
    buttons: Query<&PanelButton>,
    lock: Res<crate::player::PointerLock>,
    mut pressed: MessageWriter<PanelPressed>,
) {
    let Ok(PanelButton(action)) = buttons.get(click.entity) else { return };
    if click.pointer_id == bevy::picking::pointer::PointerId::Mouse && lock.locked {
        return;
    }
    if click.button == PointerButton::Primary {
        pressed.write(PanelPressed(*action));
    }
}

fn spawn_panels(mut commands: Commands) {
    for slot in [
        PanelSlot::Wallet,
        PanelSlot::Stall,
        PanelSlot::Confirm,
        PanelSlot::Shields,
        PanelSlot::Avatars,
        PanelSlot::Cinema,
        PanelSlot::Stage,
        PanelSlot::Directory,
        PanelSlot::Polls,
    ] {
        let at = match slot {
            PanelSlot::Wallet => {
                Node { left: Val::Px(12.0), top: Val::Px(90.0), max_width: Val::Px(570.0), ..default() }
            }
            // Right, under the network status: beside the wallet panel, never over it.
            PanelSlot::Stall => Node { right: Val::Px(10.0), top: Val::Px(84.0), width: Val::Px(360.0), ..default() },
            PanelSlot::Avatars => Node { right: Val::Px(10.0), top: Val::Px(84.0), width: Val::Px(420.0), ..default() },
            // Lower than the avatar picker: the network status above it grows with voice's lines.
            PanelSlot::Cinema | PanelSlot::Stage | PanelSlot::Directory | PanelSlot::Polls => {
                Node { right: Val::Px(10.0), top: Val::Px(200.0), width: Val::Px(460.0), ..default() }
            }
            PanelSlot::Shields => {
                Node { left: Val::Px(12.0), top: Val::Px(90.0), max_width: Val::Px(600.0), ..default() }
            }
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
        commands.spawn((
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
        ));
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
    mut panels: Query<(Entity, &PanelContent, &mut Drawn, &mut Visibility)>,
    mut images: ResMut<Assets<Image>>,
) {
    for (entity, content, mut drawn, mut visibility) in &mut panels {
        if content.0 == drawn.0 {
            continue;
        }
        drawn.0 = content.0.clone();
        commands.entity(entity).despawn_children();
        let Some(spec) = &content.0 else {
            *visibility = Visibility::Hidden;
            continue;
        };
        *visibility = Visibility::Inherited;
        commands.entity(entity).with_children(|panel| draw_spec(panel, spec, 14.0, &mut images));
    }
}

/// Draws a spec into `panel` (a UI node laid out as a row): the heading and lines in their tones
/// with the buttons under them, and the QR code on the right. The desktop overlays and the VR
/// panel both draw with this, at their own text size.
pub fn draw_spec(panel: &mut ChildSpawnerCommands<'_>, spec: &PanelSpec, size: f32, images: &mut Assets<Image>) {
    panel
        .spawn(Node { flex_direction: FlexDirection::Column, row_gap: Val::Px(size * 0.6), ..default() })
        .with_children(|column| {
            column
                .spawn((
                    Text::new(spec.title.clone()),
                    TextFont { font_size: FontSize::Px(size), ..default() },
                    TextColor(Color::WHITE),
                ))
                .with_children(|spans| {
                    for (tone, line) in &spec.lines {
                        spans.spawn((
                            TextSpan::new(format!("\n{line}")),
                            TextFont { font_size: FontSize::Px(size), ..default() },
                            TextColor(tone_colour(*tone)),
                        ));
                    }
                });
            if spec.buttons.is_empty() {
                return;
            }
            column
                .spawn(Node {
                    flex_direction: FlexDirection::Row,
                    flex_wrap: FlexWrap::Wrap,
                    column_gap: Val::Px(size * 0.6),
                    row_gap: Val::Px(size * 0.6),
                    ..default()
                })
                .with_children(|row| {
                    for (label, action) in &spec.buttons {
                        row.spawn((
                            PanelButton(*action),
                            Button,
                            PickingInteraction::default(),
                            Node {
                                padding: UiRect::axes(Val::Px(size * 0.9), Val::Px(size * 0.45)),
                                border: UiRect::all(Val::Px(2.0)),
                                ..default()
                            },
                            BorderColor::all(Color::srgb(0.3, 0.9, 1.0)),
                            BackgroundColor(Color::srgb(0.04, 0.12, 0.22)),
                        ))
                        .with_child((
                            Text::new(label.clone()),
                            TextFont { font_size: FontSize::Px(size), ..default() },
                            TextColor(Color::WHITE),
                            Pickable::IGNORE,
                        ));
                    }
                });
        });
    if let Some(qr) = &spec.qr {
        panel.spawn((
            ImageNode::new(images.add(qr_image(qr))),
            Node { width: Val::Px(size * 10.7), height: Val::Px(size * 10.7), ..default() },
        ));
    }
}

/// Buttons light up under the mouse or the laser.
fn light_buttons(
    mut buttons: Query<(&PickingInteraction, &mut BackgroundColor), (With<PanelButton>, Changed<PickingInteraction>)>,
) {
    for (interaction, mut background) in &mut buttons {
        background.0 = match interaction {
            PickingInteraction::Pressed => Color::srgb(0.2, 0.55, 0.75),
            PickingInteraction::Hovered => Color::srgb(0.08, 0.3, 0.45),
            PickingInteraction::None => Color::srgb(0.04, 0.12, 0.22),
        };
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
