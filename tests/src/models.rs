//! Small glTF models made in code, for tests and for the builder pictures: a cluster of glowing
//! crystals as one `.glb`, and a textured plinth as a `.gltf` with a separate buffer and PNG.

use std::f32::consts::TAU;
use std::path::Path;

/// Flat-shaded triangles: positions, normals and texture coordinates per corner.
#[derive(Debug, Default)]
struct Mesh {
    positions: Vec<[f32; 3]>,
    normals: Vec<[f32; 3]>,
    uvs: Vec<[f32; 2]>,
}

impl Mesh {
    fn triangle(&mut self, corners: [[f32; 3]; 3]) {
        let [a, b, c] = corners.map(glam::Vec3::from);
        let normal = (b - a).cross(c - a).normalize_or_zero().to_array();
        for (corner, uv) in corners.into_iter().zip([[0.0, 1.0], [1.0, 1.0], [0.5, 0.0]]) {
            self.positions.push(corner);
            self.normals.push(normal);
            self.uvs.push(uv);
        }
    }

    /// A six-sided bipyramid standing at `(x, z)`, `height` tall and `radius` wide, leaning.
    fn crystal(&mut self, x: f32, z: f32, radius: f32, height: f32, lean: f32) {
        let top = [x + lean, height, z + lean * 0.5];
        let bottom = [x, 0.0, z];
        let middle = height * 0.3;
        let ring: Vec<[f32; 3]> = (0..6)
            .map(|index| {
                let angle = index as f32 / 6.0 * TAU;
                [x + radius * angle.cos(), middle, z + radius * angle.sin()]
            })
            .collect();
        for index in 0..6 {
            let (here, next) = (ring[index], ring[(index + 1) % 6]);
            self.triangle([here, top, next]);
            self.triangle([here, next, bottom]);
        }
    }

    /// A box from `low` to `high`.
    fn cuboid(&mut self, low: [f32; 3], high: [f32; 3]) {
        let corner = |x: usize, y: usize, z: usize| [[low[0], high[0]][x], [low[1], high[1]][y], [low[2], high[2]][z]];
        // Each face as two triangles, wound counter-clockwise seen from outside.
        let faces = [
            [corner(0, 0, 1), corner(1, 0, 1), corner(1, 1, 1), corner(0, 1, 1)],
            [corner(1, 0, 0), corner(0, 0, 0), corner(0, 1, 0), corner(1, 1, 0)],
            [corner(1, 0, 1), corner(1, 0, 0), corner(1, 1, 0), corner(1, 1, 1)],
            [corner(0, 0, 0), corner(0, 0, 1), corner(0, 1, 1), corner(0, 1, 0)],
            [corner(0, 1, 1), corner(1, 1, 1), corner(1, 1, 0), corner(0, 1, 0)],
            [corner(0, 0, 0), corner(1, 0, 0), corner(1, 0, 1), corner(0, 0, 1)],
        ];
        for [a, b, c, d] in faces {
            self.triangle([a, b, c]);
            self.triangle([a, c, d]);
        }
    }

    fn triangles(&self) -> usize {
        self.positions.len() / 3
    }

    /// The binary buffer (positions, normals, uvs, u16 indices) and the JSON for its views
    /// and accessors.
    fn buffer(&self) -> (Vec<u8>, String) {
        let count = self.positions.len();
        let mut bin = Vec::new();
        for position in &self.positions {
            position.iter().for_each(|value| bin.extend_from_slice(&value.to_le_bytes()));
        }
        for normal in &self.normals {
            normal.iter().for_each(|value| bin.extend_from_slice(&value.to_le_bytes()));
        }
        for uv in &self.uvs {
            uv.iter().for_each(|value| bin.extend_from_slice(&value.to_le_bytes()));
        }
        let index_offset = bin.len();
        for index in 0..count as u16 {
            bin.extend_from_slice(&index.to_le_bytes());
        }
        while !bin.len().is_multiple_of(4) {
            bin.push(0);
        }
        let (mut min, mut max) = ([f32::MAX; 3], [f32::MIN; 3]);
        for position in &self.positions {
            for axis in 0..3 {
                min[axis] = min[axis].min(position[axis]);
                max[axis] = max[axis].max(position[axis]);
            }
        }
        let json = format!(
            r#""bufferViews":[
                {{"buffer":0,"byteOffset":0,"byteLength":{p},"target":34962}},
                {{"buffer":0,"byteOffset":{p},"byteLength":{p},"target":34962}},
                {{"buffer":0,"byteOffset":{uv_at},"byteLength":{uv_len},"target":34962}},
                {{"buffer":0,"byteOffset":{index_offset},"byteLength":{i},"target":34963}}],
            "accessors":[
                {{"bufferView":0,"componentType":5126,"count":{count},"type":"VEC3","min":[{},{},{}],"max":[{},{},{}]}},
                {{"bufferView":1,"componentType":5126,"count":{count},"type":"VEC3"}},
                {{"bufferView":2,"componentType":5126,"count":{count},"type":"VEC2"}},
                {{"bufferView":3,"componentType":5123,"count":{count},"type":"SCALAR"}}]"#,
            min[0],
            min[1],
            min[2],
            max[0],
            max[1],
            max[2],
            p = count * 12,
            uv_at = count * 24,
            uv_len = count * 8,
            i = count * 2,
        );
        (bin, json)
    }
}

/// The document around one mesh: `buffer` is the buffer's JSON object, `material` the
/// material's, `extra` more top-level members (images, textures).
fn document(views_and_accessors: &str, buffer: &str, material: &str, extra: &str) -> String {
    format!(
        r#"{{"asset":{{"version":"2.0","generator":"sanctuary tests"}},"scene":0,"scenes":[{{"nodes":[0]}}],
        "nodes":[{{"mesh":0,"name":"model"}}],
        "meshes":[{{"primitives":[{{"attributes":{{"POSITION":0,"NORMAL":1,"TEXCOORD_0":2}},"indices":3,"material":0}}]}}],
        "materials":[{material}],
        "buffers":[{buffer}],
        {views_and_accessors}{extra}}}"#
    )
}

/// Packs a JSON document and a binary buffer into a `.glb`.
pub fn pack_glb(json: &str, bin: &[u8]) -> Vec<u8> {
    let mut json = json.as_bytes().to_vec();
    while !json.len().is_multiple_of(4) {
        json.push(b' ');
    }
    let total = 12 + 8 + json.len() + 8 + bin.len();
    let mut glb = Vec::with_capacity(total);
    glb.extend_from_slice(b"glTF");
    glb.extend_from_slice(&2u32.to_le_bytes());
    glb.extend_from_slice(&(total as u32).to_le_bytes());
    glb.extend_from_slice(&(json.len() as u32).to_le_bytes());
    glb.extend_from_slice(b"JSON");
    glb.extend_from_slice(&json);
    glb.extend_from_slice(&(bin.len() as u32).to_le_bytes());
    glb.extend_from_slice(b"BIN\0");
    glb.extend_from_slice(bin);
    glb
}

/// A cluster of five glowing cyan crystals, about 3 m across and 4 m tall, as a `.glb`.
/// Returns the file and its triangle count.
pub fn crystal_glb() -> (Vec<u8>, usize) {
    let mut mesh = Mesh::default();
    mesh.crystal(0.0, 0.0, 0.55, 4.0, 0.1);
    mesh.crystal(0.9, 0.4, 0.4, 2.6, 0.35);
    mesh.crystal(-0.8, 0.5, 0.38, 2.2, -0.3);
    mesh.crystal(0.3, -0.9, 0.35, 1.8, 0.2);
    mesh.crystal(-0.5, -0.7, 0.3, 1.4, -0.2);
    let (bin, views) = mesh.buffer();
    let material = r#"{"pbrMetallicRoughness":{"baseColorFactor":[0.2,0.9,1.0,1.0],"metallicFactor":0.2,"roughnessFactor":0.3},"emissiveFactor":[0.0,0.55,0.7]}"#;
    let json = document(&views, &format!(r#"{{"byteLength":{}}}"#, bin.len()), material, "");
    (pack_glb(&json, &bin), mesh.triangles())
}

/// A textured plinth (2 m square, 1 m tall) as a `.gltf` naming `plinth.bin` and
/// `textures/stripes.png`. Returns (gltf text, buffer, png, triangles).
pub fn plinth_gltf() -> (String, Vec<u8>, Vec<u8>, usize) {
    let mut mesh = Mesh::default();
    mesh.cuboid([-1.0, 0.0, -1.0], [1.0, 1.0, 1.0]);
    let (bin, views) = mesh.buffer();
    let material =
        r#"{"pbrMetallicRoughness":{"baseColorTexture":{"index":0},"metallicFactor":0.0,"roughnessFactor":0.8}}"#;
    let extra = r#","images":[{"uri":"textures/stripes.png"}],"textures":[{"source":0}]"#;
    let json = document(&views, &format!(r#"{{"byteLength":{},"uri":"plinth.bin"}}"#, bin.len()), material, extra);
    let mut pixels = image::RgbaImage::new(32, 32);
    for (x, _, pixel) in pixels.enumerate_pixels_mut() {
        *pixel = if (x / 4) % 2 == 0 { image::Rgba([255, 40, 200, 255]) } else { image::Rgba([20, 20, 40, 255]) };
    }
    let mut png = Vec::new();
    image::DynamicImage::ImageRgba8(pixels)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap_or_default();
    (json, bin, png, mesh.triangles())
}

/// Writes the plinth's three files under `dir`; returns the `.gltf` path.
pub fn write_plinth(dir: &Path) -> std::io::Result<std::path::PathBuf> {
    let (json, bin, png, _) = plinth_gltf();
    std::fs::create_dir_all(dir.join("textures"))?;
    std::fs::write(dir.join("plinth.bin"), bin)?;
    std::fs::write(dir.join("textures").join("stripes.png"), png)?;
    let path = dir.join("plinth.gltf");
    std::fs::write(&path, json)?;
    Ok(path)
}
