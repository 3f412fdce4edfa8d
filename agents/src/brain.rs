//! A crowd agent's mind: runs its behaviour's state machine (see [`crate::script`]) and turns
//! each state's action into walking, sitting and the odd line of chat.

use glam::Vec3;
use sanctuary_engine::{EYE_HEIGHT, LayoutRng, RegionId, WORLD_SEED};

use crate::body::{Body, Places, yaw_towards};
use crate::script::{Action, Behaviour, State};

/// How often a group's meeting point moves on, seconds.
const GROUP_SLOT_SECONDS: f64 = 45.0;
/// How far members stand from their group's point, metres.
const GROUP_SPREAD: f32 = 3.0;
/// How far in front of a portal a group gathers, metres.
const PORTAL_STANDOFF: f32 = 5.0;

/// What a mind asks of its runner.
#[derive(Debug, Clone, PartialEq)]
pub enum Act {
    /// Move to this region (its node is told, and the body arrives there).
    Region(RegionId),
    /// Say this in the region's chat.
    Say(String),
}

/// One crowd agent's state machine.
#[derive(Debug)]
pub struct Brain {
    behaviour: Behaviour,
    /// The behaviour's name: its agents move as one group.
    group: String,
    state: String,
    until: f64,
    /// When it stops pausing at a spot.
    pause_until: f64,
    rng: LayoutRng,
    /// Its body.
    pub body: Body,
    entered: bool,
}

impl Brain {
    /// A mind following `behaviour` (called `group`), its choices seeded by `seed`.
    pub fn new(group: &str, behaviour: Behaviour, seed: u64, places: &mut Places) -> Self {
        let mut rng = LayoutRng::derive(WORLD_SEED ^ seed, "agent", &[]);
        let offset = Vec3::new(rng.range(-4.0, 4.0), 0.0, rng.range(-6.0, -1.0));
        let body = Body::arrive(RegionId::Lobby, places, offset);
        let state = behaviour.start.clone();
        Self { behaviour, group: group.to_owned(), state, until: 0.0, pause_until: 0.0, rng, body, entered: false }
    }

    /// The state it is in.
    pub fn state(&self) -> &str {
        &self.state
    }

    fn current(&self) -> Option<&State> {
        self.behaviour.states.get(&self.state)
    }

    /// Moves the mind on to `now` (seconds on the agents' clock) by `dt`: what it asks for.
    pub fn tick(&mut self, now: f64, dt: f32, places: &mut Places) -> Vec<Act> {
        let mut acts = Vec::new();
        if !self.entered || now >= self.until {
            if self.entered {
                self.pick_next();
            }
            self.enter(now, places, &mut acts);
        }
        let arrived = self.body.step(dt, places);
        if arrived && now >= self.pause_until {
            self.next_spot(now, places);
        }
        acts
    }

    fn pick_next(&mut self) {
        let Some(state) = self.behaviour.states.get(&self.state) else { return };
        let total: u64 = state.next.iter().map(|(_, weight)| u64::from(*weight)).sum();
        if total == 0 {
            return;
        }
        let mut pick = self.rng.next_u64() % total;
        let mut chosen = None;
        for (name, weight) in &state.next {
            if pick < u64::from(*weight) {
                chosen = Some(name.clone());
                break;
            }
            pick -= u64::from(*weight);
        }
        if let Some(name) = chosen {
            self.state = name;
        }
    }

    fn enter(&mut self, now: f64, places: &mut Places, acts: &mut Vec<Act>) {
        self.entered = true;
        let Some(state) = self.current().cloned() else { return };
        let (low, high) = state.seconds;
        self.until = now + f64::from(self.rng.range(low, high.max(low)));
        let region = state.action.region().unwrap_or(RegionId::Lobby);
        if region != self.body.region {
            let offset = Vec3::new(self.rng.range(-2.0, 2.0), 0.0, self.rng.range(-2.0, 0.0));
            self.body = Body::arrive(region, places, offset);
            acts.push(Act::Region(region));
        }
        if !state.say.is_empty() && self.rng.chance(0.5) {
            acts.push(Act::Say(self.rng.pick(&state.say).clone()));
        }
        self.pause_until = now;
        self.body.target = None;
        self.next_spot(now, places);
    }

    /// Picks where to walk next within the state's action, and how long to pause there.
    fn next_spot(&mut self, now: f64, places: &mut Places) {
        let Some(action) = self.current().map(|state| state.action.clone()) else { return };
        match action {
            Action::Wander { radius } => {
                let centre = self.group_point(now, radius, places);
                let spot = centre + self.scatter(GROUP_SPREAD);
                self.body.walk_to(spot, None, places);
                self.pause_until = now + f64::from(self.rng.range(3.0, 9.0));
            }
            Action::Portals => {
                let portals = places.layout(RegionId::Lobby).portals.clone();
                if portals.is_empty() {
                    return;
                }
                let slot = (now / (GROUP_SLOT_SECONDS * 1.5)).floor() as i64;
                let portal = portals[LayoutRng::derive(WORLD_SEED, &self.group, &[slot]).index(portals.len())];
                let spawn = places.layout(RegionId::Lobby).spawn;
                let towards_spawn = (spawn - portal.centre).with_y(0.0).normalize_or_zero();
                let spot = portal.centre + towards_spawn * PORTAL_STANDOFF + self.scatter(2.5);
                self.body.walk_to(spot, yaw_towards(portal.centre - spot), places);
                self.pause_until = now + f64::from(self.rng.range(6.0, 14.0));
            }
            Action::Sit { .. } => {
                if self.body.target.is_some() || self.pause_until > now {
                    return;
                }
                let layout = places.layout(self.body.region);
                let (spawn, yaw) = (layout.spawn, layout.spawn_yaw);
                let forward = Vec3::new(yaw.sin(), 0.0, yaw.cos());
                let across = Vec3::new(forward.z, 0.0, -forward.x);
                let seat = spawn + forward * self.rng.range(1.5, 4.0) + across * self.rng.range(-5.0, 5.0);
                self.body.walk_to(seat, Some(yaw), places);
                // Seated: no new spot until the state ends.
                self.pause_until = self.until;
            }
            Action::Browse { .. } => {
                let layout = places.layout(self.body.region);
                let (min, max) = (layout.bounds.min, layout.bounds.max);
                let spot = Vec3::new(
                    self.rng.range(min.x + 1.5, (max.x - 1.5).max(min.x + 1.5)),
                    EYE_HEIGHT,
                    self.rng.range(min.z + 1.5, (max.z - 1.5).max(min.z + 1.5)),
                );
                self.body.walk_to(spot, None, places);
                self.pause_until = now + f64::from(self.rng.range(4.0, 10.0));
            }
            Action::Idle => {
                self.pause_until = self.until;
            }
        }
    }

    /// The group's meeting point for now: within `radius` of the space in front of the
    /// arrival point, the same for every member, moving on every [`GROUP_SLOT_SECONDS`].
    fn group_point(&self, now: f64, radius: f32, places: &mut Places) -> Vec3 {
        let slot = (now / GROUP_SLOT_SECONDS).floor() as i64;
        let mut rng = LayoutRng::derive(WORLD_SEED, &self.group, &[slot]);
        let layout = places.layout(RegionId::Lobby);
        let centre = layout.spawn + Vec3::new(0.0, 0.0, -10.0);
        let angle = rng.range(0.0, std::f32::consts::TAU);
        let distance = radius * rng.unit().sqrt();
        centre + Vec3::new(angle.cos() * distance, 0.0, angle.sin() * distance)
    }

    fn scatter(&mut self, spread: f32) -> Vec3 {
        Vec3::new(self.rng.range(-spread, spread), 0.0, self.rng.range(-spread, spread))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Script;

    fn brain(name: &str, seed: u64, places: &mut Places) -> Brain {
        let script = Script::lobby().expect("the lobby script");
        Brain::new(name, script.behaviours[name].clone(), seed, places)
    }

    #[test]
    fn a_moviegoer_goes_to_the_cinema_sits_and_comes_back() {
        let mut places = Places::default();
        let mut mind = brain("moviegoer", 1, &mut places);
        let (mut now, mut regions) = (0.0, Vec::new());
        let mut seated_still = 0;
        while now < 1200.0 {
            for act in mind.tick(now, 0.1, &mut places) {
                if let Act::Region(region) = act {
                    regions.push(region);
                }
            }
            let before = mind.body.position;
            now += 0.1;
            if mind.state() == "film" && mind.body.target.is_none() && before == mind.body.position {
                seated_still += 1;
            }
        }
        let cinema = RegionId::Room(sanctuary_engine::RoomKind::Cinema);
        assert!(regions.windows(2).any(|pair| pair == [cinema, RegionId::Lobby]), "{regions:?}");
        assert!(seated_still > 500, "it sits still in the cinema ({seated_still} ticks)");
    }

    #[test]
    fn strollers_keep_together_and_gather_at_portals() {
        let mut places = Places::default();
        let mut minds: Vec<Brain> = (0..4).map(|seed| brain("stroller", seed, &mut places)).collect();
        let mut now = 0.0;
        let (mut together, mut samples, mut at_portals) = (0, 0, 0);
        while now < 900.0 {
            for mind in &mut minds {
                mind.tick(now, 0.25, &mut places);
            }
            now += 0.25;
            if (now as u64).is_multiple_of(5) && now.fract() == 0.0 {
                let wandering: Vec<Vec3> =
                    minds.iter().filter(|mind| mind.state() == "stroll").map(|mind| mind.body.position).collect();
                if wandering.len() >= 2 {
                    samples += 1;
                    let spread = wandering
                        .iter()
                        .map(|a| wandering.iter().map(|b| a.distance(*b)).fold(0.0, f32::max))
                        .fold(0.0, f32::max);
                    if spread < 16.0 {
                        together += 1;
                    }
                }
                at_portals += minds.iter().filter(|mind| mind.state() == "portals").count();
            }
        }
        assert!(samples > 10 && together * 10 >= samples * 7, "together {together} of {samples}");
        assert!(at_portals > 0, "they go to the portals");
        for mind in &minds {
            assert!(mind.body.position.is_finite());
        }
    }
}
