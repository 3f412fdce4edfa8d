//! Levels of detail for a crowd: which bodies are drawn in full, which cheaper, which as a far
//! figure, and how often each is posed. Pure: the client measures distances and draws.
//!
//! - **Near**: the nearest few within reach, posed every frame, drawn from their avatar model.
//! - **Mid**: the next ones within sight, a jointed plain body posed every few frames, less
//!   often the further they are.
//! - **Far**: everyone else, one figure each that moves with the person but is never posed.
//!
//! The counts bound the work whatever the crowd's size: a thousand people standing close still
//! get only [`DetailLimits::near_count`] full bodies.

/// How much of a body is drawn and animated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Detail {
    /// The avatar model, posed every frame.
    Near,
    /// A jointed plain body, posed every few frames.
    Mid,
    /// One figure, never posed.
    #[default]
    Far,
}

/// How many bodies get each level, and up to what distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetailLimits {
    /// The most bodies drawn near.
    pub near_count: usize,
    /// Up to how far (metres) a body may be near.
    pub near_within: f32,
    /// The most bodies drawn mid (beyond the near ones).
    pub mid_count: usize,
    /// Up to how far a body may be mid.
    pub mid_within: f32,
    /// The most frames between two poses of a mid body (at `mid_within`).
    pub slowest_interval: u32,
}

impl Default for DetailLimits {
    /// P1's "nearest 32 fully animated", a few hundred jointed bodies beyond them.
    fn default() -> Self {
        Self { near_count: 32, near_within: 16.0, mid_count: 224, mid_within: 48.0, slowest_interval: 8 }
    }
}

impl DetailLimits {
    /// Frames between two poses of a body at `distance` with `detail`: 1 near, from 2 up to
    /// `slowest_interval` across the mid range, 0 (never) far.
    pub fn pose_interval(&self, detail: Detail, distance: f32) -> u32 {
        match detail {
            Detail::Near => 1,
            Detail::Far => 0,
            Detail::Mid => {
                let span = (self.mid_within - self.near_within).max(f32::EPSILON);
                let t = ((distance - self.near_within) / span).clamp(0.0, 1.0);
                let t = if t.is_finite() { t } else { 1.0 };
                let slowest = self.slowest_interval.max(2);
                2 + (t * (slowest - 2) as f32).round() as u32
            }
        }
    }
}

/// Whether a body posed every `interval` frames, with its own `phase` (so that bodies of one
/// interval do not all fall due in the same frame), is posed in `frame`.
pub fn due(frame: u64, interval: u32, phase: u32) -> bool {
    match interval {
        0 => false,
        1 => true,
        interval => (frame.wrapping_add(u64::from(phase))) % u64::from(interval) == 0,
    }
}

/// Grades bodies by their `distances` from the viewer into `details` (same order): the nearest
/// `near_count` within `near_within` are near, the nearest `mid_count` of the rest within
/// `mid_within` are mid, the others far. A distance that is not a number is far. Ties at a
/// count's edge go to the body listed first. `order` is scratch space, kept between calls so
/// that a frame allocates nothing.
pub fn grade(distances: &[f32], limits: &DetailLimits, order: &mut Vec<u32>, details: &mut Vec<Detail>) {
    details.clear();
    details.resize(distances.len(), Detail::Far);
    order.clear();
    // Only bodies within sight are sorted at all; most of a big crowd is far.
    let within = limits.near_within.max(limits.mid_within);
    order.extend(
        distances
            .iter()
            .enumerate()
            .filter(|(_, distance)| **distance <= within)
            .filter_map(|(index, _)| u32::try_from(index).ok()),
    );
    let key = |index: &u32| (distances[*index as usize], *index);
    let by_distance = |a: &u32, b: &u32| key(a).partial_cmp(&key(b)).unwrap_or(std::cmp::Ordering::Equal);
    let wanted = limits.near_count.saturating_add(limits.mid_count).min(order.len());
    if wanted == 0 {
        return;
    }
    if wanted < order.len() {
        order.select_nth_unstable_by(wanted - 1, by_distance);
        order.truncate(wanted);
    }
    order.sort_unstable_by(by_distance);
    let mut n_near = 0;
    for index in order.iter() {
        let distance = distances[*index as usize];
        details[*index as usize] = if n_near < limits.near_count && distance <= limits.near_within {
            n_near += 1;
            Detail::Near
        } else if distance <= limits.mid_within {
            Detail::Mid
        } else {
            Detail::Far
        };
    }
    // Past the near count, a close body is mid; past the mid count, far.
    let n_mid_allowed = limits.mid_count;
    let mut n_mid = 0;
    for index in order.iter() {
        let detail = &mut details[*index as usize];
        if *detail == Detail::Mid {
            if n_mid >= n_mid_allowed {
                *detail = Detail::Far;
            }
            n_mid += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graded(distances: &[f32], limits: &DetailLimits) -> Vec<Detail> {
        let (mut order, mut details) = (Vec::new(), Vec::new());
        grade(distances, limits, &mut order, &mut details);
        details
    }

    #[test]
    fn only_the_nearest_32_of_a_close_crowd_are_near() {
        // A thousand people all within reach, in a shuffled order.
        let distances: Vec<f32> = (0..1000).map(|index| ((index * 7919) % 1000) as f32 * 0.01).collect();
        let details = graded(&distances, &DetailLimits::default());
        let near: Vec<f32> =
            distances.iter().zip(&details).filter(|(_, detail)| **detail == Detail::Near).map(|(d, _)| *d).collect();
        assert_eq!(near.len(), 32);
        // They are the 32 nearest: every other body is at least as far as the furthest of them.
        let furthest_near = near.iter().copied().fold(0.0, f32::max);
        for (distance, detail) in distances.iter().zip(&details) {
            if *detail != Detail::Near {
                assert!(*distance >= furthest_near, "{distance} is nearer than a near body at {furthest_near}");
            }
        }
        assert_eq!(details.iter().filter(|detail| **detail == Detail::Mid).count(), 224);
        assert_eq!(details.iter().filter(|detail| **detail == Detail::Far).count(), 1000 - 32 - 224);
    }

    #[test]
    fn distance_decides_when_the_crowd_is_thin() {
        let limits = DetailLimits::default();
        let distances = [3.0, 16.0, 16.5, 48.0, 48.5, 500.0, f32::NAN, f32::INFINITY, -1.0];
        let details = graded(&distances, &limits);
        use Detail::*;
        assert_eq!(details, vec![Near, Near, Mid, Mid, Far, Far, Far, Far, Near]);
    }

    #[test]
    fn an_empty_crowd_and_zero_counts_grade_nothing() {
        assert!(graded(&[], &DetailLimits::default()).is_empty());
        // Near may reach further than mid: the nearest are near, the rest beyond mid far.
        let wide = DetailLimits { near_count: 1, near_within: 1e3, mid_within: 10.0, ..DetailLimits::default() };
        assert_eq!(graded(&[500.0, 600.0, 5.0], &wide), vec![Detail::Far, Detail::Far, Detail::Near]);
        assert_eq!(graded(&[500.0, 600.0], &wide), vec![Detail::Near, Detail::Far]);
        let none = DetailLimits { near_count: 0, mid_count: 0, ..DetailLimits::default() };
        assert_eq!(graded(&[1.0, 2.0], &none), vec![Detail::Far, Detail::Far]);
    }

    #[test]
    fn the_pose_rate_falls_with_distance() {
        let limits = DetailLimits::default();
        assert_eq!(limits.pose_interval(Detail::Near, 2.0), 1);
        assert_eq!(limits.pose_interval(Detail::Far, 2.0), 0);
        let mut last = 0;
        for metres in [0.0, 16.0, 20.0, 30.0, 40.0, 48.0, 1e9, f32::NAN] {
            let interval = limits.pose_interval(Detail::Mid, metres);
            assert!((2..=8).contains(&interval), "{interval} at {metres}");
            if metres.is_finite() {
                assert!(interval >= last, "slower further away");
                last = interval;
            }
        }
        assert_eq!(limits.pose_interval(Detail::Mid, 48.0), 8);
    }

    #[test]
    fn bodies_fall_due_once_per_interval_spread_by_phase() {
        assert!((0..10).all(|frame| due(frame, 1, 3)));
        assert!((0..10).all(|frame| !due(frame, 0, 3)));
        for interval in 2..=8u32 {
            for phase in 0..interval {
                let hits = (0..u64::from(interval) * 10).filter(|frame| due(*frame, interval, phase)).count();
                assert_eq!(hits, 10);
            }
            // Phases spread a crowd over the interval's frames.
            let in_frame_0 = (0..interval).filter(|phase| due(0, interval, *phase)).count();
            assert_eq!(in_frame_0, 1);
        }
        assert!(due(u64::MAX, 2, 1) || due(u64::MAX, 2, 0));
    }
}
