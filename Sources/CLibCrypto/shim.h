#ifndef CXLLAB_CLIBCRYPTO_SHIM_H
#define CXLLAB_CLIBCRYPTO_SHIM_H
#include <openssl/evp.h>
#endif
