// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * craton_trace.bpf.c: kernel side of craton-trace.
 *
 * Kept small on purpose: read the algorithm identity an OpenSSL entry point was called
 * with, filter by pid early, apply the one decision that cannot wait for user space
 * (strict enforcement: a signal before the call runs), and hand a fixed record to the
 * ring buffer. Names, verdicts, redaction and reports are the TypeScript front's job.
 *
 * How the algorithm is identified (Debian 12, OpenSSL 3.0.x):
 *   EVP_MD and EVP_CIPHER both start with the legacy NID (`int type` / `int nid`), also
 *   for provider-fetched objects (OpenSSL fills it from the name map when it builds the
 *   method). We read those 4 bytes with bpf_probe_read_user at entry; no function can be
 *   called from here. When the method argument is NULL (re-init of a context), we read
 *   the context's current method: EVP_MD_CTX and EVP_CIPHER_CTX both start with it.
 *   The *_ex sign/verify variants carry the digest name as a string; we copy it.
 *   These offsets are OpenSSL's ABI for 3.0 (first member) and are stable across 3.x.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "craton_trace.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* set by the loader before load */
const volatile __u32 targ_tgid = 0;   /* 0: every process */
const volatile __u32 self_tgid = 0;   /* never trace the loader */
const volatile __u32 skip_tgid = 0;   /* nor its parent (the front end) */
const volatile __u32 enforce = CT_ENF_OFF;
const volatile __s32 kill_sig = 9;    /* SIGKILL; SIGSTOP (19) to freeze for inspection */
const volatile bool trace_files = true;
const volatile bool scoped = false;   /* enforce only executables in enforce_scope */
/* where OpenSSL keeps a key's type and curve: measured by the loader, -1 = unknown */
const volatile struct ct_key_offsets koff = { -1, -1, -1, -1, -1, -1 };

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} events SEC(".maps");

/* NIDs strict mode stops; value: bit (1 << op) set for each enum ct_op that is stopped */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __s32);
	__type(value, __u32);
} block_nid SEC(".maps");

/* lower-case digest names strict mode stops (…SignInit_ex / VerifyInit_ex) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct ct_block_name);
	__type(value, __u32);
} block_name SEC(".maps");

/* executables exempt from enforcement */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct ct_exe_key);
	__type(value, __u8);
} exempt_exe SEC(".maps");

/* with `scoped`: the only executables strict mode applies to */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct ct_exe_key);
	__type(value, __u8);
} enforce_scope SEC(".maps");

/* openat in flight: tid -> user filename pointer and flags */
struct open_args {
	__u64 filename;
	__s32 flags;
};
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct open_args);
} open_inflight SEC(".maps");

/* one TLS cipher report per (process, cipher) per second */
struct tls_key {
	__u32 tgid;
	__u32 pad;
	__u64 cipher;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct tls_key);
	__type(value, __u64);
} tls_seen SEC(".maps");

/* dropped = ring buffer full; the loader prints it at exit */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

static __always_inline bool skip_pid(__u32 tgid)
{
	if (tgid == self_tgid || (skip_tgid && tgid == skip_tgid))
		return true;
	return targ_tgid && tgid != targ_tgid;
}

static __always_inline void count_drop(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&dropped, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/* Wake the loader only when a batch has built up: a wakeup per event costs more than
 * the event (irq_work + context switch). The loader polls every 100 ms anyway, so an
 * event waits at most that long; enforcement does not depend on it. */
#define CT_WAKEUP_BYTES (64 * 1024)
static __always_inline void submit(struct ct_event *e)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);

	bpf_ringbuf_submit(e, avail >= CT_WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline void fill_task(struct ct_event *e, __u32 type)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();

	e->ts_boot_ns = bpf_ktime_get_boot_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->type = type;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

static __always_inline void exe_key(struct ct_exe_key *key)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct inode *inode = BPF_CORE_READ(task, mm, exe_file, f_inode);

	key->ino = inode ? BPF_CORE_READ(inode, i_ino) : 0;
	key->dev = inode ? BPF_CORE_READ(inode, i_sb, s_dev) : 0;
}

/* Strict mode: stop the process before the call it is entering runs. The signal is
 * delivered on the way back to user space, i.e. before the first instruction of the
 * probed function executes. Returns the CT_F_* bits to record. */
static __always_inline __u32 enforce_rule(bool matched)
{
	struct ct_exe_key key = {};

	if (!matched || enforce == CT_ENF_OFF)
		return 0;
	exe_key(&key);
	if (scoped && !bpf_map_lookup_elem(&enforce_scope, &key))
		return 0;
	if (bpf_map_lookup_elem(&exempt_exe, &key))
		return CT_F_EXEMPT;
	if (enforce == CT_ENF_DRYRUN)
		return CT_F_WOULD_BLOCK;
	if (bpf_send_signal(kill_sig) == 0)
		return CT_F_BLOCKED;
	return CT_F_SIGNAL_ERR;
}

struct vma_ctx {
	__u64 ip;
	bool same;
};

static long vma_cb(struct task_struct *task, struct vm_area_struct *vma, struct vma_ctx *c)
{
	c->same = c->ip >= BPF_CORE_READ(vma, vm_start) && c->ip < BPF_CORE_READ(vma, vm_end);
	return 0;
}

/* was this call made from inside the probed library (same executable mapping)? Only
 * meaningful for a shared libcrypto; for a static binary (--binary) everything is one
 * mapping, so the loader leaves CT_COOKIE_SHARED_LIB clear and we answer false. */
static __always_inline bool internal_call(struct pt_regs *ctx)
{
	if (!(bpf_get_attach_cookie(ctx) & CT_COOKIE_SHARED_LIB))
		return false;

	struct task_struct *task = bpf_get_current_task_btf();
	struct vma_ctx c = { .ip = PT_REGS_IP(ctx), .same = false };
	__u64 ret = 0;

	/* at function entry the return address is on top of the user stack (x86-64) */
	if (bpf_probe_read_user(&ret, sizeof(ret), (void *)PT_REGS_SP(ctx)))
		return false;
	/* the uprobe's IP may point one byte past the breakpoint: still inside */
	if (bpf_find_vma(task, ret, vma_cb, &c, 0))
		return false;
	return c.same;
}

/* Name the EVP_PKEY: its legacy type (a NID, or -1 for a provider key), its key
 * manager's type_name, and for an EC key the curve NID. Offsets from the loader. */
static __always_inline void key_info(struct ct_event *e, const void *pkey)
{
	const void *km = NULL, *kd = NULL, *grp = NULL;
	const char *tn = NULL;

	if (!pkey)
		return;
	bpf_probe_read_user(&e->key_nid, sizeof(e->key_nid), pkey);
	if (koff.pkey_keymgmt < 0 || koff.keymgmt_name < 0)
		return;
	bpf_probe_read_user(&km, sizeof(km), (const char *)pkey + koff.pkey_keymgmt);
	if (!km)
		return;
	bpf_probe_read_user(&tn, sizeof(tn), (const char *)km + koff.keymgmt_name);
	if (!tn || bpf_probe_read_user_str(e->key_type, sizeof(e->key_type), tn) <= 0) {
		e->key_type[0] = 0;
		return;
	}
	if (e->key_type[0] != 'E' || e->key_type[1] != 'C' || e->key_type[2] != 0 ||
	    koff.pkey_keydata < 0 || koff.eckey_group < 0 || koff.group_curve < 0)
		return;
	bpf_probe_read_user(&kd, sizeof(kd), (const char *)pkey + koff.pkey_keydata);
	if (kd)
		bpf_probe_read_user(&grp, sizeof(grp), (const char *)kd + koff.eckey_group);
	if (grp)
		bpf_probe_read_user(&e->key_curve, sizeof(e->key_curve), (const char *)grp + koff.group_curve);
}

static __always_inline int emit_crypto(struct pt_regs *ctx, __u32 probe, __u32 op, __s32 nid,
				       __u64 ptr, const char *uname, __s32 arg, const void *pkey)
{
	struct ct_event *e;
	bool internal = internal_call(ctx);
	__u32 flags = internal ? CT_F_INTERNAL : 0, *mask;
	__u32 bit = 1u << ((op & 15) + (internal ? CT_MASK_INTERNAL : 0));
	bool matched = false;

	if (nid > 0 && enforce != CT_ENF_OFF) {
		mask = bpf_map_lookup_elem(&block_nid, &nid);
		matched = mask && (*mask & bit);
	}

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		/* still enforce: losing the record must not lose the block */
		enforce_rule(matched);
		count_drop();
		return 0;
	}
	fill_task(e, CT_EV_CRYPTO);
	e->probe = probe;
	e->op = op;
	e->nid = nid;
	e->ptr = ptr;
	e->arg = arg;
	e->name[0] = 0;
	e->path[0] = 0;
	e->args[0] = 0;
	e->key_nid = 0;
	e->key_curve = 0;
	e->key_type[0] = 0;
	key_info(e, pkey);
	if (uname) {
		bpf_probe_read_user_str(e->name, sizeof(e->name), uname);
		if (!matched && enforce != CT_ENF_OFF) {
			struct ct_block_name key = {};
			for (int i = 0; i < CT_BLOCK_NAME_LEN - 1; i++) {
				char c = e->name[i];
				if (!c)
					break;
				if (c >= 'A' && c <= 'Z')
					c += 'a' - 'A';
				key.name[i] = c;
			}
			mask = bpf_map_lookup_elem(&block_name, &key);
			if (mask && (*mask & bit)) {
				matched = true;
				flags |= CT_F_NAME_RULE;
			}
		}
	}
	flags |= enforce_rule(matched);
	e->flags = flags;
	submit(e);
	return 0;
}

/* first int of an EVP_MD / EVP_CIPHER is its NID; if NULL, use the ctx's current one */
static __always_inline __s32 method_nid(const void *method, const void *ctx, __u64 *ptr)
{
	__s32 nid = 0;

	if (!method && ctx)
		bpf_probe_read_user(&method, sizeof(method), ctx);
	*ptr = (__u64)method;
	if (method)
		bpf_probe_read_user(&nid, sizeof(nid), method);
	return nid;
}

static __always_inline int digest_init(struct pt_regs *ctx, __u32 probe, const void *mctx, const void *md)
{
	__u64 ptr;
	__s32 nid;

	if (skip_pid(bpf_get_current_pid_tgid() >> 32))
		return 0;
	nid = method_nid(md, mctx, &ptr);
	return emit_crypto(ctx, probe, CT_OP_DIGEST, nid, ptr, NULL, 0, NULL);
}

SEC("uprobe")
int BPF_KPROBE(evp_digest_init, void *mctx, const void *md)
{
	return digest_init(ctx, CT_P_DIGEST_INIT, mctx, md);
}

SEC("uprobe")
int BPF_KPROBE(evp_digest_init_ex, void *mctx, const void *md)
{
	return digest_init(ctx, CT_P_DIGEST_INIT_EX, mctx, md);
}

SEC("uprobe")
int BPF_KPROBE(evp_digest_init_ex2, void *mctx, const void *md)
{
	return digest_init(ctx, CT_P_DIGEST_INIT_EX2, mctx, md);
}

/*
 * Cipher inits. Each public entry point tail-calls OpenSSL's internal init, none calls
 * another public one, so one call is one event. A call with a NULL cipher only sets the
 * key/IV on a context initialised before (the usual two-step pattern): not a new use of
 * an algorithm, not reported.
 */
static __always_inline int cipher_init(struct pt_regs *ctx, __u32 probe, const void *mctx, const void *cipher, int enc)
{
	__u64 ptr = (__u64)cipher;
	__s32 nid = 0;
	__u32 op;

	if (!cipher || skip_pid(bpf_get_current_pid_tgid() >> 32))
		return 0;
	bpf_probe_read_user(&nid, sizeof(nid), cipher);
	if (enc == -1 && mctx) {
		/* EVP_CIPHER_CTX: cipher, engine, then int encrypt */
		int cur = -1;
		bpf_probe_read_user(&cur, sizeof(cur), (const char *)mctx + 16);
		enc = cur;
	}
	op = enc == 1 ? CT_OP_ENCRYPT : enc == 0 ? CT_OP_DECRYPT : CT_OP_CIPHER;
	return emit_crypto(ctx, probe, op, nid, ptr, NULL, 0, NULL);
}

SEC("uprobe")
int BPF_KPROBE(evp_cipher_init, void *mctx, const void *c, void *key, void *iv, int enc)
{
	return cipher_init(ctx, CT_P_CIPHER_INIT, mctx, c, enc);
}

SEC("uprobe")
int BPF_KPROBE(evp_cipher_init_ex, void *mctx, const void *c)
{
	/* enc is the 6th argument; libbpf 1.1's BPF_KPROBE names only five */
#if defined(__TARGET_ARCH_x86)
	int enc = (int)ctx->r9;
#elif defined(__TARGET_ARCH_arm64)
	int enc = (int)ctx->regs[5];
#else
	int enc = -1;
#endif
	return cipher_init(ctx, CT_P_CIPHER_INIT_EX, mctx, c, enc);
}

SEC("uprobe")
int BPF_KPROBE(evp_cipher_init_ex2, void *mctx, const void *c, void *key, void *iv, int enc)
{
	return cipher_init(ctx, CT_P_CIPHER_INIT_EX2, mctx, c, enc);
}

SEC("uprobe")
int BPF_KPROBE(evp_encrypt_init, void *mctx, const void *c)
{
	return cipher_init(ctx, CT_P_ENCRYPT_INIT, mctx, c, 1);
}

SEC("uprobe")
int BPF_KPROBE(evp_encrypt_init_ex, void *mctx, const void *c)
{
	return cipher_init(ctx, CT_P_ENCRYPT_INIT_EX, mctx, c, 1);
}

SEC("uprobe")
int BPF_KPROBE(evp_encrypt_init_ex2, void *mctx, const void *c)
{
	return cipher_init(ctx, CT_P_ENCRYPT_INIT_EX2, mctx, c, 1);
}

SEC("uprobe")
int BPF_KPROBE(evp_decrypt_init, void *mctx, const void *c)
{
	return cipher_init(ctx, CT_P_DECRYPT_INIT, mctx, c, 0);
}

SEC("uprobe")
int BPF_KPROBE(evp_decrypt_init_ex, void *mctx, const void *c)
{
	return cipher_init(ctx, CT_P_DECRYPT_INIT_EX, mctx, c, 0);
}

SEC("uprobe")
int BPF_KPROBE(evp_decrypt_init_ex2, void *mctx, const void *c)
{
	return cipher_init(ctx, CT_P_DECRYPT_INIT_EX2, mctx, c, 0);
}

static __always_inline long sixth_arg(struct pt_regs *ctx)
{
#if defined(__TARGET_ARCH_x86)
	return (long)ctx->r9;
#elif defined(__TARGET_ARCH_arm64)
	return (long)ctx->regs[5];
#else
	return -1;
#endif
}

/* EVP_DigestSignInit(ctx, pctx, const EVP_MD *type, e, pkey) and the Verify twin */
static __always_inline int sigver_init(struct pt_regs *ctx, __u32 probe, __u32 op, const void *md,
				       const void *pkey)
{
	__s32 nid = 0;

	if (skip_pid(bpf_get_current_pid_tgid() >> 32))
		return 0;
	if (md)
		bpf_probe_read_user(&nid, sizeof(nid), md);
	return emit_crypto(ctx, probe, op, nid, (__u64)md, NULL, 0, pkey);
}

/* EVP_DigestSignInit_ex(ctx, pctx, const char *mdname, libctx, props, pkey, params) */
static __always_inline int sigver_init_ex(struct pt_regs *ctx, __u32 probe, __u32 op, const char *mdname,
					  const void *pkey)
{
	if (skip_pid(bpf_get_current_pid_tgid() >> 32))
		return 0;
	return emit_crypto(ctx, probe, op, 0, 0, mdname, 0, pkey);
}

SEC("uprobe")
int BPF_KPROBE(evp_sign_init, void *mctx, void *pctx, const void *md, void *eng, const void *pkey)
{
	return sigver_init(ctx, CT_P_SIGN_INIT, CT_OP_SIGN, md, pkey);
}

SEC("uprobe")
int BPF_KPROBE(evp_verify_init, void *mctx, void *pctx, const void *md, void *eng, const void *pkey)
{
	return sigver_init(ctx, CT_P_VERIFY_INIT, CT_OP_VERIFY, md, pkey);
}

SEC("uprobe")
int BPF_KPROBE(evp_sign_init_ex, void *mctx, void *pctx, const char *mdname)
{
	/* pkey is the 6th argument */
	return sigver_init_ex(ctx, CT_P_SIGN_INIT_EX, CT_OP_SIGN, mdname, (const void *)sixth_arg(ctx));
}

SEC("uprobe")
int BPF_KPROBE(evp_verify_init_ex, void *mctx, void *pctx, const char *mdname)
{
	return sigver_init_ex(ctx, CT_P_VERIFY_INIT_EX, CT_OP_VERIFY, mdname, (const void *)sixth_arg(ctx));
}

/*
 * Key agreement: EVP_PKEY_derive_init_ex(EVP_PKEY_CTX *ctx, params). In OpenSSL 3.x
 * EVP_PKEY_derive_init is a tail call to it (the application's return address stays on
 * the stack), so probing _ex alone sees both once. The key type comes from ctx->pkey;
 * its name doubles as the block-rule name (x25519, dh …); a legacy key's type is its NID.
 */
static __always_inline int derive_init(struct pt_regs *ctx, __u32 probe, const void *pctx)
{
	const void *pkey = NULL;
	const char *tn = NULL;
	__s32 type = 0;

	if (!pctx || skip_pid(bpf_get_current_pid_tgid() >> 32))
		return 0;
	if (koff.pctx_pkey >= 0)
		bpf_probe_read_user(&pkey, sizeof(pkey), (const char *)pctx + koff.pctx_pkey);
	if (pkey) {
		bpf_probe_read_user(&type, sizeof(type), pkey);
		if (koff.pkey_keymgmt >= 0 && koff.keymgmt_name >= 0) {
			const void *km = NULL;
			bpf_probe_read_user(&km, sizeof(km), (const char *)pkey + koff.pkey_keymgmt);
			if (km)
				bpf_probe_read_user(&tn, sizeof(tn), (const char *)km + koff.keymgmt_name);
		}
	}
	return emit_crypto(ctx, probe, CT_OP_KEY_EXCHANGE, type > 0 ? type : 0, (__u64)pkey, tn, 0, pkey);
}

SEC("uprobe")
int BPF_KPROBE(evp_derive_init_ex, const void *pctx)
{
	return derive_init(ctx, CT_P_DERIVE_INIT_EX, pctx);
}

/*
 * Deprecated low-level entry points. OpenSSL's own providers call them too (the default
 * provider's MD5 runs MD5_Init), and that use was already reported (and enforced) at the
 * EVP call. So a call whose return address lies in the same executable mapping as the
 * probed function is internal and skipped; only direct calls from applications count.
 */
static __always_inline int lowlevel(struct pt_regs *ctx, __u32 probe, __u32 op, __s32 nid, __s32 arg)
{
	/* the internal test runs twice on this path (here and in emit_crypto); cheap enough */
	if (skip_pid(bpf_get_current_pid_tgid() >> 32) || internal_call(ctx))
		return 0;
	return emit_crypto(ctx, probe, op, nid, 0, NULL, arg, NULL);
}

/* NIDs from OpenSSL's obj_mac.h (stable since 0.9) */
#define NID_md5 4
#define NID_md4 257
#define NID_rc4 5
#define NID_des_ecb 29

SEC("uprobe")
int BPF_KPROBE(md5_init)
{
	return lowlevel(ctx, CT_P_MD5_INIT, CT_OP_DIGEST, NID_md5, 0);
}

SEC("uprobe")
int BPF_KPROBE(md4_init)
{
	return lowlevel(ctx, CT_P_MD4_INIT, CT_OP_DIGEST, NID_md4, 0);
}

SEC("uprobe")
int BPF_KPROBE(rc4_set_key, void *key, int len)
{
	return lowlevel(ctx, CT_P_RC4_SET_KEY, CT_OP_CIPHER, NID_rc4, len);
}

SEC("uprobe")
int BPF_KPROBE(des_set_key)
{
	return lowlevel(ctx, CT_P_DES_SET_KEY, CT_OP_CIPHER, NID_des_ecb, 0);
}

SEC("uprobe")
int BPF_KPROBE(des_set_key_checked)
{
	return lowlevel(ctx, CT_P_DES_SET_KEY_CHECKED, CT_OP_CIPHER, NID_des_ecb, 0);
}

SEC("uprobe")
int BPF_KPROBE(des_set_key_unchecked)
{
	return lowlevel(ctx, CT_P_DES_SET_KEY_UNCHECKED, CT_OP_CIPHER, NID_des_ecb, 0);
}

/*
 * uprobe-multi dispatcher. Where the kernel has uprobe_multi links (6.6+), the loader
 * attaches this one program to every entry point of a target with a single link (one
 * BPF_LINK_CREATE, one RCU grace period on detach instead of one per probe) and puts the
 * probe id in each offset's cookie. The per-function programs above are the fallback for
 * older kernels (one perf-event uprobe each); both paths share the helpers.
 */

SEC("uprobe")
int ct_dispatch(struct pt_regs *ctx)
{
	__u32 probe = (__u32)(bpf_get_attach_cookie(ctx) >> CT_COOKIE_PROBE_SHIFT) & 0xff;
	void *a1 = (void *)PT_REGS_PARM1(ctx), *a2 = (void *)PT_REGS_PARM2(ctx);
	int enc;

	switch (probe) {
	case CT_P_DIGEST_INIT:
	case CT_P_DIGEST_INIT_EX:
	case CT_P_DIGEST_INIT_EX2:
		return digest_init(ctx, probe, a1, a2);
	case CT_P_CIPHER_INIT:
	case CT_P_CIPHER_INIT_EX:
	case CT_P_CIPHER_INIT_EX2:
	case CT_P_ENCRYPT_INIT:
	case CT_P_ENCRYPT_INIT_EX:
	case CT_P_ENCRYPT_INIT_EX2:
	case CT_P_DECRYPT_INIT:
	case CT_P_DECRYPT_INIT_EX:
	case CT_P_DECRYPT_INIT_EX2:
		if (probe == CT_P_CIPHER_INIT_EX)
			enc = (int)sixth_arg(ctx);
		else if (probe == CT_P_CIPHER_INIT || probe == CT_P_CIPHER_INIT_EX2)
			enc = (int)PT_REGS_PARM5(ctx);
		else
			enc = probe >= CT_P_DECRYPT_INIT ? 0 : 1;
		return cipher_init(ctx, probe, a1, a2, enc);
	case CT_P_SIGN_INIT:
	case CT_P_VERIFY_INIT:
		return sigver_init(ctx, probe, probe == CT_P_SIGN_INIT ? CT_OP_SIGN : CT_OP_VERIFY,
				   (const void *)PT_REGS_PARM3(ctx), (const void *)PT_REGS_PARM5(ctx));
	case CT_P_SIGN_INIT_EX:
	case CT_P_VERIFY_INIT_EX:
		return sigver_init_ex(ctx, probe, probe == CT_P_SIGN_INIT_EX ? CT_OP_SIGN : CT_OP_VERIFY,
				      (const char *)PT_REGS_PARM3(ctx), (const void *)sixth_arg(ctx));
	case CT_P_DERIVE_INIT_EX:
		return derive_init(ctx, probe, a1);
	case CT_P_MD5_INIT:
		return lowlevel(ctx, probe, CT_OP_DIGEST, NID_md5, 0);
	case CT_P_MD4_INIT:
		return lowlevel(ctx, probe, CT_OP_DIGEST, NID_md4, 0);
	case CT_P_RC4_SET_KEY:
		return lowlevel(ctx, probe, CT_OP_CIPHER, NID_rc4, (int)(long)a2);
	case CT_P_DES_SET_KEY:
	case CT_P_DES_SET_KEY_CHECKED:
	case CT_P_DES_SET_KEY_UNCHECKED:
		return lowlevel(ctx, probe, CT_OP_CIPHER, NID_des_ecb, 0);
	}
	return 0;
}

/*
 * Negotiated TLS cipher: SSL_get_current_cipher returns the SSL_CIPHER in use; its
 * second and third members are the OpenSSL and the IANA (RFC) name. Reported once per
 * process and cipher per second (applications call it repeatedly). Observed after the
 * fact: a TLS cipher is reported, never blocked here.
 */
SEC("uretprobe")
int BPF_KRETPROBE(ssl_current_cipher_ret, const void *cipher)
{
	struct tls_key key = {};
	const char *stdname = NULL;
	__u64 now, *last;
	struct ct_event *e;

	if (!cipher)
		return 0;
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	if (skip_pid(key.tgid))
		return 0;
	key.cipher = (__u64)cipher;
	now = bpf_ktime_get_boot_ns();
	last = bpf_map_lookup_elem(&tls_seen, &key);
	if (last && now - *last < 1000000000ULL)
		return 0;
	bpf_map_update_elem(&tls_seen, &key, &now, BPF_ANY);

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop();
		return 0;
	}
	fill_task(e, CT_EV_CRYPTO);
	e->probe = CT_P_TLS_CIPHER;
	e->op = CT_OP_TLS_CIPHER;
	e->nid = 0;
	e->ptr = (__u64)cipher;
	e->arg = 0;
	e->flags = 0;
	e->path[0] = 0;
	e->args[0] = 0;
	e->key_nid = 0;
	e->key_curve = 0;
	e->key_type[0] = 0;
	bpf_probe_read_user(&stdname, sizeof(stdname), (const char *)cipher + 16);
	if (!stdname || bpf_probe_read_user_str(e->name, sizeof(e->name), stdname) <= 0) {
		const char *name = NULL;
		bpf_probe_read_user(&name, sizeof(name), (const char *)cipher + 8);
		e->name[0] = 0;
		if (name)
			bpf_probe_read_user_str(e->name, sizeof(e->name), name);
	}
	submit(e);
	return 0;
}

/* ---- processes ------------------------------------------------------------------ */

SEC("tp/sched/sched_process_exec")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	unsigned int off = ctx->__data_loc_filename & 0xFFFF;
	unsigned long start, end, len;
	struct ct_event *e;

	if (skip_pid(bpf_get_current_pid_tgid() >> 32))
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop();
		return 0;
	}
	fill_task(e, CT_EV_EXEC);
	e->probe = 0;
	e->op = 0;
	e->flags = 0;
	e->nid = 0;
	e->arg = 0;
	e->ptr = 0;
	e->name[0] = 0;
	bpf_probe_read_kernel_str(e->path, sizeof(e->path), (void *)ctx + off);
	start = BPF_CORE_READ(task, mm, arg_start);
	end = BPF_CORE_READ(task, mm, arg_end);
	len = end > start ? end - start : 0;
	if (len > sizeof(e->args))
		len = sizeof(e->args);
	e->args[0] = 0;
	if (len && bpf_probe_read_user(e->args, len, (void *)start))
		e->args[0] = 0;
	e->arg = (__s32)len;
	submit(e);
	return 0;
}

SEC("tp/sched/sched_process_exit")
int handle_exit(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	struct ct_event *e;

	if ((__u32)id != (__u32)(id >> 32) || skip_pid(id >> 32))
		return 0; /* a thread, not the process */
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop();
		return 0;
	}
	fill_task(e, CT_EV_EXIT);
	e->probe = 0;
	e->op = 0;
	e->flags = 0;
	e->nid = 0;
	e->ptr = 0;
	e->arg = BPF_CORE_READ(task, exit_code); /* wait status: code << 8 | signal */
	e->name[0] = 0;
	e->path[0] = 0;
	e->args[0] = 0;
	submit(e);
	return 0;
}

/* ---- files and libraries ---------------------------------------------------------- */

SEC("tp/syscalls/sys_enter_openat")
int handle_openat_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct open_args a;
	__u32 tid = (__u32)id;

	if (!trace_files || skip_pid(id >> 32))
		return 0;
	a.filename = (__u64)ctx->args[1];
	a.flags = (__s32)ctx->args[2];
	bpf_map_update_elem(&open_inflight, &tid, &a, BPF_ANY);
	return 0;
}

/* scratch for the opened path: filtered before anything goes to the ring buffer */
struct path_buf {
	char p[CT_PATH_LEN];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_buf);
} path_scratch SEC(".maps");

#define PCH(b, i) ((b)->p[(i) & (CT_PATH_LEN - 1)])

static __always_inline char lc(char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* does the path (length n) end with suffix s (lower case, length k <= 9)? */
static __always_inline bool ends_with(struct path_buf *b, int n, const char *s, int k)
{
	if (n < k)
		return false;
	for (int i = 0; i < k && i < 10; i++)
		if (lc(PCH(b, n - k + i)) != s[i])
			return false;
	return true;
}

/* does the basename starting at off begin with prefix s (length k <= 12)? */
static __always_inline bool base_starts(struct path_buf *b, int off, const char *s, int k)
{
	for (int i = 0; i < k && i < 12; i++)
		if (PCH(b, off + i) != s[i])
			return false;
	return true;
}

struct scan_ctx {
	struct path_buf *b;
	int n;
	int base; /* index after the last '/' */
	int so;   /* index of a ".so" in the basename, or -1 */
};

/* bpf_loop callback: the verifier checks it once instead of unrolling 256 steps */
static long scan_cb(__u32 i, struct scan_ctx *c)
{
	char ch;

	if ((int)i >= c->n)
		return 1;
	ch = PCH(c->b, i);
	if (ch == '/') {
		c->base = i + 1;
		c->so = -1;
	} else if (ch == '.' && c->so < 0 && PCH(c->b, i + 1) == 's' && PCH(c->b, i + 2) == 'o' &&
		   (PCH(c->b, i + 3) == 0 || PCH(c->b, i + 3) == '.')) {
		c->so = i;
	}
	return 0;
}

/* 1: a key/cert/keystore by extension; 1|CT_F_OPEN_LIB: a crypto library; 0: neither */
static __always_inline __u32 interesting(struct path_buf *b, int n)
{
	struct scan_ctx c = { .b = b, .n = n, .base = 0, .so = -1 };
	int base;

	if (ends_with(b, n, ".pem", 4) || ends_with(b, n, ".crt", 4) || ends_with(b, n, ".cer", 4) ||
	    ends_with(b, n, ".key", 4) || ends_with(b, n, ".der", 4) || ends_with(b, n, ".p12", 4) ||
	    ends_with(b, n, ".pfx", 4) || ends_with(b, n, ".jks", 4) || ends_with(b, n, ".p8", 3) ||
	    ends_with(b, n, ".keystore", 9))
		return 1;
	bpf_loop(CT_PATH_LEN, scan_cb, &c, 0);
	if (c.so < 0)
		return 0;
	base = c.base;
	if (base_starts(b, base, "libssl", 6) || base_starts(b, base, "libcrypto", 9) ||
	    base_starts(b, base, "libgnutls", 9) || base_starts(b, base, "libsodium", 9) ||
	    base_starts(b, base, "libnss3", 7) || base_starts(b, base, "libmbed", 7) ||
	    base_starts(b, base, "libwolfssl", 10) || base_starts(b, base, "libgcrypt", 9))
		return 1 | CT_F_OPEN_LIB;
	return 0;
}

SEC("tp/syscalls/sys_exit_openat")
int handle_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct open_args *a = bpf_map_lookup_elem(&open_inflight, &tid);
	struct path_buf *b;
	struct ct_event *e;
	__u32 zero = 0, what;
	long n;

	if (!a)
		return 0;
	if (ctx->ret < 0)
		goto out;
	b = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!b)
		goto out;
	n = bpf_probe_read_user_str(b->p, sizeof(b->p), (void *)a->filename);
	if (n <= 1)
		goto out;
	what = interesting(b, (int)n - 1);
	if (!what)
		goto out;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop();
		goto out;
	}
	fill_task(e, CT_EV_OPEN);
	bpf_probe_read_kernel(e->path, sizeof(e->path), b->p);
	e->probe = 0;
	e->op = 0;
	e->nid = 0;
	e->ptr = 0;
	e->flags = what & CT_F_OPEN_LIB;
	e->arg = a->flags;
	e->name[0] = 0;
	e->args[0] = 0;
	submit(e);
out:
	bpf_map_delete_elem(&open_inflight, &tid);
	return 0;
}
