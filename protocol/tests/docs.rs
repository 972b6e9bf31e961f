//! `docs/protocol.md` shows server frames byte for byte: every one-line JSON
//! example of a server message there decodes, and encodes back to exactly
//! the same text; every client example parses.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use dispatch_protocol::{ClientMsg, ServerMsg, decode_server, encode_server, parse_client};

const DOC: &str = include_str!("../../docs/protocol.md");

/// The JSON objects the document shows: lines of ```json blocks, and
/// back-quoted `{…}` examples in tables.
fn examples() -> Vec<String> {
    let mut out = Vec::new();
    let mut in_json = false;
    for line in DOC.lines() {
        if line.starts_with("```") {
            in_json = line.trim() == "```json";
            continue;
        }
        if in_json && line.starts_with('{') {
            out.push(line.trim().to_owned());
        } else if !in_json {
            for piece in line.split('`').skip(1).step_by(2) {
                if piece.starts_with("{\"type\"") {
                    out.push(piece.to_owned());
                }
            }
        }
    }
    out
}

#[test]
fn every_server_frame_example_is_what_the_server_writes() {
    let mut checked = Vec::new();
    for example in examples() {
        let is_server = ServerMsg::KINDS.iter().any(|k| example.starts_with(&format!("{{\"type\":\"{k}\"")));
        if !is_server {
            continue;
        }
        let msg = decode_server(&example).unwrap_or_else(|e| panic!("{example}: {e}"));
        assert_eq!(encode_server(&msg), example, "protocol.md shows a frame the server does not write");
        checked.push(msg.kind());
    }
    for kind in ServerMsg::KINDS {
        assert!(checked.contains(&kind), "protocol.md has no exact example of `{kind}`: {checked:?}");
    }
}

#[test]
fn every_client_frame_example_parses() {
    let mut parsed = Vec::new();
    for example in examples() {
        let is_server = ServerMsg::KINDS.iter().any(|k| example.starts_with(&format!("{{\"type\":\"{k}\"")));
        if is_server || example.contains("...") || example.contains('…') {
            continue;
        }
        let (_, msg) = parse_client(&example).unwrap_or_else(|e| panic!("{example}: {}", e.message));
        parsed.push(msg.kind());
    }
    for kind in ClientMsg::KINDS {
        assert!(parsed.contains(&kind), "protocol.md has no parsing example of `{kind}`");
    }
}
