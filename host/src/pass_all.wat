;; The smallest Airlock hook: accepts any config and passes every message.
;; It shows the canonical ABI of the `airlock:hook/policy@0.1.0` exports:
;; - `configure(config: string) -> result<_, string>` takes (ptr, len) and returns a pointer to
;;   a return area holding the result (byte 0: 0 = ok, 1 = err; err string at offsets 4, 8);
;; - `inspect(message) -> verdict` takes the message flattened into 15 values (id: i64, kind,
;;   name ptr/len, window ptr/len, webview ptr/len, origin ptr/len, headers ptr/len, body tag,
;;   body ptr/len) and returns a pointer to the verdict (byte 0: 0 = pass, 1 = replace,
;;   2 = reject; payload from offset 4);
;; - `cabi_realloc` lets the host copy strings into this module's memory; it is a bump allocator
;;   that `inspect` rewinds when it returns, so a reused instance does not grow without end.
(module
  (memory (export "memory") 1)
  ;; A bump allocator: nothing is freed one by one; `inspect` rewinds it for the next message.
  (global $heap (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
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
  (func (export "airlock:hook/policy@0.1.0#configure") (param $ptr i32) (param $len i32) (result i32)
    (i32.store8 (i32.const 0) (i32.const 0))
    (i32.const 0))
  (func (export "airlock:hook/policy@0.1.0#inspect")
    (param $id i64) (param $kind i32)
    (param $name i32) (param $name_len i32)
    (param $window i32) (param $window_len i32)
    (param $webview i32) (param $webview_len i32)
    (param $origin i32) (param $origin_len i32)
    (param $headers i32) (param $headers_len i32)
    (param $body_tag i32) (param $body i32) (param $body_len i32)
    (result i32)
    (global.set $heap (i32.const 1024))
    (i32.store8 (i32.const 16) (i32.const 0))
    (i32.const 16))
)
