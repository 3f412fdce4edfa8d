//! A headless client tours the world on foot: from the lobby it walks into every portal,
//! arrives in that region, turns around and walks back through the portal home.

use bevy::prelude::*;
use sanctuary::testing::{logic_app, player_transform};
use sanctuary_engine::RegionId;
use sanctuary_tests::{face, hold_until_region_changes, portal_to, region_of};

/// Proves that every portal can be reached and used by walking with the keyboard at normal
/// and at fast speed, and that every region has a way back that works the same way.
#[test]
fn walk_to_every_region_and_back() {
    let mut app = logic_app(RegionId::Lobby);
    app.update();
    for (index, target) in RegionId::all().filter(|region| *region != RegionId::Lobby).enumerate() {
        let portal = portal_to(&app, target).unwrap_or_else(|| panic!("the lobby has no portal to {target}"));
        face(&mut app, portal.centre);
        // Every other trip is made running, to check that fast steps do not skip the portal.
        let run = index % 2 == 1;
        if run {
            app.world_mut().resource_mut::<ButtonInput<KeyCode>>().press(KeyCode::ShiftLeft);
        }
        let frames = hold_until_region_changes(&mut app, KeyCode::KeyW, 60 * 30);
        app.world_mut().resource_mut::<ButtonInput<KeyCode>>().release(KeyCode::ShiftLeft);
        assert!(frames.is_some(), "walking toward the {target} portal never arrived");
        assert_eq!(region_of(&app), target);

        let home = portal_to(&app, RegionId::Lobby).unwrap_or_else(|| panic!("{target} has no way back"));
        face(&mut app, home.centre);
        assert!(hold_until_region_changes(&mut app, KeyCode::KeyW, 60 * 30).is_some(), "no way back from {target}");
        assert_eq!(region_of(&app), RegionId::Lobby);
        let arrival = app.world().resource::<sanctuary::CurrentRegion>().layout.spawn;
        assert_eq!(player_transform(&mut app).translation, arrival);
    }
}
