//! The Lightning rail of the wallet thread: the node starts when the wallet is unlocked (from
//! the same seed), stops when it is locked, and is asked to start again with a growing pause
//! when the chain source was away. Payments are quoted first and paid only by the quote's tag,
//! once the person has confirmed what the quote showed.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::lightning::{
    ChannelState, ChannelView, Lightning, LightningBalances, LightningConfig, LightningError, LightningEvent, LspLink,
    PaymentRequest, ProviderTerms, Quote, REQUEST_EXPIRY_SECS, TIP_NOTE, is_tip_note, tokio_handle,
};
use crate::{Seed, WalletNetwork};

/// The most quotes waiting for a yes; an older one is dropped for a new one.
const MAX_QUOTES: usize = 8;
/// The first pause before starting again after a failed start; it doubles up to the last.
const RETRY_FIRST: Duration = Duration::from_secs(30);
const RETRY_LAST: Duration = Duration::from_secs(30 * 60);
/// The most of the node's events taken in at one look.
const MAX_EVENTS_A_LOOK: usize = 64;
/// The longest description or note taken from the person.
const MAX_TEXT_CHARS: usize = 200;
/// What tips may cost in a day unless the person chose otherwise: 10,000 sat (fees included).
pub const DEFAULT_TIP_LIMIT_SAT: u64 = 10_000;
/// How long an invoice for a sale stays payable: ten minutes.
pub const SALE_INVOICE_EXPIRY_SECS: u32 = 10 * 60;
/// The most payments looked at by one [`LnCommand::Recheck`].
const MAX_RECHECKED: usize = 64;
/// The most sale invoices held at once; a newer one pushes out the oldest.
const MAX_HELD: usize = 64;
/// The most sales remembered as paid (each is one of the person's listings).
const MAX_SOLD: usize = 1024;
/// The window the tip limit counts over.
const TIP_WINDOW_SECS: u64 = 24 * 60 * 60;
/// What the offer others tip through says.
const TIPS_DESCRIPTION: &str = "Tips in Sanctuary";

/// How the Lightning node runs, beside the on-chain wallet.
#[derive(Clone, Default)]
pub struct LightningSettings {
    /// Whether there is a Lightning node at all.
    pub enabled: bool,
    /// The tokio runtime its tasks run on (the network node's); its own if none.
    pub runtime: Option<tokio_handle::Handle>,
    /// Where it takes Lightning connections.
    pub listen: Option<SocketAddr>,
    /// Its name.
    pub alias: Option<String>,
    /// The node it gets just-in-time channels from.
    pub lsp: Option<LspLink>,
    /// Terms, when it serves others (a home node).
    pub provider: Option<ProviderTerms>,
    /// Whether it syncs by itself (always, except in tests that mine by hand).
    pub background_sync: bool,
    /// The most tips may cost in 24 hours, routing fees included; `None`:
    /// [`DEFAULT_TIP_LIMIT_SAT`].
    pub tip_limit_sat: Option<u64>,
}

impl fmt::Debug for LightningSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LightningSettings")
            .field("enabled", &self.enabled)
            .field("listen", &self.listen)
            .field("alias", &self.alias)
            .field("lsp", &self.lsp)
            .field("provider", &self.provider)
            .field("tip_limit_sat", &self.tip_limit_sat)
            .finish_non_exhaustive()
    }
}

/// What the Lightning rail is asked to do.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LnCommand {
    /// Open a channel of `amount_sat` to `peer` at `address` from the node's on-chain funds.
    Open {
        /// The other node's id.
        peer: String,
        /// Where it listens.
        address: String,
        /// The channel's size.
        amount_sat: u64,
    },
    /// Close a channel (by its id or its number in the list, from 1), cooperatively or by force.
    Close {
        /// The channel.
        channel: String,
        /// By force.
        force: bool,
    },
    /// Make an invoice.
    Invoice {
        /// The amount.
        amount_msat: u64,
        /// What it is for.
        description: String,
        /// Through the LSP's just-in-time channel (for someone with no channel yet).
        via_lsp: bool,
    },
    /// Make an offer: for an amount, or for any.
    Offer {
        /// The amount, if fixed.
        amount_msat: Option<u64>,
        /// What it is for.
        description: String,
    },
    /// Read a payment request and quote it (answered with [`LnEvent::Quoted`]).
    Quote {
        /// The request's text.
        text: String,
        /// The amount, where the request names none (or more than an offer asks).
        amount_msat: Option<u64>,
        /// The caller's number.
        tag: u64,
    },
    /// Quote a tip of `amount_msat` through someone's offer (answered with [`LnEvent::Quoted`],
    /// or refused when it would go over the daily tip limit).
    Tip {
        /// Their offer, as their profile carries it.
        offer: String,
        /// How much.
        amount_msat: u64,
        /// The caller's number.
        tag: u64,
    },
    /// Make an invoice for a sale at a Lightning stall, payable for [`SALE_INVOICE_EXPIRY_SECS`]
    /// (answered with [`LnEvent::SaleInvoice`]).
    SaleInvoice {
        /// The price.
        amount_msat: u64,
        /// What it is for.
        description: String,
        /// What is sold (a listing's id): the node takes one payment per sale, whichever of its
        /// invoices it comes to, and sends the others back.
        sale: [u8; 32],
        /// The caller's number.
        tag: u64,
    },
    /// Quote a purchase: `invoice` must be for exactly `amount_msat` and name `payment_hash`
    /// (the hash the seller's voucher names), else it is refused.
    Purchase {
        /// The seller's invoice.
        invoice: String,
        /// The price.
        amount_msat: u64,
        /// The hash the voucher names.
        payment_hash: [u8; 32],
        /// The caller's number.
        tag: u64,
    },
    /// Pay what quote `tag` showed, with a note for a BOLT12 payee (a tip's note always starts
    /// with [`crate::lightning::TIP_NOTE`]; "Tip" if the caller gives none that does).
    Pay {
        /// The quote's tag.
        tag: u64,
        /// The payer's note.
        note: Option<String>,
    },
    /// Forget quote `tag`.
    Cancel {
        /// The quote's tag.
        tag: u64,
    },
    /// A fresh address of the node's on-chain wallet, to fund channels.
    FundingAddress,
    /// Say again what became of these outgoing payments, as [`LnEvent::Rechecked`] with their
    /// `PaymentSent` or `PaymentFailed` (nothing for one still on its way: its event follows).
    /// For a program that may have missed the events while it was not running.
    Recheck {
        /// The payments' ids (at most 64 are looked at).
        payments: Vec<String>,
    },
}

/// What the Lightning rail reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LnEvent {
    /// The node runs.
    Running {
        /// Its id.
        node_id: String,
        /// Where it listens.
        listening: Vec<String>,
    },
    /// The node could not start; it is tried again later.
    Unavailable {
        /// Why.
        error: String,
        /// Seconds until the next try.
        retry_s: u64,
    },
    /// The node stopped (the wallet was locked).
    Stopped,
    /// Its money and channels, after a change or a sync.
    State {
        /// The money.
        balances: LightningBalances,
        /// The channels.
        channels: Vec<ChannelView>,
    },
    /// An invoice or offer made here, to show and share.
    Made {
        /// "invoice" or "offer".
        kind: &'static str,
        /// The text to share.
        text: String,
        /// How long it stays payable, if it expires.
        expiry_s: Option<u32>,
    },
    /// A request read and quoted, waiting for the person's yes.
    Quoted {
        /// The caller's number.
        tag: u64,
        /// What it costs.
        quote: Quote,
        /// The payee's node or signing key, if the request names one.
        payee: Option<String>,
    },
    /// A payment left (its outcome follows as an [`LnEvent::Happened`]).
    Paying {
        /// The quote's tag.
        tag: u64,
        /// The payment's id.
        payment: String,
    },
    /// Something the node did or saw.
    Happened(LightningEvent),
    /// What became of a payment asked about with [`LnCommand::Recheck`] (its `PaymentSent` or
    /// `PaymentFailed`, rebuilt from the node's book; it may have been told before).
    Rechecked(LightningEvent),
    /// An address of the node's on-chain wallet.
    FundingAddress(String),
    /// An invoice made for a sale, with its payment hash.
    SaleInvoice {
        /// The caller's number.
        tag: u64,
        /// The invoice.
        invoice: String,
        /// Its payment hash.
        payment_hash: [u8; 32],
    },
    /// The offer others can tip this node through, made once it has a channel to be paid over
    /// (`None`: no channel, no tips). For the person's profile.
    TipOffer(Option<String>),
    /// Something failed.
    Failed {
        /// What was being done.
        action: &'static str,
        /// Why.
        error: String,
    },
}

/// The rail: the node while the wallet is unlocked, its pending quotes, and when to try again.
pub(super) struct Rail {
    settings: LightningSettings,
    node: Option<Lightning>,
    entropy: Option<Zeroizing<[u8; 64]>>,
    next_try: Option<Instant>,
    pause: Duration,
    /// Quotes waiting for a yes: their tag, request, quote, and whether they are tips.
    quotes: VecDeque<(u64, PaymentRequest, Quote, bool)>,
    /// The offer made for tips, while the node has a usable channel.
    tip_offer: Option<String>,
    /// Sale invoices whose payments wait for our word, oldest first.
    held: VecDeque<HeldSale>,
    /// Sales paid since the node started, oldest first.
    sold: VecDeque<[u8; 32]>,
}

/// A held sale invoice: its hash and preimage, what it sells, and for how much.
struct HeldSale {
    hash: [u8; 32],
    preimage: Zeroizing<[u8; 32]>,
    sale: [u8; 32],
    amount_msat: u64,
}

impl Rail {
    pub(super) fn new(settings: LightningSettings) -> Rail {
        Rail {
            settings,
            node: None,
            entropy: None,
            next_try: None,
            pause: RETRY_FIRST,
            quotes: VecDeque::new(),
            tip_offer: None,
            held: VecDeque::new(),
            sold: VecDeque::new(),
        }
    }

    /// Whether the node runs or waits to start again (its events are then looked at often).
    pub(super) fn active(&self) -> bool {
        self.node.is_some() || self.next_try.is_some()
    }

    /// The wallet was unlocked: keep the node's keys and start it.
    pub(super) fn unlocked(
        &mut self,
        seed: &Seed,
        dir: &Path,
        network: WalletNetwork,
        esplora: &str,
        emit: &dyn Fn(LnEvent),
    ) {
        if !self.settings.enabled {
            return;
        }
        match seed.lightning_entropy() {
            Ok(entropy) => self.entropy = Some(entropy),
            Err(error) => {
                return emit(LnEvent::Failed { action: "derive the Lightning keys", error: error.to_string() });
            }
        }
        self.pause = RETRY_FIRST;
        self.try_start(dir, network, esplora, emit);
    }

    /// The wallet was locked: stop the node and forget its keys.
    pub(super) fn locked(&mut self, emit: &dyn Fn(LnEvent)) {
        self.entropy = None;
        self.next_try = None;
        self.quotes.clear();
        self.tip_offer = None;
        // Their preimages go with the keys: payments to them are sent back.
        self.held.clear();
        if let Some(node) = self.node.take() {
            if let Err(error) = node.stop() {
                emit(LnEvent::Failed { action: "stop the Lightning node", error: error.to_string() });
            }
            emit(LnEvent::Stopped);
        }
    }

    fn try_start(&mut self, dir: &Path, network: WalletNetwork, esplora: &str, emit: &dyn Fn(LnEvent)) {
        let Some(entropy) = &self.entropy else { return };
        let config = LightningConfig {
            data_dir: LightningConfig::dir_in(dir),
            network,
            esplora_url: esplora.to_owned(),
            listen: self.settings.listen,
            alias: self.settings.alias.clone(),
            provider: self.settings.provider,
            lsp: self.settings.lsp.clone(),
            background_sync: self.settings.background_sync,
        };
        match Lightning::start_with_entropy(entropy, &config, self.settings.runtime.clone()) {
            Ok(node) => {
                self.next_try = None;
                emit(LnEvent::Running { node_id: node.node_id(), listening: node.listening() });
                emit(LnEvent::State { balances: node.balances(), channels: node.channels() });
                self.node = Some(node);
                self.keep_tip_offer(emit);
            }
            Err(error) => {
                emit(LnEvent::Unavailable { error: error.to_string(), retry_s: self.pause.as_secs() });
                self.next_try = Instant::now().checked_add(self.pause);
                self.pause = (self.pause * 2).min(RETRY_LAST);
            }
        }
    }

    /// Looks at the node's events (often), and starts it again when its pause is over.
    pub(super) fn poll(&mut self, dir: &Path, network: WalletNetwork, esplora: &str, emit: &dyn Fn(LnEvent)) {
        if self.node.is_none() {
            if self.next_try.is_some_and(|at| Instant::now() >= at) {
                self.try_start(dir, network, esplora, emit);
            }
            return;
        }
        let Some(node) = &self.node else { return };
        // At most a batch a look: a stream of tiny payments from strangers cannot keep the
        // wallet thread from its commands (the rest wait in LDK's queue for the next look).
        let events: Vec<LightningEvent> = std::iter::from_fn(|| node.next_event()).take(MAX_EVENTS_A_LOOK).collect();
        if events.is_empty() {
            return;
        }
        for event in events {
            match event {
                LightningEvent::PaymentClaimable { hash, amount_msat } => self.take_or_return(hash, amount_msat, emit),
                event => emit(LnEvent::Happened(event)),
            }
        }
        if let Some(node) = &self.node {
            emit(LnEvent::State { balances: node.balances(), channels: node.channels() });
        }
        self.keep_tip_offer(emit);
    }

    /// After the wallet's sync round: the state as it is now.
    pub(super) fn round(&mut self, emit: &dyn Fn(LnEvent)) {
        if let Some(node) = &self.node {
            emit(LnEvent::State { balances: node.balances(), channels: node.channels() });
            self.keep_tip_offer(emit);
        }
    }

    /// Makes the tips offer once a channel is ready (an offer needs a peer to be reached
    /// through), and takes it back when none is.
    fn keep_tip_offer(&mut self, emit: &dyn Fn(LnEvent)) {
        let Some(node) = &self.node else { return };
        let usable = node.channels().iter().any(|channel| channel.state == ChannelState::Ready);
        match (usable, &self.tip_offer) {
            (true, None) => match node.offer(None, TIPS_DESCRIPTION, None) {
                Ok(offer) => {
                    self.tip_offer = Some(offer.clone());
                    emit(LnEvent::TipOffer(Some(offer)));
                }
                Err(error) => emit(LnEvent::Failed { action: "make the offer for tips", error: error.to_string() }),
            },
            (false, Some(_)) => {
                self.tip_offer = None;
                emit(LnEvent::TipOffer(None));
            }
            _ => {}
        }
    }

    /// A payment to a held sale invoice arrived: taken if it is the first for its sale and pays
    /// the price, else sent back to its payer (the item is sold, or the invoice is not ours any
    /// more).
    fn take_or_return(&mut self, hash: [u8; 32], amount_msat: u64, emit: &dyn Fn(LnEvent)) {
        let Some(node) = &self.node else { return };
        let held = self.held.iter().position(|held| held.hash == hash).and_then(|at| self.held.remove(at));
        let outcome = match held {
            Some(held) if !self.sold.contains(&held.sale) && amount_msat >= held.amount_msat => {
                match node.claim_held(&held.preimage, amount_msat) {
                    Ok(()) => {
                        if self.sold.len() >= MAX_SOLD {
                            self.sold.pop_front();
                        }
                        self.sold.push_back(held.sale);
                        return;
                    }
                    Err(error) => Err(error),
                }
            }
            _ => node.fail_held(&hash),
        };
        if let Err(error) = outcome {
            emit(LnEvent::Failed { action: "settle a payment for a sale", error: error.to_string() });
        }
    }

    /// Refuses a tip of `msat` (fees included) that would take the last 24 hours' tips over
    /// the limit.
    fn within_tip_limit(&self, node: &Lightning, msat: u64) -> Result<(), String> {
        let limit_msat = self.settings.tip_limit_sat.unwrap_or(DEFAULT_TIP_LIMIT_SAT).saturating_mul(1000);
        let since = crate::account::now_s().saturating_sub(TIP_WINDOW_SECS);
        let spent = node.tipped_msat_since(since);
        if spent.saturating_add(msat) <= limit_msat {
            return Ok(());
        }
        Err(format!(
            "this tip (up to {} sat with fees) would go over your daily tip limit: {} of {} sat tipped in the last 24 hours",
            crate::group_digits(msat.div_ceil(1000)),
            crate::group_digits(spent.div_ceil(1000)),
            crate::group_digits(limit_msat / 1000),
        ))
    }

    /// Appends the node's settled payments to the ledger, if it runs.
    pub(super) fn write_csv(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        match &self.node {
            Some(node) => node.write_csv(out),
            None => Ok(()),
        }
    }

    pub(super) fn handle(&mut self, command: LnCommand, emit: &dyn Fn(LnEvent)) {
        let Some(node) = &self.node else {
            let error = match (self.settings.enabled, &self.entropy) {
                (false, _) => "Lightning is off in this copy",
                (true, None) => "unlock the wallet first",
                (true, Some(_)) => "the Lightning node has not started yet (the chain source may be away)",
            };
            return emit(LnEvent::Failed { action: "use Lightning", error: error.to_owned() });
        };
        let fail =
            |action: &'static str, error: LightningError| emit(LnEvent::Failed { action, error: error.to_string() });
        let state = || emit(LnEvent::State { balances: node.balances(), channels: node.channels() });
        match command {
            LnCommand::Open { peer, address, amount_sat } => {
                // Coins sent to the node a moment ago may not be seen yet: look before refusing.
                if node.balances().spendable_onchain_sat < amount_sat
                    && let Err(error) = node.sync()
                {
                    return fail("open the channel", error);
                }
                match node.open_channel(&peer, &address, amount_sat, None) {
                    Ok(_) => state(),
                    Err(error) => fail("open the channel", error),
                }
            }
            LnCommand::Close { channel, force } => {
                let channels = node.channels();
                let id = match channel.parse::<usize>() {
                    Ok(number) if (1..=channels.len()).contains(&number) => channels[number - 1].id.clone(),
                    _ => channel,
                };
                match node.close_channel(&id, force) {
                    Ok(()) => state(),
                    Err(error) => fail("close the channel", error),
                }
            }
            LnCommand::Invoice { amount_msat, description, via_lsp } => {
                let description = clip(&description);
                let made = if via_lsp {
                    // The LSP may keep up to 5 % of the payment for opening the channel.
                    node.invoice_via_lsp(amount_msat, &description, amount_msat / 20)
                } else {
                    node.invoice(amount_msat, &description)
                };
                match made {
                    Ok(text) => emit(LnEvent::Made { kind: "invoice", text, expiry_s: Some(REQUEST_EXPIRY_SECS) }),
                    Err(error) => fail("make an invoice", error),
                }
            }
            LnCommand::Offer { amount_msat, description } => match node.offer(amount_msat, &clip(&description), None) {
                Ok(text) => emit(LnEvent::Made { kind: "offer", text, expiry_s: None }),
                Err(error) => fail("make an offer", error),
            },
            LnCommand::Quote { text, amount_msat, tag } => {
                match node.read(&text).and_then(|request| Ok((request.quote(amount_msat)?, request))) {
                    Ok((quote, request)) => {
                        let payee = request.payee();
                        self.keep_quote(tag, request, quote.clone(), false);
                        emit(LnEvent::Quoted { tag, quote, payee });
                    }
                    Err(error) => fail("read the payment request", error),
                }
            }
            LnCommand::SaleInvoice { amount_msat, description, sale, tag } => {
                match node.sale_invoice(amount_msat, &clip(&description), SALE_INVOICE_EXPIRY_SECS) {
                    Ok((invoice, payment_hash, preimage)) => {
                        if self.held.len() >= MAX_HELD {
                            // The oldest goes: a payment to it comes back to its payer.
                            self.held.pop_front();
                        }
                        self.held.push_back(HeldSale { hash: payment_hash, preimage, sale, amount_msat });
                        emit(LnEvent::SaleInvoice { tag, invoice, payment_hash });
                    }
                    Err(error) => fail("make an invoice for the sale", error),
                }
            }
            LnCommand::Purchase { invoice, amount_msat, payment_hash, tag } => {
                let request = match node.read(&invoice) {
                    Ok(request) if request.payment_hash() == Some(payment_hash) => request,
                    Ok(_) => {
                        return emit(LnEvent::Failed {
                            action: "buy",
                            error: "the seller's invoice is not the one their voucher names".into(),
                        });
                    }
                    Err(error) => return fail("read the seller's invoice", error),
                };
                match request.quote(Some(amount_msat)) {
                    Ok(quote) => {
                        let payee = request.payee();
                        self.keep_quote(tag, request, quote.clone(), false);
                        emit(LnEvent::Quoted { tag, quote, payee });
                    }
                    Err(error) => emit(LnEvent::Failed { action: "buy", error: error.to_string() }),
                }
            }
            LnCommand::Tip { offer, amount_msat, tag } => {
                let request = match node.read(&offer) {
                    Ok(request @ PaymentRequest::Offer(_)) => request,
                    Ok(PaymentRequest::Invoice(_)) => {
                        return emit(LnEvent::Failed {
                            action: "tip",
                            error: "a tip goes through an offer, not an invoice".into(),
                        });
                    }
                    Err(error) => return fail("read their offer", error),
                };
                let quote = match request.quote(Some(amount_msat)) {
                    Ok(quote) => quote,
                    Err(error) => return emit(LnEvent::Failed { action: "tip", error: error.to_string() }),
                };
                if let Err(error) = self.within_tip_limit(node, quote.amount_msat.saturating_add(quote.max_fee_msat)) {
                    return emit(LnEvent::Failed { action: "tip", error });
                }
                let payee = request.payee();
                self.keep_quote(tag, request, quote.clone(), true);
                emit(LnEvent::Quoted { tag, quote, payee });
            }
            LnCommand::Pay { tag, note } => {
                let Some(index) = self.quotes.iter().position(|(quoted, ..)| *quoted == tag) else {
                    return emit(LnEvent::Failed { action: "pay", error: "that payment is no longer waiting".into() });
                };
                let Some((_, request, quote, tip)) = self.quotes.remove(index) else { return };
                let mut note = note.map(|note| clip(&note));
                if tip {
                    // Checked again: other tips may have left since this one was quoted.
                    if let Err(error) =
                        self.within_tip_limit(node, quote.amount_msat.saturating_add(quote.max_fee_msat))
                    {
                        return emit(LnEvent::Failed { action: "tip", error });
                    }
                    if !note.as_deref().is_some_and(is_tip_note) {
                        note = Some(TIP_NOTE.to_owned());
                    }
                }
                match node.pay(&request, &quote, note.as_deref()) {
                    Ok(payment) => emit(LnEvent::Paying { tag, payment }),
                    Err(error) => fail("pay", error),
                }
            }
            LnCommand::Cancel { tag } => self.quotes.retain(|(quoted, ..)| *quoted != tag),
            LnCommand::FundingAddress => match node.funding_address() {
                Ok(address) => emit(LnEvent::FundingAddress(address)),
                Err(error) => fail("make a funding address", error),
            },
            LnCommand::Recheck { payments } => {
                for payment in payments.iter().take(MAX_RECHECKED) {
                    if let Some(outcome) = node.outcome(payment) {
                        emit(LnEvent::Rechecked(outcome));
                    }
                }
            }
        }
    }
}

impl Rail {
    fn keep_quote(&mut self, tag: u64, request: PaymentRequest, quote: Quote, tip: bool) {
        if self.quotes.len() >= MAX_QUOTES {
            self.quotes.pop_front();
        }
        self.quotes.push_back((tag, request, quote, tip));
    }
}

fn clip(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(MAX_TEXT_CHARS).collect()
}
