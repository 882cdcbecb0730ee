#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Every setting a parser of the suite accepts is documented, in the example configuration (set or
# commented) and in the man page of that configuration:
#   qkid:        the keys of qkid_conf.c          in conf/qkid.conf and qkid.conf(5)
#   qkd-kmsd:    the settings table of kmsd_config.c in conf/kmsd.conf and qkd-kmsd.conf(5)
#   the plugins: the keys qkd and kernel-qkd read with lib->settings (charon.plugins.qkd.*,
#                charon.plugins.kernel-qkd.*, peers.<peer>.*,
#                connections.<connection>.*) in conf/strongswan.d/charon/*.conf
#                and strongswan-qkd(8)
srcdir=${srcdir:-.}
top=$srcdir/../..
missing=0 total=0
# man pages write '-' as '\-'
man_has() { sed 's/\\-/-/g' "$2" | grep -qF -- ".BR $1 \""; }
conf_has() { grep -qE "^ *#? *$1 =" "$2"; }
need() {   # need KEY CONF_KEY CONF MANPAGE
	total=$((total + 1))
	conf_has "$2" "$3" || { echo "not documented in ${3#$top/}: $1"; missing=1; }
	man_has "$1" "$4" || { echo "not documented in ${4#$top/}: $1"; missing=1; }
}

keys=$(grep -oE '(STR_KEY|UINT_KEY)\("[a-z_]+"|strcmp\(key, "[a-z_]+"\)' "$srcdir/qkid_conf.c" |
	grep -oE '"[a-z_]+"' | tr -d '"' | sort -u)
[ -n "$keys" ] || { echo "no settings found in qkid_conf.c"; exit 1; }
for k in $keys; do need "$k" "$k" "$top/conf/qkid.conf" "$srcdir/qkid.conf.5"; done

keys=$(grep -oE '^[[:space:]]*\{ *"[a-z_]+", *OPT_' "$top/src/kmsd/kmsd_config.c" |
	grep -oE '"[a-z_]+"' | tr -d '"' | sort -u)
[ -n "$keys" ] || { echo "no settings found in kmsd_config.c"; exit 1; }
for k in $keys; do need "$k" "$k" "$top/conf/kmsd.conf" "$top/src/kmsd/qkd-kmsd.conf.5"; done

# charon.plugins.NAME.PATH from the plugins' lib->settings keys; kernel-qkd builds its rotation
# keys with key_pattern(..., section ? "SECTION_KEY" : "DEFAULT_KEY") or (..., "KEY"), for the
# defaults (rotation.KEY) and each section load_rotation("SECTION", ...) reads (peers, connections).
plugins=$top/src/libcharon/plugins
keys=$( { grep -ohE '"%s\.plugins\.(qkd|kernel-qkd)\.[a-z0-9_.%-]+"' "$plugins"/qkd/*.c "$plugins"/kernel_qkd/*.c |
		tr -d '"' | sed -E 's/^%s\.plugins\.//; s/\.([a-z]+)s\.%s\./.\1s.<\1>./' |
		grep -vE '\.(peers|connections)$|\.%s$'
	sections=$(grep -ohE 'load_rotation\("[a-z]+"' "$plugins"/kernel_qkd/*.c | grep -oE '[a-z]+"' | tr -d '"')
	grep -ohE 'key_pattern\(key, sizeof\(key\), section, (section \? "[a-z_]+" : "[a-z_]+"|"[a-z_]+")\)' \
		"$plugins"/kernel_qkd/*.c |
		sed -E 's/.*section \? "([a-z_]+)" : "([a-z_]+)".*/\1:\2/; s/.*section, "([a-z_]+)"\)/\1/' |
		while read -r k; do
			echo "kernel-qkd.rotation.${k#*:}"
			for s in $sections; do echo "kernel-qkd.$s.<${s%s}>.${k%%:*}"; done
		done; } | sort -u)
[ "$(echo "$keys" | grep -c '^qkd\.')" -gt 3 ] && [ "$(echo "$keys" | grep -c '^kernel-qkd\.')" -gt 10 ] ||
	{ echo "too few plugin settings found in the sources: the extraction is broken"; exit 1; }
for k in $keys; do
	conf=$top/conf/strongswan.d/charon/${k%%.*}.conf
	need "charon.plugins.$k" "${k##*.}" "$conf" "$plugins/qkd/strongswan-qkd.8"
done
[ "$missing" = 0 ] && echo "all $total settings documented"
exit $missing
