//! Budgets per key on what any key can make others hold: trade records, and changes waiting for
//! an epoch that has not begun. A free key must not fill everyone's world, and every peer must
//! keep the same records whatever order they came in.

use glam::Vec3;
use sanctuary_engine::trade::{Listing, PayTo, Title, TxId};
use sanctuary_engine::{
    Change, MAX_TRADE_RECORDS_PER_AUTHOR, MAX_WAITING_PER_AUTHOR, ModelRef, Object, ObjectKind, Op, ParcelCoord,
    Placement, PublicKey, Rejection, Rgb, Shape, SignedChange, World, home_parcel,
};

fn sign(seed: u8, seq: u64, op: Op) -> SignedChange {
    let secret = [seed; 32];
    Change { author: PublicKey::from_secret_seed(&secret), seq, op }.sign(&secret)
}

fn listing(price_sats: u64) -> Listing {
    Listing {
        item: ModelRef { hash: [3; 32], bytes: 1000, triangles: 12, min: [0.0; 3], max: [1.0; 3] },
        title: Title::new("Crystal lamp").expect("title"),
        price_sats,
        pay_to: PayTo::new(&[0, 20, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]).expect("script"),
        confirmations: 1,
        spot: Vec3::ZERO,
    }
}

fn insert_all(changes: &[SignedChange]) -> World {
    let mut world = World::new();
    for change in changes {
        let _ = world.insert_bytes(&change.to_bytes());
    }
    world
}

/// One key publishing 300 listings used to make every peer hold all 300 (and a million, had it
/// sent them). Now each peer holds the 256 with the lowest sequences, the same ones whatever
/// order they arrived in.
#[test]
fn one_key_holds_a_bounded_number_of_trade_records_the_same_everywhere() {
    let parcel = ParcelCoord { x: 5, z: 5 };
    let records: Vec<SignedChange> =
        (1..=300u64).map(|seq| sign(7, seq, Op::List { parcel, listing: listing(1_000 + seq) })).collect();
    let mut forwards = insert_all(&records);
    let mut reversed: Vec<SignedChange> = records.clone();
    reversed.reverse();
    let mut backwards = insert_all(&reversed);
    assert_eq!(forwards.len(), MAX_TRADE_RECORDS_PER_AUTHOR);
    assert_eq!(backwards.len(), MAX_TRADE_RECORDS_PER_AUTHOR);
    assert_eq!(forwards.state_hash(), backwards.state_hash());
    let highest_kept = forwards.listings().iter().map(|view| view.listing.price_sats).max();
    assert_eq!(highest_kept, Some(1_000 + MAX_TRADE_RECORDS_PER_AUTHOR as u64));
    // Another key is not affected by the first one's budget.
    assert!(forwards.insert_bytes(&sign(8, 1, Op::List { parcel, listing: listing(5_000) }).to_bytes()).is_ok());
    // Past the budget, a newer record is refused with the reason.
    let late = sign(7, 1_000, Op::List { parcel, listing: listing(9_999) });
    assert_eq!(
        forwards.insert_bytes(&late.to_bytes()).err(),
        Some(Rejection::OverBudget(MAX_TRADE_RECORDS_PER_AUTHOR))
    );
}

/// A claim must name the parcel of the listing it claims.
#[test]
fn a_claim_on_another_parcel_than_its_listing_is_refused() {
    let parcel = ParcelCoord { x: 5, z: 5 };
    let mut world = World::new();
    let (_, listed) =
        world.insert_bytes(&sign(7, 1, Op::List { parcel, listing: listing(20_000) }).to_bytes()).expect("listed");
    let elsewhere = Op::Buy { parcel: ParcelCoord { x: 6, z: 5 }, listing: listed.id, txid: TxId([1; 32]) };
    assert_eq!(world.insert_bytes(&sign(9, 1, elsewhere).to_bytes()).err(), Some(Rejection::WrongParcel));
    let here = Op::Buy { parcel, listing: listed.id, txid: TxId([1; 32]) };
    assert!(world.insert_bytes(&sign(9, 2, here).to_bytes()).is_ok());
}

fn block(parcel: ParcelCoord) -> Object {
    let centre = parcel.bounds().center();
    Object {
        kind: ObjectKind::Primitive(Shape::Cuboid),
        placement: Placement::standing(Vec3::new(centre.x, 0.0, centre.y), Vec3::ONE),
        colour: Rgb::new(1, 2, 3),
    }
}

/// Edits "for a later epoch" of someone else's parcel could come from any key, and were held
/// without limit (ARCHITECTURE.md said a non-owner's change is never held). Each key may now
/// have 64 of them waiting, in any order of arrival; the owner's parcel is unchanged; and once
/// the transfer they wait for arrives they count no more against the budget.
#[test]
fn changes_waiting_for_a_later_epoch_are_bounded_per_key() {
    let owner_seed = 1u8;
    let owner = PublicKey::from_secret_seed(&[owner_seed; 32]);
    let parcel = home_parcel(&owner);
    let claim = sign(owner_seed, 1, Op::Claim { parcel });
    let spam: Vec<SignedChange> = (1..=200u64)
        .map(|seq| sign(66, seq, Op::Put { parcel, epoch: 1 + (seq % 3) as u32, id: seq, object: block(parcel) }))
        .collect();
    let mut forwards = World::new();
    forwards.insert_bytes(&claim.to_bytes()).expect("claim");
    let refused = spam.iter().filter(|change| forwards.insert_bytes(&change.to_bytes()).is_err()).count();
    assert_eq!(refused, 200 - MAX_WAITING_PER_AUTHOR);
    let mut backwards = World::new();
    for change in spam.iter().rev() {
        let _ = backwards.insert_bytes(&change.to_bytes());
    }
    backwards.insert_bytes(&claim.to_bytes()).expect("claim");
    assert_eq!(forwards.len(), 1 + MAX_WAITING_PER_AUTHOR);
    assert_eq!(backwards.len(), 1 + MAX_WAITING_PER_AUTHOR);
    assert!(forwards.parcel(parcel).objects.is_empty());
    assert_eq!(forwards.parcel(parcel).owner(), Some(owner));
    // The owner's own edits are not limited by this.
    for id in 0..100u64 {
        let object = block(parcel);
        forwards
            .insert_bytes(&sign(owner_seed, 2 + id, Op::Put { parcel, epoch: 0, id, object }).to_bytes())
            .expect("the owner builds");
    }
    assert_eq!(forwards.parcel(parcel).objects.len(), 100);
    // The owner sells the parcel to the key that was waiting: epoch 1 begins, and its edits
    // for epoch 1 no longer count as waiting, so more of them can be held.
    let spammer = PublicKey::from_secret_seed(&[66; 32]);
    forwards
        .insert_bytes(&sign(owner_seed, 500, Op::Transfer { parcel, epoch: 0, to: spammer }).to_bytes())
        .expect("sold");
    let later = sign(66, 1_000, Op::Put { parcel, epoch: 2, id: 1_000, object: block(parcel) });
    assert!(forwards.insert_bytes(&later.to_bytes()).is_ok());
}
