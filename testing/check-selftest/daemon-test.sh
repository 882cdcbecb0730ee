#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# daemon-test.sh fault|clean: the body of the fixture tests in tests/, which only the nested
# runner of testing/tests/03-check-sanitize-background.sh runs. It starts $FAULT_DAEMON (the
# self-test's sanitized build of background-fault.c) as a background daemon, waits until that
# daemon has ended, and passes by itself: only the runner, from the daemon's sanitizer report,
# can fail it.
set -uo pipefail
mode=$1
[ -x "${FAULT_DAEMON:-}" ] || { echo "FAIL - FAULT_DAEMON is not set (run by testing/tests/03-check-sanitize-background.sh)"; exit 1; }
work=$(mktemp -d /tmp/ipseq-check-selftest.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$FAULT_DAEMON" "$work/pid" "$mode" || { echo "FAIL - the daemon did not start"; exit 1; }
pid=$(cat "$work/pid")
echo "# daemon $pid started in the background ($mode)"
# gone: no such process, or a zombie its new parent has not reaped yet
running() { local state; state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null); [ -n "$state" ] && [ "$state" != Z ]; }
for ((i = 0; i < 300; i++)); do running || break; sleep 0.1; done
if running; then
	kill "$pid"
	echo "FAIL - the daemon still runs after 30 s"
	exit 1
fi
echo "ok - the daemon $pid ended; the test passes by itself"
exit 0
