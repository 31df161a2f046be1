/**
 * StackSpec: the plain-data result of converting a compose file. Every `args`
 * object has the shape of the matching @pulumi/docker 5.0.0 resource args
 * (checked at compile time in provider-compat.ts), with plain values only.
 *
 * Services refer to networks, secrets and configs by engine *name*; the
 * provider wants IDs, so {@link resolveServiceArgs} swaps them for the IDs of
 * the created resources (or looked-up external ones).
 */
import type { ComposeWarning } from "./errors";

export interface Label {
  label: string;
  value: string;
}

export interface PlainNetworkArgs {
  name: string;
  driver: string;
  attachable?: boolean;
  internal?: boolean;
  ipamDriver?: string;
  ipamConfigs?: Array<{ subnet: string }>;
  labels: Label[];
  options?: Record<string, string>;
}

export interface PlainVolumeArgs {
  name: string;
  driver?: string;
  driverOpts?: Record<string, string>;
  labels: Label[];
}

export interface PlainSecretArgs {
  name: string;
  /** base64 of the content, as the provider wants it */
  data: string;
  labels: Label[];
}

export type PlainConfigArgs = PlainSecretArgs;

export interface PlainMount {
  type: string;
  target: string;
  source?: string;
  readOnly?: boolean;
  bindOptions?: { propagation?: string };
  volumeOptions?: {
    noCopy?: boolean;
    labels?: Label[];
    driverName?: string;
    driverOptions?: Record<string, string>;
  };
  tmpfsOptions?: { sizeBytes?: number; mode?: number };
}

export interface PlainContainerSpec<Id = string> {
  image: string;
  commands?: string[];
  args?: string[];
  hostname?: string;
  hosts?: Array<{ host: string; ip: string }>;
  dnsConfig?: { nameservers: string[]; searches?: string[]; options?: string[] };
  healthcheck?: { tests?: string[]; interval?: string; timeout?: string; startPeriod?: string; retries?: number };
  env?: Record<string, string>;
  labels: Label[];
  dir?: string;
  user?: string;
  groups?: string[];
  mounts?: PlainMount[];
  stopGracePeriod?: string;
  stopSignal?: string;
  readOnly?: boolean;
  secrets?: Array<{ secretId: Id; secretName: string; fileName: string; fileUid: string; fileGid: string; fileMode: number }>;
  configs?: Array<{ configId: Id; configName: string; fileName: string; fileUid: string; fileGid: string; fileMode: number }>;
  privileges?: { credentialSpec?: { file?: string; registry?: string } };
  isolation?: string;
  sysctl?: Record<string, string>;
  capAdds?: string[];
  capDrops?: string[];
}

export interface PlainUpdateConfig {
  parallelism: number;
  delay: string;
  failureAction: string;
  monitor: string;
  maxFailureRatio: string;
  order: string;
}

export interface PlainServiceArgs<Id = string> {
  name: string;
  labels: Label[];
  mode: { global?: boolean; replicated?: { replicas: number } };
  endpointSpec: {
    mode: string;
    ports?: Array<{ targetPort: number; publishedPort?: number; protocol: string; publishMode: string }>;
  };
  updateConfig?: PlainUpdateConfig;
  rollbackConfig?: PlainUpdateConfig;
  taskSpec: {
    containerSpec: PlainContainerSpec<Id>;
    logDriver?: { name: string; options?: Record<string, string> };
    networksAdvanceds?: Array<{ name: Id; aliases?: string[]; driverOpts?: string[] }>;
    placement?: { constraints?: string[]; prefs?: string[]; maxReplicas?: number };
    resources?: {
      limits?: { nanoCpus?: number; memoryBytes?: number };
      reservation?: {
        nanoCpus?: number;
        memoryBytes?: number;
        genericResources?: { discreteResourcesSpecs?: string[] };
      };
    };
    restartPolicy?: { condition?: string; delay?: string; maxAttempts?: number; window?: string };
  };
}

/** An engine field `docker stack deploy` sets that @pulumi/docker 5.0.0 has no input for. */
export interface NotExpressible {
  /** Compose key path, e.g. `services.web.tty`. */
  key: string;
  /** Engine ServiceSpec field, e.g. `TaskTemplate.ContainerSpec.TTY`. */
  field: string;
  value: unknown;
}

export interface NetworkSpec {
  /** Name in the compose file (`default` for the implicit one). */
  key: string;
  /** Engine name: `<stack>_<key>` or `name:`. */
  name: string;
  args: PlainNetworkArgs;
}

/**
 * A named volume services mount. `docker stack deploy` does not create
 * volumes: the engine creates them on each node where a task starts, from the
 * mount's volumeOptions (which the service args carry). These entries are
 * informational; creating them with docker.Volume would create them on one
 * node only.
 */
export interface VolumeSpec {
  key: string;
  name: string;
  args: PlainVolumeArgs;
}

export interface FileObjectSpec {
  key: string;
  /** Engine name, with the content-hash suffix: `<stack>_<key>-<8 hex>` (or `<name>-<8 hex>`). */
  name: string;
  /** The name `docker stack deploy` would use (no suffix). */
  stackDeployName: string;
  /** Absolute path of the content file. */
  file: string;
  /** sha256 of the content, hex. */
  sha256: string;
  args: PlainSecretArgs;
  /** `template_driver` (Engine API Templating.Name): @pulumi/docker 5.0.0 has no input for it. */
  templateDriver?: string;
  /** A secret's `driver`/`driver_opts` (Engine API Driver): not in @pulumi/docker 5.0.0 either. */
  driver?: { name: string; options: Record<string, string> };
}

export interface ServiceSpec {
  /** Name in the compose file. */
  key: string;
  /** Engine name `<stack>_<key>`. */
  name: string;
  /** Compose keys of the services to create first (depends_on, cycles and unknown names removed). */
  dependsOn: string[];
  /** Engine names of the networks, secrets and configs the args refer to. */
  networks: string[];
  secrets: string[];
  configs: string[];
  args: PlainServiceArgs<string>;
  notExpressible: NotExpressible[];
}

export interface StackSpec {
  stack: string;
  file: string;
  /** Networks to create (used by some service), in name order. */
  networks: NetworkSpec[];
  volumes: VolumeSpec[];
  secrets: FileObjectSpec[];
  configs: FileObjectSpec[];
  /** Services in creation order: depends_on first, then name order. */
  services: ServiceSpec[];
  /** Pre-existing objects the stack refers to (engine names). */
  external: { networks: string[]; volumes: string[]; secrets: string[]; configs: string[] };
  /** External secrets (engine names) the program creates from the given value (overrides.externalSecrets). */
  providedSecrets: Record<string, ExternalSecretValue>;
  /** Host paths of the services' bind mounts (after overrides.bindPaths), sorted. */
  bindSources: string[];
  /** overrides.createBindPaths: make missing bind sources on every node first. */
  createBindPaths: boolean;
  warnings: ComposeWarning[];
  /** Deliberate differences from `docker stack deploy` in this stack, one sentence each. */
  differences: string[];
}

export interface StackOverrides {
  /** Prefix for images without a registry host: `registry.lab:5000` turns `mysql:8` into `registry.lab:5000/mysql:8`. */
  registryPrefix?: string;
  /** Registry host rewrite: `{ "docker-registry.dccn.nl:5000": "registry.lab:5000" }`. */
  registryMap?: Record<string, string>;
  /** Full image per service, replacing the file's (and the rewrites above). */
  images?: Record<string, string>;
  /** Host path prefix rewrite for bind mounts, longest prefix first: `{ "/mnt/docker/data": "/srv/lab/data" }`. */
  bindPaths?: Record<string, string>;
  /** Replicas per service (replicated services only). */
  replicas?: Record<string, number>;
  /** Published port rewrite per service, keyed by the published port in the file: `{ web: { 8080: 18080 } }`. */
  ports?: Record<string, Record<string, number>>;
  /**
   * Publish mode of every published port of a service: `{ ui: host }` (a cluster without the
   * ingress routing mesh, such as the lab, serves host-mode ports only).
   */
  publishMode?: Record<string, "host" | "ingress">;
  /**
   * Endpoint mode of a service: `{ db: dnsrr }` (the service name resolves to its tasks' addresses;
   * a cluster without IPVS, such as the lab, cannot route to a virtual IP across nodes).
   */
  endpointMode?: Record<string, "vip" | "dnsrr">;
  /**
   * Make the (rewritten) bind-mount source paths that do not exist, as empty directories, on every
   * node before the services start (a lab whose nodes have none of the production data).
   */
  createBindPaths?: boolean;
  /**
   * Values for external secrets the file names, so that the program creates them (under their
   * external name) when they are missing: `{ generate: true }` a random value made once and kept
   * in Pulumi's state as a secret, or `{ config: KEY }` the secret stack config value
   * `dccn-swarm:KEY` (`pulumi config set --secret KEY`).
   */
  externalSecrets?: Record<string, ExternalSecretValue>;
}

export type ExternalSecretValue = { generate: true } | { config: string };
