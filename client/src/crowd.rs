//! The crowd: placeholder avatars drifting through the lobby so that its scale shows.

use bevy::prelude::*;

use crate::Frame;
use crate::world::{CurrentRegion, DrifterView};

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Update, drift.in_set(Frame::Animate));
}

/// Moves every placeholder avatar along its path.
pub fn drift(time: Res<Time>, region: Option<Res<CurrentRegion>>, mut drifters: Query<(&DrifterView, &mut Transform)>) {
    let since = region.map_or(0.0, |region| time.elapsed_secs() - region.entered_at);
    drifters.par_iter_mut().for_each(|(drifter, mut transform)| {
        transform.translation = drifter.0.position_at(since);
        transform.rotation = Quat::from_rotation_y(drifter.0.yaw_at(since));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::logic_app;
    use sanctuary_engine::RegionId;

    #[test]
    fn drifters_move_over_time() {
        let mut app = logic_app(RegionId::Lobby);
        app.update();
        app.update();
        let positions = |app: &mut App| -> Vec<Vec3> {
            app.world_mut()
                .query::<(&DrifterView, &Transform)>()
                .iter(app.world())
                .map(|(_, t)| t.translation)
                .collect()
        };
        let before = positions(&mut app);
        assert!(!before.is_empty());
        for _ in 0..60 {
            app.update();
        }
        let after = positions(&mut app);
        let n_moved = before.iter().zip(&after).filter(|(a, b)| a.distance(**b) > 0.01).count();
        assert_eq!(n_moved, before.len(), "every drifter should have moved in a second");
    }
}
