//! `KHR_texture_basisu` undone at import: each KTX2 image (Basis Universal ETC1S or UASTC, as
//! glTF Transform, toktx and basisu write them) is transcoded to plain RGBA by the pure-Rust
//! `basisu` transcoder and stored as a PNG, which every peer's loader reads whatever its GPU
//! compresses. The KTX2 header is read and checked here first (size within the texture limit,
//! one 2D image), so the transcoder only ever sees a texture small enough to decode.

use basisu::{DecodeFlags, TargetFormat, Transcoder};

/// The extension this module undoes.
pub(super) const BASISU: &str = "KHR_texture_basisu";

/// The most RGBA bytes the KTX2 images of one model may decode to together (the avatar budget's
/// texture memory).
pub(super) const MAX_TRANSCODED_BYTES: u64 = 256 << 20;

/// The twelve bytes every KTX2 file starts with.
const KTX2_IDENTIFIER: [u8; 12] = [0xAB, b'K', b'T', b'X', b' ', b'2', b'0', 0xBB, 0x0D, 0x0A, 0x1A, 0x0A];

/// Whether `bytes` is a KTX2 file.
pub(super) fn is_ktx2(bytes: &[u8]) -> bool {
    bytes.starts_with(&KTX2_IDENTIFIER)
}

/// What the KTX2 header says of the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Header {
    pub(super) width: u32,
    pub(super) height: u32,
    depth: u32,
    layers: u32,
    faces: u32,
}

/// The header of a KTX2 file, if it has a whole one.
pub(super) fn header(bytes: &[u8]) -> Option<Header> {
    if !is_ktx2(bytes) {
        return None;
    }
    let word = |at: usize| bytes.get(at..at + 4).map(|word| u32::from_le_bytes([word[0], word[1], word[2], word[3]]));
    Some(Header { width: word(20)?, height: word(24)?, depth: word(28)?, layers: word(32)?, faces: word(36)? })
}

/// The KTX2 image `bytes` as a PNG of its largest level, transcoded only if its sides are
/// within `max_side`; otherwise why not.
pub(super) fn to_png(bytes: &[u8], max_side: u32) -> Result<Vec<u8>, String> {
    let header = header(bytes).ok_or("is not a whole KTX2 file")?;
    if header.width == 0 || header.height == 0 {
        return Err("is a KTX2 image with no pixels".into());
    }
    if header.width > max_side || header.height > max_side {
        return Err(format!(
            "is {}x{} pixels, over the limit of {max_side} on a side; shrink it",
            header.width, header.height
        ));
    }
    if header.depth > 1 || header.layers > 1 || header.faces != 1 {
        return Err("is a 3D, array or cube KTX2 texture; a glTF texture is one 2D image".into());
    }
    let rgba = transcode(bytes)?;
    let (width, height) = (header.width, header.height);
    let expected = u64::from(width) * u64::from(height) * 4;
    if rgba.len() as u64 != expected {
        return Err(format!("transcodes to {} bytes, not the {expected} of {width}x{height} RGBA", rgba.len()));
    }
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|error| format!("cannot be written as PNG: {error}"))?;
    writer.write_image_data(&rgba).map_err(|error| format!("cannot be written as PNG: {error}"))?;
    writer.finish().map_err(|error| format!("cannot be written as PNG: {error}"))?;
    Ok(png)
}

/// Level 0 as RGBA, eight bits a channel. The transcoder is young; should it panic on a file
/// nobody foresaw, the import is refused rather than the program ended.
fn transcode(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let attempt = std::panic::catch_unwind(|| {
        let texture =
            Transcoder::new(bytes).map_err(|error| format!("is not a Basis Universal KTX2 image ({error:?})"))?;
        if texture.is_video() {
            return Err("is a KTX2 video, not an image".into());
        }
        texture
            .transcode(0, TargetFormat::Rgba32, DecodeFlags::NONE)
            .map_err(|error| format!("cannot be transcoded from Basis Universal ({error:?})"))
    });
    attempt.unwrap_or_else(|_| Err("made the Basis Universal transcoder fail".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A KTX2 header of `width` by `height` with `faces` faces, and nothing after it.
    fn header_only(width: u32, height: u32, faces: u32) -> Vec<u8> {
        let mut bytes = KTX2_IDENTIFIER.to_vec();
        for word in [0, 1, width, height, 0, 0, faces, 1, 1] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn a_header_is_read_and_bad_ones_are_refused_before_transcoding() {
        let bytes = header_only(64, 32, 1);
        assert!(is_ktx2(&bytes));
        let read = header(&bytes).expect("a whole header");
        assert_eq!((read.width, read.height), (64, 32));
        assert!(header(&bytes[..22]).is_none(), "cut short");
        assert!(!is_ktx2(b"\x89PNG\r\n\x1a\n"));

        let refused = |bytes: &[u8], expected: &str| {
            let error = to_png(bytes, 4096).expect_err("refused");
            assert!(error.contains(expected), "{error}");
        };
        refused(&header_only(8192, 8, 1), "over the limit");
        refused(&header_only(u32::MAX, u32::MAX, 1), "over the limit");
        refused(&header_only(0, 8, 1), "no pixels");
        refused(&header_only(8, 8, 6), "cube");
        refused(&header_only(8, 8, 1), "Basis Universal");
        refused(&bytes[..30], "whole");
    }

    #[test]
    fn ktx2_images_that_decode_to_more_than_the_texture_budget_are_refused_before_decoding() {
        // One 16384² image: 1 GiB of RGBA, within a side limit raised for the test, over the
        // budget of every model's KTX2 textures together.
        let mut bin = header_only(16384, 16384, 1);
        bin.resize(bin.len().next_multiple_of(4), 0);
        let json = format!(
            r#"{{"asset":{{"version":"2.0"}},"extensionsUsed":["KHR_texture_basisu"],
            "buffers":[{{"byteLength":{}}}],"bufferViews":[{{"buffer":0,"byteLength":{}}}],
            "images":[{{"bufferView":0,"mimeType":"image/ktx2"}}],
            "textures":[{{"extensions":{{"KHR_texture_basisu":{{"source":0}}}}}}]}}"#,
            bin.len(),
            bin.len()
        );
        let main = super::super::plain::glb(json.as_bytes(), &bin);
        let limits = super::super::ModelLimits { max_texture_side: 16384, ..Default::default() };
        let error = super::super::plain_model(&main, &|_| None, &limits).expect_err("refused");
        assert!(error.to_string().contains("MiB once decoded"), "{error}");
    }

    proptest::proptest! {
        /// Whatever follows a header within the limits, the transcoder refuses or reads it; the
        /// import never ends in a panic.
        #[test]
        fn any_bytes_after_a_header_are_refused_or_read(rest in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let mut bytes = header_only(16, 16, 1);
            bytes.extend_from_slice(&rest);
            if let Ok(png) = to_png(&bytes, 4096) {
                proptest::prop_assert!(png.starts_with(b"\x89PNG"));
            }
        }
    }
}
