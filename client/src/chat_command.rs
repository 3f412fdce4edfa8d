//! What a line typed into the chat box means, and whether it looks like a secret that must not
//! leave the machine: pure rules with no Bevy, so that what may be sent is decided in one place.
//!
//! Anything that starts with `/` is a command, and a command that is not known is never sent
//! (`//` sends a line that starts with `/`). A line that looks like a recovery phrase, or like a
//! wallet command that carries a passphrase, is held back until the person confirms it.

/// The chat commands that belong to the wallet: they may carry passphrases, so they are neither
/// sent nor shown.
pub const WALLET_COMMANDS: [&str; 9] =
    ["/wallet", "/send", "/sell", "/withdraw", "/export", "/receive", "/sync", "/ln", "/tip"];

/// The commands the chat box handles itself.
const CHAT_COMMANDS: [&str; 24] = [
    "/join",
    "/import",
    "/name",
    "/block",
    "/unblock",
    "/trust",
    "/models",
    "/goto",
    "/avatar",
    "/avatars",
    "/play",
    "/screen",
    "/market",
    "/slides",
    "/stage",
    "/hand",
    "/poll",
    "/polls",
    "/vote",
    "/board",
    "/room",
    "/invite",
    "/uninvite",
    "/home",
];

/// The commands that choose the microphone and the speakers (see `crate::voice`).
pub const AUDIO_COMMANDS: [&str; 2] = ["/mic", "/speaker"];

/// The `/wallet` verbs followed by an unlock passphrase (and, for `restore`, the recovery words).
const SECRET_VERBS: [&str; 3] = ["create", "restore", "unlock"];

/// Every `/wallet` verb: the one after `/wallet` is shown in the chat box, what follows is not.
const WALLET_VERBS: [&str; 4] = ["create", "restore", "unlock", "lock"];

/// A recovery phrase has at least 12 words (BIP39's shortest).
const PHRASE_MIN_WORDS: usize = 12;

/// Of the words of a line that looks like a recovery phrase, at least this many in four are
/// recovery words (so a phrase with a typo or two, or inside a sentence, still counts, and
/// ordinary talk, where "the", "is" and "of" are not recovery words, does not).
const PHRASE_QUARTERS: usize = 3;

/// Words longer than this are too far from every command name to be compared with them.
const MAX_COMPARED_CHARS: usize = 32;

/// The longest unknown command word repeated back in a notice.
const MAX_ECHOED_CHARS: usize = 24;

/// What typed text asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatCommand {
    /// Nothing was typed.
    Empty,
    /// A line for everyone in the region.
    Say(String),
    /// A private message for the person the chat box is addressed to.
    Private(String),
    /// `/join TICKET`: meet the peer of a ticket (the ticket as typed).
    Join(String),
    /// `/import PATH`: import a model.
    Import(String),
    /// `/name NAME`: a new name.
    Name(String),
    /// `/unblock`: list whom we block; `/unblock N`: undo the N-th.
    Unblock(String),
    /// `/trust`: list the people here; `/trust WHO LEVEL`: say what one thinks of them.
    Trust(String),
    /// `/models`: load the models of the parcel one stands on, whoever built them.
    LoadModels,
    /// `/goto`: list who is online; `/goto WHO`: go to them.
    GoTo(String),
    /// `/avatar`: list the shipped avatars; `/avatar NAME|PATH|off`: wear one.
    Avatar(String),
    /// `/avatars RANK`: up to which rank others' avatars are shown as they are.
    ShowAvatars(String),
    /// `/play PATH`: share a film on the screen of the room one is in.
    Play(String),
    /// `/screen play|pause|next|seek S`: move the screen one controls.
    Screen(String),
    /// `/market WORDS [under PRICE]`: find what is for sale; `/market go N`: go to the N-th stall.
    Market(String),
    /// `/slides PATH...` (images, or a folder of them): present them in the lecture hall.
    Slides(String),
    /// `/stage next|prev|N|floor NAME|floor back|lower NAME|give NAME`: move the stage one
    /// presents.
    Stage(String),
    /// `/hand` raises one's hand in the lecture hall; `/hand down` lowers it.
    Hand(String),
    /// `/poll` lists the meeting room's polls; `/poll QUESTION | A | B [| for 30m]` opens one;
    /// `/poll export N [FILE]` writes one's results as CSV.
    Poll(String),
    /// `/vote N OPTION`: vote in the meeting room's poll N.
    Vote(String),
    /// `/board`: how to draw on the meeting room's whiteboard, the pen, and erasing one's own
    /// strokes.
    Board(String),
    /// `/room [NAME|mine]`, `/invite NAME` or `/uninvite NAME`: private rooms (which, and what
    /// follows).
    Room(&'static str, String),
    /// `/block WHO`: block someone from the keyboard.
    Block(String),
    /// `/home [KEY | KEY MIB MONTHS | off KEY]`: where one's things are kept while one is away
    /// (one's home node, friends' nodes that pin them, nodes paid to keep them).
    Home(String),
    /// A wallet or trade command, the whole line, for the wallet to take.
    Wallet(String),
    /// `/mic` or `/speaker`, the whole line, for the voice settings to take.
    Audio(String),
    /// A command without what it needs: how to use it.
    Usage(&'static str),
    /// A slash command nobody knows; it goes nowhere.
    Unknown {
        /// The command word as typed, cut to a length that fits a notice.
        command: String,
        /// The known command it is nearest to, if any is near.
        suggestion: Option<&'static str>,
    },
}

impl ChatCommand {
    /// The text that would leave the machine: the line, the message, the new name.
    pub fn outgoing(&self) -> Option<&str> {
        match self {
            ChatCommand::Say(text) | ChatCommand::Private(text) | ChatCommand::Name(text) => Some(text),
            _ => None,
        }
    }
}

/// Why a line is held back rather than sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    /// `listed` of its `words` words are from the BIP39 wordlist.
    RecoveryPhrase {
        /// Words from the list.
        listed: usize,
        /// Words in all.
        words: usize,
    },
    /// It has the shape of `/wallet VERB PASSPHRASE`, misspelt or without its slash.
    WalletCommand {
        /// The verb it is nearest to.
        verb: &'static str,
    },
}

impl Secret {
    /// The notice that says why the line was held back and how to send it anyway; it never
    /// repeats the line.
    pub fn notice(self) -> String {
        let anyway = "Enter again sends it anyway, Esc clears it";
        match self {
            Secret::RecoveryPhrase { listed, words } => format!(
                "not sent: this looks like a recovery phrase ({listed} of its {words} words are recovery \
                 words), and a recovery phrase gives away a wallet. {anyway}"
            ),
            Secret::WalletCommand { verb } => format!(
                "not sent: this looks like /wallet {verb} with a passphrase (wallet commands start with \
                 /wallet). {anyway}"
            ),
        }
    }
}

/// Reads typed text; `private` when the chat box is addressed to one person.
pub fn parse(text: &str, private: bool) -> ChatCommand {
    let text = text.trim();
    if text.is_empty() {
        return ChatCommand::Empty;
    }
    let line = |line: &str| {
        if private { ChatCommand::Private(line.to_owned()) } else { ChatCommand::Say(line.to_owned()) }
    };
    if let Some(literal) = text.strip_prefix("//") {
        return line(&format!("/{literal}"));
    }
    if !text.starts_with('/') {
        return line(text);
    }
    let (word, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let rest = rest.trim();
    let needs = |usage: &'static str, command: fn(String) -> ChatCommand| {
        if rest.is_empty() { ChatCommand::Usage(usage) } else { command(rest.to_owned()) }
    };
    match word {
        word if WALLET_COMMANDS.contains(&word) => ChatCommand::Wallet(text.to_owned()),
        word if AUDIO_COMMANDS.contains(&word) => ChatCommand::Audio(text.to_owned()),
        "/join" => needs("usage: /join TICKET (Ctrl+V pastes it)", ChatCommand::Join),
        "/import" => needs("usage: /import PATH/TO/MODEL.glb (or .gltf)", ChatCommand::Import),
        "/name" => needs("usage: /name YOUR NAME", ChatCommand::Name),
        "/unblock" => ChatCommand::Unblock(rest.to_owned()),
        "/trust" => ChatCommand::Trust(rest.to_owned()),
        "/models" => ChatCommand::LoadModels,
        "/goto" => ChatCommand::GoTo(rest.to_owned()),
        "/block" => ChatCommand::Block(rest.to_owned()),
        "/avatar" => ChatCommand::Avatar(rest.to_owned()),
        "/avatars" => ChatCommand::ShowAvatars(rest.to_owned()),
        "/play" => needs("usage: /play PATH/TO/FILM.mp4 (or .mkv, .webm)", ChatCommand::Play),
        "/screen" => ChatCommand::Screen(rest.to_owned()),
        "/market" => ChatCommand::Market(rest.to_owned()),
        "/slides" => needs("usage: /slides PATH/TO/FOLDER (or IMAGE.png IMAGE.jpg ...)", ChatCommand::Slides),
        "/stage" => ChatCommand::Stage(rest.to_owned()),
        "/hand" => ChatCommand::Hand(rest.to_owned()),
        "/poll" | "/polls" => ChatCommand::Poll(rest.to_owned()),
        "/vote" => needs("usage: /vote N OPTION (poll N as /poll lists them)", ChatCommand::Vote),
        "/board" => ChatCommand::Board(rest.to_owned()),
        "/home" => ChatCommand::Home(rest.to_owned()),
        "/room" => ChatCommand::Room("room", rest.to_owned()),
        "/invite" => needs("usage: /invite NAME (someone here, a friend online, or a key)", |rest| {
            ChatCommand::Room("invite", rest)
        }),
        "/uninvite" => needs("usage: /uninvite NAME (or a key)", |rest| ChatCommand::Room("uninvite", rest)),
        _ => ChatCommand::Unknown { command: echoed(word), suggestion: suggest(word) },
    }
}

/// Whether typed text is a wallet command.
pub fn is_wallet_command(text: &str) -> bool {
    matches!(parse(text, false), ChatCommand::Wallet(_))
}

/// The notice for a command nobody knows.
pub fn unknown_notice(command: &str, suggestion: Option<&str>) -> String {
    let hint = suggestion.map_or_else(|| ".".to_owned(), |known| format!("; did you mean {known}?"));
    format!("unknown command {command}{hint} Nothing was sent (// at the start sends a line that begins with /)")
}

/// Whether `text` looks like a secret that must not be sent without a confirmation.
pub fn secret_in(text: &str) -> Option<Secret> {
    if let Some(verb) = wallet_shape(text) {
        return Some(Secret::WalletCommand { verb });
    }
    let (listed, words) = recovery_words(text);
    let looks = listed >= PHRASE_MIN_WORDS && listed * 4 >= words * PHRASE_QUARTERS;
    looks.then_some(Secret::RecoveryPhrase { listed, words })
}

/// The typed text as the chat box shows it: after a wallet-like command word (`/wallet`, its
/// typos, and `wallet` itself before a wallet verb) only the verb is shown and the rest is `*`;
/// a line that looks like a recovery phrase is all `*`.
pub fn masked(text: &str) -> String {
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or("");
    let verb = words.next().unwrap_or("").to_lowercase();
    let is_verb =
        !verb.is_empty() && WALLET_VERBS.iter().any(|known| known.starts_with(&verb) || distance(&verb, known) <= 1);
    let punctuated = first.starts_with(|letter: char| !letter.is_alphanumeric());
    let shown_words = if wallet_like(first) && is_verb {
        2
    } else if wallet_like(first) && punctuated {
        1
    } else if matches!(secret_in(text), Some(Secret::RecoveryPhrase { .. })) {
        0
    } else {
        return text.to_owned();
    };
    let mut shown = String::with_capacity(text.len());
    let mut n_words_ended = 0;
    let mut in_word = false;
    let mut hiding = false;
    for letter in text.chars() {
        if letter.is_whitespace() {
            if in_word {
                n_words_ended += 1;
            }
            in_word = false;
        } else {
            in_word = true;
            hiding |= n_words_ended >= shown_words;
        }
        shown.push(if hiding { '*' } else { letter });
    }
    shown
}

/// Whether `word` is in BIP39's English wordlist (any case).
pub fn is_recovery_word(word: &str) -> bool {
    sanctuary_wallet::is_recovery_word(word)
}

/// How many of the words of `text` are recovery words, and how many words it has. Numbers and
/// punctuation (as in "1. abandon 2. ability") are not words.
fn recovery_words(text: &str) -> (usize, usize) {
    let words =
        text.split(|letter: char| !letter.is_alphanumeric()).filter(|token| token.chars().any(char::is_alphabetic));
    words.fold((0, 0), |(listed, all), word| (listed + usize::from(is_recovery_word(word)), all + 1))
}

/// The verb when `text` has the shape of `/wallet create|restore|unlock PASSPHRASE` but was not
/// typed as that command: misspelt, or with the slash left out or mistyped.
fn wallet_shape(text: &str) -> Option<&'static str> {
    let mut words = text.split_whitespace();
    if !wallet_like(words.next()?) {
        return None;
    }
    let verb = words.next()?.to_lowercase();
    let verb = SECRET_VERBS.into_iter().find(|known| distance(&verb, known) <= 1)?;
    // Something follows the verb: the passphrase.
    words.next().map(|_| verb)
}

/// Whether a word is `wallet`, or one or two typos from it: with a slash or other punctuation in
/// front (clearly meant as a command) two typos, one without.
fn wallet_like(word: &str) -> bool {
    let bare = word.trim_start_matches(|letter: char| !letter.is_alphanumeric());
    let allowed = if bare.len() < word.len() { 2 } else { 1 };
    distance(&bare.to_lowercase(), "wallet") <= allowed
}

/// The known command nearest to an unknown `word`, if it is at most two typos away.
fn suggest(word: &str) -> Option<&'static str> {
    let bare = word.trim_start_matches('/').to_lowercase();
    if bare.chars().count() < 2 {
        return None;
    }
    CHAT_COMMANDS
        .into_iter()
        .chain(WALLET_COMMANDS)
        .chain(AUDIO_COMMANDS)
        .map(|known| (distance(&bare, known.trim_start_matches('/')), known))
        .filter(|(typos, _)| *typos <= 2)
        .min_by_key(|(typos, _)| *typos)
        .map(|(_, known)| known)
}

/// `word` cut to a length that fits a notice.
fn echoed(word: &str) -> String {
    let mut echoed: String = word.chars().take(MAX_ECHOED_CHARS).collect();
    if word.chars().count() > MAX_ECHOED_CHARS {
        echoed.push('…');
    }
    echoed
}

/// The number of typos between two words (optimal string alignment: insertions, deletions,
/// substitutions and swaps of neighbours, one each). Words longer than [`MAX_COMPARED_CHARS`]
/// count as far from everything.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > MAX_COMPARED_CHARS || b.len() > MAX_COMPARED_CHARS {
        return usize::MAX;
    }
    // rows[i][j]: the distance between the first i letters of a and the first j of b.
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitution = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + substitution);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid 24-word BIP39 phrase (from the BIP39 test vectors).
    const PHRASE: &str = "legal winner thank year wave sausage worth useful legal winner thank year wave sausage \
                          worth useful legal winner thank year wave sausage worth title";

    #[test]
    fn each_known_command_maps_to_its_command() {
        for command in WALLET_COMMANDS {
            let line = format!("{command} some arguments");
            assert_eq!(parse(&line, false), ChatCommand::Wallet(line.clone()));
            assert_eq!(parse(command, true), ChatCommand::Wallet(command.to_owned()), "commands win over messages");
        }
        assert_eq!(parse("  /join  TICKET ", false), ChatCommand::Join("TICKET".into()));
        assert_eq!(parse("/mic 2", true), ChatCommand::Audio("/mic 2".into()), "never a private message");
        assert_eq!(parse("/unblock 2", true), ChatCommand::Unblock("2".into()));
        assert_eq!(parse("/unblock", false), ChatCommand::Unblock(String::new()), "lists");
        assert_eq!(parse("/speaker", false), ChatCommand::Audio("/speaker".into()));
        assert!(matches!(parse("/speakr", false), ChatCommand::Unknown { suggestion: Some("/speaker"), .. }));
        assert_eq!(parse("/import /tmp/a chair.glb", false), ChatCommand::Import("/tmp/a chair.glb".into()));
        assert_eq!(parse("/name Ada Lovelace", true), ChatCommand::Name("Ada Lovelace".into()));
        assert!(matches!(parse("/name", false), ChatCommand::Usage(usage) if usage.contains("/name")));
        assert!(matches!(parse("/import   ", false), ChatCommand::Usage(usage) if usage.contains("/import")));
        assert!(matches!(parse("/join", false), ChatCommand::Usage(usage) if usage.contains("/join")));
        assert_eq!(parse("hello there", false), ChatCommand::Say("hello there".into()));
        assert_eq!(parse(" hello there ", true), ChatCommand::Private("hello there".into()));
        assert_eq!(parse("   ", false), ChatCommand::Empty);
        assert_eq!(parse("/polls", false), ChatCommand::Poll(String::new()));
        assert_eq!(parse("/board red 4", false), ChatCommand::Board("red 4".into()));
        assert_eq!(parse("/invite Bo", false), ChatCommand::Room("invite", "Bo".into()));
        assert_eq!(parse("/room", false), ChatCommand::Room("room", String::new()));
        assert_eq!(parse("/poll Lunch? | A | B", false), ChatCommand::Poll("Lunch? | A | B".into()));
        assert_eq!(parse("/vote 1 tacos", false), ChatCommand::Vote("1 tacos".into()));
        assert!(matches!(parse("/vote", false), ChatCommand::Usage(usage) if usage.contains("/vote N")));
    }

    #[test]
    fn a_double_slash_is_a_line_that_starts_with_a_slash() {
        assert_eq!(parse("//hello", false), ChatCommand::Say("/hello".into()));
        assert_eq!(parse("//wallet", true), ChatCommand::Private("/wallet".into()));
        assert_eq!(parse("//", false), ChatCommand::Say("/".into()));
    }

    #[test]
    fn unknown_commands_go_nowhere_and_suggest_the_nearest() {
        let unknown = |text: &str| match parse(text, false) {
            ChatCommand::Unknown { command, suggestion } => (command, suggestion),
            other => panic!("{text} parsed as {other:?}"),
        };
        assert_eq!(unknown("/walet restore pass words"), ("/walet".into(), Some("/wallet")));
        assert_eq!(unknown("/Wallet unlock pass"), ("/Wallet".into(), Some("/wallet")));
        assert_eq!(unknown("/wlalet"), ("/wlalet".into(), Some("/wallet")), "a swap is one typo");
        assert_eq!(unknown("/sned x"), ("/sned".into(), Some("/send")));
        assert_eq!(unknown("/names"), ("/names".into(), Some("/name")), "commands are whole words");
        assert_eq!(unknown("/joinTICKET"), ("/joinTICKET".into(), None));
        assert_eq!(unknown("/shrug"), ("/shrug".into(), None));
        assert_eq!(unknown("/"), ("/".into(), None));
        let (long, _) = unknown(&format!("/{}", "x".repeat(5000)));
        assert!(long.chars().count() <= MAX_ECHOED_CHARS + 1, "a long word is cut for the notice");
        let notice = unknown_notice("/walet", Some("/wallet"));
        assert!(notice.contains("unknown command /walet; did you mean /wallet? Nothing") && notice.contains("//"));
        assert!(unknown_notice("/shrug", None).starts_with("unknown command /shrug. Nothing was sent"));
    }

    #[test]
    fn recovery_phrases_are_secrets() {
        assert_eq!(secret_in(PHRASE), Some(Secret::RecoveryPhrase { listed: 24, words: 24 }));
        let twelve = "abandon ability able about above absent absorb abstract absurd abuse access accident";
        assert!(secret_in(twelve).is_some(), "twelve words are a phrase");
        assert!(secret_in(&twelve.to_uppercase()).is_some(), "in any case");
        let numbered: String =
            twelve.split(' ').enumerate().map(|(at, word)| format!("{}. {word}\n", at + 1)).collect();
        assert!(secret_in(&numbered).is_some(), "numbered, one a line");
        let sentence = format!("hey can you keep these safe for me: {PHRASE} thanks");
        assert!(secret_in(&sentence).is_some(), "inside a sentence");
        let typo = PHRASE.replacen("sausage", "sausgae", 2);
        assert!(secret_in(&typo).is_some(), "with typos");
        let eleven = "abandon ability able about above absent absorb abstract absurd abuse access";
        assert_eq!(secret_in(eleven), None, "eleven words are not a phrase");
    }

    #[test]
    fn ordinary_talk_is_not_a_secret() {
        for line in [
            "the cat is on the table",
            "I think the city at night is lovely, have you seen the lobby and the fountain yet?",
            "is this the wallet you lost? it was on the floor near the door of the old cinema",
            "wallet is empty lol",
            "my wallet unlocked fine",
            "",
        ] {
            assert_eq!(secret_in(line), None, "{line}");
        }
    }

    #[test]
    fn wallet_commands_with_typos_are_secrets() {
        for line in [
            "wallet unlock correcthorse",
            "walet unlock correcthorse",
            "\\wallet restore correcthorse abandon ability",
            "/walett create correcthorse",
            "//wallet unlock correcthorse",
            ".wallet unlok correcthorse",
        ] {
            assert!(matches!(secret_in(line), Some(Secret::WalletCommand { .. })), "{line}");
        }
        assert_eq!(secret_in("wallet unlock"), None, "no passphrase yet");
        assert_eq!(secret_in("pallets create art"), None, "two typos need a slash in front");
        assert!(secret_in("/pallets create art").is_some(), "as with one");
        let notice = Secret::WalletCommand { verb: "unlock" }.notice();
        assert!(notice.contains("/wallet unlock") && notice.contains("Enter again"));
    }

    #[test]
    fn the_chat_box_hides_passphrases_and_phrases() {
        assert_eq!(masked("/wallet unlock hunter22"), "/wallet unlock ********");
        assert_eq!(masked("/walet restore pass word"), "/walet restore *********");
        assert_eq!(masked("wallet unlok secret"), "wallet unlok ******");
        assert_eq!(masked("/wallet hunter22"), "/wallet ********", "not a verb: hidden too");
        assert_eq!(masked("/wallet unl"), "/wallet unl", "a verb being typed");
        assert_eq!(masked("/wallet"), "/wallet");
        assert_eq!(masked(PHRASE), "*".repeat(PHRASE.chars().count()));
        assert_eq!(masked("the cat is on the table"), "the cat is on the table");
        assert_eq!(masked("/send tb1q 1000"), "/send tb1q 1000");
        assert_eq!(masked("wallet is empty lol"), "wallet is empty lol", "talk about wallets is shown");
    }

    #[test]
    fn odd_input_never_panics() {
        let long = "é".repeat(5000);
        for text in ["/", "//", "/ ", "\u{0}", "/é", "wallet", "wallet ", "/wallet   ", "ﬃ /wallet", long.as_str()] {
            let _ = parse(text, false);
            let _ = secret_in(text);
            let _ = masked(text);
        }
        assert_eq!(masked("/walet ünlock éé"), "/walet ünlock **", "letters of any width");
    }

    #[test]
    fn typos_are_counted() {
        assert_eq!(distance("wallet", "wallet"), 0);
        assert_eq!(distance("walet", "wallet"), 1);
        assert_eq!(distance("wlalet", "wallet"), 1);
        assert_eq!(distance("", "send"), 4);
        assert_eq!(distance("tablet", "wallet"), 2);
        assert_eq!(distance(&"a".repeat(40), "wallet"), usize::MAX);
    }

    #[test]
    fn recovery_words_are_the_wallets() {
        assert!(is_recovery_word("Zoo") && is_recovery_word("abandon") && is_recovery_word("ABOUT"));
        assert!(!is_recovery_word("the") && !is_recovery_word("zzzz") && !is_recovery_word(""));
    }
}
