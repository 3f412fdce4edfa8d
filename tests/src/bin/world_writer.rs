//! Writes world changes as fast as it can, printing each change's id once it is acknowledged
//! (stored and synced). The crash test kills it with SIGKILL at random moments and checks that
//! every printed id survived.
//!
//! Usage: `world_writer DATA_DIR`

use std::io::Write;

use glam::Vec3;
use sanctuary_engine::{Object, ObjectKind, Op, Placement, PublicKey, Rgb, Shape, home_parcel};

fn main() {
    let mut replica = sanctuary_tests::replica_from_args("world_writer");
    let seed = [42u8; 32];
    let parcel = home_parcel(&PublicKey::from_secret_seed(&seed));
    let mut next_seq = sanctuary_tests::sequence_clock();
    if replica.world().parcel(parcel).owner().is_none() {
        let _ = replica.author(&seed, next_seq(), Op::Claim { parcel });
    }
    let centre = parcel.bounds().center();
    let mut stdout = std::io::stdout();
    for step in 0u64.. {
        // Replace objects 0..150 over and over, so the parcel stays within its budget.
        let id = step % 150;
        let offset = Vec3::new((id % 12) as f32 - 6.0, 0.0, (id / 12) as f32 - 6.0);
        let object = Object {
            kind: ObjectKind::Primitive(Shape::Cuboid),
            placement: Placement::standing(Vec3::new(centre.x, 0.0, centre.y) + offset, Vec3::splat(0.5)),
            colour: Rgb::new((step % 256) as u8, 100, 200),
        };
        match replica.author(&seed, next_seq(), Op::Put { parcel, epoch: 0, id, object }) {
            Ok(change) => {
                let hex: String = change.id().0.iter().map(|byte| format!("{byte:02x}")).collect();
                let _ = writeln!(stdout, "{hex}");
                let _ = stdout.flush();
            }
            Err(error) => {
                eprintln!("refused: {error}");
                std::process::exit(1);
            }
        }
    }
}
