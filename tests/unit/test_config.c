/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for config/: the embedded default and the shipped config/lcpfsd.conf (equal), every
 * key parsed, the value grammar (booleans, sizes, addresses) as tables, the layer rules (file
 * over default, overrides over file, lists replaced or appended, the embedded pool dropped),
 * path resolution, every error path with its exact `file:line:` or `-o ...:` message, the error
 * cap, and config_dump output loading back to an equal config.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "config/config.h"
#include "core/dsl_record.h"
#include "core/ondisk.h"

_Static_assert(CONFIG_VDEV_MIN_SIZE == VDEV_MIN_SIZE, "config and core disagree on vdev size");
_Static_assert(CONFIG_POOL_NAME_MAX == POOL_NAME_MAX, "config and core disagree on pool names");
_Static_assert(CONFIG_DATASET_NAME_MAX == DSL_NAME_MAX, "config and core disagree on names");

#define GIB (1ull << 30)

static char dir[64];
static char conf[128]; /* dir/t.conf: the file each test writes */
static char dump[128]; /* dir/dump.conf */

static void
setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/lcpfs-config-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(conf, sizeof(conf), "%s/t.conf", dir);
    snprintf(dump, sizeof(dump), "%s/dump.conf", dir);
}

static void
teardown(void)
{
    unlink(conf);
    unlink(dump);
    rmdir(dir);
}

TestSuite(config, .init = setup, .fini = teardown, .timeout = 60);

static void
write_bytes(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

/* Loads text (NULL = no file) plus overrides; asserts success and no messages. */
static void
load_ok(struct lcpfs_config *c, const char *text, const char *const *ovr, size_t n)
{
    struct config_errors e;
    if (text != NULL)
        write_bytes(conf, text, strlen(text));
    int rc = config_load(c, text ? conf : NULL, ovr, n, &e);
    cr_assert_eq(rc, 0, "config_load: %d, first message: %s", rc, e.n ? e.msg[0] : "(none)");
    cr_assert_eq(e.n, 0);
    config_errors_free(&e);
}

/* The shipped config file, found from this source file's path (CMake compiles it by its
 * absolute path) or LCPFS_SOURCE_DIR. */
static void
shipped_conf(char *buf, size_t len)
{
    const char *src = getenv("LCPFS_SOURCE_DIR");
    if (src != NULL) {
        snprintf(buf, len, "%s/config/lcpfsd.conf", src);
        return;
    }
    const char *f = __FILE__;
    const char *tail = strstr(f, "tests/unit/test_config.c");
    cr_assert_not_null(tail, "set LCPFS_SOURCE_DIR (__FILE__ is %s)", f);
    snprintf(buf, len, "%.*sconfig/lcpfsd.conf", (int)(tail - f), f);
}

static char *
cwd_join(const char *rel)
{
    char *cwd = getcwd(NULL, 0);
    cr_assert_not_null(cwd);
    char *out = NULL;
    cr_assert_geq(asprintf(&out, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, rel), 0);
    free(cwd);
    return out;
}

/* ---- the embedded default and the shipped file --------------------------------------------- */

Test(config, embedded_default_is_tank_with_vol0_on_loopback)
{
    struct lcpfs_config c;
    cr_assert_eq(config_defaults(&c), 0);
    char *dd = cwd_join("lcpfs-data");
    char path[4096];
    cr_assert_str_eq(c.server.data_dir, dd);
    snprintf(path, sizeof(path), "%s/lcpfsd.sock", dd);
    cr_assert_str_eq(c.server.admin_socket, path);
    cr_assert_eq(c.server.log, CONFIG_LOG_STDERR);
    cr_assert_eq(c.server.log_level, LOG_LEVEL_INFO);
    cr_assert_eq(c.nbd.nlisten, 1);
    cr_assert_str_eq(c.nbd.listen[0].host, "127.0.0.1");
    cr_assert_eq(c.nbd.listen[0].port, 10809);
    cr_assert_eq(c.nbd.listen[0].family, AF_INET);
    snprintf(path, sizeof(path), "%s/nbd.sock", dd);
    cr_assert_str_eq(c.nbd.unix_socket, path);
    cr_assert_eq(c.nbd.tls, CONFIG_TLS_OFF);
    cr_assert(c.nbd.tls_cert == NULL && c.nbd.tls_key == NULL && c.nbd.tls_ca == NULL &&
              c.nbd.tls_psk_file == NULL && !c.nbd.tls_verify_peer);
    cr_assert_str_eq(c.nbd.default_export, "vol0");
    cr_assert_eq(c.npools, 1);
    cr_assert_str_eq(c.pools[0].name, "tank");
    cr_assert_eq(c.pools[0].nvdevs, 1);
    snprintf(path, sizeof(path), "%s/tank.vdev", dd);
    cr_assert_str_eq(c.pools[0].vdevs[0], path);
    cr_assert_eq(c.pools[0].create_size, 16 * GIB);
    cr_assert_str_eq(c.pools[0].default_volume, "vol0");
    cr_assert_eq(c.pools[0].default_volume_size, 4 * GIB);
    cr_assert_eq(c.pools[0].direct_io, CONFIG_DIRECT_IO_WRITES, "direct-io defaults to writes");
    cr_assert_eq(c.nexports, 1);
    const struct config_export *e = config_find_export(&c, "vol0");
    cr_assert_not_null(e);
    cr_assert_str_eq(e->volume, "tank/vol0");
    cr_assert(!e->readonly && e->description == NULL && !e->tls_set);
    cr_assert_eq(config_export_tls(&c, e), CONFIG_TLS_OFF);
    cr_assert_eq(config_find_pool(&c, "tank"), &c.pools[0]);
    cr_assert_null(config_find_pool(&c, "tank2"));
    free(dd);
    config_free(&c);
    config_free(&c); /* a zeroed config frees again */
}

Test(config, shipped_conf_parses_cleanly_and_equals_the_embedded_default)
{
    char path[4096];
    shipped_conf(path, sizeof(path));
    struct lcpfs_config shipped, dflt;
    struct config_errors e;
    int rc = config_load(&shipped, path, NULL, 0, &e);
    cr_assert_eq(rc, 0, "%s: %d, first message: %s", path, rc, e.n ? e.msg[0] : "(none)");
    cr_assert_eq(e.n, 0);
    config_errors_free(&e);
    cr_assert_eq(config_defaults(&dflt), 0);
    cr_assert(config_equal(&shipped, &dflt));
    /* Every key of every section appears in the shipped file, uncommented. */
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    static const char keys[] = "data-dir admin-socket log log-level listen unix tls tls-cert "
                               "tls-key tls-ca tls-verify-peer tls-psk-file default-export vdevs "
                               "create-size default-volume default-volume-size direct-io volume "
                               "readonly description";
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    char line[256];
    while (fgets(line, sizeof(line), f) != NULL)
        fputs(line, out);
    fclose(f);
    fclose(out);
    for (const char *k = keys; *k;) {
        size_t n = strcspn(k, " ");
        char pat[64];
        snprintf(pat, sizeof(pat), "\n%.*s =", (int)n, k);
        cr_assert_not_null(strstr(text, pat), "key '%.*s' missing from %s", (int)n, k, path);
        k += n + (k[n] == ' ');
    }
    free(text);
    config_free(&shipped);
    config_free(&dflt);
}

/* ---- every key --------------------------------------------------------------------------------
 */

static const char every_key[] = "\xEF\xBB\xBF# every key, non-default values, assorted dialect\r\n"
                                "[server]\r\n"
                                "data-dir = //srv/./lcpfs/   ; trailing comment\n"
                                "admin-socket: run/admin.sock\n"
                                "log = SYSLOG\n"
                                "log-level = debug\n"
                                "\n"
                                "[ nbd ]\n"
                                "listen = 0.0.0.0, [::1]:10810 [fe80::1%eth0]:99\n"
                                "    nbd.example.com:1234 localhost\n"
                                "listen += 10.1.2.3:4000\n"
                                "unix = /run/lcpfs/nbd.sock\n"
                                "tls = require\n"
                                "tls-cert = pki/server-cert.pem\n"
                                "tls-key = /etc/lcpfs/server-key.pem\n"
                                "tls-ca = pki/ca.pem\n"
                                "tls-verify-peer = On\n"
                                "tls-psk-file = keys.psk\n"
                                "default-export = snap#1\n"
                                "\n"
                                "[pool big]\n"
                                "vdevs = /dev/sdb,/dev/sdc disk2.img\n"
                                "create-size = 512m\n"
                                "default-volume = vms/disk1\n"
                                "default-volume-size = 10g\n"
                                "direct-io = ON\n"
                                "[pool small]\n"
                                "vdevs = small.vdev\n"
                                "direct-io = off\n"
                                "[nbd-export disk1]\n"
                                "volume = big/vms/disk1\n"
                                "readonly = true\n"
                                "description = first VM disk; bootable\n"
                                "tls = require\n"
                                "[nbd-export snap#1]\n"
                                "volume = small/v@monday\n";

Test(config, parses_every_key)
{
    struct lcpfs_config c;
    load_ok(&c, every_key, NULL, 0);
    cr_assert_str_eq(c.server.data_dir, "/srv/lcpfs");
    cr_assert_str_eq(c.server.admin_socket, "/srv/lcpfs/run/admin.sock");
    cr_assert_eq(c.server.log, CONFIG_LOG_SYSLOG);
    cr_assert_eq(c.server.log_level, LOG_LEVEL_DEBUG);

    static const struct {
        const char *host;
        unsigned port;
        int family;
    } want[] = { { "0.0.0.0", 10809, AF_INET },     { "::1", 10810, AF_INET6 },
                 { "fe80::1%eth0", 99, AF_INET6 },  { "nbd.example.com", 1234, AF_UNSPEC },
                 { "localhost", 10809, AF_UNSPEC }, { "10.1.2.3", 4000, AF_INET } };
    cr_assert_eq(c.nbd.nlisten, 6);
    for (size_t i = 0; i < 6; i++) {
        cr_assert_str_eq(c.nbd.listen[i].host, want[i].host);
        cr_assert_eq(c.nbd.listen[i].port, want[i].port, "listen[%zu]", i);
        cr_assert_eq(c.nbd.listen[i].family, want[i].family, "listen[%zu]", i);
    }
    cr_assert_str_eq(c.nbd.unix_socket, "/run/lcpfs/nbd.sock");
    cr_assert_eq(c.nbd.tls, CONFIG_TLS_REQUIRE);
    cr_assert_str_eq(c.nbd.tls_cert, "/srv/lcpfs/pki/server-cert.pem");
    cr_assert_str_eq(c.nbd.tls_key, "/etc/lcpfs/server-key.pem");
    cr_assert_str_eq(c.nbd.tls_ca, "/srv/lcpfs/pki/ca.pem");
    cr_assert(c.nbd.tls_verify_peer);
    cr_assert_str_eq(c.nbd.tls_psk_file, "/srv/lcpfs/keys.psk");
    cr_assert_str_eq(c.nbd.default_export, "snap#1");

    cr_assert_eq(c.npools, 2);
    const struct config_pool *big = &c.pools[0];
    cr_assert_str_eq(big->name, "big");
    cr_assert_eq(big->nvdevs, 3);
    cr_assert_str_eq(big->vdevs[0], "/dev/sdb");
    cr_assert_str_eq(big->vdevs[1], "/dev/sdc");
    cr_assert_str_eq(big->vdevs[2], "/srv/lcpfs/disk2.img");
    cr_assert_eq(big->create_size, 512ull << 20);
    cr_assert_str_eq(big->default_volume, "vms/disk1");
    cr_assert_eq(big->default_volume_size, 10 * GIB);
    cr_assert_eq(big->direct_io, CONFIG_DIRECT_IO_ON);
    const struct config_pool *small = &c.pools[1];
    cr_assert_str_eq(small->name, "small");
    cr_assert_eq(small->nvdevs, 1);
    cr_assert_str_eq(small->vdevs[0], "/srv/lcpfs/small.vdev");
    cr_assert_eq(small->create_size, 0, "unset create-size is 0");
    cr_assert_null(small->default_volume);
    cr_assert_eq(small->default_volume_size, 0);
    cr_assert_eq(small->direct_io, CONFIG_DIRECT_IO_OFF);

    cr_assert_eq(c.nexports, 2);
    const struct config_export *d1 = &c.exports[0];
    cr_assert_str_eq(d1->name, "disk1");
    cr_assert_str_eq(d1->volume, "big/vms/disk1");
    cr_assert(d1->readonly);
    cr_assert_str_eq(d1->description, "first VM disk; bootable");
    cr_assert(d1->tls_set && d1->tls == CONFIG_TLS_REQUIRE);
    const struct config_export *s1 = &c.exports[1];
    cr_assert_str_eq(s1->name, "snap#1");
    cr_assert_str_eq(s1->volume, "small/v@monday");
    cr_assert(s1->readonly, "a snapshot export is read-only without being told");
    cr_assert_null(s1->description);
    cr_assert(!s1->tls_set);
    cr_assert_eq(config_export_tls(&c, s1), CONFIG_TLS_REQUIRE, "follows [nbd] tls");
    config_free(&c);
}

Test(config, vdev_group_keywords_are_kept_verbatim)
{
    struct lcpfs_config c;
    load_ok(&c,
            "[server]\ndata-dir = /d\n[pool m]\nvdevs = mirror a b\n  raidz2 /x/c ../d e\n"
            "  spare f log g cache h\n",
            NULL, 0);
    static const char *const want[] = { "mirror",  "/d/a",  "/d/b",  "raidz2", "/x/c",
                                        "/d/../d", "/d/e",  "spare", "/d/f",   "log",
                                        "/d/g",    "cache", "/d/h" };
    cr_assert_eq(c.pools[0].nvdevs, 13);
    for (size_t i = 0; i < 13; i++)
        cr_assert_str_eq(c.pools[0].vdevs[i], want[i]);
    cr_assert(config_vdev_is_keyword("raidz3") && !config_vdev_is_keyword("raidz4") &&
              !config_vdev_is_keyword("Mirror"));
    config_free(&c);
}

/* ---- value grammar --------------------------------------------------------------------------- */

Test(config, booleans_are_strict)
{
    static const char *const yes[] = { "on", "yes", "true", "1", "ON", "Yes", "TRUE" };
    static const char *const no[] = { "off", "no", "false", "0", "OFF", "No", "False" };
    static const char *const bad[] = { "", "y", "n", "2", "enable", "truee", " yes", "yes " };
    bool b;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        b = false;
        cr_assert_eq(config_parse_bool(yes[i], &b), 0, "'%s'", yes[i]);
        cr_assert(b, "'%s'", yes[i]);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        b = true;
        cr_assert_eq(config_parse_bool(no[i], &b), 0, "'%s'", no[i]);
        cr_assert(!b, "'%s'", no[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(config_parse_bool(bad[i], &b), -EINVAL, "'%s'", bad[i]);
}

Test(config, sizes_take_binary_suffixes_and_refuse_overflow)
{
    static const struct {
        const char *s;
        int rc;
        uint64_t v;
    } t[] = {
        { "0", 0, 0 },
        { "4097", 0, 4097 },
        { "1k", 0, 1024 },
        { "1K", 0, 1024 },
        { "64M", 0, 64ull << 20 },
        { "16G", 0, 16ull << 30 },
        { "2t", 0, 2ull << 40 },
        { "0016g", 0, 16ull << 30 },
        { "18446744073709551615", 0, UINT64_MAX },
        { "16777215T", 0, 16777215ull << 40 },
        { "18446744073709551616", -ERANGE, 0 },
        { "16777216T", -ERANGE, 0 },
        { "17179869184G", -ERANGE, 0 },
        { "", -EINVAL, 0 },
        { "G", -EINVAL, 0 },
        { "-1", -EINVAL, 0 },
        { "+1", -EINVAL, 0 },
        { "1.5G", -EINVAL, 0 },
        { "1 G", -EINVAL, 0 },
        { "1GB", -EINVAL, 0 },
        { "1GiB", -EINVAL, 0 },
        { "1P", -EINVAL, 0 },
        { " 1", -EINVAL, 0 },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        uint64_t v = 12345;
        int rc = config_parse_size(t[i].s, &v);
        cr_assert_eq(rc, t[i].rc, "'%s': %d", t[i].s, rc);
        if (rc == 0)
            cr_assert_eq(v, t[i].v, "'%s': %llu", t[i].s, (unsigned long long)v);
        else
            cr_assert_eq(v, 12345, "'%s' changed the output on failure", t[i].s);
    }
    static const struct {
        uint64_t v;
        const char *s;
    } f[] = { { 0, "0" },
              { 1023, "1023" },
              { 1024, "1K" },
              { 1536ull << 20, "1536M" },
              { 16ull << 30, "16G" },
              { 3ull << 40, "3T" },
              { UINT64_MAX, "18446744073709551615" } };
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        char buf[32];
        config_format_size(f[i].v, buf, sizeof(buf));
        cr_assert_str_eq(buf, f[i].s);
        uint64_t back;
        cr_assert_eq(config_parse_size(buf, &back), 0);
        cr_assert_eq(back, f[i].v);
    }
}

Test(config, addresses_are_validated)
{
    static const struct {
        const char *s;
        const char *host; /* NULL = invalid, why below */
        unsigned port;
        int family;
        const char *why;
    } t[] = {
        { "127.0.0.1", "127.0.0.1", 10809, AF_INET, NULL },
        { "127.0.0.1:1", "127.0.0.1", 1, AF_INET, NULL },
        { "0.0.0.0:65535", "0.0.0.0", 65535, AF_INET, NULL },
        { "[::]", "::", 10809, AF_INET6, NULL },
        { "[::1]:10810", "::1", 10810, AF_INET6, NULL },
        { "[2001:db8::7]:80", "2001:db8::7", 80, AF_INET6, NULL },
        { "[fe80::1%eth0]:80", "fe80::1%eth0", 80, AF_INET6, NULL },
        { "localhost", "localhost", 10809, AF_UNSPEC, NULL },
        { "nbd-1.example.com:9", "nbd-1.example.com", 9, AF_UNSPEC, NULL },
        { "", NULL, 0, 0, "missing host" },
        { ":10809", NULL, 0, 0, "missing host" },
        { "host:", NULL, 0, 0, "missing port after ':'" },
        { "host:0", NULL, 0, 0, "invalid port '0' (1 to 65535)" },
        { "host:65536", NULL, 0, 0, "invalid port '65536' (1 to 65535)" },
        { "host:99999999999", NULL, 0, 0, "invalid port '99999999999' (1 to 65535)" },
        { "host:80x", NULL, 0, 0, "invalid port '80x' (1 to 65535)" },
        { "host:+80", NULL, 0, 0, "invalid port '+80' (1 to 65535)" },
        { "::1", NULL, 0, 0, "an IPv6 address needs brackets: [ADDRESS]:PORT" },
        { "[::1", NULL, 0, 0, "missing ']' after the IPv6 address" },
        { "[::1]80", NULL, 0, 0, "expected ':PORT' after ']'" },
        { "[1.2.3.4]:80", NULL, 0, 0, "invalid IPv6 address '1.2.3.4'" },
        { "[fe80::1%]:80", NULL, 0, 0, "invalid IPv6 address 'fe80::1%'" },
        { "[]:80", NULL, 0, 0, "invalid IPv6 address ''" },
        { "256.1.1.1", NULL, 0, 0, "invalid IPv4 address '256.1.1.1'" },
        { "1.2.3", NULL, 0, 0, "invalid IPv4 address '1.2.3'" },
        { "-bad-:80", NULL, 0, 0, "invalid host name '-bad-'" },
        { "a..b", NULL, 0, 0, "invalid host name 'a..b'" },
        { "under_score", NULL, 0, 0, "invalid host name 'under_score'" },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct config_addr a;
        char why[128] = "";
        int rc = config_parse_addr(t[i].s, CONFIG_DEFAULT_PORT, &a, why, sizeof(why));
        if (t[i].host == NULL) {
            cr_assert_eq(rc, -EINVAL, "'%s' accepted", t[i].s);
            cr_assert_str_eq(why, t[i].why, "'%s'", t[i].s);
            continue;
        }
        cr_assert_eq(rc, 0, "'%s': %s", t[i].s, why);
        cr_assert_str_eq(a.host, t[i].host);
        cr_assert_eq(a.port, t[i].port, "'%s'", t[i].s);
        cr_assert_eq(a.family, t[i].family, "'%s'", t[i].s);
        char buf[300];
        config_format_addr(&a, buf, sizeof(buf));
        struct config_addr b;
        cr_assert_eq(config_parse_addr(buf, 1, &b, NULL, 0), 0, "'%s' does not parse back", buf);
        cr_assert(strcmp(a.host, b.host) == 0 && a.port == b.port && a.family == b.family);
        free(a.host);
        free(b.host);
    }
}

/* ---- layers ------------------------------------------------------------------------------------
 */

static void
assert_listen(const struct lcpfs_config *c, const char *const *want, size_t n)
{
    cr_assert_eq(c->nbd.nlisten, n, "%zu listeners, want %zu", c->nbd.nlisten, n);
    for (size_t i = 0; i < n; i++) {
        char buf[300];
        config_format_addr(&c->nbd.listen[i], buf, sizeof(buf));
        cr_assert_str_eq(buf, want[i], "listen[%zu]", i);
    }
}

Test(config, file_keeps_defaults_it_does_not_set_and_the_embedded_pool)
{
    struct lcpfs_config c;
    load_ok(&c, "[server]\ndata-dir = /srv/x\n[nbd]\ntls = off\n", NULL, 0);
    cr_assert_str_eq(c.server.data_dir, "/srv/x");
    cr_assert_str_eq(c.server.admin_socket, "/srv/x/lcpfsd.sock");
    cr_assert_str_eq(c.nbd.unix_socket, "/srv/x/nbd.sock");
    assert_listen(&c, (const char *const[]){ "127.0.0.1:10809" }, 1);
    cr_assert_eq(c.npools, 1);
    cr_assert_str_eq(c.pools[0].vdevs[0], "/srv/x/tank.vdev");
    cr_assert_eq(c.nexports, 1);
    cr_assert_str_eq(c.nbd.default_export, "vol0");
    config_free(&c);
}

Test(config, a_pool_or_export_section_replaces_the_embedded_ones)
{
    struct lcpfs_config c;
    load_ok(&c, "[pool data]\nvdevs = /dev/sdb\n", NULL, 0);
    cr_assert_eq(c.npools, 1);
    cr_assert_str_eq(c.pools[0].name, "data");
    cr_assert_eq(c.nexports, 0);
    cr_assert_null(c.nbd.default_export, "the embedded default-export goes with its export");
    config_free(&c);

    /* A [pool tank] of the file replaces the embedded tank wholesale (no inherited keys). */
    load_ok(&c, "[pool tank]\nvdevs = /dev/sdb\n", NULL, 0);
    cr_assert_eq(c.npools, 1);
    cr_assert_eq(c.pools[0].create_size, 0);
    cr_assert_null(c.pools[0].default_volume);
    config_free(&c);

    /* default-export set by the file before the first section survives the drop. */
    load_ok(&c,
            "[nbd]\ndefault-export = e\n[pool tank]\nvdevs = /a\n[nbd-export e]\n"
            "volume = tank/e\n",
            NULL, 0);
    cr_assert_str_eq(c.nbd.default_export, "e");
    config_free(&c);

    /* Overrides never drop: they edit the embedded pool or add a section beside it. */
    const char *ovr[] = { "pool.tank.create-size=32G", "pool.more.vdevs=/dev/sdc" };
    load_ok(&c, NULL, ovr, 2);
    cr_assert_eq(c.npools, 2);
    cr_assert_eq(c.pools[0].create_size, 32 * GIB);
    cr_assert_str_eq(c.pools[1].name, "more");
    cr_assert_eq(c.nexports, 1);
    config_free(&c);
}

Test(config, lists_in_the_file_replace_then_append)
{
    struct lcpfs_config c;
    load_ok(&c, "[nbd]\nlisten = 10.0.0.1\nlisten = 10.0.0.2\n", NULL, 0);
    assert_listen(&c, (const char *const[]){ "10.0.0.1:10809", "10.0.0.2:10809" }, 2);
    config_free(&c);

    load_ok(&c, "[nbd]\nlisten += 10.0.0.1\n", NULL, 0);
    assert_listen(&c, (const char *const[]){ "127.0.0.1:10809", "10.0.0.1:10809" }, 2);
    config_free(&c);

    load_ok(&c, "[nbd]\nlisten = 10.0.0.1\nlisten =\n", NULL, 0);
    assert_listen(&c, NULL, 0);
    config_free(&c);

    load_ok(&c, "[nbd]\nlisten =\nunix =\n[server]\nadmin-socket =\n", NULL, 0);
    cr_assert_eq(c.nbd.nlisten, 0);
    cr_assert_null(c.nbd.unix_socket);
    cr_assert_null(c.server.admin_socket);
    config_free(&c);
}

Test(config, overrides_win_over_the_file_and_can_add_list_values)
{
    static const char file[] = "[server]\nlog-level = warn\nlog = syslog\n"
                               "[nbd]\nlisten = 10.0.0.1 10.0.0.2\n";
    struct lcpfs_config c;
    const char *o1[] = { "server.log-level=debug", "server.log-level=err", "nbd.listen+=[::1]" };
    load_ok(&c, file, o1, 3);
    cr_assert_eq(c.server.log_level, LOG_LEVEL_ERR, "the last override wins");
    cr_assert_eq(c.server.log, CONFIG_LOG_SYSLOG, "file value kept when not overridden");
    assert_listen(&c, (const char *const[]){ "10.0.0.1:10809", "10.0.0.2:10809", "[::1]:10809" },
                  3);
    config_free(&c);

    const char *o2[] = { "nbd.listen=10.9.9.9:1", "nbd.listen=10.9.9.9:2", "nbd.listen+=h:3" };
    load_ok(&c, file, o2, 3);
    assert_listen(&c, (const char *const[]){ "10.9.9.9:1", "10.9.9.9:2", "h:3" }, 3);
    config_free(&c);

    const char *o3[] = { "nbd.listen=" };
    load_ok(&c, file, o3, 1);
    assert_listen(&c, NULL, 0);
    config_free(&c);

    /* Overrides edit file sections and create new ones; names may contain dots. */
    const char *o4[] = { "nbd-export.vol0.readonly=yes", "nbd-export.vol0.description = test disk ",
                         "pool.pool.2.vdevs=/p2", "nbd-export.e.x.volume=pool.2/v@s",
                         "server.data-dir=relative/dir" };
    load_ok(&c, file, o4, 5);
    cr_assert(c.exports[0].readonly);
    cr_assert_str_eq(c.exports[0].description, "test disk", "values are trimmed");
    cr_assert_str_eq(c.pools[1].name, "pool.2");
    cr_assert_str_eq(c.exports[1].name, "e.x");
    cr_assert_str_eq(c.exports[1].volume, "pool.2/v@s");
    char *dd = cwd_join("relative/dir");
    cr_assert_str_eq(c.server.data_dir, dd);
    free(dd);
    config_free(&c);
}

/* ---- errors ------------------------------------------------------------------------------------
 */

struct err_case {
    const char *name;
    const char *text;    /* NULL = no file */
    const char *ovr[4];  /* NULL-terminated */
    const char *want[6]; /* NULL-terminated; "F:" stands for the file's path and ':' */
};

static void
expect_errors(const struct err_case *t)
{
    size_t n = 0;
    while (n < 4 && t->ovr[n] != NULL)
        n++;
    if (t->text != NULL)
        write_bytes(conf, t->text, strlen(t->text));
    struct lcpfs_config c;
    struct config_errors e;
    int rc = config_load(&c, t->text ? conf : NULL, t->ovr, n, &e);
    cr_assert_eq(rc, -EINVAL, "%s: config_load returned %d", t->name, rc);
    size_t want = 0;
    for (; want < 6 && t->want[want] != NULL; want++) {
        char exp[1024];
        if (strncmp(t->want[want], "F:", 2) == 0)
            snprintf(exp, sizeof(exp), "%s:%s", conf, t->want[want] + 2);
        else
            snprintf(exp, sizeof(exp), "%s", t->want[want]);
        cr_assert_lt(want, e.n, "%s: missing message '%s'", t->name, exp);
        cr_assert_str_eq(e.msg[want], exp, "%s: message %zu", t->name, want);
    }
    cr_assert_eq(e.n, want, "%s: %zu messages, want %zu; extra: %s", t->name, e.n, want,
                 e.n > want ? e.msg[want] : "");
    cr_assert_eq(e.dropped, 0);
    cr_assert_null(c.server.data_dir, "%s: cfg not zeroed on failure", t->name);
    cr_assert_eq(c.npools, 0);
    config_errors_free(&e);
}

static const struct err_case syntax_cases[] = {
    { "missing ]", "[server\ndata-dir = /x\n", { 0 }, { "F:1: missing ']' in section header" } },
    { "text after ]", "[server] x\n", { 0 }, { "F:1: unexpected text after ']'" } },
    { "no =",
      "[server]\nlog stderr\n",
      { 0 },
      { "F:2: expected 'key = value', '[section]' or a comment" } },
    { "no key", "[server]\n = x\n", { 0 }, { "F:2: missing key before '='" } },
    { "no key :", "[server]\n: x\n", { 0 }, { "F:2: missing key before ':'" } },
    { "outside",
      "log = syslog\n",
      { 0 },
      { "F:1: key 'log' is outside any section (put a [section] above it)" } },
    { "empty header", "[ ]\n", { 0 }, { "F:1: empty section header" } },
    { "unknown section, close",
      "[nbd-exprt e]\nvolume = tank/x\n",
      { 0 },
      { "F:1: unknown section [nbd-exprt] (did you mean [nbd-export]?)" } },
    { "unknown section",
      "[volumes]\nx = 1\n",
      { 0 },
      { "F:1: unknown section [volumes] (sections: server, nbd, pool NAME, nbd-export NAME)" } },
    { "named server", "[server main]\n", { 0 }, { "F:1: section 'server' takes no name" } },
    { "unnamed pool",
      "[pool]\nvdevs = /a\n",
      { 0 },
      { "F:1: section 'pool' needs a name: [pool NAME]" } },
    { "bad pool name",
      "[pool t@nk]\nvdevs = /a\n",
      { 0 },
      { "F:1: invalid pool name 't@nk' (1 to 63 characters of A-Z a-z 0-9 _ . : -)" } },
    { "long pool name",
      "[pool p234567890123456789012345678901234567890123456789012345678901234]\n",
      { 0 },
      { "F:1: invalid pool name 'p234567890123456789012345678901234567890123456789012345678901234'"
        " (1 to 63 characters of A-Z a-z 0-9 _ . : -)" } },
    { "bad export name",
      "[nbd-export a=b]\n",
      { 0 },
      { "F:1: invalid export name 'a=b' (1 to 170 printable characters other than space [ ] = "
        ";)" } },
    { "duplicate section",
      "[nbd]\n[server]\n[nbd]\n",
      { 0 },
      { "F:3: duplicate section [nbd] (first at line 1)" } },
    { "duplicate pool",
      "[pool p]\nvdevs = /a\n[pool p]\nvdevs = /b\n",
      { 0 },
      { "F:3: duplicate section [pool p] (first at line 1)" } },
    { "duplicate key",
      "[server]\nlog = stderr\n\n; c\nlog = syslog\n",
      { 0 },
      { "F:5: duplicate key 'log' (first set at line 2)" } },
    { "unknown key, close",
      "[nbd]\ntls-crt = /c\n",
      { 0 },
      { "F:2: unknown key 'tls-crt' in [nbd] (did you mean 'tls-cert'?)" } },
    { "unknown key, case",
      "[server]\nData-Dir = /c\n",
      { 0 },
      { "F:2: unknown key 'Data-Dir' in [server] (did you mean 'data-dir'?)" } },
    { "key of [nbd]",
      "[server]\nlisten = 1.2.3.4\n",
      { 0 },
      { "F:2: unknown key 'listen' in [server] ('listen' belongs in [nbd])" } },
    { "key of [pool]",
      "[nbd]\nvdevs = /a\n",
      { 0 },
      { "F:2: unknown key 'vdevs' in [nbd] ('vdevs' belongs in [pool NAME])" } },
    { "unknown key",
      "[pool tank]\nvdevs = /a\nraid = 5\n",
      { 0 },
      { "F:3: unknown key 'raid' in [pool tank]" } },
    { "+= scalar",
      "[server]\nlog += syslog\n",
      { 0 },
      { "F:2: 'log' takes a single value: use '=', not '+='" } },
    { "continued scalar",
      "[server]\nlog = stderr\n  syslog\n",
      { 0 },
      { "F:3: 'log' takes a single value; only lists (listen, vdevs) continue on indented "
        "lines" } },
};

static const struct err_case value_cases[] = {
    { "bool",
      "[nbd]\ntls-verify-peer = maybe\n",
      { 0 },
      { "F:2: invalid boolean 'maybe' for 'tls-verify-peer' (use yes/no, on/off, true/false or "
        "1/0)" } },
    { "size",
      "[pool p]\nvdevs = /a\ncreate-size = 1.5G\n",
      { 0 },
      { "F:3: invalid size '1.5G' for 'create-size' (an integer with an optional K, M, G or T "
        "suffix)" } },
    { "size overflow",
      "[pool p]\nvdevs = /a\ncreate-size = 16777216T\n",
      { 0 },
      { "F:3: size '16777216T' for 'create-size' does not fit in 64 bits" } },
    { "tls",
      "[nbd]\ntls = maybe\n",
      { 0 },
      { "F:2: invalid value 'maybe' for 'tls' (use off, on or require)" } },
    { "export tls",
      "[pool tank]\nvdevs = /a\n[nbd-export e]\nvolume = tank/v\ntls = yes\n",
      { 0 },
      { "F:5: invalid value 'yes' for 'tls' (use off, on or require), or leave empty" } },
    { "direct-io",
      "[pool p]\nvdevs = /a\ndirect-io = always\n",
      { 0 },
      { "F:3: invalid value 'always' for 'direct-io' (use writes, off or on)" } },
    { "log",
      "[server]\nlog = journal\n",
      { 0 },
      { "F:2: invalid value 'journal' for 'log' (use stderr or syslog)" } },
    { "log-level",
      "[server]\nlog-level = verbose\n",
      { 0 },
      { "F:2: invalid value 'verbose' for 'log-level' (use err, warn, info or debug)" } },
    { "listen port",
      "[nbd]\nlisten = 1.2.3.4:0\n",
      { 0 },
      { "F:2: invalid address '1.2.3.4:0' for 'listen': invalid port '0' (1 to 65535)" } },
    { "listen, two bad words",
      "[nbd]\nlisten = ::1 10.0.0.1 300.1.1.1\n",
      { 0 },
      { "F:2: invalid address '::1' for 'listen': an IPv6 address needs brackets: "
        "[ADDRESS]:PORT",
        "F:2: invalid address '300.1.1.1' for 'listen': invalid IPv4 address '300.1.1.1'" } },
    { "listen continuation",
      "[nbd]\nlisten = 10.0.0.1\n  host:\n",
      { 0 },
      { "F:3: invalid address 'host:' for 'listen': missing port after ':'" } },
    { "default-export",
      "[nbd]\ndefault-export = a b\n",
      { 0 },
      { "F:2: invalid export name 'a b' (1 to 170 printable characters other than space [ ] = "
        ";)" } },
    { "default-volume",
      "[pool p]\nvdevs = /a\ndefault-volume = /v\ndefault-volume-size = 1G\n",
      { 0 },
      { "F:3: invalid volume name '/v' (components of A-Z a-z 0-9 _ . : - separated by '/')" } },
    { "volume without pool",
      "[pool tank]\nvdevs = /a\n[nbd-export e]\nvolume = vol0\n",
      { 0 },
      { "F:4: invalid volume 'vol0': must be POOL/NAME (for example tank/vol0)" } },
    { "volume bad pool",
      "[pool tank]\nvdevs = /a\n[nbd-export e]\nvolume = t!nk/v\n",
      { 0 },
      { "F:4: invalid volume 't!nk/v': invalid pool name 't!nk'" } },
    { "volume bad name",
      "[pool tank]\nvdevs = /a\n[nbd-export e]\nvolume = tank/a//b\n",
      { 0 },
      { "F:4: invalid volume 'tank/a//b': invalid name (components of A-Z a-z 0-9 _ . : - "
        "separated by '/')" } },
    { "volume bad snapshot",
      "[pool tank]\nvdevs = /a\n[nbd-export e]\nvolume = tank/v@\n",
      { 0 },
      { "F:4: invalid volume 'tank/v@': invalid snapshot name ''" } },
    { "description starting with ;",
      "[pool tank]\nvdevs = /a\n[nbd-export e]\nvolume = tank/v\ndescription =;x\n",
      { 0 },
      { "F:5: value of 'description' cannot start with ';'" } },
    { "empty data-dir", "[server]\ndata-dir =\n", { 0 }, { "F:2: 'data-dir' must not be empty" } },
    { "empty volume",
      "[pool tank]\nvdevs = /a\n[nbd-export e]\nvolume =\n",
      { 0 },
      { "F:4: 'volume' must not be empty" } },
};

static const struct err_case rule_cases[] = {
    { "tls without credentials",
      "[nbd]\ntls = require\n",
      { 0 },
      { "F:2: tls = require needs tls-cert and tls-key, or tls-psk-file" } },
    { "cert without key", "[nbd]\ntls-cert = c.pem\n", { 0 }, { "F:2: tls-cert needs tls-key" } },
    { "key without cert", "[nbd]\ntls-key = k.pem\n", { 0 }, { "F:2: tls-key needs tls-cert" } },
    { "verify without ca",
      "[nbd]\ntls = on\ntls-cert = c\ntls-key = k\ntls-verify-peer = yes\n",
      { 0 },
      { "F:5: tls-verify-peer needs tls-ca (the CA that signs client certificates)" } },
    { "verify without cert",
      "[nbd]\ntls = on\ntls-psk-file = p\ntls-ca = ca\ntls-verify-peer = 1\n",
      { 0 },
      { "F:5: tls-verify-peer needs tls-cert and tls-key (client certificates are X.509)" } },
    { "unknown default-export",
      "[nbd]\ndefault-export = nope\n",
      { 0 },
      { "F:2: default-export 'nope' has no [nbd-export nope]" } },
    { "export of unknown pool",
      "[pool tank]\nvdevs = /a\n[nbd-export e]\nvolume = other/v\n",
      { 0 },
      { "F:4: volume 'other/v' is in pool 'other', which has no [pool other] section" } },
    { "export without volume",
      "[pool tank]\nvdevs = /a\n[nbd-export e]\nreadonly = yes\n",
      { 0 },
      { "F:3: [nbd-export e] has no volume" } },
    { "writable snapshot",
      "[pool tank]\nvdevs = /a\n[nbd-export e]\nvolume = tank/v@s\nreadonly = no\n",
      { 0 },
      { "F:5: export of snapshot 'tank/v@s' cannot be writable (readonly = yes)" } },
    { "export tls without [nbd] tls",
      "[pool tank]\nvdevs = /a\n[nbd-export e]\nvolume = tank/v\ntls = require\n",
      { 0 },
      { "F:5: tls = require needs [nbd] tls = on or require" } },
    { "export tls weaker",
      "[nbd]\ntls = require\ntls-psk-file = k\n[pool tank]\nvdevs = /a\n[nbd-export e]\n"
      "volume = tank/v\ntls = on\n",
      { 0 },
      { "F:8: tls = on is weaker than [nbd] tls = require" } },
    { "pool without vdevs",
      "[pool p]\ncreate-size = 1G\n",
      { 0 },
      { "F:1: pool 'p' has no vdevs" } },
    { "pool with emptied vdevs",
      "[pool p]\nvdevs = /a\nvdevs =\n",
      { 0 },
      { "F:3: pool 'p' has no vdevs" } },
    { "vdev twice in a pool",
      "[pool p]\nvdevs = /a /b\n  ./c\n  /a\n",
      { 0 },
      { "F:4: vdev '/a' is listed twice" } },
    { "vdev twice, relative",
      "[server]\ndata-dir = /d\n[pool p]\nvdevs = x ./x /d//x\n",
      { 0 },
      { "F:4: vdev '/d/x' is listed twice", "F:4: vdev '/d/x' is listed twice" } },
    { "vdev path with a space",
      "[server]\ndata-dir = /my data\n[pool p]\nvdevs = a\n",
      { 0 },
      { "F:4: vdev path '/my data/a' contains a space or a comma, which separate list words" } },
    { "vdev in two pools",
      "[pool p]\nvdevs = /a\n[pool q]\nvdevs = x\nvdevs = /a\n",
      { 0 },
      { "F:5: vdev '/a' is also in pool 'p'" } },
    { "create-size too small",
      "[pool p]\nvdevs = /a\ncreate-size = 1M\n",
      { 0 },
      { "F:3: create-size 1M is below the 64M a vdev needs (0 = never create)" } },
    { "default-volume without size",
      "[pool p]\nvdevs = /a\ndefault-volume = v\n",
      { 0 },
      { "F:3: default-volume 'v' needs default-volume-size" } },
    { "size without default-volume",
      "[pool p]\nvdevs = /a\ndefault-volume-size = 1G\n",
      { 0 },
      { "F:3: default-volume-size has no effect without default-volume" } },
    { "volume size not a multiple",
      "[pool p]\nvdevs = /a\ndefault-volume = v\ndefault-volume-size = 1000\n",
      { 0 },
      { "F:4: default-volume-size 1000 is not a multiple of the 16K volume block size" } },
    { "listen twice",
      "[nbd]\nlisten = 127.0.0.1 ::1x\nlisten = 10.0.0.1\n  127.0.0.1:10809 10.0.0.1\n",
      { 0 },
      { "F:2: invalid address '::1x' for 'listen': an IPv6 address needs brackets: "
        "[ADDRESS]:PORT",
        "F:4: address '10.0.0.1:10809' is listed twice" } },
    { "unix is the admin socket",
      "[server]\ndata-dir = /srv/lcpfs\nadmin-socket = s.sock\n[nbd]\nunix = ./s.sock\n",
      { 0 },
      { "F:5: unix socket '/srv/lcpfs/s.sock' is also the admin-socket" } },
};

static const struct err_case override_cases[] = {
    { "no =", NULL, { "foo" }, { "-o foo: expected section.key=value" } },
    { "no dot", NULL, { "log=syslog" }, { "-o log=syslog: expected section.key=value" } },
    { "unknown section",
      NULL,
      { "srv.x=1" },
      { "-o srv.x=1: unknown section 'srv' (sections: server, nbd, pool.NAME, "
        "nbd-export.NAME)" } },
    { "unknown section, close",
      NULL,
      { "nbd-exports.e.volume=tank/x" },
      { "-o nbd-exports.e.volume=tank/x: unknown section 'nbd-exports' (did you mean "
        "'nbd-export'?)" } },
    { "named server",
      NULL,
      { "server.main.log=syslog" },
      { "-o server.main.log=syslog: section 'server' takes no name" } },
    { "unnamed pool",
      NULL,
      { "pool.vdevs=/x" },
      { "-o pool.vdevs=/x: section 'pool' needs a name: pool.NAME.KEY=VALUE" } },
    { "unknown key",
      NULL,
      { "nbd.tls-crt=/c" },
      { "-o nbd.tls-crt=/c: unknown key 'tls-crt' in [nbd] (did you mean 'tls-cert'?)" } },
    { "bad value",
      NULL,
      { "server.log=journal" },
      { "-o server.log=journal: invalid value 'journal' for 'log' (use stderr or syslog)" } },
    { "comment in value",
      NULL,
      { "nbd-export.vol0.description=a ;b" },
      { "-o nbd-export.vol0.description=a ;b: value starts with ';' or contains ' ;', which "
        "starts a comment in a file" } },
    { "control character",
      NULL,
      { "nbd-export.vol0.description=a\rb" },
      { "-o nbd-export.vol0.description=a\rb: value contains a control character" } },
    { "+= scalar",
      NULL,
      { "server.log+=syslog" },
      { "-o server.log+=syslog: 'log' takes a single value: use '=', not '+='" } },
    { "export of unknown pool",
      NULL,
      { "nbd-export.x.volume=nope/v" },
      { "-o nbd-export.x.volume=nope/v: volume 'nope/v' is in pool 'nope', which has no "
        "[pool nope] section" } },
    { "pool without vdevs",
      NULL,
      { "pool.p.create-size=1G" },
      { "-o pool.p.create-size=1G: pool 'p' has no vdevs" } },
    { "override over file",
      "[nbd]\ntls = on\ntls-psk-file = k\n",
      { "nbd.tls-psk-file=", "nbd.tls-cert=c" },
      { "-o nbd.tls-cert=c: tls-cert needs tls-key" } },
    { "several at once",
      "[server]\nlog = x\n[nbd]\nlisten = h:0\n[pool tank]\nvdevs = /a\n[nbd-export e]\n"
      "volume = zz/v\n",
      { "server.bogus=1", "nbd.tls=require" },
      { "F:2: invalid value 'x' for 'log' (use stderr or syslog)",
        "F:4: invalid address 'h:0' for 'listen': invalid port '0' (1 to 65535)",
        "-o server.bogus=1: unknown key 'bogus' in [server]",
        "-o nbd.tls=require: tls = require needs tls-cert and tls-key, or tls-psk-file",
        "F:8: volume 'zz/v' is in pool 'zz', which has no [pool zz] section" } },
};

static void
run_cases(const struct err_case *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        expect_errors(&t[i]);
}

Test(config, every_error_has_its_exact_message_and_place)
{
    run_cases(syntax_cases, sizeof(syntax_cases) / sizeof(syntax_cases[0]));
    run_cases(value_cases, sizeof(value_cases) / sizeof(value_cases[0]));
    run_cases(rule_cases, sizeof(rule_cases) / sizeof(rule_cases[0]));
    run_cases(override_cases, sizeof(override_cases) / sizeof(override_cases[0]));
}

Test(config, long_lines_nul_bytes_and_long_paths_are_reported)
{
    char text[1024];
    char longc[260];
    memset(longc, 'x', 250);
    longc[250] = '\0';
    int n = snprintf(text, sizeof(text), "[server]\n#%s\nlog = syslog\n", longc);
    struct config_errors e;
    struct lcpfs_config c;
    write_bytes(conf, text, (size_t)n);
    cr_assert_eq(config_load(&c, conf, NULL, 0, &e), -EINVAL);
    cr_assert_eq(e.n, 1);
    char want[512];
    snprintf(want, sizeof(want), "%s:2: line too long (251 characters, at most 198)", conf);
    cr_assert_str_eq(e.msg[0], want);
    config_errors_free(&e);

    write_bytes(conf, "[server]\nlog = sys\0log\n[nbd]\nunix =\n", 35);
    cr_assert_eq(config_load(&c, conf, NULL, 0, &e), -EINVAL);
    cr_assert_eq(e.n, 1);
    snprintf(want, sizeof(want), "%s:2: line contains a control character (0x00)", conf);
    cr_assert_str_eq(e.msg[0], want);
    config_errors_free(&e);

    write_bytes(conf, "[server]\r\nlog = sys\rlog\r\n", 25);
    cr_assert_eq(config_load(&c, conf, NULL, 0, &e), -EINVAL);
    cr_assert_eq(e.n, 1);
    snprintf(want, sizeof(want), "%s:2: line contains a control character (0x0d)", conf);
    cr_assert_str_eq(e.msg[0], want);
    config_errors_free(&e);

    /* A long data-dir makes the default socket paths too long: blamed on the defaults. */
    char dd[128], ovr[160];
    memset(dd, 'd', 100);
    dd[0] = '/';
    dd[100] = '\0';
    snprintf(ovr, sizeof(ovr), "server.data-dir=%s", dd);
    const char *o[] = { ovr };
    cr_assert_eq(config_load(&c, NULL, o, 1, &e), -EINVAL);
    cr_assert_eq(e.n, 2);
    snprintf(want, sizeof(want),
             "built-in default server.admin-socket: socket path '%s/lcpfsd.sock' is too long "
             "(112 bytes, at most 107)",
             dd);
    cr_assert_str_eq(e.msg[0], want);
    snprintf(want, sizeof(want),
             "built-in default nbd.unix: socket path '%s/nbd.sock' is too long (109 bytes, at "
             "most 107)",
             dd);
    cr_assert_str_eq(e.msg[1], want);
    config_errors_free(&e);
}

Test(config, more_than_63_vdevs_is_refused)
{
    char text[2048] = "[pool p]\nvdevs =";
    for (int i = 0; i < 64; i++) {
        char w[16];
        snprintf(w, sizeof(w), "%s/v%d", i % 8 == 7 ? "\n " : "", i);
        strcat(text, w);
        strcat(text, " ");
    }
    strcat(text, "\n");
    const struct err_case t = {
        "64 vdevs", text, { 0 }, { "F:10: pool 'p' has 64 vdevs (at most 63)" }
    };
    expect_errors(&t);
}

Test(config, all_errors_are_collected_up_to_the_cap)
{
    char text[4096] = "[server]\n";
    for (int i = 0; i < 40; i++) {
        char l[32];
        snprintf(l, sizeof(l), "bogus%d = 1\n", i);
        strcat(text, l);
    }
    write_bytes(conf, text, strlen(text));
    struct lcpfs_config c;
    struct config_errors e;
    cr_assert_eq(config_load(&c, conf, NULL, 0, &e), -EINVAL);
    cr_assert_eq(e.n, CONFIG_MAX_ERRORS);
    cr_assert_eq(e.dropped, 40 - CONFIG_MAX_ERRORS);
    char want[256];
    snprintf(want, sizeof(want), "%s:33: unknown key 'bogus31' in [server]", conf);
    cr_assert_str_eq(e.msg[31], want);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_errors_print(&e, f);
    fclose(f);
    cr_assert(strstr(buf, "\n8 more errors not shown\n") != NULL, "%s", buf);
    free(buf);
    config_errors_free(&e);

    /* Without an error list the outcome is the same. */
    cr_assert_eq(config_load(&c, conf, NULL, 0, NULL), -EINVAL);
}

Test(config, unreadable_file_is_one_error)
{
    struct lcpfs_config c;
    struct config_errors e;
    char path[160], want[256];
    snprintf(path, sizeof(path), "%s/missing.conf", dir);
    cr_assert_eq(config_load(&c, path, NULL, 0, &e), -ENOENT);
    cr_assert_eq(e.n, 1);
    snprintf(want, sizeof(want), "%s: cannot read: No such file or directory", path);
    cr_assert_str_eq(e.msg[0], want);
    config_errors_free(&e);
    cr_assert_eq(config_load(&c, dir, NULL, 0, &e), -EISDIR);
    snprintf(want, sizeof(want), "%s: cannot read: Is a directory", dir);
    cr_assert_str_eq(e.msg[0], want);
    config_errors_free(&e);
    /* Over 1 MiB, even of comments. */
    size_t big = (1u << 20) + 1;
    char *text = malloc(big);
    cr_assert_not_null(text);
    memset(text, '\n', big);
    text[0] = '#';
    write_bytes(conf, text, big);
    free(text);
    cr_assert_eq(config_load(&c, conf, NULL, 0, &e), -EFBIG);
    snprintf(want, sizeof(want), "%s: cannot read: larger than 1048576 bytes", conf);
    cr_assert_str_eq(e.msg[0], want);
    config_errors_free(&e);
}

/* ---- dump ------------------------------------------------------------------------------------ */

/* Dumps c, loads the dump, and checks equality and that a second dump is identical. */
static void
assert_dump_round_trips(const struct lcpfs_config *c)
{
    char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    FILE *f = open_memstream(&a, &alen);
    cr_assert_eq(config_dump(c, f), 0);
    fclose(f);
    write_bytes(dump, a, alen);
    struct lcpfs_config back;
    struct config_errors e;
    int rc = config_load(&back, dump, NULL, 0, &e);
    cr_assert_eq(rc, 0, "dump does not load (%s):\n%s", e.n ? e.msg[0] : "", a);
    config_errors_free(&e);
    cr_assert(config_equal(c, &back), "dump loads to a different config:\n%s", a);
    f = open_memstream(&b, &blen);
    cr_assert_eq(config_dump(&back, f), 0);
    fclose(f);
    cr_assert_str_eq(a, b);
    /* Every line fits the parser. */
    for (char *line = a; *line;) {
        size_t n = strcspn(line, "\n");
        cr_assert_leq(n, CONFIG_LINE_MAX, "dump line too long: %.*s", (int)n, line);
        line += n + (line[n] == '\n');
    }
    config_free(&back);
    free(a);
    free(b);
}

Test(config, dump_loads_back_to_an_equal_config)
{
    struct lcpfs_config c;
    cr_assert_eq(config_defaults(&c), 0);
    assert_dump_round_trips(&c);
    config_free(&c);

    load_ok(&c, every_key, NULL, 0);
    assert_dump_round_trips(&c);
    config_free(&c);

    /* Long lists wrap onto continuation lines; empty lists and unset keys survive. */
    char text[4096] = "[server]\ndata-dir = /var/lib/lcpfs-with-a-rather-long-directory-name\n"
                      "admin-socket =\n[nbd]\nlisten =\nunix =\n[pool p]\nvdevs =";
    for (int i = 0; i < 40; i++) {
        char w[32];
        snprintf(w, sizeof(w), "%sdisk-number-%02d.img", i % 5 == 4 ? "\n  " : " ", i);
        strcat(text, w);
    }
    strcat(text, "\n[nbd-export x]\nvolume = p/x\ntls = off\n");
    load_ok(&c, text, NULL, 0);
    cr_assert_eq(c.pools[0].nvdevs, 40);
    assert_dump_round_trips(&c);
    config_free(&c);

    const char *ovr[] = { "nbd.listen+=[::1]:1,[fe80::2%lo]", "pool.tank.vdevs=mirror a b",
                          "nbd-export.s.volume=tank/vol0@s1", "nbd-export.s.description=x y \t z" };
    load_ok(&c, NULL, ovr, 4);
    assert_dump_round_trips(&c);
    config_free(&c);
}

Test(config, equal_notices_every_difference)
{
    struct lcpfs_config a, b;
    cr_assert_eq(config_defaults(&a), 0);
    static const char *const ovr[] = {
        "server.data-dir=/elsewhere",
        "server.admin-socket=",
        "server.log=syslog",
        "server.log-level=debug",
        "nbd.listen+=10.0.0.1",
        "nbd.listen=127.0.0.1:10808",
        "nbd.unix=x.sock",
        "nbd.tls-psk-file=k",
        "nbd.default-export=",
        "pool.tank.vdevs+=b",
        "pool.tank.create-size=0",
        "pool.tank.default-volume=v1",
        "pool.tank.default-volume-size=8G",
        "nbd-export.vol0.volume=tank/v2",
        "nbd-export.vol0.readonly=yes",
        "nbd-export.vol0.description=d",
        "pool.other.vdevs=/o",
        "nbd-export.e2.volume=tank/x",
    };
    for (size_t i = 0; i < sizeof(ovr) / sizeof(ovr[0]); i++) {
        struct config_errors e;
        int rc = config_load(&b, NULL, &ovr[i], 1, &e);
        cr_assert_eq(rc, 0, "%s: %s", ovr[i], e.n ? e.msg[0] : "");
        config_errors_free(&e);
        cr_assert(!config_equal(&a, &b), "'%s' made no difference", ovr[i]);
        config_free(&b);
    }
    const char *tls[] = { "nbd.tls=on", "nbd.tls-psk-file=k", "nbd-export.vol0.tls=on" };
    load_ok(&b, NULL, tls, 2);
    struct lcpfs_config t;
    load_ok(&t, NULL, tls, 3);
    cr_assert(!config_equal(&b, &t), "export tls set vs unset");
    config_free(&b);
    config_free(&t);
    config_free(&a);
}

Test(config, direct_io_values_parse_as_the_file_does)
{
    enum config_direct_io d = CONFIG_DIRECT_IO_WRITES;
    cr_assert_eq(config_parse_direct_io("ON", &d), 0);
    cr_assert_eq(d, CONFIG_DIRECT_IO_ON);
    cr_assert_eq(config_parse_direct_io("off", &d), 0);
    cr_assert_eq(d, CONFIG_DIRECT_IO_OFF);
    cr_assert_eq(config_parse_direct_io("writes", &d), 0);
    cr_assert_eq(d, CONFIG_DIRECT_IO_WRITES);
    cr_assert_eq(config_parse_direct_io("always", &d), -EINVAL);
    cr_assert_eq(config_parse_direct_io(NULL, &d), -EINVAL);
    cr_assert_eq(d, CONFIG_DIRECT_IO_WRITES, "a refused value leaves the output alone");
}
