#ifndef CXLLAB_CLIBVIRT_SHIM_H
#define CXLLAB_CLIBVIRT_SHIM_H
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#endif
