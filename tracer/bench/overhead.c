// SPDX-License-Identifier: Apache-2.0
/* Per-call cost of a probed EVP call: N x (EVP_DigestInit_ex(SHA-256) + Final) on one
 * context. Run once untraced and once under craton-trace; the difference per call is
 * the uprobe + BPF program + ring buffer cost. Prints one JSON line. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 200000;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const EVP_MD *md = EVP_sha256();
	unsigned char out[EVP_MAX_MD_SIZE];
	unsigned int len;
	struct timespec a, b;

	EVP_DigestInit_ex(ctx, md, NULL); /* warm up: implicit fetch */
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) {
		EVP_DigestInit_ex(ctx, md, NULL);
		EVP_DigestFinal_ex(ctx, out, &len);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("{\"calls\":%ld,\"ns_per_call\":%.1f}\n", n,
	       ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
	EVP_MD_CTX_free(ctx);
	return 0;
}
