//! Images: a PNG's, JPEG's or WebP's size read from its header, without decoding a pixel; and
//! textures whose image is named by `EXT_texture_webp` pointed at it.

use std::rc::Rc;

use gltf::json;

use super::basis::BASISU;
use super::files::{ResourceStore, UriTarget, classify_uri};
use super::geometry::ViewRange;
use super::{ModelError, ModelLimits, read_u16_be, read_u32_be};

/// The extension that names a WebP image for a texture, in place of (or besides) its `source`.
pub(super) const WEBP: &str = "EXT_texture_webp";

/// Points every texture that has no image of its own (or names one that does not exist) at the
/// image its `EXT_texture_webp` or `KHR_texture_basisu` names, for those extensions `allowed`; a
/// texture that has both keeps its own.
pub(super) fn adopt_sources(root: &mut json::Root, allowed: &[&str]) {
    let n_images = root.images.len();
    for extension in [WEBP, BASISU].into_iter().filter(|name| allowed.contains(name)) {
        for texture in &mut root.textures {
            let named = texture
                .extensions
                .as_ref()
                .and_then(|ext| ext.others.get(extension))
                .and_then(|named| named.get("source"));
            let Some(named) = named.and_then(serde_json::Value::as_u64) else { continue };
            if texture.source.value() >= n_images {
                texture.source = json::Index::new(u32::try_from(named).unwrap_or(u32::MAX));
            }
        }
    }
}

/// The PNG file signature.
pub(super) const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// The most segments and fill bytes read while looking for a JPEG's frame header. Real files
/// reach it within a few dozen; the bound keeps many images that alias one huge buffer cheap.
pub(super) const MAX_JPEG_STEPS: u32 = 4096;

/// The size of every image, read from its PNG or JPEG header and checked against the limit.
pub(super) fn check_images(
    root: &json::Root,
    views: &[ViewRange],
    buffers: &[Rc<[u8]>],
    store: &mut ResourceStore<'_>,
    limits: &ModelLimits,
) -> Result<Vec<(u32, u32)>, ModelError> {
    let mut sizes = Vec::with_capacity(root.images.len());
    for (image_index, image) in root.images.iter().enumerate() {
        let bad_image = |what: &str| ModelError::BadImage(format!("image {image_index} {what}"));
        let size = if let Some(view_index) = image.buffer_view {
            if image.mime_type.is_none() {
                return Err(bad_image("is stored in a buffer view but has no mimeType"));
            }
            let view =
                views.get(view_index.value()).ok_or_else(|| bad_image("names a buffer view that does not exist"))?;
            let bytes = buffers
                .get(view.buffer)
                .and_then(|buffer| {
                    let start = usize::try_from(view.start).ok()?;
                    let end = start.checked_add(usize::try_from(view.length).ok()?)?;
                    buffer.get(start..end)
                })
                .ok_or_else(|| bad_image("lies outside its buffer"))?;
            image_size(bytes)
        } else if let Some(uri) = image.uri.as_deref() {
            match classify_uri(uri)? {
                UriTarget::File(name) => image_size(&store.get(&name)?),
                UriTarget::Data(data) => image_size(&data.decode()?),
            }
        } else {
            return Err(bad_image("has neither a uri nor a bufferView"));
        };
        let (width, height) = size.ok_or_else(|| bad_image("is not a PNG, JPEG or WebP with a readable size"))?;
        if width == 0 || height == 0 {
            return Err(bad_image(&format!("declares an empty size of {width}×{height} pixels")));
        }
        if width > limits.max_texture_side || height > limits.max_texture_side {
            return Err(ModelError::TextureTooLarge { width, height, limit: limits.max_texture_side });
        }
        sizes.push((width, height));
    }
    Ok(sizes)
}

/// The width and height a PNG, JPEG or WebP header declares, without decoding any pixel.
pub(super) fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    png_size(bytes).or_else(|| jpeg_size(bytes)).or_else(|| webp_size(bytes))
}

/// Whether `bytes` start as a WebP file does.
pub(super) fn is_webp(bytes: &[u8]) -> bool {
    bytes.get(0..4) == Some(b"RIFF") && bytes.get(8..12) == Some(b"WEBP")
}

/// WebP: a RIFF file whose first chunk is a lossy (`VP8 `), lossless (`VP8L`) or extended
/// (`VP8X`) bitstream, each giving the size its own way.
pub(super) fn webp_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if !is_webp(bytes) {
        return None;
    }
    let le24 = |at: usize| -> Option<u32> {
        let three = bytes.get(at..at + 3)?;
        Some(u32::from(three[0]) | u32::from(three[1]) << 8 | u32::from(three[2]) << 16)
    };
    match bytes.get(12..16)? {
        // Lossy: a 3-byte frame tag, the start code, then 14-bit width and height.
        b"VP8 " => {
            if bytes.get(23..26)? != [0x9D, 0x01, 0x2A] {
                return None;
            }
            let width = u32::from(super::read_u16_le(bytes, 26)? & 0x3FFF);
            let height = u32::from(super::read_u16_le(bytes, 28)? & 0x3FFF);
            Some((width, height))
        }
        // Lossless: the signature byte, then width − 1 and height − 1 in 14 bits each.
        b"VP8L" => {
            if *bytes.get(20)? != 0x2F {
                return None;
            }
            let bits = super::read_u32_le(bytes, 21)?;
            Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        // Extended: flags and reserved bytes, then canvas width − 1 and height − 1 in 24 bits each.
        b"VP8X" => Some((le24(24)? + 1, le24(27)? + 1)),
        _ => None,
    }
}

/// PNG: the signature, then the IHDR chunk (length 13) with width and height as big-endian u32.
pub(super) fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if !bytes.starts_with(&PNG_SIGNATURE) || read_u32_be(bytes, 8)? != 13 || bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    Some((read_u32_be(bytes, 16)?, read_u32_be(bytes, 20)?))
}

/// JPEG: walks the marker segments after SOI to the first start-of-frame (SOF0..SOF15 except DHT,
/// JPG and DAC), whose payload holds precision, then height and width as big-endian u16.
pub(super) fn jpeg_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut at = 2usize;
    let mut steps = 0;
    loop {
        steps += 1;
        if steps > MAX_JPEG_STEPS {
            return None;
        }
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        // A marker may be preceded by any number of 0xFF fill bytes.
        while *bytes.get(at)? == 0xFF {
            at += 1;
            steps += 1;
            if steps > MAX_JPEG_STEPS {
                return None;
            }
        }
        let marker = *bytes.get(at)?;
        at += 1;
        match marker {
            // Markers without a length: TEM and the restart markers.
            0x01 | 0xD0..=0xD7 => continue,
            // A second SOI, the end of the image, or scan data before any frame header.
            0x00 | 0xD8 | 0xD9 | 0xDA => return None,
            _ => {}
        }
        let length = usize::from(read_u16_be(bytes, at)?);
        if length < 2 {
            return None;
        }
        let is_frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_frame {
            let height = read_u16_be(bytes, at + 3)?;
            let width = read_u16_be(bytes, at + 5)?;
            return Some((u32::from(width), u32::from(height)));
        }
        at = at.checked_add(length)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_and_jpeg_headers_give_sizes() {
        let mut png = PNG_SIGNATURE.to_vec();
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(b"IHDR");
        png.extend_from_slice(&640u32.to_be_bytes());
        png.extend_from_slice(&480u32.to_be_bytes());
        assert_eq!(image_size(&png), Some((640, 480)));
        assert_eq!(image_size(&png[..20]), None);

        // SOI, an APP0 segment of 4 bytes, fill bytes, then SOF2 with height 300 and width 200.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xAA, 0xBB, 0xFF, 0xFF, 0xC2, 0x00, 0x0B, 0x08, 0x01, 0x2C, 0x00, 0xC8,
        ];
        assert_eq!(image_size(&jpeg), Some((200, 300)));
        // A DHT segment (0xC4) is not a frame header.
        let huffman_only = [0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x07, 0x08, 0x01, 0x2C, 0x00, 0xC8, 0xFF, 0xD9];
        assert_eq!(image_size(&huffman_only), None);
        assert_eq!(image_size(b"GIF89a...."), None);
        // Thousands of empty segments before the frame header are given up on, not walked.
        let mut padded = vec![0xFF, 0xD8];
        for _ in 0..5000 {
            padded.extend_from_slice(&[0xFF, 0xE1, 0x00, 0x02]);
        }
        padded.extend_from_slice(&jpeg[8..]);
        assert_eq!(image_size(&padded), None);
        assert_eq!(image_size(&padded[..2 + 4 * 100]), None);
        let mut few = jpeg[..2].to_vec();
        few.extend_from_slice(&padded[2..2 + 4 * 100]);
        few.extend_from_slice(&jpeg[8..]);
        assert_eq!(image_size(&few), Some((200, 300)));
    }

    #[test]
    fn webp_headers_give_sizes() {
        let riff = |chunk: &[u8; 4], data: &[u8]| {
            let mut file = b"RIFF\0\0\0\0WEBP".to_vec();
            file.extend_from_slice(chunk);
            file.extend_from_slice(&(data.len() as u32).to_le_bytes());
            file.extend_from_slice(data);
            file
        };
        // Lossy 640×480: frame tag, start code, sizes (the top two bits are the scale).
        let lossy = riff(b"VP8 ", &[0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x42, 0xE0, 0x01]);
        assert_eq!(image_size(&lossy), Some((640, 480)));
        // Lossless 300×200: width − 1 = 299 and height − 1 = 199 packed in 14 bits each.
        let bits: u32 = 299 | (199 << 14);
        let mut data = vec![0x2F];
        data.extend_from_slice(&bits.to_le_bytes());
        assert_eq!(image_size(&riff(b"VP8L", &data)), Some((300, 200)));
        // Extended 4096×2048.
        let mut extended = vec![0x10, 0, 0, 0];
        extended.extend_from_slice(&4095u32.to_le_bytes()[..3]);
        extended.extend_from_slice(&2047u32.to_le_bytes()[..3]);
        assert_eq!(image_size(&riff(b"VP8X", &extended)), Some((4096, 2048)));
        // A bad start code, a bad signature, a cut header, another RIFF file: no size.
        assert_eq!(image_size(&riff(b"VP8 ", &[0x10, 0x02, 0x00, 0x9D, 0x01, 0x2B, 0x80, 0x02, 0xE0, 0x01])), None);
        assert_eq!(image_size(&riff(b"VP8L", &[0x2E, 1, 2, 3, 4])), None);
        assert_eq!(image_size(&lossy[..27]), None);
        assert_eq!(image_size(b"RIFF\0\0\0\0WAVEfmt "), None);
    }
}
