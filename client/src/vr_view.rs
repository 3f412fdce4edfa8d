//! What a person in a headset sees of their own input: their hands, the laser, the teleport
//! arc, the comfort vignette, and the menu panel floating in the world.
//!
//! The menu panel is Bevy UI rendered into a texture on a quad. It draws the same
//! [`PanelSpec`]s as the desktop overlays (wallet, stall, payment confirmation) with the same
//! [`draw_spec`], under the VR menu's own spec. The laser drives a picking pointer on that
//! texture, so its buttons are clicked by the same observer as the desktop's.
//!
//! `--vr-preview` runs all of this in the window without a headset: the head stands still, the
//! mouse aims the right hand's laser, left click is the trigger and right click the grip.

use bevy::asset::RenderAssetUsages;
use bevy::asset::uuid::Uuid;
use bevy::camera::{ImageRenderTarget, NormalizedRenderTarget, RenderTarget};
use bevy::picking::pointer::{Location, PointerAction, PointerButton, PointerId, PointerInput};
use bevy::prelude::*;
use bevy::render::render_resource::{Extent3d, TextureDimension, TextureFormat};
use bevy::window::PrimaryWindow;

use crate::Frame;
use crate::actions::{
    Actions, Comfort, Controllers, InputMode, LaserOnPanel, ReadDevices, Rig, Side, Stance, Turning, VrMenu,
};
use crate::build::BuildMode;
use crate::locomotion::{Teleport, Vignette};
use crate::panels::{PanelAction, PanelContent, PanelSlot, PanelSpec, Tone, draw_spec};
use crate::player::Player;
use crate::voice::VoiceState;
use crate::world::CurrentRegion;

/// The menu panel's texture, pixels.
pub const PANEL_PIXELS: UVec2 = UVec2::new(1024, 768);
/// The menu panel's size in the world, metres.
pub const PANEL_SIZE: Vec2 = Vec2::new(0.8, 0.6);
/// How far in front of the eyes the panel opens, metres.
const PANEL_DISTANCE: f32 = 0.9;
/// How far the person may walk from the panel before it follows.
const PANEL_LEASH: f32 = 2.5;
/// How far the laser reaches when it meets nothing, metres.
const LASER_REACH: f32 = 8.0;
/// The laser's picking pointer.
const LASER: PointerId = PointerId::Custom(Uuid::from_u128(0x5a4c_7661_6e63_7475_6172_795f_6c61_7372));

/// Whether the window previews VR without a headset (`--vr-preview`).
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq)]
pub struct VrPreview;

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Startup, (spawn_hands, spawn_vignette, spawn_menu_panel))
        .add_systems(
            Update,
            (
                simulate_controllers.run_if(resource_exists::<VrPreview>).before(ReadDevices),
                aim_laser.after(ReadDevices),
            )
                .in_set(Frame::Input),
        )
        .add_systems(
            Update,
            (place_hands, place_vignette, place_menu_panel, fill_menu_panel, draw_laser_and_arc).in_set(Frame::Present),
        );
}

/// The VR menu's own panel: what the controllers do, the microphone (when voice is on), and
/// the comfort settings as buttons.
pub fn menu_spec(comfort: &Comfort, build_on: bool, in_city: bool, mic: Option<&VoiceState>) -> PanelSpec {
    let mut spec = PanelSpec::new("MENU");
    let (point, walk) = match comfort.dominant {
        Side::Right => ("right", "left"),
        Side::Left => ("left", "right"),
    };
    spec.line(Tone::Hint, format!("{walk} stick: walk (press in: fast) | Y up, X down"));
    spec.line(Tone::Hint, format!("{point} stick: turn, push forward to aim a teleport, let go to jump"));
    spec.line(Tone::Hint, format!("{point} trigger: click | grip: grab | A: build mode | B: turn piece"));
    spec.line(Tone::Hint, format!("{walk} trigger: hold to talk"));
    spec.line(Tone::Plain, comfort.describe());
    if let Some(voice) = mic {
        let mic = voice.menu(&format!("the {walk} trigger"));
        spec.line(if mic.usable && !mic.muted { Tone::Good } else { Tone::Warn }, mic.line);
        if mic.usable {
            spec.button(if mic.muted { "Unmute" } else { "Mute" }, PanelAction::ToggleMute);
            spec.button(if mic.open { "Push-to-talk" } else { "Open mic" }, PanelAction::ToggleOpenMic);
        }
        spec.line(Tone::Plain, mic.devices);
        spec.button("Next microphone", PanelAction::NextMicrophone);
        spec.button("Next output", PanelAction::NextOutput);
    }
    spec.button("Wallet", PanelAction::ToggleWallet);
    spec.button("Shields", PanelAction::ToggleShields);
    spec.button("Avatars", PanelAction::ToggleAvatars);
    spec.button("Cinema", PanelAction::ToggleCinema);
    spec.button("Stage", PanelAction::ToggleStage);
    spec.button("Market", PanelAction::ToggleDirectory);
    spec.button("Polls", PanelAction::TogglePolls);
    if in_city {
        spec.button(if build_on { "Stop building" } else { "Build" }, PanelAction::ToggleBuild);
        if build_on {
            spec.button("Undo", PanelAction::Undo);
        }
    }
    let turning = match comfort.turning {
        Turning::Snap(_) => "Smooth turn",
        Turning::Smooth(_) => "Snap turn",
    };
    spec.button(turning, PanelAction::ToggleTurning);
    spec.button(if comfort.vignette { "Vignette off" } else { "Vignette on" }, PanelAction::ToggleVignette);
    spec.button(
        match comfort.stance {
            Stance::Standing => "Seated",
            Stance::Seated(_) => "Standing",
        },
        PanelAction::ToggleStance,
    );
    spec.button("Swap hands", PanelAction::SwapHands);
    spec.button("Close", PanelAction::CloseMenu);
    spec
}

/// Where a ray meets a panel quad of `size` metres (facing its transform's +z): the distance
/// along the ray and the texture coordinate, (0, 0) top left. A ray from behind passes through.
pub fn panel_hit(ray: Ray3d, panel: &Transform, size: Vec2, reach: f32) -> Option<(f32, Vec2)> {
    let normal = panel.rotation * Vec3::Z;
    let facing = ray.direction.dot(normal);
    if facing >= -1e-4 {
        return None;
    }
    let distance = (panel.translation - ray.origin).dot(normal) / facing;
    if !(0.0..=reach).contains(&distance) {
        return None;
    }
    let local = panel.rotation.inverse() * (ray.get_point(distance) - panel.translation);
    let uv = Vec2::new(local.x / size.x + 0.5, 0.5 - local.y / size.y);
    (uv.cmpge(Vec2::ZERO).all() && uv.cmple(Vec2::ONE).all()).then_some((distance, uv))
}

/// Where the panel opens: in front of the eyes, a little below them, turned to face them.
pub fn panel_pose_for(eyes: &Transform) -> Transform {
    let forward = eyes.forward().with_y(0.0).normalize_or(Vec3::NEG_Z);
    let at = eyes.translation + forward * PANEL_DISTANCE - Vec3::Y * 0.2;
    // The quad faces +z: -z looks away from the eyes, and the face tips up toward them.
    let upright = Transform::from_translation(at).looking_to(forward, Vec3::Y);
    upright.with_rotation(upright.rotation * Quat::from_rotation_x(-0.15))
}

#[derive(Component, Debug)]
struct HandView(Side);

#[derive(Component, Debug)]
struct VignetteView;

/// The menu panel's quad; its texture is drawn by the camera in `camera`.
#[derive(Component, Debug)]
struct MenuPanel {
    image: Handle<Image>,
    camera: Entity,
    root: Entity,
    drawn: Vec<PanelSpec>,
    hovering: bool,
}

fn spawn_hands(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    let mesh = meshes.add(Cuboid::new(0.045, 0.06, 0.13));
    for side in [Side::Left, Side::Right] {
        let material = materials.add(StandardMaterial {
            base_color: Color::srgb(0.1, 0.12, 0.2),
            emissive: LinearRgba::rgb(0.0, 2.0, 3.0),
            ..default()
        });
        commands.spawn((HandView(side), Mesh3d(mesh.clone()), MeshMaterial3d(material), Visibility::Hidden));
    }
}

fn place_hands(
    mode: Res<InputMode>,
    controllers: Res<Controllers>,
    rig: Res<Rig>,
    mut hands: Query<(&HandView, &mut Transform, &mut Visibility)>,
) {
    for (HandView(side), mut transform, mut visibility) in &mut hands {
        let grip = match side {
            Side::Left => controllers.left.grip,
            Side::Right => controllers.right.grip,
        };
        match grip.filter(|_| *mode == InputMode::Vr) {
            Some(grip) => {
                *transform = rig.to_world(grip);
                *visibility = Visibility::Inherited;
            }
            None => *visibility = Visibility::Hidden,
        }
    }
}

/// A square of black whose alpha rises from a clear middle to dark edges.
fn vignette_image() -> Image {
    let side = 128u32;
    let mut pixels = Vec::with_capacity((side * side * 4) as usize);
    for y in 0..side {
        for x in 0..side {
            let at = Vec2::new(x as f32 + 0.5, y as f32 + 0.5) / side as f32 * 2.0 - Vec2::ONE;
            let alpha = ((at.length() - 0.35) / 0.45).clamp(0.0, 1.0);
            pixels.extend_from_slice(&[0, 0, 0, (alpha * alpha * (3.0 - 2.0 * alpha) * 255.0) as u8]);
        }
    }
    Image::new(
        Extent3d { width: side, height: side, depth_or_array_layers: 1 },
        TextureDimension::D2,
        pixels,
        TextureFormat::Rgba8UnormSrgb,
        RenderAssetUsages::RENDER_WORLD,
    )
}

fn spawn_vignette(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
    mut images: ResMut<Assets<Image>>,
) {
    let material = materials.add(StandardMaterial {
        base_color: Color::srgba(1.0, 1.0, 1.0, 0.0),
        base_color_texture: Some(images.add(vignette_image())),
        alpha_mode: AlphaMode::Blend,
        unlit: true,
        ..default()
    });
    commands.spawn((
        VignetteView,
        Mesh3d(meshes.add(Rectangle::new(0.6, 0.6))),
        MeshMaterial3d(material),
        Visibility::Hidden,
    ));
}

/// The vignette sits just in front of the eyes, as dark as [`Vignette`] says.
fn place_vignette(
    vignette: Res<Vignette>,
    players: Query<&Transform, (With<Player>, Without<VignetteView>)>,
    mut views: Query<(&mut Transform, &mut Visibility, &MeshMaterial3d<StandardMaterial>), With<VignetteView>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    let (Ok(eyes), Ok((mut transform, mut visibility, material))) = (players.single(), views.single_mut()) else {
        return;
    };
    if vignette.0 <= 0.01 {
        *visibility = Visibility::Hidden;
        return;
    }
    *visibility = Visibility::Inherited;
    *transform = Transform::from_translation(eyes.translation + eyes.forward() * 0.15).with_rotation(eyes.rotation);
    if let Some(mut material) = materials.get_mut(&material.0) {
        material.base_color.set_alpha(vignette.0);
    }
}

fn spawn_menu_panel(
    mut commands: Commands,
    mut images: ResMut<Assets<Image>>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    let image =
        images.add(Image::new_target_texture(PANEL_PIXELS.x, PANEL_PIXELS.y, TextureFormat::Rgba8UnormSrgb, None));
    let camera = commands
        .spawn((
            Camera2d,
            Camera {
                // Drawn before the eyes that look at it; idle while the panel is hidden.
                order: -1,
                is_active: false,
                clear_color: ClearColorConfig::Custom(Color::srgb(0.01, 0.02, 0.07)),
                ..default()
            },
            RenderTarget::Image(image.clone().into()),
        ))
        .id();
    let root = commands
        .spawn((
            Node {
                width: Val::Percent(100.0),
                height: Val::Percent(100.0),
                flex_direction: FlexDirection::Column,
                padding: UiRect::all(Val::Px(20.0)),
                row_gap: Val::Px(18.0),
                overflow: Overflow::clip(),
                border: UiRect::all(Val::Px(4.0)),
                ..default()
            },
            BorderColor::all(Color::srgb(0.3, 0.9, 1.0)),
            UiTargetCamera(camera),
        ))
        .id();
    let material = materials.add(StandardMaterial {
        base_color_texture: Some(image.clone()),
        unlit: true,
        double_sided: true,
        cull_mode: None,
        ..default()
    });
    commands.spawn((
        MenuPanel { image, camera, root, drawn: Vec::new(), hovering: false },
        Mesh3d(meshes.add(Rectangle::from_size(PANEL_SIZE))),
        MeshMaterial3d(material),
        Visibility::Hidden,
    ));
    commands.spawn(LASER);
}

/// The specs the VR panel shows now: a payment to confirm alone (it is modal), else the menu
/// when open, the stall in reach and the wallet.
fn menu_panel_specs(
    menu: &VrMenu,
    comfort: &Comfort,
    (build_on, in_city): (bool, bool),
    voice: Option<&VoiceState>,
    slots: &[(PanelSlot, Option<&PanelSpec>)],
) -> Vec<PanelSpec> {
    let slot = |wanted: PanelSlot| slots.iter().find(|(slot, _)| *slot == wanted).and_then(|(_, spec)| spec.cloned());
    if let Some(confirm) = slot(PanelSlot::Confirm) {
        return vec![confirm];
    }
    let mut specs = Vec::new();
    if menu.open {
        specs.push(menu_spec(comfort, build_on, in_city, voice));
    }
    specs.extend(slot(PanelSlot::Stall));
    specs.extend(slot(PanelSlot::Wallet));
    specs.extend(slot(PanelSlot::Shields));
    specs.extend(slot(PanelSlot::Avatars));
    specs.extend(slot(PanelSlot::Cinema));
    specs.extend(slot(PanelSlot::Stage));
    specs.extend(slot(PanelSlot::Directory));
    specs.extend(slot(PanelSlot::Polls));
    specs
}

#[allow(clippy::too_many_arguments)]
fn fill_menu_panel(
    mut commands: Commands,
    mode: Res<InputMode>,
    menu: Res<VrMenu>,
    comfort: Res<Comfort>,
    build: Res<BuildMode>,
    region: Option<Res<CurrentRegion>>,
    voice: Option<Res<VoiceState>>,
    slots: Query<(&PanelSlot, &PanelContent)>,
    mut panels: Query<(&mut MenuPanel, &mut Visibility)>,
    mut cameras: Query<&mut Camera>,
    mut images: ResMut<Assets<Image>>,
) {
    let Ok((mut panel, mut visibility)) = panels.single_mut() else { return };
    let in_city = region.is_some_and(|region| region.id() == sanctuary_engine::RegionId::City);
    let slots: Vec<(PanelSlot, Option<&PanelSpec>)> =
        slots.iter().map(|(slot, content)| (*slot, content.0.as_ref())).collect();
    let specs = if *mode == InputMode::Vr {
        menu_panel_specs(&menu, &comfort, (build.on, in_city), voice.as_deref(), &slots)
    } else {
        Vec::new()
    };
    let shown = !specs.is_empty();
    if let Ok(mut camera) = cameras.get_mut(panel.camera)
        && camera.is_active != shown
    {
        camera.is_active = shown;
    }
    *visibility = if shown { Visibility::Inherited } else { Visibility::Hidden };
    if specs == panel.drawn {
        return;
    }
    commands.entity(panel.root).despawn_children();
    commands.entity(panel.root).with_children(|root| {
        for spec in &specs {
            let border =
                if spec.offers(PanelAction::Pay) { Color::srgb(1.0, 0.75, 0.2) } else { Color::srgb(0.2, 0.5, 0.7) };
            root.spawn((
                Node {
                    flex_direction: FlexDirection::Row,
                    column_gap: Val::Px(16.0),
                    padding: UiRect::all(Val::Px(14.0)),
                    border: UiRect::all(Val::Px(2.0)),
                    ..default()
                },
                BorderColor::all(border),
            ))
            .with_children(|card| draw_spec(card, spec, 26.0, &mut images));
        }
    });
    panel.drawn = specs;
}

/// Opens the panel in front of the eyes when it appears, and brings it along when the person
/// walks away from it.
fn place_menu_panel(
    players: Query<&Transform, (With<Player>, Without<MenuPanel>)>,
    mut panels: Query<(&mut Transform, &Visibility), With<MenuPanel>>,
    mut was_shown: Local<bool>,
) {
    let (Ok(eyes), Ok((mut transform, visibility))) = (players.single(), panels.single_mut()) else { return };
    let shown = *visibility != Visibility::Hidden;
    if shown && (!*was_shown || transform.translation.distance(eyes.translation) > PANEL_LEASH) {
        *transform = panel_pose_for(eyes);
    }
    *was_shown = shown;
}

/// Points the laser: where it meets the shown panel, the panel's picking pointer moves there
/// and the trigger presses and lets go of what is under it.
fn aim_laser(
    actions: Res<Actions>,
    mode: Res<InputMode>,
    mut panels: Query<(&mut MenuPanel, &Transform, &Visibility)>,
    mut on_panel: ResMut<LaserOnPanel>,
    mut input: MessageWriter<PointerInput>,
) {
    let Ok((mut panel, transform, visibility)) = panels.single_mut() else { return };
    let hit = actions
        .point
        .filter(|_| *mode == InputMode::Vr && *visibility != Visibility::Hidden)
        .and_then(|ray| panel_hit(ray, transform, PANEL_SIZE, LASER_REACH));
    on_panel.0 = hit.is_some();
    let Some((_, uv)) = hit else {
        if panel.hovering {
            // Off the panel: the pointer leaves the texture so nothing stays lit or pressed.
            let location = Location { target: panel_target(&panel), position: Vec2::splat(-10.0) };
            input.write(PointerInput::new(LASER, location.clone(), PointerAction::Move { delta: Vec2::ZERO }));
            input.write(PointerInput::new(LASER, location, PointerAction::Release(PointerButton::Primary)));
            panel.hovering = false;
        }
        return;
    };
    panel.hovering = true;
    let location = Location { target: panel_target(&panel), position: uv * PANEL_PIXELS.as_vec2() };
    input.write(PointerInput::new(LASER, location.clone(), PointerAction::Move { delta: Vec2::ZERO }));
    if actions.select.pressed {
        input.write(PointerInput::new(LASER, location.clone(), PointerAction::Press(PointerButton::Primary)));
    }
    if actions.select.released {
        input.write(PointerInput::new(LASER, location, PointerAction::Release(PointerButton::Primary)));
    }
}

fn panel_target(panel: &MenuPanel) -> NormalizedRenderTarget {
    NormalizedRenderTarget::Image(ImageRenderTarget::from(panel.image.clone()))
}

/// The laser from the pointing hand (to the panel it meets, or fading out), and the teleport
/// arc: green where it may land, red where it may not.
fn draw_laser_and_arc(
    mut gizmos: Gizmos,
    actions: Res<Actions>,
    mode: Res<InputMode>,
    on_panel: Res<LaserOnPanel>,
    teleport: Res<Teleport>,
    panels: Query<(&Transform, &Visibility), With<MenuPanel>>,
    board: Option<Res<crate::whiteboard::BoardAim>>,
) {
    if *mode == InputMode::Vr
        && let Some(ray) = actions.point
        && !actions.teleport.held
    {
        let reach = panels
            .single()
            .ok()
            .filter(|(_, visibility)| **visibility != Visibility::Hidden)
            .and_then(|(transform, _)| panel_hit(ray, transform, PANEL_SIZE, LASER_REACH))
            .map(|(distance, _)| distance)
            .or(board.and_then(|board| board.distance))
            .unwrap_or(LASER_REACH);
        let colour = if on_panel.0 { Color::srgb(1.0, 0.9, 0.3) } else { Color::srgb(0.3, 0.9, 1.0) };
        gizmos.line(ray.origin, ray.get_point(reach), colour);
    }
    if teleport.arc.len() < 2 {
        return;
    }
    let valid = teleport.landing.is_some_and(|landing| landing.verdict.is_ok());
    let colour = if valid { Color::srgb(0.3, 1.0, 0.5) } else { Color::srgb(1.0, 0.3, 0.3) };
    gizmos.linestrip(teleport.arc.iter().copied(), colour);
    if let Some(landing) = teleport.landing {
        let flat = Isometry3d::new(landing.point + Vec3::Y * 0.02, Quat::from_rotation_x(std::f32::consts::FRAC_PI_2));
        gizmos.circle(flat, 0.45, colour);
        if valid {
            gizmos.circle(flat, 0.25, colour);
        } else {
            let cross = 0.3;
            gizmos.line(
                landing.point + Vec3::new(-cross, 0.02, -cross),
                landing.point + Vec3::new(cross, 0.02, cross),
                colour,
            );
            gizmos.line(
                landing.point + Vec3::new(-cross, 0.02, cross),
                landing.point + Vec3::new(cross, 0.02, -cross),
                colour,
            );
        }
    }
}

/// `--vr-preview`: a head standing still and hands held in front; the right hand's laser aims
/// at the mouse pointer (or, with no pointer, at the panel's first button); left click is the
/// trigger and right click the grip.
fn simulate_controllers(
    mut controllers: ResMut<Controllers>,
    rig: Res<Rig>,
    mouse: Res<ButtonInput<MouseButton>>,
    windows: Query<&Window, With<PrimaryWindow>>,
    cameras: Query<(&Camera, &GlobalTransform), With<Player>>,
    panels: Query<(&Transform, &Visibility), With<MenuPanel>>,
    screenshot: Option<Res<crate::ScreenshotPlan>>,
) {
    let mut simulated = Controllers::resting();
    // Hands held up where the window's narrower view shows them.
    for hand in [&mut simulated.left, &mut simulated.right] {
        for pose in [&mut hand.grip, &mut hand.aim].into_iter().flatten() {
            pose.translation += Vec3::new(0.0, 0.2, -0.25);
        }
    }
    let grip = simulated.right.grip.unwrap_or_default();
    let hand_world = rig.to_world(grip).translation;
    // Automated pictures aim at the panel whatever the pointer does.
    let cursor = windows.single().ok().and_then(Window::cursor_position).filter(|_| screenshot.is_none());
    let aim_at = match (cursor, cameras.single()) {
        (Some(cursor), Ok((camera, eye))) => camera.viewport_to_world(eye, cursor).ok().map(|ray| ray.get_point(3.0)),
        _ => panels.single().ok().filter(|(_, visibility)| **visibility != Visibility::Hidden).map(|(panel, _)| {
            // The first button sits near the left edge, under the menu's lines.
            panel.transform_point(Vec3::new(-PANEL_SIZE.x * 0.42, PANEL_SIZE.y * 0.08, 0.0))
        }),
    };
    if let Some(target) = aim_at {
        let direction = rig.rotation().inverse() * (target - hand_world);
        simulated.right.aim = Some(Transform::from_translation(grip.translation).looking_to(direction, Vec3::Y));
    }
    simulated.right.trigger = if mouse.pressed(MouseButton::Left) { 1.0 } else { 0.0 };
    simulated.right.squeeze = if mouse.pressed(MouseButton::Right) { 1.0 } else { 0.0 };
    *controllers = simulated;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_laser_meets_the_panel_at_the_right_texel_and_misses_beside_and_behind_it() {
        let eyes = Transform::from_xyz(2.0, 1.6, 5.0).looking_to(Vec3::new(1.0, 0.0, -1.0), Vec3::Y);
        let panel = panel_pose_for(&eyes);
        let centre_ray = Ray3d::new(eyes.translation, Dir3::new(panel.translation - eyes.translation).expect("dir"));
        let (distance, uv) = panel_hit(centre_ray, &panel, PANEL_SIZE, LASER_REACH).expect("looking at its middle");
        assert!((distance - panel.translation.distance(eyes.translation)).abs() < 1e-3);
        assert!((uv - Vec2::splat(0.5)).length() < 1e-3, "{uv}");
        // The top left corner is texture (0, 0): up and to the left as the person sees it.
        let corner = panel.transform_point(Vec3::new(-PANEL_SIZE.x * 0.49, PANEL_SIZE.y * 0.49, 0.0));
        let corner_ray = Ray3d::new(eyes.translation, Dir3::new(corner - eyes.translation).expect("dir"));
        let (_, uv) = panel_hit(corner_ray, &panel, PANEL_SIZE, LASER_REACH).expect("the corner");
        assert!(uv.x < 0.02 && uv.y < 0.02, "{uv}");
        let left_of_eyes = eyes.left();
        assert!((corner - panel.translation).dot(*left_of_eyes) > 0.0, "the texture is not mirrored");
        let beside = panel.transform_point(Vec3::new(PANEL_SIZE.x, 0.0, 0.0));
        let beside_ray = Ray3d::new(eyes.translation, Dir3::new(beside - eyes.translation).expect("dir"));
        assert_eq!(panel_hit(beside_ray, &panel, PANEL_SIZE, LASER_REACH), None);
        let behind = Ray3d::new(
            panel.translation * 2.0 - eyes.translation,
            Dir3::new(eyes.translation - panel.translation).expect("dir"),
        );
        assert_eq!(panel_hit(behind, &panel, PANEL_SIZE, LASER_REACH), None, "from behind the laser passes");
    }

    #[test]
    fn the_panel_opens_ahead_of_the_eyes_facing_them() {
        let eyes = Transform::from_xyz(0.0, 1.6, 0.0).looking_to(Vec3::X, Vec3::Y);
        let panel = panel_pose_for(&eyes);
        assert!((panel.translation - Vec3::new(PANEL_DISTANCE, 1.4, 0.0)).length() < 1e-3, "{}", panel.translation);
        let facing = panel.rotation * Vec3::Z;
        assert!(facing.dot(Vec3::NEG_X) > 0.95, "the panel faces back at the eyes: {facing}");
    }

    #[test]
    fn a_payment_to_confirm_takes_the_whole_panel() {
        let comfort = Comfort::default();
        let menu = VrMenu { open: true };
        let mut confirm = PanelSpec::new("CONFIRM");
        confirm.button("Pay", PanelAction::Pay);
        let stall = PanelSpec::new("STALL");
        let slots = [(PanelSlot::Stall, Some(&stall)), (PanelSlot::Confirm, Some(&confirm)), (PanelSlot::Wallet, None)];
        assert_eq!(menu_panel_specs(&menu, &comfort, (false, true), None, &slots), vec![confirm.clone()]);
        let slots = [(PanelSlot::Stall, Some(&stall)), (PanelSlot::Confirm, None)];
        let shown = menu_panel_specs(&menu, &comfort, (false, true), None, &slots);
        assert_eq!(shown.iter().map(|spec| spec.title.as_str()).collect::<Vec<_>>(), ["MENU", "STALL"]);
        assert!(shown[0].offers(PanelAction::ToggleBuild), "in the city the menu offers building");
        assert!(menu_panel_specs(&VrMenu { open: false }, &comfort, (false, false), None, &[]).is_empty());
        // The shields panel shows in VR beside the menu, which offers it.
        let shields = PanelSpec::new("SHIELDS");
        let slots = [(PanelSlot::Shields, Some(&shields))];
        let shown = menu_panel_specs(&menu, &comfort, (false, false), None, &slots);
        assert_eq!(shown.iter().map(|spec| spec.title.as_str()).collect::<Vec<_>>(), ["MENU", "SHIELDS"]);
        assert!(shown[0].offers(PanelAction::ToggleShields));
        // So does the avatar picker.
        let avatars = PanelSpec::new("AVATARS");
        let slots = [(PanelSlot::Avatars, Some(&avatars))];
        let shown = menu_panel_specs(&menu, &comfort, (false, false), None, &slots);
        assert_eq!(shown.iter().map(|spec| spec.title.as_str()).collect::<Vec<_>>(), ["MENU", "AVATARS"]);
        assert!(shown[0].offers(PanelAction::ToggleAvatars));
    }

    #[test]
    fn the_menu_shows_the_microphone_and_mutes_it() {
        let comfort = Comfort::default();
        let voice = crate::voice::test_state();
        let spec = menu_spec(&comfort, false, false, Some(&voice));
        assert!(spec.text().contains("hold the left trigger to talk"), "{}", spec.text());
        assert!(spec.offers(PanelAction::ToggleMute) && spec.offers(PanelAction::ToggleOpenMic));
        voice.control.muted.store(true, std::sync::atomic::Ordering::Relaxed);
        let spec = menu_spec(&comfort, false, false, Some(&voice));
        assert!(spec.text().contains("microphone muted"), "{}", spec.text());
        assert!(spec.buttons.contains(&("Unmute".to_owned(), PanelAction::ToggleMute)), "{:?}", spec.buttons);
        let mut none = crate::voice::test_state();
        none.microphone = Err("this machine has no microphone".into());
        let spec = menu_spec(&comfort, false, false, Some(&none));
        assert!(spec.text().contains("no microphone (this machine has no microphone)"), "{}", spec.text());
        assert!(!spec.offers(PanelAction::ToggleMute), "nothing to mute");
        assert!(!menu_spec(&comfort, false, false, None).text().contains("microphone"), "voice off: no line");
    }
}
