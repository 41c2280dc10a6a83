//! The JSON Lines message reader: never a panic, and what it reads writes back to a line that
//! reads the same.
#![no_main]

use airlock::jsonl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((source, request)) = jsonl::parse_line(text) else {
        return;
    };
    let line = jsonl::request_line(&source, &request).expect("a parsed message writes back");
    let again = jsonl::parse_line(line.get()).expect("a written line reads back");
    assert_eq!(again, (source, request));
});
