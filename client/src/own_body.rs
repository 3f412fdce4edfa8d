//! Your own body, in a headset: the figure the others see of you, drawn for you too, driven by
//! the same tracked head and hands the network sends (`network::pose_of`), so that looking down
//! you see your avatar's arms reach for your controllers and its hands turn with them.
//!
//! You look out from inside its head, so its head is not drawn for you: the plain body's head
//! is hidden, and an avatar model's head bone is shrunk to nothing and its nodes VRM marks
//! `thirdPersonOnly` hidden (avatar_rigs.rs), as VRM's first-person settings ask. On the desktop
//! the camera is your eyes with no hands to show, so no own body is drawn there.

use bevy::prelude::*;
use sanctuary_engine::Rgb;
use sanctuary_engine::body::{Drivers, Tracked};

use crate::Frame;
use crate::actions::{Controllers, InputMode, Rig};
use crate::avatar_rigs::{LookId, Outfit};
use crate::avatars::Avatars;
use crate::crowd::{Drive, Figure};
use crate::network::{Social, pose_of};
use crate::player::Player;

pub(super) fn plugin(app: &mut App) {
    app.add_systems(
        Update,
        (keep_own_body, outfit_own_body).chain().in_set(Frame::Animate).before(crate::crowd::grade_figures),
    );
}

/// The figure of the person at this copy of the program, drawn for them in first person.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnBody;

/// The colour a plain own body has before the profile is known.
const UNKNOWN_COLOUR: Rgb = Rgb::new(128, 128, 128);

/// In a headset, keeps one own body where the tracked head and hands are; out of one, none.
fn keep_own_body(
    mut commands: Commands,
    mode: Res<InputMode>,
    controllers: Res<Controllers>,
    rig: Res<Rig>,
    social: Option<Res<Social>>,
    players: Query<(&Transform, &Player), Without<OwnBody>>,
    mut bodies: Query<(Entity, &mut Transform, &mut Drive, &mut Figure), With<OwnBody>>,
) {
    let wanted = *mode == InputMode::Vr;
    let player = players.single().ok().filter(|_| wanted);
    let Some((eyes, player)) = player else {
        for (entity, ..) in &bodies {
            commands.entity(entity).despawn();
        }
        return;
    };
    let pose = pose_of(eyes, player, Some((&controllers, &rig)));
    let tracked =
        |joint: &sanctuary_net::QuantisedTransform| Tracked { position: joint.position(), rotation: joint.rotation() };
    let drivers = Drivers {
        head: tracked(&pose.head),
        left_hand: tracked(&pose.left_hand),
        right_hand: tracked(&pose.right_hand),
    };
    let colour = social
        .as_ref()
        .and_then(|social| social.profile.as_ref())
        .map_or(UNKNOWN_COLOUR, |profile| Rgb::new(profile.colour[0], profile.colour[1], profile.colour[2]));
    let head = Transform::from_translation(drivers.head.position).with_rotation(drivers.head.rotation);
    match bodies.iter_mut().next() {
        Some((_, mut transform, mut drive, mut figure)) => {
            *transform = head;
            drive.0 = drivers;
            if figure.colour != colour {
                figure.colour = colour;
            }
        }
        None => {
            commands.spawn((OwnBody, Figure::new(colour, 0), Drive(drivers), head, Visibility::default()));
        }
    }
}

/// The own body wears the avatar we wear, once the node has said what its checks found.
fn outfit_own_body(
    mut commands: Commands,
    avatars: Option<Res<Avatars>>,
    mut bodies: Query<(Entity, Option<&mut Outfit>), With<OwnBody>>,
) {
    let wanted = avatars
        .as_ref()
        .and_then(|avatars| avatars.own_model())
        .map(|(avatar, humanoid)| (LookId::Blob(avatar.hash), humanoid.cloned()));
    for (entity, outfit) in &mut bodies {
        let now = outfit.as_ref().and_then(|outfit| outfit.0.as_ref().map(|(look, _)| *look));
        if outfit.is_some() && now == wanted.as_ref().map(|(look, _)| *look) {
            continue;
        }
        let next = Outfit(wanted.clone());
        match outfit {
            Some(mut outfit) => *outfit = next,
            None => {
                commands.entity(entity).insert(next);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::vr_app;
    use sanctuary_engine::RegionId;

    fn own_drive(app: &mut App) -> Option<Drivers> {
        let mut bodies = app.world_mut().query_filtered::<&Drive, With<OwnBody>>();
        let found: Vec<Drivers> = bodies.iter(app.world()).map(|drive| drive.0).collect();
        assert!(found.len() <= 1, "one own body at most");
        found.first().copied()
    }

    #[test]
    fn in_a_headset_ones_own_body_holds_the_controllers_and_on_the_desktop_there_is_none() {
        let mut app = vr_app(RegionId::Lobby);
        for _ in 0..3 {
            app.update();
        }
        let drivers = own_drive(&mut app).expect("an own body in a headset");
        let rig = *app.world().resource::<Rig>();
        let controllers = *app.world().resource::<Controllers>();
        for (hand, controller) in [(drivers.left_hand, controllers.left), (drivers.right_hand, controllers.right)] {
            let grip = rig.to_world(controller.grip.expect("tracked"));
            assert!(hand.position.distance(grip.translation) < 0.01, "{} vs {}", hand.position, grip.translation);
            assert!(hand.rotation.angle_between(grip.rotation) < 0.01, "the hand turns with the controller");
        }
        let eyes = app.world_mut().query_filtered::<&Transform, With<Player>>().single(app.world()).expect("eyes");
        assert!(drivers.head.position.distance(eyes.translation) < 0.01, "its head is where the eyes are");
        let figure = *app.world_mut().query_filtered::<&Figure, With<OwnBody>>().single(app.world()).expect("figure");
        assert_eq!(figure.detail, sanctuary_engine::crowd::Detail::Near, "drawn in full");

        app.insert_resource(InputMode::Flat);
        app.update();
        assert!(own_drive(&mut app).is_none(), "no own body on the desktop");
    }
}
