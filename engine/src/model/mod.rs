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

use std::collections::HashMap;
use std::fmt;

use gltf::json;
use gltf::json::mesh::Semantic;
use gltf::json::validation::Checked;

use crate::world::budget;

mod basis;
mod draco;
mod extensions;
mod files;
mod geometry;
mod humanoid;
mod images;
mod meshopt;
mod nodes;
mod plain;

pub use extensions::{PASSED_THROUGH, unsupported_advice};
pub use humanoid::{HumanBone, Humanoid, RigSource};
pub use plain::plain_model;

use files::{ResourceStore, external_files, load_buffers};
use geometry::{check_accessors, check_buffer_views, check_meshes, check_skins_and_animations};
use images::check_images;
use nodes::check_nodes;

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
    /// The materials the meshes draw with: each distinct material once, and the default material
    /// once if any primitive has none.
    pub materials: usize,
    /// The distinct nodes any skin names as a joint.
    pub bones: usize,
    /// What the textures take on a graphics card once decoded: four bytes a pixel and a third
    /// more for the smaller copies (mipmaps), in bytes.
    pub texture_bytes: u64,
    /// The humanoid skeleton, when the model is an avatar (VRM, or bones named as common rigs
    /// name them).
    pub humanoid: Option<Humanoid>,
}

/// The distinct materials the primitives use (the default material counts as one).
fn material_count(root: &json::Root) -> usize {
    let mut used: Vec<Option<usize>> = root
        .meshes
        .iter()
        .flat_map(|mesh| &mesh.primitives)
        .map(|primitive| primitive.material.map(|index| index.value()))
        .collect();
    used.sort_unstable();
    used.dedup();
    used.len()
}

/// The distinct joint nodes of all skins.
fn bone_count(root: &json::Root) -> usize {
    let mut joints: Vec<usize> = root.skins.iter().flat_map(|skin| &skin.joints).map(|joint| joint.value()).collect();
    joints.sort_unstable();
    joints.dedup();
    joints.len()
}

/// Texture memory once decoded: RGBA8 with a full mip chain (4/3 of the largest level).
fn texture_bytes(textures: &[(u32, u32)]) -> u64 {
    textures
        .iter()
        .map(|&(width, height)| u64::from(width).saturating_mul(u64::from(height)).saturating_mul(16) / 3)
        .fold(0u64, u64::saturating_add)
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
    /// A primitive's Draco-compressed geometry cannot be decoded into what it declares.
    #[error("mesh {mesh}, primitive {primitive}: its Draco-compressed geometry cannot be read: {reason}")]
    BadDraco {
        /// The mesh's index.
        mesh: usize,
        /// The primitive's index within the mesh.
        primitive: usize,
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
    /// The model requires a glTF extension Sanctuary cannot read.
    #[error("the model requires the glTF extension {name}, which Sanctuary cannot read; {advice}")]
    UnsupportedExtension {
        /// The extension's name, as the file spells it (shortened if absurdly long).
        name: String,
        /// How to make a file without it.
        advice: &'static str,
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
    let parsed = parse_model(main, plain::UNDONE)?;
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
    let ParsedModel { root, blob } = parse_model(main, &[])?;
    let humanoid = humanoid::read_humanoid(json_text(main), &root);
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
        meshes: root.meshes.len(),
        bounds: position_bounds(&root),
        materials: material_count(&root),
        bones: bone_count(&root),
        texture_bytes: texture_bytes(&textures),
        textures,
        humanoid,
    })
}

/// The longest message from the `gltf` crate (or URI) kept in an error, in characters.
const MAX_MESSAGE_CHARS: usize = 400;

/// The parsed and validated JSON and the GLB's BIN chunk, if any. A model with Draco-compressed
/// primitives, parsed for import, is validated only once its streams are decoded
/// ([`plain::plain_model`]): its compressed accessors have no buffer views until then.
struct ParsedModel {
    root: json::Root,
    blob: Option<Vec<u8>>,
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

/// Parses and validates `main`, guarding the `gltf` crate's own panics on hostile input first;
/// `also_allowed` names required extensions accepted besides [`PASSED_THROUGH`] (those
/// [`plain_model`] undoes, when it is the caller).
fn parse_model(main: &[u8], also_allowed: &[&str]) -> Result<ParsedModel, ModelError> {
    // `gltf::Glb::from_slice` subtracts the header size from the declared length without a check,
    // so a declared length under 12 overflows; the header is checked here first.
    if main.starts_with(b"glTF") {
        check_glb_header(main)?;
    }
    let gltf::Gltf { document, blob } =
        gltf::Gltf::from_slice_without_validation(main).map_err(|error| not_gltf(&error))?;
    let mut root = document.into_json();
    extensions::check_required(&root, also_allowed)?;
    images::adopt_sources(&mut root, also_allowed);
    // Required extensions were checked just above against what Sanctuary reads; the `gltf`
    // crate's own list depends on the features other crates enable, so it is not asked.
    root.extensions_required.clear();
    check_before_validation(&root)?;
    if draco::used(&root) {
        if !also_allowed.contains(&draco::DRACO) {
            // Stored and shared models are plain; only import decodes Draco.
            return Err(ModelError::UnsupportedExtension {
                name: draco::DRACO.to_owned(),
                advice: unsupported_advice(draco::DRACO),
            });
        }
        return Ok(ParsedModel { root, blob });
    }
    Ok(ParsedModel { root: validated(root)?, blob })
}

/// `root` checked as the `gltf` crate checks a whole model (indices in range, values known).
fn validated(root: json::Root) -> Result<json::Root, ModelError> {
    let document = gltf::Document::from_json(root).map_err(|error| not_gltf(&error))?;
    Ok(document.into_json())
}

/// The JSON of a model: the `.gltf` file itself, or a `.glb`'s first chunk (whose bounds
/// [`check_glb_header`] and the parser have already checked; anything odd gives an empty text).
fn json_text(main: &[u8]) -> &[u8] {
    if !main.starts_with(b"glTF") {
        return main;
    }
    let Some(length) = read_u32_le(main, 12).and_then(|length| usize::try_from(length).ok()) else { return &[] };
    main.get(20..20usize.saturating_add(length)).unwrap_or(&[])
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
