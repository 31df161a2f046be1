/**
 * convertStack: a LoadedStack to the Engine API objects `docker stack deploy` sends for it, in one
 * step, as docker/cli's cli/compose/convert does (compose.go: networks, secrets, configs;
 * service.go: ServiceSpec; volume.go: mounts), plus the program's stack overrides.
 * Pure: no I/O, no Pulumi resources, same input -> same output; every object has sorted keys, so
 * its JSON is deterministic.
 */
import { createHash } from "node:crypto";
import { ComposeError, ComposeWarning } from "./errors";
import type { FileObjectModel, LoadedStack, MountConfig, ServiceModel, UpdateConfigModel } from "./model";
import type { PortEntry } from "./ports";
import type {
  FileObjectSpec, Json, JsonObject, NetworkSpec, ServiceSpec, StackOverrides, StackSpec, VolumeSpec,
} from "./types";
import { float32String } from "./units";

export const LABEL_NAMESPACE = "com.docker.stack.namespace";
export const LABEL_IMAGE = "com.docker.stack.image";
const DEFAULT_NETWORK = "default";
const DEFAULT_DRIVER = "overlay";

/** Recursively sorts object keys and drops undefined members: deterministic JSON. */
export function sorted<T>(v: T): T {
  if (Array.isArray(v)) return v.map((x) => sorted(x)) as unknown as T;
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sorted(x);
    }
    return out as T;
  }
  return v;
}

/** convert.AddStackLabel: the labels with com.docker.stack.namespace set to the stack. */
function withNamespace(stack: string, labels: Record<string, string>): Record<string, string> {
  return { ...labels, [LABEL_NAMESPACE]: stack };
}

/** A map with its keys in order (the Go maps the CLI builds serialise sorted too). */
function sortedRecord<T>(r: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of Object.keys(r).sort()) out[k] = r[k];
  return out;
}

/** A non-empty string map, or undefined (the engine's omitempty). */
function nonEmptyRecord<T>(r: Record<string, T> | undefined): Record<string, T> | undefined {
  return r && Object.keys(r).length > 0 ? sortedRecord(r) : undefined;
}

function nonEmpty<T>(a: T[] | undefined): T[] | undefined {
  return a && a.length > 0 ? a : undefined;
}

/** A comparator by a string key. */
function byKey<T>(key: (x: T) => string): (a: T, b: T) => number {
  return (a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
}

/** The registry host of an image reference, if it names one (docker's reference normalisation rule). */
export function registryHost(image: string): string | undefined {
  const slash = image.indexOf("/");
  if (slash < 0) return undefined;
  const first = image.slice(0, slash);
  return first.includes(".") || first.includes(":") || first === "localhost" ? first : undefined;
}

/** Applies the image overrides; the reference is otherwise kept exactly as written (no tag or digest added). */
export function effectiveImage(service: string, image: string, o: StackOverrides): string {
  if (o.images?.[service] !== undefined) return o.images[service];
  const host = registryHost(image);
  if (host !== undefined) {
    const to = o.registryMap?.[host];
    return to === undefined ? image : `${to.replace(/\/+$/, "")}${image.slice(host.length)}`;
  }
  if (o.registryPrefix) return `${o.registryPrefix.replace(/\/+$/, "")}/${image}`;
  return image;
}

/** overrides.bindPaths (beyond the CLI): the longest matching host path prefix is rewritten. */
function remapBind(source: string, map: Record<string, string> | undefined): string {
  if (!map) return source;
  const prefixes = Object.keys(map).sort((a, b) => b.length - a.length || (a < b ? -1 : 1));
  for (const from of prefixes) {
    const f = from.replace(/\/+$/, "") || "/";
    if (source === f || source.startsWith(f === "/" ? "/" : `${f}/`)) {
      const to = map[from].replace(/\/+$/, "");
      return `${to}${source.slice(f === "/" ? 0 : f.length)}` || "/";
    }
  }
  return source;
}

/**
 * `<base>-<8 hex>`: the hash of the content, and of the template and secret drivers when there
 * are any (the engine cannot change them on an existing object either, so they name it too).
 */
function contentName(base: string, content: Buffer, o: Pick<FileObjectModel, "templateDriver" | "driver"> = {}): { name: string; sha256: string } {
  const sha256 = createHash("sha256").update(content).digest("hex");
  const extra = o.templateDriver !== undefined || o.driver !== undefined
    ? JSON.stringify({ templateDriver: o.templateDriver, driver: o.driver?.name, options: o.driver ? sortedRecord(o.driver.options) : undefined })
    : "";
  const nameHash = extra ? createHash("sha256").update(content).update("\0").update(extra).digest("hex") : sha256;
  return { name: `${base}-${nameHash.slice(0, 8)}`, sha256 };
}

/** convertUpdateConfig: parallelism 1 unless given; durations in ns; the ratio a float32 as the engine keeps it. */
function updateConfig(u: UpdateConfigModel | undefined): JsonObject | undefined {
  if (!u) return undefined;
  return {
    Parallelism: u.parallelism ?? 1,
    Delay: u.delay,
    FailureAction: u.failureAction ?? "pause",
    Monitor: u.monitor,
    MaxFailureRatio: Number(float32String(u.maxFailureRatio)),
    Order: u.order ?? "stop-first",
  };
}

/** opts.EffectiveCapAddCapDrop: upper-case, CAP_ prefix, ALL wins, an added capability is not dropped. */
export function effectiveCaps(add: string[], drop: string[]): { capAdd: string[]; capDrop: string[] } {
  const norm = (caps: string[]) =>
    [...new Set(caps.map((c) => {
      const u = c.trim().toUpperCase();
      return u === "ALL" || u.startsWith("CAP_") ? u : `CAP_${u}`;
    }))].sort();
  let capAdd = norm(add);
  let capDrop = norm(drop);
  if (capAdd.includes("ALL")) capAdd = ["ALL"];
  if (capDrop.includes("ALL")) capDrop = ["ALL"];
  capDrop = capDrop.filter((c) => !capAdd.includes(c));
  return { capAdd, capDrop };
}

/** container.NetworkMode.IsUserDefined: the networks a service gets its name as an alias on. */
function isUserDefinedNetwork(target: string): boolean {
  return !["bridge", "host", "none", "default"].includes(target) && !target.startsWith("container:");
}

/** convertDNSConfig keeps IP addresses only as nameservers (as later CLIs' toNetipAddrSlice does). */
function isIp(s: string): boolean {
  return /^(\d{1,3}\.){3}\d{1,3}$/.test(s) || (s.includes(":") && /^[0-9a-fA-F:.]+$/.test(s));
}

/** An IPAM subnet as the engine keeps it: a bare address is a host subnet (/32, /128). */
function normaliseSubnet(s: string): string {
  if (s.includes("/")) return s;
  return s.includes(":") ? `${s}/128` : `${s}/32`;
}

/**
 * Creation order (beyond the CLI, which ignores depends_on): a service after those it depends on,
 * otherwise by name; a cycle is cut at its first service by name, with a warning.
 */
function order(services: ServiceModel[], warnings: ComposeWarning[], file: string): ServiceModel[] {
  const byName = new Map(services.map((s) => [s.name, s]));
  const done = new Set<string>();
  const out: ServiceModel[] = [];
  const remaining = new Set(services.map((s) => s.name));
  while (remaining.size > 0) {
    const ready = [...remaining].filter((n) => byName.get(n)!.dependsOn.every((d) => done.has(d))).sort();
    if (ready.length === 0) {
      const n = [...remaining].sort()[0];
      const s = byName.get(n)!;
      const cut = s.dependsOn.filter((d) => !done.has(d));
      warnings.push({ file, key: `services.${n}.depends_on`, message: `depends_on cycle through ${cut.join(", ")}; this ordering is dropped` });
      s.dependsOn = s.dependsOn.filter((d) => done.has(d));
      continue;
    }
    const n = ready[0];
    remaining.delete(n);
    done.add(n);
    out.push(byName.get(n)!);
  }
  return out;
}

/**
 * Converts a loaded stack. Overrides that name an unknown service or a
 * published port the file does not have are errors, so a typo in stack
 * config cannot go unnoticed.
 */
export function convertStack(loaded: LoadedStack, overrides: StackOverrides = {}): StackSpec {
  const stack = loaded.stackName;
  const file = loaded.file;
  const scope = (n: string) => `${stack}_${n}`;
  const warnings: ComposeWarning[] = loaded.warnings.map((w) => ({ ...w }));
  const differences: string[] = [];
  // deep-ish copy of what we mutate (dependsOn)
  const services = loaded.services.map((s) => ({ ...s, dependsOn: [...s.dependsOn] }));
  const known = new Set(services.map((s) => s.name));

  for (const [what, rec] of [["replicas", overrides.replicas], ["images", overrides.images], ["ports", overrides.ports],
    ["publishMode", overrides.publishMode], ["endpointMode", overrides.endpointMode]] as const) {
    for (const svc of Object.keys(rec ?? {})) {
      if (!known.has(svc)) {
        throw new ComposeError(file, `overrides.${what}.${svc}`, `override for unknown service ${JSON.stringify(svc)}`,
          `use one of: ${[...known].join(", ")}`);
      }
    }
  }

  // ---- networks (convert.Networks): those used by services, plus `default` when a service has none
  const used = new Set<string>();
  for (const s of services) {
    const names = Object.keys(s.networks);
    if (names.length === 0) used.add(DEFAULT_NETWORK);
    for (const n of names) used.add(n);
  }
  const networkName = (key: string) => {
    const n = loaded.networks[key];
    return n?.name ?? scope(key);
  };
  const networks: NetworkSpec[] = [];
  const externalNetworks: string[] = [];
  for (const key of [...used].sort()) {
    const n = loaded.networks[key] ?? {
      external: false, driverOpts: {}, ipamSubnets: [], internal: false, attachable: false, labels: {}, extras: {},
    };
    const name = networkName(key);
    if (n.external) {
      externalNetworks.push(name);
      continue;
    }
    const create = {
      Name: name,
      CheckDuplicate: true,
      Driver: n.driver || DEFAULT_DRIVER,
      Scope: "swarm",
      Internal: n.internal ? true : undefined,
      Attachable: n.attachable ? true : undefined,
      Labels: withNamespace(stack, n.labels),
      Options: nonEmptyRecord(n.driverOpts),
      IPAM: n.ipamDriver !== undefined || n.ipamSubnets.length > 0
        ? { Driver: n.ipamDriver, Config: nonEmpty(n.ipamSubnets.map((subnet) => ({ Subnet: normaliseSubnet(subnet) }))) }
        : undefined,
    };
    networks.push({ key, name, create: sorted(create) as JsonObject });
  }
  networks.sort(byKey((n) => n.name));

  // ---- secrets and configs (convert.Secrets / convert.Configs): named by content
  const fileObjects = (kind: "secret" | "config", defs: Record<string, FileObjectModel>) => {
    const specs: FileObjectSpec[] = [];
    const external: string[] = [];
    const names: Record<string, string> = {};
    for (const key of Object.keys(defs).sort()) {
      const o = defs[key];
      if (o.external) {
        names[key] = o.name!;
        external.push(o.name!);
        continue;
      }
      const base = o.name ?? scope(key);
      const { name, sha256 } = contentName(base, o.content!, o);
      names[key] = name;
      const spec = {
        Name: name,
        Labels: withNamespace(stack, o.labels),
        Data: o.content!.toString("base64"),
        Templating: o.templateDriver !== undefined ? { Name: o.templateDriver } : undefined,
        Driver: o.driver !== undefined ? { Name: o.driver.name, Options: nonEmptyRecord(o.driver.options) } : undefined,
      };
      specs.push({ key, name, stackDeployName: base, file: o.file!, sha256, spec: sorted(spec) as JsonObject });
    }
    if (specs.length > 0) {
      differences.push(`${kind}s from files are named <name>-<8 hex of sha256 of the content> (${specs.map((s) => s.name).join(", ")}), ` +
        `so that a content change creates a new ${kind} and switches services to it; docker stack deploy uses the bare name and fails on a content change`);
    }
    return { specs, external: [...new Set(external)].sort(), names };
  };
  const secrets = fileObjects("secret", loaded.secrets);
  const configs = fileObjects("config", loaded.configs);

  // ---- volumes (informational: the engine creates them from mount options)
  const volumes: VolumeSpec[] = [];
  const externalVolumes = new Set<string>();
  const usedVolumes = new Set<string>();
  for (const s of services) for (const m of s.volumes) if (m.type === "volume" && m.source) usedVolumes.add(m.source);
  for (const key of [...usedVolumes].sort()) {
    const v = loaded.volumes[key];
    const name = v.name ?? scope(key);
    if (v.external) {
      externalVolumes.add(name);
      continue;
    }
    const create = { Name: name, Driver: v.driver, DriverOpts: v.driverOpts && sortedRecord(v.driverOpts), Labels: withNamespace(stack, v.labels) };
    volumes.push({ key, name, create: sorted(create) as JsonObject });
  }

  // ---- services
  const ordered = order(services, warnings, file);
  const anyDepends = ordered.some((s) => s.dependsOn.length > 0);
  if (anyDepends) {
    differences.push("depends_on orders creation: a service is created after the services it depends on (docker stack deploy ignores depends_on)");
  }
  const ctx: ServiceContext = {
    stack, file, scope, loaded, overrides, warnings, differences, networkName,
    secretNames: secrets.names, configNames: configs.names, configSpecs: configs.specs,
  };
  const serviceSpecs = ordered.map((s) => convertService(ctx, s));

  // ---- values for external secrets: the program creates them when missing
  const providedSecrets: StackSpec["providedSecrets"] = {};
  for (const [name, v] of Object.entries(overrides.externalSecrets ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!secrets.external.includes(name)) {
      throw new ComposeError(file, `overrides.externalSecrets.${name}`, `the file has no external secret ${JSON.stringify(name)}`,
        `use one of: ${secrets.external.join(", ") || "(none)"}`);
    }
    providedSecrets[name] = v;
    differences.push(`secrets: the external secret ${name} is created by the program when missing (stack overrides); docker stack deploy requires it to exist`);
  }
  const bindSources = [...new Set(serviceSpecs.flatMap((s) => mountsOf(s.spec)
    .filter((m) => m.Type === "bind" && m.Source).map((m) => String(m.Source))))].sort();
  if (overrides.createBindPaths && bindSources.length > 0) {
    differences.push(`bind sources that do not exist are made as empty directories on every node (stack overrides): ${bindSources.join(", ")}`);
  }

  return {
    stack,
    file,
    networks,
    volumes,
    secrets: secrets.specs,
    configs: configs.specs,
    services: serviceSpecs,
    external: {
      networks: [...new Set(externalNetworks)].sort(),
      volumes: [...externalVolumes].sort(),
      secrets: secrets.external,
      configs: configs.external,
    },
    providedSecrets,
    bindSources,
    createBindPaths: overrides.createBindPaths === true,
    warnings,
    differences,
  };
}

/** A ServiceSpec's TaskTemplate.ContainerSpec.Mounts (for the bind sources overrides.createBindPaths makes). */
function mountsOf(spec: JsonObject): JsonObject[] {
  const tt = spec.TaskTemplate as JsonObject | undefined;
  const cs = tt?.ContainerSpec as JsonObject | undefined;
  return (cs?.Mounts as JsonObject[] | undefined) ?? [];
}

interface ServiceContext {
  stack: string;
  file: string;
  scope: (n: string) => string;
  loaded: LoadedStack;
  overrides: StackOverrides;
  warnings: ComposeWarning[];
  differences: string[];
  networkName: (key: string) => string;
  /** Compose key to engine name. */
  secretNames: Record<string, string>;
  configNames: Record<string, string>;
  configSpecs: FileObjectSpec[];
}

/**
 * convertVolumeToMount (cli/compose/convert/volume.go), one mount: a named volume gets the stack's
 * name and, unless external, the volume's labels and driver as VolumeOptions; a bind source is
 * remapped by overrides.bindPaths.
 */
function convertMount(ctx: ServiceContext, s: ServiceModel, m: MountConfig, i: number): JsonObject {
  const key = `services.${s.name}`;
  if (m.type === "cluster" || m.type === "npipe") {
    return sorted({ Type: m.type, Source: m.source, Target: m.target, ClusterOptions: m.type === "cluster" ? {} : undefined }) as JsonObject;
  }
  const out: Record<string, Json | undefined> = {
    Type: m.type,
    Target: m.target,
    ReadOnly: m.readOnly ? true : undefined,
    Consistency: m.consistency || undefined,
  };
  if (m.type === "bind") {
    const src = remapBind(m.source!, ctx.overrides.bindPaths);
    if (src !== m.source) ctx.differences.push(`${key}.volumes[${i}]: bind source ${m.source} is mounted from ${src} (stack overrides)`);
    out.Source = src;
    if (m.bind) out.BindOptions = { Propagation: m.bindPropagation || undefined } as JsonObject;
  } else if (m.type === "volume") {
    if (m.source) {
      const v = ctx.loaded.volumes[m.source];
      out.Source = v.name ?? ctx.scope(m.source);
      out.VolumeOptions = {
        NoCopy: m.volume && m.noCopy ? true : undefined,
        Labels: v.external ? undefined : withNamespace(ctx.stack, v.labels),
        DriverConfig: !v.external && (v.driver !== undefined || v.driverOpts !== undefined)
          ? { Name: v.driver ?? "", Options: v.driverOpts && sortedRecord(v.driverOpts) } : undefined,
      } as JsonObject;
    }
  } else if (m.type === "tmpfs") {
    if (m.tmpfs) out.TmpfsOptions = { SizeBytes: m.tmpfsSize } as JsonObject;
  }
  return sorted(out) as JsonObject;
}

/** convertRestartPolicy: deploy.restart_policy, or else the legacy `restart:`. */
function restartPolicy(s: ServiceModel, file: string): JsonObject | undefined {
  const rp = s.deploy.restartPolicy;
  if (rp) return sorted({ Condition: rp.condition, Delay: rp.delay, MaxAttempts: rp.maxAttempts, Window: rp.window }) as JsonObject;
  if (!s.restart) return undefined;
  const [name, count] = s.restart.split(":");
  const max = count === undefined ? 0 : Number(count);
  switch (name) {
    case "no":
    case "":
      return undefined;
    case "always":
    case "unless-stopped":
      return { Condition: "any", ...(max > 0 ? { MaxAttempts: max } : {}) };
    case "on-failure":
      return { Condition: "on-failure", ...(max > 0 ? { MaxAttempts: max } : {}) };
    default:
      throw new ComposeError(file, `services.${s.name}.restart`, `invalid restart policy ${JSON.stringify(s.restart)}`, "use no, always, on-failure or unless-stopped");
  }
}

/**
 * convertDeployMode (CLI 23 and later, which also take the job modes; the loader refuses them for
 * 20.10): Global, ReplicatedJob (replicas is both MaxConcurrent and TotalCompletions), GlobalJob,
 * or Replicated, with overrides.replicas applied.
 */
function deployMode(ctx: ServiceContext, s: ServiceModel): JsonObject {
  const d = s.deploy;
  const key = `services.${s.name}`;
  const override = ctx.overrides.replicas?.[s.name];
  if (d.mode === "global" || d.mode === "global-job") {
    if (override !== undefined) {
      throw new ComposeError(ctx.file, `overrides.replicas.${s.name}`, `service is ${d.mode} (one task per node); replicas do not apply`,
        "remove the override or set deploy.mode: replicated");
    }
    return d.mode === "global" ? { Global: {} } : { GlobalJob: {} };
  }
  if (d.mode === "replicated-job") {
    const replicas = override ?? d.replicas;
    if (override !== undefined && override !== d.replicas) {
      ctx.differences.push(`${key}.deploy.replicas: ${d.replicas ?? "(unset)"} is deployed as ${override} (stack overrides)`);
    }
    return { ReplicatedJob: sorted({ MaxConcurrent: replicas, TotalCompletions: replicas }) as JsonObject };
  }
  const replicas = override ?? d.replicas ?? 1;
  if (override !== undefined && override !== (d.replicas ?? 1)) {
    ctx.differences.push(`${key}.deploy.replicas: ${d.replicas ?? 1} is deployed as ${replicas} (stack overrides)`);
  }
  return { Replicated: { Replicas: replicas } };
}

/**
 * convertEndpointSpec: the ports, sorted, with the publish-mode, published-port and endpoint-mode
 * overrides applied (each one recorded as a difference).
 */
function endpointSpec(ctx: ServiceContext, s: ServiceModel): JsonObject {
  const key = `services.${s.name}`;
  const d = s.deploy;
  const portMap = ctx.overrides.ports?.[s.name] ?? {};
  const usedPortKeys = new Set<string>();
  const ports = s.ports.map((p: PortEntry) => {
    let published = p.published;
    if (published !== undefined && portMap[String(published)] !== undefined) {
      usedPortKeys.add(String(published));
      published = portMap[String(published)];
    }
    return { TargetPort: p.target, PublishedPort: published !== undefined && published !== 0 ? published : undefined, Protocol: p.protocol, PublishMode: p.mode };
  });
  const publishMode = ctx.overrides.publishMode?.[s.name];
  if (publishMode !== undefined) {
    if (!s.ports.some((p) => p.published)) {
      throw new ComposeError(ctx.file, `overrides.publishMode.${s.name}`, "service publishes no port", "remove the override");
    }
    for (const p of ports) {
      if (p.PublishedPort === undefined || p.PublishMode === publishMode) continue;
      ctx.differences.push(`${key}.ports: port ${p.PublishedPort}/${p.Protocol} is published in ${publishMode} mode instead of ${p.PublishMode} (stack overrides)`);
      p.PublishMode = publishMode;
    }
  }
  for (const k of Object.keys(portMap)) {
    if (!usedPortKeys.has(k)) {
      throw new ComposeError(ctx.file, `overrides.ports.${s.name}.${k}`, `service publishes no port ${k}`,
        `use one of: ${s.ports.filter((p) => p.published).map((p) => p.published).join(", ") || "(none)"}`);
    }
    ctx.differences.push(`${key}.ports: published port ${k} is deployed as ${portMap[k]} (stack overrides)`);
  }
  ports.sort((a, b) =>
    (a.PublishedPort ?? 0) - (b.PublishedPort ?? 0) || a.TargetPort - b.TargetPort ||
    (a.Protocol < b.Protocol ? -1 : a.Protocol > b.Protocol ? 1 : 0) ||
    (a.PublishMode < b.PublishMode ? -1 : a.PublishMode > b.PublishMode ? 1 : 0));

  const endpointMode = ctx.overrides.endpointMode?.[s.name] ?? (d.endpointMode || "vip");
  if (endpointMode !== (d.endpointMode || "vip")) {
    if (endpointMode === "dnsrr" && ports.some((p) => p.PublishedPort !== undefined && p.PublishMode === "ingress")) {
      throw new ComposeError(ctx.file, `overrides.endpointMode.${s.name}`, "dnsrr cannot be used with ports published in ingress mode",
        `add publishMode: { ${s.name}: host } to the overrides`);
    }
    ctx.differences.push(`${key}.deploy.endpoint_mode: ${d.endpointMode || "vip"} is deployed as ${endpointMode} (stack overrides)`);
  }
  return sorted({ Mode: endpointMode, Ports: nonEmpty(ports) }) as JsonObject;
}

/**
 * convertService (cli/compose/convert/service.go): the ServiceSpec for one compose service (API
 * 1.41 shape), with the stack's names for networks, secrets and configs, and the overrides.
 */
function convertService(ctx: ServiceContext, s: ServiceModel): ServiceSpec {
  const { stack, file, overrides, differences } = ctx;
  const key = `services.${s.name}`;
  const image = effectiveImage(s.name, s.image, overrides);
  if (image !== s.image) differences.push(`${key}.image: ${s.image} is deployed as ${image} (stack overrides)`);

  const mounts = s.volumes.map((m, i) => convertMount(ctx, s, m, i));

  // convertEnvironment: NAME=value, and a bare NAME for a variable declared without a value
  const env: string[] = [];
  for (const k of Object.keys(s.environment).sort()) {
    const v = s.environment[k];
    if (v === null) {
      env.push(k);
      ctx.warnings.push({ file, key: `${key}.environment.${k}`, message: `${k} has no value and is not set in the stack's environment; it is left out` });
    } else env.push(`${k}=${v}`);
  }
  env.sort();

  // convertServiceNetworks: the stack's `default` network when none is named; the service name is
  // an alias on user-defined networks
  const svcNetworks = Object.keys(s.networks).length > 0 ? s.networks : { [DEFAULT_NETWORK]: { aliases: [], driverOpts: {} } };
  const attachments = Object.keys(svcNetworks).map((n) => {
    const target = ctx.networkName(n);
    const cfg = svcNetworks[n];
    const aliases = [...cfg.aliases];
    if (isUserDefinedNetwork(target)) aliases.push(s.name);
    return { Target: target, Aliases: nonEmpty(aliases), DriverOpts: nonEmptyRecord(cfg.driverOpts) };
  }).sort(byKey((a) => a.Target));

  // convertServiceSecrets / convertServiceConfigs: by engine name, sorted; IDs are looked up at deploy
  const refs = (list: ServiceModel["secrets"], names: Record<string, string>) =>
    list.map((r) => ({
      name: names[r.source],
      File: { Name: r.target ?? r.source, UID: r.uid ?? "0", GID: r.gid ?? "0", Mode: r.mode ?? 0o444 },
    })).sort(byKey((r) => r.name));
  const secretRefs = refs(s.secrets, ctx.secretNames);
  const configRefs = refs(s.configs, ctx.configNames);

  // convertCredentialSpec: file or registry as written; a config by its engine name, which is
  // also referenced as a runtime config (not mounted)
  const cred = s.credentialSpec;
  const credConfig = cred.config !== undefined
    ? ctx.configSpecs.find((c) => c.key === cred.config)?.name ?? ctx.scope(cred.config) : undefined;
  const credentialSpec = cred.file !== undefined || cred.registry !== undefined
    ? { File: cred.file, Registry: cred.registry }
    : credConfig !== undefined ? { Config: credConfig } : undefined;
  const configRefsJson: JsonObject[] = configRefs.map((r) => sorted({ File: r.File, ConfigName: r.name }) as JsonObject);
  if (credConfig !== undefined) {
    configRefsJson.push({ ConfigName: credConfig, Runtime: {} });
    configRefsJson.sort(byKey((c) => String(c.ConfigName)));
  }

  const h = s.healthcheck;
  const healthcheck = h === undefined ? undefined : h.disable ? { Test: ["NONE"] } : {
    Test: h.test,
    Interval: h.interval ?? 0,
    Timeout: h.timeout ?? 0,
    StartPeriod: h.startPeriod ?? 0,
    StartInterval: h.startInterval || undefined,
    Retries: h.retries ?? 0,
  };

  const caps = effectiveCaps(s.capAdd, s.capDrop);
  const ulimitNames = Object.keys(s.ulimits).sort();
  const d = s.deploy;
  const logOptions = nonEmptyRecord(s.logging?.options);

  const spec = {
    Name: ctx.scope(s.name),
    Labels: { ...withNamespace(stack, d.labels), [LABEL_IMAGE]: image },
    TaskTemplate: {
      ContainerSpec: {
        Image: image,
        Command: nonEmpty(s.entrypoint),
        Args: nonEmpty(s.command),
        Hostname: s.hostname,
        // extra_hosts in the file's order (the first match wins in /etc/hosts), split at the first
        // ':' (an IPv6 address keeps its other colons), in SwarmKit's "IP hostname" notation
        Hosts: nonEmpty(s.extraHosts.map((x) => {
          const i = x.indexOf(":");
          return `${x.slice(i + 1)} ${x.slice(0, i)}`;
        })),
        DNSConfig: s.dns.length > 0 || s.dnsSearch.length > 0
          ? { Nameservers: nonEmpty(s.dns.filter(isIp)), Search: nonEmpty(s.dnsSearch) } : undefined,
        Healthcheck: healthcheck,
        Env: nonEmpty(env),
        Labels: withNamespace(stack, s.labels),
        Dir: s.workingDir,
        User: s.user,
        Mounts: nonEmpty(mounts),
        StopGracePeriod: s.stopGracePeriod,
        StopSignal: s.stopSignal,
        TTY: s.tty ? true : undefined,
        OpenStdin: s.stdinOpen ? true : undefined,
        ReadOnly: s.readOnly ? true : undefined,
        Secrets: nonEmpty(secretRefs.map((r) => ({ File: r.File, SecretName: r.name }))),
        Configs: nonEmpty(configRefsJson),
        Privileges: { CredentialSpec: credentialSpec },
        Isolation: s.isolation,
        Init: s.init,
        Sysctls: nonEmptyRecord(s.sysctls),
        CapabilityAdd: nonEmpty(caps.capAdd),
        CapabilityDrop: nonEmpty(caps.capDrop),
        Ulimits: nonEmpty(ulimitNames.map((n) => ({ Name: n, Soft: s.ulimits[n].soft, Hard: s.ulimits[n].hard }))),
        OomScoreAdj: s.oomScoreAdj,
      },
      // convertLogging: options without a driver are for the engine's default driver
      LogDriver: s.logging?.driver ? { Name: s.logging.driver, Options: logOptions }
        : logOptions ? { Name: "", Options: logOptions } : undefined,
      Resources: {
        Limits: d.limits ? { NanoCPUs: d.limits.nanoCpus, MemoryBytes: d.limits.memoryBytes, Pids: d.limits.pids || undefined } : undefined,
        Reservations: d.reservations ? {
          NanoCPUs: d.reservations.nanoCpus,
          MemoryBytes: d.reservations.memoryBytes,
          GenericResources: nonEmpty(d.reservations.generic.map((g) => ({ DiscreteResourceSpec: { Kind: g.kind, Value: g.value } }))),
        } : undefined,
      },
      RestartPolicy: restartPolicy(s, file),
      Placement: {
        Constraints: nonEmpty(d.constraints),
        Preferences: nonEmpty(d.preferences.map((p) => ({ Spread: { SpreadDescriptor: p.replace(/^spread=/, "") } }))),
        MaxReplicas: d.maxReplicasPerNode,
      },
      Networks: nonEmpty(attachments),
    },
    Mode: deployMode(ctx, s),
    UpdateConfig: updateConfig(d.updateConfig),
    RollbackConfig: updateConfig(d.rollbackConfig),
    EndpointSpec: endpointSpec(ctx, s),
  };

  return {
    key: s.name,
    name: ctx.scope(s.name),
    dependsOn: [...s.dependsOn].sort(),
    networks: attachments.map((a) => a.Target),
    secrets: secretRefs.map((r) => r.name),
    configs: configRefs.map((r) => r.name),
    spec: sorted(spec) as unknown as JsonObject,
  };
}
