#ifndef CXLLAB_SHA256_H
#define CXLLAB_SHA256_H
#include <stddef.h>
#include <stdint.h>

/// SHA-256 (FIPS 180-4), incremental. Plain C so that cxllab need not load libcrypto, whose
/// initialisation alone makes 3.3 MiB of it resident.
typedef struct {
    uint32_t state[8];
    uint64_t length;
    uint8_t block[64];
    size_t used;
} cxllab_sha256;

void cxllab_sha256_init(cxllab_sha256 *context);
void cxllab_sha256_update(cxllab_sha256 *context, const void *bytes, size_t count);
void cxllab_sha256_final(cxllab_sha256 *context, uint8_t digest[32]);

#endif
