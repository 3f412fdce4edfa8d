//! The wallet panel and the marketplace stalls.
//!
//! The wallet runs on its own thread ([`sanctuary_wallet::WalletService`]); this module sends it
//! commands and shows what it reports. `P` opens the wallet panel anywhere. Wallet commands are
//! typed in the chat box and never sent as chat: `/wallet create PASSPHRASE`, `/wallet restore
//! PASSPHRASE WORDS...`, `/wallet unlock PASSPHRASE`, `/wallet lock`, `/receive`, `/sync`,
//! `/send ADDRESS SATS [SAT/VB]`, `/export [PATH]`, and for sellers `/sell SATS [CONFIRMATIONS]
//! TITLE` (sells the model imported last, from a stall where the seller stands) and `/withdraw`.
//!
//! Stalls stand where their listings say, on a parcel the seller owns or on unclaimed land.
//! Standing at one shows its offer; `F` buys: the wallet prepares the payment (to the listing's
//! address, with the buyer's commitment in an `OP_RETURN`), a confirmation shows the price and
//! fee, `Y` pays and `N` cancels. The buyer's claim then goes out as a world change, and every
//! peer decides the sale by the trade rule from what its chain source says.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use bevy::prelude::*;
use sanctuary_engine::trade::{
    self, Listing, ListingView, PayTo, PaymentSeen, SaleState, Settlement, Title, TxId, Verdict,
};
use sanctuary_engine::{ChangeId, ModelRef, Op, ParcelCoord, Placement, PublicKey, RegionId, Rgb, Shape, Structure};
use sanctuary_net::Command;
use sanctuary_wallet::{
    Balances, HistoryEntry, LnCommand, PayRequest, PayTarget, Receive, ServiceConfig, SyncProgress, TxState,
    WalletCommand, WalletEvent, WalletNetwork, WalletService, WalletStatus, WalletTxid, Zeroizing, group_digits,
    trade_txid,
};

use crate::Frame;
use crate::build::CityWorld;
use crate::cues::SoundCue;
use crate::network::{ChatInput, NetLink, Social};
use crate::panels::{PanelAction, PanelContent, PanelPressed, PanelSlot, PanelSpec, Tone};
use crate::player::Player;
use crate::world::{CurrentRegion, RegionScoped, StructureView, structure_transform};

/// How close a person must stand to a stall to use it, in metres.
const STALL_REACH: f32 = 4.0;
/// Stalls are drawn this close, in metres.
const STALL_VIEW: f32 = 90.0;
/// Seconds between looks at the world's listings.
const MARKET_REFRESH_S: f32 = 1.0;

mod directory;
mod hosting;
#[cfg(test)]
mod hosting_tests;
mod lightning;
mod panels;
mod sale;
#[cfg(test)]
mod sale_tests;
#[cfg(test)]
mod tip_tests;
pub(crate) use lightning::{TIP_AMOUNTS, TipAsk, tip_note};
use panels::fill_panels;
pub use panels::{confirm_panel, stall_panel, wallet_panel};

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<WalletUi>().init_resource::<Market>().init_resource::<directory::Directory>().add_systems(
        Update,
        (
            (read_wallet_events, take_sale_events, wallet_keys, wallet_commands).chain().in_set(Frame::Input),
            (directory::use_directory_panel, directory::market_directory, directory::arrive_at_stall)
                .chain()
                .in_set(Frame::Input),
            (refresh_market, show_stalls, place_stall_labels, fill_panels, directory::fill_directory_panel)
                .chain()
                .in_set(Frame::Present),
        ),
    );
}

/// The wallet thread and what it last said.
#[derive(Resource, Debug)]
pub struct WalletLink {
    service: WalletService,
    /// The wallet's network.
    pub network: WalletNetwork,
    /// The chain source's URL.
    pub esplora: String,
    /// Where `/export` writes by default.
    pub dir: PathBuf,
}

impl WalletLink {
    /// Starts the wallet thread.
    pub fn start(config: ServiceConfig) -> std::io::Result<Self> {
        let (network, esplora, dir) = (config.network, config.esplora_url.clone(), config.dir.clone());
        Ok(Self { service: WalletService::spawn(config)?, network, esplora, dir })
    }

    fn send(&self, command: WalletCommand) {
        self.service.send(command);
    }
}

/// What a prepared payment is for.
#[derive(Debug, Clone, PartialEq)]
enum Purpose {
    /// `/send`.
    Send { to: String },
    /// Buying from a stall.
    Buy { listing: ChangeId, parcel: ParcelCoord, title: String },
    /// A Lightning payment being quoted.
    Lightning,
    /// A tip being quoted: to whom, and the note it carries.
    Tip { name: String, note: String },
    /// An invoice being made for a buyer's ask at our Lightning stall.
    SaleInvoice { ask: u64, listing: ChangeId, buyer: PublicKey },
    /// A listing waiting for its fresh address.
    List { parcel: ParcelCoord, item: ModelRef, title: Title, price_sats: u64, confirmations: u8, spot: Vec3 },
}

/// A payment waiting for the person's yes.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDraft {
    purpose_text: String,
    amount_sats: u64,
    rail: DraftRail,
}

/// How a payment waiting for a yes would go.
#[derive(Debug, Clone, PartialEq)]
enum DraftRail {
    /// A signed transaction, with its network fee.
    Chain { txid: WalletTxid, fee_sats: u64, fee_rate: f64 },
    /// A quoted Lightning payment, with the most its routing may cost.
    Lightning { tag: u64, max_fee_sats: u64, note: Option<String> },
}

/// The wallet as the person sees it.
#[derive(Resource, Debug, Default)]
pub struct WalletUi {
    /// The panel is open.
    pub open: bool,
    /// Whether a wallet exists and is open (`None` until the thread reports).
    pub status: Option<WalletStatus>,
    /// The money, after the first sync.
    pub balances: Option<Balances>,
    /// The chain's height at the last sync.
    pub tip: Option<u32>,
    /// The history.
    pub history: Vec<HistoryEntry>,
    /// The receive address.
    pub receive: Option<Receive>,
    /// A sync under way.
    pub progress: Option<SyncProgress>,
    /// New recovery words, shown until the panel closes.
    words: Option<Zeroizing<String>>,
    /// The last outcome: text and whether it went well.
    pub message: Option<(String, bool)>,
    /// A payment to confirm.
    pub draft: Option<PendingDraft>,
    /// The Lightning node.
    pub lightning: lightning::LnUi,
    /// A tip asked for from someone's menu, for the wallet thread to quote.
    pub tip_asked: Option<TipAsk>,
    /// Purchases and sales over Lightning under way.
    pub sales: sale::Sales,
    /// Hosting bought from home nodes, under way.
    pub hosting: hosting::HostingBuys,
    next_tag: u64,
    purposes: HashMap<u64, Purpose>,
    /// Sent payments still to be claimed as purchases.
    to_claim: HashMap<WalletTxid, Purpose>,
}

impl WalletUi {
    fn tag(&mut self, purpose: Purpose) -> u64 {
        self.next_tag += 1;
        self.purposes.insert(self.next_tag, purpose);
        self.next_tag
    }

    fn say(&mut self, text: impl Into<String>, ok: bool) {
        let text = text.into();
        info!("wallet: {text}");
        self.message = Some((text, ok));
    }
}

/// The listings of the world, decided by the trade rule from what the chain source says.
#[derive(Resource, Debug, Default)]
pub struct Market {
    /// Every listing held, in id order.
    pub listings: Vec<ListingView>,
    /// Each listing's sale.
    pub settled: HashMap<ChangeId, Settlement>,
    /// What the chain source said about the payments to each listing's address.
    pub payments: HashMap<ChangeId, HashMap<TxId, PaymentSeen>>,
    /// The chain's height at the last look.
    pub tip: Option<u32>,
    /// Listings whose stall may stand: open, on the seller's land or unclaimed land.
    pub standing: HashSet<ChangeId>,
    watched: Vec<ListingView>,
    since_refresh: f32,
}

/// An amount as the panels and buttons show it: "1,000 sats".
pub(crate) fn sats(amount: u64) -> String {
    format!("{} sats", group_digits(amount))
}

fn read_wallet_events(
    link: Option<Res<WalletLink>>,
    mut ui: ResMut<WalletUi>,
    mut market: ResMut<Market>,
    net: Option<Res<NetLink>>,
    mut cues: MessageWriter<SoundCue>,
) {
    let Some(link) = link else { return };
    ui.sales.open_log(&link.dir);
    let ready = ui.lightning.node_id.is_some() && net.is_some();
    if let Some(payments) = ui.sales.due_for_recheck(ready) {
        link.service.send(WalletCommand::Lightning(LnCommand::Recheck { payments }));
    }
    for event in link.service.drain() {
        match event {
            WalletEvent::Status(status) => {
                ui.status = Some(status);
                if status != WalletStatus::Unlocked {
                    ui.balances = None;
                    ui.receive = None;
                    ui.history.clear();
                }
            }
            WalletEvent::Created { words } => {
                ui.words = words;
                ui.open = true;
                ui.say("wallet created and unlocked", true);
            }
            WalletEvent::Progress(progress) => ui.progress = Some(progress),
            WalletEvent::Synced { tip_height, balances, history, rebroadcast } => {
                ui.progress = None;
                ui.tip = Some(tip_height);
                ui.balances = Some(balances);
                ui.history = history;
                if rebroadcast > 0 {
                    ui.say(format!("sent {rebroadcast} pending payment(s) again"), true);
                }
            }
            WalletEvent::Receive(receive) => {
                // Addresses are public; printing it lets a person copy it from the terminal.
                info!("wallet: receive address {}", receive.address);
                ui.receive = Some(receive);
            }
            WalletEvent::FreshAddress { tag, script, .. } => {
                let Some(Purpose::List { parcel, item, title, price_sats, confirmations, spot }) =
                    ui.purposes.remove(&tag)
                else {
                    continue;
                };
                let Some(pay_to) = PayTo::new(&script) else {
                    ui.say("the wallet's address does not fit a listing", false);
                    continue;
                };
                let listing = Listing { item, title, price_sats, pay_to, confirmations, spot };
                match &net {
                    Some(net) => {
                        net.send(Command::Build(Op::List { parcel, listing }));
                        ui.say(format!("listing {} for {}", title.text().unwrap_or("?"), sats(price_sats)), true);
                    }
                    None => ui.say("no network: listings need one", false),
                }
            }
            WalletEvent::Prepared { tag, txid, amount_sats, fee_sats, fee_rate_sat_vb } => {
                let Some(purpose) = ui.purposes.remove(&tag) else { continue };
                let purpose_text = match &purpose {
                    Purpose::Send { to } => format!("Send to {to}"),
                    Purpose::Buy { title, .. } => format!("Buy \"{title}\""),
                    Purpose::List { .. } | Purpose::Lightning | Purpose::Tip { .. } | Purpose::SaleInvoice { .. } => {
                        continue;
                    }
                };
                ui.to_claim.insert(txid, purpose);
                let rail = DraftRail::Chain { txid, fee_sats, fee_rate: fee_rate_sat_vb };
                ui.draft = Some(PendingDraft { purpose_text, amount_sats, rail });
            }
            WalletEvent::Sent(txid) => {
                cues.write(SoundCue::Paid);
                match ui.to_claim.remove(&txid) {
                    Some(Purpose::Buy { listing, parcel, title }) => {
                        if let Some(net) = &net {
                            net.send(Command::Build(Op::Buy { parcel, listing, txid: trade_txid(txid) }));
                        }
                        ui.say(format!("paid for {title}: pending until the payment confirms"), true);
                    }
                    _ => ui.say(format!("sent: {txid}"), true),
                }
                market.since_refresh = MARKET_REFRESH_S;
            }
            WalletEvent::Exported(path) => ui.say(format!("ledger written to {}", path.display()), true),
            WalletEvent::Payments { tip_height, seen } => {
                market.tip = Some(tip_height);
                market.payments = seen;
                market.since_refresh = MARKET_REFRESH_S;
            }
            WalletEvent::Lightning(event) => lightning::on_event(event, &mut ui, &mut cues, net.as_deref()),
            WalletEvent::Failed { action, error } => {
                ui.progress = None;
                ui.say(format!("could not {action}: {error}"), false);
            }
            _ => {}
        }
    }
}

/// What the node said about Lightning sales, for either side.
fn take_sale_events(
    link: Option<Res<WalletLink>>,
    net: Option<Res<NetLink>>,
    mut ui: ResMut<WalletUi>,
    market: Res<Market>,
    world: Res<CityWorld>,
    mut events: ResMut<crate::network::SaleEvents>,
) {
    let links = sale::Links { wallet: link.as_deref(), net: net.as_deref() };
    while let Some(event) = events.0.pop_front() {
        if let sanctuary_net::Event::HostingOffered { .. } = event {
            let named = match (&world.replica, world.me) {
                (Some(replica), Some(me)) => replica.world().hosts_of(&me),
                _ => Vec::new(),
            };
            hosting::offered(event, &mut ui, link.as_deref(), &named);
        } else {
            sale::on_net_event(event, &mut ui, &market, world.me, &links);
        }
    }
}

/// The listing at the stall the person stands at, if any.
fn stall_in_reach(market: &Market, position: Vec3) -> Option<&ListingView> {
    market
        .listings
        .iter()
        .filter(|view| view.withdrawn_at.is_none())
        .map(|view| (view, view.listing.spot.distance(position)))
        .filter(|(_, distance)| *distance <= STALL_REACH)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(view, _)| view)
}

fn wallet_commands(
    link: Option<Res<WalletLink>>,
    mut input: ResMut<ChatInput>,
    mut ui: ResMut<WalletUi>,
    market: Res<Market>,
    world: Res<CityWorld>,
    net: Option<Res<NetLink>>,
    players: Query<&Transform, With<Player>>,
    social: Res<Social>,
) {
    let mut typed = std::mem::take(&mut input.wallet_commands);
    // `/tip NAME SATS` asks as the menu's Tip buttons do.
    typed.retain(|text| match text.strip_prefix("/tip") {
        Some(rest) if rest.is_empty() || rest.starts_with(' ') => {
            match lightning::typed_tip(rest, &social) {
                Ok(ask) => ui.tip_asked = Some(ask),
                Err(problem) => ui.say(problem, false),
            }
            false
        }
        _ => true,
    });
    if let Some(ask) = ui.tip_asked.take() {
        match (&link, ui.status) {
            (None, _) => ui.say("the wallet is not running", false),
            (Some(_), status) if status != Some(WalletStatus::Unlocked) => {
                ui.say("unlock your wallet to tip (P shows how)", false)
            }
            (Some(link), _) => link.send(lightning::tip_command(ask, &mut ui)),
        }
        ui.open = true;
    }
    for text in typed {
        let Some(link) = &link else {
            ui.say("the wallet is not running", false);
            continue;
        };
        let player = players.single().copied().unwrap_or_default();
        let position = player.translation;
        match wallet_command(&text, &mut ui, &world, player, link, net.as_deref()) {
            Ok(Some(command)) => link.send(command),
            Ok(None) => {}
            Err(problem) => ui.say(problem, false),
        }
        if text.starts_with("/withdraw") {
            withdraw(&mut ui, &market, &world, net.as_deref(), position);
        }
        ui.open = true;
    }
}

/// Turns one typed wallet command into a command for the wallet thread.
fn wallet_command(
    text: &str,
    ui: &mut WalletUi,
    world: &CityWorld,
    player: Transform,
    link: &WalletLink,
    net: Option<&NetLink>,
) -> Result<Option<WalletCommand>, String> {
    let position = player.translation;
    let mut words = text.split_whitespace();
    let command = words.next().unwrap_or("");
    let rest: Vec<&str> = words.collect();
    let passphrase = |rest: &[&str]| -> Result<Zeroizing<String>, String> {
        match rest.first() {
            Some(passphrase) if passphrase.chars().count() >= 8 => Ok(Zeroizing::new((*passphrase).to_owned())),
            Some(_) => Err("choose an unlock passphrase of at least 8 characters (no spaces)".into()),
            None => Err("type the unlock passphrase after the command".into()),
        }
    };
    match (command, rest.first().copied()) {
        ("/wallet", Some("create")) => Ok(Some(WalletCommand::Create {
            words: None,
            bip39_passphrase: Zeroizing::new(String::new()),
            unlock: passphrase(&rest[1..])?,
        })),
        ("/wallet", Some("restore")) => {
            let unlock = passphrase(&rest[1..])?;
            if rest.len() < 14 {
                return Err("usage: /wallet restore PASSPHRASE WORD1 ... WORD12 (or 24)".into());
            }
            Ok(Some(WalletCommand::Create {
                words: Some(Zeroizing::new(rest[2..].join(" "))),
                bip39_passphrase: Zeroizing::new(String::new()),
                unlock,
            }))
        }
        ("/wallet", Some("unlock")) => Ok(Some(WalletCommand::Unlock(passphrase(&rest[1..])?))),
        ("/wallet", Some("lock")) => Ok(Some(WalletCommand::Lock)),
        ("/wallet", _) => Err("usage: /wallet create|restore|unlock PASSPHRASE, or /wallet lock".into()),
        ("/receive", _) => Ok(Some(WalletCommand::Receive)),
        ("/sync", _) => Ok(Some(WalletCommand::Sync)),
        ("/export", _) => {
            let path = rest.first().map_or_else(|| link.dir.join("ledger.csv"), PathBuf::from);
            Ok(Some(WalletCommand::ExportCsv(path)))
        }
        ("/send", _) => {
            let usage = "usage: /send ADDRESS SATS [FEE SAT/VB]";
            let (Some(address), Some(amount)) = (rest.first(), rest.get(1)) else { return Err(usage.into()) };
            let amount_sats: u64 = amount.replace(['_', ','], "").parse().map_err(|_| usage.to_owned())?;
            let fee_rate_sat_vb = match rest.get(2) {
                Some(rate) => rate.parse::<f64>().map_err(|_| usage.to_owned())?,
                None => 0.0,
            };
            let request = PayRequest {
                to: PayTarget::Address((*address).to_owned()),
                amount_sats,
                fee_rate_sat_vb,
                commitment: None,
            };
            let tag = ui.tag(Purpose::Send { to: (*address).to_owned() });
            Ok(Some(WalletCommand::Prepare { request, tag }))
        }
        ("/sell", _) => {
            let usage = "usage: /sell SATS [CONFIRMATIONS 0-6 | ln] TITLE (sells the model you imported last; ln: paid \
                         over Lightning)";
            let price_sats: u64 =
                rest.first().and_then(|price| price.replace(['_', ','], "").parse().ok()).ok_or(usage)?;
            let lightning = rest.get(1).is_some_and(|word| word.eq_ignore_ascii_case("ln"));
            let (confirmations, title_from) = match rest.get(1).and_then(|word| word.parse::<u8>().ok()) {
                Some(confirmations) => (confirmations, 2),
                None if lightning => (0, 2),
                None => (1, 1),
            };
            let title = Title::new(&rest.get(title_from..).unwrap_or_default().join(" ")).ok_or(usage)?;
            let Some((_, item)) = world.imported.last() else {
                return Err("import a model first (/import PATH), then sell it".into());
            };
            let parcel = ParcelCoord::containing(position)
                .ok_or("stand on a parcel (yours, or unclaimed land) to set up your stall")?;
            let me = world.me.ok_or("the network has not started yet")?;
            if let Some(owner) = world.replica.as_ref().and_then(|replica| replica.parcel(parcel).owner())
                && owner != me
            {
                return Err(
                    "this parcel belongs to someone else: set up your stall on your own or unclaimed land".into()
                );
            }
            // The stall stands a few steps ahead, on the same parcel (else where the seller is).
            let ahead = player.forward().with_y(0.0).normalize_or_zero() * 3.0;
            let spot = [position + ahead, position]
                .into_iter()
                .find(|spot| ParcelCoord::containing(*spot) == Some(parcel))
                .map_or(Vec3::new(position.x, 0.0, position.z), |spot| Vec3::new(spot.x, 0.0, spot.z));
            if lightning {
                // Paid to our Lightning node: no address to fetch, and it must be running.
                if ui.lightning.node_id.is_none() {
                    return Err("a Lightning stall needs your Lightning node running (unlock the wallet)".into());
                }
                let listing = Listing { item: *item, title, price_sats, pay_to: PayTo::LIGHTNING, confirmations, spot };
                listing.check().map_err(|error| error.to_string())?;
                net.ok_or("no network: listings need one")?.send(Command::Build(Op::List { parcel, listing }));
                ui.say(
                    format!("listing {} for {} over Lightning", title.text().unwrap_or("?"), sats(price_sats)),
                    true,
                );
                return Ok(None);
            }
            let listing = Listing {
                item: *item,
                title,
                price_sats,
                // Checked with a placeholder address; the real one comes from the wallet.
                pay_to: PayTo::new(&[0; 22]).ok_or(usage)?,
                confirmations,
                spot,
            };
            listing.check().map_err(|error| error.to_string())?;
            let tag = ui.tag(Purpose::List { parcel, item: *item, title, price_sats, confirmations, spot });
            Ok(Some(WalletCommand::FreshAddress { tag }))
        }
        ("/withdraw", _) => Ok(None),
        ("/ln", _) => lightning::ln_command(&rest, ui),
        _ => Err(format!("unknown wallet command {command}")),
    }
}

/// Withdraws the seller's nearest open listing.
fn withdraw(ui: &mut WalletUi, market: &Market, world: &CityWorld, net: Option<&NetLink>, position: Vec3) {
    let Some(me) = world.me else { return };
    let own = market
        .listings
        .iter()
        .filter(|view| view.seller == me && view.withdrawn_at.is_none())
        .min_by(|a, b| a.listing.spot.distance(position).total_cmp(&b.listing.spot.distance(position)));
    let (Some(view), Some(net)) = (own, net) else {
        ui.say("you have no open listing to withdraw", false);
        return;
    };
    let at_height = market.tip.or(ui.tip).unwrap_or(0);
    net.send(Command::Build(Op::Withdraw { parcel: view.parcel, listing: view.id, at_height }));
    ui.say(format!("withdrawing {}", view.listing.title.text().unwrap_or("the listing")), true);
}

fn wallet_keys(
    keys: Res<ButtonInput<KeyCode>>,
    mut pressed: MessageReader<PanelPressed>,
    mut input: ResMut<ChatInput>,
    link: Option<Res<WalletLink>>,
    mut ui: ResMut<WalletUi>,
    market: Res<Market>,
    world: Res<CityWorld>,
    players: Query<&Transform, With<Player>>,
    net: Option<Res<NetLink>>,
) {
    let buttons: Vec<PanelAction> = pressed.read().map(|PanelPressed(action)| *action).collect();
    let button = |action: PanelAction| buttons.contains(&action);
    // The panel's wallet buttons are its typed commands.
    for (action, command) in
        [(PanelAction::Sync, "/sync"), (PanelAction::Receive, "/receive"), (PanelAction::Lock, "/wallet lock")]
    {
        if button(action) {
            input.wallet_commands.push(command.to_owned());
        }
    }
    let typing = input.open;
    let key = |code: KeyCode| !typing && keys.just_pressed(code);
    let Some(link) = link else { return };
    if let Some(draft) = ui.draft.clone() {
        if key(KeyCode::KeyY) || button(PanelAction::Pay) {
            link.send(match draft.rail {
                DraftRail::Chain { txid, .. } => WalletCommand::Confirm(txid),
                DraftRail::Lightning { tag, note, .. } => WalletCommand::Lightning(LnCommand::Pay { tag, note }),
            });
            ui.draft = None;
            ui.say("sending...", true);
        } else if key(KeyCode::KeyN) || key(KeyCode::Escape) || button(PanelAction::Cancel) {
            match draft.rail {
                DraftRail::Chain { txid, .. } => {
                    link.send(WalletCommand::Cancel(txid));
                    ui.to_claim.remove(&txid);
                }
                DraftRail::Lightning { tag, .. } => link.send(WalletCommand::Lightning(LnCommand::Cancel { tag })),
            }
            ui.draft = None;
            ui.say("payment cancelled; nothing was sent", true);
        }
        return;
    }
    if key(KeyCode::KeyP) || button(PanelAction::ToggleWallet) {
        ui.open = !ui.open;
        if !ui.open {
            ui.words = None;
        }
    }
    if key(KeyCode::KeyF) || button(PanelAction::Buy) {
        let Ok(player) = players.single() else { return };
        let Some(view) = stall_in_reach(&market, player.translation) else { return };
        let Some(me) = world.me else { return };
        if view.seller == me {
            ui.say("this is your own stall (/withdraw takes it down)", false);
            return;
        }
        if ui.status != Some(WalletStatus::Unlocked) {
            ui.open = true;
            ui.say("unlock your wallet to buy (P shows how)", false);
            return;
        }
        let state = market.settled.get(&view.id).map(|settled| settled.state);
        if matches!(
            state,
            Some(
                SaleState::Owned { .. }
                    | SaleState::Pending { .. }
                    | SaleState::Unclaimed { .. }
                    | SaleState::Paid { .. }
            )
        ) {
            ui.say("this item is already sold or being paid for", false);
            return;
        }
        if view.listing.pay_to.is_lightning() {
            // Never paid on-chain: the listing has no address.
            return sale::ask_to_buy(view, &mut ui, net.as_deref());
        }
        let title = view.listing.title.text().unwrap_or("item").to_owned();
        let request = PayRequest {
            to: PayTarget::Script(view.listing.pay_to.script()),
            amount_sats: view.listing.price_sats,
            fee_rate_sat_vb: 0.0,
            commitment: Some(trade::payment_commitment(&view.id, &me)),
        };
        let tag = ui.tag(Purpose::Buy { listing: view.id, parcel: view.parcel, title });
        link.send(WalletCommand::Prepare { request, tag });
        ui.say("preparing the payment...", true);
    }
}

fn refresh_market(
    time: Res<Time>,
    mut market: ResMut<Market>,
    mut world: ResMut<CityWorld>,
    link: Option<Res<WalletLink>>,
) {
    market.since_refresh += time.delta_secs();
    if market.since_refresh < MARKET_REFRESH_S {
        return;
    }
    market.since_refresh = 0.0;
    let Some(replica) = world.replica.clone() else { return };
    market.listings = replica.listings();
    // On the seller's land or unclaimed land only: nobody sets up shop on another's.
    market.standing = market
        .listings
        .iter()
        .filter(|view| view.withdrawn_at.is_none())
        .filter(|view| ParcelCoord::containing(view.listing.spot) == Some(view.parcel))
        .filter(|view| replica.parcel(view.parcel).owner().is_none_or(|owner| owner == view.seller))
        .map(|view| view.id)
        .collect();
    // The wallet thread decides what to ask the chain source about, within its budgets.
    if market.listings != market.watched {
        market.watched = market.listings.clone();
        if let Some(link) = &link {
            link.send(WalletCommand::Watch { listings: market.listings.clone(), me: world.me });
        }
    }
    let tip = market.tip.unwrap_or(0);
    let no_payments = HashMap::new();
    let settled: HashMap<ChangeId, Settlement> = market
        .listings
        .iter()
        .map(|view| (view.id, trade::settle(view, market.payments.get(&view.id).unwrap_or(&no_payments), tip)))
        .collect();
    // Items bought by this person join the build palette.
    if let Some(me) = world.me {
        for view in &market.listings {
            if let Some(Settlement { state: SaleState::Owned { buyer, .. } | SaleState::Paid { buyer, .. }, .. }) =
                settled.get(&view.id)
                && *buyer == me
                && !world.imported.iter().any(|(_, model)| model.hash == view.listing.item.hash)
            {
                let name = format!("{} (bought)", view.listing.title.text().unwrap_or("item"));
                world.imported.push((name, view.listing.item));
            }
        }
    }
    market.settled = settled;
}

/// A stall in the world, for the listing it shows.
#[derive(Component, Debug)]
struct StallView(ChangeId);

/// The floating sign over a stall.
#[derive(Component, Debug)]
struct StallSign(Entity);

/// What a stall's sign says.
fn stall_sign(view: &ListingView, settlement: Option<&Settlement>, me: Option<PublicKey>) -> String {
    let title = view.listing.title.text().unwrap_or("item");
    let state = match settlement.map(|settled| settled.state) {
        Some(SaleState::Owned { buyer, confirmations: 0, .. }) if Some(buyer) == me => "yours (pending)".to_owned(),
        Some(SaleState::Owned { buyer, .. } | SaleState::Paid { buyer, .. }) if Some(buyer) == me => {
            "OWNED by you".to_owned()
        }
        Some(SaleState::Owned { .. } | SaleState::Paid { .. }) => "SOLD".to_owned(),
        Some(SaleState::Pending { confirmations, needed, .. }) => format!("pending {confirmations}/{needed}"),
        Some(SaleState::Unclaimed { .. }) => "paid, awaiting claim".to_owned(),
        Some(SaleState::Withdrawn) => "withdrawn".to_owned(),
        Some(SaleState::Open) | None => "for sale".to_owned(),
    };
    format!("{title}\n{} | {state}", sats(view.listing.price_sats))
}

fn show_stalls(
    mut commands: Commands,
    market: Res<Market>,
    region: Option<Res<CurrentRegion>>,
    stalls: Query<(Entity, &StallView)>,
    players: Query<&Transform, With<Player>>,
) {
    let in_city = region.is_some_and(|region| region.id() == RegionId::City);
    let position = players.single().map(|player| player.translation).unwrap_or(Vec3::ZERO);
    let mut wanted: HashMap<ChangeId, &ListingView> = HashMap::new();
    if in_city {
        for view in &market.listings {
            if market.standing.contains(&view.id) && view.listing.spot.distance(position) < STALL_VIEW {
                wanted.insert(view.id, view);
            }
        }
    }
    for (entity, StallView(id)) in &stalls {
        if wanted.remove(id).is_none() {
            commands.entity(entity).despawn();
        }
    }
    for view in wanted.into_values() {
        let colour = stall_colour(&view.seller);
        let parts = [
            // Counter, two posts, a canopy and a glowing crate for the item.
            Structure::matte(Shape::Cuboid, Placement::new(Vec3::new(0.0, 0.5, 0.0), Vec3::new(2.4, 1.0, 0.9)), colour),
            Structure::matte(
                Shape::Cuboid,
                Placement::new(Vec3::new(-1.1, 1.25, 0.35), Vec3::new(0.12, 2.5, 0.12)),
                colour,
            ),
            Structure::matte(
                Shape::Cuboid,
                Placement::new(Vec3::new(1.1, 1.25, 0.35), Vec3::new(0.12, 2.5, 0.12)),
                colour,
            ),
            Structure::glowing(
                Shape::Cuboid,
                Placement::new(Vec3::new(0.0, 2.55, 0.1), Vec3::new(2.7, 0.12, 1.4)),
                colour,
                2.0,
            ),
            Structure::glowing(
                Shape::Cuboid,
                Placement::new(Vec3::new(0.0, 1.2, 0.0), Vec3::splat(0.4)),
                Rgb::new(255, 210, 90),
                4.0,
            ),
        ];
        let stall = commands
            .spawn((
                StallView(view.id),
                RegionScoped,
                Transform::from_translation(view.listing.spot),
                Visibility::default(),
            ))
            .with_children(|children| {
                for part in parts {
                    children.spawn((StructureView(part), structure_transform(&part)));
                }
            })
            .id();
        commands.spawn((StallSign(stall), crate::hud::floating_label("", 16.0, Color::srgb(1.0, 0.95, 0.7))));
    }
}

fn stall_colour(seller: &PublicKey) -> Rgb {
    let bytes = seller.as_bytes();
    let colours = sanctuary_engine::NEON_COLOURS;
    colours[bytes[0] as usize % colours.len()]
}

fn place_stall_labels(
    mut commands: Commands,
    market: Res<Market>,
    world: Res<CityWorld>,
    stalls: Query<(&StallView, &GlobalTransform)>,
    mut signs: Query<(Entity, &StallSign, &mut Text, &mut Node, &mut Visibility, &ComputedNode)>,
    cameras: Query<(&Camera, &GlobalTransform), With<Player>>,
) {
    let Ok(camera) = cameras.single() else { return };
    for (sign, StallSign(stall), mut text, mut node, mut visibility, computed) in &mut signs {
        let Ok((StallView(id), at)) = stalls.get(*stall) else {
            commands.entity(sign).despawn();
            continue;
        };
        let Some(view) = market.listings.iter().find(|view| view.id == *id) else { continue };
        let wording = stall_sign(view, market.settled.get(id), world.me);
        if text.0 != wording {
            text.0 = wording;
        }
        crate::hud::place_label(camera, at.translation() + Vec3::Y * 3.0, 40.0, &mut node, &mut visibility, computed);
    }
}
