//! The test chain's Esplora HTTP API: a small HTTP/1.1 server (one thread per connection, one
//! request per connection) and the routes the wallet's Esplora client uses.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use bdk_wallet::bitcoin::consensus::{deserialize, serialize};
use bdk_wallet::bitcoin::hashes::sha256;
use bdk_wallet::bitcoin::hex::{DisplayHex, FromHex};
use bdk_wallet::bitcoin::{BlockHash, MerkleBlock, OutPoint, Transaction, Txid};
use serde_json::{Value, json};

use super::{State, TxEntry, lock, merkle_branch, script_hash};

/// The largest request body the server reads.
const MAX_BODY_BYTES: usize = 1_000_000;
/// The largest request line plus headers the server reads.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long a connection may sit idle before the server gives up on it.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Esplora pages confirmed history 25 transactions at a time.
const CHAIN_PAGE: usize = 25;
/// Esplora lists at most 50 mempool transactions for a script.
const MEMPOOL_PAGE: usize = 50;
/// Esplora's `/blocks` lists 10 blocks.
const BLOCKS_PAGE: usize = 10;

/// The accept loop: one thread per connection until the chain is dropped.
pub(super) fn serve(listener: TcpListener, state: &Arc<Mutex<State>>, shutdown: &AtomicBool) {
    for stream in listener.incoming() {
        if shutdown.load(Ordering::SeqCst) {
            break;
        }
        match stream {
            Ok(stream) => {
                let state = Arc::clone(state);
                // If no thread can be had, the stream is dropped and the client sees it closed.
                let _ = thread::Builder::new()
                    .name("test-chain-http".to_owned())
                    .spawn(move || handle_connection(stream, &state));
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// An HTTP request as far as the server cares.
struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

/// An HTTP response: status, content type and body.
struct Response {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Response {
    fn text(status: u16, text: impl Into<String>) -> Response {
        Response { status, content_type: "text/plain", body: text.into().into_bytes() }
    }

    fn json(value: &Value) -> Response {
        Response { status: 200, content_type: "application/json", body: value.to_string().into_bytes() }
    }

    fn bytes(body: Vec<u8>) -> Response {
        Response { status: 200, content_type: "application/octet-stream", body }
    }

    fn not_found(what: &str) -> Response {
        Response::text(404, format!("{what} not found"))
    }
}

fn handle_connection(mut stream: TcpStream, state: &Mutex<State>) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let response = match read_request(&mut stream) {
        Ok(request) => route(&request, state),
        Err(message) => Response::text(400, message),
    };
    let reason = match response.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    if stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(&response.body))
        .and_then(|()| stream.flush())
        .is_err()
    {
        return;
    }
    // Half-close, then let the client finish: closing with unread bytes would reset the
    // connection and could lose the response.
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = io::copy(&mut (&mut stream).take(MAX_BODY_BYTES as u64), &mut io::sink());
}

/// Reads one request: request line, headers and a `Content-Length` body. The error is the
/// message for a 400 answer.
fn read_request(stream: &mut TcpStream) -> Result<Request, String> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break end;
        }
        if buffer.len() > MAX_HEAD_BYTES {
            return Err(format!("the request line and headers are over the {MAX_HEAD_BYTES}-byte limit"));
        }
        let read = stream.read(&mut chunk).map_err(|error| format!("could not read the request: {error}"))?;
        if read == 0 {
            return Err("the connection closed before the request's headers ended".to_owned());
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = std::str::from_utf8(&buffer[..head_end]).map_err(|_| "the request headers are not UTF-8".to_owned())?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("malformed request line '{request_line}'"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(format!("unsupported protocol '{version}'; this server speaks HTTP/1.1"));
    }
    let method = method.to_owned();
    let path = target.split(['?', '#']).next().unwrap_or_default().to_owned();
    let mut content_length = 0;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("malformed header line '{line}'"));
        };
        if name.trim().eq_ignore_ascii_case("content-length") {
            content_length =
                value.trim().parse::<usize>().map_err(|_| format!("bad Content-Length '{}'", value.trim()))?;
        } else if name.trim().eq_ignore_ascii_case("transfer-encoding") {
            return Err("chunked request bodies are not supported; send a Content-Length".to_owned());
        }
    }
    if content_length > MAX_BODY_BYTES {
        return Err(format!("a request body of {content_length} bytes is over the {MAX_BODY_BYTES}-byte limit"));
    }
    let mut body = buffer.split_off(head_end + 4);
    while body.len() < content_length {
        let read = stream.read(&mut chunk).map_err(|error| format!("could not read the request body: {error}"))?;
        if read == 0 {
            return Err(format!("the connection closed after {} of {content_length} body bytes", body.len()));
        }
        body.extend_from_slice(&chunk[..read]);
    }
    body.truncate(content_length);
    Ok(Request { method, path, body })
}

fn route(request: &Request, state: &Mutex<State>) -> Response {
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    let mut state = lock(state);
    state.requests = state.requests.saturating_add(1);
    if state.fail_paths.as_deref().is_some_and(|part| request.path.contains(part)) {
        return Response::text(502, "the server failed (as the test asked)");
    }
    let result = match (request.method.as_str(), segments.as_slice()) {
        ("POST", ["tx"]) => Ok(post_tx(&mut state, &request.body)),
        ("GET", path) => get(&state, path),
        (method, _) => Err(Response::text(404, format!("no {method} endpoint at {}", request.path))),
    };
    result.unwrap_or_else(|response| response)
}

/// `POST /tx`: a transaction in hex into the mempool; answers its txid.
fn post_tx(state: &mut State, body: &[u8]) -> Response {
    let rpc_error = |code: i32, message: &str| {
        let error = json!({ "code": code, "message": message });
        Response::text(400, format!("sendrawtransaction RPC error: {error}"))
    };
    let decoded = std::str::from_utf8(body)
        .ok()
        .and_then(|text| Vec::<u8>::from_hex(text.trim()).ok())
        .and_then(|bytes| deserialize::<Transaction>(&bytes).ok());
    let Some(tx) = decoded else {
        return rpc_error(-22, "TX decode failed: the body must be a transaction in hex");
    };
    match state.accept(&tx) {
        Ok(txid) => Response::text(200, txid.to_string()),
        Err(error) => rpc_error(error.rpc_code(), &error.to_string()),
    }
}

fn get(state: &State, path: &[&str]) -> Result<Response, Response> {
    let tip = state.tip_height();
    Ok(match path {
        ["blocks", "tip", "height"] => Response::text(200, tip.to_string()),
        ["blocks", "tip", "hash"] => {
            Response::text(200, state.blocks.last().map(|block| block.block_hash().to_string()).unwrap_or_default())
        }
        ["block-height", height] => {
            let height = usize::try_from(parse::<u32>(height, "height")?).unwrap_or(usize::MAX);
            let block = state.blocks.get(height).ok_or_else(|| Response::not_found("Block"))?;
            Response::text(200, block.block_hash().to_string())
        }
        ["block", hash, rest @ ..] => {
            let hash = parse::<BlockHash>(hash, "block hash")?;
            let height = state.heights.get(&hash).copied().ok_or_else(|| Response::not_found("Block"))?;
            get_block(state, height, rest)?
        }
        ["blocks"] => recent_blocks(state, tip),
        ["blocks", height] => recent_blocks(state, parse::<u32>(height, "height")?.min(tip)),
        ["tx", txid, rest @ ..] => {
            let txid = parse::<Txid>(txid, "txid")?;
            let entry = state.txs.get(&txid).ok_or_else(|| Response::not_found("Transaction"))?;
            get_tx(state, txid, entry, rest)?
        }
        ["scripthash", hash, rest @ ..] => {
            if hash.len() != 64 {
                return Err(Response::text(400, format!("invalid script hash '{hash}': expected 64 hex digits")));
            }
            get_script_hash(state, &parse::<sha256::Hash>(hash, "script hash")?, rest)?
        }
        ["mempool", "txids"] => Response::json(&json!(state.mempool.iter().map(Txid::to_string).collect::<Vec<_>>())),
        ["fee-estimates"] => Response::json(&json!({ "1": 2.0, "6": 1.0, "144": 1.0 })),
        _ => return Err(Response::text(404, "no such endpoint")),
    })
}

/// Parses a path segment, answering 400 if it does not parse.
fn parse<T: FromStr>(text: &str, what: &str) -> Result<T, Response> {
    text.parse().map_err(|_| Response::text(400, format!("invalid {what} '{text}'")))
}

/// `/blocks[/{height}]`: the 10 blocks at and below `height`, newest first.
fn recent_blocks(state: &State, height: u32) -> Response {
    let top = usize::try_from(height).unwrap_or(usize::MAX).min(state.blocks.len().saturating_sub(1));
    let blocks: Vec<Value> = (0..=top).rev().take(BLOCKS_PAGE).map(|height| state.block_json(height)).collect();
    Response::json(&json!(blocks))
}

/// `/block/{hash}/...` for the block at `height`.
fn get_block(state: &State, height: u32, rest: &[&str]) -> Result<Response, Response> {
    let index = usize::try_from(height).unwrap_or(usize::MAX);
    let block = state.blocks.get(index).ok_or_else(|| Response::not_found("Block"))?;
    let txids = || block.txdata.iter().map(Transaction::compute_txid);
    Ok(match rest {
        [] => Response::json(&state.block_json(index)),
        ["header"] => {
            let mut header = block.header;
            if state.forge_headers {
                header.nonce = header.nonce.wrapping_add(1);
            }
            Response::text(200, serialize(&header).to_lower_hex_string())
        }
        ["raw"] => Response::bytes(serialize(block)),
        ["status"] => Response::json(&json!({
            "in_best_chain": true,
            "height": height,
            "next_best": state.blocks.get(index + 1).map(|next| next.block_hash().to_string()),
        })),
        ["txids"] => Response::json(&json!(txids().map(|txid| txid.to_string()).collect::<Vec<_>>())),
        ["txid", position] => {
            let txid =
                txids().nth(parse::<usize>(position, "index")?).ok_or_else(|| Response::not_found("Transaction"))?;
            Response::text(200, txid.to_string())
        }
        _ => return Err(Response::text(404, "no such block endpoint")),
    })
}

/// `/tx/{txid}/...` for a known transaction.
fn get_tx(state: &State, txid: Txid, entry: &TxEntry, rest: &[&str]) -> Result<Response, Response> {
    let confirmed = || {
        entry
            .place
            .and_then(|place| Some((place, state.blocks.get(usize::try_from(place.height).ok()?)?)))
            .ok_or_else(|| Response::text(404, "Transaction not found or is unconfirmed"))
    };
    Ok(match rest {
        [] => Response::json(&state.tx_json(txid, entry)),
        ["raw"] => Response::bytes(serialize(&entry.tx)),
        ["hex"] => Response::text(200, serialize(&entry.tx).to_lower_hex_string()),
        ["status"] => Response::json(&state.status_json(entry.place)),
        ["merkle-proof"] => {
            let (place, block) = confirmed()?;
            let txids: Vec<Txid> = block.txdata.iter().map(Transaction::compute_txid).collect();
            let merkle: Vec<String> = merkle_branch(&txids, place.index).iter().map(Txid::to_string).collect();
            Response::json(&json!({ "block_height": place.height, "merkle": merkle, "pos": place.index }))
        }
        ["merkleblock-proof"] => {
            let (_, block) = confirmed()?;
            let proof = MerkleBlock::from_block_with_predicate(block, |candidate| *candidate == txid);
            Response::text(200, serialize(&proof).to_lower_hex_string())
        }
        ["outspend", vout] => {
            let vout = parse::<u32>(vout, "output index")?;
            if usize::try_from(vout).map_or(true, |vout| vout >= entry.tx.output.len()) {
                return Err(Response::not_found("Output"));
            }
            Response::json(&state.outspend_json(OutPoint::new(txid, vout)))
        }
        ["outspends"] => {
            let statuses: Vec<Value> = (0u32..)
                .zip(&entry.tx.output)
                .map(|(vout, _)| state.outspend_json(OutPoint::new(txid, vout)))
                .collect();
            Response::json(&json!(statuses))
        }
        _ => return Err(Response::text(404, "no such transaction endpoint")),
    })
}

/// `/scripthash/{hash}/...`.
fn get_script_hash(state: &State, hash: &sha256::Hash, rest: &[&str]) -> Result<Response, Response> {
    let (mempool, confirmed) = state.script_history(hash);
    let page = |txs: &[(Txid, &TxEntry)], count: usize| -> Vec<Value> {
        txs.iter().take(count).map(|(txid, entry)| state.tx_json(*txid, entry)).collect()
    };
    Ok(match rest {
        ["txs"] => {
            let mut txs = page(&mempool, MEMPOOL_PAGE);
            txs.extend(page(&confirmed, CHAIN_PAGE));
            Response::json(&json!(txs))
        }
        ["txs", "chain"] => Response::json(&json!(page(&confirmed, CHAIN_PAGE))),
        ["txs", "chain", last_seen] => {
            let last_seen = parse::<Txid>(last_seen, "txid")?;
            // As Esplora does: the page after `last_seen`, or nothing if it is not in the history.
            let after = confirmed.iter().position(|(txid, _)| *txid == last_seen).map_or(confirmed.len(), |at| at + 1);
            Response::json(&json!(page(&confirmed[after..], CHAIN_PAGE)))
        }
        ["txs", "mempool"] => Response::json(&json!(page(&mempool, MEMPOOL_PAGE))),
        ["utxo"] => {
            let utxos: Vec<Value> = mempool
                .iter()
                .chain(&confirmed)
                .flat_map(|(txid, entry)| {
                    (0u32..).zip(&entry.tx.output).filter_map(move |(vout, output)| {
                        let outpoint = OutPoint::new(*txid, vout);
                        let unspent =
                            script_hash(&output.script_pubkey) == *hash && !state.spends.contains_key(&outpoint);
                        unspent.then(|| {
                            json!({
                                "txid": txid.to_string(),
                                "vout": vout,
                                "status": state.status_json(entry.place),
                                "value": output.value.to_sat(),
                            })
                        })
                    })
                })
                .collect();
            Response::json(&json!(utxos))
        }
        _ => return Err(Response::text(404, "no such scripthash endpoint")),
    })
}
