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
 * ptbhyve_plugin: the bhyve side of the ptbhyve plugin protocol, version 1
 * (docs/plugin-protocol.md).  Portable POSIX C (C99 or later): a UNIX
 * SOCK_SEQPACKET connection to the ptbhyve daemon, explicit little-endian
 * encoders and decoders for every message, the SCM_RIGHTS kick descriptors,
 * a shadow of the MSI-X table and the "link down" behaviour the protocol
 * asks for when the daemon goes away.
 *
 * Threading: the functions are not thread-safe.  bhyve's vCPU threads may
 * access the device concurrently, so the caller (the bhyve glue) must hold
 * one mutex per device around every call, kicks included (a reconnect
 * closes and replaces the kick descriptors).
 */

#ifndef PTBHYVE_PLUGIN_H
#define PTBHYVE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Protocol constants ------------------------------------------------ */

#define PTBP_MAGIC		0x50544250u	/* "PTBP" */
#define PTBP_VERSION		1u
#define PTBP_MAX_MSG		4096		/* largest message on the socket */
#define PTBP_HDR_SIZE		8

/* Message types. */
#define PTBP_HELLO		1
#define PTBP_WELCOME		2
#define PTBP_READ		3
#define PTBP_VALUE		4
#define PTBP_WRITE		5
#define PTBP_DONE		6
#define PTBP_MSIX		7
#define PTBP_RESET		8
#define PTBP_GOODBYE		9
#define PTBP_ERROR		10

/* Message sizes, header included. */
#define PTBP_HELLO_SIZE		80
#define PTBP_WELCOME_SIZE	64
#define PTBP_READ_SIZE		16
#define PTBP_VALUE_SIZE		12
#define PTBP_WRITE_SIZE		20
#define PTBP_DONE_SIZE		12
#define PTBP_MSIX_SIZE		24
#define PTBP_RESET_SIZE		8
#define PTBP_GOODBYE_SIZE	8
#define PTBP_ERROR_SIZE		140

/* Fixed-size string fields (on the wire, NUL-padded; a field may be full). */
#define PTBP_VMNAME_LEN		64
#define PTBP_SEGNAME_LEN	32
#define PTBP_ERRMSG_LEN		128

/* PCI functions (the fn field of READ and WRITE). */
#define PTBP_FN_PTNET		0
#define PTBP_FN_MEMDEV		1

/* ptnet registers the library itself needs. */
#define PTBP_PTNET_PTCTL	4	/* reads ENXIO while the daemon is away */
#define PTBP_PTNET_KICK_BASE	128	/* kick register i at 128 + 4 * i */
#define PTBP_ENXIO		6	/* the PTCTL value while link down */

/* MSIX flags. */
#define PTBP_MSIX_MASKED	0x1	/* this vector is masked */
#define PTBP_MSIX_ENABLED	0x2	/* MSI-X enabled for the function */
#define PTBP_MSIX_FNMASK	0x4	/* function masked */

/*
 * Most kick descriptors (= MSI-X vectors = ntx + nrx) a WELCOME may carry.
 * All of them travel in one SCM_RIGHTS message; Linux accepts at most 253
 * descriptors per message (SCM_MAX_FD).
 */
#define PTBP_MAX_KICKS		253

/*
 * How long a request waits for its reply before the connection is declared
 * dead (milliseconds; <= 0 waits forever).  ptbp_open() copies this into
 * ptbp_dev.timeout_ms, which the caller may change afterwards.
 */
#ifndef PTBP_REPLY_TIMEOUT_MS
#define PTBP_REPLY_TIMEOUT_MS	10000
#endif

/* ---- Wire format ------------------------------------------------------- */

/*
 * A decoded message.  Strings are NUL-terminated copies of the NUL-padded
 * wire fields (one byte longer than the field, so a full field still ends in
 * NUL).  Only the union member of `type` is meaningful; RESET and GOODBYE
 * have no payload.
 */
struct ptbp_msg {
	uint16_t type;
	uint16_t flags;
	uint32_t seq;
	union {
		struct {
			uint32_t magic;
			uint32_t version;
			char vm[PTBP_VMNAME_LEN + 1];
		} hello;
		struct {
			uint32_t version;
			uint16_t ntx;
			uint16_t nrx;
			uint8_t mac[6];
			uint64_t memsize;
			char segname[PTBP_SEGNAME_LEN + 1];
		} welcome;
		struct {
			uint8_t fn;
			uint8_t size;
			uint32_t off;
		} read;
		struct {
			uint32_t val;
		} value;
		struct {
			uint8_t fn;
			uint8_t size;
			uint32_t off;
			uint32_t val;
		} write;
		struct {
			uint32_t status;
		} done;
		struct {
			uint16_t vector;
			uint16_t flags;
			uint32_t data;
			uint64_t addr;
		} msix;
		struct {
			uint32_t err;
			char msg[PTBP_ERRMSG_LEN + 1];
		} error;
	} u;
};

/*
 * ptbp_msg_size: the size on the wire (header included) of a message of
 * type `type`, or 0 for an unknown type.
 */
size_t ptbp_msg_size(uint16_t type);

/*
 * ptbp_encode: write message `m` into buf[0..len) in the exact
 * little-endian layout of the protocol.  Strings longer than their field
 * are truncated to the field; padding bytes are zero.  Returns the number
 * of bytes written, or 0 (errno EINVAL or ENOSPC) for an unknown type or a
 * buffer that is too small.
 */
size_t ptbp_encode(const struct ptbp_msg *m, uint8_t *buf, size_t len);

/*
 * ptbp_decode: parse buf[0..len) into *m.  Returns 0, or -1 with errno
 * EPROTO for a message shorter than the header, an unknown type or a length
 * that does not match the type.  Field values are not checked (that is the
 * caller's business), padding is ignored.
 */
int ptbp_decode(const uint8_t *buf, size_t len, struct ptbp_msg *m);

/* Little-endian helpers used by the codec (exported for the tests). */
void ptbp_put16(uint8_t *p, uint16_t v);
void ptbp_put32(uint8_t *p, uint32_t v);
void ptbp_put64(uint8_t *p, uint64_t v);
uint16_t ptbp_get16(const uint8_t *p);
uint32_t ptbp_get32(const uint8_t *p);
uint64_t ptbp_get64(const uint8_t *p);

/* ---- The device connection --------------------------------------------- */

/* Shadow of one MSI-X table entry, as last sent with ptbp_msix(). */
struct ptbp_msix_entry {
	uint64_t addr;
	uint32_t data;
	uint16_t flags;		/* PTBP_MSIX_* as given */
	uint8_t set;		/* ptbp_msix() was called for this vector */
};

/*
 * One ptnet device (the ptnet and ptnetmap-memdev functions share it).
 * Callers may read every field; they change none except timeout_ms.
 */
struct ptbp_dev {
	char path[128];		/* daemon socket; "" for ptbp_attach() */
	char vm[PTBP_VMNAME_LEN + 1];
	int fd;			/* the connection; -1 while link down */
	uint32_t seq;		/* seq of the last message sent */
	int timeout_ms;		/* reply timeout, see PTBP_REPLY_TIMEOUT_MS */
	int welcomed;		/* a WELCOME was accepted at least once */

	/* From the (first) WELCOME. */
	uint32_t version;
	uint16_t ntx;
	uint16_t nrx;
	uint8_t mac[6];
	uint64_t memsize;
	char segname[PTBP_SEGNAME_LEN + 1];

	/*
	 * Kick descriptors, TX rings then RX rings: kick[i] for i < ntx + nrx,
	 * -1 while link down.  kick_kind says how to write each (internal).
	 */
	int kick[PTBP_MAX_KICKS];
	uint8_t kick_kind[PTBP_MAX_KICKS];

	/* MSI-X shadow, one entry per vector (ntx + nrx). */
	struct ptbp_msix_entry msix[PTBP_MAX_KICKS];
	uint16_t msix_fnflags;	/* ENABLED|FNMASK bits of the last ptbp_msix() */

	char err[256];		/* last error, for bhyve to print */
};

/*
 * ptbp_open: initialise *d, connect to the daemon's socket `path`, send
 * HELLO for VM `vm` and wait for WELCOME, which must carry exactly ntx + nrx
 * kick descriptors (1 <= ntx + nrx <= PTBP_MAX_KICKS), version 1 and a
 * power-of-two memsize.  On success returns 0 with d->fd and d->kick[]
 * open.  On failure returns -1 with errno set, a message in d->err and no
 * descriptor left open: if the daemon answered ERROR, errno is its errno
 * and d->err its message; a WELCOME that is malformed or carries the wrong
 * number of descriptors gives EPROTO (the descriptors received are closed).
 * ptbp_close() is harmless on a device whose open failed.
 */
int ptbp_open(struct ptbp_dev *d, const char *path, const char *vm);

/*
 * ptbp_attach: like ptbp_open() but over an already connected
 * SOCK_SEQPACKET socket `fd` (a socketpair, a descriptor inherited from a
 * parent).  The device takes ownership of fd, also on failure.  Such a device
 * has no path, so it cannot reconnect: once the link is down it stays down.
 */
int ptbp_attach(struct ptbp_dev *d, int fd, const char *vm);

/*
 * ptbp_read: a 4-byte guest read of register `off` of function `fn`
 * (PTBP_FN_PTNET or PTBP_FN_MEMDEV): READ, wait for VALUE, return it.
 * Link down: one ptbp_reconnect() is tried first; if the link stays down (or
 * the request fails), returns 0, except the ptnet PTCTL register, which
 * reads PTBP_ENXIO (6).  A failure on the way marks the link down.
 */
uint32_t ptbp_read(struct ptbp_dev *d, int fn, uint32_t off);

/*
 * ptbp_write: a 4-byte guest write.  A ptnet kick register (fn 0,
 * off = 128 + 4 * i, i < ntx + nrx) costs one 8-byte write of the value 1 to
 * kick[i] and no message (the write never blocks and never raises SIGPIPE).
 * Any other register: WRITE, wait for DONE.  Link down: one ptbp_reconnect()
 * is tried first; if the link stays down the write is dropped.
 */
void ptbp_write(struct ptbp_dev *d, int fn, uint32_t off, uint32_t val);

/*
 * ptbp_msix: the guest changed MSI-X table entry `vector`, or the
 * function's enable or mask bits (flags: PTBP_MSIX_*).  Records the entry in
 * the shadow and sends MSIX (no reply).  Link down: one ptbp_reconnect() is
 * tried, which replays the shadow, this entry included.  A vector >= ntx +
 * nrx is not part of the device: it is dropped with a message in d->err.
 */
void ptbp_msix(struct ptbp_dev *d, uint16_t vector, uint16_t flags,
    uint64_t addr, uint32_t data);

/*
 * ptbp_reset: the guest or bhyve reset the device: RESET, wait for DONE.
 * Returns DONE's status (0), or -1 with errno and d->err set if the link is
 * down (after one ptbp_reconnect() attempt) or the request failed.
 */
int ptbp_reset(struct ptbp_dev *d);

/*
 * ptbp_reconnect: drop the current connection if any (GOODBYE, best effort)
 * and its kick descriptors, connect again, HELLO, and accept the WELCOME
 * only if ntx, nrx, memsize and segname are those of the first WELCOME (the
 * devmem segment bhyve created cannot change; the MAC may).  Then replay
 * every MSI-X shadow entry that was ever set, in vector order, each with its
 * own mask bit and the function bits of the latest ptbp_msix() call.
 * Returns 0, or -1 with errno and d->err set and the link down.
 */
int ptbp_reconnect(struct ptbp_dev *d);

/*
 * ptbp_close: send GOODBYE (best effort) and close the connection and the
 * kick descriptors.  The device is link down afterwards; calling it twice
 * is harmless.  Only for a device that went through ptbp_open() or
 * ptbp_attach() (successful or not): a zeroed struct has fd 0.
 */
void ptbp_close(struct ptbp_dev *d);

/* ptbp_is_up: 1 if the connection is up, 0 if link down. */
int ptbp_is_up(const struct ptbp_dev *d);

#ifdef __cplusplus
}
#endif

#endif /* PTBHYVE_PLUGIN_H */
