//! A hostile chain server and hostile peers against the wallet's trade checks, on the in-process
//! test chain: forged block headers are refused, a late claim of an earlier payment and a
//! backdated withdrawal do not move an owned item, spam claims do not flood the server, a failing
//! lookup does not stop the others, and the wallet will not pay for an item already paid for.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bdk_esplora::esplora_client;
use bdk_wallet::bitcoin::hashes::Hash;
use bdk_wallet::bitcoin::{Address, ScriptBuf};
use glam::Vec3;
use sanctuary_engine::trade::{
    self, Claim, Listing, ListingView, PayTo, PaymentSeen, RefundReason, SaleState, Title, TxId, Verdict,
};
use sanctuary_engine::{ChangeId, ModelRef, ParcelCoord, PublicKey};
use sanctuary_wallet::testchain::{TestChain, script_hash};
use sanctuary_wallet::{
    Account, Chain, PayRequest, PayTarget, Seed, ServiceConfig, WalletCommand, WalletEvent, WalletNetwork,
    WalletService, trade_txid,
};

const PASSPHRASE: &str = "correct horse battery";

fn key(n: u8) -> PublicKey {
    PublicKey::from_secret_seed(&[n; 32])
}

fn wallet(dir: &Path) -> Account {
    let seed = Seed::generate("").expect("seed");
    Account::create(dir, &seed, PASSPHRASE, WalletNetwork::Regtest).expect("create")
}

fn script_of(account: &mut Account) -> ScriptBuf {
    let (text, _) = account.fresh_address().expect("address");
    text.parse::<Address<_>>().expect("address").assume_checked().script_pubkey()
}

/// A wallet with one matured 50 BTC coinbase.
fn funded(chain: &TestChain, esplora: &Chain, dir: &Path) -> Account {
    let mut account = wallet(dir);
    let script = script_of(&mut account);
    chain.mine(1, &script);
    chain.mine(100, &ScriptBuf::new_op_return([0u8; 4]));
    account.sync(esplora, |_| {}).expect("sync");
    account
}

/// A listing view (as `World::listings` gives it) paying `script`.
fn view(id: u8, seller: PublicKey, script: &[u8], price_sats: u64, confirmations: u8) -> ListingView {
    ListingView {
        id: ChangeId([id; 32]),
        seller,
        parcel: ParcelCoord { x: 0, z: 0 },
        listing: Listing {
            item: ModelRef { hash: [id; 32], bytes: 1000, triangles: 12, min: [0.0; 3], max: [1.0; 3] },
            title: Title::new("Lamp").expect("title"),
            price_sats,
            pay_to: PayTo::new(script).expect("script"),
            confirmations,
            spot: Vec3::ZERO,
        },
        withdrawn_at: None,
        claims: Vec::new(),
        paid: Vec::new(),
    }
}

/// Pays a listing from `account` for `buyer`, recorded in the wallet but not broadcast; returns
/// the transaction for the test to mine.
fn payment(account: &mut Account, view: &ListingView, buyer: PublicKey) -> bdk_wallet::bitcoin::Transaction {
    let request = PayRequest {
        to: PayTarget::Script(view.listing.pay_to.script()),
        amount_sats: view.listing.price_sats,
        fee_rate_sat_vb: 2.0,
        commitment: Some(trade::payment_commitment(&view.id, &buyer)),
    };
    let draft = account.prepare(&request).expect("prepare");
    account.record(draft.txid).expect("record");
    draft.tx
}

fn decide(esplora: &Chain, view: &ListingView) -> trade::Settlement {
    let payments: HashMap<TxId, PaymentSeen> = esplora
        .payments_to(&view.listing.pay_to.script(), view.listing.price_sats)
        .expect("chain")
        .into_iter()
        .map(|payment| (payment.txid, payment))
        .collect();
    trade::settle(view, &payments, esplora.tip_height().expect("tip"))
}

/// A server that answers a header other than the block it named (the right merkle root, another
/// nonce) is caught: the payment check fetches the header and checks its hash and work, for a
/// payment asked by txid and for an address's payments.
#[test]
fn a_forged_header_is_refused() {
    let chain = TestChain::start().expect("chain");
    let esplora = Chain::new(&chain.url(), WalletNetwork::Regtest).expect("client");
    let reward = ScriptBuf::from_bytes(vec![0x51]);
    let hashes = chain.mine(2, &reward);
    let client = esplora_client::Builder::new(&chain.url()).build_blocking();
    let coinbase = client.get_txid_at_block_index(&hashes[0], 0).expect("request").expect("coinbase");
    let txid = TxId(coinbase.to_byte_array());
    let honest = esplora.payment(txid, reward.as_bytes()).expect("an honest answer is taken").expect("known");
    assert_eq!(honest.confirmed.map(|at| (at.height, at.index)), Some((1, 0)));

    let dirs = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let mut buyer = funded(&chain, &esplora, dirs.0.path());
    let script = script_of(&mut wallet(dirs.1.path()));
    let listing = view(1, key(1), script.as_bytes(), 20_000, 1);
    let tx = payment(&mut buyer, &listing, key(2));
    chain.mine_with(vec![tx], &reward).expect("mined");
    assert_eq!(esplora.payments_to(script.as_bytes(), 20_000).expect("honest").len(), 1);

    chain.forge_headers(true);
    // A client that checked these blocks before remembers them and asks for no header again...
    assert!(esplora.payments_to(script.as_bytes(), 20_000).is_ok());
    // ...a fresh one fetches the forged headers and refuses them.
    let fresh = Chain::new(&chain.url(), WalletNetwork::Regtest).expect("client");
    let forged = fresh.payment(txid, reward.as_bytes());
    assert!(forged.is_err(), "a header that is not the named block must be refused, got {forged:?}");
    let forged = fresh.payments_to(script.as_bytes(), 20_000);
    assert!(matches!(forged, Err(sanctuary_wallet::WalletError::Unproven(_))), "{forged:?}");
    // A payment below the price needs no block, so a forged header does not matter to it.
    assert!(fresh.payments_to(script.as_bytes(), 30_000).is_ok());
}

/// On a real chain: Bo pays first and keeps his claim back; Ada pays later and claims. Her
/// purchase never shows as hers (Bo's payment reserves the item), Bo's late claim completes his,
/// and the seller's withdrawal dated before Bo's block changes nothing.
#[test]
fn a_late_claim_and_a_backdated_withdrawal_do_not_move_an_owned_item() {
    let chain = TestChain::start().expect("chain");
    let esplora = Chain::new(&chain.url(), WalletNetwork::Regtest).expect("client");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let mut ada_wallet = funded(&chain, &esplora, dirs[0].path());
    let mut bo_wallet = funded(&chain, &esplora, dirs[1].path());
    let script = script_of(&mut wallet(dirs[2].path()));
    let (seller, ada, bo) = (key(1), key(2), key(3));
    let mut listing = view(9, seller, script.as_bytes(), 20_000, 1);
    let reward = ScriptBuf::new_op_return([7u8; 4]);

    let bo_tx = payment(&mut bo_wallet, &listing, bo);
    chain.mine_with(vec![bo_tx.clone()], &reward).expect("Bo's payment");
    let bo_height = chain.height();
    let ada_tx = payment(&mut ada_wallet, &listing, ada);
    chain.mine_with(vec![ada_tx.clone()], &reward).expect("Ada's payment");
    listing.claims.push(Claim { buyer: ada, txid: trade_txid(ada_tx.compute_txid()) });
    let before = decide(&esplora, &listing);
    assert_eq!(
        before.state,
        SaleState::Unclaimed { txid: trade_txid(bo_tx.compute_txid()), confirmations: 2 },
        "Bo's earlier payment leads before he claims it"
    );
    assert_eq!(before.verdicts[0].1, Verdict::Refund(RefundReason::SoldToAnother));

    listing.claims.push(Claim { buyer: bo, txid: trade_txid(bo_tx.compute_txid()) });
    let owned = SaleState::Owned { buyer: bo, txid: trade_txid(bo_tx.compute_txid()), confirmations: 2 };
    assert_eq!(decide(&esplora, &listing).state, owned);
    listing.withdrawn_at = Some(bo_height - 1);
    assert_eq!(decide(&esplora, &listing).state, owned, "a backdated withdrawal changes nothing");
}

/// A wallet thread that is only a bystander (its person neither sold nor bought) watching the
/// world while hostile keys spam it.
fn bystander(chain: &TestChain, dir: &Path) -> WalletService {
    WalletService::spawn(ServiceConfig {
        dir: dir.to_owned(),
        network: WalletNetwork::Regtest,
        esplora_url: chain.url(),
        sync_every: Duration::from_secs(3600),
        lightning: Default::default(),
    })
    .expect("service")
}

fn next_payments(service: &WalletService) -> HashMap<ChangeId, HashMap<TxId, PaymentSeen>> {
    loop {
        match service.next_event(Duration::from_secs(30)) {
            Some(WalletEvent::Payments { seen, .. }) => return seen,
            Some(WalletEvent::Failed { action, error }) => panic!("reported: could not {action}: {error}"),
            Some(_) => continue,
            None => panic!("no payments reported"),
        }
    }
}

/// Spam claims: one hostile key claims 300 made-up payments on 100 listings, and 50 other keys
/// claim 3 each on 50 more. One round asks the server about at most 16 addresses (so about 20
/// requests), a lookup that fails hides nothing else (and, not being the person's, shows no
/// error), and the real sale among them is seen.
#[test]
fn claim_spam_is_bounded_and_one_failure_does_not_abort_the_round() {
    let chain = TestChain::start().expect("chain");
    let esplora = Chain::new(&chain.url(), WalletNetwork::Regtest).expect("client");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let mut buyer_wallet = funded(&chain, &esplora, dirs[0].path());
    let script = script_of(&mut wallet(dirs[1].path()));

    // The listing whose lookup fails (id 0, looked at first) and the real one (id 1).
    let failing_script = ScriptBuf::from_bytes(vec![0x00, 0x14, 0xee, 0xee]);
    let mut failing = view(0, key(1), failing_script.as_bytes(), 20_000, 1);
    failing.claims.push(Claim { buyer: key(5), txid: TxId([5; 32]) });
    let mut real = view(1, key(1), script.as_bytes(), 20_000, 1);
    let tx = payment(&mut buyer_wallet, &real, key(2));
    chain.mine_with(vec![tx.clone()], &ScriptBuf::new_op_return([1u8; 4])).expect("mined");
    real.claims.push(Claim { buyer: key(2), txid: trade_txid(tx.compute_txid()) });
    let mut listings = vec![failing, real];
    for n in 0..150u8 {
        let mut id = [0xa0u8; 32];
        id[0] = n;
        id[1] = 0xff;
        // Key 100 claims on the first 100 listings, keys 100 to 149 each on one of the rest.
        let hostile = if n < 100 { key(100) } else { key(n) };
        let mut spam = view(2, hostile, &[0x51, 0x01, n], 20_000, 1);
        spam.id = ChangeId(id);
        spam.claims = (0..3u8).map(|k| Claim { buyer: hostile, txid: TxId([k ^ n; 32]) }).collect();
        listings.push(spam);
    }
    listings.sort_by_key(|view| view.id);

    chain.fail_requests(Some(&script_hash(&failing_script).to_string()));
    let service = bystander(&chain, dirs[2].path());
    let before = chain.requests();
    service.send(WalletCommand::Watch { listings, me: None });
    service.send(WalletCommand::Sync);
    let seen = next_payments(&service);
    let asked = chain.requests() - before;
    assert!(asked <= 24, "one round asked the server {asked} times");
    let real_seen = seen.get(&ChangeId([1; 32])).expect("the real listing was looked at despite the failure");
    assert!(real_seen.contains_key(&trade_txid(tx.compute_txid())), "and its payment is reported");
    assert!(!seen.contains_key(&ChangeId([0; 32])), "the failing lookup reported nothing");
}

/// The wallet refuses to pay for an item whose address already has a payment of the price with
/// a commitment: the trade rule would rank that payment first.
#[test]
fn the_wallet_will_not_pay_for_an_item_already_paid_for() {
    let chain = TestChain::start().expect("chain");
    let esplora = Chain::new(&chain.url(), WalletNetwork::Regtest).expect("client");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let mut first_wallet = funded(&chain, &esplora, dirs[0].path());
    let script = script_of(&mut wallet(dirs[1].path()));
    let listing = view(3, key(1), script.as_bytes(), 20_000, 1);
    let tx = payment(&mut first_wallet, &listing, key(2));
    chain.broadcast(&tx).expect("in the mempool");

    let service = bystander(&chain, dirs[2].path());
    service.send(WalletCommand::Create {
        words: None,
        bip39_passphrase: sanctuary_wallet::Zeroizing::new(String::new()),
        unlock: sanctuary_wallet::Zeroizing::new(PASSPHRASE.to_owned()),
    });
    let request = PayRequest {
        to: PayTarget::Script(script.to_bytes()),
        amount_sats: 20_000,
        fee_rate_sat_vb: 2.0,
        commitment: Some(trade::payment_commitment(&listing.id, &key(3))),
    };
    service.send(WalletCommand::Prepare { request, tag: 7 });
    let refusal = loop {
        match service.next_event(Duration::from_secs(60)) {
            Some(WalletEvent::Failed { action: "prepare the payment", error }) => break error,
            Some(_) => continue,
            None => panic!("no answer to the payment"),
        }
    };
    assert!(refusal.contains("already paid"), "{refusal}");
}
