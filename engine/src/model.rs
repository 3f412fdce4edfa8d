//! Checks an imported or downloaded glTF model against budgets before Bevy's loader sees it.
//!
//! Bevy's glTF loader and the `gltf` crate's readers trust the file: an accessor whose `count` is
//! zero or enormous, a `byteStride` smaller than an element, a buffer view past the end of its
//! buffer, a URI that percent-decodes to invalid UTF-8, an index past the last vertex, a
//! `TEXCOORD_0` shorter than `POSITION`, a node chain thousands deep, a node with two parents or a
//! PNG that declares 60000×60000 pixels each end in a panic, a stack overflow or an allocation
//! abort. [`inspect_model`] walks the same structures first, with checked arithmetic and without
//! any allocation proportional to a size the file merely declares, and turns every such file into
//! a [`ModelError`] the caller can show next to a placeholder.
//!
//! Everything here is a pure function of bytes: the caller reads the files (see
//! [`referenced_files`]) and hands them in.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::rc::Rc;

use gltf::json;
use gltf::json::accessor::{ComponentType, GenericComponentType, Type};
use gltf::json::animation::Property;
use gltf::json::mesh::{Mode, Semantic};
use gltf::json::validation::Checked;

use crate::world::budget;

/// Limits one model must fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelLimits {
    /// The most bytes the main file and every file it names may take together.
    pub max_bytes: u64,
    /// The most triangles all mesh primitives may draw together.
    pub max_triangles: u64,
    /// The longest side, in pixels, any image may have.
    pub max_texture_side: u32,
    /// The most nodes the model may have.
    pub max_nodes: usize,
    /// The most levels the node hierarchy may have (a root node is at level 1).
    pub max_depth: usize,
    /// The most distinct files (buffers and images) the model may name besides itself.
    pub max_files: usize,
    /// The most vertices (elements of `POSITION`) all mesh primitives may have together.
    pub max_vertices: u64,
}

impl Default for ModelLimits {
    /// The per-parcel budget of the world ([`budget::BYTES`], [`budget::TRIANGLES`]) with generous
    /// bounds on everything else.
    fn default() -> Self {
        Self {
            max_bytes: budget::BYTES,
            max_triangles: budget::TRIANGLES,
            max_texture_side: 4096,
            max_nodes: 4096,
            max_depth: 32,
            max_files: 64,
            max_vertices: 200_000,
        }
    }
}

/// What a checked model holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSummary {
    /// The triangles all mesh primitives draw (a mesh used by several nodes counts once).
    pub triangles: u64,
    /// The vertices (elements of `POSITION`) of all mesh primitives.
    pub vertices: u64,
    /// The bytes of the main file and of every distinct file it names.
    pub bytes: u64,
    /// The width and height of every image, in the model's order.
    pub textures: Vec<(u32, u32)>,
    /// The number of meshes.
    pub meshes: usize,
    /// The smallest and largest corner of the box around every mesh's `POSITION` bounds (the
    /// `min` and `max` glTF requires of them), in the model's own metres; node transforms are
    /// not applied. `None` when no primitive declares finite bounds.
    pub bounds: Option<([f32; 3], [f32; 3])>,
}

/// The union of the declared `POSITION` bounds of every mesh primitive.
fn position_bounds(root: &json::Root) -> Option<([f32; 3], [f32; 3])> {
    let corner = |value: &Option<json::Value>| -> Option<[f32; 3]> {
        let array = value.as_ref()?.as_array()?;
        if array.len() != 3 {
            return None;
        }
        let mut corner = [0.0f32; 3];
        for (into, value) in corner.iter_mut().zip(array) {
            *into = value.as_f64()? as f32;
        }
        corner.iter().all(|value| value.is_finite()).then_some(corner)
    };
    let mut bounds: Option<([f32; 3], [f32; 3])> = None;
    for mesh in &root.meshes {
        for primitive in &mesh.primitives {
            let Some(index) = primitive.attributes.get(&Checked::Valid(Semantic::Positions)) else { continue };
            let Some(accessor) = root.accessors.get(index.value()) else { continue };
            let (Some(low), Some(high)) = (corner(&accessor.min), corner(&accessor.max)) else { continue };
            bounds = Some(match bounds {
                None => (low, high),
                Some((min, max)) => (
                    [min[0].min(low[0]), min[1].min(low[1]), min[2].min(low[2])],
                    [max[0].max(high[0]), max[1].max(high[1]), max[2].max(high[2])],
                ),
            });
        }
    }
    bounds
}

/// Why a model was refused. Each names the offending part so a creator can fix the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The files together are bigger than the budget allows.
    #[error("the model takes at least {bytes} bytes, over the limit of {limit}; shrink its meshes or textures")]
    TooLarge {
        /// The bytes counted so far.
        bytes: u64,
        /// The most bytes allowed.
        limit: u64,
    },
    /// The bytes are not a valid glTF 2.0 file (binary `.glb` or JSON `.gltf`).
    #[error("not a valid glTF 2.0 model: {0}")]
    NotGltf(String),
    /// A buffer or image URI is not a plain relative path inside the model's folder.
    #[error(
        "the model names the file {0:?}, which is not a plain relative path inside its folder \
         (no '..', leading '/', '\\', ':', '#', '?', empty parts or invalid percent-escapes)"
    )]
    UnsafeUri(String),
    /// A file the model names was not provided.
    #[error("the model needs the file {0:?}, which is missing; import it together with the model")]
    MissingFile(String),
    /// A buffer has no URI, so it is the GLB's BIN chunk, but the file has none.
    #[error("buffer {buffer} has no uri, so it must be the .glb file's BIN chunk, but the file has none")]
    MissingBinChunk {
        /// The buffer's index.
        buffer: usize,
    },
    /// An embedded `data:` URI cannot be used.
    #[error("bad embedded data: URI: {0}")]
    BadDataUri(String),
    /// A buffer holds fewer bytes than its `byteLength` declares.
    #[error("buffer {buffer} declares {declared} bytes but only {actual} are there; the file is cut short")]
    BufferTooShort {
        /// The buffer's index.
        buffer: usize,
        /// The bytes the buffer declares.
        declared: u64,
        /// The bytes actually present.
        actual: u64,
    },
    /// A buffer view does not fit its buffer or has an invalid stride.
    #[error("buffer view {view} is invalid: {reason}")]
    BadBufferView {
        /// The buffer view's index.
        view: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// An accessor cannot be read safely.
    #[error("accessor {index} is invalid: {reason}")]
    BadAccessor {
        /// The accessor's index.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A triangle names a vertex the mesh does not have.
    #[error("mesh {mesh} uses vertex {index_value}, but it has only {vertices} vertices")]
    IndexOutOfRange {
        /// The mesh's index.
        mesh: usize,
        /// The offending index value.
        index_value: u32,
        /// The vertices the primitive has.
        vertices: u64,
    },
    /// The meshes draw more triangles than the budget allows.
    #[error("the model has at least {triangles} triangles, over the limit of {limit}; simplify it")]
    TooManyTriangles {
        /// The triangles counted so far.
        triangles: u64,
        /// The most triangles allowed.
        limit: u64,
    },
    /// The meshes have more vertices than the budget allows.
    #[error("the model has at least {vertices} vertices, over the limit of {limit}; simplify it")]
    TooManyVertices {
        /// The vertices counted so far.
        vertices: u64,
        /// The most vertices allowed.
        limit: u64,
    },
    /// An image is bigger than the largest texture allowed.
    #[error("a texture is {width}×{height} pixels; sides may be at most {limit}; scale it down")]
    TextureTooLarge {
        /// The image's width in pixels.
        width: u32,
        /// The image's height in pixels.
        height: u32,
        /// The longest side allowed.
        limit: u32,
    },
    /// An image is missing, or is neither a PNG nor a JPEG with a readable size.
    #[error("bad image: {0}")]
    BadImage(String),
    /// The model has more nodes than the budget allows.
    #[error("the model has {nodes} nodes, over the limit of {limit}")]
    TooManyNodes {
        /// The model's nodes.
        nodes: usize,
        /// The most nodes allowed.
        limit: usize,
    },
    /// The node hierarchy is deeper than the budget allows.
    #[error("the node hierarchy is {depth} levels deep, over the limit of {limit}")]
    TooDeep {
        /// The deepest level.
        depth: usize,
        /// The most levels allowed.
        limit: usize,
    },
    /// A node has two parents, or is a scene root and a child at once (it would be spawned twice).
    #[error("node {0} appears in the hierarchy more than once (two parents, or a scene root with a parent)")]
    SharedNode(usize),
    /// A node is its own ancestor.
    #[error("node {0} is its own ancestor; the hierarchy has a cycle")]
    NodeCycle(usize),
    /// The model names more files than the budget allows.
    #[error("the model names {files} files, over the limit of {limit}")]
    TooManyFiles {
        /// The distinct files named.
        files: usize,
        /// The most files allowed.
        limit: usize,
    },
    /// A mesh primitive has no `POSITION` attribute.
    #[error("mesh {mesh} has a primitive without a POSITION attribute")]
    MissingPosition {
        /// The mesh's index.
        mesh: usize,
    },
    /// A vertex attribute has a different number of elements than `POSITION`.
    #[error("mesh {mesh}: attribute {attribute} has a different number of elements than POSITION")]
    AttributeLengthMismatch {
        /// The mesh's index.
        mesh: usize,
        /// The attribute's name, such as `TEXCOORD_0` or `morph target 0 NORMAL`.
        attribute: String,
    },
}

/// The relative files a `.gltf` or `.glb` names, percent-decoded and each checked safe.
///
/// These are the URIs of buffers and images, without duplicates, in the order buffers then images;
/// embedded `data:` URIs name no file. Every name is valid UTF-8 after percent-decoding and a plain
/// relative path: `/`-separated parts that are neither empty, `.` nor `..`, no leading `/`, and no
/// `\`, `:` (a scheme such as `http:` or a drive such as `C:`), `#`, `?` or control characters.
/// The caller reads exactly these files, relative to the main file's folder, and passes them to
/// [`inspect_model`].
///
/// # Errors
///
/// [`ModelError::TooLarge`] when `main` alone is over `limits.max_bytes` (checked before parsing),
/// [`ModelError::NotGltf`] when it does not parse, [`ModelError::UnsafeUri`] for a name that is not
/// safe, and [`ModelError::TooManyFiles`] when there are more than `limits.max_files`.
pub fn referenced_files(main: &[u8], limits: &ModelLimits) -> Result<Vec<String>, ModelError> {
    check_main_size(main, limits)?;
    let parsed = parse_model(main)?;
    let files = external_files(&parsed.root)?;
    check_file_count(files.len(), limits)?;
    Ok(files)
}

/// Checks a model: `main` is the `.glb` or `.gltf` bytes, `resource(name)` gives the bytes of a
/// file named by [`referenced_files`] (`None` if it is missing).
///
/// The checks run in this order, and each runs before anything is allocated in proportion to a
/// size the file declares:
///
/// 1. `main` fits `limits.max_bytes` (before parsing); every file fetched later is added to the
///    same total.
/// 2. The file parses and validates as glTF 2.0 (GLB header, chunks, JSON and every index).
/// 3. Every URI is safe and there are at most `limits.max_files` files.
/// 4. Every buffer's real bytes (the GLB's BIN chunk, a file or an embedded `data:` URI) cover its
///    `byteLength`. Embedded `data:` URIs (base64 or plain) are decoded: they live inside `main`,
///    so their decoded size is already bounded by `max_bytes` and is not counted twice.
/// 5. Every buffer view lies inside its buffer, with a `byteStride` (if any) in `4..=252`.
/// 6. Every accessor is dense (sparse accessors are refused), has a `count` from 1 to three times
///    the larger of `max_vertices` and `max_triangles`, a stride no smaller than its element, and
///    its last element inside its buffer view.
/// 7. Every mesh primitive has a `POSITION` of three floats, every attribute (and morph target)
///    as many elements as `POSITION`, indices of unsigned scalars that each name an existing
///    vertex, and the triangles and vertices of all primitives fit the limits. Each index
///    accessor is read once, and all of them together at most as many values as one accessor
///    may hold.
/// 8. Skins and animations use accessors of the types the loader reads them as.
/// 9. Every image is a PNG or JPEG whose header gives a size within `max_texture_side`; no pixel
///    is decoded.
/// 10. There are at most `max_nodes` nodes, no node has two parents, the hierarchy has no cycle and
///     is at most `max_depth` deep (all without recursion).
///
/// # Errors
///
/// The first check that fails, as a [`ModelError`] that names the offending part.
pub fn inspect_model(
    main: &[u8],
    resource: &dyn Fn(&str) -> Option<Vec<u8>>,
    limits: &ModelLimits,
) -> Result<ModelSummary, ModelError> {
    check_main_size(main, limits)?;
    let ParsedModel { root, blob } = parse_model(main)?;
    let files = external_files(&root)?;
    check_file_count(files.len(), limits)?;

    let mut store = ResourceStore { fetch: resource, loaded: HashMap::new(), total_bytes: main.len() as u64, limits };
    let buffers = load_buffers(&root, blob, &mut store)?;
    let views = check_buffer_views(&root)?;
    let accessors = check_accessors(&root, &views, limits)?;
    let geometry = check_meshes(&root, &accessors, &buffers, limits)?;
    check_skins_and_animations(&root, &accessors)?;
    let textures = check_images(&root, &views, &buffers, &mut store, limits)?;
    check_nodes(&root, limits)?;

    Ok(ModelSummary {
        triangles: geometry.triangles,
        vertices: geometry.vertices,
        bytes: store.total_bytes,
        textures,
        meshes: root.meshes.len(),
        bounds: position_bounds(&root),
    })
}

/// The PNG file signature.
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// The most segments and fill bytes read while looking for a JPEG's frame header. Real files
/// reach it within a few dozen; the bound keeps many images that alias one huge buffer cheap.
const MAX_JPEG_STEPS: u32 = 4096;

/// The media types glTF allows for a buffer's `data:` URI.
const BUFFER_MEDIA_TYPES: [&str; 2] = ["application/octet-stream", "application/gltf-buffer"];

/// The longest message from the `gltf` crate (or URI) kept in an error, in characters.
const MAX_MESSAGE_CHARS: usize = 400;

/// The longest relative file name accepted, in bytes.
const MAX_FILE_NAME_BYTES: usize = 1024;

/// The parsed and validated JSON and the GLB's BIN chunk, if any.
struct ParsedModel {
    root: json::Root,
    blob: Option<Vec<u8>>,
}

/// Where a buffer's or image's URI points.
enum UriTarget {
    /// A relative file, percent-decoded.
    File(String),
    /// Bytes embedded in the URI.
    Data(DataUri),
}

/// An embedded `data:` URI, percent-decoded.
struct DataUri {
    media_type: String,
    is_base64: bool,
    payload: String,
}

/// Fetches each named file once and keeps the byte total within budget.
struct ResourceStore<'a> {
    fetch: &'a dyn Fn(&str) -> Option<Vec<u8>>,
    loaded: HashMap<String, Rc<[u8]>>,
    total_bytes: u64,
    limits: &'a ModelLimits,
}

/// Where a buffer view lies, after it was checked against its buffer.
#[derive(Debug, Clone, Copy)]
struct ViewRange {
    buffer: usize,
    start: u64,
    length: u64,
    stride: Option<u64>,
}

/// How an accessor's elements lie in its buffer, after the whole range was checked.
#[derive(Debug, Clone, Copy)]
struct AccessorLayout {
    buffer: usize,
    /// The first element's offset in the buffer.
    start: u64,
    stride: u64,
    count: u64,
    component: ComponentType,
    dimensions: Type,
}

/// The triangles and vertices of all mesh primitives.
struct Geometry {
    triangles: u64,
    vertices: u64,
}

impl<'a> ResourceStore<'a> {
    /// The bytes of `name`, fetched on first use and added to the byte total.
    fn get(&mut self, name: &str) -> Result<Rc<[u8]>, ModelError> {
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
    fn decode(&self) -> Result<Vec<u8>, ModelError> {
        if self.is_base64 {
            decode_base64(&self.payload)
                .ok_or_else(|| ModelError::BadDataUri("the base64 payload has invalid characters or length".into()))
        } else {
            Ok(self.payload.as_bytes().to_vec())
        }
    }
}

fn check_main_size(main: &[u8], limits: &ModelLimits) -> Result<(), ModelError> {
    let bytes = main.len() as u64;
    if bytes > limits.max_bytes {
        return Err(ModelError::TooLarge { bytes, limit: limits.max_bytes });
    }
    Ok(())
}

fn check_file_count(files: usize, limits: &ModelLimits) -> Result<(), ModelError> {
    if files > limits.max_files {
        return Err(ModelError::TooManyFiles { files, limit: limits.max_files });
    }
    Ok(())
}

/// Parses and validates `main`, guarding the `gltf` crate's own panics on hostile input first.
fn parse_model(main: &[u8]) -> Result<ParsedModel, ModelError> {
    // `gltf::Glb::from_slice` subtracts the header size from the declared length without a check,
    // so a declared length under 12 overflows; the header is checked here first.
    if main.starts_with(b"glTF") {
        check_glb_header(main)?;
    }
    let gltf::Gltf { document, blob } =
        gltf::Gltf::from_slice_without_validation(main).map_err(|error| not_gltf(&error))?;
    let root = document.into_json();
    check_before_validation(&root)?;
    let document = gltf::Document::from_json(root).map_err(|error| not_gltf(&error))?;
    Ok(ParsedModel { root: document.into_json(), blob })
}

fn check_glb_header(main: &[u8]) -> Result<(), ModelError> {
    let (Some(version), Some(declared)) = (read_u32_le(main, 4), read_u32_le(main, 8)) else {
        return Err(ModelError::NotGltf(format!("the GLB header needs 12 bytes; the file has {}", main.len())));
    };
    if version != 2 {
        return Err(ModelError::NotGltf(format!("GLB version {version} is not supported; only version 2 is")));
    }
    if u64::from(declared) != main.len() as u64 {
        return Err(ModelError::NotGltf(format!(
            "the GLB header says the file is {declared} bytes, but it is {} bytes",
            main.len()
        )));
    }
    Ok(())
}

/// Rejects what would make the `gltf` crate's validation itself panic: its mesh check indexes
/// the accessor list with the `POSITION` index before checking that index.
fn check_before_validation(root: &json::Root) -> Result<(), ModelError> {
    for (mesh_index, mesh) in root.meshes.iter().enumerate() {
        for primitive in &mesh.primitives {
            let position = primitive
                .attributes
                .get(&Checked::Valid(Semantic::Positions))
                .ok_or(ModelError::MissingPosition { mesh: mesh_index })?;
            if position.value() >= root.accessors.len() {
                return Err(ModelError::NotGltf(format!(
                    "mesh {mesh_index}: POSITION names accessor {}, but there are only {}",
                    position.value(),
                    root.accessors.len()
                )));
            }
        }
    }
    Ok(())
}

/// A `NotGltf` error from a `gltf` crate message, shortened.
fn not_gltf(error: &dyn fmt::Display) -> ModelError {
    ModelError::NotGltf(shortened(&error.to_string()))
}

fn shortened(text: &str) -> String {
    if text.chars().count() <= MAX_MESSAGE_CHARS {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
    short.push('…');
    short
}

/// The distinct files the buffers and images name, in order.
fn external_files(root: &json::Root) -> Result<Vec<String>, ModelError> {
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
fn classify_uri(uri: &str) -> Result<UriTarget, ModelError> {
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
fn percent_decode(text: &str) -> Option<String> {
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

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Whether `path` is made only of normal relative parts, so it cannot leave the model's folder,
/// name another scheme or drive, or carry a Bevy asset label (`#`).
fn is_safe_relative_path(path: &str) -> bool {
    if path.is_empty() || path.len() > MAX_FILE_NAME_BYTES {
        return false;
    }
    if path.chars().any(|c| c.is_control() || matches!(c, '\\' | ':' | '#' | '?')) {
        return false;
    }
    path.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
}

/// Decodes standard base64 (padding optional); `None` on any other character or a bad length.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
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
fn load_buffers(
    root: &json::Root,
    blob: Option<Vec<u8>>,
    store: &mut ResourceStore<'_>,
) -> Result<Vec<Rc<[u8]>>, ModelError> {
    let blob: Option<Rc<[u8]>> = blob.map(Rc::from);
    let mut buffers = Vec::with_capacity(root.buffers.len());
    for (buffer_index, buffer) in root.buffers.iter().enumerate() {
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

/// Every buffer view inside its buffer's declared length (which the real bytes cover).
fn check_buffer_views(root: &json::Root) -> Result<Vec<ViewRange>, ModelError> {
    let mut views = Vec::with_capacity(root.buffer_views.len());
    for (view_index, view) in root.buffer_views.iter().enumerate() {
        let bad_view = |reason: String| ModelError::BadBufferView { view: view_index, reason };
        let buffer_index = view.buffer.value();
        let buffer = root
            .buffers
            .get(buffer_index)
            .ok_or_else(|| bad_view(format!("it names buffer {buffer_index}, which does not exist")))?;
        let start = view.byte_offset.map_or(0, |offset| offset.0);
        let length = view.byte_length.0;
        let buffer_length = buffer.byte_length.0;
        if start.checked_add(length).is_none_or(|end| end > buffer_length) {
            return Err(bad_view(format!(
                "its {length} bytes from offset {start} reach past the end of buffer {buffer_index} ({buffer_length} bytes)"
            )));
        }
        let stride = match view.byte_stride {
            Some(stride) => {
                let stride = stride.0 as u64;
                if !(4..=252).contains(&stride) {
                    return Err(bad_view(format!("byteStride {stride} is outside 4..=252")));
                }
                Some(stride)
            }
            None => None,
        };
        views.push(ViewRange { buffer: buffer_index, start, length, stride });
    }
    Ok(views)
}

/// Every accessor dense, of sane count, and with its last element inside its buffer view.
fn check_accessors(
    root: &json::Root,
    views: &[ViewRange],
    limits: &ModelLimits,
) -> Result<Vec<AccessorLayout>, ModelError> {
    let count_limit = accessor_count_limit(limits);
    let mut layouts = Vec::with_capacity(root.accessors.len());
    for (index, accessor) in root.accessors.iter().enumerate() {
        let bad_accessor = |reason: String| ModelError::BadAccessor { index, reason };
        if accessor.sparse.is_some() {
            return Err(bad_accessor("sparse accessors are not supported; export the mesh without them".into()));
        }
        let (Checked::Valid(GenericComponentType(component)), Checked::Valid(dimensions)) =
            (accessor.component_type, accessor.type_)
        else {
            return Err(bad_accessor("its componentType or type is not a glTF value".into()));
        };
        let view_index = accessor.buffer_view.ok_or_else(|| bad_accessor("it has no bufferView".into()))?.value();
        let view = views
            .get(view_index)
            .ok_or_else(|| bad_accessor(format!("it names buffer view {view_index}, which does not exist")))?;
        let count = accessor.count.0;
        if count == 0 {
            return Err(bad_accessor("its count is 0".into()));
        }
        if count > count_limit {
            return Err(bad_accessor(format!("its count {count} is over the limit of {count_limit}")));
        }
        let element_size = element_size(component, dimensions);
        let stride = view.stride.unwrap_or(element_size);
        if stride < element_size {
            return Err(bad_accessor(format!(
                "the byteStride {stride} of buffer view {view_index} is smaller than one element ({element_size} bytes)"
            )));
        }
        let offset = accessor.byte_offset.map_or(0, |offset| offset.0);
        let needed = stride
            .checked_mul(count - 1)
            .and_then(|span| span.checked_add(element_size))
            .and_then(|span| span.checked_add(offset));
        match needed {
            Some(needed) if needed <= view.length => {}
            Some(needed) => {
                return Err(bad_accessor(format!(
                    "it needs {needed} bytes of buffer view {view_index}, which has {}",
                    view.length
                )));
            }
            None => return Err(bad_accessor("the bytes it needs overflow a 64-bit size".into())),
        }
        layouts.push(AccessorLayout {
            buffer: view.buffer,
            start: view.start + offset,
            stride,
            count,
            component,
            dimensions,
        });
    }
    Ok(layouts)
}

/// The most elements one accessor may have, and the most index values read in all: three per
/// vertex or triangle allowed, whichever is more.
fn accessor_count_limit(limits: &ModelLimits) -> u64 {
    limits.max_vertices.max(limits.max_triangles).saturating_mul(3)
}

/// The bytes of one element; matrix columns start on 4-byte boundaries, as glTF requires.
fn element_size(component: ComponentType, dimensions: Type) -> u64 {
    let component_size = component_size(component);
    let (columns, rows) = match dimensions {
        Type::Scalar => (1, 1),
        Type::Vec2 => (1, 2),
        Type::Vec3 => (1, 3),
        Type::Vec4 => (1, 4),
        Type::Mat2 => (2, 2),
        Type::Mat3 => (3, 3),
        Type::Mat4 => (4, 4),
    };
    let column_size = rows * component_size;
    if columns == 1 { column_size } else { columns * column_size.next_multiple_of(4) }
}

fn component_size(component: ComponentType) -> u64 {
    match component {
        ComponentType::I8 | ComponentType::U8 => 1,
        ComponentType::I16 | ComponentType::U16 => 2,
        ComponentType::U32 | ComponentType::F32 => 4,
    }
}

fn accessor_layout(accessors: &[AccessorLayout], index: usize) -> Result<AccessorLayout, ModelError> {
    accessors.get(index).copied().ok_or_else(|| ModelError::NotGltf(format!("accessor {index} does not exist")))
}

/// Checks every mesh primitive and counts triangles and vertices within the limits.
fn check_meshes(
    root: &json::Root,
    accessors: &[AccessorLayout],
    buffers: &[Rc<[u8]>],
    limits: &ModelLimits,
) -> Result<Geometry, ModelError> {
    let mut geometry = Geometry { triangles: 0, vertices: 0 };
    let mut largest_index: HashMap<usize, u32> = HashMap::new();
    let mut indices_read: u64 = 0;
    let read_limit = accessor_count_limit(limits);
    for (mesh_index, mesh) in root.meshes.iter().enumerate() {
        for primitive in &mesh.primitives {
            let position_index = primitive
                .attributes
                .get(&Checked::Valid(Semantic::Positions))
                .ok_or(ModelError::MissingPosition { mesh: mesh_index })?
                .value();
            let position = accessor_layout(accessors, position_index)?;
            if position.component != ComponentType::F32 || position.dimensions != Type::Vec3 {
                return Err(ModelError::BadAccessor {
                    index: position_index,
                    reason: "POSITION must be VEC3 of FLOAT".into(),
                });
            }
            let vertex_count = position.count;

            for (semantic, accessor_index) in &primitive.attributes {
                if accessor_layout(accessors, accessor_index.value())?.count != vertex_count {
                    return Err(ModelError::AttributeLengthMismatch {
                        mesh: mesh_index,
                        attribute: semantic.to_string(),
                    });
                }
            }
            for (target_index, target) in primitive.targets.iter().flatten().enumerate() {
                let attributes =
                    [("POSITION", target.positions), ("NORMAL", target.normals), ("TANGENT", target.tangents)];
                for (name, accessor_index) in attributes {
                    let Some(accessor_index) = accessor_index else { continue };
                    let layout = accessor_layout(accessors, accessor_index.value())?;
                    if layout.component != ComponentType::F32 || layout.dimensions != Type::Vec3 {
                        return Err(ModelError::BadAccessor {
                            index: accessor_index.value(),
                            reason: format!("morph target {name} must be VEC3 of FLOAT"),
                        });
                    }
                    if layout.count != vertex_count {
                        return Err(ModelError::AttributeLengthMismatch {
                            mesh: mesh_index,
                            attribute: format!("morph target {target_index} {name}"),
                        });
                    }
                }
            }

            let indices = match primitive.indices {
                Some(accessor_index) => {
                    let layout = accessor_layout(accessors, accessor_index.value())?;
                    let unsigned =
                        matches!(layout.component, ComponentType::U8 | ComponentType::U16 | ComponentType::U32);
                    if layout.dimensions != Type::Scalar || !unsigned {
                        return Err(ModelError::BadAccessor {
                            index: accessor_index.value(),
                            reason: "indices must be SCALAR of UNSIGNED_BYTE, UNSIGNED_SHORT or UNSIGNED_INT".into(),
                        });
                    }
                    Some((accessor_index.value(), layout))
                }
                None => None,
            };

            let Checked::Valid(mode) = primitive.mode else {
                return Err(ModelError::NotGltf(format!("mesh {mesh_index} has a primitive of unknown mode")));
            };
            let drawn = indices.map_or(vertex_count, |(_, layout)| layout.count);
            let triangles = match mode {
                Mode::Triangles => drawn / 3,
                Mode::TriangleStrip | Mode::TriangleFan => drawn.saturating_sub(2),
                Mode::Points | Mode::Lines | Mode::LineLoop | Mode::LineStrip => 0,
            };
            geometry.triangles = geometry.triangles.saturating_add(triangles);
            if geometry.triangles > limits.max_triangles {
                return Err(ModelError::TooManyTriangles {
                    triangles: geometry.triangles,
                    limit: limits.max_triangles,
                });
            }
            geometry.vertices = geometry.vertices.saturating_add(vertex_count);
            if geometry.vertices > limits.max_vertices {
                return Err(ModelError::TooManyVertices { vertices: geometry.vertices, limit: limits.max_vertices });
            }

            if let Some((accessor_index, layout)) = indices {
                // Each index accessor is read once however many primitives share it, and all reads
                // together stay within one budget, so aliased accessors cannot multiply the work.
                let largest = match largest_index.get(&accessor_index) {
                    Some(&largest) => largest,
                    None => {
                        indices_read = indices_read.saturating_add(layout.count);
                        if indices_read > read_limit {
                            return Err(ModelError::BadAccessor {
                                index: accessor_index,
                                reason: format!("the indices of all primitives add up to over {read_limit} values"),
                            });
                        }
                        let largest = largest_index_value(accessor_index, &layout, buffers)?;
                        largest_index.insert(accessor_index, largest);
                        largest
                    }
                };
                if u64::from(largest) >= vertex_count {
                    return Err(ModelError::IndexOutOfRange {
                        mesh: mesh_index,
                        index_value: largest,
                        vertices: vertex_count,
                    });
                }
            }
        }
    }
    Ok(geometry)
}

/// Reads every index (honouring the stride) and returns the largest.
fn largest_index_value(
    accessor_index: usize,
    layout: &AccessorLayout,
    buffers: &[Rc<[u8]>],
) -> Result<u32, ModelError> {
    let unreadable = || ModelError::BadAccessor {
        index: accessor_index,
        reason: "its indices cannot be read from the buffer".into(),
    };
    let bytes = buffers.get(layout.buffer).ok_or_else(unreadable)?;
    let mut largest = 0;
    for element in 0..layout.count {
        // The whole range was checked against the buffer in `check_accessors`; the lookups below
        // still fail softly rather than trust that.
        let at = element
            .checked_mul(layout.stride)
            .and_then(|offset| offset.checked_add(layout.start))
            .and_then(|at| usize::try_from(at).ok())
            .ok_or_else(unreadable)?;
        let value = match layout.component {
            ComponentType::U8 => bytes.get(at).copied().map(u32::from),
            ComponentType::U16 => read_u16_le(bytes, at).map(u32::from),
            _ => read_u32_le(bytes, at),
        }
        .ok_or_else(unreadable)?;
        largest = largest.max(value);
    }
    Ok(largest)
}

/// Skins and animations use accessors of the types the `gltf` readers expect (a mismatch trips
/// their debug assertions or an `unreachable!`).
fn check_skins_and_animations(root: &json::Root, accessors: &[AccessorLayout]) -> Result<(), ModelError> {
    for skin in &root.skins {
        let Some(accessor_index) = skin.inverse_bind_matrices else { continue };
        let layout = accessor_layout(accessors, accessor_index.value())?;
        if layout.component != ComponentType::F32 || layout.dimensions != Type::Mat4 {
            return Err(ModelError::BadAccessor {
                index: accessor_index.value(),
                reason: "inverse bind matrices must be MAT4 of FLOAT".into(),
            });
        }
        if layout.count < skin.joints.len() as u64 {
            return Err(ModelError::BadAccessor {
                index: accessor_index.value(),
                reason: format!("it holds {} inverse bind matrices for {} joints", layout.count, skin.joints.len()),
            });
        }
    }
    for (animation_index, animation) in root.animations.iter().enumerate() {
        for channel in &animation.channels {
            let sampler = animation.samplers.get(channel.sampler.value()).ok_or_else(|| {
                ModelError::NotGltf(format!("animation {animation_index} names a sampler that does not exist"))
            })?;
            let input = accessor_layout(accessors, sampler.input.value())?;
            if input.component != ComponentType::F32 || input.dimensions != Type::Scalar {
                return Err(ModelError::BadAccessor {
                    index: sampler.input.value(),
                    reason: "animation key times must be SCALAR of FLOAT".into(),
                });
            }
            let output = accessor_layout(accessors, sampler.output.value())?;
            let (fits, expected) = match channel.target.path {
                Checked::Valid(Property::Translation | Property::Scale) => {
                    (output.component == ComponentType::F32 && output.dimensions == Type::Vec3, "VEC3 of FLOAT")
                }
                Checked::Valid(Property::Rotation) => (
                    output.component != ComponentType::U32 && output.dimensions == Type::Vec4,
                    "VEC4 of FLOAT or normalized integers",
                ),
                Checked::Valid(Property::MorphTargetWeights) => (
                    output.component != ComponentType::U32 && output.dimensions == Type::Scalar,
                    "SCALAR of FLOAT or normalized integers",
                ),
                Checked::Invalid => {
                    return Err(ModelError::NotGltf(format!(
                        "animation {animation_index} targets an unknown property"
                    )));
                }
            };
            if !fits {
                return Err(ModelError::BadAccessor {
                    index: sampler.output.value(),
                    reason: format!("this animation output must be {expected}"),
                });
            }
        }
    }
    Ok(())
}

/// The size of every image, read from its PNG or JPEG header and checked against the limit.
fn check_images(
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
fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    png_size(bytes).or_else(|| jpeg_size(bytes))
}

/// PNG: the signature, then the IHDR chunk (length 13) with width and height as big-endian u32.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if !bytes.starts_with(&PNG_SIGNATURE) || read_u32_be(bytes, 8)? != 13 || bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    Some((read_u32_be(bytes, 16)?, read_u32_be(bytes, 20)?))
}

/// JPEG: walks the marker segments after SOI to the first start-of-frame (SOF0..SOF15 except DHT,
/// JPG and DAC), whose payload holds precision, then height and width as big-endian u16.
fn jpeg_size(bytes: &[u8]) -> Option<(u32, u32)> {
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

/// At most `max_nodes` nodes, each with at most one parent, no cycle, at most `max_depth` levels.
/// Iterative, so a chain thousands deep cannot overflow the stack.
fn check_nodes(root: &json::Root, limits: &ModelLimits) -> Result<(), ModelError> {
    let node_count = root.nodes.len();
    if node_count > limits.max_nodes {
        return Err(ModelError::TooManyNodes { nodes: node_count, limit: limits.max_nodes });
    }
    let children_of = |node: usize| root.nodes[node].children.iter().flatten().map(|child| child.value());

    let mut parent: Vec<Option<usize>> = vec![None; node_count];
    for node in 0..node_count {
        for child in children_of(node) {
            if child >= node_count {
                return Err(ModelError::NotGltf(format!("node {node} names child {child}, which does not exist")));
            }
            if child == node {
                return Err(ModelError::NodeCycle(node));
            }
            if parent[child].is_some() {
                return Err(ModelError::SharedNode(child));
            }
            parent[child] = Some(node);
        }
    }

    for scene in &root.scenes {
        let mut in_scene = HashSet::new();
        for node in scene.nodes.iter().map(|node| node.value()) {
            if node >= node_count {
                return Err(ModelError::NotGltf(format!("a scene names node {node}, which does not exist")));
            }
            if parent[node].is_some() || !in_scene.insert(node) {
                return Err(ModelError::SharedNode(node));
            }
        }
    }

    // With one parent each, a walk down from the parentless nodes reaches every node once,
    // except those on a cycle (which have parents but no root above them).
    let mut visited = vec![false; node_count];
    let mut pending: Vec<(usize, usize)> =
        (0..node_count).filter(|&node| parent[node].is_none()).map(|node| (node, 1)).collect();
    let mut deepest = 0;
    while let Some((node, depth)) = pending.pop() {
        visited[node] = true;
        deepest = deepest.max(depth);
        pending.extend(children_of(node).map(|child| (child, depth + 1)));
    }
    if let Some(node) = visited.iter().position(|&seen| !seen) {
        return Err(ModelError::NodeCycle(node));
    }
    if deepest > limits.max_depth {
        return Err(ModelError::TooDeep { depth: deepest, limit: limits.max_depth });
    }
    Ok(())
}

fn read_u16_be(bytes: &[u8], at: usize) -> Option<u16> {
    let pair = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([pair[0], pair[1]]))
}

fn read_u32_be(bytes: &[u8], at: usize) -> Option<u32> {
    let quad = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([quad[0], quad[1], quad[2], quad[3]]))
}

fn read_u16_le(bytes: &[u8], at: usize) -> Option<u16> {
    let pair = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([pair[0], pair[1]]))
}

fn read_u32_le(bytes: &[u8], at: usize) -> Option<u32> {
    let quad = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([quad[0], quad[1], quad[2], quad[3]]))
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
    fn matrix_columns_are_padded_to_four_bytes() {
        assert_eq!(element_size(ComponentType::F32, Type::Vec3), 12);
        assert_eq!(element_size(ComponentType::U8, Type::Mat2), 8);
        assert_eq!(element_size(ComponentType::I16, Type::Mat3), 24);
        assert_eq!(element_size(ComponentType::F32, Type::Mat4), 64);
    }
}
