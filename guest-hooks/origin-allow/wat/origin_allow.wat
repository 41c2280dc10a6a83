;; origin-allow in hand-written WAT: rejects messages whose source origin is not in a list.
;; The same policy, code and verdicts as guest-hooks/origin-allow/rust (see its src/lib.rs).
;;
;; Config: `{"origins": ["tauri://localhost", "http://tauri.localhost", "https://tauri.localhost"]}`
;; (the default: Tauri's own origins). Origins compare ignoring ASCII case, trailing `/`s, and the
;; default port (`:80` for http, `:443` for https). Every kind of message is checked; a refused
;; one gets code `origin-denied`.
;;
;; What this hook reads of the config, precisely: a blank config (only the whitespace characters
;; U+0009..U+000D and U+0020), `{}`, or an object whose only field is `origins`, a list of JSON
;; strings without escapes (JSON whitespace allowed between tokens). Any other config is refused
;; with an error, where the Rust hook refuses it too, except for these, which the Rust hook
;; accepts and this one refuses (fail closed: the hook is not loaded, the error says why): strings
;; holding `\` escapes, and configs made only of non-ASCII whitespace (an array, serde's
;; sequence form, both refuse). For every config both accept, the verdicts are the same.
;;
;; Memory: bytes 0..16 are `configure`'s return area, 16..36 `inspect`'s, 64..668 constant
;; strings, and a bump heap from 1024. `configure` keeps the normalized origins on the heap and
;; moves the heap's floor above them; `inspect`'s post-return function rewinds the heap to that
;; floor, so a reused instance does not grow.
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (global $floor (mut i32) (i32.const 1024))
  ;; The allowed origins, normalized: a table of (ptr, len) pairs.
  (global $origins (mut i32) (i32.const 644))
  (global $origins_len (mut i32) (i32.const 3))
  ;; The config parser's position and end.
  (global $pos (mut i32) (i32.const 0))
  (global $end (mut i32) (i32.const 0))

  (data (i32.const 64) "tauri://localhost") ;; TAURI, 17 bytes
  (data (i32.const 84) "http://tauri.localhost") ;; HTTP, 22 bytes
  (data (i32.const 108) "https://tauri.localhost") ;; HTTPS, 23 bytes
  (data (i32.const 132) ":80") ;; PORT80, 3 bytes
  (data (i32.const 136) ":443") ;; PORT443, 4 bytes
  (data (i32.const 140) "origins") ;; ORIGINS, 7 bytes
  (data (i32.const 148) "origin-denied") ;; CODE, 13 bytes
  (data (i32.const 164) "origin \"") ;; R1, 8 bytes
  (data (i32.const 172) "\" is not allowed") ;; R2, 16 bytes
  (data (i32.const 188) "invalid config: expected an object such as {\"origins\": [\"tauri://localhost\"]} (this WAT hook reads only that form)") ;; E_OBJECT, 114 bytes
  (data (i32.const 304) "invalid config: unknown field `") ;; E_UNKNOWN1, 31 bytes
  (data (i32.const 336) "`, expected `origins`") ;; E_UNKNOWN2, 21 bytes
  (data (i32.const 360) "invalid config: duplicate field `origins`") ;; E_DUP, 41 bytes
  (data (i32.const 404) "invalid config: `origins` must be a list of strings") ;; E_LIST, 51 bytes
  (data (i32.const 456) "invalid config: a string holds an escape or a control character (this WAT hook reads plain strings only)") ;; E_STRING, 104 bytes
  (data (i32.const 560) "invalid config: malformed JSON") ;; E_SYNTAX, 30 bytes
  (data (i32.const 592) "invalid config: trailing characters after the object") ;; E_TRAILING, 52 bytes
  (data (i32.const 644) "\40\00\00\00\11\00\00\00\54\00\00\00\16\00\00\00\6c\00\00\00\17\00\00\00") ;; the default origins, as (ptr, len) pairs
  (func $cabi_realloc (export "cabi_realloc")
    (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $at i32) (local $end i32) (local $have i32)
    (local.set $at
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $at) (local.get $size)))
    (local.set $have (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow
                (i32.shr_u
                  (i32.add (i32.sub (local.get $end) (local.get $have)) (i32.const 65535))
                  (i32.const 16)))
              (i32.const -1))
          (then unreachable))))
    (global.set $heap (local.get $end))
    (local.get $at))

  ;; Copies n bytes to the top of the heap; returns where.
  (func $append (param $src i32) (param $n i32) (result i32)
    (local $at i32)
    (local.set $at (call $cabi_realloc (i32.const 0) (i32.const 0) (i32.const 1) (local.get $n)))
    (memory.copy (local.get $at) (local.get $src) (local.get $n))
    (local.get $at))

  (func $eq (param $a i32) (param $an i32) (param $b i32) (param $bn i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $an) (local.get $bn)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $an)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $b) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  ;; Whether bytes [p, p+n) start with [s, s+sn).
  (func $starts (param $p i32) (param $n i32) (param $s i32) (param $sn i32) (result i32)
    (if (i32.lt_u (local.get $n) (local.get $sn)) (then (return (i32.const 0))))
    (call $eq (local.get $p) (local.get $sn) (local.get $s) (local.get $sn)))

  ;; Whether bytes [p, p+n) end with [s, s+sn).
  (func $ends (param $p i32) (param $n i32) (param $s i32) (param $sn i32) (result i32)
    (if (i32.lt_u (local.get $n) (local.get $sn)) (then (return (i32.const 0))))
    (call $eq (i32.sub (i32.add (local.get $p) (local.get $n)) (local.get $sn)) (local.get $sn)
      (local.get $s) (local.get $sn)))

  ;; A normalized copy on the heap: trailing `/`s dropped, ASCII lowercased, then `:80` cut from
  ;; an `http://` origin or `:443` from an `https://` one. Returns (ptr, len).
  (func $normalize (param $p i32) (param $n i32) (result i32 i32)
    (local $at i32) (local $i i32) (local $c i32)
    (block $trimmed
      (loop $trim
        (br_if $trimmed (i32.eqz (local.get $n)))
        (br_if $trimmed (i32.ne (i32.load8_u (i32.add (local.get $p) (i32.sub (local.get $n) (i32.const 1))))
                                (i32.const 47)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $trim)))
    (local.set $at (call $append (local.get $p) (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $c (i32.load8_u (i32.add (local.get $at) (local.get $i))))
        (if (i32.and (i32.ge_u (local.get $c) (i32.const 65)) (i32.le_u (local.get $c) (i32.const 90)))
          (then (i32.store8 (i32.add (local.get $at) (local.get $i)) (i32.add (local.get $c) (i32.const 32)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (if (i32.and (call $starts (local.get $at) (local.get $n) (i32.const 84) (i32.const 7))
                 (call $ends (local.get $at) (local.get $n) (i32.const 132) (i32.const 3)))
      (then (return (local.get $at) (i32.sub (local.get $n) (i32.const 3)))))
    (if (i32.and (call $starts (local.get $at) (local.get $n) (i32.const 108) (i32.const 8))
                 (call $ends (local.get $at) (local.get $n) (i32.const 136) (i32.const 4)))
      (then (return (local.get $at) (i32.sub (local.get $n) (i32.const 4)))))
    (local.get $at) (local.get $n))

  ;; ---- configure -----------------------------------------------------------------------------

  ;; Skips JSON whitespace; returns the next byte, or -1 at the end.
  (func $peek (result i32)
    (local $c i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (global.get $pos) (global.get $end)))
        (local.set $c (i32.load8_u (global.get $pos)))
        (br_if $done (i32.eqz (i32.or (i32.or (i32.eq (local.get $c) (i32.const 32)) (i32.eq (local.get $c) (i32.const 9)))
                                      (i32.or (i32.eq (local.get $c) (i32.const 10)) (i32.eq (local.get $c) (i32.const 13))))))
        (global.set $pos (i32.add (global.get $pos) (i32.const 1)))
        (br $next)))
    (if (i32.ge_u (global.get $pos) (global.get $end)) (then (return (i32.const -1))))
    (i32.load8_u (global.get $pos)))

  ;; A plain string at $pos (after its opening quote): returns (ptr, len), or (-1, error) for an
  ;; escape, a control character or a missing closing quote.
  (func $string (result i32 i32)
    (local $start i32) (local $c i32)
    (global.set $pos (i32.add (global.get $pos) (i32.const 1)))
    (local.set $start (global.get $pos))
    (loop $next
      (if (i32.ge_u (global.get $pos) (global.get $end))
        (then (return (i32.const -1) (i32.const 560))))
      (local.set $c (i32.load8_u (global.get $pos)))
      (global.set $pos (i32.add (global.get $pos) (i32.const 1)))
      (if (i32.eq (local.get $c) (i32.const 34))
        (then (return (local.get $start) (i32.sub (i32.sub (global.get $pos) (i32.const 1)) (local.get $start)))))
      (if (i32.or (i32.eq (local.get $c) (i32.const 92)) (i32.lt_u (local.get $c) (i32.const 32)))
        (then (return (i32.const -1) (i32.const 456))))
      (br $next))
    (unreachable))

  ;; Writes the error `result` for a constant message and returns the return area.
  (func $fail (param $msg i32) (param $len i32) (result i32)
    (i32.store8 (i32.const 0) (i32.const 1))
    (i32.store (i32.const 4) (local.get $msg))
    (i32.store (i32.const 8) (local.get $len))
    (i32.const 0))

  ;; The length of a constant error message, found by its address.
  (func $message_len (param $msg i32) (result i32)
    (if (i32.eq (local.get $msg) (i32.const 456)) (then (return (i32.const 104))))
    (i32.const 30))

  (func (export "airlock:hook/policy@0.1.0#configure") (param $ptr i32) (param $len i32) (result i32)
    (local $i i32) (local $c i32) (local $blank i32) (local $seen i32)
    (local $key i32) (local $key_len i32) (local $s i32) (local $n i32) (local $table i32)
    (local $count i32) (local $norm i32) (local $norm_len i32) (local $slot i32) (local $msg i32)
    ;; Blank (only U+0009..U+000D and spaces): the default list.
    (local.set $blank (i32.const 1))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $c (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (if (i32.eqz (i32.or (i32.eq (local.get $c) (i32.const 32))
                             (i32.and (i32.ge_u (local.get $c) (i32.const 9)) (i32.le_u (local.get $c) (i32.const 13)))))
          (then (local.set $blank (i32.const 0)) (br $done)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (global.set $origins (i32.const 644))
    (global.set $origins_len (i32.const 3))
    (if (local.get $blank)
      (then
        (global.set $floor (global.get $heap))
        (i32.store8 (i32.const 0) (i32.const 0))
        (return (i32.const 0))))
    (global.set $pos (local.get $ptr))
    (global.set $end (i32.add (local.get $ptr) (local.get $len)))
    (if (i32.ne (call $peek) (i32.const 123)) (then (return (call $fail (i32.const 188) (i32.const 114)))))
    (global.set $pos (i32.add (global.get $pos) (i32.const 1)))
    (if (i32.eq (call $peek) (i32.const 125))
      (then (global.set $pos (i32.add (global.get $pos) (i32.const 1))))
      (else
        (loop $member
          (if (i32.ne (call $peek) (i32.const 34)) (then (return (call $fail (i32.const 560) (i32.const 30)))))
          (call $string) (local.set $key_len) (local.set $key)
          (if (i32.eq (local.get $key) (i32.const -1))
            (then (return (call $fail (local.get $key_len) (call $message_len (local.get $key_len))))))
          (if (i32.eqz (call $eq (local.get $key) (local.get $key_len) (i32.const 140) (i32.const 7)))
            (then
              (local.set $msg (call $append (i32.const 304) (i32.const 31)))
              (drop (call $append (local.get $key) (local.get $key_len)))
              (drop (call $append (i32.const 336) (i32.const 21)))
              (return (call $fail (local.get $msg) (i32.sub (global.get $heap) (local.get $msg))))))
          (if (local.get $seen) (then (return (call $fail (i32.const 360) (i32.const 41)))))
          (local.set $seen (i32.const 1))
          (if (i32.ne (call $peek) (i32.const 58)) (then (return (call $fail (i32.const 560) (i32.const 30)))))
          (global.set $pos (i32.add (global.get $pos) (i32.const 1)))
          (if (i32.ne (call $peek) (i32.const 91)) (then (return (call $fail (i32.const 404) (i32.const 51)))))
          (global.set $pos (i32.add (global.get $pos) (i32.const 1)))
          ;; The table: (ptr, len) pairs, filled as the strings are read (their normalized
          ;; copies go to the heap too, so the table is built in a separate region first).
          (local.set $count (i32.const 0))
          (local.set $table (call $cabi_realloc (i32.const 0) (i32.const 0) (i32.const 4)
                                (i32.mul (i32.const 8) (i32.add (i32.div_u (local.get $len) (i32.const 3)) (i32.const 1)))))
          (if (i32.eq (call $peek) (i32.const 93))
            (then (global.set $pos (i32.add (global.get $pos) (i32.const 1))))
            (else
              (loop $item
                (if (i32.ne (call $peek) (i32.const 34)) (then (return (call $fail (i32.const 404) (i32.const 51)))))
                (call $string) (local.set $n) (local.set $s)
                (if (i32.eq (local.get $s) (i32.const -1))
                  (then (return (call $fail (local.get $n) (call $message_len (local.get $n))))))
                (call $normalize (local.get $s) (local.get $n)) (local.set $norm_len) (local.set $norm)
                (local.set $slot (i32.add (local.get $table) (i32.mul (local.get $count) (i32.const 8))))
                (i32.store (local.get $slot) (local.get $norm))
                (i32.store offset=4 (local.get $slot) (local.get $norm_len))
                (local.set $count (i32.add (local.get $count) (i32.const 1)))
                (local.set $c (call $peek))
                (global.set $pos (i32.add (global.get $pos) (i32.const 1)))
                (br_if $item (i32.eq (local.get $c) (i32.const 44)))
                (if (i32.ne (local.get $c) (i32.const 93)) (then (return (call $fail (i32.const 560) (i32.const 30))))))))
          (global.set $origins (local.get $table))
          (global.set $origins_len (local.get $count))
          (local.set $c (call $peek))
          (global.set $pos (i32.add (global.get $pos) (i32.const 1)))
          (br_if $member (i32.eq (local.get $c) (i32.const 44)))
          (if (i32.ne (local.get $c) (i32.const 125)) (then (return (call $fail (i32.const 560) (i32.const 30))))))))
    (if (i32.ne (call $peek) (i32.const -1))
      (then
        (global.set $origins (i32.const 644))
        (global.set $origins_len (i32.const 3))
        (return (call $fail (i32.const 592) (i32.const 52)))))
    (global.set $floor (global.get $heap))
    (i32.store8 (i32.const 0) (i32.const 0))
    (i32.const 0))

  ;; ---- inspect -------------------------------------------------------------------------------

  (func (export "airlock:hook/policy@0.1.0#inspect")
    (param $id i64) (param $kind i32)
    (param $name i32) (param $name_len i32)
    (param $window i32) (param $window_len i32)
    (param $webview i32) (param $webview_len i32)
    (param $origin i32) (param $origin_len i32)
    (param $headers i32) (param $headers_len i32)
    (param $body_tag i32) (param $body i32) (param $body_len i32)
    (result i32)
    (local $norm i32) (local $norm_len i32) (local $i i32) (local $entry i32) (local $reason i32)
    (call $normalize (local.get $origin) (local.get $origin_len))
    (local.set $norm_len) (local.set $norm)
    (block $denied
      (loop $next
        (br_if $denied (i32.ge_u (local.get $i) (global.get $origins_len)))
        (local.set $entry (i32.add (global.get $origins) (i32.mul (local.get $i) (i32.const 8))))
        (if (call $eq (local.get $norm) (local.get $norm_len)
                      (i32.load (local.get $entry)) (i32.load offset=4 (local.get $entry)))
          (then
            (i32.store8 (i32.const 16) (i32.const 0))
            (return (i32.const 16))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.set $reason (call $append (i32.const 164) (i32.const 8)))
    (drop (call $append (local.get $origin) (local.get $origin_len)))
    (drop (call $append (i32.const 172) (i32.const 16)))
    (i32.store8 (i32.const 16) (i32.const 2))
    (i32.store (i32.const 20) (i32.const 148))
    (i32.store (i32.const 24) (i32.const 13))
    (i32.store (i32.const 28) (local.get $reason))
    (i32.store (i32.const 32) (i32.sub (global.get $heap) (local.get $reason)))
    (i32.const 16))

  ;; After the host has read a verdict: everything the message and the verdict used goes.
  (func (export "cabi_post_airlock:hook/policy@0.1.0#inspect") (param i32)
    (global.set $heap (global.get $floor)))
)
