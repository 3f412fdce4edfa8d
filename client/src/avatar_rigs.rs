//! Avatars drawn from their models. When someone's avatar is here and within the rank this
//! viewer shows, its glTF scene is spawned under them and the plain body is hidden; its
//! humanoid bones are found by name once the scene is in, and every frame they are turned to
//! follow the joints `sanctuary_engine::body` worked out from the person's head and hands
//! (bodies.rs): the spine and neck lean toward the head, the head turns as theirs does, the
//! upper arms and forearms point from shoulder to elbow to wrist, the legs from hip to knee to
//! ankle, the feet stay level. Only the bones' turns change (and where the hips are), so every
//! limb keeps the length its maker gave it.

use std::collections::HashMap;
use std::sync::OnceLock;

use bevy::asset::AssetPath;
use bevy::gltf::GltfAssetLabel;
use bevy::prelude::*;
use bevy::world_serialization::{WorldAsset, WorldAssetRoot};
use sanctuary_engine::body::{BodyShape, Joints, Limb, two_bone};
use sanctuary_engine::crowd::Detail;
use sanctuary_engine::{EYE_HEIGHT, HumanBone, Humanoid, RigSource};

use crate::Frame;
use crate::avatars::{Avatars, DEFAULT_AVATARS, Shown};
use crate::bodies::{AvatarBody, AvatarHead, FarPart, Feet};
use crate::crowd::Drive;
use crate::crowd::Figure;
use crate::network::{HandView, RemoteAvatarView};
use crate::own_body::OwnBody;
use crate::world::DrifterView;

/// The most nodes walked looking for an avatar's bones.
const MAX_WALKED: usize = 4096;
/// The frames an avatar's bones are looked for once its scene is in; past them it is drawn whole
/// and stiff (its bones' names were not as its description said).
const MAX_TRIES: u32 = 300;
/// The most avatar scenes kept loaded while nobody near wears them, so that someone walking in
/// and out of reach is not read again each time.
const KEPT_SCENES: usize = 48;
/// Frames a figure's model stays spawned (hidden) after it stops being near: two figures trading
/// the 32nd place every frame keep theirs rather than spawning a scene each frame.
const UNDRESS_AFTER_FRAMES: u32 = 90;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<AvatarsDrawn>().add_systems(
        Update,
        (outfit_people, outfit_drifters, dress, find_bones, pose_rigs, show_detail, hide_in_first_person)
            .chain()
            .in_set(Frame::Animate)
            .after(crate::bodies::pose_bodies),
    );
}

/// How many figures are drawn from their avatar models now.
#[derive(Resource, Debug, Default)]
pub struct AvatarsDrawn {
    /// People here (what `--after-avatars` waits for; the lobby's drifters do not count).
    pub people: usize,
    /// Every figure, drifters too.
    pub figures: usize,
}

/// Which avatar model a figure wears when it is near.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LookId {
    /// A model from the blob store (someone here wears it).
    Blob([u8; 32]),
    /// One of [`DEFAULT_AVATARS`] (a drifter wears it), by its place in that list.
    Shipped(usize),
}

impl LookId {
    /// Where the asset server reads its model.
    fn path(self) -> AssetPath<'static> {
        match self {
            LookId::Blob(hash) => crate::blobs::model_path(&hash),
            LookId::Shipped(index) => crate::blobs::shipped_path(index),
        }
    }
}

/// The avatar model a figure wears, if any, with its skeleton.
#[derive(Component, Debug, Clone, Default)]
pub struct Outfit(pub Option<(LookId, Option<Humanoid>)>);

/// The root of the scene an avatar model is drawn from, under its figure; the asset server
/// fills it in (a benchmark without one fills it in itself).
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelScene(pub LookId);

/// The model someone wears, as drawn under their figure.
#[derive(Component)]
struct Worn {
    look: LookId,
    scene: Entity,
    humanoid: Option<Humanoid>,
    skeleton: Option<Skeleton>,
    /// Frames spent looking for its bones with its scene in.
    tries: u32,
    /// Frames it has not been near, in a row.
    away: u32,
}

/// An avatar's bones, found, with their pose at rest.
struct Skeleton {
    bones: Vec<RigBone>,
    /// The head bone (shrunk to nothing in the wearer's own eyes) and the nodes VRM marks
    /// `thirdPersonOnly` (hidden from them).
    first_person: FirstPerson,
    /// Model metres to world metres, so that its eyes are where the person's are.
    scale: f32,
    /// Turns the model to face −Z (the way a body faces when it has not turned).
    to_forward: Quat,
}

/// One humanoid bone of an avatar.
struct RigBone {
    bone: HumanBone,
    entity: Entity,
    /// Its transform relative to its parent, at rest.
    rest: Transform,
    /// Its parent's transform in the model, at rest.
    parent_rest: Transform,
    /// The nearest humanoid bone above it (an index into `bones`) and how its parent lies
    /// relative to that bone at rest; `None` for the hips.
    anchor: Option<(usize, Transform)>,
    /// The direction to the next bone down the limb, in this bone's own space, if any.
    aim: Option<Vec3>,
    /// How far the next bone down the limb is, at rest (0 if none).
    length: f32,
    /// For a hand: its rotation relative to a controller held as the hand lies at rest (see
    /// [`grip_at_rest`]), so that it turns as the controller does.
    grip: Option<Quat>,
}

/// What of an avatar its wearer does not see of it, looking out from inside its head.
#[derive(Debug, Default)]
struct FirstPerson {
    head: Option<Entity>,
    hidden: Vec<Entity>,
}

/// How small the head bone of one's own avatar is drawn: the face, hair and everything else it
/// moves fold into the neck, out of the eyes' way.
const SHRUNK_HEAD: f32 = 1e-3;

/// A controller's rotation (OpenXR's grip: −z along the fist, +x to the right of a hand held
/// out ahead with its palm inward) made from where it points and its +x.
fn controller_frame(points: Vec3, right: Vec3) -> Option<Quat> {
    let z = (-points).try_normalize()?;
    let x = (right - z * right.dot(z)).try_normalize()?;
    let y = z.cross(x);
    Some(Quat::from_mat3(&Mat3::from_cols(x, y, z)).normalize())
}

/// The controller a hand at rest holds, in the model: pointing along the forearm, and (as
/// avatars rest with their palms down) its +x down for the left hand, up for the right one.
fn grip_at_rest(forearm: Vec3, left: bool) -> Option<Quat> {
    controller_frame(forearm, if left { Vec3::NEG_Y } else { Vec3::Y })
}

/// The bone each bone points at, down its limb.
fn child_of(bone: HumanBone) -> Option<HumanBone> {
    Some(match bone {
        HumanBone::Spine => HumanBone::Chest,
        HumanBone::Chest => HumanBone::Neck,
        HumanBone::UpperChest => HumanBone::Neck,
        HumanBone::Neck => HumanBone::Head,
        HumanBone::LeftUpperArm => HumanBone::LeftLowerArm,
        HumanBone::LeftLowerArm => HumanBone::LeftHand,
        HumanBone::RightUpperArm => HumanBone::RightLowerArm,
        HumanBone::RightLowerArm => HumanBone::RightHand,
        HumanBone::LeftUpperLeg => HumanBone::LeftLowerLeg,
        HumanBone::LeftLowerLeg => HumanBone::LeftFoot,
        HumanBone::RightUpperLeg => HumanBone::RightLowerLeg,
        HumanBone::RightLowerLeg => HumanBone::RightFoot,
        _ => return None,
    })
}

/// Where the joints say a spine or neck bone should point: from one joint to the next.
fn target(bone: HumanBone, joints: &Joints) -> Option<Vec3> {
    let (from, to) = match bone {
        HumanBone::Spine | HumanBone::Chest | HumanBone::UpperChest => (joints.hips, joints.neck_base),
        HumanBone::Neck => (joints.neck_base, joints.neck_top),
        _ => return None,
    };
    (to - from).try_normalize()
}

/// The limb an upper arm or thigh starts: the joints the body worked out for it.
fn limb_of(bone: HumanBone, joints: &Joints) -> Option<Limb> {
    match bone {
        HumanBone::LeftUpperArm => Some(joints.arms[0]),
        HumanBone::RightUpperArm => Some(joints.arms[1]),
        HumanBone::LeftUpperLeg => Some(joints.legs[0]),
        HumanBone::RightUpperLeg => Some(joints.legs[1]),
        _ => None,
    }
}

/// The skeletons of the avatars that ship, read once.
fn shipped_humanoids() -> &'static [Option<Humanoid>] {
    static READ: OnceLock<Vec<Option<Humanoid>>> = OnceLock::new();
    READ.get_or_init(|| {
        let limits = sanctuary_engine::avatar::avatar_limits();
        DEFAULT_AVATARS
            .iter()
            .map(|(_, bytes)| {
                sanctuary_engine::inspect_model(bytes, &|_| None, &limits).ok().and_then(|summary| summary.humanoid)
            })
            .collect()
    })
}

/// The shipped avatar a drifter wears: agents the haloed one, the others one of the rest, by
/// their path so that neighbours differ.
pub fn drifter_look(drifter: &sanctuary_engine::Drifter) -> usize {
    let last = DEFAULT_AVATARS.len() - 1;
    if drifter.is_agent {
        last
    } else {
        (drifter.phase.to_bits() as usize ^ drifter.orbit_radius.to_bits() as usize) % last
    }
}

/// Each person here wears the model the avatars say to show (within the viewer's rank, and here).
fn outfit_people(
    avatars: Res<Avatars>,
    mut people: Query<(&RemoteAvatarView, Option<&mut Outfit>, Entity)>,
    mut commands: Commands,
) {
    for (view, outfit, entity) in &mut people {
        let wanted = match avatars.shown(&view.key) {
            Shown::Model { hash, humanoid } => Some((LookId::Blob(hash), humanoid)),
            _ => None,
        };
        let now = outfit.as_ref().and_then(|outfit| outfit.0.as_ref().map(|(look, _)| *look));
        if now == wanted.map(|(look, _)| look) && outfit.is_some() {
            continue;
        }
        let next = Outfit(wanted.map(|(look, humanoid)| (look, humanoid.cloned())));
        match outfit {
            Some(mut outfit) => *outfit = next,
            None => {
                commands.entity(entity).insert(next);
            }
        }
    }
}

/// Each new drifter wears one of the shipped avatars.
fn outfit_drifters(mut commands: Commands, drifters: Query<(Entity, &DrifterView), Added<DrifterView>>) {
    for (entity, DrifterView(drifter)) in &drifters {
        let index = drifter_look(drifter);
        let humanoid = shipped_humanoids().get(index).cloned().flatten();
        commands.entity(entity).insert(Outfit(Some((LookId::Shipped(index), humanoid))));
    }
}

/// Spawns the model of every near figure that wears one, and takes it away when the figure wears
/// another or has not been near for a while.
fn dress(
    mut commands: Commands,
    assets: Option<Res<AssetServer>>,
    mut figures: Query<(Entity, &Figure, &Outfit, Option<&mut Worn>)>,
    mut kept: Local<HashMap<LookId, Handle<WorldAsset>>>,
) {
    for (entity, figure, outfit, worn) in &mut figures {
        let near = figure.detail == Detail::Near;
        let worn = match worn {
            Some(mut worn) if outfit.0.as_ref().is_some_and(|(look, _)| *look == worn.look) => {
                worn.away = if near { 0 } else { worn.away.saturating_add(1) };
                if worn.away > UNDRESS_AFTER_FRAMES {
                    commands.entity(worn.scene).despawn();
                    commands.entity(entity).remove::<Worn>();
                }
                continue;
            }
            worn => worn,
        };
        let wanted = outfit.0.as_ref().filter(|_| near);
        match (wanted, worn) {
            (Some((look, humanoid)), worn) => {
                if let Some(worn) = worn {
                    commands.entity(worn.scene).despawn();
                }
                // Hidden until its bones are found and posed, so that it never shows in a T-pose.
                let mut scene = commands.spawn((ModelScene(*look), Transform::default(), Visibility::Hidden));
                if let Some(assets) = &assets {
                    if kept.len() >= KEPT_SCENES && !kept.contains_key(look) {
                        // Those still drawn hold their own handles; the others may go.
                        kept.clear();
                    }
                    let handle = kept
                        .entry(*look)
                        .or_insert_with(|| assets.load(GltfAssetLabel::Scene(0).from_asset(look.path())))
                        .clone();
                    scene.insert(WorldAssetRoot(handle));
                }
                let scene = scene.id();
                commands.entity(entity).add_child(scene);
                commands.entity(entity).insert(Worn {
                    look: *look,
                    scene,
                    humanoid: humanoid.clone(),
                    skeleton: None,
                    tries: 0,
                    away: 0,
                });
            }
            (None, Some(worn)) => {
                commands.entity(worn.scene).despawn();
                commands.entity(entity).remove::<Worn>();
            }
            (None, None) => {}
        }
    }
}

/// Finds the bones of avatars whose scenes have come in.
fn find_bones(mut worn: Query<&mut Worn>, children: Query<&Children>, nodes: Query<(&Name, &Transform)>) {
    for mut worn in &mut worn {
        if worn.skeleton.is_some() {
            continue;
        }
        let in_scene = children.get(worn.scene).is_ok();
        worn.tries += u32::from(in_scene);
        let Some(humanoid) = worn.humanoid.clone().filter(|_| worn.tries <= MAX_TRIES) else {
            // No skeleton (or its bones were never found): drawn whole and stiff where the person
            // stands, as soon as it is in.
            if in_scene {
                worn.skeleton = Some(Skeleton::whole());
            }
            continue;
        };
        // Every node under the scene, with its parent and its transform in the model at rest.
        let mut found: HashMap<Entity, (Option<Entity>, Transform)> = HashMap::new();
        let mut by_name: HashMap<&str, Entity> = HashMap::new();
        let mut queue = vec![(worn.scene, Transform::IDENTITY)];
        while let Some((entity, parent_global)) = queue.pop() {
            if found.len() >= MAX_WALKED {
                break;
            }
            let Ok(kids) = children.get(entity) else { continue };
            for kid in kids.iter() {
                let Ok((name, local)) = nodes.get(kid) else { continue };
                let global = parent_global.mul_transform(*local);
                found.insert(kid, (Some(entity), global));
                by_name.entry(name.as_str()).or_insert(kid);
                queue.push((kid, global));
            }
        }
        let mut bones: Vec<RigBone> = Vec::new();
        let mut entity_of: HashMap<HumanBone, Entity> = HashMap::new();
        for ((bone, _), name) in humanoid.bones.iter().zip(&humanoid.names) {
            let Some(entity) = by_name.get(name.as_str()).copied() else { break };
            entity_of.insert(*bone, entity);
        }
        if entity_of.len() != humanoid.bones.len() {
            continue; // Not in yet (or a name Bevy spelled differently): try next frame.
        }
        let global = |entity: Entity| found.get(&entity).map_or(Transform::IDENTITY, |(_, global)| *global);
        let parent = |entity: Entity| found.get(&entity).and_then(|(parent, _)| *parent);
        for (bone, _) in &humanoid.bones {
            let entity = entity_of[bone];
            let Ok((_, rest)) = nodes.get(entity) else { continue };
            let parent_rest = parent(entity).map_or(Transform::IDENTITY, global);
            // The nearest humanoid bone above, already listed (parents come first).
            let mut anchor = None;
            let mut above = parent(entity);
            while let Some(node) = above {
                if let Some(index) = bones.iter().position(|rig| rig.entity == node) {
                    let relative = Transform::from_matrix(
                        global(bones[index].entity).to_matrix().inverse() * parent_rest.to_matrix(),
                    );
                    anchor = Some((index, relative));
                    break;
                }
                above = parent(node);
            }
            let own = global(entity);
            let there = child_of(*bone)
                .and_then(|child| entity_of.get(&child))
                .map(|child| global(*child).translation - own.translation);
            let aim = there.and_then(|there| (own.rotation.inverse() * there).try_normalize());
            let length = there.map_or(0.0, Vec3::length);
            let forearm = match bone {
                HumanBone::LeftHand => Some((HumanBone::LeftLowerArm, true)),
                HumanBone::RightHand => Some((HumanBone::RightLowerArm, false)),
                _ => None,
            };
            let grip = forearm.and_then(|(lower, left)| {
                let elbow = global(*entity_of.get(&lower)?).translation;
                Some(grip_at_rest(own.translation - elbow, left)?.inverse() * own.rotation)
            });
            bones.push(RigBone { bone: *bone, entity, rest: *rest, parent_rest, anchor, aim, length, grip });
        }
        let first_person = FirstPerson {
            head: entity_of.get(&HumanBone::Head).copied(),
            hidden: humanoid.hidden_names.iter().filter_map(|name| by_name.get(name.as_str()).copied()).collect(),
        };
        // Scaled so that its eyes (a little above the head bone) are at the person's height.
        let head = entity_of.get(&HumanBone::Head).map_or(Vec3::ZERO, |entity| global(*entity).translation);
        let neck = entity_of.get(&HumanBone::Neck).map_or(head, |entity| global(*entity).translation);
        let eyes = head.y + (head.y - neck.y).clamp(0.0, 0.3);
        let scale = if eyes > 0.1 { (EYE_HEIGHT / eyes).clamp(0.2, 5.0) } else { 1.0 };
        // VRM 0.x models face −Z already; VRM 1.0 and plain glTF face +Z.
        let to_forward = match humanoid.source {
            RigSource::Vrm0 => Quat::IDENTITY,
            RigSource::Vrm1 | RigSource::NodeNames => Quat::from_rotation_y(std::f32::consts::PI),
        };
        info!("an avatar is drawn from its model: {} humanoid bones found", bones.len());
        worn.skeleton = Some(Skeleton { bones, first_person, scale, to_forward });
    }
}

impl Skeleton {
    /// No bones: a model drawn whole and stiff.
    fn whole() -> Self {
        Skeleton { bones: Vec::new(), first_person: FirstPerson::default(), scale: 1.0, to_forward: Quat::IDENTITY }
    }
}

/// Turns every near figure's found skeleton's bones to follow its joints and its hands'
/// turns; one's own avatar's head is shrunk out of one's eyes.
fn pose_rigs(
    people: Query<(&Transform, &Worn, &Feet, &Figure, &Drive, Has<OwnBody>)>,
    mut transforms: Query<&mut Transform, Without<Worn>>,
) {
    for (head, worn, feet, figure, drive, own) in &people {
        if figure.detail != Detail::Near {
            continue;
        }
        let Some(skeleton) = &worn.skeleton else { continue };
        let joints = feet.joints();
        // Where the model stands: on the floor under the hips (its feet at the ankles' height),
        // turned as the body faces, scaled to the person. A model without a skeleton stands
        // there whole.
        let ankle = BodyShape::for_eye_height(EYE_HEIGHT).ankle;
        let floor = joints.legs[0].end.y.min(joints.legs[1].end.y) - ankle;
        let turn = joints.facing * skeleton.to_forward;
        let model =
            Transform { translation: joints.hips.with_y(floor), rotation: turn, scale: Vec3::splat(skeleton.scale) };
        if let Ok(mut scene) = transforms.get_mut(worn.scene) {
            *scene = Transform::from_matrix(head.to_matrix().inverse() * model.to_matrix());
        }
        if skeleton.bones.is_empty() {
            continue;
        }
        let into_model = model.to_matrix().inverse();
        let to_model = |point: Vec3| into_model.transform_point3(point);
        let model_joints = Joints {
            head: to_model(joints.head),
            neck_top: to_model(joints.neck_top),
            neck_base: to_model(joints.neck_base),
            hips: to_model(joints.hips),
            arms: joints.arms.map(|limb| Limb {
                root: to_model(limb.root),
                bend: to_model(limb.bend),
                end: to_model(limb.end),
            }),
            legs: joints.legs.map(|limb| Limb {
                root: to_model(limb.root),
                bend: to_model(limb.bend),
                end: to_model(limb.end),
            }),
            facing: Quat::IDENTITY,
        };
        // The head's own turn, relative to where the body faces, in the model's frame.
        let head_turn = turn.inverse() * head.rotation * joints.facing.inverse() * turn;
        let hands = [drive.0.left_hand.rotation, drive.0.right_hand.rotation].map(|held| turn.inverse() * held);
        let posed = pose(skeleton, &model_joints, head_turn, hands);
        for (rig, mut local) in skeleton.bones.iter().zip(posed) {
            if own && skeleton.first_person.head == Some(rig.entity) {
                local.scale = Vec3::splat(SHRUNK_HEAD);
            }
            if let Ok(mut transform) = transforms.get_mut(rig.entity) {
                *transform = local;
            }
        }
    }
}

/// Each bone's transform relative to its parent for `joints` (in the model's own space) and
/// the head's turn: parents first, each bone's parent taken as just posed.
///
/// Each arm and leg is solved again from the model's own shoulder or hip, with its own bone
/// lengths, toward the wrist or ankle the body wants, bending the way the body's elbow or knee
/// does: so hands reach the controllers and feet stay where they are planted, whatever the
/// model's proportions. The hands turn as `hands` (the controllers' rotations in the model,
/// left and right) do.
fn pose(skeleton: &Skeleton, joints: &Joints, head_turn: Quat, hands: [Quat; 2]) -> Vec<Transform> {
    let mut globals: Vec<Transform> = Vec::with_capacity(skeleton.bones.len());
    let mut locals: Vec<Transform> = Vec::with_capacity(skeleton.bones.len());
    // Where a forearm or shin is to point, once its upper bone is solved.
    let mut lower_ends: Vec<(HumanBone, Vec3)> = Vec::new();
    let length_of = |bone: HumanBone| skeleton.bones.iter().find(|rig| rig.bone == bone).map_or(0.0, |rig| rig.length);
    for rig in &skeleton.bones {
        let parent = match rig.anchor {
            Some((index, relative)) => {
                globals.get(index).map_or(rig.parent_rest, |anchor| anchor.mul_transform(relative))
            }
            None => rig.parent_rest,
        };
        let mut local = rig.rest;
        if rig.bone == HumanBone::Hips {
            // The hips go where the body's are; the rest of the body hangs from them.
            let inverse = parent.to_matrix().inverse();
            local.translation = inverse.transform_point3(joints.hips);
        }
        let kept = parent.mul_transform(local);
        let wanted = if let Some(limb) = limb_of(rig.bone, joints) {
            let lower = child_of(rig.bone).map_or(0.0, length_of);
            let solved = two_bone(kept.translation, limb.end, rig.length, lower, limb.bend - limb.root);
            if let Some(child) = child_of(rig.bone) {
                lower_ends.push((child, solved.end));
            }
            (solved.bend - kept.translation).try_normalize()
        } else if let Some((_, end)) = lower_ends.iter().find(|(bone, _)| *bone == rig.bone) {
            (*end - kept.translation).try_normalize()
        } else {
            target(rig.bone, joints)
        };
        // A hand turns as its controller does: the controller's turn from how a hand at rest
        // holds it, applied to the hand's rest.
        let held = match rig.bone {
            HumanBone::LeftHand => rig.grip.map(|grip| hands[0] * grip),
            HumanBone::RightHand => rig.grip.map(|grip| hands[1] * grip),
            _ => None,
        };
        let rotation = match (held, rig.aim, wanted) {
            (Some(held), _, _) => held,
            (None, Some(aim), Some(wanted)) => {
                let now = (kept.rotation * aim).normalize_or_zero();
                Quat::from_rotation_arc(now, wanted) * kept.rotation
            }
            _ if rig.bone == HumanBone::Head => head_turn * (rig.parent_rest.rotation * rig.rest.rotation),
            // Feet stay level as at rest, whatever the shins do.
            _ if matches!(rig.bone, HumanBone::LeftFoot | HumanBone::RightFoot) => {
                rig.parent_rest.rotation * rig.rest.rotation
            }
            _ => kept.rotation,
        };
        local.rotation = (parent.rotation.inverse() * rotation).normalize();
        globals.push(parent.mul_transform(local));
        locals.push(local);
    }
    locals
}

/// Hides from its wearer what VRM marks `thirdPersonOnly` in their own avatar.
fn hide_in_first_person(own: Query<&Worn, With<OwnBody>>, mut nodes: Query<&mut Visibility, Without<Worn>>) {
    for worn in &own {
        let Some(skeleton) = &worn.skeleton else { continue };
        for node in &skeleton.first_person.hidden {
            if let Ok(mut visibility) = nodes.get_mut(*node)
                && *visibility != Visibility::Hidden
            {
                *visibility = Visibility::Hidden;
            }
        }
    }
}

/// Shows each figure's parts for its grade: its model near (once its bones are found and posed,
/// so that it never shows in a T-pose; kept hidden a while after it stops being near), its
/// jointed plain body and hands near without one and mid, its single figure far.
#[allow(clippy::type_complexity)]
fn show_detail(
    mut drawn: ResMut<AvatarsDrawn>,
    figures: Query<(&Figure, &Children, Option<&Worn>, Has<Feet>, Has<RemoteAvatarView>, Has<OwnBody>)>,
    mut parts: Query<
        (&mut Visibility, Has<FarPart>, Has<AvatarHead>),
        (Or<(With<AvatarBody>, With<AvatarHead>, With<HandView>)>, Without<ModelScene>),
    >,
    mut scenes: Query<&mut Visibility, With<ModelScene>>,
) {
    *drawn = AvatarsDrawn::default();
    for (figure, children, worn, posed, is_person, own) in &figures {
        let near = figure.detail == Detail::Near;
        let modelled = near && posed && worn.is_some_and(|worn| worn.skeleton.is_some());
        if let Some(worn) = worn
            && let Ok(mut scene) = scenes.get_mut(worn.scene)
        {
            let wanted = if modelled { Visibility::Inherited } else { Visibility::Hidden };
            if *scene != wanted {
                *scene = wanted;
            }
        }
        drawn.figures += usize::from(modelled);
        drawn.people += usize::from(modelled && is_person);
        let jointed = !modelled && figure.detail != Detail::Far;
        let far = figure.detail == Detail::Far;
        for child in children.iter() {
            let Ok((mut visibility, is_far_part, is_head)) = parts.get_mut(child) else { continue };
            // One's own eyes are inside one's own head.
            let shown = if is_far_part { far } else { jointed } && !(own && is_head);
            let wanted = if shown { Visibility::Inherited } else { Visibility::Hidden };
            if *visibility != wanted {
                *visibility = wanted;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sanctuary_engine::body::{Body, BodyShape, Drivers, Tracked};

    /// A left arm in a T-pose hanging from the hips, as a model facing −z gives it (its left
    /// along −x; model metres, the arm as long as the body's so that the hand can reach).
    fn arm_skeleton(shape: &BodyShape) -> Skeleton {
        let shoulder = Vec3::new(-shape.shoulder_half, 1.43, 0.0);
        let chain = [
            (HumanBone::Hips, None, Vec3::new(0.0, 0.98, 0.0)),
            (HumanBone::LeftUpperArm, Some(0), shoulder),
            (HumanBone::LeftLowerArm, Some(1), shoulder + Vec3::NEG_X * shape.upper_arm),
            (HumanBone::LeftHand, Some(2), shoulder + Vec3::NEG_X * shape.arm()),
        ];
        let mut bones = Vec::new();
        for (index, (bone, parent, at)) in chain.iter().enumerate() {
            let parent_at = parent.map_or(Vec3::ZERO, |parent: usize| chain[parent].2);
            let aim = chain.get(index + 1).map(|(_, _, next)| (*next - *at).normalize());
            bones.push(RigBone {
                bone: *bone,
                entity: Entity::PLACEHOLDER,
                rest: Transform::from_translation(*at - parent_at),
                parent_rest: Transform::from_translation(parent_at),
                anchor: parent.map(|parent| (parent, Transform::IDENTITY)),
                aim: if (1..=2).contains(&index) { aim } else { None },
                length: if (1..=2).contains(&index) { [shape.upper_arm, shape.forearm][index - 1] } else { 0.0 },
                // The hand rests turned as its parents are (not at all), along the arm (−x).
                grip: (*bone == HumanBone::LeftHand)
                    .then(|| grip_at_rest(Vec3::NEG_X, true).expect("a frame").inverse()),
            });
        }
        Skeleton { bones, first_person: FirstPerson::default(), scale: 1.0, to_forward: Quat::IDENTITY }
    }

    #[test]
    fn a_model_stays_a_while_after_its_figure_stops_being_near() {
        let mut app = App::new();
        app.add_systems(Update, dress);
        let mut figure = Figure::new(sanctuary_engine::Rgb::new(1, 2, 3), 0);
        figure.detail = Detail::Near;
        let entity = app.world_mut().spawn((figure, Outfit(Some((LookId::Shipped(0), None))))).id();
        app.update();
        let scene = app.world().get::<Worn>(entity).expect("dressed when near").scene;
        app.world_mut().get_mut::<Figure>(entity).expect("figure").detail = Detail::Mid;
        for _ in 0..UNDRESS_AFTER_FRAMES {
            app.update();
        }
        // Back near at the edge of the crowd: the same scene, not a new one.
        assert_eq!(app.world().get::<Worn>(entity).map(|worn| worn.scene), Some(scene));
        app.world_mut().get_mut::<Figure>(entity).expect("figure").detail = Detail::Near;
        app.update();
        app.world_mut().get_mut::<Figure>(entity).expect("figure").detail = Detail::Far;
        for _ in 0..=UNDRESS_AFTER_FRAMES + 1 {
            app.update();
        }
        assert!(app.world().get::<Worn>(entity).is_none(), "undressed after staying away");
        assert!(app.world().get_entity(scene).is_err(), "its scene is gone");
    }

    #[test]
    fn only_people_count_for_the_screenshot_and_near_figures_hide_their_far_parts() {
        let mut app = App::new();
        app.init_resource::<AvatarsDrawn>().add_systems(Update, show_detail);
        let mut near = Figure::new(sanctuary_engine::Rgb::new(1, 2, 3), 0);
        near.detail = Detail::Near;
        let mut spawn = |is_person: bool, modelled: bool| {
            let world = app.world_mut();
            let scene = world.spawn_empty().id();
            let skeleton = Skeleton::whole();
            let worn = Worn {
                look: LookId::Shipped(0),
                scene,
                humanoid: None,
                skeleton: modelled.then_some(skeleton),
                tries: 0,
                away: 0,
            };
            let mut figure = world.spawn((near, worn, Feet::standing()));
            if is_person {
                let key = sanctuary_engine::PublicKey::from_secret_seed(&[7; 32]);
                figure.insert(RemoteAvatarView { key, name: "Bo".into(), colour: [1, 2, 3] });
            }
            let far = figure.with_child((AvatarBody, FarPart::Body, Visibility::Inherited)).id();
            world.entity(far).get::<Children>().map(|children| children[0]).expect("a far part")
        };
        let drifter_part = spawn(false, true);
        spawn(true, true);
        spawn(true, false);
        app.update();
        let drawn = app.world().resource::<AvatarsDrawn>();
        assert_eq!((drawn.people, drawn.figures), (1, 2), "a drifter's model is not a person's avatar");
        assert_eq!(app.world().get::<Visibility>(drifter_part), Some(&Visibility::Hidden), "near: no far figure");
    }

    /// The posed bones' places in the model, from their transforms relative to their parents.
    fn places(skeleton: &Skeleton, locals: &[Transform]) -> Vec<Vec3> {
        let mut globals: Vec<Transform> = Vec::new();
        for (rig, local) in skeleton.bones.iter().zip(locals) {
            let parent = rig.anchor.map_or(rig.parent_rest, |(index, relative)| globals[index].mul_transform(relative));
            globals.push(parent.mul_transform(*local));
        }
        globals.iter().map(|global| global.translation).collect()
    }

    #[test]
    fn the_avatars_hand_goes_where_the_controller_is_and_its_arm_keeps_its_length() {
        let shape = BodyShape::for_eye_height(EYE_HEIGHT);
        let skeleton = arm_skeleton(&shape);
        let lengths = [shape.upper_arm, shape.forearm];
        for controller in [Vec3::new(-0.35, 1.1, -0.25), Vec3::new(-0.2, 1.6, -0.45), Vec3::new(-0.5, 1.3, 0.05)] {
            let head = Tracked { position: Vec3::new(0.0, EYE_HEIGHT, 0.0), rotation: Quat::IDENTITY };
            let drivers = Drivers {
                head,
                left_hand: Tracked { position: controller, rotation: Quat::IDENTITY },
                right_hand: Tracked { position: Vec3::new(0.3, 1.0, -0.2), rotation: Quat::IDENTITY },
            };
            let joints = Body::new().update(&shape, &drivers, 0.0, 0.0);
            // The model's shoulder is not where the body's is: the arm is solved from its own.
            let posed = pose(&skeleton, &joints, Quat::IDENTITY, [Quat::IDENTITY; 2]);
            let at = places(&skeleton, &posed);
            let hand = at[3];
            assert!(hand.distance(controller) < 0.01, "hand at {hand}, controller at {controller}");
            // The elbow bends the body's way (down, not up).
            assert!(at[2].y < (at[1].y + hand.y) / 2.0 + 0.05, "elbow at {}", at[2]);
            assert!((at[2].distance(at[1]) - lengths[0]).abs() < 1e-3, "upper arm keeps its length");
            assert!((at[3].distance(at[2]) - lengths[1]).abs() < 1e-3, "forearm keeps its length");
        }
    }

    /// The posed bones' rotations in the model.
    fn turns(skeleton: &Skeleton, locals: &[Transform]) -> Vec<Quat> {
        let mut globals: Vec<Transform> = Vec::new();
        for (rig, local) in skeleton.bones.iter().zip(locals) {
            let parent = rig.anchor.map_or(rig.parent_rest, |(index, relative)| globals[index].mul_transform(relative));
            globals.push(parent.mul_transform(*local));
        }
        globals.iter().map(|global| global.rotation).collect()
    }

    #[test]
    fn the_avatars_hand_turns_as_its_controller_does() {
        let shape = BodyShape::for_eye_height(EYE_HEIGHT);
        let skeleton = arm_skeleton(&shape);
        let controller = Vec3::new(-0.3, 1.2, -0.3);
        let held = [
            Quat::IDENTITY,
            Quat::from_rotation_x(-std::f32::consts::FRAC_PI_2),
            Quat::from_rotation_y(0.7) * Quat::from_rotation_z(1.1),
            Quat::from_euler(EulerRot::YXZ, -0.4, 0.9, -2.0),
        ];
        for turn in held {
            let head = Tracked { position: Vec3::new(0.0, EYE_HEIGHT, 0.0), rotation: Quat::IDENTITY };
            let drivers = Drivers {
                head,
                left_hand: Tracked { position: controller, rotation: turn },
                right_hand: Tracked { position: Vec3::new(0.3, 1.0, -0.2), rotation: Quat::IDENTITY },
            };
            let joints = Body::new().update(&shape, &drivers, 0.0, 0.0);
            let posed = pose(&skeleton, &joints, Quat::IDENTITY, [turn, Quat::IDENTITY]);
            let hand = turns(&skeleton, &posed)[3];
            // The hand points where the controller does (along the fist), its palm down when
            // the controller's right is down: how the hand lay at rest, turned as the controller.
            let points = hand * Vec3::NEG_X;
            assert!(points.distance(turn * Vec3::NEG_Z) < 1e-3, "{turn}: points {points}");
            let palm_side = hand * Vec3::NEG_Y;
            assert!(palm_side.distance(turn * Vec3::X) < 1e-3, "{turn}: palm side {palm_side}");
            // And it is still at the end of the arm.
            let at = places(&skeleton, &posed);
            assert!(at[3].distance(controller) < 0.01);
        }
    }

    #[test]
    fn ones_own_head_is_hidden_from_oneself() {
        let mut app = App::new();
        app.init_resource::<AvatarsDrawn>().add_systems(Update, (show_detail, hide_in_first_person).chain());
        let mut near = Figure::new(sanctuary_engine::Rgb::new(1, 2, 3), 0);
        near.detail = Detail::Mid;
        let world = app.world_mut();
        let face = world.spawn(Visibility::Inherited).id();
        let scene = world.spawn_empty().id();
        let mut skeleton = Skeleton::whole();
        skeleton.first_person.hidden.push(face);
        let worn =
            Worn { look: LookId::Shipped(0), scene, humanoid: None, skeleton: Some(skeleton), tries: 0, away: 0 };
        let mut spawn = |own: bool| {
            let mut figure = world.spawn((near, Feet::standing()));
            if own {
                figure.insert(OwnBody);
            }
            let body = figure.with_child((AvatarBody, Visibility::Hidden)).with_child((AvatarHead, Visibility::Hidden));
            body.get::<Children>().expect("parts").iter().collect::<Vec<Entity>>()
        };
        let mine = spawn(true);
        let theirs = spawn(false);
        let owner = world.query_filtered::<Entity, With<OwnBody>>().single(world).expect("one own body");
        world.entity_mut(owner).insert(worn);
        app.update();
        let shown = |app: &App, entity: Entity| app.world().get::<Visibility>(entity) != Some(&Visibility::Hidden);
        assert!(shown(&app, theirs[0]) && shown(&app, theirs[1]), "others' bodies and heads are drawn");
        assert!(shown(&app, mine[0]), "one's own body is drawn");
        assert!(!shown(&app, mine[1]), "one's own head is not");
        assert!(!shown(&app, face), "nor what the avatar marks third-person only");
    }
}
