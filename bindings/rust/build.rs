// SPDX-License-Identifier: MIT
//! build.rs -- find and link libvolipmem.so, in this order:
//!   1. VOLIPMEM_LIB_DIR, the folder that holds it (the CMake build sets it);
//!   2. `pkg-config --libs volipmem` (an installed library, or a build tree's
//!      volipmem-uninstalled.pc through PKG_CONFIG_PATH);
//!   3. the in-tree build, ../../build/src (the README's build command);
//! otherwise the build fails with one line saying what to build or set.
//! The library is linked as a shared object and its folder is put in the
//! rpath, so that the tests and programs run without LD_LIBRARY_PATH
//! (docs/bindings-cpp-rust.md says why shared and not static).
use std::path::{Path, PathBuf};
use std::process::Command;

const LIB: &str = "libvolipmem.so";

/// has_lib -- whether `dir` holds the shared library.
fn has_lib(dir: &Path) -> bool {
    dir.join(LIB).exists()
}

/// link_dir -- link -lvolipmem from `dir` and run it from there.
fn link_dir(dir: &Path) {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let dir = dir.display();
    println!("cargo:rustc-link-search=native={dir}");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    println!("cargo:rustc-link-lib=dylib=volipmem");
}

/// from_pkg_config -- run `pkg-config --libs volipmem` and take its -L and
/// -l flags. None when the command is missing, fails, or names folders none
/// of which holds the library (a .pc left behind by an old install).
fn from_pkg_config() -> Option<()> {
    let out = Command::new("pkg-config").args(["--libs", "volipmem"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let flags = String::from_utf8(out.stdout).ok()?;
    let dirs: Vec<&str> = flags.split_whitespace().filter_map(|f| f.strip_prefix("-L")).collect();
    if !dirs.is_empty() && !dirs.iter().any(|d| has_lib(Path::new(d))) {
        println!(
            "cargo:warning=pkg-config names {} but no {LIB} is there; trying the in-tree build",
            dirs.join(" ")
        );
        return None;
    }
    for f in flags.split_whitespace() {
        if let Some(d) = f.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={d}");
            println!("cargo:rustc-link-arg=-Wl,-rpath,{d}");
        } else if let Some(l) = f.strip_prefix("-l") {
            println!("cargo:rustc-link-lib={l}");
        }
    }
    Some(())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for var in ["VOLIPMEM_LIB_DIR", "PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR", "PKG_CONFIG_DISABLE_UNINSTALLED"] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    if let Some(dir) = std::env::var_os("VOLIPMEM_LIB_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if !has_lib(&dir) {
            fail(&format!("VOLIPMEM_LIB_DIR={} holds no {LIB}", dir.display()));
        }
        println!("cargo:rerun-if-changed={}", dir.join(LIB).display());
        return link_dir(&dir);
    }
    if from_pkg_config().is_some() {
        return;
    }
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let in_tree = manifest.join("../../build/src");
    if has_lib(&in_tree) {
        println!("cargo:rerun-if-changed={}", in_tree.join(LIB).display());
        return link_dir(&in_tree);
    }
    fail(&format!(
        "{LIB} not found: build it first (`cmake -S . -B build && cmake --build build -j2` at the repository root), \
         or set VOLIPMEM_LIB_DIR to the folder that holds it, or install it so that `pkg-config --libs volipmem` finds it"
    ));
}

/// fail -- stop the build with one line that says what to do. cargo fails
/// the build on `cargo::error`; exiting 0 keeps it from also dumping every
/// line this script printed.
fn fail(msg: &str) -> ! {
    println!("cargo::error={msg}");
    std::process::exit(0);
}
