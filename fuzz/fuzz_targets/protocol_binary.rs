//! Any binary frame, client or server side: decoded or refused, never a
//! panic or an allocation beyond the frame limit.
#![no_main]

use dispatch_protocol::{decode_server_binary, encode_client_binary, parse_client_binary};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_client_binary(data) {
        Ok((id, msg)) => {
            // What decoded re-encodes and decodes to the same message. (Not to
            // the same bytes: bincode reads a varint written longer than it
            // needs to be, e.g. 0 as [251, 0, 0] — harmless, found by this target.)
            let again = encode_client_binary(id.clone(), msg.clone()).expect("a decoded message encodes");
            let (id2, msg2) = parse_client_binary(&again).expect("and decodes again");
            assert_eq!((id, format!("{msg:?}")), (id2, format!("{msg2:?}")));
        }
        Err(bad) => assert!(!bad.message.is_empty()),
    }
    let _ = decode_server_binary(data);
});
