#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""smoke.py -- one tiny run of bench/core/run.py (uffd, the 8-byte FAS
parts and their PMDK peer) that checks the rows the goals are stated in are
printed and that the bytes stored per 8-byte FAS are positive numbers. It
asserts no timing: performance goals are not timed tests.

    bench/core/smoke.py --build-dir BUILD [--pmdk 0|1]
"""
import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--pmdk", type=int, default=1, help="bench_core was built with libpmemobj")
    a = ap.parse_args()
    p = subprocess.run([sys.executable, os.path.join(HERE, "run.py"), "--build", a.build_dir,
                        "--runs", "1", "--trackers", "uffd", "--parts", "env,pmdk,empty,fas,same"],
                       capture_output=True, text=True)
    print(p.stdout, end="")
    if p.returncode != 0:
        print("run.py exited %d:\n%s" % (p.returncode, p.stderr))
        return 1
    rows = {}
    for line in p.stdout.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 2 and cells[0] and cells[1] not in ("uffd", "---"):
            rows[cells[0]] = cells[1]
    want = ["empty_fas_ns", "same_page_fas_us", "fas_1p_us", "env_uffd_first_write_ns",
            "same_page_bytes_per_fas", "fas_1p_bytes_per_fas",
            "same_page_drains_per_fas", "fas_1p_drains_per_fas"]
    if a.pmdk:
        want += ["pmdk_tx8_ns", "same_page_vs_pmdk", "fresh_page_less_fault_vs_pmdk",
                 "empty_vs_pmdk"]
    bad = [k for k in want if k not in rows]
    for k in ("same_page_bytes_per_fas", "fas_1p_bytes_per_fas",
              "same_page_drains_per_fas", "fas_1p_drains_per_fas"):
        try:
            if float(rows.get(k, "0").replace(",", "")) <= 0:
                bad.append(k + " is not positive: " + rows.get(k, "absent"))
        except ValueError:
            bad.append(k + " is not a number: " + rows[k])
    if bad:
        print("FAIL: missing or wrong rows: " + ", ".join(bad))
        return 1
    print("ok: %d rows, bytes per 8-byte FAS %s (same page) / %s (fresh page)"
          % (len(want), rows["same_page_bytes_per_fas"], rows["fas_1p_bytes_per_fas"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
