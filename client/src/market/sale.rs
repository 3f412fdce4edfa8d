//! Stalls paid over Lightning, both sides. The buyer's `F` asks the seller's node for an invoice
//! (`Command::AskSale`); the answer carries the seller's voucher, checked here for this buyer,
//! listing and payment hash before the wallet quotes the invoice (which must name that hash and
//! the price) for the person's yes; once paid, the preimage and the voucher go out as the
//! claim (`Op::BuyLightning`) that every peer checks. The seller's client answers asks with a
//! held invoice from its Lightning node (the same one to a buyer who asks again): the node takes
//! the first payment for the listing and sends any other back to its payer, so nobody can hold
//! a stall by asking and never paying, and no item is sold twice. A sold item is refused.
//!
//! A purchase whose payment has left is written to `lightning-purchases.json` in the wallet's
//! folder until its claim goes out: a client that stops (or is killed) while the payment is on
//! its way asks the wallet again what became of it once both its Lightning node and its network
//! run (`LnCommand::Recheck`), and claims the item then. Nothing paid is left unclaimed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sanctuary_engine::trade::{LightningProof, voucher_signed};
use sanctuary_net::{Event, SaleOffer};
use sanctuary_wallet::{LnCommand, SALE_INVOICE_EXPIRY_SECS};

#[allow(clippy::wildcard_imports)]
use super::*;

/// The most asks and purchases kept in flight at once; older ones are forgotten first.
const MAX_IN_FLIGHT: usize = 16;
/// The most invoices remembered to hand again to the buyer who asked (the wallet holds 64).
const MAX_VOUCHED: usize = 64;
/// The file of purchases paid or being paid and not yet claimed, in the wallet's folder.
pub(super) const PURCHASES_FILE: &str = "lightning-purchases.json";
/// The largest such file read.
const MAX_PURCHASES_BYTES: u64 = 64 * 1024;

/// A purchase over Lightning on its way: what it is for, and the seller's voucher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LightningBuy {
    pub(super) listing: ChangeId,
    pub(super) parcel: ParcelCoord,
    pub(super) title: String,
    pub(super) voucher: [u8; 64],
}

/// Both sides' state.
#[derive(Debug, Default)]
pub struct Sales {
    /// Listings we asked an invoice for, waiting for the seller's answer.
    asked: Vec<(ChangeId, ParcelCoord, String, u64)>,
    /// Quoted or paying purchases, by quote tag, then by payment id.
    buying: Vec<(u64, Option<String>, LightningBuy)>,
    /// As a seller: the invoices handed out and still payable, by listing and buyer (asked
    /// again, a buyer gets the same one), with their hashes and until when.
    vouched: HashMap<(ChangeId, PublicKey), (String, [u8; 32], Instant)>,
    /// Where the purchases on their way are written (set once the wallet runs).
    log: Option<PathBuf>,
    /// Whether to ask the wallet what became of the purchases read back from the log.
    recheck: bool,
}

/// A purchase on its way, as the log keeps it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct LoggedBuy {
    payment: String,
    listing: String,
    parcel: [i32; 2],
    title: String,
    voucher: String,
}

impl Sales {
    /// The wallet runs in `dir`: purchases a earlier run left unclaimed are read back, to be
    /// asked about once the Lightning node and the network run. Once only.
    pub(super) fn open_log(&mut self, dir: &Path) {
        if self.log.is_some() {
            return;
        }
        let path = dir.join(PURCHASES_FILE);
        let logged: Vec<LoggedBuy> = std::fs::metadata(&path)
            .ok()
            .filter(|metadata| metadata.len() <= MAX_PURCHASES_BYTES)
            .and_then(|_| std::fs::read(&path).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        for entry in logged.into_iter().take(MAX_IN_FLIGHT) {
            let hex32 = sanctuary_net::hex::from_hex::<32>;
            let (Some(listing), Some(voucher)) =
                (hex32(&entry.listing), sanctuary_net::hex::from_hex::<64>(&entry.voucher))
            else {
                continue;
            };
            let parcel = ParcelCoord { x: entry.parcel[0], z: entry.parcel[1] };
            let buy = LightningBuy { listing: ChangeId(listing), parcel, title: entry.title, voucher };
            self.buying.push((0, Some(entry.payment), buy));
        }
        self.recheck = !self.buying.is_empty();
        self.log = Some(path);
    }

    /// The payments to ask about, once: purchases read back from the log, when the Lightning
    /// node and the network both run.
    pub(super) fn due_for_recheck(&mut self, ready: bool) -> Option<Vec<String>> {
        if !(ready && self.recheck) {
            return None;
        }
        self.recheck = false;
        Some(self.buying.iter().filter_map(|(_, payment, _)| payment.clone()).collect())
    }

    /// Writes the purchases whose payment has left (whole, then renamed into place).
    fn save(&self) {
        let Some(path) = &self.log else { return };
        let logged: Vec<LoggedBuy> = self
            .buying
            .iter()
            .filter_map(|(_, payment, buy)| {
                Some(LoggedBuy {
                    payment: payment.clone()?,
                    listing: sanctuary_net::hex::hex(&buy.listing.0),
                    parcel: [buy.parcel.x, buy.parcel.z],
                    title: buy.title.clone(),
                    voucher: sanctuary_net::hex::hex(&buy.voucher),
                })
            })
            .collect();
        let fresh = path.with_extension("json.new");
        let written = serde_json::to_vec(&logged)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&fresh, bytes))
            .and_then(|()| std::fs::rename(&fresh, path));
        if let Err(error) = written {
            warn!("the purchases on their way could not be written to {}: {error}", path.display());
        }
    }
}

/// Adds `item` at the end, letting the oldest go when there are `most` already.
pub(super) fn keep_bounded<T>(items: &mut Vec<T>, item: T, most: usize) {
    if items.len() >= most {
        items.remove(0);
    }
    items.push(item);
}

/// The buyer's `F` at a Lightning stall: ask the seller's node for an invoice.
pub(super) fn ask_to_buy(view: &ListingView, ui: &mut WalletUi, net: Option<&NetLink>) {
    let Some(net) = net else { return ui.say("buying needs the network", false) };
    if ui.lightning.node_id.is_none() {
        return ui.say("this stall is paid over Lightning: your Lightning node has not started yet", false);
    }
    let title = view.listing.title.text().unwrap_or("item").to_owned();
    keep_bounded(&mut ui.sales.asked, (view.id, view.parcel, title, view.listing.price_sats), MAX_IN_FLIGHT);
    net.send(Command::AskSale { seller: view.seller, listing: view.id });
    ui.say("asking the seller's node for an invoice...", true);
}

/// What the node says about sales: a buyer's ask (we sell) or a seller's answer (we buy).
pub(super) fn on_net_event(event: Event, ui: &mut WalletUi, market: &Market, me: Option<PublicKey>, link: &Links<'_>) {
    match event {
        Event::SaleOffered { seller, listing, offer } => {
            let Some(at) = ui.sales.asked.iter().position(|(asked, ..)| *asked == listing) else { return };
            let (_, parcel, title, price_sats) = ui.sales.asked.remove(at);
            let (invoice, payment_hash, voucher) = match offer {
                SaleOffer::Invoice { invoice, payment_hash, voucher } => (invoice, payment_hash, voucher),
                SaleOffer::Refused(reason) => return ui.say(reason, false),
            };
            // The voucher is checked before anything is shown: a seller's node that vouches
            // for something else would leave the buyer without a proof.
            let Some(me) = me else { return };
            if !voucher_signed(&seller, &listing, &me, &payment_hash, &voucher) {
                return ui.say("the seller's voucher does not hold: not buying", false);
            }
            let Some(wallet) = &link.wallet else { return ui.say("the wallet is not running", false) };
            let tag = ui.tag(Purpose::Lightning);
            let buy = LightningBuy { listing, parcel, title, voucher };
            keep_bounded(&mut ui.sales.buying, (tag, None, buy), MAX_IN_FLIGHT);
            wallet.send(WalletCommand::Lightning(LnCommand::Purchase {
                invoice,
                amount_msat: price_sats.saturating_mul(1000),
                payment_hash,
                tag,
            }));
        }
        Event::SaleAsked { ask, buyer, listing } => {
            let answer = answer_ask(ui, market, ask, buyer, listing, link);
            if let (Err(reason), Some(net)) = (answer, &link.net) {
                net.send(Command::AnswerSale { ask, answer: Err(reason) });
            }
        }
        _ => {}
    }
}

/// The seller's side: asks the wallet for an invoice for `buyer`, or says why not.
fn answer_ask(
    ui: &mut WalletUi,
    market: &Market,
    ask: u64,
    buyer: PublicKey,
    listing: ChangeId,
    link: &Links<'_>,
) -> Result<(), String> {
    let view = market.listings.iter().find(|view| view.id == listing).ok_or("no such listing")?;
    if market.settled.get(&listing).is_some_and(|settled| settled.state != SaleState::Open) {
        return Err("this item is sold".into());
    }
    let now = Instant::now();
    // A minute's margin: an invoice about to expire is not handed out again.
    ui.sales.vouched.retain(|_, (.., until)| until.saturating_duration_since(now) > Duration::from_secs(60));
    // The same buyer again: the same invoice, however often a key asks.
    if let Some((invoice, payment_hash, _)) = ui.sales.vouched.get(&(listing, buyer)) {
        if let Some(net) = &link.net {
            net.send(Command::AnswerSale { ask, answer: Ok((invoice.clone(), *payment_hash)) });
        }
        return Ok(());
    }
    let (Some(wallet), true) = (&link.wallet, ui.lightning.node_id.is_some()) else {
        return Err("the seller's Lightning node is not running now".into());
    };
    let title = view.listing.title.text().unwrap_or("item").to_owned();
    let tag = ui.tag(Purpose::SaleInvoice { ask, listing, buyer });
    wallet.send(WalletCommand::Lightning(LnCommand::SaleInvoice {
        amount_msat: view.listing.price_sats.saturating_mul(1000),
        description: format!("{title} (Sanctuary)"),
        sale: listing.0,
        tag,
    }));
    ui.say(format!("{} asks to buy {title}: making an invoice", buyer.short()), true);
    Ok(())
}

/// The wallet made the invoice for an ask: vouched for by the node, handed to the buyer.
pub(super) fn invoice_made(
    ui: &mut WalletUi,
    tag: u64,
    invoice: String,
    payment_hash: [u8; 32],
    net: Option<&NetLink>,
) {
    let Some(Purpose::SaleInvoice { listing, buyer, ask }) = ui.purposes.remove(&tag) else { return };
    let until = Instant::now() + Duration::from_secs(u64::from(SALE_INVOICE_EXPIRY_SECS));
    if let Some(net) = net {
        net.send(Command::AnswerSale { ask, answer: Ok((invoice.clone(), payment_hash)) });
    }
    if ui.sales.vouched.len() < MAX_VOUCHED {
        ui.sales.vouched.insert((listing, buyer), (invoice, payment_hash, until));
    }
}

/// A quoted purchase: its confirmation, if the quote is one of ours.
pub(super) fn quoted(ui: &mut WalletUi, tag: u64, quote: &sanctuary_wallet::lightning::Quote) -> bool {
    let Some((_, _, buy)) = ui.sales.buying.iter().find(|(quoted, ..)| *quoted == tag) else { return false };
    ui.draft = Some(PendingDraft {
        purpose_text: format!("Buy \"{}\" over Lightning", buy.title),
        amount_sats: quote.amount_msat.div_ceil(1000),
        rail: DraftRail::Lightning { tag, max_fee_sats: quote.max_fee_msat.div_ceil(1000), note: None },
    });
    true
}

/// A payment left: remembered by its id, to claim the item when it arrives.
pub(super) fn paying(ui: &mut WalletUi, tag: u64, payment: &str) {
    if let Some((_, id, _)) = ui.sales.buying.iter_mut().find(|(quoted, ..)| *quoted == tag) {
        *id = Some(payment.to_owned());
        ui.sales.save();
    }
}

/// A payment arrived: if it bought an item, the claim goes out with the preimage and voucher.
/// Returns whether it was a purchase.
pub(super) fn paid(ui: &mut WalletUi, payment: &str, preimage: Option<&str>, net: Option<&NetLink>) -> bool {
    let Some(at) = ui.sales.buying.iter().position(|(_, id, _)| id.as_deref() == Some(payment)) else { return false };
    let Some(net) = net else {
        // Kept, and asked about again once the network runs.
        ui.sales.recheck = true;
        ui.say("paid; the item is claimed once the network runs", false);
        return true;
    };
    let (_, _, buy) = ui.sales.buying.remove(at);
    ui.sales.save();
    let Some(preimage) = preimage.and_then(sanctuary_net::hex::from_hex::<32>) else {
        ui.say("paid, but the payment's proof is missing: the item cannot be claimed", false);
        return true;
    };
    let proof = LightningProof { preimage, voucher: buy.voucher };
    net.send(Command::Build(Op::BuyLightning { parcel: buy.parcel, listing: buy.listing, proof }));
    ui.say(format!("paid for {} over Lightning: it is yours", buy.title), true);
    true
}

/// A payment failed: a purchase it was is forgotten.
pub(super) fn failed(ui: &mut WalletUi, payment: &str) {
    let before = ui.sales.buying.len();
    ui.sales.buying.retain(|(_, id, _)| id.as_deref() != Some(payment));
    if ui.sales.buying.len() != before {
        ui.sales.save();
    }
}

/// The wallet thread and the network node, either of which may be missing.
pub(super) struct Links<'a> {
    pub(super) wallet: Option<&'a WalletLink>,
    pub(super) net: Option<&'a NetLink>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purchases_on_their_way_are_written_until_settled_and_read_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut ui = WalletUi::default();
        ui.sales.open_log(dir.path());
        assert!(ui.sales.due_for_recheck(true).is_none(), "nothing to ask about");
        let buy = LightningBuy {
            listing: ChangeId([1; 32]),
            parcel: ParcelCoord { x: 3, z: -4 },
            title: "Glass koi".into(),
            voucher: [2; 64],
        };
        let payment = "ab".repeat(32);
        ui.sales.buying.push((7, None, buy.clone()));
        ui.sales.save();
        assert_eq!(std::fs::read(dir.path().join(PURCHASES_FILE)).expect("written"), b"[]", "not paid yet");
        paying(&mut ui, 7, &payment);

        // The next run reads it back and asks about it once, when it can claim.
        let mut again = WalletUi::default();
        again.sales.open_log(dir.path());
        assert_eq!(again.sales.buying, vec![(0, Some(payment.clone()), buy)]);
        assert!(again.sales.due_for_recheck(false).is_none());
        assert_eq!(again.sales.due_for_recheck(true), Some(vec![payment.clone()]));
        assert!(again.sales.due_for_recheck(true).is_none(), "once");
        // Paid while the network is not up: kept, and asked about again.
        assert!(paid(&mut again, &payment, Some(&"cd".repeat(32)), None));
        assert_eq!(again.sales.buying.len(), 1);
        assert_eq!(again.sales.due_for_recheck(true), Some(vec![payment.clone()]));
        // A failed payment leaves the log.
        failed(&mut again, &payment);
        let mut third = WalletUi::default();
        third.sales.open_log(dir.path());
        assert!(third.sales.buying.is_empty());

        // A damaged log reads as empty.
        std::fs::write(dir.path().join(PURCHASES_FILE), b"{ not json").expect("writes");
        let mut fourth = WalletUi::default();
        fourth.sales.open_log(dir.path());
        assert!(fourth.sales.buying.is_empty() && fourth.sales.due_for_recheck(true).is_none());
    }
}
