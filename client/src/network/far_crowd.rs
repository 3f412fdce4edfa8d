//! The far crowd: the people beyond the cells the node listens on, as their cells' reporters sum
//! them up (`sanctuary_net::cells`), drawn as plain far figures standing where the summaries
//! put them. They have no names and are not posed; as someone comes within reach, their own
//! avatar appears (see `avatars`) and their dot goes from the summary of a cell now listened
//! on.

use bevy::prelude::*;
use sanctuary_engine::body::Tracked;
use sanctuary_engine::{RegionId, Rgb};
use sanctuary_net::cells::FarDot;

use super::Social;
use crate::crowd::{Drive, Figure};
use crate::world::RegionScoped;

/// The far crowd as the node last told it.
#[derive(Debug, Default)]
pub struct FarCrowdSeen {
    /// The region it is of.
    pub region: Option<RegionId>,
    /// Where they are and their colours (at most `sanctuary_net::MAX_FAR_DOTS`).
    pub dots: Vec<FarDot>,
    /// How many the summaries count in all (more than the dots where cells are full).
    pub people: u64,
    /// Bumped at every change.
    pub version: u64,
}

/// One figure of the far crowd: the index of its dot.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct FarFigure(pub usize);

/// Keeps one far figure per dot of the far crowd of the region we are in: moved and recoloured
/// in place when the summaries change, spawned and removed as their number changes.
pub(crate) fn place_far_crowd(
    mut commands: Commands,
    social: Res<Social>,
    mut figures: Query<(Entity, &FarFigure, &mut Transform, &mut Drive, &mut Figure)>,
    mut shown: Local<Option<(u64, Option<RegionId>)>>,
) {
    let seen = (social.far.version, social.region);
    if *shown == Some(seen) {
        return;
    }
    *shown = Some(seen);
    let dots: &[FarDot] = if social.far.region == social.region { &social.far.dots } else { &[] };
    let mut placed = vec![false; dots.len()];
    for (entity, far, mut transform, mut drive, mut figure) in &mut figures {
        let Some(dot) = dots.get(far.0) else {
            commands.entity(entity).despawn();
            continue;
        };
        placed[far.0] = true;
        transform.translation = dot.position;
        *drive = Drive::at(Tracked { position: dot.position, rotation: Quat::IDENTITY });
        let colour = Rgb::new(dot.colour[0], dot.colour[1], dot.colour[2]);
        if figure.colour != colour {
            figure.colour = colour;
        }
    }
    for (index, dot) in dots.iter().enumerate().filter(|(index, _)| !placed[*index]) {
        commands.spawn((
            RegionScoped,
            FarFigure(index),
            Figure::new(Rgb::new(dot.colour[0], dot.colour[1], dot.colour[2]), u32::try_from(index).unwrap_or(0)),
            Drive::at(Tracked { position: dot.position, rotation: Quat::IDENTITY }),
            Transform::from_translation(dot.position),
            Visibility::default(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(x: f32, colour: u8) -> FarDot {
        FarDot { position: Vec3::new(x, 1.7, 100.0), colour: [colour, 0, 0] }
    }

    fn figures(app: &mut App) -> Vec<(usize, Vec3, Rgb)> {
        let mut query = app.world_mut().query::<(&FarFigure, &Transform, &Figure)>();
        let mut found: Vec<_> = query
            .iter(app.world())
            .map(|(far, transform, figure)| (far.0, transform.translation, figure.colour))
            .collect();
        found.sort_by_key(|(index, _, _)| *index);
        found
    }

    fn tell(app: &mut App, region: RegionId, dots: Vec<FarDot>) {
        let mut social = app.world_mut().resource_mut::<Social>();
        let version = social.far.version + 1;
        social.far = FarCrowdSeen { region: Some(region), people: dots.len() as u64, dots, version };
    }

    #[test]
    fn far_figures_follow_the_summaries_and_go_with_the_region() {
        let mut app = App::new();
        app.init_resource::<Social>().add_systems(Update, place_far_crowd);
        app.world_mut().resource_mut::<Social>().region = Some(RegionId::Lobby);
        tell(&mut app, RegionId::Lobby, vec![dot(1.0, 10), dot(2.0, 20), dot(3.0, 30)]);
        app.update();
        let shown = figures(&mut app);
        assert_eq!(shown.len(), 3);
        assert_eq!(shown[2].1.x, 3.0);
        assert_eq!(shown[1].2, Rgb::new(20, 0, 0));
        // Fewer, moved and recoloured: the same figures, in place.
        tell(&mut app, RegionId::Lobby, vec![dot(5.0, 50)]);
        app.update();
        assert_eq!(figures(&mut app), vec![(0, Vec3::new(5.0, 1.7, 100.0), Rgb::new(50, 0, 0))]);
        // Another region's crowd is not drawn here.
        tell(&mut app, RegionId::City, vec![dot(1.0, 10)]);
        app.update();
        assert!(figures(&mut app).is_empty());
    }
}
