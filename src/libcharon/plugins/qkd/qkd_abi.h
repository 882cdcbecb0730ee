/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup qkd_abi qkd_abi
 * @{ @ingroup qkd
 *
 * ABI guard against a charon built differently from our headers.
 *
 * Debian configures strongSwan with --enable-mediation, which defines ME and inserts members into
 * ike_sa_t, daemon_t and peer_cfg_t. A plugin built without ME calls the wrong vtable slots and
 * crashes charon, so the build refuses such headers and the loader refuses a charon of another
 * release.
 */

#ifndef QKD_ABI_H_
#define QKD_ABI_H_

#include <library.h>

/**
 * The strongSwan release of the headers, as 0xMMmmpp (configure: IPSEQ_STRONGSWAN_VERSION_NUM).
 * The suite supports two: 5.9.8 (Debian 12) and 6.0.x (Debian 13). Where their APIs differ, the
 * code says "#if QKD_STRONGSWAN_6" and keeps the 5.9.8 path as it was.
 */
#define QKD_STRONGSWAN_6 (IPSEQ_STRONGSWAN_VERSION_NUM >= 0x060000)

#if IPSEQ_STRONGSWAN_VERSION_NUM != 0x050908 && (IPSEQ_STRONGSWAN_VERSION_NUM & 0xffff00) != 0x060000
#error "strongSwan headers of an unsupported release: the suite supports 5.9.8 and 6.0.x"
#endif

/**
 * Whether a strongSwan version string names a release the suite supports at all (5.9.8 of
 * Debian 12, 6.0.x of Debian 13), whatever release the plugins were built against.
 *
 * @param version	e.g. "6.0.1"
 * @return			TRUE for 5.9.8 and 6.0.x
 */
bool qkd_abi_supported(const char *version);

/**
 * Check that a program is the strongSwan release our headers come from, by the version in the
 * "(strongSwan X.Y.Z," banner every charon flavour carries.
 *
 * @param path		program to inspect, "/proc/self/exe" for the running one
 * @param running	on return, the version found in the program, or an empty string
 * @return			TRUE if the program announces the headers' VERSION
 */
bool qkd_abi_check_program(const char *path, char running[32]);

/**
 * Check that the running charon is the release of our headers, logging why a plugin refuses to
 * load if it is not.
 *
 * @param plugin	name of the plugin, for the log line
 * @return			TRUE if the plugin may load
 */
bool qkd_abi_check_running(const char *plugin);

#endif /** QKD_ABI_H_ @}*/
