//! The behaviour script: who the agents are and what they do, as a RON file the operator
//! edits without recompiling (`sanctuary agent --script FILE`; the lobby's own is built in).
//!
//! Each behaviour is a state machine: a state does one [`Action`] for a random time within its
//! `seconds`, may say one of its lines on entering, then moves on to one of its `next` states,
//! picked by weight. A script is checked whole before anything runs: every number is bounded,
//! every name it refers to exists, and the error says where the problem is.

use std::collections::BTreeMap;

use sanctuary_engine::RegionId;
use sanctuary_net::{MAX_NAME_CHARS, MAX_TEXT_CHARS};
use serde::Deserialize;

/// The most agents one process runs: each is a whole network node.
pub const MAX_AGENTS: usize = 64;
/// The largest script read, in bytes.
pub const MAX_SCRIPT_BYTES: usize = 256 * 1024;
/// The most behaviours, states per behaviour, next states per state and lines per state.
const MAX_BEHAVIOURS: usize = 64;
const MAX_STATES: usize = 32;
const MAX_NEXT: usize = 16;
const MAX_LINES: usize = 16;
/// The longest time a state may last, in seconds.
const MAX_STATE_SECONDS: f32 = 3600.0;
/// The widest wander, in metres.
const MAX_RADIUS: f32 = 200.0;

/// The lobby's agents, built in: a greeter and small groups that stroll, gather at the portals,
/// sit in the cinema and browse the marketplace's stalls.
pub const LOBBY_SCRIPT: &str = include_str!("../lobby.ron");

/// A whole script.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// Who runs, in order.
    pub agents: Vec<AgentSpec>,
    /// Behaviours by name.
    #[serde(default)]
    pub behaviours: BTreeMap<String, Behaviour>,
    /// What a greeter says.
    #[serde(default)]
    pub greeter: GreeterLines,
}

/// One agent, or several alike.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// The name shown (numbered from 2 on when `count` is more than one).
    pub name: String,
    /// How many.
    #[serde(default = "one")]
    pub count: usize,
    /// What it is for.
    #[serde(default)]
    pub role: Role,
    /// The behaviour a crowd agent follows (a name in `behaviours`).
    #[serde(default)]
    pub behaviour: Option<String>,
    /// Its colour (made from its key when not given).
    #[serde(default)]
    pub colour: Option<(u8, u8, u8)>,
}

fn one() -> usize {
    1
}

/// What an agent is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Role {
    /// Part of the crowd: follows its behaviour.
    #[default]
    Crowd,
    /// Greets newcomers at the lobby's arrival point and answers their questions.
    Greeter,
}

/// A state machine.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behaviour {
    /// The first state.
    pub start: String,
    /// States by name.
    pub states: BTreeMap<String, State>,
}

/// One state of a behaviour.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// What the agent does.
    pub action: Action,
    /// How long, at least and at most, in seconds.
    pub seconds: (f32, f32),
    /// Where to go next, with weights.
    pub next: Vec<(String, u32)>,
    /// Lines it may say on entering (one, picked at random; none when empty).
    #[serde(default)]
    pub say: Vec<String>,
}

/// What an agent does in a state.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub enum Action {
    /// Walk between points within `radius` metres of its group's meeting point near the
    /// region's arrival point, pausing at each (agents of one behaviour move as a group).
    Wander {
        /// How far from the group's point, metres.
        radius: f32,
    },
    /// Gather with its group in front of one of the region's portals.
    Portals,
    /// Go to `region` and sit (stand still, facing the front) in one place.
    Sit {
        /// The region's slug (`cinema`, `lecture-hall`...).
        region: String,
    },
    /// Go to `region` and walk from spot to spot, pausing at each (stalls, exhibits).
    Browse {
        /// The region's slug.
        region: String,
    },
    /// Go back to the lobby and stand where it is.
    Idle,
}

impl Action {
    /// The region the action takes place in (the lobby for those that stay where they are).
    pub fn region(&self) -> Option<RegionId> {
        match self {
            Action::Sit { region } | Action::Browse { region } => region.parse().ok(),
            Action::Wander { .. } | Action::Portals | Action::Idle => None,
        }
    }
}

/// What a greeter says; `{name}` is the newcomer's name, `{me}` the greeter's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GreeterLines {
    /// The first words to a newcomer.
    pub hello: String,
    /// Then: the portals.
    pub portals: String,
    /// Then: the keys.
    pub keys: String,
    /// When they ask to be left alone.
    pub farewell: String,
    /// When a question finds nothing in the knowledge base.
    pub unknown: String,
}

impl Default for GreeterLines {
    fn default() -> Self {
        Self {
            hello: "Hello {name}, welcome to Sanctuary! I'm {me}, an AI guide (my label says so).".into(),
            portals: "The coloured rings in front of you are portals: walk into one to go to the city, the \
                      marketplace, the cinema, the lecture hall or the meeting room."
                .into(),
            keys: "W A S D walk, Space and C float up and down, T teleports, F1 shows the keys. Ask me anything \
                   here, or say 'leave me alone' and I will."
                .into(),
            farewell: "Of course, {name}. Enjoy Sanctuary!".into(),
            unknown: "I don't know that one, {name}. Try asking about building, paying, friends or voice.".into(),
        }
    }
}

/// Why a script was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// Too large to read.
    #[error("the script is {0} bytes; at most {MAX_SCRIPT_BYTES}")]
    TooLarge(usize),
    /// Not RON of the script's shape.
    #[error("the script cannot be read: {0}")]
    Syntax(String),
    /// Read, but something in it is out of bounds or refers to nothing.
    #[error("{0}")]
    Invalid(String),
}

impl Script {
    /// Reads and checks a script.
    pub fn parse(text: &str) -> Result<Self, ScriptError> {
        if text.len() > MAX_SCRIPT_BYTES {
            return Err(ScriptError::TooLarge(text.len()));
        }
        let script: Script = ron::from_str(text).map_err(|error| ScriptError::Syntax(error.to_string()))?;
        script.check().map_err(ScriptError::Invalid)?;
        Ok(script)
    }

    /// The built-in lobby script (its test keeps it valid).
    pub fn lobby() -> Result<Self, ScriptError> {
        Self::parse(LOBBY_SCRIPT)
    }

    /// How many agents the script runs.
    pub fn count(&self) -> usize {
        self.agents.iter().map(|agent| agent.count).fold(0, usize::saturating_add)
    }

    /// Every agent by name, numbered where several are alike: (name, spec).
    pub fn roster(&self) -> Vec<(String, &AgentSpec)> {
        let mut roster = Vec::new();
        for spec in &self.agents {
            for n in 0..spec.count {
                let name = if n == 0 { spec.name.clone() } else { format!("{} {}", spec.name, n + 1) };
                roster.push((name, spec));
            }
        }
        roster
    }

    fn check(&self) -> Result<(), String> {
        let count = self.count();
        if count == 0 || count > MAX_AGENTS {
            return Err(format!("a script runs 1 to {MAX_AGENTS} agents; this one runs {count}"));
        }
        if self.behaviours.len() > MAX_BEHAVIOURS {
            return Err(format!("at most {MAX_BEHAVIOURS} behaviours"));
        }
        for spec in &self.agents {
            let longest = if spec.count > 1 { format!("{} {}", spec.name, spec.count) } else { spec.name.clone() };
            if spec.name.trim().is_empty() || longest.chars().count() > MAX_NAME_CHARS {
                return Err(format!(
                    "agent '{}': a name is 1 to {MAX_NAME_CHARS} characters, number included",
                    spec.name
                ));
            }
            match (&spec.role, &spec.behaviour) {
                (Role::Crowd, None) => return Err(format!("agent '{}' needs a behaviour", spec.name)),
                (_, Some(name)) if !self.behaviours.contains_key(name) => {
                    return Err(format!("agent '{}': no behaviour is called '{name}'", spec.name));
                }
                _ => {}
            }
        }
        let mut folders = std::collections::HashSet::new();
        for (name, _) in self.roster() {
            let folder = crate::run::folder(&name);
            if folder.is_empty() || !folders.insert(folder) {
                return Err(format!("agent '{name}': each agent needs a name of its own, with letters or digits"));
            }
        }
        for (name, behaviour) in &self.behaviours {
            check_behaviour(behaviour).map_err(|problem| format!("behaviour '{name}': {problem}"))?;
        }
        let lines = &self.greeter;
        for line in [&lines.hello, &lines.portals, &lines.keys, &lines.farewell, &lines.unknown] {
            // Room for a long name in place of `{name}`.
            if line.chars().count() + MAX_NAME_CHARS * 2 > MAX_TEXT_CHARS {
                return Err(format!("greeter: a line is at most {} characters", MAX_TEXT_CHARS - MAX_NAME_CHARS * 2));
            }
        }
        Ok(())
    }
}

fn check_behaviour(behaviour: &Behaviour) -> Result<(), String> {
    if behaviour.states.is_empty() || behaviour.states.len() > MAX_STATES {
        return Err(format!("1 to {MAX_STATES} states"));
    }
    if !behaviour.states.contains_key(&behaviour.start) {
        return Err(format!("it starts in '{}', which is not one of its states", behaviour.start));
    }
    for (name, state) in &behaviour.states {
        let (low, high) = state.seconds;
        if !(low.is_finite() && high.is_finite() && 0.5 <= low && low <= high && high <= MAX_STATE_SECONDS) {
            return Err(format!("state '{name}': seconds are (low, high) with 0.5 <= low <= high <= 3600"));
        }
        if state.next.is_empty() || state.next.len() > MAX_NEXT {
            return Err(format!("state '{name}': 1 to {MAX_NEXT} next states"));
        }
        let mut weight: u64 = 0;
        for (next, w) in &state.next {
            if !behaviour.states.contains_key(next) {
                return Err(format!("state '{name}': no state is called '{next}'"));
            }
            weight += u64::from(*w);
        }
        if weight == 0 {
            return Err(format!("state '{name}': the next states' weights add up to nothing"));
        }
        if state.say.len() > MAX_LINES || state.say.iter().any(|line| line.chars().count() > MAX_TEXT_CHARS) {
            return Err(format!("state '{name}': at most {MAX_LINES} lines of {MAX_TEXT_CHARS} characters"));
        }
        match &state.action {
            Action::Wander { radius } if !(radius.is_finite() && (1.0..=MAX_RADIUS).contains(radius)) => {
                return Err(format!("state '{name}': a wander's radius is 1 to {MAX_RADIUS} m"));
            }
            Action::Sit { region } | Action::Browse { region } => match region.parse::<RegionId>() {
                Ok(RegionId::Room(sanctuary_engine::RoomKind::Private)) | Err(_) => {
                    return Err(format!("state '{name}': '{region}' is not a region agents may go to"));
                }
                Ok(_) => {}
            },
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lobby_script_is_valid_and_has_a_greeter() {
        let script = Script::parse(LOBBY_SCRIPT).expect("the built-in script reads");
        assert!(script.agents.iter().any(|agent| agent.role == Role::Greeter));
        let roster = script.roster();
        assert_eq!(roster.len(), script.count());
        let mut names: Vec<&String> = roster.iter().map(|(name, _)| name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), roster.len(), "every agent has its own name");
    }

    #[test]
    fn bad_scripts_are_refused_with_the_place_named() {
        let refused = |text: &str| match Script::parse(text) {
            Err(error) => error.to_string(),
            Ok(_) => panic!("accepted: {text}"),
        };
        assert!(refused("(agents: [").contains("cannot be read"));
        assert!(refused("(agents: [])").contains("1 to 64"));
        assert!(refused(r#"(agents: [(name: "A", count: 65, role: Greeter)])"#).contains("1 to 64"));
        assert!(refused(r#"(agents: [(name: "A")])"#).contains("needs a behaviour"));
        assert!(
            refused(r#"(agents: [(name: "A", role: Greeter), (name: "a", role: Greeter)])"#).contains("of its own")
        );
        assert!(refused(r#"(agents: [(name: "!!", role: Greeter)])"#).contains("of its own"));
        assert!(refused(r#"(agents: [(name: "A", behaviour: Some("b"))])"#).contains("no behaviour is called 'b'"));
        let behaviour = |state: &str| {
            format!(
                r#"(agents: [(name: "A", behaviour: Some("b"))], behaviours: {{ "b": (start: "s", states: {{ "s": {state} }}) }})"#
            )
        };
        assert!(
            Script::parse(&behaviour(r#"(action: Wander(radius: 5.0), seconds: (1.0, 2.0), next: [("s", 1)])"#))
                .is_ok()
        );
        assert!(
            refused(&behaviour(r#"(action: Wander(radius: 5.0), seconds: (1.0, 2.0), next: [("t", 1)])"#))
                .contains("no state is called 't'")
        );
        assert!(
            refused(&behaviour(r#"(action: Wander(radius: 5.0), seconds: (3.0, 2.0), next: [("s", 1)])"#))
                .contains("seconds")
        );
        assert!(
            refused(&behaviour(r#"(action: Wander(radius: 5.0), seconds: (1.0, NaN), next: [("s", 1)])"#))
                .contains("seconds")
        );
        assert!(
            refused(&behaviour(r#"(action: Wander(radius: 1e9), seconds: (1.0, 2.0), next: [("s", 1)])"#))
                .contains("radius")
        );
        assert!(
            refused(&behaviour(r#"(action: Sit(region: "moon"), seconds: (1.0, 2.0), next: [("s", 1)])"#))
                .contains("'moon'")
        );
        assert!(
            refused(&behaviour(r#"(action: Portals, seconds: (1.0, 2.0), next: [("s", 0)])"#))
                .contains("add up to nothing")
        );
        assert!(refused(&"x".repeat(MAX_SCRIPT_BYTES + 1)).contains("at most"));
    }
}
