#!/bin/bash
# SPDX-License-Identifier: MIT
# run_memcached_suite.sh -- run memcached's own perl tests (t/*.t of a
# memcached source tree, e.g. the 1.6.18 release) against vmcached, or
# against an installed memcached to compare, without changing that tree.
#
#   run_memcached_suite.sh SRC SERVER [t/FILE.t ...]
#
# SRC is the memcached source directory (only its t/ is used; nothing is
# built). SERVER is a vmcached binary, or a memcached binary (then it is run
# as is). With no files, the protocol files listed below are run.
#
# memcached's harness (t/lib/MemcachedTest.pm) starts "$cwd/memcached-debug"
# through "$cwd/timedrun". This script makes a scratch directory with a copy
# of t/, a timedrun that just execs, and a memcached-debug that execs
# SERVER without the options the harness adds that it lacks
# (-o relaxed_privileges; for vmcached also -U udp-port: it has no UDP);
# vmcached also gets a pool per server in the scratch directory. Every
# other option reaches the server unchanged, so one it does not take makes
# the test fail. The
# scratch directory and its pools are removed at exit. Not part of CTest:
# it needs a memcached source tree.
#
# Prints one line per file (PASS/FAIL, tests failed of planned) and exits 1
# if any file failed. VMC_SUITE_KEEP=1 keeps the scratch dir and its logs.
set -u
if [ $# -lt 2 ]; then
	echo "usage: $0 MEMCACHED_SRC SERVER [t/FILE.t ...]" >&2
	exit 2
fi
src=$(cd "$1" && pwd) || exit 2
server=$(command -v "$2") || { echo "$0: no server $2" >&2; exit 2; }
server=$(cd "$(dirname "$server")" && pwd)/$(basename "$server")
shift 2
if [ ! -f "$src/t/lib/MemcachedTest.pm" ]; then
	echo "$0: $src is not a memcached source tree (no t/lib/MemcachedTest.pm)" >&2
	exit 2
fi
# The files about the text and meta protocol and the options vmcached
# shares with memcached (docs/vmcached.md, "memcached's own tests").
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
	files=(t/00-startup.t t/bogus-commands.t t/cas.t t/evictions.t
	       t/expirations.t t/flags.t t/flush-all.t t/getandtouch.t
	       t/getset.t t/incrdecr.t t/issue_104.t t/issue_108.t
	       t/issue_14.t t/issue_140.t t/issue_152.t t/issue_163.t
	       t/issue_183.t t/issue_192.t t/issue_22.t t/issue_260.t
	       t/issue_29.t t/issue_3.t t/issue_41.t t/issue_42.t
	       t/issue_61.t t/issue_68.t t/issue_70.t t/item_size_max.t
	       t/malicious-commands.t t/maxconns.t t/metaget.t
	       t/multiversioning.t t/noreply.t t/quit.t t/stats.t
	       t/strtol-testing.t t/touch.t)
fi

scratch=$(mktemp -d /dev/shm/vmc-suite.XXXXXX) || exit 1
if [ "${VMC_SUITE_KEEP:-0}" = 1 ]; then
	echo "scratch: $scratch" >&2
else
	trap 'rm -rf "$scratch"' EXIT
fi
cp -r "$src/t" "$scratch/t"
printf '#!/bin/sh\n# timedrun SECONDS CMD...: the server must be our child pid\nshift\nexec "$@"\n' \
	>"$scratch/timedrun"
# -o relaxed_privileges exists only in memcached builds that drop
# privileges (Debian's has not): dropped for both servers.
drop_udp='' pool=''
if "$server" -h 2>&1 | grep -q -- '--pool'; then
	drop_udp='-U) shift ;;'
	pool="--pool $scratch/pool-\$\$.pool"
fi
cat >"$scratch/memcached-debug" <<EOF
#!/bin/bash
# the options memcached's harness passes, for $server
args=()
while [ \$# -gt 0 ]; do
	case \$1 in
	$drop_udp
	-o) if [ "\${2:-}" != relaxed_privileges ]; then args+=("\$1" "\${2:-}"); fi; shift ;;
	*) args+=("\$1") ;;
	esac
	shift
done
exec "$server" $pool "\${args[@]}"
EOF
chmod +x "$scratch/timedrun" "$scratch/memcached-debug"

failed=0
cd "$scratch" || exit 1
for f in "${files[@]}"; do
	log="$scratch/$(basename "$f").log"
	timeout 300 perl "$f" >"$log" 2>&1
	rc=$?
	planned=$(sed -n 's/^1\.\.\([0-9]*\).*/\1/p' "$log" | head -1)
	nfail=$(grep -c '^not ok' "$log")
	if [ $rc -eq 0 ]; then
		echo "PASS $f (${planned:-?} tests)"
	else
		failed=1
		echo "FAIL $f ($nfail of ${planned:-?} failed, exit $rc)"
		[ "${VMC_SUITE_VERBOSE:-0}" = 1 ] && grep -A4 '^not ok' "$log" | head -40
	fi
	rm -f "$scratch"/pool-*.pool
done
exit $failed
