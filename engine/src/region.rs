//! Regions: the lobby, the city and rooms of a purpose.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a room is for. Each kind has its own furniture and its own look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RoomKind {
    /// Stalls that sell items for bitcoin.
    Marketplace,
    /// A screen with seats for synchronised playback of shared video.
    Cinema,
    /// A presenter, slides and a tiered audience.
    LectureHall,
    /// A table for a small group.
    Meeting,
    /// An invite-only, end-to-end encrypted room.
    Private,
}

impl RoomKind {
    /// Every room kind, in the order the lobby's portals show them.
    pub const ALL: [RoomKind; 5] =
        [RoomKind::Marketplace, RoomKind::Cinema, RoomKind::LectureHall, RoomKind::Meeting, RoomKind::Private];

    /// The name people read.
    pub fn title(self) -> &'static str {
        match self {
            RoomKind::Marketplace => "Marketplace",
            RoomKind::Cinema => "Cinema",
            RoomKind::LectureHall => "Lecture hall",
            RoomKind::Meeting => "Meeting room",
            RoomKind::Private => "Private room",
        }
    }

    /// The name used on the command line and in file names.
    pub fn slug(self) -> &'static str {
        match self {
            RoomKind::Marketplace => "marketplace",
            RoomKind::Cinema => "cinema",
            RoomKind::LectureHall => "lecture-hall",
            RoomKind::Meeting => "meeting",
            RoomKind::Private => "private",
        }
    }
}

/// A place in the world. Each region has its own layout, its own gossip topic (later) and its
/// own set of people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RegionId {
    /// The atrium where everyone lands.
    Lobby,
    /// The endless grid of parcels and streets.
    City,
    /// A room with a purpose.
    Room(RoomKind),
}

impl RegionId {
    /// Every region reachable from the lobby, the lobby first.
    pub fn all() -> impl Iterator<Item = RegionId> {
        [RegionId::Lobby, RegionId::City].into_iter().chain(RoomKind::ALL.into_iter().map(RegionId::Room))
    }

    /// The name people read.
    pub fn title(self) -> &'static str {
        match self {
            RegionId::Lobby => "Lobby",
            RegionId::City => "City",
            RegionId::Room(kind) => kind.title(),
        }
    }

    /// The name used on the command line and in file names.
    pub fn slug(self) -> &'static str {
        match self {
            RegionId::Lobby => "lobby",
            RegionId::City => "city",
            RegionId::Room(kind) => kind.slug(),
        }
    }
}

impl fmt::Display for RegionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title())
    }
}

/// A region name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown region '{given}'; choose one of: {}", RegionId::all().map(RegionId::slug).collect::<Vec<_>>().join(", "))]
pub struct UnknownRegion {
    /// What was asked for.
    pub given: String,
}

impl FromStr for RegionId {
    type Err = UnknownRegion;

    fn from_str(text: &str) -> Result<Self, UnknownRegion> {
        let wanted = text.trim().to_ascii_lowercase().replace(['_', ' '], "-");
        RegionId::all().find(|region| region.slug() == wanted).ok_or_else(|| UnknownRegion { given: text.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_region_parses_from_its_slug() {
        for region in RegionId::all() {
            assert_eq!(region.slug().parse::<RegionId>(), Ok(region));
        }
        assert_eq!("Lecture Hall".parse::<RegionId>(), Ok(RegionId::Room(RoomKind::LectureHall)));
        assert_eq!(RegionId::all().count(), 7);
    }

    #[test]
    fn unknown_region_lists_the_choices() {
        let error = "moon".parse::<RegionId>().unwrap_err();
        let message = error.to_string();
        assert!(message.contains("moon"));
        assert!(message.contains("lecture-hall"));
    }
}
