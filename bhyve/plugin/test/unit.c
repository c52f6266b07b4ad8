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
 * Unit tests of ptbhyve_plugin: exact byte images of every message, decoder
 * rejections, and the client against a fake daemon (a thread answering on a
 * socketpair or on a listening UNIX socket): WELCOME with kick descriptors
 * (pipes, eventfds on Linux), register round trips, MSI-X, RESET, malformed
 * replies (link down, PTCTL reads ENXIO), ERROR on HELLO, wrong descriptor
 * counts, reconnect with MSI-X replay, and no descriptor leaks.
 * Exits 1 and names each failed check if anything fails.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../ptbhyve_plugin.h"

static int failures, checks;

#define CHECK(cond, ...) do {						\
	checks++;							\
	if (!(cond)) {							\
		failures++;						\
		fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__,	\
		    #cond);						\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
	}								\
} while (0)

/* ---- Codec ------------------------------------------------------------- */

/* Parse hex digits (spaces ignored) into b, then zero-fill up to size. */
static size_t
image(uint8_t *b, size_t size, const char *hex)
{
	size_t n = 0;
	unsigned hi = 0;
	int half = 0;

	memset(b, 0, size);
	for (; *hex != '\0'; hex++) {
		unsigned v;

		if (*hex == ' ')
			continue;
		if (*hex >= '0' && *hex <= '9')
			v = (unsigned)(*hex - '0');
		else
			v = (unsigned)(*hex - 'a' + 10);
		if (!half) {
			hi = v;
			half = 1;
		} else {
			if (n < size)
				b[n] = (uint8_t)(hi << 4 | v);
			n++;
			half = 0;
		}
	}
	return n;
}

static void
dump(const char *what, const uint8_t *b, size_t n)
{
	size_t i;

	fprintf(stderr, "  %s:", what);
	for (i = 0; i < n; i++)
		fprintf(stderr, "%s%02x", i % 4 ? "" : " ", b[i]);
	fputc('\n', stderr);
}

static void
check_image(const char *name, const struct ptbp_msg *m, size_t size,
    const char *hex)
{
	uint8_t want[PTBP_MAX_MSG], got[PTBP_MAX_MSG];
	struct ptbp_msg back;
	size_t n, k;

	k = image(want, size, hex);
	CHECK(k <= size, "%s: image longer than the message", name);
	CHECK(ptbp_msg_size(m->type) == size, "%s: ptbp_msg_size %zu, doc %zu",
	    name, ptbp_msg_size(m->type), size);
	memset(got, 0xee, sizeof(got));
	n = ptbp_encode(m, got, sizeof(got));
	CHECK(n == size, "%s: encoded %zu bytes, want %zu", name, n, size);
	if (n == size && memcmp(got, want, size) != 0) {
		CHECK(0, "%s: byte image differs", name);
		dump("got ", got, size);
		dump("want", want, size);
	}
	CHECK(got[size] == 0xee, "%s: encoder wrote past the message", name);
	CHECK(ptbp_decode(want, size, &back) == 0, "%s: decode failed", name);
	CHECK(memcmp(&back, m, sizeof(back)) == 0,
	    "%s: decode(image) != message", name);
	CHECK(ptbp_decode(want, size - 1, &back) < 0 && errno == EPROTO,
	    "%s: decode accepted %zu bytes", name, size - 1);
	CHECK(ptbp_decode(want, size + 1, &back) < 0,
	    "%s: decode accepted %zu bytes", name, size + 1);
	CHECK(ptbp_encode(m, got, size - 1) == 0,
	    "%s: encode into a short buffer", name);
}

static void
test_codec(void)
{
	struct ptbp_msg m;
	uint8_t b[PTBP_MAX_MSG];
	char s[300];
	unsigned t;

	CHECK(ptbp_get16((const uint8_t *)"\x34\x12") == 0x1234, "get16");
	CHECK(ptbp_get32((const uint8_t *)"\x78\x56\x34\x12") == 0x12345678u,
	    "get32");
	CHECK(ptbp_get64((const uint8_t *)"\x08\x07\x06\x05\x04\x03\x02\x01")
	    == 0x0102030405060708ull, "get64");
	ptbp_put64(b, 0x1122334455667788ull);
	CHECK(memcmp(b, "\x88\x77\x66\x55\x44\x33\x22\x11", 8) == 0, "put64");

	memset(&m, 0, sizeof(m));
	m.type = PTBP_HELLO;
	m.seq = 0x01020304;
	m.u.hello.magic = PTBP_MAGIC;
	m.u.hello.version = 1;
	strcpy(m.u.hello.vm, "vm0");
	check_image("HELLO", &m, 80,
	    "0100 0000 04030201 50425450 01000000 766d30");

	memset(&m, 0, sizeof(m));
	m.type = PTBP_WELCOME;
	m.seq = 7;
	m.u.welcome.version = 1;
	m.u.welcome.ntx = 2;
	m.u.welcome.nrx = 0x0103;
	memcpy(m.u.welcome.mac, "\x02\xaa\xbb\xcc\xdd\xee", 6);
	m.u.welcome.memsize = 0x0000000201000000ull;
	strcpy(m.u.welcome.segname, "ptnetmap-memdev");
	check_image("WELCOME", &m, 64,
	    "0200 0000 07000000 01000000 0200 0301 02aabbccddee 0000"
	    " 00000001 02000000 7074 6e65 746d 6170 2d6d 656d 6465 76");

	memset(&m, 0, sizeof(m));
	m.type = PTBP_READ;
	m.seq = 0xfffffffe;
	m.u.read.fn = 1;
	m.u.read.size = 4;
	m.u.read.off = 0x11223344;
	check_image("READ", &m, 16, "0300 0000 feffffff 01 04 0000 44332211");

	memset(&m, 0, sizeof(m));
	m.type = PTBP_VALUE;
	m.seq = 9;
	m.u.value.val = 0xdeadbeef;
	check_image("VALUE", &m, 12, "0400 0000 09000000 efbeadde");

	memset(&m, 0, sizeof(m));
	m.type = PTBP_WRITE;
	m.flags = 0xa5b6;
	m.seq = 0x100;
	m.u.write.fn = 0;
	m.u.write.size = 4;
	m.u.write.off = 4;
	m.u.write.val = 0x80000001;
	check_image("WRITE", &m, 20,
	    "0500 b6a5 00010000 00 04 0000 04000000 01000080");

	memset(&m, 0, sizeof(m));
	m.type = PTBP_DONE;
	m.seq = 0x100;
	m.u.done.status = 0;
	check_image("DONE", &m, 12, "0600 0000 00010000 00000000");

	memset(&m, 0, sizeof(m));
	m.type = PTBP_MSIX;
	m.seq = 3;
	m.u.msix.vector = 0x0102;
	m.u.msix.flags = 0x0007;
	m.u.msix.data = 0x4021;
	m.u.msix.addr = 0x00000001fee01000ull;
	check_image("MSIX", &m, 24,
	    "0700 0000 03000000 0201 0700 21400000 0010e0fe 01000000");

	memset(&m, 0, sizeof(m));
	m.type = PTBP_RESET;
	m.seq = 0x0a0b0c0d;
	check_image("RESET", &m, 8, "0800 0000 0d0c0b0a");

	memset(&m, 0, sizeof(m));
	m.type = PTBP_GOODBYE;
	m.seq = 1;
	check_image("GOODBYE", &m, 8, "0900 0000 01000000");

	memset(&m, 0, sizeof(m));
	m.type = PTBP_ERROR;
	m.seq = 1;
	m.u.error.err = 43;
	strcpy(m.u.error.msg, "version 2");
	check_image("ERROR", &m, 140,
	    "0a00 0000 01000000 2b000000 76657273696f6e2032");

	/* Full-length string fields: no NUL on the wire, NUL after decode. */
	memset(&m, 0, sizeof(m));
	m.type = PTBP_HELLO;
	memset(m.u.hello.vm, 'v', PTBP_VMNAME_LEN);
	CHECK(ptbp_encode(&m, b, sizeof(b)) == 80, "HELLO full name");
	CHECK(b[16] == 'v' && b[79] == 'v', "HELLO full name bytes");
	CHECK(ptbp_decode(b, 80, &m) == 0 && strlen(m.u.hello.vm) == 64,
	    "HELLO full name decodes to 64 chars");

	/* Over-long strings are truncated to the field. */
	memset(&m, 0, sizeof(m));
	m.type = PTBP_ERROR;
	memset(s, 'x', sizeof(s) - 1);
	s[sizeof(s) - 1] = '\0';
	memcpy(m.u.error.msg, s, PTBP_ERRMSG_LEN);
	CHECK(ptbp_encode(&m, b, sizeof(b)) == 140, "ERROR full message");
	CHECK(ptbp_decode(b, 140, &m) == 0 &&
	    strlen(m.u.error.msg) == PTBP_ERRMSG_LEN, "ERROR 128 chars");

	/* Garbage after the NUL of a string field is ignored. */
	image(b, 80, "0100 0000 00000000 50425450 01000000 61620063");
	CHECK(ptbp_decode(b, 80, &m) == 0 && strcmp(m.u.hello.vm, "ab") == 0,
	    "HELLO name stops at the NUL");

	/* Rejections. */
	CHECK(ptbp_decode(b, 0, &m) < 0, "decode 0 bytes");
	CHECK(ptbp_decode(b, 7, &m) < 0, "decode 7 bytes");
	for (t = 0; t <= 12; t++) {
		size_t n = ptbp_msg_size((uint16_t)t);

		CHECK((t >= 1 && t <= 10) == (n != 0), "msg_size(%u) = %zu",
		    t, n);
		memset(b, 0, 200);
		ptbp_put16(b, (uint16_t)t);
		if (n == 0) {
			CHECK(ptbp_decode(b, 8, &m) < 0 && errno == EPROTO,
			    "decode unknown type %u", t);
			CHECK(ptbp_decode(b, 12, &m) < 0,
			    "decode unknown type %u, 12 bytes", t);
		} else {
			CHECK(ptbp_decode(b, n, &m) == 0 && m.type == t,
			    "decode type %u at %zu bytes", t, n);
		}
	}
	ptbp_put16(b, 0xffff);
	CHECK(ptbp_decode(b, 8, &m) < 0, "decode type 0xffff");
	ptbp_put16(b, PTBP_VALUE);
	CHECK(ptbp_decode(b, PTBP_MAX_MSG, &m) < 0, "decode a 4096-byte VALUE");
	memset(&m, 0, sizeof(m));
	m.type = 11;
	CHECK(ptbp_encode(&m, b, sizeof(b)) == 0 && errno == EINVAL,
	    "encode unknown type");
}

/* ---- Fake daemon ------------------------------------------------------- */

/* READ offsets that make the fake daemon misbehave. */
#define BAD_SHORT	0xf00	/* 10-byte reply */
#define BAD_SEQ		0xf04	/* VALUE with the wrong seq */
#define BAD_TYPE	0xf08	/* 12-byte message of type 99 */
#define BAD_FD		0xf0c	/* VALUE carrying a descriptor */
#define BAD_EOF		0xf10	/* close without a reply */
#define BAD_GOODBYE	0xf14	/* GOODBYE instead of VALUE */
#define BAD_DONE	0xf18	/* DONE instead of VALUE */
#define BAD_SILENT	0xf1c	/* no reply at all */
#define BAD_HUGE	0xf20	/* 5000-byte reply */
#define BAD_LONG	0xf24	/* VALUE with 4 bytes too many */
#define BAD_ERROR	0xf28	/* ERROR instead of VALUE */
#define DROP_AFTER	0xf80	/* proper VALUE, then close the connection */

#define MAXLOG		256

struct fake {
	/* configuration */
	uint16_t ntx, nrx;
	int nfds;		/* descriptors to send; -1: ntx + nrx */
	int eventfd;		/* kick descriptors are eventfds (Linux) */
	uint32_t version;
	uint64_t memsize;
	uint8_t mac[6];
	char segname[33];
	uint32_t hello_errno;	/* != 0: answer HELLO with ERROR */
	char hello_msg[129];
	uint16_t hello_reply;	/* != 0: answer HELLO with this bare type */

	/* state */
	int lfd;		/* listening socket, or -1 */
	int pfd;		/* socketpair end, or -1 */
	char path[108];
	pthread_t thr;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	int conns, closed;	/* connections accepted and closed */
	int kick[PTBP_MAX_KICKS + 4];	/* our ends of the kick channels */
	int nkick;
	struct ptbp_msg log[MAXLOG];
	int nlog;
};

static struct fake *
fake_new(uint16_t ntx, uint16_t nrx)
{
	struct fake *f = calloc(1, sizeof(*f));
	int i;

	if (f == NULL)
		abort();
	f->ntx = ntx;
	f->nrx = nrx;
	f->nfds = -1;
	f->version = PTBP_VERSION;
	f->memsize = 1u << 24;
	memcpy(f->mac, "\x02\x00\x5e\x10\x20\x3f", 6);
	strcpy(f->segname, "ptnetmap");
	f->lfd = f->pfd = -1;
	for (i = 0; i < PTBP_MAX_KICKS + 4; i++)
		f->kick[i] = -1;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	return f;
}

static int
fsend(int fd, const struct ptbp_msg *m, const int *fds, int nfds)
{
	uint8_t b[PTBP_MAX_MSG];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * (PTBP_MAX_KICKS + 4))];
	} cb;
	struct msghdr mh;
	struct iovec iov;
	size_t n = ptbp_encode(m, b, sizeof(b));

	memset(&mh, 0, sizeof(mh));
	memset(&cb, 0, sizeof(cb));
	iov.iov_base = b;
	iov.iov_len = n;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfds > 0) {
		struct cmsghdr *c;

		mh.msg_control = cb.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	return sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

static void
fsend_raw(int fd, const void *b, size_t n)
{
	(void)send(fd, b, n, MSG_NOSIGNAL);
}

/* Wait until fd is readable or the fake is stopped; 0 if readable. */
static int
fwait(struct fake *f, int fd)
{
	struct pollfd p;

	for (;;) {
		int stop;

		pthread_mutex_lock(&f->mu);
		stop = f->stop;
		pthread_mutex_unlock(&f->mu);
		if (stop)
			return -1;
		p.fd = fd;
		p.events = POLLIN;
		p.revents = 0;
		if (poll(&p, 1, 20) > 0)
			return 0;
	}
}

static void
fake_hello(struct fake *f, int cfd, const struct ptbp_msg *req)
{
	struct ptbp_msg m;
	int wr[PTBP_MAX_KICKS + 4];
	int n = f->nfds >= 0 ? f->nfds : f->ntx + f->nrx;
	int i;

	memset(&m, 0, sizeof(m));
	m.seq = req->seq;
	if (f->hello_reply != 0) {
		m.type = f->hello_reply;
		(void)fsend(cfd, &m, NULL, 0);
		return;
	}
	if (f->hello_errno != 0) {
		m.type = PTBP_ERROR;
		m.u.error.err = f->hello_errno;
		strcpy(m.u.error.msg, f->hello_msg);
		(void)fsend(cfd, &m, NULL, 0);
		return;
	}
	pthread_mutex_lock(&f->mu);
	for (i = 0; i < f->nkick; i++)
		close(f->kick[i]);
	for (i = 0; i < n; i++) {
#ifdef __linux__
		if (f->eventfd) {
			f->kick[i] = wr[i] = eventfd(0, EFD_NONBLOCK);
			continue;
		}
#endif
		{
			int p[2];

			if (pipe(p) < 0)
				abort();
			(void)fcntl(p[0], F_SETFL, O_NONBLOCK);
			f->kick[i] = p[0];
			wr[i] = p[1];
		}
	}
	f->nkick = n;
	pthread_mutex_unlock(&f->mu);
	m.type = PTBP_WELCOME;
	m.u.welcome.version = f->version;
	m.u.welcome.ntx = f->ntx;
	m.u.welcome.nrx = f->nrx;
	memcpy(m.u.welcome.mac, f->mac, 6);
	m.u.welcome.memsize = f->memsize;
	strcpy(m.u.welcome.segname, f->segname);
	(void)fsend(cfd, &m, wr, n);
	if (!f->eventfd)
		for (i = 0; i < n; i++)
			close(wr[i]);
}

/* Serve one connection until it closes or the fake stops. */
static void
fake_serve(struct fake *f, int cfd)
{
	uint8_t b[PTBP_MAX_MSG + 8];
	struct ptbp_msg req, rep;
	ssize_t n;

	while (fwait(f, cfd) == 0) {
		n = recv(cfd, b, sizeof(b), 0);
		if (n <= 0 || ptbp_decode(b, (size_t)n, &req) < 0)
			break;
		pthread_mutex_lock(&f->mu);
		if (f->nlog < MAXLOG)
			f->log[f->nlog++] = req;
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);

		memset(&rep, 0, sizeof(rep));
		rep.seq = req.seq;
		if (req.type == PTBP_HELLO) {
			fake_hello(f, cfd, &req);
		} else if (req.type == PTBP_READ) {
			rep.type = PTBP_VALUE;
			rep.u.value.val = 0xa0000000u |
			    (uint32_t)req.u.read.fn << 16 | req.u.read.off;
			switch (req.u.read.off) {
			case BAD_SHORT:
				fsend_raw(cfd, "\x04\x00\x00\x00\x01\x00\x00\x00"
				    "\x01\x02", 10);
				break;
			case BAD_SEQ:
				rep.seq++;
				(void)fsend(cfd, &rep, NULL, 0);
				break;
			case BAD_TYPE:
				memset(b, 0, 12);
				ptbp_put16(b, 99);
				ptbp_put32(b + 4, req.seq);
				fsend_raw(cfd, b, 12);
				break;
			case BAD_FD: {
				int p[2];

				if (pipe(p) < 0)
					abort();
				(void)fsend(cfd, &rep, &p[1], 1);
				close(p[0]);
				close(p[1]);
				break;
			}
			case BAD_EOF:
				goto out;
			case BAD_GOODBYE:
				rep.type = PTBP_GOODBYE;
				(void)fsend(cfd, &rep, NULL, 0);
				break;
			case BAD_DONE:
				rep.type = PTBP_DONE;
				(void)fsend(cfd, &rep, NULL, 0);
				break;
			case BAD_SILENT:
				break;
			case BAD_HUGE:
				memset(b, 0, 5000 > sizeof(b) ? sizeof(b) : 5000);
				ptbp_put16(b, PTBP_VALUE);
				ptbp_put32(b + 4, req.seq);
				{
					static uint8_t big[5000];

					memcpy(big, b, 8);
					fsend_raw(cfd, big, sizeof(big));
				}
				break;
			case BAD_LONG:
				(void)ptbp_encode(&rep, b, sizeof(b));
				fsend_raw(cfd, b, PTBP_VALUE_SIZE + 4);
				break;
			case BAD_ERROR:
				rep.type = PTBP_ERROR;
				rep.u.error.err = 5;
				strcpy(rep.u.error.msg, "no");
				(void)fsend(cfd, &rep, NULL, 0);
				break;
			case DROP_AFTER:
				(void)fsend(cfd, &rep, NULL, 0);
				goto out;
			default:
				(void)fsend(cfd, &rep, NULL, 0);
				break;
			}
		} else if (req.type == PTBP_WRITE || req.type == PTBP_RESET) {
			rep.type = PTBP_DONE;
			(void)fsend(cfd, &rep, NULL, 0);
		} else if (req.type == PTBP_GOODBYE) {
			break;
		} else if (req.type != PTBP_MSIX) {
			break;
		}
	}
out:
	close(cfd);
	pthread_mutex_lock(&f->mu);
	f->closed++;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static void *
fake_main(void *arg)
{
	struct fake *f = arg;

	if (f->pfd >= 0) {
		pthread_mutex_lock(&f->mu);
		f->conns++;
		pthread_mutex_unlock(&f->mu);
		fake_serve(f, f->pfd);
		return NULL;
	}
	while (fwait(f, f->lfd) == 0) {
		int c = accept(f->lfd, NULL, NULL);

		if (c < 0)
			continue;
		pthread_mutex_lock(&f->mu);
		f->conns++;
		pthread_mutex_unlock(&f->mu);
		fake_serve(f, c);
	}
	return NULL;
}

/* Start on a socketpair; returns the client's end. */
static int
fake_start_pair(struct fake *f)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0) {
		perror("socketpair");
		exit(1);
	}
	f->pfd = sv[0];
	if (pthread_create(&f->thr, NULL, fake_main, f) != 0)
		abort();
	return sv[1];
}

static void
fake_start_listen(struct fake *f, const char *path)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, path);
	strcpy(f->path, path);
	f->lfd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (f->lfd < 0 ||
	    bind(f->lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(f->lfd, 4) < 0) {
		perror("fake daemon socket");
		exit(1);
	}
	if (pthread_create(&f->thr, NULL, fake_main, f) != 0)
		abort();
}

static void
fake_stop(struct fake *f)
{
	int i;

	pthread_mutex_lock(&f->mu);
	f->stop = 1;
	pthread_mutex_unlock(&f->mu);
	pthread_join(f->thr, NULL);
	if (f->lfd >= 0) {
		close(f->lfd);
		unlink(f->path);
	}
	for (i = 0; i < f->nkick; i++)
		close(f->kick[i]);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free(f);
}

/* Wait (up to 2 s) until the log holds n messages; returns the count. */
static int
wait_log(struct fake *f, int n)
{
	struct timespec ts;
	int got;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 2;
	pthread_mutex_lock(&f->mu);
	while (f->nlog < n &&
	    pthread_cond_timedwait(&f->cv, &f->mu, &ts) == 0)
		;
	got = f->nlog;
	pthread_mutex_unlock(&f->mu);
	return got;
}

static int
wait_closed(struct fake *f, int n)
{
	struct timespec ts;
	int got;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 2;
	pthread_mutex_lock(&f->mu);
	while (f->closed < n &&
	    pthread_cond_timedwait(&f->cv, &f->mu, &ts) == 0)
		;
	got = f->closed;
	pthread_mutex_unlock(&f->mu);
	return got;
}

static struct ptbp_msg
logged(struct fake *f, int i)
{
	struct ptbp_msg m;

	memset(&m, 0, sizeof(m));
	pthread_mutex_lock(&f->mu);
	if (i < f->nlog)
		m = f->log[i];
	pthread_mutex_unlock(&f->mu);
	return m;
}

/* Read a kick channel: the 8-byte value, or 0 if nothing is pending. */
static uint64_t
kick_value(struct fake *f, int i)
{
	uint64_t v = 0, sum = 0;
	int fd;

	pthread_mutex_lock(&f->mu);
	fd = f->kick[i];
	pthread_mutex_unlock(&f->mu);
	while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		sum += v;
	return sum;
}

/* All kick channels are closed at the client's end (EOF on our pipes). */
static int
kicks_closed(struct fake *f, int n)
{
	int i;
	char c;

	for (i = 0; i < n; i++) {
		struct pollfd p;

		/* Our write ends may still be closing in the fake's thread. */
		p.fd = f->kick[i];
		p.events = POLLIN;
		p.revents = 0;
		(void)poll(&p, 1, 2000);
		if (read(f->kick[i], &c, 1) != 0)
			return 0;
	}
	return 1;
}

static int
count_fds(void)
{
	int fd, n = 0;

	for (fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			n++;
	return n;
}

/* ---- Client tests ------------------------------------------------------ */

static struct ptbp_dev dev;

static void
test_basic(int use_eventfd)
{
	struct ptbp_dev *d = &dev;
	struct fake *f = fake_new(2, 1);
	struct ptbp_msg m;
	int fd, i, n;

	f->eventfd = use_eventfd;
	fd = fake_start_pair(f);
	CHECK(ptbp_attach(d, fd, "vm0") == 0, "attach: %s", d->err);
	CHECK(ptbp_is_up(d), "up after attach");
	m = logged(f, 0);
	CHECK(m.type == PTBP_HELLO && m.u.hello.magic == PTBP_MAGIC &&
	    m.u.hello.version == 1 && strcmp(m.u.hello.vm, "vm0") == 0,
	    "HELLO as sent: type %u magic %x version %u vm %s", m.type,
	    m.u.hello.magic, m.u.hello.version, m.u.hello.vm);
	CHECK(d->ntx == 2 && d->nrx == 1, "geometry %u/%u", d->ntx, d->nrx);
	CHECK(memcmp(d->mac, "\x02\x00\x5e\x10\x20\x3f", 6) == 0, "mac");
	CHECK(d->memsize == (1u << 24), "memsize %llu",
	    (unsigned long long)d->memsize);
	CHECK(strcmp(d->segname, "ptnetmap") == 0, "segname %s", d->segname);
	for (i = 0; i < 3; i++)
		CHECK(d->kick[i] >= 0, "kick fd %d", i);
	CHECK(d->kick[3] == -1, "no 4th kick fd");

	/* Kicks: no message, the daemon's end becomes readable with 1. */
	for (i = 0; i < 3; i++) {
		CHECK(kick_value(f, i) == 0, "kick %d idle", i);
		ptbp_write(d, PTBP_FN_PTNET, 128 + 4 * (uint32_t)i, 1);
		CHECK(kick_value(f, i) == 1, "kick %d arrived", i);
	}
	ptbp_write(d, PTBP_FN_PTNET, 132, 1);
	ptbp_write(d, PTBP_FN_PTNET, 132, 7);
	CHECK(kick_value(f, 1) == 2, "two kicks on ring 1 (value 1 each)");
	CHECK(kick_value(f, 0) == 0 && kick_value(f, 2) == 0,
	    "other rings not kicked");

	/* Register round trips. */
	CHECK(ptbp_read(d, 0, 8) == 0xa0000008u, "read ptnet 8");
	CHECK(ptbp_read(d, 1, 0x10) == 0xa0010010u, "read memdev 0x10");
	CHECK(ptbp_read(d, 0, 4) == 0xa0000004u, "PTCTL read while up");
	n = wait_log(f, 4);
	CHECK(n == 4, "3 reads logged after HELLO (no kick messages): %d", n);
	m = logged(f, 2);
	CHECK(m.type == PTBP_READ && m.u.read.fn == 1 && m.u.read.size == 4 &&
	    m.u.read.off == 0x10, "READ as sent");
	CHECK(m.seq == logged(f, 1).seq + 1, "seq increments");

	ptbp_write(d, 0, 4, 0x12345678);
	m = logged(f, 4);
	CHECK(m.type == PTBP_WRITE && m.u.write.fn == 0 &&
	    m.u.write.size == 4 && m.u.write.off == 4 &&
	    m.u.write.val == 0x12345678, "WRITE as sent");
	/* Not kick registers: ring 3 does not exist; unaligned; memdev. */
	ptbp_write(d, 0, 128 + 12, 1);
	ptbp_write(d, 0, 130, 1);
	ptbp_write(d, 1, 128, 1);
	CHECK(wait_log(f, 8) == 8, "non-kick writes are messages");
	CHECK(logged(f, 5).u.write.off == 140 && logged(f, 6).u.write.off ==
	    130 && logged(f, 7).u.write.fn == 1, "non-kick writes as sent");

	ptbp_msix(d, 1, PTBP_MSIX_ENABLED, 0xfee00000ull, 0x4041);
	CHECK(wait_log(f, 9) == 9, "MSIX sent");
	m = logged(f, 8);
	CHECK(m.type == PTBP_MSIX && m.u.msix.vector == 1 &&
	    m.u.msix.flags == PTBP_MSIX_ENABLED &&
	    m.u.msix.addr == 0xfee00000ull && m.u.msix.data == 0x4041,
	    "MSIX as sent");
	CHECK(d->msix[1].set && !d->msix[0].set, "MSI-X shadow");
	ptbp_msix(d, 3, 0, 0, 0);
	CHECK(d->err[0] != '\0', "vector 3 rejected");

	CHECK(ptbp_reset(d) == 0, "reset: %s", d->err);
	CHECK(logged(f, 9).type == PTBP_RESET, "RESET sent (no MSIX for 3)");

	/* A malformed reply: link down; PTCTL reads ENXIO, others 0. */
	CHECK(ptbp_read(d, 0, BAD_SHORT) == 0, "malformed reply reads 0");
	CHECK(!ptbp_is_up(d), "link down after a malformed reply");
	CHECK(d->err[0] != '\0', "error message set");
	for (i = 0; i < 3; i++)
		CHECK(d->kick[i] == -1, "kick %d closed at link down", i);
	CHECK(ptbp_read(d, 0, PTBP_PTNET_PTCTL) == PTBP_ENXIO,
	    "PTCTL reads ENXIO when down");
	CHECK(ptbp_read(d, 0, 8) == 0, "read 0 when down");
	CHECK(ptbp_read(d, 1, 4) == 0, "memdev offset 4 is not PTCTL");
	ptbp_write(d, 0, 4, 1);
	ptbp_write(d, 0, 128, 1);
	ptbp_msix(d, 0, 0, 1, 2);
	CHECK(ptbp_reset(d) == -1, "reset fails when down");
	CHECK(ptbp_reconnect(d) == -1 && errno == ENOTCONN,
	    "no reconnect without a path");
	CHECK(!ptbp_is_up(d), "still down");
	ptbp_close(d);
	ptbp_close(d);
	fake_stop(f);
}

/* One malformed reply each: the read returns 0 and the link goes down. */
static void
test_bad_replies(void)
{
	static const uint32_t bad[] = { BAD_SHORT, BAD_SEQ, BAD_TYPE, BAD_FD,
	    BAD_EOF, BAD_GOODBYE, BAD_DONE, BAD_SILENT, BAD_HUGE, BAD_LONG,
	    BAD_ERROR };
	struct ptbp_dev *d = &dev;
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct fake *f = fake_new(1, 1);
		int fd = fake_start_pair(f);

		CHECK(ptbp_attach(d, fd, "vm1") == 0, "attach: %s", d->err);
		d->timeout_ms = 200;
		CHECK(ptbp_read(d, 0, 8) == 0xa0000008u, "read before %#x",
		    bad[i]);
		CHECK(ptbp_read(d, 0, bad[i]) == 0, "bad reply %#x reads 0",
		    bad[i]);
		CHECK(!ptbp_is_up(d), "bad reply %#x: link down", bad[i]);
		CHECK(ptbp_read(d, 0, 4) == PTBP_ENXIO,
		    "bad reply %#x: PTCTL reads ENXIO", bad[i]);
		ptbp_close(d);
		fake_stop(f);
	}
}

static void
test_hello_errors(void)
{
	struct ptbp_dev *d = &dev;
	struct fake *f;
	int fd;

	/* ERROR: its errno and message. */
	f = fake_new(1, 1);
	f->hello_errno = 43;
	strcpy(f->hello_msg, "protocol version 1 not supported");
	fd = fake_start_pair(f);
	errno = 0;
	CHECK(ptbp_attach(d, fd, "vm2") == -1, "attach with ERROR fails");
	CHECK(errno == 43, "errno %d, want 43", errno);
	CHECK(strcmp(d->err, "protocol version 1 not supported") == 0,
	    "message \"%s\"", d->err);
	CHECK(!ptbp_is_up(d), "down after ERROR");
	ptbp_close(d);
	fake_stop(f);

	/* ERROR with errno 0 still fails. */
	f = fake_new(1, 1);
	f->hello_errno = 0;
	f->hello_reply = PTBP_DONE;
	fd = fake_start_pair(f);
	CHECK(ptbp_attach(d, fd, "vm2") == -1 && errno == EPROTO,
	    "DONE in reply to HELLO: errno %d", errno);
	fake_stop(f);

	/* Too few, too many and no descriptors: EPROTO, all closed. */
	{
		static const int nfds[] = { 2, 4, 0 };
		unsigned i;

		for (i = 0; i < 3; i++) {
			f = fake_new(2, 1);
			f->nfds = nfds[i];
			fd = fake_start_pair(f);
			errno = 0;
			CHECK(ptbp_attach(d, fd, "vm3") == -1 &&
			    errno == EPROTO, "WELCOME 3 rings, %d fds: "
			    "errno %d", nfds[i], errno);
			CHECK(strstr(d->err, "descriptors") != NULL,
			    "message \"%s\"", d->err);
			CHECK(kicks_closed(f, nfds[i]),
			    "%d received descriptors closed", nfds[i]);
			CHECK(d->kick[0] == -1, "no kick kept");
			fake_stop(f);
		}
	}

	/* Version 2 and a memsize that is not a power of two. */
	f = fake_new(1, 1);
	f->version = 2;
	fd = fake_start_pair(f);
	CHECK(ptbp_attach(d, fd, "vm4") == -1 && errno == EPROTONOSUPPORT,
	    "WELCOME version 2: errno %d", errno);
	CHECK(kicks_closed(f, 2), "descriptors closed (version)");
	fake_stop(f);
	f = fake_new(1, 1);
	f->memsize = 3 << 20;
	fd = fake_start_pair(f);
	CHECK(ptbp_attach(d, fd, "vm4") == -1 && errno == EPROTO,
	    "WELCOME memsize 3 MiB: errno %d", errno);
	fake_stop(f);
	f = fake_new(0, 0);
	fd = fake_start_pair(f);
	CHECK(ptbp_attach(d, fd, "vm4") == -1 && errno == EPROTO,
	    "WELCOME 0 rings: errno %d", errno);
	fake_stop(f);

	/* Bad arguments. */
	CHECK(ptbp_open(d, "/nonexistent/ptbhyve.sock", "vm5") == -1 &&
	    errno == ENOENT, "open a missing socket: errno %d", errno);
	CHECK(d->err[0] != '\0', "message for a missing socket");
	CHECK(ptbp_open(d, "/x", "") == -1 && errno == EINVAL, "empty VM");
	{
		char longname[80];

		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		CHECK(ptbp_open(d, "/x", longname) == -1 &&
		    errno == ENAMETOOLONG, "VM name of 79 bytes");
	}
}

/* Reconnect over a real socket path, with MSI-X replay. */
static void
test_reconnect(const char *dir)
{
	struct ptbp_dev *d = &dev;
	char path[200];
	struct fake *f;
	struct ptbp_msg m;
	int i;

	snprintf(path, sizeof(path), "%s/vm6.plugin", dir);
	f = fake_new(2, 2);
	fake_start_listen(f, path);
	CHECK(ptbp_open(d, path, "vm6") == 0, "open: %s", d->err);
	ptbp_msix(d, 0, PTBP_MSIX_MASKED, 0xfee00000ull, 0x30);
	ptbp_msix(d, 2, 0, 0xfee01000ull, 0x31);
	ptbp_msix(d, 0, 0, 0xfee00000ull, 0x32);
	ptbp_msix(d, 2, PTBP_MSIX_MASKED | PTBP_MSIX_ENABLED,
	    0xfee01000ull, 0x33);
	CHECK(ptbp_read(d, 0, 8) == 0xa0000008u, "read");
	CHECK(wait_log(f, 6) == 6, "HELLO, 4 MSIX, READ");

	/* The daemon drops the link between requests: the next request
	 * fails to send, reconnects, replays MSI-X and goes through. */
	CHECK(ptbp_read(d, 0, DROP_AFTER) == 0xa0000000u + DROP_AFTER,
	    "read, then the daemon drops");
	CHECK(wait_closed(f, 1) == 1, "daemon closed the connection");
	CHECK(ptbp_read(d, 0, 12) == 0xa000000cu, "read after the drop");
	CHECK(ptbp_is_up(d), "up again");
	CHECK(wait_log(f, 11) == 11, "HELLO, 2 MSIX, READ after the drop");
	m = logged(f, 7);
	CHECK(m.type == PTBP_HELLO, "HELLO again");
	m = logged(f, 8);
	CHECK(m.type == PTBP_MSIX && m.u.msix.vector == 0 &&
	    m.u.msix.flags == PTBP_MSIX_ENABLED &&
	    m.u.msix.addr == 0xfee00000ull && m.u.msix.data == 0x32,
	    "replay vector 0: vec %u flags %#x data %#x", m.u.msix.vector,
	    m.u.msix.flags, m.u.msix.data);
	m = logged(f, 9);
	CHECK(m.type == PTBP_MSIX && m.u.msix.vector == 2 &&
	    m.u.msix.flags == (PTBP_MSIX_MASKED | PTBP_MSIX_ENABLED) &&
	    m.u.msix.addr == 0xfee01000ull && m.u.msix.data == 0x33,
	    "replay vector 2");
	m = logged(f, 10);
	CHECK(m.type == PTBP_READ && m.u.read.off == 12, "then the READ");
	for (i = 0; i < 4; i++) {
		ptbp_write(d, 0, 128 + 4 * (uint32_t)i, 1);
		CHECK(kick_value(f, i) == 1, "new kick %d works", i);
	}
	fake_stop(f);

	/* The daemon is gone: link down, nothing blocks or crashes. */
	CHECK(ptbp_read(d, 0, 8) == 0, "read with the daemon gone");
	CHECK(!ptbp_is_up(d), "down with the daemon gone");
	CHECK(ptbp_read(d, 0, 4) == PTBP_ENXIO, "PTCTL ENXIO");
	ptbp_write(d, 0, 128, 1);
	ptbp_write(d, 0, 4, 1);
	ptbp_msix(d, 1, PTBP_MSIX_ENABLED, 0xfee02000ull, 0x34);
	CHECK(ptbp_reset(d) == -1, "reset with the daemon gone");
	CHECK(ptbp_reconnect(d) == -1 && errno == ENOENT,
	    "reconnect to a missing socket: errno %d", errno);

	/* It comes back: the next access reconnects and replays. */
	f = fake_new(2, 2);
	fake_start_listen(f, path);
	CHECK(ptbp_read(d, 1, 0) == 0xa0010000u, "read after the restart: %s",
	    d->err);
	CHECK(wait_log(f, 5) == 5, "HELLO, 3 MSIX, READ");
	CHECK(logged(f, 0).type == PTBP_HELLO, "HELLO");
	for (i = 0; i < 3; i++) {
		m = logged(f, 1 + i);
		CHECK(m.type == PTBP_MSIX && m.u.msix.vector == i,
		    "replay %d: type %u vector %u", i, m.type,
		    m.u.msix.vector);
	}
	CHECK(logged(f, 2).u.msix.data == 0x34 &&
	    logged(f, 2).u.msix.addr == 0xfee02000ull,
	    "vector 1, set while down, replayed");
	CHECK(logged(f, 3).u.msix.flags == (PTBP_MSIX_MASKED |
	    PTBP_MSIX_ENABLED), "vector 2 keeps its mask");
	CHECK(logged(f, 4).type == PTBP_READ, "then READ");

	/* Explicit reconnect to the same daemon. */
	CHECK(ptbp_reconnect(d) == 0, "reconnect: %s", d->err);
	CHECK(wait_log(f, 10) == 10, "GOODBYE, HELLO, 3 MSIX");
	CHECK(logged(f, 5).type == PTBP_GOODBYE &&
	    logged(f, 6).type == PTBP_HELLO, "GOODBYE then HELLO");
	fake_stop(f);

	/* A daemon with another geometry is refused. */
	f = fake_new(3, 2);
	fake_start_listen(f, path);
	CHECK(ptbp_reconnect(d) == -1 && errno == EPROTO,
	    "reconnect to 3/2 rings: errno %d", errno);
	CHECK(strstr(d->err, "changed") != NULL, "message \"%s\"", d->err);
	CHECK(!ptbp_is_up(d), "down after a refused WELCOME");
	CHECK(kicks_closed(f, 5), "its descriptors closed");
	CHECK(d->ntx == 2 && d->nrx == 2, "geometry kept");
	fake_stop(f);

	f = fake_new(2, 2);
	strcpy(f->segname, "other");
	fake_start_listen(f, path);
	CHECK(ptbp_reconnect(d) == -1 && errno == EPROTO,
	    "reconnect to another segment: errno %d", errno);
	fake_stop(f);

	/* Close: GOODBYE. */
	f = fake_new(2, 2);
	fake_start_listen(f, path);
	CHECK(ptbp_reconnect(d) == 0, "reconnect: %s", d->err);
	ptbp_close(d);
	CHECK(wait_log(f, 5) == 5 && logged(f, 4).type == PTBP_GOODBYE,
	    "GOODBYE on close");
	CHECK(!ptbp_is_up(d), "down after close");
	fake_stop(f);
}

int
main(void)
{
	char dir[] = "/tmp/ptbp-unit.XXXXXX";
	int fds0, fds1;

	setvbuf(stdout, NULL, _IONBF, 0);
	fds0 = count_fds();

	test_codec();
	test_basic(0);
#ifdef __linux__
	test_basic(1);
#endif
	test_bad_replies();
	test_hello_errors();
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_reconnect(dir);
	rmdir(dir);

	fds1 = count_fds();
	CHECK(fds0 == fds1, "descriptor leak: %d open at start, %d at end",
	    fds0, fds1);

	if (failures != 0) {
		fprintf(stderr, "unit: %d of %d checks FAILED\n", failures,
		    checks);
		return 1;
	}
	printf("unit: all %d checks passed\n", checks);
	return 0;
}
