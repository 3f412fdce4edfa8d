//! glTF extensions: which a model may require, and what to tell its maker about the others.
//!
//! A file lists in `extensionsRequired` the extensions a reader must understand to draw it at
//! all; those only in `extensionsUsed` come with a fallback and may be ignored. A required
//! extension Sanctuary does not read is refused before anything decodes, naming it and saying
//! how to make a file without it.

use gltf::json;

use super::{ModelError, shortened};

/// Extensions a model may require: Bevy's loader draws them, or they only describe the avatar
/// (VRM) and change nothing a reader that ignores them would get wrong.
pub const PASSED_THROUGH: &[&str] = &[
    "KHR_lights_punctual",
    "KHR_materials_emissive_strength",
    "KHR_materials_ior",
    "KHR_materials_transmission",
    "KHR_materials_unlit",
    "KHR_materials_volume",
    "KHR_materials_specular",
    "KHR_materials_clearcoat",
    "KHR_materials_sheen",
    "KHR_materials_variants",
    "KHR_texture_transform",
    "VRM",
    "VRMC_vrm",
    "VRMC_springBone",
    "VRMC_materials_mtoon",
    "VRMC_node_constraint",
];

/// How to make a file without `name`.
pub fn unsupported_advice(name: &str) -> &'static str {
    match name {
        "KHR_draco_mesh_compression" => {
            "export it again without Draco compression (in Blender's glTF exporter, untick Compression)"
        }
        "EXT_meshopt_compression" => "export it again without meshopt compression (gltfpack without -c or -cc)",
        "KHR_mesh_quantization" => "export it again with float positions (gltfpack with -noq)",
        "KHR_texture_basisu" | "EXT_texture_webp" | "EXT_texture_avif" | "MSFT_texture_dds" => {
            "use PNG or JPEG textures (for example `npx @gltf-transform/cli png in.glb out.glb`)"
        }
        _ => "export it again without that extension",
    }
}

/// Refuses the first required extension neither in [`PASSED_THROUGH`] nor in `also_allowed`.
pub(super) fn check_required(root: &json::Root, also_allowed: &[&str]) -> Result<(), ModelError> {
    let allowed = |name: &str| PASSED_THROUGH.contains(&name) || also_allowed.contains(&name);
    match root.extensions_required.iter().find(|name| !allowed(name)) {
        Some(name) => Err(ModelError::UnsupportedExtension { name: shortened(name), advice: unsupported_advice(name) }),
        None => Ok(()),
    }
}
