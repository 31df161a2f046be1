/**
 * loadCompose: read, parse, interpolate, validate and normalise one compose
 * file with the meaning `docker stack deploy` gives it. The only I/O is
 * reading the compose file, its env_files and its secret/config files.
 */
import { readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { confinedPath, readConfined } from "./confine";
import { loadBounded, YamlExpansionError } from "./yaml-bounded";
import { ComposeError, ComposeWarning, keyPath } from "./errors";
import { interpolateConfig } from "./interpolate";
import type {
  BuildModel, DeployModel, FileObjectModel, FileRef, HealthcheckModel, LoadedStack, MountConfig, NetworkModel,
  ServiceModel, ServiceNetwork, UpdateConfigModel, VolumeModel,
} from "./model";
import { parseEnvFile, parseShortVolume, shellSplit, type VolumeEntry } from "./parse";
import { parseShortPort, type PortEntry } from "./ports";
import { KNOWN_CLIS, rulesFor, type StackDeployRules } from "./cli-rules";
import { LATEST_MINOR, STACK_DEPLOY_CLI } from "./schema";
import { parseCpus, parseDuration, ramInBytes } from "./units";
import { validateSchema, validateVersionFeatures } from "./validate";

export interface LoadOptions {
  /**
   * Variables for interpolation, bare env_file entries and `~` (HOME). Nothing
   * is taken from the process environment unless passed here, so the result
   * does not depend on the machine that runs the program.
   */
  env?: Record<string, string | undefined>;
  /** Stack (namespace) name: prefixes every object name. */
  stackName: string;
  /**
   * The docker CLI (or engine) version whose `docker stack deploy` rules the file is read with
   * (compose/cli-rules.ts: 20.10's, or 26.1's from 26.1 on). Default STACK_DEPLOY_CLI, 20.10: the
   * lab's and DCCN's. compose/target.ts picks it from the stack's pinned engine version.
   */
  cli?: string;
}

/** Rejected by `docker stack deploy`, with the CLI's own advice. */
export const FORBIDDEN: Record<string, string> = {
  extends: "Support for `extends` is not implemented yet: inline the extended service's keys (YAML anchors work)",
  volume_driver: "Instead of setting the volume driver on the service, define a volume using the top-level `volumes` option and specify the driver there",
  volumes_from: "To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option",
  cpu_quota: "Set resource limits using deploy.resources",
  cpu_shares: "Set resource limits using deploy.resources",
  cpuset: "Set resource limits using deploy.resources",
  mem_limit: "Set resource limits using deploy.resources",
  memswap_limit: "Set resource limits using deploy.resources",
};

/** Warned about and ignored by `docker stack deploy` ("Ignoring unsupported options"). */
export const UNSUPPORTED = [
  "build", "cgroupns_mode", "cgroup_parent", "devices", "domainname", "external_links", "ipc", "links",
  "mac_address", "network_mode", "pid", "privileged", "restart", "security_opt", "shm_size", "userns_mode",
];

/** Warned about as deprecated and ignored by `docker stack deploy`. */
export const DEPRECATED: Record<string, string> = {
  container_name: "Setting the container name is not supported.",
  expose: "Exposing ports is unnecessary - services on the same network can access each other's containers on any port.",
};

// ---------------------------------------------------------------------------
// YAML

/** YAML 1.2 core schema plus merge keys, and 0-prefixed octal ints as the CLI's YAML library reads them (mode: 0440). */
const intType = new yaml.Type("tag:yaml.org,2002:int", {
  kind: "scalar",
  resolve: (d: string | null) =>
    d !== null && (/^[-+]?(0|[1-9][0-9]*)$/.test(d) || /^0o[0-7]+$/.test(d) || /^0x[0-9a-fA-F]+$/.test(d) || /^[-+]?0[0-7]+$/.test(d)),
  construct: (d: string) => {
    if (d.startsWith("0o")) return parseInt(d.slice(2), 8);
    if (d.startsWith("0x")) return parseInt(d.slice(2), 16);
    const m = /^([-+]?)0([0-7]+)$/.exec(d);
    if (m) return (m[1] === "-" ? -1 : 1) * parseInt(m[2], 8);
    return parseInt(d, 10);
  },
  predicate: (o: unknown) => typeof o === "number" && Number.isInteger(o),
  represent: (o: object) => String(o),
});
/**
 * Booleans as the YAML library of CLI 20.10 and 26.1 (gopkg.in/yaml.v2) resolves plain scalars:
 * YAML 1.1's y/yes/on and n/no/off besides true/false, so `tty: yes` is true and
 * `environment: {A: on}` a boolean the schema refuses, as in their `docker stack deploy`
 * (StackDeployRules.yaml11Bools; later CLIs read YAML 1.2).
 */
const BOOLS: Record<string, boolean> = Object.fromEntries([
  ...["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"].map((w) => [w, true]),
  ...["n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"].map((w) => [w, false]),
]);
const boolType = new yaml.Type("tag:yaml.org,2002:bool", {
  kind: "scalar",
  resolve: (d: string | null) => d !== null && Object.prototype.hasOwnProperty.call(BOOLS, d),
  construct: (d: string) => BOOLS[d],
  predicate: (o: unknown) => typeof o === "boolean",
  represent: (o: object) => String(o),
});
// js-yaml 4 exports its built-in types at run time; @types/js-yaml does not declare them.
const mergeType = (yaml as unknown as { types: { merge: yaml.Type } }).types.merge;
const YAML_SCHEMA = yaml.CORE_SCHEMA.extend({ implicit: [intType, mergeType] });
const YAML11_SCHEMA = yaml.CORE_SCHEMA.extend({ implicit: [intType, boolType, mergeType] });

export function parseYaml(file: string, text: string, yaml11Bools = false): unknown {
  try {
    // Bounded: anchors and aliases that expand beyond MAX_EXPANDED_WEIGHT are refused (compose/yaml-bounded.ts).
    return loadBounded(text, { filename: file, schema: yaml11Bools ? YAML11_SCHEMA : YAML_SCHEMA });
  } catch (e) {
    if (e instanceof YamlExpansionError) {
      throw new ComposeError(file, "", `YAML anchors and aliases at line ${e.line} expand beyond the limit of ${e.limit} ` +
        "(a \"billion laughs\": a few hundred bytes that would exhaust the program's memory)",
        `reuse anchors without nesting aliases of aliases at line ${e.line}, or write the values out`);
    }
    if (e instanceof yaml.YAMLException) {
      const mark = e.mark;
      const where = mark ? `line ${mark.line + 1}, column ${mark.column + 1}` : "unknown position";
      throw new ComposeError(file, "", `malformed YAML at ${where}: ${e.reason}`, "fix the YAML syntax at that line");
    }
    throw e;
  }
}

// ---------------------------------------------------------------------------
// helpers

type Dict = Record<string, unknown>;
const isDict = (v: unknown): v is Dict => typeof v === "object" && v !== null && !Array.isArray(v);

function scalarString(v: unknown): string {
  return typeof v === "string" ? v : String(v);
}

/** list_or_dict to a map; `nullable` keeps `KEY` / `KEY: ~` as null (environment), else "". */
function mappingOrList(v: unknown, sep: string, nullable: boolean): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  if (Array.isArray(v)) {
    for (const item of v as string[]) {
      const i = item.indexOf(sep);
      if (i < 0) out[item] = nullable ? null : "";
      else out[item.slice(0, i)] = item.slice(i + 1);
    }
  } else if (isDict(v)) {
    for (const [k, val] of Object.entries(v)) out[k] = val === null || val === undefined ? (nullable ? null : "") : scalarString(val);
  }
  return out;
}

function labelsOf(v: unknown): Record<string, string> {
  return mappingOrList(v, "=", false) as Record<string, string>;
}

function stringList(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  return typeof v === "string" ? [v] : (v as string[]).slice();
}

function extrasOf(d: Dict | null | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!d) return out;
  for (const [k, v] of Object.entries(d)) if (k.startsWith("x-")) out[k] = v;
  return out;
}

function durationOf(file: string, key: string, v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  const ns = parseDuration(String(v));
  if (ns === undefined) throw new ComposeError(file, key, `invalid duration ${JSON.stringify(v)}`, "write a duration such as 10s, 1m30s or 500ms");
  return ns;
}

/** Keys of `build:` the program's build does not use (the engine's classic builder has no equivalent, or they are rarely needed). */
const BUILD_IGNORED = ["cache_from", "network", "shm_size", "extra_hosts", "isolation"];
const BUILD_STAGE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/**
 * A service's `build:` (a context path, or a map with context, dockerfile, args, target, labels),
 * as written at `key` of `file` with paths relative to `dir`. The context must be a folder under
 * `dir` (compose/confine.ts: never the project's .state, never outside), the Dockerfile a regular
 * file under the context. Also used for a stack config's `overrides.build` (`dir`: the project).
 */
export function parseBuild(file: string, dir: string, key: string, raw: unknown, env: (k: string) => string | undefined,
  warnings: ComposeWarning[]): BuildModel {
  const d: Dict = typeof raw === "string" ? { context: raw } : isDict(raw) ? raw : {};
  if (typeof raw !== "string" && !isDict(raw)) {
    throw new ComposeError(file, key, `must be a context path or a map (context, dockerfile, args, target, labels), got ${JSON.stringify(raw)}`,
      "write build: ./app or build: { context: ./app, dockerfile: Dockerfile }");
  }
  for (const k of Object.keys(d)) {
    if (BUILD_IGNORED.includes(k)) warnings.push({ file, key: `${key}.${k}`, message: `\`${k}\` is not used by the program's build and is ignored` });
    else if (!["context", "dockerfile", "args", "target", "labels"].includes(k)) {
      throw new ComposeError(file, `${key}.${k}`, "unknown build key", "use context, dockerfile, args, target or labels");
    }
  }
  const given = d.context === undefined ? "." : String(d.context);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(given) || /^git@/.test(given)) {
    throw new ComposeError(file, `${key}.context`, `${JSON.stringify(given)} is a URL`, "the program builds from a folder in the repository only: name it by a relative path such as ./app");
  }
  const context = confinedPath(file, dir, `${key}.context`, given, "build context ");
  let isDir = false;
  try {
    isDir = statSync(context).isDirectory();
  } catch { /* checked by confinedPath */ }
  if (!isDir) throw new ComposeError(file, `${key}.context`, `${JSON.stringify(given)} (${context}) is not a folder`, "name the folder that holds the Dockerfile and the files it copies");
  const dockerfile = d.dockerfile === undefined ? "Dockerfile" : String(d.dockerfile);
  const dfPath = confinedPath(file, context, `${key}.dockerfile`, dockerfile, "Dockerfile ");
  if (!statSync(dfPath).isFile()) throw new ComposeError(file, `${key}.dockerfile`, `${JSON.stringify(dockerfile)} is not a file`, "name the Dockerfile, relative to the context");
  const args: Record<string, string> = {};
  for (const [k, v] of Object.entries(mappingOrList(d.args ?? {}, "=", true))) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new ComposeError(file, `${key}.args.${k}`, "is not a build argument name", "use letters, digits and _");
    const value = v ?? env(k);
    if (value !== undefined) args[k] = String(value);
  }
  const out: BuildModel = { context, dockerfile: path.relative(context, dfPath).split(path.sep).join("/"), args, labels: labelsOf(d.labels) };
  if (d.target !== undefined) {
    const target = String(d.target);
    if (!BUILD_STAGE.test(target)) throw new ComposeError(file, `${key}.target`, `${JSON.stringify(target)} is not a build stage name`, "name a stage of the Dockerfile (FROM ... AS <name>)");
    out.target = target;
  }
  return out;
}

function absPath(dir: string, p: string): string {
  return path.isAbsolute(p) ? p : path.join(dir, p);
}

/**
 * The compose file version as docker stack deploy of `rules.cli` reads it (compose/cli-rules.ts):
 * 20.10 requires `version` (a file without it is read as 1.0 and refused), "3" is "3.0", and only
 * the 3.0 to 3.9 schemas exist; 26.1 reads a file without `version` (or "" or "3") as 3.12 and
 * has 3.0 to 3.12. Anything else has no schema file in the CLI ("unsupported Compose file
 * version"), "3.09" or "3.9.0" included.
 */
function parseVersion(file: string, raw: Dict, rules: StackDeployRules): { version: string; minor: number } {
  const max = rules.maxMinor;
  const stackDeploy = `docker stack deploy (docker CLI ${rules.cli})`;
  const fallback = rules.defaultVersion && { version: rules.defaultVersion, minor: Number(rules.defaultVersion.split(".")[1]) };
  if (!("version" in raw)) {
    if (fallback) return fallback;
    throw new ComposeError(file, "version", `missing: ${stackDeploy} reads a file without \`version\` as compose 1.0 and refuses it ` +
      "(unsupported Compose file version: 1.0)", `add version: "3.${max}" (or the 3.x version the file is written for) at the top`);
  }
  const v = raw.version;
  if (typeof v !== "string") {
    throw new ComposeError(file, "version", `must be a string, got ${JSON.stringify(v)}`, `quote it: version: "${String(v)}"`);
  }
  if (fallback && (v === "" || v === "3")) return fallback;
  if (v === "3") return { version: "3.0", minor: 0 };
  const m = /^3\.(0|[1-9][0-9]?)$/.exec(v);
  if (m && Number(m[1]) <= max) return { version: v, minor: Number(m[1]) };
  if (/^[12](\.\d+)*$/.test(v)) {
    throw new ComposeError(file, "version", `compose file format version ${v} is not supported by docker stack deploy (only 3.x)`,
      `convert the file to version "3.x": move resource limits (mem_limit, cpu_shares...) under deploy.resources and drop keys v3 removed`);
  }
  if (m && Number(m[1]) <= LATEST_MINOR) {
    throw new ComposeError(file, "version", `compose file format version ${v} is not supported by ${stackDeploy}, which reads 3.0 to 3.${max}`,
      `use version: "3.${max}" (keys added after it${max < 12 ? ", such as healthcheck.start_interval (3.12)," : ""} are not available)` +
      (max < KNOWN_CLIS[KNOWN_CLIS.length - 1].maxMinor ? `, or deploy on an engine whose docker CLI reads ${v}` : ""));
  }
  throw new ComposeError(file, "version", `unsupported compose file format version ${JSON.stringify(v)} (${stackDeploy} has no schema for it)`,
    `use a 3.x version from "3.0" to "3.${max}"${fallback ? ", or omit `version`" : ""}`);
}

// ---------------------------------------------------------------------------
// services

function parsePorts(file: string, key: string, v: unknown, warnings: ComposeWarning[]): PortEntry[] {
  const out: PortEntry[] = [];
  ((v as unknown[]) ?? []).forEach((item, i) => {
    const k = `${key}[${i}]`;
    if (isDict(item)) {
      if (item.target === undefined) throw new ComposeError(file, k, "a long-syntax port needs `target`", "add target: <container port>");
      out.push({
        target: Number(item.target),
        ...(item.published !== undefined ? { published: Number(item.published) } : {}),
        protocol: item.protocol ? String(item.protocol).toLowerCase() : "tcp",
        mode: item.mode ? String(item.mode) : "ingress",
      });
      const mode = out[out.length - 1].mode;
      if (mode !== "ingress" && mode !== "host") {
        throw new ComposeError(file, `${k}.mode`, `unknown publish mode ${JSON.stringify(mode)}`, "use ingress or host");
      }
      return;
    }
    try {
      const parsed = parseShortPort(String(item));
      if (parsed.ignoredIp) {
        warnings.push({ file, key: k, message: `host IP ${parsed.ignoredIp} is ignored: swarm services publish on all addresses` });
      }
      out.push(...parsed.ports);
    } catch (e) {
      throw new ComposeError(file, k, `invalid port ${JSON.stringify(item)}: ${(e as Error).message}`,
        "write [published:]target[/protocol], e.g. 8080:80 or 53:53/udp");
    }
  });
  return out;
}

/**
 * extra_hosts as `host:ip` strings, as docker stack deploy of `rules.cli` reads them: a list keeps
 * its order; a mapping becomes `host:ip` strings in string order (entries without a value dropped).
 * 20.10 splits each at its first `:` when it converts and drops an entry without one, silently:
 * here with a warning. 26.1 (transformHostsList) takes `host=ip` before `host:ip` (the first `=`,
 * else the first `:`), drops an entry with neither, and removes the brackets of `[IPv6]`.
 */
function parseExtraHosts(file: string, key: string, v: unknown, warnings: ComposeWarning[], rules: StackDeployRules): string[] {
  let hosts: string[] = [];
  if (Array.isArray(v)) hosts = (v as unknown[]).map((h) => scalarString(h));
  else if (isDict(v)) {
    hosts = Object.entries(v)
      .filter(([, ip]) => ip !== null && ip !== undefined)
      .map(([h, ip]) => `${h}:${scalarString(ip)}`)
      .sort();
  }
  const out: string[] = [];
  hosts.forEach((h, i) => {
    const sep = rules.extraHostsEquals ? [h.indexOf("="), h.indexOf(":")].find((x) => x >= 0) : h.indexOf(":");
    if (sep === undefined || sep < 0) {
      warnings.push({
        file, key: `${key}.extra_hosts[${i}]`,
        message: `host entry ${JSON.stringify(h)} has no ${rules.extraHostsEquals ? "'=' or ':'" : "':'"} and is ignored, ` +
          `as docker stack deploy (docker CLI ${rules.cli}) ignores it (write host:ip)`,
      });
      return;
    }
    if (!rules.extraHostsEquals) {
      out.push(h);
      return;
    }
    // Joined with ':' and cut again at the first ':', as the CLI does ("a:b=c" is host a, ip b:c).
    const joined = `${h.slice(0, sep)}:${h.slice(sep + 1)}`;
    const cut = joined.indexOf(":");
    let ip = joined.slice(cut + 1);
    if (ip.length > 2 && ip.startsWith("[") && ip.endsWith("]")) ip = ip.slice(1, -1);
    out.push(`${joined.slice(0, cut)}:${ip}`);
  });
  return out;
}

function expandUser(p: string, env: (k: string) => string | undefined, file: string, key: string, warnings: ComposeWarning[]): string {
  if (!p.startsWith("~")) return p;
  const home = env("HOME");
  if (home === undefined) {
    warnings.push({ file, key, message: "cannot expand '~' because HOME is not set in the stack's environment" });
    return p;
  }
  return p.replace("~", home);
}

function parseMounts(
  file: string, key: string, v: unknown, dir: string, env: (k: string) => string | undefined, warnings: ComposeWarning[], rules: StackDeployRules,
): MountConfig[] {
  return ((v as unknown[]) ?? []).map((item, i) => {
    const k = `${key}[${i}]`;
    let e: VolumeEntry;
    if (typeof item === "string") {
      try {
        e = parseShortVolume(item);
      } catch (err) {
        throw new ComposeError(file, k, (err as Error).message, "write [source:]target[:ro|rw]");
      }
    } else {
      e = item as VolumeEntry;
    }
    if (!["volume", "bind", "tmpfs", "npipe", "cluster"].includes(e.type)) {
      throw new ComposeError(file, `${k}.type`, `unknown mount type ${JSON.stringify(e.type)}`, "use volume, bind, tmpfs, npipe or cluster");
    }
    if (e.type === "cluster" && !rules.clusterMounts) {
      throw new ComposeError(file, `${k}.type`, `a cluster volume is refused by docker stack deploy (docker CLI ${rules.cli}): ` +
        "\"volume type must be volume, bind, tmpfs or npipe\"", "use a volume or bind mount, or deploy on an engine whose docker CLI converts cluster volumes (26.1)");
    }
    if (!e.target) throw new ComposeError(file, k, "a mount needs a target", "add target: <path in the container>");
    const m: MountConfig = { type: e.type, target: e.target, readOnly: e.read_only === true };
    if (e.source !== undefined && e.source !== "") m.source = e.source;
    if (e.consistency) m.consistency = e.consistency;
    if (e.bind) {
      m.bind = true;
      if (e.bind.propagation) m.bindPropagation = e.bind.propagation;
    }
    if (e.volume) {
      m.volume = true;
      m.noCopy = e.volume.nocopy === true;
    }
    if (e.tmpfs) {
      m.tmpfs = true;
      if (e.tmpfs.size !== undefined) m.tmpfsSize = e.tmpfs.size;
    }
    const incompatible = (what: string) => {
      throw new ComposeError(file, k, `${what} options are incompatible with type ${m.type}`, `remove \`${what}:\` or change \`type:\``);
    };
    switch (m.type) {
      case "bind":
        if (!m.source) throw new ComposeError(file, k, "a bind mount needs a source", "add source: <host path>");
        if (m.volume) incompatible("volume");
        if (m.tmpfs) incompatible("tmpfs");
        m.source = expandUser(m.source, env, file, k, warnings);
        if (!path.posix.isAbsolute(m.source) && !/^[a-zA-Z]:[\\/]/.test(m.source)) m.source = absPath(dir, m.source);
        break;
      case "volume":
        if (m.tmpfs) incompatible("tmpfs");
        if (m.bind) incompatible("bind");
        break;
      case "tmpfs":
        if (m.source) throw new ComposeError(file, k, "a tmpfs mount cannot have a source", "remove source:");
        if (m.bind) incompatible("bind");
        if (m.volume) incompatible("volume");
        break;
      case "npipe":
        if (!m.source) throw new ComposeError(file, k, "an npipe mount needs a source", "add source:");
        break;
      case "cluster":
        if (!m.source) throw new ComposeError(file, k, "a cluster mount needs a source", "add source:");
        if (m.bind) incompatible("bind");
        if (m.volume) incompatible("volume");
        if (m.tmpfs) incompatible("tmpfs");
        break;
    }
    return m;
  });
}

function parseUpdateConfig(file: string, key: string, v: unknown): UpdateConfigModel | undefined {
  if (!isDict(v)) return undefined;
  const u: UpdateConfigModel = {
    delay: durationOf(file, `${key}.delay`, v.delay) ?? 0,
    monitor: durationOf(file, `${key}.monitor`, v.monitor) ?? 0,
    maxFailureRatio: v.max_failure_ratio === undefined ? 0 : Number(v.max_failure_ratio),
  };
  if (v.parallelism !== undefined) u.parallelism = Number(v.parallelism);
  if (v.failure_action !== undefined) {
    u.failureAction = String(v.failure_action);
    if (!["pause", "continue", "rollback"].includes(u.failureAction)) {
      throw new ComposeError(file, `${key}.failure_action`, `unknown failure action ${JSON.stringify(u.failureAction)}`,
        "use pause, continue or rollback");
    }
  }
  if (v.order !== undefined) u.order = String(v.order);
  return u;
}

function bytesOf(file: string, key: string, v: unknown): number {
  if (v === undefined || v === null) return 0;
  const b = ramInBytes(v as string | number);
  if (b === undefined) throw new ComposeError(file, key, `invalid size ${JSON.stringify(v)}`, "write a size such as 512M or 1.5G");
  return b;
}

function cpusOf(file: string, key: string, v: unknown): number {
  if (v === undefined || v === null || v === "") return 0;
  const n = parseCpus(v as string | number);
  if (n === undefined) throw new ComposeError(file, key, `invalid CPU count ${JSON.stringify(v)}`, "write a decimal such as '0.5' (at most 9 decimals)");
  return n;
}

/**
 * deploy, as the CLI's loader and convertDeployMode read it. The job modes (`replicated-job`,
 * `global-job`; engine API 1.41, Docker 20.10) are taken from CLI 23 on, which converts them
 * (docker/cli#2907); docker stack deploy of CLI 20.10 refuses them ("Unknown mode").
 */
function parseDeploy(file: string, key: string, d: Dict | null | undefined, rules: StackDeployRules): DeployModel {
  const v = d ?? {};
  const deploy: DeployModel = {
    mode: v.mode === undefined ? "replicated" : String(v.mode),
    labels: labelsOf(v.labels),
    constraints: [],
    preferences: [],
    endpointMode: v.endpoint_mode === undefined ? "" : String(v.endpoint_mode).toLowerCase(),
  };
  if (v.replicas !== undefined && v.replicas !== null) {
    deploy.replicas = Number(v.replicas);
    if (deploy.replicas < 0) throw new ComposeError(file, `${key}.replicas`, "cannot be negative", "use 0 or more");
  }
  switch (deploy.mode) {
    case "replicated":
      break;
    case "global":
      if (deploy.replicas !== undefined) {
        throw new ComposeError(file, `${key}.replicas`, "replicas can only be used with replicated mode",
          "remove replicas, or set mode: replicated");
      }
      break;
    case "replicated-job":
    case "global-job":
      if (!rules.jobs) {
        throw new ComposeError(file, `${key}.mode`, `mode ${deploy.mode} is refused by docker stack deploy (docker CLI ${rules.cli}): ` +
          `"Unknown mode: ${deploy.mode}" (stack deploy converts swarm jobs from docker CLI 23 on)`,
          "use mode: replicated or global, or run the job with `docker service create --mode " + deploy.mode + "`");
      }
      if (deploy.mode === "global-job" && deploy.replicas !== undefined) {
        throw new ComposeError(file, `${key}.replicas`, "replicas can only be used with replicated or replicated-job mode",
          "remove replicas, or set mode: replicated-job");
      }
      break;
    default:
      throw new ComposeError(file, `${key}.mode`, `unknown mode ${JSON.stringify(deploy.mode)}`, "use replicated or global");
  }
  if (deploy.endpointMode && !["vip", "dnsrr"].includes(deploy.endpointMode)) {
    throw new ComposeError(file, `${key}.endpoint_mode`, `unknown endpoint mode ${JSON.stringify(v.endpoint_mode)}`, "use vip or dnsrr");
  }
  deploy.updateConfig = parseUpdateConfig(file, `${key}.update_config`, v.update_config);
  deploy.rollbackConfig = parseUpdateConfig(file, `${key}.rollback_config`, v.rollback_config);
  const res = isDict(v.resources) ? v.resources : {};
  if (isDict(res.limits)) {
    deploy.limits = {
      nanoCpus: cpusOf(file, `${key}.resources.limits.cpus`, res.limits.cpus),
      memoryBytes: bytesOf(file, `${key}.resources.limits.memory`, res.limits.memory),
      pids: res.limits.pids === undefined ? 0 : Number(res.limits.pids),
    };
  }
  if (isDict(res.reservations)) {
    const generic = ((res.reservations.generic_resources as Dict[] | undefined) ?? []).map((g) => {
      const s = isDict(g.discrete_resource_spec) ? g.discrete_resource_spec : {};
      return { kind: String(s.kind ?? ""), value: Number(s.value ?? 0) };
    });
    deploy.reservations = {
      nanoCpus: cpusOf(file, `${key}.resources.reservations.cpus`, res.reservations.cpus),
      memoryBytes: bytesOf(file, `${key}.resources.reservations.memory`, res.reservations.memory),
      generic,
    };
  }
  if (isDict(v.restart_policy)) {
    const rp = v.restart_policy;
    deploy.restartPolicy = {};
    if (rp.condition !== undefined) {
      deploy.restartPolicy.condition = String(rp.condition);
      if (!["none", "on-failure", "any"].includes(deploy.restartPolicy.condition)) {
        throw new ComposeError(file, `${key}.restart_policy.condition`, `unknown condition ${JSON.stringify(rp.condition)}`,
          "use none, on-failure or any");
      }
    }
    const delay = durationOf(file, `${key}.restart_policy.delay`, rp.delay);
    if (delay !== undefined) deploy.restartPolicy.delay = delay;
    if (rp.max_attempts !== undefined) deploy.restartPolicy.maxAttempts = Number(rp.max_attempts);
    const window = durationOf(file, `${key}.restart_policy.window`, rp.window);
    if (window !== undefined) deploy.restartPolicy.window = window;
  }
  const pl = isDict(v.placement) ? v.placement : {};
  deploy.constraints = ((pl.constraints as string[] | undefined) ?? []).slice();
  deploy.preferences = ((pl.preferences as Dict[] | undefined) ?? []).map((p) => String(p.spread ?? ""));
  if (pl.max_replicas_per_node !== undefined) deploy.maxReplicasPerNode = Number(pl.max_replicas_per_node);
  return deploy;
}

function parseFileRefs(v: unknown): FileRef[] {
  return ((v as unknown[]) ?? []).map((item) => {
    if (typeof item === "string") return { source: item };
    const d = item as Dict;
    const ref: FileRef = { source: String(d.source ?? "") };
    if (d.target !== undefined) ref.target = String(d.target);
    if (d.uid !== undefined) ref.uid = String(d.uid);
    if (d.gid !== undefined) ref.gid = String(d.gid);
    if (d.mode !== undefined) ref.mode = Number(d.mode);
    return ref;
  });
}

function parseHealthcheck(file: string, key: string, v: unknown): HealthcheckModel | undefined {
  if (!isDict(v)) return undefined;
  const test = v.test === undefined ? [] : typeof v.test === "string" ? ["CMD-SHELL", v.test] : (v.test as string[]).slice();
  const h: HealthcheckModel = { test, disable: v.disable === true };
  if (h.disable && test.length > 0) {
    throw new ComposeError(file, `${key}.disable`, "test and disable can't be set at the same time", "remove one of them");
  }
  const interval = durationOf(file, `${key}.interval`, v.interval);
  const timeout = durationOf(file, `${key}.timeout`, v.timeout);
  const startPeriod = durationOf(file, `${key}.start_period`, v.start_period);
  const startInterval = durationOf(file, `${key}.start_interval`, v.start_interval);
  if (interval !== undefined) h.interval = interval;
  if (timeout !== undefined) h.timeout = timeout;
  if (startPeriod !== undefined) h.startPeriod = startPeriod;
  if (startInterval !== undefined) h.startInterval = startInterval;
  if (v.retries !== undefined) h.retries = Number(v.retries);
  return h;
}

function parseRestart(file: string, key: string, restart: string): void {
  const [name, count] = restart.split(":");
  if (!["no", "always", "unless-stopped", "on-failure", ""].includes(name)) {
    throw new ComposeError(file, key, `invalid restart policy: unknown policy '${name}'`, "use no, always, on-failure[:max-retries] or unless-stopped");
  }
  if (count !== undefined) {
    if (!/^\d+$/.test(count)) throw new ComposeError(file, key, `invalid restart policy: maximum retry count must be a number: ${count}`, "write on-failure:3");
    if (name !== "on-failure") throw new ComposeError(file, key, "invalid restart policy: maximum retry count can only be used with 'on-failure'", "drop the :count");
  }
}

function loadService(
  file: string, dir: string, name: string, d: Dict, env: (k: string) => string | undefined, warnings: ComposeWarning[], rules: StackDeployRules,
): ServiceModel {
  const key = `services.${name}`;
  // environment: env_file entries first, then `environment`; a value that is unset or empty
  // is taken from the stack's environment when it has the variable (the CLI's updateEnvironment).
  const environment: Record<string, string | null> = {};
  const update = (vars: Record<string, string | null>) => {
    for (const [k, v] of Object.entries(vars)) {
      const fromEnv = env(k);
      environment[k] = (v === null || v === "") && fromEnv !== undefined ? fromEnv : v;
    }
  };
  const envFileNames = stringList(d.env_file).map(String);
  const envFiles = envFileNames.map((f) => absPath(dir, f));
  if (envFiles.length > 0) {
    const vars: Record<string, string | null> = {};
    envFiles.forEach((f, i) => {
      // Only a regular file under the compose file's directory (compose/confine.ts).
      const text = readConfined(file, dir, Array.isArray(d.env_file) ? `${key}.env_file[${i}]` : `${key}.env_file`,
        envFileNames[i], "env file ").content.toString("utf8");
      try {
        for (const [k, v] of parseEnvFile(text, env)) vars[k] = v;
      } catch (e) {
        throw new ComposeError(f, "", `invalid env file: ${(e as Error).message}`, "write one KEY=value per line");
      }
    });
    update(vars);
  }
  update(mappingOrList(d.environment, "=", true));

  const command = (field: string): string[] | undefined => {
    const v = d[field];
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v)) return v.map(String);
    try {
      return shellSplit(String(v));
    } catch (e) {
      throw new ComposeError(file, `${key}.${field}`, `cannot split ${JSON.stringify(v)}: ${(e as Error).message}`, "fix the quoting or write a list");
    }
  };

  const networks: Record<string, ServiceNetwork> = {};
  if (Array.isArray(d.networks)) {
    for (const n of d.networks as string[]) networks[n] = { aliases: [], driverOpts: {} };
  } else if (isDict(d.networks)) {
    for (const [n, cfg] of Object.entries(d.networks)) {
      const c = isDict(cfg) ? cfg : {};
      networks[n] = {
        aliases: ((c.aliases as string[] | undefined) ?? []).slice(),
        driverOpts: mappingOrList(c.driver_opts ?? {}, "=", false) as Record<string, string>,
      };
    }
  }

  const ulimits: Record<string, { soft: number; hard: number }> = {};
  if (isDict(d.ulimits)) {
    for (const [n, u] of Object.entries(d.ulimits)) {
      ulimits[n] = typeof u === "number" ? { soft: u, hard: u } : { soft: Number((u as Dict).soft), hard: Number((u as Dict).hard) };
    }
  }

  const extraHosts = parseExtraHosts(file, key, d.extra_hosts, warnings, rules);

  if (d.restart !== undefined) parseRestart(file, `${key}.restart`, String(d.restart));

  const service: ServiceModel = {
    name,
    image: d.image === undefined ? "" : String(d.image),
    capAdd: stringList(d.cap_add),
    capDrop: stringList(d.cap_drop),
    command: command("command"),
    entrypoint: command("entrypoint"),
    configs: parseFileRefs(d.configs),
    secrets: parseFileRefs(d.secrets),
    credentialSpec: isDict(d.credential_spec)
      ? Object.fromEntries(Object.entries(d.credential_spec).map(([k, v]) => [k, String(v)]))
      : {},
    dependsOn: stringList(d.depends_on),
    deploy: parseDeploy(file, `${key}.deploy`, d.deploy as Dict | null | undefined, rules),
    dns: stringList(d.dns),
    dnsSearch: stringList(d.dns_search),
    environment,
    envFiles,
    extraHosts,
    healthcheck: parseHealthcheck(file, `${key}.healthcheck`, d.healthcheck),
    labels: labelsOf(d.labels),
    networks,
    ports: parsePorts(file, `${key}.ports`, d.ports, warnings),
    readOnly: d.read_only === true,
    stdinOpen: d.stdin_open === true,
    sysctls: mappingOrList(d.sysctls, "=", false) as Record<string, string>,
    tty: d.tty === true,
    ulimits,
    volumes: parseMounts(file, `${key}.volumes`, d.volumes, dir, env, warnings, rules),
    extras: extrasOf(d),
  };
  if (d.build !== undefined && d.build !== null) service.buildRaw = d.build;
  if (d.hostname !== undefined) service.hostname = String(d.hostname);
  if (d.init !== undefined) service.init = d.init === true;
  if (d.isolation !== undefined) service.isolation = String(d.isolation);
  if (isDict(d.logging)) {
    service.logging = { options: mappingOrList(d.logging.options ?? {}, "=", false) as Record<string, string> };
    if (d.logging.driver !== undefined) service.logging.driver = String(d.logging.driver);
  }
  if (d.oom_score_adj !== undefined) service.oomScoreAdj = Number(d.oom_score_adj);
  if (d.restart !== undefined) service.restart = String(d.restart);
  const sgp = durationOf(file, `${key}.stop_grace_period`, d.stop_grace_period);
  if (sgp !== undefined) service.stopGracePeriod = sgp;
  if (d.stop_signal !== undefined) service.stopSignal = String(d.stop_signal);
  if (d.user !== undefined) service.user = String(d.user);
  if (d.working_dir !== undefined) service.workingDir = String(d.working_dir);
  return service;
}

// ---------------------------------------------------------------------------
// top-level objects

function externalOf(v: unknown): { external: boolean; name?: string } {
  if (v === true) return { external: true };
  if (isDict(v)) return { external: true, ...(v.name !== undefined ? { name: String(v.name) } : {}) };
  return { external: false };
}

function loadNetwork(file: string, minor: number, name: string, v: Dict | null, warnings: ComposeWarning[]): NetworkModel {
  const d = v ?? {};
  const key = `networks.${name}`;
  const ext = externalOf(d.external);
  const n: NetworkModel = {
    external: ext.external,
    driverOpts: mappingOrList(d.driver_opts ?? {}, "=", false) as Record<string, string>,
    ipamSubnets: [],
    internal: d.internal === true,
    attachable: d.attachable === true,
    labels: labelsOf(d.labels),
    extras: extrasOf(d),
  };
  if (d.name !== undefined) n.name = String(d.name);
  if (d.driver !== undefined) n.driver = String(d.driver);
  if (isDict(d.ipam)) {
    if (d.ipam.driver !== undefined) n.ipamDriver = String(d.ipam.driver);
    n.ipamSubnets = ((d.ipam.config as Dict[] | undefined) ?? []).map((c) => String(c.subnet ?? ""));
  }
  if (ext.external) {
    if (ext.name !== undefined) {
      if (n.name !== undefined) {
        throw new ComposeError(file, `${key}.external.name`, "network.external.name and network.name conflict", "only use network.name");
      }
      if (minor >= 5) warnings.push({ file, key: `${key}.external.name`, message: "network.external.name is deprecated in favor of network.name" });
      n.name = ext.name;
    } else if (n.name === undefined) {
      n.name = name;
    }
  } else if (n.driver !== undefined && ["bridge", "host", "none", "null"].includes(n.driver)) {
    throw new ComposeError(file, `${key}.driver`, `driver ${JSON.stringify(n.driver)} creates a node-local network that swarm services cannot use`,
      "use driver: overlay (or omit driver) for a stack network, or declare the existing network with external: true");
  }
  return n;
}

function loadVolume(file: string, minor: number, name: string, v: Dict | null, warnings: ComposeWarning[], rules: StackDeployRules): VolumeModel {
  const d = v ?? {};
  const key = `volumes.${name}`;
  // A CLI with cluster volumes decodes x-cluster-spec into its volume type (3.10's schema types it
  // too): anything but a mapping is refused, at any version. 20.10 ignores it as an extension.
  if (rules.clusterMounts && d["x-cluster-spec"] !== undefined && d["x-cluster-spec"] !== null && !isDict(d["x-cluster-spec"])) {
    throw new ComposeError(file, `${key}.x-cluster-spec`, `must be a mapping (docker stack deploy of docker CLI ${rules.cli} decodes it as a cluster volume's spec)`,
      "write it as a mapping (group, access_mode, ...), or remove it");
  }
  const ext = externalOf(d.external);
  const vol: VolumeModel = { external: ext.external, labels: labelsOf(d.labels), extras: extrasOf(d) };
  if (d.name !== undefined) vol.name = String(d.name);
  if (d.driver !== undefined) vol.driver = String(d.driver);
  if (d.driver_opts !== undefined) vol.driverOpts = mappingOrList(d.driver_opts, "=", false) as Record<string, string>;
  if (ext.external) {
    for (const [field, set] of [["driver", d.driver !== undefined], ["driver_opts", d.driver_opts !== undefined && Object.keys(d.driver_opts as object).length > 0],
      ["labels", Object.keys(vol.labels).length > 0]] as const) {
      if (set) throw new ComposeError(file, `${key}.${field}`, `conflicting parameters "external" and "${field}" specified for volume "${name}"`, `remove ${field} or external`);
    }
    if (ext.name !== undefined) {
      if (vol.name !== undefined) throw new ComposeError(file, `${key}.external.name`, "volume.external.name and volume.name conflict", "only use volume.name");
      if (minor >= 4) warnings.push({ file, key: `${key}.external.name`, message: "volume.external.name is deprecated in favor of volume.name" });
      vol.name = ext.name;
    } else if (vol.name === undefined) {
      vol.name = name;
    }
  }
  return vol;
}

function loadFileObject(
  file: string, dir: string, minor: number, kind: "secret" | "config", name: string, d: Dict, warnings: ComposeWarning[],
): FileObjectModel {
  const key = `${kind}s.${name}`;
  const ext = externalOf(d.external);
  const obj: FileObjectModel = { external: ext.external, labels: labelsOf(d.labels), extras: extrasOf(d) };
  if (d.name !== undefined) obj.name = String(d.name);
  // As the CLI converts them (SecretSpec.Driver, Templating): only when not external.
  if (d.template_driver !== undefined && d.template_driver !== "") obj.templateDriver = String(d.template_driver);
  if (kind === "secret" && d.driver !== undefined && d.driver !== "") {
    obj.driver = { name: String(d.driver), options: mappingOrList(d.driver_opts ?? {}, "=", false) as Record<string, string> };
  }
  if (ext.external) {
    if (ext.name !== undefined) {
      if (obj.name !== undefined) throw new ComposeError(file, `${key}.external.name`, `${kind}.external.name and ${kind}.name conflict`, `only use ${kind}.name`);
      if (minor >= 5) warnings.push({ file, key: `${key}.external.name`, message: `${kind}.external.name is deprecated in favor of ${kind}.name` });
      obj.name = ext.name;
    } else if (obj.name === undefined) {
      obj.name = name;
    }
    return obj;
  }
  if (d.file === undefined) {
    throw new ComposeError(file, key, `${kind} has neither file nor external`,
      `add file: <path> with the ${kind}'s content, or external: true for an existing ${kind}`);
  }
  obj.file = absPath(dir, String(d.file));
  // Only a regular file under the compose file's directory (compose/confine.ts).
  obj.content = readConfined(file, dir, `${key}.file`, String(d.file)).content;
  return obj;
}

// ---------------------------------------------------------------------------

const STACK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** swarmkit's limits: a service name is a DNS label of at most 63; a secret or config name at most 64 of [a-zA-Z0-9-_.]. */
const SWARM_DNS_NAME = /^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$/;
const SWARM_OBJECT_NAME = /^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$/;
/** The program names a secret or config `<name>-<8 hex digits of its content>`. */
const CONTENT_SUFFIX = 9;

/**
 * The names the engine will be given, checked against its limits before anything is created: the
 * engine would refuse them half-way through a deployment.
 */
function checkEngineNames(file: string, stack: string, services: string[], objects: Record<"secret" | "config", Record<string, FileObjectModel>>): void {
  for (const name of services) {
    const full = `${stack}_${name}`;
    if (!SWARM_DNS_NAME.test(full) || full.length > 63) {
      throw new ComposeError(file, `services.${name}`, `the engine would refuse the service name ${JSON.stringify(full)} (<stack>_<service>): ` +
        `it must be a DNS label of at most 63 characters (letters and digits, with '-' or '_' between them), and it has ${full.length}`,
        `shorten the service or the stack name (${stack}), and use no '.'`);
    }
  }
  for (const kind of ["secret", "config"] as const) {
    for (const [key, o] of Object.entries(objects[kind])) {
      const name = o.name ?? `${stack}_${key}`;
      const max = o.external ? 64 : 64 - CONTENT_SUFFIX;
      if (!SWARM_OBJECT_NAME.test(name) || name.length > max) {
        throw new ComposeError(file, `${kind}s.${key}${o.name !== undefined ? ".name" : ""}`,
          `the engine would refuse the ${kind} name ${JSON.stringify(name)}: at most ${max} characters` +
          `${o.external ? "" : ` (the program adds '-' and 8 hex digits of the content, the engine allows 64)`} of letters, digits, '-', '_' and '.', starting and ending with a letter or digit`,
          `shorten the ${kind}'s name${o.name === undefined ? ` or the stack name (${stack})` : ""}`);
      }
    }
  }
}

/** Loads a compose file; throws ComposeError for anything `docker stack deploy` would reject. */
export function loadCompose(file: string, opts: LoadOptions): LoadedStack {
  const absFile = path.resolve(file);
  const dir = path.dirname(absFile);
  const warnings: ComposeWarning[] = [];
  const envMap = opts.env ?? {};
  const env = (k: string): string | undefined => (Object.prototype.hasOwnProperty.call(envMap, k) ? envMap[k] : undefined);

  if (!STACK_NAME.test(opts.stackName ?? "")) {
    throw new ComposeError(absFile, "", `invalid stack name ${JSON.stringify(opts.stackName)}`,
      "use letters, digits, '_', '.' and '-', starting with a letter or digit");
  }

  let text: string;
  try {
    text = readFileSync(absFile, "utf8");
  } catch (e) {
    throw new ComposeError(absFile, "", `cannot read compose file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, "check the path");
  }
  const cli = opts.cli ?? STACK_DEPLOY_CLI;
  const rules = rulesFor(cli);
  if (!rules) throw new ComposeError(absFile, "", `no docker stack deploy rules for docker CLI ${JSON.stringify(cli)}`, "use 20.10 or later (compose/cli-rules.ts)");
  const doc = parseYaml(absFile, text, rules.yaml11Bools);
  if (!isDict(doc)) {
    throw new ComposeError(absFile, "", "top-level object must be a mapping", "write a compose file with `services:` at the top level");
  }

  const { version, minor } = parseVersion(absFile, doc, rules);

  // Forbidden keys are checked on the raw document, before interpolation, as the CLI does.
  if (isDict(doc.services)) {
    for (const name of Object.keys(doc.services).sort()) {
      const svc = doc.services[name];
      if (!isDict(svc)) continue;
      for (const prop of Object.keys(FORBIDDEN)) {
        if (prop in svc) {
          throw new ComposeError(absFile, `services.${name}.${prop}`, `\`${prop}\` is not supported by docker stack deploy`, FORBIDDEN[prop]);
        }
      }
    }
  }

  const config = interpolateConfig(doc, env, absFile, warnings);
  validateSchema(absFile, config);
  validateVersionFeatures(absFile, config, minor, rules);

  const rawServices = (config.services ?? {}) as Record<string, Dict>;
  const serviceNames = Object.keys(rawServices).sort();

  // Warnings for ignored / deprecated keys, per service and key.
  for (const name of serviceNames) {
    const svc = rawServices[name];
    for (const prop of UNSUPPORTED) {
      if (!(prop in svc)) continue;
      let message = `\`${prop}\` is not supported by docker stack deploy and is ignored`;
      if (prop === "restart") {
        message = isDict(svc.deploy) && svc.deploy.restart_policy !== undefined
          ? "`restart` is ignored by docker stack deploy; deploy.restart_policy applies"
          : "`restart` is not supported by docker stack deploy; it is used only as the restart policy, since deploy.restart_policy is not set";
      }
      if (prop === "build") message = "`build` is ignored by docker stack deploy; the program builds the image and pushes it as the service's image (README, \"Images the program builds\")";
      warnings.push({ file: absFile, key: `services.${name}.${prop}`, message });
    }
    for (const [prop, text] of Object.entries(DEPRECATED)) {
      if (prop in svc) warnings.push({ file: absFile, key: `services.${name}.${prop}`, message: `\`${prop}\` is deprecated and ignored: ${text}` });
    }
    if ("group_add" in svc) {
      warnings.push({ file: absFile, key: `services.${name}.group_add`, message: "`group_add` is not converted by docker stack deploy and is ignored" });
    }
  }

  const services = serviceNames.map((name) => loadService(absFile, dir, name, rawServices[name], env, warnings, rules));

  const networks: Record<string, NetworkModel> = {};
  for (const [name, v] of Object.entries((config.networks ?? {}) as Record<string, Dict | null>)) {
    networks[name] = loadNetwork(absFile, minor, name, v, warnings);
  }
  const volumes: Record<string, VolumeModel> = {};
  for (const [name, v] of Object.entries((config.volumes ?? {}) as Record<string, Dict | null>)) {
    volumes[name] = loadVolume(absFile, minor, name, v, warnings, rules);
  }
  const secrets: Record<string, FileObjectModel> = {};
  for (const name of Object.keys((config.secrets ?? {}) as object).sort()) {
    secrets[name] = loadFileObject(absFile, dir, minor, "secret", name, (config.secrets as Record<string, Dict>)[name], warnings);
  }
  const configs: Record<string, FileObjectModel> = {};
  for (const name of Object.keys((config.configs ?? {}) as object).sort()) {
    configs[name] = loadFileObject(absFile, dir, minor, "config", name, (config.configs as Record<string, Dict>)[name], warnings);
  }

  // Semantic checks: what the converter (or the engine) would reject.
  for (const s of services) {
    const key = `services.${s.name}`;
    if (!s.image) {
      throw new ComposeError(absFile, `${key}.image`, "service has no image", s.buildRaw !== undefined
        ? "a service the program builds needs the name to push its image as: add image: <registry>/<name>:<tag> (the private registry's host)"
        : "add image: <name>:<tag>");
    }
    for (const n of Object.keys(s.networks)) {
      if (!(n in networks) && n !== "default") {
        throw new ComposeError(absFile, `${key}.networks.${n}`, `undefined network ${JSON.stringify(n)}`,
          `declare it under the top-level networks: (networks: { ${n}: {} }) or fix the name`);
      }
    }
    s.volumes.forEach((m, i) => {
      if ((m.type === "volume" && m.source) || (m.type === "cluster" && m.source && !m.source.startsWith("group:"))) {
        if (!(m.source in volumes)) {
          throw new ComposeError(absFile, `${key}.volumes[${i}]`, `undefined volume ${JSON.stringify(m.source)}`,
            `declare it under the top-level volumes: (volumes: { ${m.source}: {} }), or write a path (./${m.source}) for a bind mount`);
        }
      }
    });
    for (const [kind, refs, defined] of [["secret", s.secrets, secrets], ["config", s.configs, configs]] as const) {
      refs.forEach((r, i) => {
        if (!(r.source in defined)) {
          throw new ComposeError(absFile, `${key}.${kind}s[${i}]`, `undefined ${kind} ${JSON.stringify(r.source)}`,
            `declare it under the top-level ${kind}s: with file: or external: true`);
        }
      });
    }
    if (s.credentialSpec.config !== undefined && !(s.credentialSpec.config in configs)) {
      throw new ComposeError(absFile, `${key}.credential_spec.config`, `undefined config ${JSON.stringify(s.credentialSpec.config)}`,
        "declare it under the top-level configs:");
    }
    const set = Object.keys(s.credentialSpec);
    if (set.length > 1) {
      throw new ComposeError(absFile, `${key}.credential_spec`, `invalid credential spec: cannot specify both ${set.join(" and ")}`, "keep one");
    }
    s.dependsOn.forEach((dep, i) => {
      if (!rawServices[dep]) {
        warnings.push({ file: absFile, key: `${key}.depends_on[${i}]`, message: `depends on undefined service ${JSON.stringify(dep)}; ignored` });
      }
    });
    s.dependsOn = s.dependsOn.filter((dep) => rawServices[dep] !== undefined && dep !== s.name);
  }

  checkEngineNames(absFile, opts.stackName, services.map((s) => s.name), { secret: secrets, config: configs });

  return {
    file: absFile,
    workingDir: dir,
    stackName: opts.stackName,
    version,
    services,
    networks,
    volumes,
    secrets,
    configs,
    extras: extrasOf(config),
    warnings,
  };
}

export { keyPath };
