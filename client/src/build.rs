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
use bevy::world_serialization::WorldAssetRoot;
use sanctuary_engine::{
    ModelRef, Object, ObjectId, ObjectKind, Op, ParcelCoord, ParcelState, Placement, PublicKey, Rejection, Rgb, Shape,
    Structure,
};
use sanctuary_net::{Command, Event, SharedReplica};

use crate::Frame;
use crate::network::{ChatInput, NetLink};
use crate::world::{ParcelView, StructureView, structure_transform};

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
mod panel;
mod tools;

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
    app.add_systems(Update, load_ready_models.in_set(Frame::Present));
    tools::plugin(app);
    panel::plugin(app);
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
    /// Trust, shields or blocks changed: the parcels drawn are looked at again, and only those
    /// whose look changed are drawn again (trust may change four times a second).
    pub(crate) looks_may_change: bool,
    /// Each parcel drawn: its owner and how their work was drawn.
    pub(crate) drawn: HashMap<ParcelCoord, (PublicKey, BuildLook)>,
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
            Event::Trust(_) | Event::Shields(_) | Event::Blocks(_) => self.looks_may_change = true,
            Event::Built(op) => {
                let what = match op {
                    Op::Claim { .. } => "claimed your home parcel",
                    Op::Transfer { .. } => "parcel handed on",
                    Op::Put { .. } => "placed and saved",
                    Op::Remove { .. } => "removed",
                    Op::List { .. } => "listed for sale",
                    Op::Withdraw { .. } => "listing withdrawn",
                    Op::Buy { .. } | Op::BuyLightning { .. } => "purchase claimed",
                    Op::Ban { banned: true, .. } => "kept off your parcel",
                    Op::Ban { banned: false, .. } => "let back onto your parcel",
                    // Trust is the social panel's to tell.
                    Op::Trust { .. } => return,
                    Op::Host { kept: true, .. } => "your things are kept there now",
                    Op::Host { kept: false, .. } => "no longer kept there",
                    // Said by the node itself whenever the name or colour changes.
                    Op::Profile { .. } => return,
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
    if std::mem::take(&mut world.looks_may_change)
        && let Some(social) = social.as_deref()
    {
        let shown: HashSet<ParcelCoord> = parcels.iter().map(|(_, ParcelView(parcel))| *parcel).collect();
        world.drawn.retain(|parcel, _| shown.contains(parcel));
        let stale: Vec<ParcelCoord> = world
            .drawn
            .iter()
            .filter(|(_, (owner, look))| build_look(social, owner) != *look)
            .map(|(parcel, _)| *parcel)
            .collect();
        world.changed.extend(stale);
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
        world.drawn.insert(*parcel, (owner, look));
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
