import { Type, type Static } from '@sinclair/typebox'
import { ConfigError, logLevelSetting, parseConfig } from '../core/config.js'
import { DEFAULT_REGISTRY_PORT } from '../core/defaults.js'

/** Every registry setting, with its flag, env variable and default (see core/config.ts). */
export const RegistrySettings = Type.Object({
  host: Type.String({ minLength: 1, default: '0.0.0.0', flag: 'host', env: 'SWITCHYARD_REGISTRY_HOST', description: 'address to listen on' }),
  port: Type.Integer({
    minimum: 0,
    maximum: 65535,
    default: DEFAULT_REGISTRY_PORT,
    flag: 'port',
    env: 'SWITCHYARD_REGISTRY_PORT',
    description: 'port to listen on (0 picks a free one)'
  }),
  store: Type.Union([Type.Literal('file'), Type.Literal('etcd')], {
    default: 'file',
    flag: 'store',
    env: 'SWITCHYARD_STORE',
    description: 'where the registry keeps its state: a file store in --data-dir (one registry), or etcd (any number of registry replicas)'
  }),
  dataDir: Type.String({ minLength: 1, default: '.switchyard/registry', flag: 'data-dir', env: 'SWITCHYARD_DATA_DIR', description: 'directory for the file store' }),
  etcdEndpoints: Type.Optional(
    Type.String({
      pattern: '^https?://[^,\\s]+(,https?://[^,\\s]+)*$',
      flag: 'etcd-endpoints',
      env: 'SWITCHYARD_ETCD_ENDPOINTS',
      description: 'with --store etcd: comma-separated etcd client URLs (http:// or https://)'
    })
  ),
  etcdPrefix: Type.String({
    pattern: '^/[A-Za-z0-9._/-]*$',
    default: '/switchyard',
    flag: 'etcd-prefix',
    env: 'SWITCHYARD_ETCD_PREFIX',
    description: 'with --store etcd: key prefix of this registry cluster (several clusters may share one etcd)'
  }),
  etcdUsername: Type.Optional(
    Type.String({
      minLength: 1,
      flag: 'etcd-username',
      env: 'SWITCHYARD_ETCD_USERNAME',
      description: 'with --store etcd: etcd user (password from SWITCHYARD_ETCD_PASSWORD or --etcd-password-file)'
    })
  ),
  etcdPasswordFile: Type.Optional(
    Type.String({ minLength: 1, flag: 'etcd-password-file', env: 'SWITCHYARD_ETCD_PASSWORD_FILE', description: "with --store etcd: file holding the etcd user's password" })
  ),
  etcdCaFile: Type.Optional(
    Type.String({ minLength: 1, flag: 'etcd-ca-file', env: 'SWITCHYARD_ETCD_CA_FILE', description: 'with https etcd endpoints: CA certificates to trust (PEM)' })
  ),
  etcdCertFile: Type.Optional(
    Type.String({
      minLength: 1,
      flag: 'etcd-cert-file',
      env: 'SWITCHYARD_ETCD_CERT_FILE',
      description: 'with https etcd endpoints: client certificate (PEM), for etcd --client-cert-auth'
    })
  ),
  etcdKeyFile: Type.Optional(
    Type.String({ minLength: 1, flag: 'etcd-key-file', env: 'SWITCHYARD_ETCD_KEY_FILE', description: "with https etcd endpoints: the client certificate's key (PEM)" })
  ),
  etcdTimeoutSeconds: Type.Number({
    exclusiveMinimum: 0,
    maximum: 60,
    default: 5,
    flag: 'etcd-timeout-seconds',
    env: 'SWITCHYARD_ETCD_TIMEOUT_SECONDS',
    description: 'with --store etcd: a request etcd has not answered in this time fails (a write then answers 503 STORE_UNAVAILABLE)'
  }),
  replicaId: Type.Optional(
    Type.String({
      pattern: '^[A-Za-z0-9._:-]{1,128}$',
      flag: 'replica-id',
      env: 'SWITCHYARD_REPLICA_ID',
      description: "with --store etcd: this replica's name (default: host, port and a random suffix)"
    })
  ),
  historyRetention: Type.Integer({
    minimum: 10,
    maximum: 1_000_000,
    default: 10_000,
    flag: 'history-retention',
    env: 'SWITCHYARD_HISTORY_RETENTION',
    description: 'changes kept for watchers that resume with since (older ones get a snapshot)'
  }),
  tokensFile: Type.Optional(Type.String({ minLength: 1, flag: 'tokens-file', env: 'SWITCHYARD_TOKENS_FILE', description: 'YAML or JSON file of tokens and roles' })),
  leaseSeconds: Type.Integer({
    minimum: 1,
    maximum: 3600,
    default: 30,
    flag: 'lease-seconds',
    env: 'SWITCHYARD_LEASE_SECONDS',
    description: 'an instance without a heartbeat for this long is evicted'
  }),
  renewSeconds: Type.Integer({
    minimum: 1,
    maximum: 3600,
    default: 10,
    flag: 'renew-seconds',
    env: 'SWITCHYARD_RENEW_SECONDS',
    description: 'how often instances are told to heartbeat'
  }),
  evictionIntervalSeconds: Type.Number({
    exclusiveMinimum: 0,
    maximum: 3600,
    default: 5,
    flag: 'eviction-interval-seconds',
    env: 'SWITCHYARD_EVICTION_INTERVAL_SECONDS',
    description: 'how often expired leases are swept'
  }),
  selfPreservationThreshold: Type.Number({
    minimum: 0,
    maximum: 1,
    default: 0.15,
    flag: 'self-preservation-threshold',
    env: 'SWITCHYARD_SELF_PRESERVATION_THRESHOLD',
    description: 'share of all instances that may expire in one sweep before eviction is suspended'
  }),
  selfPreservationMinExpired: Type.Integer({
    minimum: 1,
    default: 2,
    flag: 'self-preservation-min-expired',
    env: 'SWITCHYARD_SELF_PRESERVATION_MIN_EXPIRED',
    description: 'fewer simultaneous expiries than this are always evicted (one crash is not a partition)'
  }),
  selfPreservationMaxSeconds: Type.Number({
    exclusiveMinimum: 0,
    maximum: 86_400,
    default: 300,
    flag: 'self-preservation-max-seconds',
    env: 'SWITCHYARD_SELF_PRESERVATION_MAX_SECONDS',
    description: 'self-preservation ends after this long: instances still expired are then evicted (a partition longer than this loses them)'
  }),
  watchHeartbeatSeconds: Type.Number({
    exclusiveMinimum: 0,
    maximum: 300,
    default: 15,
    flag: 'watch-heartbeat-seconds',
    env: 'SWITCHYARD_WATCH_HEARTBEAT_SECONDS',
    description: 'heartbeat interval on idle watch streams'
  }),
  routerTimeoutSeconds: Type.Number({
    minimum: 2,
    maximum: 3600,
    default: 10,
    flag: 'router-timeout-seconds',
    env: 'SWITCHYARD_ROUTER_TIMEOUT_SECONDS',
    description: 'a router that has not reported for this long is dropped from /v1/routers and from every wait'
  }),
  rolloutTickSeconds: Type.Number({
    minimum: 0.05,
    maximum: 60,
    default: 1,
    flag: 'rollout-tick-seconds',
    env: 'SWITCHYARD_ROLLOUT_TICK_SECONDS',
    description: 'how often active rollouts are advanced'
  }),
  signals: Type.Union([Type.Literal('routers'), Type.Literal('prometheus')], {
    default: 'routers',
    flag: 'signals',
    env: 'SWITCHYARD_SIGNALS',
    description: "where rollouts and /signals read per-version figures: the routers' own reports, or a Prometheus that scrapes them"
  }),
  prometheusUrl: Type.Optional(
    Type.String({ pattern: '^https?://', flag: 'prometheus-url', env: 'SWITCHYARD_PROMETHEUS_URL', description: 'with --signals prometheus: the Prometheus to query' })
  ),
  prometheusQueries: Type.Optional(
    Type.String({
      minLength: 1,
      flag: 'prometheus-queries',
      env: 'SWITCHYARD_PROMETHEUS_QUERIES',
      description: 'with --signals prometheus: a YAML file of PromQL templates per signal (defaults fit switchyard metrics)'
    })
  ),
  logLevel: logLevelSetting()
})

export type RegistryConfig = Static<typeof RegistrySettings>

export function parseRegistryConfig(flags: Readonly<Record<string, unknown>>, env: Readonly<Record<string, string | undefined>>): RegistryConfig {
  const config = parseConfig(RegistrySettings, flags, env)
  if (config.renewSeconds >= config.leaseSeconds) {
    throw new ConfigError([`--renew-seconds (${config.renewSeconds}) must be shorter than --lease-seconds (${config.leaseSeconds}), or leases expire between heartbeats`])
  }
  if (config.store === 'etcd' && config.etcdEndpoints === undefined) {
    throw new ConfigError(['--store etcd needs --etcd-endpoints (or SWITCHYARD_ETCD_ENDPOINTS)'])
  }
  if ((config.etcdCertFile === undefined) !== (config.etcdKeyFile === undefined)) {
    throw new ConfigError(['--etcd-cert-file and --etcd-key-file go together'])
  }
  if (config.signals === 'prometheus' && config.prometheusUrl === undefined) {
    throw new ConfigError(['--signals prometheus needs --prometheus-url (or SWITCHYARD_PROMETHEUS_URL)'])
  }
  return config
}
