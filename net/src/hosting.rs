//! What a home node keeps, and for whom: the plan worked out from its policy and the world it
//! holds. People name their hosts with a signed [`Op::Host`] (the person's side of the link,
//! public and verifiable by anyone); the node decides for itself whom it keeps for (its side):
//!
//! - its **owner** (`sanctuary node --owner KEY`): everything on their parcels, within the
//!   node's whole quota, whether or not they have named it yet;
//! - the owner's **friends** (both said "friend" or "close friend" of the other) who name the
//!   node: each within the per-friend quota;
//! - people given a **quota of their own** (`--pin KEY=MIB`) who name the node;
//! - people who **paid** for a quota (see [`crate::paid_hosting`]) and name the node, while
//!   what they paid for runs (a grant and a payment add up);
//! - with `--keep-all`, a community node, every model the world places, after the above.
//!
//! Anyone else who names the node is declined: listed (at most [`MAX_DECLINED_LISTED`]) and
//! counted, never kept for. What is kept for a person are the models placed on the parcels
//! they own now, in parcel and object order, as long as they fit their quota and the node's;
//! a model kept already for someone earlier in the order costs the next one nothing.

use std::collections::{BTreeMap, HashSet};

use sanctuary_engine::trust::{TrustContext, TrustLevel};
use sanctuary_engine::{ModelRef, ObjectKind, PublicKey, World};

/// The most people listed as declined (the rest are counted).
pub const MAX_DECLINED_LISTED: usize = 32;
/// The most people kept for at once (besides the owner): a bound on the plan's size, far above
/// any real circle of friends.
pub const MAX_KEPT_FOR: usize = 1024;

/// Whom a home node keeps for, and how much.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostingPolicy {
    /// The person whose home node this is.
    pub owner: Option<PublicKey>,
    /// Bytes of models kept for each friend of the owner who names the node.
    pub friend_quota: u64,
    /// People with a quota of their own (bytes), friends or not.
    pub grants: BTreeMap<PublicKey, u64>,
    /// People who paid for a quota that runs now (bytes).
    pub paid: BTreeMap<PublicKey, u64>,
    /// Whether every model the world places is kept too (a community node).
    pub keep_all: bool,
    /// Bytes of models kept in all.
    pub total: u64,
}

/// Why the node keeps things for someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// The node's owner.
    Owner,
    /// Someone with a quota of their own.
    Granted,
    /// A friend of the owner.
    Friend,
    /// Someone who paid (and has no grant).
    Paid,
}

impl Role {
    /// How the status page names it.
    pub fn label(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Granted => "granted",
            Role::Friend => "friend",
            Role::Paid => "paid",
        }
    }
}

/// What the node keeps for one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptFor {
    /// Whose.
    pub person: PublicKey,
    /// Why.
    pub role: Role,
    /// Whether the person names this node as a host (the owner is kept for either way).
    pub named: bool,
    /// Their quota in bytes.
    pub quota: u64,
    /// Models kept.
    pub models: usize,
    /// Bytes of those models (as their placers declared them).
    pub bytes: u64,
    /// Models of theirs left out: past their quota or the node's.
    pub left_out: usize,
}

/// What the node keeps, and for whom.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostingPlan {
    /// The people kept for, the owner first, then by key.
    pub kept_for: Vec<KeptFor>,
    /// People who name the node but are not kept for (at most [`MAX_DECLINED_LISTED`]).
    pub declined: Vec<PublicKey>,
    /// How many people were declined in all.
    pub declined_count: usize,
    /// Models kept for nobody in particular (`keep_all`).
    pub others: usize,
    /// Every model to keep, with the person it is kept for (the first, if several).
    pub models: Vec<(ModelRef, PublicKey)>,
    /// Bytes of every model to keep.
    pub bytes: u64,
}

/// Whether `a` and `b` both call the other a friend (or close friend).
fn mutual_friends(world: &World, a: &PublicKey, b: &PublicKey) -> bool {
    let friendly = |level: Option<TrustLevel>| matches!(level, Some(TrustLevel::Friend | TrustLevel::CloseFriend));
    let graph = world.trust();
    friendly(graph.said(TrustContext::People, a, b)) && friendly(graph.said(TrustContext::People, b, a))
}

/// The models placed on the parcels `person` owns now, each once, in parcel and object order.
pub fn models_placed_by(world: &mut World, person: &PublicKey) -> Vec<ModelRef> {
    let mut seen = HashSet::new();
    let mut models = Vec::new();
    let parcels: Vec<_> = world.parcels().collect();
    for parcel in parcels {
        let state = world.parcel(parcel);
        if state.owner() != Some(*person) {
            continue;
        }
        for object in state.objects.values() {
            if let ObjectKind::Model(model) = object.kind
                && seen.insert(model.hash)
            {
                models.push(model);
            }
        }
    }
    models
}

/// Works out what the node `me` keeps under `policy` in `world`.
pub fn plan(world: &mut World, me: &PublicKey, policy: &HostingPolicy) -> HostingPlan {
    let naming: HashSet<PublicKey> = world.hosted_by(me).into_iter().collect();
    let mut people: Vec<(PublicKey, Role, u64)> = Vec::new();
    let mut plan = HostingPlan::default();
    if let Some(owner) = policy.owner {
        people.push((owner, Role::Owner, policy.total));
    }
    let mut asking: Vec<PublicKey> = naming.iter().copied().filter(|key| Some(*key) != policy.owner).collect();
    asking.sort();
    for person in asking {
        let paid = policy.paid.get(&person).copied();
        let role = match (policy.grants.get(&person), policy.owner) {
            (Some(quota), _) => Some((Role::Granted, quota.saturating_add(paid.unwrap_or(0)))),
            (None, _) if paid.is_some() => paid.map(|quota| (Role::Paid, quota)),
            (None, Some(owner)) if mutual_friends(world, &owner, &person) => Some((Role::Friend, policy.friend_quota)),
            _ => None,
        };
        match role {
            Some((role, quota)) if people.len() <= MAX_KEPT_FOR => people.push((person, role, quota)),
            _ => {
                plan.declined_count += 1;
                if plan.declined.len() < MAX_DECLINED_LISTED {
                    plan.declined.push(person);
                }
            }
        }
    }
    // Each owner's models, parcel by parcel, object by object.
    let mut models_of: BTreeMap<PublicKey, Vec<ModelRef>> = BTreeMap::new();
    let parcels: Vec<_> = world.parcels().collect();
    for parcel in parcels {
        let state = world.parcel(parcel);
        let Some(owner) = state.owner() else { continue };
        let placed = state.objects.values().filter_map(|object| match object.kind {
            ObjectKind::Model(model) => Some(model),
            _ => None,
        });
        models_of.entry(owner).or_default().extend(placed);
    }
    let mut taken: HashSet<[u8; 32]> = HashSet::new();
    for (person, role, quota) in people {
        let mut kept =
            KeptFor { person, role, named: naming.contains(&person), quota, models: 0, bytes: 0, left_out: 0 };
        for model in models_of.get(&person).into_iter().flatten() {
            if !taken.insert(model.hash) {
                continue;
            }
            let mine = kept.bytes.checked_add(model.bytes).filter(|bytes| *bytes <= quota);
            let all = plan.bytes.checked_add(model.bytes).filter(|bytes| *bytes <= policy.total);
            match (mine, all) {
                (Some(mine), Some(all)) => {
                    kept.models += 1;
                    kept.bytes = mine;
                    plan.bytes = all;
                    plan.models.push((*model, person));
                }
                _ => {
                    taken.remove(&model.hash);
                    kept.left_out += 1;
                }
            }
        }
        plan.kept_for.push(kept);
    }
    if policy.keep_all {
        for (owner, models) in &models_of {
            for model in models {
                if taken.contains(&model.hash) {
                    continue;
                }
                if let Some(all) = plan.bytes.checked_add(model.bytes).filter(|bytes| *bytes <= policy.total) {
                    taken.insert(model.hash);
                    plan.bytes = all;
                    plan.others += 1;
                    plan.models.push((*model, *owner));
                }
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use sanctuary_engine::trust::{TrustContext, TrustLevel};
    use sanctuary_engine::{Change, Object, Op, Placement, Rgb, home_parcel};

    use super::*;

    const MIB: u64 = 1024 * 1024;

    struct Person {
        seed: [u8; 32],
        key: PublicKey,
        seq: u64,
    }

    impl Person {
        fn new(n: u8) -> Self {
            let seed = [n; 32];
            Self { seed, key: PublicKey::from_secret_seed(&seed), seq: 0 }
        }

        fn does(&mut self, world: &mut World, op: Op) {
            self.seq += 1;
            let signed = Change { author: self.key, seq: self.seq, op }.sign(&self.seed);
            world.insert_bytes(&signed.to_bytes()).expect("the change is taken");
        }

        /// Claims the home parcel and places models of these sizes (MiB) on it; returns them.
        fn builds(&mut self, world: &mut World, sizes: &[u64]) -> Vec<ModelRef> {
            let parcel = home_parcel(&self.key);
            self.does(world, Op::Claim { parcel });
            let centre = parcel.bounds().center();
            let mut placed = Vec::new();
            for (at, mib) in sizes.iter().enumerate() {
                let mut hash = [self.key.as_bytes()[0]; 32];
                hash[31] = at as u8;
                let model =
                    ModelRef { hash, bytes: mib * MIB, triangles: 12, min: [-0.5, 0.0, -0.5], max: [0.5, 1.0, 0.5] };
                let base = glam::Vec3::new(centre.x + at as f32 * 1.5 - 4.0, 0.0, centre.y);
                let object = Object {
                    kind: ObjectKind::Model(model),
                    placement: Placement::standing(base, glam::Vec3::ONE),
                    colour: Rgb::new(1, 2, 3),
                };
                self.does(world, Op::Put { parcel, epoch: 0, id: at as u64, object });
                placed.push(model);
            }
            placed
        }

        fn calls(&mut self, world: &mut World, other: &Person, level: TrustLevel) {
            self.does(world, Op::Trust { subject: other.key, context: TrustContext::People, level: Some(level) });
        }

        fn names_host(&mut self, world: &mut World, host: &Person, kept: bool) {
            self.does(world, Op::Host { host: host.key, kept });
        }
    }

    fn hashes(plan: &HostingPlan, person: &Person) -> Vec<[u8; 32]> {
        plan.models.iter().filter(|(_, whose)| *whose == person.key).map(|(model, _)| model.hash).collect()
    }

    #[test]
    fn the_owner_and_friends_who_ask_are_kept_for_and_strangers_declined() {
        let mut world = World::new();
        let node = Person::new(1);
        let (mut owner, mut friend, mut half_friend, mut stranger, mut silent) =
            (Person::new(2), Person::new(3), Person::new(4), Person::new(5), Person::new(6));
        let owners = owner.builds(&mut world, &[1, 2]);
        let friends = friend.builds(&mut world, &[1]);
        half_friend.builds(&mut world, &[1]);
        stranger.builds(&mut world, &[1]);
        silent.builds(&mut world, &[1]);
        owner.calls(&mut world, &friend, TrustLevel::Friend);
        friend.calls(&mut world, &owner, TrustLevel::CloseFriend);
        // Friendship needs both sides.
        half_friend.calls(&mut world, &owner, TrustLevel::Friend);
        owner.calls(&mut world, &silent, TrustLevel::Friend);
        silent.calls(&mut world, &owner, TrustLevel::Friend);
        for asking in [&mut friend, &mut half_friend, &mut stranger] {
            asking.names_host(&mut world, &node, true);
        }
        let policy = HostingPolicy {
            owner: Some(owner.key),
            friend_quota: 8 * MIB,
            total: 64 * MIB,
            ..HostingPolicy::default()
        };
        let plan = plan(&mut world, &node.key, &policy);

        assert_eq!(hashes(&plan, &owner), owners.iter().map(|model| model.hash).collect::<Vec<_>>());
        assert_eq!(hashes(&plan, &friend), vec![friends[0].hash]);
        let kept_for: Vec<(PublicKey, Role, bool)> =
            plan.kept_for.iter().map(|kept| (kept.person, kept.role, kept.named)).collect();
        assert_eq!(kept_for, vec![(owner.key, Role::Owner, false), (friend.key, Role::Friend, true)]);
        let mut declined = vec![half_friend.key, stranger.key];
        declined.sort();
        assert_eq!(plan.declined, declined);
        assert_eq!(plan.declined_count, 2);
        assert_eq!(plan.bytes, 4 * MIB);
        // A friend who does not ask is not kept for: the request is theirs to make.
        assert!(hashes(&plan, &silent).is_empty());

        // Taking the request back ends the keeping.
        friend.names_host(&mut world, &node, false);
        let plan = super::plan(&mut world, &node.key, &policy);
        assert!(hashes(&plan, &friend).is_empty());
    }

    #[test]
    fn quotas_leave_out_what_does_not_fit_and_keep_all_fills_the_rest() {
        let mut world = World::new();
        let node = Person::new(1);
        let (mut granted, mut other) = (Person::new(7), Person::new(8));
        let models = granted.builds(&mut world, &[3, 3, 1]);
        other.builds(&mut world, &[2, 50]);
        granted.names_host(&mut world, &node, true);
        let mut policy = HostingPolicy { total: 16 * MIB, ..HostingPolicy::default() };
        policy.grants.insert(granted.key, 5 * MIB);
        let plan = plan(&mut world, &node.key, &policy);
        // 3 fits, the second 3 does not (6 > 5), the 1 does.
        assert_eq!(hashes(&plan, &granted), vec![models[0].hash, models[2].hash]);
        assert_eq!(plan.kept_for[0].left_out, 1);
        assert_eq!(plan.kept_for[0].bytes, 4 * MIB);
        assert!(hashes(&plan, &other).is_empty(), "nobody asked, and the node does not keep all");

        policy.keep_all = true;
        let plan = super::plan(&mut world, &node.key, &policy);
        // 4 MiB for the granted; then, kept for all, the granted's 3 MiB past their quota and
        // the other's 2 MiB; 50 MiB is past the node's 16.
        assert_eq!(hashes(&plan, &granted).len(), 3);
        assert_eq!(hashes(&plan, &other).len(), 1);
        assert_eq!(plan.others, 2);
        assert_eq!(plan.bytes, 9 * MIB);
    }

    #[test]
    fn paid_quotas_keep_like_grants_and_add_to_them() {
        let mut world = World::new();
        let node = Person::new(1);
        let (mut payer, mut both, mut unnamed) = (Person::new(7), Person::new(8), Person::new(9));
        let paid_for = payer.builds(&mut world, &[3, 3]);
        both.builds(&mut world, &[4, 4]);
        unnamed.builds(&mut world, &[1]);
        payer.names_host(&mut world, &node, true);
        both.names_host(&mut world, &node, true);
        let mut policy = HostingPolicy { total: 64 * MIB, ..HostingPolicy::default() };
        policy.paid.insert(payer.key, 4 * MIB);
        policy.paid.insert(unnamed.key, 4 * MIB);
        policy.paid.insert(both.key, 4 * MIB);
        policy.grants.insert(both.key, 4 * MIB);
        let plan = plan(&mut world, &node.key, &policy);
        assert_eq!(hashes(&plan, &payer), vec![paid_for[0].hash], "3 MiB fit in the 4 paid for, 6 do not");
        assert_eq!(hashes(&plan, &both).len(), 2, "a grant and a payment add up");
        assert!(hashes(&plan, &unnamed).is_empty(), "paying is not asking: the payer names the node too");
        let roles: Vec<(PublicKey, Role)> = plan.kept_for.iter().map(|kept| (kept.person, kept.role)).collect();
        assert!(roles.contains(&(payer.key, Role::Paid)) && roles.contains(&(both.key, Role::Granted)), "{roles:?}");
        // When what was paid for runs out, a stranger again.
        policy.paid.clear();
        let plan = super::plan(&mut world, &node.key, &policy);
        assert!(hashes(&plan, &payer).is_empty());
        assert!(plan.declined.contains(&payer.key));
    }
}
