/**
 * convertStack: a LoadedStack to plain resource args, with the meaning
 * `docker stack deploy` (docker/cli cli/compose/convert) gives the file.
 * Pure: no I/O, no Pulumi resources, same input -> same output.
 */
import { createHash } from "node:crypto";
import { ComposeError, ComposeWarning } from "./errors";
import type { FileObjectModel, LoadedStack, MountConfig, ServiceModel, UpdateConfigModel } from "./model";
import type { PortEntry } from "./ports";
import type {
  FileObjectSpec, Label, NetworkSpec, NotExpressible, PlainContainerSpec, PlainMount, PlainServiceArgs,
  PlainUpdateConfig, ServiceSpec, StackOverrides, StackSpec, VolumeSpec,
} from "./types";
import { float32String, normaliseDuration } from "./units";

export const LABEL_NAMESPACE = "com.docker.stack.namespace";
export const LABEL_IMAGE = "com.docker.stack.image";
const DEFAULT_NETWORK = "default";
const DEFAULT_DRIVER = "overlay";

function toLabels(map: Record<string, string>): Label[] {
  return Object.keys(map)
    .sort()
    .map((label) => ({ label, value: map[label] }));
}

function withNamespace(stack: string, labels: Record<string, string>): Record<string, string> {
  return { ...labels, [LABEL_NAMESPACE]: stack };
}

function sortedRecord<T>(r: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of Object.keys(r).sort()) out[k] = r[k];
  return out;
}

/** Recursively sorts object keys so that serialising the result is deterministic. */
export function sortKeys<T>(v: T): T {
  if (Array.isArray(v)) return v.map((x) => sortKeys(x)) as unknown as T;
  if (v !== null && typeof v === "object" && !Buffer.isBuffer(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x);
    }
    return out as T;
  }
  return v;
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

function updateConfig(u: UpdateConfigModel | undefined): PlainUpdateConfig | undefined {
  if (!u) return undefined;
  return {
    parallelism: u.parallelism ?? 1,
    delay: normaliseDuration(u.delay),
    failureAction: u.failureAction ?? "pause",
    monitor: normaliseDuration(u.monitor),
    // a float32 in the CLI and the engine: as the engine reads it back
    maxFailureRatio: float32String(u.maxFailureRatio),
    order: u.order ?? "stop-first",
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

function isUserDefinedNetwork(target: string): boolean {
  return !["bridge", "host", "none", "default"].includes(target) && !target.startsWith("container:");
}

function isIp(s: string): boolean {
  return /^(\d{1,3}\.){3}\d{1,3}$/.test(s) || (s.includes(":") && /^[0-9a-fA-F:.]+$/.test(s));
}

function normaliseSubnet(s: string): string {
  if (s.includes("/")) return s;
  return s.includes(":") ? `${s}/128` : `${s}/32`;
}

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

  // ---- networks: those used by services, plus `default` when a service has none
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
    const args: NetworkSpec["args"] = {
      name,
      driver: n.driver ?? DEFAULT_DRIVER,
      labels: toLabels(withNamespace(stack, n.labels)),
    };
    if (n.attachable) args.attachable = true;
    if (n.internal) args.internal = true;
    if (Object.keys(n.driverOpts).length > 0) args.options = sortedRecord(n.driverOpts);
    if (n.ipamDriver !== undefined) args.ipamDriver = n.ipamDriver;
    if (n.ipamSubnets.length > 0) args.ipamConfigs = n.ipamSubnets.map((subnet) => ({ subnet: normaliseSubnet(subnet) }));
    networks.push({ key, name, args });
  }
  networks.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  // ---- secrets and configs: named by content
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
      specs.push({
        key,
        name,
        stackDeployName: base,
        file: o.file!,
        sha256,
        args: { name, data: o.content!.toString("base64"), labels: toLabels(withNamespace(stack, o.labels)) },
        ...(o.templateDriver !== undefined ? { templateDriver: o.templateDriver } : {}),
        ...(o.driver !== undefined ? { driver: { name: o.driver.name, options: sortedRecord(o.driver.options) } } : {}),
      });
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
    const args: VolumeSpec["args"] = { name, labels: toLabels(withNamespace(stack, v.labels)) };
    if (v.driver !== undefined) args.driver = v.driver;
    if (v.driverOpts !== undefined) args.driverOpts = sortedRecord(v.driverOpts);
    volumes.push({ key, name, args });
  }

  // ---- services
  const ordered = order(services, warnings, file);
  const anyDepends = ordered.some((s) => s.dependsOn.length > 0);
  if (anyDepends) {
    differences.push("depends_on orders creation: a service is created after the services it depends on (docker stack deploy ignores depends_on)");
  }

  const serviceSpecs: ServiceSpec[] = ordered.map((s) => {
    const key = `services.${s.name}`;
    const notExpressible: NotExpressible[] = [];
    const gap = (k: string, field: string, value: unknown) => notExpressible.push({ key: `${key}.${k}`, field, value });
    const image = effectiveImage(s.name, s.image, overrides);
    if (image !== s.image) differences.push(`${key}.image: ${s.image} is deployed as ${image} (stack overrides)`);

    // mounts
    const mounts: PlainMount[] = [];
    s.volumes.forEach((m: MountConfig, i) => {
      const mk = `volumes[${i}]`;
      if (m.type === "cluster" || m.type === "npipe") {
        gap(mk, "TaskTemplate.ContainerSpec.Mounts", { type: m.type, source: m.source, target: m.target });
        return;
      }
      if (m.consistency) gap(`${mk}.consistency`, "TaskTemplate.ContainerSpec.Mounts[].Consistency", m.consistency);
      const pm: PlainMount = { type: m.type, target: m.target };
      if (m.readOnly) pm.readOnly = true;
      if (m.type === "bind") {
        const src = remapBind(m.source!, overrides.bindPaths);
        if (src !== m.source) differences.push(`${key}.${mk}: bind source ${m.source} is mounted from ${src} (stack overrides)`);
        pm.source = src;
        if (m.bind) pm.bindOptions = m.bindPropagation ? { propagation: m.bindPropagation } : {};
      } else if (m.type === "volume") {
        if (m.source) {
          const v = loaded.volumes[m.source];
          pm.source = v.name ?? scope(m.source);
          const vo: NonNullable<PlainMount["volumeOptions"]> = {};
          if (m.volume && m.noCopy) vo.noCopy = true;
          if (!v.external) {
            vo.labels = toLabels(withNamespace(stack, v.labels));
            if (v.driver !== undefined || v.driverOpts !== undefined) {
              if (v.driver !== undefined) vo.driverName = v.driver;
              if (v.driverOpts !== undefined) vo.driverOptions = sortedRecord(v.driverOpts);
            }
          }
          pm.volumeOptions = vo;
        }
      } else if (m.type === "tmpfs") {
        if (m.tmpfs) pm.tmpfsOptions = m.tmpfsSize !== undefined ? { sizeBytes: m.tmpfsSize } : {};
      }
      mounts.push(pm);
    });

    // environment
    const env: Record<string, string> = {};
    for (const k of Object.keys(s.environment).sort()) {
      const v = s.environment[k];
      if (v === null) {
        gap(`environment.${k}`, "TaskTemplate.ContainerSpec.Env", k);
        warnings.push({ file, key: `${key}.environment.${k}`, message: `${k} has no value and is not set in the stack's environment; it is left out` });
      } else env[k] = v;
    }

    // networks
    const svcNetworks = Object.keys(s.networks).length > 0 ? s.networks : { [DEFAULT_NETWORK]: { aliases: [], driverOpts: {} } };
    const attachments = Object.keys(svcNetworks).map((n) => {
      const target = networkName(n);
      const cfg = svcNetworks[n];
      const aliases = [...cfg.aliases];
      if (isUserDefinedNetwork(target)) aliases.push(s.name);
      const a: { name: string; aliases?: string[]; driverOpts?: string[] } = { name: target };
      if (aliases.length > 0) a.aliases = aliases;
      const opts = Object.keys(cfg.driverOpts).sort().map((k) => `${k}=${cfg.driverOpts[k]}`);
      if (opts.length > 0) a.driverOpts = opts;
      return a;
    }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

    // secrets / configs references
    const refs = <K extends "secret" | "config">(kind: K, list: ServiceModel["secrets"], names: Record<string, string>) =>
      list.map((r) => ({
        name: names[r.source],
        fileName: r.target ?? r.source,
        fileUid: r.uid ?? "0",
        fileGid: r.gid ?? "0",
        fileMode: r.mode ?? 0o444,
        kind,
      })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const secretRefs = refs("secret", s.secrets, secrets.names);
    const configRefs = refs("config", s.configs, configs.names);

    const container: PlainContainerSpec = {
      image,
      labels: toLabels(withNamespace(stack, s.labels)),
    };
    if (s.entrypoint && s.entrypoint.length > 0) container.commands = s.entrypoint;
    if (s.command && s.command.length > 0) container.args = s.command;
    if (s.hostname !== undefined) container.hostname = s.hostname;
    if (s.extraHosts.length > 0) {
      // in the file's order (the first match wins in /etc/hosts), split at the first ':' (an
      // IPv6 address keeps its other colons, and brackets if written with them), as the CLI does
      container.hosts = s.extraHosts.map((h) => {
        const i = h.indexOf(":");
        return { host: h.slice(0, i), ip: h.slice(i + 1) };
      });
    }
    if (s.dns.length > 0 || s.dnsSearch.length > 0) {
      container.dnsConfig = { nameservers: s.dns.filter(isIp) };
      if (s.dnsSearch.length > 0) container.dnsConfig.searches = s.dnsSearch;
    }
    if (s.healthcheck) {
      const h = s.healthcheck;
      if (h.disable) container.healthcheck = { tests: ["NONE"] };
      else {
        container.healthcheck = {
          tests: h.test,
          interval: normaliseDuration(h.interval ?? 0),
          timeout: normaliseDuration(h.timeout ?? 0),
          startPeriod: normaliseDuration(h.startPeriod ?? 0),
          retries: h.retries ?? 0,
        };
        if (h.startInterval) gap("healthcheck.start_interval", "TaskTemplate.ContainerSpec.Healthcheck.StartInterval", normaliseDuration(h.startInterval));
      }
    }
    if (Object.keys(env).length > 0) container.env = env;
    if (s.workingDir !== undefined) container.dir = s.workingDir;
    if (s.user !== undefined) container.user = s.user;
    if (mounts.length > 0) container.mounts = mounts;
    if (s.stopGracePeriod !== undefined) container.stopGracePeriod = normaliseDuration(s.stopGracePeriod);
    if (s.stopSignal !== undefined) container.stopSignal = s.stopSignal;
    if (s.readOnly) container.readOnly = true;
    if (secretRefs.length > 0) {
      container.secrets = secretRefs.map((r) => ({
        secretId: r.name, secretName: r.name, fileName: r.fileName, fileUid: r.fileUid, fileGid: r.fileGid, fileMode: r.fileMode,
      }));
    }
    if (configRefs.length > 0) {
      container.configs = configRefs.map((r) => ({
        configId: r.name, configName: r.name, fileName: r.fileName, fileUid: r.fileUid, fileGid: r.fileGid, fileMode: r.fileMode,
      }));
    }
    if (s.credentialSpec.file !== undefined || s.credentialSpec.registry !== undefined) {
      container.privileges = { credentialSpec: { ...s.credentialSpec } };
    }
    if (s.credentialSpec.config !== undefined) gap("credential_spec.config", "TaskTemplate.ContainerSpec.Privileges.CredentialSpec.Config", s.credentialSpec.config);
    if (s.isolation !== undefined) container.isolation = s.isolation;
    if (Object.keys(s.sysctls).length > 0) container.sysctl = sortedRecord(s.sysctls);
    const caps = effectiveCaps(s.capAdd, s.capDrop);
    if (caps.capAdd.length > 0) container.capAdds = caps.capAdd;
    if (caps.capDrop.length > 0) container.capDrops = caps.capDrop;
    if (s.tty) gap("tty", "TaskTemplate.ContainerSpec.TTY", true);
    if (s.stdinOpen) gap("stdin_open", "TaskTemplate.ContainerSpec.OpenStdin", true);
    if (s.init !== undefined) gap("init", "TaskTemplate.ContainerSpec.Init", s.init);
    if (s.oomScoreAdj !== undefined) gap("oom_score_adj", "TaskTemplate.ContainerSpec.OomScoreAdj", s.oomScoreAdj);
    const ulimitNames = Object.keys(s.ulimits).sort();
    if (ulimitNames.length > 0) {
      gap("ulimits", "TaskTemplate.ContainerSpec.Ulimits", ulimitNames.map((n) => ({ name: n, ...s.ulimits[n] })));
    }

    // mode / replicas
    const d = s.deploy;
    let mode: PlainServiceArgs["mode"];
    if (d.mode === "global") {
      if (overrides.replicas?.[s.name] !== undefined) {
        throw new ComposeError(file, `overrides.replicas.${s.name}`, "service is global (one task per node); replicas do not apply",
          "remove the override or set deploy.mode: replicated");
      }
      mode = { global: true };
    } else {
      const replicas = overrides.replicas?.[s.name] ?? d.replicas ?? 1;
      if (overrides.replicas?.[s.name] !== undefined && overrides.replicas[s.name] !== (d.replicas ?? 1)) {
        differences.push(`${key}.deploy.replicas: ${d.replicas ?? 1} is deployed as ${replicas} (stack overrides)`);
      }
      mode = { replicated: { replicas } };
    }

    // ports
    const portMap = overrides.ports?.[s.name] ?? {};
    const usedPortKeys = new Set<string>();
    const ports = s.ports.map((p: PortEntry) => {
      let published = p.published;
      if (published !== undefined && portMap[String(published)] !== undefined) {
        usedPortKeys.add(String(published));
        published = portMap[String(published)];
      }
      const out: { targetPort: number; publishedPort?: number; protocol: string; publishMode: string } = {
        targetPort: p.target, protocol: p.protocol, publishMode: p.mode,
      };
      if (published !== undefined && published !== 0) out.publishedPort = published;
      return out;
    });
    const publishMode = overrides.publishMode?.[s.name];
    if (publishMode !== undefined) {
      if (!s.ports.some((p) => p.published)) {
        throw new ComposeError(file, `overrides.publishMode.${s.name}`, "service publishes no port", "remove the override");
      }
      for (const p of ports) {
        if (p.publishedPort === undefined || p.publishMode === publishMode) continue;
        differences.push(`${key}.ports: port ${p.publishedPort}/${p.protocol} is published in ${publishMode} mode instead of ${p.publishMode} (stack overrides)`);
        p.publishMode = publishMode;
      }
    }
    for (const k of Object.keys(portMap)) {
      if (!usedPortKeys.has(k)) {
        throw new ComposeError(file, `overrides.ports.${s.name}.${k}`, `service publishes no port ${k}`,
          `use one of: ${s.ports.filter((p) => p.published).map((p) => p.published).join(", ") || "(none)"}`);
      }
      differences.push(`${key}.ports: published port ${k} is deployed as ${portMap[k]} (stack overrides)`);
    }
    ports.sort((a, b) =>
      (a.publishedPort ?? 0) - (b.publishedPort ?? 0) || a.targetPort - b.targetPort ||
      (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0) ||
      (a.publishMode < b.publishMode ? -1 : a.publishMode > b.publishMode ? 1 : 0));

    const endpointMode = overrides.endpointMode?.[s.name] ?? (d.endpointMode || "vip");
    if (endpointMode !== (d.endpointMode || "vip")) {
      if (endpointMode === "dnsrr" && ports.some((p) => p.publishedPort !== undefined && p.publishMode === "ingress")) {
        throw new ComposeError(file, `overrides.endpointMode.${s.name}`, "dnsrr cannot be used with ports published in ingress mode",
          `add publishMode: { ${s.name}: host } to the overrides`);
      }
      differences.push(`${key}.deploy.endpoint_mode: ${d.endpointMode || "vip"} is deployed as ${endpointMode} (stack overrides)`);
    }
    const args: PlainServiceArgs = {
      name: scope(s.name),
      labels: toLabels({ ...withNamespace(stack, d.labels), [LABEL_IMAGE]: image }),
      mode,
      endpointSpec: { mode: endpointMode, ...(ports.length > 0 ? { ports } : {}) },
      taskSpec: { containerSpec: container },
    };
    const uc = updateConfig(d.updateConfig);
    if (uc) args.updateConfig = uc;
    const rc = updateConfig(d.rollbackConfig);
    if (rc) args.rollbackConfig = rc;
    if (s.logging?.driver) {
      args.taskSpec.logDriver = { name: s.logging.driver };
      if (Object.keys(s.logging.options).length > 0) args.taskSpec.logDriver.options = sortedRecord(s.logging.options);
    } else if (s.logging && Object.keys(s.logging.options).length > 0) {
      // options for the engine's default driver: the provider requires a driver name
      gap("logging.options", "TaskTemplate.LogDriver.Options", sortedRecord(s.logging.options));
    }
    if (attachments.length > 0) args.taskSpec.networksAdvanceds = attachments;
    if (d.constraints.length > 0 || d.preferences.length > 0 || d.maxReplicasPerNode !== undefined) {
      args.taskSpec.placement = {};
      if (d.constraints.length > 0) args.taskSpec.placement.constraints = d.constraints;
      if (d.preferences.length > 0) args.taskSpec.placement.prefs = d.preferences;
      if (d.maxReplicasPerNode !== undefined) args.taskSpec.placement.maxReplicas = d.maxReplicasPerNode;
    }
    if (d.limits || d.reservations) {
      args.taskSpec.resources = {};
      if (d.limits) {
        args.taskSpec.resources.limits = { nanoCpus: d.limits.nanoCpus, memoryBytes: d.limits.memoryBytes };
        if (d.limits.pids) gap("deploy.resources.limits.pids", "TaskTemplate.Resources.Limits.Pids", d.limits.pids);
      }
      if (d.reservations) {
        const r: NonNullable<NonNullable<PlainServiceArgs["taskSpec"]["resources"]>["reservation"]> = {
          nanoCpus: d.reservations.nanoCpus, memoryBytes: d.reservations.memoryBytes,
        };
        if (d.reservations.generic.length > 0) {
          r.genericResources = { discreteResourcesSpecs: d.reservations.generic.map((g) => `${g.kind}=${g.value}`) };
        }
        args.taskSpec.resources.reservation = r;
      }
    }
    const restart = restartPolicy(s, file);
    if (restart) args.taskSpec.restartPolicy = restart;

    return {
      key: s.name,
      name: scope(s.name),
      dependsOn: [...s.dependsOn].sort(),
      networks: attachments.map((a) => a.name),
      secrets: secretRefs.map((r) => r.name),
      configs: configRefs.map((r) => r.name),
      args: sortKeys(args),
      notExpressible,
    };
  });

  for (const s of serviceSpecs) {
    for (const g of s.notExpressible) {
      differences.push(`${g.key}: ${g.field} = ${JSON.stringify(g.value)} cannot be set through @pulumi/docker 5.0.0`);
    }
  }

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
  const bindSources = [...new Set(serviceSpecs.flatMap((s) => (s.args.taskSpec.containerSpec.mounts ?? [])
    .filter((m) => m.type === "bind" && m.source).map((m) => m.source!)))].sort();
  if (overrides.createBindPaths && bindSources.length > 0) {
    differences.push(`bind sources that do not exist are made as empty directories on every node (stack overrides): ${bindSources.join(", ")}`);
  }

  return {
    stack,
    file,
    networks: networks.map((n) => ({ ...n, args: sortKeys(n.args) })),
    volumes: volumes.map((v) => ({ ...v, args: sortKeys(v.args) })),
    secrets: secrets.specs.map((x) => ({ ...x, args: sortKeys(x.args) })),
    configs: configs.specs.map((x) => ({ ...x, args: sortKeys(x.args) })),
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

/** deploy.restart_policy, or else the legacy `restart:` (convertRestartPolicy). */
function restartPolicy(s: ServiceModel, file: string): PlainServiceArgs["taskSpec"]["restartPolicy"] {
  const rp = s.deploy.restartPolicy;
  if (rp) {
    const out: NonNullable<PlainServiceArgs["taskSpec"]["restartPolicy"]> = {};
    if (rp.condition !== undefined) out.condition = rp.condition;
    if (rp.delay !== undefined) out.delay = normaliseDuration(rp.delay);
    if (rp.maxAttempts !== undefined) out.maxAttempts = rp.maxAttempts;
    if (rp.window !== undefined) out.window = normaliseDuration(rp.window);
    return out;
  }
  if (!s.restart) return undefined;
  const [name, count] = s.restart.split(":");
  const max = count === undefined ? 0 : Number(count);
  switch (name) {
    case "no":
    case "":
      return undefined;
    case "always":
    case "unless-stopped":
      return { condition: "any", ...(max > 0 ? { maxAttempts: max } : {}) };
    case "on-failure":
      return { condition: "on-failure", ...(max > 0 ? { maxAttempts: max } : {}) };
    default:
      throw new ComposeError(file, `services.${s.name}.restart`, `invalid restart policy ${JSON.stringify(s.restart)}`, "use no, always, on-failure or unless-stopped");
  }
}

/**
 * Replaces the engine names a service's args refer to (networks, secrets,
 * configs) with IDs, e.g. the `id` outputs of the created docker.Network /
 * docker.Secret / docker.ServiceConfig resources.
 */
export function resolveServiceArgs<Id>(
  spec: ServiceSpec,
  resolve: { network: (name: string) => Id; secret: (name: string) => Id; config: (name: string) => Id },
): PlainServiceArgs<Id> {
  const a = spec.args;
  const c = a.taskSpec.containerSpec;
  const container: PlainContainerSpec<Id> = {
    ...c,
    secrets: c.secrets?.map((s) => ({ ...s, secretId: resolve.secret(s.secretName) })),
    configs: c.configs?.map((s) => ({ ...s, configId: resolve.config(s.configName) })),
  };
  if (!c.secrets) delete container.secrets;
  if (!c.configs) delete container.configs;
  const out: PlainServiceArgs<Id> = {
    ...a,
    taskSpec: {
      ...a.taskSpec,
      containerSpec: container,
      networksAdvanceds: a.taskSpec.networksAdvanceds?.map((n) => ({ ...n, name: resolve.network(n.name) })),
    },
  };
  if (!a.taskSpec.networksAdvanceds) delete out.taskSpec.networksAdvanceds;
  return out;
}
