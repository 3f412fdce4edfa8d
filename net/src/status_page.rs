//! The home node's status page: a small web page and its JSON on a loopback port, for the
//! person whose machine it is (`sanctuary node` serves it at <http://127.0.0.1:7780/> by
//! default; `/status.json` for scripts).
//!
//! Only what a browser on this machine asks is answered: requests are read within 8 KiB and
//! 5 s, only `GET` of `/` and `/status.json`, only with a `Host` of this machine's loopback
//! names (so that a web page elsewhere cannot read it through DNS rebinding), at most 8
//! connections at once. Names come from other peers, so every text is escaped, and the page
//! forbids scripts (`Content-Security-Policy`).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use crate::receipts::size;

/// The port the status page is served on by default.
pub const DEFAULT_STATUS_PORT: u16 = 7780;
/// The most bytes of a request's head read.
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// How long a connection may take to ask.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections answered at once.
const MAX_CONNECTIONS: usize = 8;
/// The most peers listed by what was served to them.
pub const MAX_SERVED_LISTED: usize = 32;

/// What the page shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatusSnapshot {
    /// The node's id (its public key, hex).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Seconds since it started.
    pub uptime_s: u64,
    /// The regions it stays in.
    pub regions: Vec<String>,
    /// The relays' state, in words.
    pub relay: String,
    /// Peers heard on the world topic lately.
    pub known_peers: usize,
    /// Gossip neighbours in the first region.
    pub neighbours: usize,
    /// People posing in the first region lately.
    pub crowd: usize,
    /// World changes held.
    pub world_changes: usize,
    /// Bytes of models and avatars kept (the `blobs/` store on disk).
    pub stored_bytes: u64,
    /// Bytes served to others since it started (models, avatars, films).
    pub served_bytes: u64,
    /// The peers served most, most first (at most [`MAX_SERVED_LISTED`]).
    pub served_to: Vec<Served>,
    /// The node's owner (key, hex), when it has one.
    pub owner: Option<String>,
    /// Whom it keeps things for: the owner first, then friends and others by key.
    pub kept_for: Vec<KeptRow>,
    /// Models kept in all, and their bytes.
    pub kept_models: usize,
    /// Bytes of the models kept, as their placers declared them.
    pub kept_bytes: u64,
    /// People who asked to be kept for and were declined (a few of them), and how many.
    pub declined: Vec<String>,
    /// How many asked and were declined.
    pub declined_count: usize,
    /// What it served by the receipts others signed for it (see [`crate::receipts`]).
    pub receipts: crate::receipts::Contribution,
}

/// What the node keeps for one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeptRow {
    /// Their key, hex.
    pub key: String,
    /// Their name, when the node has seen them.
    pub name: Option<String>,
    /// Why: `owner`, `friend` or `granted`.
    pub role: String,
    /// Whether they named this node as a host (signed).
    pub named: bool,
    /// Their quota in bytes.
    pub quota: u64,
    /// Models kept for them.
    pub models: usize,
    /// Bytes kept for them.
    pub bytes: u64,
    /// Models of theirs past a quota, not kept.
    pub left_out: usize,
}

/// Bytes served to one peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Served {
    /// The peer's key, hex.
    pub key: String,
    /// Bytes.
    pub bytes: u64,
}

/// The snapshot the page shows, set by the home node as it learns more.
#[derive(Debug, Clone, Default)]
pub struct StatusBoard(Arc<Mutex<StatusSnapshot>>);

impl StatusBoard {
    /// Shows `snapshot` from now on.
    pub fn set(&self, snapshot: StatusSnapshot) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = snapshot;
    }

    /// What is shown.
    pub fn get(&self) -> StatusSnapshot {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// The JSON of a snapshot.
pub fn status_json(snapshot: &StatusSnapshot) -> String {
    serde_json::to_string_pretty(snapshot).unwrap_or_else(|_| "{}".into())
}

/// Text made safe inside HTML.
fn escape(text: &str) -> String {
    let mut safe = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => safe.push_str("&amp;"),
            '<' => safe.push_str("&lt;"),
            '>' => safe.push_str("&gt;"),
            '"' => safe.push_str("&quot;"),
            '\'' => safe.push_str("&#39;"),
            c if c.is_control() => safe.push('\u{fffd}'),
            c => safe.push(c),
        }
    }
    safe
}

/// A duration as people read it.
fn duration(seconds: u64) -> String {
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60);
    match (days, hours) {
        (0, 0) => format!("{minutes} min {} s", seconds % 60),
        (0, _) => format!("{hours} h {minutes} min"),
        _ => format!("{days} d {hours} h"),
    }
}

/// The page of a snapshot: it reloads itself every 5 s.
pub fn status_html(snapshot: &StatusSnapshot) -> String {
    let row = |label: &str, value: String| format!("<tr><th>{label}</th><td>{}</td></tr>\n", escape(&value));
    let mut rows = String::new();
    rows += &row("Node id", snapshot.id.clone());
    rows += &row("Up for", duration(snapshot.uptime_s));
    rows += &row("Regions", snapshot.regions.join(", "));
    rows += &row("Relays", snapshot.relay.clone());
    rows += &row("Peers known", snapshot.known_peers.to_string());
    rows += &row("Neighbours", snapshot.neighbours.to_string());
    rows += &row("People here", snapshot.crowd.to_string());
    rows += &row("World changes held", snapshot.world_changes.to_string());
    rows += &row("Models and avatars stored", size(snapshot.stored_bytes));
    rows += &row("Served to others", size(snapshot.served_bytes));
    let signed = match snapshot.receipts.people {
        0 => "no receipts yet".to_owned(),
        _ => snapshot.receipts.line(),
    };
    rows += &row("By others' receipts", signed);
    let mut served = String::new();
    for peer in &snapshot.served_to {
        served +=
            &format!("<tr><td><code>{}</code></td><td>{}</td></tr>\n", escape(&peer.key), escape(&size(peer.bytes)));
    }
    if served.is_empty() {
        served = "<tr><td colspan=\"2\">nobody yet</td></tr>\n".into();
    }
    let kept = kept_html(snapshot);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\"><title>{name}: Sanctuary home node</title>\
         <style>body{{font-family:sans-serif;background:#101820;color:#dde;margin:2em}}\
         h1{{color:#7fd}}table{{border-collapse:collapse;margin-bottom:1.5em}}\
         th,td{{text-align:left;padding:.3em 1em;border-bottom:1px solid #345}}th{{color:#9ab}}\
         code{{font-size:.85em}}</style></head>\n<body><h1>{name}</h1>\
         <p>Sanctuary home node. This page reloads every 5 s; \
         <a href=\"/status.json\" style=\"color:#7fd\">status.json</a> has the same for scripts.</p>\n\
         <table>\n{rows}</table>\n{kept}<h2>Served most to</h2><table>\n{served}</table></body></html>\n",
        name = escape(&snapshot.name),
    )
}

/// The page's part on what is kept for whom.
fn kept_html(snapshot: &StatusSnapshot) -> String {
    let owner = match &snapshot.owner {
        Some(owner) => format!("Owner: <code>{}</code>. ", escape(owner)),
        None => "No owner set (start it with <code>--owner KEY</code>). ".into(),
    };
    let mut rows = String::new();
    for kept in &snapshot.kept_for {
        let who = match &kept.name {
            Some(name) => format!("{} <code>{}</code>", escape(name), escape(&kept.key)),
            None => format!("<code>{}</code>", escape(&kept.key)),
        };
        let asked = if kept.named { "yes" } else { "not yet" };
        let left_out =
            if kept.left_out > 0 { format!(" ({} left out: quota full)", kept.left_out) } else { String::new() };
        rows += &format!(
            "<tr><td>{who}</td><td>{}</td><td>{asked}</td><td>{}{left_out}</td><td>{} of {}</td></tr>\n",
            escape(&kept.role),
            kept.models,
            escape(&size(kept.bytes)),
            escape(&size(kept.quota)),
        );
    }
    if rows.is_empty() {
        rows = "<tr><td colspan=\"5\">nobody</td></tr>\n".into();
    }
    let declined = match snapshot.declined_count {
        0 => String::new(),
        count => {
            let keys: Vec<String> =
                snapshot.declined.iter().map(|key| format!("<code>{}</code>", escape(key))).collect();
            format!("<p>Declined ({count}, not friends of the owner): {}</p>\n", keys.join(", "))
        }
    };
    format!(
        "<h2>Kept for</h2><p>{owner}{} models, {} in all.</p><table>\n<tr><th>Whose</th><th>Why</th>\
         <th>Asked (signed)</th><th>Models</th><th>Bytes of quota</th></tr>\n{rows}</table>\n{declined}",
        snapshot.kept_models,
        escape(&size(snapshot.kept_bytes)),
    )
}

/// The whole response to a request's head, for the server on `port`.
pub fn respond(head: &[u8], port: u16, snapshot: &StatusSnapshot) -> Vec<u8> {
    let Some(text) = std::str::from_utf8(head).ok() else { return reply(400, "text/plain", "bad request\n") };
    let mut lines = text.split("\r\n");
    let mut request = lines.next().unwrap_or_default().split(' ');
    let (method, path) = (request.next().unwrap_or_default(), request.next().unwrap_or_default());
    let host = lines.take_while(|line| !line.is_empty()).find_map(|line| {
        line.split_once(':').filter(|(name, _)| name.eq_ignore_ascii_case("host")).map(|(_, value)| value.trim())
    });
    let ours = [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")];
    if !host.is_some_and(|host| ours.iter().any(|ours| ours.eq_ignore_ascii_case(host))) {
        return reply(421, "text/plain", "this page answers only on this machine's loopback address\n");
    }
    if method != "GET" {
        return reply(405, "text/plain", "only GET\n");
    }
    match path {
        "/" | "/index.html" => reply(200, "text/html; charset=utf-8", &status_html(snapshot)),
        "/status.json" => reply(200, "application/json", &status_json(snapshot)),
        _ => reply(404, "text/plain", "not found: try / or /status.json\n"),
    }
}

fn reply(status: u16, kind: &str, body: &str) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    let mut bytes = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         X-Content-Type-Options: nosniff\r\nContent-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

/// A status page being served; stopped when dropped.
#[derive(Debug)]
pub struct StatusServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl StatusServer {
    /// Serves `board` on `addr` (a loopback address; port 0 picks one).
    pub fn start(addr: SocketAddr, board: StatusBoard) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(AtomicUsize::new(0));
        let stopping = stop.clone();
        let accept = std::thread::Builder::new().name("status-page".into()).spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                if open.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                    open.fetch_sub(1, Ordering::AcqRel);
                    continue;
                }
                let (board, done) = (board.clone(), open.clone());
                let answered = std::thread::Builder::new().name("status-request".into()).spawn(move || {
                    let _ = answer(stream, addr.port(), &board);
                    done.fetch_sub(1, Ordering::AcqRel);
                });
                if answered.is_err() {
                    open.fetch_sub(1, Ordering::AcqRel);
                }
            }
        })?;
        Ok(Self { addr, stop, accept: Some(accept) })
    }

    /// Where it is served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for StatusServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accepting thread so that it sees the stop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Reads one request's head (within the limits) and answers it.
fn answer(mut stream: TcpStream, port: u16, board: &StatusBoard) -> io::Result<()> {
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    let response = loop {
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buffer[..read]);
        if let Some(end) = head.windows(4).position(|window| window == b"\r\n\r\n") {
            break respond(&head[..end + 2], port, &board.get());
        }
        if head.len() > MAX_REQUEST_HEAD {
            break reply(431, "text/plain", "the request is too large\n");
        }
    };
    stream.write_all(&response)?;
    stream.flush()?;
    // Closed gently: what the asker still sends is read (within limits) until it closes, so
    // that the answer is not lost to a reset.
    stream.shutdown(std::net::Shutdown::Write)?;
    let _ = io::copy(&mut (&mut stream).take(64 * 1024), &mut io::sink());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> StatusSnapshot {
        StatusSnapshot {
            id: "ab".repeat(32),
            name: "Ada's <home> & \"node\"".into(),
            uptime_s: 3725,
            regions: vec!["lobby".into(), "city".into()],
            relay: "off".into(),
            known_peers: 3,
            world_changes: 120,
            stored_bytes: 5 << 20,
            served_bytes: 12 << 30,
            served_to: vec![Served { key: "<script>alert(1)</script>".into(), bytes: 2048 }],
            owner: Some("cd".repeat(32)),
            kept_for: vec![KeptRow {
                key: "ef".repeat(32),
                name: Some("Fay <b>".into()),
                role: "friend".into(),
                named: true,
                quota: 512 << 20,
                models: 3,
                bytes: 3 << 20,
                left_out: 1,
            }],
            kept_models: 3,
            kept_bytes: 3 << 20,
            declined: vec!["12".repeat(32)],
            declined_count: 5,
            receipts: crate::receipts::Contribution {
                people: 40,
                blob_bytes: 12 << 30,
                blobs: 90,
                ..Default::default()
            },
            ..StatusSnapshot::default()
        }
    }

    fn get(path: &str, host: &str) -> String {
        let head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: test\r\n\r\n");
        String::from_utf8(respond(head.as_bytes(), 7780, &snapshot())).expect("text")
    }

    #[test]
    fn the_page_and_its_json_say_what_the_node_does() {
        let page = get("/", "127.0.0.1:7780");
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
        assert!(page.contains("Content-Security-Policy: default-src 'none'"));
        for shown in [
            "1 h 2 min",
            "lobby, city",
            "12.0 GiB",
            "5.0 MiB",
            "<td>120</td>",
            "Fay &lt;b&gt;",
            "<td>friend</td><td>yes</td><td>3 (1 left out: quota full)</td><td>3.0 MiB of 512.0 MiB</td>",
            "Declined (5, not friends of the owner)",
            "served 12.0 GiB to 40 people",
        ] {
            assert!(page.contains(shown), "{shown} in {page}");
        }
        // Names from elsewhere are escaped, never markup.
        assert!(page.contains("Ada&#39;s &lt;home&gt; &amp; &quot;node&quot;"));
        assert!(!page.contains("<script>") && page.contains("&lt;script&gt;"));
        let json = get("/status.json", "localhost:7780");
        let body = json.split("\r\n\r\n").nth(1).expect("a body");
        let value: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(value["world_changes"], 120);
        assert_eq!(value["served_bytes"], 12u64 << 30);
        assert_eq!(value["regions"][1], "city");
        assert_eq!(value["served_to"][0]["bytes"], 2048);
        assert_eq!(value["kept_for"][0]["role"], "friend");
        assert_eq!(value["kept_for"][0]["quota"], 512u64 << 20);
        assert_eq!(value["declined_count"], 5);
        assert_eq!(value["receipts"]["people"], 40);
    }

    #[test]
    fn only_local_gets_of_the_two_pages_are_answered() {
        assert!(get("/", "evil.example:7780").starts_with("HTTP/1.1 421"), "DNS rebinding");
        assert!(get("/", "127.0.0.1:80").starts_with("HTTP/1.1 421"), "another port's name");
        assert!(
            String::from_utf8(respond(b"GET / HTTP/1.1\r\n\r\n", 7780, &snapshot()))
                .expect("text")
                .starts_with("HTTP/1.1 421"),
            "no host"
        );
        assert!(get("/../../etc/passwd", "127.0.0.1:7780").starts_with("HTTP/1.1 404"));
        let post = respond(b"POST / HTTP/1.1\r\nHost: 127.0.0.1:7780\r\n\r\n", 7780, &snapshot());
        assert!(post.starts_with(b"HTTP/1.1 405"));
        assert!(respond(&[0xff, 0xfe, b'\r', b'\n'], 7780, &snapshot()).starts_with(b"HTTP/1.1 400"));
    }

    #[test]
    fn a_real_server_answers_and_refuses_an_endless_request() {
        let board = StatusBoard::default();
        board.set(snapshot());
        let server = StatusServer::start("127.0.0.1:0".parse().expect("an address"), board.clone()).expect("serves");
        let port = server.addr().port();
        let ask = |request: &[u8]| {
            let mut stream = TcpStream::connect(server.addr()).expect("connects");
            stream.set_read_timeout(Some(Duration::from_secs(10))).expect("a timeout");
            stream.write_all(request).expect("asks");
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            String::from_utf8_lossy(&answer).into_owned()
        };
        let json = ask(format!("GET /status.json HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes());
        assert!(json.starts_with("HTTP/1.1 200") && json.contains("\"known_peers\": 3"), "{json}");
        let mut endless = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n").into_bytes();
        endless.extend(std::iter::repeat_n(b'x', 20_000));
        assert!(ask(&endless).starts_with("HTTP/1.1 431"));
        // The board changes, the page follows.
        board.set(StatusSnapshot { known_peers: 9, ..snapshot() });
        let json = ask(format!("GET /status.json HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n").as_bytes());
        assert!(json.contains("\"known_peers\": 9"), "{json}");
        drop(server);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "stopped");
    }
}
