/**
 * Values as they cross the provider protocol: secrets wrapped in Pulumi's secret envelope,
 * unknowns during preview, `undefined` (which protobuf's Struct refuses), and the connection
 * fields (SSH settings, pinned host keys) whose change alters only what the state keeps.
 * Pure: no I/O, no Pulumi runtime.
 */

/* eslint-disable @typescript-eslint/no-explicit-any */

/** Pulumi's marker of a secret value in a property map: `{ [SECRET_SIG]: SECRET_VALUE, value }`. */
export const SECRET_SIG = "4dabf18193072939515e22adb298388d";
export const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";
/** How a value not known yet (preview) arrives. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export function isSecret(v: unknown): v is { value: unknown } {
    return v !== null && typeof v === "object" && (v as any)[SECRET_SIG] === SECRET_VALUE;
}

export function secret(v: unknown): unknown {
    return isSecret(v) ? v : { [SECRET_SIG]: SECRET_VALUE, value: v };
}

/** The value with every secret envelope removed (at any depth). */
export function unwrap(v: any): any {
    if (isSecret(v)) return unwrap(v.value);
    if (Array.isArray(v)) return v.map(unwrap);
    if (v !== null && typeof v === "object") {
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) out[k] = unwrap(x);
        return out;
    }
    return v;
}

/** Whether a secret envelope occurs anywhere in the value. */
export function containsSecret(v: unknown): boolean {
    if (isSecret(v)) return true;
    if (Array.isArray(v)) return v.some(containsSecret);
    if (v !== null && typeof v === "object") return Object.values(v).some(containsSecret);
    return false;
}

/** Top-level keys of `props` that hold a secret somewhere (what stays secret in the outputs too). */
export function secretKeys(props: Record<string, unknown> | undefined): string[] {
    return Object.entries(props ?? {}).filter(([, v]) => containsSecret(v)).map(([k]) => k);
}

/**
 * Outputs ready for the protocol: `undefined` dropped at any depth (Struct has no such value), and
 * the named top-level keys wrapped as secrets.
 */
export function forWire(props: Record<string, unknown>, secrets: Iterable<string>): Record<string, unknown> {
    const out = defined(props) as Record<string, unknown>;
    for (const k of secrets) {
        if (out[k] !== undefined && out[k] !== null) out[k] = secret(out[k]);
    }
    return out;
}

function defined(v: any): any {
    if (Array.isArray(v)) return v.filter((x) => x !== undefined).map(defined);
    if (v !== null && typeof v === "object" && !isSecret(v)) {
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = defined(x);
        return out;
    }
    if (isSecret(v)) return { ...v, value: defined(v.value) };
    return v;
}

/** JSON with sorted keys, for comparisons. */
export function stable(v: unknown): string {
    return JSON.stringify(v, (_k, x) => (x !== null && typeof x === "object" && !Array.isArray(x)
        ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, x[k]])) : x));
}

/**
 * State that earlier versions kept and the plugin does not: the dynamic providers' serialised code,
 * and a provisioning step's whole standard input and undo input (now its call: script name and hash,
 * parameters, the data's hash). Present only in state written before; dropped by an update of the
 * state alone.
 */
export const LEGACY_KEYS = ["__provider", "stdin", "undo"];

export function withoutLegacy(props: Record<string, unknown>): Record<string, unknown> {
    const out = { ...props };
    for (const k of LEGACY_KEYS) delete out[k];
    return out;
}

export function hasLegacy(props: Record<string, unknown> | undefined): boolean {
    return LEGACY_KEYS.some((k) => props !== undefined && k in props);
}

/** A node as resources hold it: its SSH host key(s) are connection data. */
function isHost(v: any): v is { name: string; address: string; knownHosts: string } {
    return v !== null && typeof v === "object" && typeof v.name === "string" && typeof v.address === "string" && "knownHosts" in v;
}

function hostKeysOf(v: any, into = new Map<string, string>()): Map<string, string> {
    if (isHost(v)) into.set(`${v.name}\u0000${v.address}`, v.knownHosts);
    if (Array.isArray(v)) v.forEach((x) => hostKeysOf(x, into));
    else if (v !== null && typeof v === "object") Object.values(v).forEach((x) => hostKeysOf(x, into));
    return into;
}

function replaceHostKeys(v: any, keys: Map<string, string>): any {
    if (Array.isArray(v)) return v.map((x) => replaceHostKeys(x, keys));
    if (v !== null && typeof v === "object" && !isSecret(v)) {
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) out[k] = replaceHostKeys(x, keys);
        if (isHost(v)) {
            const old = keys.get(`${v.name}\u0000${v.address}`);
            if (old !== undefined) out.knownHosts = old;
        }
        return out;
    }
    return v;
}

/** Connection fields: how the provider reaches nodes, never what it makes on them. */
export const CONNECTION_KEY = "ssh";

/**
 * `news` with the connection of `olds`: the SSH settings and, for each node both know (same name
 * and address), the old pinned host key. What a resource would do with its old connection.
 */
export function withConnectionOf(news: Record<string, unknown>, olds: Record<string, unknown>): Record<string, unknown> {
    const out = replaceHostKeys(news, hostKeysOf(olds)) as Record<string, unknown>;
    if (CONNECTION_KEY in news && olds[CONNECTION_KEY] !== undefined) out[CONNECTION_KEY] = olds[CONNECTION_KEY];
    return out;
}

/** Whether the connection in `news` differs from the one `olds` holds (a new key, user, port or host key). */
export function connectionChanged(olds: Record<string, unknown>, news: Record<string, unknown>): boolean {
    return stable(withConnectionOf(news, olds)) !== stable(news);
}

/** Whether a value not known yet (preview) occurs anywhere in the value. */
export function containsUnknown(v: unknown): boolean {
    if (v === UNKNOWN) return true;
    if (Array.isArray(v)) return v.some(containsUnknown);
    if (v !== null && typeof v === "object") return Object.values(v).some(containsUnknown);
    return false;
}

/** Top-level input keys whose value differs between the old state and the new inputs. */
export function changedKeys(olds: Record<string, unknown>, news: Record<string, unknown>): string[] {
    return Object.keys(news).filter((k) => news[k] !== UNKNOWN && stable(olds[k]) !== stable(news[k]));
}
