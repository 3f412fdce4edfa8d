//! `EXT_meshopt_compression` undone at import: each compressed buffer view is decoded by
//! meshoptimizer's own decoders (the `meshopt` crate) into the plain bytes its accessors read,
//! and the fallback buffers the extension leaves empty are dropped. Every size is checked before
//! anything is allocated, and the decoders read only within the compressed bytes they are given.

use std::collections::HashSet;

use gltf::json;
use gltf::json::validation::USize64;
use serde::Deserialize;

use super::files::{ResourceStore, load_buffers_except};
use super::{ModelError, ModelLimits};

/// The extension this module undoes.
pub(super) const MESHOPT: &str = "EXT_meshopt_compression";

/// What a compressed buffer view says of its data (the extension's object).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Compressed {
    buffer: usize,
    #[serde(default)]
    byte_offset: u64,
    byte_length: u64,
    byte_stride: u64,
    count: u64,
    mode: String,
    #[serde(default)]
    filter: Option<String>,
}

/// A buffer the extension marks as a fallback: it has no bytes of its own.
#[derive(Debug, Deserialize)]
struct Fallback {
    #[serde(default)]
    fallback: bool,
}

/// Whether `root` has anything compressed with meshopt.
pub(super) fn used(root: &json::Root) -> bool {
    root.extensions_used.iter().any(|name| name == MESHOPT)
        || root
            .buffer_views
            .iter()
            .any(|view| view.extensions.as_ref().is_some_and(|ext| ext.others.contains_key(MESHOPT)))
}

/// Decodes every compressed view of `root` into one new buffer, returned as the bytes of a GLB's
/// BIN chunk: the original buffers (but the fallbacks) first, each where its plain views expect
/// it, then the decoded views. `root` then has one buffer and no trace of the extension.
pub(super) fn unpack(
    root: &mut json::Root,
    blob: Option<Vec<u8>>,
    store: &mut ResourceStore<'_>,
    limits: &ModelLimits,
) -> Result<Vec<u8>, ModelError> {
    let fallbacks: HashSet<usize> = root
        .buffers
        .iter()
        .enumerate()
        .filter(|(_, buffer)| {
            let marked = buffer.extensions.as_ref().and_then(|ext| ext.others.get(MESHOPT));
            marked.is_some_and(|value| Fallback::deserialize(value).is_ok_and(|marked| marked.fallback))
        })
        .map(|(index, _)| index)
        .collect();
    let buffers = load_buffers_except(root, blob, store, &fallbacks)?;
    let mut bin = super::plain::Bin::new(limits.max_bytes);
    let mut bases = Vec::with_capacity(buffers.len());
    for (index, buffer) in buffers.iter().enumerate() {
        bases.push(if fallbacks.contains(&index) { 0 } else { bin.append(buffer)? });
    }
    for (index, view) in root.buffer_views.iter_mut().enumerate() {
        let bad = |reason: String| ModelError::BadBufferView { view: index, reason };
        let compressed = view.extensions.as_mut().and_then(|ext| ext.others.remove(MESHOPT));
        let Some(compressed) = compressed else {
            if fallbacks.contains(&view.buffer.value()) {
                return Err(bad("it reads a meshopt fallback buffer, which has no bytes".into()));
            }
            let base = bases.get(view.buffer.value()).copied().unwrap_or(0);
            view.byte_offset = Some(USize64(view.byte_offset.map_or(0, |offset| offset.0).saturating_add(base)));
            view.buffer = json::Index::new(0);
            continue;
        };
        let compressed = Compressed::deserialize(&compressed)
            .map_err(|error| bad(format!("its {MESHOPT} object cannot be read: {error}")))?;
        let source = buffers
            .get(compressed.buffer)
            .filter(|_| !fallbacks.contains(&compressed.buffer))
            .ok_or_else(|| bad(format!("its compressed data is in buffer {}, which has none", compressed.buffer)))?;
        let start = usize::try_from(compressed.byte_offset).unwrap_or(usize::MAX);
        let end = start.saturating_add(usize::try_from(compressed.byte_length).unwrap_or(usize::MAX));
        let bytes = source.get(start..end).ok_or_else(|| {
            bad(format!("its compressed data ({start}..{end}) runs past its buffer ({} bytes)", source.len()))
        })?;
        let plain = decode(&compressed, bytes, limits.max_bytes).map_err(bad)?;
        let offset = bin.append(&plain)?;
        view.buffer = json::Index::new(0);
        view.byte_offset = Some(USize64(offset));
        view.byte_length = USize64(plain.len() as u64);
    }
    root.extensions_used.retain(|name| name != MESHOPT);
    root.extensions_required.retain(|name| name != MESHOPT);
    let bytes = bin.into_bytes();
    super::plain::set_one_buffer(root, bytes.len());
    Ok(bytes)
}

/// How a view was compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Attributes,
    Triangles,
    Indices,
}

/// What was done to attribute values before compression, undone after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    None,
    Octahedral,
    Quaternion,
    Exponential,
}

/// The plain bytes of one compressed view, at most `max_bytes`.
fn decode(compressed: &Compressed, bytes: &[u8], max_bytes: u64) -> Result<Vec<u8>, String> {
    let mode = match compressed.mode.as_str() {
        "ATTRIBUTES" => Mode::Attributes,
        "TRIANGLES" => Mode::Triangles,
        "INDICES" => Mode::Indices,
        other => return Err(format!("its meshopt mode {other:?} is not ATTRIBUTES, TRIANGLES or INDICES")),
    };
    let filter = match compressed.filter.as_deref().unwrap_or("NONE") {
        "NONE" => Filter::None,
        "OCTAHEDRAL" => Filter::Octahedral,
        "QUATERNION" => Filter::Quaternion,
        "EXPONENTIAL" => Filter::Exponential,
        other => return Err(format!("its meshopt filter {other:?} is not one the extension defines")),
    };
    let stride = compressed.byte_stride;
    let count = compressed.count;
    let stride_fits = match (mode, filter) {
        (Mode::Attributes, Filter::None | Filter::Exponential) => {
            stride.is_multiple_of(4) && (4..=256).contains(&stride)
        }
        (Mode::Attributes, Filter::Octahedral) => stride == 4 || stride == 8,
        (Mode::Attributes, Filter::Quaternion) => stride == 8,
        (Mode::Triangles | Mode::Indices, Filter::None) => stride == 2 || stride == 4,
        (Mode::Triangles | Mode::Indices, _) => return Err("a meshopt filter is only for attributes".into()),
    };
    if !stride_fits {
        return Err(format!("a meshopt stride of {stride} bytes does not fit its mode and filter"));
    }
    if mode == Mode::Triangles && !count.is_multiple_of(3) {
        return Err(format!("{count} indices are not whole triangles"));
    }
    let size = count.checked_mul(stride).filter(|size| *size <= max_bytes).ok_or_else(|| {
        format!("{count} elements of {stride} bytes decode to more than the limit of {max_bytes} bytes")
    })?;
    let (count, stride, size) = (to_usize(count)?, to_usize(stride)?, to_usize(size)?);
    // Words, so that the filters (which read 16- and 32-bit values in place) are aligned.
    let mut words = vec![0u32; size.div_ceil(4)];
    let decoded = match mode {
        Mode::Attributes => ffi::vertex_buffer(&mut words, count, stride, bytes),
        Mode::Triangles => ffi::index_buffer(&mut words, count, stride, bytes),
        Mode::Indices => ffi::index_sequence(&mut words, count, stride, bytes),
    };
    if !decoded {
        return Err(format!("its meshopt data ({} bytes) does not decode to {count} elements", bytes.len()));
    }
    match filter {
        Filter::None => {}
        Filter::Octahedral => ffi::filter_oct(&mut words, count, stride),
        Filter::Quaternion => ffi::filter_quat(&mut words, count, stride),
        Filter::Exponential => ffi::filter_exp(&mut words, count, stride),
    }
    let mut plain: Vec<u8> = words.iter().flat_map(|word| word.to_ne_bytes()).collect();
    plain.truncate(size);
    Ok(plain)
}

fn to_usize(value: u64) -> Result<usize, String> {
    usize::try_from(value).map_err(|_| format!("{value} does not fit this machine's memory"))
}

/// The calls into meshoptimizer. Each takes a destination of exactly `count * stride` bytes or
/// more (checked here, so the C code cannot write past it) and reads only the `source` slice.
#[allow(unsafe_code)]
mod ffi {
    use meshopt::ffi as c;

    fn fits(words: &[u32], count: usize, stride: usize) -> bool {
        count.checked_mul(stride).is_some_and(|size| size <= words.len() * 4)
    }

    /// The shape of meshoptimizer's three decoders: destination, count, element size, source.
    type Decoder = unsafe extern "C" fn(*mut std::os::raw::c_void, usize, usize, *const u8, usize) -> i32;

    /// Runs `decoder` into `words`: whether it decoded.
    fn decode_with(decoder: Decoder, words: &mut [u32], count: usize, stride: usize, source: &[u8]) -> bool {
        if !fits(words, count, stride) {
            return false;
        }
        // SAFETY: the destination holds at least count * stride bytes (checked above), which is
        // all the decoder writes; it reads at most `source.len()` bytes from `source`. The
        // callers pass strides the decoders accept (indices 2 or 4, attributes a multiple of 4).
        let result = unsafe { decoder(words.as_mut_ptr().cast(), count, stride, source.as_ptr(), source.len()) };
        result == 0
    }

    /// `ATTRIBUTES`: whether it decoded.
    pub(super) fn vertex_buffer(words: &mut [u32], count: usize, stride: usize, source: &[u8]) -> bool {
        decode_with(c::meshopt_decodeVertexBuffer, words, count, stride, source)
    }

    /// `TRIANGLES`: whether it decoded.
    pub(super) fn index_buffer(words: &mut [u32], count: usize, stride: usize, source: &[u8]) -> bool {
        decode_with(c::meshopt_decodeIndexBuffer, words, count, stride, source)
    }

    /// `INDICES`: whether it decoded.
    pub(super) fn index_sequence(words: &mut [u32], count: usize, stride: usize, source: &[u8]) -> bool {
        decode_with(c::meshopt_decodeIndexSequence, words, count, stride, source)
    }

    /// Octahedral normals and tangents (stride 4 or 8), in place.
    pub(super) fn filter_oct(words: &mut [u32], count: usize, stride: usize) {
        if fits(words, count, stride) && (stride == 4 || stride == 8) {
            // SAFETY: the filter touches count * stride bytes, all within `words`, which is
            // aligned for the 16-bit values it reads and writes.
            unsafe { c::meshopt_decodeFilterOct(words.as_mut_ptr().cast(), count, stride) }
        }
    }

    /// Quaternions (stride 8), in place.
    pub(super) fn filter_quat(words: &mut [u32], count: usize, stride: usize) {
        if fits(words, count, stride) && stride == 8 {
            // SAFETY: as for `filter_oct`.
            unsafe { c::meshopt_decodeFilterQuat(words.as_mut_ptr().cast(), count, stride) }
        }
    }

    /// Exponent and mantissa floats (stride a multiple of 4), in place.
    pub(super) fn filter_exp(words: &mut [u32], count: usize, stride: usize) {
        if fits(words, count, stride) && stride.is_multiple_of(4) {
            // SAFETY: as for `filter_oct`; the values are 32-bit and `words` is aligned for them.
            unsafe { c::meshopt_decodeFilterExp(words.as_mut_ptr().cast(), count, stride) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compressed(mode: &str, filter: Option<&str>, stride: u64, count: u64, length: u64) -> Compressed {
        Compressed {
            buffer: 0,
            byte_offset: 0,
            byte_length: length,
            byte_stride: stride,
            count,
            mode: mode.into(),
            filter: filter.map(str::to_owned),
        }
    }

    #[test]
    fn encoded_vertices_and_indices_decode_to_what_was_encoded() {
        let vertices: Vec<[u8; 8]> = (0..50u8).map(|i| [i, i / 2, 3, 4, i.wrapping_mul(7), 0, 1, 2]).collect();
        let encoded = meshopt::encoding::encode_vertex_buffer(&vertices).expect("encodes");
        let plain = decode(&compressed("ATTRIBUTES", None, 8, 50, 0), &encoded, 1 << 20).expect("decodes");
        assert_eq!(plain, vertices.concat());

        let indices: Vec<u32> = vec![0, 1, 2, 2, 1, 3, 3, 1, 4];
        let encoded = meshopt::encoding::encode_index_buffer(&indices, 5).expect("encodes");
        let plain = decode(&compressed("TRIANGLES", None, 4, 9, 0), &encoded, 1 << 20).expect("decodes");
        let back: Vec<u32> =
            plain.chunks(4).map(|quad| u32::from_ne_bytes([quad[0], quad[1], quad[2], quad[3]])).collect();
        assert_eq!(back, indices);
    }

    /// A triangle whose positions and indices are compressed with meshopt, as a GLB whose
    /// views point into an empty fallback buffer.
    /// `claimed_offset` is where the positions' compressed data is said to start (0 is true).
    fn compressed_triangle(positions: &[[f32; 3]; 3], indices: &[u32; 3], claimed_offset: usize) -> Vec<u8> {
        let vertices = meshopt::encoding::encode_vertex_buffer(positions).expect("encodes");
        let triangles = meshopt::encoding::encode_index_buffer(indices, 3).expect("encodes");
        let mut bin = vertices.clone();
        bin.resize(vertices.len().next_multiple_of(4), 0);
        let at = bin.len();
        bin.extend_from_slice(&triangles);
        bin.resize(bin.len().next_multiple_of(4), 0);
        let json = format!(
            r#"{{"asset":{{"version":"2.0"}},
            "extensionsUsed":["EXT_meshopt_compression"],"extensionsRequired":["EXT_meshopt_compression"],
            "buffers":[{{"byteLength":{}}},{{"byteLength":48,"extensions":{{"EXT_meshopt_compression":{{"fallback":true}}}}}}],
            "bufferViews":[
              {{"buffer":1,"byteOffset":0,"byteLength":36,"byteStride":12,"target":34962,
                "extensions":{{"EXT_meshopt_compression":{{"buffer":0,"byteOffset":{claimed_offset},"byteLength":{},"byteStride":12,"count":3,"mode":"ATTRIBUTES"}}}}}},
              {{"buffer":1,"byteOffset":36,"byteLength":12,"target":34963,
                "extensions":{{"EXT_meshopt_compression":{{"buffer":0,"byteOffset":{at},"byteLength":{},"byteStride":4,"count":3,"mode":"TRIANGLES"}}}}}}],
            "accessors":[
              {{"bufferView":0,"componentType":5126,"count":3,"type":"VEC3","min":[0,0,0],"max":[1,1,0]}},
              {{"bufferView":1,"componentType":5125,"count":3,"type":"SCALAR"}}],
            "meshes":[{{"primitives":[{{"attributes":{{"POSITION":0}},"indices":1}}]}}],
            "nodes":[{{"mesh":0}}],"scenes":[{{"nodes":[0]}}],"scene":0}}"#,
            bin.len(),
            vertices.len(),
            triangles.len()
        );
        super::super::plain::glb(json.as_bytes(), &bin)
    }

    #[test]
    fn a_compressed_model_is_made_plain_with_the_same_geometry() {
        let positions = [[0.0f32, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        let indices = [0u32, 1, 2];
        let limits = ModelLimits::default();
        let main = compressed_triangle(&positions, &indices, 0);
        let refusal = super::super::inspect_model(&main, &|_| None, &limits).expect_err("not plain");
        assert!(refusal.to_string().contains(MESHOPT), "{refusal}");

        let plain = super::super::plain_model(&main, &|_| None, &limits).expect("decodes").expect("was compressed");
        let summary = super::super::inspect_model(&plain, &|_| None, &limits).expect("plain now");
        assert_eq!(summary.triangles, 1);
        assert!(!plain.windows(MESHOPT.len()).any(|window| window == MESHOPT.as_bytes()), "no trace of it left");
        let gltf = gltf::Gltf::from_slice(&plain).expect("parses");
        let bin = gltf.blob.clone().expect("one BIN chunk");
        let read = |accessor: usize| {
            let accessor = gltf.document.accessors().nth(accessor).expect("accessor");
            let view = accessor.view().expect("view");
            assert_eq!(view.buffer().index(), 0);
            bin[view.offset()..view.offset() + view.length()].to_vec()
        };
        let floats: Vec<u8> = positions.iter().flatten().flat_map(|value| value.to_le_bytes()).collect();
        assert_eq!(read(0), floats);
        let ints: Vec<u8> = indices.iter().flat_map(|value| value.to_le_bytes()).collect();
        assert_eq!(read(1), ints);

        // Compressed data said to lie past its buffer is refused, naming the view.
        let lying = compressed_triangle(&positions, &indices, 4096);
        let error = super::super::plain_model(&lying, &|_| None, &limits).expect_err("refused");
        assert!(error.to_string().contains("runs past its buffer"), "{error}");
    }

    #[test]
    fn bad_compressed_views_are_refused_not_decoded() {
        let junk = [0xa0u8, 1, 2, 3, 4, 5, 6, 7];
        let cases = [
            (compressed("ATTRIBUTES", None, 8, 50, 8), "does not decode"),
            (compressed("ATTRIBUTES", None, 6, 50, 8), "stride"),
            (compressed("ATTRIBUTES", None, 260, 50, 8), "stride"),
            (compressed("ATTRIBUTES", Some("QUATERNION"), 4, 50, 8), "stride"),
            (compressed("TRIANGLES", Some("OCTAHEDRAL"), 4, 3, 8), "only for attributes"),
            (compressed("TRIANGLES", None, 4, 4, 8), "whole triangles"),
            (compressed("STRIPS", None, 4, 3, 8), "mode"),
            (compressed("ATTRIBUTES", Some("MAGIC"), 4, 3, 8), "filter"),
            (compressed("ATTRIBUTES", None, 256, u64::MAX / 2, 8), "limit"),
            (compressed("ATTRIBUTES", None, 16, 1 << 20, 8), "limit"),
        ];
        for (case, expected) in cases {
            let error = decode(&case, &junk, 1 << 20).expect_err("refused");
            assert!(error.contains(expected), "{case:?}: {error}");
        }
    }
}
