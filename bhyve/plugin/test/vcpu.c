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
 * vcpu: plays bhyve's vCPU side of one ptnet device, for the integration
 * tests.  Usage: vcpu SOCKETPATH VMNAME.  It opens the device, prints
 * "welcome NTX NRX MAC MEMSIZE SEGNAME" (or "error ERRNO MESSAGE" and exits
 * 1), then runs one command per stdin line and prints exactly one reply line
 * per command:
 *
 *	read FN OFF			value V
 *	write FN OFF VAL		done
 *	kick I				kicked I	(ptbp_write(d, 0, 128 + 4 * I, 1))
 *	msix VEC FLAGS ADDR DATA	ok
 *	reset				done STATUS	(-1 if it failed)
 *	reconnect			welcome ... | error ERRNO MESSAGE
 *	state				up | down
 *	quit				(no reply: ptbp_close, exit 0; also at EOF)
 *
 * Numbers are decimal or 0x-prefixed hex; replies are decimal.  An unknown
 * command or bad arguments reply "bad COMMAND" (the first word).  Empty
 * lines are ignored.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ptbhyve_plugin.h"

static int
num(const char *s, uint64_t max, uint64_t *v)
{
	char *end;
	unsigned long long x;

	if (s == NULL || *s == '\0' || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		x = strtoull(s + 2, &end, 16);
	else
		x = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || x > max ||
	    (s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && s[2] == '\0'))
		return -1;
	*v = x;
	return 0;
}

static void
welcome(const struct ptbp_dev *d)
{
	printf("welcome %u %u %02x%02x%02x%02x%02x%02x %" PRIu64 " %s\n",
	    d->ntx, d->nrx, d->mac[0], d->mac[1], d->mac[2], d->mac[3],
	    d->mac[4], d->mac[5], d->memsize, d->segname);
}

static void
print_error(const struct ptbp_dev *d, int err)
{
	printf("error %d %s\n", err, d->err);
}

int
main(int argc, char **argv)
{
	static struct ptbp_dev dev;
	struct ptbp_dev *d = &dev;
	char line[1024];

	if (argc != 3) {
		fprintf(stderr, "usage: vcpu SOCKETPATH VMNAME\n");
		return 2;
	}
	if (ptbp_open(d, argv[1], argv[2]) < 0) {
		print_error(d, errno);
		fflush(stdout);
		return 1;
	}
	welcome(d);
	fflush(stdout);

	while (fgets(line, sizeof(line), stdin) != NULL) {
		char *w[6];
		int n = 0;
		char *p, *save = NULL;
		uint64_t a[4];
		int ok = 1, i;

		line[strcspn(line, "\r\n")] = '\0';
		for (p = strtok_r(line, " \t", &save); p != NULL;
		    p = strtok_r(NULL, " \t", &save)) {
			if (n == 6) {
				ok = 0;
				break;
			}
			w[n++] = p;
		}
		if (n == 0)
			continue;
		if (strcmp(w[0], "quit") == 0 && n == 1)
			break;
#define ARGS(cnt, ...) do {						\
		static const uint64_t mx[] = { __VA_ARGS__ };		\
		if (n != (cnt) + 1)					\
			ok = 0;						\
		for (i = 0; ok && i < (cnt); i++)			\
			if (num(w[i + 1], mx[i], &a[i]) < 0)		\
				ok = 0;					\
	} while (0)
		if (!ok) {
			/* too many words */
		} else if (strcmp(w[0], "read") == 0) {
			ARGS(2, 255, UINT32_MAX);
			if (ok)
				printf("value %" PRIu32 "\n",
				    ptbp_read(d, (int)a[0], (uint32_t)a[1]));
		} else if (strcmp(w[0], "write") == 0) {
			ARGS(3, 255, UINT32_MAX, UINT32_MAX);
			if (ok) {
				ptbp_write(d, (int)a[0], (uint32_t)a[1],
				    (uint32_t)a[2]);
				printf("done\n");
			}
		} else if (strcmp(w[0], "kick") == 0) {
			ARGS(1, (UINT32_MAX - 128) / 4);
			if (ok) {
				ptbp_write(d, PTBP_FN_PTNET,
				    (uint32_t)(PTBP_PTNET_KICK_BASE + 4 * a[0]),
				    1);
				printf("kicked %" PRIu64 "\n", a[0]);
			}
		} else if (strcmp(w[0], "msix") == 0) {
			ARGS(4, UINT16_MAX, UINT16_MAX, UINT64_MAX,
			    UINT32_MAX);
			if (ok) {
				ptbp_msix(d, (uint16_t)a[0], (uint16_t)a[1],
				    a[2], (uint32_t)a[3]);
				printf("ok\n");
			}
		} else if (strcmp(w[0], "reset") == 0) {
			if (n != 1)
				ok = 0;
			else
				printf("done %d\n", ptbp_reset(d));
		} else if (strcmp(w[0], "reconnect") == 0) {
			if (n != 1)
				ok = 0;
			else if (ptbp_reconnect(d) < 0)
				print_error(d, errno);
			else
				welcome(d);
		} else if (strcmp(w[0], "state") == 0) {
			if (n != 1)
				ok = 0;
			else
				printf("%s\n", ptbp_is_up(d) ? "up" : "down");
		} else {
			ok = 0;
		}
		if (!ok)
			printf("bad %s\n", w[0]);
		fflush(stdout);
	}
	ptbp_close(d);
	return 0;
}
