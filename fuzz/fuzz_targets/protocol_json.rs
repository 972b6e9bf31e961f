//! Any text frame: decoded or refused with a message, never a panic; what
//! decodes survives a binary round trip unchanged.
#![no_main]

use dispatch_protocol::{encode_client_binary, parse_client, parse_client_binary};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_client(text) {
        Ok((id, msg)) => {
            let bytes = encode_client_binary(id.clone(), msg.clone()).expect("a decoded message encodes");
            let (id2, msg2) = parse_client_binary(&bytes).expect("and decodes again");
            assert_eq!((id, format!("{msg:?}")), (id2, format!("{msg2:?}")));
        }
        Err(bad) => assert!(!bad.message.is_empty()),
    }
});
