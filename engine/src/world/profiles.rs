//! People's names as world statements ([`Op::Profile`](super::Op::Profile)): a person signs
//! their name and colour into the world, so that whoever holds the world (their home node,
//! anyone who synced with it) can say who owns a parcel or sells at a stall while they are away.
//! The newest statement per author counts (ties of sequence broken by change id); what it
//! replaces is no longer held, so each author has at most one.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::change::{ChangeId, Rejection};
use crate::identity::PublicKey;

/// The most characters of a name (as presence allows).
pub const MAX_PROFILE_NAME_CHARS: usize = 32;
/// The most bytes of a name: 32 characters of 4 bytes.
const MAX_PROFILE_NAME_BYTES: usize = 4 * MAX_PROFILE_NAME_CHARS;

/// A name as a world statement carries it: 1 to 32 characters, none of them a control
/// character, with no spaces at either end.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProfileName {
    len: u8,
    bytes: [u8; MAX_PROFILE_NAME_BYTES],
}

impl ProfileName {
    /// `text` as a name: trimmed, control characters dropped, cut to 32 characters; `None`
    /// when nothing is left.
    pub fn new(text: &str) -> Option<Self> {
        let clean: String =
            text.chars().filter(|c| !c.is_control()).take(MAX_PROFILE_NAME_CHARS).collect::<String>().trim().to_owned();
        if clean.is_empty() {
            return None;
        }
        let mut bytes = [0u8; MAX_PROFILE_NAME_BYTES];
        bytes[..clean.len()].copy_from_slice(clean.as_bytes());
        Some(Self { len: clean.len() as u8, bytes })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        // Only ever made from a `str` (`new`) or checked UTF-8 (`deserialize`).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Debug for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProfileName({:?})", self.as_str())
    }
}

impl Serialize for ProfileName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.bytes[..usize::from(self.len)])
    }
}

impl<'de> Deserialize<'de> for ProfileName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes: &[u8] = Deserialize::deserialize(deserializer)?;
        let text = std::str::from_utf8(bytes).map_err(|_| serde::de::Error::custom("a name is UTF-8"))?;
        match ProfileName::new(text) {
            // Only a name that is already clean: a signed change reads back as it was signed.
            Some(name) if name.as_str() == text => Ok(name),
            _ => Err(serde::de::Error::custom("not a clean name of 1 to 32 characters")),
        }
    }
}

/// Every person's newest profile statement.
#[derive(Debug, Default)]
pub(crate) struct Profiles {
    current: HashMap<PublicKey, (u64, ChangeId, ProfileName, [u8; 3])>,
}

impl Profiles {
    /// Takes `author`'s profile (change `id`, sequence `seq`); returns the change it replaces.
    pub(crate) fn insert(
        &mut self,
        author: PublicKey,
        seq: u64,
        id: ChangeId,
        name: ProfileName,
        colour: [u8; 3],
    ) -> Result<Option<ChangeId>, Rejection> {
        let previous = self.current.get(&author).map(|(seq, id, _, _)| (*seq, *id));
        if previous.is_some_and(|held| held >= (seq, id)) {
            return Err(Rejection::Superseded);
        }
        self.current.insert(author, (seq, id, name, colour));
        Ok(previous.map(|(_, id)| id))
    }

    /// `person`'s name and colour, as they last said.
    pub(crate) fn of(&self, person: &PublicKey) -> Option<(ProfileName, [u8; 3])> {
        self.current.get(person).map(|(_, _, name, colour)| (*name, *colour))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_clean_and_bounded_and_read_back_only_clean() {
        assert_eq!(ProfileName::new("  Ada\u{7} ").map(|name| name.as_str().to_owned()), Some("Ada".into()));
        assert!(ProfileName::new(" \n ").is_none());
        let long = "ü".repeat(40);
        assert_eq!(ProfileName::new(&long).map(|name| name.as_str().chars().count()), Some(32));
        let name = ProfileName::new("Zoë 🌱").expect("a name");
        let bytes = postcard::to_allocvec(&name).expect("encodes");
        assert_eq!(postcard::from_bytes::<ProfileName>(&bytes).expect("decodes"), name);
        for bad in [&b"\x03Ad\x07"[..], b"\x00", b"\x02\xff\xfe", b"\x04 Ada"] {
            assert!(postcard::from_bytes::<ProfileName>(bad).is_err(), "{bad:?}");
        }
        let too_long = postcard::to_allocvec(&serde_bytes_of(&"a".repeat(33))).expect("encodes");
        assert!(postcard::from_bytes::<ProfileName>(&too_long).is_err());
    }

    fn serde_bytes_of(text: &str) -> Vec<u8> {
        text.as_bytes().to_vec()
    }
}
