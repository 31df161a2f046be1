/**
 * Engine API objects from a converted compose stack (compose/ StackSpec), as `docker stack deploy`
 * sends them (docker/cli cli/compose/convert: service.go, volume.go, compose.go, and
 * cli/command/stack/swarm/deploy_composefile.go), and the normaliser that maps what the engine
 * returns (`GET /services/{id}`, `/networks/{id}`, `/secrets/{id}`, `/configs/{id}`) to the same
 * shape, so that desired and actual compare without false differences.
 *
 * Pure: no I/O. Every object is built with sorted keys, so its JSON is deterministic.
 *
 * The StackSpec holds @pulumi/docker input shapes; fields that shape cannot hold (tty, init,
 * ulimits, ...) travel in `notExpressible` and are put back here, so nothing stack deploy sets is
 * lost.
 */
import { parseDuration } from "../compose/units";
import type {
    FileObjectSpec, NetworkSpec, NotExpressible, PlainMount, PlainUpdateConfig, ServiceSpec, StackSpec,
} from "../compose/types";

export const LABEL_NAMESPACE = "com.docker.stack.namespace";
export const LABEL_IMAGE = "com.docker.stack.image";

/** An Engine API JSON object. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

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

/** JSON with sorted keys. */
export function stableJson(v: unknown): string {
    return JSON.stringify(sorted(v));
}

function ns(d: string | undefined): number | undefined {
    if (d === undefined) return undefined;
    const n = parseDuration(d);
    if (n === undefined) throw new Error(`invalid duration ${JSON.stringify(d)}`);
    return n;
}

function labelMap(labels: { label: string; value: string }[] | undefined): Record<string, string> {
    const out: Record<string, string> = {};
    for (const l of labels ?? []) out[l.label] = l.value;
    return out;
}

function kvMap(list: string[] | undefined): Record<string, string> | undefined {
    if (!list || list.length === 0) return undefined;
    const out: Record<string, string> = {};
    for (const s of list) {
        const i = s.indexOf("=");
        out[i < 0 ? s : s.slice(0, i)] = i < 0 ? "" : s.slice(i + 1);
    }
    return out;
}

function nonEmpty<T>(a: T[] | undefined): T[] | undefined {
    return a && a.length > 0 ? a : undefined;
}

function gapValue(gaps: NotExpressible[], field: string): unknown {
    return gaps.find((g) => g.field === field)?.value;
}

// ---------------------------------------------------------------------------------------------
// Service

function updateConfig(u: PlainUpdateConfig | undefined): JsonObject | undefined {
    if (!u) return undefined;
    return sorted({
        Parallelism: u.parallelism,
        Delay: ns(u.delay) ?? 0,
        FailureAction: u.failureAction,
        Monitor: ns(u.monitor) ?? 0,
        MaxFailureRatio: Number(u.maxFailureRatio),
        Order: u.order,
    });
}

function mount(m: PlainMount, consistency: string | undefined): JsonObject {
    const out: Record<string, unknown> = { Type: m.type, Target: m.target, ReadOnly: m.readOnly ? true : undefined, Source: m.source };
    if (consistency) out.Consistency = consistency;
    if (m.bindOptions) out.BindOptions = { Propagation: m.bindOptions.propagation };
    if (m.volumeOptions) {
        const vo = m.volumeOptions;
        out.VolumeOptions = {
            NoCopy: vo.noCopy ? true : undefined,
            Labels: vo.labels ? labelMap(vo.labels) : undefined,
            DriverConfig: vo.driverName !== undefined || vo.driverOptions !== undefined
                ? { Name: vo.driverName ?? "", Options: vo.driverOptions } : undefined,
        };
    }
    if (m.tmpfsOptions) out.TmpfsOptions = { SizeBytes: m.tmpfsOptions.sizeBytes, Mode: m.tmpfsOptions.mode };
    return sorted(out) as JsonObject;
}

/**
 * The service's mounts in compose order: the converted ones, with the mounts the provider shape
 * cannot hold (cluster, npipe: `volumes[i]` gaps) put back at their index.
 */
function mounts(svc: ServiceSpec): JsonObject[] | undefined {
    const gaps = svc.notExpressible;
    const plain = [...(svc.args.taskSpec.containerSpec.mounts ?? [])];
    const extra = new Map<number, JsonObject>();
    const consistency = new Map<number, string>();
    for (const g of gaps) {
        let m = /\.volumes\[(\d+)\]$/.exec(g.key);
        if (m && g.field === "TaskTemplate.ContainerSpec.Mounts") {
            const v = g.value as { type: string; source?: string; target: string };
            const o: Record<string, unknown> = { Type: v.type, Source: v.source, Target: v.target };
            if (v.type === "cluster") o.ClusterOptions = {};
            extra.set(Number(m[1]), sorted(o) as JsonObject);
            continue;
        }
        m = /\.volumes\[(\d+)\]\.consistency$/.exec(g.key);
        if (m) consistency.set(Number(m[1]), String(g.value));
    }
    const total = plain.length + extra.size;
    const out: JsonObject[] = [];
    for (let i = 0, p = 0; i < total; i++) {
        const e = extra.get(i);
        if (e) out.push(e);
        else out.push(mount(plain[p++], consistency.get(i)));
    }
    return nonEmpty(out);
}

/** Engine config name of a compose config key (for a credential_spec.config reference). */
function configEngineName(stack: StackSpec, key: string): string {
    return stack.configs.find((c) => c.key === key)?.name ?? `${stack.stack}_${key}`;
}

/**
 * The ServiceSpec `docker stack deploy` sends for `svc` (API 1.41 shape). Network targets are
 * engine names (the engine resolves them to IDs); SecretID/ConfigID are left empty: the provider
 * fills them in from the engine right before it sends the spec (as the CLI's ParseSecrets does).
 */
export function serviceSpec(stack: StackSpec, svc: ServiceSpec): JsonObject {
    const a = svc.args;
    const c = a.taskSpec.containerSpec;
    const gaps = svc.notExpressible;
    const t = a.taskSpec;

    // Environment: compose's map plus variables declared without a value (CLI: bare "NAME").
    const env = [
        ...Object.entries(c.env ?? {}).map(([k, v]) => `${k}=${v}`),
        ...gaps.filter((g) => g.field === "TaskTemplate.ContainerSpec.Env").map((g) => String(g.value)),
    ].sort();

    const healthcheck = c.healthcheck ? sorted({
        Test: c.healthcheck.tests,
        Interval: ns(c.healthcheck.interval),
        Timeout: ns(c.healthcheck.timeout),
        StartPeriod: ns(c.healthcheck.startPeriod),
        StartInterval: ns(gapValue(gaps, "TaskTemplate.ContainerSpec.Healthcheck.StartInterval") as string | undefined),
        Retries: c.healthcheck.retries,
    }) : undefined;

    const ulimits = gapValue(gaps, "TaskTemplate.ContainerSpec.Ulimits") as { name: string; soft: number; hard: number }[] | undefined;

    const credConfig = gapValue(gaps, "TaskTemplate.ContainerSpec.Privileges.CredentialSpec.Config") as string | undefined;
    const credentialSpec = c.privileges?.credentialSpec
        ? { File: c.privileges.credentialSpec.file, Registry: c.privileges.credentialSpec.registry }
        : credConfig !== undefined ? { Config: configEngineName(stack, credConfig) } : undefined;

    const configs: JsonObject[] = (c.configs ?? []).map((r) => sorted({
        File: { Name: r.fileName, UID: r.fileUid, GID: r.fileGid, Mode: r.fileMode },
        ConfigName: r.configName,
    }) as JsonObject);
    if (credConfig !== undefined) {
        // A runtime config: not mounted, used by the runtime for the credential spec.
        configs.push({ ConfigName: configEngineName(stack, credConfig), Runtime: {} });
        configs.sort((x, y) => (String(x.ConfigName) < String(y.ConfigName) ? -1 : String(x.ConfigName) > String(y.ConfigName) ? 1 : 0));
    }

    const logOptions = gapValue(gaps, "TaskTemplate.LogDriver.Options") as Record<string, string> | undefined;
    const logDriver = t.logDriver ? { Name: t.logDriver.name, Options: t.logDriver.options }
        : logOptions ? { Name: "", Options: logOptions } : undefined;

    const limits = t.resources?.limits;
    const pids = gapValue(gaps, "TaskTemplate.Resources.Limits.Pids") as number | undefined;
    const res = t.resources?.reservation;
    const resources = {
        Limits: limits || pids ? { NanoCPUs: limits?.nanoCpus, MemoryBytes: limits?.memoryBytes, Pids: pids } : undefined,
        Reservations: res ? {
            NanoCPUs: res.nanoCpus,
            MemoryBytes: res.memoryBytes,
            GenericResources: nonEmpty((res.genericResources?.discreteResourcesSpecs ?? []).map((s) => {
                const i = s.indexOf("=");
                return { DiscreteResourceSpec: { Kind: s.slice(0, i), Value: Number(s.slice(i + 1)) } };
            })),
        } : undefined,
    };

    const rp = t.restartPolicy;
    const spec = {
        Name: a.name,
        Labels: labelMap(a.labels),
        TaskTemplate: {
            ContainerSpec: {
                Image: c.image,
                Command: nonEmpty(c.commands),
                Args: nonEmpty(c.args),
                Hostname: c.hostname,
                // SwarmKit notation "IP hostname"
                Hosts: nonEmpty((c.hosts ?? []).map((h) => `${h.ip} ${h.host}`)),
                DNSConfig: c.dnsConfig ? {
                    Nameservers: nonEmpty(c.dnsConfig.nameservers), Search: nonEmpty(c.dnsConfig.searches), Options: nonEmpty(c.dnsConfig.options),
                } : undefined,
                Healthcheck: healthcheck,
                Env: nonEmpty(env),
                Labels: labelMap(c.labels),
                Dir: c.dir,
                User: c.user,
                Groups: nonEmpty(c.groups),
                Mounts: mounts(svc),
                StopGracePeriod: ns(c.stopGracePeriod),
                StopSignal: c.stopSignal,
                TTY: gapValue(gaps, "TaskTemplate.ContainerSpec.TTY") === true ? true : undefined,
                OpenStdin: gapValue(gaps, "TaskTemplate.ContainerSpec.OpenStdin") === true ? true : undefined,
                ReadOnly: c.readOnly ? true : undefined,
                Secrets: nonEmpty((c.secrets ?? []).map((r) => ({
                    File: { Name: r.fileName, UID: r.fileUid, GID: r.fileGid, Mode: r.fileMode },
                    SecretName: r.secretName,
                }))),
                Configs: nonEmpty(configs),
                Privileges: { CredentialSpec: credentialSpec },
                Isolation: c.isolation,
                Init: gapValue(gaps, "TaskTemplate.ContainerSpec.Init") as boolean | undefined,
                Sysctls: c.sysctl,
                CapabilityAdd: nonEmpty(c.capAdds),
                CapabilityDrop: nonEmpty(c.capDrops),
                Ulimits: ulimits ? nonEmpty(ulimits.map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard }))) : undefined,
                OomScoreAdj: gapValue(gaps, "TaskTemplate.ContainerSpec.OomScoreAdj") as number | undefined,
            },
            LogDriver: logDriver,
            Resources: resources,
            RestartPolicy: rp ? { Condition: rp.condition, Delay: ns(rp.delay), MaxAttempts: rp.maxAttempts, Window: ns(rp.window) } : undefined,
            Placement: {
                Constraints: nonEmpty(t.placement?.constraints),
                Preferences: nonEmpty((t.placement?.prefs ?? []).map((p) => ({ Spread: { SpreadDescriptor: p.replace(/^spread=/, "") } }))),
                MaxReplicas: t.placement?.maxReplicas,
            },
            Networks: nonEmpty((t.networksAdvanceds ?? []).map((n) => ({
                Target: n.name, Aliases: nonEmpty(n.aliases), DriverOpts: kvMap(n.driverOpts),
            }))),
        },
        Mode: a.mode.global ? { Global: {} } : { Replicated: { Replicas: a.mode.replicated?.replicas ?? 1 } },
        UpdateConfig: updateConfig(a.updateConfig),
        RollbackConfig: updateConfig(a.rollbackConfig),
        EndpointSpec: {
            Mode: a.endpointSpec.mode,
            Ports: nonEmpty((a.endpointSpec.ports ?? []).map((p) => ({
                Protocol: p.protocol, TargetPort: p.targetPort, PublishedPort: p.publishedPort, PublishMode: p.publishMode,
            }))),
        },
    };
    return sorted(spec) as unknown as JsonObject;
}

// ---------------------------------------------------------------------------------------------
// Networks, secrets, configs

/** The NetworkCreate body (POST /networks/create) for a stack network. */
export function networkCreate(n: NetworkSpec): JsonObject {
    const a = n.args;
    const ipam = a.ipamDriver !== undefined || (a.ipamConfigs ?? []).length > 0
        ? { Driver: a.ipamDriver, Config: nonEmpty((a.ipamConfigs ?? []).map((c) => ({ Subnet: c.subnet }))) }
        : undefined;
    return sorted({
        Name: a.name,
        CheckDuplicate: true,
        Driver: a.driver || "overlay",
        Scope: "swarm",
        Internal: a.internal ? true : undefined,
        Attachable: a.attachable ? true : undefined,
        Labels: labelMap(a.labels),
        Options: a.options,
        IPAM: ipam,
    }) as unknown as JsonObject;
}

/**
 * SecretSpec / ConfigSpec (POST /secrets/create, /configs/create): Name, Labels, Data (base64), and
 * as the CLI sets them Templating (`template_driver`) and a secret's Driver (`driver`, `driver_opts`).
 */
export function fileObjectSpec(o: FileObjectSpec): JsonObject {
    return sorted({
        Name: o.args.name, Labels: labelMap(o.args.labels), Data: o.args.data,
        Templating: o.templateDriver !== undefined ? { Name: o.templateDriver } : undefined,
        Driver: o.driver !== undefined
            ? { Name: o.driver.name, Options: Object.keys(o.driver.options).length > 0 ? o.driver.options : undefined } : undefined,
    }) as unknown as JsonObject;
}

// ---------------------------------------------------------------------------------------------
// Normalisation for comparison

const SECOND = 1_000_000_000;

/**
 * String maps whose empty values are values (a label `foo=""` is not an absent label).
 */
function isStringMap(key: string): boolean {
    return key === "Labels" || key === "Options" || key === "Sysctls" || key === "DriverOpts";
}

/** Drops null, false, "", 0, [] and {} recursively: the engine's omitempty makes them absent. */
function prune(v: unknown, keepEmptyString = false): unknown {
    if (Array.isArray(v)) {
        const a = v.map((x) => prune(x)).filter((x) => x !== undefined);
        return a.length > 0 ? a : undefined;
    }
    if (v !== null && typeof v === "object") {
        const out: Record<string, unknown> = {};
        const isMap = keepEmptyString;
        for (const k of Object.keys(v as object).sort()) {
            const x = isMap ? (v as Record<string, unknown>)[k] : prune((v as Record<string, unknown>)[k], isStringMap(k));
            if (x !== undefined && x !== null) out[k] = x;
        }
        return Object.keys(out).length > 0 ? out : undefined;
    }
    if (v === null || v === false || v === "" || v === 0 || v === undefined) return undefined;
    return v;
}

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function clone<T>(v: T): T {
    return v === undefined ? v : JSON.parse(JSON.stringify(v));
}

function updateDefaults(u: Obj | undefined): Obj {
    const x = { ...(u ?? {}) };
    if (u === undefined || u === null) x.Parallelism = 1;
    if (!x.FailureAction) x.FailureAction = "pause";
    if (!x.Monitor) x.Monitor = 5 * SECOND;
    if (!x.Order) x.Order = "stop-first";
    return x;
}

/**
 * The reference with `:latest` added when it has neither tag nor digest, as the Docker client
 * library does before it sends a service spec it did not pin (imageWithTagString).
 */
export function taggedImage(image: string): string {
    if (image.includes("@")) return image;
    const last = image.slice(image.lastIndexOf("/") + 1);
    return last.includes(":") ? image : `${image}:latest`;
}

/**
 * The stack's image reference (label com.docker.stack.image) when `image` is that reference as the
 * deploy sent it: pinned to a digest (`ref@sha256:...`) or with the implied `:latest`.
 */
export function unpinnedImage(image: string, stackImageLabel: string | undefined): string {
    if (stackImageLabel === undefined || image === stackImageLabel) return image;
    const at = image.indexOf("@sha256:");
    const bare = at < 0 ? image : image.slice(0, at);
    if (bare === stackImageLabel || bare === taggedImage(stackImageLabel)) return stackImageLabel;
    return image;
}

/**
 * A ServiceSpec (desired, or read back from the engine with network IDs mapped to names) in the
 * form used for comparison: the engine's defaults filled in (StopGracePeriod 10s, Isolation
 * default, RestartPolicy any/5s, Update/RollbackConfig pause/5s/stop-first, EndpointSpec vip,
 * ports tcp/ingress), fields the engine or the deploy derives dropped (ForceUpdate, Runtime,
 * Placement.Platforms, SecretID/ConfigID, the image's pinned digest or implied `:latest`), fields
 * API 1.41 does not keep dropped (Healthcheck.StartInterval, Mounts[].Consistency), ports in one
 * order (extra hosts keep theirs: the first match wins), empty values removed.
 * Idempotent: normaliseService(normaliseService(x)) equals normaliseService(x).
 */
export function normaliseService(spec: JsonObject): JsonObject {
    const s = clone(spec) as Obj;
    const labels: Obj = s.Labels ?? {};
    const tt: Obj = (s.TaskTemplate ??= {});
    const cs: Obj = (tt.ContainerSpec ??= {});
    if (typeof cs.Image === "string") cs.Image = unpinnedImage(cs.Image, labels[LABEL_IMAGE]);
    if (!cs.StopGracePeriod) cs.StopGracePeriod = 10 * SECOND;
    if (cs.Isolation === "default") delete cs.Isolation;
    for (const r of cs.Secrets ?? []) delete r.SecretID;
    for (const r of cs.Configs ?? []) {
        delete r.ConfigID;
        if (r.Runtime && typeof r.Runtime === "object") r.Runtime = "runtime";
    }
    if (cs.Privileges?.CredentialSpec?.Config !== undefined && cs.Configs) {
        // The engine holds the config's ID here; compare by the runtime config's name.
        const rt = (cs.Configs as Obj[]).find((r) => r.Runtime);
        if (rt) cs.Privileges.CredentialSpec.Config = rt.ConfigName;
    }
    if (cs.Healthcheck && Array.isArray(cs.Healthcheck.Test) && cs.Healthcheck.Test[0] === "NONE") cs.Healthcheck = { Test: ["NONE"] };
    // Not kept by API 1.41 engines (Docker 20.10): the request is accepted, the field dropped.
    if (cs.Healthcheck) delete cs.Healthcheck.StartInterval;
    for (const m of cs.Mounts ?? []) delete m.Consistency;
    delete tt.ForceUpdate;
    if (tt.Runtime === "container") delete tt.Runtime;
    if (tt.Placement) delete tt.Placement.Platforms;
    const rp: Obj = (tt.RestartPolicy ??= {});
    if (!rp.Condition) rp.Condition = "any";
    if (!rp.Delay) rp.Delay = 5 * SECOND;
    for (const n of tt.Networks ?? []) if (n.Aliases) n.Aliases = [...n.Aliases];
    // Mode as one marker, so that `Global: {}` and `Replicas: 0` survive the pruning.
    const mode: Obj = s.Mode ?? {};
    if (typeof s.Mode !== "string") {
        s.Mode = mode.Global ? "global" : mode.GlobalJob ? "global-job" : mode.ReplicatedJob
            ? `replicated-job:${mode.ReplicatedJob.MaxConcurrent ?? 1}/${mode.ReplicatedJob.TotalCompletions ?? 1}`
            : `replicated:${mode.Replicated?.Replicas ?? 1}`;
    }
    s.UpdateConfig = updateDefaults(s.UpdateConfig);
    s.RollbackConfig = updateDefaults(s.RollbackConfig);
    const ep: Obj = (s.EndpointSpec ??= {});
    if (!ep.Mode) ep.Mode = "vip";
    for (const p of ep.Ports ?? []) {
        if (!p.Protocol) p.Protocol = "tcp";
        if (!p.PublishMode) p.PublishMode = "ingress";
    }
    if (Array.isArray(ep.Ports)) {
        const key = (p: Obj) => [p.PublishedPort ?? 0, p.TargetPort ?? 0, p.Protocol, p.PublishMode];
        ep.Ports = [...ep.Ports].sort((x: Obj, y: Obj) => {
            const a = key(x);
            const b = key(y);
            for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
            return 0;
        });
    }
    return (prune(s) ?? {}) as JsonObject;
}

/**
 * A ServiceSpec as `GET /services/{id}` returns it, with network IDs replaced by names
 * (`networkNames`: ID to name; an unknown ID is kept), normalised for comparison.
 */
export function serviceFromEngine(spec: JsonObject, networkNames: Record<string, string>): JsonObject {
    const s = clone(spec) as Obj;
    const tt: Obj = s.TaskTemplate ?? {};
    // API < 1.29 kept networks at the top level.
    if (!tt.Networks && s.Networks) tt.Networks = s.Networks;
    delete s.Networks;
    for (const n of tt.Networks ?? []) n.Target = networkNames[n.Target] ?? n.Target;
    if (Array.isArray(tt.Networks)) {
        (tt.Networks as Obj[]).sort((x, y) => (x.Target < y.Target ? -1 : x.Target > y.Target ? 1 : 0));
    }
    return normaliseService(s);
}

/** Network fields the stack owns, for comparison. `allocated` keeps subnets the engine chose. */
export function normaliseNetwork(n: JsonObject): JsonObject {
    const x = clone(n) as Obj;
    const options: Obj = { ...(x.Options ?? {}) };
    delete options["com.docker.network.driver.overlay.vxlanid_list"];
    const ipam: Obj = x.IPAM ?? {};
    const out = {
        Name: x.Name,
        Driver: x.Driver || "overlay",
        Internal: !!x.Internal,
        Attachable: !!x.Attachable,
        Labels: x.Labels ?? {},
        Options: options,
        IPAM: {
            Driver: ipam.Driver && ipam.Driver !== "default" ? ipam.Driver : undefined,
            Config: ((ipam.Config ?? []) as Obj[]).map((c) => ({ Subnet: c.Subnet })),
        },
    };
    return (prune(out) ?? {}) as JsonObject;
}

/**
 * Paths where two JSON values differ (`TaskTemplate.ContainerSpec.Image`, `Labels.foo`, ...),
 * for diffs and error messages. Arrays differ as a whole.
 */
export function differences(a: unknown, b: unknown, path = ""): string[] {
    if (stableJson(a) === stableJson(b)) return [];
    const isObj = (v: unknown) => v !== null && typeof v === "object" && !Array.isArray(v);
    if (!isObj(a) || !isObj(b)) return [path || "(root)"];
    const keys = [...new Set([...Object.keys(a as object), ...Object.keys(b as object)])].sort();
    return keys.flatMap((k) => differences((a as Obj)[k], (b as Obj)[k], path ? `${path}.${k}` : k));
}

/** The network differences that matter: subnets the engine allocated are not a difference unless some were asked for. */
export function networkDifferences(desired: JsonObject, actual: JsonObject): string[] {
    const d = normaliseNetwork(desired) as Obj;
    const a = normaliseNetwork(actual) as Obj;
    if (!d.IPAM?.Config && a.IPAM) {
        delete a.IPAM.Config;
        if (Object.keys(a.IPAM).length === 0) delete a.IPAM;
    }
    return differences(d, a);
}

/** Everything a stack creates, as Engine API objects, in the order `docker stack deploy` creates them. */
export interface EngineStack {
    networks: { key: string; name: string; create: JsonObject }[];
    secrets: { key: string; name: string; spec: JsonObject }[];
    configs: { key: string; name: string; spec: JsonObject }[];
    services: { key: string; name: string; dependsOn: string[]; spec: JsonObject }[];
}

export function engineStack(stack: StackSpec): EngineStack {
    return {
        networks: stack.networks.map((n) => ({ key: n.key, name: n.name, create: networkCreate(n) })),
        secrets: stack.secrets.map((o) => ({ key: o.key, name: o.name, spec: fileObjectSpec(o) })),
        configs: stack.configs.map((o) => ({ key: o.key, name: o.name, spec: fileObjectSpec(o) })),
        services: stack.services.map((s) => ({ key: s.key, name: s.name, dependsOn: s.dependsOn, spec: serviceSpec(stack, s) })),
    };
}
