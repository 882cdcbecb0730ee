#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Every strongSwan plugin and program that the lab, the demo and the tests use belongs to a Debian
# package that scripts/bootstrap's list brings in through Depends/Pre-Depends alone (or to the
# base system), so a fresh machine has it: see testing/package_origin.py for how the lists are
# derived. A file from anywhere else (a package installed by hand, a Recommends, /usr/local,
# a pyenv shim on PATH) fails, named with its package.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
command -v apt-cache >/dev/null && command -v dpkg-query >/dev/null || { echo "SKIP: not a Debian system (no apt-cache/dpkg-query)"; exit 77; }
python3 "$top/testing/package_origin.py" "$top"
