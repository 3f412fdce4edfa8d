//! Paying a home node to keep one's models (`/home NODE-KEY MIB MONTHS`). The network node asks
//! the home node for an invoice (`Command::AskHosting`); its answer carries the node's signed
//! terms, checked by the network node for this person, size and months. The wallet quotes the
//! invoice (it must be for the price the terms name, with their payment hash) and the person
//! confirms "Keep N MiB for M months at NODE"; once paid, the node is named as a host (if it is
//! not yet), and it keeps the models while what was paid for runs.

use sanctuary_engine::MAX_HOSTS;
use sanctuary_net::{Event, HostingOffer};
use sanctuary_wallet::LnCommand;

#[allow(clippy::wildcard_imports)]
use super::*;

/// The most asks and payments kept in flight at once; older ones are forgotten first.
const MAX_IN_FLIGHT: usize = 8;

/// Hosting bought from a node, on its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HostingBuy {
    host: PublicKey,
    mib: u32,
    months: u16,
    /// Whether we name the node as a host already (else we do once paid).
    named: bool,
}

/// Quoted or paying purchases (by quote tag, then payment id).
#[derive(Debug, Default)]
pub struct HostingBuys {
    buying: Vec<(u64, Option<String>, HostingBuy)>,
}

/// A node answered our ask (`/home NODE-KEY MIB MONTHS`, which only our own program makes):
/// its invoice goes to the wallet for a quote.
pub(super) fn offered(event: Event, ui: &mut WalletUi, wallet: Option<&WalletLink>, named: &[PublicKey]) {
    let Event::HostingOffered { host, mib, months, offer } = event else { return };
    let (invoice, payment_hash, amount_msat) = match offer {
        HostingOffer::Invoice { invoice, payment_hash, amount_msat, .. } => (invoice, payment_hash, amount_msat),
        HostingOffer::Refused(reason) => return ui.say(reason, false),
    };
    if !named.contains(&host) && named.len() >= MAX_HOSTS {
        return ui.say(format!("you name {MAX_HOSTS} nodes already, the most: /home off one of them first"), false);
    }
    let Some(wallet) = wallet else { return ui.say("the wallet is not running", false) };
    if ui.lightning.node_id.is_none() {
        return ui.say("paid hosting is paid over Lightning: your Lightning node has not started yet", false);
    }
    let tag = ui.tag(Purpose::Lightning);
    let buy = HostingBuy { host, mib, months, named: named.contains(&host) };
    sale::keep_bounded(&mut ui.hosting.buying, (tag, None, buy), MAX_IN_FLIGHT);
    wallet.send(WalletCommand::Lightning(LnCommand::Purchase { invoice, amount_msat, payment_hash, tag }));
}

/// A quoted hosting payment: its confirmation, if the quote is one of ours.
pub(super) fn quoted(ui: &mut WalletUi, tag: u64, quote: &sanctuary_wallet::lightning::Quote) -> bool {
    let Some((_, _, buy)) = ui.hosting.buying.iter().find(|(quoted, ..)| *quoted == tag) else { return false };
    ui.draft = Some(PendingDraft {
        purpose_text: format!(
            "Keep {} MiB of your models for {} month(s) at home node {}",
            buy.mib,
            buy.months,
            buy.host.short()
        ),
        amount_sats: quote.amount_msat.div_ceil(1000),
        rail: DraftRail::Lightning { tag, max_fee_sats: quote.max_fee_msat.div_ceil(1000), note: None },
    });
    true
}

/// A payment left: remembered by its id.
pub(super) fn paying(ui: &mut WalletUi, tag: u64, payment: &str) {
    if let Some((_, id, _)) = ui.hosting.buying.iter_mut().find(|(quoted, ..)| *quoted == tag) {
        *id = Some(payment.to_owned());
    }
}

/// A payment arrived: if it paid for hosting, the node is named as a host (when it is not yet).
/// Returns whether it was a hosting payment.
pub(super) fn paid(ui: &mut WalletUi, payment: &str, net: Option<&NetLink>) -> bool {
    let Some(at) = ui.hosting.buying.iter().position(|(_, id, _)| id.as_deref() == Some(payment)) else {
        return false;
    };
    let (_, _, buy) = ui.hosting.buying.remove(at);
    if !buy.named
        && let Some(net) = net
    {
        net.send(Command::Build(Op::Host { host: buy.host, kept: true }));
    }
    ui.say(
        format!("paid: {} keeps {} MiB of your models for {} month(s)", buy.host.short(), buy.mib, buy.months),
        true,
    );
    true
}

/// A payment failed: a hosting payment it was is forgotten.
pub(super) fn failed(ui: &mut WalletUi, payment: &str) {
    ui.hosting.buying.retain(|(_, id, _)| id.as_deref() != Some(payment));
}
