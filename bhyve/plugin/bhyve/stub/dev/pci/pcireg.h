/*
 * Stub for the pci_ptnet.c syntax check: see ../../README.
 * The values of the sys/dev/pci/pcireg.h constants pci_ptnet.c uses.
 */
#ifndef STUB_PCIREG_H
#define	STUB_PCIREG_H
#define	PCI_REGMAX		255
#define	PCIR_MAX_BAR_0		5
#define	PCIR_VENDOR		0x00
#define	PCIR_DEVICE		0x02
#define	PCIR_COMMAND		0x04
#define	PCIM_CMD_BUSMASTEREN	0x0004
#define	PCIR_STATUS		0x06
#define	PCIR_SUBCLASS		0x0a
#define	PCIR_CLASS		0x0b
#define	PCIR_SUBVEND_0		0x2c
#define	PCIR_SUBDEV_0		0x2e
#define	PCIR_CAP_PTR		0x34
#define	PCIY_MSIX		0x11
#define	PCIM_MSIXCTRL_MSIX_ENABLE	0x8000
#define	PCIM_MSIXCTRL_FUNCTION_MASK	0x4000
#define	PCIM_MSIX_VCTRL_MASK	0x1
#define	PCIC_NETWORK		0x02
#define	PCIS_NETWORK_OTHER	0x80
#define	PCIC_MEMORY		0x05
#define	PCIS_MEMORY_OTHER	0x80
#endif
