// AES-GCM nonce safety: invocation counters that survive crashes, thresholds, the caller-IV rule.
export { GcmCounters, severityOf, defaultBlockSize, type ThresholdEvent, type RefusedEvent, type KeyUsage, type Severity } from './counters.js';
export { GcmNonceGuard, keyId, IV_WINDOW, GENERATED_IV_BYTES, type CallerIvPolicy, type GuardSettings, type GuardedKey, type IvReuseEvent } from './guard.js';
