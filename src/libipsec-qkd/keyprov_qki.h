/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keyprov_qki.h - window keys from qkid (src/qki, local API v1): the key of window e of an SA is
 * qkid's epoch key e of that SA (SA_KEYS), rpk advice from SA_REPORT. libc + libqkiclient only;
 * built into qkd-espd (the library does not link libqkiclient, so a charon plugin can link both
 * without duplicate symbols). Blocking: only for the datapath's key helper thread.
 */
#ifndef IQ_KEYPROV_QKI_H
#define IQ_KEYPROV_QKI_H

#include "ipsec_qkd.h"

/**
 * socket: qkid's unix socket (NULL: its default). timeout_ms bounds every call; wait_ms is how
 * long qkid may hold a key request when no key is ready. Connects lazily on the first SA, so a
 * datapath starts while qkid is still coming up. NULL only when out of memory.
 */
struct iq_key_provider *iq_qki_provider_create(const char *socket, int timeout_ms, int wait_ms);

#endif
