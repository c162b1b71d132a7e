// SPDX-License-Identifier: Apache-2.0
/*
 * craton-trace-loader: loads craton_trace.bpf.o (skeleton), attaches the OpenSSL uprobes
 * and the process/file tracepoints, and writes one JSON object per event to stdout.
 * It makes no policy decisions: the TypeScript front (`craton-trace`) tells it which
 * NIDs/names strict mode stops (--block-nid/--block-name) after classifying them with
 * the daemon's FIPS table, and classifies every event it prints.
 *
 *   craton-trace-loader [--pid N] [--skip-pid N] [--enforce off|strict|dry-run]
 *       [--signal KILL|STOP] [--block-nid N[:MASK]]... [--block-name NAME[:MASK]]...
 *       [--exempt PATH]... [--enforce-only PATH]...
 *       [--libcrypto PATH] [--libssl PATH] [--binary PATH]... [--all-pids]
 *       [--no-files] [--duration SECS] [--no-multi]
 *   craton-trace-loader --list-nids      # NID, short and long name of every object
 *
 * Output lines (all have "event_type"): ready, crypto_op, process_exec, process_exit,
 * file_open, attach_error, stats. Timestamps: "ts_us", microseconds since the epoch,
 * converted from the kernel's CLOCK_BOOTTIME with an offset refreshed every second.
 */
#define _GNU_SOURCE /* F_SETPIPE_SZ */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <getopt.h>
#include <libelf.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "craton_trace.h"
#include "craton_trace.skel.h"

#define MAX_LIST 1024

static struct {
	pid_t pid;
	pid_t skip_pid;
	int enforce;
	int sig;
	int block_nids[MAX_LIST], n_block_nids;
	__u32 block_nid_masks[MAX_LIST];
	const char *block_names[MAX_LIST];
	int n_block_names;
	const char *exempt[MAX_LIST];
	int n_exempt;
	const char *scope[MAX_LIST];
	int n_scope;
	const char *binaries[MAX_LIST];
	int n_binaries;
	const char *libcrypto;
	const char *libssl;
	bool all_pids;
	bool files;
	int duration;
	bool list_nids;
	bool verbose;
	bool no_multi;
} opt = {
	.sig = 9,
	.libcrypto = "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
	.libssl = "/usr/lib/x86_64-linux-gnu/libssl.so.3",
	.files = true,
};

static volatile sig_atomic_t stop;
static long long boot_to_real_ns;
static time_t offset_at;
static const char *(*nid2sn)(int);
static const char *(*nid2ln)(int);
static const void *(*digest_by_name)(const char *);
static const void *(*cipher_by_name)(const char *);

static void on_signal(int s) { (void)s; stop = 1; }

static long long ts_ns(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void refresh_offset(void)
{
	/* bracket the boot-time read with two real-time reads to halve the error */
	long long r1 = ts_ns(CLOCK_REALTIME), b = ts_ns(CLOCK_BOOTTIME), r2 = ts_ns(CLOCK_REALTIME);
	boot_to_real_ns = (r1 + (r2 - r1) / 2) - b;
	offset_at = time(NULL);
}

static void json_str(const char *s, size_t max)
{
	putchar('"');
	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static const char *probe_name(__u32 p)
{
	static const char *names[CT_P__MAX] = {
		[CT_P_DIGEST_INIT] = "EVP_DigestInit",
		[CT_P_DIGEST_INIT_EX] = "EVP_DigestInit_ex",
		[CT_P_DIGEST_INIT_EX2] = "EVP_DigestInit_ex2",
		[CT_P_CIPHER_INIT] = "EVP_CipherInit",
		[CT_P_CIPHER_INIT_EX] = "EVP_CipherInit_ex",
		[CT_P_CIPHER_INIT_EX2] = "EVP_CipherInit_ex2",
		[CT_P_ENCRYPT_INIT] = "EVP_EncryptInit",
		[CT_P_ENCRYPT_INIT_EX] = "EVP_EncryptInit_ex",
		[CT_P_ENCRYPT_INIT_EX2] = "EVP_EncryptInit_ex2",
		[CT_P_DECRYPT_INIT] = "EVP_DecryptInit",
		[CT_P_DECRYPT_INIT_EX] = "EVP_DecryptInit_ex",
		[CT_P_DECRYPT_INIT_EX2] = "EVP_DecryptInit_ex2",
		[CT_P_SIGN_INIT] = "EVP_DigestSignInit",
		[CT_P_SIGN_INIT_EX] = "EVP_DigestSignInit_ex",
		[CT_P_VERIFY_INIT] = "EVP_DigestVerifyInit",
		[CT_P_VERIFY_INIT_EX] = "EVP_DigestVerifyInit_ex",
		[CT_P_MD5_INIT] = "MD5_Init",
		[CT_P_MD4_INIT] = "MD4_Init",
		[CT_P_RC4_SET_KEY] = "RC4_set_key",
		[CT_P_DES_SET_KEY] = "DES_set_key",
		[CT_P_DES_SET_KEY_CHECKED] = "DES_set_key_checked",
		[CT_P_DES_SET_KEY_UNCHECKED] = "DES_set_key_unchecked",
		[CT_P_TLS_CIPHER] = "SSL_get_current_cipher",
		[CT_P_DERIVE_INIT_EX] = "EVP_PKEY_derive_init_ex",
	};
	return p < CT_P__MAX && names[p] ? names[p] : "unknown";
}

/* enum ct_probe of an entry point's name (0: unknown) */
static __u32 prog_id(const char *func)
{
	for (__u32 p = 1; p < CT_P__MAX; p++)
		if (!strcmp(probe_name(p), func))
			return p;
	return 0;
}

static const char *op_name(__u32 op)
{
	switch (op) {
	case CT_OP_DIGEST: return "DIGEST";
	case CT_OP_ENCRYPT: return "ENCRYPT";
	case CT_OP_DECRYPT: return "DECRYPT";
	case CT_OP_SIGN: return "SIGN";
	case CT_OP_VERIFY: return "VERIFY";
	case CT_OP_TLS_CIPHER: return "TLS_CIPHER";
	case CT_OP_KEY_EXCHANGE: return "KEY_EXCHANGE";
	default: return "CIPHER";
	}
}

static void common(const struct ct_event *e, const char *type)
{
	if (time(NULL) != offset_at)
		refresh_offset();
	printf("{\"event_type\":\"%s\",\"ts_us\":%lld,\"pid\":%u,\"tid\":%u,\"ppid\":%u,\"uid\":%u,"
	       "\"cgroup_id\":%llu,\"process\":",
	       type, ((long long)e->ts_boot_ns + boot_to_real_ns) / 1000, e->pid, e->tid, e->ppid,
	       e->uid, (unsigned long long)e->cgroup_id);
	json_str(e->comm, sizeof(e->comm));
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct ct_event *e = data;
	(void)ctx;

	if (size < sizeof(*e))
		return 0;
	switch (e->type) {
	case CT_EV_CRYPTO:
		common(e, "crypto_op");
		printf(",\"probe\":\"%s\",\"operation\":\"%s\",\"nid\":%d", probe_name(e->probe),
		       op_name(e->op), e->nid);
		if (e->nid > 0 && nid2sn) {
			const char *sn = nid2sn(e->nid), *ln = nid2ln ? nid2ln(e->nid) : NULL;
			if (sn) {
				printf(",\"sn\":");
				json_str(sn, 128);
			}
			if (ln) {
				printf(",\"ln\":");
				json_str(ln, 128);
			}
		}
		if (e->name[0]) {
			printf(",\"name\":");
			json_str(e->name, sizeof(e->name));
		}
		if (e->key_type[0]) {
			printf(",\"key_type\":");
			json_str(e->key_type, sizeof(e->key_type));
		}
		if (e->key_nid > 0 && nid2sn && nid2sn(e->key_nid)) {
			printf(",\"key_nid\":%d,\"key_sn\":", e->key_nid);
			json_str(nid2sn(e->key_nid), 128);
		}
		if (e->key_curve > 0 && nid2sn && nid2sn(e->key_curve)) {
			printf(",\"key_curve\":");
			json_str(nid2sn(e->key_curve), 128);
		}
		if (e->probe == CT_P_RC4_SET_KEY)
			printf(",\"key_bits\":%d", e->arg * 8);
		printf(",\"internal\":%s", e->flags & CT_F_INTERNAL ? "true" : "false");
		printf(",\"blocked\":%s,\"would_block\":%s,\"exempt\":%s,\"signal_error\":%s}\n",
		       e->flags & CT_F_BLOCKED ? "true" : "false",
		       e->flags & CT_F_WOULD_BLOCK ? "true" : "false",
		       e->flags & CT_F_EXEMPT ? "true" : "false",
		       e->flags & CT_F_SIGNAL_ERR ? "true" : "false");
		break;
	case CT_EV_EXEC: {
		char args[CT_ARGS_LEN + 1];
		int n = e->arg > 0 && e->arg <= CT_ARGS_LEN ? e->arg : 0;
		memcpy(args, e->args, n);
		args[n] = 0;
		for (int i = 0; i < n; i++)
			if (!args[i])
				args[i] = ' ';
		while (n > 0 && args[n - 1] == ' ')
			args[--n] = 0;
		common(e, "process_exec");
		printf(",\"binary\":");
		json_str(e->path, sizeof(e->path));
		printf(",\"cmdline\":");
		json_str(args, sizeof(args));
		printf(",\"cmdline_truncated\":%s}\n", e->arg >= CT_ARGS_LEN ? "true" : "false");
		break;
	}
	case CT_EV_EXIT:
		common(e, "process_exit");
		printf(",\"wait_status\":%d}\n", e->arg);
		break;
	case CT_EV_OPEN:
		common(e, e->flags & CT_F_OPEN_LIB ? "lib_load" : "file_open");
		printf(",\"path\":");
		json_str(e->path, sizeof(e->path));
		printf(",\"open_flags\":%d}\n", e->arg);
		break;
	}
	return 0;
}

/* ---- attach ---------------------------------------------------------------------- */

struct probe_spec {
	const char *func;
	bool retprobe;
	bool ssl;      /* lives in libssl, not libcrypto */
	bool required; /* a missing core symbol is an error in libcrypto */
	bool lowlevel; /* deprecated MD5_Init & co: not attached in static binaries */
};

static struct bpf_program *prog_for(struct craton_trace *s, const char *func)
{
	struct { const char *func; struct bpf_program *p; } map[] = {
		{ "EVP_DigestInit", s->progs.evp_digest_init },
		{ "EVP_DigestInit_ex", s->progs.evp_digest_init_ex },
		{ "EVP_DigestInit_ex2", s->progs.evp_digest_init_ex2 },
		{ "EVP_CipherInit", s->progs.evp_cipher_init },
		{ "EVP_CipherInit_ex", s->progs.evp_cipher_init_ex },
		{ "EVP_CipherInit_ex2", s->progs.evp_cipher_init_ex2 },
		{ "EVP_EncryptInit", s->progs.evp_encrypt_init },
		{ "EVP_EncryptInit_ex", s->progs.evp_encrypt_init_ex },
		{ "EVP_EncryptInit_ex2", s->progs.evp_encrypt_init_ex2 },
		{ "EVP_DecryptInit", s->progs.evp_decrypt_init },
		{ "EVP_DecryptInit_ex", s->progs.evp_decrypt_init_ex },
		{ "EVP_DecryptInit_ex2", s->progs.evp_decrypt_init_ex2 },
		{ "EVP_DigestSignInit", s->progs.evp_sign_init },
		{ "EVP_DigestSignInit_ex", s->progs.evp_sign_init_ex },
		{ "EVP_DigestVerifyInit", s->progs.evp_verify_init },
		{ "EVP_DigestVerifyInit_ex", s->progs.evp_verify_init_ex },
		{ "MD5_Init", s->progs.md5_init },
		{ "MD4_Init", s->progs.md4_init },
		{ "RC4_set_key", s->progs.rc4_set_key },
		{ "DES_set_key", s->progs.des_set_key },
		{ "DES_set_key_checked", s->progs.des_set_key_checked },
		{ "DES_set_key_unchecked", s->progs.des_set_key_unchecked },
		{ "SSL_get_current_cipher", s->progs.ssl_current_cipher_ret },
		{ "EVP_PKEY_derive_init_ex", s->progs.evp_derive_init_ex },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(map[i].func, func))
			return map[i].p;
	return NULL;
}

static const struct probe_spec probes[] = {
	{ "EVP_DigestInit", false, false, true, false },
	{ "EVP_DigestInit_ex", false, false, true, false },
	{ "EVP_DigestInit_ex2", false, false, false, false },
	{ "EVP_CipherInit", false, false, false, false },
	{ "EVP_CipherInit_ex", false, false, true, false },
	{ "EVP_CipherInit_ex2", false, false, false, false },
	{ "EVP_EncryptInit", false, false, false, false },
	{ "EVP_EncryptInit_ex", false, false, false, false },
	{ "EVP_EncryptInit_ex2", false, false, false, false },
	{ "EVP_DecryptInit", false, false, false, false },
	{ "EVP_DecryptInit_ex", false, false, false, false },
	{ "EVP_DecryptInit_ex2", false, false, false, false },
	{ "EVP_DigestSignInit", false, false, false, false },
	{ "EVP_DigestSignInit_ex", false, false, false, false },
	{ "EVP_DigestVerifyInit", false, false, false, false },
	{ "EVP_DigestVerifyInit_ex", false, false, false, false },
	{ "MD5_Init", false, false, false, true },
	{ "MD4_Init", false, false, false, true },
	{ "RC4_set_key", false, false, false, true },
	{ "DES_set_key", false, false, false, true },
	{ "DES_set_key_checked", false, false, false, true },
	{ "DES_set_key_unchecked", false, false, false, true },
	{ "SSL_get_current_cipher", true, true, false, false },
	{ "EVP_PKEY_derive_init_ex", false, false, false, false },
};

/*
 * Attachments: libbpf links (tracepoints' are in the skeleton; per-probe uprobes on
 * kernels without uprobe-multi) or raw uprobe_multi link fds.
 */
struct attachment {
	struct bpf_link *link;
	int fd;
};
static struct attachment links[256];
static int n_links;
static int n_tp_links; /* the first n_tp_links are the skeleton's tracepoints */
static bool use_multi; /* uprobe_multi links (kernel 6.6+) */

static void keep(struct bpf_link *l, int fd)
{
	if (n_links < (int)(sizeof(links) / sizeof(links[0]))) {
		links[n_links].link = l;
		links[n_links++].fd = fd;
	} else if (l) {
		bpf_link__destroy(l);
	} else {
		close(fd);
	}
}

/*
 * Detaching waits for an RCU grace period per link (~0.1 s here). With uprobe-multi
 * there are only two or three links; on the per-probe fallback there are ~23. One thread
 * per link lets independent grace periods overlap where the kernel allows it.
 */
static void *detach_one(void *arg)
{
	struct attachment *a = arg;

	if (a->link)
		bpf_link__destroy(a->link);
	else
		close(a->fd);
	return NULL;
}

static void detach_all(void)
{
	pthread_t th[sizeof(links) / sizeof(links[0])];
	bool started[sizeof(links) / sizeof(links[0])] = { false };

	for (int i = 0; i < n_links; i++)
		started[i] = n_links > 1 && pthread_create(&th[i], NULL, detach_one, &links[i]) == 0;
	for (int i = 0; i < n_links; i++) {
		if (started[i])
			pthread_join(th[i], NULL);
		else
			detach_one(&links[i]);
	}
	n_links = 0;
}

static void attach_error(const char *target, const char *func, int err)
{
	printf("{\"event_type\":\"attach_error\",\"target\":");
	json_str(target, 4096);
	printf(",\"function\":");
	json_str(func, 256);
	printf(",\"error\":");
	json_str(strerror(-err), 256);
	printf("}\n");
}

/* ---- uprobe-multi by raw bpf(2): Debian 12's libbpf 1.1 predates it ---------------- */

/* UAPI values (include/uapi/linux/bpf.h, kernel 6.6+); not in the 6.1 headers */
#define CT_BPF_TRACE_UPROBE_MULTI 48
#define CT_BPF_F_UPROBE_MULTI_RETURN 1u

/* the BPF_LINK_CREATE member of union bpf_attr for uprobe_multi */
struct ct_link_create_uprobe_multi {
	__u32 prog_fd;
	__u32 target_fd;
	__u32 attach_type;
	__u32 flags;
	__u64 path;
	__u64 offsets;
	__u64 ref_ctr_offsets;
	__u64 cookies;
	__u32 cnt;
	__u32 um_flags;
	__u32 pid;
	__u32 pad;
};

static int uprobe_multi_link(int prog_fd, const char *path, const unsigned long *offsets,
			     const __u64 *cookies, __u32 cnt, bool retprobe, pid_t pid)
{
	struct ct_link_create_uprobe_multi a;
	int fd;

	memset(&a, 0, sizeof(a));
	a.prog_fd = prog_fd;
	a.attach_type = CT_BPF_TRACE_UPROBE_MULTI;
	a.path = (__u64)(unsigned long)path;
	a.offsets = (__u64)(unsigned long)offsets;
	a.cookies = (__u64)(unsigned long)cookies;
	a.cnt = cnt;
	a.um_flags = retprobe ? CT_BPF_F_UPROBE_MULTI_RETURN : 0;
	a.pid = pid > 0 ? (__u32)pid : 0;
	fd = syscall(__NR_bpf, BPF_LINK_CREATE, &a, sizeof(a));
	return fd < 0 ? -errno : fd;
}

/* Does the kernel know uprobe_multi links? A program of that attach type linked to a
 * directory fails with EBADF (path checked) where it exists, EINVAL where it does not. */
static bool kernel_has_uprobe_multi(void)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, po, .expected_attach_type = CT_BPF_TRACE_UPROBE_MULTI);
	unsigned long off = 0;
	int prog, link;

	prog = bpf_prog_load(BPF_PROG_TYPE_KPROBE, "ct_probe_um", "GPL", insns, 2, &po);
	if (prog < 0)
		return false;
	link = uprobe_multi_link(prog, "/", &off, NULL, 1, false, 0);
	if (link >= 0)
		close(link);
	close(prog);
	return link == -EBADF;
}

/* File offsets of the defined functions `names` in the ELF file `path` (0: not found). */
static int func_offsets(const char *path, const char *const *names, int n, unsigned long *out)
{
	Elf *elf;
	Elf_Scn *scn = NULL;
	size_t nph;
	int fd, found = 0;

	memset(out, 0, sizeof(*out) * n);
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf || elf_getphdrnum(elf, &nph)) {
		if (elf)
			elf_end(elf);
		close(fd);
		return -EINVAL;
	}
	/* .dynsym first (exported entry points), then .symtab if present */
	for (int pass = 0; pass < 2; pass++) {
		while ((scn = elf_nextscn(elf, scn))) {
			GElf_Shdr sh;
			Elf_Data *d;

			if (!gelf_getshdr(scn, &sh) || sh.sh_type != (pass ? SHT_SYMTAB : SHT_DYNSYM))
				continue;
			d = elf_getdata(scn, NULL);
			for (size_t i = 0; d && sh.sh_entsize && i < sh.sh_size / sh.sh_entsize; i++) {
				GElf_Sym sym;
				const char *nm;

				if (!gelf_getsym(d, (int)i, &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC ||
				    sym.st_shndx == SHN_UNDEF || !sym.st_value)
					continue;
				nm = elf_strptr(elf, sh.sh_link, sym.st_name);
				if (!nm)
					continue;
				for (int k = 0; k < n; k++) {
					if (out[k] || strcmp(nm, names[k]))
						continue;
					/* virtual address -> file offset through the loadable segment */
					for (size_t p = 0; p < nph; p++) {
						GElf_Phdr ph;
						if (!gelf_getphdr(elf, (int)p, &ph) || ph.p_type != PT_LOAD)
							continue;
						if (sym.st_value >= ph.p_vaddr && sym.st_value < ph.p_vaddr + ph.p_memsz) {
							out[k] = sym.st_value - ph.p_vaddr + ph.p_offset;
							found++;
							break;
						}
					}
				}
			}
		}
		scn = NULL;
	}
	elf_end(elf);
	close(fd);
	return found;
}

static bool wanted(size_t i, bool is_ssl, bool any)
{
	/* a --binary (any) links OpenSSL statically: its low-level entry points are also
	 * called by its own EVP code, and caller-in-library cannot tell them apart */
	if (!any && probes[i].ssl != is_ssl)
		return false;
	if (any && probes[i].lowlevel)
		return false;
	return true;
}

/* all probes of one target with (at most) two uprobe_multi links: entries, returns */
static int attach_target_multi(struct craton_trace *s, const char *path, pid_t pid, bool is_ssl, bool any)
{
	enum { N = sizeof(probes) / sizeof(probes[0]) };
	const char *names[N];
	unsigned long offs[N], sel_offs[N];
	__u64 cookies[N];
	int ok = 0, r;

	for (size_t i = 0; i < N; i++)
		names[i] = probes[i].func;
	r = func_offsets(path, names, N, offs);
	if (r < 0) {
		attach_error(path, "*", r);
		return 0;
	}
	for (int ret = 0; ret < 2; ret++) {
		__u32 cnt = 0;
		struct bpf_program *prog = ret ? s->progs.ssl_current_cipher_ret : s->progs.ct_dispatch;
		int fd;

		for (size_t i = 0; i < N; i++) {
			if (!wanted(i, is_ssl, any) || probes[i].retprobe != (bool)ret)
				continue;
			if (!offs[i]) {
				if (probes[i].required && !any)
					attach_error(path, probes[i].func, -ENOENT);
				continue;
			}
			sel_offs[cnt] = offs[i];
			cookies[cnt++] = ((__u64)prog_id(probes[i].func) << CT_COOKIE_PROBE_SHIFT) |
					 (any ? 0 : CT_COOKIE_SHARED_LIB);
		}
		if (!cnt)
			continue;
		fd = uprobe_multi_link(bpf_program__fd(prog), path, sel_offs, cookies, cnt, ret, pid);
		if (fd < 0) {
			attach_error(path, ret ? "uprobe_multi (return)" : "uprobe_multi", fd);
			continue;
		}
		keep(NULL, fd);
		ok += cnt;
	}
	return ok;
}

/* attach every probe that exists in `path`; returns how many attached */
static int attach_target(struct craton_trace *s, const char *path, pid_t pid, bool is_ssl, bool any)
{
	int ok = 0;

	if (use_multi)
		return attach_target_multi(s, path, pid, is_ssl, any);
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		LIBBPF_OPTS(bpf_uprobe_opts, uo);
		struct bpf_link *l;

		if (!wanted(i, is_ssl, any))
			continue;
		uo.func_name = probes[i].func;
		uo.bpf_cookie = ((__u64)prog_id(probes[i].func) << CT_COOKIE_PROBE_SHIFT) |
				(any ? 0 : CT_COOKIE_SHARED_LIB);
		uo.retprobe = probes[i].retprobe;
		l = bpf_program__attach_uprobe_opts(prog_for(s, probes[i].func), pid, path, 0, &uo);
		if (!l) {
			int err = -errno;
			/* a binary (--binary) exports only some of these: report only required ones */
			if (probes[i].required && !any)
				attach_error(path, probes[i].func, err);
			continue;
		}
		keep(l, -1);
		ok++;
	}
	return ok;
}

/* ---- options --------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: craton-trace-loader [--pid N] [--skip-pid N] [--enforce off|strict|dry-run]\n"
		"  [--signal KILL|STOP] [--block-nid N[:MASK]]... [--block-name NAME[:MASK]]...\n"
		"  [--exempt PATH]... [--enforce-only PATH]...\n"
		"  [--libcrypto PATH] [--libssl PATH] [--binary PATH]... [--all-pids] [--no-files]\n"
		"  [--duration SECS] [--verbose] [--no-multi] | --list-nids\n");
}

static void add(const char **list, int *n, const char *v)
{
	if (*n >= MAX_LIST) {
		fprintf(stderr, "craton-trace-loader: too many values (max %d)\n", MAX_LIST);
		exit(2);
	}
	list[(*n)++] = v;
}

static void parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pid", required_argument, 0, 'p' },
		{ "skip-pid", required_argument, 0, 'P' },
		{ "enforce", required_argument, 0, 'e' },
		{ "signal", required_argument, 0, 's' },
		{ "block-nid", required_argument, 0, 'n' },
		{ "block-name", required_argument, 0, 'N' },
		{ "exempt", required_argument, 0, 'x' },
		{ "enforce-only", required_argument, 0, 'S' },
		{ "libcrypto", required_argument, 0, 'c' },
		{ "libssl", required_argument, 0, 'l' },
		{ "binary", required_argument, 0, 'b' },
		{ "all-pids", no_argument, 0, 'A' },
		{ "no-files", no_argument, 0, 'F' },
		{ "duration", required_argument, 0, 'd' },
		{ "list-nids", no_argument, 0, 'L' },
		{ "verbose", no_argument, 0, 'v' },
		{ "no-multi", no_argument, 0, 'M' },
		{ "help", no_argument, 0, 'h' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'p': opt.pid = atoi(optarg); break;
		case 'P': opt.skip_pid = atoi(optarg); break;
		case 'e':
			if (!strcmp(optarg, "off")) opt.enforce = CT_ENF_OFF;
			else if (!strcmp(optarg, "strict")) opt.enforce = CT_ENF_STRICT;
			else if (!strcmp(optarg, "dry-run")) opt.enforce = CT_ENF_DRYRUN;
			else { usage(stderr); exit(2); }
			break;
		case 's':
			if (!strcmp(optarg, "KILL")) opt.sig = SIGKILL;
			else if (!strcmp(optarg, "STOP")) opt.sig = SIGSTOP;
			else { usage(stderr); exit(2); }
			break;
		case 'n': {
			/* N or N:MASK (MASK: bit 1 << enum ct_op per blocked operation; default all) */
			char *colon = strchr(optarg, ':');
			if (opt.n_block_nids >= MAX_LIST) { fprintf(stderr, "too many --block-nid\n"); exit(2); }
			opt.block_nid_masks[opt.n_block_nids] = colon ? (__u32)strtoul(colon + 1, NULL, 0) : 0xffffffffu;
			opt.block_nids[opt.n_block_nids++] = atoi(optarg);
			break;
		}
		case 'N': add(opt.block_names, &opt.n_block_names, optarg); break;
		case 'x': add(opt.exempt, &opt.n_exempt, optarg); break;
		case 'S': add(opt.scope, &opt.n_scope, optarg); break;
		case 'c': opt.libcrypto = optarg; break;
		case 'l': opt.libssl = optarg; break;
		case 'b': add(opt.binaries, &opt.n_binaries, optarg); break;
		case 'A': opt.all_pids = true; break;
		case 'F': opt.files = false; break;
		case 'd': opt.duration = atoi(optarg); break;
		case 'L': opt.list_nids = true; break;
		case 'v': opt.verbose = true; break;
		case 'M': opt.no_multi = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (opt.n_binaries && !opt.pid && !opt.all_pids) {
		fprintf(stderr, "craton-trace-loader: --binary needs --pid N (or --all-pids)\n");
		exit(2);
	}
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && !opt.verbose)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static void *libcrypto_h;
static bool key_offsets_ok, curve_offsets_ok;

static void load_nid_names(void)
{
	void *h = dlopen(opt.libcrypto, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		h = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return;
	nid2sn = (const char *(*)(int))dlsym(h, "OBJ_nid2sn");
	nid2ln = (const char *(*)(int))dlsym(h, "OBJ_nid2ln");
	digest_by_name = (const void *(*)(const char *))dlsym(h, "EVP_get_digestbyname");
	cipher_by_name = (const void *(*)(const char *))dlsym(h, "EVP_get_cipherbyname");
	libcrypto_h = h;
}

/* ---- key offsets ------------------------------------------------------------------ */

/* read our own memory without faulting on a wrong guess (EFAULT instead of SIGSEGV) */
static bool safe_read(void *dst, const void *src, size_t n)
{
	struct iovec l = { dst, n }, r = { (void *)src, n };
	return src && process_vm_readv(getpid(), &l, 1, &r, 1, 0) == (ssize_t)n;
}

/* offset of the first pointer-aligned slot in [base, base+len) equal to want, -1 if none */
static int scan_ptr(const void *base, size_t len, const void *want)
{
	for (size_t o = 0; o + sizeof(void *) <= len; o += sizeof(void *)) {
		const void *v;
		if (!safe_read(&v, (const char *)base + o, sizeof(v)))
			return -1;
		if (v == want)
			return (int)o;
	}
	return -1;
}

static int scan_int(const void *base, size_t len, int want)
{
	for (size_t o = 0; o + sizeof(int) <= len; o += sizeof(int)) {
		int v;
		if (!safe_read(&v, (const char *)base + o, sizeof(v)))
			return -1;
		if (v == want)
			return (int)o;
	}
	return -1;
}

/* follow keydata -> group -> curve_name for an EC EVP_PKEY; 0 if any step fails */
static int ec_curve_of(const void *pkey, const struct ct_key_offsets *k, int keydata_off)
{
	const void *kd = NULL, *grp = NULL;
	int nid = 0;
	if (!safe_read(&kd, (const char *)pkey + keydata_off, sizeof(kd)) || !kd ||
	    !safe_read(&grp, (const char *)kd + k->eckey_group, sizeof(grp)) || !grp ||
	    !safe_read(&nid, (const char *)grp + k->group_curve, sizeof(nid)))
		return 0;
	return nid;
}

/*
 * The kernel names a key by following private OpenSSL structs (EVP_PKEY_CTX -> EVP_PKEY
 * -> EVP_KEYMGMT -> type_name; EC_KEY -> EC_GROUP -> curve_name). Their offsets are not
 * ABI, so they are measured here, on the libcrypto being probed: make X25519 and P-256 /
 * P-384 keys through the public API and look for the pointers and NIDs the public getters
 * return. Each offset must agree between two key types or it stays -1 (step off).
 * A static OpenSSL (--binary) is assumed to share the layout of this libcrypto.
 */
static void calibrate_key_offsets(struct ct_key_offsets *k)
{
	void *h = libcrypto_h;
	k->pctx_pkey = k->pkey_keymgmt = k->keymgmt_name = -1;
	k->pkey_keydata = k->eckey_group = k->group_curve = -1;
	if (!h)
		return;
	void *(*keygen)(void *, const char *, const char *, ...) = (void *(*)(void *, const char *, const char *, ...))dlsym(h, "EVP_PKEY_Q_keygen");
	void *(*km_fetch)(void *, const char *, const char *) = (void *(*)(void *, const char *, const char *))dlsym(h, "EVP_KEYMGMT_fetch");
	void (*km_free)(void *) = (void (*)(void *))dlsym(h, "EVP_KEYMGMT_free");
	const char *(*km_name)(const void *) = (const char *(*)(const void *))dlsym(h, "EVP_KEYMGMT_get0_name");
	void *(*pctx_new)(void *, void *) = (void *(*)(void *, void *))dlsym(h, "EVP_PKEY_CTX_new");
	void (*pctx_free)(void *) = (void (*)(void *))dlsym(h, "EVP_PKEY_CTX_free");
	void (*pkey_free)(void *) = (void (*)(void *))dlsym(h, "EVP_PKEY_free");
	void *(*eckey_new)(int) = (void *(*)(int))dlsym(h, "EC_KEY_new_by_curve_name");
	const void *(*eckey_group)(const void *) = (const void *(*)(const void *))dlsym(h, "EC_KEY_get0_group");
	void (*eckey_free)(void *) = (void (*)(void *))dlsym(h, "EC_KEY_free");
	if (!keygen || !km_fetch || !km_free || !km_name || !pctx_new || !pctx_free || !pkey_free)
		return;

	void *x = keygen(NULL, NULL, "X25519"), *ec = keygen(NULL, NULL, "EC", "P-256"),
	     *ec384 = keygen(NULL, NULL, "EC", "P-384");
	void *kmx = km_fetch(NULL, "X25519", NULL), *kme = km_fetch(NULL, "EC", NULL);
	void *cx = x ? pctx_new(x, NULL) : NULL, *ce = ec ? pctx_new(ec, NULL) : NULL;
	int a, b;

	if (x && ec && ec384 && kmx && kme) {
		a = scan_ptr(x, 256, kmx);
		b = scan_ptr(ec, 256, kme);
		if (a >= 0 && a == b)
			k->pkey_keymgmt = a;
		a = scan_ptr(kmx, 64, km_name(kmx));
		b = scan_ptr(kme, 64, km_name(kme));
		if (a >= 0 && a == b)
			k->keymgmt_name = a;
	}
	if (cx && ce) {
		a = scan_ptr(cx, 256, x);
		b = scan_ptr(ce, 256, ec);
		if (a >= 0 && a == b)
			k->pctx_pkey = a;
	}
	if (k->pkey_keymgmt >= 0 && eckey_new && eckey_group && eckey_free) {
		void *l256 = eckey_new(415), *l384 = eckey_new(715);
		if (l256 && l384) {
			a = scan_ptr(l256, 128, eckey_group(l256));
			b = scan_ptr(l384, 128, eckey_group(l384));
			if (a >= 0 && a == b) {
				int c = scan_int(eckey_group(l256), 256, 415), d = scan_int(eckey_group(l384), 256, 715);
				if (c >= 0 && c == d) {
					k->eckey_group = a;
					k->group_curve = c;
					/* the provider key's keydata (an EC_KEY): a slot after keymgmt */
					for (int o = k->pkey_keymgmt + 8; o <= k->pkey_keymgmt + 64; o += 8)
						if (ec_curve_of(ec, k, o) == 415 && ec_curve_of(ec384, k, o) == 715) {
							k->pkey_keydata = o;
							break;
						}
				}
			}
		}
		if (l256)
			eckey_free(l256);
		if (l384)
			eckey_free(l384);
		if (k->pkey_keydata < 0)
			k->eckey_group = k->group_curve = -1;
	}
	if (cx)
		pctx_free(cx);
	if (ce)
		pctx_free(ce);
	if (kmx)
		km_free(kmx);
	if (kme)
		km_free(kme);
	if (x)
		pkey_free(x);
	if (ec)
		pkey_free(ec);
	if (ec384)
		pkey_free(ec384);
}

static int list_nids(void)
{
	if (!nid2sn) {
		fprintf(stderr, "craton-trace-loader: cannot load OBJ_nid2sn from %s\n", opt.libcrypto);
		return 1;
	}
	/* NUM_NID is ~1300 in 3.0; stop after a long run of gaps */
	for (int nid = 1, gap = 0; gap < 200; nid++) {
		const char *sn = nid2sn(nid), *ln = nid2ln(nid);
		if (!sn) {
			gap++;
			continue;
		}
		gap = 0;
		printf("{\"nid\":%d,\"kind\":\"%s\",\"sn\":", nid,
		       digest_by_name && digest_by_name(sn) ? "digest" :
		       cipher_by_name && cipher_by_name(sn) ? "cipher" : "other");
		json_str(sn, 128);
		printf(",\"ln\":");
		json_str(ln ? ln : "", 128);
		printf("}\n");
	}
	return 0;
}

static int fill_maps(struct craton_trace *s)
{
	__u8 one = 1;

	for (int i = 0; i < opt.n_block_nids; i++)
		if (bpf_map__update_elem(s->maps.block_nid, &opt.block_nids[i], sizeof(int),
					 &opt.block_nid_masks[i], sizeof(__u32), BPF_ANY))
			return -errno;
	for (int i = 0; i < opt.n_block_names; i++) {
		/* NAME or NAME:MASK */
		struct ct_block_name k = {};
		const char *v = opt.block_names[i], *colon = strrchr(v, ':');
		__u32 mask = colon ? (__u32)strtoul(colon + 1, NULL, 0) : 0xffffffffu;
		size_t len = colon ? (size_t)(colon - v) : strlen(v);
		for (size_t j = 0; j < len && j < CT_BLOCK_NAME_LEN - 1; j++) {
			char c = v[j];
			k.name[j] = c >= 'A' && c <= 'Z' ? c + 32 : c;
		}
		if (bpf_map__update_elem(s->maps.block_name, &k, sizeof(k), &mask, sizeof(mask), BPF_ANY))
			return -errno;
	}
	for (int i = 0; i < opt.n_exempt + opt.n_scope; i++) {
		bool ex = i < opt.n_exempt;
		const char *p = ex ? opt.exempt[i] : opt.scope[i - opt.n_exempt];
		struct stat st;
		struct ct_exe_key k = {};
		if (stat(p, &st)) {
			fprintf(stderr, "craton-trace-loader: %s %s: %s\n", ex ? "--exempt" : "--enforce-only", p, strerror(errno));
			return -errno;
		}
		/* the kernel's s_dev encoding: major << 20 | minor */
		k.dev = ((__u64)major(st.st_dev) << 20) | minor(st.st_dev);
		k.ino = st.st_ino;
		if (bpf_map__update_elem(ex ? s->maps.exempt_exe : s->maps.enforce_scope, &k, sizeof(k), &one, 1, BPF_ANY))
			return -errno;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct craton_trace *skel;
	struct ring_buffer *rb = NULL;
	long long t0 = ts_ns(CLOCK_MONOTONIC);
	time_t end;
	int err, attached;

	parse(argc, argv);
	load_nid_names();
	if (opt.list_nids)
		return list_nids();

	libbpf_set_print(libbpf_print);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, on_signal);
	refresh_offset();

	skel = craton_trace__open();
	if (!skel) {
		fprintf(stderr, "craton-trace-loader: open BPF object: %s\n", strerror(errno));
		return 1;
	}
	skel->rodata->targ_tgid = opt.pid;
	skel->rodata->self_tgid = getpid();
	skel->rodata->skip_tgid = opt.skip_pid;
	skel->rodata->enforce = opt.enforce;
	skel->rodata->kill_sig = opt.sig;
	skel->rodata->trace_files = opt.files;
	skel->rodata->scoped = opt.n_scope > 0;
	{
		struct ct_key_offsets ko;
		calibrate_key_offsets(&ko);
		/* rodata members are volatile: copy field by field */
		skel->rodata->koff.pctx_pkey = ko.pctx_pkey;
		skel->rodata->koff.pkey_keymgmt = ko.pkey_keymgmt;
		skel->rodata->koff.keymgmt_name = ko.keymgmt_name;
		skel->rodata->koff.pkey_keydata = ko.pkey_keydata;
		skel->rodata->koff.eckey_group = ko.eckey_group;
		skel->rodata->koff.group_curve = ko.group_curve;
		key_offsets_ok = ko.pctx_pkey >= 0 && ko.pkey_keymgmt >= 0 && ko.keymgmt_name >= 0;
		curve_offsets_ok = ko.pkey_keydata >= 0;
	}
	/* uprobe-multi: one dispatcher program for every entry point, the return probe
	 * retyped; otherwise one program per entry point (perf-event uprobes) */
	use_multi = !opt.no_multi && kernel_has_uprobe_multi();
	if (use_multi) {
		struct bpf_program *p;
		bpf_object__for_each_program(p, skel->obj) {
			const char *sec = bpf_program__section_name(p);
			if (strncmp(sec, "uprobe", 6) && strncmp(sec, "uretprobe", 9))
				continue;
			if (p == skel->progs.ct_dispatch || p == skel->progs.ssl_current_cipher_ret)
				bpf_program__set_expected_attach_type(p, CT_BPF_TRACE_UPROBE_MULTI);
			else
				bpf_program__set_autoload(p, false);
		}
	} else {
		bpf_program__set_autoload(skel->progs.ct_dispatch, false);
	}
	if (!opt.files) {
		bpf_program__set_autoload(skel->progs.handle_openat_enter, false);
		bpf_program__set_autoload(skel->progs.handle_openat_exit, false);
	}
	err = craton_trace__load(skel);
	if (err) {
		fprintf(stderr, "craton-trace-loader: load BPF object: %s (need root/CAP_BPF+CAP_PERFMON, BTF)\n",
			strerror(-err));
		goto out;
	}
	err = fill_maps(skel);
	if (err)
		goto out;

	/* tracepoints via the skeleton; uprobes by hand (target paths come from options) */
	err = craton_trace__attach(skel);
	if (err) {
		fprintf(stderr, "craton-trace-loader: attach tracepoints: %s\n", strerror(-err));
		goto out;
	}
	/* the tracepoint links join the uprobe links so that all detach in parallel */
	{
		struct bpf_link **tp[] = { &skel->links.handle_exec, &skel->links.handle_exit,
					   &skel->links.handle_openat_enter, &skel->links.handle_openat_exit };
		for (size_t i = 0; i < sizeof(tp) / sizeof(tp[0]); i++)
			if (*tp[i]) {
				keep(*tp[i], -1);
				*tp[i] = NULL;
			}
	}
	n_tp_links = n_links;
	attached = attach_target(skel, opt.libcrypto, -1, false, false);
	if (attached == 0) {
		fprintf(stderr, "craton-trace-loader: no probe attached to %s\n", opt.libcrypto);
		err = -ENOENT;
		goto out;
	}
	if (opt.libssl && access(opt.libssl, R_OK) == 0)
		attached += attach_target(skel, opt.libssl, -1, true, false);
	for (int i = 0; i < opt.n_binaries; i++) {
		int n = attach_target(skel, opt.binaries[i], opt.all_pids ? -1 : opt.pid, false, true);
		if (n == 0)
			attach_error(opt.binaries[i], "*", -ENOENT);
		attached += n;
	}

	/* a bigger pipe to the front end absorbs its bursts of slowness (GC, classification)
	 * before the ring buffer fills and the kernel has to drop events */
	{
		struct stat st;
		if (fstat(STDOUT_FILENO, &st) == 0 && S_ISFIFO(st.st_mode))
			(void)fcntl(STDOUT_FILENO, F_SETPIPE_SZ, 1 << 20);
	}
	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), handle_event, NULL, NULL);
	if (!rb) {
		err = -errno;
		fprintf(stderr, "craton-trace-loader: ring buffer: %s\n", strerror(errno));
		goto out;
	}
	printf("{\"event_type\":\"ready\",\"loader_pid\":%d,\"probes\":%d,\"links\":%d,"
	       "\"uprobe_multi\":%s,\"attach_ms\":%.1f,\"key_types\":%s,\"ec_curves\":%s,\"enforce\":\"%s\",\"libcrypto\":",
	       getpid(), attached, n_links - n_tp_links, use_multi ? "true" : "false", (ts_ns(CLOCK_MONOTONIC) - t0) / 1e6,
	       key_offsets_ok ? "true" : "false", curve_offsets_ok ? "true" : "false",
	       opt.enforce == CT_ENF_STRICT ? "strict" : opt.enforce == CT_ENF_DRYRUN ? "dry-run" : "off");
	json_str(opt.libcrypto, 4096);
	printf("}\n");
	fflush(stdout);

	end = opt.duration > 0 ? time(NULL) + opt.duration : 0;
	while (!stop) {
		err = ring_buffer__poll(rb, 100);
		if (err == -EINTR) {
			err = 0;
			continue;
		}
		if (err < 0) {
			fprintf(stderr, "craton-trace-loader: poll: %s\n", strerror(-err));
			break;
		}
		/* the kernel side wakes us only per batch: drain what arrived without a wakeup */
		if (err == 0)
			err = ring_buffer__consume(rb);
		if (err > 0 && fflush(stdout) == EOF)
			break;
		err = 0;
		if (end && time(NULL) >= end)
			break;
	}
	ring_buffer__consume(rb);
	{
		__u32 zero = 0;
		int ncpu = libbpf_num_possible_cpus();
		unsigned long long total = 0;
		__u64 *vals = calloc(ncpu > 0 ? ncpu : 1, sizeof(__u64));
		if (vals && bpf_map__lookup_elem(skel->maps.dropped, &zero, sizeof(zero), vals,
						 sizeof(__u64) * ncpu, 0) == 0)
			for (int i = 0; i < ncpu; i++)
				total += vals[i];
		free(vals);
		printf("{\"event_type\":\"stats\",\"dropped\":%llu}\n", total);
		/* end of the stream: readers need not wait for the (slow) uprobe detach below */
		fclose(stdout);
	}
out:
	t0 = ts_ns(CLOCK_MONOTONIC);
	ring_buffer__free(rb);
	detach_all();
	if (opt.verbose)
		fprintf(stderr, "craton-trace-loader: probes and tracepoints detached in %.1f ms\n", (ts_ns(CLOCK_MONOTONIC) - t0) / 1e6);
	craton_trace__destroy(skel);
	if (opt.verbose)
		fprintf(stderr, "craton-trace-loader: all detached in %.1f ms\n", (ts_ns(CLOCK_MONOTONIC) - t0) / 1e6);
	return err ? 1 : 0;
}
