//! One speaker's adaptive jitter buffer: packets in, one decision per 20 ms of playback out.
//!
//! Packets are put back in order by their timestamps. Playback starts a target delay after the
//! first packet of a talk spurt; the target follows the jitter measured over the last second
//! (from [`MIN_TARGET_FRAMES`] to [`MAX_TARGET_FRAMES`] frames: 40 to 100 ms). A frame that is
//! missing while later ones are here is lost: it is recovered from the next packet's FEC copy
//! if that is here, concealed otherwise. With nothing buffered the player waits (concealing),
//! which adds delay when packets come late; when more is buffered than the target calls for
//! (a sender whose clock runs fast, or jitter that calmed down), a frame is dropped now and
//! then. A speaker silent for [`IDLE_AFTER`] is forgotten.
//!
//! Bounds: packets are kept only from the next frame to [`MAX_AHEAD_FRAMES`] ahead (a packet
//! further ahead starts the stream anew); the jitter window is [`JITTER_WINDOW`] packets.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::packet::VoicePacket;
use crate::{FRAME, FRAME_SAMPLES};

/// The least delay the buffer keeps, in frames (40 ms).
pub const MIN_TARGET_FRAMES: u32 = 2;
/// The most delay the buffer keeps for jitter, in frames (100 ms).
pub const MAX_TARGET_FRAMES: u32 = 5;
/// How far ahead of the next frame a packet may be and still be kept (one second).
pub const MAX_AHEAD_FRAMES: i64 = 50;
/// Packets the jitter is measured over (one second of speech).
pub const JITTER_WINDOW: usize = 50;
/// A speaker heard nothing from for this long is forgotten (and their state freed).
pub const IDLE_AFTER: Duration = Duration::from_secs(1);
/// Frames concealed in a row before the player goes quiet instead.
const CONCEAL_FRAMES: u32 = 5;
/// Frames the buffer must be too deep for, in a row, before one is dropped.
const DEEP_FOR: u32 = 10;

/// What to play for the next 20 ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// Nobody is talking: play nothing.
    Silence,
    /// Decode this packet.
    Packet(Vec<u8>),
    /// This frame was lost; the next packet is here: recover it from that packet's FEC copy.
    Recover(Vec<u8>),
    /// This frame is missing: let the decoder conceal it.
    Conceal,
}

/// What the buffer did, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Frames played from their own packet.
    pub played: u64,
    /// Lost frames recovered from the next packet's FEC.
    pub recovered: u64,
    /// Frames concealed: lost, or not here yet.
    pub concealed: u64,
    /// Packets that came after their frame was played.
    pub late: u64,
    /// Frames dropped to shorten the delay.
    pub dropped: u64,
    /// Times the stream started anew (a talk spurt, or a jump in the sender's clock).
    pub restarts: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Idle,
    Buffering { until: Duration },
    Playing { starved: u32 },
}

/// One speaker's buffer. Times are any monotonic clock of the receiver.
#[derive(Debug)]
pub struct JitterBuffer {
    state: State,
    /// The timestamp of frame 0: positions are frames from it.
    anchor: Option<u32>,
    next: i64,
    packets: BTreeMap<i64, Vec<u8>>,
    /// Arrival time minus send time (ms) of recent packets, up to a constant.
    transits: VecDeque<f64>,
    target: u32,
    deep: u32,
    last_arrival: Duration,
    stats: JitterStats,
}

impl Default for JitterBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl JitterBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self {
            state: State::Idle,
            anchor: None,
            next: 0,
            packets: BTreeMap::new(),
            transits: VecDeque::with_capacity(JITTER_WINDOW),
            target: MIN_TARGET_FRAMES,
            deep: 0,
            last_arrival: Duration::ZERO,
            stats: JitterStats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// The delay the buffer aims for now.
    pub fn target_delay(&self) -> Duration {
        FRAME * self.target
    }

    /// Whether nothing is playing or waiting (the speaker may be forgotten).
    pub fn is_idle(&self) -> bool {
        self.state == State::Idle
    }

    /// The frame position of a timestamp: frames after the anchor (signed, so that the
    /// sender's clock may wrap).
    fn position(&mut self, timestamp: u32) -> i64 {
        let anchor = *self.anchor.get_or_insert(timestamp);
        i64::from(timestamp.wrapping_sub(anchor) as i32).div_euclid(FRAME_SAMPLES as i64)
    }

    /// Takes a packet that arrived at `arrival`.
    pub fn push(&mut self, packet: VoicePacket, arrival: Duration) {
        if self.state == State::Idle {
            self.anchor = None;
        }
        let mut position = self.position(packet.timestamp);
        self.last_arrival = self.last_arrival.max(arrival);
        // Far ahead of what plays, or far behind it (the sender's clock jumped, or ran for half
        // a day and wrapped past the anchor): a new stream, counted from this packet.
        let jumped = self.state != State::Idle
            && (position >= self.next.saturating_add(MAX_AHEAD_FRAMES)
                || position < self.next.saturating_sub(MAX_AHEAD_FRAMES));
        if jumped {
            self.anchor = Some(packet.timestamp);
            self.transits.clear();
            position = 0;
        }
        self.measure(position, arrival);
        let starved_long = matches!(self.state, State::Playing { starved } if starved >= self.target);
        let restart = match self.state {
            State::Idle => true,
            _ if jumped => true,
            // The first packet after silence (or a long loss): a new talk spurt.
            State::Playing { .. } if starved_long && self.packets.is_empty() && position > self.next => true,
            _ => false,
        };
        if restart {
            if self.state != State::Idle {
                self.stats.restarts += 1;
            }
            self.packets.clear();
            self.next = position;
            self.deep = 0;
            self.state = State::Buffering { until: arrival + self.target_delay() };
        } else if position < self.next {
            self.stats.late += 1;
            return;
        }
        self.packets.entry(position).or_insert(packet.payload);
    }

    /// Measures the jitter: how much later than the earliest recent packet (relative to its
    /// send time) packets arrive, at the 95th percentile, sets the target from it.
    fn measure(&mut self, position: i64, arrival: Duration) {
        let transit = arrival.as_secs_f64() * 1000.0 - position as f64 * FRAME.as_secs_f64() * 1000.0;
        if self.transits.len() >= JITTER_WINDOW {
            self.transits.pop_front();
        }
        self.transits.push_back(transit);
        let mut sorted: Vec<f64> = self.transits.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let (Some(first), Some(p95)) = (sorted.first(), sorted.get(sorted.len() * 95 / 100)) else { return };
        let jitter = (p95 - first).max(0.0);
        let frames = ((jitter + 10.0) / (FRAME.as_secs_f64() * 1000.0)).ceil();
        self.target = (frames as u32).clamp(MIN_TARGET_FRAMES, MAX_TARGET_FRAMES);
    }

    /// What to play for the 20 ms starting at `now`.
    pub fn pop(&mut self, now: Duration) -> Playout {
        if self.state != State::Idle && self.packets.is_empty() && now.saturating_sub(self.last_arrival) > IDLE_AFTER {
            self.state = State::Idle;
            self.transits.clear();
        }
        match self.state {
            State::Idle => return Playout::Silence,
            State::Buffering { until } if now < until => return Playout::Silence,
            State::Buffering { .. } => self.state = State::Playing { starved: 0 },
            State::Playing { .. } => {}
        }
        if let Some(payload) = self.packets.remove(&self.next) {
            self.next += 1;
            self.state = State::Playing { starved: 0 };
            self.stats.played += 1;
            self.keep_shallow();
            return Playout::Packet(payload);
        }
        if self.packets.keys().next().is_some_and(|first| *first > self.next) {
            // Lost: later frames are here.
            self.next += 1;
            self.state = State::Playing { starved: 0 };
            return match self.packets.get(&self.next) {
                Some(following) => {
                    self.stats.recovered += 1;
                    Playout::Recover(following.clone())
                }
                None => {
                    self.stats.concealed += 1;
                    Playout::Conceal
                }
            };
        }
        // Nothing here yet: wait for it, filling in.
        let starved = match self.state {
            State::Playing { starved } => starved.saturating_add(1),
            _ => 1,
        };
        self.state = State::Playing { starved };
        if starved > CONCEAL_FRAMES {
            return Playout::Silence;
        }
        self.stats.concealed += 1;
        Playout::Conceal
    }

    /// Drops a frame when more is buffered than the target for a while.
    fn keep_shallow(&mut self) {
        let Some(newest) = self.packets.keys().next_back() else {
            self.deep = 0;
            return;
        };
        let depth = newest - self.next + 1;
        if depth > i64::from(self.target) + 2 {
            self.deep += 1;
        } else {
            self.deep = 0;
        }
        if self.deep >= DEEP_FOR {
            self.deep = 0;
            self.packets.remove(&self.next);
            self.next += 1;
            self.stats.dropped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(sequence: u32, frame: u32) -> VoicePacket {
        VoicePacket { sequence, timestamp: frame.wrapping_mul(FRAME_SAMPLES as u32), payload: vec![sequence as u8] }
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn reordered_packets_play_in_order_after_the_target_delay() {
        let mut buffer = JitterBuffer::new();
        buffer.push(packet(0, 0), ms(0));
        buffer.push(packet(2, 2), ms(5));
        buffer.push(packet(1, 1), ms(10));
        assert_eq!(buffer.pop(ms(20)), Playout::Silence, "still buffering");
        let played: Vec<Playout> = (0..3).map(|step| buffer.pop(ms(40 + 20 * step))).collect();
        assert_eq!(played, vec![Playout::Packet(vec![0]), Playout::Packet(vec![1]), Playout::Packet(vec![2])]);
    }

    #[test]
    fn a_lost_frame_is_recovered_from_the_next_packet_and_a_late_one_is_dropped() {
        let mut buffer = JitterBuffer::new();
        buffer.push(packet(0, 0), ms(0));
        buffer.push(packet(2, 2), ms(40));
        buffer.push(packet(3, 3), ms(60));
        assert_eq!(buffer.pop(ms(40)), Playout::Packet(vec![0]));
        assert_eq!(buffer.pop(ms(60)), Playout::Recover(vec![2]), "frame 1 from frame 2's FEC");
        assert_eq!(buffer.pop(ms(80)), Playout::Packet(vec![2]));
        buffer.push(packet(1, 1), ms(85));
        assert_eq!(buffer.stats().late, 1);
        assert_eq!(buffer.pop(ms(100)), Playout::Packet(vec![3]));
    }

    #[test]
    fn silence_after_speech_restarts_the_stream_and_a_quiet_speaker_is_forgotten() {
        let mut buffer = JitterBuffer::new();
        for frame in 0..5 {
            buffer.push(packet(frame, frame), ms(u64::from(frame) * 20));
        }
        let mut now = 40;
        for _ in 0..5 {
            assert!(matches!(buffer.pop(ms(now)), Playout::Packet(_)));
            now += 20;
        }
        // DTX: half a second of nothing, then the next talk spurt (sequence 5, frame 30).
        for _ in 0..25 {
            assert!(matches!(buffer.pop(ms(now)), Playout::Conceal | Playout::Silence));
            now += 20;
        }
        buffer.push(packet(5, 30), ms(now));
        assert_eq!(buffer.stats().restarts, 1);
        assert_eq!(buffer.pop(ms(now)), Playout::Silence, "buffering the new spurt");
        assert_eq!(buffer.pop(ms(now + 100)), Playout::Packet(vec![5]), "after at most the longest target");
        assert_eq!(buffer.pop(ms(now + 3_000)), Playout::Silence);
        assert!(buffer.is_idle());
    }

    #[test]
    fn jitter_raises_the_target_within_its_bounds() {
        let mut calm = JitterBuffer::new();
        let mut rough = JitterBuffer::new();
        for frame in 0..100u32 {
            let sent = u64::from(frame) * 20;
            calm.push(packet(frame, frame), ms(sent + 30));
            rough.push(packet(frame, frame), ms(sent + 30 + u64::from(frame * 37 % 60)));
        }
        assert_eq!(calm.target_delay(), FRAME * MIN_TARGET_FRAMES);
        assert!(rough.target_delay() > calm.target_delay());
        assert!(rough.target_delay() <= FRAME * MAX_TARGET_FRAMES);
    }

    #[test]
    fn a_fast_sender_clock_is_followed_by_dropping_frames() {
        let mut buffer = JitterBuffer::new();
        // The sender's 20 ms frames come every 19 ms: the buffer would grow without bound.
        let mut next_pop = 0u64;
        let mut sent = 0u32;
        for tick in 0..20_000u64 {
            if tick % 19 == 0 {
                buffer.push(packet(sent, sent), ms(tick));
                sent += 1;
            }
            if tick == next_pop {
                let _ = buffer.pop(ms(tick));
                next_pop += 20;
            }
        }
        assert!(buffer.stats().dropped > 0);
        assert!(buffer.packets.len() as u32 <= MAX_TARGET_FRAMES + 4, "{} frames buffered", buffer.packets.len());
    }

    #[test]
    fn a_packet_far_ahead_starts_anew_and_wrapping_clocks_are_followed() {
        let mut buffer = JitterBuffer::new();
        let start = u32::MAX - 2 * FRAME_SAMPLES as u32 + 1;
        for index in 0..4u32 {
            let timestamp = start.wrapping_add(index * FRAME_SAMPLES as u32);
            buffer.push(VoicePacket { sequence: index, timestamp, payload: vec![index as u8] }, ms(u64::from(index)));
        }
        let played: Vec<Playout> = (0..4).map(|step| buffer.pop(ms(60 + 20 * step))).collect();
        assert_eq!(played, (0..4).map(|index| Playout::Packet(vec![index])).collect::<Vec<_>>());
        let far = start.wrapping_add(500 * FRAME_SAMPLES as u32);
        buffer.push(VoicePacket { sequence: 9, timestamp: far, payload: vec![9] }, ms(200));
        assert_eq!(buffer.stats().restarts, 1);
        assert!(buffer.packets.len() <= 1);
        // A clock that jumped back (a restarted sender) starts anew too, instead of every
        // packet being refused as late.
        for index in 0..5u32 {
            let back = start.wrapping_sub(9_000 * FRAME_SAMPLES as u32).wrapping_add(index * FRAME_SAMPLES as u32);
            buffer.push(
                VoicePacket { sequence: 20 + index, timestamp: back, payload: vec![20 + index as u8] },
                ms(300 + 20 * u64::from(index)),
            );
        }
        assert_eq!(buffer.stats().restarts, 2);
        assert_eq!(buffer.stats().late, 0);
        assert_eq!(buffer.pop(ms(500)), Playout::Packet(vec![20]));
    }
}
