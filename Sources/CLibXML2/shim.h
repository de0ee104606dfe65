#ifndef CXLLAB_CLIBXML2_SHIM_H
#define CXLLAB_CLIBXML2_SHIM_H
#include <libxml/xmlversion.h>
/* Debian's libxml2 is built with ICU; its headers would then pull in the system's ICU
   headers, which clash with the copy Foundation carries. cxllab uses no ICU-specific
   libxml2 API (only the encoding handler struct's tail changes, which Swift never reads). */
#undef LIBXML_ICU_ENABLED
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <libxml/relaxng.h>
#include <libxml/xmlsave.h>
#endif
