//! Opens stalls in a data directory's world store, as three sellers would have (each claims
//! their home parcel and lists there), so that the market directory has something to show
//! without a wallet or a chain: for pictures and for trying `/market` by hand. The listings'
//! payment scripts are placeholders nobody holds the key of; nothing listed can really be paid.
//!
//! Usage: `market_stalls DATA_DIR` (with no node running on it)

use glam::Vec3;
use sanctuary_engine::trade::{Listing, PayTo, Title};
use sanctuary_engine::{ModelRef, Op, PublicKey, home_parcel};

/// The sellers' secret seeds and what each offers: title, price in sats.
const STALLS: [(u8, &str, u64); 6] = [
    (71, "Crystal lamp", 12_000),
    (71, "Glass koi", 8_000),
    (72, "Neon bench", 25_000),
    (72, "Moss planter", 15_500),
    (73, "Paper crane", 3_000),
    (73, "Lantern of dunes", 19_000),
];

fn main() {
    let mut replica = sanctuary_tests::replica_from_args("market_stalls");
    let mut next_seq = sanctuary_tests::sequence_clock();
    for (at, (seller, title, price_sats)) in STALLS.into_iter().enumerate() {
        let seed = [seller; 32];
        let parcel = home_parcel(&PublicKey::from_secret_seed(&seed));
        if replica.world().parcel(parcel).owner().is_none() {
            let _ = replica.author(&seed, next_seq(), Op::Claim { parcel });
        }
        let centre = parcel.bounds().center();
        let (Some(title), Some(pay_to)) =
            (Title::new(title), PayTo::new(&[&[0u8, 20][..], &[at as u8 + 1; 20]].concat()))
        else {
            eprintln!("a stall of this tool does not fit the rules");
            std::process::exit(1);
        };
        let hash = *blake3::hash(title.text().unwrap_or_default().as_bytes()).as_bytes();
        let listing = Listing {
            item: ModelRef { hash, bytes: 40_000, triangles: 800, min: [-0.5, 0.0, -0.5], max: [0.5, 1.0, 0.5] },
            title,
            price_sats,
            pay_to,
            confirmations: 1,
            spot: Vec3::new(centre.x + at as f32 - 3.0, 0.0, centre.y),
        };
        match replica.author(&seed, next_seq(), Op::List { parcel, listing }) {
            Ok(_) => {
                println!("{} sells {} for {price_sats} sats", PublicKey::from_secret_seed(&seed).short(), STALLS[at].1)
            }
            Err(error) => {
                eprintln!("refused: {error}");
                std::process::exit(1);
            }
        }
    }
}
