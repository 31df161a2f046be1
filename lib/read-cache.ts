/**
 * What `pulumi refresh` reads, shared within the provider's process: the engine reads every
 * resource at once, and each would otherwise look for a manager and inspect its own object. Reads
 * of the same manager's lists (nodes, services, networks, secrets, configs), the same manager
 * search and the same node check within a few seconds share one call, so a refresh costs a few
 * calls per manager instead of a few per resource. Only `read` uses this; create, update and delete
 * always ask the cluster afresh.
 */
import { createHash } from "crypto";
import { apiOk, beforeWrite, type Transport } from "./engine-transport";

/** How long a shared answer serves later reads: well within one refresh, short against any change made meanwhile. */
export const SHARED_TTL_MS = 10_000;

const entries = new Map<string, { at: number; value: Promise<unknown> }>();

/** `fn`'s answer, shared with every call of the same key within the TTL; a failure is not kept. */
export function shared<T>(key: string, fn: () => Promise<T>, ttlMs = SHARED_TTL_MS): Promise<T> {
    const now = Date.now();
    const hit = entries.get(key);
    if (hit && now - hit.at < ttlMs) return hit.value as Promise<T>;
    const value = fn();
    entries.set(key, { at: now, value });
    value.catch(() => {
        if (entries.get(key)?.value === value) entries.delete(key);
    });
    return value;
}

/** Forget every shared answer: before any change made through the Engine API, and after any the provider makes. */
export function forgetShared(): void {
    entries.clear();
}
beforeWrite.add(forgetShared);

/** A key for connection details without holding them (the private key is in there): their hash. */
export function keyOf(...parts: unknown[]): string {
    return createHash("sha256").update(JSON.stringify(parts)).digest("hex").slice(0, 32);
}

export type ListedKind = "nodes" | "services" | "networks" | "secrets" | "configs";

/** A manager's objects of one kind (`GET /<kind>`), listed once for all the reads of a refresh. */
export function listed(t: Transport, kind: ListedKind): Promise<any[]> { // eslint-disable-line @typescript-eslint/no-explicit-any
    return shared(`list|${t.name}|${kind}`, async () => ((await apiOk(t, { method: "GET", path: `/${kind}` }, `listing ${kind}`)).json ?? []) as any[]); // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** One object of a listed kind by its ID, or undefined when the manager has none. */
export async function listedById(t: Transport, kind: ListedKind, id: string): Promise<any | undefined> { // eslint-disable-line @typescript-eslint/no-explicit-any
    return (await listed(t, kind)).find((o) => (o.ID ?? o.Id) === id);
}
