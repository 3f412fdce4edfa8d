//! The meeting room's whiteboard: our strokes and clears said on the room's topic
//! (`MeetingMessage::Stroke`, `MeetingMessage::Clear`), those heard taken by the rules of
//! [`crate::whiteboard`], the board kept in `board.bin`, and a newcomer handed the whole board
//! over `alpn::BOARD` by a neighbour in the room (checked off the node's loop), since re-saying
//! up to 4,096 strokes on gossip would take minutes at the lane's rate.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler};

use super::Event;
use super::actor::{Internal, Node, wall_micros};
use super::meeting::MEETING;
use crate::alpn;
use crate::inbox::RateLimiter;
use crate::meeting::MeetingMessage;
use crate::store;
use crate::whiteboard::{Board, BoardSnapshot, Clear, SignedStroke, Stroke};

/// The largest board handed over: 4,096 strokes of 256 points and every clear, with room.
pub const MAX_BOARD_BYTES: usize = 6 << 20;
/// How long a newcomer waits for a board.
const FETCH_TIMEOUT: Duration = Duration::from_secs(20);
/// How long after a failed fetch another neighbour is asked.
const FETCH_RETRY: Duration = Duration::from_secs(2);
/// How often the program is told of a changed board (and the board handed out is updated).
const TELL_EVERY: Duration = Duration::from_millis(100);
/// How often a changed board is written to disk (at most).
const SAVE_EVERY: Duration = Duration::from_secs(5);
/// Boards handed out at once, how often one peer may ask (a burst of 2, then one every 10 s),
/// and how often anyone may (a burst of 8, then one every 4 s: however many keys ask, a full
/// board of 4.6 MB goes out at most about once every 4 s, ~1 MB/s).
const MAX_ANSWERING: usize = 4;
const ASKS_PER_PEER: (u32, f64) = (2, 0.1);
const ASKS_IN_ALL: (u32, f64) = (8, 0.25);
/// Failed fetches after which we stop asking until we next come into the room (each retry
/// waits twice as long as the last, from [`FETCH_RETRY`]).
const MAX_FETCH_FAILURES: u32 = 6;

/// The board as it is handed out: the snapshot's bytes, updated as the board changes (empty
/// while we are not in the meeting room).
pub(super) type SharedBoard = Arc<Mutex<Arc<Vec<u8>>>>;

/// The board's part of the node.
#[derive(Debug)]
pub(super) struct Whiteboard {
    board: Board,
    path: PathBuf,
    shared: SharedBoard,
    /// Whether the board was fetched from a neighbour since we came into the room, one is
    /// being fetched, and when the last try failed.
    fetched: bool,
    fetching: bool,
    failed_at: Option<Instant>,
    failures: u32,
    changed: bool,
    told: Option<Instant>,
    dirty: bool,
    saved: Option<Instant>,
}

impl Whiteboard {
    /// The board kept at `path` (an empty one when there is none or it cannot be read: a
    /// notice says why), handed out through `shared`.
    pub(super) fn open(path: PathBuf, shared: SharedBoard) -> (Self, Option<String>) {
        let (board, problem) = match store::read_whole::<BoardSnapshot>(&path) {
            Ok(snapshot) => (Board::from_snapshot(None, snapshot.unwrap_or_default(), wall_micros()), None),
            Err(error) => {
                let _ = std::fs::rename(&path, path.with_extension("damaged"));
                (Board::new(None), Some(format!("the whiteboard could not be read ({error}); it was put aside")))
            }
        };
        let whiteboard = Self {
            board,
            path,
            shared,
            fetched: false,
            fetching: false,
            failed_at: None,
            failures: 0,
            changed: true,
            told: None,
            dirty: false,
            saved: None,
        };
        (whiteboard, problem)
    }

    /// Writes the board now if it changed.
    pub(super) fn save(&mut self) -> Option<String> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        self.saved = Some(Instant::now());
        store::write_atomic(&self.path, &self.board.snapshot())
            .err()
            .map(|error| format!("the whiteboard could not be saved in {}: {error}", self.path.display()))
    }

    fn changed(&mut self) {
        self.changed = true;
        self.dirty = true;
    }
}

impl Node {
    fn on_the_board(&self) -> bool {
        self.regions.current().is_some_and(|subscription| subscription.region == MEETING)
    }

    /// Draws a stroke on the meeting room's board (its author and date are ours).
    pub(super) async fn draw(&mut self, stroke: Stroke) {
        if !self.on_the_board() {
            return self.board_refused("the whiteboard is in the meeting room".into());
        }
        let stroke = Stroke { at_us: wall_micros(), ..stroke };
        let signed = match SignedStroke::new(&self.secret, stroke) {
            Ok(signed) => signed,
            Err(error) => return self.board_refused(error.to_string()),
        };
        match self.whiteboard.board.take_stroke(signed.clone(), wall_micros()) {
            Ok(_) => {
                self.whiteboard.changed();
                self.say_on_board(MeetingMessage::Stroke(signed)).await;
            }
            Err(error) => self.board_refused(error.to_string()),
        }
    }

    /// Clears the board: all of it when it is ours, else our own strokes.
    pub(super) async fn clear_board(&mut self) {
        if !self.on_the_board() {
            return self.board_refused("the whiteboard is in the meeting room".into());
        }
        let clear = Clear::new(&self.secret, wall_micros());
        if self.whiteboard.board.take_clear(clear.clone(), wall_micros()) == Ok(true) {
            self.whiteboard.changed();
        }
        self.say_on_board(MeetingMessage::Clear(clear)).await;
    }

    fn board_refused(&mut self, reason: String) {
        let _ = self.events.try_send(Event::BoardRefused(reason));
    }

    async fn say_on_board(&self, message: MeetingMessage) {
        let Some(subscription) = self.regions.current().filter(|subscription| subscription.region == MEETING) else {
            return;
        };
        let sender = subscription.sender.clone();
        self.broadcast(&sender, MEETING, &crate::wire::RegionMessage::Meeting(message)).await;
    }

    /// A stroke or clear heard in the meeting room.
    pub(super) fn heard_on_board(&mut self, message: MeetingMessage) {
        let now = wall_micros();
        let taken = match message {
            MeetingMessage::Stroke(stroke) => self.whiteboard.board.take_stroke(stroke, now),
            MeetingMessage::Clear(clear) => self.whiteboard.board.take_clear(clear, now),
            MeetingMessage::Poll(_) | MeetingMessage::Ballots(_) => Ok(false),
        };
        if taken == Ok(true) {
            self.whiteboard.changed();
        }
    }

    /// A board a neighbour handed us, checked: merged into ours.
    pub(super) fn board_fetched(&mut self, result: Result<Board, String>) {
        self.whiteboard.fetching = false;
        match result {
            Ok(board) => {
                self.whiteboard.fetched = true;
                if self.whiteboard.board.merge(board, wall_micros()) {
                    self.whiteboard.changed();
                }
            }
            // A neighbour that lies or stalls costs us a download each time: we ask less and
            // less often, then not until we come back.
            Err(_) => {
                self.whiteboard.failed_at = Some(Instant::now());
                self.whiteboard.failures = self.whiteboard.failures.saturating_add(1);
            }
        }
    }

    /// Fetches the board from a neighbour on coming in, tells the program of a changed board,
    /// updates the board handed out, and writes it.
    pub(super) async fn board_tick(&mut self, now: Instant) {
        let board = &mut self.whiteboard;
        if board.dirty
            && board.saved.is_none_or(|at| now.duration_since(at) >= SAVE_EVERY)
            && let Some(problem) = board.save()
        {
            self.emit(Event::Notice(problem)).await;
        }
        if !self.on_the_board() {
            if self.whiteboard.fetched || !self.whiteboard.shared_is_empty() {
                // Gone from the room: nothing is handed out, and on coming back the board is
                // fetched again and handed out anew.
                self.whiteboard.fetched = false;
                self.whiteboard.failures = 0;
                self.whiteboard.changed = true;
                *self.whiteboard.shared.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(Vec::new());
            }
            return;
        }
        self.fetch_board(now);
        let board = &mut self.whiteboard;
        if board.changed && board.told.is_none_or(|at| now.duration_since(at) >= TELL_EVERY) {
            board.changed = false;
            board.told = Some(now);
            let snapshot = board.board.snapshot();
            let bytes = postcard::to_allocvec(&snapshot).unwrap_or_default();
            *board.shared.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(bytes);
            let strokes = snapshot.strokes.into_iter().map(|signed| signed.stroke).collect();
            self.emit(Event::Board(strokes)).await;
        }
    }

    /// Asks a neighbour in the room for the whole board, once per visit (again after a failure).
    fn fetch_board(&mut self, now: Instant) {
        let board = &self.whiteboard;
        let wait = FETCH_RETRY.saturating_mul(1 << board.failures.min(MAX_FETCH_FAILURES));
        if board.fetched
            || board.fetching
            || board.failures >= MAX_FETCH_FAILURES
            || board.failed_at.is_some_and(|at| now.duration_since(at) < wait)
        {
            return;
        }
        let neighbours: Vec<iroh::PublicKey> =
            self.regions.current().map(|room| room.neighbours.iter().copied().collect()).unwrap_or_default();
        if neighbours.is_empty() {
            return;
        }
        let peer = neighbours[(wall_micros() as usize / 1000) % neighbours.len()];
        let (endpoint, internal) = (self.endpoint.clone(), self.internal_tx.clone());
        // The task ends by itself within FETCH_TIMEOUT and reports either way.
        self.whiteboard.fetching = true;
        tokio::spawn(async move {
            let fetched = tokio::time::timeout(FETCH_TIMEOUT, fetch(endpoint, peer)).await;
            let bytes = fetched.map_err(|_| "timed out".to_owned()).and_then(|result| result);
            // Checking up to 4,096 signatures takes a while: off the async threads.
            let result = match bytes {
                Ok(bytes) => tokio::task::spawn_blocking(move || {
                    let snapshot: BoardSnapshot = postcard::from_bytes(&bytes).map_err(|error| error.to_string())?;
                    Ok(Board::from_snapshot(None, snapshot, wall_micros()))
                })
                .await
                .unwrap_or_else(|error| Err(error.to_string())),
                Err(error) => Err(error),
            };
            let _ = internal.send(Internal::BoardFetched(Box::new(result))).await;
        });
    }
}

impl Whiteboard {
    fn shared_is_empty(&self) -> bool {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner).is_empty()
    }
}

/// Asks `peer` for its board: the snapshot's bytes, at most [`MAX_BOARD_BYTES`].
async fn fetch(endpoint: iroh::Endpoint, peer: iroh::PublicKey) -> Result<Vec<u8>, String> {
    let connection = endpoint.connect(peer, alpn::BOARD).await.map_err(|error| error.to_string())?;
    let (mut send, mut recv) = connection.open_bi().await.map_err(|error| error.to_string())?;
    send.write_all(b"board").await.map_err(|error| error.to_string())?;
    send.finish().map_err(|error| error.to_string())?;
    let bytes = recv.read_to_end(MAX_BOARD_BYTES).await.map_err(|error| error.to_string())?;
    connection.close(0u32.into(), b"thanks");
    if bytes.is_empty() { Err("not in the meeting room".into()) } else { Ok(bytes) }
}

/// Hands our board to whoever asks (empty while we are not in the meeting room): a few at
/// once, and each peer at most twice at first, then once every 10 s.
#[derive(Debug, Clone)]
pub(super) struct BoardProtocol {
    shared: SharedBoard,
    answering: Arc<tokio::sync::Semaphore>,
    asks: Arc<Mutex<RateLimiter<iroh::PublicKey>>>,
    asks_in_all: Arc<Mutex<RateLimiter<()>>>,
    start: Instant,
}

impl BoardProtocol {
    pub(super) fn new(shared: SharedBoard) -> Self {
        Self {
            shared,
            answering: Arc::new(tokio::sync::Semaphore::new(MAX_ANSWERING)),
            asks: Arc::new(Mutex::new(RateLimiter::with_rate(ASKS_PER_PEER.0, ASKS_PER_PEER.1))),
            asks_in_all: Arc::new(Mutex::new(RateLimiter::with_rate(ASKS_IN_ALL.0, ASKS_IN_ALL.1))),
            start: Instant::now(),
        }
    }
}

impl ProtocolHandler for BoardProtocol {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let peer = connection.remote_id();
        let now = self.start.elapsed();
        let allowed = self.asks.lock().is_ok_and(|mut asks| asks.allow(peer, now))
            && self.asks_in_all.lock().is_ok_and(|mut asks| asks.allow((), now));
        let permit = if allowed { self.answering.clone().try_acquire_owned().ok() } else { None };
        let Some(_permit) = permit else { return Ok(()) };
        let Ok(Ok((mut send, mut recv))) = tokio::time::timeout(FETCH_TIMEOUT, connection.accept_bi()).await else {
            return Ok(());
        };
        let _ = tokio::time::timeout(FETCH_TIMEOUT, recv.read_to_end(16)).await;
        let bytes = self.shared.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if tokio::time::timeout(FETCH_TIMEOUT, send.write_all(&bytes)).await.is_ok() {
            let _ = send.finish();
            let _ = tokio::time::timeout(FETCH_TIMEOUT, connection.closed()).await;
        }
        Ok(())
    }
}
