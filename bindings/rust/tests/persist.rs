// SPDX-License-Identifier: MIT
//! persist -- process-level tests of the binding: each phase runs in its
//! own process (src/bin/check.rs) on a pool in /dev/shm (or
//! VP_POOL_DIR), so that what one process built is checked by the next,
//! and a process can die inside a FAS. VP_BINDINGS_OPS sets the number of
//! random PVec operations (default 10,000). VP_SANITIZER_RUNTIME names a
//! sanitizer runtime to preload into the checker when libvolipmem is
//! instrumented.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};

struct PoolFile(String);

impl PoolFile {
    fn new(test: &str) -> PoolFile {
        let dir = std::env::var("VP_POOL_DIR").unwrap_or_else(|_| "/dev/shm".into());
        PoolFile(format!("{dir}/vp-rust-{}-{test}.pool", std::process::id()))
    }
}

impl Drop for PoolFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn run(phase: &str, pool: &PoolFile, extra: &[&str]) -> ExitStatus {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_volipmem-rust-check"));
    cmd.arg(phase).arg(&pool.0).args(extra);
    // A sanitizer build of libvolipmem needs its runtime loaded first.
    if let Ok(rt) = std::env::var("VP_SANITIZER_RUNTIME") {
        cmd.env("LD_PRELOAD", rt);
    }
    cmd.status().expect("spawn volipmem-rust-check")
}

fn expect_ok(phase: &str, pool: &PoolFile, extra: &[&str]) {
    let st = run(phase, pool, extra);
    assert!(st.success(), "phase {phase}: {st:?}");
}

fn expect_signal(phase: &str, pool: &PoolFile, extra: &[&str], sig: i32) {
    let st = run(phase, pool, extra);
    assert_eq!(st.signal(), Some(sig), "phase {phase} should die by signal {sig}: {st:?}");
}

#[test]
fn state_built_in_one_process_is_found_by_the_next() {
    let pool = PoolFile::new("restart");
    expect_ok("build", &pool, &[]);
    expect_ok("check", &pool, &[]);
    expect_ok("check", &pool, &[]);
}

#[test]
fn kill_inside_fas_leaves_previous_state() {
    let pool = PoolFile::new("kill");
    expect_ok("build", &pool, &[]);
    expect_signal("crash", &pool, &[], 9);
    expect_ok("check", &pool, &[]);
}

#[test]
fn panic_inside_fas_aborts_and_leaves_previous_state() {
    let pool = PoolFile::new("panic");
    expect_ok("build", &pool, &[]);
    expect_signal("panic", &pool, &[], 6);
    expect_ok("check", &pool, &[]);
}

#[test]
fn pvec_survives_random_operations_with_a_crash() {
    let pool = PoolFile::new("stress");
    // the oracle tracker ("full") commits the whole heap each time
    let full = std::env::var("VOLIPMEM_TRACKER").map(|t| t == "full").unwrap_or(false);
    let nops = std::env::var("VP_BINDINGS_OPS").unwrap_or_else(|_| if full { "300" } else { "10000" }.into());
    expect_signal("stress-crash", &pool, &[&nops], 9);
    expect_ok("stress-resume", &pool, &[&nops]);
    expect_ok("stress-final", &pool, &[&nops]);
}
