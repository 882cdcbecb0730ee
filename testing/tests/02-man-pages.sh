#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The man pages: every page the Makefiles install (dist_man_MANS) formats without a single
# warning of 'man --warnings' (groff), and every program the suite installs (sbin_PROGRAMS,
# bin_PROGRAMS) has its page. (Every setting is documented: src/qki/tests/conf_documented.sh.)
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
command -v man >/dev/null || { echo "SKIP: man not installed (scripts/bootstrap installs man-db)"; exit 77; }
failures=0 checks=0
check() { checks=$((checks + 1)); if "${@:2}"; then echo "ok - $1"; else echo "FAIL - $1"; failures=$((failures + 1)); fi; }
# NAME = VALUE lines of Makefile.am, continuation lines joined
mk_list() { sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$1" | sed -nE "s/^$2[[:space:]]*=[[:space:]]*//p" | tr -s ' \t' '\n\n'; }
pages=() progs=()
for mk in $(cd "$top" && find src -name Makefile.am | sort); do
	d=$(dirname "$mk")
	for p in $(mk_list "$top/$mk" dist_man_MANS); do pages+=("$d/$p"); done
	for p in $(mk_list "$top/$mk" '(s?bin)_PROGRAMS'); do progs+=("$p"); done
done
echo "# pages: ${pages[*]}"
echo "# programs: ${progs[*]}"
[ ${#pages[@]} -ge 8 ] || { echo "FAIL - found only ${#pages[@]} man pages in the Makefiles"; exit 1; }
for p in "${pages[@]}"; do
	warn=$(cd "$top" && LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null)
	[ -n "$warn" ] && echo "$warn" | sed 's/^/#   /'
	check "$p: man --warnings has nothing to say" test -z "$warn"
done
for prog in "${progs[@]}"; do
	check "program $prog has a man page" bash -c 'for p; do case "$p" in */"$0".[18]) exit 0;; esac; done; exit 1' "$prog" "${pages[@]}"
done
echo "# $checks checks, $failures failed"
[ "$failures" -eq 0 ] && [ "$checks" -gt 0 ]
