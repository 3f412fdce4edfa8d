//! Images: a PNG's or JPEG's size read from its header, without decoding a pixel.

use std::rc::Rc;

use gltf::json;

use super::files::{ResourceStore, UriTarget, classify_uri};
use super::geometry::ViewRange;
use super::{ModelError, ModelLimits, read_u16_be, read_u32_be};

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
        let (width, height) = size.ok_or_else(|| bad_image("is neither a PNG nor a JPEG with a readable size"))?;
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

/// The width and height a PNG or JPEG header declares, without decoding any pixel.
pub(super) fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    png_size(bytes).or_else(|| jpeg_size(bytes))
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
}
