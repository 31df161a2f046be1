/**
 * The comparison behind `npm run parity` (tools/parity.ts): one compose file deployed twice, once
 * by `docker stack deploy` and once through the program's path (convertStack, engine-spec, the
 * stack providers), under two stack names, and the objects the engine then holds compared field by
 * field.
 *
 * Pure: no I/O. The tool reads the engine; this module turns what it read into a canonical form,
 * compares, classifies and renders.
 *
 * What the canonical form leaves out or maps, and nothing else:
 * - IDs, versions, timestamps: only the Spec of services, secrets and configs is compared; for
 *   networks the inspect body without Id, Created and the attachment lists (Containers, Peers,
 *   Services); network, secret and config IDs inside a service spec are replaced by the names;
 * - digests: `image@sha256:...` compares as `image`;
 * - what the engine allocates: the VXLAN ID of an overlay network, and subnets (with their gateway)
 *   taken from the swarm's default address pool at its subnet size, which read `<allocated>`;
 * - the stack name: `<stack>_...` names and the namespace label read `<stack>` on both sides;
 * - the declared differences (see {@link declaredRenames}): content-named secrets and configs
 *   compare under the name `docker stack deploy` gives them, and are listed, not hidden.
 * Published ports compare as a set (sorted); every other list keeps its order.
 */
import { sorted, stableJson, type Json, type JsonObject } from "./engine-spec";

export const NAMESPACE_LABEL = "com.docker.stack.namespace";
/** What a stack name reads as after canonicalisation. */
export const STACK = "<stack>";
/** What an engine-allocated value reads as. */
export const ALLOCATED = "<allocated>";

export type Kind = "network" | "secret" | "config" | "service";
/** Creation order of `docker stack deploy`, and the order of the report. */
export const KINDS: readonly Kind[] = ["network", "secret", "config", "service"];

/** What one deployment left in the engine, as read back (objects labelled with its namespace). */
export interface Deployed {
    /** `GET /services/{id}?insertDefaults=false` bodies. */
    services: JsonObject[];
    /** `GET /networks/{id}` bodies. */
    networks: JsonObject[];
    /** `GET /secrets/{id}` bodies. */
    secrets: JsonObject[];
    /** `GET /configs/{id}` bodies. */
    configs: JsonObject[];
}

/** Engine facts needed to read IDs and allocations. */
export interface EngineContext {
    /** ID to name, for every network, secret and config on the swarm. */
    networks: Record<string, string>;
    secrets: Record<string, string>;
    configs: Record<string, string>;
    /** The swarm's default address pools (`GET /swarm` DefaultAddrPool; empty: 10.0.0.0/8). */
    addressPools: string[];
    /** Prefix length of the subnets taken from them (`SubnetSize`; 0: 24). */
    subnetSize: number;
}

/** A deployment in comparable form: kind, then canonical name, then the object. */
export type Canonical = Record<Kind, Record<string, Json>>;

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function clone<T>(v: T): T {
    return v === undefined ? v : JSON.parse(JSON.stringify(v));
}

// ---------------------------------------------------------------------------------------------
// Allocated subnets

function ipv4(s: string): number | undefined {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
    if (!m) return undefined;
    const parts = m.slice(1).map(Number);
    if (parts.some((p) => p > 255)) return undefined;
    return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3];
}

function cidr(s: string): { base: number; bits: number } | undefined {
    const [addr, bits] = s.split("/");
    const base = ipv4(addr);
    const n = Number(bits);
    if (base === undefined || !Number.isInteger(n) || n < 0 || n > 32) return undefined;
    return { base, bits: n };
}

/** True when `subnet` is one the engine hands out from the pools (inside one, at the pool's subnet size). */
export function isAllocatedSubnet(subnet: string, pools: string[], size: number): boolean {
    const s = cidr(subnet);
    if (!s || s.bits !== (size || 24)) return false;
    return (pools.length > 0 ? pools : ["10.0.0.0/8"]).some((p) => {
        const c = cidr(p);
        if (!c) return false;
        const mask = c.bits === 0 ? 0 : (~0 << (32 - c.bits)) >>> 0;
        return ((s.base & mask) >>> 0) === ((c.base & mask) >>> 0);
    });
}

// ---------------------------------------------------------------------------------------------
// Canonical form

export interface CanonicalOptions {
    /** The deployment's stack name. */
    stack: string;
    engine: EngineContext;
    /** Engine names read as other names (declared differences): `<ours>_token-1a2b3c4d` -> `<ours>_token`. */
    rename?: Record<string, string>;
}

function stripDigest(image: string): string {
    const at = image.indexOf("@sha256:");
    return at < 0 ? image : image.slice(0, at);
}

/**
 * `v` with the renames applied, every string that starts with `${o.stack}_` read as `<stack>_...`,
 * and namespace labels whose value is the stack name read as `<stack>`.
 */
function mapNames(v: unknown, o: CanonicalOptions, key = ""): unknown {
    if (Array.isArray(v)) return v.map((x) => mapNames(x, o));
    if (v !== null && typeof v === "object") {
        const out: Obj = {};
        for (const [k, x] of Object.entries(v as Obj)) {
            out[k] = k === NAMESPACE_LABEL && x === o.stack && key === "Labels" ? STACK : mapNames(x, o, k);
        }
        return out;
    }
    if (typeof v !== "string") return v;
    const s = o.rename?.[v] ?? v;
    return s.startsWith(`${o.stack}_`) ? `${STACK}_${s.slice(o.stack.length + 1)}` : s;
}

/** A service's Spec with IDs as names, the digest dropped and the ports as a set. */
export function canonicalService(service: JsonObject, o: CanonicalOptions): Json {
    const spec: Obj = clone((service as Obj).Spec ?? {});
    const tt: Obj = spec.TaskTemplate ?? {};
    const cs: Obj = tt.ContainerSpec ?? {};
    if (typeof cs.Image === "string") cs.Image = stripDigest(cs.Image);
    for (const n of (tt.Networks ?? []) as Obj[]) n.Target = o.engine.networks[n.Target] ?? n.Target;
    for (const n of (spec.Networks ?? []) as Obj[]) n.Target = o.engine.networks[n.Target] ?? n.Target;
    for (const r of (cs.Secrets ?? []) as Obj[]) delete r.SecretID;
    for (const r of (cs.Configs ?? []) as Obj[]) delete r.ConfigID;
    const cred = cs.Privileges?.CredentialSpec;
    if (cred && typeof cred.Config === "string") cred.Config = o.engine.configs[cred.Config] ?? cred.Config;
    const ep: Obj | undefined = spec.EndpointSpec;
    if (ep && Array.isArray(ep.Ports)) ep.Ports = [...ep.Ports].sort((a, b) => (stableJson(a) < stableJson(b) ? -1 : 1));
    return sorted(mapNames(spec, o)) as Json;
}

/** A network's inspect body without its ID, time, attachments and allocations. */
export function canonicalNetwork(network: JsonObject, o: CanonicalOptions): Json {
    const n: Obj = clone(network);
    for (const k of ["Id", "Created", "Containers", "Peers", "Services"]) delete n[k];
    if (n.Options) delete n.Options["com.docker.network.driver.overlay.vxlanid_list"];
    for (const c of (n.IPAM?.Config ?? []) as Obj[]) {
        if (typeof c.Subnet === "string" && isAllocatedSubnet(c.Subnet, o.engine.addressPools, o.engine.subnetSize)) {
            c.Subnet = ALLOCATED;
            if (c.Gateway !== undefined) c.Gateway = ALLOCATED;
        }
    }
    return sorted(mapNames(n, o)) as Json;
}

/** A secret's or config's Spec (a secret's data is never returned by the engine). */
export function canonicalFileObject(object: JsonObject, o: CanonicalOptions): Json {
    return sorted(mapNames(clone((object as Obj).Spec ?? {}), o)) as Json;
}

/** Everything one deployment holds, canonical, by kind and name. */
export function canonicalDeployment(d: Deployed, o: CanonicalOptions): Canonical {
    const out: Canonical = { network: {}, secret: {}, config: {}, service: {} };
    const put = (kind: Kind, xs: JsonObject[], f: (x: JsonObject, o: CanonicalOptions) => Json) => {
        for (const x of xs) {
            const c = f(x, o);
            out[kind][String((c as Obj).Name ?? "")] = c;
        }
    };
    put("network", d.networks, canonicalNetwork);
    put("secret", d.secrets, canonicalFileObject);
    put("config", d.configs, canonicalFileObject);
    put("service", d.services, canonicalService);
    return out;
}

// ---------------------------------------------------------------------------------------------
// Differences

export interface FieldDifference {
    /** Dotted path, list items as `[i]`; "" for the whole object. */
    path: string;
    /** The value `docker stack deploy` produced (undefined: absent). */
    reference: Json | undefined;
    /** The value the program produced (undefined: absent). */
    ours: Json | undefined;
}

export interface Difference extends FieldDifference {
    kind: Kind;
    /** Canonical name, e.g. `<stack>_web`. */
    name: string;
}

const isObject = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);

/** Where two JSON values differ: objects by key, lists of equal length item by item, else whole. */
export function diffJson(reference: Json | undefined, ours: Json | undefined, path = ""): FieldDifference[] {
    if (stableJson(reference) === stableJson(ours)) return [];
    const at = (k: string | number) => (typeof k === "number" ? `${path}[${k}]` : path ? `${path}.${k}` : k);
    if (isObject(reference) && isObject(ours)) {
        const r = reference as Record<string, Json>;
        const o = ours as Record<string, Json>;
        const keys = [...new Set([...Object.keys(r), ...Object.keys(o)])].sort();
        return keys.flatMap((k) => diffJson(r[k], o[k], at(k)));
    }
    if (Array.isArray(reference) && Array.isArray(ours) && reference.length === ours.length) {
        return reference.flatMap((x, i) => diffJson(x, ours[i], at(i)));
    }
    return [{ path, reference, ours }];
}

/** Every difference between the two deployments, objects in creation-kind order, then by name. */
export function compareDeployments(reference: Canonical, ours: Canonical): Difference[] {
    const out: Difference[] = [];
    for (const kind of KINDS) {
        const names = [...new Set([...Object.keys(reference[kind]), ...Object.keys(ours[kind])])].sort();
        for (const name of names) {
            for (const d of diffJson(reference[kind][name], ours[kind][name])) out.push({ kind, name, ...d });
        }
    }
    return out;
}

function show(v: Json | undefined): string {
    return v === undefined ? "(absent)" : JSON.stringify(v);
}

export function formatDifference(d: Difference): string {
    if (d.path === "") {
        return d.reference === undefined ? `${d.kind} ${d.name}: only in the program's deployment`
            : d.ours === undefined ? `${d.kind} ${d.name}: only in docker stack deploy's deployment`
                : `${d.kind} ${d.name}: docker stack deploy ${show(d.reference)}, program ${show(d.ours)}`;
    }
    return `${d.kind} ${d.name}: ${d.path}: docker stack deploy ${show(d.reference)}, program ${show(d.ours)}`;
}

// ---------------------------------------------------------------------------------------------
// Declared differences

/** A secret or config the program names by content; `name` is its engine name, `stackDeployName` the CLI's. */
export interface ContentNamed {
    kind: "secret" | "config";
    name: string;
    stackDeployName: string;
}

/**
 * The renames that make content-named secrets and configs (`<stack>_<name>-<8 hex>`) compare under
 * `docker stack deploy`'s name (`<stack>_<name>`), and the declaration of each one that the
 * program's deployment really holds (a missing one is not declared: it shows as a difference).
 */
export function declaredRenames(objects: ContentNamed[], present: Record<"secret" | "config", string[]>, stack: string):
    { rename: Record<string, string>; declared: string[] } {
    const rename: Record<string, string> = {};
    const declared: string[] = [];
    const show = (name: string) => (name.startsWith(`${stack}_`) ? `${STACK}_${name.slice(stack.length + 1)}` : name);
    for (const o of objects) {
        if (o.name === o.stackDeployName) continue;
        rename[o.name] = o.stackDeployName;
        if (present[o.kind].includes(o.name)) {
            declared.push(`${o.kind} ${show(o.stackDeployName)}: named by content as ${show(o.name)} (a new content is a new ${o.kind}, ` +
                "services are switched to it); docker stack deploy uses the bare name and cannot change the content");
        }
    }
    return { rename, declared };
}

export interface CreatedService {
    /** Compose key. */
    key: string;
    /** RFC 3339 creation time as the engine reports it. */
    createdAt: string;
}

/**
 * An RFC 3339 UTC time (the engine's CreatedAt) as a string that sorts in time order: Go drops
 * trailing zeros of the fraction, so `...:24.25Z` and `...:24.253Z` do not compare as written.
 */
export function timeKey(t: string): string {
    const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(t);
    return m ? `${m[1]}.${(m[2] ?? "").padEnd(9, "0")}` : t;
}

/**
 * depends_on: the program creates a service after those it depends on, `docker stack deploy`
 * ignores it. Declared when the program's creation order (the engine's CreatedAt) honours every
 * depends_on; a violation is returned as a difference.
 */
export function dependsOnOrder(dependsOn: Record<string, string[]>, ours: CreatedService[], reference: CreatedService[]):
    { declared: string[]; violations: string[] } {
    const edges = Object.entries(dependsOn).flatMap(([s, ds]) => ds.map((d) => [s, d] as const));
    if (edges.length === 0) return { declared: [], violations: [] };
    const order = (xs: CreatedService[]) => xs.map((x) => ({ key: x.key, at: timeKey(x.createdAt) }))
        .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.key < b.key ? -1 : 1)).map((x) => x.key);
    const ourOrder = order(ours);
    const violations = edges.filter(([s, d]) => ourOrder.includes(s) && ourOrder.includes(d) && ourOrder.indexOf(d) > ourOrder.indexOf(s))
        .map(([s, d]) => `depends_on: the program created ${s} before ${d}, which it depends on`);
    const declared = violations.length > 0 ? [] : [
        `depends_on orders creation: the program created ${ourOrder.join(", ")} (${edges.map(([s, d]) => `${s} after ${d}`).join(", ")}); ` +
        `docker stack deploy ignores depends_on (it created ${order(reference).join(", ") || "nothing"})`,
    ];
    return { declared, violations };
}

// ---------------------------------------------------------------------------------------------
// Externals a file refers to

export interface ExternalObjects {
    networks: string[];
    secrets: string[];
    configs: string[];
}

/**
 * The external networks, secrets and configs a compose document names (engine names: `name:`,
 * the legacy `external.name`, or the key), read from the raw YAML so that it does not depend on
 * the program's loader accepting the file.
 */
export function externalObjects(doc: unknown): ExternalObjects {
    const out: ExternalObjects = { networks: [], secrets: [], configs: [] };
    if (!isObject(doc)) return out;
    for (const kind of ["networks", "secrets", "configs"] as const) {
        const section = doc[kind];
        if (!isObject(section)) continue;
        for (const [key, def] of Object.entries(section)) {
            if (!isObject(def) || !def.external) continue;
            const legacy = isObject(def.external) && typeof def.external.name === "string" ? def.external.name : undefined;
            const name = typeof def.name === "string" ? def.name : legacy ?? key;
            if (!out[kind].includes(name)) out[kind].push(name);
        }
        out[kind].sort();
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// Results and report

export type Outcome = "identical" | "different" | "rejected by both";

export interface FileResult {
    /** The file as given on the command line. */
    file: string;
    /** Why `docker stack deploy` rejected the file (undefined: it deployed it). */
    referenceRejected?: string;
    /** Why the program rejected it (undefined: it deployed it). */
    oursRejected?: string;
    /** Undeclared differences, one line each. */
    differences: string[];
    /** Declared (deliberate) differences, one line each. */
    declared: string[];
    /** What was compared, the stand-ins used, what was created for the run, and so on. */
    notes: string[];
}

export function outcome(r: FileResult): Outcome {
    if (r.referenceRejected !== undefined && r.oursRejected !== undefined) return "rejected by both";
    if (r.referenceRejected !== undefined || r.oursRejected !== undefined || r.differences.length > 0) return "different";
    return "identical";
}

/** The one-sided rejections of a result, as differences. */
export function rejectionDifferences(referenceRejected: string | undefined, oursRejected: string | undefined): string[] {
    if (referenceRejected !== undefined && oursRejected === undefined) {
        return [`docker stack deploy rejects the file, the program deploys it: ${referenceRejected}`];
    }
    if (oursRejected !== undefined && referenceRejected === undefined) {
        return [`the program rejects the file, docker stack deploy deploys it: ${oursRejected}`];
    }
    return [];
}

export function summaryLine(results: FileResult[]): string {
    const n = (o: Outcome) => results.filter((r) => outcome(r) === o).length;
    return `${results.length} files, ${n("identical")} identical, ${n("different")} different, ${n("rejected by both")} rejected by both`;
}

function indent(text: string, prefix: string): string {
    return text.split("\n").map((l) => prefix + l).join("\n");
}

export function renderFile(r: FileResult): string {
    const lines = [`== ${r.file}: ${outcome(r)}`];
    if (r.referenceRejected !== undefined) lines.push("   docker stack deploy rejects it:", indent(r.referenceRejected, "     "));
    if (r.oursRejected !== undefined) lines.push("   the program rejects it:", indent(r.oursRejected, "     "));
    if (r.differences.length > 0) {
        lines.push(`   differences (${r.differences.length}):`);
        for (const d of r.differences) lines.push(indent(d, "     - ").replace(/\n {5}- /g, "\n       "));
    }
    if (r.declared.length > 0) {
        lines.push("   declared differences:");
        for (const d of r.declared) lines.push(`     - ${d}`);
    }
    for (const n of r.notes) lines.push(`   note: ${n}`);
    return lines.join("\n");
}

export function renderReport(results: FileResult[]): string {
    return [...results.map(renderFile), summaryLine(results)].join("\n") + "\n";
}
