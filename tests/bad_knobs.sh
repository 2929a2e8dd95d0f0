#!/bin/sh
# SPDX-License-Identifier: MIT
# bad_knobs.sh -- a knob of the test and example programs set to something
# that is not a number in range stops the program with a line naming the
# knob and the value (tests/num.h), and a bad VOLIPMEM_* variable is refused
# by the library itself, before any pool is made.
# usage: bad_knobs.sh <torture> <vp_sim> <bank> <volipmem cli>
set -u
torture=$1 sim=$2 bank=$3 cli=$4
work=$(mktemp -d "${TMPDIR:-/tmp}/vp-knobs.XXXXXX")
trap 'rm -rf "$work"' EXIT
bad=0
# refused WANT-TEXT ENV... -- CMD...: exit status not 0 and stderr has WANT
refused() {
	want=$1
	shift
	out=$(env "$@" 2>&1 >/dev/null)
	rc=$?
	case $out in
	*"$want"*) [ $rc -ne 0 ] && { echo "ok: $want (exit $rc)"; return; } ;;
	esac
	echo "FAIL: wanted exit != 0 and '$want'; got exit $rc: $out"
	bad=1
}
refused 'VP_TORTURE_KILLS="2x"' VP_TORTURE_KILLS=2x "$torture"
refused 'KILLS="-1"' "$torture" -1
refused 'VP_TORTURE_THREADS="9"' VP_TORTURE_THREADS=9 "$torture" 1
refused 'VP_TORTURE_BIG="yes"' VP_TORTURE_BIG=yes "$torture" 1
refused 'VOLIPMEM_COMMIT_INTERVAL_MS="abc"' VOLIPMEM_COMMIT_INTERVAL_MS=abc VP_CLI="$cli" "$torture" 1
refused 'VP_SIM_SCALE=" 2"' "VP_SIM_SCALE= 2" "$sim"
refused 'VP_SIM_NESTED="0"' VP_SIM_NESTED=0 "$sim"
refused 'transfers="10k"' "$bank" "$work/bank.pool" 10k
[ -e "$work/bank.pool" ] && { echo "FAIL: bank made a pool before refusing its count"; bad=1; }
refused 'VP_UPGRADE_STOP_AFTER="x"' VP_UPGRADE_STOP_AFTER=x "$cli" upgrade "$work/none.pool"
exit $bad
