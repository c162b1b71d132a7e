/* SPDX-License-Identifier: Apache-2.0 */
/*
 * craton_trace.h: the contract between the kernel side (craton_trace.bpf.c) and the
 * loader (loader/craton_trace.c). One fixed-size record per event goes through the BPF
 * ring buffer; the loader turns each into one JSON line. Policy (what an algorithm is,
 * whether it is approved) is not decided here: the kernel reports NIDs and names, the
 * TypeScript front classifies them with the daemon's FIPS table.
 *
 * Change this struct only together with the loader's JSON writer.
 */
#ifndef CRATON_TRACE_H
#define CRATON_TRACE_H

#define CT_COMM_LEN 16
#define CT_NAME_LEN 64
#define CT_PATH_LEN 256
#define CT_ARGS_LEN 160
#define CT_BLOCK_NAME_LEN 32
#define CT_KEY_TYPE_LEN 16

enum ct_event_type {
	CT_EV_CRYPTO = 1, /* an algorithm used by an OpenSSL entry point */
	CT_EV_EXEC = 2,   /* sched_process_exec */
	CT_EV_EXIT = 3,   /* sched_process_exit (thread-group leader only) */
	CT_EV_OPEN = 4,   /* successful openat of a key/cert/keystore file or crypto library */
};

/* Which entry point fired (the loader names them; the front maps them to operations). */
enum ct_probe {
	CT_P_DIGEST_INIT = 1,
	CT_P_DIGEST_INIT_EX,
	CT_P_DIGEST_INIT_EX2,
	CT_P_CIPHER_INIT,
	CT_P_CIPHER_INIT_EX,
	CT_P_CIPHER_INIT_EX2,
	CT_P_ENCRYPT_INIT,
	CT_P_ENCRYPT_INIT_EX,
	CT_P_ENCRYPT_INIT_EX2,
	CT_P_DECRYPT_INIT,
	CT_P_DECRYPT_INIT_EX,
	CT_P_DECRYPT_INIT_EX2,
	CT_P_SIGN_INIT,
	CT_P_SIGN_INIT_EX,
	CT_P_VERIFY_INIT,
	CT_P_VERIFY_INIT_EX,
	CT_P_MD5_INIT,
	CT_P_MD4_INIT,
	CT_P_RC4_SET_KEY,
	CT_P_DES_SET_KEY,
	CT_P_DES_SET_KEY_CHECKED,
	CT_P_DES_SET_KEY_UNCHECKED,
	CT_P_TLS_CIPHER,
	CT_P_DERIVE_INIT_EX, /* EVP_PKEY_derive_init (a tail call to _ex in 3.x) and _ex */
	CT_P__MAX,
};

enum ct_op {
	CT_OP_DIGEST = 1,
	CT_OP_ENCRYPT = 2,
	CT_OP_DECRYPT = 3,
	CT_OP_SIGN = 4,
	CT_OP_VERIFY = 5,
	CT_OP_TLS_CIPHER = 6,
	CT_OP_CIPHER = 7, /* direction unknown (enc == -1 and ctx unreadable) */
	CT_OP_KEY_EXCHANGE = 8,
};

/* flags on CT_EV_CRYPTO */
#define CT_F_BLOCKED      (1u << 0) /* the kernel sent the enforcement signal */
#define CT_F_WOULD_BLOCK  (1u << 1) /* dry run: strict would have sent it */
#define CT_F_EXEMPT       (1u << 2) /* matched a block rule, binary is on the allowlist */
#define CT_F_SIGNAL_ERR   (1u << 3) /* bpf_send_signal failed */
#define CT_F_NAME_RULE    (1u << 4) /* block rule matched by name, not NID */
#define CT_F_INTERNAL     (1u << 5) /* called from inside the probed library itself */

/* block masks (ops 1..15): bit (1 << op) for application calls, bit (1 << (op + CT_MASK_INTERNAL))
 * for calls made by the library itself (CT_F_INTERNAL) */
#define CT_MASK_INTERNAL 16

/* uprobe attach cookie bits */
#define CT_COOKIE_SHARED_LIB 1ull /* target is a shared libcrypto: internal-call test is meaningful */
#define CT_COOKIE_PROBE_SHIFT 8   /* bits 8..15: enum ct_probe (uprobe-multi dispatcher) */

/* flags on CT_EV_OPEN */
#define CT_F_OPEN_LIB     (1u << 8) /* a crypto library, else a key/cert/keystore file */

/* enforcement modes (rodata) */
enum ct_enforce { CT_ENF_OFF = 0, CT_ENF_STRICT = 1, CT_ENF_DRYRUN = 2 };

/* key of the exempt_exe map: the executable's inode */
struct ct_exe_key {
	__u64 dev; /* kernel dev_t: major << 20 | minor */
	__u64 ino;
};

struct ct_block_name {
	char name[CT_BLOCK_NAME_LEN]; /* lower case, NUL padded */
};

struct ct_event {
	__u64 ts_boot_ns; /* bpf_ktime_get_boot_ns(): CLOCK_BOOTTIME */
	__u64 cgroup_id;
	__u64 ptr;        /* EVP_MD / EVP_CIPHER / SSL_CIPHER pointer (diagnostics) */
	__u32 type;       /* enum ct_event_type */
	__u32 pid;        /* tgid */
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 probe;      /* enum ct_probe */
	__u32 op;         /* enum ct_op */
	__u32 flags;
	__s32 nid;        /* OpenSSL NID, 0 when unknown */
	__s32 arg;        /* RC4 key bytes; open flags; raw exit code */
	char comm[CT_COMM_LEN];
	char name[CT_NAME_LEN];  /* digest name (…Init_ex), TLS cipher name */
	char path[CT_PATH_LEN];  /* opened file, exec filename */
	char args[CT_ARGS_LEN];  /* exec: argv, NUL separated */
	/* the EVP_PKEY of …SignInit / …VerifyInit / EVP_PKEY_derive_init_ex (0 / "" if unknown) */
	__s32 key_nid;   /* EVP_PKEY's legacy type (a NID), -1 for a provider-only key */
	__s32 key_curve; /* EC keys: the curve's NID */
	char key_type[CT_KEY_TYPE_LEN]; /* the key manager's name: EC, X25519, RSA, RSA-PSS, ED25519, DH … */
};

/*
 * OpenSSL struct offsets the kernel follows to name a key (EVP_PKEY_CTX -> pkey ->
 * keymgmt -> type_name; EC keydata -> group -> curve_name). Private to OpenSSL, so the
 * loader measures them at start on the libcrypto it probes (calibrate_key_offsets) and
 * sets them in rodata; -1 switches that step off.
 */
struct ct_key_offsets {
	__s32 pctx_pkey;     /* EVP_PKEY_CTX.pkey */
	__s32 pkey_keymgmt;  /* EVP_PKEY.keymgmt */
	__s32 keymgmt_name;  /* EVP_KEYMGMT.type_name */
	__s32 pkey_keydata;  /* EVP_PKEY.keydata (EC_KEY * for EC) */
	__s32 eckey_group;   /* EC_KEY.group */
	__s32 group_curve;   /* EC_GROUP.curve_name */
};

#endif /* CRATON_TRACE_H */
