//! The trade rule's unit tests: listings, payments, claims, withdrawals and the attacks on them.

use super::*;

fn key(n: u8) -> PublicKey {
    PublicKey::from_secret_seed(&[n; 32])
}

fn listing(price: u64, confirmations: u8) -> ListingView {
    ListingView {
        id: ChangeId([7; 32]),
        seller: key(1),
        parcel: ParcelCoord { x: 0, z: 0 },
        listing: Listing {
            item: ModelRef { hash: [3; 32], bytes: 1000, triangles: 12, min: [0.0; 3], max: [1.0; 3] },
            title: Title::new("Crystal lamp").expect("title"),
            price_sats: price,
            pay_to: PayTo::new(&[0, 20, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]).expect("script"),
            confirmations,
            spot: Vec3::ZERO,
        },
        withdrawn_at: None,
        claims: Vec::new(),
        paid: Vec::new(),
    }
}

fn pay(view: &ListingView, buyer: PublicKey, txid: u8, sats: u64, at: Option<(u32, u32)>) -> PaymentSeen {
    PaymentSeen {
        txid: TxId([txid; 32]),
        paid_sats: sats,
        commitments: vec![payment_commitment(&view.id, &buyer)],
        confirmed: at.map(|(height, index)| ChainPosition { height, index }),
    }
}

fn seen(payments: &[PaymentSeen]) -> HashMap<TxId, PaymentSeen> {
    payments.iter().map(|payment| (payment.txid, payment.clone())).collect()
}

#[test]
fn a_confirmed_bound_payment_buys_the_item() {
    let mut view = listing(20_000, 1);
    let buyer = key(2);
    view.claims.push(Claim { buyer, txid: TxId([1; 32]) });
    let payments = seen(&[pay(&view, buyer, 1, 20_000, None)]);
    let pending = settle(&view, &payments, 100);
    assert_eq!(
        pending.state,
        SaleState::Pending { buyer, txid: TxId([1; 32]), confirmations: 0, needed: 1 },
        "unconfirmed: pending"
    );
    let payments = seen(&[pay(&view, buyer, 1, 20_000, Some((101, 3)))]);
    let owned = settle(&view, &payments, 101);
    assert_eq!(owned.state, SaleState::Owned { buyer, txid: TxId([1; 32]), confirmations: 1 });
    assert_eq!(owned.verdicts, vec![(view.claims[0], Verdict::Leads)]);
}

#[test]
fn wrong_amounts_unbound_and_missing_payments_are_rejected() {
    let mut view = listing(20_000, 1);
    let (buyer, thief) = (key(2), key(3));
    view.claims = vec![
        Claim { buyer, txid: TxId([1; 32]) },
        Claim { buyer: thief, txid: TxId([2; 32]) },
        Claim { buyer, txid: TxId([3; 32]) },
    ];
    let mut other_listing = view.clone();
    other_listing.id = ChangeId([8; 32]);
    let payments = seen(&[
        pay(&view, buyer, 1, 19_999, Some((50, 1))),
        // The thief names a payment bound to the real buyer.
        pay(&view, buyer, 2, 20_000, Some((50, 2))),
    ]);
    let settlement = settle(&view, &payments, 60);
    // The real buyer's payment reserves the item for them; the thief's claim of it is nothing.
    assert_eq!(settlement.state, SaleState::Unclaimed { txid: TxId([2; 32]), confirmations: 11 });
    let verdicts: Vec<Verdict> = settlement.verdicts.iter().map(|(_, verdict)| *verdict).collect();
    assert_eq!(
        verdicts,
        vec![
            Verdict::Rejected(ClaimError::TooLittle { paid: 19_999, price: 20_000 }),
            Verdict::Rejected(ClaimError::NotBound),
            Verdict::Rejected(ClaimError::NotOnChain),
        ]
    );
    // A payment made for another listing does not count here either.
    let mut replay = view.clone();
    replay.claims = vec![Claim { buyer, txid: TxId([4; 32]) }];
    let payments = seen(&[pay(&other_listing, buyer, 4, 20_000, Some((50, 1)))]);
    assert_eq!(settle(&replay, &payments, 60).verdicts[0].1, Verdict::Rejected(ClaimError::NotBound));
}

#[test]
fn the_first_confirmed_payment_wins_and_the_other_is_refunded() {
    let mut view = listing(20_000, 2);
    let (ada, bo) = (key(2), key(3));
    view.claims = vec![Claim { buyer: ada, txid: TxId([1; 32]) }, Claim { buyer: bo, txid: TxId([2; 32]) }];
    // Both in the mempool: the smaller txid leads, the other waits.
    let payments = seen(&[pay(&view, ada, 1, 20_000, None), pay(&view, bo, 2, 20_000, None)]);
    let settlement = settle(&view, &payments, 10);
    assert!(matches!(settlement.state, SaleState::Pending { buyer, .. } if buyer == ada));
    assert_eq!(settlement.verdicts[1].1, Verdict::Queued);
    // Bo's confirms first, in block 11: Bo leads whatever the claim order.
    let payments = seen(&[pay(&view, ada, 1, 20_000, Some((12, 1))), pay(&view, bo, 2, 20_000, Some((11, 5)))]);
    let settlement = settle(&view, &payments, 12);
    assert_eq!(settlement.state, SaleState::Owned { buyer: bo, txid: TxId([2; 32]), confirmations: 2 });
    assert_eq!(settlement.verdicts[0].1, Verdict::Refund(RefundReason::SoldToAnother));
    assert_eq!(settlement.refunds().count(), 1);
    // In the same block, the earlier position wins.
    let payments = seen(&[pay(&view, ada, 1, 20_000, Some((11, 1))), pay(&view, bo, 2, 20_000, Some((11, 5)))]);
    assert!(matches!(settle(&view, &payments, 12).state, SaleState::Owned { buyer, .. } if buyer == ada));
}

#[test]
fn a_double_purchase_and_a_replayed_claim_do_not_count_twice() {
    let mut view = listing(20_000, 1);
    let buyer = key(2);
    view.claims = vec![
        Claim { buyer, txid: TxId([1; 32]) },
        Claim { buyer, txid: TxId([2; 32]) },
        Claim { buyer, txid: TxId([1; 32]) },
    ];
    let payments = seen(&[pay(&view, buyer, 1, 20_000, Some((20, 1))), pay(&view, buyer, 2, 20_000, Some((21, 1)))]);
    let settlement = settle(&view, &payments, 21);
    assert_eq!(settlement.state, SaleState::Owned { buyer, txid: TxId([1; 32]), confirmations: 2 });
    assert_eq!(settlement.verdicts[1].1, Verdict::Refund(RefundReason::SoldToAnother));
    assert_eq!(settlement.verdicts[2].1, Verdict::Rejected(ClaimError::Replayed));
}

#[test]
fn a_double_spent_zero_conf_purchase_stops_counting() {
    let mut view = listing(5_000, 0);
    let buyer = key(2);
    view.claims = vec![Claim { buyer, txid: TxId([1; 32]) }];
    let payments = seen(&[pay(&view, buyer, 1, 5_000, None)]);
    assert_eq!(settle(&view, &payments, 5).state, SaleState::Owned { buyer, txid: TxId([1; 32]), confirmations: 0 });
    // The buyer double-spends the coins elsewhere: the chain no longer has the payment.
    let settlement = settle(&view, &HashMap::new(), 6);
    assert_eq!(settlement.state, SaleState::Open);
    assert_eq!(settlement.verdicts[0].1, Verdict::Rejected(ClaimError::NotOnChain));
}

#[test]
fn a_withdrawal_closes_the_stall_but_the_first_payment_still_wins() {
    let mut view = listing(20_000, 1);
    let (ada, bo) = (key(2), key(3));
    view.withdrawn_at = Some(30);
    assert_eq!(settle(&view, &HashMap::new(), 31).state, SaleState::Withdrawn);
    // A payment made after the withdrawal still buys the item: the seller has the money.
    view.claims = vec![Claim { buyer: ada, txid: TxId([1; 32]) }];
    let payments = seen(&[pay(&view, ada, 1, 20_000, Some((31, 0)))]);
    let settlement = settle(&view, &payments, 31);
    assert_eq!(settlement.state, SaleState::Owned { buyer: ada, txid: TxId([1; 32]), confirmations: 1 });
    // An earlier payment on the chain wins; the later one is owed a refund.
    view.claims.push(Claim { buyer: bo, txid: TxId([2; 32]) });
    let payments = seen(&[pay(&view, ada, 1, 20_000, Some((31, 0))), pay(&view, bo, 2, 20_000, Some((29, 0)))]);
    let settlement = settle(&view, &payments, 31);
    assert!(matches!(settlement.state, SaleState::Owned { buyer, .. } if buyer == bo));
    assert_eq!(settlement.verdicts[0].1, Verdict::Refund(RefundReason::SoldToAnother));
}

#[test]
fn an_unclaimed_payment_reserves_the_item_and_only_its_first_commitment_binds() {
    let mut view = listing(20_000, 2);
    let (ada, bo) = (key(2), key(3));
    // Ada's payment is on the chain, unclaimed; Bo's later one is claimed.
    let mut first = pay(&view, ada, 1, 20_000, Some((10, 4)));
    // It also carries Bo's commitment, second: only the first commitment binds.
    first.commitments.push(payment_commitment(&view.id, &bo));
    let payments = seen(&[first, pay(&view, bo, 2, 20_000, Some((11, 0)))]);
    view.claims = vec![Claim { buyer: bo, txid: TxId([2; 32]) }, Claim { buyer: bo, txid: TxId([1; 32]) }];
    let settlement = settle(&view, &payments, 10);
    assert_eq!(settlement.state, SaleState::Unclaimed { txid: TxId([1; 32]), confirmations: 1 });
    assert_eq!(settlement.verdicts[0].1, Verdict::Queued, "not final yet: Bo waits");
    assert_eq!(settlement.verdicts[1].1, Verdict::Rejected(ClaimError::NotBound));
    let settlement = settle(&view, &payments, 11);
    assert_eq!(settlement.state, SaleState::Unclaimed { txid: TxId([1; 32]), confirmations: 2 });
    assert_eq!(settlement.verdicts[0].1, Verdict::Refund(RefundReason::SoldToAnother), "final: refund Bo");
    // Ada's claim completes the sale; no order of claims makes it anyone else's.
    view.claims.push(Claim { buyer: ada, txid: TxId([1; 32]) });
    assert_eq!(
        settle(&view, &payments, 11).state,
        SaleState::Owned { buyer: ada, txid: TxId([1; 32]), confirmations: 2 }
    );
    assert_owned_stays_owned(&view, &payments, 11);
    // Paying the address without a commitment, or too little, reserves nothing.
    let mut bare = pay(&view, ada, 3, 50_000, Some((5, 0)));
    bare.commitments.clear();
    let small = pay(&view, ada, 4, 19_999, Some((5, 1)));
    view.claims.clear();
    assert_eq!(settle(&view, &seen(&[bare, small]), 11).state, SaleState::Open);
}

/// Every subset of the view's claims (in their order) with the claims kept.
fn claim_subsets(view: &ListingView) -> Vec<ListingView> {
    let n_claims = view.claims.len();
    (0u32..1 << n_claims)
        .map(|mask| {
            let mut subset = view.clone();
            subset.claims =
                view.claims.iter().enumerate().filter(|(idx, _)| mask & (1 << idx) != 0).map(|(_, c)| *c).collect();
            subset
        })
        .collect()
}

/// Asserts that a final sale (owned, confirmed, with the listing's confirmations) seen with
/// any subset of the claims is the same sale with every superset of them: claims arriving
/// late, in any order, never move an owned item.
fn assert_owned_stays_owned(view: &ListingView, payments: &HashMap<TxId, PaymentSeen>, tip: u32) {
    let subsets = claim_subsets(view);
    for (mask, subset) in subsets.iter().enumerate() {
        let SaleState::Owned { buyer, txid, confirmations } = settle(subset, payments, tip).state else {
            continue;
        };
        if confirmations == 0 {
            continue;
        }
        for (other_mask, superset) in subsets.iter().enumerate() {
            if other_mask & mask == mask {
                let later = settle(superset, payments, tip).state;
                assert!(
                    matches!(later, SaleState::Owned { buyer: b, txid: t, .. } if b == buyer && t == txid),
                    "owned by {buyer:?} with claims {mask:b}, but {later:?} with claims {other_mask:b}"
                );
            }
        }
    }
}

/// Attack: the seller, after a sale is owned, signs a withdrawal dated before the payment's
/// block. The sale must stay owned (the seller has the money), through the world's records too.
#[test]
fn a_backdated_withdrawal_does_not_undo_a_confirmed_sale() {
    use crate::world::{Change, Op, World};
    let (seller, buyer) = ([1; 32], [2; 32]);
    let parcel = ParcelCoord { x: 0, z: 0 };
    let sign = |secret: &[u8; 32], seq: u64, op: Op| {
        Change { author: PublicKey::from_secret_seed(secret), seq, op }.sign(secret).to_bytes()
    };
    let mut world = World::new();
    let (_, listed) =
        world.insert_bytes(&sign(&seller, 1, Op::List { parcel, listing: listing(20_000, 1).listing })).expect("list");
    let claim = Op::Buy { parcel, listing: listed.id, txid: TxId([1; 32]) };
    world.insert_bytes(&sign(&buyer, 1, claim)).expect("claim");
    let view = world.listings().remove(0);
    let buyer = PublicKey::from_secret_seed(&buyer);
    let payments = seen(&[pay(&view, buyer, 1, 20_000, Some((31, 0)))]);
    let owned = SaleState::Owned { buyer, txid: TxId([1; 32]), confirmations: 2 };
    assert_eq!(settle(&view, &payments, 32).state, owned);
    // The seller withdraws "at height 29", before the payment's block 31.
    let backdated = Op::Withdraw { parcel, listing: listed.id, at_height: 29 };
    world.insert_bytes(&sign(&seller, 2, backdated)).expect("the seller may withdraw");
    let view = world.listings().remove(0);
    assert!(view.withdrawn_at.is_some(), "the withdrawal is held and closes the stall");
    let settlement = settle(&view, &payments, 32);
    assert_eq!(settlement.state, owned, "a withdrawal cannot reach back before a sale");
    assert_eq!(settlement.verdicts[0].1, Verdict::Leads);
    assert_eq!(settlement.refunds().count(), 0);
    // A later, honest-looking withdrawal changes nothing either.
    world.insert_bytes(&sign(&seller, 3, Op::Withdraw { parcel, listing: listed.id, at_height: 40 })).expect("again");
    assert_eq!(
        settle(&world.listings().remove(0), &payments, 41).state,
        SaleState::Owned { buyer, txid: TxId([1; 32]), confirmations: 11 }
    );
}

/// Attack: Bo pays first (block 100) but keeps his claim back; Ada pays later (block 105),
/// claims, and her purchase would show as owned; then Bo publishes his claim. The chain knows
/// both payments to the listing's address from the start, so no set of claims may show an
/// owned sale that a later claim takes away.
#[test]
fn a_late_claim_of_an_earlier_payment_does_not_flip_an_owned_sale() {
    let mut view = listing(20_000, 1);
    let (ada, bo) = (key(2), key(3));
    // Everything the chain source knows paying the listing's address.
    let payments = seen(&[pay(&view, bo, 2, 20_000, Some((100, 1))), pay(&view, ada, 1, 20_000, Some((105, 2)))]);
    view.claims = vec![Claim { buyer: ada, txid: TxId([1; 32]) }];
    let before = settle(&view, &payments, 110);
    assert!(
        !matches!(before.state, SaleState::Owned { buyer, .. } | SaleState::Pending { buyer, .. } if buyer == ada),
        "Bo's earlier payment is on the chain: Ada's purchase must not show as hers, got {:?}",
        before.state
    );
    assert_eq!(before.state, SaleState::Unclaimed { txid: TxId([2; 32]), confirmations: 11 });
    assert_eq!(before.verdicts[0].1, Verdict::Refund(RefundReason::SoldToAnother));
    view.claims.push(Claim { buyer: bo, txid: TxId([2; 32]) });
    let after = settle(&view, &payments, 110);
    assert_eq!(after.state, SaleState::Owned { buyer: bo, txid: TxId([2; 32]), confirmations: 11 });
    assert_eq!(after.verdicts[0].1, Verdict::Refund(RefundReason::SoldToAnother));
    assert_owned_stays_owned(&view, &payments, 110);
}

#[test]
fn trade_records_travel_as_world_changes() {
    use crate::city::ParcelCoord;
    use crate::world::{Change, Op, Rejection, World};
    let parcel = ParcelCoord { x: 3, z: -2 };
    let (seller, buyer, stranger) = ([1; 32], [2; 32], [3; 32]);
    let sign = |secret: &[u8; 32], seq: u64, op: Op| {
        Change { author: PublicKey::from_secret_seed(secret), seq, op }.sign(secret).to_bytes()
    };
    let mut world = World::new();
    let listed = sign(&seller, 1, Op::List { parcel, listing: listing(20_000, 1).listing });
    assert!(listed.len() <= crate::world::MAX_CHANGE_BYTES, "a listing fits a change: {} bytes", listed.len());
    let (_, verified) = world.insert_bytes(&listed).expect("listing");
    let id = verified.id;
    let claim = Op::Buy { parcel, listing: id, txid: TxId([9; 32]) };
    world.insert_bytes(&sign(&buyer, 1, claim)).expect("a claim from anyone");
    let forged = Op::Withdraw { parcel, listing: id, at_height: 5 };
    assert_eq!(world.insert_bytes(&sign(&stranger, 1, forged)).err(), Some(Rejection::NotSeller));
    assert_eq!(world.check(PublicKey::from_secret_seed(&stranger), &forged), Err(Rejection::NotSeller));
    world.insert_bytes(&sign(&seller, 2, Op::Withdraw { parcel, listing: id, at_height: 7 })).expect("withdraw");
    let views = world.listings();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].seller, PublicKey::from_secret_seed(&seller));
    assert_eq!(views[0].withdrawn_at, Some(7));
    assert_eq!(views[0].claims, vec![Claim { buyer: PublicKey::from_secret_seed(&buyer), txid: TxId([9; 32]) }]);
    // A bad listing is refused when verified, before it is held.
    let bad = sign(&seller, 3, Op::List { parcel, listing: Listing { price_sats: 1, ..listing(1, 1).listing } });
    assert_eq!(world.insert_bytes(&bad).err(), Some(Rejection::BadListing(ListingError::BadPrice)));
    // Trade records do not touch the parcel.
    assert!(world.parcel(parcel).owners.is_empty());
}

#[test]
fn listings_are_checked() {
    let good = listing(20_000, 1).listing;
    assert_eq!(good.check(), Ok(()));
    assert_eq!(Listing { price_sats: 10, ..good }.check(), Err(ListingError::BadPrice));
    assert_eq!(Listing { confirmations: 0, ..good }.check(), Ok(()));
    assert_eq!(
        Listing { confirmations: 0, price_sats: ZERO_CONF_MAX_SATS + 1, ..good }.check(),
        Err(ListingError::BadConfirmations)
    );
    assert_eq!(Listing { confirmations: 7, ..good }.check(), Err(ListingError::BadConfirmations));
    assert_eq!(Listing { spot: Vec3::NAN, ..good }.check(), Err(ListingError::BadSpot));
    assert_eq!(Listing { title: Title([0xff; 32]), ..good }.check(), Err(ListingError::BadTitle));
    assert_eq!(Title::new("   "), None);
    assert_eq!(Title::new("ünïcode lamp that is far too long to fit").map(|t| t.text().map(str::len)), Some(Some(32)));
    let script: Vec<u8> = (0..34).collect();
    assert_eq!(PayTo::new(&script).expect("34 bytes").script(), script);
    assert_eq!(PayTo::new(&[0; 35]), None);
}

/// A listing paid over Lightning, sold by `key(1)` (secret seed `[1; 32]`).
fn lightning_listing(price: u64) -> ListingView {
    let mut view = listing(price, 0);
    view.listing.pay_to = PayTo::LIGHTNING;
    view
}

/// What a buyer holds after paying: the preimage, and the seller's voucher for its hash.
fn paid(view: &ListingView, buyer: PublicKey, preimage: u8) -> LightningClaim {
    let mut proof = LightningProof { preimage: [preimage; 32], voucher: [0; 64] };
    proof.voucher = sign_voucher(&[1; 32], &view.id, &buyer, &proof.payment_hash());
    LightningClaim { buyer, proof }
}

#[test]
fn a_lightning_listing_is_checked_by_its_own_bounds() {
    let view = lightning_listing(5_000);
    assert_eq!(view.listing.check(), Ok(()));
    assert!(PayTo::LIGHTNING.is_lightning() && PayTo::LIGHTNING.script().is_empty());
    let mut small = view.listing;
    small.price_sats = 1;
    assert_eq!(small.check(), Ok(()), "a Lightning price may be below the dust limit");
    for (price, confirmations, expected) in [
        (0, 0, ListingError::BadLightningPrice),
        (MAX_LIGHTNING_PRICE_SATS + 1, 0, ListingError::BadLightningPrice),
        (5_000, 1, ListingError::BadConfirmations),
    ] {
        let mut bad = view.listing;
        (bad.price_sats, bad.confirmations) = (price, confirmations);
        assert_eq!(bad.check(), Err(expected));
    }
    // The mark travels as a listing's address does, and reads back as the mark.
    let bytes = postcard::to_allocvec(&view.listing).expect("encodes");
    assert!(postcard::from_bytes::<Listing>(&bytes).expect("decodes").pay_to.is_lightning());
}

#[test]
fn a_vouched_preimage_buys_the_item_at_once() {
    let mut view = lightning_listing(5_000);
    assert_eq!(settle(&view, &HashMap::new(), 0).state, SaleState::Open);
    let claim = paid(&view, key(2), 9);
    view.paid.push(claim);
    let settled = settle(&view, &HashMap::new(), 0);
    let hash = claim.proof.payment_hash();
    assert_eq!(settled.state, SaleState::Paid { buyer: key(2), payment_hash: hash });
    assert_eq!(settled.verdicts, vec![(Claim { buyer: key(2), txid: TxId(hash) }, Verdict::Leads)]);
    // SHA-256, as Lightning hashes preimages.
    let zero = LightningProof { preimage: [0; 32], voucher: [0; 64] }.payment_hash();
    assert_eq!(zero[..4], [0x66, 0x68, 0x7a, 0xad]);
    // A withdrawal afterwards changes nothing.
    view.withdrawn_at = Some(10);
    assert_eq!(settle(&view, &HashMap::new(), 0).state, SaleState::Paid { buyer: key(2), payment_hash: hash });
}

#[test]
fn a_voucher_for_someone_else_another_listing_or_another_payment_buys_nothing() {
    let mut view = lightning_listing(5_000);
    let ada = paid(&view, key(2), 9);
    // Bo replays Ada's proof as his own.
    let theft = LightningClaim { buyer: key(3), proof: ada.proof };
    // A preimage nobody vouched for.
    let guess = LightningClaim { buyer: key(3), proof: LightningProof { preimage: [4; 32], ..ada.proof } };
    // A voucher for another listing of the same seller.
    let mut other = lightning_listing(5_000);
    other.id = ChangeId([8; 32]);
    let elsewhere = paid(&other, key(3), 5);
    // A voucher signed by the buyer, not the seller.
    let mut forged = LightningProof { preimage: [6; 32], voucher: [0; 64] };
    forged.voucher = sign_voucher(&[3; 32], &view.id, &key(3), &forged.payment_hash());
    let forged = LightningClaim { buyer: key(3), proof: forged };
    view.paid = vec![theft, guess, elsewhere, forged];
    let settled = settle(&view, &HashMap::new(), 0);
    assert_eq!(settled.state, SaleState::Open);
    assert!(settled.verdicts.iter().all(|(_, verdict)| *verdict == Verdict::Rejected(ClaimError::BadVoucher)));
    // Ada's own claim still buys it, and her claim made twice counts once.
    view.paid.extend([ada, ada]);
    let settled = settle(&view, &HashMap::new(), 0);
    assert_eq!(settled.state, SaleState::Paid { buyer: key(2), payment_hash: ada.proof.payment_hash() });
    assert_eq!(settled.verdicts[5].1, Verdict::Rejected(ClaimError::Replayed));
    // Chain payments and on-chain claims do not count for a Lightning listing.
    let mut chain_only = lightning_listing(5_000);
    chain_only.claims.push(Claim { buyer: key(2), txid: TxId([1; 32]) });
    let payments = seen(&[pay(&chain_only, key(2), 1, 5_000, Some((1, 1)))]);
    assert_eq!(settle(&chain_only, &payments, 10).state, SaleState::Open);
}

#[test]
fn two_paid_vouchers_are_decided_alike_whatever_arrives_first() {
    let view = lightning_listing(5_000);
    let (ada, bo) = (paid(&view, key(2), 9), paid(&view, key(3), 10));
    let first = if ada.proof.payment_hash() < bo.proof.payment_hash() { ada } else { bo };
    for order in [[ada, bo], [bo, ada]] {
        let mut view = view.clone();
        view.paid = order.to_vec();
        let settled = settle(&view, &HashMap::new(), 0);
        assert_eq!(settled.state, SaleState::Paid { buyer: first.buyer, payment_hash: first.proof.payment_hash() });
        assert_eq!(settled.refunds().count(), 1, "the seller owes the other buyer");
    }
}
