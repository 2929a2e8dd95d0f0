// SPDX-License-Identifier: MIT
//! volipmem-rust-check -- the process driven by the crate's integration
//! tests (tests/persist.rs): each run is one phase on one pool, so that a
//! second process can check what the first one left, and a phase can die
//! by SIGKILL or abort inside a FAS.
//!
//!   volipmem-rust-check build|check|crash|panic POOL
//!   volipmem-rust-check stress-crash|stress-resume|stress-final POOL NOPS

use std::os::raw::c_int;
use std::process::exit;

use volipmem::{fas, in_heap, persistent, s_pcommit, Error, PBox, PString, PVec, PmemAllocator, Pool};

persistent! {
    #[derive(Debug, Default)]
    pub struct Account {
        pub id: u64,
        pub owner: PString,
        pub history: PVec<i64>,
        pub balance: [i64; 2],
    }

    #[derive(Default)]
    pub struct Stress {
        pub done: u64,
        pub v: PVec<u64>,
        pub boxes: PVec<PBox<u64>>,
        pub text: PString,
    }
}

extern "C" {
    fn raise(sig: c_int) -> c_int;
}
const SIGKILL: c_int = 9;
const HEAP: usize = 16 << 20;
const SEED: u64 = 0x5eed;

macro_rules! check {
    ($c:expr) => {
        if !$c {
            eprintln!("{}:{}: check failed: {}", file!(), line!(), stringify!($c));
            exit(1);
        }
    };
}

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser
    x = x.wrapping_add(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d049bb133111eb);
    x ^ (x >> 31)
}

/// apply_op -- operation i of the stream, on the persistent state or on
/// its volatile model (same method names on Vec/PVec, String/PString).
macro_rules! apply_op {
    ($v:expr, $boxes:expr, $text:expr, $mkbox:expr, $i:expr) => {{
        let r = mix(SEED.wrapping_mul(1_000_003).wrapping_add($i));
        let idx = ((r >> 8) % 4096) as usize;
        let val = r >> 20;
        match r % 9 {
            0 | 1 => {
                if $v.len() < 4000 {
                    $v.push(val)
                } else {
                    $v.clear()
                }
            }
            2 => {
                $v.pop();
            }
            3 => {
                if !$v.is_empty() {
                    let n = $v.len();
                    $v[idx % n] = val;
                }
            }
            4 => {
                let n = $v.len();
                $v.insert(idx % (n + 1), val);
            }
            5 => {
                if !$v.is_empty() {
                    let n = $v.len();
                    if val % 2 == 0 {
                        $v.remove(idx % n);
                    } else {
                        $v.swap_remove(idx % n);
                    }
                }
            }
            6 | 7 => {
                if $boxes.len() < 500 {
                    $boxes.push($mkbox(val))
                } else {
                    let n = $boxes.len();
                    $boxes.swap_remove(idx % n);
                }
            }
            _ => {
                if $text.len() < 3000 {
                    $text.push_str(&format!("{}.", val % 100_000))
                } else {
                    $text.clear()
                }
            }
        }
    }};
}

/// check_stress -- the heap holds exactly the first `expect` operations.
fn check_stress(st: &Stress, expect: u64) {
    check!(st.done == expect);
    let (mut v, mut boxes, mut text): (Vec<u64>, Vec<u64>, String) = Default::default();
    for i in 0..st.done {
        apply_op!(v, boxes, text, |x| x, i);
    }
    check!(st.v.as_slice() == v.as_slice());
    check!(st.boxes.iter().map(|b| **b).eq(boxes.iter().copied()));
    check!(st.text.as_str() == text);
    check!(st.v.is_empty() || in_heap(st.v.as_ptr()));
    check!(st.boxes.iter().all(|b| in_heap(PBox::as_ptr(b))));
}

/// run_ops -- operations [from, to), one FAS each; at crash_at, die by
/// SIGKILL inside the FAS after applying it and one more.
fn run_ops(st: &mut Stress, from: u64, to: u64, crash_at: u64) {
    for i in from..to {
        let r = fas(|| {
            apply_op!(st.v, st.boxes, st.text, PBox::new, i);
            if i == crash_at {
                apply_op!(st.v, st.boxes, st.text, PBox::new, i + 1);
                st.v.push(u64::MAX);
                // SAFETY: raise is async-signal-safe; the process dies here.
                unsafe { raise(SIGKILL) };
            }
            st.done = i + 1;
        });
        if let Err(e) = r {
            eprintln!("pend failed at op {i}: {e}");
            exit(1);
        }
    }
}

fn build(alloc: PmemAllocator) -> volipmem::Result<()> {
    let mut acct = alloc.save_root(
        "account",
        Account { id: 7, owner: PString::from("ada"), history: PVec::new(), balance: [100, 0] },
    )?;
    fas(|| {
        for i in 0..1000 {
            acct.history.push(i * 3);
        }
    })?;
    let boxes: PVec<PBox<u64>> = (0..100u64).map(|i| PBox::new(i * i)).collect();
    alloc.save_root("boxes", boxes)?;
    alloc.save_root("arr", PBox::new([1u64, 2, 3, 4]))?;
    s_pcommit()
}

fn check(alloc: PmemAllocator) {
    let acct = alloc.retrieve_root::<Account>("account").unwrap().expect("account root");
    check!(acct.id == 7 && acct.owner.as_str() == "ada");
    check!(acct.balance == [100, 0]);
    check!(acct.history.len() == 1000);
    check!(acct.history.iter().enumerate().all(|(i, &h)| h == i as i64 * 3));
    check!(in_heap(acct.history.as_ptr()));
    // a second handle to a borrowed root, and a root read as another type
    check!(matches!(alloc.retrieve_root::<Account>("account"), Err(Error::Busy { .. })));
    check!(matches!(alloc.retrieve_root::<PVec<u32>>("boxes"), Err(Error::TypeMismatch { .. })));
    check!(alloc.retrieve_root::<u64>("absent").unwrap().is_none());
    let boxes = alloc.retrieve_root::<PVec<PBox<u64>>>("boxes").unwrap().expect("boxes root");
    check!(boxes.len() == 100 && boxes.iter().enumerate().all(|(i, b)| **b == (i * i) as u64));
    let arr = alloc.retrieve_root::<PBox<[u64; 4]>>("arr").unwrap().expect("arr root");
    check!(**arr == [1, 2, 3, 4]);
}

/// crash_in_fas -- change everything inside a FAS, then die before pend.
fn crash_in_fas(alloc: PmemAllocator, by_panic: bool) {
    let mut acct = alloc.retrieve_root::<Account>("account").unwrap().expect("account root");
    let _ = fas(|| {
        acct.balance[0] -= 50;
        acct.balance[1] += 50;
        acct.owner.push_str(" lovelace");
        for i in 0..5000 {
            acct.history.push(-i);
        }
        acct.history[0] = 99;
        if by_panic {
            panic!("inside a FAS");
        }
        // SAFETY: raise is async-signal-safe; the process dies here.
        unsafe { raise(SIGKILL) };
    });
    eprintln!("survived the crash");
    exit(1);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: {} PHASE POOL [NOPS]", args[0]);
        exit(2);
    }
    let nops: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10_000).max(4);
    let pool = match Pool::open(&args[2], HEAP) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("Pool::open {}: {e}", args[2]);
            exit(1);
        }
    };
    let alloc = PmemAllocator::new();
    match args[1].as_str() {
        "build" => build(alloc).unwrap_or_else(|e| {
            eprintln!("build: {e}");
            exit(1)
        }),
        "check" => check(alloc),
        "crash" => crash_in_fas(alloc, false),
        "panic" => crash_in_fas(alloc, true),
        "stress-crash" => {
            let mut st = alloc.save_root("stress", Stress::default()).unwrap();
            run_ops(&mut st, 0, nops, nops / 2);
        }
        "stress-resume" => {
            let mut st = alloc.retrieve_root::<Stress>("stress").unwrap().expect("stress root");
            check_stress(&st, nops / 2);
            let from = st.done;
            run_ops(&mut st, from, nops, u64::MAX);
        }
        "stress-final" => {
            let st = alloc.retrieve_root::<Stress>("stress").unwrap().expect("stress root");
            check_stress(&st, nops);
        }
        other => {
            eprintln!("unknown phase {other}");
            exit(2);
        }
    }
    drop(pool);
}
