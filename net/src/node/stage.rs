//! The lecture hall's stage, when we are in the hall: its shared state from `RegionMessage::
//! Stage`, our deck when we present, hands raised, and the slide showing and the next one,
//! fetched from whoever holds them and handed to the program. The rules are
//! [`crate::stage`]'s.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use iroh::{Endpoint, EndpointAddr};
use iroh_blobs::Hash;
use iroh_blobs::protocol::{ChunkRanges, ChunkRangesExt, GetRequest};
use sanctuary_engine::{RegionId, RoomKind};
use tokio::sync::watch;

use super::actor::{Internal, Node, TaskGuard};
use super::{Event, PRESENCE_TIMEOUT};
use crate::film_store::{FilmHold, FilmStore};
use crate::films::share_film;
use crate::screen::{CONTROLLER_GONE, Dialable};
use crate::stage::{
    HAND_INTERVAL, MAX_SLIDE_BYTES, MAX_SLIDES, STAGE_KEEPALIVE, SlideRef, StageAction, StageError, StageMessage,
    StageState, slide_format,
};
use crate::wire::RegionMessage;

/// The one region with a stage.
const HALL: RegionId = RegionId::Room(RoomKind::LectureHall);
/// The most holders remembered per slide.
const MAX_HOLDERS: usize = 32;
/// A holder not heard saying so for this long is no longer asked.
const HOLDER_TIMEOUT: Duration = Duration::from_secs(3 * STAGE_KEEPALIVE.as_secs());
/// The most keys whose last hand is remembered (for [`HAND_INTERVAL`]).
const MAX_HANDS_HEARD: usize = 256;
/// How long a slide's fetch waits before asking everyone again after all failed.
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// How long one holder has to answer and send a slide.
const ASK_PATIENCE: Duration = Duration::from_secs(20);

/// What the program is told of the stage.
#[derive(Debug, Clone, PartialEq)]
pub struct StageView {
    /// The region whose stage it is (the lecture hall).
    pub region: RegionId,
    /// Its state.
    pub state: StageState,
    /// Whether we present.
    pub ours: bool,
}

/// The stage's part of the node.
#[derive(Debug, Default)]
pub(super) struct Stage {
    /// The state held, when we are in the hall.
    state: Option<StageState>,
    /// When its presenter was last heard.
    presenter_heard: Option<Instant>,
    /// Our deck, when we present.
    deck: Vec<SlideRef>,
    /// The slide showing and the next: held in the film store, fetched when not here.
    slides: HashMap<[u8; 32], Wanted>,
    /// Who says they hold which slide (the two wanted only), when, and where to dial them.
    holders: HashMap<[u8; 32], Vec<(iroh::PublicKey, Instant, Dialable)>>,
    /// The slide the program was last handed.
    shown: Option<[u8; 32]>,
    /// When we last said the state (as presenter) and which slides we hold.
    sent_state: Option<Instant>,
    sent_holding: Option<Instant>,
    /// When each key's hand was last counted.
    hands_heard: HashMap<iroh::PublicKey, Instant>,
    /// When those with a hand up or the floor last said anything about the stage (with
    /// their poses, how the presenter knows they are still here).
    raised_heard: HashMap<iroh::PublicKey, Instant>,
}

#[derive(Debug)]
struct Wanted {
    _hold: FilmHold,
    /// Whether it is here whole.
    here: bool,
    /// Its holders, for the fetch.
    providers: watch::Sender<Vec<EndpointAddr>>,
    _task: Option<TaskGuard>,
}

impl Node {
    /// Adds the images at `paths` to the film store and shows them from the first (off the
    /// loop: the files are hashed).
    pub(super) fn present(&mut self, paths: Vec<PathBuf>) {
        let (films, internal) = (self.films.clone(), self.internal_tx.clone());
        tokio::spawn(async move {
            let deck = share_slides(&films, &paths).await;
            let _ = internal.send(Internal::DeckShared(deck)).await;
        });
    }

    /// Our deck is in the store (or was refused): show it, when we may present.
    pub(super) async fn deck_shared(&mut self, deck: Result<Vec<SlideRef>, String>) {
        let deck = match deck {
            Ok(deck) => deck,
            Err(reason) => return self.emit(Event::StageRefused(reason)).await,
        };
        self.stage_action_with(StageAction::Present(deck.clone()), Some(deck)).await;
    }

    /// Next, previous, a slide, the floor, a hand lowered or the stage handed over, when we
    /// present.
    pub(super) async fn stage_action(&mut self, action: StageAction) {
        self.stage_action_with(action, None).await;
    }

    async fn stage_action_with(&mut self, action: StageAction, new_deck: Option<Vec<SlideRef>>) {
        if !self.in_hall() {
            return self.emit(Event::StageRefused("slides are shown in the lecture hall".into())).await;
        }
        if !self.may_present() {
            return self.emit(Event::StageRefused(StageError::NotPresenter.to_string())).await;
        }
        let me = *self.me.as_bytes();
        let mut base = self.stage.state.clone().unwrap_or_else(|| StageState::new(me));
        if base.presenter != me {
            // Taking over a stage left alone: the old deck went with its presenter.
            base = base.apply(&StageAction::HandOver(me), &[]).unwrap_or(base);
            self.stage.deck.clear();
        }
        match base.apply(&action, &self.stage.deck) {
            Ok(next) => {
                if let Some(deck) = new_deck {
                    self.stage.deck = deck;
                }
                if next.presenter != me {
                    self.stage.deck.clear();
                }
                self.set_stage(next).await;
            }
            Err(error) => self.emit(Event::StageRefused(error.to_string())).await,
        }
    }

    /// Raises or lowers our hand: said to the presenter, who puts it in the queue.
    pub(super) async fn raise_hand(&mut self, up: bool) {
        if !self.in_hall() {
            return self.emit(Event::StageRefused("hands are raised in the lecture hall".into())).await;
        }
        let Some(state) = self.stage.state.clone() else {
            return self.emit(Event::StageRefused("nobody presents".into())).await;
        };
        if state.presenter == *self.me.as_bytes() {
            return self.emit(Event::StageRefused("you present".into())).await;
        }
        self.say_stage(StageMessage::Hand { up }).await;
    }

    fn in_hall(&self) -> bool {
        self.regions.current().is_some_and(|subscription| subscription.region == HALL)
    }

    /// Whether we may move the stage: we present, nobody does, or the presenter left.
    fn may_present(&self) -> bool {
        match &self.stage.state {
            None => true,
            Some(state) => state.presenter == *self.me.as_bytes() || self.presenter_gone(),
        }
    }

    fn presenter_gone(&self) -> bool {
        self.stage.presenter_heard.is_none_or(|heard| heard.elapsed() > CONTROLLER_GONE)
    }

    /// Takes `state` as ours, says it, and tells the program.
    async fn set_stage(&mut self, state: StageState) {
        self.stage.state = Some(state.clone());
        self.stage.presenter_heard = Some(Instant::now());
        self.say_stage(StageMessage::State(state)).await;
        self.stage.sent_state = Some(Instant::now());
        self.stage_changed().await;
    }

    async fn say_stage(&self, message: StageMessage) {
        let Some(subscription) = self.regions.current().filter(|subscription| subscription.region == HALL) else {
            return;
        };
        let sender = subscription.sender.clone();
        self.broadcast(&sender, HALL, &RegionMessage::Stage(message)).await;
    }

    /// A stage message believed on the topic of `region`.
    pub(super) async fn heard_stage(&mut self, region: RegionId, author: iroh::PublicKey, message: StageMessage) {
        if region != HALL || !self.in_hall() {
            return;
        }
        let held = self.stage.state.clone();
        if held.as_ref().is_some_and(|state| state.presenter == *author.as_bytes()) {
            self.stage.presenter_heard = Some(Instant::now());
        }
        let raised =
            |state: &StageState| state.hands.contains(author.as_bytes()) || state.floor == Some(*author.as_bytes());
        let presenting = held.as_ref().is_some_and(|state| state.presenter == *self.me.as_bytes());
        if presenting && (matches!(message, StageMessage::Hand { up: true }) || held.as_ref().is_some_and(raised)) {
            // Only the presenter keeps this, and forgets at each tick whoever is not raised
            // (a Hand from a stranger that did not make the queue included).
            self.stage.raised_heard.insert(author, Instant::now());
        }
        match message {
            StageMessage::State(state) => {
                // Its author presents it, or hands the stage on from the state held.
                let handed_on = held.as_ref().is_some_and(|held| held.presenter == *author.as_bytes());
                if state.check().is_err()
                    || (state.presenter != *author.as_bytes() && !handed_on)
                    || held.as_ref() == Some(&state)
                {
                    return;
                }
                if !crate::stage::accepts(held.as_ref(), *author.as_bytes(), &state, self.presenter_gone()) {
                    return;
                }
                if state.presenter != *self.me.as_bytes() {
                    // Handed on, or taken over: our deck is no longer shown.
                    self.stage.deck.clear();
                }
                self.stage.state = Some(state);
                self.stage.presenter_heard = Some(Instant::now());
                self.stage_changed().await;
            }
            StageMessage::Hand { up } => {
                let Some(state) = held.filter(|state| state.presenter == *self.me.as_bytes()) else { return };
                let now = Instant::now();
                let hands = &mut self.stage.hands_heard;
                hands.retain(|_, heard| now.duration_since(*heard) < HAND_INTERVAL);
                if hands.contains_key(&author) || hands.len() >= MAX_HANDS_HEARD {
                    return;
                }
                hands.insert(author, now);
                if let Some(next) = state.hand(*author.as_bytes(), up) {
                    self.set_stage(next).await;
                }
            }
            StageMessage::Holding { slides, at } => {
                for slide in slides {
                    if !self.stage.slides.contains_key(&slide) {
                        continue;
                    }
                    let holders = self.stage.holders.entry(slide).or_default();
                    holders.retain(|(key, heard, _)| *key != author && heard.elapsed() < HOLDER_TIMEOUT);
                    if holders.len() < MAX_HOLDERS {
                        holders.push((author, Instant::now(), at.clone()));
                    }
                }
                self.update_slide_holders();
            }
        }
    }

    /// The state changed: tell the program, hold and fetch the slide showing and the next,
    /// let go of the others, and hand the program the slide when it is here.
    async fn stage_changed(&mut self) {
        let Some(state) = self.stage.state.clone() else { return };
        let view = StageView { region: HALL, ours: state.presenter == *self.me.as_bytes(), state: state.clone() };
        self.emit(Event::Stage(view)).await;
        // The presenter's voice, and the floor's, reach the whole hall.
        let speakers = [Some(state.presenter), state.floor].into_iter().flatten();
        let speakers = speakers.filter_map(|key| sanctuary_engine::PublicKey::from_bytes(key).ok()).collect();
        self.voice.set_rule(HALL, super::Hearing::Stage(speakers));
        let wanted: Vec<SlideRef> = state.slide.iter().chain(state.next.iter()).copied().collect();
        self.stage.slides.retain(|hash, _| wanted.iter().any(|slide| slide.hash == *hash));
        self.stage.holders.retain(|hash, _| wanted.iter().any(|slide| slide.hash == *hash));
        for slide in wanted {
            if self.stage.slides.contains_key(&slide.hash) {
                continue;
            }
            let hold = self.films.hold(slide.hash);
            let here = held_whole(&self.films, slide).await;
            let (providers, watched) = watch::channel(Vec::new());
            let task = (!here).then(|| {
                let (films, endpoint, internal) = (self.films.clone(), self.endpoint.clone(), self.internal_tx.clone());
                TaskGuard(tokio::spawn(async move {
                    fetch_slide(&films, &endpoint, slide, watched).await;
                    let _ = internal.send(Internal::SlideFetched(slide.hash)).await;
                }))
            });
            self.stage.slides.insert(slide.hash, Wanted { _hold: hold, here, providers, _task: task });
        }
        // The audience says at once what it holds now; the presenter holds every slide and says
        // so at its keepalive, so that paging through slides costs one message a page.
        if state.presenter != *self.me.as_bytes() {
            self.stage.sent_holding = None;
        }
        self.update_slide_holders();
        self.show_slide().await;
    }

    /// A slide's fetch ended with the slide here whole.
    pub(super) async fn slide_fetched(&mut self, hash: [u8; 32]) {
        if let Some(wanted) = self.stage.slides.get_mut(&hash) {
            wanted.here = true;
            wanted._task = None;
            self.stage.sent_holding = None;
        }
        self.show_slide().await;
    }

    /// Hands the program the slide showing, once, when it is here.
    async fn show_slide(&mut self) {
        let Some(slide) = self.stage.state.as_ref().and_then(|state| state.slide) else {
            self.stage.shown = None;
            return;
        };
        if self.stage.shown == Some(slide.hash) || !self.stage.slides.get(&slide.hash).is_some_and(|wanted| wanted.here)
        {
            return;
        }
        let Some(bytes) = self.films.assets().complete_bytes(slide.hash, MAX_SLIDE_BYTES).await else { return };
        self.stage.shown = Some(slide.hash);
        self.emit(Event::Slide { hash: slide.hash, bytes }).await;
    }

    /// Each slide's holders for its fetch: whoever said lately they hold it, then the
    /// presenter (who has every slide, but should not have to send each to everyone).
    fn update_slide_holders(&mut self) {
        let Some(presenter) =
            self.stage.state.as_ref().and_then(|state| iroh::PublicKey::from_bytes(&state.presenter).ok())
        else {
            return;
        };
        for (hash, wanted) in &self.stage.slides {
            let heard: Vec<&(iroh::PublicKey, Instant, Dialable)> = self
                .stage
                .holders
                .get(hash)
                .into_iter()
                .flatten()
                .filter(|(key, heard, _)| heard.elapsed() < HOLDER_TIMEOUT && *key != self.me)
                .collect();
            let mut list: Vec<EndpointAddr> =
                heard.iter().filter(|(key, _, _)| *key != presenter).map(|(key, _, at)| at.addr_of(*key)).collect();
            // Spread the audience over the holders: each starts at a different one.
            if !list.is_empty() {
                let turn = usize::from(self.me.as_bytes()[0]) % list.len();
                list.rotate_left(turn);
            }
            let presenter_at =
                heard.iter().find(|(key, _, _)| *key == presenter).map(|(_, _, at)| at.addr_of(presenter));
            if presenter != self.me {
                list.push(presenter_at.unwrap_or_else(|| EndpointAddr::new(presenter)));
            }
            wanted.providers.send_if_modified(|current| {
                let changed = *current != list;
                *current = list;
                changed
            });
        }
    }

    /// Says the state again when we present, and which of the wanted slides we hold.
    pub(super) async fn stage_tick(&mut self, now: Instant) {
        if !self.in_hall() {
            if self.stage.state.is_some() || !self.stage.slides.is_empty() {
                // We left: the hall's stage is no longer ours to show.
                self.stage = Stage::default();
                self.voice.set_rule(HALL, super::Hearing::Near);
            }
            return;
        }
        let Some(state) = self.stage.state.clone() else { return };
        if state.presenter == *self.me.as_bytes() {
            self.lower_the_gone(&state, now).await;
        }
        let Some(state) = self.stage.state.clone() else { return };
        let due = |sent: Option<Instant>| sent.is_none_or(|at| now.duration_since(at) >= STAGE_KEEPALIVE);
        if state.presenter == *self.me.as_bytes() && due(self.stage.sent_state) {
            self.stage.sent_state = Some(now);
            self.say_stage(StageMessage::State(state)).await;
        }
        if due(self.stage.sent_holding) {
            self.stage.sent_holding = Some(now);
            let slides: Vec<[u8; 32]> =
                self.stage.slides.iter().filter(|(_, wanted)| wanted.here).map(|(hash, _)| *hash).collect();
            if !slides.is_empty() {
                let at = Dialable::of(&self.endpoint.addr());
                self.say_stage(StageMessage::Holding { slides, at }).await;
            }
            self.update_slide_holders();
        }
    }

    /// `author` left `region`: when we present, their hand goes down and the floor, if theirs,
    /// comes back.
    pub(super) async fn stage_left(&mut self, region: RegionId, author: iroh::PublicKey) {
        if region != HALL || !self.in_hall() {
            return;
        }
        let Some(state) = self.stage.state.clone().filter(|state| state.presenter == *self.me.as_bytes()) else {
            return;
        };
        if let Some(next) = state.hand(*author.as_bytes(), false) {
            self.set_stage(next).await;
        }
    }

    /// As presenter: the hands (and the floor) of those neither seen moving nor heard about the
    /// stage for [`PRESENCE_TIMEOUT`] (a client that crashed or lost its link says no goodbye)
    /// go down.
    async fn lower_the_gone(&mut self, state: &StageState, now: Instant) {
        let raised: Vec<[u8; 32]> = state.hands.iter().chain(state.floor.iter()).copied().collect();
        self.stage.raised_heard.retain(|key, _| raised.contains(key.as_bytes()));
        let here = |key: &[u8; 32]| {
            let Ok(key) = iroh::PublicKey::from_bytes(key) else { return false };
            self.regions.posed_lately(&key)
                || self.stage.raised_heard.get(&key).is_some_and(|heard| now.duration_since(*heard) < PRESENCE_TIMEOUT)
        };
        if let Some(next) = state.without_the_gone(here) {
            self.set_stage(next).await;
        }
    }

    /// Someone new is in the hall: the presenter says the state at once.
    pub(super) fn stage_newcomer(&mut self) {
        self.stage.sent_state = None;
    }
}

/// Whether `slide` is in the store whole, at its size.
async fn held_whole(films: &FilmStore, slide: SlideRef) -> bool {
    use iroh_blobs::api::blobs::BlobStatus;
    matches!(
        films.assets().store().status(Hash::from_bytes(slide.hash)).await,
        Ok(BlobStatus::Complete { size }) if size == slide.bytes
    )
}

/// Adds slide images to the film store (in place, tagged), checking each: a PNG or JPEG of
/// 1 byte to [`MAX_SLIDE_BYTES`], at most [`MAX_SLIDES`] of them.
pub async fn share_slides(films: &FilmStore, paths: &[PathBuf]) -> Result<Vec<SlideRef>, String> {
    if paths.is_empty() {
        return Err("no slides given".into());
    }
    if paths.len() > MAX_SLIDES {
        return Err(StageError::TooManySlides.to_string());
    }
    let mut deck = Vec::with_capacity(paths.len());
    for path in paths {
        let name = path.file_name().map_or_else(|| path.display().to_string(), |name| name.to_string_lossy().into());
        let mut first = [0u8; 8];
        let read = std::fs::File::open(path).and_then(|mut file| std::io::Read::read(&mut file, &mut first));
        match read {
            Err(error) => return Err(format!("{name}: {error}")),
            Ok(read) if slide_format(&first[..read]).is_none() => {
                return Err(format!("{name}: a slide is a PNG or JPEG image"));
            }
            Ok(_) => {}
        }
        let (hash, bytes) =
            share_film(films, path, MAX_SLIDE_BYTES).await.map_err(|error| format!("{name}: {error}"))?;
        deck.push(SlideRef { hash, bytes });
    }
    Ok(deck)
}

/// Fetches `slide` into the film store from the holders `providers` lists, each in turn, until
/// it is here whole; asks them all again after [`RETRY_AFTER`] when all failed.
async fn fetch_slide(
    films: &FilmStore,
    endpoint: &Endpoint,
    slide: SlideRef,
    mut providers: watch::Receiver<Vec<EndpointAddr>>,
) {
    let hash = Hash::from_bytes(slide.hash);
    loop {
        let list = providers.borrow_and_update().clone();
        for addr in list {
            let ask = async {
                let connection = endpoint.connect(addr, crate::alpn::FILMS).await.ok()?;
                // Never more than the size the state gives: a holder cannot send more.
                let request = GetRequest::blob_ranges(hash, ChunkRanges::bytes(0..slide.bytes));
                films.assets().store().remote().execute_get(connection, request).complete().await.ok()
            };
            let _ = tokio::time::timeout(ASK_PATIENCE, ask).await;
            if held_whole(films, slide).await {
                return;
            }
        }
        if let Ok(Err(_)) = tokio::time::timeout(RETRY_AFTER, providers.changed()).await {
            return; // The slide is no longer wanted.
        }
    }
}
