//! H.264 samples as MP4 and Matroska carry them (length-prefixed NAL units, the parameter sets in
//! the track's `avcC` record) decoded into pictures in display order, each with its timestamp:
//! the samples' timestamps, smallest first (pictures come out in display order, and display
//! order is timestamp order). Every sequence parameter set is read before the decoder sees it, so
//! a film larger than the limits is refused before a picture of it is decoded.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rust_h264::decoder::{Frame, OrderedDecoder};
use rust_h264::nal::{NalUnit, NalUnitType, parse_avcc, parse_avcc_config, parse_sps_info};

use crate::colour::{Planes, yuv_to_rgba};
use crate::{FilmError, Limits};

/// An H.264 track's decoder.
pub(crate) struct H264 {
    decoder: OrderedDecoder<()>,
    length_size: usize,
    limits: Limits,
    /// The timestamps of the samples given and not yet paired with a picture, smallest first.
    times: BinaryHeap<Reverse<i64>>,
}

/// The most sample timestamps kept waiting for their pictures (a damaged film can decode fewer
/// pictures than it has samples).
const MAX_WAITING_TIMES: usize = 256;

impl H264 {
    /// A decoder for the track whose `avcC` record is `config`.
    pub(crate) fn new(config: &[u8], limits: Limits) -> Result<Self, FilmError> {
        let record = parse_avcc_config(config)
            .map_err(|reason| FilmError::Unsupported(format!("its H.264 configuration cannot be read ({reason})")))?;
        let mut this = Self {
            decoder: OrderedDecoder::with_max_depth(limits.max_buffered.max(1)),
            length_size: record.length_size,
            limits,
            times: BinaryHeap::new(),
        };
        for nal in record.sps_nals.iter().chain(&record.pps_nals) {
            this.feed(nal)?;
        }
        Ok(this)
    }

    /// The pictures that one sample (shown at `pts`) completes, in display order.
    pub(crate) fn decode(&mut self, sample: &[u8], pts: i64) -> Result<Vec<(Frame, i64)>, FilmError> {
        let mut done = Vec::new();
        let nals = parse_avcc(sample, self.length_size);
        if nals.iter().any(|nal| matches!(nal.nal_unit_type, NalUnitType::Slice | NalUnitType::SliceIdr)) {
            if self.times.len() >= MAX_WAITING_TIMES {
                self.times.pop();
            }
            self.times.push(Reverse(pts));
        }
        for nal in nals {
            done.extend(self.feed(&nal)?);
        }
        Ok(self.timed(done))
    }

    /// Each picture with the smallest timestamp waiting (or the last one given, past them).
    fn timed(&mut self, frames: Vec<Frame>) -> Vec<(Frame, i64)> {
        let mut last = 0;
        frames
            .into_iter()
            .map(|frame| {
                let pts = self.times.pop().map_or(last, |Reverse(pts)| pts);
                last = pts;
                (frame, pts)
            })
            .collect()
    }

    /// Whether `sample` starts a picture that needs none before it (an IDR picture): where
    /// decoding may begin after a seek.
    pub(crate) fn is_key(&self, sample: &[u8]) -> bool {
        parse_avcc(sample, self.length_size).iter().any(|nal| nal.nal_unit_type == NalUnitType::SliceIdr)
    }

    /// The pictures still held for reordering, at the end of the film.
    pub(crate) fn flush(&mut self) -> Vec<(Frame, i64)> {
        let frames = self.decoder.flush();
        self.timed(frames)
    }

    fn feed(&mut self, nal: &NalUnit<'_>) -> Result<Vec<Frame>, FilmError> {
        if nal.nal_unit_type == NalUnitType::Sps {
            let info = parse_sps_info(nal)
                .map_err(|error| FilmError::Broken(format!("its sequence parameters cannot be read ({error})")))?;
            check_size(info.width, info.height, &self.limits)?;
            if info.chroma_format == 3 {
                return Err(FilmError::Unsupported("its H.264 pictures are 4:4:4, which is not decoded".into()));
            }
        }
        self.decoder.decode_nal(nal).map_err(|error| match error {
            rust_h264::error::DecodeError::Unsupported(what) => {
                FilmError::Unsupported(format!("its H.264 video uses {what}, which is not decoded"))
            }
            other => FilmError::Broken(format!("its H.264 video cannot be decoded ({other})")),
        })
    }
}

/// Refuses pictures of no size or larger than the limits.
pub(crate) fn check_size(width: u32, height: u32, limits: &Limits) -> Result<(), FilmError> {
    if width == 0 || height == 0 {
        return Err(FilmError::Broken(format!("its pictures are {width}x{height} pixels")));
    }
    if width > limits.max_width || height > limits.max_height {
        return Err(FilmError::TooLarge { width, height, max_width: limits.max_width, max_height: limits.max_height });
    }
    Ok(())
}

/// A decoded frame as RGBA, after checking its size against the limits once more.
pub(crate) fn to_rgba(frame: &Frame, limits: &Limits) -> Result<Vec<u8>, FilmError> {
    check_size(frame.width, frame.height, limits)?;
    let planes = Planes {
        y: &frame.y,
        u: &frame.u,
        v: &frame.v,
        width: frame.width,
        height: frame.height,
        chroma_width: frame.chroma_width(),
        chroma_height: frame.chroma_height(),
        bit_depth: frame.bit_depth,
    };
    let mut rgba = vec![0u8; frame.width as usize * frame.height as usize * 4];
    yuv_to_rgba(&planes, &mut rgba);
    Ok(rgba)
}
