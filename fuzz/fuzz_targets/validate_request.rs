//! The gateway's request validation on arbitrary requests: never a panic, and a JSON body it
//! accepts always parses.
#![no_main]

use airlock::{Body, GatewayLimits, Kind, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&tag, rest)) = data.split_first() else {
        return;
    };
    let kind = [Kind::Command, Kind::Event, Kind::Channel][tag as usize % 3];
    let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let name = String::from_utf8_lossy(&rest[..split]).into_owned();
    let payload = rest.get(split + 1..).unwrap_or_default();
    let body = match (tag & 0x80 == 0, std::str::from_utf8(payload)) {
        (true, Ok(text)) => Body::Json(text.to_owned()),
        _ => Body::Bytes(payload.to_vec()),
    };
    let request = Request::new(kind, name, body);
    let limits = GatewayLimits::default();
    if limits.validate(&request).is_ok()
        && let Body::Json(text) = &request.body
    {
        assert!(
            serde_json_valid(text),
            "accepted a body that is not JSON: {text:?}"
        );
        if kind == Kind::Command {
            assert!(
                text.trim_start().starts_with('{'),
                "command args not an object: {text:?}"
            );
        }
    }
});

fn serde_json_valid(text: &str) -> bool {
    airlock::jsonl::parse_line(&format!(
        r#"{{"kind":"event","name":"e","payload":{text}}}"#
    ))
    .is_ok()
}
