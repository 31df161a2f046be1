/**
 * The Engine API objects a converted compose stack creates (compose/ builds them: networks'
 * NetworkCreate bodies, SecretSpec / ConfigSpec, ServiceSpec, as docker/cli cli/compose/convert
 * does), in the order `docker stack deploy` creates them (cli/command/stack/swarm/
 * deploy_composefile.go), and the normaliser that maps what the engine returns
 * (`GET /services/{id}`, `/networks/{id}`, `/secrets/{id}`, `/configs/{id}`) to the same shape, so
 * that desired and actual compare without false differences.
 *
 * Pure: no I/O.
 */
import { LABEL_IMAGE, LABEL_NAMESPACE, sorted } from "../compose/convert";
import type { JsonObject, StackSpec } from "../compose/types";

export { LABEL_IMAGE, LABEL_NAMESPACE, sorted };
export type { Json, JsonObject } from "../compose/types";

/** JSON with sorted keys. */
export function stableJson(v: unknown): string {
    return JSON.stringify(sorted(v));
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
        networks: stack.networks.map((n) => ({ key: n.key, name: n.name, create: n.create })),
        secrets: stack.secrets.map((o) => ({ key: o.key, name: o.name, spec: o.spec })),
        configs: stack.configs.map((o) => ({ key: o.key, name: o.name, spec: o.spec })),
        services: stack.services.map((s) => ({ key: s.key, name: s.name, dependsOn: s.dependsOn, spec: s.spec })),
    };
}
