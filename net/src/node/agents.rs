//! AI agents (see [`crate::agent`]): our own card said beside our pose when we are one, and the
//! agents heard, labelled for the program and kept behind the agents shield. A hidden agent is
//! neither seen nor heard (as a blocked key is), and the program is told it left; shown again,
//! it is told who they are before their next pose.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sanctuary_engine::shields::{Category, agent_standing};
use sanctuary_engine::trust::Standing;
use sanctuary_engine::{PublicKey, RegionId};

use super::actor::Node;
use super::{AGENT_KEEPALIVE, Event, about_keepalive};
use crate::agent::AgentCard;
use crate::inbox::MAX_AUTHORS;
use crate::wire::RegionMessage;

/// Agents not heard from for this long are forgotten when room is needed.
const FORGET_AFTER: Duration = Duration::from_secs(600);

/// An agent heard.
#[derive(Debug, Clone, Copy)]
struct Known {
    operator: PublicKey,
    heard: Instant,
}

/// Our card, and the agents heard (≤ [`MAX_AUTHORS`]).
#[derive(Debug, Default)]
pub(super) struct Agents {
    /// The card our operator signed for us, when we are an agent.
    card: Option<AgentCard>,
    /// When we said it last; `None` says it at the next tick.
    pub(super) sent: Option<Instant>,
    known: HashMap<iroh::PublicKey, Known>,
}

impl Agents {
    /// An agent's state when `card` is given (checked against our key `me`: a card for another
    /// key would be refused by everyone).
    pub(super) fn new(card: Option<AgentCard>, me: &iroh::PublicKey) -> Result<Self, String> {
        if let Some(card) = &card {
            card.check(me.as_bytes()).map_err(|error| format!("the agent card is not for this key: {error}"))?;
        }
        Ok(Self { card, sent: None, known: HashMap::new() })
    }

    /// Who runs `author`, if they are an agent heard.
    fn operator(&self, author: &iroh::PublicKey) -> Option<PublicKey> {
        self.known.get(author).map(|known| known.operator)
    }
}

impl Node {
    /// Says our card, if we are an agent: right after the pose to newcomers (so that they label
    /// us from the start), and every [`AGENT_KEEPALIVE`] or the crowd's keepalive.
    pub(super) async fn send_agent(&mut self, now: Instant, newcomers: bool) {
        let Some(card) = self.agents.card else { return };
        if self.regions.current().is_none() {
            return;
        }
        let due = self.agents.sent.is_none_or(|at| {
            newcomers || now.duration_since(at) >= AGENT_KEEPALIVE.max(about_keepalive(self.regions.crowd()))
        });
        if due {
            self.say_about_us(&RegionMessage::Agent(card)).await;
            self.agents.sent = Some(now);
        }
    }

    /// Whether the agents shield hides `author` (only agents heard can be hidden).
    pub(super) fn hides_agent(&self, author: &iroh::PublicKey) -> bool {
        let Some(operator) = self.agents.operator(author) else { return false };
        let Ok(agent) = PublicKey::from_bytes(*author.as_bytes()) else { return true };
        !self.trust.shields.admits(Category::Agents, self.agent_standing(&agent, &operator))
    }

    fn agent_standing(&self, agent: &PublicKey, operator: &PublicKey) -> Standing {
        let standing = |key: &PublicKey| match &self.trust.last {
            _ if *key == self.me_key => Standing::Me,
            Some(view) => view.standing(key),
            None => Standing::Stranger,
        };
        agent_standing(standing(agent), standing(operator))
    }

    /// An agent's card, checked with its signature: the program is told who runs them, unless
    /// the shield hides them, when they are gone from its view.
    pub(super) async fn heard_agent(&mut self, region: RegionId, author: iroh::PublicKey, card: AgentCard) {
        let Ok(operator) = PublicKey::from_bytes(card.operator) else { return };
        let now = Instant::now();
        let known = &mut self.agents.known;
        if known.len() >= MAX_AUTHORS && !known.contains_key(&author) {
            known.retain(|_, agent| now.saturating_duration_since(agent.heard) < FORGET_AFTER);
            if known.len() >= MAX_AUTHORS {
                self.stats.count_dropped_event();
                return;
            }
        }
        let first = known.insert(author, Known { operator, heard: now }).is_none_or(|old| old.operator != operator);
        let Ok(agent) = PublicKey::from_bytes(*author.as_bytes()) else { return };
        if self.hides_agent(&author) {
            if first {
                self.regions.forget_posing(&author);
                self.emit(Event::Left { region, author: agent }).await;
            }
            return;
        }
        self.emit(Event::Agent { region, author: agent, operator }).await;
    }

    /// The shields or trust changed: agents now hidden leave the program's view, and those shown
    /// again are told before their next pose brings them back.
    pub(super) async fn agents_shield_changed(&mut self, hidden_before: Vec<iroh::PublicKey>) {
        let Some(region) = self.regions.current().map(|subscription| subscription.region) else { return };
        let agents: Vec<(iroh::PublicKey, PublicKey)> =
            self.agents.known.iter().map(|(author, known)| (*author, known.operator)).collect();
        for (author, operator) in agents {
            let Ok(agent) = PublicKey::from_bytes(*author.as_bytes()) else { continue };
            match (hidden_before.contains(&author), self.hides_agent(&author)) {
                (false, true) => {
                    self.regions.forget_posing(&author);
                    self.emit(Event::Left { region, author: agent }).await;
                }
                (true, false) => self.emit(Event::Agent { region, author: agent, operator }).await,
                _ => {}
            }
        }
    }

    /// The agents hidden now, to compare with after a change of shields or trust.
    pub(super) fn hidden_agents(&self) -> Vec<iroh::PublicKey> {
        self.agents.known.keys().filter(|author| self.hides_agent(author)).copied().collect()
    }

    /// Whether a chat line kept from before is by an agent hidden now.
    pub(super) fn hides_agent_key(&self, author: &PublicKey) -> bool {
        iroh::PublicKey::from_bytes(author.as_bytes()).is_ok_and(|author| self.hides_agent(&author))
    }
}
