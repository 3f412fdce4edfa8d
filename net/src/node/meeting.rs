//! The meeting room's polls: the book (kept in `polls.bin`, read at start), polls opened and
//! ballots cast by us, those heard on the room's topic, and newcomers told what the room holds.
//! The rules are [`crate::meeting`]'s and [`crate::poll`]'s.
//!
//! A newcomer learns the polls from whoever holds them: each poll's author says it and its
//! ballots; while a poll is open and its author is not here, everyone else does (anyone may pass
//! on an open poll's ballots). What is said to newcomers waits in a queue, said at most
//! [`SAY_EVERY`] apart so that it stays within the meeting lane's rate at every receiver.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sanctuary_engine::trust::Standing;
use sanctuary_engine::{PublicKey, RegionId, RoomKind};

use super::Event;
use super::actor::{Node, wall_micros};
use crate::meeting::{MAX_BALLOTS_SAID, MAX_POLLS, MeetingMessage, PollBook};
use crate::poll::{Ballot, MAX_OPEN, MAX_VOTERS, Poll, PollError, SignedPoll};
use crate::store;
use crate::wire::RegionMessage;

/// The one region with polls.
pub(super) const MEETING: RegionId = RegionId::Room(RoomKind::Meeting);
/// The least time between two things said to newcomers (the lane allows eight a second).
const SAY_EVERY: Duration = Duration::from_millis(150);
/// The most things waiting to be said: every poll and all its ballots.
const MAX_QUEUED: usize = MAX_POLLS * (1 + MAX_VOTERS / MAX_BALLOTS_SAID);
/// How often a changed book is written to disk (at most).
const SAVE_EVERY: Duration = Duration::from_secs(2);

/// What the program is told of a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollView {
    /// Its id.
    pub id: [u8; 32],
    /// The poll.
    pub poll: Poll,
    /// Votes per option, everyone's.
    pub tally: Vec<u32>,
    /// Votes per option of those the person trusts (directly or through others), and their own.
    pub trusted: Vec<u32>,
    /// How many voted.
    pub voters: usize,
    /// Our choice, if we voted.
    pub mine: Option<u8>,
    /// Whether it is open now.
    pub open: bool,
}

/// The polls' part of the node.
#[derive(Debug)]
pub(super) struct Meeting {
    book: PollBook,
    path: PathBuf,
    /// What waits to be said to newcomers, and when the last of it was.
    queue: VecDeque<MeetingMessage>,
    last_said: Option<Instant>,
    /// Someone new is here: the queue is filled at the next tick.
    newcomer: bool,
    /// The book changed since the program was told, and since it was written.
    changed: bool,
    dirty: bool,
    saved: Option<Instant>,
    /// How many polls were open when the program was last told (a poll closing is news).
    open_told: usize,
}

impl Meeting {
    /// The book kept at `path` (an empty one when there is none; one that cannot be read is
    /// moved aside, and a notice says so).
    pub(super) fn open(path: PathBuf) -> (Self, Option<String>) {
        let (book, problem) = match store::read_whole(&path) {
            Ok(kept) => {
                let (book, dropped) = PollBook::from_kept(kept.unwrap_or_default());
                let problem = (dropped > 0)
                    .then(|| format!("{dropped} polls or votes in {} did not check and were left out", path.display()));
                (book, problem)
            }
            Err(error) => {
                let _ = std::fs::rename(&path, path.with_extension("damaged"));
                (PollBook::default(), Some(format!("the polls could not be read ({error}); they were put aside")))
            }
        };
        let meeting = Self {
            book,
            path,
            queue: VecDeque::new(),
            last_said: None,
            newcomer: true,
            changed: true,
            dirty: false,
            saved: None,
            open_told: 0,
        };
        (meeting, problem)
    }

    /// Writes the book now if it changed.
    pub(super) fn save(&mut self) -> Option<String> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        self.saved = Some(Instant::now());
        store::write_atomic(&self.path, &self.book.to_kept())
            .err()
            .map(|error| format!("the polls could not be saved in {}: {error}", self.path.display()))
    }
}

impl Node {
    fn in_meeting(&self) -> bool {
        self.regions.current().is_some_and(|subscription| subscription.region == MEETING)
    }

    async fn say_meeting(&self, message: MeetingMessage) {
        let Some(subscription) = self.regions.current().filter(|subscription| subscription.region == MEETING) else {
            return;
        };
        let sender = subscription.sender.clone();
        self.broadcast(&sender, MEETING, &RegionMessage::Meeting(message)).await;
    }

    fn poll_refused(&mut self, reason: String) {
        let _ = self.events.try_send(Event::PollRefused(reason));
    }

    /// Opens a poll in the meeting room, open for `open_for` from now.
    pub(super) async fn open_poll(&mut self, question: String, options: Vec<String>, open_for: Duration) {
        if !self.in_meeting() {
            return self.poll_refused("polls are held in the meeting room".into());
        }
        let now = wall_micros();
        let open_for = open_for.min(MAX_OPEN);
        let closes_us = now.saturating_add(u64::try_from(open_for.as_micros()).unwrap_or(u64::MAX));
        let poll = Poll { author: [0; 32], opened_us: now, closes_us, question, options };
        let signed = match SignedPoll::new(&self.secret, poll) {
            Ok(signed) => signed,
            Err(error) => return self.poll_refused(error.to_string()),
        };
        match self.meeting.book.take_poll(signed.clone(), now, |_| true) {
            Ok(_) => {
                self.meeting_changed();
                self.say_meeting(MeetingMessage::Poll(signed)).await;
            }
            Err(error) => self.poll_refused(error.to_string()),
        }
    }

    /// Votes for option `choice` of a poll held (a later vote replaces ours).
    pub(super) async fn vote(&mut self, poll: [u8; 32], choice: u8) {
        if !self.in_meeting() {
            return self.poll_refused("polls are held in the meeting room".into());
        }
        let Some(held) = self.meeting.book.get(&poll) else {
            return self.poll_refused(PollError::Unknown.to_string());
        };
        let now = wall_micros();
        // Two votes in one microsecond would be one: the later one is dated after the first.
        let after_ours = held.ballot_of(self.me.as_bytes()).map_or(0, |ours| ours.at_us.saturating_add(1));
        let ballot = match Ballot::cast(&self.secret, &held.poll.poll, choice, now.max(after_ours)) {
            Ok(ballot) => ballot,
            Err(error) => return self.poll_refused(error.to_string()),
        };
        match self.meeting.book.take_ballot(ballot.clone(), self.me.as_bytes(), now) {
            Ok(_) => {
                self.meeting_changed();
                self.say_meeting(MeetingMessage::Ballots(vec![ballot])).await;
            }
            Err(error) => self.poll_refused(error.to_string()),
        }
    }

    /// Writes a poll's results, with every vote and signature, as CSV to `to`.
    pub(super) async fn export_poll(&mut self, poll: [u8; 32], to: PathBuf) {
        let Some(held) = self.meeting.book.get(&poll) else {
            return self.poll_refused(PollError::Unknown.to_string());
        };
        let csv = held.csv();
        match write_csv(&to, &csv) {
            Ok(()) => self.emit(Event::PollExported(to)).await,
            Err(error) => self.poll_refused(format!("could not write {}: {error}", to.display())),
        }
    }

    /// A meeting message believed on the topic of `region`.
    pub(super) fn heard_meeting(&mut self, region: RegionId, author: iroh::PublicKey, message: MeetingMessage) {
        if region != MEETING || !self.in_meeting() {
            return;
        }
        let now = wall_micros();
        let changed = match message {
            MeetingMessage::Stroke(_) | MeetingMessage::Clear(_) => {
                self.heard_on_board(message);
                false
            }
            MeetingMessage::Poll(poll) => {
                let trust = self.trust.last.clone();
                let me = *self.me.as_bytes();
                let trusted = |author: &[u8; 32]| *author == me || trusts(trust.as_deref(), author);
                self.meeting.book.take_poll(poll, now, trusted) == Ok(true)
            }
            MeetingMessage::Ballots(ballots) => ballots
                .into_iter()
                .map(|ballot| self.meeting.book.take_ballot(ballot, author.as_bytes(), now) == Ok(true))
                .fold(false, |any, taken| any | taken),
        };
        if changed {
            self.meeting_changed();
        }
    }

    fn meeting_changed(&mut self) {
        self.meeting.changed = true;
        self.meeting.dirty = true;
    }

    /// Someone new is in the room (or we came): they are told what we hold.
    pub(super) fn meeting_newcomer(&mut self) {
        self.meeting.newcomer = true;
    }

    /// Tells the program what changed, says what waits for newcomers, and writes the book.
    pub(super) async fn meeting_tick(&mut self, now: Instant) {
        if self.meeting.dirty
            && self.meeting.saved.is_none_or(|at| now.duration_since(at) >= SAVE_EVERY)
            && let Some(problem) = self.meeting.save()
        {
            self.emit(Event::Notice(problem)).await;
        }
        if !self.in_meeting() {
            self.meeting.queue.clear();
            self.meeting.newcomer = true;
            return;
        }
        if std::mem::take(&mut self.meeting.newcomer) {
            self.fill_meeting_queue();
        }
        if self.meeting.last_said.is_none_or(|at| now.duration_since(at) >= SAY_EVERY)
            && let Some(message) = self.meeting.queue.pop_front()
        {
            self.meeting.last_said = Some(now);
            self.say_meeting(message).await;
        }
        let wall = wall_micros();
        let open = self.meeting.book.polls().iter().filter(|held| held.poll.poll.open_at(wall)).count();
        if std::mem::take(&mut self.meeting.changed) || open != self.meeting.open_told {
            self.meeting.open_told = open;
            let views = self.poll_views();
            self.emit(Event::Polls(views)).await;
        }
    }

    /// What newcomers are told: the polls we opened, and the open ones whose author is not here,
    /// each with its ballots.
    fn fill_meeting_queue(&mut self) {
        self.meeting.queue.clear();
        let now = wall_micros();
        for held in self.meeting.book.polls() {
            let author = held.poll.poll.author;
            let ours = author == *self.me.as_bytes();
            let author_here = iroh::PublicKey::from_bytes(&author).is_ok_and(|key| self.regions.posed_lately(&key));
            if !ours && (author_here || !held.poll.poll.open_at(now)) {
                continue;
            }
            self.meeting.queue.push_back(MeetingMessage::Poll(held.poll.clone()));
            let ballots: Vec<Ballot> = held.ballots().cloned().collect();
            for chunk in ballots.chunks(MAX_BALLOTS_SAID) {
                self.meeting.queue.push_back(MeetingMessage::Ballots(chunk.to_vec()));
            }
        }
        self.meeting.queue.truncate(MAX_QUEUED);
    }

    fn poll_views(&self) -> Vec<PollView> {
        let now = wall_micros();
        let trust = self.trust.last.clone();
        let trusted = |voter: &[u8; 32]| voter == self.me.as_bytes() || trusts(trust.as_deref(), voter);
        self.meeting
            .book
            .polls()
            .iter()
            .map(|held| PollView {
                id: held.id(),
                poll: held.poll.poll.clone(),
                tally: held.tally(|_| true),
                trusted: held.tally(trusted),
                voters: held.ballots().count(),
                mine: held.ballot_of(self.me.as_bytes()).map(|ballot| ballot.choice),
                open: held.poll.poll.open_at(now),
            })
            .collect()
    }
}

/// Whether the person's trust reaches `key` (they know, or trust, them).
fn trusts(trust: Option<&super::TrustView>, key: &[u8; 32]) -> bool {
    let Ok(key) = PublicKey::from_bytes(*key) else { return false };
    let standing = trust.map_or(Standing::Stranger, |view| view.standing(&key));
    matches!(standing, Standing::Known | Standing::Trusted(_) | Standing::Me)
}

/// Writes `csv` to `to` through a temporary file beside it, so that a file already there is
/// replaced whole or not at all.
fn write_csv(to: &Path, csv: &str) -> std::io::Result<()> {
    let temporary = to.with_extension("csv.tmp");
    std::fs::write(&temporary, csv)?;
    std::fs::rename(&temporary, to)
}
