//! Models as people export them (issue 16): files written by independent tools, glTF
//! Transform's CLI (`gltf-transform`, from npm) and BinomialLLC's Basis Universal encoder
//! (`ktx2-encoder`, from npm, through `tests/tools/ktx2.mjs`), both installed by `cargo xtask
//! test`, are imported. Quantized, sparse, meshopt- and Draco-compressed meshes and WebP and
//! KTX2 textures are made plain and pass, humanoid and all.

use std::path::{Path, PathBuf};
use std::process::Command;

use sanctuary_engine::avatar::avatar_limits;
use sanctuary_engine::inspect_model;
use sanctuary_net::AssetStore;
use sanctuary_tests::models::pack_glb;

/// The tool: where `cargo xtask test` put it, or on the PATH.
fn gltf_transform() -> PathBuf {
    if let Some(path) = std::env::var_os("SANCTUARY_GLTF_TRANSFORM") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths).map(|dir| dir.join("gltf-transform")).find(|path| path.is_file())
        })
        .expect("gltf-transform is needed to make these test models: `cargo xtask setup` installs it")
}

/// Runs `gltf-transform COMMAND input output`.
fn transform(command: &str, input: &Path, output: &Path) {
    let out = Command::new(gltf_transform()).arg(command).arg(input).arg(output).output().expect("gltf-transform runs");
    assert!(out.status.success(), "gltf-transform {command} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `node ktx2.mjs input output MODE` (MODE `etc1s` or `uastc`): the script `cargo xtask
/// test` installed, which writes every texture as KTX2 with BinomialLLC's Basis Universal
/// encoder (glTF Transform's own `etc1s` and `uastc` need KTX-Software's toktx, which Debian
/// does not package).
fn ktx2(input: &Path, output: &Path, mode: &str) {
    let script = std::env::var_os("SANCTUARY_KTX2_TOOL")
        .expect("SANCTUARY_KTX2_TOOL names tests/tools/ktx2.mjs where its packages are: run `cargo xtask test`");
    let out = Command::new("node").arg(script).arg(input).arg(output).arg(mode).output().expect("node runs");
    assert!(out.status.success(), "ktx2.mjs {mode} failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn shipped(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/avatars").join(name)
}

/// A square whose texture coordinates are all zero but one: the tool stores them sparse.
fn mostly_zero_uvs() -> Vec<u8> {
    let mut bin = Vec::new();
    for [x, y] in [[0.0f32, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]] {
        for value in [x, y, 0.0] {
            bin.extend_from_slice(&value.to_le_bytes());
        }
    }
    for [u, v] in [[0.0f32, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]] {
        bin.extend_from_slice(&u.to_le_bytes());
        bin.extend_from_slice(&v.to_le_bytes());
    }
    for index in [0u16, 1, 2, 0, 2, 3] {
        bin.extend_from_slice(&index.to_le_bytes());
    }
    let json = format!(
        r#"{{ "asset": {{ "version": "2.0" }}, "scene": 0, "scenes": [{{ "nodes": [0] }}], "nodes": [{{ "mesh": 0 }}],
        "meshes": [{{ "primitives": [{{ "attributes": {{ "POSITION": 0, "TEXCOORD_0": 1 }}, "indices": 2 }}] }}],
        "accessors": [
            {{ "bufferView": 0, "componentType": 5126, "count": 4, "type": "VEC3", "min": [0, 0, 0], "max": [1, 1, 0] }},
            {{ "bufferView": 1, "componentType": 5126, "count": 4, "type": "VEC2" }},
            {{ "bufferView": 2, "componentType": 5123, "count": 6, "type": "SCALAR" }} ],
        "bufferViews": [ {{ "buffer": 0, "byteLength": 48 }}, {{ "buffer": 0, "byteOffset": 48, "byteLength": 32 }},
            {{ "buffer": 0, "byteOffset": 80, "byteLength": 12 }} ],
        "buffers": [{{ "byteLength": {} }}] }}"#,
        bin.len()
    );
    pack_glb(&json, &bin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_from_an_export_tool_import_or_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = AssetStore::open(&dir.path().join("store")).await.expect("store");
    let aurora = shipped("aurora.glb");

    // Quantized: made plain at import, and still a humanoid (the tool drops the VRM extension,
    // so its bones are found by their names).
    let quantized = dir.path().join("quantized.glb");
    transform("quantize", &aurora, &quantized);
    let error = inspect_model(&std::fs::read(&quantized).expect("written"), &|_| None, &avatar_limits());
    assert!(error.is_err_and(|error| error.to_string().contains("KHR_mesh_quantization")));
    let (avatar, summary) = store.import_avatar(&quantized).await.expect("a quantized avatar imports");
    assert!(summary.humanoid.is_some(), "its skeleton is found");
    let bundle = store.bundle(avatar.hash).await.expect("stored");
    assert_eq!(bundle.main, "quantized.glb");
    assert_eq!(bundle.files.len(), 1, "one plain file");

    // Sparse: made dense.
    let square = dir.path().join("square.glb");
    std::fs::write(&square, mostly_zero_uvs()).expect("writes");
    let sparse = dir.path().join("sparse.glb");
    transform("sparse", &square, &sparse);
    let sparse_bytes = std::fs::read(&sparse).expect("written");
    assert!(sparse_bytes.windows(8).any(|window| window == b"\"sparse\""), "the tool wrote a sparse accessor");
    let (_, summary) = store.import(&sparse).await.expect("a sparse model imports");
    assert_eq!(summary.triangles, 2);

    // Meshopt-compressed (and quantized, as the tool does): decoded at import into one plain
    // file, with every triangle and the skeleton.
    let original = inspect_model(&std::fs::read(&aurora).expect("shipped"), &|_| None, &avatar_limits()).expect("ok");
    let compressed = dir.path().join("meshopt.glb");
    transform("meshopt", &aurora, &compressed);
    let compressed_bytes = std::fs::read(&compressed).expect("written");
    assert!(compressed_bytes.windows(23).any(|window| window == b"EXT_meshopt_compression"), "the tool compressed it");
    let (avatar, summary) = store.import_avatar(&compressed).await.expect("a meshopt avatar imports");
    assert_eq!(summary.triangles, original.triangles, "every triangle decoded");
    assert_eq!(summary.vertices, original.vertices);
    assert!(summary.humanoid.is_some(), "its skeleton is found");
    let bundle = store.bundle(avatar.hash).await.expect("stored");
    assert_eq!(bundle.files.len(), 1, "one plain file");
    let stored = store.read_file(avatar.hash, &bundle.main).await.expect("readable");
    assert!(!stored.windows(23).any(|window| window == b"EXT_meshopt_compression"), "stored plain");
    assert!(stored.len() > compressed_bytes.len(), "stored decoded, not as it came");

    // WebP textures: each texture names its WebP image as its own, which every peer's loader
    // reads; the extension goes.
    let webp = dir.path().join("webp.glb");
    transform("webp", &aurora, &webp);
    let webp_bytes = std::fs::read(&webp).expect("written");
    assert!(webp_bytes.windows(16).any(|window| window == b"EXT_texture_webp"), "the tool used WebP");
    let (avatar, summary) = store.import_avatar(&webp).await.expect("a WebP avatar imports");
    assert_eq!(summary.textures, original.textures, "every texture's size read from its WebP header");
    assert_eq!(summary.triangles, original.triangles);
    let bundle = store.bundle(avatar.hash).await.expect("stored");
    let stored = store.read_file(avatar.hash, &bundle.main).await.expect("readable");
    assert!(!stored.windows(16).any(|window| window == b"EXT_texture_webp"), "stored plain");
    assert!(stored.windows(10).any(|window| window == b"image/webp"), "its images are WebP");

    // Draco-compressed geometry (positions, normals, texture coordinates, joints and weights,
    // as the tool writes them): decoded at import, every triangle and the skeleton kept.
    let draco = dir.path().join("draco.glb");
    transform("draco", &aurora, &draco);
    let draco_bytes = std::fs::read(&draco).expect("written");
    assert!(draco_bytes.windows(26).any(|window| window == b"KHR_draco_mesh_compression"), "the tool used Draco");
    let error = inspect_model(&draco_bytes, &|_| None, &avatar_limits()).expect_err("not plain");
    assert!(error.to_string().contains("KHR_draco_mesh_compression"), "{error}");
    let (avatar, summary) = store.import_avatar(&draco).await.expect("a Draco avatar imports");
    assert_eq!(summary.triangles, original.triangles, "every triangle decoded");
    assert!(summary.humanoid.is_some(), "its skeleton is found");
    let bundle = store.bundle(avatar.hash).await.expect("stored");
    let stored = store.read_file(avatar.hash, &bundle.main).await.expect("readable");
    assert!(!stored.windows(26).any(|window| window == b"KHR_draco_mesh_compression"), "stored plain");
    let plain = inspect_model(&stored, &|_| None, &avatar_limits()).expect("what is stored reads as plain");
    assert_eq!(plain.triangles, original.triangles);

    // KTX2 textures with Basis Universal, in both of its codecs: transcoded at import and
    // stored as PNGs of the same size, the same way up and much the same colours (both codecs
    // lose a little; a wrong channel order or a flip loses far more).
    let painted = dir.path().join("painted.glb");
    std::fs::write(&painted, textured_square()).expect("writes");
    let original_pixels = first_image_pixels(&std::fs::read(&painted).expect("written"));
    for mode in ["etc1s", "uastc"] {
        let path = dir.path().join(format!("{mode}.glb"));
        ktx2(&painted, &path, mode);
        let bytes = std::fs::read(&path).expect("written");
        assert!(bytes.windows(18).any(|window| window == b"KHR_texture_basisu"), "{mode}: the tool used KTX2");
        let error = inspect_model(&bytes, &|_| None, &avatar_limits()).expect_err("not plain");
        assert!(error.to_string().contains("KHR_texture_basisu"), "{mode}: {error}");
        let (model, summary) = store.import(&path).await.expect("a model with KTX2 textures imports");
        assert_eq!(summary.textures, vec![(TEXTURE_WIDTH, TEXTURE_HEIGHT)], "{mode}: its texture, at its size");
        let bundle = store.bundle(model.hash).await.expect("stored");
        let stored = store.read_file(model.hash, &bundle.main).await.expect("readable");
        assert!(!stored.windows(18).any(|window| window == b"KHR_texture_basisu"), "{mode}: stored plain");
        let pixels = first_image_pixels(&stored);
        assert_eq!(pixels.len(), original_pixels.len());
        let total: u64 = pixels.iter().zip(&original_pixels).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
        let mean = total as f64 / pixels.len() as f64;
        assert!(mean < 6.0, "{mode}: colours differ by {mean:.1} of 255 on average");
    }
}

const TEXTURE_WIDTH: u32 = 64;
const TEXTURE_HEIGHT: u32 = 48;

/// A square with a PNG texture that shades red from left to right and green from top to
/// bottom, in the BIN chunk.
fn textured_square() -> Vec<u8> {
    let picture = image::RgbaImage::from_fn(TEXTURE_WIDTH, TEXTURE_HEIGHT, |x, y| {
        image::Rgba([(x * 255 / TEXTURE_WIDTH) as u8, (y * 255 / TEXTURE_HEIGHT) as u8, 96, 255])
    });
    let mut png = Vec::new();
    picture.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).expect("encodes");
    let mut bin = Vec::new();
    for [x, y] in [[0.0f32, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]] {
        for value in [x, y, 0.0] {
            bin.extend_from_slice(&value.to_le_bytes());
        }
    }
    for [u, v] in [[0.0f32, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]] {
        bin.extend_from_slice(&u.to_le_bytes());
        bin.extend_from_slice(&v.to_le_bytes());
    }
    for index in [0u16, 1, 2, 0, 2, 3] {
        bin.extend_from_slice(&index.to_le_bytes());
    }
    bin.extend_from_slice(&[0, 0]);
    let image_at = bin.len();
    bin.extend_from_slice(&png);
    bin.resize(bin.len().next_multiple_of(4), 0);
    let json = format!(
        r#"{{ "asset": {{ "version": "2.0" }}, "scene": 0, "scenes": [{{ "nodes": [0] }}], "nodes": [{{ "mesh": 0 }}],
        "meshes": [{{ "primitives": [{{ "attributes": {{ "POSITION": 0, "TEXCOORD_0": 1 }}, "indices": 2, "material": 0 }}] }}],
        "materials": [{{ "pbrMetallicRoughness": {{ "baseColorTexture": {{ "index": 0 }} }} }}],
        "textures": [{{ "source": 0 }}],
        "images": [{{ "bufferView": 3, "mimeType": "image/png" }}],
        "accessors": [
            {{ "bufferView": 0, "componentType": 5126, "count": 4, "type": "VEC3", "min": [0, 0, 0], "max": [1, 1, 0] }},
            {{ "bufferView": 1, "componentType": 5126, "count": 4, "type": "VEC2" }},
            {{ "bufferView": 2, "componentType": 5123, "count": 6, "type": "SCALAR" }} ],
        "bufferViews": [ {{ "buffer": 0, "byteLength": 48 }}, {{ "buffer": 0, "byteOffset": 48, "byteLength": 32 }},
            {{ "buffer": 0, "byteOffset": 80, "byteLength": 12 }},
            {{ "buffer": 0, "byteOffset": {image_at}, "byteLength": {} }} ],
        "buffers": [{{ "byteLength": {} }}] }}"#,
        png.len(),
        bin.len()
    );
    pack_glb(&json, &bin)
}

/// The RGBA pixels of the first image of a `.glb` whose images lie in its BIN chunk.
fn first_image_pixels(glb: &[u8]) -> Vec<u8> {
    let gltf = gltf::Gltf::from_slice_without_validation(glb).expect("parses");
    let blob = gltf.blob.as_deref().expect("a BIN chunk");
    let image = gltf.document.images().next().expect("an image");
    let gltf::image::Source::View { view, .. } = image.source() else { panic!("the image is in the BIN chunk") };
    let bytes = &blob[view.offset()..view.offset() + view.length()];
    image::load_from_memory(bytes).expect("a PNG").to_rgba8().into_raw()
}
