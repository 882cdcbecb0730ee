#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# ML-KEM interop (strongSwan 6 only): gwA runs our mlkem plugin (OpenSSL 3.5's ML-KEM), gwB
# strongSwan 6's own ml plugin, built here from the strongSwan source package that
# scripts/bootstrap fetched from Debian (Debian builds it into no binary package). For each of
# ML-KEM-512/768/1024 as RFC 9370 additional key exchange after X25519, gwA initiates (ours sends
# the encapsulation key and decapsulates, theirs encapsulates) and then gwB initiates (the other
# way round); each time the CHILD_SA comes up, pings cross it, both logs name the methods, and
# the same side rekeys the CHILD_SA (PFS with the same methods) and the IKE_SA, with traffic after
# each rekey.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
swan=$top/.build/strongswan
version=$(sed -n 's/^#define VERSION "\(.*\)"/\1/p' "$swan/config.h" 2>/dev/null)
case "$version" in
	6.*) ;;
	*) skip "ML-KEM key exchanges need strongSwan 6 (Debian 13); the suite is built against strongSwan ${version:-?} here: run scripts/check --distro trixie";;
esac
ours=$top/src/libstrongswan/plugins/mlkem/.libs/libstrongswan-mlkem.so
fatal "our mlkem plugin is built" test -f "$ours"

# strongSwan's ml plugin, compiled from the strongSwan source package that scripts/bootstrap
# fetched from Debian (.build/strongswan, outside git) with its configured config.h, as its own
# Makefile would (that Makefile first wants to re-run aclocal on the unpacked tree); the object
# is kept in .build/ml-plugin and rebuilt when a source is newer
ml=$swan/src/libstrongswan/plugins/ml
theirs=$top/.build/ml-plugin/libstrongswan-ml.so
build_ml() {
	mkdir -p "$(dirname "$theirs")"
	[ -f "$theirs" ] && [ -z "$(find "$ml" -name '*.[ch]' -newer "$theirs")" ] && return 0
	cc -shared -fPIC -O2 -g -include "$swan/config.h" -I"$swan/src/libstrongswan" \
		-o "$theirs" "$ml"/*.c
}
fatal "strongSwan $version's ml plugin builds from Debian's source package" build_ml
fatal "it is strongSwan's ml plugin (exports ml_plugin_create)" \
	bash -c "nm -D --defined-only '$theirs' | grep -qw ml_plugin_create"

export LAB_PLUGINS_gwA=mlkem LAB_PLUGINS_gwB=ml LAB_PLUGIN_SO="ml=$theirs"
fatal "lab comes up: gwA with mlkem, gwB with strongSwan's ml" lab up
check "mlkem plugin loaded into gwA's charon" in_log gwA 'mlkem plugin: ML_KEM_512, ML_KEM_768 and ML_KEM_1024 from OpenSSL 3\.'
check "gwA loads mlkem" in_log gwA 'loaded plugins: charon mlkem '
check "gwA does not load ml" not in_log gwA 'loaded plugins: .* ml( |$)'
check "gwB loads ml" in_log gwB 'loaded plugins: charon ml '
check "no mlkem on gwB" not in_log gwB 'mlkem'

# set_proposals IKE ESP: the IKE and ESP proposals of both gateways' connection, reloaded
set_proposals() {
	local gw
	for gw in gwA gwB; do
		sed -i -E -e "s/^(\t\tproposals = ).*/\1$1/" \
			-e "s/^(\t\t\t\tesp_proposals = ).*/\1$2/" "$LAB_DIR/$gw/swanctl.conf"
		lab load "$gw" || return 1
	done
}
# both_established TRANSFORMS: both gateways' IKE_SA is established and lists these transforms
both_established() {
	local gw out
	for gw in gwA gwB; do
		out=$(sw "$gw" --list-sas --ike lab) || return 1
		grep -q ESTABLISHED <<<"$out" && grep -qF "$1" <<<"$out" || return 1
	done
}
# both_child_has TRANSFORMS: both gateways have an installed CHILD_SA net with these transforms
both_child_has() {
	local gw
	for gw in gwA gwB; do
		sw "$gw" --list-sas --ike lab | matches "INSTALLED, TUNNEL.*ESP:.*$1" || return 1
	done
}
# none_established: neither gateway has an established IKE_SA
none_established() { ! sw gwA --list-sas --ike lab | matches ESTABLISHED && ! sw gwB --list-sas --ike lab | matches ESTABLISHED; }

passed=""
for size in 512 768 1024; do
	method=ML_KEM_$size
	set_proposals "aes256gcm16-prfsha384-x25519-ke1_mlkem$size" "aes256gcm16-x25519-ke1_mlkem$size"
	for initiator in gwA gwB; do
		responder=$([ "$initiator" = gwA ] && echo gwB || echo gwA)
		roles="$initiator initiates ($([ "$initiator" = gwA ] && echo "ours encapsulation key, theirs ciphertext" || echo "theirs encapsulation key, ours ciphertext"))"
		mark_i=$(log_lines "$initiator") mark_r=$(log_lines "$responder")
		check "$method: $roles: CHILD_SA up" lab initiate "$initiator"
		check "$method: both IKE_SAs show CURVE_25519/KE1_$method" both_established "CURVE_25519/KE1_$method"
		check "$method: $initiator's log names the selected proposal with KE1_$method" \
			since "$initiator" "$mark_i" "selected proposal: IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519/KE1_$method"
		check "$method: $responder's log names the selected proposal with KE1_$method" \
			since "$responder" "$mark_r" "selected proposal: IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519/KE1_$method"
		check "$method: the ML-KEM data went in an IKE_INTERMEDIATE exchange" \
			since "$initiator" "$mark_i" "generating IKE_INTERMEDIATE request [0-9]+ \[ KE \]"
		if check "$method: $roles: hostA pings hostB through the tunnel" ping_b 3; then
			passed="$passed $method/$initiator"
		fi
		# rekeys from the same side: ML-KEM in CREATE_CHILD_SA's follow-up exchange (RFC 9370)
		mark_i=$(log_lines "$initiator")
		sw "$initiator" --rekey --child net >/dev/null 2>&1
		check "$method: CHILD_SA rekeyed by $initiator with PFS CURVE_25519/KE1_$method" \
			wait_for 20 both_child_has "CURVE_25519/KE1_$method"
		check "$method: the CHILD_SA rekey's ML-KEM data went in IKE_FOLLOWUP_KE" \
			since "$initiator" "$mark_i" "generating IKE_FOLLOWUP_KE request [0-9]+ \[ KE"
		check "$method: pings cross the rekeyed CHILD_SA" ping_b 3
		mark_i=$(log_lines "$initiator")
		sw "$initiator" --rekey --ike lab >/dev/null 2>&1
		check "$method: IKE_SA rekeyed by $initiator" \
			wait_for 20 since "$initiator" "$mark_i" "IKE_SA lab\[[0-9]+\] rekeyed between"
		check "$method: the IKE rekey's ML-KEM data went in IKE_FOLLOWUP_KE" \
			since "$initiator" "$mark_i" "generating IKE_FOLLOWUP_KE request [0-9]+ \[ KE"
		check "$method: the new IKE_SA shows CURVE_25519/KE1_$method on both" \
			both_established "CURVE_25519/KE1_$method"
		check "$method: pings cross the tunnel after the IKE rekey" ping_b 3
		sw "$initiator" --terminate --ike lab --timeout 10 >/dev/null 2>&1
		check "$method: IKE_SA gone on both after terminate" wait_for 10 none_established
	done
done
echo "# interop passed (method/initiator, gwA = mlkem, gwB = strongSwan ml):$passed"
check "no key exchange failure logged by either gateway" \
	not grep -qE "mlkem: |wrong ML_KEM|ML_KEM_[0-9]+ public key encoding invalid" "$LAB_DIR/gwA/charon.log" "$LAB_DIR/gwB/charon.log"
finish
