//! The HUD: where you are, frames per second, key help, and the names of portals in view.

use bevy::diagnostic::{DiagnosticsStore, FrameTimeDiagnosticsPlugin};
use bevy::prelude::*;
use bevy::text::FontSize;
use sanctuary_engine::RegionId;

use crate::Frame;
use crate::player::{Player, PointerLock};
use crate::world::{CurrentRegion, PortalView, RegionScoped};

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Startup, spawn_hud).add_systems(
        Update,
        (update_status, toggle_help, label_new_portals, place_portal_labels).chain().in_set(Frame::Present),
    );
}

/// Portal labels are shown only this close, in metres.
const LABEL_DISTANCE: f32 = 70.0;

const KEY_HELP: &str = "\
W A S D / arrows  walk and turn
Space / E  float up     C / Q  float down
Shift  faster           mouse  look (click to capture, Esc releases)
Enter  chat    click someone  message them    F3  copy your ticket
Walk into a ring to travel     B  build (in the city)     F1  hide this help";

#[derive(Component, Debug)]
struct StatusText;

#[derive(Component, Debug)]
struct HelpText;

/// The floating name of a portal; follows the portal entity it names. Neighbouring portals'
/// labels sit at two heights (`raised`) so that they do not cover each other.
#[derive(Component, Debug)]
struct PortalLabel {
    portal: Entity,
    raised: bool,
}

fn spawn_hud(mut commands: Commands) {
    let status_at = Node { top: Val::Px(10.0), ..default() };
    commands.spawn((StatusText, text_panel("Sanctuary", 18.0, Color::srgb(0.75, 0.95, 1.0), status_at)));
    let help_at = Node { bottom: Val::Px(10.0), ..default() };
    commands.spawn((HelpText, text_panel(KEY_HELP, 14.0, Color::srgb(0.85, 0.85, 0.95), help_at)));
    // A small crosshair in the middle of the view.
    commands.spawn((
        Node {
            position_type: PositionType::Absolute,
            left: Val::Percent(50.0),
            top: Val::Percent(50.0),
            width: Val::Px(4.0),
            height: Val::Px(4.0),
            margin: UiRect::all(Val::Px(-2.0)),
            ..default()
        },
        BackgroundColor(Color::srgba(1.0, 1.0, 1.0, 0.7)),
    ));
}

/// A block of text on a dark translucent panel by the left edge, placed by `at` (its `top` or
/// `bottom`).
fn text_panel(text: &str, size: f32, colour: Color, at: Node) -> impl Bundle {
    (
        Text::new(text),
        TextFont::from_font_size(size),
        TextColor(colour),
        BackgroundColor(Color::srgba(0.02, 0.0, 0.06, 0.6)),
        Node {
            position_type: PositionType::Absolute,
            left: Val::Px(10.0),
            padding: UiRect::axes(Val::Px(10.0), Val::Px(6.0)),
            ..at
        },
    )
}

/// Region, position, frame rate and what the mouse does.
fn update_status(
    region: Option<Res<CurrentRegion>>,
    diagnostics: Res<DiagnosticsStore>,
    lock: Res<PointerLock>,
    player: Query<&Transform, With<Player>>,
    cinema: Option<Res<crate::cinema::Cinema>>,
    lecture: Option<Res<crate::stage::Lecture>>,
    meeting: Option<Res<crate::meeting::Meeting>>,
    board: Option<Res<crate::whiteboard::Whiteboard>>,
    rooms: Option<Res<crate::private_room::Rooms>>,
    social: Option<Res<crate::network::Social>>,
    mut status: Query<&mut Text, With<StatusText>>,
) {
    let Ok(mut text) = status.single_mut() else { return };
    let here = region.map(|region| region.id());
    let region_name = here.map_or("arriving", |region| region.title());
    let fps = diagnostics
        .get(&FrameTimeDiagnosticsPlugin::FPS)
        .and_then(|fps| fps.smoothed())
        .map_or_else(|| "-- fps".to_owned(), |fps| format!("{fps:.0} fps"));
    let position = player.single().map_or(Vec3::ZERO, |transform| transform.translation);
    let mouse = if lock.locked { "mouse captured (Esc releases)" } else { "click to look around" };
    text.0 = format!(
        "SANCTUARY | {region_name}\n{fps} | x {:.0}  z {:.0}  height {:.0} m\n{mouse}",
        position.x, position.z, position.y
    );
    if let Some(social) = social.as_ref().filter(|social| social.far.people > 0 && social.far.region == here) {
        text.0.push_str(&format!("\n{} people nearby, {} further off", social.crowd.len(), social.far.people));
    }
    if let Some(screen) = cinema.as_ref().and_then(|cinema| cinema.status()) {
        text.0.push_str(&format!("\nscreen: {screen}"));
    }
    if let (Some(lecture), Some(social)) = (&lecture, &social)
        && let Some(stage) = lecture.status(|key| crate::stage::name_of(social, key))
    {
        text.0.push_str(&format!("\nstage: {stage}"));
    }
    if here == Some(RegionId::Room(sanctuary_engine::RoomKind::Meeting))
        && let Some(polls) = meeting.as_ref().and_then(|meeting| meeting.status())
    {
        text.0.push_str(&format!("\npolls: {polls}"));
    }
    if here == Some(RegionId::Room(sanctuary_engine::RoomKind::Meeting))
        && let Some(board) = &board
    {
        text.0.push_str(&format!("\nwhiteboard: {} (/board)", board.status()));
    }
    if here == Some(RegionId::Room(sanctuary_engine::RoomKind::Private))
        && let (Some(rooms), Some(social)) = (&rooms, &social)
        && let Some(line) = rooms.status(social)
    {
        text.0.push_str(&format!("\nprivate room: {line} (/room)"));
    }
}

fn toggle_help(keys: Res<ButtonInput<KeyCode>>, mut help: Query<&mut Visibility, With<HelpText>>) {
    if keys.just_pressed(KeyCode::F1) {
        for mut visibility in &mut help {
            visibility.toggle_visible_hidden();
        }
    }
}

fn label_new_portals(mut commands: Commands, portals: Query<(Entity, &PortalView), Added<PortalView>>) {
    for (entity, PortalView(portal)) in &portals {
        let [r, g, b] = portal.colour().to_f32();
        commands.spawn((
            PortalLabel {
                portal: entity,
                raised: RegionId::all().position(|region| region == portal.target).unwrap_or(0) % 2 == 1,
            },
            floating_label(portal.target.title(), 22.0, Color::srgb(r, g, b).mix(&Color::WHITE, 0.45)),
        ));
    }
}

/// A label that floats over a point of the world (see [`place_label`]); it goes with the region.
pub(crate) fn floating_label(text: impl Into<String>, size: f32, colour: Color) -> impl Bundle {
    (
        RegionScoped,
        Text::new(text),
        TextFont { font_size: FontSize::Px(size), ..default() },
        TextColor(colour),
        BackgroundColor(Color::srgba(0.0, 0.0, 0.0, 0.55)),
        Node {
            position_type: PositionType::Absolute,
            padding: UiRect::axes(Val::Px(size * 0.35), Val::Px(size * 0.12)),
            ..default()
        },
        Visibility::Hidden,
    )
}

/// Centres a floating label just above `point` on screen; hides it when `point` is out of view
/// or farther than `max_distance` metres from the eye.
pub(crate) fn place_label(
    (camera, eye): (&Camera, &GlobalTransform),
    point: Vec3,
    max_distance: f32,
    node: &mut Node,
    visibility: &mut Visibility,
    computed: &ComputedNode,
) {
    let near = eye.translation().distance(point) < max_distance;
    match camera.world_to_viewport(eye, point) {
        Ok(on_screen) if near => {
            let size = computed.size() * computed.inverse_scale_factor();
            node.left = Val::Px(on_screen.x - size.x * 0.5);
            node.top = Val::Px(on_screen.y - size.y);
            *visibility = Visibility::Inherited;
        }
        _ => *visibility = Visibility::Hidden,
    }
}

/// Puts each portal's name above its ring on screen, or hides it when out of view.
fn place_portal_labels(
    cameras: Query<(&Camera, &GlobalTransform), With<Player>>,
    portals: Query<(&PortalView, &GlobalTransform)>,
    mut labels: Query<(&PortalLabel, &mut Node, &mut Visibility, &ComputedNode)>,
) {
    let Ok(view) = cameras.single() else { return };
    for (label, mut node, mut visibility, computed) in &mut labels {
        let Ok((PortalView(portal), at)) = portals.get(label.portal) else {
            *visibility = Visibility::Hidden;
            continue;
        };
        let lift = if label.raised { 1.9 } else { 0.8 };
        let above = at.translation() + Vec3::Y * (portal.radius + lift);
        place_label(view, above, LABEL_DISTANCE, &mut node, &mut visibility, computed);
    }
}
