// The daemon's configuration after loading and validation (load.ts). Every path is
// absolute here: relative paths in the TOML are resolved by the loader as documented
// in config/craton_hsm.toml. Field names mirror the TOML keys.
export interface Config {
  daemon: {
    socket_path: string;
    admin_socket_path: string;
    data_dir: string;
    log_level: 'error' | 'warn' | 'info' | 'debug';
  };
  slots: { count: number; default_label_prefix: string };
  limits: {
    max_frame_bytes: number;
    max_connections_per_app: number;
    max_sessions_per_app: number;
    max_objects_per_token: number;
    max_session_objects_per_app: number;
    frame_timeout_ms: number;
  };
  security: {
    pbkdf2_iterations: number;
    pin_min_length: number;
    pin_max_length: number;
    max_failed_logins: number;
    failed_login_delay_base_ms: number;
    failed_login_delay_cap_ms: number;
  };
  audit: {
    log_level: 'all' | 'crypto' | 'auth' | 'admin' | 'none';
    log_path: string;
    max_segment_bytes: number;
    fail_closed: boolean;
    checkpoint_interval_entries: number;
  };
  algorithms: {
    fips_approved_only: boolean;
    enforce: 'strict' | 'warn';
    allow: string[];
    deny: string[];
    rsa_min_bits: number;
    ec_min_bits: number;
    hmac_min_key_bits: number;
    allow_sha1_verify: boolean;
    allow_aes_ecb: boolean;
    allow_raw_rsa: boolean;
  };
  nonce: {
    gcm_invocation_limit: number;
    alert_thresholds: number[];
    caller_iv: 'accept' | 'reject_reuse' | 'generate';
    /** Invocations added to each backed-up GCM counter on restore (docs/backup.md). */
    restore_gap: number;
  };
  /** Encrypted token backups (admin/backup.ts, docs/backup.md). */
  backup: { pbkdf2_iterations: number };
  /** Key lifecycle windows (lifecycle/dates.ts). */
  lifecycle: { processing_after_end_date: 'allow' | 'refuse' };
  alerts: {
    queue_size: number;
    max_retries: number;
    webhook?: { url: string };
    pagerduty?: { url: string; routing_key: string };
    command?: { argv: string[] };
  };
  /** Prometheus endpoint (metrics/): loopback only unless allow_non_loopback. */
  metrics: { enabled: boolean; listen: string; allow_non_loopback: boolean };
  /** Usage-anomaly detection (anomaly/, docs/anomaly.md). */
  anomaly: {
    enabled: boolean;
    bucket_seconds: number;
    warmup_buckets: number;
    half_life_buckets: number;
    rate_sigma: number;
    rate_floor: number;
    rate_low: boolean;
    rate_low_min_calls: number;
    failure_ratio: number;
    min_failures: number;
    new_mechanism: boolean;
    new_key: boolean;
    unusual_hour: boolean;
    max_clients: number;
    max_keys_per_client: number;
    save_interval_seconds: number;
  };
}

/** Command-line / environment overrides, applied after the file. */
export interface ConfigOverrides {
  configPath?: string;
  dataDir?: string;
  socketPath?: string;
}
