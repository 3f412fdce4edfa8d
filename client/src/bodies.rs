//! Bodies, jointed and moved by their head and hands: each figure's drivers (a remote person's
//! pose off the network, a drifter's path) drive `sanctuary_engine::body`, the same code for
//! everyone, and its segments (torso, neck, arms, legs) are placed between the joints it gives.
//! The feet remember where they stand, per figure. How often a body is posed follows its
//! grade in the crowd (crowd.rs). Logic only: presentation gives the parts their meshes.

use bevy::prelude::*;
use sanctuary_engine::EYE_HEIGHT;
use sanctuary_engine::body::{Body, BodyShape, Joints};
use sanctuary_engine::crowd::{Detail, due};

use crate::Frame;
use crate::crowd::{CrowdDetail, Drive, Figure};
use crate::world::CurrentRegion;

pub(super) fn plugin(app: &mut App) {
    app.add_systems(
        Update,
        (add_parts, joint_bodies, pose_bodies)
            .chain()
            .in_set(Frame::Animate)
            .after(crate::network::place_remote_avatars)
            .after(crate::crowd::grade_figures),
    );
}

/// The jointed plain body of a figure (its bones carry [`Bone`] as well).
#[derive(Component, Debug, Clone, Copy)]
pub struct AvatarBody;

/// The head of a figure's plain body or of its far figure.
#[derive(Component, Debug, Clone, Copy)]
pub struct AvatarHead;

/// A part of the single figure a far body is drawn as: never posed, one mesh each, shared by
/// every figure of a colour so that they are drawn instanced.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FarPart {
    /// The body, below the head.
    Body,
    /// The head.
    Head,
}

/// Where the far figure's body hangs below the head.
pub const FAR_BODY_BELOW: f32 = 0.75;

/// Frames a figure stays far before its jointed body is taken away: one that hovers at the edge
/// of the mid range keeps it rather than building it again every other frame.
const UNJOINT_AFTER_FRAMES: u32 = 90;

/// The parts of a figure's jointed body (its bones and head), while it has one.
#[derive(Component, Debug)]
pub struct Jointed {
    parts: Vec<Entity>,
    /// Frames it has been far in a row.
    far_frames: u32,
}

/// Gives every new figure the two parts of its far figure. Presentation gives them meshes.
fn add_parts(mut commands: Commands, figures: Query<Entity, Added<Figure>>) {
    for entity in &figures {
        commands.entity(entity).with_children(|children| {
            children.spawn((AvatarBody, FarPart::Body, Transform::from_xyz(0.0, -FAR_BODY_BELOW, 0.0)));
            children.spawn((AvatarHead, FarPart::Head, Transform::default()));
        });
    }
}

/// Gives a jointed body (bones and head, hidden until posed) to every figure graded near or
/// mid, and takes it from one that has stayed far: only the few hundred nearest carry one, so a
/// crowd of thousands is not thousands of bones.
fn joint_bodies(mut commands: Commands, mut figures: Query<(Entity, &Figure, Option<&mut Jointed>)>) {
    for (entity, figure, jointed) in &mut figures {
        match (figure.detail == Detail::Far, jointed) {
            (false, None) => {
                let mut parts = Vec::with_capacity(Bone::ALL.len() + 1);
                commands.entity(entity).with_children(|children| {
                    for bone in Bone::ALL {
                        let below = Transform::from_xyz(0.0, -FAR_BODY_BELOW, 0.0);
                        parts.push(children.spawn((AvatarBody, bone, below, Visibility::Hidden)).id());
                    }
                    parts.push(children.spawn((AvatarHead, Transform::default(), Visibility::Hidden)).id());
                });
                commands.entity(entity).insert(Jointed { parts, far_frames: 0 });
            }
            (false, Some(mut jointed)) => {
                if jointed.far_frames != 0 {
                    jointed.far_frames = 0;
                }
            }
            (true, Some(mut jointed)) => {
                jointed.far_frames += 1;
                if jointed.far_frames > UNJOINT_AFTER_FRAMES {
                    for part in &jointed.parts {
                        commands.entity(*part).despawn();
                    }
                    commands.entity(entity).remove::<(Jointed, Feet)>();
                }
            }
            (true, None) => {}
        }
    }
}

/// A part of a body between two joints.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bone {
    /// Base of the neck to the hips.
    Torso,
    /// Top of the neck to its base.
    Neck,
    /// Shoulder to elbow, left (0) or right (1).
    UpperArm(usize),
    /// Elbow to wrist.
    Forearm(usize),
    /// Hip to knee.
    Thigh(usize),
    /// Knee to ankle.
    Shin(usize),
}

impl Bone {
    /// Every bone a body has.
    pub const ALL: [Bone; 10] = [
        Bone::Torso,
        Bone::Neck,
        Bone::UpperArm(0),
        Bone::UpperArm(1),
        Bone::Forearm(0),
        Bone::Forearm(1),
        Bone::Thigh(0),
        Bone::Thigh(1),
        Bone::Shin(0),
        Bone::Shin(1),
    ];

    /// Its thickness (radius) and length for `shape`, metres.
    pub fn size(self, shape: &BodyShape) -> (f32, f32) {
        match self {
            Bone::Torso => (0.15, shape.torso),
            Bone::Neck => (0.05, shape.neck),
            Bone::UpperArm(_) => (0.05, shape.upper_arm),
            Bone::Forearm(_) => (0.042, shape.forearm),
            Bone::Thigh(_) => (0.075, shape.thigh),
            Bone::Shin(_) => (0.055, shape.shin),
        }
    }

    /// The two joints it runs between.
    fn ends(self, joints: &Joints) -> (Vec3, Vec3) {
        match self {
            Bone::Torso => (joints.neck_base, joints.hips),
            Bone::Neck => (joints.neck_top, joints.neck_base),
            Bone::UpperArm(side) => (joints.arms[side].root, joints.arms[side].bend),
            Bone::Forearm(side) => (joints.arms[side].bend, joints.arms[side].end),
            Bone::Thigh(side) => (joints.legs[side].root, joints.legs[side].bend),
            Bone::Shin(side) => (joints.legs[side].bend, joints.legs[side].end),
        }
    }
}

/// The body shape everyone is drawn with (avatars of their own come with issue 16's models).
pub fn shape() -> BodyShape {
    BodyShape::for_eye_height(EYE_HEIGHT)
}

/// Where a bone's mesh (a capsule along +y, centred) goes to run from `from` to `to`.
pub fn bone_transform(from: Vec3, to: Vec3, length: f32) -> Transform {
    let along = to - from;
    let rotation = Quat::from_rotation_arc(Vec3::Y, along.try_normalize().unwrap_or(Vec3::NEG_Y));
    // The torso's length changes as the hips settle; the other bones keep theirs.
    let stretch = if length > 0.0 { along.length() / length } else { 1.0 };
    Transform { translation: (from + to) * 0.5, rotation, scale: Vec3::new(1.0, stretch.clamp(0.5, 1.5), 1.0) }
}

/// A figure's body over time (its feet), and its joints when last posed.
#[derive(Component, Debug)]
pub struct Feet {
    body: Body,
    joints: Joints,
    /// Seconds since it was last posed.
    since: f32,
}

impl Feet {
    /// A body standing still at the origin, as the first pose gives it.
    #[cfg(test)]
    pub(crate) fn standing() -> Self {
        let head = sanctuary_engine::body::Tracked { position: Vec3::Y * EYE_HEIGHT, rotation: Quat::IDENTITY };
        let drivers = sanctuary_engine::body::Drivers { head, left_hand: head, right_hand: head };
        let mut body = Body::new();
        let joints = body.update(&shape(), &drivers, 0.0, 0.0);
        Self { body, joints, since: 0.0 }
    }

    /// Where the body's joints were when last posed.
    pub fn joints(&self) -> Joints {
        self.joints
    }
}

/// Poses the bodies that fall due this frame (every frame near, every few frames mid, never far)
/// from their head and hands, and places their bones between the joints. Bones are children of
/// the head, so a body posed less often still moves with it every frame.
#[allow(clippy::type_complexity)]
pub(crate) fn pose_bodies(
    mut commands: Commands,
    time: Res<Time>,
    crowd: Res<CrowdDetail>,
    region: Option<Res<CurrentRegion>>,
    mut figures: Query<(Entity, &Transform, &Figure, &Drive, &Children, Option<&mut Feet>)>,
    mut bones: Query<(&Bone, &mut Transform), Without<Figure>>,
) {
    let Some(region) = region else { return };
    let floor = region.layout.bounds.min.y - EYE_HEIGHT;
    let shape = shape();
    let seconds = time.delta_secs();
    for (entity, at, figure, drive, children, feet) in &mut figures {
        if !due(crowd.frame, figure.interval, figure.phase) {
            if let Some(mut feet) = feet {
                feet.bypass_change_detection().since += seconds;
            }
            continue;
        }
        let joints = match feet {
            Some(mut feet) => {
                let since = feet.since + seconds;
                feet.since = 0.0;
                feet.joints = feet.body.update(&shape, &drive.0, floor, since);
                feet.joints
            }
            None => {
                let mut body = Body::new();
                let joints = body.update(&shape, &drive.0, floor, seconds);
                commands.entity(entity).insert(Feet { body, joints, since: 0.0 });
                joints
            }
        };
        let inverse = at.compute_affine().inverse();
        let to_local = at.rotation.inverse();
        for child in children.iter() {
            let Ok((bone, mut transform)) = bones.get_mut(child) else { continue };
            let (from, to) = bone.ends(&joints);
            let placed = bone_transform(from, to, bone.size(&shape).1);
            transform.translation = inverse.transform_point3(placed.translation);
            transform.rotation = to_local * placed.rotation;
            transform.scale = placed.scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bone_runs_between_its_joints() {
        let (from, to) = (Vec3::new(0.0, 1.4, 0.0), Vec3::new(0.3, 1.2, -0.1));
        let length = from.distance(to);
        let placed = bone_transform(from, to, length);
        // The capsule's ends (±length/2 along +y) land on the joints.
        let ends = [placed.transform_point(Vec3::Y * length * 0.5), placed.transform_point(-Vec3::Y * length * 0.5)];
        assert!(ends[0].distance(to) < 1e-5 && ends[1].distance(from) < 1e-5, "{ends:?}");
        assert_eq!(placed.scale, Vec3::ONE);
    }
}
