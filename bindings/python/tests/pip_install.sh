#!/bin/sh
# SPDX-License-Identifier: MIT
# pip_install.sh -- the package as a Python user installs it: a venv over
# Debian's python (for its setuptools, wheel, pytest, tinydb), then
#   1. pip install --no-build-isolation --no-index bindings/python against
#      the CMake build tree <build>, `import volipmem` from /, and the whole
#      pytest suite against the installed copy (not the build tree);
#   2. the same against the installed library found by pkg-config (a staged
#      `cmake --install` under DESTDIR, PKG_CONFIG_SYSROOT_DIR), with the
#      persistence suite (child processes load the extension too).
# usage: pip_install.sh <python> <build dir>
set -eu
py=$1
build=$(cd "$2" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/vpy-pip.XXXXXX")
trap 'rm -rf "$work"' EXIT
unset PYTHONPATH VOLIPMEM_BUILD_DIR VOLIPMEM_PKG_CONFIG
export PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1

"$py" -m venv --system-site-packages "$work/v"
pip_install() {
	"$work/v/bin/pip" install -q --no-build-isolation --no-index \
		--force-reinstall --no-deps "$src"
}
# the extension must come from the venv, from any directory
check_import() {
	(cd / && "$work/v/bin/python" -c '
import sys, volipmem, volipmem.tinydb
for m in (volipmem, volipmem._c):
    assert m.__file__.startswith(sys.prefix + "/"), m.__file__
print("import volipmem:", volipmem._c.__file__)')
}

echo "== pip install against the build tree $build"
VOLIPMEM_BUILD_DIR=$build pip_install
check_import
if ldd "$work"/v/lib/python3*/site-packages/volipmem/_volipmem*.so |
	grep -q libvolipmem; then
	echo "FAIL: the build-tree install links libvolipmem.so" >&2
	exit 1
fi
(cd / && VPY_EXPECT_INSTALLED=1 "$work/v/bin/python" -m pytest -q \
	-p no:cacheprovider "$src/tests")

echo "== pip install against the installed library (pkg-config)"
DESTDIR=$work/root cmake --install "$build" >/dev/null
pc=$(dirname "$(find "$work/root" -name volipmem.pc | head -n 1)")
PKG_CONFIG_PATH=$pc PKG_CONFIG_SYSROOT_DIR=$work/root VOLIPMEM_PKG_CONFIG=1 \
	pip_install
check_import
ldd "$work"/v/lib/python3*/site-packages/volipmem/_volipmem*.so |
	grep "libvolipmem.so.* => $work/root/" ||
	{ echo "FAIL: not linked against the installed libvolipmem" >&2; exit 1; }
(cd / && VPY_EXPECT_INSTALLED=1 "$work/v/bin/python" -m pytest -q \
	-p no:cacheprovider "$src/tests/test_persistence.py")
echo "pip_install: ok"
