//! The greeter: stands near the lobby's arrival point, notices a newcomer (a key it has never
//! greeted, not an agent), walks up, waves, says hello, points to the portals and the keys,
//! then answers their questions from the README's [`Knowledge`] for a while. Asked to leave
//! them alone, it says goodbye, walks back and never approaches them again. Whom it greeted
//! and who declined are kept on disk ([`Greeted`]), so a newcomer is greeted once, ever.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use glam::Vec3;
use sanctuary_engine::{PublicKey, RegionId};

use crate::body::{Body, Places, yaw_towards};
use crate::brain::Act;
use crate::knowledge::Knowledge;
use crate::script::GreeterLines;

/// How long someone must have been seen before they are approached: time for an agent's card
/// to arrive (agents are not greeted).
const NOTICE_AFTER: f64 = 1.5;
/// The most newcomers waiting to be greeted; others wait until they are seen again.
const MAX_WAITING: usize = 16;
/// Greeted within this distance, metres, or after [`APPROACH_SECONDS`] of walking.
const GREET_DISTANCE: f32 = 3.0;
const APPROACH_SECONDS: f64 = 12.0;
/// Where it stops in front of someone, metres.
const STANDOFF: f32 = 1.6;
/// Seconds between the hello, the portals and the keys.
const LINE_GAP: f64 = 3.0;
/// How long it stays with someone after its last word with them, seconds.
const ATTEND_SECONDS: f64 = 90.0;
/// Someone not seen for this long has gone, seconds.
const GONE_AFTER: f64 = 10.0;
/// The most keys remembered (the oldest are forgotten first).
pub const MAX_REMEMBERED: usize = 100_000;

/// Someone the greeter can see.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// Their name.
    pub name: String,
    /// Their eyes.
    pub position: Vec3,
    /// The region they are in.
    pub region: RegionId,
    /// When they were first seen (the agents' clock).
    pub first_seen: f64,
    /// When they were last heard from.
    pub heard: f64,
    /// Whether they are an AI agent.
    pub agent: bool,
}

/// What the greeter remembers of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Memory {
    Greeted,
    Declined,
}

/// Whom the greeter greeted and who asked to be left alone, kept in a file (≤
/// [`MAX_REMEMBERED`] keys).
#[derive(Debug, Default)]
pub struct Greeted {
    path: Option<PathBuf>,
    order: VecDeque<[u8; 32]>,
    memory: HashMap<[u8; 32], Memory>,
}

impl Greeted {
    /// What was kept at `path` (nothing when there is no file). A damaged file is set aside and
    /// the problem returned: everyone may be greeted once more, nothing worse.
    pub fn open(path: PathBuf) -> (Self, Option<String>) {
        let mut greeted = Self { path: Some(path.clone()), ..Self::default() };
        let problem = match std::fs::read(&path) {
            Ok(bytes) => match postcard::from_bytes::<Vec<([u8; 32], Memory)>>(&bytes) {
                Ok(kept) => {
                    for (key, memory) in kept.into_iter().rev().take(MAX_REMEMBERED).rev() {
                        greeted.remember(key, memory);
                    }
                    None
                }
                Err(error) => {
                    let _ = std::fs::rename(&path, path.with_extension("damaged"));
                    Some(format!(
                        "{} was damaged and set aside ({error}); everyone may be greeted again",
                        path.display()
                    ))
                }
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => Some(format!("{} cannot be read: {error}", path.display())),
        };
        (greeted, problem)
    }

    fn remember(&mut self, key: [u8; 32], memory: Memory) {
        if self.memory.insert(key, memory).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > MAX_REMEMBERED {
            if let Some(oldest) = self.order.pop_front() {
                self.memory.remove(&oldest);
            }
        }
    }

    /// Remembers `key` and saves (atomically: written beside, then renamed).
    fn keep(&mut self, key: &PublicKey, memory: Memory) -> Result<(), String> {
        self.remember(*key.as_bytes(), memory);
        let Some(path) = &self.path else { return Ok(()) };
        let kept: Vec<([u8; 32], Memory)> =
            self.order.iter().filter_map(|key| self.memory.get(key).map(|memory| (*key, *memory))).collect();
        let bytes = postcard::to_allocvec(&kept).map_err(|error| error.to_string())?;
        let beside = path.with_extension("new");
        std::fs::write(&beside, bytes)
            .and_then(|()| std::fs::rename(&beside, path))
            .map_err(|error| format!("{} could not be saved: {error}", path.display()))
    }

    /// Whether `key` was ever greeted (or declined).
    pub fn knows(&self, key: &PublicKey) -> bool {
        self.memory.contains_key(key.as_bytes())
    }

    fn declined(&self, key: &PublicKey) -> bool {
        self.memory.get(key.as_bytes()) == Some(&Memory::Declined)
    }

    /// How many keys it remembers.
    pub fn len(&self) -> usize {
        self.memory.len()
    }

    /// Whether it remembers none.
    pub fn is_empty(&self) -> bool {
        self.memory.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// At its post, watching for newcomers.
    Post,
    /// Walking up to someone.
    Approach { key: PublicKey, since: f64 },
    /// With someone, answering, until a time.
    Attending { key: PublicKey, until: f64 },
}

/// The greeter's mind.
#[derive(Debug)]
pub struct Greeter {
    me: String,
    lines: GreeterLines,
    knowledge: Arc<Knowledge>,
    /// Whom it greeted.
    pub greeted: Greeted,
    phase: Phase,
    waiting: VecDeque<PublicKey>,
    /// Lines to say, each not before its time.
    pending: VecDeque<(f64, String)>,
    /// Its body.
    pub body: Body,
    post: Vec3,
    /// Problems to tell the operator.
    pub problems: Vec<String>,
}

impl Greeter {
    /// A greeter called `me` at the lobby's arrival point.
    pub fn new(
        me: &str,
        lines: GreeterLines,
        knowledge: Arc<Knowledge>,
        greeted: Greeted,
        places: &mut Places,
    ) -> Self {
        let post_offset = Vec3::new(2.5, 0.0, -3.0);
        let body = Body::arrive(RegionId::Lobby, places, post_offset);
        let post = body.position;
        Self {
            me: me.to_owned(),
            lines,
            knowledge,
            greeted,
            phase: Phase::Post,
            waiting: VecDeque::new(),
            pending: VecDeque::new(),
            body,
            post,
            problems: Vec::new(),
        }
    }

    /// Whom it is with now, if anyone.
    pub fn with(&self) -> Option<PublicKey> {
        match self.phase {
            Phase::Post => None,
            Phase::Approach { key, .. } | Phase::Attending { key, .. } => Some(key),
        }
    }

    fn fill(&self, line: &str, name: &str) -> String {
        line.replace("{name}", name).replace("{me}", &self.me)
    }

    /// Moves on to `now` by `dt` with the people seen: what it asks for.
    pub fn tick(&mut self, now: f64, dt: f32, people: &HashMap<PublicKey, Person>, places: &mut Places) -> Vec<Act> {
        self.notice(now, people);
        match self.phase.clone() {
            Phase::Post => {
                if let Some(key) = self.waiting.pop_front() {
                    self.phase = Phase::Approach { key, since: now };
                } else if self.body.target.is_none() && self.body.position.distance(self.post) > 0.5 {
                    self.body.walk_to(
                        self.post,
                        Some(places.layout(RegionId::Lobby).spawn_yaw + std::f32::consts::PI),
                        places,
                    );
                }
            }
            Phase::Approach { key, since } => match people.get(&key).filter(|person| now - person.heard < GONE_AFTER) {
                None => self.back_to_post(places),
                Some(person) => {
                    let near = self.body.position.distance(person.position) <= GREET_DISTANCE;
                    if near || now - since >= APPROACH_SECONDS {
                        self.greet(now, key, person);
                    } else {
                        let towards_me = (self.body.position - person.position).with_y(0.0).normalize_or_zero();
                        let spot = person.position + towards_me * STANDOFF;
                        self.body.walk_to(spot, yaw_towards(person.position - spot), places);
                    }
                }
            },
            Phase::Attending { key, until } => {
                let gone = people.get(&key).is_none_or(|person| now - person.heard >= GONE_AFTER);
                if gone || now >= until {
                    self.back_to_post(places);
                } else if let Some(person) = people.get(&key)
                    && self.body.target.is_none()
                {
                    // Keeps facing them.
                    if let Some(yaw) = yaw_towards(person.position - self.body.position) {
                        self.body.yaw = yaw;
                    }
                }
            }
        }
        self.body.step(dt, places);
        let mut acts = Vec::new();
        while self.pending.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, line)) = self.pending.pop_front() {
                acts.push(Act::Say(line));
            }
        }
        acts
    }

    /// Queues newcomers seen long enough.
    fn notice(&mut self, now: f64, people: &HashMap<PublicKey, Person>) {
        for (key, person) in people {
            if self.waiting.len() >= MAX_WAITING {
                break;
            }
            let newcomer = person.region == RegionId::Lobby
                && !person.agent
                && now - person.first_seen >= NOTICE_AFTER
                && now - person.heard < GONE_AFTER
                && !self.greeted.knows(key)
                && self.with() != Some(*key)
                && !self.waiting.contains(key);
            if newcomer {
                self.waiting.push_back(*key);
            }
        }
        self.waiting.retain(|key| people.get(key).is_some_and(|person| !person.agent));
    }

    fn greet(&mut self, now: f64, key: PublicKey, person: &Person) {
        self.body.wave(now);
        if let Err(problem) = self.greeted.keep(&key, Memory::Greeted) {
            self.problems.push(problem);
        }
        let name = person.name.clone();
        self.pending.push_back((now, self.fill(&self.lines.hello, &name)));
        self.pending.push_back((now + LINE_GAP, self.fill(&self.lines.portals, &name)));
        self.pending.push_back((now + 2.0 * LINE_GAP, self.fill(&self.lines.keys, &name)));
        self.phase = Phase::Attending { key, until: now + ATTEND_SECONDS };
    }

    fn back_to_post(&mut self, places: &mut Places) {
        self.phase = Phase::Post;
        let face = places.layout(RegionId::Lobby).spawn_yaw + std::f32::consts::PI;
        self.body.walk_to(self.post, Some(face), places);
    }

    /// A chat line heard from `author` (never an agent's: agents do not talk to agents).
    pub fn heard(&mut self, now: f64, author: &PublicKey, name: &str, text: &str, places: &mut Places) {
        let with_them = self.with() == Some(*author);
        let first_name = self.me.split_whitespace().next().unwrap_or(&self.me).to_lowercase();
        let lower = text.to_lowercase();
        let addressed = lower.split(|c: char| !c.is_alphanumeric()).any(|word| word == first_name);
        if !with_them && !addressed {
            return;
        }
        if dismisses(&lower) {
            self.pending.clear();
            self.pending.push_back((now, self.fill(&self.lines.farewell, name)));
            if let Err(problem) = self.greeted.keep(author, Memory::Declined) {
                self.problems.push(problem);
            }
            self.waiting.retain(|key| key != author);
            if with_them {
                self.back_to_post(places);
            }
            return;
        }
        if self.greeted.declined(author) && !addressed {
            return;
        }
        if !asks(&lower) {
            return;
        }
        let answer = match self.knowledge.answer(text) {
            Some(answer) => format!("{name}: {answer}"),
            None => self.fill(&self.lines.unknown, name),
        };
        // At most a few answers wait: a flood of questions gets the latest few.
        while self.pending.len() >= 4 {
            self.pending.pop_front();
        }
        self.pending.push_back((now, answer));
        if with_them {
            self.phase = Phase::Attending { key: *author, until: now + ATTEND_SECONDS };
        }
    }
}

/// Whether a line asks to be left alone.
fn dismisses(lower: &str) -> bool {
    const PHRASES: [&str; 10] = [
        "leave me alone",
        "go away",
        "no thanks",
        "no thank you",
        "not now",
        "stop following",
        "shut up",
        "get lost",
        "bye",
        "leave me be",
    ];
    PHRASES.iter().any(|phrase| lower.contains(phrase))
}

/// Whether a line asks something.
fn asks(lower: &str) -> bool {
    const OPENERS: [&str; 14] =
        ["how", "where", "what", "who", "why", "when", "which", "can", "could", "is", "are", "do", "does", "tell"];
    lower.trim_end().ends_with('?')
        || lower
            .split(|c: char| !c.is_alphanumeric())
            .find(|word| !word.is_empty())
            .is_some_and(|first| OPENERS.contains(&first))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> PublicKey {
        PublicKey::from_secret_seed(&[seed; 32])
    }

    fn person(name: &str, position: Vec3, now: f64) -> Person {
        Person { name: name.into(), position, region: RegionId::Lobby, first_seen: 0.0, heard: now, agent: false }
    }

    fn make(greeted: Greeted, places: &mut Places) -> Greeter {
        Greeter::new("Ada the guide", GreeterLines::default(), Arc::new(Knowledge::from_readme()), greeted, places)
    }

    /// Runs the greeter for `seconds` with `people` standing still; the lines it says.
    fn run(
        greeter: &mut Greeter,
        now: &mut f64,
        seconds: f64,
        people: &mut HashMap<PublicKey, Person>,
        places: &mut Places,
    ) -> Vec<String> {
        let mut said = Vec::new();
        let end = *now + seconds;
        while *now < end {
            for person in people.values_mut() {
                person.heard = *now;
            }
            for act in greeter.tick(*now, 0.1, people, places) {
                if let Act::Say(line) = act {
                    said.push(line);
                }
            }
            *now += 0.1;
        }
        said
    }

    #[test]
    fn a_newcomer_is_greeted_once_answered_and_left_alone_when_asked() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("greeted.bin");
        let mut places = Places::default();
        let (greeted, problem) = Greeted::open(path.clone());
        assert!(problem.is_none());
        let mut greeter = make(greeted, &mut places);
        let spawn = places.layout(RegionId::Lobby).spawn;
        let mut people = HashMap::from([(key(1), person("Bo", spawn + Vec3::new(-3.0, 0.0, 2.0), 0.0))]);
        let mut now = 0.0;
        let said = run(&mut greeter, &mut now, 20.0, &mut people, &mut places);
        assert_eq!(said.len(), 3, "{said:?}");
        assert!(said[0].starts_with("Hello Bo, welcome to Sanctuary!"), "{said:?}");
        assert!(said[1].contains("portals") && said[2].contains("F1"), "{said:?}");
        assert!(greeter.body.position.distance(people[&key(1)].position) <= GREET_DISTANCE + 0.5, "walked up");
        greeter.heard(now, &key(1), "Bo", "where can I build my own house?", &mut places);
        let said = run(&mut greeter, &mut now, 1.0, &mut people, &mut places);
        assert_eq!(said.len(), 1);
        assert!(said[0].starts_with("Bo: ") && said[0].contains("parcel"), "{said:?}");
        // Another's question not addressed to it is not answered; one by name is.
        greeter.heard(now, &key(2), "Cy", "where is the cinema?", &mut places);
        assert!(run(&mut greeter, &mut now, 1.0, &mut people, &mut places).is_empty());
        greeter.heard(now, &key(2), "Cy", "Ada, how do I pay for a model?", &mut places);
        let said = run(&mut greeter, &mut now, 1.0, &mut people, &mut places);
        assert!(said.len() == 1 && said[0].starts_with("Cy: "), "{said:?}");
        greeter.heard(now, &key(1), "Bo", "thanks, now leave me alone please", &mut places);
        let said = run(&mut greeter, &mut now, 5.0, &mut people, &mut places);
        assert_eq!(said, vec!["Of course, Bo. Enjoy Sanctuary!".to_owned()]);
        assert_eq!(greeter.with(), None);
        greeter.heard(now, &key(1), "Bo", "what is this place?", &mut places);
        assert!(
            run(&mut greeter, &mut now, 120.0, &mut people, &mut places).is_empty(),
            "left alone, not greeted again"
        );
        // After a restart, from the file: still greeted once.
        let (greeted, problem) = Greeted::open(path);
        assert!(problem.is_none() && greeted.knows(&key(1)));
        let mut again = make(greeted, &mut places);
        let mut now = 0.0;
        assert!(run(&mut again, &mut now, 30.0, &mut people, &mut places).is_empty());
    }

    #[test]
    fn agents_and_people_elsewhere_are_not_greeted_and_a_crowd_waits_its_turn() {
        let mut places = Places::default();
        let mut greeter = make(Greeted::default(), &mut places);
        let spawn = places.layout(RegionId::Lobby).spawn;
        let mut robot = person("Robo", spawn, 0.0);
        robot.agent = true;
        let mut away = person("Far", spawn, 0.0);
        away.region = RegionId::City;
        let mut people = HashMap::from([(key(1), robot), (key(2), away)]);
        for n in 0..40u8 {
            people.insert(key(10 + n), person(&format!("P{n}"), spawn + Vec3::new(f32::from(n) * 0.3, 0.0, 3.0), 0.0));
        }
        let mut now = 0.0;
        let said = run(&mut greeter, &mut now, 600.0, &mut people, &mut places);
        assert!(!said.iter().any(|line| line.contains("Robo") || line.contains("Far")), "{said:?}");
        let hellos = said.iter().filter(|line| line.starts_with("Hello")).count();
        assert!(hellos >= 4, "one after another ({hellos})");
        assert!(greeter.waiting.len() <= MAX_WAITING);
    }

    #[test]
    fn a_damaged_memory_is_set_aside_and_the_greeter_goes_on() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("greeted.bin");
        std::fs::write(&path, [0xff; 7]).expect("written");
        let (greeted, problem) = Greeted::open(path.clone());
        assert!(greeted.is_empty() && problem.is_some_and(|problem| problem.contains("set aside")));
        assert!(path.with_extension("damaged").exists());
    }

    #[test]
    fn questions_and_dismissals_are_told_apart() {
        assert!(asks("where can i build?") && asks("how do i pay") && asks("tell me about voice"));
        assert!(!asks("nice place") && !asks("hello"));
        assert!(dismisses("please leave me alone") && dismisses("ok bye!") && dismisses("go away"));
        assert!(!dismisses("where do i go?"));
    }
}
