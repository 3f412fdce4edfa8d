//! The crowd: everyone drawn with a body (the people here and the lobby's drifting placeholders)
//! is a [`Figure`], graded each frame by distance from the viewer into near, mid and far
//! (`sanctuary_engine::crowd`). Near figures are posed every frame and drawn from their avatar
//! model, mid ones are jointed plain bodies posed every few frames, far ones a single figure
//! that is never posed (bodies.rs and avatar_rigs.rs draw them). The drifters drift here too.

use bevy::prelude::*;
use sanctuary_engine::body::{Drivers, Tracked};
use sanctuary_engine::crowd::{Detail, DetailLimits, grade};
use sanctuary_engine::{EYE_HEIGHT, Rgb};

use crate::Frame;
use crate::player::Player;
use crate::world::{CurrentRegion, DrifterView};

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<CrowdDetail>().add_systems(Update, (drift, grade_figures).chain().in_set(Frame::Animate));
}

/// Someone drawn with a body: a person here or a drifter.
#[derive(Component, Debug, Clone, Copy, PartialEq)]
pub struct Figure {
    /// Their colour, for the plain body and the far figure.
    pub colour: Rgb,
    /// How much of them is drawn now.
    pub detail: Detail,
    /// Frames between two poses now (0: not posed).
    pub interval: u32,
    /// Spreads the figures of one interval over its frames.
    pub phase: u32,
    /// How far from the viewer they are, metres.
    pub distance: f32,
}

impl Figure {
    /// A figure in `colour`, far until it is first graded; `seed` spreads its poses.
    pub fn new(colour: Rgb, seed: u32) -> Self {
        Self { colour, detail: Detail::Far, interval: 0, phase: seed % 64, distance: f32::INFINITY }
    }
}

/// Where a figure's head and hands are this frame, in the world.
#[derive(Component, Debug, Clone, Copy, PartialEq)]
pub struct Drive(pub Drivers);

impl Drive {
    /// Head and both hands at `head`.
    pub fn at(head: Tracked) -> Self {
        Self(Drivers { head, left_hand: head, right_hand: head })
    }
}

/// How the crowd is graded, and the frame count that paces the poses.
#[derive(Resource, Debug, Default)]
pub struct CrowdDetail {
    /// The counts and distances of each level.
    pub limits: DetailLimits,
    /// Frames graded so far.
    pub frame: u64,
    /// How many figures are at each level now: near, mid, far.
    pub counts: [usize; 3],
    distances: Vec<f32>,
    order: Vec<u32>,
    details: Vec<Detail>,
}

impl CrowdDetail {
    /// Grading by `limits`.
    pub fn with_limits(limits: DetailLimits) -> Self {
        Self { limits, ..Self::default() }
    }
}

/// Grades every figure by its distance from the viewer.
pub(crate) fn grade_figures(
    mut crowd: ResMut<CrowdDetail>,
    viewer: Query<&Transform, With<Player>>,
    mut figures: Query<(&Transform, &mut Figure), Without<Player>>,
) {
    let viewer = viewer.single().map_or(Vec3::ZERO, |transform| transform.translation);
    let crowd = &mut *crowd;
    crowd.frame = crowd.frame.wrapping_add(1);
    crowd.distances.clear();
    crowd.distances.extend(figures.iter().map(|(at, _)| at.translation.distance(viewer)));
    grade(&crowd.distances, &crowd.limits, &mut crowd.order, &mut crowd.details);
    crowd.counts = [0; 3];
    for ((_, mut figure), (detail, distance)) in figures.iter_mut().zip(crowd.details.iter().zip(&crowd.distances)) {
        let interval = crowd.limits.pose_interval(*detail, *distance);
        crowd.counts[*detail as usize] += 1;
        // Written only when something changed, so that change detection means something.
        if figure.detail != *detail || figure.interval != interval {
            figure.detail = *detail;
            figure.interval = interval;
        }
        figure.bypass_change_detection().distance = *distance;
    }
}

/// Moves every placeholder avatar along its path: its head, and its hands hanging at its sides
/// and swinging a little as it goes.
pub fn drift(
    time: Res<Time>,
    region: Option<Res<CurrentRegion>>,
    mut drifters: Query<(&DrifterView, &mut Transform, &mut Drive)>,
) {
    let since = region.map_or(0.0, |region| time.elapsed_secs() - region.entered_at);
    drifters.par_iter_mut().for_each(|(drifter, mut transform, mut drive)| {
        let head = drifter.0.position_at(since);
        // Yaw 0 faces +z along the path; a body with no turn faces −z.
        let rotation = Quat::from_rotation_y(drifter.0.yaw_at(since) + std::f32::consts::PI);
        transform.translation = head;
        transform.rotation = rotation;
        let swing = (since * 1.3 + drifter.0.phase * 5.0).sin() * 0.12;
        // Hands hang as a controller held in them would point: down (see `network::pose_of`).
        let hanging = rotation * Quat::from_rotation_x(-std::f32::consts::FRAC_PI_2);
        let hand = |side: f32, swing: f32| Tracked {
            position: head + rotation * Vec3::new(side * 0.3, -0.45 * EYE_HEIGHT, swing),
            rotation: hanging,
        };
        drive.0 = Drivers {
            head: Tracked { position: head, rotation },
            left_hand: hand(-1.0, swing),
            right_hand: hand(1.0, -swing),
        };
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

    #[test]
    fn the_nearest_figures_are_drawn_in_full_and_the_rest_cheaper() {
        let mut app = logic_app(RegionId::Lobby);
        app.insert_resource(CrowdDetail::with_limits(DetailLimits {
            near_count: 3,
            near_within: 1e6,
            mid_count: 5,
            mid_within: 1e6,
            slowest_interval: 8,
        }));
        for _ in 0..3 {
            app.update();
        }
        let viewer = app
            .world_mut()
            .query_filtered::<&Transform, With<Player>>()
            .single(app.world())
            .expect("the person")
            .translation;
        let mut figures: Vec<(f32, Detail, u32)> = app
            .world_mut()
            .query::<(&Transform, &Figure)>()
            .iter(app.world())
            .map(|(at, figure)| (at.translation.distance(viewer), figure.detail, figure.interval))
            .collect();
        assert_eq!(figures.len(), 40);
        figures.sort_by(|a, b| a.0.total_cmp(&b.0));
        let details: Vec<Detail> = figures.iter().map(|(_, detail, _)| *detail).collect();
        assert_eq!(&details[..3], &[Detail::Near; 3]);
        assert_eq!(&details[3..8], &[Detail::Mid; 5]);
        assert!(details[8..].iter().all(|detail| *detail == Detail::Far));
        assert!(figures[..3].iter().all(|(_, _, interval)| *interval == 1));
        assert!(figures[3..8].iter().all(|(_, _, interval)| *interval >= 2));
        assert!(figures[8..].iter().all(|(_, _, interval)| *interval == 0));
        assert_eq!(app.world().resource::<CrowdDetail>().counts, [3, 5, 32]);
    }
}
