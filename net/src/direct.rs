//! Private messages (`sanctuary/direct/1`): one signed message per QUIC stream over a direct
//! connection, answered "ok" once the recipient has it on disk, or "no".
//!
//! **Exactly once**: the receiver stores a message before it says "ok", so an acknowledged
//! message survives a crash; the sender keeps it in its outbox until it hears "ok" and sends the
//! same bytes again otherwise; the receiver knows the id (sender, sequence) of every message it
//! keeps, however old, and answers "ok" to a copy without storing it twice.
//!
//! **Bounds**: each sender has a rate (a burst of 10, then 2 a second), everyone together
//! another (a burst of 50, then 10 a second), a stream is read for at most 10 s and 4 KiB, and
//! the log stops taking messages from others at [`MAX_LOG_BYTES`] (they wait in their senders'
//! outboxes; the person is told).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iroh::Endpoint;
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler};
use sanctuary_engine::PublicKey;
use tokio::sync::mpsc;

use crate::alpn;
use crate::inbox::{NetStats, RateLimiter};
use crate::node::DirectLine;
use crate::store;
use crate::wire::{DirectText, MAX_MESSAGE_BYTES, WireError, decode};

/// The largest private-message log that still takes messages from others (ours always go in).
pub const MAX_LOG_BYTES: u64 = 256 * 1024 * 1024;
/// Messages handed back on start.
const HISTORY: usize = 500;
/// How long a sender has to send its message and read the answer.
const STREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// Per sender: a burst, then a rate a second.
const PER_SENDER: (u32, u32) = (10, 2);
/// Everyone together: a burst, then a rate a second.
const IN_TOTAL: (u32, u32) = (50, 10);

/// Why a message was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeepError {
    /// The log is at [`MAX_LOG_BYTES`].
    #[error("private messages fill {MAX_LOG_BYTES} bytes on disk; no more are taken from others")]
    Full,
    /// The disk failed.
    #[error("the message could not be saved: {0}")]
    Disk(String),
}

/// The private-message log and the ids of everything in it.
#[derive(Debug)]
pub(crate) struct DirectStore {
    path: PathBuf,
    /// Held across the check and the write, so that two copies arriving at once are stored once.
    held: tokio::sync::Mutex<Held>,
}

#[derive(Debug)]
struct Held {
    ids: HashSet<(PublicKey, u64)>,
    bytes: u64,
}

impl DirectStore {
    /// Opens the log at `path` and reads the ids of every message in it; returns the store and
    /// the newest messages, oldest first.
    pub(crate) fn open(path: PathBuf) -> (Arc<Self>, Vec<DirectLine>) {
        let lines: Vec<DirectLine> = store::read_tail(&path, usize::MAX).unwrap_or_default();
        let ids = lines.iter().map(|line| (line.from, line.id)).collect();
        let bytes = std::fs::metadata(&path).map(|meta| meta.len()).unwrap_or(0);
        let history = lines[lines.len().saturating_sub(HISTORY)..].to_vec();
        (Arc::new(Self { path, held: tokio::sync::Mutex::new(Held { ids, bytes }) }), history)
    }

    /// Stores a message unless it is held already: `Ok(true)` if it is new, `Ok(false)` for a
    /// copy. When this returns `Ok`, the message is on disk. `ours` messages (sent by this
    /// node) are stored whatever the log's size.
    pub(crate) async fn keep(&self, line: &DirectLine, ours: bool) -> Result<bool, KeepError> {
        let mut held = self.held.lock().await;
        if held.ids.contains(&(line.from, line.id)) {
            return Ok(false);
        }
        if !ours && held.bytes >= MAX_LOG_BYTES {
            return Err(KeepError::Full);
        }
        let (path, record) = (self.path.clone(), line.clone());
        tokio::task::spawn_blocking(move || store::append(&path, &record))
            .await
            .map_err(|error| KeepError::Disk(error.to_string()))?
            .map_err(|error| KeepError::Disk(error.to_string()))?;
        held.ids.insert((line.from, line.id));
        held.bytes = held.bytes.saturating_add(store::record_len(line));
        Ok(true)
    }
}

/// Why a private message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Undelivered {
    /// Not now (unreachable, no answer, refused for now): it is tried again.
    Later(String),
    /// Their shield takes private messages only from people they trust more: trying again
    /// changes nothing.
    Shielded,
}

/// The answers a recipient gives.
const OK: &[u8] = b"ok";
const NO: &[u8] = b"no";
const SHIELDED: &[u8] = b"shielded";

/// Sends one private message over a direct connection and waits for the recipient's "ok".
pub(crate) async fn deliver(endpoint: &Endpoint, to: iroh::PublicKey, bytes: &[u8]) -> Result<(), Undelivered> {
    let later = |error: String| Undelivered::Later(error);
    let connection =
        endpoint.connect(to, alpn::DIRECT).await.map_err(|error| later(format!("cannot reach them: {error}")))?;
    let (mut send, mut recv) = connection.open_bi().await.map_err(|error| later(error.to_string()))?;
    send.write_all(bytes).await.map_err(|error| later(error.to_string()))?;
    send.finish().map_err(|error| later(error.to_string()))?;
    let reply = recv.read_to_end(16).await.map_err(|error| later(error.to_string()))?;
    connection.close(0u32.into(), b"sent");
    match reply.as_slice() {
        OK => Ok(()),
        SHIELDED => Err(Undelivered::Shielded),
        _ => Err(later("their node refused the message".to_owned())),
    }
}

/// What the recipient answers one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Stored (or a copy of one stored).
    Ok,
    /// Not taken: malformed, blocked, over a rate, or not stored.
    No,
    /// Below the private-message shield.
    Shielded,
}

/// Accepts private messages: one per stream, checked like everything else, from the person
/// the connection's key proves to be on the other end, stored, then acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct DirectProtocol {
    me: iroh::PublicKey,
    store: Arc<DirectStore>,
    /// New messages, once stored, for the node to show.
    arrivals: mpsc::Sender<Result<DirectLine, KeepError>>,
    stats: Arc<NetStats>,
    per_sender: Arc<Mutex<RateLimiter>>,
    in_total: Arc<Mutex<RateLimiter<()>>>,
    start: Instant,
    /// Senders we block: their messages are refused unread.
    blocks: crate::node::Blocks,
    /// The private-message shield.
    door: crate::node::Door,
}

impl DirectProtocol {
    /// A handler receiving for `me` into `store`, reporting stored messages on `arrivals`.
    pub(crate) fn new(
        me: iroh::PublicKey,
        store: Arc<DirectStore>,
        arrivals: mpsc::Sender<Result<DirectLine, KeepError>>,
        stats: Arc<NetStats>,
        blocks: crate::node::Blocks,
        door: crate::node::Door,
    ) -> Self {
        Self {
            me,
            store,
            arrivals,
            stats,
            per_sender: Arc::new(Mutex::new(RateLimiter::new(PER_SENDER.0, PER_SENDER.1))),
            in_total: Arc::new(Mutex::new(RateLimiter::new(IN_TOTAL.0, IN_TOTAL.1))),
            start: Instant::now(),
            blocks,
            door,
        }
    }

    /// Checks, stores and answers one message from `remote`.
    async fn take(&self, remote: iroh::PublicKey, bytes: &[u8]) -> Answer {
        if self.blocks.contains(remote.as_bytes()) {
            return Answer::No;
        }
        let message = match decode::<DirectText>(bytes, self.me.as_bytes()) {
            Ok(message) if message.author == remote => message,
            Ok(_) => {
                self.stats.count_error(&WireError::BadSignature);
                return Answer::No;
            }
            Err(error) => {
                self.stats.count_error(&error);
                return Answer::No;
            }
        };
        let now = self.start.elapsed();
        let allowed = self.per_sender.lock().is_ok_and(|mut limiter| limiter.allow(remote, now))
            && self.in_total.lock().is_ok_and(|mut limiter| limiter.allow((), now));
        if !allowed {
            self.stats.count_flooded();
            return Answer::No;
        }
        let Ok(from) = PublicKey::from_bytes(*message.author.as_bytes()) else { return Answer::No };
        let Ok(to) = PublicKey::from_bytes(*self.me.as_bytes()) else { return Answer::No };
        if !self.door.admits_direct(&from) {
            return Answer::Shielded;
        }
        let line = DirectLine { id: message.sequence, from, to, name: message.body.name, text: message.body.text };
        match self.store.keep(&line, false).await {
            Ok(true) => {
                self.stats.count_accepted();
                let _ = self.arrivals.send(Ok(line)).await;
                Answer::Ok
            }
            // A copy of one we hold: the sender did not hear our "ok" last time.
            Ok(false) => {
                self.stats.count_replayed();
                Answer::Ok
            }
            Err(error) => {
                let _ = self.arrivals.send(Err(error)).await;
                Answer::No
            }
        }
    }
}

impl ProtocolHandler for DirectProtocol {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let remote = connection.remote_id();
        while let Ok((mut send, mut recv)) = connection.accept_bi().await {
            let read = tokio::time::timeout(STREAM_TIMEOUT, recv.read_to_end(MAX_MESSAGE_BYTES)).await;
            let verdict: &[u8] = match read {
                Ok(Ok(bytes)) => match self.take(remote, &bytes).await {
                    Answer::Ok => OK,
                    Answer::No => NO,
                    Answer::Shielded => SHIELDED,
                },
                Ok(Err(_)) => {
                    self.stats.count_error(&WireError::TooLarge { len: MAX_MESSAGE_BYTES + 1 });
                    NO
                }
                // Too slow: the stream is dropped without an answer.
                Err(_) => break,
            };
            if send.write_all(verdict).await.is_err() || send.finish().is_err() {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A door open to strangers' private messages.
    fn open_door() -> crate::node::Door {
        let mut shields = sanctuary_engine::shields::Shields::default();
        shields.set(sanctuary_engine::shields::Category::Direct, sanctuary_engine::shields::Reach::Everyone);
        crate::node::Door::new(shields)
    }

    fn line(from: u8, id: u64) -> DirectLine {
        DirectLine {
            id,
            from: PublicKey::from_secret_seed(&[from; 32]),
            to: PublicKey::from_secret_seed(&[9; 32]),
            name: "Ada".into(),
            text: format!("message {id}"),
        }
    }

    /// After a restart, a copy of any message ever kept is recognised, not only of the last
    /// 500 (the sender resends when it missed our "ok").
    #[tokio::test]
    async fn every_kept_message_is_recognised_after_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("direct.log");
        {
            let (store, history) = DirectStore::open(path.clone());
            assert!(history.is_empty());
            for id in 0..700 {
                assert_eq!(store.keep(&line(1, id), false).await, Ok(true));
            }
            assert_eq!(store.keep(&line(1, 3), false).await, Ok(false), "a copy");
        }
        let (store, history) = DirectStore::open(path.clone());
        assert_eq!(history.len(), HISTORY);
        assert_eq!(history.last().map(|line| line.id), Some(699));
        assert_eq!(store.keep(&line(1, 0), false).await, Ok(false), "the oldest, long out of the history");
        assert_eq!(store.keep(&line(2, 0), false).await, Ok(true), "the same id from someone else");
        let kept: Vec<DirectLine> = store::read_tail(&path, usize::MAX).expect("reads");
        assert_eq!(kept.len(), 701);
    }

    /// The receiver used to answer "ok" before it stored the message: a disk that failed (or a
    /// crash) lost a message its sender had already dropped from the outbox.
    #[tokio::test]
    async fn a_message_is_acknowledged_only_once_stored() {
        use crate::wire::encode;
        let dir = tempfile::tempdir().expect("temp dir");
        let me = iroh::SecretKey::from_bytes(&[9; 32]);
        let sender = iroh::SecretKey::from_bytes(&[1; 32]);
        let body = DirectText { name: "Ada".into(), text: "hello".into() };
        let bytes = encode(&sender, me.public().as_bytes(), 5, &body).expect("encodes");
        // A directory where the log should be: every append fails.
        let broken = dir.path().join("broken.log");
        std::fs::create_dir(&broken).expect("dir");
        let (store, _) = DirectStore::open(broken);
        let (arrivals, mut arrived) = mpsc::channel(8);
        let protocol = DirectProtocol::new(
            me.public(),
            store,
            arrivals,
            Arc::new(NetStats::default()),
            Default::default(),
            open_door(),
        );
        assert_eq!(protocol.take(sender.public(), &bytes).await, Answer::No, "not stored, so not acknowledged");
        assert!(matches!(arrived.try_recv(), Ok(Err(KeepError::Disk(_)))));
        // A working log: stored and acknowledged once; a copy is acknowledged, not stored again.
        let path = dir.path().join("direct.log");
        let (store, _) = DirectStore::open(path.clone());
        let (arrivals, mut arrived) = mpsc::channel(8);
        let protocol = DirectProtocol::new(
            me.public(),
            store,
            arrivals,
            Arc::new(NetStats::default()),
            Default::default(),
            open_door(),
        );
        assert_eq!(protocol.take(sender.public(), &bytes).await, Answer::Ok);
        assert_eq!(protocol.take(sender.public(), &bytes).await, Answer::Ok, "a copy is acknowledged too");
        assert!(matches!(arrived.try_recv(), Ok(Ok(line)) if line.text == "hello"));
        assert!(arrived.try_recv().is_err(), "and shown once");
        let kept: Vec<DirectLine> = store::read_tail(&path, usize::MAX).expect("reads");
        assert_eq!(kept.len(), 1);
        // Someone else's message relayed by a third key is refused.
        assert_eq!(protocol.take(iroh::SecretKey::from_bytes(&[3; 32]).public(), &bytes).await, Answer::No);
    }
}
