/**
 * The `stacks` key of the stack configuration: which compose files run in this environment and
 * with which per-environment overrides. Pure validation; loading the files is compose/'s job.
 */
import { StackOverrides } from "../compose";
import { ConfigError, ConfigFinding } from "./cluster-config";

export interface StackEntry {
    /** Stack name (`docker stack deploy ... NAME`). */
    name: string;
    /** Compose file, relative to the project directory. */
    file: string;
    /** Variables for `${VAR}` interpolation (compose files never read the machine's environment). */
    env: Record<string, string>;
    overrides: StackOverrides;
    /**
     * Pin images to their registry digest when they change, as `docker stack deploy` does
     * (`changed`, the default), or use the reference as written (`never`: a lab without a registry).
     */
    resolveImage: "changed" | "never";
}

const STACK_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const OVERRIDE_KEYS = ["registryPrefix", "registryMap", "images", "bindPaths", "replicas", "ports", "publishMode", "endpointMode", "createBindPaths", "externalSecrets"];
const CONFIG_KEY_RE = /^[a-zA-Z][a-zA-Z0-9_-]*$/;

function isObject(v: unknown): v is Record<string, unknown> {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function validateStacks(raw: unknown, stackFile: string): StackEntry[] {
    if (raw === undefined || raw === null) return [];
    const findings: ConfigFinding[] = [];
    const err = (key: string, message: string) => findings.push({ level: "error", key, message });
    const out: StackEntry[] = [];
    if (!Array.isArray(raw)) {
        err("stacks", "must be a list of stacks, each with `name` and `file`");
    } else {
        const seen = new Set<string>();
        raw.forEach((s, i) => {
            const key = `stacks[${i}]`;
            if (!isObject(s)) {
                err(key, "must be a map with `name` and `file`");
                return;
            }
            for (const k of Object.keys(s)) {
                if (!["name", "file", "env", "overrides", "resolveImage"].includes(k)) err(`${key}.${k}`, "unknown key; known keys are `name`, `file`, `env`, `overrides`, `resolveImage`");
            }
            const name = typeof s.name === "string" ? s.name : "";
            if (!STACK_NAME_RE.test(name)) err(`${key}.name`, `must be a stack name (letters, digits, \`_\`, \`.\`, \`-\`), got ${JSON.stringify(s.name)}`);
            else if (seen.has(name)) err(`${key}.name`, `duplicate stack name ${name}`);
            seen.add(name);
            if (typeof s.file !== "string" || !s.file) err(`${key}.file`, "must name the stack's compose file, e.g. stacks/webapp.yml");
            const env: Record<string, string> = {};
            if (s.env !== undefined) {
                if (!isObject(s.env)) err(`${key}.env`, "must be a map of variable names to values");
                else for (const [k, v] of Object.entries(s.env)) env[k] = String(v);
            }
            let overrides: StackOverrides = {};
            if (s.overrides !== undefined) {
                if (!isObject(s.overrides)) err(`${key}.overrides`, `must be a map (${OVERRIDE_KEYS.join(", ")})`);
                else {
                    for (const k of Object.keys(s.overrides)) {
                        if (!OVERRIDE_KEYS.includes(k)) err(`${key}.overrides.${k}`, `unknown override; known ones are ${OVERRIDE_KEYS.map((o) => `\`${o}\``).join(", ")}`);
                    }
                    const reps = s.overrides.replicas;
                    if (reps !== undefined) {
                        if (!isObject(reps)) err(`${key}.overrides.replicas`, "must map service names to replica counts");
                        else for (const [svc, n] of Object.entries(reps)) {
                            if (!Number.isInteger(n) || (n as number) < 0) err(`${key}.overrides.replicas.${svc}`, `must be a whole number >= 0, got ${JSON.stringify(n)}`);
                        }
                    }
                    const ports = s.overrides.ports;
                    if (ports !== undefined && isObject(ports)) {
                        for (const [svc, map] of Object.entries(ports)) {
                            if (!isObject(map)) { err(`${key}.overrides.ports.${svc}`, "must map published ports in the file to new ones"); continue; }
                            for (const [from, to] of Object.entries(map)) {
                                if (!Number.isInteger(to) || (to as number) < 1 || (to as number) > 65535) {
                                    err(`${key}.overrides.ports.${svc}.${from}`, `must be a port 1-65535, got ${JSON.stringify(to)}`);
                                }
                            }
                        }
                    }
                    const mode = s.overrides.publishMode;
                    if (mode !== undefined) {
                        if (!isObject(mode)) err(`${key}.overrides.publishMode`, "must map service names to `host` or `ingress`");
                        else for (const [svc, m] of Object.entries(mode)) {
                            if (m !== "host" && m !== "ingress") err(`${key}.overrides.publishMode.${svc}`, `must be \`host\` or \`ingress\`, got ${JSON.stringify(m)}`);
                        }
                    }
                    const ep = s.overrides.endpointMode;
                    if (ep !== undefined) {
                        if (!isObject(ep)) err(`${key}.overrides.endpointMode`, "must map service names to `vip` or `dnsrr`");
                        else for (const [svc, m] of Object.entries(ep)) {
                            if (m !== "vip" && m !== "dnsrr") err(`${key}.overrides.endpointMode.${svc}`, `must be \`vip\` or \`dnsrr\`, got ${JSON.stringify(m)}`);
                        }
                    }
                    const create = s.overrides.createBindPaths;
                    if (create !== undefined && typeof create !== "boolean") err(`${key}.overrides.createBindPaths`, `must be true or false, got ${JSON.stringify(create)}`);
                    const ext = s.overrides.externalSecrets;
                    if (ext !== undefined) {
                        if (!isObject(ext)) err(`${key}.overrides.externalSecrets`, "must map external secret names to `{ generate: true }` or `{ config: KEY }`");
                        else for (const [name, v] of Object.entries(ext)) {
                            const k = `${key}.overrides.externalSecrets.${name}`;
                            const ok = isObject(v) && Object.keys(v).length === 1 &&
                                (v.generate === true || (typeof v.config === "string" && CONFIG_KEY_RE.test(v.config)));
                            if (!ok) {
                                err(k, `must be \`{ generate: true }\` (a random value kept in Pulumi's state) or \`{ config: KEY }\` ` +
                                    `(the secret stack config value dccn-swarm:KEY, set with \`pulumi config set --secret KEY\`), got ${JSON.stringify(v)}`);
                            }
                        }
                    }
                    overrides = s.overrides as StackOverrides;
                }
            }
            const resolveImage = s.resolveImage === undefined ? "changed" : s.resolveImage;
            if (resolveImage !== "changed" && resolveImage !== "never") err(`${key}.resolveImage`, "must be `changed` or `never`");
            out.push({ name, file: String(s.file ?? ""), env, overrides, resolveImage: resolveImage as "changed" | "never" });
        });
    }
    if (findings.length) throw new ConfigError(stackFile, findings);
    return out;
}
