//! The core's envelope opener on hostile bytes: never a panic, and a sealed envelope with any
//! byte changed never opens.
#![no_main]

use std::sync::OnceLock;

use airlock::seal::{self, Opener, Sealer};
use airlock::{Body, Envelope, Kind, Message, SealConfig, Source};
use libfuzzer_sys::fuzz_target;

fn pair() -> &'static (Sealer, Opener) {
    static PAIR: OnceLock<(Sealer, Opener)> = OnceLock::new();
    PAIR.get_or_init(|| seal::channel(SealConfig::default()).expect("keys"))
}

fuzz_target!(|data: &[u8]| {
    let (sealer, opener) = pair();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        // Raw bytes from the outside: must be refused without a panic.
        assert!(opener.open(Envelope::from_bytes(rest.to_vec())).is_err());
        return;
    }
    // A real envelope, XORed with the input: opens only if nothing changed.
    let message = Message {
        id: 7,
        kind: Kind::Command,
        name: "fs_read".into(),
        source: Source::new("main", "main", "tauri://localhost"),
        headers: vec![],
        body: Body::Json(r#"{"path":"notes.txt"}"#.into()),
    };
    let mut bytes = sealer.seal(&message).expect("seal").into_bytes();
    let mut changed = false;
    for (byte, flip) in bytes.iter_mut().zip(rest) {
        *byte ^= flip;
        changed |= *flip != 0;
    }
    match opener.open(Envelope::from_bytes(bytes)) {
        Ok(opened) => {
            assert!(!changed, "a tampered envelope opened");
            assert_eq!(opened, message);
        }
        Err(_) => assert!(changed, "an untouched envelope was refused"),
    }
});
