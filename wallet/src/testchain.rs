//! An in-process regtest chain served over Esplora's HTTP API on loopback, for tests only.
//!
//! [`TestChain::start`] begins at the regtest genesis block and serves the chain on
//! `127.0.0.1` so that the wallet's real Esplora code path (`bdk_esplora` over
//! `esplora-client`'s blocking `minreq` client) can be exercised without a network. Blocks carry
//! real proof of work at regtest difficulty, real coinbases (BIP34 height, subsidy plus fees, a
//! witness commitment when needed) and real merkle roots; transactions are real ones made by bdk
//! wallets, accepted into a mempool only when their inputs exist, are unspent and mature, their
//! values add up and their P2WPKH signatures verify (and, for Lightning channels, the 2-of-2
//! signatures of P2WSH funding outputs; other P2WSH scripts are checked against their hash only).
//!
//! The HTTP server (`http.rs`) is deliberately small: one thread per connection, HTTP/1.1 parsed
//! by hand, one request per connection, every answer with `Content-Length` and
//! `Connection: close`. It stops when the last handle to the chain is dropped. For tests of the
//! wallet's checks it can be made to lie ([`TestChain::forge_headers`]) or fail
//! ([`TestChain::fail_requests`]).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{SystemTime, UNIX_EPOCH};

use bdk_wallet::bitcoin::block::{Header, Version as BlockVersion};
use bdk_wallet::bitcoin::constants::genesis_block;
use bdk_wallet::bitcoin::hashes::{Hash, HashEngine, sha256, sha256d};
use bdk_wallet::bitcoin::hex::DisplayHex;
use bdk_wallet::bitcoin::opcodes::OP_0;
use bdk_wallet::bitcoin::script::Builder;
use bdk_wallet::bitcoin::secp256k1::{Message, Secp256k1, VerifyOnly};
use bdk_wallet::bitcoin::sighash::SighashCache;
use bdk_wallet::bitcoin::transaction::Version as TxVersion;
use bdk_wallet::bitcoin::{
    Amount, Block, BlockHash, CompactTarget, CompressedPublicKey, Network, OutPoint, Script, ScriptBuf, Sequence,
    Transaction, TxIn, TxMerkleNode, TxOut, Txid, Witness, absolute, ecdsa,
};
use serde_json::{Value, json};

mod http;

/// The `bits` of every regtest block: the easiest target there is.
const REGTEST_BITS: u32 = 0x207f_ffff;
/// How many blocks must build on a coinbase (counting its own) before it may be spent.
const COINBASE_MATURITY: u32 = 100;
/// Regtest halves the block subsidy every 150 blocks.
const HALVING_INTERVAL: u32 = 150;
/// The first block subsidy: 50 BTC.
const INITIAL_SUBSIDY_SAT: u64 = 50 * 100_000_000;

/// A regtest chain with an Esplora HTTP server in front of it. Cloning gives another handle to the
/// same chain; the server stops when the last handle is dropped.
#[derive(Clone)]
pub struct TestChain {
    state: Arc<Mutex<State>>,
    server: Arc<Server>,
}

/// Why a transaction was refused, by the mempool ([`TestChain::broadcast`], `POST /tx`) or by
/// [`TestChain::mine_with`]. Each message starts with the reason bitcoind would give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// A coinbase only ever enters the chain inside a block.
    #[error("coinbase: {txid} is a coinbase transaction, which only a block can carry")]
    Coinbase {
        /// The refused transaction.
        txid: Txid,
    },
    /// A transaction needs at least one input and one output.
    #[error("bad-txns-vin-empty or bad-txns-vout-empty: {txid} has no inputs or no outputs")]
    Empty {
        /// The refused transaction.
        txid: Txid,
    },
    /// Two inputs spend the same output.
    #[error("bad-txns-inputs-duplicate: {outpoint} is spent twice by the same transaction")]
    DuplicateInput {
        /// The output spent twice.
        outpoint: OutPoint,
    },
    /// An input spends an output that does not exist or is already spent in the chain.
    #[error("bad-txns-inputs-missingorspent: input {input} spends {outpoint}, which is unknown or already spent")]
    MissingOrSpent {
        /// The index of the input.
        input: usize,
        /// The output it tries to spend.
        outpoint: OutPoint,
    },
    /// An input spends an output that a mempool transaction already spends (there is no
    /// replace-by-fee: mine the conflict with [`TestChain::mine_with`] instead).
    #[error("txn-mempool-conflict: input {input} spends {outpoint}, already spent by mempool transaction {spent_by}")]
    MempoolConflict {
        /// The index of the input.
        input: usize,
        /// The output it tries to spend.
        outpoint: OutPoint,
        /// The mempool transaction that spends it.
        spent_by: Txid,
    },
    /// An input spends a coinbase output before it has 100 confirmations.
    #[error(
        "bad-txns-premature-spend-of-coinbase: input {input} spends coinbase output {outpoint} \
         with {confirmations} confirmations; it needs {COINBASE_MATURITY}"
    )]
    PrematureCoinbaseSpend {
        /// The index of the input.
        input: usize,
        /// The coinbase output.
        outpoint: OutPoint,
        /// Its confirmations counted at the block that would include the spend.
        confirmations: u32,
    },
    /// The outputs are worth more than the inputs.
    #[error("bad-txns-in-belowout: the outputs total {outputs} but the inputs only {inputs}")]
    OutputsExceedInputs {
        /// The total of the inputs.
        inputs: Amount,
        /// The total of the outputs.
        outputs: Amount,
    },
    /// An input spends a script the test chain cannot verify.
    #[error("input {input} spends neither a P2WPKH nor a P2WSH output, the only kinds the test chain checks")]
    UncheckedScript {
        /// The index of the input.
        input: usize,
    },
    /// A P2WPKH input's witness does not authorise the spend.
    #[error("mandatory-script-verify-flag-failed: input {input}: {reason}")]
    BadSignature {
        /// The index of the input.
        input: usize,
        /// What is wrong with the witness.
        reason: String,
    },
}

impl ChainError {
    /// The JSON-RPC error code bitcoind would answer with.
    fn rpc_code(&self) -> i32 {
        match self {
            ChainError::MissingOrSpent { .. } => -25,
            _ => -26,
        }
    }
}

/// Folds an electrum-style merkle branch (as `/tx/{txid}/merkle-proof` gives it, deepest pairing
/// first) from `txid` at position `pos` up to the merkle root it proves.
pub fn fold_merkle_proof(txid: Txid, merkle: &[Txid], pos: usize) -> TxMerkleNode {
    let mut hash = txid.to_raw_hash();
    let mut index = pos;
    for sibling in merkle {
        let sibling = sibling.to_raw_hash();
        hash = if index.is_multiple_of(2) { hash_pair(hash, sibling) } else { hash_pair(sibling, hash) };
        index /= 2;
    }
    TxMerkleNode::from_raw_hash(hash)
}

/// The hash that names `script` in Esplora's `/scripthash/{hash}/...` paths: its SHA256, written
/// in hex in byte order (as `esplora-client` writes it).
pub fn script_hash(script: &Script) -> sha256::Hash {
    sha256::Hash::hash(script.as_bytes())
}

impl TestChain {
    /// Starts a chain at the regtest genesis block (height 0) and its server on a free port of
    /// `127.0.0.1`.
    pub fn start() -> io::Result<TestChain> {
        Self::start_on(0)
    }

    /// Starts a chain whose server listens on `port` of `127.0.0.1` (0 for any free port).
    pub fn start_on(port: u16) -> io::Result<TestChain> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let address = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::new()));
        let shutdown = Arc::new(AtomicBool::new(false));
        let thread = thread::Builder::new().name("test-chain-esplora".to_owned()).spawn({
            let state = Arc::clone(&state);
            let shutdown = Arc::clone(&shutdown);
            move || http::serve(listener, &state, &shutdown)
        })?;
        Ok(TestChain { state, server: Arc::new(Server { address, shutdown, thread: Some(thread) }) })
    }

    /// The base URL to give `esplora_client::Builder::new`, such as `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.address)
    }

    /// The height of the tip (0 at the start).
    pub fn height(&self) -> u32 {
        self.lock().tip_height()
    }

    /// Mines `blocks` blocks paying their rewards to `reward_to`. The first one confirms the whole
    /// mempool. Returns the new blocks' hashes, oldest first.
    pub fn mine(&self, blocks: u32, reward_to: &ScriptBuf) -> Vec<BlockHash> {
        let mut state = self.lock();
        let mut hashes = Vec::new();
        for _ in 0..blocks {
            let mempool: Vec<(Transaction, u64)> = state
                .mempool
                .iter()
                .filter_map(|txid| state.txs.get(txid))
                .map(|entry| (entry.tx.clone(), entry.fee))
                .collect();
            hashes.push(state.mine_block(mempool, reward_to));
        }
        hashes
    }

    /// Mines one block with exactly `txs` (in order, after the coinbase), checked against the chain
    /// alone, never the mempool. Mempool transactions that conflict with them are evicted, and so
    /// are their descendants: this is how a double spend is made to win.
    pub fn mine_with(&self, txs: Vec<Transaction>, reward_to: &ScriptBuf) -> Result<BlockHash, ChainError> {
        let mut state = self.lock();
        let height = state.tip_height() + 1;
        let mut batch = Batch::default();
        let mut included = Vec::with_capacity(txs.len());
        for tx in txs {
            let fee = state.check_tx(&tx, height, Pool::ChainOnly, &batch)?;
            let txid = tx.compute_txid();
            batch.spent.extend(tx.input.iter().map(|input| input.previous_output));
            for (vout, output) in (0u32..).zip(&tx.output) {
                batch.created.insert(OutPoint::new(txid, vout), output.clone());
            }
            included.push((tx, fee));
        }
        let mut conflicts = Vec::new();
        for (tx, _) in &included {
            let txid = tx.compute_txid();
            for input in &tx.input {
                if let Some(spend) = state.spends.get(&input.previous_output)
                    && spend.txid != txid
                {
                    conflicts.push(spend.txid);
                }
            }
        }
        state.evict(conflicts);
        Ok(state.mine_block(included, reward_to))
    }

    /// Offers `tx` to the mempool with the same checks as `POST /tx`. A transaction the chain
    /// already knows is accepted again without change.
    pub fn broadcast(&self, tx: &Transaction) -> Result<Txid, ChainError> {
        self.lock().accept(tx)
    }

    /// The mempool's transactions, oldest first.
    pub fn mempool(&self) -> Vec<Txid> {
        self.lock().mempool.clone()
    }

    /// Where `txid` stands: `None` if unknown (or evicted), `Some(None)` in the mempool,
    /// `Some(Some(height))` confirmed at `height`.
    pub fn tx_status(&self, txid: Txid) -> Option<Option<u32>> {
        self.lock().txs.get(&txid).map(|entry| entry.place.map(|place| place.height))
    }

    /// Makes the server lie (for tests of the wallet's checks): while `on`, `/block/{hash}/header`
    /// answers a header with the right merkle root but another nonce, so it is not the block the
    /// hash names and its proof of work is not the block's.
    pub fn forge_headers(&self, on: bool) {
        self.lock().forge_headers = on;
    }

    /// Makes the server fail (for tests of the wallet's error handling): while set, every request
    /// whose path contains `part` is answered with a 502 error (one the client does not retry).
    pub fn fail_requests(&self, part: Option<&str>) {
        self.lock().fail_paths = part.map(str::to_owned);
    }

    /// How many requests the server has answered (or refused) so far.
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

impl fmt::Debug for TestChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestChain").field("url", &self.url()).field("height", &self.height()).finish()
    }
}

/// The accept loop's thread, stopped and joined when the last chain handle goes.
struct Server {
    address: SocketAddr,
    shutdown: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        // Wakes the blocked `accept` so that the loop sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The whole chain: blocks, every known transaction, who spends what, the mempool and each
/// script's history.
struct State {
    /// The blocks by height; never empty (genesis is at 0).
    blocks: Vec<Block>,
    heights: HashMap<BlockHash, u32>,
    /// Confirmed and mempool transactions; evicted ones are forgotten.
    txs: HashMap<Txid, TxEntry>,
    /// The transaction (confirmed or in the mempool) spending each spent output.
    spends: HashMap<OutPoint, Spend>,
    /// Mempool transactions, oldest first (parents always before children).
    mempool: Vec<Txid>,
    /// For each script hash, the transactions paying to or spending from it.
    history: HashMap<sha256::Hash, HashSet<Txid>>,
    next_seq: u64,
    secp: Secp256k1<VerifyOnly>,
    /// Serve forged block headers (see [`TestChain::forge_headers`]).
    forge_headers: bool,
    /// Answer 502 to requests whose path contains this (see [`TestChain::fail_requests`]).
    fail_paths: Option<String>,
    /// Requests answered so far.
    requests: u64,
}

struct TxEntry {
    tx: Transaction,
    place: Option<Place>,
    fee: u64,
    /// Arrival order, to list mempool transactions newest first.
    seq: u64,
}

#[derive(Clone, Copy)]
struct Place {
    height: u32,
    index: usize,
}

#[derive(Clone, Copy)]
struct Spend {
    txid: Txid,
    vin: usize,
}

/// Where spent outputs may come from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pool {
    /// Confirmed outputs and mempool outputs; spends by mempool transactions conflict.
    Mempool,
    /// Confirmed outputs only; spends by mempool transactions are ignored (they will be evicted).
    ChainOnly,
}

/// The transactions already checked for the block being built by [`TestChain::mine_with`].
#[derive(Default)]
struct Batch {
    created: HashMap<OutPoint, TxOut>,
    spent: HashSet<OutPoint>,
}

impl State {
    fn new() -> State {
        let genesis = genesis_block(Network::Regtest);
        let mut state = State {
            blocks: Vec::new(),
            heights: HashMap::new(),
            txs: HashMap::new(),
            spends: HashMap::new(),
            mempool: Vec::new(),
            history: HashMap::new(),
            next_seq: 0,
            secp: Secp256k1::verification_only(),
            forge_headers: false,
            fail_paths: None,
            requests: 0,
        };
        state.connect(genesis, &HashMap::new());
        state
    }

    fn tip_height(&self) -> u32 {
        u32::try_from(self.blocks.len().saturating_sub(1)).unwrap_or(u32::MAX)
    }

    /// Checks `tx` for inclusion in a block at `spend_height` and returns its fee in satoshis.
    fn check_tx(&self, tx: &Transaction, spend_height: u32, pool: Pool, batch: &Batch) -> Result<u64, ChainError> {
        let txid = tx.compute_txid();
        if tx.is_coinbase() {
            return Err(ChainError::Coinbase { txid });
        }
        if tx.input.is_empty() || tx.output.is_empty() {
            return Err(ChainError::Empty { txid });
        }
        let mut seen = HashSet::new();
        if let Some(input) = tx.input.iter().find(|input| !seen.insert(input.previous_output)) {
            return Err(ChainError::DuplicateInput { outpoint: input.previous_output });
        }
        let prevouts = tx
            .input
            .iter()
            .enumerate()
            .map(|(index, input)| self.coin(index, input.previous_output, spend_height, pool, batch))
            .collect::<Result<Vec<TxOut>, ChainError>>()?;
        let inputs = prevouts.iter().fold(0u64, |sum, out| sum.saturating_add(out.value.to_sat()));
        let outputs = tx.output.iter().fold(0u64, |sum, out| sum.saturating_add(out.value.to_sat()));
        if outputs > inputs {
            return Err(ChainError::OutputsExceedInputs {
                inputs: Amount::from_sat(inputs),
                outputs: Amount::from_sat(outputs),
            });
        }
        let mut cache = SighashCache::new(tx);
        for (index, prevout) in prevouts.iter().enumerate() {
            self.verify_input(tx, &mut cache, index, prevout)?;
        }
        Ok(inputs - outputs)
    }

    /// The output that input `input` spends, if it may be spent in a block at `spend_height`.
    fn coin(
        &self,
        input: usize,
        outpoint: OutPoint,
        spend_height: u32,
        pool: Pool,
        batch: &Batch,
    ) -> Result<TxOut, ChainError> {
        let missing = || ChainError::MissingOrSpent { input, outpoint };
        if batch.spent.contains(&outpoint) {
            return Err(missing());
        }
        if let Some(output) = batch.created.get(&outpoint) {
            return Ok(output.clone());
        }
        let entry = self.txs.get(&outpoint.txid).ok_or_else(missing)?;
        let output =
            usize::try_from(outpoint.vout).ok().and_then(|vout| entry.tx.output.get(vout)).ok_or_else(missing)?;
        if let Some(spend) = self.spends.get(&outpoint) {
            let confirmed = self.txs.get(&spend.txid).is_some_and(|spender| spender.place.is_some());
            if confirmed {
                return Err(missing());
            }
            if pool == Pool::Mempool {
                return Err(ChainError::MempoolConflict { input, outpoint, spent_by: spend.txid });
            }
        }
        match entry.place {
            None if pool == Pool::ChainOnly => return Err(missing()),
            // The genesis coinbase is not spendable, as in bitcoind.
            Some(place) if place.height == 0 => return Err(missing()),
            Some(place) if entry.tx.is_coinbase() => {
                let confirmations = spend_height.saturating_sub(place.height);
                if confirmations < COINBASE_MATURITY {
                    return Err(ChainError::PrematureCoinbaseSpend { input, outpoint, confirmations });
                }
            }
            _ => {}
        }
        Ok(output.clone())
    }

    /// Verifies that input `index` may spend `prevout`: fully for P2WPKH and for P2WSH 2-of-2
    /// multisig (a Lightning channel's funding output); for other P2WSH scripts (a channel's
    /// commitment outputs: to_local, HTLCs, anchors) only that the witness carries the script
    /// the output commits to, since the test chain runs no script interpreter.
    fn verify_input(
        &self,
        tx: &Transaction,
        cache: &mut SighashCache<&Transaction>,
        index: usize,
        prevout: &TxOut,
    ) -> Result<(), ChainError> {
        if prevout.script_pubkey.is_p2wsh() {
            return self.verify_p2wsh(tx, cache, index, prevout);
        }
        self.verify_p2wpkh(tx, cache, index, prevout)
    }

    /// Verifies a P2WSH spend: the witness's last item is the script the output commits to and,
    /// where that script is `2 <key> <key> 2 CHECKMULTISIG`, both signatures verify in order.
    fn verify_p2wsh(
        &self,
        tx: &Transaction,
        cache: &mut SighashCache<&Transaction>,
        index: usize,
        prevout: &TxOut,
    ) -> Result<(), ChainError> {
        let bad = |reason: String| ChainError::BadSignature { input: index, reason };
        let input = witness_input(tx, index, "P2WSH")?;
        let script = input.witness.last().ok_or_else(|| bad("the witness is empty".to_owned()))?;
        let script = ScriptBuf::from_bytes(script.to_vec());
        if ScriptBuf::new_p2wsh(&script.wscript_hash()) != prevout.script_pubkey {
            return Err(bad("the witness script does not hash to the spent output's script hash".to_owned()));
        }
        let Some(keys) = two_of_two(&script) else {
            return Ok(());
        };
        // [empty (CHECKMULTISIG's extra pop), first signature, second signature, script]
        let (Some(dummy), Some(first), Some(second), 4) =
            (input.witness.nth(0), input.witness.nth(1), input.witness.nth(2), input.witness.len())
        else {
            return Err(bad(format!("a 2-of-2 witness has 4 items, not {}", input.witness.len())));
        };
        if !dummy.is_empty() {
            return Err(bad("CHECKMULTISIG's dummy item must be empty".to_owned()));
        }
        for (signature, key) in [(first, keys.0), (second, keys.1)] {
            let signature = ecdsa::Signature::from_slice(signature)
                .map_err(|error| bad(format!("unreadable signature: {error}")))?;
            let sighash = cache
                .p2wsh_signature_hash(index, &script, prevout.value, signature.sighash_type)
                .map_err(|error| bad(format!("cannot compute the signature hash: {error}")))?;
            self.secp
                .verify_ecdsa(&Message::from(sighash), &signature.signature, &key.0)
                .map_err(|error| bad(format!("a 2-of-2 signature does not verify: {error}")))?;
        }
        Ok(())
    }

    /// Verifies that input `index` is a valid P2WPKH spend of `prevout`.
    fn verify_p2wpkh(
        &self,
        tx: &Transaction,
        cache: &mut SighashCache<&Transaction>,
        index: usize,
        prevout: &TxOut,
    ) -> Result<(), ChainError> {
        let bad = |reason: String| ChainError::BadSignature { input: index, reason };
        if !prevout.script_pubkey.is_p2wpkh() {
            return Err(ChainError::UncheckedScript { input: index });
        }
        let input = witness_input(tx, index, "P2WPKH")?;
        let (Some(signature), Some(public_key), None) =
            (input.witness.nth(0), input.witness.nth(1), input.witness.nth(2))
        else {
            return Err(bad(format!("the witness must be [signature, public key], not {} items", input.witness.len())));
        };
        let signature =
            ecdsa::Signature::from_slice(signature).map_err(|error| bad(format!("unreadable signature: {error}")))?;
        let public_key = CompressedPublicKey::from_slice(public_key)
            .map_err(|error| bad(format!("unreadable compressed public key: {error}")))?;
        if ScriptBuf::new_p2wpkh(&public_key.wpubkey_hash()) != prevout.script_pubkey {
            return Err(bad("the public key does not hash to the spent output's key hash".to_owned()));
        }
        let sighash = cache
            .p2wpkh_signature_hash(index, &prevout.script_pubkey, prevout.value, signature.sighash_type)
            .map_err(|error| bad(format!("cannot compute the signature hash: {error}")))?;
        self.secp
            .verify_ecdsa(&Message::from(sighash), &signature.signature, &public_key.0)
            .map_err(|error| bad(format!("the signature does not verify: {error}")))
    }

    /// Adds `tx` to the mempool if it passes the checks.
    fn accept(&mut self, tx: &Transaction) -> Result<Txid, ChainError> {
        let txid = tx.compute_txid();
        if self.txs.contains_key(&txid) && !tx.is_coinbase() {
            return Ok(txid);
        }
        let fee = self.check_tx(tx, self.tip_height() + 1, Pool::Mempool, &Batch::default())?;
        self.index(tx.clone(), fee, None);
        self.mempool.push(txid);
        Ok(txid)
    }

    /// Records a new transaction: its entry, the outputs it spends and its scripts' histories.
    fn index(&mut self, tx: Transaction, fee: u64, place: Option<Place>) {
        let txid = tx.compute_txid();
        if !tx.is_coinbase() {
            for (vin, input) in tx.input.iter().enumerate() {
                self.spends.insert(input.previous_output, Spend { txid, vin });
            }
        }
        for hash in self.touched_scripts(&tx) {
            self.history.entry(hash).or_default().insert(txid);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.txs.insert(txid, TxEntry { tx, place, fee, seq });
    }

    /// The hashes of the scripts `tx` pays to or spends from.
    fn touched_scripts(&self, tx: &Transaction) -> HashSet<sha256::Hash> {
        let spent =
            tx.input.iter().filter(|_| !tx.is_coinbase()).filter_map(|input| self.output(input.previous_output));
        tx.output.iter().chain(spent).map(|output| script_hash(&output.script_pubkey)).collect()
    }

    fn output(&self, outpoint: OutPoint) -> Option<&TxOut> {
        let entry = self.txs.get(&outpoint.txid)?;
        entry.tx.output.get(usize::try_from(outpoint.vout).ok()?)
    }

    /// Removes mempool transactions `roots` and everything that spends their outputs.
    fn evict(&mut self, roots: Vec<Txid>) {
        let mut stack = roots;
        let mut doomed = Vec::new();
        let mut seen = HashSet::new();
        while let Some(txid) = stack.pop() {
            let Some(entry) = self.txs.get(&txid).filter(|entry| entry.place.is_none()) else { continue };
            if !seen.insert(txid) {
                continue;
            }
            for (vout, _) in (0u32..).zip(&entry.tx.output) {
                stack.extend(self.spends.get(&OutPoint::new(txid, vout)).map(|spend| spend.txid));
            }
            doomed.push(txid);
        }
        // Histories first, while the parents whose outputs they spend are still known.
        for txid in &doomed {
            let Some(entry) = self.txs.get(txid) else { continue };
            for hash in self.touched_scripts(&entry.tx) {
                if let Some(txids) = self.history.get_mut(&hash) {
                    txids.remove(txid);
                }
            }
        }
        for txid in &doomed {
            if let Some(entry) = self.txs.remove(txid) {
                for input in &entry.tx.input {
                    if self.spends.get(&input.previous_output).is_some_and(|spend| spend.txid == *txid) {
                        self.spends.remove(&input.previous_output);
                    }
                }
            }
        }
        self.mempool.retain(|txid| !seen.contains(txid));
    }

    /// Builds, mines and connects a block with a coinbase to `reward_to` followed by `txs` (with
    /// their fees); returns its hash.
    fn mine_block(&mut self, txs: Vec<(Transaction, u64)>, reward_to: &ScriptBuf) -> BlockHash {
        let height = self.tip_height() + 1;
        let previous = self.blocks.last().map_or_else(|| genesis_block(Network::Regtest).header, |block| block.header);
        let fees: u64 = txs.iter().map(|(_, fee)| fee).sum();
        let subsidy = INITIAL_SUBSIDY_SAT.checked_shr(height / HALVING_INTERVAL).unwrap_or(0);
        let coinbase = Transaction {
            version: TxVersion::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                // BIP34: the height first, as bitcoind writes it, then a zero so the script is
                // always at least two bytes long.
                script_sig: Builder::new().push_int(i64::from(height)).push_opcode(OP_0).into_script(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut { value: Amount::from_sat(subsidy + fees), script_pubkey: reward_to.clone() }],
        };
        let has_witness = txs.iter().any(|(tx, _)| tx.input.iter().any(|input| !input.witness.is_empty()));
        let mut fees_by_txid: HashMap<Txid, u64> = HashMap::new();
        let mut txdata = vec![coinbase];
        for (tx, fee) in txs {
            fees_by_txid.insert(tx.compute_txid(), fee);
            txdata.push(tx);
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
        let mut block = Block {
            header: Header {
                version: BlockVersion::from_consensus(0x2000_0000),
                prev_blockhash: previous.block_hash(),
                merkle_root: TxMerkleNode::all_zeros(),
                time: previous.time.saturating_add(1).max(u32::try_from(now).unwrap_or(u32::MAX)),
                bits: CompactTarget::from_consensus(REGTEST_BITS),
                nonce: 0,
            },
            txdata,
        };
        if has_witness {
            // BIP141: the coinbase commits to the witness merkle root (which skips the coinbase
            // itself) with a reserved value of zeros in its witness.
            if let Some(witness_root) = block.witness_root() {
                let reserved = [0u8; 32];
                let commitment = Block::compute_witness_commitment(&witness_root, &reserved);
                let mut script = vec![0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
                script.extend_from_slice(commitment.as_byte_array());
                if let Some(coinbase) = block.txdata.first_mut() {
                    coinbase.output.push(TxOut { value: Amount::ZERO, script_pubkey: ScriptBuf::from_bytes(script) });
                    if let Some(input) = coinbase.input.first_mut() {
                        input.witness = Witness::from_slice(&[reserved]);
                    }
                }
            }
        }
        block.header.merkle_root = block.compute_merkle_root().unwrap_or_else(TxMerkleNode::all_zeros);
        // Real proof of work; at regtest difficulty about every other nonce will do.
        while block.header.validate_pow(block.header.target()).is_err() {
            block.header.nonce = block.header.nonce.wrapping_add(1);
            if block.header.nonce == 0 {
                block.header.time = block.header.time.saturating_add(1);
            }
        }
        self.connect(block, &fees_by_txid)
    }

    /// Appends `block` to the chain, confirming its transactions.
    fn connect(&mut self, block: Block, fees: &HashMap<Txid, u64>) -> BlockHash {
        let height = u32::try_from(self.blocks.len()).unwrap_or(u32::MAX);
        let hash = block.block_hash();
        for (index, tx) in block.txdata.iter().enumerate() {
            let txid = tx.compute_txid();
            let place = Some(Place { height, index });
            match self.txs.get_mut(&txid) {
                Some(entry) => {
                    entry.place = place;
                    entry.tx = tx.clone();
                }
                None => self.index(tx.clone(), fees.get(&txid).copied().unwrap_or(0), place),
            }
        }
        let confirmed: HashSet<Txid> = block.txdata.iter().map(Transaction::compute_txid).collect();
        self.mempool.retain(|txid| !confirmed.contains(txid));
        self.heights.insert(hash, height);
        self.blocks.push(block);
        hash
    }

    /// Median time past: the median timestamp of the 11 blocks ending at `height`.
    fn median_time(&self, height: usize) -> u32 {
        let mut times: Vec<u32> =
            self.blocks[height.saturating_sub(10)..=height].iter().map(|block| block.header.time).collect();
        times.sort_unstable();
        times[times.len() / 2]
    }

    fn status_json(&self, place: Option<Place>) -> Value {
        match place.and_then(|place| Some((place, self.blocks.get(usize::try_from(place.height).ok()?)?))) {
            Some((place, block)) => json!({
                "confirmed": true,
                "block_height": place.height,
                "block_hash": block.block_hash().to_string(),
                "block_time": block.header.time,
            }),
            None => json!({ "confirmed": false }),
        }
    }

    fn tx_json(&self, txid: Txid, entry: &TxEntry) -> Value {
        let tx = &entry.tx;
        let vin: Vec<Value> = tx
            .input
            .iter()
            .map(|input| {
                let prevout = match self.output(input.previous_output).filter(|_| !tx.is_coinbase()) {
                    Some(output) => json!({
                        "scriptpubkey": output.script_pubkey.as_bytes().to_lower_hex_string(),
                        "value": output.value.to_sat(),
                    }),
                    None => Value::Null,
                };
                json!({
                    "txid": input.previous_output.txid.to_string(),
                    "vout": input.previous_output.vout,
                    "prevout": prevout,
                    "scriptsig": input.script_sig.as_bytes().to_lower_hex_string(),
                    "witness": input.witness.iter().map(|item| item.to_lower_hex_string()).collect::<Vec<_>>(),
                    "sequence": input.sequence.0,
                    "is_coinbase": tx.is_coinbase(),
                })
            })
            .collect();
        let vout: Vec<Value> = tx
            .output
            .iter()
            .map(|output| {
                json!({
                    "scriptpubkey": output.script_pubkey.as_bytes().to_lower_hex_string(),
                    "value": output.value.to_sat(),
                })
            })
            .collect();
        json!({
            "txid": txid.to_string(),
            "version": tx.version.0,
            "locktime": tx.lock_time.to_consensus_u32(),
            "vin": vin,
            "vout": vout,
            "size": tx.total_size(),
            "weight": tx.weight().to_wu(),
            "fee": entry.fee,
            "status": self.status_json(entry.place),
        })
    }

    fn block_json(&self, height: usize) -> Value {
        let Some(block) = self.blocks.get(height) else { return Value::Null };
        let header = &block.header;
        json!({
            "id": block.block_hash().to_string(),
            "height": height,
            "version": header.version.to_consensus(),
            "timestamp": header.time,
            "tx_count": block.txdata.len(),
            "size": block.total_size(),
            "weight": block.weight().to_wu(),
            "merkle_root": header.merkle_root.to_string(),
            "previousblockhash": if height == 0 { Value::Null } else { json!(header.prev_blockhash.to_string()) },
            "mediantime": self.median_time(height),
            "nonce": header.nonce,
            "bits": header.bits.to_consensus(),
            "difficulty": header.target().difficulty_float(),
        })
    }

    fn outspend_json(&self, outpoint: OutPoint) -> Value {
        match self.spends.get(&outpoint).and_then(|spend| Some((spend, self.txs.get(&spend.txid)?))) {
            Some((spend, spender)) => json!({
                "spent": true,
                "txid": spend.txid.to_string(),
                "vin": spend.vin,
                "status": self.status_json(spender.place),
            }),
            None => json!({ "spent": false }),
        }
    }

    /// A script's history as Esplora orders it: mempool transactions newest first, and confirmed
    /// ones newest first.
    fn script_history(&self, hash: &sha256::Hash) -> (Vec<(Txid, &TxEntry)>, Vec<(Txid, &TxEntry)>) {
        let entries =
            self.history.get(hash).into_iter().flatten().filter_map(|txid| Some((*txid, self.txs.get(txid)?)));
        let (mut confirmed, mut mempool): (Vec<_>, Vec<_>) = entries.partition(|(_, entry)| entry.place.is_some());
        mempool.sort_by_key(|(_, entry)| std::cmp::Reverse(entry.seq));
        confirmed.sort_by_key(|(_, entry)| std::cmp::Reverse(entry.place.map(|place| (place.height, place.index))));
        (mempool, confirmed)
    }
}

/// Locks the state; a poisoned lock is still used (the state is only changed by code that does
/// not panic).
/// Input `index` of `tx`, which spends a witness program of `kind` and so has an empty
/// script_sig.
fn witness_input<'a>(tx: &'a Transaction, index: usize, kind: &str) -> Result<&'a TxIn, ChainError> {
    let bad = |reason: String| ChainError::BadSignature { input: index, reason };
    let input = tx.input.get(index).ok_or_else(|| bad("no such input".to_owned()))?;
    if !input.script_sig.is_empty() {
        return Err(bad(format!("a {kind} spend must have an empty script_sig")));
    }
    Ok(input)
}

/// The two keys of a `2 <key> <key> 2 CHECKMULTISIG` script, if it is one.
fn two_of_two(script: &Script) -> Option<(CompressedPublicKey, CompressedPublicKey)> {
    use bdk_wallet::bitcoin::opcodes::all::{OP_CHECKMULTISIG, OP_PUSHNUM_2};
    use bdk_wallet::bitcoin::script::Instruction;
    let instructions: Vec<Instruction<'_>> = script.instructions().collect::<Result<_, _>>().ok()?;
    let [
        Instruction::Op(m),
        Instruction::PushBytes(first),
        Instruction::PushBytes(second),
        Instruction::Op(n),
        Instruction::Op(check),
    ] = instructions.as_slice()
    else {
        return None;
    };
    if *m != OP_PUSHNUM_2 || *n != OP_PUSHNUM_2 || *check != OP_CHECKMULTISIG {
        return None;
    }
    Some((
        CompressedPublicKey::from_slice(first.as_bytes()).ok()?,
        CompressedPublicKey::from_slice(second.as_bytes()).ok()?,
    ))
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn hash_pair(left: sha256d::Hash, right: sha256d::Hash) -> sha256d::Hash {
    let mut engine = sha256d::Hash::engine();
    engine.input(left.as_byte_array());
    engine.input(right.as_byte_array());
    sha256d::Hash::from_engine(engine)
}

/// The electrum-style merkle branch of the transaction at `pos` among `txids`.
fn merkle_branch(txids: &[Txid], pos: usize) -> Vec<Txid> {
    let mut level: Vec<sha256d::Hash> = txids.iter().map(|txid| txid.to_raw_hash()).collect();
    let mut index = pos;
    let mut branch = Vec::new();
    while level.len() > 1 {
        // A lone last hash is paired with itself.
        if let Some(sibling) = level.get(index ^ 1).or_else(|| level.get(index)) {
            branch.push(Txid::from_raw_hash(*sibling));
        }
        level = level.chunks(2).map(|pair| hash_pair(pair[0], *pair.last().unwrap_or(&pair[0]))).collect();
        index /= 2;
    }
    branch
}
