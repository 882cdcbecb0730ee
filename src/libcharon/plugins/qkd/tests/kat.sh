#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Known-answer tests of every IPSeQ derivation: our C code prints, kat.py recomputes independently.
set -e
dir=$(dirname "$0")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python3 -c 'import cryptography' 2>/dev/null || { echo "kat.sh: python3-cryptography missing (scripts/bootstrap installs it)"; exit 1; }
./tests/qkd_kat > "$out/ike.txt"
./tests/kat_window_key > "$out/window.txt"
python3 "$dir/kat.py" "$out/ike.txt" "$out/window.txt"
