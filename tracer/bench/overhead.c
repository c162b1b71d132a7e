// SPDX-License-Identifier: Apache-2.0
/* Per-call cost of a probed EVP call: N x (EVP_DigestInit_ex(SHA-256) + Final) on one
 * context. Run once untraced and once under craton-trace; the difference per call is
 * the uprobe + BPF program + ring buffer cost. Prints one JSON line.
 *
 *   overhead [N] [wait|go] [RATE]
 *     wait: read one byte from stdin before the timed loop, so a tracer can be started
 *           with --pid of this process first; RATE: at most RATE calls per second. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 200000;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const EVP_MD *md = EVP_sha256();
	unsigned char out[EVP_MAX_MD_SIZE];
	unsigned int len;
	struct timespec a, b;
	double rate = argc > 3 ? atof(argv[3]) : 0;
	char c;

	EVP_DigestInit_ex(ctx, md, NULL); /* warm up: implicit fetch */
	if (argc > 2 && !strcmp(argv[2], "wait")) {
		printf("{\"waiting\":true}\n");
		fflush(stdout);
		if (read(0, &c, 1) < 0)
			return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) {
		if (rate > 0 && i % 64 == 0) {
			/* pace: call i is due at i / rate seconds after the start */
			for (;;) {
				clock_gettime(CLOCK_MONOTONIC, &b);
				if ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 >= (double)i / rate)
					break;
				if ((double)i / rate - ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9) > 0.0002)
					usleep(100);
			}
		}
		EVP_DigestInit_ex(ctx, md, NULL);
		EVP_DigestFinal_ex(ctx, out, &len);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("{\"calls\":%ld,\"ns_per_call\":%.1f,\"seconds\":%.3f}\n", n,
	       ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n,
	       (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
	EVP_MD_CTX_free(ctx);
	return 0;
}
