//! Contribution receipts on the node (the rules are [`crate::receipts`]). What we receive is
//! counted by whom it came from: the parts of models and avatars by the provider that sent
//! them (as the downloader reports its progress), world changes by the neighbour a sync brought
//! them from; and what the hosts we name keep of our models, checked now and then
//! ([`KEPT_CHECK_EVERY`]: the last chunk of every blob, asked for and verified, which a host
//! without the blob cannot answer). Every [`RECEIPT_EVERY`], each server whose totals grew is handed a fresh signed
//! receipt over `alpn::RECEIPT` (a lost one is covered by the next: receipts are cumulative).
//! Receipts others hand us join our record, kept in `receipts.bin`; anyone may ask for it
//! (`Command::AskContribution`), and what comes back is checked before the program sees it.
//!
//! Bounds: those of [`crate::receipts`]; receipts and asks answered at once
//! ([`MAX_ANSWERING`]), per peer (a burst of 4, then one every 2 s) and from everyone together
//! (a burst of 64, then 20 a second); receipts handed over at once ([`MAX_HANDING`]; the rest
//! wait for the next round); asks of ours in flight ([`MAX_ASKS`]); every exchange within
//! [`EXCHANGE_TIMEOUT`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler};
use sanctuary_engine::PublicKey;

use super::Event;
use super::actor::{Internal, Node, wall_micros};
use crate::alpn;
use crate::assets::Served;
use crate::inbox::RateLimiter;
use crate::receipts::{Contribution, Given, MAX_RECORD_BYTES, Record, SignedReceipt, checked_record};
use crate::store;
use crate::uploads::Uploads;

/// How often servers whose totals grew are handed a receipt, and the books saved.
const RECEIPT_EVERY: Duration = Duration::from_secs(5);
/// How long one exchange (a receipt handed over, a record asked for) may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Receipts and asks answered at once.
const MAX_ANSWERING: usize = 8;
/// Receipts we hand over at once.
const MAX_HANDING: usize = 4;
/// Records of others we ask for at once.
const MAX_ASKS: usize = 4;
const PER_PEER: (u32, f64) = (4, 0.5);
const IN_ALL: (u32, f64) = (64, 20.0);
/// The first byte of an exchange: a receipt follows, or a record is asked for.
const HANDING: u8 = b'R';
const ASKING: u8 = b'?';
/// The largest book file read back (the record of 10,000 receivers is about 2 MB).
const MAX_BOOK_FILE: u64 = 16 << 20;
/// How often our hosts are checked for holding our models; sooner after we name one, and again
/// within [`KEPT_CHECK_AGAIN`] while one holds less than all of them (it may still be fetching).
const KEPT_CHECK_EVERY: Duration = Duration::from_secs(600);
const KEPT_CHECK_SOON: Duration = Duration::from_secs(10);
const KEPT_CHECK_AGAIN: Duration = Duration::from_secs(30);
/// The most of our models a check asks a host about.
const MAX_MODELS_CHECKED: usize = 64;

/// Our record, shared with the protocol that takes receipts in.
#[derive(Debug, Default)]
pub(super) struct SharedRecord {
    record: Mutex<Record>,
    /// Whether it changed since it was last saved.
    changed: AtomicBool,
}

impl SharedRecord {
    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The receipts' part of the node.
#[derive(Debug)]
pub(super) struct Receipts {
    given: Given,
    given_path: PathBuf,
    given_changed: bool,
    pub(super) record: Arc<SharedRecord>,
    record_path: PathBuf,
    /// Servers whose totals grew since their last receipt.
    pending: HashSet<[u8; 32]>,
    last_round: Instant,
    handing: Arc<tokio::sync::Semaphore>,
    /// People whose record we are asking for now.
    asking: Arc<Mutex<HashSet<PublicKey>>>,
    /// When our hosts are next checked, and whether a check is running.
    next_kept_check: Instant,
    checking_kept: bool,
}

/// Reads a book, or starts an empty one: a damaged or oversized file is set aside (renamed
/// `.damaged`), with the reason.
fn read_book<T: serde::de::DeserializeOwned + Default>(path: &Path) -> (T, Option<String>) {
    let too_large = std::fs::metadata(path).is_ok_and(|metadata| metadata.len() > MAX_BOOK_FILE);
    let read = if too_large {
        Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "it is larger than any book of receipts"))
    } else {
        store::read_whole(path)
    };
    match read {
        Ok(book) => (book.unwrap_or_default(), None),
        Err(error) => {
            let _ = std::fs::rename(path, path.with_extension("damaged"));
            (T::default(), Some(format!("{} could not be read and is kept aside: {error}", path.display())))
        }
    }
}

impl Receipts {
    /// Opens the books in `data_dir`; problems come back as notices.
    pub(super) fn open(data_dir: &Path) -> (Self, Vec<String>) {
        let (given_path, record_path) = (data_dir.join("receipts-given.bin"), data_dir.join("receipts.bin"));
        let (given, given_problem) = read_book::<Given>(&given_path);
        let (record, record_problem) = read_book::<Record>(&record_path);
        let receipts = Self {
            given,
            given_path,
            given_changed: false,
            record: Arc::new(SharedRecord { record: Mutex::new(record), changed: AtomicBool::new(false) }),
            record_path,
            pending: HashSet::new(),
            last_round: Instant::now(),
            handing: Arc::new(tokio::sync::Semaphore::new(MAX_HANDING)),
            asking: Arc::default(),
            next_kept_check: Instant::now() + KEPT_CHECK_SOON,
            checking_kept: false,
        };
        (receipts, [given_problem, record_problem].into_iter().flatten().collect())
    }

    /// Saves what changed since the last round (at shutdown); problems come back in words.
    pub(super) fn save(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        if std::mem::take(&mut self.given_changed)
            && let Err(error) = store::write_atomic(&self.given_path, &self.given)
        {
            problems.push(format!("the receipts given could not be saved: {error}"));
        }
        if self.record.changed.swap(false, Ordering::Relaxed) {
            let record = self.record.lock().clone();
            if let Err(error) = store::write_atomic(&self.record_path, &record) {
                problems.push(format!("the receipts could not be saved: {error}"));
            }
        }
        problems
    }

    /// We named a host: it is checked soon (once it has had time to fetch).
    pub(super) fn kept_check_soon(&mut self) {
        self.next_kept_check = self.next_kept_check.min(Instant::now() + KEPT_CHECK_SOON);
    }

    /// Counts what came from `server`.
    fn count(&mut self, server: [u8; 32], blob_bytes: u64, blobs: u64, world_changes: u64) {
        if blob_bytes == 0 && blobs == 0 && world_changes == 0 {
            return;
        }
        if self.given.add(server, blob_bytes, blobs, world_changes, wall_micros() / 1_000_000) {
            self.pending.insert(server);
            self.given_changed = true;
        }
    }
}

/// Reads our record from the data directory `data_dir` (for `sanctuary receipts`): every
/// receipt others signed for us, by receiver.
pub fn read_record(data_dir: &Path) -> std::io::Result<Vec<SignedReceipt>> {
    let record: Option<Record> = store::read_whole(&data_dir.join("receipts.bin"))?;
    Ok(record.map(|record| record.all()).unwrap_or_default())
}

impl Node {
    /// A fetch ended: what each provider sent is counted.
    pub(super) fn received_blobs(&mut self, served: Served) {
        for (provider, bytes, blobs) in served.by {
            if provider != self.me {
                self.receipts.count(*provider.as_bytes(), bytes, blobs, 0);
            }
        }
    }

    /// Our hosts were checked: what each holds of our models goes into the next receipts.
    /// `asked` hosts were asked; those that answered are in `kept`, with what they hold of the
    /// `all` bytes of our models. While one holds less or did not answer, the next check is soon.
    pub(super) fn kept_checked(&mut self, kept: Vec<(iroh::PublicKey, u64)>, asked: usize, all: u64) {
        self.receipts.checking_kept = false;
        let short = kept.len() < asked || kept.iter().any(|(_, bytes)| *bytes < all);
        self.receipts.next_kept_check = Instant::now() + if short { KEPT_CHECK_AGAIN } else { KEPT_CHECK_EVERY };
        let at = wall_micros() / 1_000_000;
        for (host, bytes) in kept {
            if self.receipts.given.set_kept(*host.as_bytes(), bytes, at) {
                self.receipts.pending.insert(*host.as_bytes());
                self.receipts.given_changed = true;
            }
        }
    }

    /// Starts a check of our hosts when one is due: the hosts we name and our models, read
    /// from the world off the loop, then asked about on a task of its own.
    fn check_hosts(&mut self, now: Instant) {
        if self.receipts.checking_kept || now < self.receipts.next_kept_check {
            return;
        }
        self.receipts.checking_kept = true;
        let (replica, me) = (self.replica.clone(), self.me_key);
        let (endpoint, assets, internal) = (self.endpoint.clone(), self.assets.clone(), self.internal_tx.clone());
        tokio::spawn(async move {
            let read = tokio::task::spawn_blocking(move || {
                let mut world = replica.world();
                let hosts = world.hosts_of(&me);
                (hosts, crate::hosting::models_placed_by(&mut world, &me))
            });
            let (hosts, models) = read.await.unwrap_or_default();
            let hosts: Vec<iroh::PublicKey> =
                hosts.iter().filter_map(|key| iroh::PublicKey::from_bytes(key.as_bytes()).ok()).collect();
            let models: Vec<_> = models.into_iter().take(MAX_MODELS_CHECKED).collect();
            let all = models.iter().fold(0u64, |sum, model| sum.saturating_add(model.bytes));
            let asked = if models.is_empty() { 0 } else { hosts.len() };
            let kept = if asked == 0 { Vec::new() } else { check_kept(endpoint, assets, hosts, models).await };
            let _ = internal.send(Internal::KeptChecked { kept, asked, all }).await;
        });
    }

    /// A sync brought `changes` new world changes from `peer`.
    pub(super) fn received_changes(&mut self, peer: iroh::PublicKey, changes: usize) {
        self.receipts.count(*peer.as_bytes(), 0, 0, changes as u64);
    }

    /// Every [`RECEIPT_EVERY`]: receipts to the servers whose totals grew, the books saved, and
    /// our own record told to the program when it changed.
    pub(super) async fn receipts_tick(&mut self, now: Instant) {
        if now.duration_since(self.receipts.last_round) < RECEIPT_EVERY {
            return;
        }
        self.receipts.last_round = now;
        self.check_hosts(now);
        let servers: Vec<[u8; 32]> = self.receipts.pending.iter().copied().collect();
        for server in servers {
            let Ok(permit) = self.receipts.handing.clone().try_acquire_owned() else { break };
            self.receipts.pending.remove(&server);
            let Some(signed) = self.receipts.given.receipt(&self.secret, server, wall_micros() / 1_000_000) else {
                continue;
            };
            let Ok(peer) = iroh::PublicKey::from_bytes(&server) else { continue };
            let endpoint = self.endpoint.clone();
            // A receipt that does not arrive is covered by the next one.
            tokio::spawn(async move {
                let _ = tokio::time::timeout(EXCHANGE_TIMEOUT, hand_over(endpoint, peer, signed)).await;
                drop(permit);
            });
        }
        if std::mem::take(&mut self.receipts.given_changed) {
            let (given, path) = (self.receipts.given.clone(), self.receipts.given_path.clone());
            let events = self.events.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(error) = store::write_atomic(&path, &given) {
                    let _ =
                        events.blocking_send(Event::Notice(format!("the receipts given could not be saved: {error}")));
                }
            });
        }
        if self.receipts.record.changed.swap(false, Ordering::Relaxed) {
            let record = self.receipts.record.lock().clone();
            let path = self.receipts.record_path.clone();
            let events = self.events.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(error) = store::write_atomic(&path, &record) {
                    let _ = events.blocking_send(Event::Notice(format!("the receipts could not be saved: {error}")));
                }
            });
            self.tell_own_contribution().await;
        }
    }

    /// Tells the program our own record.
    pub(super) async fn tell_own_contribution(&mut self) {
        let (contribution, shown) = {
            let record = self.receipts.record.lock();
            (record.contribution(), record.shown())
        };
        let person = self.me_key;
        self.emit(Event::Contribution { person, contribution, receipts: Arc::new(shown), reached: true }).await;
    }

    /// Asks `person`'s node for their record, checks it off the loop and tells the program.
    pub(super) async fn ask_contribution(&mut self, person: PublicKey) {
        if person == self.me_key {
            self.tell_own_contribution().await;
            return;
        }
        let Ok(peer) = iroh::PublicKey::from_bytes(person.as_bytes()) else { return };
        {
            let mut asking = self.receipts.asking.lock().unwrap_or_else(PoisonError::into_inner);
            if asking.len() >= MAX_ASKS || !asking.insert(person) {
                return;
            }
        }
        let (endpoint, events, asking) = (self.endpoint.clone(), self.events.clone(), self.receipts.asking.clone());
        tokio::spawn(async move {
            let answer = tokio::time::timeout(EXCHANGE_TIMEOUT, ask(endpoint, peer)).await;
            asking.lock().unwrap_or_else(PoisonError::into_inner).remove(&person);
            let Ok(Ok(bytes)) = answer else {
                let (contribution, receipts) = (Contribution::default(), Arc::default());
                let _ = events.send(Event::Contribution { person, contribution, receipts, reached: false }).await;
                return;
            };
            let server = *person.as_bytes();
            let checked = tokio::task::spawn_blocking(move || {
                let receipts: Vec<SignedReceipt> = postcard::from_bytes(&bytes).unwrap_or_default();
                checked_record(&server, receipts)
            })
            .await
            .unwrap_or_default();
            let contribution = crate::receipts::contribution_of(&checked, |_| true).0;
            let receipts = Arc::new(checked);
            let _ = events.send(Event::Contribution { person, contribution, receipts, reached: true }).await;
        });
    }
}

/// Checks which of our hosts hold our models: for each host we name, the last chunk of every
/// blob of each of our models (its manifest and files) is asked for and verified, which a host
/// that does not hold the blob cannot answer. Returns the declared bytes of the models each
/// host answered for in full.
async fn check_kept(
    endpoint: iroh::Endpoint,
    assets: crate::AssetStore,
    hosts: Vec<iroh::PublicKey>,
    models: Vec<sanctuary_engine::ModelRef>,
) -> Vec<(iroh::PublicKey, u64)> {
    use iroh_blobs::Hash;
    use iroh_blobs::get::request::get_verified_size;
    // Every blob of each model, as our own store lists it.
    let mut blobs: Vec<(u64, Vec<(Hash, u64)>)> = Vec::new();
    for model in models.into_iter().take(MAX_MODELS_CHECKED) {
        let Some(bundle) = assets.bundle(model.hash).await else { continue };
        let mut hashes = vec![(Hash::from_bytes(model.hash), 0)];
        hashes.extend(bundle.files.iter().map(|file| (Hash::from_bytes(file.hash), file.size)));
        blobs.push((model.bytes, hashes));
    }
    let mut kept = Vec::new();
    for host in hosts {
        let check = async {
            let connection = endpoint.connect(host, alpn::BLOBS).await.ok()?;
            let mut bytes = 0u64;
            for (model_bytes, hashes) in &blobs {
                let mut whole = true;
                for (hash, size) in hashes {
                    match get_verified_size(&connection, hash).await {
                        // A manifest's size is not declared; a file's must be as declared.
                        Ok((verified, _)) if *size == 0 || verified == *size => {}
                        _ => {
                            whole = false;
                            break;
                        }
                    }
                }
                if whole {
                    bytes = bytes.saturating_add(*model_bytes);
                }
            }
            connection.close(0u32.into(), b"checked");
            Some(bytes)
        };
        if let Ok(Some(bytes)) = tokio::time::timeout(EXCHANGE_TIMEOUT * 3, check).await {
            kept.push((host, bytes));
        }
    }
    kept
}

/// Hands `signed` to the server `peer`; the answer is one byte (0: taken).
async fn hand_over(endpoint: iroh::Endpoint, peer: iroh::PublicKey, signed: SignedReceipt) -> Result<(), String> {
    let connection = endpoint.connect(peer, alpn::RECEIPT).await.map_err(|error| error.to_string())?;
    let (mut send, mut recv) = connection.open_bi().await.map_err(|error| error.to_string())?;
    let mut bytes = vec![HANDING];
    bytes.extend(signed.to_bytes());
    send.write_all(&bytes).await.map_err(|error| error.to_string())?;
    send.finish().map_err(|error| error.to_string())?;
    let answer = recv.read_to_end(1).await.map_err(|error| error.to_string())?;
    connection.close(0u32.into(), b"thanks");
    match answer.first() {
        Some(0) => Ok(()),
        _ => Err("the receipt was not taken".into()),
    }
}

/// Asks `peer` for its record: at most [`MAX_RECORD_BYTES`].
async fn ask(endpoint: iroh::Endpoint, peer: iroh::PublicKey) -> Result<Vec<u8>, String> {
    let connection = endpoint.connect(peer, alpn::RECEIPT).await.map_err(|error| error.to_string())?;
    let (mut send, mut recv) = connection.open_bi().await.map_err(|error| error.to_string())?;
    send.write_all(&[ASKING]).await.map_err(|error| error.to_string())?;
    send.finish().map_err(|error| error.to_string())?;
    let bytes = recv.read_to_end(MAX_RECORD_BYTES).await.map_err(|error| error.to_string())?;
    connection.close(0u32.into(), b"thanks");
    Ok(bytes)
}

/// Takes receipts handed to us into our record, and hands our record to whoever asks.
#[derive(Debug, Clone)]
pub(super) struct ReceiptProtocol {
    me: [u8; 32],
    record: Arc<SharedRecord>,
    uploads: Option<Uploads>,
    answering: Arc<tokio::sync::Semaphore>,
    per_peer: Arc<Mutex<RateLimiter<iroh::PublicKey>>>,
    in_all: Arc<Mutex<RateLimiter<()>>>,
    start: Instant,
}

impl ReceiptProtocol {
    pub(super) fn new(me: iroh::PublicKey, record: Arc<SharedRecord>, uploads: Option<Uploads>) -> Self {
        Self {
            me: *me.as_bytes(),
            record,
            uploads,
            answering: Arc::new(tokio::sync::Semaphore::new(MAX_ANSWERING)),
            per_peer: Arc::new(Mutex::new(RateLimiter::with_rate(PER_PEER.0, PER_PEER.1))),
            in_all: Arc::new(Mutex::new(RateLimiter::with_rate(IN_ALL.0, IN_ALL.1))),
            start: Instant::now(),
        }
    }

    /// The answer to what `peer` sent.
    fn answer(&self, peer: iroh::PublicKey, bytes: &[u8]) -> Vec<u8> {
        match bytes.split_first() {
            Some((&HANDING, receipt)) => {
                // What this peer saw itself upload to them: a newcomer to a full record counts
                // no more than that.
                let vouched = self.uploads.as_ref().map_or(0, |uploads| uploads.served_to(peer.as_bytes()));
                let taken = SignedReceipt::from_bytes(receipt)
                    .and_then(|signed| self.record.lock().take(&self.me, peer.as_bytes(), signed, vouched));
                match taken {
                    Ok(()) => {
                        self.record.changed.store(true, Ordering::Relaxed);
                        vec![0]
                    }
                    Err(_) => vec![1],
                }
            }
            Some((&ASKING, [])) => postcard::to_allocvec(&self.record.lock().shown()).unwrap_or_default(),
            _ => vec![1],
        }
    }
}

impl ProtocolHandler for ReceiptProtocol {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let peer = connection.remote_id();
        let now = self.start.elapsed();
        let allowed = self.per_peer.lock().is_ok_and(|mut limit| limit.allow(peer, now))
            && self.in_all.lock().is_ok_and(|mut limit| limit.allow((), now));
        let permit = if allowed { self.answering.clone().try_acquire_owned().ok() } else { None };
        let Some(_permit) = permit else { return Ok(()) };
        let Ok(Ok((mut send, mut recv))) = tokio::time::timeout(EXCHANGE_TIMEOUT, connection.accept_bi()).await else {
            return Ok(());
        };
        let read = tokio::time::timeout(EXCHANGE_TIMEOUT, recv.read_to_end(1 + crate::receipts::MAX_RECEIPT_BYTES));
        let Ok(Ok(bytes)) = read.await else { return Ok(()) };
        let answer = self.answer(peer, &bytes);
        if tokio::time::timeout(EXCHANGE_TIMEOUT, send.write_all(&answer)).await.is_ok() {
            let _ = send.finish();
            let _ = tokio::time::timeout(EXCHANGE_TIMEOUT, connection.closed()).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_books_are_set_aside_and_good_ones_read_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("receipts.bin"), [0xff; 40]).expect("writes");
        let (receipts, problems) = Receipts::open(dir.path());
        assert!(receipts.record.lock().is_empty());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(dir.path().join("receipts.damaged").exists());

        let server = iroh::SecretKey::from_bytes(&[1; 32]);
        let receiver = iroh::SecretKey::from_bytes(&[2; 32]);
        let mut given = Given::default();
        given.add(*server.public().as_bytes(), 100, 1, 0, 5);
        let signed = given.receipt(&receiver, *server.public().as_bytes(), 6).expect("counted");
        let mut record = Record::default();
        record.take(server.public().as_bytes(), receiver.public().as_bytes(), signed.clone(), 0).expect("taken");
        store::write_atomic(&dir.path().join("receipts.bin"), &record).expect("saved");
        assert_eq!(read_record(dir.path()).expect("read"), vec![signed]);
        let (receipts, problems) = Receipts::open(dir.path());
        assert!(problems.is_empty());
        assert_eq!(
            receipts.record.lock().contribution(),
            Contribution { people: 1, blob_bytes: 100, blobs: 1, ..Contribution::default() }
        );
    }

    #[test]
    fn the_protocol_takes_only_the_receivers_own_receipts() {
        let server = iroh::SecretKey::from_bytes(&[1; 32]);
        let (ada, bo) = (iroh::SecretKey::from_bytes(&[2; 32]), iroh::SecretKey::from_bytes(&[3; 32]));
        let protocol = ReceiptProtocol::new(server.public(), Arc::default(), None);
        let mut given = Given::default();
        given.add(*server.public().as_bytes(), 4096, 2, 0, 5);
        let signed = given.receipt(&ada, *server.public().as_bytes(), 6).expect("counted");
        let mut handed = vec![HANDING];
        handed.extend(signed.to_bytes());
        assert_eq!(protocol.answer(bo.public(), &handed), vec![1], "Bo hands over Ada's receipt");
        assert_eq!(protocol.answer(ada.public(), &handed), vec![0]);
        assert_eq!(protocol.answer(ada.public(), &handed), vec![1], "replayed");
        assert_eq!(protocol.answer(ada.public(), b"Rgarbage"), vec![1]);
        assert_eq!(protocol.answer(ada.public(), b"x"), vec![1]);
        assert!(protocol.record.changed.load(Ordering::Relaxed));
        let shown: Vec<SignedReceipt> =
            postcard::from_bytes(&protocol.answer(bo.public(), &[ASKING])).expect("a record");
        assert_eq!(shown, vec![signed]);
    }
}
