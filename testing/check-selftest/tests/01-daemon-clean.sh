#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# control: the daemon frees its block after reading it (no report)
exec "$(dirname "$0")/../daemon-test.sh" clean
