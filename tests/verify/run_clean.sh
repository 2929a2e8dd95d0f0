#!/bin/sh
# SPDX-License-Identifier: MIT
# run_clean.sh CMD ARGS... -- run a test program with VOLIPMEM_VERIFY=1 and
# fail when verify mode reported a line the tracker did not record, when it
# never ran (no "verify: on" notice: nothing was checked), or when the
# program itself fails. stderr is passed through and searched afterwards.
set -u
err=$(mktemp)
trap 'rm -f "$err"' EXIT
VOLIPMEM_VERIFY=1 "$@" 2>"$err"
rc=$?
cat "$err" >&2
if [ "$rc" -ne 0 ]; then
	echo "FAIL: $1 exited with status $rc under verify mode" >&2
	exit "$rc" # keeps a skip code (77) a skip
fi
if ! grep -q 'volipmem: verify: on' "$err"; then
	echo "FAIL: verify mode never started (no 'volipmem: verify: on' on stderr)" >&2
	exit 1
fi
if grep -q 'volipmem: verify: .*not recorded' "$err"; then
	echo "FAIL: verify mode found $(grep -c 'volipmem: verify: line not recorded' "$err") line reports (above)" >&2
	exit 1
fi
echo "verify: clean ($(grep -c 'volipmem: verify: on' "$err") pmaps checked)"
