/* SPDX-License-Identifier: MIT */
/*
 * tls: OpenSSL server contexts (see tls.h). PSK keys are loaded once into memory; the PSK
 * callback looks the client's identity up there (constant-time comparison of keys is not needed:
 * the identity is public, the key is never compared, only handed to the handshake).
 */
#include "server/tls.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "common/log.h"

#define PSK_MAX_KEYS 256
#define PSK_KEY_MAX  64 /* bytes */

struct psk_entry {
    char identity[128];
    unsigned char key[PSK_KEY_MAX];
    unsigned keylen;
};

struct psk_table {
    struct psk_entry e[PSK_MAX_KEYS];
    size_t n;
};

static int psk_index = -1;

static int
hexval(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

static int
load_psk(const char *path, struct psk_table *t, struct err_msg *em)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return err_msg_set(em, -errno, "cannot open tls-psk-file '%s': %s", path, strerror(errno));
    char line[512];
    unsigned lineno = 0;
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (line[0] == 0 || line[0] == '#')
            continue;
        char *colon = strchr(line, ':');
        size_t idlen = colon ? (size_t)(colon - line) : 0;
        size_t hexlen = colon ? strlen(colon + 1) : 0;
        if (colon == NULL || idlen == 0 || idlen >= sizeof(t->e[0].identity) || hexlen == 0 ||
            hexlen % 2 != 0 || hexlen / 2 > PSK_KEY_MAX) {
            rc = err_msg_set(em, -EINVAL, "%s:%u: expected user:hexkey (key up to %u bytes)", path,
                             lineno, PSK_KEY_MAX);
            break;
        }
        if (t->n == PSK_MAX_KEYS) {
            rc = err_msg_set(em, -EINVAL, "%s: more than %u keys", path, PSK_MAX_KEYS);
            break;
        }
        struct psk_entry *e = &t->e[t->n];
        memcpy(e->identity, line, idlen);
        e->identity[idlen] = 0;
        for (size_t i = 0; i < hexlen / 2; i++) {
            int hi = hexval((unsigned char)colon[1 + 2 * i]),
                lo = hexval((unsigned char)colon[2 + 2 * i]);
            if (hi < 0 || lo < 0) {
                rc = err_msg_set(em, -EINVAL, "%s:%u: key is not hexadecimal", path, lineno);
                break;
            }
            e->key[i] = (unsigned char)(hi << 4 | lo);
        }
        e->keylen = (unsigned)(hexlen / 2);
        if (rc == 0)
            t->n++;
    }
    fclose(f);
    if (rc == 0 && t->n == 0)
        rc = err_msg_set(em, -EINVAL, "%s: no keys", path);
    return rc;
}

static unsigned int
psk_server_cb(SSL *ssl, const char *identity, unsigned char *psk, unsigned int max_psk_len)
{
    SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
    const struct psk_table *t = SSL_CTX_get_ex_data(ctx, psk_index);
    if (t == NULL || identity == NULL)
        return 0;
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->e[i].identity, identity) == 0 && t->e[i].keylen <= max_psk_len) {
            memcpy(psk, t->e[i].key, t->e[i].keylen);
            return t->e[i].keylen;
        }
    }
    log_info("nbd: TLS-PSK identity '%s' is unknown", identity);
    return 0;
}

static void
psk_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (ptr != NULL)
        OPENSSL_cleanse(ptr, sizeof(struct psk_table));
    free(ptr);
}

static const char *
ssl_error(void)
{
    static __thread char buf[256];
    unsigned long e = ERR_get_error();
    if (e == 0)
        return "unknown error";
    ERR_error_string_n(e, buf, sizeof(buf));
    return buf;
}

SSL_CTX *
tls_server_ctx(const struct lcpfs_config *cfg, struct err_msg *em)
{
    if (cfg->nbd.tls_cert == NULL && cfg->nbd.tls_psk_file == NULL) {
        err_msg_set(em, -EINVAL, "nbd.tls is %s but neither tls-cert nor tls-psk-file is set",
                    config_tls_name(cfg->nbd.tls));
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        err_msg_set(em, -ENOMEM, "cannot create a TLS context: %s", ssl_error());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    int rc = 0;
    if (cfg->nbd.tls_cert != NULL) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cfg->nbd.tls_cert) != 1)
            rc = err_msg_set(em, -EINVAL, "cannot load tls-cert '%s': %s", cfg->nbd.tls_cert,
                             ssl_error());
        else if (SSL_CTX_use_PrivateKey_file(ctx, cfg->nbd.tls_key, SSL_FILETYPE_PEM) != 1)
            rc = err_msg_set(em, -EINVAL, "cannot load tls-key '%s': %s", cfg->nbd.tls_key,
                             ssl_error());
        else if (SSL_CTX_check_private_key(ctx) != 1)
            rc = err_msg_set(em, -EINVAL, "tls-key '%s' does not match tls-cert '%s'",
                             cfg->nbd.tls_key, cfg->nbd.tls_cert);
    }
    if (rc == 0 && cfg->nbd.tls_ca != NULL &&
        SSL_CTX_load_verify_locations(ctx, cfg->nbd.tls_ca, NULL) != 1)
        rc = err_msg_set(em, -EINVAL, "cannot load tls-ca '%s': %s", cfg->nbd.tls_ca, ssl_error());
    if (rc == 0 && cfg->nbd.tls_verify_peer) {
        if (cfg->nbd.tls_ca == NULL)
            rc = err_msg_set(em, -EINVAL, "tls-verify-peer needs tls-ca");
        else
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    if (rc == 0 && cfg->nbd.tls_psk_file != NULL) {
        if (psk_index < 0)
            psk_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, psk_free);
        struct psk_table *t = calloc(1, sizeof(*t));
        if (t == NULL)
            rc = err_msg_set(em, -ENOMEM, "out of memory");
        else if ((rc = load_psk(cfg->nbd.tls_psk_file, t, em)) != 0)
            psk_free(NULL, t, NULL, 0, 0, NULL);
        else {
            SSL_CTX_set_ex_data(ctx, psk_index, t);
            SSL_CTX_set_psk_server_callback(ctx, psk_server_cb);
            /* PSK-only servers need PSK cipher suites for TLS 1.2. */
            if (cfg->nbd.tls_cert == NULL)
                SSL_CTX_set_cipher_list(ctx, "PSK:ECDHE-PSK:DHE-PSK");
        }
    }
    if (rc != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}
