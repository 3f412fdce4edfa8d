//! Shields: for each kind of contact, the lowest standing (see [`crate::trust::Standing`]) that
//! gets through. Safe defaults keep strangers at a distance without shutting them out: their
//! voice is heard quietly, their avatars are drawn plain, their models wait as boxes until the
//! person loads them, their private messages are refused (the sender is told), and nobody but
//! friends comes within a metre unfaded. AI agents are a category of their own: shown to
//! everyone by default (they are always labelled), hidden from all with one setting.

use serde::{Deserialize, Serialize};

use crate::trust::{Standing, TrustLevel};

/// A kind of contact a shield guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Category {
    /// Their voice at full volume (below the shield: at [`Shields::quiet_volume`]).
    Voice,
    /// Their avatar as they made it (below: a plain body).
    Avatar,
    /// Their chat lines (below: hidden).
    Chat,
    /// Their private messages (below: refused, and the sender told).
    Direct,
    /// Their builds' models (below: boxes until loaded by hand).
    Builds,
    /// Coming within [`PERSONAL_SPACE`] unfaded (below: they fade).
    Closeness,
    /// AI agents seen and heard at all (below: hidden, chat and all). An agent meets it with
    /// [`agent_standing`]: its own standing or its operator's.
    Agents,
}

impl Category {
    /// Every category, in the order the panel shows them.
    pub const ALL: [Category; 7] = [
        Category::Voice,
        Category::Avatar,
        Category::Chat,
        Category::Direct,
        Category::Builds,
        Category::Closeness,
        Category::Agents,
    ];

    /// What the panel calls it.
    pub fn label(self) -> &'static str {
        match self {
            Category::Voice => "Voice",
            Category::Avatar => "Avatars",
            Category::Chat => "Chat",
            Category::Direct => "Private messages",
            Category::Builds => "Builds and models",
            Category::Closeness => "Coming close",
            Category::Agents => "AI agents",
        }
    }
}

/// Who gets through a shield.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Reach {
    /// Everyone not distrusted.
    Everyone,
    /// People trusted by the person or, enough, by those they trust.
    Known,
    /// Friends and close friends.
    Friends,
    /// Nobody.
    Nobody,
}

impl Reach {
    /// Every choice, from the most open.
    pub const ALL: [Reach; 4] = [Reach::Everyone, Reach::Known, Reach::Friends, Reach::Nobody];

    /// What the panel calls it.
    pub fn label(self) -> &'static str {
        match self {
            Reach::Everyone => "everyone",
            Reach::Known => "people I know",
            Reach::Friends => "friends",
            Reach::Nobody => "nobody",
        }
    }

    /// Whether someone of `standing` gets through.
    pub fn admits(self, standing: Standing) -> bool {
        match standing {
            Standing::Me => true,
            Standing::Distrusted | Standing::Trusted(TrustLevel::Distrust) => false,
            Standing::Stranger => self == Reach::Everyone,
            Standing::Known | Standing::Trusted(TrustLevel::Acquaintance) => self <= Reach::Known,
            Standing::Trusted(TrustLevel::Friend | TrustLevel::CloseFriend) => self <= Reach::Friends,
        }
    }
}

/// Within this distance, in metres, others' avatars fade unless the shield lets them close.
pub const PERSONAL_SPACE: f32 = 1.0;

/// The standing an AI agent meets the [`Category::Agents`] shield with: the better of its own
/// and its operator's (trusting someone covers the agents they run), unless either is
/// distrusted (distrusting an operator hides all their agents).
pub fn agent_standing(agent: Standing, operator: Standing) -> Standing {
    let distrusted = |standing| matches!(standing, Standing::Distrusted | Standing::Trusted(TrustLevel::Distrust));
    if distrusted(agent) || distrusted(operator) { Standing::Distrusted } else { agent.max(operator) }
}

/// The person's shields.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Shields {
    /// Per category, in [`Category::ALL`]'s order.
    reach: [Reach; 7],
    /// The volume of voices below the voice shield, 0 to 1.
    pub quiet_volume: f32,
}

impl Default for Shields {
    fn default() -> Self {
        let mut shields = Self { reach: [Reach::Everyone; 7], quiet_volume: 0.3 };
        shields.set(Category::Voice, Reach::Known);
        shields.set(Category::Avatar, Reach::Known);
        shields.set(Category::Chat, Reach::Everyone);
        shields.set(Category::Direct, Reach::Known);
        shields.set(Category::Builds, Reach::Known);
        shields.set(Category::Closeness, Reach::Friends);
        shields.set(Category::Agents, Reach::Everyone);
        shields
    }
}

/// Shields as they were kept before [`Category::Agents`] (six categories): read from an older
/// `shields.bin` so that nobody's settings are lost; agents then get the default.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct ShieldsBeforeAgents {
    reach: [Reach; 6],
    quiet_volume: f32,
}

impl From<ShieldsBeforeAgents> for Shields {
    fn from(old: ShieldsBeforeAgents) -> Self {
        let mut shields = Shields { quiet_volume: old.quiet_volume, ..Shields::default() };
        shields.reach[..6].copy_from_slice(&old.reach);
        shields
    }
}

impl Shields {
    /// Who gets through `category`.
    pub fn reach(&self, category: Category) -> Reach {
        self.reach[category as usize]
    }

    /// Sets who gets through `category`.
    pub fn set(&mut self, category: Category, reach: Reach) {
        self.reach[category as usize] = reach;
    }

    /// Whether someone of `standing` gets through `category`.
    pub fn admits(&self, category: Category, standing: Standing) -> bool {
        self.reach(category).admits(standing)
    }

    /// The volume someone of `standing` is heard at (before the person's own setting for
    /// them): full, quiet, or nothing when distrusted.
    pub fn voice_volume(&self, standing: Standing) -> f32 {
        if self.admits(Category::Voice, standing) {
            1.0
        } else if Reach::Everyone.admits(standing) {
            self.quiet_volume.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// How opaque someone of `standing` is drawn at `distance` metres: fading from
    /// [`PERSONAL_SPACE`] to a quarter of it, unless the closeness shield lets them close.
    pub fn closeness_alpha(&self, standing: Standing, distance: f32) -> f32 {
        if self.admits(Category::Closeness, standing) || !distance.is_finite() {
            return 1.0;
        }
        let inner = PERSONAL_SPACE * 0.25;
        ((distance - inner) / (PERSONAL_SPACE - inner)).clamp(0.1, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strangers_meet_the_safe_defaults_and_friends_pass() {
        let shields = Shields::default();
        let friend = Standing::Trusted(TrustLevel::Friend);
        assert!(!shields.admits(Category::Direct, Standing::Stranger), "no private messages from strangers");
        assert!(shields.admits(Category::Direct, Standing::Known));
        assert!(shields.admits(Category::Chat, Standing::Stranger));
        assert!(!shields.admits(Category::Chat, Standing::Distrusted), "distrust passes no shield");
        assert!(!shields.admits(Category::Avatar, Standing::Stranger));
        assert!(!shields.admits(Category::Builds, Standing::Stranger));
        assert_eq!(shields.voice_volume(Standing::Stranger), 0.3);
        assert_eq!(shields.voice_volume(friend), 1.0);
        assert_eq!(shields.voice_volume(Standing::Distrusted), 0.0);
        assert_eq!(shields.closeness_alpha(friend, 0.2), 1.0);
        assert_eq!(shields.closeness_alpha(Standing::Known, 2.0), 1.0, "outside the bubble");
        assert!(shields.closeness_alpha(Standing::Known, 0.5) < 0.5, "inside it they fade");
        assert_eq!(shields.closeness_alpha(Standing::Known, 0.0), 0.1, "never quite gone");
    }

    #[test]
    fn each_reach_admits_what_it_says() {
        let standings = [
            Standing::Distrusted,
            Standing::Stranger,
            Standing::Known,
            Standing::Trusted(TrustLevel::Acquaintance),
            Standing::Trusted(TrustLevel::Friend),
            Standing::Trusted(TrustLevel::CloseFriend),
            Standing::Me,
        ];
        let admitted = |reach: Reach| standings.iter().filter(|standing| reach.admits(**standing)).count();
        assert_eq!(admitted(Reach::Everyone), 6);
        assert_eq!(admitted(Reach::Known), 5);
        assert_eq!(admitted(Reach::Friends), 3);
        assert_eq!(admitted(Reach::Nobody), 1, "only oneself");
        assert!(Shields::default().admits(Category::Agents, Standing::Stranger), "agents shown by default");
        let mut shields = Shields::default();
        shields.set(Category::Direct, Reach::Everyone);
        assert!(shields.admits(Category::Direct, Standing::Stranger));
    }

    #[test]
    fn an_agent_stands_with_its_operator_and_distrust_of_either_hides_it() {
        let friend = Standing::Trusted(TrustLevel::Friend);
        assert_eq!(agent_standing(Standing::Stranger, friend), friend, "a friend's agent");
        assert_eq!(agent_standing(friend, Standing::Stranger), friend);
        assert_eq!(agent_standing(Standing::Stranger, Standing::Distrusted), Standing::Distrusted);
        assert_eq!(agent_standing(friend, Standing::Trusted(TrustLevel::Distrust)), Standing::Distrusted);
        let mut shields = Shields::default();
        shields.set(Category::Agents, Reach::Nobody);
        assert!(!shields.admits(Category::Agents, agent_standing(Standing::Stranger, friend)), "all hidden");
        shields.set(Category::Agents, Reach::Friends);
        assert!(shields.admits(Category::Agents, agent_standing(Standing::Stranger, friend)));
        assert!(!shields.admits(Category::Agents, agent_standing(Standing::Stranger, Standing::Known)));
    }

    #[test]
    fn shields_kept_before_agents_had_a_category_are_read_with_nothing_lost() {
        #[derive(Serialize)]
        struct Old {
            reach: [Reach; 6],
            quiet_volume: f32,
        }
        let old = Old { reach: [Reach::Friends; 6], quiet_volume: 0.55 };
        let bytes = postcard::to_allocvec(&old).expect("encodes");
        assert!(postcard::from_bytes::<Shields>(&bytes).is_err(), "the new shape does not read the old bytes");
        let read: Shields = postcard::from_bytes::<ShieldsBeforeAgents>(&bytes).expect("the old shape reads").into();
        assert_eq!(read.reach(Category::Voice), Reach::Friends);
        assert_eq!(read.reach(Category::Closeness), Reach::Friends);
        assert_eq!(read.reach(Category::Agents), Reach::Everyone);
        assert_eq!(read.quiet_volume, 0.55);
        let new = Shields::default();
        let bytes = postcard::to_allocvec(&new).expect("encodes");
        assert_eq!(postcard::from_bytes::<Shields>(&bytes).expect("reads"), new);
    }
}
