//! Sending private messages: each is signed for its recipient, kept in `direct.log`, and waits in
//! the outbox (`outbox.bin`, rewritten atomically) until the recipient's node answers "ok" (see
//! [`crate::direct`] for the receiving side). Undelivered messages are tried again every 5 s and
//! as soon as their recipient is heard on the world topic. The outbox holds only what this
//! person wrote, so it needs no bound against others.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use sanctuary_engine::PublicKey;
use serde::{Deserialize, Serialize};

use super::actor::{Internal, Node};
use super::{Delivery, DirectLine, Event};
use crate::direct::Undelivered;
use crate::direct::deliver;
use crate::store;
use crate::wire::{DirectText, encode};

/// How often undelivered private messages are tried again.
const OUTBOX_RETRY: Duration = Duration::from_secs(5);
/// How long a private message may take to reach its recipient before it waits in the outbox.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(8);

/// A message waiting for its recipient's "ok".
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OutboxEntry {
    line: DirectLine,
    bytes: Vec<u8>,
    #[serde(skip)]
    reported: bool,
}

impl OutboxEntry {
    /// A message as it waits: the line, and the signed bytes that go out.
    pub(crate) fn new(line: DirectLine, bytes: Vec<u8>) -> Self {
        Self { line, bytes, reported: false }
    }
}

/// The messages not yet delivered.
pub(super) struct Outbox {
    entries: Vec<OutboxEntry>,
    in_flight: HashSet<u64>,
    last_try: Instant,
}

impl Outbox {
    /// The outbox as it was saved.
    pub(super) fn new(entries: Vec<OutboxEntry>) -> Self {
        let long_ago = Instant::now().checked_sub(Duration::from_secs(60)).unwrap_or_else(Instant::now);
        Self { entries, in_flight: HashSet::new(), last_try: long_ago }
    }

    /// How many messages wait.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

impl Node {
    /// Sends a private message to `to`: kept, queued, then delivered in the background.
    pub(super) async fn direct(&mut self, to: PublicKey, text: String) {
        let text = text.trim().to_owned();
        if text.is_empty() {
            return;
        }
        if to == self.me_key {
            self.emit(Event::Notice("that is you".into())).await;
            return;
        }
        let id = self.clock_next();
        let body = DirectText { name: self.profile.name.clone(), text: text.clone() };
        let bytes = match encode(&self.secret, to.as_bytes(), id, &body) {
            Ok(bytes) => bytes,
            Err(error) => {
                self.emit(Event::Notice(format!("not sent: {error}"))).await;
                return;
            }
        };
        let line = DirectLine { id, from: self.me_key, to, name: self.profile.name.clone(), text };
        if let Err(error) = self.direct_store.keep(&line, true).await {
            self.emit(Event::Notice(error.to_string())).await;
        }
        self.outbox.entries.push(OutboxEntry::new(line.clone(), bytes));
        self.save_outbox().await;
        self.emit(Event::Direct(line)).await;
        self.try_deliver(id);
    }

    async fn save_outbox(&self) {
        if let Err(error) = store::write_atomic(&self.paths.outbox(), &self.outbox.entries) {
            self.emit(Event::Notice(format!("the outbox could not be saved: {error}"))).await;
        }
    }

    fn try_deliver(&mut self, id: u64) {
        let Some(entry) = self.outbox.entries.iter().find(|entry| entry.line.id == id) else { return };
        if !self.outbox.in_flight.insert(id) {
            return;
        }
        let Ok(to) = iroh::PublicKey::from_bytes(entry.line.to.as_bytes()) else { return };
        let endpoint = self.endpoint.clone();
        let bytes = entry.bytes.clone();
        let internal = self.internal_tx.clone();
        tokio::spawn(async move {
            let result = match tokio::time::timeout(DELIVERY_TIMEOUT, deliver(&endpoint, to, &bytes)).await {
                Ok(result) => result,
                Err(_) => Err(Undelivered::Later("no answer in time".to_owned())),
            };
            let _ = internal.send(Internal::DirectDone { id, result }).await;
        });
    }

    /// Tries everything waiting for `peer` now (they were just heard).
    pub(super) fn deliver_to(&mut self, peer: iroh::PublicKey) {
        let waiting: Vec<u64> = self
            .outbox
            .entries
            .iter()
            .filter(|entry| entry.line.to.as_bytes() == peer.as_bytes())
            .map(|entry| entry.line.id)
            .collect();
        for id in waiting {
            self.try_deliver(id);
        }
    }

    /// Tries everything waiting, every few seconds.
    pub(super) fn outbox_tick(&mut self, now: Instant) {
        if now.duration_since(self.outbox.last_try) >= OUTBOX_RETRY {
            self.outbox.last_try = now;
            let waiting: Vec<u64> = self.outbox.entries.iter().map(|entry| entry.line.id).collect();
            for id in waiting {
                self.try_deliver(id);
            }
        }
    }

    /// A delivery ended: delivered (out of the outbox), or not (told once, tried again later).
    pub(super) async fn delivery_done(&mut self, id: u64, result: Result<(), Undelivered>) {
        self.outbox.in_flight.remove(&id);
        let Some(at) = self.outbox.entries.iter().position(|entry| entry.line.id == id) else { return };
        match result {
            Ok(()) => {
                let entry = self.outbox.entries.remove(at);
                self.save_outbox().await;
                self.emit(Event::DirectOutcome { id, to: entry.line.to, outcome: Delivery::Delivered }).await;
            }
            Err(Undelivered::Shielded) => {
                let entry = self.outbox.entries.remove(at);
                self.save_outbox().await;
                let reason = "they take private messages only from people they trust; ask a friend of theirs to vouch for you, or meet them in chat first".to_owned();
                let outcome = Delivery::Refused { reason };
                self.emit(Event::DirectOutcome { id, to: entry.line.to, outcome }).await;
            }
            Err(Undelivered::Later(reason)) => {
                let entry = &mut self.outbox.entries[at];
                if !entry.reported {
                    entry.reported = true;
                    let to = entry.line.to;
                    self.emit(Event::DirectOutcome { id, to, outcome: Delivery::Queued { reason } }).await;
                }
            }
        }
    }
}
