//! What the wallet, stall and payment panels show: specs drawn by `crate::panels` on the
//! desktop and in the VR menu.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The wallet panel's content.
pub fn wallet_panel(ui: &WalletUi, link: Option<&WalletLink>, market: &Market, me: Option<PublicKey>) -> PanelSpec {
    let Some(link) = link else {
        let mut spec = PanelSpec::new("WALLET");
        spec.line(Tone::Warn, "the wallet is not running (see the terminal)");
        return spec;
    };
    let mut spec = PanelSpec::new(format!("WALLET | {} (P closes)", link.network));
    if link.network.is_real_money() {
        spec.line(Tone::Warn, "MAINNET: real money");
    }
    spec.line(Tone::Hint, format!("chain source: {}", link.esplora));
    match ui.status {
        None => {
            spec.line(Tone::Plain, "starting...");
        }
        Some(WalletStatus::None) => {
            spec.line(Tone::Plain, "No wallet yet. In chat (Enter), type:");
            spec.line(Tone::Hint, "  /wallet create PASSPHRASE   (a new wallet)");
            spec.line(Tone::Hint, "  /wallet restore PASSPHRASE WORDS...   (from a recovery phrase)");
        }
        Some(WalletStatus::Locked) => {
            spec.line(Tone::Plain, "Locked. In chat (Enter), type:");
            spec.line(Tone::Hint, "  /wallet unlock PASSPHRASE");
        }
        Some(WalletStatus::Unlocked) => {
            if let Some(words) = &ui.words {
                spec.line(Tone::Warn, "Write down your recovery words now; they are shown once:");
                spec.line(Tone::Warn, words.as_str());
            }
            match (&ui.balances, &ui.progress) {
                (_, Some(progress)) => {
                    let of = progress.total.map(|total| format!(" of {total}")).unwrap_or_default();
                    spec.line(Tone::Plain, format!("syncing: {} addresses checked{of}", progress.done));
                }
                (None, None) => {
                    spec.line(Tone::Plain, "waiting for the first sync...");
                }
                _ => {}
            }
            if let Some(balances) = &ui.balances {
                spec.line(Tone::Good, format!("confirmed  {}", sats(balances.confirmed)));
                spec.line(Tone::Plain, format!("pending    {}", sats(balances.pending)));
                if balances.immature > 0 {
                    spec.line(Tone::Plain, format!("immature   {}", sats(balances.immature)));
                }
            }
            if let Some(tip) = ui.tip {
                spec.line(Tone::Hint, format!("chain height {tip}"));
            }
            if let Some(receive) = &ui.receive {
                spec.line(Tone::Plain, "receive at:");
                spec.line(Tone::Good, receive.address.clone());
                spec.qr = Some(receive.qr.clone());
            }
            if !ui.history.is_empty() {
                spec.line(Tone::Plain, "history:");
                for entry in ui.history.iter().take(3) {
                    let when = match entry.state {
                        TxState::Confirmed { height, .. } => format!("block {height}"),
                        TxState::Pending => "pending".to_owned(),
                    };
                    let txid = entry.txid.to_string();
                    spec.line(Tone::Plain, format!("  {:+} sats  {when}  {}...", entry.delta_sats, &txid[..10]));
                }
            }
            let mine: Vec<&ListingView> =
                market.listings.iter().filter(|view| Some(view.seller) == me && view.withdrawn_at.is_none()).collect();
            for view in mine {
                let settled = market.settled.get(&view.id);
                spec.line(Tone::Plain, format!("your stall: {}", stall_sign(view, settled, me).replace('\n', " | ")));
                for (claim, reason) in settled.into_iter().flat_map(Settlement::refunds) {
                    spec.line(Tone::Warn, format!("  refund owed to {}: {reason}", claim.buyer.short()));
                }
            }
            lightning::lightning_lines(&ui.lightning, &mut spec);
            spec.line(Tone::Hint, "/send ADDRESS SATS [SAT/VB] | /receive | /sync | /export | /wallet lock");
            spec.line(Tone::Hint, "/sell SATS [CONFIRMATIONS] TITLE | /withdraw");
        }
    }
    if let Some((message, ok)) = &ui.message {
        spec.line(if *ok { Tone::Good } else { Tone::Warn }, message.clone());
    }
    if ui.status == Some(WalletStatus::Unlocked) {
        spec.button("Sync", PanelAction::Sync)
            .button("Receive", PanelAction::Receive)
            .button("Lock", PanelAction::Lock);
    }
    spec.button("Close", PanelAction::ToggleWallet);
    spec
}

/// A stall's offer, for the person standing at it.
pub fn stall_panel(view: &ListingView, settlement: Option<&Settlement>, me: Option<PublicKey>) -> PanelSpec {
    let title = view.listing.title.text().unwrap_or("item");
    let mut spec = PanelSpec::new(format!("STALL | {title}"));
    spec.line(Tone::Good, format!("price {}", sats(view.listing.price_sats)));
    spec.line(Tone::Plain, format!("seller {}", view.seller.short()));
    let needed = match view.listing.confirmations {
        _ if view.listing.pay_to.is_lightning() => "paid over Lightning: owned at once".to_owned(),
        0 => "owned at once (shown pending until it confirms)".to_owned(),
        1 => "owned after 1 confirmation".to_owned(),
        n => format!("owned after {n} confirmations"),
    };
    spec.line(Tone::Plain, format!("{} triangles | {needed}", view.listing.item.triangles));
    let mine = settlement.and_then(|settled| settled.verdicts.iter().find(|(claim, _)| Some(claim.buyer) == me));
    match settlement.map(|settled| settled.state) {
        Some(SaleState::Owned { buyer, confirmations, .. }) if Some(buyer) == me => {
            let pending = if confirmations == 0 { " (pending confirmation)" } else { "" };
            spec.line(Tone::Good, format!("OWNED: it is yours{pending}; it is in your build palette"));
        }
        Some(SaleState::Paid { buyer, .. }) if Some(buyer) == me => {
            spec.line(Tone::Good, "OWNED: it is yours; it is in your build palette");
        }
        Some(SaleState::Owned { .. } | SaleState::Paid { .. }) => {
            spec.line(Tone::Warn, "sold");
        }
        Some(SaleState::Pending { buyer, confirmations, needed, .. }) => {
            let whose = if Some(buyer) == me { "your payment" } else { "someone's payment" };
            spec.line(Tone::Plain, format!("PENDING: {whose} has {confirmations} of {needed} confirmations"));
        }
        Some(SaleState::Unclaimed { confirmations, .. }) => {
            spec.line(Tone::Warn, format!("paid ({confirmations} confirmations); waiting for the buyer's claim"));
        }
        Some(SaleState::Withdrawn) => {
            spec.line(Tone::Warn, "withdrawn by the seller");
        }
        Some(SaleState::Open) | None if Some(view.seller) == me => {
            spec.line(Tone::Hint, "your own stall | /withdraw takes it down");
        }
        Some(SaleState::Open) | None => {
            spec.line(Tone::Hint, "F: buy");
            spec.button(format!("Buy for {}", sats(view.listing.price_sats)), PanelAction::Buy);
        }
    }
    match mine.map(|(_, verdict)| *verdict) {
        Some(Verdict::Refund(reason)) => {
            spec.line(Tone::Warn, reason.to_string());
        }
        Some(Verdict::Rejected(error)) => {
            spec.line(Tone::Warn, format!("your claim does not count: {error}"));
        }
        _ => {}
    }
    spec
}

/// The confirmation of a payment.
pub fn confirm_panel(draft: &PendingDraft) -> PanelSpec {
    let mut spec = PanelSpec::new(format!("CONFIRM PAYMENT | {}", draft.purpose_text));
    spec.line(Tone::Plain, format!("amount       {}", sats(draft.amount_sats)));
    match draft.rail {
        DraftRail::Chain { fee_sats, fee_rate, .. } => {
            spec.line(Tone::Plain, format!("network fee  {} ({fee_rate:.1} sat/vB)", sats(fee_sats)));
            spec.line(Tone::Good, format!("total        {}", sats(draft.amount_sats.saturating_add(fee_sats))));
        }
        DraftRail::Lightning { max_fee_sats, .. } => {
            spec.line(Tone::Plain, format!("routing fee  at most {} (Lightning)", sats(max_fee_sats)));
            spec.line(
                Tone::Good,
                format!("total        at most {}", sats(draft.amount_sats.saturating_add(max_fee_sats))),
            );
        }
    }
    spec.line(Tone::Hint, "Y: pay    N: cancel");
    spec.button("Pay", PanelAction::Pay).button("Cancel", PanelAction::Cancel);
    spec
}

pub(super) fn fill_panels(
    ui: Res<WalletUi>,
    link: Option<Res<WalletLink>>,
    market: Res<Market>,
    world: Res<CityWorld>,
    region: Option<Res<CurrentRegion>>,
    players: Query<&Transform, With<Player>>,
    mut panels: Query<(&PanelSlot, &mut PanelContent)>,
) {
    let in_city = region.is_some_and(|region| region.id() == RegionId::City);
    let position = players.single().map(|player| player.translation).ok();
    for (slot, mut content) in &mut panels {
        let spec = match slot {
            // The shields', the avatar picker's and the cinema's own plugins fill theirs.
            PanelSlot::Shields
            | PanelSlot::Avatars
            | PanelSlot::Cinema
            | PanelSlot::Stage
            | PanelSlot::Directory
            | PanelSlot::Polls => {
                continue;
            }
            // The confirmation is modal: nothing else shows while it waits.
            PanelSlot::Wallet => {
                (ui.open && ui.draft.is_none()).then(|| wallet_panel(&ui, link.as_deref(), &market, world.me))
            }
            PanelSlot::Stall => position
                .filter(|_| in_city && ui.draft.is_none())
                .and_then(|position| stall_in_reach(&market, position))
                .map(|view| stall_panel(view, market.settled.get(&view.id), world.me)),
            PanelSlot::Confirm => ui.draft.as_ref().map(confirm_panel),
        };
        if content.0 != spec {
            content.0 = spec;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing_view(seller: PublicKey) -> ListingView {
        ListingView {
            id: ChangeId([7; 32]),
            seller,
            parcel: ParcelCoord { x: 0, z: 0 },
            listing: Listing {
                item: ModelRef { hash: [1; 32], bytes: 100, triangles: 60, min: [0.0; 3], max: [1.0; 3] },
                title: Title::new("Crystal lamp").expect("title"),
                price_sats: 20_000,
                pay_to: PayTo::new(&[0; 22]).expect("script"),
                confirmations: 1,
                spot: Vec3::ZERO,
            },
            withdrawn_at: None,
            claims: Vec::new(),
            paid: Vec::new(),
        }
    }

    #[test]
    fn the_stall_panel_offers_then_shows_pending_and_owned() {
        let (ada, bo) = (PublicKey::from_secret_seed(&[1; 32]), PublicKey::from_secret_seed(&[2; 32]));
        let view = listing_view(ada);
        let open = stall_panel(&view, None, Some(bo)).text();
        assert!(open.contains("price 20,000 sats") && open.contains("F: buy"), "{open}");
        assert!(stall_panel(&view, None, Some(bo)).offers(PanelAction::Buy));
        assert!(stall_panel(&view, None, Some(ada)).text().contains("/withdraw"), "the seller cannot buy");
        assert!(!stall_panel(&view, None, Some(ada)).offers(PanelAction::Buy));
        let txid = TxId([3; 32]);
        let pending = Settlement {
            state: SaleState::Pending { buyer: bo, txid, confirmations: 0, needed: 1 },
            verdicts: Vec::new(),
        };
        assert!(stall_panel(&view, Some(&pending), Some(bo)).text().contains("your payment has 0 of 1"));
        let owned = Settlement { state: SaleState::Owned { buyer: bo, txid, confirmations: 1 }, verdicts: Vec::new() };
        assert!(stall_panel(&view, Some(&owned), Some(bo)).text().contains("OWNED"));
        assert!(!stall_panel(&view, Some(&owned), Some(bo)).offers(PanelAction::Buy), "nothing left to buy");
        assert!(stall_sign(&view, Some(&owned), Some(ada)).contains("SOLD"));
    }

    #[test]
    fn the_confirmation_shows_amount_fee_and_total() {
        let draft = PendingDraft {
            purpose_text: "Buy \"Crystal lamp\"".into(),
            amount_sats: 20_000,
            rail: DraftRail::Chain { txid: "ab".repeat(32).parse().expect("a txid"), fee_sats: 184, fee_rate: 1.3 },
        };
        let text = confirm_panel(&draft).text();
        assert!(text.contains("20,000 sats") && text.contains("184 sats") && text.contains("20,184 sats"), "{text}");
        assert!(text.contains("Y: pay"));
        let spec = confirm_panel(&draft);
        assert!(spec.offers(PanelAction::Pay) && spec.offers(PanelAction::Cancel), "the laser needs buttons");
    }

    #[test]
    fn sats_are_grouped() {
        assert_eq!(sats(0), "0 sats");
        assert_eq!(sats(546), "546 sats");
        assert_eq!(sats(20_000), "20,000 sats");
        assert_eq!(sats(2_100_000_000_000_000), "2,100,000,000,000,000 sats");
    }
}
