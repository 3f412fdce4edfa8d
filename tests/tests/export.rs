//! Export and import: a person's whole Sanctuary taken out of one data directory and put into
//! a fresh one gives back the same person; damaged and hostile archives are refused.

use std::path::Path;
use std::time::Duration;

use glam::Vec3;
use sanctuary_engine::{ModelRef, Object, ObjectKind, Op, Placement, RegionId, Rgb, home_parcel};
use sanctuary_net::export::{ExportError, ROOT, export_with, import};
use sanctuary_net::sealed::Stretch;
use sanctuary_net::{Command, NodeConfig, SharedReplica};
use sanctuary_tests::models::crystal_glb;
use sanctuary_tests::peers::{Peer, offline_config, wait_until};
use sanctuary_wallet::{Account, Seed, WalletNetwork};

/// Cheap stretching: the real one costs a fraction of a second each time, and tests do it often.
const QUICK: Stretch = Stretch { memory_kib: 64, passes: 1, lanes: 1 };

fn in_city(mut config: NodeConfig) -> NodeConfig {
    config.regions = vec![RegionId::City];
    config
}

/// The next address the wallet in `data_dir` gives.
fn next_address(data_dir: &Path) -> String {
    let mut account =
        Account::unlock(&data_dir.join("wallet").join("regtest"), "unlock", WalletNetwork::Regtest).expect("unlocks");
    account.fresh_address().expect("an address").0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_person_comes_back_whole_on_another_machine() {
    let (ada_dir, bo_dir, moved, files) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let mut ada = Peer::start(in_city(offline_config(ada_dir.path(), "Ada", None))).await;
    let mut bo = Peer::start(in_city(offline_config(bo_dir.path(), "Bo", Some(&ada.ticket)))).await;
    let (ada_id, bo_id) = (ada.id, bo.id);
    bo.take_messages_from_strangers();
    ada.take_messages_from_strangers();

    // Ada builds with a model of her own, chats and writes to Bo, who answers.
    let glb = files.path().join("crystals.glb");
    std::fs::write(&glb, crystal_glb().0).expect("writes");
    ada.handle.send(Command::Import(glb));
    wait_until(&mut [&mut ada], Duration::from_secs(10), "imported", |peer| !peer.imported.is_empty()).await;
    let model: ModelRef = ada.imported[0];
    let home = home_parcel(&ada_id);
    let centre = home.bounds().center();
    ada.handle.send(Command::Build(Op::Claim { parcel: home }));
    let object = Object {
        kind: ObjectKind::Model(model),
        placement: Placement::standing(Vec3::new(centre.x, 0.0, centre.y), Vec3::ONE),
        colour: Rgb::new(255, 255, 255),
    };
    ada.handle.send(Command::Build(Op::Put { parcel: home, epoch: 0, id: 1, object }));
    ada.handle.send(Command::Chat("said before the move".into()));
    ada.handle.send(Command::Direct { to: bo_id, text: "see you on the new machine".into() });
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(15), "built, said and written", |peer| {
        if peer.id == ada_id {
            peer.world.parcel(home).objects.len() == 1
                && peer.chat.iter().any(|line| line.text == "said before the move")
        } else {
            peer.direct.iter().any(|line| line.text == "see you on the new machine")
        }
    })
    .await;
    bo.handle.send(Command::Direct { to: ada_id, text: "welcome back".into() });
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(15), "Bo's answer", |peer| {
        peer.id == bo_id || peer.direct.iter().any(|line| line.text == "welcome back")
    })
    .await;
    let hash = ada.world.state_hash();
    let direct_before = ada.direct.clone();
    ada.handle.shutdown().await;

    // A wallet beside it, with two addresses given out.
    let wallet = Account::create(
        &ada_dir.path().join("wallet").join("regtest"),
        &Seed::generate("").expect("a seed"),
        "unlock",
        WalletNetwork::Regtest,
    );
    let mut wallet = wallet.expect("a wallet");
    wallet.fresh_address().expect("an address");
    wallet.fresh_address().expect("an address");
    drop(wallet);
    // The Lightning node's channel state (an SQLite file), which the phrase cannot restore.
    let lightning = ada_dir.path().join("wallet").join("regtest").join("lightning");
    std::fs::create_dir_all(&lightning).expect("a folder");
    let channels = [b"SQLite format 3\0".as_slice(), &[7; 4080]].concat();
    std::fs::write(lightning.join("ldk_node_data.sqlite"), &channels).expect("written");

    // Export; a second export to the same name is refused.
    let archive = files.path().join("ada.tar");
    let report = export_with(ada_dir.path(), &archive, "moving day", QUICK).await.expect("exports");
    assert_eq!(report.key, ada_id);
    assert!(report.own_changes >= 2 && report.blobs >= 2 && report.models_missing == 0, "{report:?}");
    assert!(matches!(export_with(ada_dir.path(), &archive, "x", QUICK).await, Err(ExportError::Exists(_))));
    // The identity is not in the archive in the clear.
    let bytes = std::fs::read(&archive).expect("reads");
    let secret = std::fs::read(ada_dir.path().join("identity.key")).expect("the key");
    assert!(!bytes.windows(32).any(|window| window == secret.as_slice()), "the key is sealed");

    // A wrong passphrase, a non-empty directory: refused, nothing written.
    let new_home = moved.path().join("sanctuary");
    assert!(matches!(import(&archive, &new_home, "not it").await, Err(ExportError::WrongPassphrase)));
    assert!(!new_home.exists(), "nothing left of a refused import");
    assert!(matches!(import(&archive, bo_dir.path(), "moving day").await, Err(ExportError::NotEmpty(_))));

    // Import on "another machine": the same person.
    let imported = import(&archive, &new_home, "moving day").await.expect("imports");
    assert_eq!((imported.key, imported.own_changes, imported.blobs), (ada_id, report.own_changes, report.blobs));
    let (replica, _) = SharedReplica::open(&new_home).expect("the world log");
    assert_eq!(replica.state_hash(), hash, "the same world");
    drop(replica);
    assert_eq!(next_address(&new_home), next_address(ada_dir.path()), "the same wallet, at the same address");
    let carried = std::fs::read(new_home.join("wallet/regtest/lightning/ldk_node_data.sqlite")).expect("carried");
    assert_eq!(carried, channels, "the Lightning channel state comes along");
    let mut again = Peer::start(in_city(offline_config(&new_home, "Ada", Some(&bo.ticket)))).await;
    assert_eq!(again.id, ada_id, "the same key and node id");
    wait_until(&mut [&mut again], Duration::from_secs(10), "history back", |peer| {
        peer.history.iter().any(|line| line.text == "said before the move")
            && peer.direct_history.len() >= direct_before.len()
    })
    .await;
    let texts = |lines: &[sanctuary_net::DirectLine]| lines.iter().map(|line| line.text.clone()).collect::<Vec<_>>();
    assert_eq!(texts(&again.direct_history), texts(&direct_before), "the same private messages");
    // Her model is in her new store: the node serves it without fetching.
    again.handle.send(Command::Fetch { model, hint: None });
    wait_until(&mut [&mut again], Duration::from_secs(10), "the model is here", |peer| {
        peer.ready.contains(&model.hash)
    })
    .await;
    again.handle.shutdown().await;
    bo.handle.shutdown().await;
}

/// Rewrites the archive at `from` into `to`, each entry passed through `change` (name, bytes)
/// -> what to write instead (`None` leaves it out).
fn rewrite(from: &Path, to: &Path, mut change: impl FnMut(&str, Vec<u8>) -> Option<(String, Vec<u8>)>) {
    let mut reader = tar::Archive::new(std::fs::File::open(from).expect("opens"));
    let mut builder = tar::Builder::new(std::fs::File::create(to).expect("creates"));
    for entry in reader.entries().expect("entries") {
        let mut entry = entry.expect("an entry");
        let name = entry.path().expect("a path").to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).expect("reads");
        if let Some((name, bytes)) = change(&name, bytes) {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o600);
            header.set_entry_type(tar::EntryType::Regular);
            // The name as it is, even one `tar` itself would refuse to write (`..`).
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_cksum();
            builder.append(&header, bytes.as_slice()).expect("writes");
        }
    }
    builder.finish().expect("finishes");
}

/// Changes a byte of the signature of the last change in a world log's bytes, and recomputes
/// that record's checksum (the first 8 bytes of its BLAKE3) so that the log still reads.
fn forge_last_signature(log: &mut [u8]) {
    let (mut at, mut last) = (0, None);
    while at + 4 <= log.len() {
        let len = u32::from_le_bytes(log[at..at + 4].try_into().expect("a length")) as usize;
        last = Some((at + 4, len));
        at += 4 + len + 8;
    }
    let (start, len) = last.expect("a change");
    log[start + len - 10] ^= 1;
    let checksum = blake3::hash(&log[start..start + len]);
    log[start + len..start + len + 8].copy_from_slice(&checksum.as_bytes()[..8]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_and_hostile_archives_are_refused() {
    let (dir, files) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let mut ada = Peer::start(in_city(offline_config(dir.path(), "Ada", None))).await;
    let home = home_parcel(&ada.id);
    ada.handle.send(Command::Build(Op::Claim { parcel: home }));
    ada.handle.send(Command::Chat("hello".into()));
    wait_until(&mut [&mut ada], Duration::from_secs(10), "claimed", |peer| peer.built.len() == 1).await;
    ada.handle.shutdown().await;
    let archive = files.path().join("ada.tar");
    export_with(dir.path(), &archive, "pass", QUICK).await.expect("exports");
    let log = format!("{ROOT}/world/changes.log");

    let cases: Vec<(&str, Box<dyn FnMut(&str, Vec<u8>) -> Option<(String, Vec<u8>)>>, &str)> = vec![
        (
            "a byte changed",
            Box::new(|name: &str, mut bytes: Vec<u8>| {
                if name.ends_with("profile.bin") {
                    bytes[0] ^= 1;
                }
                Some((name.into(), bytes))
            }),
            "not what the MANIFEST says",
        ),
        (
            "cut short",
            Box::new(|name: &str, bytes| (!name.ends_with("MANIFEST")).then(|| (name.into(), bytes))),
            "no MANIFEST",
        ),
        (
            "a path outside",
            Box::new(|name: &str, bytes| {
                Some((if name.ends_with("profile.bin") { "../../etc/profile.bin".into() } else { name.into() }, bytes))
            }),
            "outside",
        ),
        (
            "a file it never holds",
            Box::new(|name: &str, bytes| {
                Some((if name.ends_with("profile.bin") { format!("{ROOT}/.bashrc") } else { name.into() }, bytes))
            }),
            "not something an export holds",
        ),
        (
            "a file missing",
            Box::new(|name: &str, bytes| (!name.ends_with("profile.bin")).then(|| (name.into(), bytes))),
            "missing",
        ),
        // A forged change (a byte of the last one's signature changed, its record's checksum and
        // the manifest line made to match): the signature check refuses it.
        (
            "a forged world change",
            Box::new({
                let log = log.clone();
                let mut forged = String::new();
                move |name: &str, mut bytes: Vec<u8>| {
                    if name == log {
                        forge_last_signature(&mut bytes);
                        forged = format!("{} {}", blake3::hash(&bytes).to_hex(), bytes.len());
                    }
                    if name.ends_with("MANIFEST") {
                        let text = String::from_utf8(bytes).expect("text");
                        let text: String = text
                            .lines()
                            .map(|line| {
                                if line.ends_with(" world/changes.log") {
                                    format!("file {forged} world/changes.log\n")
                                } else {
                                    format!("{line}\n")
                                }
                            })
                            .collect();
                        return Some((name.into(), text.into_bytes()));
                    }
                    Some((name.into(), bytes))
                }
            }),
            "not signed by its author",
        ),
    ];
    for (what, change, said) in cases {
        let bad = files.path().join(format!("{}.tar", what.replace(' ', "-")));
        rewrite(&archive, &bad, change);
        let target = files.path().join(format!("into-{}", what.replace(' ', "-")));
        let outcome = import(&bad, &target, "pass").await;
        let text = outcome.as_ref().map_err(ToString::to_string).err().unwrap_or_default();
        assert!(text.contains(said), "{what}: {outcome:?}");
        assert!(!target.exists(), "{what}: nothing written");
    }
    // Not an archive at all.
    let garbage = files.path().join("garbage.tar");
    std::fs::write(&garbage, vec![0x5a; 5000]).expect("writes");
    assert!(import(&garbage, &files.path().join("into-garbage"), "pass").await.is_err());
}
