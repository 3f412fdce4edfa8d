//! The avatar we wear: put on from a file (checked against the avatar budget, stored as a
//! bundle like a placed model, and kept across restarts in `avatar.bin`), and said to the
//! region beside the pose (`RegionMessage::Look`) when it changes, to newcomers and every
//! [`LOOK_KEEPALIVE`]. Others' avatars are fetched like placed models ([`super::world::Wanted`]).

use std::path::PathBuf;
use std::time::Instant;

use sanctuary_engine::ModelSummary;
use sanctuary_engine::avatar::AvatarRef;
use tokio::sync::mpsc;

use super::actor::{Internal, Node};
use super::{Event, LOOK_KEEPALIVE, TIPS_KEEPALIVE, about_keepalive};
use crate::store::{self, Paths};
use crate::wire::RegionMessage;

/// The avatar kept from last time, if any. A damaged file is said and set aside, and the person
/// starts in a plain body (nothing else depends on it).
pub(super) async fn load_avatar(paths: &Paths, events: &mpsc::Sender<Event>) -> Option<AvatarRef> {
    match store::read_whole::<Option<AvatarRef>>(&paths.avatar()) {
        Ok(avatar) => avatar.flatten(),
        Err(error) => {
            let _ = events.send(Event::Notice(format!("the avatar worn last time could not be read: {error}"))).await;
            let _ = std::fs::rename(paths.avatar(), paths.avatar().with_extension("damaged"));
            None
        }
    }
}

impl Node {
    /// Puts on the avatar at `path` (imported and checked off the loop), or takes it off.
    pub(super) async fn wear(&mut self, path: Option<PathBuf>) {
        let Some(path) = path else {
            self.worn_now(None, None, None).await;
            return;
        };
        let (assets, internal) = (self.assets.clone(), self.internal_tx.clone());
        tokio::spawn(async move {
            let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
            let result = match assets.import_avatar(&path).await {
                Ok((avatar, summary)) => Ok((avatar, name, summary)),
                Err(error) => Err(format!("{name}: {error}")),
            };
            let _ = internal.send(Internal::Worn(result)).await;
        });
    }

    /// An avatar was imported (or refused).
    pub(super) async fn worn(&mut self, result: Result<(AvatarRef, String, ModelSummary), String>) {
        match result {
            Ok((avatar, name, summary)) => self.worn_now(Some(avatar), Some(name), Some(summary)).await,
            Err(reason) => self.emit(Event::AvatarRefused(reason)).await,
        }
    }

    async fn worn_now(&mut self, avatar: Option<AvatarRef>, name: Option<String>, summary: Option<ModelSummary>) {
        self.avatar = avatar;
        if let Err(error) = store::write_atomic(&self.paths.avatar(), &avatar) {
            self.emit(Event::Notice(format!("the avatar could not be kept for next time: {error}"))).await;
        }
        self.regions.sent_look = None;
        self.emit(Event::Wearing { avatar, name, summary }).await;
    }

    /// Says what we wear when it changed, when someone new may not know it (`newcomers`), and
    /// every [`LOOK_KEEPALIVE`].
    pub(super) async fn send_look(&mut self, now: Instant, newcomers: bool) {
        if self.regions.current().is_none() {
            return;
        }
        let due = match self.regions.sent_look {
            None => true,
            Some((sent, at)) => {
                let keepalive = LOOK_KEEPALIVE.max(about_keepalive(self.regions.crowd()));
                newcomers || sent != self.avatar || now.duration_since(at) >= keepalive
            }
        };
        if !due {
            return;
        }
        self.say_about_us(&RegionMessage::Look(self.avatar)).await;
        self.regions.sent_look = Some((self.avatar, now));
    }

    /// Takes the offer we are tipped through, if it looks like one, and says it at the next tick.
    pub(super) async fn set_tip_offer(&mut self, offer: Option<String>) {
        if let Some(Err(error)) = offer.as_deref().map(crate::wire::check_tip_offer) {
            return self.emit(Event::Notice(format!("the offer for tips was not taken: {error}"))).await;
        }
        if offer != self.tip_offer {
            self.tip_offer = offer;
            self.regions.sent_tips = None;
        }
    }

    /// Says our tip offer, if we ever had one, when it changed, when someone new may not know it
    /// (`newcomers`), and every [`TIPS_KEEPALIVE`].
    pub(super) async fn send_tips(&mut self, now: Instant, newcomers: bool) {
        if self.regions.current().is_none() {
            return;
        }
        let due = match self.regions.sent_tips {
            // Nobody needs to hear "no tips" from someone who never took any.
            None => self.tip_offer.is_some() || self.regions.sent_tips_ever,
            Some(at) => {
                newcomers || now.duration_since(at) >= TIPS_KEEPALIVE.max(about_keepalive(self.regions.crowd()))
            }
        };
        if !due {
            return;
        }
        self.say_about_us(&RegionMessage::Tips(self.tip_offer.clone())).await;
        self.regions.sent_tips = Some(now);
        self.regions.sent_tips_ever = true;
    }
}
