//! Lays out the release binary's code in the order `symbol-order.txt` names: the functions a
//! gateway runs, from start through serving and the spend log's writes, first and together.
//!
//! On this kernel a fault in the binary maps the whole large folio of page cache it falls in, so
//! scattered hot code made most of the 19 MB `.text` resident (13.6 MB at ready) though the
//! functions that ever run hold ~4 MB. `bench/symbol_order.sh` rebuilds the list from a
//! callgrind profile; a stale list only orders less (names it no longer finds are skipped).
//!
//! Only for release builds of the `sluice` binary on x86_64 Linux, where rustc links with its
//! own lld (which reads the list); `SLUICE_SYMBOL_ORDER=0` turns it off.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=symbol-order.txt");
    println!("cargo:rerun-if-env-changed=SLUICE_SYMBOL_ORDER");
    let release = env::var("PROFILE").as_deref() == Ok("release");
    let lld_target = env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu");
    let off = env::var("SLUICE_SYMBOL_ORDER").as_deref() == Ok("0");
    if !release || !lld_target || off {
        return;
    }
    let list = format!("{}/symbol-order.txt", env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={list}");
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}
