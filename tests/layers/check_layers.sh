#!/bin/sh
# SPDX-License-Identifier: MIT
# check_layers.sh DOC FOLDER... -- every #include "dir/..." in each FOLDER
# (src/pool, src/heap, ..., tools) must name its own folder or one that
# DOC's "may include" table (docs/ARCHITECTURE.md) allows for the folder's
# name. Prints each include that breaks the table, and any cycle in the
# table itself; exit 1 if there is one. Includes without a folder (same
# folder, or the public volipmem.h) are always allowed.
doc=$1
shift
[ -f "$doc" ] && [ $# -gt 0 ] || { echo "usage: check_layers.sh DOC FOLDER..." >&2; exit 2; }
# The table under the header "| folder | may include |"; rows look like
# | `pool/` | `persist/` `util/` |
rules=$(sed -n '/^| folder | may include |$/,/^$/p' "$doc" |
	sed -n 's/^| `\([a-z]*\)\/` |\(.*\)|$/\1 \2/p' | tr -d '`/')
[ -n "$rules" ] || { echo "check_layers: no 'may include' table in $doc" >&2; exit 2; }
bad=0
# The table itself must have no cycle: peel off folders whose allowed
# folders are all peeled already; whatever is left includes itself round.
left=$(printf '%s\n' "$rules" | awk '{ print $1 }') done=" "
while [ -n "$left" ]; do
	next=""
	for f in $left; do
		ok=1
		for a in $(printf '%s\n' "$rules" | awk -v f="$f" '$1 == f { $1 = ""; print }'); do
			case "$done" in *" $a "*) ;; *) ok=0 ;; esac
		done
		if [ $ok -eq 1 ]; then done="$done$f "; else next="$next $f"; fi
	done
	if [ "$(echo $next)" = "$(echo $left)" ]; then
		echo "check_layers: the table in $doc has a cycle among:$next"
		exit 1
	fi
	left=$(echo $next)
done
for dir in "$@"; do
	folder=$(basename "$dir")
	dir=${dir%/}/
	allowed=$(printf '%s\n' "$rules" | awk -v f="$folder" '$1 == f { $1 = ""; print }')
	if ! printf '%s\n' "$rules" | awk -v f="$folder" '$1 == f { found = 1 } END { exit !found }'; then
		echo "check_layers: $folder/ has no row in $doc's table"
		bad=1
		continue
	fi
	for f in "$dir"*.c "$dir"*.h; do
		[ -f "$f" ] || continue
		for inc in $(sed -n 's/^#[ \t]*include[ \t]*"\([a-z_]*\)\/.*".*/\1/p' "$f"); do
			[ "$inc" = "$folder" ] && continue
			case " $allowed " in *" $inc "*) continue ;; esac
			echo "check_layers: $f includes $inc/, which $folder/ may not (see $doc)"
			bad=1
		done
	done
done
[ $bad -eq 0 ] && echo "check_layers: every include in $* follows the layer table"
exit $bad
