#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Every setting qkid_conf.c accepts is documented (set or commented) in conf/qkid.conf.
srcdir=${srcdir:-.}
keys=$(grep -oE '(STR_KEY|UINT_KEY)\("[a-z_]+"|strcmp\(key, "[a-z_]+"\)' "$srcdir/qkid_conf.c" |
	grep -oE '"[a-z_]+"' | tr -d '"' | sort -u)
[ -n "$keys" ] || { echo "no settings found in qkid_conf.c"; exit 1; }
missing=0
for k in $keys; do
	if ! grep -qE "^#? *$k =" "$srcdir/../../conf/qkid.conf"; then
		echo "not documented in conf/qkid.conf: $k"
		missing=1
	fi
done
[ "$missing" = 0 ] && echo "all $(echo "$keys" | wc -l) settings documented"
exit $missing
