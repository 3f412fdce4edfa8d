//! Writes world changes as fast as it can, printing each change's id once it is acknowledged
//! (stored and synced). The crash test kills it with SIGKILL at random moments and checks that
//! every printed id survived.
//!
//! Usage: `world_writer DATA_DIR`

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use glam::Vec3;
use sanctuary_engine::{Object, ObjectKind, Op, Placement, PublicKey, Rgb, Shape, home_parcel};
use sanctuary_net::Replica;

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: world_writer DATA_DIR");
        std::process::exit(2);
    };
    let (mut replica, _) = match Replica::open(std::path::Path::new(&dir)) {
        Ok(opened) => opened,
        Err(error) => {
            eprintln!("cannot open the world store: {error}");
            std::process::exit(1);
        }
    };
    let seed = [42u8; 32];
    let parcel = home_parcel(&PublicKey::from_secret_seed(&seed));
    let clock = || SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_micros() as u64);
    let mut last = clock();
    let mut next_seq = move || {
        last = clock().max(last + 1);
        last
    };
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
