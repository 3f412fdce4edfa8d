//! The in-process regtest chain (`sanctuary_wallet::testchain`) driven by real bdk wallets through
//! the real Esplora client: maturity, payments, conflicts, signatures, proofs, paging and bad
//! requests.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};

use bdk_esplora::EsploraExt;
use bdk_esplora::esplora_client::{self, BlockingClient};
use bdk_wallet::bitcoin::hashes::Hash;
use bdk_wallet::bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use bdk_wallet::bitcoin::{
    Amount, Block, CompactTarget, FeeRate, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid,
    Witness, absolute, transaction,
};
use bdk_wallet::chain::ChainPosition;
use bdk_wallet::descriptor::IntoWalletDescriptor;
use bdk_wallet::miniscript::descriptor::KeyMapWrapper;
use bdk_wallet::{KeychainKind, SignOptions, Wallet};
use sanctuary_wallet::testchain::{ChainError, TestChain, fold_merkle_proof, script_hash};
use sanctuary_wallet::{Seed, WalletNetwork};

const ALICE: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
const BOB: &str = "legal winner thank year wave sausage worth useful legal winner thank yellow";
const STOP_GAP: usize = 10;
const PARALLEL_REQUESTS: usize = 4;
const COIN: u64 = 100_000_000;

/// A bdk wallet with the keys to sign for it.
struct Person {
    wallet: Wallet,
    signer: KeyMapWrapper,
}

impl Person {
    fn new(words: &str) -> Person {
        let seed = Seed::restore(words, "").expect("the test mnemonic is valid");
        let (external, internal) = seed.descriptors(WalletNetwork::Regtest).expect("BIP84 descriptors");
        let secp = Secp256k1::new();
        let (external, mut keys) =
            external.as_str().into_wallet_descriptor(&secp, Network::Regtest.into()).expect("external descriptor");
        let (internal, internal_keys) =
            internal.as_str().into_wallet_descriptor(&secp, Network::Regtest.into()).expect("internal descriptor");
        keys.extend(internal_keys);
        let wallet =
            Wallet::create(external, internal).network(Network::Regtest).create_wallet_no_persist().expect("wallet");
        Person { wallet, signer: KeyMapWrapper::from(keys) }
    }

    fn new_script(&mut self) -> ScriptBuf {
        self.wallet.reveal_next_address(KeychainKind::External).script_pubkey()
    }

    fn full_scan(&mut self, client: &BlockingClient) {
        let update = client.full_scan(self.wallet.start_full_scan(), STOP_GAP, PARALLEL_REQUESTS).expect("full scan");
        self.wallet.apply_update(update).expect("the scan connects to the wallet's chain");
    }

    fn sync(&mut self, client: &BlockingClient) {
        let update = client.sync(self.wallet.start_sync_with_revealed_spks(), PARALLEL_REQUESTS).expect("sync");
        self.wallet.apply_update(update).expect("the sync connects to the wallet's chain");
    }

    /// A signed payment of `amount` to `to`, spending exactly `from` if given.
    fn pay(&mut self, to: &ScriptBuf, amount: Amount, from: Option<OutPoint>) -> Transaction {
        let mut builder = self.wallet.build_tx();
        builder.add_recipient(to.clone(), amount).fee_rate(FeeRate::from_sat_per_vb_u32(2));
        if let Some(outpoint) = from {
            builder.add_utxo(outpoint).expect("the wallet owns the output").manually_selected_only();
        }
        let mut psbt = builder.finish().expect("the wallet can pay");
        psbt.sign(&self.signer, &Secp256k1::new()).expect("the wallet's keys sign");
        assert!(self.wallet.finalize_psbt(&mut psbt, SignOptions::default()).expect("finalize"));
        psbt.extract_tx().expect("a complete transaction")
    }
}

fn client(chain: &TestChain) -> BlockingClient {
    esplora_client::Builder::new(&chain.url()).build_blocking()
}

/// A script nobody in the tests owns, for block rewards that should not move balances.
fn miner() -> ScriptBuf {
    ScriptBuf::from_bytes(vec![0x51])
}

/// A chain with 101 blocks mined to Alice (who has scanned it) and a Bob with no coins.
fn funded() -> (TestChain, BlockingClient, Person, Person) {
    let chain = TestChain::start().expect("the test chain starts");
    let client = client(&chain);
    let mut alice = Person::new(ALICE);
    chain.mine(101, &alice.new_script());
    alice.full_scan(&client);
    (chain, client, alice, Person::new(BOB))
}

/// The coinbase of the block at `height`, read through the client.
fn coinbase_at(client: &BlockingClient, height: u32) -> Transaction {
    block_at(client, height).txdata.remove(0)
}

fn block_at(client: &BlockingClient, height: u32) -> Block {
    let hash = client.get_block_hash(height).expect("block hash");
    client.get_block_by_hash(&hash).expect("block request").expect("the block exists")
}

/// A transaction spending `outpoint` with `witness`, paying `value` to nobody in the tests.
fn spend_to_miner(outpoint: OutPoint, witness: Witness, value: Amount) -> Transaction {
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn { previous_output: outpoint, script_sig: ScriptBuf::new(), sequence: Sequence::MAX, witness }],
        output: vec![TxOut { value, script_pubkey: miner() }],
    }
}

fn http_error(error: esplora_client::Error) -> (u16, String) {
    match error {
        esplora_client::Error::HttpResponse { status, message } => (status, message),
        other => panic!("expected an HTTP error answer, got {other:?}"),
    }
}

/// A coinbase is spendable once 100 blocks count it (bdk and the chain agree): 101 blocks mined
/// to Alice leave two mature rewards (heights 1 and 2) and 99 immature ones, all seen through
/// `full_scan`.
#[test]
fn mined_rewards_mature_after_one_hundred_blocks() {
    let (chain, client, alice, _) = funded();
    assert_eq!(chain.height(), 101);
    assert_eq!(client.get_height().expect("height"), 101);
    assert_eq!(client.get_tip_hash().expect("tip hash"), client.get_block_hash(101).expect("hash at 101"));
    let balance = alice.wallet.balance();
    assert_eq!(balance.confirmed, Amount::from_sat(2 * 50 * COIN));
    assert_eq!(balance.immature, Amount::from_sat(99 * 50 * COIN));
    assert_eq!(alice.wallet.latest_checkpoint().height(), 101);
}

/// Alice pays Bob through the client's broadcast: Bob's sync sees it pending, and after a block
/// confirmed at that block's height and hash; Alice's change and fee add up.
#[test]
fn payment_is_pending_then_confirmed() {
    let (chain, client, mut alice, mut bob) = funded();
    let tx = alice.pay(&bob.new_script(), Amount::from_sat(COIN), None);
    let txid = tx.compute_txid();
    client.broadcast(&tx).expect("the payment is accepted");
    assert_eq!(chain.mempool(), vec![txid]);
    assert_eq!(chain.tx_status(txid), Some(None));

    bob.sync(&client);
    assert_eq!(bob.wallet.balance().untrusted_pending, Amount::from_sat(COIN));
    assert_eq!(bob.wallet.balance().confirmed, Amount::ZERO);

    let hashes = chain.mine(1, &miner());
    assert_eq!(chain.tx_status(txid), Some(Some(102)));
    assert!(chain.mempool().is_empty());
    bob.sync(&client);
    assert_eq!(bob.wallet.balance().confirmed, Amount::from_sat(COIN));
    let position = bob.wallet.get_tx(txid).expect("Bob knows the payment").chain_position;
    match position {
        ChainPosition::Confirmed { anchor, .. } => {
            assert_eq!(anchor.block_id.height, 102);
            assert_eq!(anchor.block_id.hash, hashes[0]);
        }
        other => panic!("expected a confirmed payment, got {other:?}"),
    }

    let info = client.get_tx_info(&txid).expect("tx request").expect("the payment is known");
    assert_eq!(info.to_tx(), tx);
    assert_eq!(info.status.block_height, Some(102));
    let fee = info.fee();
    assert!(fee > Amount::ZERO);
    // The block pays the subsidy plus that fee.
    assert_eq!(coinbase_at(&client, 102).output[0].value, Amount::from_sat(50 * COIN) + fee);

    // At tip 102 the rewards of heights 1 to 3 are mature; one of them paid Bob and the fee.
    alice.sync(&client);
    assert_eq!(alice.wallet.balance().confirmed, Amount::from_sat(150 * COIN - COIN) - fee);
}

/// Spending an output already spent by a mempool transaction is refused, through HTTP and the
/// direct call, with bitcoind's reason; re-broadcasting the first is harmless.
#[test]
fn conflicting_spend_is_refused() {
    let (chain, client, mut alice, mut bob) = funded();
    let first = alice.pay(&bob.new_script(), Amount::from_sat(COIN), None);
    client.broadcast(&first).expect("the first spend is accepted");
    let outpoint = first.input[0].previous_output;
    let alice_script = alice.new_script();
    let second = alice.pay(&alice_script, Amount::from_sat(2 * COIN), Some(outpoint));
    assert_eq!(second.input[0].previous_output, outpoint);

    let (status, message) = http_error(client.broadcast(&second).expect_err("the double spend is refused"));
    assert_eq!(status, 400);
    assert!(message.contains("txn-mempool-conflict"), "{message}");
    match chain.broadcast(&second) {
        Err(ChainError::MempoolConflict { spent_by, input: 0, .. }) => assert_eq!(spent_by, first.compute_txid()),
        other => panic!("expected a mempool conflict, got {other:?}"),
    }
    client.broadcast(&first).expect("a known transaction is accepted again");
    assert_eq!(chain.mempool(), vec![first.compute_txid()]);
}

/// `mine_with` confirms a double spend and evicts the mempool transaction it conflicts with and
/// that one's descendants; Bob's sync then drops the vanished payments. Outputs of mempool
/// transactions cannot be mined this way.
#[test]
fn mine_with_makes_the_double_spend_win() {
    let (chain, client, mut alice, mut bob) = funded();
    let payment = alice.pay(&bob.new_script(), Amount::from_sat(COIN), None);
    client.broadcast(&payment).expect("the payment is accepted");
    bob.sync(&client);
    let bob_script = bob.new_script();
    let child = bob.pay(&bob_script, Amount::from_sat(COIN / 2), None);
    assert_eq!(child.input[0].previous_output.txid, payment.compute_txid());
    client.broadcast(&child).expect("the child is accepted");
    assert_eq!(chain.mempool().len(), 2);

    match chain.mine_with(vec![child.clone()], &miner()) {
        Err(ChainError::MissingOrSpent { input: 0, .. }) => {}
        other => panic!("a block cannot spend mempool outputs, got {other:?}"),
    }

    let alice_script = alice.new_script();
    let spent = Some(payment.input[0].previous_output);
    let double_spend = alice.pay(&alice_script, Amount::from_sat(2 * COIN), spent);
    let hash = chain.mine_with(vec![double_spend.clone()], &miner()).expect("the double spend is mined");
    assert_eq!(chain.tx_status(double_spend.compute_txid()), Some(Some(102)));
    assert_eq!(chain.tx_status(payment.compute_txid()), None);
    assert_eq!(chain.tx_status(child.compute_txid()), None);
    assert!(chain.mempool().is_empty());
    assert_eq!(client.get_tx_info(&payment.compute_txid()).expect("tx request"), None);

    let block = client.get_block_by_hash(&hash).expect("block request").expect("the block exists");
    assert_eq!(block.txdata.len(), 2);
    assert_eq!(block.txdata[1], double_spend);

    bob.sync(&client);
    assert_eq!(bob.wallet.balance().total(), Amount::ZERO);
}

/// A witness signature that was tampered with, or a transaction changed after signing, fails
/// real ECDSA verification; the untouched transaction passes.
#[test]
fn tampered_signature_is_refused() {
    let (chain, client, mut alice, mut bob) = funded();
    let tx = alice.pay(&bob.new_script(), Amount::from_sat(COIN), None);

    let mut tampered = tx.clone();
    let mut items = tampered.input[0].witness.to_vec();
    items[0][10] ^= 0x01;
    tampered.input[0].witness = Witness::from_slice(&items);
    let (status, message) = http_error(client.broadcast(&tampered).expect_err("a tampered signature is refused"));
    assert_eq!(status, 400);
    assert!(message.contains("mandatory-script-verify-flag-failed"), "{message}");

    let mut redirected = tx.clone();
    redirected.output[0].script_pubkey = alice.new_script();
    assert!(matches!(chain.broadcast(&redirected), Err(ChainError::BadSignature { input: 0, .. })));

    let mut swapped_key = tx.clone();
    let mut items = swapped_key.input[0].witness.to_vec();
    let secp = Secp256k1::new();
    let stranger = SecretKey::from_slice(&[7; 32]).expect("a valid secret key");
    items[1] = PublicKey::from_secret_key(&secp, &stranger).serialize().to_vec();
    swapped_key.input[0].witness = Witness::from_slice(&items);
    assert!(matches!(chain.broadcast(&swapped_key), Err(ChainError::BadSignature { input: 0, .. })));

    assert_eq!(chain.broadcast(&tx), Ok(tx.compute_txid()));
}

/// A Lightning channel's funding output, `2 <key> <key> 2 CHECKMULTISIG` behind P2WSH, is spent
/// only with both signatures in the script's order; a P2WSH script of another kind is held to
/// the hash its output commits to.
#[test]
fn two_of_two_spends_are_checked() {
    use bdk_wallet::bitcoin::ecdsa;
    use bdk_wallet::bitcoin::opcodes::all::{OP_CHECKMULTISIG, OP_PUSHNUM_1, OP_PUSHNUM_2};
    use bdk_wallet::bitcoin::script::Builder;
    use bdk_wallet::bitcoin::secp256k1::Message;
    use bdk_wallet::bitcoin::sighash::{EcdsaSighashType, SighashCache};

    let (chain, client, mut alice, _bob) = funded();
    let secp = Secp256k1::new();
    let keys = [SecretKey::from_slice(&[3; 32]).expect("key"), SecretKey::from_slice(&[4; 32]).expect("key")];
    let public = keys.map(|key| PublicKey::from_secret_key(&secp, &key).serialize());
    let multisig = Builder::new()
        .push_opcode(OP_PUSHNUM_2)
        .push_slice(public[0])
        .push_slice(public[1])
        .push_opcode(OP_PUSHNUM_2)
        .push_opcode(OP_CHECKMULTISIG)
        .into_script();
    let anything = Builder::new().push_opcode(OP_PUSHNUM_1).into_script();
    let fund = |alice: &mut Person, script: &ScriptBuf| {
        let tx = alice.pay(&ScriptBuf::new_p2wsh(&script.wscript_hash()), Amount::from_sat(COIN), None);
        chain.broadcast(&tx).expect("the funding is accepted");
        chain.mine(1, &miner());
        alice.sync(&client);
        let vout = tx.output.iter().position(|out| out.value == Amount::from_sat(COIN)).expect("the funded output");
        OutPoint::new(tx.compute_txid(), u32::try_from(vout).expect("small"))
    };
    let funding = fund(&mut alice, &multisig);
    let spend = |outpoint: OutPoint, witness: Vec<Vec<u8>>| {
        spend_to_miner(outpoint, Witness::from_slice(&witness), Amount::from_sat(COIN - 1_000))
    };
    let unsigned = spend(funding, Vec::new());
    let sighash = SighashCache::new(&unsigned)
        .p2wsh_signature_hash(0, &multisig, Amount::from_sat(COIN), EcdsaSighashType::All)
        .expect("sighash");
    let signatures =
        keys.map(|key| ecdsa::Signature::sighash_all(secp.sign_ecdsa(&Message::from(sighash), &key)).to_vec());
    let witness = |first: &[u8], second: &[u8], script: &ScriptBuf| {
        vec![Vec::new(), first.to_vec(), second.to_vec(), script.to_bytes()]
    };

    let swapped = spend(funding, witness(&signatures[1], &signatures[0], &multisig));
    assert!(matches!(chain.broadcast(&swapped), Err(ChainError::BadSignature { input: 0, .. })));
    let mut tampered_signature = signatures[1].clone();
    tampered_signature[8] ^= 0x01;
    let tampered = spend(funding, witness(&signatures[0], &tampered_signature, &multisig));
    assert!(matches!(chain.broadcast(&tampered), Err(ChainError::BadSignature { input: 0, .. })));
    let other_script = spend(funding, witness(&signatures[0], &signatures[1], &anything));
    assert!(matches!(chain.broadcast(&other_script), Err(ChainError::BadSignature { input: 0, .. })));
    let honest = spend(funding, witness(&signatures[0], &signatures[1], &multisig));
    assert_eq!(chain.broadcast(&honest), Ok(honest.compute_txid()));

    let committed = fund(&mut alice, &anything);
    let wrong = Builder::new().push_opcode(OP_PUSHNUM_2).into_script();
    assert!(matches!(chain.broadcast(&spend(committed, vec![wrong.to_bytes()])), Err(ChainError::BadSignature { .. })));
    let right = spend(committed, vec![anything.to_bytes()]);
    assert_eq!(chain.broadcast(&right), Ok(right.compute_txid()));
}

/// The remaining acceptance rules: no coinbases, no duplicate or unknown inputs, no outputs worth
/// more than the inputs, coinbases only after 100 confirmations, and only P2WPKH spends.
#[test]
fn malformed_transactions_are_refused() {
    let chain = TestChain::start().expect("the test chain starts");
    let client = client(&chain);
    let mut alice = Person::new(ALICE);
    // The reward of block 1 goes to a bare OP_TRUE script, which the chain does not verify.
    chain.mine(1, &miner());
    chain.mine(100, &alice.new_script());
    alice.full_scan(&client);
    let alice_script = alice.new_script();
    let tx = alice.pay(&alice_script, Amount::from_sat(COIN), None);

    let coinbase = coinbase_at(&client, 5);
    assert!(matches!(chain.broadcast(&coinbase), Err(ChainError::Coinbase { .. })));

    let mut duplicated = tx.clone();
    duplicated.input.push(tx.input[0].clone());
    assert!(matches!(chain.broadcast(&duplicated), Err(ChainError::DuplicateInput { .. })));

    let mut unknown = tx.clone();
    unknown.input[0].previous_output.txid = Txid::all_zeros();
    assert!(matches!(chain.broadcast(&unknown), Err(ChainError::MissingOrSpent { input: 0, .. })));

    let mut inflated = tx.clone();
    inflated.output[0].value = Amount::from_sat(60 * COIN);
    assert!(matches!(chain.broadcast(&inflated), Err(ChainError::OutputsExceedInputs { .. })));

    let spend = |outpoint: OutPoint| spend_to_miner(outpoint, Witness::new(), Amount::from_sat(COIN));
    let young = OutPoint::new(coinbase_at(&client, 3).compute_txid(), 0);
    match chain.broadcast(&spend(young)) {
        Err(ChainError::PrematureCoinbaseSpend { confirmations: 99, .. }) => {}
        other => panic!("expected a premature coinbase spend, got {other:?}"),
    }
    let op_true = OutPoint::new(coinbase_at(&client, 1).compute_txid(), 0);
    let refusal = chain.broadcast(&spend(op_true)).expect_err("only P2WPKH and P2WSH spends are checked");
    assert!(matches!(refusal, ChainError::UncheckedScript { input: 0 }));
    assert!(refusal.to_string().contains("the only kinds the test chain checks"));
    let genesis_coinbase = OutPoint::new(coinbase_at(&client, 0).compute_txid(), 0);
    assert!(matches!(chain.broadcast(&spend(genesis_coinbase)), Err(ChainError::MissingOrSpent { .. })));

    chain.broadcast(&tx).expect("the honest transaction is accepted");
    chain.mine(1, &miner());
    let mut again = tx.clone();
    again.output[0].value = Amount::from_sat(COIN / 2);
    let (_, message) = http_error(client.broadcast(&again).expect_err("a spent output cannot be spent again"));
    assert!(message.contains("bad-txns-inputs-missingorspent"), "{message}");
    assert!(chain.mempool().is_empty());
}

/// Every transaction's `/merkle-proof` folds to its block header's merkle root (in a three-leaf
/// block, so a lone hash is paired with itself), a wrong position does not, and
/// `/merkleblock-proof` matches only that transaction. Unconfirmed transactions have no proof.
#[test]
fn merkle_proofs_fold_to_the_header_root() {
    let (chain, client, mut alice, mut bob) = funded();
    let bob_script = bob.new_script();
    for height in [1, 2] {
        let coinbase = client.get_txid_at_block_index(&client.get_block_hash(height).expect("hash"), 0);
        let outpoint = OutPoint::new(coinbase.expect("txid request").expect("a coinbase"), 0);
        client.broadcast(&alice.pay(&bob_script, Amount::from_sat(COIN), Some(outpoint))).expect("payment");
    }
    let hash = chain.mine(1, &miner())[0];
    let header = client.get_header_by_hash(&hash).expect("header");
    let txids = client.get_block_txids(&hash).expect("txids");
    assert_eq!(txids.len(), 3);
    for (pos, txid) in txids.iter().enumerate() {
        let proof = client.get_merkle_proof(txid).expect("proof request").expect("a confirmed transaction");
        assert_eq!((proof.block_height, proof.pos), (102, pos));
        assert_eq!(fold_merkle_proof(*txid, &proof.merkle, proof.pos), header.merkle_root);
        if proof.merkle[0] != *txid {
            // Unless the hash is paired with itself, the wrong side gives the wrong root.
            assert_ne!(fold_merkle_proof(*txid, &proof.merkle, proof.pos ^ 1), header.merkle_root);
        }

        let merkle_block = client.get_merkle_block(txid).expect("merkle block request").expect("a proof");
        assert_eq!(merkle_block.header, header);
        let (mut matches, mut indexes) = (Vec::new(), Vec::new());
        assert_eq!(merkle_block.txn.extract_matches(&mut matches, &mut indexes), Ok(header.merkle_root));
        assert_eq!((matches, indexes), (vec![*txid], vec![u32::try_from(pos).expect("small")]));
    }
    // A block with only its coinbase: the root is the txid and the branch is empty.
    let lone = coinbase_at(&client, 7).compute_txid();
    let proof = client.get_merkle_proof(&lone).expect("proof request").expect("confirmed");
    assert!(proof.merkle.is_empty());
    assert_eq!(fold_merkle_proof(lone, &proof.merkle, 0), block_at(&client, 7).header.merkle_root);

    alice.sync(&client);
    let pending = alice.pay(&bob_script, Amount::from_sat(COIN), None);
    client.broadcast(&pending).expect("payment");
    assert_eq!(client.get_merkle_proof(&pending.compute_txid()).expect("proof request"), None);
    assert!(client.get_merkle_block(&pending.compute_txid()).expect("merkle block request").is_none());
}

/// Blocks are linked, meet their own regtest target with real proof of work, carry the BIP34
/// height, commit to their witnesses, halve the subsidy every 150 blocks, and are listed by
/// `/blocks` newest first, ten at a time.
#[test]
fn blocks_are_real() {
    let (chain, client, mut alice, mut bob) = funded();
    client.broadcast(&alice.pay(&bob.new_script(), Amount::from_sat(COIN), None)).expect("payment");
    chain.mine(1, &miner());
    let mut previous = None;
    for height in 0..=102 {
        let hash = client.get_block_hash(height).expect("hash");
        let header = client.get_header_by_hash(&hash).expect("header");
        assert_eq!(header.validate_pow(header.target()).expect("enough work"), hash);
        assert_eq!(header.bits, CompactTarget::from_consensus(0x207f_ffff));
        if let Some(previous) = previous {
            assert_eq!(header.prev_blockhash, previous);
        }
        previous = Some(hash);
        let status = client.get_block_status(&hash).expect("status");
        assert!(status.in_best_chain);
        assert_eq!(status.height, Some(height));
        assert_eq!(status.next_best.is_none(), height == 102);
    }

    let block = block_at(&client, 102);
    assert!(!block.txdata[1].input[0].witness.is_empty(), "the payment is a segwit spend");
    assert!(block.check_merkle_root());
    assert!(block.check_witness_commitment());
    assert_eq!(block.bip34_block_height().expect("a BIP34 height"), 102);

    let infos = client.get_block_infos(None).expect("recent blocks");
    assert_eq!(infos.iter().map(|info| info.height).collect::<Vec<_>>(), (93..=102).rev().collect::<Vec<_>>());
    assert_eq!(infos[0].id, block.block_hash());
    assert_eq!((infos[0].tx_count, infos[0].merkle_root), (2, block.header.merkle_root));
    assert_eq!(infos[0].previousblockhash, Some(block.header.prev_blockhash));
    let first = client.get_block_infos(Some(5)).expect("the first blocks");
    assert_eq!(first.iter().map(|info| info.height).collect::<Vec<_>>(), vec![5, 4, 3, 2, 1, 0]);
    assert_eq!(first[5].previousblockhash, None);
    assert_eq!(client.get_block_txids(&infos[1].id).expect("txids").len(), 1);

    chain.mine(48, &miner());
    assert_eq!(coinbase_at(&client, 149).output[0].value, Amount::from_sat(50 * COIN));
    assert_eq!(coinbase_at(&client, 150).output[0].value, Amount::from_sat(25 * COIN));
}

/// Script histories answer at the paths the client builds (so the script hash is written the
/// same way): mempool first, then confirmed newest first, 25 a page, and `/utxo` leaves out
/// outputs spent in the mempool.
#[test]
fn script_histories_page_like_esplora() {
    let chain = TestChain::start().expect("the test chain starts");
    let client = client(&chain);
    let mut alice = Person::new(ALICE);
    let script = alice.new_script();
    chain.mine(30, &script);
    chain.mine(71, &miner());

    let page = client.scripthash_txs(&script, None).expect("first page");
    let heights = |txs: &[esplora_client::Tx]| txs.iter().map(|tx| tx.status.block_height).collect::<Vec<_>>();
    assert_eq!(heights(&page), (6..=30).rev().map(Some).collect::<Vec<_>>());
    let next = client.scripthash_txs(&script, page.last().map(|tx| tx.txid)).expect("second page");
    assert_eq!(heights(&next), (1..=5).rev().map(Some).collect::<Vec<_>>());
    assert_eq!(client.get_scripthash_utxos(&script).expect("utxos").len(), 30);

    alice.full_scan(&client);
    let mut bob = Person::new(BOB);
    let bob_script = bob.new_script();
    let payment = alice.pay(&bob_script, Amount::from_sat(COIN), None);
    client.broadcast(&payment).expect("payment");
    let page = client.scripthash_txs(&script, None).expect("first page");
    assert_eq!(page.len(), 26);
    assert_eq!((page[0].txid, page[0].status.confirmed), (payment.compute_txid(), false));
    assert_eq!(client.get_scripthash_utxos(&script).expect("utxos").len(), 29);
    let bob_txs = client.get_mempool_scripthash_txs(&bob_script).expect("Bob's mempool history");
    assert_eq!(bob_txs.iter().map(|tx| tx.txid).collect::<Vec<_>>(), vec![payment.compute_txid()]);
    let bob_utxos = client.get_scripthash_utxos(&bob_script).expect("Bob's utxos");
    assert_eq!(
        (bob_utxos.len(), bob_utxos[0].value, bob_utxos[0].status.confirmed),
        (1, Amount::from_sat(COIN), false)
    );
    let outspend = client.get_output_status(&payment.input[0].previous_output.txid, 0).expect("outspend");
    assert_eq!(outspend.and_then(|status| status.txid), Some(payment.compute_txid()));
    assert!(client.get_fee_estimates().expect("fee estimates").contains_key(&6));
    assert_eq!(client.get_mempool_txids().expect("mempool"), vec![payment.compute_txid()]);
    assert_eq!(
        raw_request(&chain, format!("GET /scripthash/{}/txs/chain HTTP/1.1\r\n\r\n", script_hash(&script)).as_bytes())
            .0,
        200
    );
}

/// Sends raw bytes to the server and returns the answer's status and body.
fn raw_request(chain: &TestChain, request: &[u8]) -> (u16, String) {
    let address = chain.url().trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(address).expect("the server accepts connections");
    stream.write_all(request).expect("the request is sent");
    stream.shutdown(Shutdown::Write).expect("half-close");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("the answer is read");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (status, body)
}

/// Garbage of every kind gets a 400 or 404 with a message, never a dropped connection, and the
/// server keeps answering afterwards.
#[test]
fn garbage_requests_get_errors_not_panics() {
    let chain = TestChain::start().expect("the test chain starts");
    chain.mine(1, &miner());
    let client = client(&chain);
    let coinbase = client.get_txid_at_block_index(&client.get_tip_hash().expect("tip"), 0).expect("request");
    let coinbase = coinbase.expect("a coinbase");
    let zeros = "0".repeat(64);
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"GET /tx/nothex HTTP/1.1\r\n\r\n".to_vec(), 400),
        (format!("GET /tx/{zeros} HTTP/1.1\r\n\r\n").into_bytes(), 404),
        (format!("GET /tx/{zeros}/raw HTTP/1.1\r\n\r\n").into_bytes(), 404),
        (format!("GET /tx/{coinbase}/outspend/7 HTTP/1.1\r\n\r\n").into_bytes(), 404),
        (format!("GET /tx/{coinbase}/outspend/-1 HTTP/1.1\r\n\r\n").into_bytes(), 400),
        (format!("GET /tx/{coinbase}/nonsense HTTP/1.1\r\n\r\n").into_bytes(), 404),
        (b"GET /block-height/abc HTTP/1.1\r\n\r\n".to_vec(), 400),
        (b"GET /block-height/99999999999999 HTTP/1.1\r\n\r\n".to_vec(), 400),
        (b"GET /block-height/5 HTTP/1.1\r\n\r\n".to_vec(), 404),
        (b"GET /block/xyz/header HTTP/1.1\r\n\r\n".to_vec(), 400),
        (format!("GET /block/{zeros}/raw HTTP/1.1\r\n\r\n").into_bytes(), 404),
        (b"GET /block/..%2f/txid/x HTTP/1.1\r\n\r\n".to_vec(), 400),
        (b"GET /scripthash/xyz/txs HTTP/1.1\r\n\r\n".to_vec(), 400),
        (format!("GET /scripthash/{zeros}/txs/chain/nothex HTTP/1.1\r\n\r\n").into_bytes(), 400),
        (b"GET /nothing/here HTTP/1.1\r\n\r\n".to_vec(), 404),
        (b"DELETE /tx HTTP/1.1\r\n\r\n".to_vec(), 404),
        (b"POST /tx HTTP/1.1\r\nContent-Length: 2\r\n\r\nzz".to_vec(), 400),
        (b"POST /tx HTTP/1.1\r\nContent-Length: 2\r\n\r\n00".to_vec(), 400),
        (b"POST /tx HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n".to_vec(), 400),
        (b"POST /tx HTTP/1.1\r\nContent-Length: lots\r\n\r\n".to_vec(), 400),
        (b"POST /tx HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort".to_vec(), 400),
        (b"POST /tx HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(), 400),
        (b"\x00\xff\xfe garbage\r\n\r\n".to_vec(), 400),
        (b"GET /blocks/tip/height HTTP/1.1\r\n".to_vec(), 400),
        (b"GET /blocks/tip/height SPDY/3\r\n\r\n".to_vec(), 400),
        (b"".to_vec(), 400),
        (vec![b'A'; 40_000], 400),
    ];
    for (request, expected) in cases {
        let (status, body) = raw_request(&chain, &request);
        let shown = String::from_utf8_lossy(&request[..request.len().min(60)]).into_owned();
        assert_eq!(status, expected, "{shown:?} answered {status} {body:?}");
        assert!(!body.is_empty(), "{shown:?} answered without a message");
    }
    let (_, body) = raw_request(&chain, b"POST /tx HTTP/1.1\r\nContent-Length: 2\r\n\r\nzz");
    assert!(body.contains("TX decode failed"), "{body}");

    assert_eq!(client.get_height().expect("the server still answers"), 1);
    assert_eq!(client.get_tx(&Txid::all_zeros()).expect("a 404 is None"), None);
    assert_eq!(http_error(client.get_tx_status(&Txid::all_zeros()).expect_err("unknown")).0, 404);
}

/// The server lives as long as any handle to the chain and stops with the last one.
#[test]
fn server_stops_when_the_chain_is_dropped() {
    let chain = TestChain::start().expect("the test chain starts");
    let address = chain.url().trim_start_matches("http://").to_owned();
    let other = chain.clone();
    drop(chain);
    assert_eq!(client(&other).get_height().expect("still served"), 0);
    drop(other);
    assert!(TcpStream::connect(address).is_err(), "the listener is closed");
}
