#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The libqkd ETSI 014 client against a tiny HTTPS server that answers garbage (36 cases: bad JSON,
# wrong key counts and sizes, bad base64, duplicate key_IDs, odd HTTP, truncation, silence) plus
# TLS, transport, argument and multi-thread cases, all under valgrind: no crash, no leak, no
# memory error. The same program runs without valgrind in `make check`.
# sanitize-skip: valgrind cannot run ASan-built programs (both replace malloc); under --sanitize the same program runs with ASan and LeakSanitizer in the unit tests
. "$(dirname "$0")/../lib.sh"
prog=$top/src/libqkd/test_client_garbage
[ -x "$prog" ] || make -C "$top/src/libqkd" test_client_garbage >/dev/null 2>&1 || skip "cannot build test_client_garbage"
command -v valgrind >/dev/null || skip "valgrind not installed"
work=$(mktemp -d /tmp/ipseq-kmsg.XXXXXX)
trap 'rm -rf "$work"; cleanup' EXIT
fatal "test PKI" quiet "$top/scripts/pki" "$work/pki" lab
PKI_DIR=$work/pki valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
	--error-exitcode=99 --log-file="$work/vg.log" "$prog" > "$work/out" 2>&1
rc=$?
cat "$work/out"
check "all garbage cases end in the expected error (check suite passed)" test "$rc" -ne 1 -a "$rc" -ne 99 -a "$rc" -eq 0
check "valgrind: no leak, no memory error" bash -c "[ ! -s '$work/vg.log' ]"
[ -s "$work/vg.log" ] && head -n 60 "$work/vg.log"
check "at least 40 checks ran, none failed" grep -qE "Checks: (4[0-9]|[5-9][0-9]), Failures: 0, Errors: 0" "$work/out"
finish
