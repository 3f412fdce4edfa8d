//! What the person's blocks and builds shield make of others' builds: a blocked builder's work
//! is not drawn; below the builds shield, models stay grey boxes (and are not fetched) until the
//! person loads them by hand (`/models` on the parcel).

use bevy::prelude::*;
use sanctuary_engine::shields::Category;
use sanctuary_engine::trust::Standing;
use sanctuary_engine::{ParcelCoord, PublicKey, RegionId};

use super::CityWorld;
use crate::network::{ChatInput, Social};
use crate::player::Player;
use crate::world::CurrentRegion;

/// How a builder's work is drawn for the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildLook {
    /// As built.
    Whole,
    /// Primitives as built, models as grey boxes (the builds shield).
    Boxes,
    /// Not at all (a blocked builder).
    Hidden,
}

/// What the person's blocks and builds shield make of `builder`'s work.
pub(super) fn build_look(social: &Social, builder: &PublicKey) -> BuildLook {
    if social.blocked.contains(builder) {
        return BuildLook::Hidden;
    }
    let standing = social.trust.as_ref().map_or(Standing::Stranger, |view| {
        // Builds are judged by trust in builders, and the person's own word on them as a person.
        view.builders.standing(builder).max(view.people.standing(builder))
    });
    if social.me == Some(*builder) || social.shields.admits(Category::Builds, standing) {
        BuildLook::Whole
    } else {
        BuildLook::Boxes
    }
}

/// `/models` loads the models of the parcel the person stands on.
pub(super) fn load_models_by_hand(
    mut input: ResMut<ChatInput>,
    mut world: ResMut<CityWorld>,
    mut social: ResMut<Social>,
    player: Query<&Transform, With<Player>>,
    region: Option<Res<CurrentRegion>>,
) {
    if !std::mem::take(&mut input.load_models_here) {
        return;
    }
    let in_city = region.is_some_and(|region| region.id() == RegionId::City);
    let parcel = player.single().ok().and_then(|at| ParcelCoord::containing(at.translation));
    match parcel.filter(|_| in_city) {
        Some(parcel) => {
            world.loaded_by_hand.insert(parcel);
            world.changed.insert(parcel);
            social.notice(format!("loading the models of parcel ({}, {})", parcel.x, parcel.z));
        }
        None => social.notice("stand on a parcel in the city to load its models".into()),
    }
}

#[cfg(test)]
mod tests {
    use sanctuary_engine::shields::Reach;

    use super::*;

    #[test]
    fn blocks_hide_builds_and_the_builds_shield_boxes_strangers_models() {
        let mut social = Social::default();
        let (me, stranger, blocked) = (
            PublicKey::from_secret_seed(&[1; 32]),
            PublicKey::from_secret_seed(&[2; 32]),
            PublicKey::from_secret_seed(&[3; 32]),
        );
        social.me = Some(me);
        social.blocked = vec![blocked];
        assert_eq!(build_look(&social, &blocked), BuildLook::Hidden, "a blocked builder's work is not drawn");
        assert_eq!(build_look(&social, &stranger), BuildLook::Boxes, "a stranger's models wait as boxes");
        assert_eq!(build_look(&social, &me), BuildLook::Whole, "one's own work is always drawn");
        social.shields.set(Category::Builds, Reach::Everyone);
        assert_eq!(build_look(&social, &stranger), BuildLook::Whole, "the shield lowered");
        assert_eq!(build_look(&social, &blocked), BuildLook::Hidden, "a block is stronger than any shield");
    }
}
