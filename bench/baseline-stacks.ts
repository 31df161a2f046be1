/**
 * The baseline's view of the dev stacks: for each `dccn-swarm:stacks` entry, a directory the
 * baseline deploys with plain `docker stack deploy` on a manager, as an administrator would from the
 * stack's directory on the shared storage. It holds a copy of the stack's directory (config and
 * secret files the compose file names) and `docker-compose.baseline.yml`, the compose file with the
 * entry's overrides applied (images, registry rewrites, replicas, published ports, bind paths),
 * so both sides deploy the same services; `.baseline.env` carries the entry's `env` for `${VAR}`
 * interpolation and the `--resolve-image` mode; `.baseline-secrets/NAME` (mode 600) the value of each
 * external secret the entry's `overrides.externalSecrets` provides, which the baseline makes with
 * `docker secret create` before its first deploy, as an administrator does by hand: the config value
 * the program uses for `{ config: KEY }`, a random one for `{ generate: true }`.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { effectiveImage, type StackOverrides } from "../compose";
import type { StackEntry } from "../lib/stacks-config";

export const BASELINE_COMPOSE = "docker-compose.baseline.yml";
export const BASELINE_ENV = ".baseline.env";
export const BASELINE_SECRETS = ".baseline-secrets";

/** Longest configured prefix first, as compose/convert.ts remaps bind sources. */
function remapBind(source: string, map: Record<string, string>): string {
    const prefixes = Object.keys(map).sort((a, b) => b.length - a.length || (a < b ? -1 : 1));
    for (const from of prefixes) {
        const f = from.replace(/\/+$/, "") || "/";
        if (source === f || source.startsWith(f === "/" ? "/" : `${f}/`)) {
            return `${map[from].replace(/\/+$/, "")}${source.slice(f === "/" ? 0 : f.length)}` || "/";
        }
    }
    return source;
}

function rewritePort(p: unknown, map: Record<string, number>): unknown {
    if (p && typeof p === "object") {
        const o = p as Record<string, unknown>;
        const to = o.published !== undefined ? map[String(o.published)] : undefined;
        return to === undefined ? p : { ...o, published: to };
    }
    // [ip:]published:target[/proto]
    const m = /^(?:(.*):)?(\d+):(\d+(?:\/\w+)?)$/.exec(String(p));
    if (!m || map[m[2]] === undefined) return p;
    return `${m[1] !== undefined ? `${m[1]}:` : ""}${map[m[2]]}:${m[3]}`;
}

function rewriteVolume(v: unknown, map: Record<string, string>): unknown {
    if (v && typeof v === "object") {
        const o = v as Record<string, unknown>;
        return o.type === "bind" && typeof o.source === "string" ? { ...o, source: remapBind(o.source, map) } : v;
    }
    const s = String(v);
    if (!s.startsWith("/")) return v;
    const i = s.indexOf(":");
    return i < 0 ? v : `${remapBind(s.slice(0, i), map)}${s.slice(i)}`;
}

/** The compose text with the per-environment overrides applied, as convertStack applies them. */
export function overriddenCompose(text: string, o: StackOverrides): string {
    const doc = yaml.load(text) as { services?: Record<string, Record<string, any> | null> };
    for (const [name, svc] of Object.entries(doc.services ?? {})) {
        if (!svc) continue;
        if (typeof svc.image === "string" || o.images?.[name] !== undefined) svc.image = effectiveImage(name, String(svc.image ?? ""), o);
        if (o.replicas?.[name] !== undefined) svc.deploy = { ...(svc.deploy ?? {}), replicas: o.replicas[name] };
        if (o.ports?.[name] && Array.isArray(svc.ports)) svc.ports = svc.ports.map((p: unknown) => rewritePort(p, o.ports![name]));
        if (o.bindPaths && Array.isArray(svc.volumes)) svc.volumes = svc.volumes.map((v: unknown) => rewriteVolume(v, o.bindPaths!));
    }
    return yaml.dump(doc, { lineWidth: -1, noRefs: true });
}

/** Service name (`<stack>_<service>`) to the image reference the baseline deploys. */
export function expectedServices(stackName: string, dir: string): Record<string, string> {
    const doc = yaml.load(fs.readFileSync(path.join(dir, BASELINE_COMPOSE), "utf8")) as { services?: Record<string, { image?: string } | null> };
    return Object.fromEntries(Object.entries(doc.services ?? {}).map(([k, s]) => [`${stackName}_${k}`, String(s?.image ?? "")]));
}

function shellQuote(s: string): string {
    return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Write the baseline's directory for one stack entry under `stageRoot`; returns it. `configValue`
 * gives the secret stack config value `dccn-swarm:KEY` for an external secret `{ config: KEY }`.
 */
export function stageStack(entry: StackEntry, projectRoot: string, stageRoot: string,
    configValue: (key: string) => string = (key) => { throw new Error(`stack ${entry.name}: no value for dccn-swarm:${key}`); }): string {
    const file = path.resolve(projectRoot, entry.file);
    const srcDir = path.dirname(file);
    if (srcDir === projectRoot) throw new Error(`stack ${entry.name}: ${entry.file} is not in a directory of its own; the baseline copies the stack's directory`);
    const dir = path.join(stageRoot, entry.name);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.cpSync(srcDir, dir, { recursive: true });
    fs.writeFileSync(path.join(dir, BASELINE_COMPOSE), overriddenCompose(fs.readFileSync(file, "utf8"), entry.overrides));
    const env = Object.entries(entry.env).map(([k, v]) => {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`stack ${entry.name}: env ${k} is not a shell variable name`);
        return `${k}=${shellQuote(v)}`;
    });
    // `docker stack deploy --resolve-image` takes always|changed|never; the program's default is `changed`.
    env.push(`DCCN_RESOLVE_IMAGE=${shellQuote(entry.resolveImage)}`);
    fs.writeFileSync(path.join(dir, BASELINE_ENV), env.join("\n") + "\n");
    const provided = Object.entries(entry.overrides.externalSecrets ?? {});
    if (provided.length > 0) {
        const secretsDir = path.join(dir, BASELINE_SECRETS);
        fs.mkdirSync(secretsDir, { mode: 0o700 });
        for (const [name, source] of provided) {
            if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) throw new Error(`stack ${entry.name}: external secret ${JSON.stringify(name)} is not a secret name`);
            const value = "generate" in source ? crypto.randomBytes(18).toString("base64url") : configValue(source.config);
            fs.writeFileSync(path.join(secretsDir, name), value, { mode: 0o600 });
        }
    }
    return dir;
}
