//! Trust and shields on the node. Statements are world changes (`Op::Trust`): ours are signed,
//! stored and sent on the world topic, so everyone online hears them, and the world's sync hands
//! them to whoever comes later. Whenever the statements held change, the node works out the
//! person's trust (in both contexts, off its loop, one computation at a time) and tells the
//! program ([`Event::Trust`]). Private messages meet the shield here, at the door: a sender below
//! it is answered "shielded" and told so; nothing of theirs is stored.
//!
//! Bounds: the world's (statements per author, see `sanctuary_engine::MAX_TRUST_RECORDS`); one
//! computation runs at a time, changes during it ask for one more, and that one starts no sooner
//! than [`TRUST_PAUSE`] after the last ended: a flood of statements costs at most a share of one
//! core, never all of it.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use sanctuary_engine::PublicKey;
use sanctuary_engine::shields::{Category, Shields, ShieldsBeforeAgents};
use sanctuary_engine::trust::{Standing, Trust, TrustContext, TrustGraph, TrustLevel};

use super::Event;
use super::actor::{Internal, Node};
use crate::inbox::Vouched;
use crate::store;

/// The least time between the end of one computation of trust and the start of the next.
const TRUST_PAUSE: Duration = Duration::from_millis(250);

/// The person's trust, as the program shows it.
#[derive(Debug, Clone)]
pub struct TrustView {
    /// Trust in people (voice, chat, messages, closeness).
    pub people: Trust,
    /// Trust in builders (their builds and models).
    pub builders: Trust,
    /// What the person says of others, as people.
    pub mine: BTreeMap<PublicKey, TrustLevel>,
    /// What others say of the person, as people.
    pub of_me: BTreeMap<PublicKey, TrustLevel>,
}

impl TrustView {
    /// Works the view out from every statement held.
    pub fn compute(graph: &TrustGraph, me: &PublicKey) -> Self {
        Self {
            people: graph.trust_for(me, TrustContext::People),
            builders: graph.trust_for(me, TrustContext::Builders),
            mine: graph.by(TrustContext::People, me).into_iter().collect(),
            of_me: graph.about(TrustContext::People, me).into_iter().collect(),
        }
    }

    /// Where `key` stands with the person, as a person.
    pub fn standing(&self, key: &PublicKey) -> Standing {
        self.people.standing(key)
    }

    /// Whether both say the other is a friend (or close friend): friendship needs both sides.
    pub fn is_friend(&self, key: &PublicKey) -> bool {
        let friendly = |level: Option<&TrustLevel>| level.is_some_and(|level| *level >= TrustLevel::Friend);
        friendly(self.mine.get(key)) && friendly(self.of_me.get(key))
    }

    /// People who call the person a friend whom the person has not answered.
    pub fn requests(&self) -> Vec<PublicKey> {
        self.of_me
            .iter()
            .filter(|(key, level)| {
                **level >= TrustLevel::Friend && self.mine.get(key).is_none_or(|mine| *mine < TrustLevel::Friend)
            })
            .map(|(key, _)| *key)
            .collect()
    }

    /// People the person calls a friend who have not said so back yet.
    pub fn pending(&self) -> Vec<PublicKey> {
        self.mine
            .iter()
            .filter(|(key, level)| **level >= TrustLevel::Friend && !self.is_friend(key))
            .map(|(key, _)| *key)
            .collect()
    }
}

/// What the door for private messages needs: the person's trust in people and their shields.
#[derive(Debug, Clone)]
pub(crate) struct Door {
    state: Arc<RwLock<(Option<Trust>, Shields)>>,
}

impl Door {
    pub(crate) fn new(shields: Shields) -> Self {
        Self { state: Arc::new(RwLock::new((None, shields))) }
    }

    /// Whether a private message from `sender` gets through the shield. Until trust is worked
    /// out the first time, everyone is a stranger.
    pub(crate) fn admits_direct(&self, sender: &PublicKey) -> bool {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let standing = state.0.as_ref().map_or(Standing::Stranger, |trust| trust.standing(sender));
        state.1.admits(Category::Direct, standing)
    }

    fn set_trust(&self, trust: Trust) {
        self.state.write().unwrap_or_else(PoisonError::into_inner).0 = Some(trust);
    }

    fn set_shields(&self, shields: Shields) {
        self.state.write().unwrap_or_else(PoisonError::into_inner).1 = shields;
    }
}

/// The node's side: the door, the shields on disk, and whether a computation runs.
pub(super) struct TrustState {
    pub(super) door: Door,
    /// Whom the person's trust reaches, for the inboxes' budgets.
    vouched: Vouched,
    /// The last view worked out.
    pub(super) last: Option<Arc<TrustView>>,
    pub(super) shields: Shields,
    path: PathBuf,
    computing: bool,
    again: bool,
    /// When the last computation ended.
    finished: Option<Instant>,
}

impl TrustState {
    /// The shields kept at `path` (the defaults when there are none, or they cannot be read:
    /// the problem is returned to be told).
    pub(super) fn open(path: PathBuf, vouched: Vouched) -> (Self, Option<String>) {
        let (shields, problem) = match store::read_whole::<Shields>(&path) {
            Ok(Some(shields)) => (shields, None),
            Ok(None) => (Shields::default(), None),
            // Kept before AI agents had a shield of their own: read as it was.
            Err(error) => match store::read_whole::<ShieldsBeforeAgents>(&path) {
                Ok(Some(old)) => (old.into(), None),
                _ => (Shields::default(), Some(format!("the shields could not be read, defaults apply ({error})"))),
            },
        };
        let state = Self {
            door: Door::new(shields),
            vouched,
            last: None,
            shields,
            path,
            computing: false,
            again: false,
            finished: None,
        };
        (state, problem)
    }
}

impl Node {
    /// The statements held changed: work the trust out again (after the running computation,
    /// if one runs).
    pub(super) fn refresh_trust(&mut self) {
        let resting = self.trust.finished.is_some_and(|finished| finished.elapsed() < TRUST_PAUSE);
        if self.trust.computing || resting {
            self.trust.again = true;
            return;
        }
        self.trust.again = false;
        self.trust.computing = true;
        let (replica, internal, me) = (self.replica.clone(), self.internal_tx.clone(), self.me_key);
        tokio::task::spawn_blocking(move || {
            let graph = replica.world().trust().clone();
            let view = TrustView::compute(&graph, &me);
            let _ = internal.blocking_send(Internal::Trust(Box::new(view)));
        });
    }

    /// A computation ended: the door uses it, the program is told.
    pub(super) async fn trust_computed(&mut self, view: TrustView) {
        self.trust.computing = false;
        self.trust.finished = Some(Instant::now());
        self.trust.door.set_trust(view.people.clone());
        let reached: HashSet<[u8; 32]> = view
            .people
            .scores()
            .map(|(key, _)| key)
            .filter(|key| matches!(view.standing(key), Standing::Known | Standing::Trusted(_)))
            .filter(|key| view.standing(key) != Standing::Trusted(TrustLevel::Distrust))
            .map(|key| *key.as_bytes())
            .collect();
        *self.trust.vouched.write().unwrap_or_else(PoisonError::into_inner) = reached;
        let view = Arc::new(view);
        let hidden = self.hidden_agents();
        self.trust.last = Some(view.clone());
        self.emit(Event::Trust(view)).await;
        self.agents_shield_changed(hidden).await;
        self.tell_whereabouts().await;
    }

    /// Starts the computation that waited for its pause, if one did.
    pub(super) fn trust_tick(&mut self) {
        if self.trust.again {
            self.refresh_trust();
        }
    }

    /// The person changed their shields: used at once, kept on disk.
    pub(super) async fn set_shields(&mut self, shields: Shields) {
        let hidden = self.hidden_agents();
        self.trust.shields = shields;
        self.trust.door.set_shields(shields);
        if let Err(error) = store::write_atomic(&self.trust.path, &shields) {
            self.emit(Event::Notice(format!("the shields could not be saved: {error}"))).await;
        }
        self.emit(Event::Shields(shields)).await;
        self.agents_shield_changed(hidden).await;
    }
}
