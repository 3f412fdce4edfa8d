//! Remote people's avatars placed to match the crowd the node hears, and our own pose sent.

use bevy::prelude::*;
use sanctuary_engine::body::{Drivers, Tracked};
use sanctuary_engine::{PublicKey, Rgb};
use sanctuary_net::{Command, PoseFrame, QuantisedTransform, presence_timeout};

use super::{NetLink, Social, now_micros};
use crate::actions::{Controllers, InputMode, Rig};
use crate::crowd::{Drive, Figure};
use crate::player::Player;
use crate::world::RegionScoped;

/// A remote person's avatar; its transform is their head. Its children are their hands.
#[derive(Component, Debug, Clone)]
pub struct RemoteAvatarView {
    /// Who.
    pub key: PublicKey,
    /// Their name.
    pub name: String,
    /// Their colour.
    pub colour: [u8; 3],
}

/// A remote person's hand, a child of their [`RemoteAvatarView`].
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandView {
    /// The left hand.
    Left,
    /// The right hand.
    Right,
}

/// The person's head and hands as the network sends them. In a headset the tracked hands (their
/// grips, placed by the rig) are sent; a hand that is not tracked, and both hands on the
/// desktop, hang at the sides, turned with the body.
pub fn pose_of(transform: &Transform, player: &Player, tracked: Option<(&Controllers, &Rig)>) -> PoseFrame {
    let body = Quat::from_rotation_y(player.yaw);
    // Facing +z at yaw 0, the person's left is +x. A hanging hand is turned as a controller held
    // in it would be (OpenXR's grip: −z along the fist, +x to the right) with the arm down.
    let down =
        Quat::from_rotation_y(player.yaw + std::f32::consts::PI) * Quat::from_rotation_x(-std::f32::consts::FRAC_PI_2);
    let hanging =
        |left: f32| QuantisedTransform::new(transform.translation + body * Vec3::new(left * 0.28, -0.62, -0.12), down);
    let hand = |grip: Option<Transform>, left: f32| match (grip, tracked) {
        (Some(grip), Some((_, rig))) => {
            let world = rig.to_world(grip);
            QuantisedTransform::new(world.translation, world.rotation)
        }
        _ => hanging(left),
    };
    let grips = tracked.map_or((None, None), |(controllers, _)| (controllers.left.grip, controllers.right.grip));
    PoseFrame {
        head: QuantisedTransform::new(transform.translation, transform.rotation),
        left_hand: hand(grips.0, 1.0),
        right_hand: hand(grips.1, -1.0),
    }
}

/// Sends the pose when it changed (after quantising: a still person sends nothing; the node
/// adds the keepalive and the rate limit).
pub(super) fn send_pose(
    link: Res<NetLink>,
    players: Query<(&Transform, &Player)>,
    mode: Res<InputMode>,
    controllers: Res<Controllers>,
    rig: Res<Rig>,
    mut last: Local<Option<PoseFrame>>,
) {
    let Ok((transform, player)) = players.single() else { return };
    let tracked = (*mode == InputMode::Vr).then_some((&*controllers, &*rig));
    let pose = pose_of(transform, player, tracked);
    if *last != Some(pose) {
        *last = Some(pose);
        link.send(Command::Pose(pose));
    }
}

/// Spawns, moves and removes remote avatars to match the crowd, interpolated to now.
pub(crate) fn place_remote_avatars(
    mut commands: Commands,
    mut social: ResMut<Social>,
    mut avatars: Query<
        (Entity, &mut RemoteAvatarView, &mut Transform, &mut Drive, &mut Figure, &Children),
        Without<HandView>,
    >,
    mut hands: Query<(&HandView, &mut Transform), Without<RemoteAvatarView>>,
) {
    let now = now_micros();
    // As long as the node believes them there: longer in a dense crowd, where poses are slow.
    let timeout = presence_timeout(social.crowd.len());
    for (_, name) in social.crowd.expire(now, timeout) {
        social.notice(format!("{name} left"));
    }
    let mut shown = std::collections::HashSet::new();
    for (entity, mut view, mut transform, mut drive, mut figure, children) in &mut avatars {
        let Some(avatar) = social.crowd.get(&view.key) else {
            commands.entity(entity).despawn();
            continue;
        };
        shown.insert(view.key);
        if view.name != avatar.name || view.colour != avatar.colour {
            view.name.clone_from(&avatar.name);
            view.colour = avatar.colour;
            // Their body takes the new colour too (scenery.rs recolours its parts).
            figure.colour = Rgb::new(avatar.colour[0], avatar.colour[1], avatar.colour[2]);
        }
        let Some(pose) = avatar.pose_at(now) else { continue };
        *transform = Transform::from_translation(pose.head.position).with_rotation(pose.head.rotation);
        let tracked = |joint: &sanctuary_net::Joint| Tracked { position: joint.position, rotation: joint.rotation };
        drive.0 = Drivers {
            head: tracked(&pose.head),
            left_hand: tracked(&pose.left_hand),
            right_hand: tracked(&pose.right_hand),
        };
        let inverse = transform.compute_affine().inverse();
        for child in children.iter() {
            if let Ok((side, mut hand)) = hands.get_mut(child) {
                let joint = if *side == HandView::Left { pose.left_hand } else { pose.right_hand };
                hand.translation = inverse.transform_point3(joint.position);
                hand.rotation = pose.head.rotation.inverse() * joint.rotation;
            }
        }
    }
    for (key, avatar) in social.crowd.iter() {
        if shown.contains(key) {
            continue;
        }
        let head = avatar.latest().map_or(Vec3::ZERO, |pose| pose.head.position);
        commands
            .spawn((
                RegionScoped,
                RemoteAvatarView { key: *key, name: avatar.name.clone(), colour: avatar.colour },
                Figure::new(
                    Rgb::new(avatar.colour[0], avatar.colour[1], avatar.colour[2]),
                    u32::from(key.as_bytes()[0]),
                ),
                Drive::at(Tracked { position: head, rotation: Quat::IDENTITY }),
                Transform::from_translation(head),
                Visibility::default(),
            ))
            .with_children(|children| {
                children.spawn((HandView::Left, Transform::default(), Visibility::default()));
                children.spawn((HandView::Right, Transform::default(), Visibility::default()));
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sanctuary_engine::RegionId;
    use sanctuary_net::Presence;

    use crate::network::tests::presence;

    #[test]
    fn a_body_takes_the_colour_its_person_changes_to() {
        let mut app = App::new();
        app.init_resource::<Social>().add_systems(Update, place_remote_avatars);
        let bo = PublicKey::from_secret_seed(&[2; 32]);
        let colour_of = |app: &mut App| {
            let mut figures = app.world_mut().query_filtered::<&Figure, With<RemoteAvatarView>>();
            figures.single(app.world()).expect("Bo's figure").colour
        };
        app.world_mut().resource_mut::<Social>().crowd.insert(bo, 1, &presence("Bo"), now_micros());
        app.update();
        assert_eq!(colour_of(&mut app), Rgb::new(1, 2, 3));
        let recoloured = Presence { colour: [200, 10, 10], ..presence("Bo") };
        app.world_mut().resource_mut::<Social>().crowd.insert(bo, 2, &recoloured, now_micros());
        app.update();
        assert_eq!(colour_of(&mut app), Rgb::new(200, 10, 10), "the body follows the new colour");
    }

    #[test]
    fn the_desktop_pose_puts_hands_at_the_sides() {
        let player = Player { yaw: 0.0, ..Player::default() };
        let transform = Transform::from_xyz(0.0, 1.7, 0.0);
        let pose = pose_of(&transform, &player, None);
        // Facing +z, the left hand is toward +x.
        assert!(pose.left_hand.position().x > 0.0 && pose.right_hand.position().x < 0.0);
        assert!(pose.left_hand.position().y < 1.7);
    }

    #[test]
    fn in_a_headset_the_tracked_hands_are_sent() {
        let mut app = crate::testing::vr_app(RegionId::Lobby);
        crate::testing::run_frames(&mut app, 3);
        // Raise the right hand above the head.
        crate::testing::controllers(&mut app).right.grip = Some(Transform::from_xyz(0.1, 2.1, -0.2));
        crate::testing::controllers(&mut app).left.grip = None;
        crate::testing::run_frames(&mut app, 1);
        let transform = crate::testing::player_transform(&mut app);
        let player = *app.world_mut().query::<&Player>().single(app.world()).expect("player");
        let controllers = *app.world().resource::<Controllers>();
        let rig = *app.world().resource::<Rig>();
        let pose = pose_of(&transform, &player, Some((&controllers, &rig)));
        let raised = pose.right_hand.position();
        assert!((raised - rig.to_world(Transform::from_xyz(0.1, 2.1, -0.2)).translation).length() < 0.01);
        assert!(raised.y > transform.translation.y, "the raised hand is above the eyes");
        // The untracked left hand hangs at the side, as on the desktop.
        assert_eq!(pose.left_hand, pose_of(&transform, &player, None).left_hand);
    }
}
