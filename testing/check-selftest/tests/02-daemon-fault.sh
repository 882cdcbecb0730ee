#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# the daemon reads its block after freeing it: a report only AddressSanitizer writes
exec "$(dirname "$0")/../daemon-test.sh" fault
