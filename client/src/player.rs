//! The person: where they are, which way they look, and how desktop input moves them.

use std::f32::consts::FRAC_PI_2;

use bevy::prelude::*;

use crate::Frame;
use crate::actions::{Actions, FAST_FACTOR, FLOAT_SPEED, InputMode, WALK_SPEED};
use crate::locomotion::Locomote;
use crate::world::CurrentRegion;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<PointerLock>().add_systems(Startup, spawn_player).add_systems(
        Update,
        apply_movement.run_if(resource_equals(InputMode::Flat)).in_set(Frame::Move).in_set(Locomote),
    );
}

/// The person this copy of the program is driving. Its `Transform` is where the eyes are.
#[derive(Component, Debug, Default, Clone, Copy)]
pub struct Player {
    /// Turn about the vertical axis, radians; 0 looks toward +z.
    pub yaw: f32,
    /// Look up (positive) or down, radians.
    pub pitch: f32,
    /// Where the eyes were before this frame's movement: portals check the whole step.
    pub last_position: Vec3,
}

impl Player {
    /// The eyes' orientation.
    pub fn rotation(&self) -> Quat {
        // Bevy cameras look down -z; yaw 0 must look toward +z, hence the half turn.
        Quat::from_rotation_y(self.yaw + std::f32::consts::PI) * Quat::from_rotation_x(self.pitch)
    }

    /// The horizontal direction the person faces.
    pub fn heading(&self) -> Vec3 {
        Vec3::new(self.yaw.sin(), 0.0, self.yaw.cos())
    }
}

/// Whether the mouse is captured for looking around. The cursor plugin keeps it true while the
/// window holds the pointer.
#[derive(Resource, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PointerLock {
    /// The pointer is captured; mouse motion turns the view.
    pub locked: bool,
}

fn spawn_player(mut commands: Commands) {
    commands.spawn((Player::default(), Transform::default(), Visibility::default()));
}

/// Moves and turns the person by the frame's actions, kept inside the region's bounds.
fn apply_movement(
    intent: Res<Actions>,
    time: Res<Time>,
    region: Option<Res<CurrentRegion>>,
    mut players: Query<(&mut Transform, &mut Player)>,
) {
    let seconds = time.delta_secs();
    for (mut transform, mut player) in &mut players {
        player.last_position = transform.translation;
        player.yaw = (player.yaw + intent.look.x).rem_euclid(std::f32::consts::TAU);
        player.pitch = (player.pitch + intent.look.y).clamp(-FRAC_PI_2 + 0.05, FRAC_PI_2 - 0.05);
        transform.rotation = player.rotation();
        let speed_factor = if intent.fast { FAST_FACTOR } else { 1.0 };
        let forward = player.heading();
        // Right of the heading: yaw 0 faces +z, so right is -x.
        let right = Vec3::new(-forward.z, 0.0, forward.x);
        let walk = intent.walk.clamp_length_max(1.0);
        let step = (forward * walk.y + right * walk.x) * WALK_SPEED + Vec3::Y * intent.rise * FLOAT_SPEED;
        let mut position = transform.translation + step * speed_factor * seconds;
        if let Some(region) = &region {
            position = region.layout.bounds.clamp(position);
        }
        transform.translation = position;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::MOUSE_SENSITIVITY;
    use crate::testing::{logic_app, player_transform};
    use bevy::input::mouse::AccumulatedMouseMotion;
    use sanctuary_engine::RegionId;

    fn hold(app: &mut App, key: KeyCode, frames: usize) {
        app.world_mut().resource_mut::<ButtonInput<KeyCode>>().press(key);
        for _ in 0..frames {
            app.update();
        }
        app.world_mut().resource_mut::<ButtonInput<KeyCode>>().release(key);
    }

    #[test]
    fn w_walks_the_way_the_person_faces() {
        let mut app = logic_app(RegionId::Lobby);
        app.update();
        let start = player_transform(&mut app);
        let heading = app.world_mut().query::<&Player>().single(app.world()).expect("player").heading();
        hold(&mut app, KeyCode::KeyW, 30);
        let moved = player_transform(&mut app).translation - start.translation;
        // 30 frames of 1/60 s at walking speed: half a second, three metres.
        assert!((moved.length() - WALK_SPEED * 0.5).abs() < 0.2, "moved {moved}");
        assert!(moved.normalize().dot(heading) > 0.99, "moved {moved} heading {heading}");
    }

    #[test]
    fn space_floats_up_and_the_floor_stops_the_fall() {
        let mut app = logic_app(RegionId::Lobby);
        app.update();
        let start = player_transform(&mut app).translation.y;
        hold(&mut app, KeyCode::Space, 60);
        let up = player_transform(&mut app).translation.y;
        assert!((up - start - FLOAT_SPEED).abs() < 0.2, "rose from {start} to {up}");
        hold(&mut app, KeyCode::KeyC, 600);
        let down = player_transform(&mut app).translation.y;
        assert_eq!(down, sanctuary_engine::EYE_HEIGHT);
    }

    #[test]
    fn walls_keep_the_person_in_a_room() {
        let mut app = logic_app(RegionId::Room(sanctuary_engine::RoomKind::Private));
        app.update();
        hold(&mut app, KeyCode::KeyW, 60 * 30);
        let position = player_transform(&mut app).translation;
        let bounds = app.world().resource::<CurrentRegion>().layout.bounds;
        assert_eq!(bounds.clamp(position), position);
        assert!((position.z - bounds.min.z).abs() < 1e-3, "walked to the far wall: {position}");
    }

    #[test]
    fn the_mouse_turns_only_while_the_pointer_is_locked() {
        let mut app = logic_app(RegionId::Lobby);
        app.update();
        let yaw = |app: &mut App| app.world_mut().query::<&Player>().single(app.world()).expect("player").yaw;
        let before = yaw(&mut app);
        app.world_mut().resource_mut::<AccumulatedMouseMotion>().delta = Vec2::new(100.0, 0.0);
        app.update();
        assert_eq!(yaw(&mut app), before, "an unlocked pointer must not turn the view");
        app.world_mut().resource_mut::<PointerLock>().locked = true;
        app.world_mut().resource_mut::<AccumulatedMouseMotion>().delta = Vec2::new(100.0, 0.0);
        app.update();
        assert!((yaw(&mut app) - (before - 100.0 * MOUSE_SENSITIVITY)).abs() < 1e-5);
    }
}
