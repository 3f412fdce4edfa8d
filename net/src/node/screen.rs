//! The screen of the region we are in (the cinema's): its shared state from `RegionMessage::
//! Screen`, films shared from disk, the film showing fetched from whoever holds it, and our own
//! messages (the state when we control it, "holding" while we have the film). The rules are
//! [`crate::screen`]'s; fetching is [`crate::films`]'.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sanctuary_engine::RegionId;
use tokio::sync::watch;

use super::Event;
use super::actor::{Internal, Node, TaskGuard, wall_micros};
use crate::films::{FilmSource, fetch_film, share_film};
use crate::screen::{
    CONTROLLER_GONE, ClockSync, Dialable, FilmEntry, MAX_FILM_NAME_CHARS, SCREEN_KEEPALIVE, ScreenAction,
    ScreenMessage, ScreenState,
};
use crate::wire::RegionMessage;

/// The most holders remembered per film.
const MAX_HOLDERS: usize = 32;
/// A holder not heard saying so for this long is no longer asked.
const HOLDER_TIMEOUT: Duration = Duration::from_secs(3 * SCREEN_KEEPALIVE.as_secs());

/// What the program is told of the screen.
#[derive(Debug, Clone, PartialEq)]
pub struct ScreenView {
    /// The region whose screen it is.
    pub region: RegionId,
    /// Its state.
    pub state: ScreenState,
    /// Add to our clock (µs since 1970) to read the controller's: the state's clock is on it.
    pub offset_us: i64,
    /// Whether we control it.
    pub ours: bool,
}

impl ScreenView {
    /// Seconds into the film now.
    pub fn position_now(&self) -> f64 {
        self.state.clock.position_at(wall_micros().saturating_add_signed(self.offset_us))
    }
}

/// The screen's part of the node.
#[derive(Debug, Default)]
pub(super) struct Screen {
    /// The state held, for the region we are in.
    state: Option<(RegionId, ScreenState)>,
    /// When its controller was last heard.
    controller_heard: Option<Instant>,
    /// The controller's clock as estimated from its messages.
    clock: ClockSync,
    /// Who says they hold which film (films in the queue only), when, and where to dial them.
    holders: HashMap<[u8; 32], Vec<(iroh::PublicKey, Instant, Dialable)>>,
    /// Films we shared from disk (we hold them whole).
    shared: HashMap<[u8; 32], PathBuf>,
    /// The film showing, being fetched (or held), and the list of holders its fetch reads.
    fetching: Option<Fetching>,
    /// When we last said the state (as controller) and that we hold the film.
    sent_state: Option<Instant>,
    sent_holding: Option<Instant>,
    /// The clock offset the program was last told.
    told_offset: i64,
    /// The largest film we take.
    pub(super) max_film_bytes: u64,
}

impl Screen {
    pub(super) fn new(max_film_bytes: u64) -> Self {
        Self { max_film_bytes, ..Self::default() }
    }
}

#[derive(Debug)]
struct Fetching {
    film: FilmEntry,
    holders: watch::Sender<Vec<iroh::EndpointAddr>>,
    _task: Option<TaskGuard>,
}

impl Node {
    /// Shares the film at `path` on the screen of the region we are in (off the loop: the file
    /// is hashed).
    pub(super) fn share_film(&mut self, path: PathBuf) {
        let (films, internal, limit) = (self.films.clone(), self.internal_tx.clone(), self.screen.max_film_bytes);
        tokio::spawn(async move {
            let name: String = path
                .file_name()
                .map(|name| {
                    name.to_string_lossy().chars().filter(|c| !c.is_control()).take(MAX_FILM_NAME_CHARS).collect()
                })
                .unwrap_or_else(|| "film".into());
            let result = share_film(&films, &path, limit)
                .await
                .map(|(hash, bytes)| (hash, bytes, name.clone(), path))
                .map_err(|error| format!("{name}: {error}"));
            let _ = internal.send(Internal::FilmShared(result)).await;
        });
    }

    /// A film was added to the store (or refused): queue it, as controller or by asking.
    pub(super) async fn film_shared(&mut self, result: Result<([u8; 32], u64, String, PathBuf), String>) {
        let (hash, bytes, name, path) = match result {
            Ok(shared) => shared,
            Err(reason) => return self.emit(Event::ScreenRefused(reason)).await,
        };
        self.screen.shared.insert(hash, path);
        let film = FilmEntry { hash, bytes, name, by: *self.me.as_bytes() };
        let Some(region) = self.regions.current().map(|subscription| subscription.region) else { return };
        if self.may_control(region) {
            let held = self.screen_state(region).unwrap_or_else(|| ScreenState::new(*self.me.as_bytes()));
            let mut base = held.clone();
            base.controller = *self.me.as_bytes();
            match base.queue(film, wall_micros(), self.screen.max_film_bytes) {
                Ok(next) => self.set_screen(region, next).await,
                Err(error) => self.emit(Event::ScreenRefused(error.to_string())).await,
            }
        } else {
            self.say_screen(region, ScreenMessage::Queue(film)).await;
            self.emit(Event::Notice("the film is offered to the one who controls the screen".into())).await;
        }
    }

    /// Play, pause, seek, next or hand over, when we control the screen.
    pub(super) async fn screen_action(&mut self, action: ScreenAction) {
        let Some(region) = self.regions.current().map(|subscription| subscription.region) else { return };
        let Some(held) = self.screen_state(region) else {
            return self.emit(Event::ScreenRefused("nothing is on the screen; share a film first".into())).await;
        };
        if !self.may_control(region) {
            return self.emit(Event::ScreenRefused(crate::screen::ScreenError::NotController.to_string())).await;
        }
        let mut base = held;
        base.controller = *self.me.as_bytes();
        match base.apply(&action, wall_micros()) {
            Ok(next) => self.set_screen(region, next).await,
            Err(error) => self.emit(Event::ScreenRefused(error.to_string())).await,
        }
    }

    fn screen_state(&self, region: RegionId) -> Option<ScreenState> {
        self.screen.state.as_ref().filter(|(held, _)| *held == region).map(|(_, state)| state.clone())
    }

    /// Whether we may move the screen: we control it, nobody does, or its controller left.
    fn may_control(&self, region: RegionId) -> bool {
        match self.screen_state(region) {
            None => true,
            Some(state) => state.controller == *self.me.as_bytes() || self.controller_gone(),
        }
    }

    fn controller_gone(&self) -> bool {
        self.screen.controller_heard.is_none_or(|heard| heard.elapsed() > CONTROLLER_GONE)
    }

    /// Takes `state` as ours, says it, and tells the program.
    async fn set_screen(&mut self, region: RegionId, state: ScreenState) {
        self.screen.state = Some((region, state.clone()));
        self.screen.controller_heard = Some(Instant::now());
        self.screen.clock = ClockSync::default();
        self.say_screen(region, ScreenMessage::State(state)).await;
        self.screen.sent_state = Some(Instant::now());
        self.screen_changed(region).await;
    }

    async fn say_screen(&self, region: RegionId, message: ScreenMessage) {
        let Some(subscription) = self.regions.current().filter(|subscription| subscription.region == region) else {
            return;
        };
        let sender = subscription.sender.clone();
        self.broadcast(&sender, region, &RegionMessage::Screen(message)).await;
    }

    /// A screen message believed on the topic of `region`.
    pub(super) async fn heard_screen(
        &mut self,
        region: RegionId,
        author: iroh::PublicKey,
        sequence: u64,
        message: ScreenMessage,
    ) {
        if self.regions.current().is_none_or(|subscription| subscription.region != region) {
            return;
        }
        let held = self.screen_state(region);
        let from_controller = held.as_ref().is_some_and(|state| state.controller == *author.as_bytes());
        if from_controller {
            self.screen.controller_heard = Some(Instant::now());
            self.screen.clock.heard(sequence, wall_micros());
        }
        match message {
            ScreenMessage::State(state) => {
                // Its author controls it, or hands control on from the state held.
                if state.check(self.screen.max_film_bytes).is_err()
                    || (state.controller != *author.as_bytes() && !from_controller)
                {
                    return;
                }
                if held.as_ref() == Some(&state) {
                    // The same state again: only the estimate of the controller's clock moves.
                    let offset = self.screen_offset(&state);
                    if (offset - self.screen.told_offset).abs() > 2_000 {
                        self.screen_changed(region).await;
                    }
                    return;
                }
                if !crate::screen::accepts(held.as_ref(), *author.as_bytes(), &state, self.controller_gone()) {
                    return;
                }
                if !from_controller {
                    // A new controller: its clock is learnt afresh.
                    self.screen.clock = ClockSync::default();
                    self.screen.clock.heard(sequence, wall_micros());
                }
                self.screen.state = Some((region, state));
                self.screen.controller_heard = Some(Instant::now());
                self.screen_changed(region).await;
            }
            ScreenMessage::Queue(film) => {
                let ours = held.as_ref().is_some_and(|state| state.controller == *self.me.as_bytes());
                if !ours || film.by != *author.as_bytes() {
                    return;
                }
                let Some(state) = held else { return };
                // Refusals (a full queue, too many from one key, too large) are silent: the
                // asker sees the queue unchanged.
                if let Ok(next) = state.queue(film, wall_micros(), self.screen.max_film_bytes) {
                    self.set_screen(region, next).await;
                }
            }
            ScreenMessage::Holding { film, at } => {
                let queued = held.as_ref().is_some_and(|state| state.queue.iter().any(|entry| entry.hash == film));
                if !queued {
                    return;
                }
                let holders = self.screen.holders.entry(film).or_default();
                holders.retain(|(key, heard, _)| *key != author && heard.elapsed() < HOLDER_TIMEOUT);
                if holders.len() < MAX_HOLDERS {
                    holders.push((author, Instant::now(), at));
                }
                self.update_holders();
            }
        }
    }

    /// The state changed: tell the program, forget holders of films no longer queued, and
    /// fetch the film showing if it is new.
    async fn screen_changed(&mut self, region: RegionId) {
        let Some(state) = self.screen_state(region) else { return };
        self.screen.holders.retain(|film, _| state.queue.iter().any(|entry| entry.hash == *film));
        self.screen.told_offset = self.screen_offset(&state);
        let view = ScreenView {
            region,
            offset_us: self.screen.told_offset,
            ours: state.controller == *self.me.as_bytes(),
            state: state.clone(),
        };
        self.emit(Event::Screen(view)).await;
        let showing = state.film().cloned();
        if showing.as_ref() == self.screen.fetching.as_ref().map(|fetching| &fetching.film) {
            return;
        }
        self.screen.fetching = None;
        let Some(film) = showing else { return };
        let source = FilmSource::new(&self.films, film.hash, film.bytes, tokio::runtime::Handle::current()).await;
        let (holders, watched) = watch::channel(Vec::new());
        // Others in the room: those seen moving, or at least our neighbours on its topic.
        let company = self.regions.crowd().max(self.regions.current().map_or(0, |region| region.neighbours.len()));
        let task = (!source.complete()).then(|| {
            let sharer = iroh::PublicKey::from_bytes(&film.by).unwrap_or(self.me);
            TaskGuard(tokio::spawn(fetch_film(source.clone(), self.endpoint.clone(), sharer, watched, company)))
        });
        self.screen.fetching = Some(Fetching { film, holders, _task: task });
        self.screen.sent_holding = None;
        self.update_holders();
        self.emit(Event::Film(source)).await;
    }

    /// Add to our clock to read the controller's.
    fn screen_offset(&self, state: &ScreenState) -> i64 {
        if state.controller == *self.me.as_bytes() {
            return 0;
        }
        let now = wall_micros();
        (self.screen.clock.their_now(now) as i128 - now as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }

    /// The film's holders for its fetch, with where to dial them: its sharer and whoever said
    /// lately they hold it.
    fn update_holders(&mut self) {
        let Some(fetching) = &self.screen.fetching else { return };
        let Ok(sharer) = iroh::PublicKey::from_bytes(&fetching.film.by) else { return };
        let heard: Vec<&(iroh::PublicKey, Instant, Dialable)> = self
            .screen
            .holders
            .get(&fetching.film.hash)
            .into_iter()
            .flatten()
            .filter(|(_, heard, _)| heard.elapsed() < HOLDER_TIMEOUT)
            .collect();
        let sharer_at = heard.iter().find(|(key, _, _)| *key == sharer).map(|(_, _, at)| at.addr_of(sharer));
        let mut list = vec![sharer_at.unwrap_or_else(|| iroh::EndpointAddr::new(sharer))];
        for (key, _, at) in heard {
            if list.iter().all(|listed| listed.id != *key) {
                list.push(at.addr_of(*key));
            }
        }
        fetching.holders.send_if_modified(|current| {
            let changed = *current != list;
            *current = list;
            changed
        });
    }

    /// Says the state again when we control it, and that we hold the film showing.
    pub(super) async fn screen_tick(&mut self, now: Instant) {
        let Some(region) = self.regions.current().map(|subscription| subscription.region) else { return };
        if self.screen.state.as_ref().is_some_and(|(held, _)| *held != region) {
            // We moved: the old room's screen is no longer ours to show.
            self.screen = Screen::new(self.screen.max_film_bytes);
            return;
        }
        let Some(state) = self.screen_state(region) else { return };
        let due = |sent: Option<Instant>| sent.is_none_or(|at| now.duration_since(at) >= SCREEN_KEEPALIVE);
        if state.controller == *self.me.as_bytes() && due(self.screen.sent_state) {
            self.screen.sent_state = Some(now);
            self.say_screen(region, ScreenMessage::State(state)).await;
        }
        // Everyone with the film says so, and where to dial them (the sharer too: everyone
        // knows it holds the film, but not every viewer has its address).
        if let Some(film) = self.screen.fetching.as_ref().map(|fetching| fetching.film.hash)
            && due(self.screen.sent_holding)
        {
            self.screen.sent_holding = Some(now);
            let at = Dialable::of(&self.endpoint.addr());
            self.say_screen(region, ScreenMessage::Holding { film, at }).await;
            self.update_holders();
        }
    }

    /// Someone new is in the region: the controller says the state at once, so that a late
    /// joiner starts at the current position without waiting for the keepalive.
    pub(super) fn screen_newcomer(&mut self) {
        self.screen.sent_state = None;
    }
}
