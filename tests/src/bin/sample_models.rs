//! Writes two sample models to try building with: `crystals.glb` (one file) and `plinth.gltf`
//! with `plinth.bin` and `textures/stripes.png` beside it.
//!
//! Usage: `sample_models DIR`, then `/import DIR/crystals.glb` in Sanctuary's chat box.

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: sample_models DIR");
        std::process::exit(2);
    };
    let dir = std::path::Path::new(&dir);
    let (glb, triangles) = sanctuary_tests::models::crystal_glb();
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(dir.join("crystals.glb"), glb))
        .and_then(|()| sanctuary_tests::models::write_plinth(dir));
    match written {
        Ok(plinth) => {
            println!("{} ({triangles} triangles)", dir.join("crystals.glb").display());
            println!("{}", plinth.display());
        }
        Err(error) => {
            eprintln!("cannot write the models: {error}");
            std::process::exit(1);
        }
    }
}
