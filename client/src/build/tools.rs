//! Build mode's tools: B (or A on the pointing controller) toggles it; the ghost follows the
//! pointer or the laser with its verdict; keys and clicks place, select, move, turn, size,
//! colour, delete, undo and redo; the grip (or the right mouse button) drags a piece. Every edit
//! goes to the node as a command.

use bevy::prelude::*;
use bevy::window::PrimaryWindow;
use sanctuary_engine::{Object, ObjectId, ObjectKind, Op, ParcelCoord, PublicKey, Rejection, Shape, home_parcel};
use sanctuary_net::Command;

use super::{
    BuildMode, COLOURS, CityWorld, Edit, GRID, Held, TURN, ground_hit, held_placement, object_at, palette, ray_box,
    snap,
};
use crate::Frame;
use crate::actions::{Actions, LaserOnPanel};
use crate::network::{ChatInput, NetLink};
use crate::panels::{PanelAction, PanelPressed};
use crate::player::Player;
use crate::world::CurrentRegion;

pub(super) fn plugin(app: &mut App) {
    app.add_systems(
        Update,
        (toggle_build_mode, aim_ghost, build_keys, click_to_build, grab_to_build)
            .chain()
            .in_set(Frame::Input)
            .after(crate::actions::ReadDevices),
    );
}

fn typing(chat: &Option<Res<ChatInput>>) -> bool {
    chat.as_ref().is_some_and(|chat| chat.open)
}

/// B turns build mode on and off; H (in build mode) goes to your home parcel.
#[allow(clippy::too_many_arguments)]
fn toggle_build_mode(
    keys: Res<ButtonInput<KeyCode>>,
    actions: Res<Actions>,
    mut pressed: MessageReader<PanelPressed>,
    chat: Option<Res<ChatInput>>,
    region: Option<Res<CurrentRegion>>,
    world: Res<CityWorld>,
    mut mode: ResMut<BuildMode>,
    mut players: Query<(&mut Transform, &mut Player)>,
) {
    let button = pressed.read().any(|PanelPressed(action)| *action == PanelAction::ToggleBuild);
    if typing(&chat) {
        return;
    }
    let in_city = region.is_some_and(|region| region.id() == sanctuary_engine::RegionId::City);
    if actions.build.pressed || button {
        mode.on = !mode.on && in_city;
        mode.selected = None;
        info!("build mode {}", if mode.on { "on" } else { "off" });
    }
    if !in_city {
        mode.on = false;
    }
    if mode.on
        && keys.just_pressed(KeyCode::KeyH)
        && let Some(me) = world.me
    {
        let centre = home_parcel(&me).bounds().center();
        for (mut transform, mut player) in &mut players {
            // Stand off the parcel's low-z edge, looking across it (yaw 0 faces +z) and down.
            transform.translation = Vec3::new(centre.x, 7.0, centre.y - 14.0);
            player.yaw = 0.0;
            player.pitch = -0.35;
            player.last_position = transform.translation;
        }
    }
}

/// The ray under the pointer (or the screen's centre when the pointer is captured).
fn pointer_ray(
    windows: &Query<&Window, With<PrimaryWindow>>,
    cameras: &Query<(&Camera, &GlobalTransform), With<Player>>,
) -> Option<Ray3d> {
    let (window, (camera, eye)) = (windows.single().ok()?, cameras.single().ok()?);
    let point = window.cursor_position().unwrap_or(window.size() / 2.0);
    camera.viewport_to_world(eye, point).ok()
}

/// Whether `author` may put `object` on `parcel` now: the rules, except that an unclaimed
/// home parcel will be claimed first.
fn may_put(
    world: &CityWorld,
    me: PublicKey,
    parcel: ParcelCoord,
    id: ObjectId,
    object: Object,
) -> Result<(), Rejection> {
    let Some(replica) = &world.replica else { return Err(Rejection::Unclaimed) };
    let state = replica.parcel(parcel);
    let op = Op::Put { parcel, epoch: state.epoch(), id, object };
    match replica.check(me, &op) {
        Err(Rejection::Unclaimed) if parcel == home_parcel(&me) => {
            // It will be claimed with the first edit; borders and height apply already.
            let (low, high) = object.aabb();
            let bounds = parcel.bounds();
            let inside =
                low.x >= bounds.min.x && low.z >= bounds.min.y && high.x <= bounds.max.x && high.z <= bounds.max.y;
            if !inside {
                Err(Rejection::OutsideParcel)
            } else if high.y > sanctuary_engine::budget::HEIGHT {
                Err(Rejection::TooHigh { top: high.y })
            } else {
                Ok(())
            }
        }
        other => other,
    }
}

/// Follows the pointer with the ghost of what a click would place.
fn aim_ghost(
    actions: Res<Actions>,
    on_panel: Res<LaserOnPanel>,
    mut mode: ResMut<BuildMode>,
    world: Res<CityWorld>,
    windows: Query<&Window, With<PrimaryWindow>>,
    cameras: Query<(&Camera, &GlobalTransform), With<Player>>,
) {
    mode.ghost = None;
    let (true, Some(me), false) = (mode.on, world.me, on_panel.0) else { return };
    let ray = actions.point.or_else(|| pointer_ray(&windows, &cameras));
    let Some(point) = ray.and_then(ground_hit) else { return };
    let Some(parcel) = ParcelCoord::containing(point) else { return };
    let items = palette(&world);
    let item = &items[mode.palette.min(items.len() - 1)];
    let object = object_at(item, snap(point), mode.turns, COLOURS[mode.colour % COLOURS.len()]);
    let verdict = match may_put(&world, me, parcel, u64::MAX, object) {
        // Not claimed and not ours to claim: say where home is.
        Err(Rejection::Unclaimed) => Err(Rejection::NotHome { home: home_parcel(&me) }),
        other => other,
    };
    mode.ghost = Some((parcel, object, verdict));
}

/// Sends an edit to the node (claiming the home parcel first when needed) and remembers it.
fn send_edit(link: &NetLink, world: &CityWorld, me: PublicKey, edit: &Edit) {
    let state = world.parcel(edit.parcel);
    if state.owner().is_none() && edit.parcel == home_parcel(&me) {
        link.send(Command::Build(Op::Claim { parcel: edit.parcel }));
    }
    let epoch = state.epoch();
    let op = match edit.after {
        Some(object) => Op::Put { parcel: edit.parcel, epoch, id: edit.id, object },
        None => Op::Remove { parcel: edit.parcel, epoch, id: edit.id },
    };
    link.send(Command::Build(op));
}

/// The build keys: palette, colour, turn, move, scale, delete, undo and redo.
#[allow(clippy::too_many_arguments)]
fn build_keys(
    keys: Res<ButtonInput<KeyCode>>,
    actions: Res<Actions>,
    mut pressed: MessageReader<PanelPressed>,
    chat: Option<Res<ChatInput>>,
    link: Option<Res<NetLink>>,
    mut world: ResMut<CityWorld>,
    mut mode: ResMut<BuildMode>,
    players: Query<&Player>,
) {
    let undo_button = pressed.read().any(|PanelPressed(action)| *action == PanelAction::Undo);
    let (false, true, Some(link), Some(me)) = (typing(&chat), mode.on, link, world.me) else { return };
    let items = palette(&world).len();
    if keys.just_pressed(KeyCode::Tab) {
        mode.palette = (mode.palette + 1) % items;
    }
    for (index, key) in
        [KeyCode::Digit1, KeyCode::Digit2, KeyCode::Digit3, KeyCode::Digit4, KeyCode::Digit5].into_iter().enumerate()
    {
        if keys.just_pressed(key) {
            mode.palette = index;
        }
    }
    if keys.just_pressed(KeyCode::Digit6) && items > Shape::ALL.len() {
        mode.palette = items - 1;
    }
    // G: V is push-to-talk.
    if keys.just_pressed(KeyCode::KeyG) {
        mode.colour = (mode.colour + 1) % COLOURS.len();
    }
    let ctrl = keys.any_pressed([KeyCode::ControlLeft, KeyCode::ControlRight]);
    let shift = keys.any_pressed([KeyCode::ShiftLeft, KeyCode::ShiftRight]);
    if ctrl && keys.just_pressed(KeyCode::KeyZ) || undo_button {
        if let Some(edit) = mode.undo.pop() {
            let reverse = Edit { before: edit.after, after: edit.before, ..edit.clone() };
            send_edit(&link, &world, me, &reverse);
            mode.redo.push(edit);
            world.feedback = Some(("undone".into(), true));
        }
        return;
    }
    if ctrl && keys.just_pressed(KeyCode::KeyY) {
        if let Some(edit) = mode.redo.pop() {
            send_edit(&link, &world, me, &edit);
            mode.undo.push(edit);
            world.feedback = Some(("redone".into(), true));
        }
        return;
    }
    if actions.rotate.pressed && mode.selected.is_none() {
        mode.turns += if shift { -1 } else { 1 };
    }
    if keys.just_pressed(KeyCode::Escape) {
        mode.selected = None;
    }
    let Some((parcel, id)) = mode.selected else { return };
    let state = world.parcel(parcel);
    let Some(before) = state.objects.get(&id).copied() else {
        mode.selected = None;
        return;
    };
    // Moves go along the person's view, on the grid.
    let forward = players.single().map_or(Vec3::Z, Player::heading);
    let forward =
        if forward.x.abs() > forward.z.abs() { Vec3::X * forward.x.signum() } else { Vec3::Z * forward.z.signum() };
    let right = Vec3::new(-forward.z, 0.0, forward.x);
    let mut after = before;
    let step = |key: KeyCode| keys.just_pressed(key);
    let mut moved = Vec3::ZERO;
    if step(KeyCode::KeyI) {
        moved += forward;
    }
    if step(KeyCode::KeyK) {
        moved -= forward;
    }
    if step(KeyCode::KeyL) {
        moved += right;
    }
    if step(KeyCode::KeyJ) {
        moved -= right;
    }
    if step(KeyCode::KeyU) {
        moved += Vec3::Y;
    }
    if step(KeyCode::KeyO) {
        moved -= Vec3::Y;
    }
    after.placement.translation = snap(after.placement.translation + moved * GRID);
    if actions.rotate.pressed {
        let turn = if shift { -TURN } else { TURN };
        after.placement.rotation = (Quat::from_rotation_y(turn) * after.placement.rotation).normalize();
    }
    let grow = |scale: Vec3, factor: f32| (scale * factor / GRID).round().max(Vec3::ONE) * GRID;
    if step(KeyCode::Equal) || step(KeyCode::NumpadAdd) {
        after.placement.scale = grow(after.placement.scale, 1.5);
    }
    if step(KeyCode::Minus) || step(KeyCode::NumpadSubtract) {
        after.placement.scale = grow(after.placement.scale, 1.0 / 1.5);
    }
    if step(KeyCode::KeyG) && matches!(after.kind, ObjectKind::Primitive(_)) {
        after.colour = COLOURS[mode.colour % COLOURS.len()];
    }
    let delete = step(KeyCode::Delete) || step(KeyCode::KeyX) || step(KeyCode::Backspace);
    let edit = if delete {
        mode.selected = None;
        Edit { parcel, id, before: Some(before), after: None }
    } else if after != before {
        if let Err(rejection) = may_put(&world, me, parcel, id, after) {
            world.feedback = Some((format!("cannot: {rejection}"), false));
            return;
        }
        Edit { parcel, id, before: Some(before), after: Some(after) }
    } else {
        return;
    };
    send_edit(&link, &world, me, &edit);
    mode.undo.push(edit);
    mode.redo.clear();
}

/// A click in build mode selects the object under the pointer, or places the ghost.
#[allow(clippy::too_many_arguments)]
fn click_to_build(
    actions: Res<Actions>,
    on_panel: Res<LaserOnPanel>,
    chat: Option<Res<ChatInput>>,
    link: Option<Res<NetLink>>,
    mut world: ResMut<CityWorld>,
    mut mode: ResMut<BuildMode>,
    windows: Query<&Window, With<PrimaryWindow>>,
    cameras: Query<(&Camera, &GlobalTransform), With<Player>>,
    buttons: Query<&Interaction, With<Button>>,
) {
    if !mode.on || typing(&chat) || !actions.select.pressed || on_panel.0 {
        return;
    }
    if buttons.iter().any(|interaction| *interaction != Interaction::None) {
        return;
    }
    let ray = actions.point.or_else(|| pointer_ray(&windows, &cameras));
    let (Some(link), Some(me), Some(ray)) = (link, world.me, ray) else { return };
    // The nearest built object under the pointer, on the ghost's parcel or home.
    let mut parcels: Vec<ParcelCoord> = mode.ghost.iter().map(|(parcel, _, _)| *parcel).collect();
    parcels.push(home_parcel(&me));
    if let Some((parcel, id, _)) = nearest_object(&world, &parcels, Some(ray), None) {
        mode.selected = Some((parcel, id));
        return;
    }
    mode.selected = None;
    let Some((parcel, object, verdict)) = mode.ghost.clone() else {
        world.feedback = Some(("point at the ground of a parcel to place".into(), false));
        return;
    };
    if let Err(rejection) = verdict {
        world.feedback = Some((format!("cannot place here: {rejection}"), false));
        return;
    }
    let id = rand_id();
    let edit = Edit { parcel, id, before: None, after: Some(object) };
    send_edit(&link, &world, me, &edit);
    mode.undo.push(edit);
    mode.redo.clear();
}

/// Grabbing: the grip (or the right mouse button) takes the piece the hand is in, or else the one
/// the pointer is on; while held it follows the hand, shown as the ghost with the rules'
/// verdict; letting go moves it there if the rules allow, else it stays where it was.
#[allow(clippy::too_many_arguments)]
fn grab_to_build(
    actions: Res<Actions>,
    on_panel: Res<LaserOnPanel>,
    chat: Option<Res<ChatInput>>,
    link: Option<Res<NetLink>>,
    mut world: ResMut<CityWorld>,
    mut mode: ResMut<BuildMode>,
    windows: Query<&Window, With<PrimaryWindow>>,
    cameras: Query<(&Camera, &GlobalTransform), With<Player>>,
) {
    if !mode.on || typing(&chat) {
        mode.held = None;
        return;
    }
    let Some(me) = world.me else { return };
    let ray = actions.point.or_else(|| pointer_ray(&windows, &cameras));
    // The hand in VR; on the desktop, the point of the ground under the pointer.
    let holder = actions.hand.or_else(|| ray.and_then(ground_hit).map(Transform::from_translation));
    if actions.grab.pressed && !on_panel.0 {
        let mut parcels: Vec<ParcelCoord> = mode.ghost.iter().map(|(parcel, _, _)| *parcel).collect();
        parcels.extend(holder.and_then(|holder| ParcelCoord::containing(holder.translation)));
        parcels.push(home_parcel(&me));
        let hand = actions.hand.map(|hand| hand.translation);
        if let (Some((parcel, id, before)), Some(grip)) = (nearest_object(&world, &parcels, ray, hand), holder) {
            mode.held = Some(Held { parcel, id, before, grip });
            mode.selected = Some((parcel, id));
        }
    }
    let Some(held) = mode.held else { return };
    let Some(hand) = holder else {
        // The hand lost tracking or the pointer left the ground: nothing moves.
        if actions.grab.released {
            mode.held = None;
        }
        return;
    };
    let mut after = held.before;
    after.placement = held_placement(held.before.placement, held.grip, hand);
    let verdict = may_put(&world, me, held.parcel, held.id, after);
    mode.ghost = Some((held.parcel, after, verdict.clone()));
    if !actions.grab.released {
        return;
    }
    mode.held = None;
    if after == held.before {
        return;
    }
    let Some(link) = link else { return };
    if let Err(rejection) = verdict {
        world.feedback = Some((format!("cannot move it there: {rejection}"), false));
        return;
    }
    let edit = Edit { parcel: held.parcel, id: held.id, before: Some(held.before), after: Some(after) };
    send_edit(&link, &world, me, &edit);
    mode.undo.push(edit);
    mode.redo.clear();
}

/// The built object on `parcels` that a hand at `hand` is in (within 10 cm) or else that `ray`
/// meets first.
fn nearest_object(
    world: &CityWorld,
    parcels: &[ParcelCoord],
    ray: Option<Ray3d>,
    hand: Option<Vec3>,
) -> Option<(ParcelCoord, ObjectId, Object)> {
    let mut nearest: Option<(f32, ParcelCoord, ObjectId, Object)> = None;
    for &parcel in parcels {
        for (id, object) in world.parcel(parcel).objects {
            let (low, high) = object.aabb();
            let in_hand = hand
                .filter(|hand| hand.cmpge(low - Vec3::splat(0.1)).all() && hand.cmple(high + Vec3::splat(0.1)).all());
            let distance = in_hand.map(|_| 0.0).or_else(|| ray.and_then(|ray| ray_box(ray, (low, high))));
            if let Some(distance) = distance
                && nearest.is_none_or(|(best, ..)| distance < best)
            {
                nearest = Some((distance, parcel, id, object));
            }
        }
    }
    nearest.map(|(_, parcel, id, object)| (parcel, id, object))
}

/// A fresh object id: the clock's microseconds mixed, unique enough on one parcel.
fn rand_id() -> ObjectId {
    let micros =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_micros() as u64);
    micros.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 1
}
