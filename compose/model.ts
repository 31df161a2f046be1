/**
 * The loaded (validated, interpolated, normalised) form of a compose file:
 * what the Docker CLI's loader hands to its converter.
 */
import type { ComposeWarning } from "./errors";
import type { PortEntry } from "./ports";

export interface ServiceNetwork {
  aliases: string[];
  driverOpts: Record<string, string>;
}

export interface FileRef {
  source: string;
  target?: string;
  uid?: string;
  gid?: string;
  mode?: number;
}

export interface MountConfig {
  type: string;
  source?: string;
  target: string;
  readOnly: boolean;
  consistency?: string;
  bindPropagation?: string;
  /** Present when bind options were given (even empty). */
  bind?: boolean;
  noCopy?: boolean;
  /** Present when volume options were given. */
  volume?: boolean;
  tmpfsSize?: number;
  /** Present when tmpfs options were given. */
  tmpfs?: boolean;
}

export interface UpdateConfigModel {
  parallelism?: number;
  delay: number;
  failureAction?: string;
  monitor: number;
  maxFailureRatio: number;
  order?: string;
}

export interface DeployModel {
  mode: string;
  replicas?: number;
  labels: Record<string, string>;
  updateConfig?: UpdateConfigModel;
  rollbackConfig?: UpdateConfigModel;
  limits?: { nanoCpus: number; memoryBytes: number; pids: number };
  reservations?: { nanoCpus: number; memoryBytes: number; generic: Array<{ kind: string; value: number }> };
  restartPolicy?: { condition?: string; delay?: number; maxAttempts?: number; window?: number };
  constraints: string[];
  preferences: string[];
  maxReplicasPerNode?: number;
  endpointMode: string;
}

export interface HealthcheckModel {
  test: string[];
  disable: boolean;
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}

/**
 * A service's `build:` (not done by `docker stack deploy`; the program builds the image on a manager
 * and pushes it as the service's `image`: components/stack.ts).
 */
export interface BuildModel {
  /** Absolute, real path of the context folder (under the compose file's folder). */
  context: string;
  /** The Dockerfile, relative to the context (default `Dockerfile`). */
  dockerfile: string;
  /** Build arguments (`--build-arg`). */
  args: Record<string, string>;
  /** Build stage (`--target`). */
  target?: string;
  /** Labels of the image. */
  labels: Record<string, string>;
}

export interface ServiceModel {
  name: string;
  image: string;
  /** `build:` as written (interpolated): parsed by parseBuild only where the program builds it. */
  buildRaw?: unknown;
  capAdd: string[];
  capDrop: string[];
  command?: string[];
  entrypoint?: string[];
  configs: FileRef[];
  secrets: FileRef[];
  credentialSpec: { config?: string; file?: string; registry?: string };
  dependsOn: string[];
  deploy: DeployModel;
  dns: string[];
  dnsSearch: string[];
  /** Resolved environment (env_file merged, then `environment`); null = declared without a value. */
  environment: Record<string, string | null>;
  envFiles: string[];
  extraHosts: string[];
  healthcheck?: HealthcheckModel;
  hostname?: string;
  init?: boolean;
  isolation?: string;
  labels: Record<string, string>;
  logging?: { driver?: string; options: Record<string, string> };
  /** Service networks; empty means the stack's `default` network. */
  networks: Record<string, ServiceNetwork>;
  oomScoreAdj?: number;
  ports: PortEntry[];
  readOnly: boolean;
  restart?: string;
  stdinOpen: boolean;
  stopGracePeriod?: number;
  stopSignal?: string;
  sysctls: Record<string, string>;
  tty: boolean;
  ulimits: Record<string, { soft: number; hard: number }>;
  user?: string;
  volumes: MountConfig[];
  workingDir?: string;
  extras: Record<string, unknown>;
}

export interface NetworkModel {
  name?: string;
  external: boolean;
  driver?: string;
  driverOpts: Record<string, string>;
  ipamDriver?: string;
  ipamSubnets: string[];
  internal: boolean;
  attachable: boolean;
  labels: Record<string, string>;
  extras: Record<string, unknown>;
}

export interface VolumeModel {
  name?: string;
  external: boolean;
  driver?: string;
  driverOpts?: Record<string, string>;
  labels: Record<string, string>;
  extras: Record<string, unknown>;
}

export interface FileObjectModel {
  name?: string;
  external: boolean;
  /** Absolute path of the content file. */
  file?: string;
  /** The file's content (read at load time, so conversion is pure). */
  content?: Buffer;
  labels: Record<string, string>;
  /** A secret's `driver` and `driver_opts` (a secret store plugin that provides the value). */
  driver?: { name: string; options: Record<string, string> };
  /** `template_driver`: the engine renders the content per task (`golang`). */
  templateDriver?: string;
  extras: Record<string, unknown>;
}

export interface LoadedStack {
  /** Absolute path of the compose file. */
  file: string;
  /** Directory relative paths are resolved against. */
  workingDir: string;
  stackName: string;
  /** Normalised format version, e.g. "3.13". */
  version: string;
  /** Services in name order. */
  services: ServiceModel[];
  networks: Record<string, NetworkModel>;
  volumes: Record<string, VolumeModel>;
  secrets: Record<string, FileObjectModel>;
  configs: Record<string, FileObjectModel>;
  /** Top-level extension fields (`x-*`). */
  extras: Record<string, unknown>;
  warnings: ComposeWarning[];
}
