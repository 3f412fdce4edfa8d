//! Trade between peers on the in-process test chain, through the wallet's real Esplora path:
//! a full purchase, the rejections the trade rule must make, and a crash in the middle of a send.
//!
//! Each peer holds its own `World` (the signed listing and claims, as gossip would deliver them)
//! and asks the chain itself about the claimed payments, so a sale is decided independently on
//! each side.

use std::collections::HashMap;
use std::path::Path;

use bdk_wallet::bitcoin::hashes::Hash;
use bdk_wallet::bitcoin::{Address, ScriptBuf, Txid};
use glam::Vec3;
use sanctuary_engine::trade::{
    self, ClaimError, Listing, ListingView, PayTo, PaymentSeen, RefundReason, SaleState, Settlement, Title, TxId,
    Verdict,
};
use sanctuary_engine::{Change, ChangeId, ModelRef, Op, ParcelCoord, PublicKey, World};
use sanctuary_wallet::testchain::TestChain;
use sanctuary_wallet::{Account, Chain, PayRequest, PayTarget, Seed, TxState, WalletNetwork, trade_txid};

const PASSPHRASE: &str = "correct horse battery";
const PARCEL: ParcelCoord = ParcelCoord { x: 2, z: 3 };

/// A peer: a wallet, an identity key and its own copy of the world.
struct Peer {
    account: Account,
    secret: [u8; 32],
    world: World,
    seq: u64,
}

impl Peer {
    fn new(dir: &Path, secret: u8) -> Peer {
        let seed = Seed::generate("").expect("seed");
        let account = Account::create(dir, &seed, PASSPHRASE, WalletNetwork::Regtest).expect("create");
        Peer { account, secret: [secret; 32], world: World::new(), seq: 0 }
    }

    fn key(&self) -> PublicKey {
        PublicKey::from_secret_seed(&self.secret)
    }

    /// Signs a change; returns its bytes for every peer to take.
    fn sign(&mut self, op: Op) -> Vec<u8> {
        self.seq += 1;
        Change { author: self.key(), seq: self.seq, op }.sign(&self.secret).to_bytes()
    }

    fn address(&mut self) -> ScriptBuf {
        let (text, _) = self.account.fresh_address().expect("address");
        text.parse::<Address<_>>().expect("address").assume_checked().script_pubkey()
    }

    /// Pays for a listing from this peer's wallet and returns the payment's id.
    fn pay(&mut self, chain: &Chain, view: &ListingView, sats: u64, buyer: PublicKey) -> Txid {
        let request = PayRequest {
            to: PayTarget::Script(view.listing.pay_to.script()),
            amount_sats: sats,
            fee_rate_sat_vb: 2.0,
            commitment: Some(trade::payment_commitment(&view.id, &buyer)),
        };
        let draft = self.account.prepare(&request).expect("prepare");
        self.account.send(chain, draft.txid).expect("send")
    }
}

/// Gives every peer's world the same changes.
fn deliver(peers: &mut [&mut Peer], changes: &[Vec<u8>]) {
    for peer in peers.iter_mut() {
        for bytes in changes {
            peer.world.insert_bytes(bytes).expect("a valid change");
        }
    }
}

/// What a peer decides about a listing, asking the chain itself about every payment to the
/// listing's address.
fn decide(peer: &Peer, chain: &Chain, listing: ChangeId) -> Settlement {
    let view = peer.world.listings().into_iter().find(|view| view.id == listing).expect("listing held");
    let payments: HashMap<TxId, PaymentSeen> = chain
        .payments_to(&view.listing.pay_to.script(), view.listing.price_sats)
        .expect("chain")
        .into_iter()
        .map(|payment| (payment.txid, payment))
        .collect();
    trade::settle(&view, &payments, chain.tip_height().expect("tip"))
}

fn item() -> ModelRef {
    ModelRef { hash: [42; 32], bytes: 120_000, triangles: 800, min: [-0.5, 0.0, -0.5], max: [0.5, 1.2, 0.5] }
}

/// The seller lists an item; returns the listing's id.
fn list(seller: &mut Peer, peers: &mut [&mut Peer], title: &str, price_sats: u64, confirmations: u8) -> ChangeId {
    let (_, script) = seller.account.fresh_address().expect("address");
    let listing = Listing {
        item: item(),
        title: Title::new(title).expect("title"),
        price_sats,
        pay_to: PayTo::new(&script).expect("script"),
        confirmations,
        spot: Vec3::new(1.0, 0.0, 2.0),
    };
    let bytes = seller.sign(Op::List { parcel: PARCEL, listing });
    seller.world.insert_bytes(&bytes).expect("own listing");
    deliver(peers, std::slice::from_ref(&bytes));
    seller.world.listings().into_iter().find(|view| view.listing.title == listing.title).expect("listed").id
}

/// Funds a peer with one 50 BTC coinbase, matured.
fn fund(chain: &TestChain, esplora: &Chain, peer: &mut Peer) {
    let script = peer.address();
    chain.mine(1, &script);
    chain.mine(100, &ScriptBuf::new_op_return([0u8; 4]));
    peer.account.sync(esplora, |_| {}).expect("sync");
}

fn view_of(peer: &Peer, listing: ChangeId) -> ListingView {
    peer.world.listings().into_iter().find(|view| view.id == listing).expect("held")
}

#[test]
fn a_purchase_between_two_peers_moves_the_item_by_rule() {
    let chain = TestChain::start().expect("chain");
    let esplora = Chain::new(&chain.url(), WalletNetwork::Regtest).expect("client");
    let dirs = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let mut seller = Peer::new(dirs.0.path(), 1);
    let mut buyer = Peer::new(dirs.1.path(), 2);
    fund(&chain, &esplora, &mut buyer);
    assert_eq!(buyer.account.balances().confirmed, 50 * 100_000_000);

    let listing = list(&mut seller, &mut [&mut buyer], "Crystal lamp", 20_000, 1);
    let view = view_of(&buyer, listing);
    let txid = buyer.pay(&esplora, &view, 20_000, buyer.key());
    let claim = buyer.sign(Op::Buy { parcel: PARCEL, listing, txid: trade_txid(txid) });
    deliver(&mut [&mut seller, &mut buyer], &[claim]);

    // In the mempool: both peers see the sale pending, on their own.
    for peer in [&seller, &buyer] {
        let settled = decide(peer, &esplora, listing);
        assert_eq!(
            settled.state,
            SaleState::Pending { buyer: buyer.key(), txid: trade_txid(txid), confirmations: 0, needed: 1 }
        );
    }
    chain.mine(1, &ScriptBuf::new_op_return([1u8; 4]));
    for peer in [&seller, &buyer] {
        let settled = decide(peer, &esplora, listing);
        assert_eq!(settled.state, SaleState::Owned { buyer: buyer.key(), txid: trade_txid(txid), confirmations: 1 });
    }
    // The seller's wallet received the price; the buyer's history shows the payment and its fee.
    seller.account.sync(&esplora, |_| {}).expect("sync");
    assert_eq!(seller.account.balances().confirmed, 20_000);
    buyer.account.sync(&esplora, |_| {}).expect("sync");
    let paid = buyer.account.history().into_iter().find(|entry| entry.txid == txid).expect("in the history");
    let fee = paid.fee_sats.expect("we paid the fee");
    assert_eq!(paid.delta_sats, -(20_000 + fee as i64));
    assert!(matches!(paid.state, TxState::Confirmed { height: 102, .. }));
    let mut csv = Vec::new();
    buyer.account.write_csv(&mut csv).expect("csv");
    let csv = String::from_utf8(csv).expect("text");
    assert!(csv.lines().any(|line| line.contains(&txid.to_string()) && line.contains(",sent,")), "{csv}");
    assert!(csv.starts_with("date_utc,txid,kind,amount_sats,fee_sats,block_height,network\n"));
}

#[test]
fn wrong_amounts_unconfirmed_payments_double_spends_double_purchases_and_replays_are_rejected() {
    let chain = TestChain::start().expect("chain");
    let esplora = Chain::new(&chain.url(), WalletNetwork::Regtest).expect("client");
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().expect("dir")).collect();
    let mut seller = Peer::new(dirs[0].path(), 1);
    let mut ada = Peer::new(dirs[1].path(), 2);
    let mut bo = Peer::new(dirs[2].path(), 3);
    fund(&chain, &esplora, &mut ada);
    fund(&chain, &esplora, &mut bo);
    ada.account.sync(&esplora, |_| {}).expect("sync");

    // Wrong amount: one sat short.
    let short = list(&mut seller, &mut [&mut ada, &mut bo], "Short", 20_000, 1);
    let txid = ada.pay(&esplora, &view_of(&ada, short), 19_999, ada.key());
    let claim = ada.sign(Op::Buy { parcel: PARCEL, listing: short, txid: trade_txid(txid) });
    deliver(&mut [&mut seller, &mut ada, &mut bo], &[claim]);
    chain.mine(1, &ScriptBuf::new_op_return([1u8; 4]));
    let settled = decide(&bo, &esplora, short);
    assert_eq!(settled.state, SaleState::Open);
    assert_eq!(settled.verdicts[0].1, Verdict::Rejected(ClaimError::TooLittle { paid: 19_999, price: 20_000 }));

    // Unconfirmed: a listing asking for two confirmations is not owned after one.
    let slow = list(&mut seller, &mut [&mut ada, &mut bo], "Slow", 30_000, 2);
    let txid = ada.pay(&esplora, &view_of(&ada, slow), 30_000, ada.key());
    let claim = ada.sign(Op::Buy { parcel: PARCEL, listing: slow, txid: trade_txid(txid) });
    deliver(&mut [&mut seller, &mut ada, &mut bo], std::slice::from_ref(&claim));
    chain.mine(1, &ScriptBuf::new_op_return([2u8; 4]));
    assert!(matches!(decide(&seller, &esplora, slow).state, SaleState::Pending { confirmations: 1, needed: 2, .. }));
    chain.mine(1, &ScriptBuf::new_op_return([3u8; 4]));
    assert!(matches!(decide(&seller, &esplora, slow).state, SaleState::Owned { confirmations: 2, .. }));

    // Replayed proofs: Bo claims Ada's payment; Ada claims it again, for this listing and for
    // another one; the same claim delivered twice is one change.
    let other = list(&mut seller, &mut [&mut ada, &mut bo], "Other", 30_000, 1);
    let theft = bo.sign(Op::Buy { parcel: PARCEL, listing: slow, txid: trade_txid(txid) });
    let again = ada.sign(Op::Buy { parcel: PARCEL, listing: slow, txid: trade_txid(txid) });
    let reuse = ada.sign(Op::Buy { parcel: PARCEL, listing: other, txid: trade_txid(txid) });
    deliver(&mut [&mut seller, &mut ada, &mut bo], &[theft, again, reuse]);
    deliver(&mut [&mut seller], &[claim]);
    let settled = decide(&seller, &esplora, slow);
    assert_eq!(settled.state, SaleState::Owned { buyer: ada.key(), txid: trade_txid(txid), confirmations: 2 });
    let mut verdicts: Vec<(bool, Verdict)> =
        settled.verdicts.iter().map(|(claim, verdict)| (claim.buyer == ada.key(), *verdict)).collect();
    verdicts.sort_by_key(|(is_ada, verdict)| (*is_ada, format!("{verdict:?}")));
    assert_eq!(
        verdicts,
        vec![
            (false, Verdict::Rejected(ClaimError::NotBound)),
            (true, Verdict::Leads),
            (true, Verdict::Rejected(ClaimError::Replayed)),
        ],
        "three claims: the duplicate delivery is one change"
    );
    // The reused payment does not pay the other listing's address: not a payment for it at all.
    let settled = decide(&seller, &esplora, other);
    assert_eq!(settled.state, SaleState::Open);
    assert_eq!(settled.verdicts[0].1, Verdict::Rejected(ClaimError::NotOnChain));

    // Double purchase: both pay; Bo's payment is mined first and wins; Ada is owed a refund.
    let contested = list(&mut seller, &mut [&mut ada, &mut bo], "Contested", 40_000, 1);
    let ada_tx = ada.pay(&esplora, &view_of(&ada, contested), 40_000, ada.key());
    let bo_request = PayRequest {
        to: PayTarget::Script(view_of(&bo, contested).listing.pay_to.script()),
        amount_sats: 40_000,
        fee_rate_sat_vb: 2.0,
        commitment: Some(trade::payment_commitment(&contested, &bo.key())),
    };
    let bo_draft = bo.account.prepare(&bo_request).expect("prepare");
    bo.account.record(bo_draft.txid).expect("record");
    chain.mine_with(vec![bo_draft.tx.clone()], &ScriptBuf::new_op_return([4u8; 4])).expect("Bo's payment first");
    chain.mine(1, &ScriptBuf::new_op_return([5u8; 4]));
    let claims = [
        ada.sign(Op::Buy { parcel: PARCEL, listing: contested, txid: trade_txid(ada_tx) }),
        bo.sign(Op::Buy { parcel: PARCEL, listing: contested, txid: trade_txid(bo_draft.txid) }),
    ];
    deliver(&mut [&mut seller, &mut ada, &mut bo], &claims);
    for peer in [&seller, &ada, &bo] {
        let settled = decide(peer, &esplora, contested);
        assert!(matches!(settled.state, SaleState::Owned { buyer, .. } if buyer == bo.key()));
        let refunds: Vec<_> = settled.refunds().map(|(claim, reason)| (claim.buyer, reason)).collect();
        assert_eq!(refunds, vec![(ada.key(), RefundReason::SoldToAnother)]);
    }
}

#[test]
fn a_double_spent_zero_confirmation_purchase_is_undone() {
    let chain = TestChain::start().expect("chain");
    let esplora = Chain::new(&chain.url(), WalletNetwork::Regtest).expect("client");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let mut seller = Peer::new(dirs[0].path(), 1);
    let mut buyer = Peer::new(dirs[1].path(), 2);
    fund(&chain, &esplora, &mut buyer);
    let gem = list(&mut seller, &mut [&mut buyer], "Small gem", 5_000, 0);
    let view = view_of(&buyer, gem);
    let request = PayRequest {
        to: PayTarget::Script(view.listing.pay_to.script()),
        amount_sats: 5_000,
        fee_rate_sat_vb: 2.0,
        commitment: Some(trade::payment_commitment(&gem, &buyer.key())),
    };
    let payment = buyer.account.prepare(&request).expect("prepare");
    // A conflicting draft from the same coins, paying the buyer back: built before the payment is
    // recorded, so it spends the same (only) coin.
    let back = buyer.address();
    let conflict = buyer
        .account
        .prepare(&PayRequest {
            to: PayTarget::Script(back.to_bytes()),
            amount_sats: 100_000,
            fee_rate_sat_vb: 5.0,
            commitment: None,
        })
        .expect("conflicting draft");
    assert_eq!(payment.tx.input[0].previous_output, conflict.tx.input[0].previous_output, "one coin, two spends");
    buyer.account.send(&esplora, payment.txid).expect("send");
    let claim = buyer.sign(Op::Buy { parcel: PARCEL, listing: gem, txid: trade_txid(payment.txid) });
    deliver(&mut [&mut seller, &mut buyer], &[claim]);
    // Zero confirmations allowed for a small price: owned at once (shown as pending).
    assert_eq!(
        decide(&seller, &esplora, gem).state,
        SaleState::Owned { buyer: buyer.key(), txid: trade_txid(payment.txid), confirmations: 0 }
    );
    // The conflict cannot enter the mempool beside it...
    assert!(chain.broadcast(&conflict.tx).is_err());
    // ...but a miner can take it instead: the payment is gone and the item is not sold.
    chain.mine_with(vec![conflict.tx.clone()], &ScriptBuf::new_op_return([6u8; 4])).expect("double spend mined");
    let settled = decide(&seller, &esplora, gem);
    assert_eq!(settled.state, SaleState::Open);
    assert_eq!(settled.verdicts[0].1, Verdict::Rejected(ClaimError::NotOnChain));
}

#[test]
fn a_crash_in_the_middle_of_a_send_leaves_the_transaction_known_after_restart() {
    let chain = TestChain::start().expect("chain");
    let esplora = Chain::new(&chain.url(), WalletNetwork::Regtest).expect("client");
    let dir = tempfile::tempdir().expect("dir");
    let mut peer = Peer::new(dir.path(), 1);
    fund(&chain, &esplora, &mut peer);
    let to = ScriptBuf::new_p2wpkh(&bdk_wallet::bitcoin::WPubkeyHash::from_byte_array([7; 20]));
    let request = PayRequest {
        to: PayTarget::Script(to.to_bytes()),
        amount_sats: 70_000,
        fee_rate_sat_vb: 1.0,
        commitment: None,
    };
    let draft = peer.account.prepare(&request).expect("prepare");
    // The send's first half (recorded and synced to disk), then the process dies before the
    // broadcast: nothing after `record` runs, nothing more is written.
    peer.account.record(draft.txid).expect("record");
    drop(peer);
    assert!(chain.tx_status(draft.txid).is_none(), "the server never saw it");

    let mut account = Account::unlock(dir.path(), PASSPHRASE, WalletNetwork::Regtest).expect("unlock after the crash");
    assert!(account.knows(draft.txid), "the transaction is known after restart");
    let entry = account.history().into_iter().find(|entry| entry.txid == draft.txid).expect("in the history");
    assert_eq!(entry.state, TxState::Pending);
    let report = account.sync(&esplora, |_| {}).expect("sync");
    assert_eq!(report.rebroadcast, 1, "the next sync sends it");
    assert_eq!(chain.tx_status(draft.txid), Some(None), "now in the mempool");
    // A wrong passphrase still opens nothing.
    assert!(Account::unlock(dir.path(), "not the passphrase", WalletNetwork::Regtest).is_err());
}

#[test]
fn a_refused_broadcast_stops_counting() {
    let chain = TestChain::start().expect("chain");
    let esplora = Chain::new(&chain.url(), WalletNetwork::Regtest).expect("client");
    let dir = tempfile::tempdir().expect("dir");
    let mut peer = Peer::new(dir.path(), 1);
    fund(&chain, &esplora, &mut peer);
    let to = ScriptBuf::new_p2wpkh(&bdk_wallet::bitcoin::WPubkeyHash::from_byte_array([8; 20]));
    let first = PayRequest {
        to: PayTarget::Script(to.to_bytes()),
        amount_sats: 10_000,
        fee_rate_sat_vb: 1.0,
        commitment: None,
    };
    let one = peer.account.prepare(&first).expect("prepare");
    let two = peer.account.prepare(&PayRequest { amount_sats: 11_000, ..first }).expect("prepare");
    peer.account.send(&esplora, one.txid).expect("first send");
    let refused = peer.account.send(&esplora, two.txid);
    assert!(
        matches!(&refused, Err(sanctuary_wallet::WalletError::Rejected(reason)) if reason.contains("conflict")),
        "{refused:?}"
    );
    // The balance counts the first payment only.
    peer.account.sync(&esplora, |_| {}).expect("sync");
    let spent = 50 * 100_000_000 - peer.account.balances().confirmed - peer.account.balances().pending;
    assert!(spent > 10_000 && spent < 11_000, "spent {spent}");
    assert!(peer.account.knows(one.txid));
    assert!(!peer.account.knows(two.txid), "the refused payment no longer counts");
}
