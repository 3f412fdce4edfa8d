//! The Lightning wallet: an LDK node ([`ldk_node`]) beside the on-chain wallet, for payments
//! that settle in a second for a few sats (tips, stalls, paid hosting).
//!
//! - **Keys.** The node's keys come from the same recovery phrase as the on-chain wallet,
//!   through [`Seed::lightning_entropy`]: one backup restores both wallets' keys and funds on the
//!   chain. The state of open channels is not in the phrase; it lives in the node's directory
//!   (an SQLite database LDK writes before it acts), which the data export must carry.
//! - **Chain.** The same Esplora server and network as the on-chain wallet. The node keeps its
//!   own on-chain wallet for channel funds (LDK spends from it to open channels and sweeps
//!   closed channels into it); the person moves coins to it from the main wallet.
//! - **Runtime.** The node's tasks run on the tokio runtime it is given (the network node's), or
//!   on one of its own.
//! - **Money out.** Every payment is quoted first ([`PaymentRequest::quote`]): the amount and the
//!   most the routing may cost; a route that costs more is not taken. Amounts are bounded by
//!   [`MAX_PAYMENT_MSAT`].
//! - **Logs.** LDK's log lines go to the `log` facade (target `ldk_node`...), where the program's
//!   logger filters and bounds them; LDK logs no keys or preimages at the levels kept.

mod request;
#[cfg(feature = "test-chain")]
pub mod testing;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ldk_node::bitcoin::secp256k1::PublicKey;
use ldk_node::config::{BackgroundSyncConfig, EsploraSyncConfig};
use ldk_node::lightning::ln::msgs::SocketAddress;
use ldk_node::lightning::routing::router::RouteParametersConfig;
use ldk_node::lightning_invoice::{Bolt11InvoiceDescription, Description};
use ldk_node::liquidity::LSPS2ServiceConfig;
use ldk_node::payment::{PaymentDirection, PaymentKind, PaymentStatus};
use ldk_node::{Builder, Event, Node, NodeError, PendingSweepBalance, UserChannelId};

pub use request::{
    MAX_PAYMENT_MSAT, MAX_REQUEST_CHARS, MAX_SHOWN_CHARS, PaymentRequest, Quote, RequestError, fee_cap_msat, shown,
};

use sanctuary_engine::ledger::msat_as_sats;

use crate::{Seed, WalletNetwork, Zeroizing};

/// How long an invoice or offer made here stays payable: one hour.
pub const REQUEST_EXPIRY_SECS: u32 = 60 * 60;
/// The smallest channel opened: 20,000 sat (below it, on-chain fees to open and close eat it).
pub const MIN_CHANNEL_SAT: u64 = 20_000;
/// The largest channel opened: 0.16 BTC, the limit of channels without `option_support_large_channel`.
pub const MAX_CHANNEL_SAT: u64 = 16_777_215;
/// The most characters of a payer's note (a BOLT12 invoice request carries it).
pub const MAX_NOTE_CHARS: usize = 512;
/// How the payer's note of a tip starts ("Tip from Ada"): tips are counted against the daily
/// limit by it, and the payee's client shows them as tips.
pub const TIP_NOTE: &str = "Tip";

/// Whether a payer's note marks a tip.
pub fn is_tip_note(note: &str) -> bool {
    note == TIP_NOTE || note.strip_prefix(TIP_NOTE).is_some_and(|rest| rest.starts_with(' '))
}

/// Why a Lightning action failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LightningError {
    /// The seed could not give the node's keys.
    #[error("cannot derive the Lightning keys: {0}")]
    Keys(String),
    /// The node could not be built or started (its directory, its chain source).
    #[error("the Lightning node cannot start: {0}")]
    Start(String),
    /// A node id is not a public key.
    #[error("'{0}' is not a Lightning node id (66 hexadecimal characters)")]
    BadNodeId(String),
    /// An address is not host:port.
    #[error("'{0}' is not a Lightning node address (host:port)")]
    BadAddress(String),
    /// A channel size outside what is opened.
    #[error("a channel holds {MIN_CHANNEL_SAT} to {MAX_CHANNEL_SAT} sat, not {0}")]
    ChannelSize(u64),
    /// No open channel has this id.
    #[error("no channel {0}")]
    NoSuchChannel(String),
    /// The payment request was refused.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A payer's note longer than [`MAX_NOTE_CHARS`].
    #[error("a payer's note is at most {MAX_NOTE_CHARS} characters")]
    NoteTooLong,
    /// LDK refused or failed.
    #[error("{0}")]
    Node(String),
}

impl From<NodeError> for LightningError {
    fn from(error: NodeError) -> Self {
        LightningError::Node(explain(&error))
    }
}

/// LDK's errors in the words a person can act on.
fn explain(error: &NodeError) -> String {
    match error {
        NodeError::InsufficientFunds => {
            "not enough funds (on-chain for a channel, or outbound capacity for a payment)".to_owned()
        }
        NodeError::ConnectionFailed => "could not reach that Lightning node".to_owned(),
        NodeError::DuplicatePayment => "this request was already paid".to_owned(),
        NodeError::NotRunning => "the Lightning node is not running".to_owned(),
        // LDK hides an unannounced node behind a peer it can name as the way in: a public node
        // (in the graph), or its only peer, connected.
        NodeError::OfferCreationFailed => "no offer can be made now: it needs a connected channel peer (with \
                                           several, a public one such as an LSP); try again in a moment"
            .to_owned(),
        NodeError::TxSyncFailed | NodeError::TxSyncTimeout => "the chain server did not answer".to_owned(),
        other => other.to_string(),
    }
}

/// Where and how the node runs.
#[derive(Debug, Clone)]
pub struct LightningConfig {
    /// The node's directory (its database and keys' state), beside the on-chain wallet's.
    pub data_dir: PathBuf,
    /// The network, the on-chain wallet's.
    pub network: WalletNetwork,
    /// The Esplora server, the on-chain wallet's.
    pub esplora_url: String,
    /// Where it takes Lightning connections; none for a client that only dials out.
    pub listen: Option<SocketAddr>,
    /// The name it goes by (at most 32 bytes).
    pub alias: Option<String>,
    /// A node that serves others (a home node): it forwards payments into their unannounced
    /// channels and opens just-in-time channels to them (LSPS2) on these terms.
    pub provider: Option<ProviderTerms>,
    /// The node a person's node gets just-in-time channels from (LSPS2): their home node or
    /// an LSP. It is trusted with zero-confirmation channels.
    pub lsp: Option<LspLink>,
    /// Whether it syncs with the chain by itself (every 30 s for channels, 60 s for its
    /// on-chain wallet) or only when [`Lightning::sync`] is called (tests).
    pub background_sync: bool,
}

/// What a serving node charges for a just-in-time channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderTerms {
    /// The opening fee, in millionths of the payment that opens the channel.
    pub opening_fee_ppm: u32,
    /// The smallest opening fee.
    pub min_opening_fee_msat: u64,
    /// The smallest and largest payment that opens a channel.
    pub payment_msat: (u64, u64),
}

impl Default for ProviderTerms {
    /// 1 % of the first payment, at least 1,000 sat, for payments of 10,000 sat to 0.1 BTC.
    fn default() -> Self {
        ProviderTerms {
            opening_fee_ppm: 10_000,
            min_opening_fee_msat: 1_000_000,
            payment_msat: (10_000_000, MAX_PAYMENT_MSAT),
        }
    }
}

/// A node to get just-in-time channels from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LspLink {
    /// Its node id, hex.
    pub node_id: String,
    /// Where it listens, `host:port`.
    pub address: String,
}

impl LightningConfig {
    /// The node's directory inside a wallet directory.
    pub fn dir_in(wallet_dir: &Path) -> PathBuf {
        wallet_dir.join("lightning")
    }
}

/// A running Lightning node.
pub struct Lightning {
    node: Arc<Node>,
    network: WalletNetwork,
}

impl fmt::Debug for Lightning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lightning").field("node_id", &self.node_id()).field("network", &self.network).finish()
    }
}

/// One channel as the wallet panel shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelView {
    /// The id this node gave the channel (to close it by).
    pub id: String,
    /// The other node.
    pub peer: String,
    /// Its size.
    pub capacity_sat: u64,
    /// What this side can send now.
    pub outbound_msat: u64,
    /// What this side can receive now.
    pub inbound_msat: u64,
    /// Where it stands.
    pub state: ChannelState,
    /// Whether this side opened it.
    pub opened_here: bool,
}

/// Where a channel stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelState {
    /// Its funding transaction waits for confirmations.
    Opening {
        /// Confirmations so far.
        confirmations: u32,
        /// Confirmations needed.
        required: u32,
    },
    /// Open, and the other node is connected: it can pay and be paid.
    Ready,
    /// Open, but the other node is not connected now.
    Offline,
}

impl fmt::Display for ChannelState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelState::Opening { confirmations, required } => {
                write!(f, "opening ({confirmations} of {required} confirmations)")
            }
            ChannelState::Ready => f.write_str("ready"),
            ChannelState::Offline => f.write_str("peer offline"),
        }
    }
}

/// The Lightning wallet's money, in sats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LightningBalances {
    /// The node's on-chain funds, all of them.
    pub onchain_sat: u64,
    /// What of them may be spent (less the reserve kept to close channels safely).
    pub spendable_onchain_sat: u64,
    /// What is held back on-chain to pay for closing anchor channels.
    pub reserve_sat: u64,
    /// This side's money in channels, as it would be paid out on closing.
    pub lightning_sat: u64,
    /// Money of closed channels on its way back on-chain.
    pub closing_sat: u64,
}

/// Something the node did or saw, for the program to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LightningEvent {
    /// A channel's funding transaction went out; it waits for confirmations.
    ChannelPending {
        /// The channel.
        channel: String,
        /// The other node.
        peer: String,
    },
    /// A channel can pay and be paid.
    ChannelReady {
        /// The channel.
        channel: String,
        /// The other node.
        peer: String,
    },
    /// A channel closed.
    ChannelClosed {
        /// The channel.
        channel: String,
        /// Why, in words.
        reason: String,
    },
    /// A payment this node made arrived.
    PaymentSent {
        /// The payment's id here.
        payment: String,
        /// Its payment hash, hex.
        hash: String,
        /// What the routing cost.
        fee_msat: u64,
        /// The payee's proof of payment (the preimage of the payment hash), hex.
        preimage: Option<String>,
    },
    /// A payment this node tried failed; no money left.
    PaymentFailed {
        /// The payment's id here.
        payment: String,
        /// Why, in words.
        reason: String,
    },
    /// A payment to a held invoice ([`Lightning::sale_invoice`]) waits to be taken or sent back.
    PaymentClaimable {
        /// Its payment hash.
        hash: [u8; 32],
        /// What may be taken.
        amount_msat: u64,
    },
    /// A payment arrived here.
    PaymentReceived {
        /// The payment's id here.
        payment: String,
        /// Its payment hash, hex.
        hash: String,
        /// What arrived.
        amount_msat: u64,
        /// The payer's note, for a BOLT12 payment that carried one (cleaned for showing).
        note: Option<String>,
    },
}

/// One payment in the node's book, for the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentView {
    /// The payment's id here.
    pub id: String,
    /// Sent or received.
    pub outgoing: bool,
    /// The amount (what the payee got).
    pub amount_msat: Option<u64>,
    /// What the routing cost (sent payments).
    pub fee_msat: Option<u64>,
    /// Pending, succeeded or failed.
    pub status: PaymentState,
    /// "bolt11", "bolt12", "onchain" or "keysend".
    pub kind: &'static str,
    /// The payer's note of a BOLT12 payment (received or sent), cleaned for showing.
    pub note: Option<String>,
    /// When it last changed, in seconds since the epoch.
    pub updated: u64,
    /// The transaction of an on-chain payment of the node's own wallet.
    pub txid: Option<String>,
}

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentState {
    /// Not settled yet.
    Pending,
    /// Settled.
    Succeeded,
    /// Failed; no money moved.
    Failed,
}

impl Lightning {
    /// Builds and starts the node from the person's seed. `runtime` is the tokio runtime its
    /// tasks run on; without one it makes its own.
    pub fn start(
        seed: &Seed,
        config: &LightningConfig,
        runtime: Option<tokio_handle::Handle>,
    ) -> Result<Lightning, LightningError> {
        let entropy = seed.lightning_entropy().map_err(|error| LightningError::Keys(error.to_string()))?;
        Lightning::start_with_entropy(&entropy, config, runtime)
    }

    /// As [`Lightning::start`], from the seed's [`Seed::lightning_entropy`] (kept by the wallet
    /// thread while unlocked, to start again after the chain source was away).
    pub fn start_with_entropy(
        entropy: &Zeroizing<[u8; 64]>,
        config: &LightningConfig,
        runtime: Option<tokio_handle::Handle>,
    ) -> Result<Lightning, LightningError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|error| LightningError::Start(format!("{}: {error}", config.data_dir.display())))?;
        let mut builder = Builder::new();
        builder.set_entropy_seed_bytes(**entropy);
        builder.set_network(config.network.to_bitcoin());
        builder.set_storage_dir_path(config.data_dir.to_string_lossy().into_owned());
        let background_sync_config = config.background_sync.then_some(BackgroundSyncConfig {
            onchain_wallet_sync_interval_secs: 60,
            lightning_wallet_sync_interval_secs: 30,
            fee_rate_cache_update_interval_secs: 600,
        });
        builder
            .set_chain_source_esplora(config.esplora_url.clone(), Some(EsploraSyncConfig { background_sync_config }));
        builder.set_log_facade_logger();
        if let Some(listen) = config.listen {
            builder
                .set_listening_addresses(vec![SocketAddress::from(listen)])
                .map_err(|error| LightningError::Start(error.to_string()))?;
        }
        if let Some(alias) = &config.alias {
            builder
                .set_node_alias(alias.clone())
                .map_err(|error| LightningError::Start(format!("the node's name: {error}")))?;
        }
        if let Some(terms) = config.provider {
            // The node forwards into the unannounced channels of those it serves only as a
            // provider (LDK's `accept_forwards_to_priv_channels`).
            builder.set_liquidity_provider_lsps2(LSPS2ServiceConfig {
                require_token: None,
                advertise_service: false,
                channel_opening_fee_ppm: terms.opening_fee_ppm,
                channel_over_provisioning_ppm: 100_000,
                min_channel_opening_fee_msat: terms.min_opening_fee_msat,
                min_channel_lifetime: 1_008,
                max_client_to_self_delay: 2_016,
                min_payment_size_msat: terms.payment_msat.0,
                max_payment_size_msat: terms.payment_msat.1,
                client_trusts_lsp: false,
            });
        }
        if let Some(lsp) = &config.lsp {
            builder.set_liquidity_source_lsps2(parse_node_id(&lsp.node_id)?, parse_address(&lsp.address)?, None);
        }
        if let Some(handle) = runtime {
            builder.set_runtime(handle);
        }
        let node = builder.build().map_err(|error| LightningError::Start(error.to_string()))?;
        node.start().map_err(|error| LightningError::Start(explain(&error)))?;
        Ok(Lightning { node: Arc::new(node), network: config.network })
    }

    /// The node's id (its public key, hex): what others open channels to.
    pub fn node_id(&self) -> String {
        self.node.node_id().to_string()
    }

    /// Where it takes connections, as `host:port`, if it listens.
    pub fn listening(&self) -> Vec<String> {
        self.node.listening_addresses().unwrap_or_default().iter().map(ToString::to_string).collect()
    }

    /// A fresh address of the node's own on-chain wallet, to fund channels from.
    pub fn funding_address(&self) -> Result<String, LightningError> {
        Ok(self.node.onchain_payment().new_address()?.to_string())
    }

    /// Brings the node's view of the chain up to date (its on-chain wallet and its channels).
    pub fn sync(&self) -> Result<(), LightningError> {
        Ok(self.node.sync_wallets()?)
    }

    /// Connects to `peer` at `address` and opens a channel of `amount_sat` from the node's
    /// on-chain funds, giving `push_msat` of it to the other side. The channel is unannounced
    /// (a private channel between a person and their LSP or friend). Returns its id.
    pub fn open_channel(
        &self,
        peer: &str,
        address: &str,
        amount_sat: u64,
        push_msat: Option<u64>,
    ) -> Result<String, LightningError> {
        if !(MIN_CHANNEL_SAT..=MAX_CHANNEL_SAT).contains(&amount_sat) {
            return Err(LightningError::ChannelSize(amount_sat));
        }
        if push_msat.is_some_and(|push| push > amount_sat.saturating_mul(1000)) {
            return Err(LightningError::ChannelSize(amount_sat));
        }
        let peer_key = parse_node_id(peer)?;
        let address = parse_address(address)?;
        let id = self.node.open_channel(peer_key, address, amount_sat, push_msat, None)?;
        Ok(channel_id(id))
    }

    /// The channels, with where each stands.
    pub fn channels(&self) -> Vec<ChannelView> {
        let connected: Vec<PublicKey> =
            self.node.list_peers().into_iter().filter(|peer| peer.is_connected).map(|peer| peer.node_id).collect();
        self.node
            .list_channels()
            .into_iter()
            .map(|channel| {
                let state = if !channel.is_channel_ready {
                    ChannelState::Opening {
                        confirmations: channel.confirmations.unwrap_or(0),
                        required: channel.confirmations_required.unwrap_or(0),
                    }
                } else if channel.is_usable && connected.contains(&channel.counterparty_node_id) {
                    ChannelState::Ready
                } else {
                    ChannelState::Offline
                };
                ChannelView {
                    id: channel_id(channel.user_channel_id),
                    peer: channel.counterparty_node_id.to_string(),
                    capacity_sat: channel.channel_value_sats,
                    outbound_msat: channel.outbound_capacity_msat,
                    inbound_msat: channel.inbound_capacity_msat,
                    state,
                    opened_here: channel.is_outbound,
                }
            })
            .collect()
    }

    /// Closes a channel: cooperatively (both sides sign a closing transaction; the money is
    /// back on-chain once it confirms), or by force when the other side is gone (this side's
    /// last state goes on-chain and its money waits out a time lock).
    pub fn close_channel(&self, channel: &str, force: bool) -> Result<(), LightningError> {
        let found = self
            .node
            .list_channels()
            .into_iter()
            .find(|details| channel_id(details.user_channel_id) == channel)
            .ok_or_else(|| LightningError::NoSuchChannel(shown(channel)))?;
        if force {
            self.node.force_close_channel(&found.user_channel_id, found.counterparty_node_id, None)?;
        } else {
            self.node.close_channel(&found.user_channel_id, found.counterparty_node_id)?;
        }
        Ok(())
    }

    /// The Lightning wallet's money.
    pub fn balances(&self) -> LightningBalances {
        let details = self.node.list_balances();
        let closing = details
            .pending_balances_from_channel_closures
            .iter()
            .fold(0u64, |sum, pending| sum.saturating_add(pending_sat(pending)));
        LightningBalances {
            onchain_sat: details.total_onchain_balance_sats,
            spendable_onchain_sat: details.spendable_onchain_balance_sats,
            reserve_sat: details.total_anchor_channels_reserve_sats,
            lightning_sat: details.total_lightning_balance_sats,
            closing_sat: closing,
        }
    }

    /// A BOLT11 invoice for `amount_msat`, payable for [`REQUEST_EXPIRY_SECS`].
    pub fn invoice(&self, amount_msat: u64, description: &str) -> Result<String, LightningError> {
        check_receive(amount_msat)?;
        let description = invoice_description(description)?;
        let invoice = self.node.bolt11_payment().receive(amount_msat, &description, REQUEST_EXPIRY_SECS)?;
        Ok(invoice.to_string())
    }

    /// A BOLT11 invoice for a sale, payable for `expiry_secs`, with its payment hash (which the
    /// seller's voucher names).
    ///
    /// The invoice is *held*: a payment to it is not taken until [`Lightning::claim_held`] (with
    /// the preimage returned here, which only this node knows) and is sent back by
    /// [`Lightning::fail_held`], so that a seller takes one payment per item and turns away the
    /// rest ([`LightningEvent::PaymentClaimable`] says one arrived).
    pub fn sale_invoice(
        &self,
        amount_msat: u64,
        description: &str,
        expiry_secs: u32,
    ) -> Result<(String, [u8; 32], Zeroizing<[u8; 32]>), LightningError> {
        use ldk_node::bitcoin::hashes::{Hash, sha256};
        check_receive(amount_msat)?;
        let description = invoice_description(description)?;
        let mut preimage = Zeroizing::new([0u8; 32]);
        getrandom::fill(preimage.as_mut()).map_err(|error| LightningError::Node(format!("no randomness: {error}")))?;
        let hash = sha256::Hash::hash(preimage.as_ref()).to_byte_array();
        let invoice = self.node.bolt11_payment().receive_for_hash(
            amount_msat,
            &description,
            expiry_secs,
            ldk_node::lightning_types::payment::PaymentHash(hash),
        )?;
        Ok((invoice.to_string(), hash, preimage))
    }

    /// Takes a held payment ([`Lightning::sale_invoice`]) of `amount_msat` with its preimage.
    pub fn claim_held(&self, preimage: &[u8; 32], amount_msat: u64) -> Result<(), LightningError> {
        use ldk_node::bitcoin::hashes::{Hash, sha256};
        let hash = sha256::Hash::hash(preimage).to_byte_array();
        Ok(self.node.bolt11_payment().claim_for_hash(
            ldk_node::lightning_types::payment::PaymentHash(hash),
            amount_msat,
            ldk_node::lightning_types::payment::PaymentPreimage(*preimage),
        )?)
    }

    /// Sends a held payment back to its payer.
    pub fn fail_held(&self, hash: &[u8; 32]) -> Result<(), LightningError> {
        Ok(self.node.bolt11_payment().fail_for_hash(ldk_node::lightning_types::payment::PaymentHash(*hash))?)
    }

    /// A BOLT11 invoice for `amount_msat` that the node's LSP pays through a channel it opens
    /// for the payment (LSPS2), keeping its opening fee (at most `max_fee_msat`) from it: how a
    /// newcomer with no channel is paid for the first time.
    pub fn invoice_via_lsp(
        &self,
        amount_msat: u64,
        description: &str,
        max_fee_msat: u64,
    ) -> Result<String, LightningError> {
        check_receive(amount_msat)?;
        let description = invoice_description(description)?;
        let invoice = self.node.bolt11_payment().receive_via_jit_channel(
            amount_msat,
            &description,
            REQUEST_EXPIRY_SECS,
            Some(max_fee_msat),
        )?;
        Ok(invoice.to_string())
    }

    /// A BOLT12 offer: for `amount_msat`, or for any amount the payer chooses (a tip jar).
    /// An offer without expiry can be printed on a stall or a profile and paid many times.
    pub fn offer(
        &self,
        amount_msat: Option<u64>,
        description: &str,
        expiry_secs: Option<u32>,
    ) -> Result<String, LightningError> {
        let description = shown(description);
        let offer = match amount_msat {
            Some(amount) => {
                check_receive(amount)?;
                self.node.bolt12_payment().receive(amount, &description, expiry_secs, None)?
            }
            None => self.node.bolt12_payment().receive_variable_amount(&description, expiry_secs)?,
        };
        Ok(offer.to_string())
    }

    /// Reads a payment request for this node's network.
    pub fn read(&self, text: &str) -> Result<PaymentRequest, LightningError> {
        Ok(PaymentRequest::parse(text, self.network)?)
    }

    /// Pays `request` as `quote` says (which the person saw and confirmed): the routing may not
    /// cost more than the quote's cap. A BOLT12 payment carries `note` to the payee. Returns the
    /// payment's id; [`LightningEvent::PaymentSent`] or [`LightningEvent::PaymentFailed`] follows.
    pub fn pay(&self, request: &PaymentRequest, quote: &Quote, note: Option<&str>) -> Result<String, LightningError> {
        if note.is_some_and(|note| note.chars().count() > MAX_NOTE_CHARS) {
            return Err(LightningError::NoteTooLong);
        }
        // The quote must be one this request gives; a quote made up elsewhere is refused.
        let checked = request.quote(Some(quote.amount_msat))?;
        if checked.max_fee_msat < quote.max_fee_msat {
            return Err(LightningError::Request(RequestError::BadAmount(quote.max_fee_msat)));
        }
        let route = RouteParametersConfig {
            max_total_routing_fee_msat: Some(quote.max_fee_msat),
            ..RouteParametersConfig::default()
        };
        let id = match request {
            PaymentRequest::Invoice(invoice) => match invoice.amount_milli_satoshis() {
                Some(_) => self.node.bolt11_payment().send(invoice, Some(route))?,
                None => self.node.bolt11_payment().send_using_amount(invoice, quote.amount_msat, Some(route))?,
            },
            PaymentRequest::Offer(offer) => {
                let note = note.map(str::to_owned);
                if request.amount_msat() == Some(quote.amount_msat) {
                    self.node.bolt12_payment().send(offer, None, note, Some(route))?
                } else {
                    self.node.bolt12_payment().send_using_amount(offer, quote.amount_msat, None, note, Some(route))?
                }
            }
        };
        Ok(hex(&id.0))
    }

    /// What became of an outgoing payment, as the event that told it would have: rebuilt from
    /// the node's book for a program that missed that event (it stopped while the payment was
    /// on its way, or after reading the event and before acting on it). `None` while the payment
    /// is still on its way, or for an id this node never paid.
    pub fn outcome(&self, id: &str) -> Option<LightningEvent> {
        let bytes = unhex32(id)?;
        let details = self.node.payment(&ldk_node::lightning::ln::channelmanager::PaymentId(bytes))?;
        if details.direction != PaymentDirection::Outbound {
            return None;
        }
        let (hash, preimage) = match &details.kind {
            PaymentKind::Bolt11 { hash, preimage, .. }
            | PaymentKind::Bolt11Jit { hash, preimage, .. }
            | PaymentKind::Spontaneous { hash, preimage } => (Some(*hash), *preimage),
            PaymentKind::Bolt12Offer { hash, preimage, .. } | PaymentKind::Bolt12Refund { hash, preimage, .. } => {
                (*hash, *preimage)
            }
            PaymentKind::Onchain { .. } => return None,
        };
        match details.status {
            PaymentStatus::Pending => None,
            PaymentStatus::Succeeded => Some(LightningEvent::PaymentSent {
                payment: id.to_owned(),
                hash: hash.map(|hash| hex(&hash.0)).unwrap_or_default(),
                fee_msat: details.fee_paid_msat.unwrap_or(0),
                preimage: preimage.map(|preimage| hex(&preimage.0)),
            }),
            PaymentStatus::Failed => {
                Some(LightningEvent::PaymentFailed { payment: id.to_owned(), reason: "it failed".to_owned() })
            }
        }
    }

    /// One payment by its id.
    pub fn payment(&self, id: &str) -> Option<PaymentView> {
        self.payments().into_iter().find(|payment| payment.id == id)
    }

    /// What this node's tips since `since` (seconds since 1970) cost: outgoing BOLT12 payments
    /// whose note starts with [`TIP_NOTE`], settled or on their way, with their routing fees.
    /// Counted from the node's own book, so that a restart does not reset a spending limit.
    pub fn tipped_msat_since(&self, since: u64) -> u64 {
        self.payments()
            .iter()
            .filter(|payment| payment.outgoing && payment.kind == "bolt12" && payment.status != PaymentState::Failed)
            .filter(|payment| payment.updated >= since && payment.note.as_deref().is_some_and(is_tip_note))
            .map(|payment| payment.amount_msat.unwrap_or(0).saturating_add(payment.fee_msat.unwrap_or(0)))
            .fold(0, u64::saturating_add)
    }

    /// Every payment in the node's book (Lightning and its on-chain wallet), oldest first.
    pub fn payments(&self) -> Vec<PaymentView> {
        let mut payments: Vec<PaymentView> = self.node.list_payments().into_iter().map(view).collect();
        payments.sort_by_key(|payment| payment.updated);
        payments
    }

    /// Appends the node's settled payments to a ledger in the on-chain wallet's CSV columns
    /// (`date_utc,txid,kind,amount_sats,fee_sats,block_height,network`): Lightning payments as
    /// `lightning_sent` or `lightning_received` with their payment id in the txid column and
    /// amounts in sats to the millisatoshi (`21000`, `0.215`); the node's own on-chain payments
    /// (channel funds) as `channel_funds_sent` or `channel_funds_received` with their txid.
    pub fn write_csv(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        for payment in self.payments().into_iter().filter(|payment| payment.status == PaymentState::Succeeded) {
            let (kind, reference) = match (payment.kind, payment.outgoing) {
                ("onchain", true) => ("channel_funds_sent", payment.txid.clone().unwrap_or_default()),
                ("onchain", false) => ("channel_funds_received", payment.txid.clone().unwrap_or_default()),
                (_, true) => ("lightning_sent", payment.id.clone()),
                (_, false) => ("lightning_received", payment.id.clone()),
            };
            let sign = if payment.outgoing { "-" } else { "" };
            let amount = payment.amount_msat.map(|msat| format!("{sign}{}", msat_as_sats(msat))).unwrap_or_default();
            let fee = payment.fee_msat.map(msat_as_sats).unwrap_or_default();
            writeln!(out, "{},{reference},{kind},{amount},{fee},,{}", crate::utc_date(payment.updated), self.network)?;
        }
        Ok(())
    }

    /// The next thing the node did, if any, marked as handled (LDK keeps an event until then,
    /// across restarts).
    pub fn next_event(&self) -> Option<LightningEvent> {
        loop {
            let event = self.node.next_event()?;
            let mut converted = convert(event);
            // If marking fails the event comes again, which every caller tolerates.
            let _ = self.node.event_handled();
            // The payer's note is in the node's book, not in the event.
            if let Some(LightningEvent::PaymentReceived { payment, note, .. }) = &mut converted {
                *note = self.payment(payment).and_then(|view| view.note);
            }
            if let Some(converted) = converted {
                return Some(converted);
            }
        }
    }

    /// Waits up to `timeout` for the next event.
    pub fn wait_event(&self, timeout: Duration) -> Option<LightningEvent> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(event) = self.next_event() {
                return Some(event);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the node: its state is on disk, and it picks up where it was when started again.
    pub fn stop(&self) -> Result<(), LightningError> {
        Ok(self.node.stop()?)
    }
}

/// tokio's runtime handle, as ldk-node re-exports it (the same tokio the program runs).
pub mod tokio_handle {
    pub use ldk_node::tokio::runtime::Handle;
}

fn check_receive(amount_msat: u64) -> Result<(), LightningError> {
    Ok(request::check_amount(amount_msat)?)
}

/// The person's text as an invoice's description, cleaned and cut as for showing.
fn invoice_description(text: &str) -> Result<Bolt11InvoiceDescription, LightningError> {
    let description = Description::new(shown(text))
        .map_err(|error| LightningError::Node(format!("the description cannot go in an invoice: {error}")))?;
    Ok(Bolt11InvoiceDescription::Direct(description))
}

fn parse_node_id(text: &str) -> Result<PublicKey, LightningError> {
    PublicKey::from_str(text.trim()).map_err(|_| LightningError::BadNodeId(shown(text)))
}

fn parse_address(text: &str) -> Result<SocketAddress, LightningError> {
    SocketAddress::from_str(text.trim()).map_err(|_| LightningError::BadAddress(shown(text)))
}

fn pending_sat(pending: &PendingSweepBalance) -> u64 {
    match pending {
        PendingSweepBalance::PendingBroadcast { amount_satoshis, .. }
        | PendingSweepBalance::BroadcastAwaitingConfirmation { amount_satoshis, .. }
        | PendingSweepBalance::AwaitingThresholdConfirmations { amount_satoshis, .. } => *amount_satoshis,
    }
}

fn channel_id(id: UserChannelId) -> String {
    format!("{:032x}", id.0)
}

/// The 32 bytes `text` spells in hex, if it spells exactly that many.
fn unhex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (at, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[at * 2..at * 2 + 2], 16).ok()?;
    }
    Some(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn convert(event: Event) -> Option<LightningEvent> {
    Some(match event {
        Event::ChannelPending { user_channel_id, counterparty_node_id, .. } => LightningEvent::ChannelPending {
            channel: channel_id(user_channel_id),
            peer: counterparty_node_id.to_string(),
        },
        Event::ChannelReady { user_channel_id, counterparty_node_id, .. } => LightningEvent::ChannelReady {
            channel: channel_id(user_channel_id),
            peer: counterparty_node_id.map(|key| key.to_string()).unwrap_or_default(),
        },
        Event::ChannelClosed { user_channel_id, reason, .. } => LightningEvent::ChannelClosed {
            channel: channel_id(user_channel_id),
            reason: reason.map(|reason| shown(&reason.to_string())).unwrap_or_else(|| "closed".to_owned()),
        },
        Event::PaymentSuccessful { payment_id, payment_hash, payment_preimage, fee_paid_msat, .. } => {
            LightningEvent::PaymentSent {
                payment: payment_id.map(|id| hex(&id.0)).unwrap_or_default(),
                hash: hex(&payment_hash.0),
                fee_msat: fee_paid_msat.unwrap_or(0),
                preimage: payment_preimage.map(|preimage| hex(&preimage.0)),
            }
        }
        Event::PaymentFailed { payment_id, reason, .. } => LightningEvent::PaymentFailed {
            payment: payment_id.map(|id| hex(&id.0)).unwrap_or_default(),
            reason: reason.map(|reason| format!("{reason:?}")).unwrap_or_else(|| "failed".to_owned()),
        },
        Event::PaymentReceived { payment_id, payment_hash, amount_msat, .. } => LightningEvent::PaymentReceived {
            payment: payment_id.map(|id| hex(&id.0)).unwrap_or_default(),
            hash: hex(&payment_hash.0),
            amount_msat,
            note: None,
        },
        Event::PaymentClaimable { payment_hash, claimable_amount_msat, .. } => {
            LightningEvent::PaymentClaimable { hash: payment_hash.0, amount_msat: claimable_amount_msat }
        }
        _ => return None,
    })
}

fn view(details: ldk_node::payment::PaymentDetails) -> PaymentView {
    let (kind, note) = match &details.kind {
        PaymentKind::Bolt11 { .. } | PaymentKind::Bolt11Jit { .. } => ("bolt11", None),
        PaymentKind::Bolt12Offer { payer_note, .. } | PaymentKind::Bolt12Refund { payer_note, .. } => {
            ("bolt12", payer_note.as_ref().map(|note| shown(&note.0)))
        }
        PaymentKind::Onchain { .. } => ("onchain", None),
        PaymentKind::Spontaneous { .. } => ("keysend", None),
    };
    PaymentView {
        id: hex(&details.id.0),
        outgoing: details.direction == PaymentDirection::Outbound,
        amount_msat: details.amount_msat,
        fee_msat: details.fee_paid_msat,
        status: match details.status {
            PaymentStatus::Pending => PaymentState::Pending,
            PaymentStatus::Succeeded => PaymentState::Succeeded,
            PaymentStatus::Failed => PaymentState::Failed,
        },
        kind,
        note,
        updated: details.latest_update_timestamp,
        txid: match &details.kind {
            PaymentKind::Onchain { txid, .. } => Some(txid.to_string()),
            _ => None,
        },
    }
}
