#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The Debian packages: scripts/package builds them (lintian: no errors), the plugin package
# depends on exactly the strongSwan release of the headers, they install with apt-get, their
# systemd units pass systemd-analyze verify, and the full QKD tunnel (x25519qkd key exchange,
# quantum PPK, QPSK, kernel-qkd ESP key rotation with qkid window keys) comes up from installed
# files alone (scripts/lab LAB_INSTALLED=yes; charon's maps and the daemons' executables are
# checked: nothing from the build tree). Then the packages are purged and nothing of them is
# left: no package files, nothing in /etc, no unit, no user. The machine is left as it was.
# It builds the whole suite again inside dpkg-buildpackage: minutes on a busy machine.
# check-timeout: 1800
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (installs packages, network namespaces)"
for t in dpkg-buildpackage dh lintian systemd-analyze; do
	command -v "$t" >/dev/null || skip "$t not installed (scripts/bootstrap installs it)"
done
pkgs="strongswan-qkd-plugins qkid qkd-kmsd qkd-tools"
# One run at a time on a machine: two runs would install and purge the same packages under
# each other (bounded wait).
exec 9>/run/lock/ipseq-debian-packages.lock
flock -w 1800 9 || skip "another run of this test held the package lock for 30 minutes"
for p in $pkgs; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | matches 'installed|config-files'; then
		skip "package $p is already on this machine; the test would remove it"
	fi
done
work=$(mktemp -d /tmp/ipseq-debs.XXXXXX)
snapshot() {   # what must be the same before and after
	find /etc/ipseq /etc/strongswan.d /lib/systemd/system /etc/systemd/system \
		/usr/lib/ipsec/plugins /var/lib/systemd/deb-systemd-helper-enabled 2>/dev/null | sort
	cut -d: -f1 /etc/passwd /etc/group | sort
}
snapshot > "$work/before"
purge() { apt-get purge -y -qq $pkgs >/dev/null 2>&1 || dpkg --purge $pkgs >/dev/null 2>&1 || true; }
trap 'cleanup; purge; rm -rf "$work"' EXIT

fatal "scripts/package builds the packages, lintian reports no error" "$top/scripts/package" "$work/debs"
grep -E '^[EW]: ' "$work/debs/lintian.txt" | sed 's/^/# lintian: /'
for p in $pkgs; do
	check "package $p built" test -f "$(ls "$work/debs/${p}_"*.deb 2>/dev/null | head -n 1)"
done
swan=$(dpkg-query -W -f='${Version}' strongswan-charon); swan=${swan%%-*}
# the mlkem plugin (ML-KEM from OpenSSL 3.5) exists only for strongSwan 6 (Debian 13): there the
# plugin package carries it with its man page and configuration, on 5.9.8 nothing of it
mlkem_files=$(dpkg-deb -c "$(ls "$work"/debs/strongswan-qkd-plugins_*.deb | head -n 1)" |
	grep -cE '\./(usr/lib/ipsec/plugins/libstrongswan-mlkem\.so|usr/share/man/man8/strongswan-mlkem\.8\.gz|etc/strongswan\.d/charon/mlkem\.conf)$')
case "$swan" in
	6.*) check "strongSwan $swan: strongswan-qkd-plugins carries the mlkem plugin, strongswan-mlkem(8) and mlkem.conf" \
		test "$mlkem_files" -eq 3;;
	*) check "strongSwan $swan: no mlkem plugin (ML-KEM needs strongSwan 6), nothing of it packaged" \
		test "$mlkem_files" -eq 0;;
esac
next=$(echo "$swan" | awk -F. '{ $NF = $NF + 1; print }' OFS=.)
deps=$(dpkg-deb -f "$work"/debs/strongswan-qkd-plugins_*.deb Depends)
echo "# strongswan-qkd-plugins Depends: $deps"
check "plugins depend on strongSwan >= $swan and << $next~ (the release they were built with)" \
	matches "strongswan-charon \(>= $swan\), strongswan-charon \(<< $next~\)" <<<"$deps"
check "plugins depend on libstrongswan-standard-plugins (openssl, gcm)" \
	matches 'libstrongswan-standard-plugins' <<<"$deps"

fatal "apt-get installs the packages" quiet apt-get install -y --no-install-recommends "$work"/debs/*.deb
for p in $pkgs; do check "$p installed" matches 'install ok installed' < <(dpkg-query -W -f='${Status}' "$p"); done
check "installing does not switch charon to kernel-qkd (no /etc/strongswan.d/charon/kernel-qkd.conf)" \
	test ! -e /etc/strongswan.d/charon/kernel-qkd.conf
check "kernel-qkd's configuration is an example for the operator" \
	test -f /usr/share/doc/strongswan-qkd-plugins/examples/kernel-qkd.conf
check "charon is ordered after qkid (drop-in for strongswan.service)" \
	matches '^After=qkid.service' < /lib/systemd/system/strongswan.service.d/ipseq-qkid.conf

# systemd-analyze verify on every unit, with the programs and man pages it names installed
mkdir -p "$work/units"
cp /lib/systemd/system/qkid.service "$work/units/"
cp /lib/systemd/system/qkd-kmsd@.service "$work/units/qkd-kmsd@KME_A.service"
for u in "$work"/units/*.service; do
	out=$(systemd-analyze verify "$u" 2>&1); rc=$?
	[ -n "$out" ] && echo "$out" | sed 's/^/# verify: /'
	check "systemd-analyze verify $(basename "$u"): no complaint" test "$rc" = 0 -a -z "$out"
done
for u in strongswan-starter.service strongswan.service; do
	[ -f "/lib/systemd/system/$u" ] || continue
	out=$(systemd-analyze verify "$u" 2>&1 | grep -v 'is not executable\|man ' || true)
	check "systemd-analyze verify $u with the qkid drop-in: no complaint" test -z "$out"
done
for u in "$work"/units/*.service; do
	systemd-analyze security --offline=yes "$u" 2>/dev/null | tail -n 1 | sed "s/^/# $(basename "$u"): /"
done

# The QKD tunnel from installed files only.
export LAB_INSTALLED=yes LAB_QKD=yes LAB_DATAPATH=kernel-qkd PATH=/usr/sbin:/usr/bin:/sbin:/bin
# strongSwan 6: both charons load the installed mlkem plugin too (used at the end)
case "$swan" in 6.*) export LAB_PLUGINS="qkd mlkem";; esac
fatal "QKD lab comes up from the installed packages" lab up
for gw in gwA gwB; do
	fatal "$gw restarts with kernel-qkd rotation" quiet lab rotation "$gw" 100 65536 reuse
done
pid=$(cat "$LAB_DIR/gwA/run/charon.pid")
check "gwA's charon maps the installed qkd plugin" matches '/usr/lib/ipsec/plugins/libstrongswan-qkd\.so' < "/proc/$pid/maps"
check "gwA's charon maps the installed kernel-qkd plugin" matches '/usr/lib/ipsec/plugins/libstrongswan-kernel-qkd\.so' < "/proc/$pid/maps"
check "gwA's charon maps nothing from the build tree" not matches "$top" < "/proc/$pid/maps"
case "$swan" in 6.*)
	check "gwA's charon maps the installed mlkem plugin" matches '/usr/lib/ipsec/plugins/libstrongswan-mlkem\.so' < "/proc/$pid/maps"
	check "... which provides ML-KEM-512/768/1024 from OpenSSL" in_log gwA 'mlkem plugin: ML_KEM_512, ML_KEM_768 and ML_KEM_1024 from OpenSSL 3\.';;
esac
# compared by device and inode: in a chroot, readlink of /proc/PID/exe may show the path as the
# host sees it
check "gwA's qkid is /usr/sbin/qkid" test "/proc/$(cat "$LAB_DIR/gwA/qkid.pid")/exe" -ef /usr/sbin/qkid
check "gwA's KME is /usr/sbin/qkd-kmsd" test "/proc/$(cat "$LAB_DIR/gwA/kmsd.pid")/exe" -ef /usr/sbin/qkd-kmsd
# qkid.service's readiness probe (ExecStartPost) against this qkid, and against no qkid at all
probe=$(sed -n 's/^ExecStartPost=//p' /lib/systemd/system/qkid.service)
check "qkid.service's readiness probe passes once qkid's socket accepts" \
	bash -c "${probe//\/run\/qkid\/qkid.sock/$LAB_DIR/gwA/qkid.sock}"
check "qkid.service's readiness probe fails (bounded) without a qkid" \
	not bash -c "${probe//\/run\/qkid\/qkid.sock/$LAB_DIR/none.sock}"
fatal "gwA initiates the QKD tunnel" lab initiate gwA net 20
sas=$(sw gwA --list-sas 2>&1)
check "IKE_SA negotiated the QKD key exchange (1051) and a PPK" matches '\(1051\)/PPK' <<<"$sas"
check "QPSK authentication succeeded on gwB" in_log gwB "authentication of 'gwA.ipseq.test' with pre-shared key successful"
check "both of gwA's SAs rotate with qkid window keys" \
	test "$(grep -cE "kernel-qkd: (in|out)bound SA .* ESP key rotation with key peer 'gwB'" "$LAB_DIR/gwA/charon.log")" -eq 2
check "hostA pings hostB through the tunnel (500 packets, several windows)" \
	ip netns exec "$LAB-hostA" ping -q -c 500 -i 0.002 -W 2 192.0.2.130
keys_out=$(qkictl -s "$LAB_DIR/gwA/qkid.sock" sas 2>/dev/null | awk '$2 == "out" { print $6 }')
echo "# gwA's qkid handed out ${keys_out:-?} window keys for the outbound SA"
check "installed qkictl: gwA's qkid handed out window keys (>= 4)" test "${keys_out:-0}" -ge 4
# strongSwan 6: Debian 13's hybrid from the installed packages alone: X25519, then ML-KEM-768 (the
# packaged mlkem plugin on both gateways) and QKD as RFC 9370 additional key exchanges (without
# mlkem on gwB, the initiation fails)
case "$swan" in 6.*)
	terminate_all
	for gw in gwA gwB; do
		sed -i -E 's/^(\t\tproposals = ).*/\1aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke2_qkd/' "$LAB_DIR/$gw/swanctl.conf"
		fatal "$gw loads proposals x25519-ke1_mlkem768-ke2_qkd" quiet lab load "$gw"
	done
	fatal "gwA initiates with X25519 + ML-KEM-768 + QKD" lab initiate gwA net 20
	sas=$(sw gwA --list-sas 2>&1)
	check "IKE_SA negotiated X25519, ML-KEM-768 and QKD (1052), and a PPK" \
		matches 'CURVE_25519/KE1_ML_KEM_768/KE2_\(1052\)/PPK' <<<"$sas"
	check "hostA pings hostB through it" ping_all hostA 20 0.01 192.0.2.130;;
esac
lab down >/dev/null 2>&1

fatal "apt-get purges the packages" quiet apt-get purge -y $pkgs
for p in $pkgs; do
	check "$p: dpkg knows none of its files" not quiet dpkg -L "$p"
done
snapshot > "$work/after"
diff "$work/before" "$work/after" | sed 's/^/# left: /'
check "nothing left in /etc, the unit and plugin directories, users or groups" cmp -s "$work/before" "$work/after"
finish
