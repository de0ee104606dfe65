// SPDX-License-Identifier: GPL-2.0
/*
 * A stand-in fsdev_dax for kernels that lack the real driver (famfs' fs-dax driver for
 * character dax devices). It registers a dax driver named fsdev_dax and binds without
 * touching the device, so that cxllab's driver-order scenario can reproduce the bug found
 * in review of fsdev V9 on any kernel from 6.3 on:
 *
 *   automatch=1  register as a device-type driver (the V9 behaviour): it competes with
 *                device_dax for every devdax device, and whichever registered first wins.
 *   automatch=0  register with a type no device has (the agreed fix): it binds only when
 *                bound explicitly, as daxctl does (new_id, then bind).
 *
 * drivers/dax/bus.h is not part of the kernel's headers, so its layout is declared here.
 * It is the layout of kernels 6.3 and later (checked against 6.3, 6.12 and 7.x): the
 * driver-type enum replaced 6.2's `int match_always`, with which no stand-in can compete
 * for devdax devices the way V9 did.
 */
#include <linux/module.h>
#include <linux/device.h>
#include <linux/version.h>

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
#error "the fsdev_dax stand-in needs the dax driver-type enum of kernels 6.3 and later"
#endif

struct dev_dax;

enum dax_driver_type {
	DAXDRV_KMEM_TYPE,
	DAXDRV_DEVICE_TYPE,
};

/* No dax device has this type, so dax_match_type() never matches it. */
#define STANDIN_EXPLICIT_ONLY_TYPE ((enum dax_driver_type)0x7ffe)

struct dax_device_driver {
	struct device_driver drv;
	struct list_head ids;
	enum dax_driver_type type;
	int (*probe)(struct dev_dax *dev);
	void (*remove)(struct dev_dax *dev);
};

int __dax_driver_register(struct dax_device_driver *dax_drv,
			  struct module *module, const char *mod_name);
void dax_driver_unregister(struct dax_device_driver *dax_drv);

static bool automatch;
module_param(automatch, bool, 0444);
MODULE_PARM_DESC(automatch, "1: bind to devdax devices on its own (fsdev V9); 0: explicit binding only (the fix)");

static int fsdev_standin_probe(struct dev_dax *dev_dax)
{
	return 0;
}

static void fsdev_standin_remove(struct dev_dax *dev_dax)
{
}

static struct dax_device_driver fsdev_standin_driver = {
	.probe = fsdev_standin_probe,
	.remove = fsdev_standin_remove,
};

static int __init fsdev_standin_init(void)
{
	fsdev_standin_driver.type = automatch ? DAXDRV_DEVICE_TYPE : STANDIN_EXPLICIT_ONLY_TYPE;
	pr_info("fsdev_dax stand-in: automatch=%d\n", automatch);
	return __dax_driver_register(&fsdev_standin_driver, THIS_MODULE, KBUILD_MODNAME);
}

static void __exit fsdev_standin_exit(void)
{
	dax_driver_unregister(&fsdev_standin_driver);
}

module_init(fsdev_standin_init);
module_exit(fsdev_standin_exit);
MODULE_LICENSE("GPL");
/*
 * The alias Debian 7.3.4's real fsdev_dax carries, like device_dax and kmem: udev's
 * `modprobe $MODALIAS` for any dax device (dax:t0) then loads all three, in modules.alias
 * order, so the stand-in takes part in boot-time autoload as the real driver does.
 */
MODULE_ALIAS("dax:t0*");
MODULE_DESCRIPTION("cxllab stand-in for the fsdev_dax driver (driver-order testing only)");
