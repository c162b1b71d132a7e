#!/usr/bin/env bash
# Set-up (scripts/setup.sh) and every test. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

bash scripts/setup.sh --no-build
# The generated constant table must match the packaged header it was generated from.
node scripts/gen-pkcs11-constants.mjs --check
npm run build
[ -f build/libcraton_hsm.so ] || { echo "test: build/libcraton_hsm.so missing after build" >&2; exit 1; }
npm test
