/**
 * One interface for "a place that gives me Postgres clusters". The lab and the tests only see
 * these types; embedded binaries, Docker containers and external URLs live behind them.
 */
export type ProviderKind = 'embedded' | 'docker' | 'external';

export type LocaleProvider = 'libc' | 'icu' | 'builtin';

export interface ClusterSpec {
  /** Role of the cluster in the lab: 'old', 'new', or any label. */
  name: string;
  major: number;
  /** Application database created after initdb. */
  database?: string;
  /** Superuser name (default postgres). */
  user?: string;
  /** Superuser password (default: random per cluster). */
  password?: string;
  /** Loopback address to listen on (default: the first free 127.0.0.x, x ≥ 2). */
  host?: string;
  /** Port (default 5432: old and new share it on different addresses, like two hosts). */
  port?: number;
  locale?: string;
  encoding?: string;
  localeProvider?: LocaleProvider;
  /** ICU locale (localeProvider icu) or builtin locale (localeProvider builtin). */
  icuLocale?: string;
  timezone?: string;
  /** Any server setting, written to postgresql.conf. */
  gucs?: Record<string, string | number | boolean>;
  /** Will publish (logical replication source): wal_level=logical and enough slots/senders. Default true. */
  publisher?: boolean;
  dataChecksums?: boolean;
  /** docker provider: the image (default the official postgres:<major>-bookworm; `lab` builds one locally). */
  image?: string;
}

/** What a lab records about a running cluster, enough for another process to find and stop it. */
export interface ClusterRecord {
  provider: ProviderKind;
  name: string;
  major: number;
  versionNum?: number;
  url: string;
  host: string;
  port: number;
  database: string;
  user: string;
  dataDir?: string;
  logFile?: string;
  pid?: number;
  binRoot?: string;
  containerId?: string;
  spec?: ClusterSpec;
}

export interface StartedCluster {
  readonly record: ClusterRecord;
  readonly url: string;
  readonly major: number;
  /** True while the server process answers (a died postmaster is reported, not waited on). */
  alive(): Promise<boolean>;
  /** Stop the server, keep its data (a stopped embedded cluster can be cloned as a golden copy). */
  stop(): Promise<void>;
  /** Stop and remove everything the provider created for it. External clusters are never touched. */
  destroy(): Promise<void>;
  /** Write the server's log to `record.logFile` now (containers: their output), when it is not a file the server writes itself. */
  collectLog?(): Promise<void>;
  /** Kill the postmaster with SIGKILL (fault injection). */
  kill?(): Promise<void>;
  /** Restart after a stop or kill, same address and data. */
  restart?(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface StartOptions {
  /** Directory for this cluster's data and log (embedded). */
  dir: string;
  /** Start from a copy of this stopped data directory instead of initdb (golden clone). */
  fromDataDir?: string;
  log?: (line: string) => void;
  /** Keep the server running after this process exits (lab up). */
  detached?: boolean;
}

export interface ClusterProvider {
  readonly kind: ProviderKind;
  start(spec: ClusterSpec, opts: StartOptions): Promise<StartedCluster>;
  /** Re-attach to a cluster recorded by an earlier process. */
  attach(record: ClusterRecord): StartedCluster;
}
