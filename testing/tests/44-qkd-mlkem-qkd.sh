#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# X25519 + ML-KEM-768 + QKD (strongSwan 6, Debian 13): test 43 with x25519-ke1_mlkem768-ke2_qkd
# and the suite's mlkem plugin on both gateways: ML-KEM in the first IKE_INTERMEDIATE, QKD in the
# second, in the handshake, CHILD_SA rekeys with PFS and IKE rekeys. Skipped on strongSwan 5.9.8.
export QKD_KE_PROPOSAL=x25519-ke1_mlkem768-ke2_qkd LAB_PLUGINS="qkd mlkem"
exec "$(dirname "$0")/43-qkd-additional-ke.sh"
