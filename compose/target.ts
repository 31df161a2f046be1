/**
 * Which `docker stack deploy` a stack's compose file is held to (compose/cli-rules.ts), and what it
 * then needs of the swarm's engine.
 *
 * - A pinned engine version (`dccn-swarm:engine.version`, prod: 20.10.24): the rules of that
 *   engine's CLI, at preview, on the program's side alone.
 * - No pinned version (dev: a lab of 20.10 or of 26 engines): the newest rules the program has that
 *   read the file, and `requires` says what the file needs of the engine: the first thing the oldest known CLI's rules
 *   refuse (e.g. no `version:`), or that they convert otherwise. The stack's resources check it
 *   against the manager's engine at preview (lib/stack-providers.ts), before anything changes.
 *
 * Pinned to a newer engine, the same `requires` is recorded, so a pin that does not match the
 * swarm (a 26 pin on a 20.10 cluster) is refused there too.
 */
import { convertStack } from "./convert";
import { ComposeError } from "./errors";
import { KNOWN_CLIS, rulesFor } from "./cli-rules";
import { loadCompose } from "./load";
import type { LoadedStack } from "./model";
import type { EngineRequirement, StackOverrides, StackSpec } from "./types";

export interface TargetOptions {
    stackName: string;
    env?: Record<string, string | undefined>;
    /** The pinned engine version (`dccn-swarm:engine.version`); undefined: not pinned. */
    engineVersion?: string;
}

/** Loads and converts with the target's rules; `spec.requires` set as described above. */
export function loadStack(file: string, opts: TargetOptions, overrides: StackOverrides = {}): { loaded: LoadedStack; spec: StackSpec } {
    const base = { stackName: opts.stackName, env: opts.env };
    const candidates = opts.engineVersion === undefined
        // Not pinned: the newest rules that read the file (28.2 reads YAML 1.2 and refuses `tty: yes`, which 26.1 reads).
        ? [...KNOWN_CLIS].reverse()
        : [rulesFor(opts.engineVersion) ?? KNOWN_CLIS[0]];
    let first: ComposeError | undefined;
    for (const rules of candidates) {
        let loaded: LoadedStack;
        let spec: StackSpec;
        try {
            loaded = loadCompose(file, { ...base, cli: rules.cli });
            spec = convertStack(loaded, overrides);
        } catch (e) {
            if (!(e instanceof ComposeError)) throw e;
            first ??= e;
            continue;
        }
        const older = KNOWN_CLIS.slice(0, KNOWN_CLIS.indexOf(rules)).map((c) => c.cli);
        const requires = requirement(file, base, overrides, spec, rules.cli, older);
        if (requires) spec.requires = requires;
        return { loaded, spec };
    }
    throw first!;
}

/**
 * What the file needs of the engine: the oldest of `older` (CLIs older than the one `spec` was
 * converted with, oldest first) whose rules convert it as `spec` is, or `spec`'s CLI when none
 * does; the reason is what the CLI just before it refuses, or converts otherwise. Undefined when the
 * oldest CLI's rules give the same.
 */
function requirement(file: string, base: { stackName: string; env?: Record<string, string | undefined> }, overrides: StackOverrides,
    spec: StackSpec, target: string, older: string[]): EngineRequirement | undefined {
    let why: Omit<EngineRequirement, "cli"> | undefined;
    for (const cli of older) {
        let converted: StackSpec;
        try {
            converted = convertStack(loadCompose(file, { ...base, cli }), overrides);
        } catch (e) {
            if (!(e instanceof ComposeError)) throw e;
            why = { olderCli: cli, file: e.file, key: e.key, reason: e.reason, fix: e.fix };
            continue;
        }
        const found = firstDifference(comparable(converted), comparable(spec));
        if (!found) return why && { cli, ...why };
        why = {
            olderCli: cli, file: spec.file, key: found.key,
            reason: `docker stack deploy (docker CLI ${cli}) converts it otherwise: ${found.field} would be ${JSON.stringify(found.older)}, not ${JSON.stringify(found.newer)}`,
            fix: `write it so that docker CLI ${cli} reads it alike${found.field.includes("Hosts") ? " (extra_hosts as host:ip)" : ""}, ` +
                "or pin `dccn-swarm:engine.version` to the swarm's engine",
        };
    }
    return why && { cli: target, ...why };
}

/** The objects of a converted stack by compose key (`services.web`), as the engine would get them. */
function comparable(s: StackSpec): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const n of s.networks) out[`networks.${n.key}`] = n.create;
    for (const v of s.volumes) out[`volumes.${v.key}`] = v.create;
    for (const x of s.secrets) out[`secrets.${x.key}`] = x.spec;
    for (const c of s.configs) out[`configs.${c.key}`] = c.spec;
    for (const svc of s.services) out[`services.${svc.key}`] = svc.spec;
    out.external = s.external;
    return out;
}

function firstDifference(older: Record<string, unknown>, newer: Record<string, unknown>): { key: string; field: string; older: unknown; newer: unknown } | undefined {
    for (const key of [...new Set([...Object.keys(newer), ...Object.keys(older)])].sort()) {
        const d = deepDifference(older[key], newer[key], "");
        if (d) return { key, field: d.path || key, older: d.a, newer: d.b };
    }
    return undefined;
}

function deepDifference(a: unknown, b: unknown, at: string): { path: string; a: unknown; b: unknown } | undefined {
    if (JSON.stringify(a) === JSON.stringify(b)) return undefined;
    const isObj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
    if (isObj(a) && isObj(b)) {
        for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
            const d = deepDifference(a[k], b[k], at ? `${at}.${k}` : k);
            if (d) return d;
        }
    }
    return { path: at, a, b };
}
