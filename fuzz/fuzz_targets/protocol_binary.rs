//! Any binary frame, client or server side: decoded or refused, never a
//! panic or an allocation beyond the frame limit.
#![no_main]

use dispatch_gateway::protocol::{decode_server_binary, encode_client_binary, parse_client_binary};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_client_binary(data) {
        Ok((id, msg)) => {
            // What decoded re-encodes to the same bytes (the encoding is canonical).
            let again = encode_client_binary(id, msg).expect("a decoded message encodes");
            assert_eq!(again.as_slice(), data);
        }
        Err(bad) => assert!(!bad.message.is_empty()),
    }
    let _ = decode_server_binary(data);
});
