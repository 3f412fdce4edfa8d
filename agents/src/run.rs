//! Runs a script's agents in one process: each a network node of its own (its own key under
//! `<data dir>/agents/<name>/`, its card signed by the operator's key, the data directory's own
//! identity), moved by its mind ten times a second. What an agent says goes through a budget
//! (three lines, then one every two seconds), under what peers allow a person (ten, then two a
//! second), so that a script cannot make its agents spam.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use sanctuary_engine::{PublicKey, RegionId};
use sanctuary_net::agent::AgentCard;
use sanctuary_net::{Command, Event, NodeConfig, NodeHandle, PoseFrame, RelayChoice, Ticket, spawn_node};

use crate::body::Places;
use crate::brain::{Act, Brain};
use crate::greeter::{Greeted, Greeter, Person};
use crate::knowledge::Knowledge;
use crate::script::{Role, Script};

/// The most people one agent keeps track of.
const MAX_PEOPLE: usize = 4096;
/// The most agents' keys one agent remembers as agents.
const MAX_AGENT_KEYS: usize = 16_384;
/// Events taken from one node per tick, at most.
const EVENTS_PER_TICK: usize = 4096;
/// Someone not heard from for this long is forgotten, seconds.
const FORGET_AFTER: f64 = 30.0;
/// Poses sent at most this often, seconds.
const POSE_EVERY: f64 = 0.1;
/// Lines waiting to be said, at most per agent.
const MAX_WAITING_LINES: usize = 8;

/// What the agents need to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// The operator's data directory: its identity signs the cards; agents live under
    /// `agents/` in it.
    pub data_dir: PathBuf,
    /// Who runs and how.
    pub script: Script,
    /// Relays or not.
    pub relays: RelayChoice,
    /// Find peers on the local network.
    pub lan_discovery: bool,
    /// Peers to meet.
    pub join: Vec<Ticket>,
}

/// A chat budget: a burst, then a steady rate.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    tokens: f64,
    last: f64,
}

impl Budget {
    /// Lines at once.
    pub const BURST: f64 = 3.0;
    /// Lines a second after the burst.
    pub const RATE: f64 = 0.5;

    fn new() -> Self {
        Self { tokens: Self::BURST, last: 0.0 }
    }

    /// Whether a line may be said at `now`; takes it from the budget if so.
    pub fn take(&mut self, now: f64) -> bool {
        self.tokens = (self.tokens + (now - self.last).max(0.0) * Self::RATE).min(Self::BURST);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

enum Mind {
    Crowd(Box<Brain>),
    Greeter(Box<Greeter>),
}

struct Agent {
    name: String,
    handle: NodeHandle,
    me: Option<PublicKey>,
    ticket: Option<String>,
    mind: Mind,
    region: RegionId,
    people: HashMap<PublicKey, Person>,
    agents: HashSet<PublicKey>,
    lines: VecDeque<String>,
    budget: Budget,
    pose_at: f64,
    pose: Option<PoseFrame>,
    stopped: bool,
}

/// What happened, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// An agent's node is up.
    Started {
        /// Its name.
        name: String,
        /// Its key.
        key: PublicKey,
        /// Its ticket.
        ticket: String,
    },
    /// Something the operator should know.
    Notice(String),
    /// An agent's node failed or stopped.
    Stopped {
        /// Its name.
        name: String,
        /// Why.
        reason: String,
    },
}

/// The agents of one process.
pub struct Agents {
    agents: Vec<Agent>,
    places: Places,
    clock: Instant,
    last: f64,
    /// Every agent's key here: they do not greet or answer each other.
    ours: HashSet<PublicKey>,
    /// Reports from the start, told at the first tick.
    reports: Vec<Report>,
}

impl std::fmt::Debug for Agents {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Agents").field("agents", &self.agents.len()).finish()
    }
}

/// The folder of the agent called `name`: its name in lower case, letters and digits, dashes
/// between words.
pub fn folder(name: &str) -> String {
    let words: Vec<String> =
        name.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()).map(str::to_lowercase).collect();
    words.join("-")
}

impl Agents {
    /// Starts every agent of the script on `runtime`: their keys made or read, their cards
    /// signed with the operator's key.
    pub fn start(config: Config, runtime: &tokio::runtime::Handle) -> Result<Self, String> {
        let operator = sanctuary_net::load_or_create_identity(&config.data_dir).map_err(|error| error.to_string())?;
        let home = config.data_dir.join("agents");
        std::fs::create_dir_all(&home).map_err(|error| format!("cannot create {}: {error}", home.display()))?;
        let knowledge = Arc::new(Knowledge::from_readme());
        let mut places = Places::default();
        let mut agents = Vec::new();
        let mut notices = Vec::new();
        for (index, (name, spec)) in config.script.roster().into_iter().enumerate() {
            let dir = home.join(folder(&name));
            std::fs::create_dir_all(&dir).map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
            let secret = sanctuary_net::load_or_create_identity(&dir).map_err(|error| error.to_string())?;
            let card = AgentCard::issue(&operator, &secret.public());
            let node = NodeConfig {
                name: Some(name.clone()),
                colour: spec.colour.map(|(r, g, b)| [r, g, b]),
                relays: config.relays,
                lan_discovery: config.lan_discovery,
                join: config.join.clone(),
                agent: Some(card),
                ..NodeConfig::new(&dir)
            };
            let mind = match (spec.role, &spec.behaviour) {
                (Role::Greeter, _) => {
                    let (greeted, problem) = Greeted::open(home.join("greeted.bin"));
                    notices.extend(problem);
                    let greeter =
                        Greeter::new(&name, config.script.greeter.clone(), knowledge.clone(), greeted, &mut places);
                    Mind::Greeter(Box::new(greeter))
                }
                (Role::Crowd, Some(behaviour)) => {
                    let Some(states) = config.script.behaviours.get(behaviour) else {
                        return Err(format!("agent '{name}': no behaviour is called '{behaviour}'"));
                    };
                    Mind::Crowd(Box::new(Brain::new(behaviour, states.clone(), index as u64 + 1, &mut places)))
                }
                (Role::Crowd, None) => return Err(format!("agent '{name}' needs a behaviour")),
            };
            agents.push(Agent {
                name,
                handle: spawn_node(runtime, node),
                me: None,
                ticket: None,
                mind,
                region: RegionId::Lobby,
                people: HashMap::new(),
                agents: HashSet::new(),
                lines: VecDeque::new(),
                budget: Budget::new(),
                pose_at: f64::NEG_INFINITY,
                pose: None,
                stopped: false,
            });
        }
        let reports = notices.into_iter().map(Report::Notice).collect();
        Ok(Self { agents, places, clock: Instant::now(), last: 0.0, ours: HashSet::new(), reports })
    }

    /// How many agents run.
    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// Whether none does.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    /// The first agent's ticket, once its node is up: others join the agents through it.
    pub fn ticket(&self) -> Option<&str> {
        self.agents.iter().find_map(|agent| agent.ticket.as_deref())
    }

    /// Every agent's name and key (once its node is up).
    pub fn keys(&self) -> Vec<(String, Option<PublicKey>)> {
        self.agents.iter().map(|agent| (agent.name.clone(), agent.me)).collect()
    }

    /// Moves every agent on to now: events in, minds, poses and lines out.
    pub fn tick(&mut self) -> Vec<Report> {
        let now = self.clock.elapsed().as_secs_f64();
        let dt = (now - self.last).clamp(0.0, 1.0) as f32;
        self.last = now;
        let mut reports = std::mem::take(&mut self.reports);
        for agent in &mut self.agents {
            agent.take_events(now, &mut self.ours, &mut self.places, &mut reports);
        }
        for agent in &mut self.agents {
            if !agent.stopped && agent.me.is_some() {
                agent.act(now, dt, &mut self.places, &mut reports);
            }
        }
        reports
    }

    /// Stops every node, saying goodbye.
    pub async fn stop(self) {
        for mut agent in self.agents {
            agent.handle.stop().await;
        }
    }
}

impl Agent {
    fn take_events(&mut self, now: f64, ours: &mut HashSet<PublicKey>, places: &mut Places, reports: &mut Vec<Report>) {
        for _ in 0..EVENTS_PER_TICK {
            let Some(event) = self.handle.try_event() else { break };
            match event {
                Event::Started { id, ticket, .. } => {
                    self.me = Some(id);
                    ours.insert(id);
                    self.ticket = Some(ticket.clone());
                    self.handle.send(Command::Regions(vec![self.region]));
                    reports.push(Report::Started { name: self.name.clone(), key: id, ticket });
                }
                Event::Ticket(ticket) => self.ticket = Some(ticket),
                Event::Presence { region, author, presence, .. } if region == self.region => {
                    let position = presence.pose.head.position();
                    if !position.is_finite() {
                        continue;
                    }
                    let agent = self.agents.contains(&author) || ours.contains(&author);
                    let room = self.people.len() < MAX_PEOPLE;
                    match self.people.get_mut(&author) {
                        Some(person) => {
                            person.name = presence.name;
                            person.position = position;
                            person.heard = now;
                            person.agent |= agent;
                        }
                        None if room => {
                            let person =
                                Person { name: presence.name, position, region, first_seen: now, heard: now, agent };
                            self.people.insert(author, person);
                        }
                        None => {}
                    }
                }
                Event::NearPose { region, author, pose, .. } if region == self.region => {
                    if let Some(person) = self.people.get_mut(&author)
                        && pose.head.position().is_finite()
                    {
                        person.position = pose.head.position();
                        person.heard = now;
                    }
                }
                Event::Left { author, .. } => {
                    self.people.remove(&author);
                }
                Event::Agent { author, .. } => {
                    if self.agents.len() >= MAX_AGENT_KEYS {
                        self.agents.clear();
                    }
                    self.agents.insert(author);
                    if let Some(person) = self.people.get_mut(&author) {
                        person.agent = true;
                    }
                }
                Event::Chat(line) if line.region == self.region => {
                    let from_agent = self.agents.contains(&line.author) || ours.contains(&line.author);
                    if Some(line.author) == self.me || from_agent {
                        continue;
                    }
                    if let Mind::Greeter(greeter) = &mut self.mind {
                        greeter.heard(now, &line.author, &line.name, &line.text, places);
                        reports.extend(greeter.problems.drain(..).map(Report::Notice));
                    }
                }
                Event::Notice(notice) => reports.push(Report::Notice(format!("{}: {notice}", self.name))),
                Event::Failed(reason) => {
                    self.stopped = true;
                    reports.push(Report::Stopped { name: self.name.clone(), reason });
                }
                Event::Stopped if !self.stopped => {
                    self.stopped = true;
                    reports.push(Report::Stopped { name: self.name.clone(), reason: "its node stopped".into() });
                }
                _ => {}
            }
        }
        self.people.retain(|_, person| now - person.heard < FORGET_AFTER);
    }

    fn act(&mut self, now: f64, dt: f32, places: &mut Places, reports: &mut Vec<Report>) {
        let acts = match &mut self.mind {
            Mind::Crowd(brain) => brain.tick(now, dt, places),
            Mind::Greeter(greeter) => {
                let acts = greeter.tick(now, dt, &self.people, places);
                reports.extend(greeter.problems.drain(..).map(Report::Notice));
                acts
            }
        };
        for act in acts {
            match act {
                Act::Region(region) => {
                    self.region = region;
                    self.people.clear();
                    self.lines.clear();
                    self.handle.send(Command::Regions(vec![region]));
                }
                Act::Say(line) => {
                    if self.lines.len() >= MAX_WAITING_LINES {
                        self.lines.pop_front();
                    }
                    self.lines.push_back(line);
                }
            }
        }
        if !self.lines.is_empty()
            && self.budget.take(now)
            && let Some(line) = self.lines.pop_front()
        {
            self.handle.send(Command::Chat(line));
        }
        let body = match &self.mind {
            Mind::Crowd(brain) => &brain.body,
            Mind::Greeter(greeter) => &greeter.body,
        };
        let pose = body.pose(now);
        if now - self.pose_at >= POSE_EVERY && self.pose != Some(pose) {
            self.pose_at = now;
            self.pose = Some(pose);
            self.handle.send(Command::Pose(pose));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_allows_a_burst_then_one_line_every_two_seconds() {
        let mut budget = Budget::new();
        let said = (0..10).filter(|_| budget.take(0.0)).count();
        assert_eq!(said, 3);
        assert!(!budget.take(1.0));
        assert!(budget.take(2.01));
        let mut said = 0;
        let mut now = 3.0;
        while now < 63.0 {
            said += usize::from(budget.take(now));
            now += 0.1;
        }
        assert!((29..=31).contains(&said), "{said} lines in a minute");
    }

    #[test]
    fn folders_are_made_from_names() {
        assert_eq!(folder("Ada the guide"), "ada-the-guide");
        assert_eq!(folder("Stroller 2"), "stroller-2");
        assert_eq!(folder("../../etc"), "etc");
    }
}
