//! `/market`, the market directory in the chat box: `/market WORDS [under PRICE]` lists the
//! stalls open for sale whose title has every word, cheapest first, with the seller's name and
//! how far one trusts them; `/market go N` takes one to the N-th stall listed, in the city.
//! The same list is a panel (F10, or the VR menu's Market), with a *Go* button for each stall;
//! it opens by itself in the marketplace, as the room's board.

use std::time::Duration;

use bevy::prelude::*;
use sanctuary_engine::market::{MarketQuery, search};
use sanctuary_engine::trade::{ListingView, SaleState};
use sanctuary_engine::{ChangeId, EYE_HEIGHT, RegionId};

use super::{Market, sats};
use crate::network::{ChatInput, Social};
use crate::panels::{PanelAction, PanelContent, PanelPressed, PanelSlot, PanelSpec, Tone, opens_itself_in};
use crate::player::Player;
use crate::shields::trust_label;
use crate::world::{CurrentRegion, EnterRegion};

/// The most stalls one search lists.
const LISTED: usize = 10;
/// How far in front of a stall one arrives, in metres.
const ARRIVAL_DISTANCE: f32 = 2.5;
/// How long a trip to a stall waits for the city to open.
const TRIP_WAIT: Duration = Duration::from_secs(15);
/// How long the city must have been open before one is moved in it (its arrival spot is set
/// as it opens).
const SETTLE_S: f32 = 0.2;

/// The most stalls the panel offers a button for.
const PANEL_STALLS: usize = 6;

/// The last search's stalls, in the order listed, a trip under way (where to, and until when),
/// and the panel: open, and the region it last opened itself in.
#[derive(Resource, Debug, Default)]
pub(super) struct Directory {
    found: Vec<ChangeId>,
    searched: bool,
    trip: Option<(Vec3, Duration)>,
    panel_open: bool,
    opened_in: Option<RegionId>,
}

/// What `/market` was asked.
#[derive(Debug, Clone, PartialEq)]
enum Asked {
    Search(MarketQuery),
    Go(usize),
}

fn asked(rest: &str) -> Asked {
    let mut words = rest.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("go"), Some(number), None) if number.parse::<usize>().is_ok() => Asked::Go(number.parse().unwrap_or(0)),
        _ => Asked::Search(MarketQuery::parse(rest)),
    }
}

/// Whether a listing can be bought now: its stall stands and no payment leads for it.
fn open(market: &Market, view: &ListingView) -> bool {
    market.standing.contains(&view.id)
        && market.settled.get(&view.id).is_none_or(|settlement| settlement.state == SaleState::Open)
}

/// A stall as the directory lists it.
fn line(number: usize, view: &ListingView, social: &Social) -> String {
    let title = view.listing.title.text().unwrap_or("an item");
    let (trust, _) = trust_label(social, &view.seller);
    format!("{number}. {title}, {}, from {} ({trust})", sats(view.listing.price_sats), social.name_of(&view.seller))
}

/// Answers `/market`: a list, or a trip to a stall.
pub(super) fn market_directory(
    mut input: ResMut<ChatInput>,
    mut social: ResMut<Social>,
    market: Res<Market>,
    mut directory: ResMut<Directory>,
    mut enter: MessageWriter<EnterRegion>,
    region: Option<Res<CurrentRegion>>,
    time: Res<Time>,
) {
    let Some(rest) = input.market.take() else { return };
    match asked(&rest) {
        Asked::Search(query) => {
            let found = search(&market.listings, |view| open(&market, view), &query, LISTED);
            directory.found = found.iter().map(|view| view.id).collect();
            directory.searched = true;
            let notice = if found.is_empty() {
                "nothing for sale matches; /market alone lists everything for sale".to_owned()
            } else {
                let listed: Vec<String> =
                    found.iter().enumerate().map(|(at, view)| line(at + 1, view, &social)).collect();
                format!("for sale: {}; /market go N takes you there", listed.join("; "))
            };
            social.notice(notice);
        }
        Asked::Go(number) => go(number, &mut directory, &market, &mut social, &mut enter, region.as_deref(), &time),
    }
}

/// Sets out for the `number`-th stall listed (counting from 1).
fn go(
    number: usize,
    directory: &mut Directory,
    market: &Market,
    social: &mut Social,
    enter: &mut MessageWriter<EnterRegion>,
    region: Option<&CurrentRegion>,
    time: &Time,
) {
    let chosen = number.checked_sub(1).and_then(|at| directory.found.get(at)).copied();
    let Some(id) = chosen else {
        social.notice(format!("no stall numbered {number}; /market lists them"));
        return;
    };
    let Some(view) = market.listings.iter().find(|view| view.id == id && open(market, view)) else {
        social.notice("that stall is no longer open; /market lists what is".into());
        return;
    };
    if region.is_none_or(|region| region.id() != RegionId::City) {
        enter.write(EnterRegion(RegionId::City));
    }
    directory.trip = Some((view.listing.spot, time.elapsed() + TRIP_WAIT));
    let title = view.listing.title.text().unwrap_or("an item");
    social.notice(format!("going to the stall of {title}"));
}

/// The directory's panel: the stalls of the last search still open (everything for sale,
/// cheapest first, until one searches), numbered as listed, each with a Go button.
pub(super) fn directory_spec(found: &[(usize, &ListingView)], social: &Social) -> PanelSpec {
    let mut spec = PanelSpec::new("MARKET (F10): for sale");
    if found.is_empty() {
        spec.line(Tone::Plain, "Nothing open for sale matches.");
    }
    for (at, view) in found {
        spec.line(Tone::Plain, line(at + 1, view, social));
    }
    spec.line(Tone::Hint, "/market WORDS [under PRICE] narrows the list");
    for (at, _) in found.iter().take(PANEL_STALLS) {
        spec.button(format!("Go to {}", at + 1), PanelAction::DirectoryGo(*at as u8));
    }
    spec.button("Close", PanelAction::ToggleDirectory);
    spec
}

/// F10, the VR menu's Market and the panel's buttons; the panel opens by itself on entering
/// the marketplace.
#[allow(clippy::too_many_arguments)]
pub(super) fn use_directory_panel(
    keys: Res<ButtonInput<KeyCode>>,
    input: Res<ChatInput>,
    mut pressed: MessageReader<PanelPressed>,
    mut directory: ResMut<Directory>,
    market: Res<Market>,
    mut social: ResMut<Social>,
    mut enter: MessageWriter<EnterRegion>,
    region: Option<Res<CurrentRegion>>,
    time: Res<Time>,
) {
    let mut toggle = keys.just_pressed(KeyCode::F10) && !input.open;
    let here = region.as_ref().map(|region| region.id());
    let marketplace = RegionId::Room(sanctuary_engine::RoomKind::Marketplace);
    if opens_itself_in(marketplace, here, &mut directory.opened_in) {
        directory.panel_open = true;
    }
    let mut goes = Vec::new();
    for PanelPressed(action) in pressed.read() {
        match action {
            PanelAction::ToggleDirectory => toggle = !toggle,
            PanelAction::DirectoryGo(at) if directory.panel_open => goes.push(usize::from(*at) + 1),
            _ => {}
        }
    }
    if toggle {
        directory.panel_open = !directory.panel_open;
    }
    if directory.panel_open && !directory.searched {
        // Until a search: everything for sale, cheapest first.
        let found = search(&market.listings, |view| open(&market, view), &MarketQuery::default(), LISTED);
        directory.found = found.iter().map(|view| view.id).collect();
    }
    for number in goes {
        go(number, &mut directory, &market, &mut social, &mut enter, region.as_deref(), &time);
    }
}

/// Fills the directory's panel while it is open.
pub(super) fn fill_directory_panel(
    directory: Res<Directory>,
    market: Res<Market>,
    social: Option<Res<Social>>,
    mut panels: Query<(&PanelSlot, &mut PanelContent)>,
) {
    let Some(social) = social else { return };
    for (slot, mut content) in &mut panels {
        if *slot != PanelSlot::Directory {
            continue;
        }
        let spec = directory.panel_open.then(|| {
            let found: Vec<(usize, &ListingView)> = directory
                .found
                .iter()
                .enumerate()
                .filter_map(|(at, id)| {
                    market.listings.iter().find(|view| view.id == *id && open(&market, view)).map(|view| (at, view))
                })
                .collect();
            directory_spec(&found, &social)
        });
        if content.0 != spec {
            content.0 = spec;
        }
    }
}

/// Once in the city, the person stands in front of the stall, facing it.
pub(super) fn arrive_at_stall(
    mut directory: ResMut<Directory>,
    mut social: ResMut<Social>,
    region: Option<Res<CurrentRegion>>,
    mut player: Query<(&mut Transform, &mut Player)>,
    time: Res<Time>,
) {
    let Some((stall, until)) = directory.trip else { return };
    if time.elapsed() > until {
        directory.trip = None;
        social.notice("the city did not open in time; /market go N tries again".into());
        return;
    }
    let Some(region) = region.filter(|region| region.id() == RegionId::City) else { return };
    if time.elapsed_secs() - region.entered_at < SETTLE_S {
        return;
    }
    let Ok((mut transform, mut player)) = player.single_mut() else { return };
    let (spot, yaw) = arrival(stall, &region);
    transform.translation = spot;
    player.last_position = spot;
    player.yaw = yaw;
    transform.rotation = player.rotation();
    directory.trip = None;
    social.notice("you are at the stall; walk up to it to see its offer".into());
}

/// Where one arrives for the stall at `stall` (on the ground): in front of it at eye height,
/// inside the city, and the heading that faces it.
fn arrival(stall: Vec3, region: &CurrentRegion) -> (Vec3, f32) {
    let spot = region.layout.bounds.clamp(stall + Vec3::new(0.0, EYE_HEIGHT, ARRIVAL_DISTANCE));
    let towards = (stall - spot).with_y(0.0);
    let yaw = if towards.length_squared() > 1e-4 { towards.x.atan2(towards.z) } else { 0.0 };
    (spot, yaw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{logic_app, player_transform};
    use sanctuary_engine::trade::{Listing, PayTo, Title};
    use sanctuary_engine::{ModelRef, ParcelCoord, PublicKey, RegionLayout, WORLD_SEED};

    fn stall(id: u8, title: &str, price_sats: u64, spot: Vec3) -> ListingView {
        ListingView {
            id: ChangeId([id; 32]),
            seller: PublicKey::from_secret_seed(&[id; 32]),
            parcel: ParcelCoord { x: 0, z: 0 },
            listing: Listing {
                item: ModelRef { hash: [id; 32], bytes: 100, triangles: 60, min: [0.0; 3], max: [1.0; 3] },
                title: Title::new(title).expect("title"),
                price_sats,
                pay_to: PayTo::new(&[0; 22]).expect("script"),
                confirmations: 1,
                spot,
            },
            withdrawn_at: None,
            claims: Vec::new(),
            paid: Vec::new(),
        }
    }

    /// `/market crystal` lists the open stalls with "crystal" in their title, cheapest first
    /// (not one whose stall does not stand); `/market go 2` goes into the city and in front of
    /// the second.
    #[test]
    fn the_directory_lists_what_is_for_sale_and_takes_one_there() {
        let mut app = logic_app(RegionId::Lobby);
        app.init_resource::<Market>()
            .init_resource::<Directory>()
            .add_systems(Update, (market_directory, arrive_at_stall).chain());
        app.update();
        let ground = RegionLayout::generate(RegionId::City, WORLD_SEED, 0).spawn.with_y(0.0);
        let lamp = stall(1, "Crystal lamp", 8_000, ground + Vec3::new(6.0, 0.0, -8.0));
        let vase = stall(2, "Crystal vase", 5_000, ground + Vec3::new(-6.0, 0.0, -8.0));
        let gone = stall(3, "Crystal ball", 1_000, ground);
        {
            let mut market = app.world_mut().resource_mut::<Market>();
            market.standing = [lamp.id, vase.id].into_iter().collect();
            market.listings = vec![lamp.clone(), vase, gone];
        }
        let last_notice = |app: &App| app.world().resource::<Social>().chat.last().map(|entry| entry.text.clone());
        app.world_mut().resource_mut::<ChatInput>().market = Some("crystal".into());
        app.update();
        let listed = last_notice(&app).expect("a notice");
        assert!(listed.starts_with("for sale: 1. Crystal vase, 5,000 sats, from "), "{listed}");
        assert!(listed.contains("; 2. Crystal lamp, 8,000 sats, from "), "{listed}");
        assert!(!listed.contains("ball"), "a stall that does not stand is not listed: {listed}");

        app.world_mut().resource_mut::<ChatInput>().market = Some("go 2".into());
        for _ in 0..30 {
            app.update();
        }
        assert_eq!(app.world().resource::<CurrentRegion>().id(), RegionId::City);
        let eyes = player_transform(&mut app).translation;
        let expected = lamp.listing.spot + Vec3::new(0.0, EYE_HEIGHT, ARRIVAL_DISTANCE);
        assert!((eyes - expected).length() < 0.05, "at {eyes}, not in front of the lamp's stall at {expected}");
        assert!(last_notice(&app).is_some_and(|text| text.contains("at the stall")));

        app.world_mut().resource_mut::<ChatInput>().market = Some("go 9".into());
        app.update();
        assert!(last_notice(&app).is_some_and(|text| text.contains("no stall numbered 9")));
    }

    /// The panel opens by itself in the marketplace, lists everything for sale cheapest first,
    /// and its Go button takes one in front of the stall.
    #[test]
    fn the_panel_opens_in_the_marketplace_and_goes_to_a_stall() {
        let mut app = logic_app(RegionId::Room(sanctuary_engine::RoomKind::Marketplace));
        app.init_resource::<Market>()
            .init_resource::<Directory>()
            .add_systems(Update, (use_directory_panel, market_directory, arrive_at_stall).chain());
        for _ in 0..3 {
            app.update();
        }
        assert!(app.world().resource::<Directory>().panel_open, "the marketplace's board opens by itself");
        let ground = RegionLayout::generate(RegionId::City, WORLD_SEED, 0).spawn.with_y(0.0);
        let lamp = stall(1, "Crystal lamp", 8_000, ground + Vec3::new(6.0, 0.0, -8.0));
        let vase = stall(2, "Blue vase", 5_000, ground + Vec3::new(-6.0, 0.0, -8.0));
        {
            let mut market = app.world_mut().resource_mut::<Market>();
            market.standing = [lamp.id, vase.id].into_iter().collect();
            market.listings = vec![lamp.clone(), vase.clone()];
        }
        app.update();
        assert_eq!(app.world().resource::<Directory>().found, vec![vase.id, lamp.id], "cheapest first");
        let social = Social::default();
        let spec = directory_spec(&[(0, &vase), (1, &lamp)], &social);
        assert!(spec.text().contains("1. Blue vase, 5,000 sats") && spec.text().contains("2. Crystal lamp"));
        assert!(spec.offers(PanelAction::DirectoryGo(1)) && spec.offers(PanelAction::ToggleDirectory));
        app.world_mut().write_message(PanelPressed(PanelAction::DirectoryGo(1)));
        for _ in 0..30 {
            app.update();
        }
        assert_eq!(app.world().resource::<CurrentRegion>().id(), RegionId::City);
        let eyes = player_transform(&mut app).translation;
        let expected = lamp.listing.spot + Vec3::new(0.0, EYE_HEIGHT, ARRIVAL_DISTANCE);
        assert!((eyes - expected).length() < 0.05, "at {eyes}, not in front of the lamp's stall at {expected}");
        // Closed, it stays closed in the city; nothing for sale matches says so.
        app.world_mut().write_message(PanelPressed(PanelAction::ToggleDirectory));
        app.update();
        assert!(!app.world().resource::<Directory>().panel_open);
        assert!(directory_spec(&[], &social).text().contains("Nothing open for sale matches"));
    }

    #[test]
    fn go_needs_a_number_and_anything_else_is_a_search() {
        assert_eq!(asked("go 3"), Asked::Go(3));
        assert_eq!(asked(" go  12 "), Asked::Go(12));
        assert_eq!(asked("go kart"), Asked::Search(MarketQuery::parse("go kart")));
        assert_eq!(asked("go 3 now"), Asked::Search(MarketQuery::parse("go 3 now")));
        assert_eq!(asked("lamp under 5k"), Asked::Search(MarketQuery::parse("lamp under 5k")));
        assert_eq!(asked(""), Asked::Search(MarketQuery::default()));
    }

    #[test]
    fn one_arrives_in_front_of_the_stall_facing_it() {
        let layout = RegionLayout::generate(RegionId::City, WORLD_SEED, 0);
        let region = CurrentRegion { layout, entered_at: 0.0 };
        let stall = Vec3::new(10.0, 0.0, -20.0);
        let (spot, yaw) = arrival(stall, &region);
        assert!((spot - Vec3::new(10.0, EYE_HEIGHT, -20.0 + ARRIVAL_DISTANCE)).length() < 1e-4, "{spot}");
        let heading = Vec3::new(yaw.sin(), 0.0, yaw.cos());
        assert!(heading.dot(Vec3::NEG_Z) > 0.99, "facing the stall, not {heading}");
    }
}
