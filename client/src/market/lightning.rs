//! Lightning in the wallet: `/ln` commands typed in chat, what the node reports, and payments
//! quoted for the person's yes (the same confirmation as an on-chain payment, showing the amount
//! and the most the routing may cost).

use sanctuary_net::Command;
use sanctuary_wallet::lightning::{TIP_NOTE, is_tip_note};

use crate::network::Social;
use sanctuary_wallet::lightning::{ChannelState, ChannelView, LightningBalances, LightningEvent, Quote};
use sanctuary_wallet::{LnCommand, LnEvent, QrMatrix};

#[allow(clippy::wildcard_imports)]
use super::*;

/// The Lightning node as the person sees it.
#[derive(Debug, Default)]
pub struct LnUi {
    /// The node's id, once it runs.
    pub node_id: Option<String>,
    /// Where it takes connections.
    pub listening: Vec<String>,
    /// Why it is not running, while it is not.
    pub unavailable: Option<String>,
    /// Its money.
    pub balances: Option<LightningBalances>,
    /// Its channels.
    pub channels: Vec<ChannelView>,
    /// The last invoice or offer made here, to share: its kind and text.
    pub made: Option<(&'static str, String)>,
    /// An address of the node's own on-chain wallet, to fund channels.
    pub funding: Option<String>,
    /// Whether others can tip us (an offer is out, with a channel to be paid over).
    pub tips: bool,
}

/// A tip asked for from someone's menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TipAsk {
    /// The offer their profile carries.
    pub offer: String,
    /// Their name, for the confirmation.
    pub name: String,
    /// How much.
    pub sats: u64,
    /// The note it carries to them ("Tip from Ada").
    pub note: String,
}

/// The amounts the menu offers to tip, in sats.
pub const TIP_AMOUNTS: [u64; 3] = [100, 1_000, 5_000];

/// The wallet thread's command for a tip: quoted first (within the daily limit), paid on yes.
pub(super) fn tip_command(ask: TipAsk, ui: &mut WalletUi) -> WalletCommand {
    let tag = ui.tag(Purpose::Tip { name: ask.name, note: ask.note });
    ui.say("asking their offer for an invoice...", true);
    WalletCommand::Lightning(LnCommand::Tip { offer: ask.offer, amount_msat: ask.sats.saturating_mul(1000), tag })
}

/// `/tip NAME SATS`: a tip to someone here by name (as their menu's Tip buttons ask).
pub(super) fn typed_tip(rest: &str, social: &Social) -> Result<TipAsk, String> {
    let usage = "usage: /tip NAME SATS (someone here who takes tips)";
    let mut words: Vec<&str> = rest.split_whitespace().collect();
    let sats = parse_sats(words.pop().ok_or(usage)?)?;
    let name = words.join(" ");
    if name.is_empty() {
        return Err(usage.into());
    }
    let mut found = social.tips.iter().filter(|(key, _)| social.name_of(key).eq_ignore_ascii_case(&name));
    let (Some((_, offer)), None) = (found.next(), found.next()) else {
        return Err(format!("nobody here called {name} takes tips (or several do: click the one you mean)"));
    };
    let me = social.profile.as_ref().map_or("someone", |profile| profile.name.as_str());
    Ok(TipAsk { offer: offer.clone(), name, sats, note: tip_note(me) })
}

/// The note a tip carries: "Tip from Ada".
pub(crate) fn tip_note(me: &str) -> String {
    format!("{TIP_NOTE} from {me}")
}

/// The usage line of every `/ln` command.
pub const LN_USAGE: &str = "/ln pay REQUEST [SATS] | /ln invoice SATS [TEXT] | /ln offer [SATS] [TEXT] | \
                            /ln open NODE_ID@HOST:PORT SATS | /ln close N [force] | /ln address";

/// The largest amount typed in one command: 0.1 BTC (as the payment bound).
const MAX_TYPED_SATS: u64 = sanctuary_wallet::lightning::MAX_PAYMENT_MSAT / 1000;

fn parse_sats(text: &str) -> Result<u64, String> {
    let sats: u64 = text.replace(['_', ','], "").parse().map_err(|_| format!("'{text}' is not an amount in sats"))?;
    if sats == 0 || sats > MAX_TYPED_SATS {
        return Err(format!("amounts are 1 to {} sats", group_digits(MAX_TYPED_SATS)));
    }
    Ok(sats)
}

/// Turns `/ln ...` into a command for the wallet thread.
pub(super) fn ln_command(rest: &[&str], ui: &mut WalletUi) -> Result<Option<WalletCommand>, String> {
    let text_after = |from: usize| rest.get(from..).unwrap_or_default().join(" ");
    let command = match rest.first().copied() {
        None | Some("status") => return Ok(None),
        Some("address") => LnCommand::FundingAddress,
        Some("open") => {
            let usage = "usage: /ln open NODE_ID@HOST:PORT SATS";
            let (Some(node), Some(amount)) = (rest.get(1), rest.get(2)) else { return Err(usage.into()) };
            let link = crate::cli::parse_node_address(node)?;
            LnCommand::Open { peer: link.node_id, address: link.address, amount_sat: parse_sats(amount)? }
        }
        Some("close") => {
            let channel = rest.get(1).ok_or("usage: /ln close N [force] (N from the wallet panel's list)")?;
            LnCommand::Close { channel: (*channel).to_owned(), force: rest.get(2) == Some(&"force") }
        }
        Some("invoice") => {
            let amount = rest.get(1).ok_or("usage: /ln invoice SATS [WHAT FOR]")?;
            LnCommand::Invoice { amount_msat: parse_sats(amount)? * 1000, description: text_after(2), via_lsp: false }
        }
        Some("jit") => {
            let amount = rest.get(1).ok_or("usage: /ln jit SATS [WHAT FOR] (paid through your LSP's new channel)")?;
            LnCommand::Invoice { amount_msat: parse_sats(amount)? * 1000, description: text_after(2), via_lsp: true }
        }
        Some("offer") => match rest.get(1).map(|word| parse_sats(word)) {
            Some(Ok(sats)) => LnCommand::Offer { amount_msat: Some(sats * 1000), description: text_after(2) },
            _ => LnCommand::Offer { amount_msat: None, description: text_after(1) },
        },
        Some("pay") => {
            let request = rest.get(1).ok_or("usage: /ln pay INVOICE-OR-OFFER [SATS]")?;
            let amount_msat = rest.get(2).map(|amount| parse_sats(amount)).transpose()?.map(|sats| sats * 1000);
            let tag = ui.tag(Purpose::Lightning);
            LnCommand::Quote { text: (*request).to_owned(), amount_msat, tag }
        }
        Some(other) => return Err(format!("unknown /ln command '{other}'; {LN_USAGE}")),
    };
    Ok(Some(WalletCommand::Lightning(command)))
}

/// Takes in what the Lightning node reports.
pub(super) fn on_event(event: LnEvent, ui: &mut WalletUi, cues: &mut MessageWriter<SoundCue>, net: Option<&NetLink>) {
    match event {
        LnEvent::Running { node_id, listening } => {
            info!("lightning: node {node_id} running, listening on {listening:?}");
            ui.lightning.node_id = Some(node_id);
            ui.lightning.listening = listening;
            ui.lightning.unavailable = None;
        }
        LnEvent::Unavailable { error, retry_s } => {
            ui.lightning.unavailable = Some(format!("{error} (trying again in {retry_s} s)"));
        }
        LnEvent::Stopped => {
            ui.lightning = LnUi::default();
            if let Some(net) = net {
                net.send(Command::TipOffer(None));
            }
        }
        LnEvent::TipOffer(offer) => {
            // Beside our look, for whoever clicks us: tips need a channel, so the offer comes
            // and goes with one.
            if let Some(net) = net {
                net.send(Command::TipOffer(offer.clone()));
            }
            ui.lightning.tips = offer.is_some();
        }
        LnEvent::State { balances, channels } => {
            ui.lightning.balances = Some(balances);
            ui.lightning.channels = channels;
        }
        LnEvent::Made { kind, text, .. } => {
            // Invoices and offers are for sharing; printing one lets a person copy it.
            info!("lightning: {kind} {text}");
            ui.say(format!("{kind} made: its text is in the terminal, its QR code in the panel"), true);
            ui.lightning.made = Some((kind, text));
        }
        LnEvent::Quoted { tag, quote, payee } => match ui.purposes.remove(&tag) {
            _ if sale::quoted(ui, tag, &quote) || hosting::quoted(ui, tag, &quote) => {}
            Some(Purpose::Tip { name, note }) => ui.draft = Some(tip_draft(tag, &quote, &name, note)),
            Some(_) => ui.draft = Some(lightning_draft(tag, &quote, payee)),
            None => {}
        },
        LnEvent::Paying { tag, payment } => {
            sale::paying(ui, tag, &payment);
            hosting::paying(ui, tag, &payment);
            ui.say("paying over Lightning...", true);
        }
        LnEvent::SaleInvoice { tag, invoice, payment_hash } => {
            sale::invoice_made(ui, tag, invoice, payment_hash, net);
        }
        LnEvent::Happened(event) => match event {
            LightningEvent::PaymentSent { payment, fee_msat, preimage, .. } => {
                cues.write(SoundCue::Paid);
                if !sale::paid(ui, &payment, preimage.as_deref(), net) && !hosting::paid(ui, &payment, net) {
                    ui.say(format!("paid over Lightning (routing fee {} msat)", group_digits(fee_msat)), true);
                }
            }
            LightningEvent::PaymentFailed { payment, reason } => {
                sale::failed(ui, &payment);
                hosting::failed(ui, &payment);
                ui.say(format!("the Lightning payment failed ({reason}); nothing was paid"), false);
            }
            LightningEvent::PaymentReceived { amount_msat, note, .. } => {
                cues.write(SoundCue::Paid);
                match note.filter(|note| is_tip_note(note)) {
                    Some(note) => ui.say(format!("{note}: {} received", sats(amount_msat / 1000)), true),
                    None => ui.say(format!("received {} over Lightning", sats(amount_msat / 1000)), true),
                }
            }
            LightningEvent::ChannelPending { .. } => ui.say("channel opening: waiting for confirmations", true),
            LightningEvent::ChannelReady { .. } => ui.say("a Lightning channel is ready", true),
            LightningEvent::ChannelClosed { reason, .. } => {
                ui.say(format!("a Lightning channel closed: {reason}"), true)
            }
            // The wallet thread takes or returns held payments itself.
            LightningEvent::PaymentClaimable { .. } => {}
        },
        LnEvent::Rechecked(LightningEvent::PaymentSent { payment, preimage, .. }) => {
            sale::paid(ui, &payment, preimage.as_deref(), net);
        }
        LnEvent::Rechecked(LightningEvent::PaymentFailed { payment, .. }) => sale::failed(ui, &payment),
        LnEvent::FundingAddress(address) => {
            info!("lightning: funding address {address}");
            ui.lightning.funding = Some(address);
        }
        LnEvent::Failed { action, error } => ui.say(format!("could not {action}: {error}"), false),
        _ => {}
    }
}

/// The confirmation of a quoted Lightning payment.
fn lightning_draft(tag: u64, quote: &Quote, payee: Option<String>) -> PendingDraft {
    let to = payee.map(|payee| format!(" to {}...", payee.get(..12).unwrap_or(&payee))).unwrap_or_default();
    let what = if quote.description.is_empty() { String::new() } else { format!(" \"{}\"", quote.description) };
    PendingDraft {
        purpose_text: format!("Lightning{what}{to}"),
        amount_sats: quote.amount_msat.div_ceil(1000),
        rail: DraftRail::Lightning { tag, max_fee_sats: quote.max_fee_msat.div_ceil(1000), note: None },
    }
}

/// The confirmation of a tip.
fn tip_draft(tag: u64, quote: &Quote, name: &str, note: String) -> PendingDraft {
    PendingDraft {
        purpose_text: format!("Tip {name} over Lightning"),
        amount_sats: quote.amount_msat.div_ceil(1000),
        rail: DraftRail::Lightning { tag, max_fee_sats: quote.max_fee_msat.div_ceil(1000), note: Some(note) },
    }
}

/// The wallet panel's Lightning lines.
pub(super) fn lightning_lines(ln: &LnUi, spec: &mut PanelSpec) {
    match (&ln.node_id, &ln.unavailable) {
        (Some(node_id), _) => {
            let start = node_id.get(..8).unwrap_or(node_id);
            let end = node_id.get(node_id.len().saturating_sub(6)..).unwrap_or_default();
            spec.line(Tone::Plain, format!("LIGHTNING  node {start}...{end}"));
        }
        (None, Some(why)) => {
            spec.line(Tone::Warn, format!("LIGHTNING  not running: {why}"));
            return;
        }
        (None, None) => {
            spec.line(Tone::Plain, "LIGHTNING  starting...");
            return;
        }
    }
    if let Some(balances) = &ln.balances {
        spec.line(Tone::Good, format!("  in channels  {}", sats(balances.lightning_sat)));
        spec.line(
            Tone::Plain,
            format!(
                "  for channels {} on-chain{}",
                sats(balances.onchain_sat),
                if balances.closing_sat > 0 {
                    format!(", {} closing", sats(balances.closing_sat))
                } else {
                    String::new()
                }
            ),
        );
    }
    for (number, channel) in ln.channels.iter().enumerate().take(4) {
        let state = match channel.state {
            ChannelState::Ready => "ready".to_owned(),
            other => other.to_string(),
        };
        let tone = if channel.state == ChannelState::Ready { Tone::Good } else { Tone::Plain };
        let peer = channel.peer.get(..10).unwrap_or(&channel.peer);
        spec.line(tone, format!("  {}. {} with {peer}...  {state}", number + 1, sats(channel.capacity_sat)));
        spec.line(
            Tone::Plain,
            format!(
                "     can send {}, receive {}",
                group_digits(channel.outbound_msat / 1000),
                group_digits(channel.inbound_msat / 1000)
            ),
        );
    }
    if ln.channels.is_empty() {
        spec.line(Tone::Hint, "  no channel yet: /ln address, fund it, then /ln open NODE_ID@HOST:PORT SATS");
    } else if ln.tips {
        spec.line(Tone::Good, "  others can tip you from your avatar's menu");
    }
    if let Some(address) = &ln.funding {
        spec.line(Tone::Plain, format!("  fund channels at {address}"));
    }
    if let Some((kind, text)) = &ln.made {
        let shown = match text.get(..40) {
            Some(start) if text.len() > 40 => format!("{start}..."),
            _ => text.clone(),
        };
        spec.line(Tone::Good, format!("  your {kind}: {shown}"));
        // The request's QR code takes the receive address's place while it is the newest thing.
        if let Some(qr) = QrMatrix::encode(&text.to_uppercase()) {
            spec.qr = Some(qr);
        }
    }
    spec.line(Tone::Hint, LN_USAGE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_commands_parse_or_say_why_not() {
        let mut ui = WalletUi::default();
        let node = format!("{}@127.0.0.1:9735", "02".repeat(33));
        let open = ln_command(&["open", &node, "500,000"], &mut ui).expect("parses");
        assert!(
            matches!(open, Some(WalletCommand::Lightning(LnCommand::Open { amount_sat: 500_000, .. }))),
            "{open:?}"
        );
        assert!(ln_command(&["open", "nonsense", "5"], &mut ui).is_err());
        assert!(ln_command(&["invoice", "0"], &mut ui).is_err(), "no zero amounts");
        assert!(ln_command(&["invoice", "99999999999"], &mut ui).is_err(), "no absurd amounts");
        let pay = ln_command(&["pay", "lnbcrt1xyz"], &mut ui).expect("parses");
        let Some(WalletCommand::Lightning(LnCommand::Quote { tag, .. })) = pay else { panic!("a quote: {pay:?}") };
        assert!(matches!(ui.purposes.get(&tag), Some(Purpose::Lightning)));
        let offer = ln_command(&["offer", "tips", "welcome"], &mut ui).expect("parses");
        assert!(matches!(offer, Some(WalletCommand::Lightning(LnCommand::Offer { amount_msat: None, .. }))));
        assert!(ln_command(&["fly"], &mut ui).is_err());
        assert!(ln_command(&[], &mut ui).expect("status").is_none());
    }

    #[test]
    fn a_typed_tip_finds_the_one_person_by_name() {
        use sanctuary_net::{PoseFrame, Presence, QuantisedTransform};
        let mut social = Social::default();
        let rest = QuantisedTransform::new(Vec3::ZERO, Quat::IDENTITY);
        let pose = PoseFrame { head: rest, left_hand: rest, right_hand: rest };
        for (seed, name) in [(2, "Bo"), (3, "Cy Twin"), (4, "cy twin"), (5, "Di")] {
            let key = PublicKey::from_secret_seed(&[seed; 32]);
            social.crowd.insert(key, 1, &Presence { name: name.into(), colour: [1, 2, 3], pose }, 1);
            if name != "Di" {
                social.tips.insert(key, format!("lno1offer{seed}"));
            }
        }
        social.profile = Some(sanctuary_net::Profile::new("Ada", [1, 1, 1]));
        let ask = typed_tip(" bo 1,000", &social).expect("Bo takes tips");
        assert_eq!(
            ask,
            TipAsk { offer: "lno1offer2".into(), name: "bo".into(), sats: 1_000, note: "Tip from Ada".into() }
        );
        assert!(typed_tip(" Cy Twin 100", &social).is_err(), "two people answer to that name");
        assert!(typed_tip(" Di 100", &social).is_err_and(|why| why.contains("nobody here called Di takes tips")));
        assert!(typed_tip(" Bo 0", &social).is_err(), "no zero tips");
        assert!(typed_tip(" 100", &social).is_err_and(|why| why.starts_with("usage")));
        assert!(typed_tip("", &social).is_err());
    }

    #[test]
    fn a_quote_becomes_a_confirmation_with_the_fee_cap() {
        let quote = Quote { amount_msat: 21_000_000, max_fee_msat: 215_000, description: "a tip".into() };
        let draft = lightning_draft(7, &quote, Some("03".repeat(33)));
        let text = confirm_panel(&draft).text();
        assert!(text.contains("21,000 sats"), "{text}");
        assert!(text.contains("at most 215 sats"), "{text}");
        assert!(text.contains("at most 21,215 sats"), "{text}");
        assert!(text.contains("\"a tip\""), "{text}");
    }
}
