#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# scripts/check's self-test of --sanitize: a sanitizer report of a daemon a test started in the
# background fails that test, though the test itself passed. A nested runner (--tests, --logs)
# runs the two fixture tests of testing/check-selftest/tests in this sanitized tree: each starts
# a tiny daemon (background-fault.c, built here with the sanitizers and nowhere else) that reads
# a heap block before freeing it (control) or after (fault), waits for it to end and exits 0.
# The nested run must pass the control and fail the other, naming the daemon's report.
# Runs only in a tree configured with the sanitizers (scripts/check --sanitize).
. "$(dirname "$0")/../lib.sh"
grep -q -- "-fsanitize=address,undefined" "$top/config.status" 2>/dev/null ||
	skip "runs only under scripts/check --sanitize (this tree is not built with the sanitizers)"
work=$(mktemp -d /tmp/ipseq-check-selftest.XXXXXX)
trap 'rm -rf "$work"; cleanup' EXIT
fatal "the faulty daemon builds with ASan and UBSan" gcc -g -O1 -fsanitize=address,undefined \
	-fno-omit-frame-pointer -o "$work/background-fault" "$top/testing/check-selftest/background-fault.c"

FAULT_DAEMON=$work/background-fault "$top/scripts/check" --sanitize --e2e-only \
	--tests "$top/testing/check-selftest/tests" --logs "$work/logs" >"$work/out" 2>&1
rc=$?
sed 's/^/#   /' "$work/out"
out() { grep -E "$1" "$work/out" >/dev/null; }
check "the control (no report) passes" out '^PASS 01-daemon-clean \('
check "the test whose daemon wrote a report fails, though it exited 0 itself (98)" \
	out '^FAIL 02-daemon-fault \(exit 98,'
check "the failure names the report: ASan's heap-use-after-free in the daemon" \
	out '^    sanitizer report .*/02-daemon-fault\.sanitizer/asan\.background-fault\.[0-9]+: .*AddressSanitizer: heap-use-after-free'
# the report is the background daemon's: its file carries the pid the daemon's start printed
pid=$(sed -n 's/^# daemon \([0-9]*\) started in the background (fault)$/\1/p' "$work/logs/02-daemon-fault.log")
check "the report is the background daemon's (pid ${pid:-?}), not the test's" \
	test -n "$pid" -a -f "$work/logs/02-daemon-fault.sanitizer/asan.background-fault.$pid"
check "the control left no report" bash -c '[ -d "$0" ] && ! ls "$0"/* >/dev/null 2>&1' \
	"$work/logs/01-daemon-clean.sanitizer"
check "summary: 1 passed, 1 failed, 0 skipped" out '^1 passed, 1 failed, 0 skipped$'
check "the nested runner exits non-zero ($rc)" test "$rc" -ne 0
finish
