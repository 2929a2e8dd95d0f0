// SPDX-License-Identifier: MIT
//! build.rs -- link against libvolipmem. VOLIPMEM_LIB_DIR names the folder
//! that holds libvolipmem.so (the CMake build sets it); without it the
//! system's library path is searched. The folder is also put in the rpath,
//! so that test programs run without LD_LIBRARY_PATH.
fn main() {
    println!("cargo:rerun-if-env-changed=VOLIPMEM_LIB_DIR");
    println!("cargo:rerun-if-changed=build.rs");
    if let Ok(dir) = std::env::var("VOLIPMEM_LIB_DIR") {
        if !dir.is_empty() {
            println!("cargo:rustc-link-search=native={dir}");
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
    }
    println!("cargo:rustc-link-lib=dylib=volipmem");
}
