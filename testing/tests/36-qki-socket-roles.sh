#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The local API's roles (qkid.conf key_group/status_group, caller identity from SO_PEERCRED): a
# user who is only in status_group runs `qkictl status` but gets no key (SA_KEYS, KEY_NEW) and
# cannot register an SA; and an SA belongs to the connection that registered it - a second client
# (even root) can neither register it nor take its keys while the first is connected.
. "$(dirname "$0")/../lib.sh"
. "$top/src/qki/tests/qki-lab.sh"
qki_need
command -v useradd >/dev/null && command -v runuser >/dev/null || skip "useradd or runuser missing"

user=ipseqst$$ group=ipseqst$$
roles_cleanup() {
	userdel "$user" 2>/dev/null
	groupdel "$group" 2>/dev/null
	qki_cleanup
}
trap roles_cleanup EXIT
fatal "create the test group and a status-only user" \
	bash -c "groupadd '$group' && useradd -M -N -g '$group' -s /usr/sbin/nologin '$user'"
as_user() { runuser -u "$user" -- "$@"; }
# An unprivileged user must be able to run programs at all: not so in a chroot whose root
# directory is mode 0700 (../shared/tools/fresh-check's pristine root), where the test cannot run.
as_user /bin/true 2>/dev/null || skip "an unprivileged user cannot run programs here (root directory $(stat -c %a /))"

export QKI_EXTRA_GLOBAL="socket_group = $group
status_group = $group"
fatal "two KMEs and two qkids come up, peer link established" qki_lab_up --key-rate 512000
out=$QDIR/out; mkdir -p "$out"
chmod o+x "$(dirname "$QDIR")" "$QDIR"   # the test user reaches the socket by its group only
sock=$QDIR/qkid-a.sock
probe=$QKI_BIN/tests/qki-probe
# the test user runs copies of the client programs: the build tree may sit where only root can
# go (a clone under /root, as on a fresh machine)
ubin=$QDIR/bin; mkdir -p "$ubin"
cp "$QKI_BIN/qkictl" "$probe" "$ubin/" && chmod 755 "$ubin" "$ubin"/*
fatal "the test user can run the client programs" as_user "$ubin/qkictl" --help

check "the status-only user can reach the socket (group $group)" \
	test "$(stat -c %G "$sock")" = "$group"
as_user "$ubin/qkictl" -s "$sock" status > "$out/user-status.txt" 2>&1
check "status-only user: qkictl status works" grep -q 'role: master' "$out/user-status.txt"

# root's datapath stand-in registers an SA and takes its first keys, then stays connected
"$probe" "$sock" epochs siteB c0de0101 out 0 2 > "$out/root-first.txt"
check "root gets SA keys" test "$(wc -l < "$out/root-first.txt")" -eq 2
qa hold siteB c0de0102 out 4 > /dev/null & holder=$!
check "the holder has registered c0de0102" wait_for 5 bash -c \
	"'$QKI_BIN/qkictl' -s '$sock' sas | grep -q '^c0de0102 out siteB'"

as_user "$ubin/qki-probe" "$sock" keys c0de0102 out 0 1 > "$out/user-keys.txt" 2>&1
check "status-only user is refused SA_KEYS (PERMISSION)" grep -q '^ERR PERMISSION' "$out/user-keys.txt"
as_user "$ubin/qki-probe" "$sock" new siteB 1 > "$out/user-new.txt" 2>&1
check "status-only user is refused KEY_NEW (PERMISSION)" grep -q 'ERR PERMISSION' "$out/user-new.txt"
as_user "$ubin/qki-probe" "$sock" epochs siteB c0de0103 out 0 1 > "$out/user-register.txt" 2>&1
check "status-only user cannot register an SA (PERMISSION)" grep -q '^ERR PERMISSION' "$out/user-register.txt"
check "no key fingerprint reached the status-only user" \
	not grep -qE '^[0-9]+ [0-9a-f-]{36} [0-9a-f]{16}$' "$out"/user-*.txt

"$probe" "$sock" epochs siteB c0de0102 out 0 1 > "$out/second-register.txt" 2>&1
check "a second client (root) cannot take over a registered SA (EXISTS)" \
	grep -q '^ERR EXISTS' "$out/second-register.txt"
"$probe" "$sock" keys c0de0102 out 0 1 > "$out/second-keys.txt" 2>&1
check "a second client (root) gets no keys of another client's SA (PERMISSION)" \
	grep -q '^ERR PERMISSION' "$out/second-keys.txt"
wait $holder
"$probe" "$sock" epochs siteB c0de0102 out 0 1 > "$out/after-close.txt" 2>&1
check "once the owner disconnected, the SA can be registered again (datapath restart)" \
	grep -qE '^0 [0-9a-f-]{36} [0-9a-f]{16}$' "$out/after-close.txt"
check "qkid logs the refusal with the caller's uid" \
	grep -q "from uid $(id -u "$user") refused" "$QDIR/qkid-a.log"
finish
