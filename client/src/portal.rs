//! Portals: walking through a ring takes the person to the region it leads to.

use bevy::prelude::*;

use crate::Frame;
use crate::player::Player;
use crate::world::{CurrentRegion, EnterRegion};

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Update, walk_through_portals.in_set(Frame::Travel));
}

/// Sends the person on when this frame's step passed through a portal's opening.
fn walk_through_portals(
    region: Option<Res<CurrentRegion>>,
    players: Query<(&Transform, &Player)>,
    mut travel: MessageWriter<EnterRegion>,
) {
    let Some(region) = region else { return };
    for (transform, player) in &players {
        if let Some(portal) = region.layout.portal_crossed(player.last_position, transform.translation) {
            travel.write(EnterRegion(portal.target));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{logic_app, player_transform};
    use sanctuary_engine::{RegionId, RoomKind};

    /// Puts the person in the middle of the portal that leads to `target` and runs one frame.
    fn step_into(app: &mut App, target: RegionId) {
        let portal = app
            .world()
            .resource::<CurrentRegion>()
            .layout
            .portals
            .iter()
            .find(|portal| portal.target == target)
            .copied()
            .unwrap_or_else(|| panic!("no portal to {target}"));
        for (mut transform, mut player) in
            app.world_mut().query::<(&mut Transform, &mut Player)>().iter_mut(app.world_mut())
        {
            // Eyes at a standing height in front of the ring: 1.2 m below its centre.
            transform.translation = portal.centre - Vec3::Y * 1.2;
            player.last_position = transform.translation;
        }
        app.update();
    }

    #[test]
    fn every_lobby_portal_leads_there_and_back() {
        let mut app = logic_app(RegionId::Lobby);
        app.update();
        for target in RegionId::all().filter(|region| *region != RegionId::Lobby) {
            step_into(&mut app, target);
            assert_eq!(app.world().resource::<CurrentRegion>().id(), target);
            // The person arrives at the region's arrival point, not inside its portal.
            let arrival = app.world().resource::<CurrentRegion>().layout.spawn;
            assert_eq!(player_transform(&mut app).translation, arrival);
            step_into(&mut app, RegionId::Lobby);
            assert_eq!(app.world().resource::<CurrentRegion>().id(), RegionId::Lobby);
        }
    }

    #[test]
    fn standing_still_at_arrival_goes_nowhere() {
        let mut app = logic_app(RegionId::Room(RoomKind::Meeting));
        for _ in 0..30 {
            app.update();
        }
        assert_eq!(app.world().resource::<CurrentRegion>().id(), RegionId::Room(RoomKind::Meeting));
    }
}
