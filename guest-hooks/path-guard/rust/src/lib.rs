//! path-guard: file commands must keep their `path` argument inside a root.
//!
//! Config (all optional): `{"commands": ["fs_read", "fs_write", "fs_list"], "root": "/app/data"}`.
//! For a listed command, the JSON args must hold exactly one `path` key with a string value that,
//! read as a POSIX path (relative paths are relative to the root), stays inside the root at every
//! step. Refused with code `path-escape`: `..` that leaves the root (even to come back), absolute
//! paths outside it, backslashes, percent-encoded bytes (`%2e`, `%252f`, `%u002e`), Unicode
//! lookalikes of `/`, `\` and `.`, control and invisible formatting characters, segments made only
//! of dots and spaces (`...`, `.. `: read as `..` by some systems) or `..;`, `~`, drive letters,
//! URLs and `file:`, duplicate `path` keys, and a missing or non-string `path`. Other commands, events and
//! channels pass untouched.

mod policy;

use policy::PathGuard;

airlock_hook::export_hook!(PathGuard);
