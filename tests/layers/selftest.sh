#!/bin/sh
# SPDX-License-Identifier: MIT
# selftest.sh CHECKER DOC SRC -- the layer check must be able to fail: an
# include of runtime/ planted in pool/, and a table where pool/ may include
# runtime/ (a cycle), must each be refused.
chk=$1 doc=$2 src=$3
t=$(mktemp -d) || exit 2
trap 'rm -rf "$t"' EXIT
mkdir -p "$t/pool"
cp "$src"/pool/*.c "$src"/pool/*.h "$t/pool/"
echo '#include "runtime/runtime.h"' >> "$t/pool/pool.c"
if sh "$chk" "$doc" "$t/pool" > "$t/out1"; then
	echo "selftest: a pool/ file including runtime/ passed the layer check"; exit 1
fi
grep -q 'pool.c includes runtime/' "$t/out1" || { cat "$t/out1"; exit 1; }
sed 's/^| `pool\/` |.*/| `pool\/` | `runtime\/` `persist\/` `util\/` |/' "$doc" > "$t/doc.md"
if sh "$chk" "$t/doc.md" "$src/util" > "$t/out2"; then
	echo "selftest: a table with a cycle passed the layer check"; exit 1
fi
grep -q 'has a cycle' "$t/out2" || { cat "$t/out2"; exit 1; }
echo "selftest: a bad include and a cyclic table are both refused"
