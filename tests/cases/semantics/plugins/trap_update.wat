;; The example mean plugin with `mlc_agg_update` replaced by a trap: a plugin that fails at
;; evaluation time, for tests that its failure is contained to its own expect.
;; mean: the arithmetic mean of a numeric column, skipping nulls, written by hand against
;; mlc plugin ABI version 1 (docs/plugins.md). It shows the whole ABI in one screen and is
;; the plugin the host benchmark compares with the native `mean`.
;;
;; Memory map: 0x100 metadata JSON, 0x400 error messages, 0x800 aggregate states
;; (256 slots of 24 bytes: in-use flag, sum, count), 0x10000.. bump-allocated heap.
(module
  (memory (export "memory") 2)

  (data (i32.const 0x100) "{\"name\":\"wat_mean\",\"args\":[{\"name\":\"x\",\"type\":\"float\"}],\"description\":\"Mean of x, skipping nulls (hand-written WAT example)\",\"version\":\"1.0.0\"}")
  (global $meta_len i32 (i32.const 143))  ;; bytes in the JSON above

  (data (i32.const 0x400) "wat_mean takes exactly one argument")   ;; 35 bytes
  (data (i32.const 0x440) "no non-null values")                    ;; 18 bytes
  (data (i32.const 0x480) "all 256 aggregate slots are in use")    ;; 34 bytes
  (data (i32.const 0x4c0) "invalid aggregate handle")              ;; 24 bytes

  (global $err_ptr (mut i32) (i32.const 0))
  (global $err_len (mut i32) (i32.const 0))
  (global $heap (mut i32) (i32.const 0x10000))

  (func $fail (param $ptr i32) (param $len i32) (param $status i32) (result i32)
    (global.set $err_ptr (local.get $ptr))
    (global.set $err_len (local.get $len))
    (local.get $status))

  ;; The address of slot $h, or 0 when $h is not a live handle.
  (func $slot (param $h i32) (result i32)
    (local $addr i32)
    (if (i32.ge_u (local.get $h) (i32.const 256)) (then (return (i32.const 0))))
    (local.set $addr (i32.add (i32.const 0x800) (i32.mul (local.get $h) (i32.const 24))))
    (if (i32.eqz (i32.load (local.get $addr))) (then (return (i32.const 0))))
    (local.get $addr))

  (func (export "mlc_abi_version") (result i32) (i32.const 1))

  (func (export "mlc_meta") (result i64)
    (i64.or (i64.shl (i64.const 0x100) (i64.const 32))
            (i64.extend_i32_u (global.get $meta_len))))

  (func (export "mlc_last_error") (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (global.get $err_ptr)) (i64.const 32))
            (i64.extend_i32_u (global.get $err_len))))

  ;; Bump allocator: 8-byte aligned, grows memory as needed, 0 when it cannot.
  (func (export "mlc_alloc") (param $size i32) (result i32)
    (local $ptr i64) (local $end i64) (local $have i64)
    (if (i32.lt_s (local.get $size) (i32.const 0)) (then (return (i32.const 0))))
    (local.set $ptr (i64.and (i64.add (i64.extend_i32_u (global.get $heap)) (i64.const 7))
                             (i64.const -8)))
    (local.set $end (i64.add (local.get $ptr) (i64.extend_i32_u (local.get $size))))
    (local.set $have (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16)))
    (if (i64.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.lt_s
              (memory.grow (i32.wrap_i64
                (i64.shr_u (i64.add (i64.sub (local.get $end) (local.get $have)) (i64.const 0xffff))
                           (i64.const 16))))
              (i32.const 0))
          (then (return (i32.const 0))))))
    (global.set $heap (i32.wrap_i64 (local.get $end)))
    (i32.wrap_i64 (local.get $ptr)))

  ;; Memory is reclaimed when the host drops the instance after each evaluation.
  (func (export "mlc_free") (param i32 i32))

  (func (export "mlc_agg_init") (result i32)
    (local $h i32) (local $addr i32)
    (block $full
      (loop $next
        (br_if $full (i32.ge_u (local.get $h) (i32.const 256)))
        (local.set $addr (i32.add (i32.const 0x800) (i32.mul (local.get $h) (i32.const 24))))
        (if (i32.eqz (i32.load (local.get $addr)))
          (then
            (i32.store (local.get $addr) (i32.const 1))
            (f64.store offset=8 (local.get $addr) (f64.const 0))
            (f64.store offset=16 (local.get $addr) (f64.const 0))
            (return (local.get $h))))
        (local.set $h (i32.add (local.get $h) (i32.const 1)))
        (br $next)))
    (drop (call $fail (i32.const 0x480) (i32.const 34) (i32.const 0)))
    (i32.const -1))

  (func (export "mlc_agg_update") (param $h i32) (param $cols i32) (param $ncols i32) (param $nrows i32) (result i32)
    unreachable)

  (func (export "mlc_agg_merge") (param $dst i32) (param $src i32) (result i32)
    (local $a i32) (local $b i32)
    (local.set $a (call $slot (local.get $dst)))
    (local.set $b (call $slot (local.get $src)))
    (if (i32.or (i32.eqz (local.get $a)) (i32.eqz (local.get $b)))
      (then (return (call $fail (i32.const 0x4c0) (i32.const 24) (i32.const 2)))))
    (f64.store offset=8 (local.get $a)
      (f64.add (f64.load offset=8 (local.get $a)) (f64.load offset=8 (local.get $b))))
    (f64.store offset=16 (local.get $a)
      (f64.add (f64.load offset=16 (local.get $a)) (f64.load offset=16 (local.get $b))))
    (i32.const 0))

  (func (export "mlc_agg_finalize") (param $h i32) (param $out i32) (result i32)
    (local $addr i32)
    (local.set $addr (call $slot (local.get $h)))
    (if (i32.eqz (local.get $addr)) (then (return (call $fail (i32.const 0x4c0) (i32.const 24) (i32.const 2)))))
    (if (f64.eq (f64.load offset=16 (local.get $addr)) (f64.const 0))
      (then (return (call $fail (i32.const 0x440) (i32.const 18) (i32.const 1)))))
    (f64.store (local.get $out)
      (f64.div (f64.load offset=8 (local.get $addr)) (f64.load offset=16 (local.get $addr))))
    (i32.const 0))

  (func (export "mlc_agg_free") (param $h i32)
    (local $addr i32)
    (local.set $addr (call $slot (local.get $h)))
    (if (local.get $addr) (then (i32.store (local.get $addr) (i32.const 0)))))
)
