#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""smoke_check.py -- the bench-smoke test of bench_vm: run `bench_vm
--quick` and fail unless it exits 0 and, for every mechanism, either every
row it should have is there with a positive median and n > 0, or one
"unavailable: mech=M reason=..." line says why it is not (and then it has
no rows). The rows expected are listed here, not taken from the output.

    smoke_check.py path/to/bench_vm
"""
import re, subprocess, sys

COLLECTS = [f"collect-{w}-{r}" for r in ("64m", "256m") for w in ("empty", "1p", "512p")]
EXPECT = {
    "native": ["getppid", "first-write"],
    "uffd": ["first-write"] + COLLECTS,
    "mprotect": ["first-write"] + COLLECTS,
    "vm": ["getppid"],
    "vm-dirty": ["first-write"] + COLLECTS,
    "vm-wp": ["first-write"] + COLLECTS,
}
ROW = re.compile(r"^event=(\S+) mech=(\S+) ns=(\S+) n=(\d+)")
UNAV = re.compile(r"^unavailable: mech=(\S+) reason=(.+)$")


def main():
    p = subprocess.run([sys.argv[1], "--quick"], capture_output=True, text=True, timeout=50)
    print(p.stdout, end="")
    print(p.stderr, end="", file=sys.stderr)
    bad = []
    if p.returncode != 0:
        bad.append(f"bench_vm exited {p.returncode}")
    rows, unav = {}, {}
    for line in p.stdout.splitlines():
        m = ROW.match(line)
        if m:
            rows[(m[1], m[2])] = (float(m[3]), int(m[4]))
        m = UNAV.match(line)
        if m:
            unav[m[1]] = m[2].strip()
    for mech, events in EXPECT.items():
        have = [e for e in events if (e, mech) in rows]
        if mech in unav:
            if not unav[mech]:
                bad.append(f"{mech}: unavailable without a reason")
            if have:
                bad.append(f"{mech}: unavailable but has rows {have}")
            print(f"smoke_check: {mech}: unavailable: {unav[mech]}")
            continue
        for e in events:
            if (e, mech) not in rows:
                bad.append(f"{mech}: row {e} missing (and no 'unavailable:' line)")
                continue
            ns, n = rows[(e, mech)]
            if not ns > 0 or n <= 0:
                bad.append(f"{mech}: row {e}: ns={ns} n={n}, not positive")
        print(f"smoke_check: {mech}: {len(events)} rows, all positive" if not
              [b for b in bad if b.startswith(mech + ":")] else f"smoke_check: {mech}: BAD")
    if "uffd" in unav and "mprotect" in unav:
        bad.append("no host mechanism ran at all")
    for b in bad:
        print("smoke_check: FAIL: " + b)
    if not bad:
        print("smoke_check: PASS")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
