/**
 * StackSpec: the result of converting a compose file. Every object the stack creates is held as the
 * Engine API JSON `docker stack deploy` sends for it (docker/cli cli/compose/convert), with sorted
 * keys: a NetworkCreate body per network, a SecretSpec / ConfigSpec per secret and config, a
 * ServiceSpec per service.
 *
 * Services refer to networks, secrets and configs by engine *name*: the engine resolves network
 * names itself; SecretID / ConfigID are looked up right before the spec is sent, as the CLI's
 * ParseSecrets / ParseConfigs do.
 */
import type { ComposeWarning } from "./errors";

/** An Engine API JSON value. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export interface NetworkSpec {
  /** Name in the compose file (`default` for the implicit one). */
  key: string;
  /** Engine name: `<stack>_<key>` or `name:`. */
  name: string;
  /** The NetworkCreate body (POST /networks/create). */
  create: JsonObject;
}

/**
 * A named volume services mount. `docker stack deploy` does not create volumes: the engine creates
 * them on each node where a task starts, from the mount's VolumeOptions (which the ServiceSpec
 * carries). These entries are informational: `create` is the VolumeCreate body the engine's
 * mount would amount to (Name, Driver, DriverOpts, Labels).
 */
export interface VolumeSpec {
  key: string;
  name: string;
  create: JsonObject;
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
  /**
   * The SecretSpec / ConfigSpec (POST /secrets/create, /configs/create): Name, Labels, Data
   * (base64), and as the CLI sets them Templating (`template_driver`) and a secret's Driver.
   */
  spec: JsonObject;
}

export interface ServiceSpec {
  /** Name in the compose file. */
  key: string;
  /** Engine name `<stack>_<key>`. */
  name: string;
  /** Compose keys of the services to create first (depends_on, cycles and unknown names removed). */
  dependsOn: string[];
  /** Engine names of the networks, secrets and configs the spec refers to. */
  networks: string[];
  secrets: string[];
  configs: string[];
  /**
   * The ServiceSpec `docker stack deploy` sends (API 1.41 shape). Network targets are engine
   * names; SecretID / ConfigID are absent: the provider fills them in from the engine right before
   * it sends the spec.
   */
  spec: JsonObject;
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
  /**
   * What the file needs of the swarm's engine (compose/target.ts): set when it was converted with a
   * newer CLI's rules than 20.10's and 20.10's refuse it or convert it otherwise. The stack's
   * resources refuse, at preview, an engine held to older rules (lib/stack-providers.ts).
   */
  requires?: EngineRequirement;
}

/** Why a stack needs an engine whose docker CLI is `cli` or later: the first thing the older rules refuse or convert otherwise. */
export interface EngineRequirement {
  /** The docker CLI (major.minor) whose `docker stack deploy` rules the stack was converted with. */
  cli: string;
  /** The older CLI whose rules refuse the file, or convert it otherwise. */
  olderCli: string;
  file: string;
  /** Dotted key path of what the older rules refuse ("version", `services.web.deploy.mode`). */
  key: string;
  reason: string;
  fix: string;
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
  /**
   * Images the program builds for services whose file has no `build:` (a lab's stand-in for an image
   * of a public registry): service name to `build:` as in a compose file, with paths relative to the
   * project (`{ db: { context: stacks/lab/mariadb } }`). Replaces the file's `build:` of that service.
   */
  build?: Record<string, unknown>;
}

export type ExternalSecretValue = { generate: true } | { config: string };
