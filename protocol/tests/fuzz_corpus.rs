//! Replays the fuzz corpora and the inputs the fuzzers once crashed on
//! (`fuzz/corpus`, `fuzz/regressions`) through the frame decoders, with the
//! fuzz targets' own checks, so every CI run keeps them fixed without
//! libFuzzer.

use std::path::{Path, PathBuf};

use anyhow::Result;
use dispatch_protocol::{decode_server_binary, encode_client_binary, parse_client, parse_client_binary};

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        for entry in std::fs::read_dir(fuzz.join(dir).join(target)).into_iter().flatten().flatten() {
            out.push(entry.path());
        }
    }
    out
}

/// Decoded messages survive a binary round trip unchanged.
fn round_trips(id: Option<String>, msg: dispatch_protocol::ClientMsg) -> Result<()> {
    let bytes = encode_client_binary(id.clone(), msg.clone()).map_err(anyhow::Error::msg)?;
    let (id2, msg2) = parse_client_binary(&bytes).map_err(|e| anyhow::anyhow!(e.message))?;
    assert_eq!((id, format!("{msg:?}")), (id2, format!("{msg2:?}")));
    Ok(())
}

#[test]
fn json_frames_decode_or_are_refused_with_a_message() -> Result<()> {
    let files = inputs("protocol_json");
    assert!(files.len() >= 20, "the seed corpus is committed: {}", files.len());
    for path in files {
        let Ok(text) = String::from_utf8(std::fs::read(&path)?) else { continue };
        match parse_client(&text) {
            Ok((id, msg)) => round_trips(id, msg)?,
            Err(bad) => assert!(!bad.message.is_empty(), "{}", path.display()),
        }
    }
    Ok(())
}

#[test]
fn binary_frames_decode_or_are_refused_with_a_message() -> Result<()> {
    let files = inputs("protocol_binary");
    assert!(files.iter().any(|p| p.to_string_lossy().contains("regressions")), "the crash inputs are kept");
    for path in files {
        let bytes = std::fs::read(&path)?;
        match parse_client_binary(&bytes) {
            Ok((id, msg)) => round_trips(id, msg)?,
            Err(bad) => assert!(!bad.message.is_empty(), "{}", path.display()),
        }
        let _ = decode_server_binary(&bytes);
    }
    Ok(())
}
