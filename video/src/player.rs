//! A film played: decoded on a thread of its own, at most [`Limits::max_buffered`] pictures
//! ahead, and asked each frame for the picture to show at a time. The caller owns the clock (a
//! screen's shared clock, later), so pausing is asking for the same time again and seeking is
//! [`Player::seek`]: the thread goes there and the pictures decoded for before are dropped.

use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;

use crate::{Film, FilmError, Picture, Sound};

/// Blocks of sound the thread may hand over ahead of the player (about ten seconds of 20 ms
/// blocks); past it, blocks are dropped until the player takes some.
const SOUND_AHEAD: usize = 512;

/// What a player is doing, for the screen to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlayerState {
    /// A picture for the time asked is being decoded.
    Buffering,
    /// The picture for the time asked is there.
    Playing,
    /// The film has ended before the time asked.
    Ended,
    /// The film cannot be played on, and why.
    Failed(FilmError),
}

/// What the decoding thread sends, tagged with the seek it belongs to.
enum Message {
    Picture(u64, Picture),
    Sound(u64, Sound),
    Ended(u64),
    Failed(u64, FilmError),
}

/// A film being played.
#[derive(Debug)]
pub struct Player {
    seeks: SyncSender<(u64, f64)>,
    messages: Receiver<Message>,
    /// Sound from the thread, apart from the pictures.
    sound_in: Receiver<Message>,
    /// Which seek the pictures wanted belong to.
    generation: u64,
    shown: Option<Picture>,
    next: Option<Picture>,
    /// Sound received and not yet taken, oldest first.
    sounds: std::collections::VecDeque<Sound>,
    /// How the film ended, once the thread said so (for this seek).
    finished: Option<PlayerState>,
    state: PlayerState,
    /// The decoding thread; it ends when the player is dropped (both channels close).
    _thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Message::Picture(generation, picture) => write!(f, "Picture({generation}, {} s)", picture.time),
            Message::Sound(generation, sound) => write!(f, "Sound({generation}, {} s)", sound.time),
            Message::Ended(generation) => write!(f, "Ended({generation})"),
            Message::Failed(generation, error) => write!(f, "Failed({generation}, {error})"),
        }
    }
}

impl Player {
    /// Plays `film` from its start, decoding ahead on a thread of its own.
    pub fn new(film: Film) -> Self {
        let ahead = film.limits().max_buffered.max(1);
        let (pictures, messages) = sync_channel(ahead);
        let (sound_out, sound_in) = sync_channel(SOUND_AHEAD);
        let (seeks, wanted) = sync_channel(4);
        let thread = std::thread::Builder::new()
            .name("film decoder".into())
            .spawn(move || decode(film, &Out { pictures, sound: sound_out }, &wanted))
            .ok();
        let finished = match thread {
            Some(_) => None,
            None => Some(PlayerState::Failed(FilmError::Broken("no thread could be started to decode it".into()))),
        };
        let state = finished.clone().unwrap_or(PlayerState::Buffering);
        let sounds = std::collections::VecDeque::new();
        Self {
            seeks,
            messages,
            sound_in,
            generation: 0,
            shown: None,
            next: None,
            sounds,
            finished,
            state,
            _thread: thread,
        }
    }

    /// The picture to show at `time` seconds from the film's start: the last one due by then.
    /// Never waits; while the decoder is behind, the last picture shown stays (and the state
    /// says buffering).
    pub fn picture_at(&mut self, time: f64) -> Option<&Picture> {
        while let Ok(message) = self.sound_in.try_recv() {
            if let Message::Sound(generation, sound) = message
                && generation == self.generation
            {
                crate::keep_sound(&mut self.sounds, sound);
            }
        }
        loop {
            if self.next.is_none() && self.finished.is_none() {
                match self.messages.try_recv() {
                    Ok(Message::Picture(generation, picture)) if generation == self.generation => {
                        self.next = Some(picture);
                    }
                    Ok(Message::Sound(generation, sound)) if generation == self.generation => {
                        crate::keep_sound(&mut self.sounds, sound);
                        continue;
                    }
                    Ok(Message::Ended(generation)) if generation == self.generation => {
                        self.finished = Some(PlayerState::Ended);
                    }
                    Ok(Message::Failed(generation, error)) if generation == self.generation => {
                        self.finished = Some(PlayerState::Failed(error));
                    }
                    // From before the last seek.
                    Ok(_) => continue,
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Disconnected) => {
                        self.finished = Some(PlayerState::Failed(FilmError::Broken("its decoder stopped".into())));
                    }
                }
            }
            match &self.next {
                Some(next) if next.time <= time => self.shown = self.next.take(),
                _ => break,
            }
        }
        // Playing while the picture after the one shown is already here; otherwise the decoder
        // is behind (buffering), or there is no picture after it (the end, or a failure).
        self.state = match (&self.next, &self.finished) {
            (Some(_), _) => PlayerState::Playing,
            (None, Some(finished)) => finished.clone(),
            (None, None) => PlayerState::Buffering,
        };
        self.shown.as_ref()
    }

    /// Goes to `time` seconds from the start: pictures decoded for before are dropped, and the
    /// picture shown stays until the first one there arrives.
    pub fn seek(&mut self, time: f64) {
        self.generation += 1;
        self.next = None;
        self.sounds.clear();
        self.finished = None;
        self.state = PlayerState::Buffering;
        // The thread may be waiting to hand over a picture: take what it has so that it moves on.
        while self.messages.try_recv().is_ok() {}
        while self.sound_in.try_recv().is_ok() {}
        if self.seeks.try_send((self.generation, time)).is_err() {
            // Seeks asked faster than the thread goes: only the last matters.
            while self.messages.try_recv().is_ok() {}
            let _ = self.seeks.send((self.generation, time));
        }
    }

    /// The oldest block of sound received and not yet taken (it arrives as the pictures are
    /// decoded, ahead of them; a seek drops what was decoded for before).
    pub fn take_sound(&mut self) -> Option<Sound> {
        self.sounds.pop_front()
    }

    /// What the player is doing.
    pub fn state(&self) -> &PlayerState {
        &self.state
    }
}

/// The decoding thread: pictures in order into `pictures` (waiting when it is full), going where
/// `seeks` says, until the player is dropped.
/// Where the decoding thread hands things over: pictures (and the end) in one channel, as few
/// as the limits allow ahead, and sound in another, so that sound decoded ahead never holds
/// pictures back.
struct Out {
    pictures: SyncSender<Message>,
    sound: SyncSender<Message>,
}

fn decode(mut film: Film, out: &Out, seeks: &Receiver<(u64, f64)>) {
    let pictures = &out.pictures;
    let mut generation = 0;
    let mut done = false;
    loop {
        // The latest seek asked, if any; when there is nothing to decode, wait for one.
        let mut wanted = None;
        loop {
            let next = if done { seeks.recv().ok() } else { seeks.try_recv().ok() };
            match next {
                Some(seek) => {
                    wanted = Some(seek);
                    done = false;
                }
                None if done => return,
                None => break,
            }
        }
        if let Some((asked, time)) = wanted {
            generation = asked;
            if let Err(error) = film.seek(time) {
                done = true;
                if pictures.send(Message::Failed(generation, error)).is_err() {
                    return;
                }
                continue;
            }
        }
        let picture = film.next_picture();
        while let Some(sound) = film.take_sound() {
            // Sound is dropped rather than waited on when nobody takes it (the player keeps what
            // it takes; see `keep_sound`).
            if let Err(std::sync::mpsc::TrySendError::Disconnected(_)) =
                out.sound.try_send(Message::Sound(generation, sound))
            {
                return;
            }
        }
        let message = match picture {
            Ok(Some(picture)) => Message::Picture(generation, picture),
            Ok(None) => {
                done = true;
                Message::Ended(generation)
            }
            Err(error) => {
                done = true;
                Message::Failed(generation, error)
            }
        };
        if pictures.send(message).is_err() {
            return;
        }
    }
}
