//! The voice datagram: one Opus frame with the sequence number and timestamp that let the
//! receiver put frames back in order, tell loss from silence and follow the sender's clock.
//!
//! Layout: version (1 byte, [`VERSION`]), sequence (u32 LE, one more per packet sent), timestamp
//! (u32 LE, the frame's first sample on the sender's 48 kHz clock, wrapping), then the Opus
//! payload (1 to [`MAX_PAYLOAD`] bytes). Who sent it is the connection's: datagrams travel on a
//! direct iroh connection, authenticated and encrypted end to end, so nothing here is signed.

/// The format's version.
pub const VERSION: u8 = 1;
/// Bytes before the payload.
pub const HEADER_BYTES: usize = 9;
/// The largest Opus payload taken: 20 ms of voice at up to 64 kbit/s is 160 bytes; room for FEC.
pub const MAX_PAYLOAD: usize = 400;
/// The largest datagram.
pub const MAX_DATAGRAM: usize = HEADER_BYTES + MAX_PAYLOAD;

/// One frame of voice as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoicePacket {
    /// One more for each packet the sender sent: a gap is loss. (Silence sends nothing and
    /// skips no sequence numbers: the timestamp jumps instead.)
    pub sequence: u32,
    /// The frame's first sample on the sender's clock (48 kHz, wrapping).
    pub timestamp: u32,
    /// The Opus packet.
    pub payload: Vec<u8>,
}

/// Why bytes are not a voice packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Shorter than a header and one byte of payload.
    #[error("a voice packet of {0} bytes is too short")]
    TooShort(usize),
    /// Longer than [`MAX_DATAGRAM`].
    #[error("a voice packet of {0} bytes is too long")]
    TooLong(usize),
    /// A version this build does not know.
    #[error("voice packet version {0} is unknown")]
    Version(u8),
}

impl VoicePacket {
    /// The datagram's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(HEADER_BYTES + self.payload.len());
        bytes.push(VERSION);
        bytes.extend_from_slice(&self.sequence.to_le_bytes());
        bytes.extend_from_slice(&self.timestamp.to_le_bytes());
        bytes.extend_from_slice(&self.payload);
        bytes
    }

    /// Reads a datagram from the network (any bytes: a clear error, never a panic).
    pub fn parse(bytes: &[u8]) -> Result<Self, PacketError> {
        if bytes.len() > MAX_DATAGRAM {
            return Err(PacketError::TooLong(bytes.len()));
        }
        let (Some(&version), Some(sequence), Some(timestamp), Some(payload)) =
            (bytes.first(), bytes.get(1..5), bytes.get(5..9), bytes.get(HEADER_BYTES..))
        else {
            return Err(PacketError::TooShort(bytes.len()));
        };
        if version != VERSION {
            return Err(PacketError::Version(version));
        }
        if payload.is_empty() {
            return Err(PacketError::TooShort(bytes.len()));
        }
        let word = |slice: &[u8]| u32::from_le_bytes([slice[0], slice[1], slice[2], slice[3]]);
        Ok(Self { sequence: word(sequence), timestamp: word(timestamp), payload: payload.to_vec() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packet_survives_the_trip_and_bad_bytes_are_refused() {
        let packet = VoicePacket { sequence: u32::MAX, timestamp: 123_456, payload: vec![1, 2, 3] };
        assert_eq!(VoicePacket::parse(&packet.to_bytes()), Ok(packet.clone()));
        let bytes = packet.to_bytes();
        for cut in 0..=HEADER_BYTES {
            assert!(VoicePacket::parse(&bytes[..cut]).is_err(), "{cut} bytes");
        }
        let mut other = bytes.clone();
        other[0] = 9;
        assert_eq!(VoicePacket::parse(&other), Err(PacketError::Version(9)));
        let huge = VoicePacket { payload: vec![0; MAX_PAYLOAD + 1], ..packet };
        assert_eq!(VoicePacket::parse(&huge.to_bytes()), Err(PacketError::TooLong(MAX_DATAGRAM + 1)));
    }
}
