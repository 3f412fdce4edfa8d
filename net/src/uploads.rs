//! What this peer serves from its blob store (films, models, avatars), counted by whom it went
//! to and held under a rate: iroh-blobs asks before sending each chunk of about 16 KiB
//! ([`iroh_blobs::provider::events`]'s throttle), and the answer waits until the chunk fits the
//! rate. The counts are groundwork for the contribution ledger and shown in the cinema.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use iroh_blobs::provider::events::{
    ConnectMode, EventMask, EventSender, ObserveMode, ProviderMessage, RequestMode, ThrottleMode,
};

/// The most peers counted by name; the rest are counted together.
pub const MAX_COUNTED_PEERS: usize = 1024;
/// The most connections whose peer is remembered (each is forgotten when it closes).
const MAX_CONNECTIONS: usize = 4096;
/// How much may go at once beyond the rate: a quarter of a second's worth (besides the chunk
/// asked for).
const BURST: Duration = Duration::from_millis(250);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct UploadState {
    peers: HashMap<u64, [u8; 32]>,
    served: BTreeMap<[u8; 32], u64>,
    /// Bytes to peers past [`MAX_COUNTED_PEERS`], or whose connection was not seen opening.
    others: u64,
    total: u64,
    /// When the rate allows the next byte out.
    next_free: Option<Instant>,
}

/// Uploads counted, and the rate they are held to.
#[derive(Debug, Clone)]
pub struct Uploads {
    state: Arc<Mutex<UploadState>>,
    rate: Option<u64>,
}

/// A snapshot of [`Uploads`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadCounts {
    /// Bytes sent to each peer, by key.
    pub to: BTreeMap<[u8; 32], u64>,
    /// Bytes to peers not counted by name.
    pub others: u64,
    /// All bytes sent.
    pub total: u64,
}

impl Uploads {
    /// Counts uploads and holds them to `rate` bytes a second (`None`: no limit). Returns the
    /// event sender for [`iroh_blobs::BlobsProtocol::new`]; the task it needs runs on the
    /// current tokio runtime until the protocol is dropped.
    pub fn start(rate: Option<u64>) -> (Self, EventSender) {
        let mask = EventMask {
            connected: ConnectMode::Notify,
            get: RequestMode::None,
            get_many: RequestMode::None,
            push: RequestMode::Disabled,
            observe: ObserveMode::None,
            throttle: ThrottleMode::Intercept,
        };
        let (sender, mut messages) = EventSender::channel(256, mask);
        let uploads = Self { state: Arc::default(), rate: rate.filter(|rate| *rate > 0) };
        let handler = uploads.clone();
        tokio::spawn(async move {
            while let Some(message) = messages.recv().await {
                handler.handle(message).await;
            }
        });
        (uploads, sender)
    }

    async fn handle(&self, message: ProviderMessage) {
        match message {
            ProviderMessage::ClientConnectedNotify(message) => {
                let mut state = lock(&self.state);
                if let Some(peer) = message.inner.endpoint_id
                    && state.peers.len() < MAX_CONNECTIONS
                {
                    state.peers.insert(message.inner.connection_id, *peer.as_bytes());
                }
            }
            ProviderMessage::ConnectionClosed(message) => {
                lock(&self.state).peers.remove(&message.inner.connection_id);
            }
            ProviderMessage::Throttle(message) => {
                let wait = self.count(message.inner.connection_id, message.inner.size, Instant::now());
                if wait.is_zero() {
                    let _ = message.tx.send(Ok(())).await;
                } else {
                    tokio::spawn(async move {
                        tokio::time::sleep(wait).await;
                        let _ = message.tx.send(Ok(())).await;
                    });
                }
            }
            // Everything else is answered "go ahead" (the mask asks for none of it).
            ProviderMessage::ClientConnected(message) => {
                let _ = message.tx.send(Ok(())).await;
            }
            ProviderMessage::GetRequestReceived(message) => {
                let _ = message.tx.send(Ok(())).await;
            }
            ProviderMessage::GetManyRequestReceived(message) => {
                let _ = message.tx.send(Ok(())).await;
            }
            ProviderMessage::PushRequestReceived(message) => {
                let _ = message.tx.send(Ok(())).await;
            }
            ProviderMessage::ObserveRequestReceived(message) => {
                let _ = message.tx.send(Ok(())).await;
            }
            _ => {}
        }
    }

    /// Counts `bytes` to the peer of `connection` and says how long they must wait for the rate.
    fn count(&self, connection: u64, bytes: u64, now: Instant) -> Duration {
        let mut state = lock(&self.state);
        state.total = state.total.saturating_add(bytes);
        let peer = state.peers.get(&connection).copied();
        match peer {
            Some(peer) if state.served.len() < MAX_COUNTED_PEERS || state.served.contains_key(&peer) => {
                let served = state.served.entry(peer).or_default();
                *served = served.saturating_add(bytes);
            }
            _ => state.others = state.others.saturating_add(bytes),
        }
        let Some(rate) = self.rate else { return Duration::ZERO };
        let cost = Duration::from_secs_f64(bytes as f64 / rate as f64);
        // Time owed never starts further back than a burst's worth.
        let floor = now.checked_sub(BURST).unwrap_or(now);
        let start = state.next_free.map_or(floor, |free| free.max(floor));
        state.next_free = Some(start + cost);
        start.saturating_duration_since(now)
    }

    /// What was served so far.
    pub fn counts(&self) -> UploadCounts {
        let state = lock(&self.state);
        UploadCounts { to: state.served.clone(), others: state.others, total: state.total }
    }

    /// Bytes sent to `peer` so far (0 for a peer not counted by name).
    pub fn served_to(&self, peer: &[u8; 32]) -> u64 {
        lock(&self.state).served.get(peer).copied().unwrap_or(0)
    }

    /// The rate uploads are held to, in bytes a second.
    pub fn rate(&self) -> Option<u64> {
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_wait_for_the_rate_after_a_burst() {
        let (uploads, _) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async { Uploads::start(Some(64 * 1024)) });
        lock(&uploads.state).peers.insert(1, [7; 32]);
        let now = Instant::now();
        // A chunk and a quarter second's worth more (16 KiB at 64 KiB/s) go at once; after
        // that each 16 KiB chunk waits another quarter second.
        let waits: Vec<Duration> = (0..5).map(|_| uploads.count(1, 16 * 1024, now)).collect();
        assert_eq!(waits[..2], [Duration::ZERO; 2]);
        for (n, wait) in waits.iter().enumerate().skip(2) {
            let expected = Duration::from_millis(250) * (n as u32 - 1);
            assert!(wait.abs_diff(expected) < Duration::from_millis(1), "chunk {n} waits {wait:?}");
        }
        // Time passing pays the debt off, but idleness does not save up more than the burst.
        let later = now + Duration::from_secs(60);
        assert_eq!(uploads.count(1, 16 * 1024, later), Duration::ZERO);
        assert_eq!(uploads.count(1, 16 * 1024, later), Duration::ZERO);
        assert!(uploads.count(1, 16 * 1024, later) > Duration::from_millis(200));
        let counts = uploads.counts();
        assert_eq!(counts.to.get(&[7; 32]), Some(&(8 * 16 * 1024)));
        assert_eq!(counts.total, 8 * 16 * 1024);
        // A connection not seen opening is counted apart.
        let _ = uploads.count(99, 100, later);
        assert_eq!(uploads.counts().others, 100);
    }

    #[test]
    fn peers_counted_by_name_are_bounded() {
        let uploads = Uploads { state: Arc::default(), rate: None };
        for n in 0..(MAX_COUNTED_PEERS as u64 + 10) {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&n.to_le_bytes());
            lock(&uploads.state).peers.insert(n, key);
            assert_eq!(uploads.count(n, 10, Instant::now()), Duration::ZERO);
        }
        let counts = uploads.counts();
        assert_eq!(counts.to.len(), MAX_COUNTED_PEERS);
        assert_eq!(counts.others, 100);
    }
}
