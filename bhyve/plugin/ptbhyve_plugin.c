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
 * The bhyve side of the ptbhyve plugin protocol; see ptbhyve_plugin.h and
 * docs/plugin-protocol.md.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ptbhyve_plugin.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0		/* then SIGPIPE must be ignored by the caller */
#endif

#ifdef MSG_CMSG_CLOEXEC
#define PTBP_RECV_FLAGS MSG_CMSG_CLOEXEC
#else
#define PTBP_RECV_FLAGS 0
#endif

#ifndef EPROTO
#define EPROTO EINVAL
#endif

/* How a kick descriptor is written. */
#define KICK_PLAIN	0	/* eventfd and the like: write() */
#define KICK_FIFO	1	/* pipe or FIFO: write() with SIGPIPE blocked */
#define KICK_SOCKET	2	/* socket: send(MSG_NOSIGNAL | MSG_DONTWAIT) */

#if defined(__GNUC__) || defined(__clang__)
#define PTBP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define PTBP_PRINTF(a, b)
#endif

/* ---- Little-endian helpers --------------------------------------------- */

void
ptbp_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

void
ptbp_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

void
ptbp_put64(uint8_t *p, uint64_t v)
{
	ptbp_put32(p, (uint32_t)v);
	ptbp_put32(p + 4, (uint32_t)(v >> 32));
}

uint16_t
ptbp_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t
ptbp_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) |
	    ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

uint64_t
ptbp_get64(const uint8_t *p)
{
	return (uint64_t)ptbp_get32(p) | ((uint64_t)ptbp_get32(p + 4) << 32);
}

/* ---- Codec ------------------------------------------------------------- */

size_t
ptbp_msg_size(uint16_t type)
{
	switch (type) {
	case PTBP_HELLO:	return PTBP_HELLO_SIZE;
	case PTBP_WELCOME:	return PTBP_WELCOME_SIZE;
	case PTBP_READ:		return PTBP_READ_SIZE;
	case PTBP_VALUE:	return PTBP_VALUE_SIZE;
	case PTBP_WRITE:	return PTBP_WRITE_SIZE;
	case PTBP_DONE:		return PTBP_DONE_SIZE;
	case PTBP_MSIX:		return PTBP_MSIX_SIZE;
	case PTBP_RESET:	return PTBP_RESET_SIZE;
	case PTBP_GOODBYE:	return PTBP_GOODBYE_SIZE;
	case PTBP_ERROR:	return PTBP_ERROR_SIZE;
	default:		return 0;
	}
}

/* Copy a C string into a NUL-padded field of n bytes (truncating). */
static void
put_str(uint8_t *p, size_t n, const char *s)
{
	size_t l = strlen(s);

	if (l > n)
		l = n;
	memcpy(p, s, l);
	memset(p + l, 0, n - l);
}

/* Copy a NUL-padded field of n bytes into s[n + 1], NUL-terminated. */
static void
get_str(char *s, const uint8_t *p, size_t n)
{
	size_t l = 0;

	while (l < n && p[l] != 0)
		l++;
	memcpy(s, p, l);
	s[l] = '\0';
}

size_t
ptbp_encode(const struct ptbp_msg *m, uint8_t *buf, size_t len)
{
	size_t n = ptbp_msg_size(m->type);
	uint8_t *p = buf + PTBP_HDR_SIZE;

	if (n == 0) {
		errno = EINVAL;
		return 0;
	}
	if (len < n) {
		errno = ENOSPC;
		return 0;
	}
	memset(buf, 0, n);
	ptbp_put16(buf, m->type);
	ptbp_put16(buf + 2, m->flags);
	ptbp_put32(buf + 4, m->seq);
	switch (m->type) {
	case PTBP_HELLO:
		ptbp_put32(p, m->u.hello.magic);
		ptbp_put32(p + 4, m->u.hello.version);
		put_str(p + 8, PTBP_VMNAME_LEN, m->u.hello.vm);
		break;
	case PTBP_WELCOME:
		ptbp_put32(p, m->u.welcome.version);
		ptbp_put16(p + 4, m->u.welcome.ntx);
		ptbp_put16(p + 6, m->u.welcome.nrx);
		memcpy(p + 8, m->u.welcome.mac, 6);
		/* p + 14: pad u16 */
		ptbp_put64(p + 16, m->u.welcome.memsize);
		put_str(p + 24, PTBP_SEGNAME_LEN, m->u.welcome.segname);
		break;
	case PTBP_READ:
		p[0] = m->u.read.fn;
		p[1] = m->u.read.size;
		ptbp_put32(p + 4, m->u.read.off);
		break;
	case PTBP_VALUE:
		ptbp_put32(p, m->u.value.val);
		break;
	case PTBP_WRITE:
		p[0] = m->u.write.fn;
		p[1] = m->u.write.size;
		ptbp_put32(p + 4, m->u.write.off);
		ptbp_put32(p + 8, m->u.write.val);
		break;
	case PTBP_DONE:
		ptbp_put32(p, m->u.done.status);
		break;
	case PTBP_MSIX:
		ptbp_put16(p, m->u.msix.vector);
		ptbp_put16(p + 2, m->u.msix.flags);
		ptbp_put32(p + 4, m->u.msix.data);
		ptbp_put64(p + 8, m->u.msix.addr);
		break;
	case PTBP_ERROR:
		ptbp_put32(p, m->u.error.err);
		put_str(p + 4, PTBP_ERRMSG_LEN, m->u.error.msg);
		break;
	default:	/* RESET, GOODBYE: header only */
		break;
	}
	return n;
}

int
ptbp_decode(const uint8_t *buf, size_t len, struct ptbp_msg *m)
{
	const uint8_t *p = buf + PTBP_HDR_SIZE;
	size_t n;

	memset(m, 0, sizeof(*m));
	if (len < PTBP_HDR_SIZE) {
		errno = EPROTO;
		return -1;
	}
	m->type = ptbp_get16(buf);
	m->flags = ptbp_get16(buf + 2);
	m->seq = ptbp_get32(buf + 4);
	n = ptbp_msg_size(m->type);
	if (n == 0 || len != n) {
		errno = EPROTO;
		return -1;
	}
	switch (m->type) {
	case PTBP_HELLO:
		m->u.hello.magic = ptbp_get32(p);
		m->u.hello.version = ptbp_get32(p + 4);
		get_str(m->u.hello.vm, p + 8, PTBP_VMNAME_LEN);
		break;
	case PTBP_WELCOME:
		m->u.welcome.version = ptbp_get32(p);
		m->u.welcome.ntx = ptbp_get16(p + 4);
		m->u.welcome.nrx = ptbp_get16(p + 6);
		memcpy(m->u.welcome.mac, p + 8, 6);
		m->u.welcome.memsize = ptbp_get64(p + 16);
		get_str(m->u.welcome.segname, p + 24, PTBP_SEGNAME_LEN);
		break;
	case PTBP_READ:
		m->u.read.fn = p[0];
		m->u.read.size = p[1];
		m->u.read.off = ptbp_get32(p + 4);
		break;
	case PTBP_VALUE:
		m->u.value.val = ptbp_get32(p);
		break;
	case PTBP_WRITE:
		m->u.write.fn = p[0];
		m->u.write.size = p[1];
		m->u.write.off = ptbp_get32(p + 4);
		m->u.write.val = ptbp_get32(p + 8);
		break;
	case PTBP_DONE:
		m->u.done.status = ptbp_get32(p);
		break;
	case PTBP_MSIX:
		m->u.msix.vector = ptbp_get16(p);
		m->u.msix.flags = ptbp_get16(p + 2);
		m->u.msix.data = ptbp_get32(p + 4);
		m->u.msix.addr = ptbp_get64(p + 8);
		break;
	case PTBP_ERROR:
		m->u.error.err = ptbp_get32(p);
		get_str(m->u.error.msg, p + 4, PTBP_ERRMSG_LEN);
		break;
	default:
		break;
	}
	return 0;
}

/* ---- Connection -------------------------------------------------------- */

static void PTBP_PRINTF(2, 3)
seterr(struct ptbp_dev *d, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vsnprintf(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
	errno = saved;
}

static void
close_fds(int *fds, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static unsigned
nvec(const struct ptbp_dev *d)
{
	return (unsigned)d->ntx + d->nrx;
}

/* Close the connection and the kick descriptors: link down. */
static void
link_down(struct ptbp_dev *d)
{
	int saved = errno;
	int i;

	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	for (i = 0; i < PTBP_MAX_KICKS; i++) {
		if (d->kick[i] >= 0)
			close(d->kick[i]);
		d->kick[i] = -1;
	}
	errno = saved;
}

int
ptbp_is_up(const struct ptbp_dev *d)
{
	return d->fd >= 0;
}

/* Send one message; -1 with errno and d->err on failure (link untouched). */
static int
send_msg(struct ptbp_dev *d, struct ptbp_msg *m)
{
	uint8_t buf[PTBP_MAX_MSG];
	size_t n;
	ssize_t r;

	m->seq = ++d->seq;
	n = ptbp_encode(m, buf, sizeof(buf));
	if (n == 0) {
		seterr(d, "cannot encode message type %u", m->type);
		return -1;
	}
	do {
		r = send(d->fd, buf, n, MSG_NOSIGNAL);
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		seterr(d, "send: %s", strerror(errno));
		return -1;
	}
	if ((size_t)r != n) {
		errno = EIO;
		seterr(d, "send: short write (%zd of %zu bytes)", r, n);
		return -1;
	}
	return 0;
}

/* Send a message whose loss does not matter, keeping errno and d->err. */
static void
send_quiet(struct ptbp_dev *d, uint16_t type)
{
	struct ptbp_msg m;
	char err[sizeof(d->err)];
	int saved = errno;

	if (d->fd < 0)
		return;
	memcpy(err, d->err, sizeof(err));
	memset(&m, 0, sizeof(m));
	m.type = type;
	(void)send_msg(d, &m);
	memcpy(d->err, err, sizeof(err));
	errno = saved;
}

/*
 * Receive one message.  Descriptors are accepted only if fds != NULL, at
 * most maxfds of them; *nfds is how many arrived (the caller owns them).
 * On failure (timeout, EOF, I/O error, truncation, unexpected descriptors,
 * malformed message) returns -1 with errno and d->err set and no descriptor
 * left open; the link is untouched.
 */
static int
recv_msg(struct ptbp_dev *d, struct ptbp_msg *m, int *fds, int maxfds,
    int *nfds)
{
	uint8_t buf[PTBP_MAX_MSG];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * (PTBP_MAX_KICKS + 8))];
	} cbuf;
	int got[PTBP_MAX_KICKS + 8];
	int ngot = 0, i, r;
	struct iovec iov;
	struct msghdr mh;
	struct cmsghdr *c;
	struct pollfd pfd;
	ssize_t n;

	if (nfds != NULL)
		*nfds = 0;
	pfd.fd = d->fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	do {
		r = poll(&pfd, 1, d->timeout_ms > 0 ? d->timeout_ms : -1);
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		seterr(d, "poll: %s", strerror(errno));
		return -1;
	}
	if (r == 0) {
		errno = ETIMEDOUT;
		seterr(d, "no reply from the daemon within %d ms",
		    d->timeout_ms);
		return -1;
	}

	memset(&mh, 0, sizeof(mh));
	memset(&cbuf, 0, sizeof(cbuf));
	iov.iov_base = buf;
	iov.iov_len = sizeof(buf);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = sizeof(cbuf.buf);
	do {
		n = recvmsg(d->fd, &mh, PTBP_RECV_FLAGS);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		seterr(d, "recvmsg: %s", strerror(errno));
		return -1;
	}

	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		size_t cnt, k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		if (c->cmsg_len < CMSG_LEN(0))
			continue;
		cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (k = 0; k < cnt; k++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(fd));
			if (ngot < (int)(sizeof(got) / sizeof(got[0])))
				got[ngot++] = fd;
			else
				close(fd);
		}
	}
#ifndef MSG_CMSG_CLOEXEC
	for (i = 0; i < ngot; i++)
		(void)fcntl(got[i], F_SETFD, FD_CLOEXEC);
#endif

	if (n == 0) {
		close_fds(got, ngot);
		errno = ECONNRESET;
		seterr(d, "the daemon closed the connection");
		return -1;
	}
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		close_fds(got, ngot);
		errno = EPROTO;
		seterr(d, "message from the daemon truncated");
		return -1;
	}
	if (ptbp_decode(buf, (size_t)n, m) < 0) {
		close_fds(got, ngot);
		errno = EPROTO;
		seterr(d, "malformed message from the daemon "
		    "(%zd bytes, type %u)", n,
		    n >= 2 ? (unsigned)ptbp_get16(buf) : 0u);
		return -1;
	}
	if (ngot > 0 && (fds == NULL || ngot > maxfds)) {
		close_fds(got, ngot);
		errno = EPROTO;
		seterr(d, "unexpected descriptors (%d) on message type %u",
		    ngot, m->type);
		return -1;
	}
	for (i = 0; i < ngot; i++)
		fds[i] = got[i];
	if (nfds != NULL)
		*nfds = ngot;
	return 0;
}

/* Classify a kick descriptor. */
static uint8_t
kick_kind(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return KICK_PLAIN;
	if (S_ISFIFO(st.st_mode))
		return KICK_FIFO;
	if (S_ISSOCK(st.st_mode))
		return KICK_SOCKET;
	return KICK_PLAIN;
}

/*
 * Connect (if path is set), HELLO, WELCOME.  `first` is set for ptbp_open
 * and ptbp_attach: the WELCOME defines the device; otherwise it must match.
 * On success the link is up.  On failure the link is down, errno and d->err
 * are set.
 */
static int
handshake(struct ptbp_dev *d, int first)
{
	struct ptbp_msg m;
	int fds[PTBP_MAX_KICKS];
	int nfds = 0, i;
	unsigned want;

	memset(&m, 0, sizeof(m));
	m.type = PTBP_HELLO;
	m.u.hello.magic = PTBP_MAGIC;
	m.u.hello.version = PTBP_VERSION;
	memcpy(m.u.hello.vm, d->vm, sizeof(m.u.hello.vm));
	if (send_msg(d, &m) < 0)
		goto fail;
	if (recv_msg(d, &m, fds, PTBP_MAX_KICKS, &nfds) < 0)
		goto fail;
	if (m.seq != d->seq) {
		close_fds(fds, nfds);
		errno = EPROTO;
		seterr(d, "reply to HELLO with seq %u, expected %u",
		    m.seq, d->seq);
		goto fail;
	}
	if (m.type == PTBP_ERROR) {
		close_fds(fds, nfds);
		seterr(d, "%s", m.u.error.msg);
		errno = m.u.error.err != 0 ? (int)m.u.error.err : EIO;
		goto fail;
	}
	if (m.type != PTBP_WELCOME) {
		close_fds(fds, nfds);
		errno = EPROTO;
		seterr(d, "reply to HELLO has type %u", m.type);
		goto fail;
	}
	want = (unsigned)m.u.welcome.ntx + m.u.welcome.nrx;
	if (m.u.welcome.version != PTBP_VERSION) {
		close_fds(fds, nfds);
		errno = EPROTONOSUPPORT;
		seterr(d, "the daemon speaks version %u, we speak %u",
		    m.u.welcome.version, PTBP_VERSION);
		goto fail;
	}
	if (want == 0 || want > PTBP_MAX_KICKS) {
		close_fds(fds, nfds);
		errno = EPROTO;
		seterr(d, "WELCOME with %u rings (1 to %d supported)", want,
		    PTBP_MAX_KICKS);
		goto fail;
	}
	if ((unsigned)nfds != want) {
		close_fds(fds, nfds);
		errno = EPROTO;
		seterr(d, "WELCOME with %u rings carries %d descriptors",
		    want, nfds);
		goto fail;
	}
	if (m.u.welcome.memsize == 0 ||
	    (m.u.welcome.memsize & (m.u.welcome.memsize - 1)) != 0) {
		close_fds(fds, nfds);
		errno = EPROTO;
		seterr(d, "WELCOME memsize %llu is not a power of two",
		    (unsigned long long)m.u.welcome.memsize);
		goto fail;
	}
	if (!first && (m.u.welcome.ntx != d->ntx ||
	    m.u.welcome.nrx != d->nrx ||
	    m.u.welcome.memsize != d->memsize ||
	    strcmp(m.u.welcome.segname, d->segname) != 0)) {
		close_fds(fds, nfds);
		errno = EPROTO;
		seterr(d, "the daemon changed the device: ntx %u nrx %u "
		    "memsize %llu segname \"%s\", was ntx %u nrx %u "
		    "memsize %llu segname \"%s\"",
		    m.u.welcome.ntx, m.u.welcome.nrx,
		    (unsigned long long)m.u.welcome.memsize,
		    m.u.welcome.segname, d->ntx, d->nrx,
		    (unsigned long long)d->memsize, d->segname);
		send_quiet(d, PTBP_GOODBYE);
		goto fail;
	}

	d->version = m.u.welcome.version;
	d->ntx = m.u.welcome.ntx;
	d->nrx = m.u.welcome.nrx;
	memcpy(d->mac, m.u.welcome.mac, sizeof(d->mac));
	d->memsize = m.u.welcome.memsize;
	memcpy(d->segname, m.u.welcome.segname, sizeof(d->segname));
	for (i = 0; i < nfds; i++) {
		d->kick[i] = fds[i];
		d->kick_kind[i] = kick_kind(fds[i]);
	}
	d->welcomed = 1;
	return 0;

fail:
	link_down(d);
	return -1;
}

/* A new SOCK_SEQPACKET connection to d->path, in d->fd. */
static int
dial(struct ptbp_dev *d)
{
	struct sockaddr_un sun;
	int fd, type = SOCK_SEQPACKET;

	if (d->path[0] == '\0') {
		errno = ENOTCONN;
		seterr(d, "link down and no socket path to reconnect to");
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(d->path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		seterr(d, "socket path too long: %s", d->path);
		return -1;
	}
	memcpy(sun.sun_path, d->path, strlen(d->path) + 1);
#ifdef SOCK_CLOEXEC
	type |= SOCK_CLOEXEC;
#endif
	fd = socket(AF_UNIX, type, 0);
	if (fd < 0) {
		seterr(d, "socket: %s", strerror(errno));
		return -1;
	}
#ifndef SOCK_CLOEXEC
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
#ifdef SO_NOSIGPIPE
	{
		int one = 1;

		(void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one,
		    sizeof(one));
	}
#endif
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (errno == EINTR)
			continue;
		int saved = errno;

		seterr(d, "connect %s: %s", d->path, strerror(errno));
		close(fd);
		errno = saved;
		return -1;
	}
	d->fd = fd;
	return 0;
}

static int
init_dev(struct ptbp_dev *d, const char *path, const char *vm)
{
	int i;

	memset(d, 0, sizeof(*d));
	d->fd = -1;
	for (i = 0; i < PTBP_MAX_KICKS; i++)
		d->kick[i] = -1;
	d->timeout_ms = PTBP_REPLY_TIMEOUT_MS;
	if (vm == NULL || vm[0] == '\0') {
		errno = EINVAL;
		seterr(d, "no VM name");
		return -1;
	}
	if (strlen(vm) > PTBP_VMNAME_LEN) {
		errno = ENAMETOOLONG;
		seterr(d, "VM name longer than %d bytes", PTBP_VMNAME_LEN);
		return -1;
	}
	memcpy(d->vm, vm, strlen(vm) + 1);
	if (path != NULL) {
		if (strlen(path) >= sizeof(d->path)) {
			errno = ENAMETOOLONG;
			seterr(d, "socket path too long: %s", path);
			return -1;
		}
		memcpy(d->path, path, strlen(path) + 1);
	}
	return 0;
}

int
ptbp_open(struct ptbp_dev *d, const char *path, const char *vm)
{
	if (init_dev(d, path, vm) < 0)
		return -1;
	if (path == NULL || path[0] == '\0') {
		errno = EINVAL;
		seterr(d, "no socket path");
		return -1;
	}
	if (dial(d) < 0)
		return -1;
	return handshake(d, 1);
}

int
ptbp_attach(struct ptbp_dev *d, int fd, const char *vm)
{
	if (init_dev(d, NULL, vm) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (fd < 0) {
		errno = EBADF;
		seterr(d, "bad descriptor");
		return -1;
	}
	d->fd = fd;
	return handshake(d, 1);
}

/* Send MSIX for the shadow entry of vector v; -1 (link down) on failure. */
static int
send_msix(struct ptbp_dev *d, uint16_t v)
{
	struct ptbp_msg m;

	memset(&m, 0, sizeof(m));
	m.type = PTBP_MSIX;
	m.u.msix.vector = v;
	m.u.msix.flags = (uint16_t)((d->msix[v].flags & PTBP_MSIX_MASKED) |
	    (d->msix_fnflags & (uint16_t)~PTBP_MSIX_MASKED));
	m.u.msix.data = d->msix[v].data;
	m.u.msix.addr = d->msix[v].addr;
	if (send_msg(d, &m) < 0) {
		link_down(d);
		return -1;
	}
	return 0;
}

int
ptbp_reconnect(struct ptbp_dev *d)
{
	unsigned v;

	if (!d->welcomed) {
		errno = EINVAL;
		seterr(d, "reconnect on a device that was never opened");
		return -1;
	}
	send_quiet(d, PTBP_GOODBYE);
	link_down(d);
	if (dial(d) < 0)
		return -1;
	if (handshake(d, 0) < 0)
		return -1;
	for (v = 0; v < nvec(d); v++) {
		if (!d->msix[v].set)
			continue;
		if (send_msix(d, (uint16_t)v) < 0)
			return -1;
	}
	return 0;
}

/* Try one reconnect if the link is down; 0 if the link is (now) up. */
static int
ensure_up(struct ptbp_dev *d)
{
	if (d->fd >= 0)
		return 0;
	return ptbp_reconnect(d);
}

/*
 * One request and its reply of type `want`.  If the request cannot be sent
 * on a link that was up, it never reached a live daemon: reconnect once and
 * send it again.  Any other failure marks the link down.
 */
static int
transact(struct ptbp_dev *d, struct ptbp_msg *req, uint16_t want,
    struct ptbp_msg *rep)
{
	struct ptbp_msg save = *req;
	int was_up = d->fd >= 0;

	if (!was_up && ptbp_reconnect(d) < 0)
		return -1;
	if (send_msg(d, req) < 0) {
		link_down(d);
		if (!was_up || ptbp_reconnect(d) < 0)
			return -1;
		*req = save;
		if (send_msg(d, req) < 0) {
			link_down(d);
			return -1;
		}
	}
	if (recv_msg(d, rep, NULL, 0, NULL) < 0) {
		link_down(d);
		return -1;
	}
	if (rep->type == PTBP_GOODBYE) {
		errno = ECONNRESET;
		seterr(d, "the daemon said GOODBYE");
		link_down(d);
		return -1;
	}
	if (rep->seq != req->seq) {
		errno = EPROTO;
		seterr(d, "reply with seq %u, expected %u", rep->seq,
		    req->seq);
		link_down(d);
		return -1;
	}
	if (rep->type == PTBP_ERROR) {
		seterr(d, "the daemon answered ERROR %u: %s",
		    rep->u.error.err, rep->u.error.msg);
		errno = EPROTO;
		link_down(d);
		return -1;
	}
	if (rep->type != want) {
		errno = EPROTO;
		seterr(d, "reply of type %u to request type %u", rep->type,
		    req->type);
		link_down(d);
		return -1;
	}
	return 0;
}

uint32_t
ptbp_read(struct ptbp_dev *d, int fn, uint32_t off)
{
	struct ptbp_msg req, rep;

	memset(&req, 0, sizeof(req));
	req.type = PTBP_READ;
	req.u.read.fn = (uint8_t)fn;
	req.u.read.size = 4;
	req.u.read.off = off;
	if (transact(d, &req, PTBP_VALUE, &rep) < 0) {
		if (fn == PTBP_FN_PTNET && off == PTBP_PTNET_PTCTL)
			return PTBP_ENXIO;
		return 0;
	}
	return rep.u.value.val;
}

/* Write 1 to kick descriptor i; never blocks, never raises SIGPIPE. */
static void
kick(struct ptbp_dev *d, unsigned i)
{
	uint64_t one = 1;
	struct pollfd pfd;
	ssize_t r;
	int fd = d->kick[i];

	switch (d->kick_kind[i]) {
	case KICK_SOCKET:
		do {
			r = send(fd, &one, sizeof(one),
			    MSG_NOSIGNAL | MSG_DONTWAIT);
		} while (r < 0 && errno == EINTR);
		break;
	case KICK_FIFO: {
		sigset_t pipeset, pending, old;
		int was_pending;

		pfd.fd = fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		if (poll(&pfd, 1, 0) == 1 &&
		    (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) {
			/* No reader any more: the daemon is gone. */
			r = -1;
			errno = EPIPE;
			break;
		}
		if ((pfd.revents & POLLOUT) == 0) {
			/* Full: a kick is already pending. */
			return;
		}
		sigemptyset(&pipeset);
		sigaddset(&pipeset, SIGPIPE);
		sigemptyset(&pending);
		(void)sigpending(&pending);
		was_pending = sigismember(&pending, SIGPIPE);
		(void)pthread_sigmask(SIG_BLOCK, &pipeset, &old);
		do {
			r = write(fd, &one, sizeof(one));
		} while (r < 0 && errno == EINTR);
		if (r < 0 && errno == EPIPE && !was_pending) {
			struct timespec ts = { 0, 0 };
			int saved = errno;

			while (sigtimedwait(&pipeset, NULL, &ts) < 0 &&
			    errno == EINTR)
				;
			errno = saved;
		}
		(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
		break;
	}
	default:
		pfd.fd = fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		if (poll(&pfd, 1, 0) == 0)
			return;		/* counter full: a kick is pending */
		do {
			r = write(fd, &one, sizeof(one));
		} while (r < 0 && errno == EINTR);
		break;
	}
	if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		seterr(d, "kick %u: %s", i, strerror(errno));
		link_down(d);
	}
}

void
ptbp_write(struct ptbp_dev *d, int fn, uint32_t off, uint32_t val)
{
	struct ptbp_msg req, rep;

	if (fn == PTBP_FN_PTNET && off >= PTBP_PTNET_KICK_BASE &&
	    off % 4 == 0 && d->welcomed &&
	    (off - PTBP_PTNET_KICK_BASE) / 4 < nvec(d)) {
		if (ensure_up(d) < 0)
			return;
		kick(d, (off - PTBP_PTNET_KICK_BASE) / 4);
		return;
	}
	memset(&req, 0, sizeof(req));
	req.type = PTBP_WRITE;
	req.u.write.fn = (uint8_t)fn;
	req.u.write.size = 4;
	req.u.write.off = off;
	req.u.write.val = val;
	(void)transact(d, &req, PTBP_DONE, &rep);
}

void
ptbp_msix(struct ptbp_dev *d, uint16_t vector, uint16_t flags,
    uint64_t addr, uint32_t data)
{
	if (!d->welcomed || vector >= nvec(d)) {
		seterr(d, "MSI-X vector %u out of range (%u vectors)",
		    vector, d->welcomed ? nvec(d) : 0u);
		return;
	}
	d->msix[vector].addr = addr;
	d->msix[vector].data = data;
	d->msix[vector].flags = flags;
	d->msix[vector].set = 1;
	d->msix_fnflags = flags & (PTBP_MSIX_ENABLED | PTBP_MSIX_FNMASK);
	if (d->fd < 0) {
		/* The reconnect replays the shadow, this entry included. */
		(void)ptbp_reconnect(d);
		return;
	}
	(void)send_msix(d, vector);
}

int
ptbp_reset(struct ptbp_dev *d)
{
	struct ptbp_msg req, rep;

	memset(&req, 0, sizeof(req));
	req.type = PTBP_RESET;
	if (transact(d, &req, PTBP_DONE, &rep) < 0)
		return -1;
	return (int)rep.u.done.status;
}

void
ptbp_close(struct ptbp_dev *d)
{
	send_quiet(d, PTBP_GOODBYE);
	link_down(d);
}
