/* SPDX-License-Identifier: MIT */
/*
 * tls: the OpenSSL server context for NBD STARTTLS — X.509 (certificate, key, optional CA with
 * client-certificate verification) and/or PSK from a `user:hexkey` file (the format of GnuTLS
 * psktool, which nbdkit and qemu use). TLS 1.2 minimum.
 */
#ifndef LCPFS_SERVER_TLS_H
#define LCPFS_SERVER_TLS_H

#include <openssl/ssl.h>

#include "common/err.h"
#include "config/config.h"

/* A new server context per cfg->nbd (cert/key, ca, verify-peer, psk-file). NULL with a message
 * when the files cannot be loaded or nothing usable is configured. */
SSL_CTX *tls_server_ctx(const struct lcpfs_config *cfg, struct err_msg *em);

#endif
