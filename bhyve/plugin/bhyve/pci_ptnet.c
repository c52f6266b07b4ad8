/*-
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Copyright (c) 2026 The ptbhyve authors
 * All rights reserved.
 *
 * Redistribution and use in source and binary forms, with or without
 * modification, are permitted provided that the following conditions
 * are met:
 * 1. Redistributions of source code must retain the above copyright
 *    notice, this list of conditions and the following disclaimer.
 * 2. Redistributions in binary form must reproduce the above copyright
 *    notice, this list of conditions and the following disclaimer in the
 *    documentation and/or other materials provided with the distribution.
 *
 * THIS SOFTWARE IS PROVIDED BY THE AUTHOR AND CONTRIBUTORS ``AS IS'' AND
 * ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
 * IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE
 * ARE DISCLAIMED.  IN NO EVENT SHALL THE AUTHOR OR CONTRIBUTORS BE LIABLE
 * FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
 * DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS
 * OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION)
 * HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT
 * LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY
 * OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF
 * SUCH DAMAGE.
 */

/*
 * bhyve device models "ptnet" and "ptnetmap-memdev": the thin, in-bhyve half
 * of a netmap passthrough NIC.  Everything with meaning (registers, rings,
 * the port) lives in the ptbhyve daemon; this file traps the guest's
 * accesses and forwards them over the plugin protocol
 * (docs/plugin-protocol.md) with ptbhyve_plugin.[ch].
 *
 *   -s 5:0,ptnet,path=/var/run/ptbhyve/vm0.plugin[,vm=NAME]
 *   -s 5:1,ptnetmap-memdev,path=/var/run/ptbhyve/vm0.plugin[,vm=NAME]
 *
 * Why two device models and not one that creates both functions: bhyve
 * builds every PCI function from its own configuration node pci.B.S.F
 * (init_pci() calls pe_init once per node), and a model has no way to add a
 * sibling function -- the slot tables are private to pci_emul.c.  So each
 * function is its own model, and the two find each other by their path=:
 * the first one initialised connects to the daemon, the second reuses that
 * connection (one struct ptbp_dev per path, in ptnet_list).  The memdev may
 * sit on function 1 of the ptnet's slot (as netmap's QEMU devices did) or on
 * a slot of its own; the guest driver pairs them by memory id, not by slot.
 *
 * Register map, PCI ids and BAR numbers are those of netmap's
 * sys/net/netmap_virt.h; they are repeated here so that bhyve does not need
 * the netmap headers.
 *
 * Locking: ptbp_* is not thread-safe and every vCPU thread may trap into
 * these callbacks, so each shared device has one mutex, held around every
 * ptbp_* call (kicks included: a reconnect replaces the kick descriptors)
 * and around the MSI-X table and memory-map state.  pe_init runs before
 * any vCPU starts, so ptnet_list itself needs no lock.
 */

#include <sys/param.h>
#include <sys/mman.h>
#include <sys/queue.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Memory-segment ids (VM_SYSMEM, VM_PCIROM, ...): 14.x declares them in
 * vmmapi.h.  15.x moved them, with VM_MAXSYSMEM, to sys/dev/vmm/vmm_mem.h,
 * which vmmapi.h does not include (15.x bhyve's pci_fbuf.c includes it
 * itself).  The header is found through bhyve's -I${SRCTOP}/sys; on a tree
 * without it (14.x) the ids come from vmmapi.h.
 */
#ifdef __has_include
#if __has_include(<dev/vmm/vmm_mem.h>)
#include <dev/vmm/vmm_mem.h>
#endif
#endif
#include <vmmapi.h>

#include "config.h"
#include "debug.h"
#include "pci_emul.h"
#include "ptbhyve_plugin.h"

/* netmap_virt.h: identification and BARs. */
#define	PTNET_PCI_VENDOR	0x1b36	/* PTNETMAP_PCI_VENDOR_ID */
#define	PTNET_PCI_NETIF		0x000d	/* PTNETMAP_PCI_NETIF_ID */
#define	PTNET_PCI_MEMDEV	0x000c	/* PTNETMAP_PCI_DEVICE_ID */
#define	PTNET_IO_BAR		0	/* PTNETMAP_IO_PCI_BAR */
#define	PTNET_MEM_BAR		1	/* PTNETMAP_MEM_PCI_BAR */
#define	PTNET_MSIX_BAR		2	/* PTNETMAP_MSIX_PCI_BAR */
#define	PTNET_IO_SIZE		256	/* PTNET_IO_MASK + 1 */
#define	PTNET_MDEV_IO_SIZE	128	/* PTNET_MDEV_IO_END (100), rounded up */

/* The state both functions of one ptnet share, found by path. */
struct ptnet_shared {
	SLIST_ENTRY(ptnet_shared) link;
	pthread_mutex_t	mtx;
	struct ptbp_dev	dev;		/* the daemon connection */
	struct pci_devinst *net;	/* the ptnet function, once created */
	struct pci_devinst *mem;	/* the memdev function, once created */

	/* ptnet */
	int		msix_capoff;	/* config offset of the MSI-X cap */
	uint16_t	fnflags;	/* PTBP_MSIX_ENABLED|FNMASK last sent */

	/* ptnetmap-memdev */
	int		segid;		/* devmem segment holding the region */
	void		*membase;	/* bhyve's mapping of that segment */
	bool		mapped;		/* segment mapped at the BAR? */
	uint64_t	mapped_gpa;	/* where, while mapped */
};

static SLIST_HEAD(, ptnet_shared) ptnet_list =
    SLIST_HEAD_INITIALIZER(ptnet_list);

/*
 * The shared device for this function's path=, connecting to the daemon if
 * this is the first function to name it.  Errors are printed; NULL fails
 * pe_init, which makes bhyve exit.
 */
static struct ptnet_shared *
ptnet_shared_get(nvlist_t *nvl, const char *model)
{
	struct ptnet_shared *sh;
	char path[sizeof(sh->dev.path)], vm[sizeof(sh->dev.vm)];
	const char *val;
	int n;

	/* Copy at once: a config string lives only until the next lookup. */
	val = get_config_value_node(nvl, "path");
	if (val == NULL || *val == '\0') {
		EPRINTLN("%s: path= (the ptbhyve daemon's socket) is required",
		    model);
		return (NULL);
	}
	n = snprintf(path, sizeof(path), "%s", val);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		EPRINTLN("%s: path= is longer than %zu bytes", model,
		    sizeof(path) - 1);
		return (NULL);
	}

	/* vm= defaults to this VM's name, which is what the daemon knows. */
	val = get_config_value_node(nvl, "vm");
	if (val == NULL)
		val = get_config_value("name");
	if (val == NULL || *val == '\0') {
		EPRINTLN("%s: no vm= and no VM name in the configuration",
		    model);
		return (NULL);
	}
	n = snprintf(vm, sizeof(vm), "%s", val);
	if (n < 0 || (size_t)n >= sizeof(vm)) {
		EPRINTLN("%s: vm name is longer than %zu bytes", model,
		    sizeof(vm) - 1);
		return (NULL);
	}

	SLIST_FOREACH(sh, &ptnet_list, link) {
		if (strcmp(sh->dev.path, path) != 0)
			continue;
		if (strcmp(sh->dev.vm, vm) != 0) {
			EPRINTLN("%s: %s is already used with vm=%s", model,
			    path, sh->dev.vm);
			return (NULL);
		}
		return (sh);
	}

	sh = calloc(1, sizeof(*sh));
	if (sh == NULL) {
		EPRINTLN("%s: %s", model, strerror(errno));
		return (NULL);
	}
	sh->msix_capoff = -1;
	sh->segid = -1;
	if (ptbp_open(&sh->dev, path, vm) != 0) {
		EPRINTLN("%s: cannot attach to ptbhyve at %s: %s", model, path,
		    sh->dev.err);
		ptbp_close(&sh->dev);
		free(sh);
		return (NULL);
	}
	pthread_mutex_init(&sh->mtx, NULL);
	SLIST_INSERT_HEAD(&ptnet_list, sh, link);
	return (sh);
}

/*
 * A guest read of a 32-bit register, forwarded.  The protocol carries 4-byte
 * accesses only; a narrower read is served from the containing register.
 */
static uint64_t
ptnet_reg_read(struct ptnet_shared *sh, int fn, uint64_t off, int size)
{
	uint32_t val;
	unsigned int shift;

	if ((size != 1 && size != 2 && size != 4) ||
	    (off & 3) + (uint64_t)size > 4)
		return (~(uint64_t)0);
	pthread_mutex_lock(&sh->mtx);
	val = ptbp_read(&sh->dev, fn, (uint32_t)(off & ~(uint64_t)3));
	pthread_mutex_unlock(&sh->mtx);
	shift = (unsigned int)(off & 3) * 8;
	if (size == 4)
		return (val);
	return ((val >> shift) & ((1u << (size * 8)) - 1));
}

/*
 * A guest write of a 32-bit register, forwarded (a kick costs one eventfd
 * write inside ptbp_write).  Registers are only ever written whole, so
 * narrower or misaligned writes are dropped.
 */
static void
ptnet_reg_write(struct ptnet_shared *sh, int fn, uint64_t off, int size,
    uint64_t value)
{
	if (size != 4 || (off & 3) != 0)
		return;
	pthread_mutex_lock(&sh->mtx);
	ptbp_write(&sh->dev, fn, (uint32_t)off, (uint32_t)value);
	pthread_mutex_unlock(&sh->mtx);
}

/* ---- ptnet ---------------------------------------------------------- */

/* The function-wide MSI-X bits, as bhyve last applied them. */
static uint16_t
ptnet_fnflags(struct pci_devinst *pi)
{
	uint16_t fl;

	fl = 0;
	if (pi->pi_msix.enabled)
		fl |= PTBP_MSIX_ENABLED;
	if (pi->pi_msix.function_mask)
		fl |= PTBP_MSIX_FNMASK;
	return (fl);
}

/*
 * Tell the daemon about table entry `vec` and the function bits, unless it
 * already has exactly that (a 64-bit table write reaches us as two 32-bit
 * ones, and a capability write touches every vector).  Called locked.
 */
static void
ptnet_msix_send(struct ptnet_shared *sh, struct pci_devinst *pi, int vec)
{
	const struct msix_table_entry *mte;
	const struct ptbp_msix_entry *shadow;
	uint16_t flags;

	mte = &pi->pi_msix.table[vec];
	flags = ptnet_fnflags(pi);
	if (mte->vector_control & PCIM_MSIX_VCTRL_MASK)
		flags |= PTBP_MSIX_MASKED;
	shadow = &sh->dev.msix[vec];
	if (shadow->set && shadow->addr == mte->addr &&
	    shadow->data == mte->msg_data && shadow->flags == flags &&
	    ptbp_is_up(&sh->dev))
		return;
	ptbp_msix(&sh->dev, (uint16_t)vec, flags, mte->addr, mte->msg_data);
}

/* Offset of the capability `capid` in config space, or -1. */
static int
ptnet_find_cap(struct pci_devinst *pi, int capid)
{
	int off, hops;

	off = pci_get_cfgdata8(pi, PCIR_CAP_PTR);
	for (hops = 0; off != 0 && hops < 48; hops++) {
		if (pci_get_cfgdata8(pi, off) == capid)
			return (off);
		off = pci_get_cfgdata8(pi, off + 1);
	}
	return (-1);
}

static int
pci_ptnet_init(struct pci_devinst *pi, nvlist_t *nvl)
{
	struct ptnet_shared *sh;
	int nvec;

	sh = ptnet_shared_get(nvl, "ptnet");
	if (sh == NULL)
		return (1);
	if (sh->net != NULL) {
		EPRINTLN("ptnet: %s already has a ptnet function",
		    sh->dev.path);
		return (1);
	}

	/* Network controller, "other": not an Ethernet chip drivers know. */
	pci_set_cfgdata16(pi, PCIR_VENDOR, PTNET_PCI_VENDOR);
	pci_set_cfgdata16(pi, PCIR_DEVICE, PTNET_PCI_NETIF);
	pci_set_cfgdata16(pi, PCIR_SUBVEND_0, PTNET_PCI_VENDOR);
	pci_set_cfgdata16(pi, PCIR_SUBDEV_0, PTNET_PCI_NETIF);
	pci_set_cfgdata8(pi, PCIR_CLASS, PCIC_NETWORK);
	pci_set_cfgdata8(pi, PCIR_SUBCLASS, PCIS_NETWORK_OTHER);

	if (pci_emul_alloc_bar(pi, PTNET_IO_BAR, PCIBAR_IO,
	    PTNET_IO_SIZE) != 0) {
		EPRINTLN("ptnet: cannot allocate BAR%d", PTNET_IO_BAR);
		return (1);
	}

	/* One vector per ring, TX rings then RX rings, as ptnet(4) expects. */
	nvec = sh->dev.ntx + sh->dev.nrx;
	if (pci_emul_add_msixcap(pi, nvec, PTNET_MSIX_BAR) != 0) {
		EPRINTLN("ptnet: cannot add MSI-X with %d vectors", nvec);
		return (1);
	}
	sh->msix_capoff = ptnet_find_cap(pi, PCIY_MSIX);
	if (sh->msix_capoff < 0) {
		EPRINTLN("ptnet: MSI-X capability not found (%d vectors)",
		    nvec);
		return (1);
	}
	sh->fnflags = ptnet_fnflags(pi);

	sh->net = pi;
	pi->pi_arg = sh;
	return (0);
}

/*
 * Config writes stay bhyve's (return non-zero for the default handling)
 * except two we must observe:
 *
 * - MSI-X capability.  pci_emul calls pe_cfgwrite *before* it applies a
 *   write, and has no hook after it, so for a write inside our capability
 *   we apply it ourselves with pci_emul_capwrite() (public since 14.0),
 *   which updates pi_msix.enabled / function_mask exactly as the default
 *   path would, then forward the new function bits with every vector.
 *
 * - Command register, bus mastering turned off.  bhyve has no device-reset
 *   callback in 14.x/15.x (a guest reboot ends the bhyve process, which the
 *   daemon sees as a disconnect), and ptnet has no reset register; a
 *   driver that stops the device's DMA is the closest event, so it becomes
 *   RESET, which stops the rings.
 */
static int
pci_ptnet_cfgwrite(struct pci_devinst *pi, int offset, int bytes,
    uint32_t val)
{
	struct ptnet_shared *sh = pi->pi_arg;
	uint16_t fl;
	int capoff, vec;

	capoff = sh->msix_capoff;
	if (offset >= capoff && offset < capoff + (int)sizeof(struct msixcap)) {
		pthread_mutex_lock(&sh->mtx);
		pci_emul_capwrite(pi, offset, bytes, val, (uint8_t)capoff,
		    PCIY_MSIX);
		fl = ptnet_fnflags(pi);
		if (fl != sh->fnflags) {
			sh->fnflags = fl;
			for (vec = 0; vec < pi->pi_msix.table_count; vec++)
				ptnet_msix_send(sh, pi, vec);
		}
		pthread_mutex_unlock(&sh->mtx);
		return (0);
	}

	if (offset == PCIR_COMMAND &&
	    (pci_get_cfgdata16(pi, PCIR_COMMAND) & PCIM_CMD_BUSMASTEREN) != 0 &&
	    (val & PCIM_CMD_BUSMASTEREN) == 0) {
		pthread_mutex_lock(&sh->mtx);
		if (ptbp_reset(&sh->dev) != 0)
			EPRINTLN("ptnet: reset: %s", sh->dev.err);
		pthread_mutex_unlock(&sh->mtx);
	}
	return (1);
}

static void
pci_ptnet_barwrite(struct pci_devinst *pi, int baridx, uint64_t offset,
    int size, uint64_t value)
{
	struct ptnet_shared *sh = pi->pi_arg;
	int vec;

	if (baridx == pci_msix_table_bar(pi)) {
		/* bhyve keeps the table; the daemon needs each change. */
		pthread_mutex_lock(&sh->mtx);
		if (pci_emul_msix_twrite(pi, offset, size, value) == 0) {
			vec = (int)(offset / MSIX_TABLE_ENTRY_SIZE);
			if (vec < pi->pi_msix.table_count)
				ptnet_msix_send(sh, pi, vec);
		}
		pthread_mutex_unlock(&sh->mtx);
		return;
	}
	if (baridx == PTNET_IO_BAR)
		ptnet_reg_write(sh, PTBP_FN_PTNET, offset, size, value);
}

static uint64_t
pci_ptnet_barread(struct pci_devinst *pi, int baridx, uint64_t offset,
    int size)
{
	struct ptnet_shared *sh = pi->pi_arg;
	uint64_t val;

	if (baridx == pci_msix_table_bar(pi)) {
		pthread_mutex_lock(&sh->mtx);
		val = pci_emul_msix_tread(pi, offset, size);
		pthread_mutex_unlock(&sh->mtx);
		return (val);
	}
	if (baridx == PTNET_IO_BAR)
		return (ptnet_reg_read(sh, PTBP_FN_PTNET, offset, size));
	return (~(uint64_t)0);
}

static const struct pci_devemu pci_de_ptnet = {
	.pe_emu =	"ptnet",
	.pe_init =	pci_ptnet_init,
	.pe_cfgwrite =	pci_ptnet_cfgwrite,
	.pe_barwrite =	pci_ptnet_barwrite,
	.pe_barread =	pci_ptnet_barread,
};
PCI_EMUL_SET(pci_de_ptnet);

/* ---- ptnetmap-memdev ------------------------------------------------ */

/*
 * A free memory-segment id for the netmap region.  The kernel does not care
 * which id a devmem segment has, but bhyve's ids are few and spoken for by
 * convention, so take one that is unused now and unlikely to be wanted
 * later:
 *   15.x: the sysmem ids of guest NUMA domains 7..1 (a VM with fewer
 *         domains leaves them free; they are allocated before init_pci).
 *   14.x: only four ids exist; VM_PCIROM is used only for PCI option ROMs
 *         (passthru rom=), VM_FRAMEBUFFER by fbuf.  Taking one makes that
 *         device fail later, so segid= overrides the choice.
 */
static int
ptnet_pick_segid(struct vmctx *ctx, nvlist_t *nvl)
{
	char name[64];
	const char *val;
	size_t len;
	char *end;
	long id;

	val = get_config_value_node(nvl, "segid");
	if (val != NULL) {
		errno = 0;
		id = strtol(val, &end, 0);
		if (errno != 0 || end == val || *end != '\0' || id <= 0 ||
		    id > 1000) {
			EPRINTLN("ptnetmap-memdev: bad segid=%s", val);
			return (-1);
		}
		return ((int)id);
	}
#ifdef VM_MAXSYSMEM
	for (id = VM_MAXSYSMEM - 1; id > VM_SYSMEM; id--) {
#else
	for (id = VM_PCIROM; id >= VM_FRAMEBUFFER; id--) {
#endif
		if (vm_get_memseg(ctx, (int)id, &len, name, sizeof(name)) ==
		    0 && len == 0)
			return ((int)id);
	}
	EPRINTLN("ptnetmap-memdev: %s",
	    "no free memory segment id, set segid=");
	return (-1);
}

static int
pci_ptnetmap_memdev_init(struct pci_devinst *pi, nvlist_t *nvl)
{
	struct ptnet_shared *sh;

	sh = ptnet_shared_get(nvl, "ptnetmap-memdev");
	if (sh == NULL)
		return (1);
	if (sh->mem != NULL) {
		EPRINTLN("ptnetmap-memdev: %s already has a memdev function",
		    sh->dev.path);
		return (1);
	}

	/*
	 * The netmap region lives in a devmem segment that both bhyve (here)
	 * and the daemon (/dev/vmm.io/VM.segname) map; the guest sees it
	 * through BAR1 without exits.  Name and size come from WELCOME.
	 */
	sh->segid = ptnet_pick_segid(pi->pi_vmctx, nvl);
	if (sh->segid < 0)
		return (1);
	sh->membase = vm_create_devmem(pi->pi_vmctx, sh->segid,
	    sh->dev.segname, (size_t)sh->dev.memsize);
	if (sh->membase == MAP_FAILED) {
		EPRINTLN("ptnetmap-memdev: devmem segment %d \"%s\" of %ju "
		    "bytes: %s", sh->segid, sh->dev.segname,
		    (uintmax_t)sh->dev.memsize, strerror(errno));
		return (1);
	}

	pci_set_cfgdata16(pi, PCIR_VENDOR, PTNET_PCI_VENDOR);
	pci_set_cfgdata16(pi, PCIR_DEVICE, PTNET_PCI_MEMDEV);
	pci_set_cfgdata16(pi, PCIR_SUBVEND_0, PTNET_PCI_VENDOR);
	pci_set_cfgdata16(pi, PCIR_SUBDEV_0, PTNET_PCI_MEMDEV);
	pci_set_cfgdata8(pi, PCIR_CLASS, PCIC_MEMORY);
	pci_set_cfgdata8(pi, PCIR_SUBCLASS, PCIS_MEMORY_OTHER);

	if (pci_emul_alloc_bar(pi, PTNET_IO_BAR, PCIBAR_IO,
	    PTNET_MDEV_IO_SIZE) != 0 ||
	    pci_emul_alloc_bar(pi, PTNET_MEM_BAR, PCIBAR_MEM64,
	    sh->dev.memsize) != 0) {
		EPRINTLN("ptnetmap-memdev: cannot allocate BARs (%ju bytes)",
		    (uintmax_t)sh->dev.memsize);
		return (1);
	}

	sh->mem = pi;
	pi->pi_arg = sh;
	return (0);
}

/*
 * bhyve moved, enabled or disabled BAR1: put the segment where the guest
 * now decodes it (the pci_fbuf pattern).  A guest that sizes the BAR with
 * decoding on makes bhyve call this with a junk address; the map then
 * fails, which is reported and harmless, and the unmap below only undoes a
 * map that happened.
 */
static void
pci_ptnetmap_memdev_baraddr(struct pci_devinst *pi, int baridx, int enabled,
    uint64_t address)
{
	struct ptnet_shared *sh = pi->pi_arg;
	size_t len = (size_t)sh->dev.memsize;

	if (baridx != PTNET_MEM_BAR)
		return;
	pthread_mutex_lock(&sh->mtx);
	if (sh->mapped) {
		if (vm_munmap_memseg(pi->pi_vmctx, sh->mapped_gpa, len) != 0)
			EPRINTLN("ptnetmap-memdev: unmap at %#jx: %s",
			    (uintmax_t)sh->mapped_gpa, strerror(errno));
		sh->mapped = false;
	}
	if (enabled) {
		if (vm_mmap_memseg(pi->pi_vmctx, address, sh->segid, 0, len,
		    PROT_READ | PROT_WRITE) != 0) {
			EPRINTLN("ptnetmap-memdev: map at %#jx: %s",
			    (uintmax_t)address, strerror(errno));
		} else {
			sh->mapped = true;
			sh->mapped_gpa = address;
		}
	}
	pthread_mutex_unlock(&sh->mtx);
}

static void
pci_ptnetmap_memdev_barwrite(struct pci_devinst *pi, int baridx,
    uint64_t offset, int size, uint64_t value)
{
	struct ptnet_shared *sh = pi->pi_arg;

	/*
	 * BAR1 traps only while the segment is not mapped there (bhyve also
	 * registers an MMIO handler for it); serve it from bhyve's mapping.
	 */
	if (baridx == PTNET_MEM_BAR) {
		if (offset + (uint64_t)size <= sh->dev.memsize &&
		    size >= 1 && size <= 8)
			memcpy((char *)sh->membase + offset, &value,
			    (size_t)size);
		return;
	}
	if (baridx == PTNET_IO_BAR)
		ptnet_reg_write(sh, PTBP_FN_MEMDEV, offset, size, value);
}

static uint64_t
pci_ptnetmap_memdev_barread(struct pci_devinst *pi, int baridx,
    uint64_t offset, int size)
{
	struct ptnet_shared *sh = pi->pi_arg;
	uint64_t val;

	if (baridx == PTNET_MEM_BAR) {
		val = 0;
		if (offset + (uint64_t)size <= sh->dev.memsize &&
		    size >= 1 && size <= 8)
			memcpy(&val, (char *)sh->membase + offset,
			    (size_t)size);
		return (val);
	}
	if (baridx == PTNET_IO_BAR)
		return (ptnet_reg_read(sh, PTBP_FN_MEMDEV, offset, size));
	return (~(uint64_t)0);
}

static const struct pci_devemu pci_de_ptnetmap_memdev = {
	.pe_emu =	"ptnetmap-memdev",
	.pe_init =	pci_ptnetmap_memdev_init,
	.pe_barwrite =	pci_ptnetmap_memdev_barwrite,
	.pe_barread =	pci_ptnetmap_memdev_barread,
	.pe_baraddr =	pci_ptnetmap_memdev_baraddr,
};
PCI_EMUL_SET(pci_de_ptnetmap_memdev);
