//! Other people's bodies, jointed and moved by their head and hands: each remote avatar's pose
//! (off the network) drives `sanctuary_engine::body`, the same code for everyone, and its
//! segments (torso, neck, arms, legs) are placed between the joints it gives. The feet remember
//! where they stand, per person.

use bevy::prelude::*;
use sanctuary_engine::EYE_HEIGHT;
use sanctuary_engine::body::{Body, BodyShape, Drivers, Joints, Tracked};

use crate::Frame;
use crate::network::{HandView, RemoteAvatarView};
use crate::world::CurrentRegion;

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Update, pose_bodies.in_set(Frame::Animate).after(crate::network::place_remote_avatars));
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

/// A remote person's body over time (their feet), and its joints this frame.
#[derive(Component, Debug)]
pub struct Feet {
    body: Body,
    joints: Joints,
}

impl Feet {
    /// Where the body's joints are this frame.
    pub fn joints(&self) -> Joints {
        self.joints
    }
}

/// Moves every remote body to its person's pose.
pub(crate) fn pose_bodies(
    mut commands: Commands,
    time: Res<Time>,
    region: Option<Res<CurrentRegion>>,
    avatars: Query<(Entity, &Transform, &Children, Option<&mut Feet>), With<RemoteAvatarView>>,
    hands: Query<(&HandView, &Transform), Without<Bone>>,
    mut bones: Query<(&Bone, &mut Transform), (Without<RemoteAvatarView>, Without<HandView>)>,
) {
    let Some(region) = region else { return };
    let floor = region.layout.bounds.min.y - EYE_HEIGHT;
    let shape = shape();
    let seconds = time.delta_secs();
    let mut avatars = avatars;
    for (entity, at, children, feet) in &mut avatars {
        let world = |local: &Transform| Tracked {
            position: at.transform_point(local.translation),
            rotation: at.rotation * local.rotation,
        };
        let mut drivers = Drivers {
            head: Tracked { position: at.translation, rotation: at.rotation },
            left_hand: Tracked { position: at.translation, rotation: at.rotation },
            right_hand: Tracked { position: at.translation, rotation: at.rotation },
        };
        for child in children.iter() {
            if let Ok((side, local)) = hands.get(child) {
                match side {
                    HandView::Left => drivers.left_hand = world(local),
                    HandView::Right => drivers.right_hand = world(local),
                }
            }
        }
        let joints = match feet {
            Some(mut feet) => {
                feet.joints = feet.body.update(&shape, &drivers, floor, seconds);
                feet.joints
            }
            None => {
                let mut body = Body::new();
                let joints = body.update(&shape, &drivers, floor, seconds);
                commands.entity(entity).insert(Feet { body, joints });
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
