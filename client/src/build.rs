//! Building in the city: built parcels drawn from the world the node holds, and the build mode
//! (B, or A on the pointing controller) with its palette, ghost preview, selection, grid-snapped
//! moves, colours, delete, undo and redo, parcel borders and plain feedback when a change is
//! refused. In VR the laser aims and the trigger places; the grip grabs a piece and moves and
//! turns it with the hand, snapped to the grid and to 15-degree steps, until it is let go. On the
//! desktop the right mouse button drags a piece over the ground the same way.
//!
//! Every edit is a command to the node, which checks it by the same rules every peer applies,
//! signs it, stores it and passes it on; this module only shows the result.

use std::collections::{HashMap, HashSet};

use bevy::prelude::*;
use bevy::window::PrimaryWindow;
use bevy::world_serialization::WorldAssetRoot;
use sanctuary_engine::{
    ModelRef, Object, ObjectId, ObjectKind, Op, ParcelCoord, ParcelState, Placement, PublicKey, Rejection, Rgb, Shape,
    Structure, home_parcel,
};
use sanctuary_net::{Command, Event, SharedReplica};

use crate::Frame;
use crate::actions::{Actions, LaserOnPanel};
use crate::network::{ChatInput, NetLink};
use crate::panels::{PanelAction, PanelPressed};
use crate::player::Player;
use crate::world::{CurrentRegion, ParcelView, StructureView, structure_transform};

/// Grid step for placing and moving, in metres.
pub const GRID: f32 = 0.5;
/// Turn step, in radians (15°).
pub const TURN: f32 = std::f32::consts::PI / 12.0;
/// Colours a builder cycles through.
pub const COLOURS: [Rgb; 8] = [
    Rgb::new(0, 240, 255),
    Rgb::new(255, 40, 200),
    Rgb::new(255, 150, 20),
    Rgb::new(120, 80, 255),
    Rgb::new(240, 240, 240),
    Rgb::new(40, 220, 90),
    Rgb::new(230, 50, 40),
    Rgb::new(30, 30, 40),
];

mod looks;

use looks::{BuildLook, build_look};

pub(super) fn logic(app: &mut App) {
    app.init_resource::<CityWorld>()
        .init_resource::<BuildMode>()
        .add_systems(Update, show_built_parcels.in_set(Frame::World).after(crate::world::stream_city))
        .add_systems(
            Update,
            looks::load_models_by_hand
                .in_set(Frame::World)
                .before(show_built_parcels)
                .run_if(resource_exists::<ChatInput>),
        );
}

pub(super) fn presentation(app: &mut App) {
    app.add_systems(Startup, spawn_build_panel).add_systems(
        Update,
        (
            (toggle_build_mode, aim_ghost, build_keys, click_to_build, grab_to_build)
                .chain()
                .in_set(Frame::Input)
                .after(crate::actions::ReadDevices),
            (load_ready_models, draw_build_gizmos, update_build_panel, place_model_labels).in_set(Frame::Present),
        ),
    );
}

/// What the model of an object is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelState {
    /// On its way: bytes here of bytes in all.
    Fetching {
        /// Bytes here.
        done: u64,
        /// Bytes in all (0 until the manifest is here).
        total: u64,
    },
    /// Here and checked.
    Ready,
    /// Could not be had or failed its checks.
    Failed(String),
}

/// The world as the node holds it, and what the program knows of models.
#[derive(Resource, Debug, Default)]
pub struct CityWorld {
    /// The node's replica (read only here).
    pub replica: Option<SharedReplica>,
    /// Who we are.
    pub me: Option<PublicKey>,
    /// Parcels to draw again.
    pub changed: HashSet<ParcelCoord>,
    /// Every parcel changed (a model arrived).
    pub redraw_all: bool,
    /// Models seen in the world or imported.
    pub models: HashMap<[u8; 32], ModelState>,
    /// Models this person imported, with their file names: the palette's last entries.
    pub imported: Vec<(String, ModelRef)>,
    /// The last word on our own edits: text and whether it went well.
    pub feedback: Option<(String, bool)>,
    /// Parcels whose models the person chose to load (`/models`) though the builds shield
    /// keeps their builder's out.
    pub loaded_by_hand: HashSet<ParcelCoord>,
}

impl CityWorld {
    /// Takes what concerns the world from a node event.
    pub fn take(&mut self, event: &Event) {
        let before = self.feedback.clone();
        self.take_inner(event);
        if self.feedback != before
            && let Some((text, _)) = &self.feedback
        {
            info!("build: {text}");
        }
    }

    fn take_inner(&mut self, event: &Event) {
        match event {
            Event::Started { id, world, .. } => {
                self.me = Some(*id);
                self.replica = Some(world.clone());
                self.redraw_all = true;
            }
            Event::WorldChanged(parcels) => self.changed.extend(parcels.iter().copied()),
            // Who is blocked or trusted as a builder decides what is drawn.
            Event::Trust(_) | Event::Shields(_) | Event::Blocks(_) => self.redraw_all = true,
            Event::Built(op) => {
                let what = match op {
                    Op::Claim { .. } => "claimed your home parcel",
                    Op::Transfer { .. } => "parcel handed on",
                    Op::Put { .. } => "placed and saved",
                    Op::Remove { .. } => "removed",
                    Op::List { .. } => "listed for sale",
                    Op::Withdraw { .. } => "listing withdrawn",
                    Op::Buy { .. } => "purchase claimed",
                    Op::Ban { banned: true, .. } => "kept off your parcel",
                    Op::Ban { banned: false, .. } => "let back onto your parcel",
                    // Trust is the social panel's to tell.
                    Op::Trust { .. } => return,
                };
                self.feedback = Some((what.to_owned(), true));
            }
            Event::BuildRefused { reason, .. } => self.feedback = Some((format!("refused: {reason}"), false)),
            Event::Imported { model, name, summary } => {
                self.models.insert(model.hash, ModelState::Ready);
                self.imported.push((name.clone(), *model));
                self.feedback = Some((
                    format!("imported {name}: {} triangles, {} KB", summary.triangles, model.bytes.div_ceil(1024)),
                    true,
                ));
            }
            Event::AssetProgress { hash, done, total } => {
                self.models.insert(*hash, ModelState::Fetching { done: *done, total: *total });
            }
            Event::AssetReady { hash, .. } => {
                self.models.insert(*hash, ModelState::Ready);
                self.redraw_all = true;
            }
            Event::AssetFailed { hash, reason } if *hash == [0; 32] => {
                self.feedback = Some((format!("import failed: {reason}"), false));
            }
            Event::AssetFailed { hash, reason } => {
                self.models.insert(*hash, ModelState::Failed(reason.clone()));
                self.redraw_all = true;
            }
            _ => {}
        }
    }

    pub(crate) fn parcel(&self, parcel: ParcelCoord) -> ParcelState {
        self.replica.as_ref().map(|replica| replica.parcel(parcel)).unwrap_or_default()
    }
}

/// One palette entry.
#[derive(Debug, Clone, PartialEq)]
pub enum PaletteItem {
    /// A primitive.
    Shape(Shape),
    /// An imported model.
    Model(String, ModelRef),
}

/// An edit, to undo and redo: what an object was before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    /// Where.
    pub parcel: ParcelCoord,
    /// Which object.
    pub id: ObjectId,
    /// Before (`None`: it did not exist).
    pub before: Option<Object>,
    /// After (`None`: it was removed).
    pub after: Option<Object>,
}

/// The build mode's state.
#[derive(Resource, Debug, Default)]
pub struct BuildMode {
    /// On or off (B).
    pub on: bool,
    /// The palette entry in hand.
    pub palette: usize,
    /// The colour in hand.
    pub colour: usize,
    /// Turn of the next placement, in steps of [`TURN`].
    pub turns: i32,
    /// The selected object.
    pub selected: Option<(ParcelCoord, ObjectId)>,
    /// The object the pointer would place, and whether the rules allow it.
    pub ghost: Option<(ParcelCoord, Object, Result<(), Rejection>)>,
    /// Edits to undo, newest last.
    pub undo: Vec<Edit>,
    /// Edits undone, to redo.
    pub redo: Vec<Edit>,
    /// The piece held by the hand (or dragged by the mouse).
    pub held: Option<Held>,
}

/// A piece being moved by a hand: where it and the hand were when it was grabbed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Held {
    /// Its parcel.
    pub parcel: ParcelCoord,
    /// Its id.
    pub id: ObjectId,
    /// The piece as it was.
    pub before: Object,
    /// The hand (or the point under the mouse) when it grabbed.
    pub grip: Transform,
}

/// Where a held piece goes when the hand that grabbed it at `grip` is now at `hand`: it keeps
/// its offset from the hand, turns with the hand's turn about the vertical in [`TURN`] steps,
/// and snaps to the grid. It never goes under the ground.
pub fn held_placement(before: Placement, grip: Transform, hand: Transform) -> Placement {
    let (turn, _, _) = (hand.rotation * grip.rotation.inverse()).to_euler(EulerRot::YXZ);
    let steps = (turn / TURN).round();
    let turned = Quat::from_rotation_y(steps * TURN);
    let offset = before.translation - grip.translation;
    let mut translation = snap(hand.translation + turned * offset);
    // The lowest point stays on or above the ground.
    let half_height = (before.translation.y - before.aabb().0.y).max(0.0);
    translation.y = translation.y.max(half_height);
    Placement { translation, rotation: (turned * before.rotation).normalize(), scale: before.scale }
}

/// The palette: the primitives, then the imported models.
pub fn palette(world: &CityWorld) -> Vec<PaletteItem> {
    Shape::ALL
        .into_iter()
        .map(PaletteItem::Shape)
        .chain(world.imported.iter().map(|(name, model)| PaletteItem::Model(name.clone(), *model)))
        .collect()
}

/// A model object: its scene is added once the model is here.
#[derive(Component, Debug, Clone, Copy)]
pub struct ModelView {
    /// The model.
    pub model: ModelRef,
    /// Whether its scene is loaded.
    pub loaded: bool,
}

/// The object a shape or model makes at `base` (the point on the ground it stands on).
pub fn object_at(item: &PaletteItem, base: Vec3, turns: i32, colour: Rgb) -> Object {
    let rotation = Quat::from_rotation_y(turns as f32 * TURN);
    match item {
        PaletteItem::Shape(shape) => Object {
            kind: ObjectKind::Primitive(*shape),
            placement: Placement::standing(base, Vec3::ONE).rotated(rotation),
            colour,
        },
        PaletteItem::Model(_, model) => Object {
            kind: ObjectKind::Model(*model),
            // A model's origin stands on the point, lifted so its lowest point meets the ground.
            placement: Placement { translation: base - Vec3::Y * model.min[1].min(0.0), rotation, scale: Vec3::ONE },
            colour: Rgb::new(255, 255, 255),
        },
    }
}

/// Snaps a point to the build grid.
pub fn snap(point: Vec3) -> Vec3 {
    (point / GRID).round() * GRID
}

/// Where a ray meets the ground (y = 0), if it goes down.
fn ground_hit(ray: Ray3d) -> Option<Vec3> {
    let down = -ray.direction.y;
    if down <= 1e-4 {
        return None;
    }
    let distance = ray.origin.y / down;
    (distance > 0.0 && distance < 200.0).then(|| ray.origin + *ray.direction * distance)
}

/// The distance along a ray to a box, if it meets it.
fn ray_box(ray: Ray3d, (low, high): (Vec3, Vec3)) -> Option<f32> {
    let inverse = ray.direction.recip();
    let a = (low - ray.origin) * inverse;
    let b = (high - ray.origin) * inverse;
    let near = a.min(b).max_element();
    let far = a.max(b).min_element();
    (far >= near.max(0.0)).then_some(near.max(0.0))
}

/// Draws built parcels: a parcel with an owner shows its objects instead of the generated city.
fn show_built_parcels(
    mut commands: Commands,
    mut world: ResMut<CityWorld>,
    parcels: Query<(Entity, &ParcelView)>,
    added: Query<Entity, Added<ParcelView>>,
    link: Option<Res<NetLink>>,
    social: Option<Res<crate::network::Social>>,
) {
    if world.replica.is_none() {
        return;
    }
    let redraw_all = std::mem::take(&mut world.redraw_all);
    let changed = std::mem::take(&mut world.changed);
    for (entity, ParcelView(parcel)) in &parcels {
        if !(redraw_all || changed.contains(parcel) || added.contains(entity)) {
            continue;
        }
        let state = world.parcel(*parcel);
        let Some(owner) = state.owner() else { continue };
        let mut parcel_entity = commands.entity(entity);
        parcel_entity.despawn_children();
        let look = social.as_deref().map_or(BuildLook::Whole, |social| build_look(social, &owner));
        if look == BuildLook::Hidden {
            continue;
        }
        // Below the builds shield, models stay boxes and are not even fetched, until loaded by
        // hand.
        let boxes = look == BuildLook::Boxes && !world.loaded_by_hand.contains(parcel);
        let mut fetch = Vec::new();
        parcel_entity.with_children(|children| {
            for object in state.objects.values() {
                match object.kind {
                    ObjectKind::Primitive(shape) => {
                        let structure = Structure::matte(shape, object.placement, object.colour);
                        children.spawn((
                            StructureView(structure),
                            structure_transform(&structure),
                            Visibility::default(),
                        ));
                    }
                    ObjectKind::Model(model) => {
                        let placement = object.placement;
                        let transform = Transform {
                            translation: placement.translation,
                            rotation: placement.rotation,
                            scale: placement.scale,
                        };
                        let ready = world.models.get(&model.hash) == Some(&ModelState::Ready) && !boxes;
                        let mut spawned =
                            children.spawn((ModelView { model, loaded: false }, transform, Visibility::default()));
                        if !ready {
                            // A placeholder the size of the model's box until it is here.
                            let (low, high) = (Vec3::from(model.min), Vec3::from(model.max));
                            let placeholder = Placement::new((low + high) * 0.5, (high - low).max(Vec3::splat(0.1)));
                            let grey = Rgb::new(90, 90, 110);
                            let structure = Structure::matte(Shape::Cuboid, placeholder, grey);
                            spawned.with_child((StructureView(structure), structure_transform(&structure)));
                            if !boxes && !matches!(world.models.get(&model.hash), Some(ModelState::Failed(_))) {
                                fetch.push(model);
                            }
                        }
                    }
                }
            }
        });
        if let Some(link) = &link {
            for model in fetch {
                if let std::collections::hash_map::Entry::Vacant(entry) = world.models.entry(model.hash) {
                    entry.insert(ModelState::Fetching { done: 0, total: model.bytes });
                    link.send(Command::Fetch { model, hint: state.owner() });
                }
            }
        }
    }
}

/// Gives model objects whose model is here their scene.
fn load_ready_models(
    mut commands: Commands,
    world: Res<CityWorld>,
    assets: Option<Res<AssetServer>>,
    mut models: Query<(Entity, &mut ModelView, Option<&Children>)>,
) {
    let Some(assets) = assets else { return };
    for (entity, mut view, children) in &mut models {
        if view.loaded || world.models.get(&view.model.hash) != Some(&ModelState::Ready) {
            continue;
        }
        view.loaded = true;
        for child in children.into_iter().flatten() {
            commands.entity(*child).despawn();
        }
        let scene = assets.load(GltfAssetLabel::Scene(0).from_asset(crate::blobs::model_path(&view.model.hash)));
        commands.entity(entity).with_child((WorldAssetRoot(scene), Transform::default()));
    }
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

/// Parcel borders, the ghost and the selection, drawn as lines.
fn draw_build_gizmos(mut gizmos: Gizmos, mode: Res<BuildMode>, world: Res<CityWorld>) {
    if !mode.on {
        return;
    }
    let Some(me) = world.me else { return };
    let mut parcels = vec![home_parcel(&me)];
    if let Some((parcel, _, _)) = &mode.ghost {
        parcels.push(*parcel);
    }
    for parcel in parcels {
        let bounds = parcel.bounds();
        let owner = world.parcel(parcel).owner();
        let colour = match owner {
            Some(owner) if owner == me => Color::srgb(0.2, 1.0, 0.4),
            None if parcel == home_parcel(&me) => Color::srgb(0.2, 1.0, 0.4),
            Some(_) => Color::srgb(1.0, 0.25, 0.2),
            None => Color::srgb(0.6, 0.6, 0.6),
        };
        let y = 0.06;
        gizmos.lineloop(
            [
                Vec3::new(bounds.min.x, y, bounds.min.y),
                Vec3::new(bounds.max.x, y, bounds.min.y),
                Vec3::new(bounds.max.x, y, bounds.max.y),
                Vec3::new(bounds.min.x, y, bounds.max.y),
            ],
            colour,
        );
    }
    if let Some((_, object, verdict)) = &mode.ghost {
        let (low, high) = object.aabb();
        let colour = if verdict.is_ok() { Color::srgb(0.3, 1.0, 0.5) } else { Color::srgb(1.0, 0.3, 0.25) };
        gizmos.cube(Transform::from_translation((low + high) * 0.5).with_scale(high - low), colour);
    }
    if let Some((parcel, id)) = mode.selected
        && let Some(object) = world.parcel(parcel).objects.get(&id)
    {
        let (low, high) = object.aabb();
        gizmos.cube(
            Transform::from_translation((low + high) * 0.5).with_scale(high - low + Vec3::splat(0.1)),
            Color::srgb(1.0, 0.9, 0.2),
        );
    }
}

/// The build panel on the left.
#[derive(Component, Debug)]
struct BuildPanel;

fn spawn_build_panel(mut commands: Commands) {
    commands.spawn((
        BuildPanel,
        Text::new(""),
        TextFont { font_size: FontSize::Px(15.0), ..default() },
        TextColor(Color::srgb(0.85, 0.95, 1.0)),
        BackgroundColor(Color::srgba(0.0, 0.02, 0.06, 0.7)),
        Node {
            position_type: PositionType::Absolute,
            left: Val::Px(12.0),
            top: Val::Px(96.0),
            padding: UiRect::all(Val::Px(10.0)),
            max_width: Val::Px(420.0),
            ..default()
        },
        Visibility::Hidden,
    ));
}

fn update_build_panel(
    mode: Res<BuildMode>,
    world: Res<CityWorld>,
    mut panel: Query<(&mut Text, &mut Visibility), With<BuildPanel>>,
) {
    let Ok((mut text, mut visibility)) = panel.single_mut() else { return };
    *visibility = if mode.on { Visibility::Visible } else { Visibility::Hidden };
    if !mode.on {
        return;
    }
    let mut lines = vec!["BUILD MODE (B to leave)".to_owned()];
    if let Some(me) = world.me {
        let home = home_parcel(&me);
        lines.push(format!("your home parcel: ({}, {})  H goes there", home.x, home.z));
    }
    for (index, item) in palette(&world).iter().enumerate() {
        let name = match item {
            PaletteItem::Shape(shape) => format!("{shape:?}"),
            PaletteItem::Model(name, model) => format!("{name} ({} triangles)", model.triangles),
        };
        let key = if index < 5 { format!("{}", index + 1) } else { "6".to_owned() };
        let marker = if index == mode.palette { ">" } else { " " };
        lines.push(format!("{marker} {key} {name}"));
    }
    let colour = COLOURS[mode.colour % COLOURS.len()];
    lines.push(format!(
        "colour (V): #{:02x}{:02x}{:02x}   turn (R): {} deg",
        colour.r,
        colour.g,
        colour.b,
        mode.turns * 15
    ));
    match &mode.ghost {
        Some((parcel, _, Ok(()))) => lines.push(format!("click to place on ({}, {})", parcel.x, parcel.z)),
        Some((_, _, Err(Rejection::NotHome { home }))) => {
            lines.push(format!("not your land: your home parcel is ({}, {}); H goes there", home.x, home.z))
        }
        Some((_, _, Err(rejection))) => lines.push(format!("cannot place here: {rejection}")),
        None => lines.push("point at the ground of a parcel".into()),
    }
    if let Some((parcel, id)) = mode.selected {
        lines.push(format!("selected #{} on ({}, {}):", id % 10_000, parcel.x, parcel.z));
        lines.push("  I/K J/L move, U/O up/down, R turn, +/- size, G colour, X delete, Esc".into());
    } else {
        lines.push("click an object to select it; Tab or 1-6 palette".into());
    }
    lines.push("Ctrl+Z undo, Ctrl+Y redo; /import PATH in chat adds a model".into());
    for (hash, state) in &world.models {
        if let ModelState::Fetching { done, total } = state {
            let percent = if *total > 0 { done * 100 / total } else { 0 };
            lines.push(format!("fetching model {:02x}{:02x}...: {percent} %", hash[0], hash[1]));
        }
    }
    if let Some((feedback, ok)) = &world.feedback {
        lines.push(format!("{} {feedback}", if *ok { "[ok]" } else { "[!]" }));
    }
    let joined = lines.join("\n");
    if text.0 != joined {
        text.0 = joined;
    }
}

/// A progress label over a model that is still on its way.
#[derive(Component, Debug)]
struct ModelLabel(Entity);

fn place_model_labels(
    mut commands: Commands,
    world: Res<CityWorld>,
    models: Query<(Entity, &ModelView, &GlobalTransform)>,
    mut labels: Query<(Entity, &ModelLabel, &mut Text, &mut Node, &mut Visibility, &ComputedNode)>,
    cameras: Query<(&Camera, &GlobalTransform), With<Player>>,
) {
    let Ok(camera) = cameras.single() else { return };
    let mut labelled = HashSet::new();
    for (label, ModelLabel(anchor), mut text, mut node, mut visibility, computed) in &mut labels {
        let Ok((_, view, at)) = models.get(*anchor) else {
            commands.entity(label).despawn();
            continue;
        };
        labelled.insert(*anchor);
        let wording = match world.models.get(&view.model.hash) {
            Some(ModelState::Fetching { done, total }) if *total > 0 => {
                format!("model arriving: {} %", done * 100 / total)
            }
            Some(ModelState::Fetching { .. }) | None => "model arriving...".to_owned(),
            Some(ModelState::Failed(reason)) => format!("model unavailable: {reason}"),
            Some(ModelState::Ready) => {
                commands.entity(label).despawn();
                continue;
            }
        };
        if text.0 != wording {
            text.0 = wording;
        }
        let top = at.translation() + Vec3::Y * (view.model.max[1] + 0.5);
        crate::hud::place_label(camera, top, 60.0, &mut node, &mut visibility, computed);
    }
    for (entity, view, _) in &models {
        if !labelled.contains(&entity) && world.models.get(&view.model.hash) != Some(&ModelState::Ready) {
            commands.spawn((ModelLabel(entity), crate::hud::floating_label("model arriving...", 14.0, Color::WHITE)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ground_is_hit_only_looking_down() {
        let down = Ray3d::new(Vec3::new(0.0, 2.0, 0.0), Dir3::new(Vec3::new(0.0, -1.0, -1.0)).expect("direction"));
        let hit = ground_hit(down).expect("hits");
        assert!((hit - Vec3::new(0.0, 0.0, -2.0)).length() < 1e-4);
        let up = Ray3d::new(Vec3::Y, Dir3::Y);
        assert_eq!(ground_hit(up), None);
    }

    #[test]
    fn boxes_are_picked_in_front_only() {
        let ray = Ray3d::new(Vec3::ZERO, Dir3::NEG_Z);
        assert_eq!(ray_box(ray, (Vec3::new(-1.0, -1.0, -6.0), Vec3::new(1.0, 1.0, -4.0))), Some(4.0));
        assert_eq!(ray_box(ray, (Vec3::new(-1.0, -1.0, 4.0), Vec3::new(1.0, 1.0, 6.0))), None);
        assert_eq!(ray_box(ray, (Vec3::new(2.0, -1.0, -6.0), Vec3::new(3.0, 1.0, -4.0))), None);
    }

    #[test]
    fn a_held_piece_follows_the_hand_on_the_grid_and_turns_in_steps() {
        let piece = object_at(&PaletteItem::Shape(Shape::Cuboid), Vec3::new(2.0, 0.0, 3.0), 0, COLOURS[0]).placement;
        let grip = Transform::from_xyz(2.0, 1.0, 2.2);
        // The hand moves 1.3 m along x and 0.1 m up: the piece moves by the grid, 1.5 m and 0.
        let moved = held_placement(piece, grip, grip.with_translation(Vec3::new(3.3, 1.1, 2.2)));
        assert_eq!(moved.translation, Vec3::new(3.5, piece.translation.y, 3.0));
        assert_eq!(moved.rotation, piece.rotation);
        // A wrist turn of 50 degrees turns it 45 (three 15-degree steps) about the hand.
        let turned = grip.with_rotation(Quat::from_rotation_y(50f32.to_radians()));
        let placed = held_placement(piece, grip, turned);
        let (yaw, _, _) = placed.rotation.to_euler(EulerRot::YXZ);
        assert!((yaw - 45f32.to_radians()).abs() < 1e-4, "{}", yaw.to_degrees());
        let offset = Quat::from_rotation_y(45f32.to_radians()) * (piece.translation - grip.translation);
        assert_eq!(placed.translation, snap(grip.translation + offset).max(Vec3::new(f32::MIN, 0.5, f32::MIN)));
        // Pushed into the ground, it stops standing on it.
        let low = held_placement(piece, grip, grip.with_translation(Vec3::new(2.0, -3.0, 2.2)));
        assert!((low.aabb().0.y).abs() < 1e-5, "{:?}", low.aabb());
    }

    #[test]
    fn placements_snap_to_the_grid_and_stand_on_the_ground() {
        assert_eq!(snap(Vec3::new(1.26, 0.1, -0.74)), Vec3::new(1.5, 0.0, -0.5));
        let object = object_at(&PaletteItem::Shape(Shape::Cuboid), Vec3::new(2.0, 0.0, 3.0), 0, COLOURS[0]);
        let (low, high) = object.aabb();
        assert!(low.y.abs() < 1e-5 && (high.y - 1.0).abs() < 1e-5);
        let model = ModelRef { hash: [1; 32], bytes: 10, triangles: 2, min: [-1.0, -0.5, -1.0], max: [1.0, 3.0, 1.0] };
        let placed = object_at(&PaletteItem::Model("m".into(), model), Vec3::ZERO, 0, COLOURS[0]);
        assert!(placed.aabb().0.y.abs() < 1e-5, "the model's lowest point meets the ground");
    }
}
