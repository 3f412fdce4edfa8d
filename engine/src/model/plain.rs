//! Models as people export them, made plain: what tools write to save bytes is undone once, at
//! import, into the form that is stored and shared, so that every peer's loader reads it.
//!
//! - Sparse accessors (a base, often none, plus a few replaced elements) become dense.
//! - `EXT_meshopt_compression`'s compressed buffer views are decoded (meshopt.rs), first.
//! - `KHR_draco_mesh_compression`'s streams are decoded into the accessors they fill (draco.rs).
//! - `EXT_texture_webp`: each texture names its WebP image as its own source (Bevy reads WebP).
//! - `KHR_texture_basisu`: each KTX2 image is transcoded and stored as a PNG (basis.rs), and
//!   each texture names it as its own source.
//! - `KHR_mesh_quantization`'s integer positions, normals, tangents and texture coordinates
//!   become floats (normalised integers scaled as glTF says); the node transforms that undo the
//!   quantization stay as they are, and the extension is dropped.
//!
//! The result is one `.glb`: the original buffers and every image in its BIN chunk, the new
//! dense accessors after them. Everything read is bounds-checked here as in the rest of this
//! module, and the output, never more than the byte limit, is then checked like any model.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use gltf::json;
use gltf::json::accessor::{ComponentType, GenericComponentType, Type};
use gltf::json::mesh::Semantic;
use gltf::json::validation::{Checked, USize64};

use super::basis::{self, BASISU};
use super::draco::{self, DRACO};
use super::files::{ResourceStore, UriTarget, classify_uri, external_files, load_buffers};
use super::geometry::{ViewRange, accessor_count_limit, check_buffer_views, component_size};
use super::images::{WEBP, is_webp};
use super::meshopt::{self, MESHOPT};
use super::{
    ModelError, ModelLimits, ParsedModel, check_file_count, check_main_size, parse_model, read_u16_le, read_u32_le,
    validated,
};

/// The extension this module undoes.
pub(super) const QUANTIZATION: &str = "KHR_mesh_quantization";
/// The required extensions a file may have for import, as they are undone here.
pub(super) const UNDONE: &[&str] = &[QUANTIZATION, MESHOPT, DRACO, WEBP, BASISU];

/// The model at `main` (with the files `resource` gives) made plain, as a `.glb`; `None` when it
/// is plain already and is kept as it is.
///
/// # Errors
///
/// A [`ModelError`] naming what cannot be read: an accessor, sparse part or buffer view out of
/// bounds, a sparse index past the end, or an output over `limits.max_bytes`.
pub fn plain_model(
    main: &[u8],
    resource: &dyn Fn(&str) -> Option<Vec<u8>>,
    limits: &ModelLimits,
) -> Result<Option<Vec<u8>>, ModelError> {
    check_main_size(main, limits)?;
    let ParsedModel { mut root, mut blob } = parse_model(main, UNDONE)?;
    let quantized = root.extensions_used.iter().any(|name| name == QUANTIZATION);
    let compressed = meshopt::used(&root);
    let draco_compressed = draco::used(&root);
    let webp = root.extensions_used.iter().any(|name| name == WEBP);
    let ktx2 = root.extensions_used.iter().any(|name| name == BASISU);
    if !quantized
        && !compressed
        && !draco_compressed
        && !webp
        && !ktx2
        && root.accessors.iter().all(|accessor| accessor.sparse.is_none())
    {
        return Ok(None);
    }
    let files = external_files(&root)?;
    check_file_count(files.len(), limits)?;
    let mut store = ResourceStore { fetch: resource, loaded: HashMap::new(), total_bytes: main.len() as u64, limits };
    if compressed {
        // Decoded first, into one buffer that the rest reads as if the file had come so.
        blob = Some(meshopt::unpack(&mut root, blob, &mut store, limits)?);
    }
    if draco_compressed {
        // The same for Draco's streams, which may themselves lie in meshopt-compressed views.
        blob = Some(draco::unpack(&mut root, blob, &mut store, limits)?);
        // Checked only now that its accessors have buffer views (see `parse_model`).
        root = validated(root)?;
    }
    let buffers = load_buffers(&root, blob, &mut store)?;
    let views = check_buffer_views(&root)?;

    // The accessors that become floats: quantized vertex attributes.
    let mut to_float: HashSet<usize> = HashSet::new();
    if quantized {
        for mesh in &root.meshes {
            for primitive in &mesh.primitives {
                let targets = primitive
                    .targets
                    .iter()
                    .flatten()
                    .flat_map(|target| [target.positions, target.normals, target.tangents].into_iter().flatten());
                let attributes = primitive.attributes.iter().filter_map(|(semantic, index)| match semantic {
                    Checked::Valid(
                        Semantic::Positions | Semantic::Normals | Semantic::Tangents | Semantic::TexCoords(_),
                    ) => Some(*index),
                    _ => None,
                });
                to_float.extend(attributes.chain(targets).map(|index| index.value()));
            }
        }
    }

    let mut bin = Bin::new(limits.max_bytes);
    append_buffers(&mut root, &buffers, &mut bin)?;
    // Every image into the BIN chunk too, so that the result is one file; KTX2 images as PNGs.
    let mut transcoded: u64 = 0;
    for image_index in 0..root.images.len() {
        let bad_image = |what: String| ModelError::BadImage(format!("image {image_index} {what}"));
        let mut bytes: Rc<[u8]> = match (root.images[image_index].uri.clone(), root.images[image_index].buffer_view) {
            (Some(uri), _) => match classify_uri(&uri)? {
                UriTarget::File(name) => store.get(&name)?,
                UriTarget::Data(data) => Rc::from(data.decode()?),
            },
            (None, Some(view)) if ktx2 => {
                let view = views
                    .get(view.value())
                    .ok_or_else(|| bad_image("names a buffer view that does not exist".into()))?;
                let start = usize::try_from(view.start).unwrap_or(usize::MAX);
                let end = start.saturating_add(usize::try_from(view.length).unwrap_or(usize::MAX));
                let bytes = buffers.get(view.buffer).and_then(|buffer| buffer.get(start..end));
                match bytes {
                    Some(bytes) if basis::is_ktx2(bytes) => Rc::from(bytes),
                    Some(_) => continue,
                    None => return Err(bad_image("reaches past its buffer".into())),
                }
            }
            _ => continue,
        };
        if basis::is_ktx2(&bytes) {
            // Every KTX2 image is decoded whole: their pixels together are bounded first, so a
            // file of many large images cannot make the import hold and encode gigabytes.
            let pixels = basis::header(&bytes).map_or(0, |header| u64::from(header.width) * u64::from(header.height));
            transcoded = transcoded.saturating_add(pixels.saturating_mul(4));
            if transcoded > basis::MAX_TRANSCODED_BYTES {
                return Err(bad_image(format!(
                    "takes the KTX2 textures past {} MiB once decoded; use fewer or smaller textures",
                    basis::MAX_TRANSCODED_BYTES >> 20
                )));
            }
            bytes = Rc::from(basis::to_png(&bytes, limits.max_texture_side).map_err(bad_image)?);
        }
        let mime = if bytes.starts_with(&[0x89, b'P', b'N', b'G']) {
            "image/png"
        } else if is_webp(&bytes) {
            "image/webp"
        } else {
            "image/jpeg"
        };
        let offset = bin.append(&bytes)?;
        let view = push_view(&mut root, offset, bytes.len() as u64, None);
        let image = &mut root.images[image_index];
        image.uri = None;
        image.buffer_view = Some(view);
        image.mime_type = Some(json::image::MimeType(mime.to_owned()));
    }

    let count_limit = accessor_count_limit(limits);
    for index in 0..root.accessors.len() {
        let float = to_float.contains(&index);
        let accessor = &root.accessors[index];
        if accessor.sparse.is_none() && !float {
            continue;
        }
        let dense = Dense::read(accessor, index, &views, &buffers, count_limit, float)?;
        let offset = bin.append(&dense.bytes)?;
        let view = push_view(&mut root, offset, dense.bytes.len() as u64, None);
        let accessor = &mut root.accessors[index];
        accessor.buffer_view = Some(view);
        accessor.byte_offset = None;
        accessor.sparse = None;
        if float {
            let scale = |value: &mut Option<json::Value>| {
                if let Some(json::Value::Array(values)) = value {
                    for value in values.iter_mut() {
                        if let Some(number) = value.as_f64() {
                            *value = json::Value::from(f64::from(dense.convert(number)));
                        }
                    }
                }
            };
            scale(&mut accessor.min);
            scale(&mut accessor.max);
            accessor.component_type = Checked::Valid(GenericComponentType(ComponentType::F32));
            accessor.normalized = false;
        }
    }
    // Textures name their WebP images as their own sources now (model/images.rs), which Bevy
    // reads; the extension's objects go.
    // KTX2 images are PNGs now, and textures name them the same way.
    for texture in &mut root.textures {
        if let Some(extensions) = &mut texture.extensions {
            extensions.others.remove(WEBP);
            extensions.others.remove(BASISU);
        }
    }
    root.extensions_used.retain(|name| name != QUANTIZATION && name != WEBP && name != BASISU);
    root.extensions_required.retain(|name| name != QUANTIZATION && name != BASISU);
    set_one_buffer(&mut root, bin.bytes.len());
    let text = json::serialize::to_vec(&root).map_err(|error| ModelError::NotGltf(error.to_string()))?;
    Ok(Some(glb(&text, &bin.bytes)))
}

/// The original `buffers` into `bin`, each where its views expect it: every view of `root` then
/// reads buffer 0.
pub(super) fn append_buffers(root: &mut json::Root, buffers: &[Rc<[u8]>], bin: &mut Bin) -> Result<(), ModelError> {
    let mut bases = Vec::with_capacity(buffers.len());
    for buffer in buffers {
        bases.push(bin.append(buffer)?);
    }
    for view in &mut root.buffer_views {
        let base = bases.get(view.buffer.value()).copied().unwrap_or(0);
        view.byte_offset = Some(USize64(view.byte_offset.map_or(0, |offset| offset.0).saturating_add(base)));
        view.buffer = json::Index::new(0);
    }
    Ok(())
}

/// `root`'s one buffer: a GLB's BIN chunk of `length` bytes.
pub(super) fn set_one_buffer(root: &mut json::Root, length: usize) {
    root.buffers = vec![json::Buffer {
        byte_length: USize64(length as u64),
        name: None,
        uri: None,
        extensions: None,
        extras: Default::default(),
    }];
}

/// The BIN chunk being written, never past the byte limit.
pub(super) struct Bin {
    bytes: Vec<u8>,
    limit: u64,
}

impl Bin {
    /// An empty chunk that may grow to `limit` bytes.
    pub(super) fn new(limit: u64) -> Self {
        Self { bytes: Vec::new(), limit }
    }

    /// What was written.
    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Appends `bytes` at the next 4-byte boundary and gives their offset.
    pub(super) fn append(&mut self, bytes: &[u8]) -> Result<u64, ModelError> {
        let start = self.bytes.len().next_multiple_of(4);
        let end = (start as u64).saturating_add(bytes.len() as u64);
        if end > self.limit {
            return Err(ModelError::TooLarge { bytes: end, limit: self.limit });
        }
        self.bytes.resize(start, 0);
        self.bytes.extend_from_slice(bytes);
        Ok(start as u64)
    }
}

pub(super) fn push_view(
    root: &mut json::Root,
    offset: u64,
    length: u64,
    stride: Option<usize>,
) -> json::Index<json::buffer::View> {
    root.buffer_views.push(json::buffer::View {
        buffer: json::Index::new(0),
        byte_length: USize64(length),
        byte_offset: Some(USize64(offset)),
        byte_stride: stride.map(json::buffer::Stride),
        name: None,
        target: None,
        extensions: None,
        extras: Default::default(),
    });
    json::Index::new(u32::try_from(root.buffer_views.len() - 1).unwrap_or(u32::MAX))
}

/// An accessor's elements made dense (and floats, if asked).
struct Dense {
    bytes: Vec<u8>,
    component: ComponentType,
    normalized: bool,
}

impl Dense {
    fn read(
        accessor: &json::Accessor,
        index: usize,
        views: &[ViewRange],
        buffers: &[Rc<[u8]>],
        count_limit: u64,
        float: bool,
    ) -> Result<Dense, ModelError> {
        let bad = |reason: String| ModelError::BadAccessor { index, reason };
        let (Checked::Valid(GenericComponentType(component)), Checked::Valid(dimensions)) =
            (accessor.component_type, accessor.type_)
        else {
            return Err(bad("its componentType or type is not a glTF value".into()));
        };
        let width: u64 = match dimensions {
            Type::Scalar => 1,
            Type::Vec2 => 2,
            Type::Vec3 => 3,
            Type::Vec4 => 4,
            _ => return Err(bad("a sparse or quantized matrix cannot be made plain".into())),
        };
        let count = accessor.count.0;
        if count == 0 || count > count_limit {
            return Err(bad(format!("its count {count} is not within 1..={count_limit}")));
        }
        let size = component_size(component);
        let out_size = if float { 4 } else { size };
        let mut dense = Dense { bytes: Vec::new(), component, normalized: accessor.normalized };
        dense.bytes.resize(usize::try_from(count * width * out_size).map_err(|_| bad("too large".into()))?, 0);
        // The base: its buffer view's elements, or zeros.
        if let Some(view_index) = accessor.buffer_view {
            let view = views.get(view_index.value()).ok_or_else(|| bad("its buffer view does not exist".into()))?;
            let stride = view.stride.unwrap_or(width * size);
            let offset = accessor.byte_offset.map_or(0, |offset| offset.0);
            let source = Source { view, buffers, offset, stride, component, width };
            for element in 0..count {
                dense.put(
                    element,
                    &source.element(element).ok_or_else(|| bad("it reaches past its buffer view".into()))?,
                    float,
                );
            }
        } else if float {
            for element in 0..count {
                dense.put(element, &vec![0.0; width as usize], true);
            }
        }
        // The replaced elements.
        if let Some(sparse) = &accessor.sparse {
            let replaced = sparse.count.0;
            if replaced == 0 || replaced > count {
                return Err(bad(format!("it replaces {replaced} of its {count} elements")));
            }
            let Checked::Valid(json::accessor::IndexComponentType(index_type)) = sparse.indices.component_type else {
                return Err(bad("its sparse indices have no valid type".into()));
            };
            let index_size = component_size(index_type);
            let indices = views
                .get(sparse.indices.buffer_view.value())
                .ok_or_else(|| bad("its sparse indices' buffer view does not exist".into()))?;
            let values = views
                .get(sparse.values.buffer_view.value())
                .ok_or_else(|| bad("its sparse values' buffer view does not exist".into()))?;
            let index_source = Source {
                view: indices,
                buffers,
                offset: sparse.indices.byte_offset.0,
                stride: index_size,
                component: index_type,
                width: 1,
            };
            let value_source = Source {
                view: values,
                buffers,
                offset: sparse.values.byte_offset.0,
                stride: width * size,
                component,
                width,
            };
            for replaced_index in 0..replaced {
                let at = index_source
                    .raw(replaced_index, 0)
                    .map(u64::from)
                    .ok_or_else(|| bad("its sparse indices reach past their buffer view".into()))?;
                if at >= count {
                    return Err(bad(format!("a sparse index {at} is past its {count} elements")));
                }
                let value = value_source
                    .element(replaced_index)
                    .ok_or_else(|| bad("its sparse values reach past their buffer view".into()))?;
                dense.put(at, &value, float);
            }
        }
        Ok(dense)
    }

    /// A stored component as a float: normalised integers scaled as glTF says.
    fn convert(&self, raw: f64) -> f32 {
        if !self.normalized {
            return raw as f32;
        }
        let scaled = match self.component {
            ComponentType::I8 => (raw / 127.0).max(-1.0),
            ComponentType::U8 => raw / 255.0,
            ComponentType::I16 => (raw / 32767.0).max(-1.0),
            ComponentType::U16 => raw / 65535.0,
            ComponentType::U32 | ComponentType::F32 => raw,
        };
        scaled as f32
    }

    /// Writes one element (its components as stored) at `element`.
    fn put(&mut self, element: u64, components: &[f64], float: bool) {
        let out_size = if float { 4 } else { component_size(self.component) as usize };
        let start = element as usize * components.len() * out_size;
        for (slot, raw) in components.iter().enumerate() {
            let at = start + slot * out_size;
            let bytes: Vec<u8> = if float {
                self.convert(*raw).to_le_bytes().to_vec()
            } else {
                match self.component {
                    ComponentType::I8 => (*raw as i8).to_le_bytes().to_vec(),
                    ComponentType::U8 => (*raw as u8).to_le_bytes().to_vec(),
                    ComponentType::I16 => (*raw as i16).to_le_bytes().to_vec(),
                    ComponentType::U16 => (*raw as u16).to_le_bytes().to_vec(),
                    ComponentType::U32 => (*raw as u32).to_le_bytes().to_vec(),
                    ComponentType::F32 => (*raw as f32).to_le_bytes().to_vec(),
                }
            };
            if let Some(slot) = self.bytes.get_mut(at..at + bytes.len()) {
                slot.copy_from_slice(&bytes);
            }
        }
    }
}

/// Where an accessor's (or a sparse part's) elements lie.
struct Source<'a> {
    view: &'a ViewRange,
    buffers: &'a [Rc<[u8]>],
    offset: u64,
    stride: u64,
    component: ComponentType,
    width: u64,
}

impl Source<'_> {
    /// The bits of component `slot` of element `element`, if it lies inside the buffer view.
    fn raw(&self, element: u64, slot: u64) -> Option<u32> {
        let size = component_size(self.component);
        let within = self.offset.checked_add(self.stride.checked_mul(element)?)?.checked_add(slot * size)?;
        if within.checked_add(size)? > self.view.length {
            return None;
        }
        let at = usize::try_from(self.view.start.checked_add(within)?).ok()?;
        let bytes = self.buffers.get(self.view.buffer)?;
        match size {
            1 => bytes.get(at).map(|byte| u32::from(*byte)),
            2 => read_u16_le(bytes, at).map(u32::from),
            _ => read_u32_le(bytes, at),
        }
    }

    /// Every component of element `element` as a number, as stored (not yet normalised).
    fn element(&self, element: u64) -> Option<Vec<f64>> {
        (0..self.width)
            .map(|slot| {
                let bits = self.raw(element, slot)?;
                Some(match self.component {
                    ComponentType::I8 => f64::from(bits as u8 as i8),
                    ComponentType::I16 => f64::from(bits as u16 as i16),
                    ComponentType::U8 | ComponentType::U16 | ComponentType::U32 => f64::from(bits),
                    ComponentType::F32 => f64::from(f32::from_bits(bits)),
                })
            })
            .collect()
    }
}

/// A GLB container: header, JSON chunk padded with spaces, BIN chunk padded with zeros.
pub(super) fn glb(json: &[u8], bin: &[u8]) -> Vec<u8> {
    let json_length = json.len().next_multiple_of(4);
    let bin_length = bin.len().next_multiple_of(4);
    let total = 12 + 8 + json_length + 8 + bin_length;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"glTF");
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.extend_from_slice(&(json_length as u32).to_le_bytes());
    out.extend_from_slice(b"JSON");
    out.extend_from_slice(json);
    out.resize(20 + json_length, b' ');
    out.extend_from_slice(&(bin_length as u32).to_le_bytes());
    out.extend_from_slice(b"BIN\0");
    out.extend_from_slice(bin);
    out.resize(total, 0);
    out
}
