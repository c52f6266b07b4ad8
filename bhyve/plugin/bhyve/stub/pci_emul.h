/*
 * Stub for the pci_ptnet.c syntax check: see README.
 * usr.sbin/bhyve/pci_emul.h as of 14.0 and later: the members and functions
 * pci_ptnet.c uses, with bhyve's types and argument order.  Struct layouts
 * are abridged (members pci_ptnet.c does not touch are left out).
 */
#ifndef STUB_PCI_EMUL_H
#define	STUB_PCI_EMUL_H
#include <sys/types.h>
#include <sys/nv.h>
#include <assert.h>
#include <stdint.h>
#include <dev/pci/pcireg.h>

#define	PCI_BARMAX		PCIR_MAX_BAR_0
#define	PCI_BARMAX_WITH_ROM	(PCI_BARMAX + 1)

struct vmctx;
struct pci_devinst;
struct vm_snapshot_meta;

struct pci_devemu {
	const char	*pe_emu;
	int	(*pe_init)(struct pci_devinst *, nvlist_t *);
	int	(*pe_legacy_config)(nvlist_t *, const char *);
	const char	*pe_alias;
	void	(*pe_write_dsdt)(struct pci_devinst *);
	int	(*pe_cfgwrite)(struct pci_devinst *pi, int offset,
		    int bytes, uint32_t val);
	int	(*pe_cfgread)(struct pci_devinst *pi, int offset,
		    int bytes, uint32_t *retval);
	void	(*pe_barwrite)(struct pci_devinst *pi, int baridx,
		    uint64_t offset, int size, uint64_t value);
	uint64_t (*pe_barread)(struct pci_devinst *pi, int baridx,
		    uint64_t offset, int size);
	void	(*pe_baraddr)(struct pci_devinst *pi, int baridx,
		    int enabled, uint64_t address);
	int	(*pe_snapshot)(struct vm_snapshot_meta *meta);
	int	(*pe_pause)(struct pci_devinst *pi);
	int	(*pe_resume)(struct pci_devinst *pi);
};

/* bhyve: DATA_SET(pci_devemu_set, x), a linker set entry pointing at x. */
#define	PCI_EMUL_SET(x)							\
	static const void *const __set_pci_devemu_set_sym_##x		\
	    __attribute__((__used__)) = &(x)

enum pcibar_type {
	PCIBAR_NONE,
	PCIBAR_IO,
	PCIBAR_MEM32,
	PCIBAR_MEM64,
	PCIBAR_MEMHI64,
	PCIBAR_ROM,
};

struct pcibar {
	enum pcibar_type	type;
	uint64_t		size;
	uint64_t		addr;
	uint8_t			lobits;
};

#define	PI_NAMESZ	40

struct msix_table_entry {
	uint64_t	addr;
	uint32_t	msg_data;
	uint32_t	vector_control;
} __attribute__((__packed__));

#define	MSIX_TABLE_ENTRY_SIZE	16
#define	MAX_MSIX_TABLE_ENTRIES	2048

struct pci_devinst {
	struct pci_devemu *pi_d;
	struct vmctx	*pi_vmctx;
	uint8_t		pi_bus, pi_slot, pi_func;
	char		pi_name[PI_NAMESZ];
	int		pi_bar_getsize;
	int		pi_prevcap;
	int		pi_capend;
	struct {
		int		enabled;
		int		table_bar;
		int		pba_bar;
		uint32_t	table_offset;
		int		table_count;
		uint32_t	pba_offset;
		int		pba_size;
		int		function_mask;
		struct msix_table_entry *table;
		uint8_t		*mapped_addr;
		size_t		mapped_size;
	} pi_msix;
	void		*pi_arg;
	unsigned char	pi_cfgdata[PCI_REGMAX + 1];
	struct pcibar	pi_bar[PCI_BARMAX_WITH_ROM + 1];
	uint64_t	pi_romoffset;
};

struct msixcap {
	uint8_t		capid;
	uint8_t		nextptr;
	uint16_t	msgctrl;
	uint32_t	table_info;
	uint32_t	pba_info;
} __attribute__((__packed__));

int	pci_emul_alloc_bar(struct pci_devinst *pdi, int idx,
	    enum pcibar_type type, uint64_t size);
int	pci_emul_add_msixcap(struct pci_devinst *pi, int msgnum, int barnum);
void	pci_emul_capwrite(struct pci_devinst *pi, int offset, int bytes,
	    uint32_t val, uint8_t capoff, int capid);
int	pci_emul_msix_twrite(struct pci_devinst *pi, uint64_t offset, int size,
	    uint64_t value);
uint64_t pci_emul_msix_tread(struct pci_devinst *pi, uint64_t offset, int size);
int	pci_msix_table_bar(struct pci_devinst *pi);

static __inline void
pci_set_cfgdata8(struct pci_devinst *pi, int offset, uint8_t val)
{
	assert(offset <= PCI_REGMAX);
	pi->pi_cfgdata[offset] = val;
}

static __inline void
pci_set_cfgdata16(struct pci_devinst *pi, int offset, uint16_t val)
{
	assert(offset <= (PCI_REGMAX - 1) && (offset & 1) == 0);
	pi->pi_cfgdata[offset] = (unsigned char)(val & 0xff);
	pi->pi_cfgdata[offset + 1] = (unsigned char)(val >> 8);
}

static __inline uint8_t
pci_get_cfgdata8(struct pci_devinst *pi, int offset)
{
	assert(offset <= PCI_REGMAX);
	return (pi->pi_cfgdata[offset]);
}

static __inline uint16_t
pci_get_cfgdata16(struct pci_devinst *pi, int offset)
{
	assert(offset <= (PCI_REGMAX - 1) && (offset & 1) == 0);
	return ((uint16_t)(pi->pi_cfgdata[offset] | pi->pi_cfgdata[offset + 1] << 8));
}
#endif
