// Writes a copy of a glTF binary whose textures are KTX2 with Basis Universal (ETC1S or UASTC),
// as `gltf-transform etc1s|uastc` would with KTX-Software's toktx, here with BinomialLLC's own
// encoder compiled to WebAssembly (the `ktx2-encoder` npm package). Used by the importer tests
// (tests/tests/exported_models.rs); `cargo xtask setup` installs it beside its packages.
//
//     node ktx2.mjs IN.glb OUT.glb etc1s|uastc

import { NodeIO } from "@gltf-transform/core";
import { ALL_EXTENSIONS } from "@gltf-transform/extensions";
import { ktx2 } from "ktx2-encoder/gltf-transform";
import sharp from "sharp";

const [input, output, mode] = process.argv.slice(2);
if (!input || !output || (mode !== "etc1s" && mode !== "uastc")) {
  console.error("usage: node ktx2.mjs IN.glb OUT.glb etc1s|uastc");
  process.exit(2);
}

const imageDecoder = async (buffer) => {
  const { data, info } = await sharp(buffer).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
};

const io = new NodeIO().registerExtensions(ALL_EXTENSIONS);
const document = await io.read(input);
await document.transform(ktx2({ isUASTC: mode === "uastc", generateMipmap: true, imageDecoder }));
await io.write(output, document);
