//! Trust statements and parcel bans as world changes: newest wins in any order, what is replaced
//! is no longer held, budgets hold, only a parcel's owner bans.

use sanctuary_engine::trust::{TrustContext, TrustError, TrustLevel};
use sanctuary_engine::{
    Change, ChangeId, MAX_TRUST_RECORDS, Op, ParcelCoord, ProfileName, PublicKey, Rejection, SignedChange, World,
    budget, home_parcel,
};

struct Person {
    seed: [u8; 32],
    key: PublicKey,
    home: ParcelCoord,
    seq: u64,
}

impl Person {
    fn new(n: u8) -> Self {
        let seed = [n; 32];
        let key = PublicKey::from_secret_seed(&seed);
        Self { seed, key, home: home_parcel(&key), seq: 0 }
    }

    fn sign(&mut self, op: Op) -> SignedChange {
        self.seq += 1;
        Change { author: self.key, seq: self.seq, op }.sign(&self.seed)
    }

    fn trust(&mut self, subject: PublicKey, level: Option<TrustLevel>) -> SignedChange {
        self.sign(Op::Trust { subject, context: TrustContext::People, level })
    }
}

fn insert(world: &mut World, change: &SignedChange) -> Result<(), Rejection> {
    world.insert_bytes(&change.to_bytes()).map(|_| ())
}

fn key(n: u32) -> PublicKey {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    seed[31] = 0xee;
    PublicKey::from_secret_seed(&seed)
}

#[test]
fn the_newest_statement_counts_in_any_order_and_the_older_is_let_go() {
    let mut ada = Person::new(1);
    let bo = Person::new(2);
    let friend = ada.trust(bo.key, Some(TrustLevel::Friend));
    let withdrawn = ada.trust(bo.key, None);
    let close = ada.trust(bo.key, Some(TrustLevel::CloseFriend));

    let mut forward = World::new();
    for change in [&friend, &withdrawn, &close] {
        insert(&mut forward, change).expect("each newer statement is taken");
    }
    let mut backward = World::new();
    insert(&mut backward, &close).expect("the newest first");
    assert_eq!(insert(&mut backward, &withdrawn), Err(Rejection::Superseded));
    assert_eq!(insert(&mut backward, &friend), Err(Rejection::Superseded));

    for world in [&forward, &backward] {
        assert_eq!(world.trust().said(TrustContext::People, &ada.key, &bo.key), Some(TrustLevel::CloseFriend));
        assert_eq!(world.len(), 1, "only the statement that counts is held");
        assert!(world.contains(&close.id()));
    }
    // The same again is a duplicate, not a new change.
    assert_eq!(
        forward.insert_bytes(&close.to_bytes()).map(|(inserted, _)| inserted),
        Ok(sanctuary_engine::Inserted::Duplicate)
    );
}

#[test]
fn two_statements_with_one_sequence_settle_the_same_way_everywhere() {
    let ada = Person::new(1);
    let bo = Person::new(2);
    let sign = |level| {
        Change { author: ada.key, seq: 7, op: Op::Trust { subject: bo.key, context: TrustContext::People, level } }
            .sign(&ada.seed)
    };
    let (first, second) = (sign(Some(TrustLevel::Friend)), sign(Some(TrustLevel::Distrust)));
    let winner = if first.id() > second.id() { first } else { second };
    for order in [[&first, &second], [&second, &first]] {
        let mut world = World::new();
        for change in order {
            let _ = insert(&mut world, change);
        }
        let said = world.trust().said(TrustContext::People, &ada.key, &bo.key);
        let Op::Trust { level, .. } = winner.change.op else { unreachable!("a statement") };
        assert_eq!(said, level, "the larger change id wins the tie");
        assert_eq!(world.changes().collect::<Vec<ChangeId>>(), vec![winner.id()]);
    }
}

#[test]
fn statements_about_oneself_and_past_the_budget_are_refused() {
    let mut ada = Person::new(1);
    let mut world = World::new();
    let own = ada.key;
    assert_eq!(
        insert(&mut world, &ada.trust(own, Some(TrustLevel::CloseFriend))),
        Err(Rejection::Trust(TrustError::OfSelf))
    );
    assert_eq!(
        world.check(ada.key, &Op::Trust { subject: own, context: TrustContext::People, level: None }),
        Err(Rejection::Trust(TrustError::OfSelf))
    );

    // A thousand standing statements, then a thousand withdrawals of other keys: the records
    // budget is full, and the standing one too.
    let standing = sanctuary_engine::trust::MAX_STATEMENTS_PER_AUTHOR as u32;
    for n in 0..standing {
        insert(&mut world, &ada.trust(key(n), Some(TrustLevel::Acquaintance))).expect("within the budget");
    }
    let one_more = ada.trust(key(standing), Some(TrustLevel::Acquaintance));
    assert_eq!(insert(&mut world, &one_more), Err(Rejection::Trust(TrustError::Full)));
    for n in standing..MAX_TRUST_RECORDS as u32 {
        insert(&mut world, &ada.trust(key(n), None)).expect("withdrawals count as records");
    }
    let past = ada.trust(key(MAX_TRUST_RECORDS as u32), None);
    assert_eq!(insert(&mut world, &past), Err(Rejection::OverBudget(MAX_TRUST_RECORDS)));
    // Changing what is said of a key already named still works, and frees a standing place.
    insert(&mut world, &ada.trust(key(0), None)).expect("a withdrawal of one standing");
    insert(&mut world, &ada.trust(key(standing), Some(TrustLevel::Friend))).expect("its place is free again");
    assert_eq!(world.len(), MAX_TRUST_RECORDS);
    // Another author is not held back by Ada's budget.
    let mut bo = Person::new(2);
    insert(&mut world, &bo.trust(ada.key, Some(TrustLevel::Friend))).expect("Bo's own budget");
}

#[test]
fn only_the_owner_bans_and_a_ban_can_be_lifted() {
    let mut ada = Person::new(1);
    let mut bo = Person::new(2);
    let cy = Person::new(3);
    let parcel = ada.home;
    let mut world = World::new();
    insert(&mut world, &ada.sign(Op::Claim { parcel })).expect("Ada claims her home");
    let ban = |subject, banned| Op::Ban { parcel, epoch: 0, subject, banned };

    assert!(matches!(insert(&mut world, &bo.sign(ban(cy.key, true))), Err(Rejection::NotOwner { .. })));
    assert!(world.parcel(parcel).admits(&cy.key));

    insert(&mut world, &ada.sign(ban(cy.key, true))).expect("the owner bans");
    let state = world.parcel(parcel);
    assert!(!state.admits(&cy.key));
    assert!(state.admits(&bo.key));
    let before = world.state_hash();

    insert(&mut world, &ada.sign(ban(ada.key, true))).expect("a ban of oneself is held");
    assert!(world.parcel(parcel).admits(&ada.key), "an owner is never kept off their own parcel");

    insert(&mut world, &ada.sign(ban(cy.key, false))).expect("lifted");
    assert!(world.parcel(parcel).admits(&cy.key));
    assert_ne!(world.state_hash(), before, "bans are part of the state every peer agrees on");
}

#[test]
fn a_parcel_bans_a_bounded_number_of_keys() {
    let mut ada = Person::new(1);
    let parcel = ada.home;
    let mut world = World::new();
    insert(&mut world, &ada.sign(Op::Claim { parcel })).expect("claim");
    for n in 0..budget::BANS as u32 {
        insert(&mut world, &ada.sign(Op::Ban { parcel, epoch: 0, subject: key(n), banned: true })).expect("held");
    }
    let one_more = Op::Ban { parcel, epoch: 0, subject: key(90_000), banned: true };
    assert_eq!(world.check(ada.key, &one_more), Err(Rejection::TooManyBans));
    insert(&mut world, &ada.sign(one_more)).expect("held, and skipped when applied");
    let state = world.parcel(parcel);
    assert_eq!(state.banned.len(), budget::BANS);
    assert!(state.admits(&key(90_000)));
    assert_eq!(state.skipped, 1);
}

/// Profile statements (`Op::Profile`): the newest name counts in any order, the older is let
/// go, and a name that is not clean never reads back.
#[test]
fn the_newest_profile_names_its_author() {
    let mut ada = Person::new(1);
    let first = ada.sign(Op::Profile { name: ProfileName::new("Ada").expect("a name"), colour: [1, 2, 3] });
    let second = ada.sign(Op::Profile { name: ProfileName::new("Ada L.").expect("a name"), colour: [4, 5, 6] });
    let mut world = World::new();
    assert!(world.profile_of(&ada.key).is_none());
    insert(&mut world, &second).expect("taken");
    assert_eq!(insert(&mut world, &first), Err(Rejection::Superseded));
    let (name, colour) = world.profile_of(&ada.key).expect("named");
    assert_eq!((name.as_str(), colour), ("Ada L.", [4, 5, 6]));
    let mut forward = World::new();
    insert(&mut forward, &first).expect("taken");
    insert(&mut forward, &second).expect("taken");
    assert!(!forward.contains(&first.id()), "the older is let go");
    assert_eq!(forward.profile_of(&ada.key).map(|(name, _)| name), Some(name));
    // A change whose name bytes are not a clean name is not a change.
    let mut bytes = second.to_bytes();
    let at = bytes.windows(6).position(|window| window == b"Ada L.").expect("the name is in the bytes");
    bytes[at] = 0x07;
    assert!(world.insert_bytes(&bytes).is_err());
}

/// Host statements (`Op::Host`): the newest per host counts in any order, what it replaces is
/// no longer held, naming oneself is refused, and `hosts_of`/`hosted_by` read both ways.
#[test]
fn host_statements_count_newest_first_and_read_both_ways() {
    let mut ada = Person::new(1);
    let (home, friend) = (Person::new(2), Person::new(3));
    let at_home = ada.sign(Op::Host { host: home.key, kept: true });
    let at_friend = ada.sign(Op::Host { host: friend.key, kept: true });
    let not_home = ada.sign(Op::Host { host: home.key, kept: false });
    let own = ada.sign(Op::Host { host: ada.key, kept: true });

    let mut world = World::new();
    assert_eq!(world.check(ada.key, &Op::Host { host: ada.key, kept: true }), Err(Rejection::HostSelf));
    assert_eq!(insert(&mut world, &own), Err(Rejection::HostSelf));
    for change in [&at_home, &at_friend] {
        insert(&mut world, change).expect("taken");
    }
    assert_eq!(world.hosts_of(&ada.key), {
        let mut both = vec![home.key, friend.key];
        both.sort();
        both
    });
    assert_eq!(world.hosted_by(&home.key), vec![ada.key]);
    insert(&mut world, &not_home).expect("the withdrawal is newer");
    assert_eq!(world.hosts_of(&ada.key), vec![friend.key]);
    assert!(world.hosted_by(&home.key).is_empty());
    assert!(!world.contains(&at_home.id()), "the statement replaced is let go");

    // The other order ends the same: the older statement arriving late is refused.
    let mut late = World::new();
    insert(&mut late, &not_home).expect("taken");
    assert_eq!(insert(&mut late, &at_home), Err(Rejection::Superseded));
    assert!(late.hosts_of(&ada.key).is_empty());
}
