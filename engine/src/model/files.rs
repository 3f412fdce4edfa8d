//! The files a model names: URIs checked safe, embedded `data:` URIs decoded, and every buffer
//! fetched once and counted against the byte budget.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use gltf::json;

use super::{ModelError, ModelLimits, shortened};

/// The media types glTF allows for a buffer's `data:` URI.
pub(super) const BUFFER_MEDIA_TYPES: [&str; 2] = ["application/octet-stream", "application/gltf-buffer"];

/// The longest relative file name accepted, in bytes.
pub(super) const MAX_FILE_NAME_BYTES: usize = 1024;

/// Where a buffer's or image's URI points.
pub(super) enum UriTarget {
    /// A relative file, percent-decoded.
    File(String),
    /// Bytes embedded in the URI.
    Data(DataUri),
}

/// An embedded `data:` URI, percent-decoded.
pub(super) struct DataUri {
    pub(super) media_type: String,
    pub(super) is_base64: bool,
    pub(super) payload: String,
}

/// Fetches each named file once and keeps the byte total within budget.
pub(super) struct ResourceStore<'a> {
    pub(super) fetch: &'a dyn Fn(&str) -> Option<Vec<u8>>,
    pub(super) loaded: HashMap<String, Rc<[u8]>>,
    pub(super) total_bytes: u64,
    pub(super) limits: &'a ModelLimits,
}

impl<'a> ResourceStore<'a> {
    /// The bytes of `name`, fetched on first use and added to the byte total.
    pub(super) fn get(&mut self, name: &str) -> Result<Rc<[u8]>, ModelError> {
        if let Some(bytes) = self.loaded.get(name) {
            return Ok(Rc::clone(bytes));
        }
        let bytes = (self.fetch)(name).ok_or_else(|| ModelError::MissingFile(name.to_owned()))?;
        self.total_bytes = self.total_bytes.saturating_add(bytes.len() as u64);
        if self.total_bytes > self.limits.max_bytes {
            return Err(ModelError::TooLarge { bytes: self.total_bytes, limit: self.limits.max_bytes });
        }
        let bytes: Rc<[u8]> = Rc::from(bytes);
        self.loaded.insert(name.to_owned(), Rc::clone(&bytes));
        Ok(bytes)
    }
}

impl DataUri {
    /// The embedded bytes. Their size is bounded by the URI's length, which is inside `main`.
    pub(super) fn decode(&self) -> Result<Vec<u8>, ModelError> {
        if self.is_base64 {
            decode_base64(&self.payload)
                .ok_or_else(|| ModelError::BadDataUri("the base64 payload has invalid characters or length".into()))
        } else {
            Ok(self.payload.as_bytes().to_vec())
        }
    }
}

/// The distinct files the buffers and images name, in order.
pub(super) fn external_files(root: &json::Root) -> Result<Vec<String>, ModelError> {
    let uris = root.buffers.iter().filter_map(|buffer| buffer.uri.as_deref());
    let uris = uris.chain(root.images.iter().filter_map(|image| image.uri.as_deref()));
    let mut seen = HashSet::new();
    let mut files = Vec::new();
    for uri in uris {
        if let UriTarget::File(name) = classify_uri(uri)?
            && seen.insert(name.clone())
        {
            files.push(name);
        }
    }
    Ok(files)
}

/// Percent-decodes `uri` (as Bevy does, the whole URI) and tells a `data:` URI from a safe file.
pub(super) fn classify_uri(uri: &str) -> Result<UriTarget, ModelError> {
    let unsafe_uri = || ModelError::UnsafeUri(shortened(uri));
    let decoded = percent_decode(uri).ok_or_else(unsafe_uri)?;
    if let Some(rest) = decoded.strip_prefix("data:") {
        let (media_type, payload) =
            rest.split_once(',').ok_or_else(|| ModelError::BadDataUri("the URI has no ',' before its data".into()))?;
        let (media_type, is_base64) = match media_type.strip_suffix(";base64") {
            Some(media_type) => (media_type, true),
            None => (media_type, false),
        };
        return Ok(UriTarget::Data(DataUri {
            media_type: media_type.to_owned(),
            is_base64,
            payload: payload.to_owned(),
        }));
    }
    if !is_safe_relative_path(&decoded) {
        return Err(unsafe_uri());
    }
    Ok(UriTarget::File(decoded))
}

/// Decodes `%XX` escapes; `None` for a malformed escape or a result that is not UTF-8.
pub(super) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        if byte == b'%' {
            let high = hex_value(*bytes.get(at + 1)?)?;
            let low = hex_value(*bytes.get(at + 2)?)?;
            decoded.push(high << 4 | low);
            at += 3;
        } else {
            decoded.push(byte);
            at += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

pub(super) fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Whether `path` is made only of normal relative parts, so it cannot leave the model's folder,
/// name another scheme or drive, or carry a Bevy asset label (`#`).
pub(super) fn is_safe_relative_path(path: &str) -> bool {
    if path.is_empty() || path.len() > MAX_FILE_NAME_BYTES {
        return false;
    }
    if path.chars().any(|c| c.is_control() || matches!(c, '\\' | ':' | '#' | '?')) {
        return false;
    }
    path.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
}

/// Decodes standard base64 (padding optional); `None` on any other character or a bad length.
pub(super) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let digits = text.trim_end_matches('=');
    if text.len() - digits.len() > 2 || digits.len() % 4 == 1 {
        return None;
    }
    let mut decoded = Vec::with_capacity(digits.len() / 4 * 3 + 2);
    let mut accumulator: u32 = 0;
    let mut bits = 0;
    for digit in digits.bytes() {
        let value = match digit {
            b'A'..=b'Z' => digit - b'A',
            b'a'..=b'z' => digit - b'a' + 26,
            b'0'..=b'9' => digit - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        accumulator = (accumulator << 6 | u32::from(value)) & 0xFF_FFFF;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            decoded.push((accumulator >> bits & 0xFF) as u8);
        }
    }
    Some(decoded)
}

/// The real bytes of every buffer, each at least as long as it declares.
pub(super) fn load_buffers(
    root: &json::Root,
    blob: Option<Vec<u8>>,
    store: &mut ResourceStore<'_>,
) -> Result<Vec<Rc<[u8]>>, ModelError> {
    load_buffers_except(root, blob, store, &HashSet::new())
}

/// As [`load_buffers`], but the buffers in `empty` are not read and have no bytes (a meshopt
/// fallback buffer declares a length but has no data anywhere).
pub(super) fn load_buffers_except(
    root: &json::Root,
    blob: Option<Vec<u8>>,
    store: &mut ResourceStore<'_>,
    empty: &HashSet<usize>,
) -> Result<Vec<Rc<[u8]>>, ModelError> {
    let blob: Option<Rc<[u8]>> = blob.map(Rc::from);
    let mut buffers = Vec::with_capacity(root.buffers.len());
    for (buffer_index, buffer) in root.buffers.iter().enumerate() {
        if empty.contains(&buffer_index) {
            buffers.push(Rc::from(Vec::new()));
            continue;
        }
        let bytes = match buffer.uri.as_deref() {
            None => blob.clone().ok_or(ModelError::MissingBinChunk { buffer: buffer_index })?,
            Some(uri) => match classify_uri(uri)? {
                UriTarget::File(name) => store.get(&name)?,
                UriTarget::Data(data) => {
                    if !BUFFER_MEDIA_TYPES.contains(&data.media_type.as_str()) {
                        return Err(ModelError::BadDataUri(format!(
                            "buffer {buffer_index} has media type {:?}; a buffer must be one of {BUFFER_MEDIA_TYPES:?}",
                            shortened(&data.media_type)
                        )));
                    }
                    Rc::from(data.decode()?)
                }
            },
        };
        let declared = buffer.byte_length.0;
        let actual = bytes.len() as u64;
        if actual < declared {
            return Err(ModelError::BufferTooShort { buffer: buffer_index, declared, actual });
        }
        buffers.push(bytes);
    }
    Ok(buffers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_rejects_bad_escapes_and_invalid_utf8() {
        assert_eq!(percent_decode("my%20tex.png").as_deref(), Some("my tex.png"));
        assert_eq!(percent_decode("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(percent_decode("%FF.png"), None);
        assert_eq!(percent_decode("50%"), None);
        assert_eq!(percent_decode("%G0"), None);
    }

    #[test]
    fn only_plain_relative_paths_are_safe() {
        for safe in ["model.bin", "textures/tex.png", "a b/c-d_e.png", "..hidden/x"] {
            assert!(is_safe_relative_path(safe), "{safe}");
        }
        for unsafe_path in [
            "",
            "../secret.bin",
            "a/../../b",
            "/etc/passwd",
            "http://x/y.bin",
            "C:/x",
            "a\\b",
            "a//b",
            "./a",
            "a/",
            "t.png#x",
        ] {
            assert!(!is_safe_relative_path(unsafe_path), "{unsafe_path}");
        }
    }

    #[test]
    fn base64_decodes_with_or_without_padding() {
        assert_eq!(decode_base64("AAAA").as_deref(), Some(&[0u8, 0, 0][..]));
        assert_eq!(decode_base64("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode_base64("aGk").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode_base64("aGVsbG8gd29ybGQ=").as_deref(), Some(&b"hello world"[..]));
        assert_eq!(decode_base64("a"), None);
        assert_eq!(decode_base64("a*bc"), None);
        assert_eq!(decode_base64("aG==="), None);
    }
}
