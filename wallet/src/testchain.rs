//! An in-process regtest chain served over Esplora's HTTP API on loopback, for tests only.
//!
//! [`TestChain::start`] begins at the regtest genesis block and serves the chain on
//! `127.0.0.1` so that the wallet's real Esplora code path (`bdk_esplora` over
//! `esplora-client`'s blocking `minreq` client) can be exercised without a network. Blocks carry
//! real proof of work at regtest difficulty, real coinbases (BIP34 height, subsidy plus fees, a
//! witness commitment when needed) and real merkle roots; transactions are real ones made by bdk
//! wallets, accepted into a mempool only when their inputs exist, are unspent and mature, their
//! values add up and their P2WPKH signatures verify.
//!
//! The HTTP server is deliberately small: one thread per connection, HTTP/1.1 parsed by hand,
//! one request per connection, every answer with `Content-Length` and `Connection: close`. It
//! stops when the last handle to the chain is dropped.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bdk_wallet::bitcoin::block::{Header, Version as BlockVersion};
use bdk_wallet::bitcoin::consensus::{deserialize, serialize};
use bdk_wallet::bitcoin::constants::genesis_block;
use bdk_wallet::bitcoin::hashes::{Hash, HashEngine, sha256, sha256d};
use bdk_wallet::bitcoin::hex::{DisplayHex, FromHex};
use bdk_wallet::bitcoin::opcodes::OP_0;
use bdk_wallet::bitcoin::script::Builder;
use bdk_wallet::bitcoin::secp256k1::{Message, Secp256k1, VerifyOnly};
use bdk_wallet::bitcoin::sighash::SighashCache;
use bdk_wallet::bitcoin::transaction::Version as TxVersion;
use bdk_wallet::bitcoin::{
    Amount, Block, BlockHash, CompactTarget, CompressedPublicKey, MerkleBlock, Network, OutPoint, Script, ScriptBuf,
    Sequence, Transaction, TxIn, TxMerkleNode, TxOut, Txid, Witness, absolute, ecdsa,
};
use serde_json::{Value, json};

/// The `bits` of every regtest block: the easiest target there is.
const REGTEST_BITS: u32 = 0x207f_ffff;
/// How many blocks must build on a coinbase (counting its own) before it may be spent.
const COINBASE_MATURITY: u32 = 100;
/// Regtest halves the block subsidy every 150 blocks.
const HALVING_INTERVAL: u32 = 150;
/// The first block subsidy: 50 BTC.
const INITIAL_SUBSIDY_SAT: u64 = 50 * 100_000_000;
/// The largest request body the server reads.
const MAX_BODY_BYTES: usize = 1_000_000;
/// The largest request line plus headers the server reads.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long a connection may sit idle before the server gives up on it.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Esplora pages confirmed history 25 transactions at a time.
const CHAIN_PAGE: usize = 25;
/// Esplora lists at most 50 mempool transactions for a script.
const MEMPOOL_PAGE: usize = 50;
/// Esplora's `/blocks` lists 10 blocks.
const BLOCKS_PAGE: usize = 10;

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
    #[error("input {input} does not spend a P2WPKH output: only P2WPKH spends are checked by the test chain")]
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
            move || serve(listener, &state, &shutdown)
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
            self.verify_p2wpkh(tx, &mut cache, index, prevout)?;
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
        let input = tx.input.get(index).ok_or_else(|| bad("no such input".to_owned()))?;
        if !input.script_sig.is_empty() {
            return Err(bad("a P2WPKH spend must have an empty script_sig".to_owned()));
        }
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

/// The accept loop: one thread per connection until the chain is dropped.
fn serve(listener: TcpListener, state: &Arc<Mutex<State>>, shutdown: &AtomicBool) {
    for stream in listener.incoming() {
        if shutdown.load(Ordering::SeqCst) {
            break;
        }
        match stream {
            Ok(stream) => {
                let state = Arc::clone(state);
                // If no thread can be had, the stream is dropped and the client sees it closed.
                let _ = thread::Builder::new()
                    .name("test-chain-http".to_owned())
                    .spawn(move || handle_connection(stream, &state));
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// An HTTP request as far as the server cares.
struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

/// An HTTP response: status, content type and body.
struct Response {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Response {
    fn text(status: u16, text: impl Into<String>) -> Response {
        Response { status, content_type: "text/plain", body: text.into().into_bytes() }
    }

    fn json(value: &Value) -> Response {
        Response { status: 200, content_type: "application/json", body: value.to_string().into_bytes() }
    }

    fn bytes(body: Vec<u8>) -> Response {
        Response { status: 200, content_type: "application/octet-stream", body }
    }

    fn not_found(what: &str) -> Response {
        Response::text(404, format!("{what} not found"))
    }
}

fn handle_connection(mut stream: TcpStream, state: &Mutex<State>) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let response = match read_request(&mut stream) {
        Ok(request) => route(&request, state),
        Err(message) => Response::text(400, message),
    };
    let reason = match response.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    if stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(&response.body))
        .and_then(|()| stream.flush())
        .is_err()
    {
        return;
    }
    // Half-close, then let the client finish: closing with unread bytes would reset the
    // connection and could lose the response.
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = io::copy(&mut (&mut stream).take(MAX_BODY_BYTES as u64), &mut io::sink());
}

/// Reads one request: request line, headers and a `Content-Length` body. The error is the
/// message for a 400 answer.
fn read_request(stream: &mut TcpStream) -> Result<Request, String> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break end;
        }
        if buffer.len() > MAX_HEAD_BYTES {
            return Err(format!("the request line and headers are over the {MAX_HEAD_BYTES}-byte limit"));
        }
        let read = stream.read(&mut chunk).map_err(|error| format!("could not read the request: {error}"))?;
        if read == 0 {
            return Err("the connection closed before the request's headers ended".to_owned());
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = std::str::from_utf8(&buffer[..head_end]).map_err(|_| "the request headers are not UTF-8".to_owned())?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("malformed request line '{request_line}'"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(format!("unsupported protocol '{version}'; this server speaks HTTP/1.1"));
    }
    let method = method.to_owned();
    let path = target.split(['?', '#']).next().unwrap_or_default().to_owned();
    let mut content_length = 0;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("malformed header line '{line}'"));
        };
        if name.trim().eq_ignore_ascii_case("content-length") {
            content_length =
                value.trim().parse::<usize>().map_err(|_| format!("bad Content-Length '{}'", value.trim()))?;
        } else if name.trim().eq_ignore_ascii_case("transfer-encoding") {
            return Err("chunked request bodies are not supported; send a Content-Length".to_owned());
        }
    }
    if content_length > MAX_BODY_BYTES {
        return Err(format!("a request body of {content_length} bytes is over the {MAX_BODY_BYTES}-byte limit"));
    }
    let mut body = buffer.split_off(head_end + 4);
    while body.len() < content_length {
        let read = stream.read(&mut chunk).map_err(|error| format!("could not read the request body: {error}"))?;
        if read == 0 {
            return Err(format!("the connection closed after {} of {content_length} body bytes", body.len()));
        }
        body.extend_from_slice(&chunk[..read]);
    }
    body.truncate(content_length);
    Ok(Request { method, path, body })
}

fn route(request: &Request, state: &Mutex<State>) -> Response {
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    let mut state = lock(state);
    let result = match (request.method.as_str(), segments.as_slice()) {
        ("POST", ["tx"]) => Ok(post_tx(&mut state, &request.body)),
        ("GET", path) => get(&state, path),
        (method, _) => Err(Response::text(404, format!("no {method} endpoint at {}", request.path))),
    };
    result.unwrap_or_else(|response| response)
}

/// `POST /tx`: a transaction in hex into the mempool; answers its txid.
fn post_tx(state: &mut State, body: &[u8]) -> Response {
    let rpc_error = |code: i32, message: &str| {
        let error = json!({ "code": code, "message": message });
        Response::text(400, format!("sendrawtransaction RPC error: {error}"))
    };
    let decoded = std::str::from_utf8(body)
        .ok()
        .and_then(|text| Vec::<u8>::from_hex(text.trim()).ok())
        .and_then(|bytes| deserialize::<Transaction>(&bytes).ok());
    let Some(tx) = decoded else {
        return rpc_error(-22, "TX decode failed: the body must be a transaction in hex");
    };
    match state.accept(&tx) {
        Ok(txid) => Response::text(200, txid.to_string()),
        Err(error) => rpc_error(error.rpc_code(), &error.to_string()),
    }
}

fn get(state: &State, path: &[&str]) -> Result<Response, Response> {
    let tip = state.tip_height();
    Ok(match path {
        ["blocks", "tip", "height"] => Response::text(200, tip.to_string()),
        ["blocks", "tip", "hash"] => {
            Response::text(200, state.blocks.last().map(|block| block.block_hash().to_string()).unwrap_or_default())
        }
        ["block-height", height] => {
            let height = usize::try_from(parse::<u32>(height, "height")?).unwrap_or(usize::MAX);
            let block = state.blocks.get(height).ok_or_else(|| Response::not_found("Block"))?;
            Response::text(200, block.block_hash().to_string())
        }
        ["block", hash, rest @ ..] => {
            let hash = parse::<BlockHash>(hash, "block hash")?;
            let height = state.heights.get(&hash).copied().ok_or_else(|| Response::not_found("Block"))?;
            get_block(state, height, rest)?
        }
        ["blocks"] => recent_blocks(state, tip),
        ["blocks", height] => recent_blocks(state, parse::<u32>(height, "height")?.min(tip)),
        ["tx", txid, rest @ ..] => {
            let txid = parse::<Txid>(txid, "txid")?;
            let entry = state.txs.get(&txid).ok_or_else(|| Response::not_found("Transaction"))?;
            get_tx(state, txid, entry, rest)?
        }
        ["scripthash", hash, rest @ ..] => {
            if hash.len() != 64 {
                return Err(Response::text(400, format!("invalid script hash '{hash}': expected 64 hex digits")));
            }
            get_script_hash(state, &parse::<sha256::Hash>(hash, "script hash")?, rest)?
        }
        ["mempool", "txids"] => Response::json(&json!(state.mempool.iter().map(Txid::to_string).collect::<Vec<_>>())),
        ["fee-estimates"] => Response::json(&json!({ "1": 2.0, "6": 1.0, "144": 1.0 })),
        _ => return Err(Response::text(404, "no such endpoint")),
    })
}

/// Parses a path segment, answering 400 if it does not parse.
fn parse<T: FromStr>(text: &str, what: &str) -> Result<T, Response> {
    text.parse().map_err(|_| Response::text(400, format!("invalid {what} '{text}'")))
}

/// `/blocks[/{height}]`: the 10 blocks at and below `height`, newest first.
fn recent_blocks(state: &State, height: u32) -> Response {
    let top = usize::try_from(height).unwrap_or(usize::MAX).min(state.blocks.len().saturating_sub(1));
    let blocks: Vec<Value> = (0..=top).rev().take(BLOCKS_PAGE).map(|height| state.block_json(height)).collect();
    Response::json(&json!(blocks))
}

/// `/block/{hash}/...` for the block at `height`.
fn get_block(state: &State, height: u32, rest: &[&str]) -> Result<Response, Response> {
    let index = usize::try_from(height).unwrap_or(usize::MAX);
    let block = state.blocks.get(index).ok_or_else(|| Response::not_found("Block"))?;
    let txids = || block.txdata.iter().map(Transaction::compute_txid);
    Ok(match rest {
        [] => Response::json(&state.block_json(index)),
        ["header"] => Response::text(200, serialize(&block.header).to_lower_hex_string()),
        ["raw"] => Response::bytes(serialize(block)),
        ["status"] => Response::json(&json!({
            "in_best_chain": true,
            "height": height,
            "next_best": state.blocks.get(index + 1).map(|next| next.block_hash().to_string()),
        })),
        ["txids"] => Response::json(&json!(txids().map(|txid| txid.to_string()).collect::<Vec<_>>())),
        ["txid", position] => {
            let txid =
                txids().nth(parse::<usize>(position, "index")?).ok_or_else(|| Response::not_found("Transaction"))?;
            Response::text(200, txid.to_string())
        }
        _ => return Err(Response::text(404, "no such block endpoint")),
    })
}

/// `/tx/{txid}/...` for a known transaction.
fn get_tx(state: &State, txid: Txid, entry: &TxEntry, rest: &[&str]) -> Result<Response, Response> {
    let confirmed = || {
        entry
            .place
            .and_then(|place| Some((place, state.blocks.get(usize::try_from(place.height).ok()?)?)))
            .ok_or_else(|| Response::text(404, "Transaction not found or is unconfirmed"))
    };
    Ok(match rest {
        [] => Response::json(&state.tx_json(txid, entry)),
        ["raw"] => Response::bytes(serialize(&entry.tx)),
        ["hex"] => Response::text(200, serialize(&entry.tx).to_lower_hex_string()),
        ["status"] => Response::json(&state.status_json(entry.place)),
        ["merkle-proof"] => {
            let (place, block) = confirmed()?;
            let txids: Vec<Txid> = block.txdata.iter().map(Transaction::compute_txid).collect();
            let merkle: Vec<String> = merkle_branch(&txids, place.index).iter().map(Txid::to_string).collect();
            Response::json(&json!({ "block_height": place.height, "merkle": merkle, "pos": place.index }))
        }
        ["merkleblock-proof"] => {
            let (_, block) = confirmed()?;
            let proof = MerkleBlock::from_block_with_predicate(block, |candidate| *candidate == txid);
            Response::text(200, serialize(&proof).to_lower_hex_string())
        }
        ["outspend", vout] => {
            let vout = parse::<u32>(vout, "output index")?;
            if usize::try_from(vout).map_or(true, |vout| vout >= entry.tx.output.len()) {
                return Err(Response::not_found("Output"));
            }
            Response::json(&state.outspend_json(OutPoint::new(txid, vout)))
        }
        ["outspends"] => {
            let statuses: Vec<Value> = (0u32..)
                .zip(&entry.tx.output)
                .map(|(vout, _)| state.outspend_json(OutPoint::new(txid, vout)))
                .collect();
            Response::json(&json!(statuses))
        }
        _ => return Err(Response::text(404, "no such transaction endpoint")),
    })
}

/// `/scripthash/{hash}/...`.
fn get_script_hash(state: &State, hash: &sha256::Hash, rest: &[&str]) -> Result<Response, Response> {
    let (mempool, confirmed) = state.script_history(hash);
    let page = |txs: &[(Txid, &TxEntry)], count: usize| -> Vec<Value> {
        txs.iter().take(count).map(|(txid, entry)| state.tx_json(*txid, entry)).collect()
    };
    Ok(match rest {
        ["txs"] => {
            let mut txs = page(&mempool, MEMPOOL_PAGE);
            txs.extend(page(&confirmed, CHAIN_PAGE));
            Response::json(&json!(txs))
        }
        ["txs", "chain"] => Response::json(&json!(page(&confirmed, CHAIN_PAGE))),
        ["txs", "chain", last_seen] => {
            let last_seen = parse::<Txid>(last_seen, "txid")?;
            // As Esplora does: the page after `last_seen`, or nothing if it is not in the history.
            let after = confirmed.iter().position(|(txid, _)| *txid == last_seen).map_or(confirmed.len(), |at| at + 1);
            Response::json(&json!(page(&confirmed[after..], CHAIN_PAGE)))
        }
        ["txs", "mempool"] => Response::json(&json!(page(&mempool, MEMPOOL_PAGE))),
        ["utxo"] => {
            let utxos: Vec<Value> = mempool
                .iter()
                .chain(&confirmed)
                .flat_map(|(txid, entry)| {
                    (0u32..).zip(&entry.tx.output).filter_map(move |(vout, output)| {
                        let outpoint = OutPoint::new(*txid, vout);
                        let unspent =
                            script_hash(&output.script_pubkey) == *hash && !state.spends.contains_key(&outpoint);
                        unspent.then(|| {
                            json!({
                                "txid": txid.to_string(),
                                "vout": vout,
                                "status": state.status_json(entry.place),
                                "value": output.value.to_sat(),
                            })
                        })
                    })
                })
                .collect();
            Response::json(&json!(utxos))
        }
        _ => return Err(Response::text(404, "no such scripthash endpoint")),
    })
}
