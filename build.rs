//! Tells the tests whether the corpus of real add-ons is here, so that a checkout without it
//! shows its corpus tests as *ignored* in the summary instead of passing them silently.
//!
//! The corpus is `$ADDON_SANDBOX_CORPUS`, else `../shared/corpus` beside the checkout; it is
//! present when it has an `expected/` folder (the Supervisor's answers). `tests/common`
//! finds it the same way.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(corpus)");
    println!("cargo::rerun-if-env-changed=ADDON_SANDBOX_CORPUS");
    let dir = std::env::var_os("ADDON_SANDBOX_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default())
                .join("../shared/corpus")
        });
    let expected = dir.join("expected");
    // Watching the folder makes a corpus that appears (or goes) after the first build count.
    println!("cargo::rerun-if-changed={}", expected.display());
    if expected.is_dir() {
        println!("cargo::rustc-cfg=corpus");
    }
}
