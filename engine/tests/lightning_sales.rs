//! A listing paid over Lightning in the world: every peer holds the buyer's claim and decides
//! the sale from the seller's voucher and the preimage alone; a claim whose voucher does not hold
//! is refused by the buyer's own client before it goes out, and counts for nothing elsewhere.

use std::collections::HashMap;

use glam::Vec3;
use sanctuary_engine::trade::{LightningProof, Listing, PayTo, SaleState, Title, settle, sign_voucher};
use sanctuary_engine::{Change, ModelRef, Op, ParcelCoord, PublicKey, Rejection, SignedChange, World};

fn sign(seed: u8, seq: u64, op: Op) -> SignedChange {
    let secret = [seed; 32];
    Change { author: PublicKey::from_secret_seed(&secret), seq, op }.sign(&secret)
}

fn key(seed: u8) -> PublicKey {
    PublicKey::from_secret_seed(&[seed; 32])
}

#[test]
fn a_lightning_purchase_settles_alike_on_every_peer() {
    let parcel = ParcelCoord { x: 5, z: 5 };
    let listing = Listing {
        item: ModelRef { hash: [3; 32], bytes: 1000, triangles: 12, min: [0.0; 3], max: [1.0; 3] },
        title: Title::new("Glass koi").expect("title"),
        price_sats: 2_100,
        pay_to: PayTo::LIGHTNING,
        confirmations: 0,
        spot: Vec3::new(165.0, 0.0, 165.0),
    };
    let listed = sign(7, 1, Op::List { parcel, listing });
    let mut seller_world = World::new();
    let (_, verified) = seller_world.insert_bytes(&listed.to_bytes()).expect("listed");
    let id = verified.id;

    // Ada (key 9) paid the invoice the seller (key 7) vouched for; Bo (key 8) tries her proof.
    let mut proof = LightningProof { preimage: [42; 32], voucher: [0; 64] };
    proof.voucher = sign_voucher(&[7; 32], &id, &key(9), &proof.payment_hash());
    let buy = Op::BuyLightning { parcel, listing: id, proof };
    assert_eq!(seller_world.check(key(9), &buy), Ok(()));
    assert_eq!(seller_world.check(key(8), &buy), Err(Rejection::BadVoucher), "the voucher is Ada's");
    let wrong = Op::BuyLightning { parcel, listing: id, proof: LightningProof { preimage: [1; 32], ..proof } };
    assert_eq!(seller_world.check(key(9), &wrong), Err(Rejection::BadVoucher), "not the paid preimage");
    let elsewhere = Op::BuyLightning { parcel: ParcelCoord { x: 6, z: 5 }, listing: id, proof };
    assert_eq!(seller_world.insert_bytes(&sign(9, 1, elsewhere).to_bytes()).err(), Some(Rejection::WrongParcel));

    // Peers receive the records in any order, Bo's stolen proof among them.
    let records = [listed, sign(8, 1, buy), sign(9, 2, buy)];
    for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
        let mut world = World::new();
        for index in order {
            world.insert_bytes(&records[index].to_bytes()).expect("held");
        }
        let views = world.listings();
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].paid.len(), 2);
        let settled = settle(&views[0], &HashMap::new(), 0);
        assert_eq!(settled.state, SaleState::Paid { buyer: key(9), payment_hash: proof.payment_hash() });
    }
}
