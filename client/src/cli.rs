//! The command line: `sanctuary --help` tells all.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sanctuary_engine::{LOBBY_DRIFTERS, RegionId};
use sanctuary_net::{NodeConfig, RelayChoice, Ticket};
use sanctuary_wallet::lightning::LspLink;
use sanctuary_wallet::{LightningSettings, MainnetConsent, ServiceConfig, WalletNetwork};

/// Sanctuary: a peer-to-peer virtual world. Starts the desktop client in the lobby.
#[derive(Debug, Clone, Parser)]
#[command(name = "sanctuary", version, about, long_about = None)]
pub struct Args {
    /// Where to start: lobby, city, marketplace, cinema, lecture-hall, meeting or private.
    #[arg(long, default_value = "lobby", value_parser = parse_region)]
    pub region: RegionId,

    /// Window width in pixels.
    #[arg(long, default_value_t = 1280, value_parser = clap::value_parser!(u32).range(320..=16384))]
    pub width: u32,

    /// Window height in pixels.
    #[arg(long, default_value_t = 720, value_parser = clap::value_parser!(u32).range(240..=16384))]
    pub height: u32,

    /// Render `--frames` frames, save a picture of the window to this PNG file and exit.
    #[arg(long, value_name = "PATH")]
    pub screenshot: Option<PathBuf>,

    /// How many frames to render before taking the `--screenshot`.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub frames: u32,

    /// With `--screenshot`: start counting `--frames` only once this many other people's
    /// avatars are drawn from their models (giving up after 4,000 frames), for tests and
    /// pictures of people wearing avatars.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub after_avatars: usize,

    /// How many placeholder avatars float through the lobby.
    #[arg(long, default_value_t = LOBBY_DRIFTERS, value_parser = parse_drifters)]
    pub avatars: usize,

    /// Arrive at this point of the region (metres, "x,y,z") instead of its arrival point; kept
    /// inside the region's bounds.
    #[arg(long, value_name = "X,Y,Z", value_parser = parse_point)]
    pub at: Option<[f32; 3]>,

    /// Turn by this many degrees on arrival (180 faces the other way); with `--at`, or alone.
    #[arg(long, value_name = "DEGREES", allow_hyphen_values = true, value_parser = parse_degrees)]
    pub facing: Option<f32>,

    /// Never look for a VR headset; always use the window.
    #[arg(long)]
    pub flat: bool,

    /// Open the shields panel (F6) at the start.
    #[arg(long)]
    pub shields_panel: bool,

    /// Open the avatar picker (F7) at the start.
    #[arg(long)]
    pub avatar_panel: bool,

    /// Open the cinema's panel (F8) at the start.
    #[arg(long)]
    pub cinema_panel: bool,

    /// Open the lecture hall's panel (F9) at the start.
    #[arg(long)]
    pub stage_panel: bool,

    /// Type this line into the chat once the network is up (commands such as `/trust` too);
    /// repeat for several, typed in order: for scripts and demonstrations. `/wait SECONDS`
    /// pauses before the next line.
    #[arg(long = "chat", value_name = "LINE")]
    pub chat: Vec<String>,

    /// Start OpenXR even when no headset was found at start (a runtime that connects the
    /// headset later, as WiVRn does); should OpenXR not start, the window is used.
    #[arg(long, conflicts_with = "flat")]
    pub force_xr: bool,

    /// Show the VR view in the window without a headset: the head stands still, the mouse aims
    /// the right hand's laser, left click is the trigger and right click the grip.
    #[arg(long)]
    pub vr_preview: bool,

    /// VR comfort.
    #[command(flatten)]
    pub comfort: ComfortArgs,

    /// How to reach other people.
    #[command(flatten)]
    pub network: NetworkArgs,

    /// The Bitcoin wallet.
    #[command(flatten)]
    pub wallet: WalletArgs,

    /// Voice.
    #[command(flatten)]
    pub voice: VoiceArgs,

    /// Run something else than the desktop client.
    #[command(subcommand)]
    pub mode: Option<Mode>,
}

/// Other ways to run.
#[derive(Debug, Clone, Subcommand)]
pub enum Mode {
    /// A home node: the same network node with no window and no GPU. It stays in the regions
    /// it is given, relays their gossip, prints its ticket and stops cleanly on Ctrl-C.
    Node(Box<NodeArgs>),
    /// Run AI agents headless: a greeter for newcomers and a crowd that strolls, gathers at the
    /// portals, sits in the cinema and browses stalls. Each is a peer of its own, labelled as an
    /// AI agent run by you (this data directory's key) on every client. Stops on Ctrl-C.
    Agent(AgentArgs),
    /// Write everything that is yours into one archive (a tar file) to take to another machine:
    /// identity (sealed under a passphrase), profile, chats, private messages, world changes,
    /// models and avatar, trust and blocks, the wallet's files. The node must not be running.
    Export(ArchiveArgs),
    /// Put an archive written by `sanctuary export` into an empty data directory (on this or
    /// another machine): the same person comes back, with the same key, parcel, history and
    /// wallet. Nothing already there is ever overwritten.
    Import(ArchiveArgs),
    /// Print your contribution record: the receipts others signed for what you served them
    /// (models, avatars, world changes), each with its signature, as CSV or JSON.
    Receipts {
        /// The data directory (default: the usual one, as for the client).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// JSON (the sum and every receipt) instead of CSV.
        #[arg(long)]
        json: bool,
    },
    /// Draw every page of a PDF as a PNG picture (`page-001.png` and on) into a folder: what
    /// `/slides TALK.pdf` runs, in a child process that limits its own memory and CPU time.
    RenderPdf {
        /// The PDF.
        pdf: PathBuf,
        /// The folder for the pictures (made if missing; its old `page-NNN.png` are replaced).
        out: PathBuf,
        /// The renderer's memory (address space), in MiB; at most 2048.
        #[arg(long, value_name = "MIB", default_value_t = 2048)]
        memory_mib: u64,
    },
}

/// `sanctuary export` and `sanctuary import`.
#[derive(Debug, Clone, clap::Args)]
pub struct ArchiveArgs {
    /// The archive (a tar file).
    pub file: PathBuf,
    /// The data directory (default: the usual one, as for the client).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Read the archive's passphrase from the first line of this file instead of asking for
    /// it (for scripts; `SANCTUARY_PASSPHRASE` works too).
    #[arg(long, value_name = "PATH")]
    pub passphrase_file: Option<PathBuf>,
}

/// `sanctuary node`.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// A region to stay in; repeat for several. Default: the lobby and the city.
    #[arg(long = "region", value_parser = parse_region)]
    pub regions: Vec<RegionId>,

    /// Keep models up to this many MiB in all, for the owner and the friends below, so that
    /// they stay reachable while their builders are away (0 keeps none).
    #[arg(long, value_name = "MIB", default_value_t = 2048)]
    pub model_quota_mib: u64,

    /// Whose home node this is: their key (64 hex digits; `/home` in the client shows it).
    /// Everything on their parcels is kept.
    #[arg(long, value_name = "KEY", value_parser = parse_key)]
    pub owner: Option<sanctuary_engine::PublicKey>,

    /// How many MiB each friend of the owner may have kept here, once they ask (`/home KEY` in
    /// their client, naming this node).
    #[arg(long, value_name = "MIB", default_value_t = 512)]
    pub friend_quota_mib: u64,

    /// Keep for this person too, friend or not, up to MIB once they ask; repeat for several.
    #[arg(long = "pin", value_name = "KEY=MIB", value_parser = parse_pin)]
    pub pins: Vec<(sanctuary_engine::PublicKey, u64)>,

    /// Keep every model the world places (a community node), within --model-quota-mib.
    #[arg(long)]
    pub keep_all: bool,

    /// Sell hosting for this many sats per GiB and month, paid over Lightning: people ask with
    /// `/home NODE-KEY MIB MONTHS` and are kept for as with --pin while what they paid for runs.
    /// Needs the node's wallet (--wallet-passphrase-file).
    #[arg(long, value_name = "SATS")]
    pub sell_hosting: Option<u64>,

    /// The file holding the passphrase that unlocks the node's wallet (made on first start,
    /// its recovery words written once beside it, in recovery-words.txt, to copy away).
    #[arg(long, value_name = "PATH")]
    pub wallet_passphrase_file: Option<PathBuf>,

    /// The node's Bitcoin wallet and Lightning node (for --sell-hosting).
    #[command(flatten)]
    pub wallet: WalletArgs,

    /// Serve the status page (and /status.json) on this port of 127.0.0.1; 0 turns it off.
    #[arg(long, value_name = "PORT", default_value_t = sanctuary_net::status_page::DEFAULT_STATUS_PORT)]
    pub status_port: u16,

    /// How to reach other peers.
    #[command(flatten)]
    pub network: NetworkArgs,
}

/// `sanctuary agent`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// The behaviour script (RON; `agents/lobby.ron` in the sources is the built-in one, with
    /// its format explained): who the agents are and what they do.
    #[arg(long, value_name = "PATH")]
    pub script: Option<PathBuf>,

    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    pub seconds: Option<u64>,

    /// How to reach other peers (the data directory's key is the operator's).
    #[command(flatten)]
    pub network: NetworkArgs,
}

/// Voice options.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct VoiceArgs {
    /// Use this 48 kHz WAV file as the microphone, played over and over (instead of the sound
    /// card's input).
    #[arg(long, value_name = "PATH")]
    pub voice_input: Option<PathBuf>,

    /// Write what the speakers would play into this WAV file (instead of the sound card).
    #[arg(long, value_name = "PATH")]
    pub voice_output: Option<PathBuf>,

    /// The microphone to use, by name or by its number in `/mic`'s list (the system's default
    /// otherwise).
    #[arg(long, value_name = "NAME")]
    pub mic: Option<String>,

    /// The speakers or headphones to use, by name or number (the system's default otherwise).
    #[arg(long, value_name = "NAME")]
    pub speaker: Option<String>,

    /// Start with the open microphone (sends whenever you speak) instead of push-to-talk (`V`).
    #[arg(long)]
    pub open_mic: bool,

    /// Start with the microphone muted (`F4` unmutes); the others see "[muted]".
    #[arg(long)]
    pub muted: bool,

    /// No voice at all: open neither microphone nor speakers.
    #[arg(long)]
    pub no_voice: bool,
}

impl VoiceArgs {
    /// The voice options, or `None` for no voice.
    pub fn options(&self) -> Option<crate::voice::VoiceOptions> {
        (!self.no_voice).then(|| crate::voice::VoiceOptions {
            input: self.voice_input.clone(),
            output: self.voice_output.clone(),
            microphone: self.mic.clone(),
            speaker: self.speaker.clone(),
            open_mic: self.open_mic,
            muted: self.muted,
        })
    }
}

/// Network options, shared by the client and the home node.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NetworkArgs {
    /// Offline mode: no relays and no lookups over the internet; peers on this machine and the
    /// local network only (found by mDNS, or by ticket).
    #[arg(long)]
    pub offline: bool,

    /// Do not look for peers on the local network (mDNS).
    #[arg(long)]
    pub no_lan: bool,

    /// Meet the peer of this ticket (the text another peer shows); repeat for several.
    #[arg(long = "join", value_name = "TICKET", value_parser = parse_ticket)]
    pub join: Vec<Ticket>,

    /// The name above your head (at most 32 characters). Remembered for next time.
    #[arg(long, value_parser = parse_name)]
    pub name: Option<String>,

    /// Where your identity key, chat history and messages are kept. Default: the platform's
    /// data directory (on Linux ~/.local/share/sanctuary).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// No network at all: single player.
    #[arg(long, conflicts_with_all = ["offline", "join"])]
    pub no_network: bool,

    /// The most MiB a second this peer uploads to everyone together: films it shares or holds,
    /// models and avatars.
    #[arg(long, value_name = "MIB", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub upload_mib_s: u64,
}

impl NetworkArgs {
    /// The node's configuration for `regions`, or `None` for single player.
    pub fn node_config(&self, regions: Vec<RegionId>) -> Result<Option<NodeConfig>, String> {
        if self.no_network {
            return Ok(None);
        }
        let data_dir = match &self.data_dir {
            Some(dir) => dir.clone(),
            None => default_data_dir()
                .ok_or("there is no home directory to keep your identity in; pass --data-dir DIR".to_owned())?,
        };
        let mut config = NodeConfig::new(data_dir);
        config.relays = if self.offline { RelayChoice::Disabled } else { RelayChoice::Public };
        config.lan_discovery = !self.no_lan;
        config.join = self.join.clone();
        config.name = self.name.clone();
        config.regions = regions;
        config.upload_rate = Some(self.upload_mib_s << 20);
        Ok(Some(config))
    }
}

/// VR comfort options; the menu panel in the headset changes them too.
#[derive(Debug, Clone, clap::Args)]
pub struct ComfortArgs {
    /// Turn smoothly with the stick instead of in snaps.
    #[arg(long)]
    pub smooth_turn: bool,

    /// Degrees per snap turn.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u16).range(5..=90))]
    pub snap_degrees: u16,

    /// No darkened edges while moving smoothly.
    #[arg(long)]
    pub no_vignette: bool,

    /// Play seated: the eyes are lifted to standing height.
    #[arg(long)]
    pub seated: bool,

    /// Point, grab and teleport with the left hand; walk with the right.
    #[arg(long)]
    pub left_handed: bool,
}

impl From<&ComfortArgs> for crate::actions::Comfort {
    fn from(args: &ComfortArgs) -> Self {
        use crate::actions::{SEATED_LIFT, SMOOTH_TURN, Side, Stance, Turning};
        Self {
            turning: if args.smooth_turn {
                Turning::Smooth(SMOOTH_TURN)
            } else {
                Turning::Snap(f32::from(args.snap_degrees).to_radians())
            },
            vignette: !args.no_vignette,
            stance: if args.seated { Stance::Seated(SEATED_LIFT) } else { Stance::Standing },
            dominant: if args.left_handed { Side::Left } else { Side::Right },
        }
    }
}

/// Wallet options.
#[derive(Debug, Clone, clap::Args)]
pub struct WalletArgs {
    /// The Bitcoin network of the wallet: signet (test coins, the default), testnet, regtest, or
    /// mainnet (real money; needs --mainnet-i-understand too).
    #[arg(long, default_value = "signet", value_name = "NETWORK")]
    pub bitcoin_network: String,

    /// Confirms that you mean to use real bitcoin with --bitcoin-network mainnet.
    #[arg(long)]
    pub mainnet_i_understand: bool,

    /// The Esplora server the wallet reads the chain from. Default: mempool.space for signet and
    /// testnet, blockstream.info for mainnet; regtest needs one.
    #[arg(long, value_name = "URL")]
    pub esplora: Option<String>,

    /// Seconds between wallet syncs while it is unlocked.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub wallet_sync_s: u64,

    /// No Lightning node beside the wallet.
    #[arg(long)]
    pub no_lightning: bool,

    /// Take Lightning connections on this TCP port (by default the node only dials out).
    #[arg(long, value_name = "PORT")]
    pub lightning_port: Option<u16>,

    /// The Lightning node that opens channels for you on demand (LSPS2): your home node or an
    /// LSP, as NODE_ID@HOST:PORT.
    #[arg(long, value_name = "NODE_ID@HOST:PORT")]
    pub lsp: Option<String>,

    /// The most your tips may cost in 24 hours, in sats, routing fees included (each tip is
    /// shown for your yes first).
    #[arg(long, value_name = "SATS", default_value_t = sanctuary_wallet::DEFAULT_TIP_LIMIT_SAT,
          value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    pub tip_limit: u64,
}

impl Default for WalletArgs {
    fn default() -> Self {
        Self {
            bitcoin_network: "signet".into(),
            mainnet_i_understand: false,
            esplora: None,
            wallet_sync_s: 30,
            no_lightning: false,
            lightning_port: None,
            lsp: None,
            tip_limit: sanctuary_wallet::DEFAULT_TIP_LIMIT_SAT,
        }
    }
}

/// `NODE_ID@HOST:PORT` as a Lightning node's id and address.
pub fn parse_node_address(text: &str) -> Result<LspLink, String> {
    let (node_id, address) = text.trim().split_once('@').ok_or_else(|| format!("'{text}' is not NODE_ID@HOST:PORT"))?;
    if node_id.len() != 66 || !node_id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("'{node_id}' is not a Lightning node id (66 hexadecimal characters)"));
    }
    if address.rsplit_once(':').is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err()) {
        return Err(format!("'{address}' is not HOST:PORT"));
    }
    Ok(LspLink { node_id: node_id.to_owned(), address: address.to_owned() })
}

impl WalletArgs {
    /// The wallet thread's settings; the wallet lives in `<data dir>/wallet/<network>`.
    pub fn service_config(&self, data_dir: Option<PathBuf>) -> Result<ServiceConfig, String> {
        let consent = if self.mainnet_i_understand { MainnetConsent::Given } else { MainnetConsent::NotGiven };
        let network = WalletNetwork::choose(&self.bitcoin_network, consent).map_err(|error| error.to_string())?;
        let esplora_url = match (&self.esplora, network) {
            (Some(url), _) => url.clone(),
            (None, WalletNetwork::Signet) => "https://mempool.space/signet/api".into(),
            (None, WalletNetwork::Testnet) => "https://mempool.space/testnet/api".into(),
            (None, WalletNetwork::Mainnet) => "https://blockstream.info/api".into(),
            (None, WalletNetwork::Regtest) => return Err("a regtest wallet needs --esplora URL".into()),
        };
        let data_dir = data_dir
            .or_else(default_data_dir)
            .ok_or("there is no home directory to keep the wallet in; pass --data-dir DIR")?;
        if network.is_real_money() {
            eprintln!("WARNING: the wallet is on Bitcoin mainnet: payments move real money.");
        }
        Ok(ServiceConfig {
            dir: data_dir.join("wallet").join(network.to_string()),
            network,
            esplora_url,
            sync_every: std::time::Duration::from_secs(self.wallet_sync_s),
            lightning: LightningSettings {
                enabled: !self.no_lightning,
                runtime: None,
                listen: self
                    .lightning_port
                    .map(|port| std::net::SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, port))),
                alias: None,
                lsp: self.lsp.as_deref().map(parse_node_address).transpose()?,
                provider: None,
                background_sync: true,
                tip_limit_sat: Some(self.tip_limit),
            },
        })
    }
}

/// The platform's data directory for Sanctuary (XDG on Linux, Application Support on macOS,
/// AppData on Windows).
pub fn default_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("org", "Sanctuary", "sanctuary").map(|dirs| dirs.data_dir().to_owned())
}

fn parse_point(text: &str) -> Result<[f32; 3], String> {
    let numbers: Vec<f32> = text
        .split(',')
        .map(|part| part.trim().parse::<f32>().ok().filter(|number| number.is_finite()))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("'{text}' is not three numbers like 10,1.7,-20"))?;
    <[f32; 3]>::try_from(numbers).map_err(|_| format!("'{text}' is not three numbers like 10,1.7,-20"))
}

fn parse_degrees(text: &str) -> Result<f32, String> {
    text.trim()
        .parse::<f32>()
        .ok()
        .filter(|degrees| degrees.is_finite())
        .ok_or_else(|| format!("'{text}' is not a number of degrees like 90 or -45"))
}

fn parse_ticket(text: &str) -> Result<Ticket, String> {
    text.parse().map_err(|error: sanctuary_net::TicketError| error.to_string())
}

fn parse_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    if name.is_empty() {
        return Err("the name is empty".to_owned());
    }
    if name.chars().count() > sanctuary_net::MAX_NAME_CHARS {
        return Err(format!("a name is at most {} characters", sanctuary_net::MAX_NAME_CHARS));
    }
    if name.chars().any(char::is_control) {
        return Err("a name cannot hold control characters".to_owned());
    }
    Ok(name.to_owned())
}

fn parse_region(text: &str) -> Result<RegionId, String> {
    text.parse().map_err(|error: sanctuary_engine::UnknownRegion| error.to_string())
}

fn parse_key(text: &str) -> Result<sanctuary_engine::PublicKey, String> {
    text.parse().map_err(|error: sanctuary_engine::KeyError| format!("not a key: {error}"))
}

fn parse_pin(text: &str) -> Result<(sanctuary_engine::PublicKey, u64), String> {
    let (key, mib) = text.split_once('=').ok_or_else(|| format!("'{text}' is not KEY=MIB"))?;
    let mib: u64 = mib.trim().parse().map_err(|_| format!("'{mib}' is not a whole number of MiB"))?;
    let bytes = mib.checked_mul(1024 * 1024).ok_or_else(|| format!("{mib} MiB is too many"))?;
    Ok((parse_key(key)?, bytes))
}

fn parse_drifters(text: &str) -> Result<usize, String> {
    let count: usize = text.parse().map_err(|_| format!("'{text}' is not a whole number"))?;
    if count > 100_000 {
        return Err(format!("{count} avatars is more than the lobby shows (at most 100000)"));
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_start_in_the_lobby() {
        let args = Args::try_parse_from(["sanctuary"]).expect("no arguments is fine");
        assert_eq!(args.region, RegionId::Lobby);
        assert_eq!((args.width, args.height), (1280, 720));
        assert!(args.screenshot.is_none());
    }

    #[test]
    fn bad_input_is_refused_with_a_message() {
        let error = Args::try_parse_from(["sanctuary", "--region", "moon"]).unwrap_err().to_string();
        assert!(error.contains("lecture-hall"), "{error}");
        assert!(Args::try_parse_from(["sanctuary", "--width", "10"]).is_err());
        assert!(Args::try_parse_from(["sanctuary", "--frames", "0"]).is_err());
        assert!(Args::try_parse_from(["sanctuary", "--avatars", "many"]).is_err());
        let error = Args::try_parse_from(["sanctuary", "--join", "hello"]).unwrap_err().to_string();
        assert!(error.contains("ticket"), "{error}");
        assert!(Args::try_parse_from(["sanctuary", "--name", &"x".repeat(40)]).is_err());
        assert!(Args::try_parse_from(["sanctuary", "--no-network", "--offline"]).is_err());
        assert!(Args::try_parse_from(["sanctuary", "--at", "1,2"]).is_err());
        assert!(Args::try_parse_from(["sanctuary", "--at", "1,2,nan"]).is_err());
        let at = Args::try_parse_from(["sanctuary", "--at", "1, 2.5,-3"]).expect("valid").at;
        assert_eq!(at, Some([1.0, 2.5, -3.0]));
        assert_eq!(Args::try_parse_from(["sanctuary", "--facing", "-90"]).expect("valid").facing, Some(-90.0));
        assert!(Args::try_parse_from(["sanctuary", "--facing", "inf"]).is_err());
    }

    #[test]
    fn network_options_make_a_node_configuration() {
        let args =
            Args::try_parse_from(["sanctuary", "--offline", "--name", "Ada", "--data-dir", "/tmp/ada"]).expect("valid");
        let config = args.network.node_config(vec![RegionId::City]).expect("valid").expect("networked");
        assert_eq!(config.relays, RelayChoice::Disabled);
        assert_eq!(config.name.as_deref(), Some("Ada"));
        assert_eq!(config.data_dir, PathBuf::from("/tmp/ada"));
        assert_eq!(config.regions, vec![RegionId::City]);
        assert_eq!(config.upload_rate, Some(4 << 20), "4 MiB/s unless told");
        let capped = Args::try_parse_from(["sanctuary", "--upload-mib-s", "1"]).expect("valid");
        let config = capped.network.node_config(vec![RegionId::Lobby]).expect("valid").expect("networked");
        assert_eq!(config.upload_rate, Some(1 << 20));
        for bad in ["0", "1025", "-1", "lots"] {
            assert!(Args::try_parse_from(["sanctuary", "--upload-mib-s", bad]).is_err(), "{bad} was taken");
        }
        let solo = Args::try_parse_from(["sanctuary", "--no-network"]).expect("valid");
        assert!(solo.network.node_config(vec![RegionId::Lobby]).expect("valid").is_none());
        let node = Args::try_parse_from(["sanctuary", "node", "--region", "city", "--region", "cinema", "--offline"])
            .expect("valid");
        let Some(Mode::Node(node)) = node.mode else { panic!("the node mode") };
        assert_eq!(node.regions, vec![RegionId::City, RegionId::Room(sanctuary_engine::RoomKind::Cinema)]);
        assert!(node.network.offline);
    }

    #[test]
    fn screenshot_options_parse() {
        let args =
            Args::try_parse_from(["sanctuary", "--region", "cinema", "--screenshot", "/tmp/x.png", "--frames", "5"])
                .expect("valid");
        assert_eq!(args.region.slug(), "cinema");
        assert_eq!(args.frames, 5);
        assert_eq!(args.screenshot, Some(PathBuf::from("/tmp/x.png")));
    }
}
