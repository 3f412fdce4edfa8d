//! A matrix of trust: what people say of each other ("I trust this key, at this level, in this
//! context", or "I no longer do"), and how much one person, from where they stand, trusts
//! everyone else. Pure: statements in, a trust per key out, the same whatever order the
//! statements arrived in.
//!
//! The method is personalised PageRank with one step of distrust (after Guha, Kumar, Raghavan
//! and Tomkins, "Propagation of trust and distrust", 2004). Trust starts at the person and flows
//! along positive statements, split by their weights (an acquaintance 1, a friend 2, a close
//! friend 4); at every step a part of it ([`RESTART`]) goes back to the person. Why this one:
//! it is personal (unlike EigenTrust's global, pre-trusted ranking), its resistance to sybils
//! has a simple proof (a crowd of fresh keys that trust each other, reached through one
//! statement, holds at most `(1 − RESTART) / RESTART` times the trust of whoever made that
//! statement, however many keys it has, because trust leaves the crowd at the restart rate and
//! enters only through that statement), and it costs a few passes over the statements.
//! Appleseed has the same flavour but more knobs and no tighter bound. Distrust does not spread
//! (what the distrusted distrust means nothing): each distrust statement lowers its subject by
//! [`DISTRUST_WEIGHT`] times the trust its author has; the person's own distrust is final.
//!
//! Bounds: at most [`MAX_STATEMENTS_PER_AUTHOR`] standing statements per author and context
//! (a newer statement about the same key replaces the older one; a withdrawal stays as a
//! tombstone so an older copy cannot come back).

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::PublicKey;

/// The share of trust that goes back to the person at every step.
pub const RESTART: f64 = 0.15;
/// How much of a truster's own trust their distrust takes from its subject.
pub const DISTRUST_WEIGHT: f64 = 1.0;
/// Standing statements kept per author and context.
pub const MAX_STATEMENTS_PER_AUTHOR: usize = 1_000;
/// Passes over the statements at most (the flow settles long before for real graphs).
const MAX_PASSES: usize = 60;
/// The flow has settled when a pass moves less than this in all.
const SETTLED: f64 = 1e-9;

/// How much a person trusts another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TrustLevel {
    /// Not at all: their trust counts against.
    Distrust,
    /// Someone met.
    Acquaintance,
    /// A friend.
    Friend,
    /// A close friend.
    CloseFriend,
}

impl TrustLevel {
    /// How much of the truster's trust flows this way, against their other statements.
    fn weight(self) -> f64 {
        match self {
            TrustLevel::Distrust => 0.0,
            TrustLevel::Acquaintance => 1.0,
            TrustLevel::Friend => 2.0,
            TrustLevel::CloseFriend => 4.0,
        }
    }

    /// How much of a chain's strength a statement at this level carries on: a chain of close
    /// friends stays strong, one through acquaintances fades fast.
    fn carries(self) -> f64 {
        match self {
            TrustLevel::Distrust => 0.0,
            TrustLevel::Acquaintance => 0.5,
            TrustLevel::Friend => 0.8,
            TrustLevel::CloseFriend => 1.0,
        }
    }

    /// A short word for it.
    pub fn word(self) -> &'static str {
        match self {
            TrustLevel::Distrust => "distrusted",
            TrustLevel::Acquaintance => "acquaintance",
            TrustLevel::Friend => "friend",
            TrustLevel::CloseFriend => "close friend",
        }
    }
}

/// What the trust is about: a good person is not always a good builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TrustContext {
    /// As a person: voice, chat, messages, coming close.
    People,
    /// As a builder: their builds and models.
    Builders,
}

/// One signed statement, as its author made it (the signature is checked where it arrives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// Who says it.
    pub author: PublicKey,
    /// Of whom.
    pub subject: PublicKey,
    /// In what.
    pub context: TrustContext,
    /// How much; `None` takes back what the author said of the subject before.
    pub level: Option<TrustLevel>,
    /// The author's sequence: a newer statement on the same subject replaces an older one.
    pub sequence: u64,
}

/// Why a statement was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// Nobody states their trust in themselves.
    #[error("a statement about oneself")]
    OfSelf,
    /// The author already has as many standing statements as anyone may.
    #[error("the author has {MAX_STATEMENTS_PER_AUTHOR} statements in this context already")]
    Full,
}

/// Every statement heard: the newest per author, context and subject.
#[derive(Debug, Clone, Default)]
pub struct TrustGraph {
    statements: BTreeMap<TrustContext, BTreeMap<(PublicKey, PublicKey), (u64, Option<TrustLevel>)>>,
    /// Standing (not withdrawn) statements per author and context.
    standing: HashMap<(TrustContext, PublicKey), usize>,
    /// Each context's statements numbered for arithmetic, made when first needed after a
    /// change (everyone's trust is worked out from the same numbering).
    numbered: [OnceLock<Arc<Indexed>>; 2],
}

impl TrustGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a statement: `Ok(true)` when it changed what is known, `Ok(false)` when an equal
    /// or newer one was already here.
    pub fn insert(&mut self, statement: Statement) -> Result<bool, TrustError> {
        if statement.author == statement.subject {
            return Err(TrustError::OfSelf);
        }
        let key = (statement.author, statement.subject);
        let previous = self.statements.get(&statement.context).and_then(|said| said.get(&key)).copied();
        if previous.is_some_and(|(sequence, _)| sequence >= statement.sequence) {
            return Ok(false);
        }
        self.set(statement)?;
        Ok(true)
    }

    /// Puts `statement` in place of whatever its author said of its subject before, newer or
    /// not: for a caller that orders statements itself (the world breaks ties of sequence by
    /// change id).
    pub fn set(&mut self, statement: Statement) -> Result<(), TrustError> {
        if statement.author == statement.subject {
            return Err(TrustError::OfSelf);
        }
        let key = (statement.author, statement.subject);
        let previous = self.statements.get(&statement.context).and_then(|said| said.get(&key)).copied();
        let was_standing = previous.is_some_and(|(_, level)| level.is_some());
        let standing = self.standing.entry((statement.context, statement.author)).or_default();
        match (was_standing, statement.level.is_some()) {
            (false, true) if *standing >= MAX_STATEMENTS_PER_AUTHOR => return Err(TrustError::Full),
            (false, true) => *standing += 1,
            (true, false) => *standing = standing.saturating_sub(1),
            _ => {}
        }
        self.statements.entry(statement.context).or_default().insert(key, (statement.sequence, statement.level));
        self.numbered[statement.context as usize] = OnceLock::new();
        Ok(())
    }

    /// Who says what of `subject` in `context` (withdrawals left out), in key order.
    pub fn about(&self, context: TrustContext, subject: &PublicKey) -> Vec<(PublicKey, TrustLevel)> {
        let Some(said) = self.statements.get(&context) else { return Vec::new() };
        said.iter()
            .filter(|((_, of), _)| of == subject)
            .filter_map(|((author, _), (_, level))| level.map(|level| (*author, level)))
            .collect()
    }

    /// What `author` says in `context` (withdrawals left out), in key order.
    pub fn by(&self, context: TrustContext, author: &PublicKey) -> Vec<(PublicKey, TrustLevel)> {
        let Some(said) = self.statements.get(&context) else { return Vec::new() };
        said.iter()
            .skip_while(|((by, _), _)| by < author)
            .take_while(|((by, _), _)| by == author)
            .filter_map(|((_, subject), (_, level))| level.map(|level| (*subject, level)))
            .collect()
    }

    /// How many statements `author` has standing (not withdrawn) in `context`.
    pub fn standing(&self, context: TrustContext, author: &PublicKey) -> usize {
        self.standing.get(&(context, *author)).copied().unwrap_or(0)
    }

    /// Statements kept (withdrawals included).
    pub fn len(&self) -> usize {
        self.statements.values().map(BTreeMap::len).sum()
    }

    /// Whether nothing was said yet.
    pub fn is_empty(&self) -> bool {
        self.statements.values().all(BTreeMap::is_empty)
    }

    /// What `author` says of `subject` now.
    pub fn said(&self, context: TrustContext, author: &PublicKey, subject: &PublicKey) -> Option<TrustLevel> {
        self.statements.get(&context).and_then(|said| said.get(&(*author, *subject))).and_then(|(_, level)| *level)
    }

    /// The standing statements of one context, in a fixed order.
    fn edges(&self, context: TrustContext) -> impl Iterator<Item = (&PublicKey, &PublicKey, TrustLevel)> {
        self.statements
            .get(&context)
            .into_iter()
            .flatten()
            .filter_map(|((author, subject), (_, level))| level.map(|level| (author, subject, level)))
    }

    /// The statements of `context` numbered for arithmetic: keys in their order, so that the
    /// arithmetic runs the same way whatever order the statements came in.
    fn indexed(&self, context: TrustContext) -> Arc<Indexed> {
        self.numbered[context as usize]
            .get_or_init(|| {
                // Each key gets a number as it is first seen; the numbers are then put in
                // the keys' order. Statements are kept by author, then subject, so each
                // author's statements come together and in their subjects' order.
                let mut seen: HashMap<PublicKey, usize> = HashMap::new();
                let mut said: Vec<(usize, usize, TrustLevel)> = Vec::new();
                let mut author_at: Option<(&PublicKey, usize)> = None;
                for (author, subject, level) in self.edges(context) {
                    let from = match author_at {
                        Some((known, at)) if known == author => at,
                        _ => {
                            let next = seen.len();
                            *seen.entry(*author).or_insert(next)
                        }
                    };
                    author_at = Some((author, from));
                    let next = seen.len();
                    let to = *seen.entry(*subject).or_insert(next);
                    said.push((from, to, level));
                }
                let mut keys: Vec<PublicKey> = seen.keys().copied().collect();
                keys.sort_unstable();
                let mut number = vec![0usize; keys.len()];
                for (place, key) in keys.iter().enumerate() {
                    number[seen[key]] = place;
                }
                let mut out: Vec<Vec<(usize, TrustLevel)>> = vec![Vec::new(); keys.len()];
                let mut out_weight = vec![0.0; keys.len()];
                let mut distrust = Vec::new();
                for (from, to, level) in said {
                    let (from, to) = (number[from], number[to]);
                    if level == TrustLevel::Distrust {
                        distrust.push((from, to));
                    } else {
                        out[from].push((to, level));
                        out_weight[from] += level.weight();
                    }
                }
                Arc::new(Indexed { keys, out, out_weight, distrust })
            })
            .clone()
    }

    /// How much `me` trusts everyone in `context`.
    pub fn trust_for(&self, me: &PublicKey, context: TrustContext) -> Trust {
        let graph = self.indexed(context);
        // Someone who said nothing and of whom nothing was said trusts nobody.
        let Ok(seat) = graph.keys.binary_search(me) else {
            return Trust { me: *me, scores: HashMap::new(), direct: HashMap::new() };
        };
        let n = graph.keys.len();
        // Personalised PageRank: trust flows along statements; what reaches someone who trusts
        // nobody, and the restart share, goes back to the seat.
        let mut flow = vec![0.0f64; n];
        flow[seat] = 1.0;
        let mut next = vec![0.0f64; n];
        for _ in 0..MAX_PASSES {
            next.iter_mut().for_each(|value| *value = 0.0);
            let mut home = RESTART;
            for (from, value) in flow.iter().enumerate() {
                if graph.out_weight[from] == 0.0 {
                    home += (1.0 - RESTART) * value;
                    continue;
                }
                let share = (1.0 - RESTART) * value / graph.out_weight[from];
                for (to, level) in &graph.out[from] {
                    next[*to] += share * level.weight();
                }
            }
            next[seat] += home;
            let moved: f64 = flow.iter().zip(&next).map(|(a, b)| (a - b).abs()).sum();
            std::mem::swap(&mut flow, &mut next);
            if moved < SETTLED {
                break;
            }
        }
        // On a scale where 1 is the most anyone but the seat holds, and never more than the
        // strongest chain of statements from the seat allows: a key's own crowd can pump flow
        // back into it, but cannot lengthen or strengthen the chain that reaches it.
        let top =
            flow.iter().enumerate().filter(|(node, _)| *node != seat).map(|(_, value)| *value).fold(0.0, f64::max);
        let (reach, _) = graph.strongest(seat);
        let score: Vec<f64> = flow
            .iter()
            .zip(&reach)
            .map(|(value, reach)| if top > 0.0 { (value / top).min(*reach) } else { 0.0 })
            .collect();
        let mut lowered = score.clone();
        for (from, to) in &graph.distrust {
            lowered[*to] = if *from == seat { -1.0 } else { lowered[*to] - DISTRUST_WEIGHT * score[*from].max(0.0) };
        }
        let mut scores = HashMap::with_capacity(n);
        let mut direct = HashMap::new();
        for (node, key) in graph.keys.iter().enumerate() {
            if node != seat {
                scores.insert(*key, lowered[node].clamp(-1.0, 1.0));
            }
        }
        for (to, level) in &graph.out[seat] {
            direct.insert(graph.keys[*to], *level);
        }
        for (from, to) in &graph.distrust {
            if *from == seat {
                direct.insert(graph.keys[*to], TrustLevel::Distrust);
            }
        }
        Trust { me: *me, scores, direct }
    }

    /// Why `me` trusts `subject` in `context`: the strongest chain of positive statements from
    /// `me` to them (the one that bounds their trust), or `None` when there is none.
    pub fn path(&self, me: &PublicKey, subject: &PublicKey, context: TrustContext) -> Option<Vec<PublicKey>> {
        let graph = self.indexed(context);
        let (seat, target) = (graph.keys.binary_search(me).ok()?, graph.keys.binary_search(subject).ok()?);
        let (reach, came_from) = graph.strongest(seat);
        if target == seat || reach[target] <= 0.0 {
            return None;
        }
        let mut path = vec![graph.keys[target]];
        let mut at = target;
        while let Some(previous) = came_from[at] {
            path.push(graph.keys[previous]);
            at = previous;
        }
        path.reverse();
        Some(path)
    }
}

/// One context's statements, numbered.
#[derive(Debug)]
struct Indexed {
    /// Every key stated or stated of, in order: a key's number is its place here.
    keys: Vec<PublicKey>,
    /// Positive statements by author.
    out: Vec<Vec<(usize, TrustLevel)>>,
    out_weight: Vec<f64>,
    distrust: Vec<(usize, usize)>,
}

impl Indexed {
    /// The strongest chain from the seat to each key: the largest product of
    /// [`TrustLevel::carries`] along a chain of positive statements (1 for the seat, 0 for
    /// keys no chain reaches), and the key before on that chain.
    fn strongest(&self, seat: usize) -> (Vec<f64>, Vec<Option<usize>>) {
        let n = self.keys.len();
        let mut reach = vec![0.0f64; n];
        let mut came_from: Vec<Option<usize>> = vec![None; n];
        let mut done = vec![false; n];
        reach[seat] = 1.0;
        let mut queue = BinaryHeap::from([Strength(1.0, seat)]);
        while let Some(Strength(strength, node)) = queue.pop() {
            if done[node] {
                continue;
            }
            done[node] = true;
            for (to, level) in &self.out[node] {
                let through = strength * level.carries();
                if !done[*to] && through > reach[*to] {
                    reach[*to] = through;
                    came_from[*to] = Some(node);
                    queue.push(Strength(through, *to));
                }
            }
        }
        (reach, came_from)
    }
}

/// A chain's strength and the key it reaches, ordered by strength (then key) for the queue.
#[derive(PartialEq)]
struct Strength(f64, usize);

impl Eq for Strength {}

impl PartialOrd for Strength {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Strength {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

/// How much one person trusts everyone they can reach, in one context.
#[derive(Debug, Clone, PartialEq)]
pub struct Trust {
    me: PublicKey,
    scores: HashMap<PublicKey, f64>,
    direct: HashMap<PublicKey, TrustLevel>,
}

/// Where someone stands with the person, for shields and for the word beside a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Standing {
    /// Distrusted, by the person or by enough of those they trust.
    Distrusted,
    /// No trust reaches them.
    Stranger,
    /// Trusted through others.
    Known,
    /// Trusted by the person as this level.
    Trusted(TrustLevel),
    /// The person themselves.
    Me,
}

/// From this score on, trust that reached someone through others makes them known.
pub const KNOWN_FROM: f64 = 0.05;

impl Trust {
    /// Their trust, from −1 (distrusted) through 0 (nothing reaches them) to 1 (the most
    /// anyone holds).
    pub fn score(&self, key: &PublicKey) -> f64 {
        if *key == self.me { 1.0 } else { self.scores.get(key).copied().unwrap_or(0.0) }
    }

    /// Where they stand.
    pub fn standing(&self, key: &PublicKey) -> Standing {
        if *key == self.me {
            return Standing::Me;
        }
        let score = self.score(key);
        match self.direct.get(key) {
            Some(TrustLevel::Distrust) => Standing::Distrusted,
            _ if score < 0.0 => Standing::Distrusted,
            Some(level) => Standing::Trusted(*level),
            None if score >= KNOWN_FROM => Standing::Known,
            None => Standing::Stranger,
        }
    }

    /// Everyone with a score, in no order.
    pub fn scores(&self) -> impl Iterator<Item = (&PublicKey, f64)> {
        self.scores.iter().map(|(key, score)| (key, *score))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> PublicKey {
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&n.to_le_bytes());
        PublicKey::from_secret_seed(&seed)
    }

    /// `author` says this of `subject`, newer than anything said before in the test.
    fn says(graph: &mut TrustGraph, author: u32, subject: u32, level: TrustLevel) {
        static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let sequence = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let statement = Statement {
            author: key(author),
            subject: key(subject),
            context: TrustContext::People,
            level: Some(level),
            sequence,
        };
        assert_eq!(graph.insert(statement), Ok(true));
    }

    #[test]
    fn trust_flows_from_friends_and_fades_with_distance() {
        let mut graph = TrustGraph::new();
        says(&mut graph, 0, 1, TrustLevel::Friend);
        says(&mut graph, 1, 2, TrustLevel::Friend);
        says(&mut graph, 2, 3, TrustLevel::Friend);
        let trust = graph.trust_for(&key(0), TrustContext::People);
        assert!(trust.score(&key(1)) > trust.score(&key(2)) && trust.score(&key(2)) > trust.score(&key(3)));
        assert!(trust.score(&key(3)) > 0.0, "a friend of a friend of a friend is reached");
        assert_eq!(trust.standing(&key(1)), Standing::Trusted(TrustLevel::Friend));
        assert_eq!(trust.standing(&key(2)), Standing::Known, "trust propagates from a friend's statement");
        assert_eq!(trust.standing(&key(9)), Standing::Stranger);
        assert_eq!(trust.standing(&key(0)), Standing::Me);
        assert_eq!(graph.path(&key(0), &key(3), TrustContext::People), Some(vec![key(0), key(1), key(2), key(3)]));
        assert_eq!(graph.path(&key(0), &key(9), TrustContext::People), None);
        assert_eq!(graph.trust_for(&key(0), TrustContext::Builders).score(&key(1)), 0.0, "contexts apart");
    }

    /// Me, two friends, an acquaintance of theirs (3), who trusts Mallory (100), who made
    /// `sybils` keys that all trust each other (each 20 others) and her: what the crowd of Mallory
    /// and her keys holds, the most any one of her keys holds, and 3's own trust.
    fn sybil_attack(sybils: u32) -> (f64, f64, f64, Trust) {
        let mut graph = TrustGraph::new();
        says(&mut graph, 0, 1, TrustLevel::CloseFriend);
        says(&mut graph, 0, 2, TrustLevel::Friend);
        says(&mut graph, 1, 2, TrustLevel::Friend);
        says(&mut graph, 1, 3, TrustLevel::Acquaintance);
        says(&mut graph, 2, 3, TrustLevel::Acquaintance);
        says(&mut graph, 3, 100, TrustLevel::Acquaintance);
        for sybil in 0..sybils {
            for step in 1..=20.min(sybils - 1) {
                says(&mut graph, 1_000 + sybil, 1_000 + (sybil + step * 37) % sybils, TrustLevel::CloseFriend);
            }
            says(&mut graph, 1_000 + sybil, 100, TrustLevel::CloseFriend);
            says(&mut graph, 100, 1_000 + sybil, TrustLevel::CloseFriend);
        }
        let trust = graph.trust_for(&key(0), TrustContext::People);
        let crowd: f64 =
            (0..sybils).map(|sybil| trust.score(&key(1_000 + sybil))).sum::<f64>() + trust.score(&key(100));
        let most = (0..sybils).map(|sybil| trust.score(&key(1_000 + sybil))).fold(0.0, f64::max);
        let gate = trust.score(&key(3));
        (crowd, most, gate, trust)
    }

    #[test]
    fn a_thousand_sybils_behind_one_statement_gain_bounded_trust() {
        let (crowd, most, gate, trust) = sybil_attack(1_000);
        let (ten, _, _, _) = sybil_attack(10);
        let (_, _, _, alone) = sybil_attack(0);
        // Trust enters the crowd only through 3's one statement and leaves it at the restart
        // rate, and nobody holds more than 1: together the crowd holds at most
        // (1 − RESTART) / RESTART, however many keys it has.
        let bound = (1.0 - RESTART) / RESTART;
        let mallory = trust.score(&key(100));
        println!(
            "1,000 sybils and Mallory: together {crowd:.3} (10 sybils: {ten:.3}; the bound for any crowd {bound:.3}); \
             the most trusted sybil {most:.5}; Mallory {mallory:.3} (without her crowd {:.3}); their way in (3) \
             {gate:.3}",
            alone.score(&key(100))
        );
        assert!(crowd <= bound && ten <= bound, "the crowd holds {crowd}, more than {bound}");
        assert!(most < KNOWN_FROM, "no sybil is known ({most})");
        assert!((0..1_000).all(|sybil| trust.standing(&key(1_000 + sybil)) == Standing::Stranger));
        assert!(mallory <= alone.score(&key(100)) + 1e-12, "Mallory's own keys raised her: {mallory}");
        assert!(mallory <= 0.25 + 1e-12, "Mallory is an acquaintance of an acquaintance of a close friend");
        assert_eq!(trust.standing(&key(1)), Standing::Trusted(TrustLevel::CloseFriend));
    }

    #[test]
    fn distrust_from_friends_lowers_a_key_and_my_own_is_final() {
        let mut graph = TrustGraph::new();
        says(&mut graph, 0, 1, TrustLevel::Friend);
        says(&mut graph, 0, 2, TrustLevel::Friend);
        says(&mut graph, 1, 5, TrustLevel::Friend);
        let before = graph.trust_for(&key(0), TrustContext::People).score(&key(5));
        says(&mut graph, 2, 5, TrustLevel::Distrust);
        let after = graph.trust_for(&key(0), TrustContext::People);
        assert!(after.score(&key(5)) < before, "{} then {}", before, after.score(&key(5)));
        assert_eq!(after.standing(&key(5)), Standing::Distrusted);
        says(&mut graph, 0, 1, TrustLevel::Distrust);
        let mine = graph.trust_for(&key(0), TrustContext::People);
        assert_eq!(mine.score(&key(1)), -1.0);
        assert_eq!(mine.standing(&key(1)), Standing::Distrusted, "my own distrust is final");
    }

    #[test]
    fn the_result_depends_on_the_statements_not_their_order() {
        let mut statements = Vec::new();
        for author in 0..40u32 {
            for step in 1..6u32 {
                let level =
                    [TrustLevel::Acquaintance, TrustLevel::Friend, TrustLevel::CloseFriend, TrustLevel::Distrust]
                        [((author * 7 + step) % 4) as usize];
                let subject = (author * 13 + step * 5) % 40;
                if subject != author {
                    statements.push(Statement {
                        author: key(author),
                        subject: key(subject),
                        context: TrustContext::People,
                        level: Some(level),
                        sequence: u64::from(step),
                    });
                }
            }
        }
        let build = |order: &[Statement]| {
            let mut graph = TrustGraph::new();
            for statement in order {
                let _ = graph.insert(*statement);
            }
            let trust = graph.trust_for(&key(0), TrustContext::People);
            let mut scores: Vec<(PublicKey, u64)> =
                trust.scores().map(|(key, score)| (*key, score.to_bits())).collect();
            scores.sort();
            scores
        };
        let forward = build(&statements);
        let mut shuffled = statements.clone();
        shuffled.reverse();
        shuffled.rotate_left(17);
        assert_eq!(forward, build(&shuffled), "bit for bit the same");
        assert!(forward.iter().any(|(_, bits)| f64::from_bits(*bits) > 0.0));
    }

    #[test]
    fn newer_statements_replace_older_and_authors_are_bounded() {
        let mut graph = TrustGraph::new();
        let statement = |subject: u32, level: Option<TrustLevel>, sequence: u64| Statement {
            author: key(0),
            subject: key(subject),
            context: TrustContext::People,
            level,
            sequence,
        };
        assert_eq!(graph.insert(statement(1, Some(TrustLevel::Friend), 5)), Ok(true));
        assert_eq!(graph.insert(statement(1, Some(TrustLevel::Distrust), 4)), Ok(false), "an older one is ignored");
        assert_eq!(graph.insert(statement(1, None, 6)), Ok(true), "taken back");
        assert_eq!(graph.said(TrustContext::People, &key(0), &key(1)), None);
        assert_eq!(graph.insert(statement(1, Some(TrustLevel::Friend), 5)), Ok(false), "a replayed old one stays out");
        assert_eq!(
            graph.insert(Statement { subject: key(0), ..statement(0, Some(TrustLevel::Friend), 9) }),
            Err(TrustError::OfSelf)
        );
        for subject in 2..2 + MAX_STATEMENTS_PER_AUTHOR as u32 {
            graph.insert(statement(subject, Some(TrustLevel::Acquaintance), 1)).expect("within the bound");
        }
        assert_eq!(graph.insert(statement(5_000, Some(TrustLevel::Friend), 1)), Err(TrustError::Full));
        assert_eq!(graph.insert(statement(2, None, 2)), Ok(true), "a withdrawal is always taken");
        assert_eq!(graph.insert(statement(5_000, Some(TrustLevel::Friend), 1)), Ok(true), "and makes room");
    }
}
