#!/bin/sh
# craton-audit-ship.sh: the gate between the audit log and the SIEM. Every ROTATED audit
# segment is verified with `craton-hsm-admin audit verify` before a copy is placed in the
# spool directory that the log shipper (Vector, Fluent Bit, rsyslog) reads. A segment that
# fails verification is never shipped: a report goes to SPOOL/failed/ and the script exits
# 1 (a security event: page, keep the original for forensics). The live segment is not
# shipped until it rotates (size, SIGUSR1, `craton-hsm-admin audit rotate`).
#
# Usage: craton-audit-ship.sh [--watch SECONDS]
# Environment:
#   AUDIT_DIR   directory of the audit log (read only)      default /var/lib/craton-hsm/audit
#   SPOOL_DIR   verified copies for the shipper              default /var/spool/craton-hsm-audit
#   PUBKEY      checkpoint public key (craton-hsm-admin audit pubkey); optional
#   HMAC_KEY    initial HMAC key file (audit-hmac-initial.key); optional
#   SYSLOG=1    also write SEGMENT.syslog (audit export --format syslog) for rsyslog
#   ADMIN       craton-hsm-admin command                     default craton-hsm-admin
#   ADMIN_ARGS  extra global options, e.g. "--config /etc/craton-hsm/craton_hsm.toml"
set -eu

AUDIT_DIR=${AUDIT_DIR:-/var/lib/craton-hsm/audit}
SPOOL_DIR=${SPOOL_DIR:-/var/spool/craton-hsm-audit}
ADMIN=${ADMIN:-craton-hsm-admin}
ADMIN_ARGS=${ADMIN_ARGS:-}
watch=0
if [ "${1:-}" = "--watch" ]; then watch=${2:?--watch needs SECONDS}; fi

umask 027
mkdir -p "$SPOOL_DIR/failed"

say() { printf 'craton-audit-ship: %s\n' "$*" >&2; }

ship_once() {
  status=0
  # Rotated segments are <stem>.<first seq, 12 digits>.jsonl; sorted = in seq order.
  for seg in "$AUDIT_DIR"/*.[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9].jsonl; do
    [ -f "$seg" ] || continue
    name=$(basename "$seg")
    [ -e "$SPOOL_DIR/$name" ] && continue
    if [ -e "$SPOOL_DIR/failed/$name.txt" ]; then status=1; continue; fi
    set -- audit verify
    if [ -n "${PUBKEY:-}" ]; then
      if [ -r "$PUBKEY" ]; then set -- "$@" --pubkey "$PUBKEY"; else say "warning: PUBKEY $PUBKEY not readable; checkpoint signatures not checked"; fi
    fi
    if [ -n "${HMAC_KEY:-}" ]; then
      if [ -r "$HMAC_KEY" ]; then set -- "$@" --key "$HMAC_KEY"; else say "warning: HMAC_KEY $HMAC_KEY not readable; keyed layer not checked"; fi
    fi
    # shellcheck disable=SC2086 # ADMIN_ARGS is a list of options
    if out=$($ADMIN $ADMIN_ARGS "$@" "$seg" 2>&1); then
      if [ "${SYSLOG:-0}" = "1" ]; then
        # shellcheck disable=SC2086
        $ADMIN $ADMIN_ARGS audit export --format syslog "$seg" > "$SPOOL_DIR/.$name.syslog.tmp"
        mv "$SPOOL_DIR/.$name.syslog.tmp" "$SPOOL_DIR/${name%.jsonl}.syslog"
      fi
      # Copy, then rename: the shipper never sees a partial file.
      cat "$seg" > "$SPOOL_DIR/.$name.tmp"   # new file: mode from umask 027 (0640)
      mv "$SPOOL_DIR/.$name.tmp" "$SPOOL_DIR/$name"
      say "shipped $name ($(printf '%s' "$out" | head -n 1))"
    else
      printf '%s\n' "$out" > "$SPOOL_DIR/failed/$name.txt"
      say "VERIFY FAILED for $name; not shipped; report in $SPOOL_DIR/failed/$name.txt"
      status=1
    fi
  done
  return $status
}

if [ "$watch" -gt 0 ]; then
  while :; do
    ship_once || say "some segments failed verification (see $SPOOL_DIR/failed/)"
    sleep "$watch"
  done
else
  ship_once
fi
