#!/bin/sh
# SPDX-License-Identifier: MIT
# pkgconfig.sh -- the installed volipmem.pc names the prefix it was
# installed to: `cmake --install <build> --prefix P` for two prefixes P, and
# a DESTDIR-staged install, each checked with pkg-config (prefix, libdir,
# --cflags, --libs) and by compiling, linking and running a C program with
# `pkg-config --cflags --libs volipmem`; then a multiarch libdir
# (lib/x86_64-linux-gnu) through cmake/VpPkgConfig.cmake in a tiny project.
# usage: pkgconfig.sh <build dir> <source dir> <C compiler>
set -eu
build=$1 src=$2 cc=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/vp-pc.XXXXXX")
trap 'rm -rf "$work"' EXIT
unset DESTDIR PKG_CONFIG_SYSROOT_DIR
export PKG_CONFIG_DISABLE_UNINSTALLED=1 PKG_CONFIG_LIBDIR=

fail() { echo "FAIL: $*" >&2; exit 1; }
# expect WHAT GOT WANT
expect() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; }
# pc ARGS: pkg-config's answer for volipmem, spaces normalised
# shellcheck disable=SC2046,SC2116
pc() { echo $(pkg-config "$@" volipmem); }

cat >"$work/t.c" <<'C'
#include <stdio.h>
#include <volipmem.h>
int main(void) { puts(vp_strerror(VP_E_TRACKER)); return 0; }
C

# check PCDIR PREFIX ROOT: the .pc in PCDIR says PREFIX; its folders exist
# under ROOT (the DESTDIR, or empty) and a program builds against them.
check() {
	pcdir=$1 prefix=$2 root=$3
	[ -f "$pcdir/volipmem.pc" ] || fail "no $pcdir/volipmem.pc"
	export PKG_CONFIG_PATH=$pcdir
	expect "$pcdir prefix" "$(pc --variable=prefix)" "$prefix"
	expect "$pcdir libdir" "$(pc --variable=libdir)" "$prefix/lib"
	expect "$pcdir --libs" "$(pc --libs)" "-L$prefix/lib -lvolipmem"
	expect "$pcdir --cflags" "$(pc --cflags)" "-I$prefix/include"
	[ -f "$root$prefix/lib/libvolipmem.so" ] || fail "no libvolipmem.so in $root$prefix/lib"
	[ -f "$root$prefix/include/volipmem.h" ] || fail "no volipmem.h in $root$prefix/include"
	if [ -z "$root" ]; then
		# shellcheck disable=SC2046
		"$cc" -Werror -o "$work/t" "$work/t.c" $(pkg-config --cflags --libs volipmem) \
			|| fail "cannot build against $prefix"
		out=$(LD_LIBRARY_PATH=$prefix/lib "$work/t") || fail "program built against $prefix fails"
		[ -n "$out" ] || fail "program built against $prefix printed nothing"
		LD_LIBRARY_PATH=$prefix/lib ldd "$work/t" | grep -q "=> $prefix/lib/libvolipmem.so" \
			|| fail "program does not load $prefix's library"
	fi
	echo "ok: $pcdir names $prefix"
}

# The build's CMAKE_INSTALL_LIBDIR must be plain lib for the paths above.
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$build/CMakeCache.txt")
expect "build's CMAKE_INSTALL_LIBDIR" "$libdir" lib

for p in "$work/one" "$work/two/deeper"; do
	cmake --install "$build" --prefix "$p" >"$work/install.log" || { cat "$work/install.log"; fail "install to $p"; }
	check "$p/lib/pkgconfig" "$p" ""
done
# the two installs did not share a file
expect "second install's prefix in the first's .pc" \
	"$(grep -c "$work/two" "$work/one/lib/pkgconfig/volipmem.pc" || true)" 0

# staged: DESTDIR=R --prefix /opt/vp puts R/opt/vp/... which says /opt/vp
DESTDIR=$work/stage cmake --install "$build" --prefix /opt/vp >"$work/install.log" \
	|| { cat "$work/install.log"; fail "staged install"; }
check "$work/stage/opt/vp/lib/pkgconfig" /opt/vp "$work/stage"

# multiarch libdir: the same function in a project with no compiler
cmake -S "$src/tests/install/multiarch" -B "$work/ma" -DVP_SOURCE_DIR="$src" \
	-DCMAKE_INSTALL_PREFIX=/nowhere -DCMAKE_INSTALL_LIBDIR=lib/x86_64-linux-gnu >"$work/ma.log" \
	|| { cat "$work/ma.log"; fail "multiarch configure"; }
cmake --install "$work/ma" --prefix "$work/ma-root" >>"$work/ma.log" || { cat "$work/ma.log"; fail "multiarch install"; }
export PKG_CONFIG_PATH=$work/ma-root/lib/x86_64-linux-gnu/pkgconfig
[ -f "$PKG_CONFIG_PATH/volipmem.pc" ] || fail "multiarch: no $PKG_CONFIG_PATH/volipmem.pc"
expect "multiarch prefix" "$(pc --variable=prefix)" "$work/ma-root"
expect "multiarch --libs" "$(pc --libs)" "-L$work/ma-root/lib/x86_64-linux-gnu -lvolipmem"
echo "ok: multiarch libdir lib/x86_64-linux-gnu"
