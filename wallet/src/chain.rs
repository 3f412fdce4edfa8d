//! The chain source: an Esplora server, and what the wallet checks of its answers by itself.
//!
//! Checked here, for every confirmed payment the trade rule ranks: the transaction's outputs
//! against its txid (so the server cannot change what it pays), the block header the server
//! names (its hash is the block hash the server gave, the hash meets the header's own target, and
//! that target is no easier than the network's proof-of-work limit), and the merkle branch from
//! the transaction up to that header's merkle root (so the server cannot place a transaction in
//! a block it is not in). Still taken on the server's word: that the block is in the best chain
//! and its height (headers are not chained back to genesis here), the tip height, the mempool,
//! and the absence of transactions (a server can hide a payment it knows). On signet the
//! block's signet signature is not checked either.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Mutex, PoisonError};

use bdk_esplora::esplora_client::{self, BlockingClient};
use bdk_wallet::bitcoin::block::Header;
use bdk_wallet::bitcoin::hashes::Hash;
use bdk_wallet::bitcoin::params::Params;
use bdk_wallet::bitcoin::{BlockHash, Script, ScriptBuf, Transaction, TxMerkleNode, Txid};
use sanctuary_engine::trade::{self, PaymentSeen, TxId};

use crate::WalletNetwork;
use crate::account::WalletError;

/// Seconds before an Esplora request gives up.
const REQUEST_TIMEOUT_S: u64 = 20;
/// Esplora pages an address's confirmed history 25 transactions at a time.
const HISTORY_PAGE: usize = 25;
/// The most pages of one address's history read in one look (1,000 confirmed transactions, and
/// the up to 50 unconfirmed ones Esplora lists): an address with more is not decided.
pub const MAX_HISTORY_PAGES: usize = 40;
/// The most confirmed payments of at least the price checked in one look at an address (each
/// costs its payer the price, so an honest listing has one or two).
pub const MAX_CHECKED_PAYMENTS: usize = 20;
/// The longest merkle branch taken (a block of 2^32 transactions would need 32).
const MAX_MERKLE_DEPTH: usize = 64;
/// The most checked positions remembered (all are forgotten when it is full).
const MAX_REMEMBERED_POSITIONS: usize = 4096;

/// An Esplora server, for one network.
pub struct Chain {
    pub(crate) client: BlockingClient,
    url: String,
    network: WalletNetwork,
    /// Positions already checked, by transaction and block (a reorganisation changes the block,
    /// so the position is checked again).
    checked: Mutex<HashMap<(Txid, BlockHash), trade::ChainPosition>>,
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Chain({}, {})", self.url, self.network)
    }
}

pub(crate) fn chain_error(error: impl fmt::Display) -> WalletError {
    WalletError::Chain(error.to_string())
}

fn unproven(reason: impl Into<String>) -> WalletError {
    WalletError::Unproven(reason.into())
}

impl Chain {
    /// A client for the Esplora API at `url` (for instance `https://mempool.space/signet/api`)
    /// serving `network`'s chain.
    pub fn new(url: &str, network: WalletNetwork) -> Result<Chain, WalletError> {
        let url = url.trim().trim_end_matches('/');
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(WalletError::Chain(format!("'{url}' is not an http(s) URL")));
        }
        let client = esplora_client::Builder::new(url).timeout(REQUEST_TIMEOUT_S).build_blocking();
        Ok(Chain { client, url: url.to_owned(), network, checked: Mutex::new(HashMap::new()) })
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The network whose proof-of-work limit headers are checked against.
    pub fn network(&self) -> WalletNetwork {
        self.network
    }

    /// The height of the chain's tip.
    pub fn tip_height(&self) -> Result<u32, WalletError> {
        self.client.get_height().map_err(chain_error)
    }

    /// Fee rate estimates in sat/vB by confirmation target (blocks), lowest target first.
    pub fn fee_estimates(&self) -> Result<Vec<(u16, f64)>, WalletError> {
        let mut estimates: Vec<(u16, f64)> =
            self.client.get_fee_estimates().map_err(chain_error)?.into_iter().collect();
        estimates.sort_by_key(|(target, _)| *target);
        Ok(estimates)
    }

    /// What the chain says about one transaction as a payment to `pay_to`: how much it paid
    /// that script, the 32-byte `OP_RETURN` payloads it carries, and where it was confirmed
    /// (checked against the block's header, see the module's documentation). `None` if the
    /// server does not know it.
    pub fn payment(&self, txid: TxId, pay_to: &[u8]) -> Result<Option<PaymentSeen>, WalletError> {
        let id = Txid::from_byte_array(txid.0);
        let Some(tx) = self.client.get_tx(&id).map_err(chain_error)? else {
            return Ok(None);
        };
        if tx.compute_txid() != id {
            return Err(unproven("the server returned another transaction than asked"));
        }
        let status = self.client.get_tx_status(&id).map_err(chain_error)?;
        let confirmed = match (status.confirmed, status.block_hash, status.block_height) {
            (true, Some(block_hash), Some(height)) => {
                Some(self.confirmed_position(id, block_hash, height, &mut HashMap::new())?)
            }
            (true, _, _) => return Err(unproven("a confirmed transaction without its block")),
            (false, _, _) => None,
        };
        let (paid_sats, commitments) = paid_and_committed(&tx, pay_to);
        Ok(Some(PaymentSeen { txid, paid_sats, commitments, confirmed }))
    }

    /// Every payment to `pay_to` the server knows that carries a 32-byte `OP_RETURN` (the only
    /// ones the trade rule can count), confirmed or in the mempool: what the rule needs to rank a
    /// listing's payments (see `sanctuary_engine::trade::settle`). The position of each confirmed
    /// payment of at least `price_sats` is checked against its block header (see the module's
    /// documentation); a smaller payment cannot buy the item, so its block is not fetched and it
    /// is reported as unconfirmed. Refused (an error) if an answer does not check out, or the
    /// address has more history than [`MAX_HISTORY_PAGES`] or more than
    /// [`MAX_CHECKED_PAYMENTS`] confirmed payments of the price.
    pub fn payments_to(&self, pay_to: &[u8], price_sats: u64) -> Result<Vec<PaymentSeen>, WalletError> {
        let script = Script::from_bytes(pay_to);
        let mut payments = Vec::new();
        let mut seen: HashSet<Txid> = HashSet::new();
        let mut headers: HashMap<BlockHash, Header> = HashMap::new();
        let mut checked = 0usize;
        let mut last_confirmed: Option<Txid> = None;
        for _ in 0..MAX_HISTORY_PAGES {
            let page = self.client.scripthash_txs(script, last_confirmed).map_err(chain_error)?;
            let mut n_confirmed = 0usize;
            for entry in &page {
                if entry.status.confirmed {
                    n_confirmed += 1;
                    last_confirmed = Some(entry.txid);
                }
                if !seen.insert(entry.txid) {
                    continue;
                }
                let tx = entry.to_tx();
                if tx.compute_txid() != entry.txid {
                    return Err(unproven(format!("the server's copy of {} is not that transaction", entry.txid)));
                }
                let (paid_sats, commitments) = paid_and_committed(&tx, pay_to);
                if paid_sats == 0 || commitments.is_empty() {
                    continue;
                }
                let confirmed = if entry.status.confirmed && paid_sats >= price_sats {
                    let (Some(block_hash), Some(height)) = (entry.status.block_hash, entry.status.block_height) else {
                        return Err(unproven("a confirmed transaction without its block"));
                    };
                    if !self.remembers(entry.txid, block_hash, height) {
                        checked += 1;
                    }
                    if checked > MAX_CHECKED_PAYMENTS {
                        return Err(WalletError::Chain(format!(
                            "the address has more than {MAX_CHECKED_PAYMENTS} payments of the price; not decided"
                        )));
                    }
                    Some(self.confirmed_position(entry.txid, block_hash, height, &mut headers)?)
                } else {
                    None
                };
                let txid = TxId(entry.txid.to_byte_array());
                payments.push(PaymentSeen { txid, paid_sats, commitments, confirmed });
            }
            // A short page of confirmed history is the last one.
            if n_confirmed < HISTORY_PAGE {
                return Ok(payments);
            }
        }
        Err(WalletError::Chain(format!(
            "the address has more than {} transactions; not decided",
            MAX_HISTORY_PAGES * HISTORY_PAGE
        )))
    }

    /// Whether the position of `txid` in `block_hash` at `height` was checked before.
    fn remembers(&self, txid: Txid, block_hash: BlockHash, height: u32) -> bool {
        let checked = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
        checked.get(&(txid, block_hash)).is_some_and(|position| position.height == height)
    }

    /// Where a confirmed transaction sits, checked: the merkle branch the server gives folds to
    /// the merkle root of the header of `block_hash`, and that header is the block's and has its
    /// proof of work ([`check_header`]). `headers` keeps headers already checked in this look;
    /// positions checked before are remembered and not asked again.
    fn confirmed_position(
        &self,
        txid: Txid,
        block_hash: BlockHash,
        height: u32,
        headers: &mut HashMap<BlockHash, Header>,
    ) -> Result<trade::ChainPosition, WalletError> {
        if let Some(position) = self.checked.lock().unwrap_or_else(PoisonError::into_inner).get(&(txid, block_hash))
            && position.height == height
        {
            return Ok(*position);
        }
        let proof = self
            .client
            .get_merkle_proof(&txid)
            .map_err(chain_error)?
            .ok_or_else(|| unproven("no merkle proof for a confirmed transaction"))?;
        if proof.block_height != height {
            return Err(unproven(format!("the server places {txid} at two heights")));
        }
        let header = match headers.get(&block_hash) {
            Some(header) => *header,
            None => {
                let header = self.client.get_header_by_hash(&block_hash).map_err(chain_error)?;
                check_header(&header, block_hash, self.network)?;
                headers.insert(block_hash, header);
                header
            }
        };
        if merkle_root(txid, &proof.merkle, proof.pos) != Some(header.merkle_root) {
            return Err(unproven(format!("the merkle proof for {txid} does not match its block")));
        }
        let index = u32::try_from(proof.pos).map_err(|_| unproven("a position beyond any block"))?;
        let position = trade::ChainPosition { height, index };
        let mut checked = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
        if checked.len() >= MAX_REMEMBERED_POSITIONS {
            checked.clear();
        }
        checked.insert((txid, block_hash), position);
        Ok(position)
    }

    pub(crate) fn broadcast(&self, tx: &Transaction) -> Result<(), WalletError> {
        match self.client.broadcast(tx) {
            Ok(()) => Ok(()),
            Err(esplora_client::Error::HttpResponse { status, message }) if (400..500).contains(&status) => {
                Err(WalletError::Rejected(message))
            }
            Err(error) => Err(chain_error(error)),
        }
    }
}

/// Checks a block header a server gave for `block_hash`: it hashes to `block_hash`, the hash
/// meets the header's own target, and that target is no easier than `network` allows.
pub fn check_header(header: &Header, block_hash: BlockHash, network: WalletNetwork) -> Result<(), WalletError> {
    let hash = header.block_hash();
    if hash != block_hash {
        return Err(unproven(format!("the header given for block {block_hash} is another block's ({hash})")));
    }
    let target = header.target();
    if target > Params::new(network.to_bitcoin()).max_attainable_target {
        return Err(unproven(format!("block {block_hash} claims a target easier than {network} allows")));
    }
    if !target.is_met_by(hash) {
        return Err(unproven(format!("block {block_hash} does not have the proof of work its header claims")));
    }
    Ok(())
}

/// What `tx` pays `pay_to` (saturating) and its 32-byte `OP_RETURN` payloads, in output order.
fn paid_and_committed(tx: &Transaction, pay_to: &[u8]) -> (u64, Vec<[u8; 32]>) {
    let paid_sats = tx
        .output
        .iter()
        .filter(|output| output.script_pubkey.as_bytes() == pay_to)
        .map(|output| output.value.to_sat())
        .fold(0u64, u64::saturating_add);
    let commitments = tx.output.iter().filter_map(|output| op_return_32(&output.script_pubkey)).collect();
    (paid_sats, commitments)
}

/// The payload of an `OP_RETURN <32 bytes>` output.
fn op_return_32(script: &ScriptBuf) -> Option<[u8; 32]> {
    let bytes = script.as_bytes();
    // OP_RETURN, OP_PUSHBYTES_32, then the payload.
    (bytes.len() == 34 && bytes[0] == 0x6a && bytes[1] == 0x20).then(|| bytes[2..].try_into().ok()).flatten()
}

/// Folds an electrum-style merkle branch up to the root; `None` if the position does not fit
/// the branch.
pub fn merkle_root(txid: Txid, branch: &[Txid], position: usize) -> Option<TxMerkleNode> {
    if branch.len() > MAX_MERKLE_DEPTH {
        return None;
    }
    let mut node = txid.to_byte_array();
    let mut index = position;
    for sibling in branch {
        let sibling = sibling.to_byte_array();
        let mut pair = [0u8; 64];
        let (left, right) = if index & 1 == 0 { (node, sibling) } else { (sibling, node) };
        pair[..32].copy_from_slice(&left);
        pair[32..].copy_from_slice(&right);
        node = bdk_wallet::bitcoin::hashes::sha256d::Hash::hash(&pair).to_byte_array();
        index >>= 1;
    }
    (index == 0).then(|| TxMerkleNode::from_byte_array(node))
}

#[cfg(test)]
mod tests {
    use bdk_wallet::bitcoin::constants::genesis_block;
    use bdk_wallet::bitcoin::{CompactTarget, Network};

    use super::*;

    #[test]
    fn merkle_branches_fold_to_the_root_and_bad_positions_fail() {
        let leaves: Vec<Txid> = (0u8..3).map(|n| Txid::from_byte_array([n; 32])).collect();
        let pair = |a: [u8; 32], b: [u8; 32]| {
            let mut both = [0u8; 64];
            both[..32].copy_from_slice(&a);
            both[32..].copy_from_slice(&b);
            bdk_wallet::bitcoin::hashes::sha256d::Hash::hash(&both).to_byte_array()
        };
        let [a, b, c] = [leaves[0].to_byte_array(), leaves[1].to_byte_array(), leaves[2].to_byte_array()];
        // Three leaves: the last is paired with itself.
        let root = pair(pair(a, b), pair(c, c));
        let branch = [Txid::from_byte_array(c), Txid::from_byte_array(pair(a, b))];
        assert_eq!(merkle_root(leaves[2], &branch, 2), Some(TxMerkleNode::from_byte_array(root)));
        let first = [Txid::from_byte_array(b), Txid::from_byte_array(pair(c, c))];
        assert_eq!(merkle_root(leaves[0], &first, 0), Some(TxMerkleNode::from_byte_array(root)));
        assert_ne!(merkle_root(leaves[0], &first, 1), Some(TxMerkleNode::from_byte_array(root)));
        assert_eq!(merkle_root(leaves[2], &branch, 9), None);
        assert_eq!(merkle_root(leaves[2], &vec![leaves[0]; 65], 0), None, "deeper than any block");
    }

    #[test]
    fn op_return_commitments_are_read_and_other_scripts_are_not() {
        let mut script = vec![0x6a, 0x20];
        script.extend([5u8; 32]);
        assert_eq!(op_return_32(&ScriptBuf::from_bytes(script.clone())), Some([5u8; 32]));
        script[1] = 0x1f;
        assert_eq!(op_return_32(&ScriptBuf::from_bytes(script)), None);
        assert_eq!(op_return_32(&ScriptBuf::new()), None);
    }

    /// Real headers pass on their own network; a header given for another block's hash, one
    /// whose hash misses its target, and one easier than the network allows are refused.
    #[test]
    fn headers_must_be_the_named_block_with_its_proof_of_work() {
        let mainnet = genesis_block(Network::Bitcoin).header;
        let regtest = genesis_block(Network::Regtest).header;
        assert!(check_header(&mainnet, mainnet.block_hash(), WalletNetwork::Mainnet).is_ok());
        assert!(check_header(&regtest, regtest.block_hash(), WalletNetwork::Regtest).is_ok());
        // The right header for another hash.
        let refused = check_header(&mainnet, regtest.block_hash(), WalletNetwork::Mainnet);
        assert!(matches!(refused, Err(WalletError::Unproven(ref reason)) if reason.contains("another block")));
        // Regtest's trivial target is not enough on mainnet or signet.
        for network in [WalletNetwork::Mainnet, WalletNetwork::Signet, WalletNetwork::Testnet] {
            let refused = check_header(&regtest, regtest.block_hash(), network);
            assert!(matches!(refused, Err(WalletError::Unproven(ref reason)) if reason.contains("easier")));
        }
        // Another nonce: the header names itself honestly but has no proof of work for mainnet.
        let mut forged = mainnet;
        forged.nonce = forged.nonce.wrapping_add(1);
        let refused = check_header(&forged, forged.block_hash(), WalletNetwork::Mainnet);
        assert!(matches!(refused, Err(WalletError::Unproven(ref reason)) if reason.contains("proof of work")));
        // A header claiming the hardest target there is cannot meet it.
        let mut hard = mainnet;
        hard.bits = CompactTarget::from_consensus(0x0300_0001);
        let refused = check_header(&hard, hard.block_hash(), WalletNetwork::Mainnet);
        assert!(matches!(refused, Err(WalletError::Unproven(ref reason)) if reason.contains("proof of work")));
    }
}
