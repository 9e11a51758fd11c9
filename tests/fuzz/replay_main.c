/* SPDX-License-Identifier: MIT */
/*
 * Corpus replay for fuzz targets under ordinary builds (ctest): feeds every file of the given
 * files or directories to LLVMFuzzerTestOneInput, then a deterministic stream of random and
 * mutated inputs, so each decoder is exercised on every test run even without libFuzzer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <dirent.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf != NULL && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n > 0 ? (size_t)n : 0;
    return buf;
}

static unsigned corpus_files;
static uint8_t *seeds[256];
static size_t seed_len[256];

static void
run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char sub[4096];
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            run_path(sub);
        }
        if (d != NULL)
            closedir(d);
        return;
    }
    size_t len;
    uint8_t *buf = slurp(path, &len);
    if (buf == NULL)
        return;
    LLVMFuzzerTestOneInput(buf, len);
    if (corpus_files < 256) {
        seeds[corpus_files] = buf;
        seed_len[corpus_files] = len;
    } else {
        free(buf);
    }
    corpus_files++;
}

int
main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        run_path(argv[i]);
    uint64_t s = 0x243f6a8885a308d3ull;
    unsigned nseeds = corpus_files < 256 ? corpus_files : 256;
    uint8_t *buf = malloc(1 << 17);
    for (int iter = 0; iter < 3000 && buf != NULL; iter++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        size_t len;
        if (nseeds > 0 && iter % 2 == 0) { /* mutate a corpus file: a few byte flips */
            unsigned k = (unsigned)(s % nseeds);
            len = seed_len[k] < (1u << 17) ? seed_len[k] : (1u << 17);
            memcpy(buf, seeds[k], len);
            for (int f = 0; f < 4 && len > 0; f++) {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                buf[s % len] ^= (uint8_t)(s >> 32);
            }
        } else {
            len = (size_t)(s % 8192);
            for (size_t i = 0; i < len; i++) {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                buf[i] = (uint8_t)s;
            }
        }
        LLVMFuzzerTestOneInput(buf, len);
    }
    free(buf);
    for (unsigned i = 0; i < nseeds; i++)
        free(seeds[i]);
    printf("replayed %u corpus files and 3000 generated inputs\n", corpus_files);
    return 0;
}
