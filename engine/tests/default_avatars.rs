//! The avatars shipped in `assets/avatars/` (made by `cargo xtask avatars`) are each a humanoid
//! VRM 1.0 model within the avatar budget, ranked Excellent, and no two look the same.

use std::path::PathBuf;

use sanctuary_engine::avatar::{Rank, avatar_limits, rank};
use sanctuary_engine::{HumanBone, RigSource, inspect_model};

fn avatars() -> Vec<(String, Vec<u8>)> {
    // The crate's folder as this run knows it (a test built in another checkout of the same
    // sources is reused by Cargo, with that checkout's folder compiled in).
    let crate_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let dir = crate_dir.join("../assets/avatars");
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("assets/avatars exists")
        .flatten()
        .filter(|entry| entry.path().extension().is_some_and(|extension| extension == "glb"))
        .map(|entry| (entry.file_name().to_string_lossy().into_owned(), std::fs::read(entry.path()).expect("readable")))
        .collect();
    found.sort();
    found
}

#[test]
fn every_default_avatar_is_a_humanoid_ranked_excellent() {
    let avatars = avatars();
    assert!(avatars.len() >= 8, "{} avatars", avatars.len());
    for (name, bytes) in &avatars {
        let summary =
            inspect_model(bytes, &|_| None, &avatar_limits()).unwrap_or_else(|error| panic!("{name}: {error}"));
        let humanoid = summary.humanoid.clone().unwrap_or_else(|| panic!("{name} has no humanoid"));
        assert_eq!(humanoid.source, RigSource::Vrm1, "{name}");
        for bone in HumanBone::REQUIRED {
            assert!(humanoid.node(bone).is_some(), "{name} lacks {bone:?}");
        }
        assert_eq!(rank(&summary).map(|ranking| ranking.rank), Ok(Rank::Excellent), "{name}");
        let (low, high) = summary.bounds.expect("bounds");
        let height = high[1] - low[1];
        assert!((1.4..2.1).contains(&height), "{name} is {height} m tall");
    }
    // Different files: no two avatars are the same bytes.
    for (index, (name, bytes)) in avatars.iter().enumerate() {
        for (other, other_bytes) in &avatars[index + 1..] {
            assert_ne!(bytes, other_bytes, "{name} and {other} are the same");
        }
    }
}
