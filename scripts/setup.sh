#!/usr/bin/env bash
# Craton HSM set-up: installs what the build and the tests need (only what is missing),
# installs the npm dependencies (only when package.json/package-lock.json changed), then
# builds everything with `npm run build`. Idempotent; a second run only checks and builds.
#
#   bash scripts/setup.sh             # check/install, then build
#   bash scripts/setup.sh --no-build  # check/install only
#
# Debian 12 (bookworm). Needs Node.js >= 20 on PATH (Debian's own nodejs is 18: install 20
# from NodeSource or nodejs.org first). Run as root, or as a user with sudo for apt.
set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    *) echo "setup.sh: unknown argument $arg (allowed: --no-build)" >&2; exit 2 ;;
  esac
done

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

# --- Node.js ------------------------------------------------------------------------------
command -v node >/dev/null || die "node is not installed; install Node.js 20 (e.g. NodeSource's nodejs 20.x) and rerun"
command -v npm >/dev/null || die "npm is not installed; install Node.js 20 with npm and rerun"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node.js >= 20 is required, found $(node --version)"

# --- Debian packages ------------------------------------------------------------------------
# package list: build (C module, N-API addons), PKCS#11 header, and the real clients the
# interop tests drive.
apt_pkgs=(
  gcc g++ make pkg-config python3          # C module; node-gyp for pkcs11js and our addon
  libp11-kit-dev p11-kit                   # packaged pkcs11.h (no hand-copied header)
  opensc                                   # pkcs11-tool
  softhsm2                                 # reference module for comparisons
  p11-kit-modules                          # p11-kit-client.so: bench column SoftHSM2 behind p11-kit server
  gnutls-bin                               # p11tool / certtool
  libengine-pkcs11-openssl openssl         # OpenSSL's pkcs11 engine, openssl CLI
  openssh-client                           # ssh-keygen -D, ssh-agent/ssh-add
  valgrind                                 # memcheck test of a client run
  rsyslog                                  # deploy test: rsyslogd -N1 checks the SIEM shipping config
  chromium                                 # evidence test: renders the offline HTML report headless
)
# --- eBPF tracer (tracer/, craton-trace): BPF compiler, libbpf, bpftool (skeleton and
# vmlinux.h from the running kernel's BTF), libelf/zlib for libbpf, libssl-dev for the
# tracer bench's overhead.c (OpenSSL headers). Debian 12 packages
# bpftool on its own; older releases ship it in linux-tools-common.
apt_pkgs+=(clang llvm libbpf-dev libelf-dev zlib1g-dev libssl-dev)
if apt-cache show bpftool >/dev/null 2>&1; then apt_pkgs+=(bpftool); else apt_pkgs+=(linux-tools-common); fi

missing=()
for p in "${apt_pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# Java interop (SunPKCS11): a JDK only when no javac is present.
if ! command -v javac >/dev/null; then
  missing+=(openjdk-17-jdk-headless)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: install as root: apt-get install ${missing[*]}"
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Lock timeout: wait for another apt/dpkg run to finish instead of failing.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}"
else
  say "Debian packages present"
fi

# --- npm dependencies -----------------------------------------------------------------------
stamp=node_modules/.craton-setup-stamp
want=$( (cat package.json package-lock.json; node --version) | sha256sum | cut -d' ' -f1)
if [ -d node_modules ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  say "node_modules up to date"
else
  say "installing npm dependencies"
  log=$(mktemp)
  if npm ci --no-audit --no-fund >"$log" 2>&1; then
    cat "$log"
  else
    # npm ci refuses a lock file that lacks some optional platform packages; npm install
    # resolves them without rewriting package-lock.json (--no-save).
    say "npm ci refused ($(grep -m1 -E 'npm error (Missing|code|`npm ci`)' "$log" || tail -n 1 "$log")); using npm install --no-save"
    npm install --no-audit --no-fund --no-save || { cat "$log" >&2; rm -f "$log"; die "npm install failed"; }
  fi
  rm -f "$log"
  echo "$want" > "$stamp"
fi
# pkcs11js is a native addon; make sure its binding was built (npm may skip install scripts).
if ! node -e 'require("pkcs11js")' 2>/dev/null; then
  say "building pkcs11js's native binding"
  npm rebuild pkcs11js --foreground-scripts
  node -e 'require("pkcs11js")' || die "pkcs11js does not load after npm rebuild"
fi

# --- build ----------------------------------------------------------------------------------
if [ "$build" -eq 1 ]; then
  say "npm run build"
  npm run build || die "npm run build failed"
  [ -f build/libcraton_hsm.so ] || die "build/libcraton_hsm.so was not produced"
  say "ready: module $(pwd)/build/libcraton_hsm.so, daemon bin/craton-hsmd"
fi
