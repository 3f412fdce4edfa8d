//! What happened that the person should hear: written by the logic where it happens (a build
//! confirmed, a payment sent), played by the presentation (`crate::sounds`) when there is an
//! output. A portal needs no cue: the sounds follow the region itself.

use bevy::prelude::*;

/// A moment with a sound of its own.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoundCue {
    /// Through a portal into another region.
    Portal,
    /// Something we built was placed and saved.
    Placed,
    /// A payment of ours went out.
    Paid,
}
