/*
 * The one include for PKCS#11 types in Craton HSM's C code.
 *
 * The types and constants come from the packaged header of Debian's
 * libp11-kit-dev (<p11-kit/pkcs11.h>, PKCS#11 2.40 plus some 3.0 items).
 * Debian 12 ships p11-kit 0.24, whose header predates part of PKCS#11 3.0;
 * the block below declares only those 3.0 items, each behind #ifndef so a
 * newer packaged header wins as soon as it is installed. Values and layouts
 * are those of the OASIS PKCS#11 3.0 base specification (sections cited).
 *
 * scripts/gen-pkcs11-constants.mjs reads this file and the packaged header
 * to produce the TypeScript constant table, so these names are defined once.
 */
#ifndef CRATON_PKCS11_H
#define CRATON_PKCS11_H

#include <p11-kit/pkcs11.h>

/* --- PKCS#11 3.0 additions missing from p11-kit 0.24 --------------------- */

/* Key types (3.0 §4.2 table of CKK_ values) */
#ifndef CKK_EC_MONTGOMERY
#define CKK_EC_MONTGOMERY (0x41UL)
#endif
#ifndef CKK_HKDF
#define CKK_HKDF (0x42UL)
#endif

/* Attributes (3.0 §4.1) */
#ifndef CKA_UNIQUE_ID
#define CKA_UNIQUE_ID (0x4UL)
#endif

/* SHA-3 digests, HMACs and key generation (3.0 current mechanisms §2.x) */
#ifndef CKM_SHA3_256
#define CKM_SHA3_256 (0x2b0UL)
#define CKM_SHA3_256_HMAC (0x2b1UL)
#define CKM_SHA3_256_HMAC_GENERAL (0x2b2UL)
#define CKM_SHA3_256_KEY_GEN (0x2b3UL)
#define CKM_SHA3_224 (0x2b5UL)
#define CKM_SHA3_224_HMAC (0x2b6UL)
#define CKM_SHA3_224_HMAC_GENERAL (0x2b7UL)
#define CKM_SHA3_224_KEY_GEN (0x2b8UL)
#define CKM_SHA3_384 (0x2c0UL)
#define CKM_SHA3_384_HMAC (0x2c1UL)
#define CKM_SHA3_384_HMAC_GENERAL (0x2c2UL)
#define CKM_SHA3_384_KEY_GEN (0x2c3UL)
#define CKM_SHA3_512 (0x2d0UL)
#define CKM_SHA3_512_HMAC (0x2d1UL)
#define CKM_SHA3_512_HMAC_GENERAL (0x2d2UL)
#define CKM_SHA3_512_KEY_GEN (0x2d3UL)
#endif

/* RSA and ECDSA with SHA-3 */
#ifndef CKM_SHA3_256_RSA_PKCS
#define CKM_SHA3_256_RSA_PKCS (0x60UL)
#define CKM_SHA3_384_RSA_PKCS (0x61UL)
#define CKM_SHA3_512_RSA_PKCS (0x62UL)
#define CKM_SHA3_256_RSA_PKCS_PSS (0x63UL)
#define CKM_SHA3_384_RSA_PKCS_PSS (0x64UL)
#define CKM_SHA3_512_RSA_PKCS_PSS (0x65UL)
#define CKM_SHA3_224_RSA_PKCS (0x66UL)
#define CKM_SHA3_224_RSA_PKCS_PSS (0x67UL)
#endif
#ifndef CKM_ECDSA_SHA3_224
#define CKM_ECDSA_SHA3_224 (0x1047UL)
#define CKM_ECDSA_SHA3_256 (0x1048UL)
#define CKM_ECDSA_SHA3_384 (0x1049UL)
#define CKM_ECDSA_SHA3_512 (0x104aUL)
#endif

/* Montgomery curves (X25519) */
#ifndef CKM_EC_MONTGOMERY_KEY_PAIR_GEN
#define CKM_EC_MONTGOMERY_KEY_PAIR_GEN (0x1056UL)
#endif

/* AES key wrap with padding, RFC 5649 (3.0 §2.14) */
#ifndef CKM_AES_KEY_WRAP_KWP
#define CKM_AES_KEY_WRAP_KWP (0x210bUL)
#endif

/* HKDF (3.0 §2.43) */
#ifndef CKM_HKDF_DERIVE
#define CKM_HKDF_DERIVE (0x402aUL)
#define CKM_HKDF_DATA (0x402bUL)
#define CKM_HKDF_KEY_GEN (0x402cUL)
#define CKF_HKDF_SALT_NULL (0x00000001UL)
#define CKF_HKDF_SALT_DATA (0x00000002UL)
#define CKF_HKDF_SALT_KEY (0x00000004UL)
typedef struct CK_HKDF_PARAMS {
  CK_BBOOL bExtract;
  CK_BBOOL bExpand;
  CK_MECHANISM_TYPE prfHashMechanism;
  CK_ULONG ulSaltType;
  CK_BYTE_PTR pSalt;
  CK_ULONG ulSaltLen;
  CK_OBJECT_HANDLE hSaltKey;
  CK_BYTE_PTR pInfo;
  CK_ULONG ulInfoLen;
} CK_HKDF_PARAMS;
typedef CK_HKDF_PARAMS *CK_HKDF_PARAMS_PTR;
#endif

/* EdDSA parameters (3.0 §2.3.14) */
#ifndef CRATON_HAVE_EDDSA_PARAMS
#define CRATON_HAVE_EDDSA_PARAMS 1
typedef struct CK_EDDSA_PARAMS {
  CK_BBOOL phFlag;
  CK_ULONG ulContextDataLen;
  CK_BYTE_PTR pContextData;
} CK_EDDSA_PARAMS;
typedef CK_EDDSA_PARAMS *CK_EDDSA_PARAMS_PTR;
#endif

/* Interfaces (3.0 §5.2): C_GetInterfaceList / C_GetInterface */
#ifndef CKF_INTERFACE_FORK_SAFE
#define CKF_INTERFACE_FORK_SAFE (0x00000001UL)
typedef struct CK_INTERFACE {
  CK_CHAR *pInterfaceName;
  CK_VOID_PTR pFunctionList;
  CK_FLAGS flags;
} CK_INTERFACE;
typedef CK_INTERFACE *CK_INTERFACE_PTR;
typedef CK_INTERFACE_PTR *CK_INTERFACE_PTR_PTR;
#endif

#endif /* CRATON_PKCS11_H */
