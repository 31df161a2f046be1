/**
 * The `stacks` key of the stack configuration: which compose files run in this environment and
 * with which per-environment overrides. Pure validation; loading the files is compose/'s job.
 */
import { StackOverrides } from "../compose";
import { ConfigError, ConfigFinding } from "./cluster-config";
import { isAbsoluteHostPath, isImageReference, isRegistryHost, isStackName, STACK_NAME_MAX, SWARM_DNS_NAME } from "./config-checks";

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

const OVERRIDE_KEYS = ["registryPrefix", "registryMap", "images", "bindPaths", "replicas", "ports", "publishMode", "endpointMode", "createBindPaths", "externalSecrets", "build"];
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
            // The engine's limits (swarmkit): `<stack>_<service>` is a DNS label of at most 63 characters.
            if (!isStackName(name)) {
                err(`${key}.name`, `must be a stack name of at most ${STACK_NAME_MAX} characters (letters and digits, with \`-\` or \`_\` between them: ` +
                    `the engine names each service <stack>_<service>, a DNS label of at most 63), got ${JSON.stringify(s.name)}`);
            }
            else if (seen.has(name)) err(`${key}.name`, `duplicate stack name ${name}`);
            seen.add(name);
            if (typeof s.file !== "string" || !s.file || /[\x00-\x1f]/.test(s.file)) err(`${key}.file`, "must name the stack's compose file, e.g. stacks/webapp.yml");
            const env: Record<string, string> = {};
            if (s.env !== undefined) {
                if (!isObject(s.env)) err(`${key}.env`, "must be a map of variable names to values");
                else for (const [k, v] of Object.entries(s.env)) {
                    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) err(`${key}.env.${k}`, "is not a variable name (letters, digits and `_`, not starting with a digit)");
                    else if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") err(`${key}.env.${k}`, `must be a string, got ${JSON.stringify(v)}`);
                    env[k] = String(v);
                }
            }
            let overrides: StackOverrides = {};
            if (s.overrides !== undefined) {
                if (!isObject(s.overrides)) err(`${key}.overrides`, `must be a map (${OVERRIDE_KEYS.join(", ")})`);
                else {
                    for (const k of Object.keys(s.overrides)) {
                        if (!OVERRIDE_KEYS.includes(k)) err(`${key}.overrides.${k}`, `unknown override; known ones are ${OVERRIDE_KEYS.map((o) => `\`${o}\``).join(", ")}`);
                    }
                    // Value types of every override: a map of the right shape, with the right values.
                    const map = (k: string, what: string, ok: (name: string, v: unknown) => string | undefined) => {
                        const v = (s.overrides as Record<string, unknown>)[k];
                        if (v === undefined) return;
                        if (!isObject(v)) { err(`${key}.overrides.${k}`, `must be a map: ${what}, got ${JSON.stringify(v)}`); return; }
                        for (const [name, val] of Object.entries(v)) {
                            const problem = ok(name, val);
                            if (problem) err(`${key}.overrides.${k}.${name}`, `${problem}, got ${JSON.stringify(val)}`);
                        }
                    };
                    const service = (name: string) => SWARM_DNS_NAME.test(name) ? undefined : `${JSON.stringify(name)} is not a service name`;
                    map("images", "service name to image reference (db: registry.lab:5000/mariadb:10)", (n, v) =>
                        service(n) ?? (isImageReference(v) ? undefined : "must be an image reference such as mariadb:10 or registry.lab:5000/app/web:1.2"));
                    map("registryMap", "registry host to registry host (docker-registry.dccn.nl:5000: registry.lab:5000)", (n, v) =>
                        !isRegistryHost(n) ? `${JSON.stringify(n)} is not a registry host[:port]` : isRegistryHost(v) ? undefined : "must be a registry host[:port] such as registry.lab:5000");
                    map("bindPaths", "host path prefix in the file to the path used instead (/mnt/docker/data: /srv/lab/data)", (n, v) =>
                        !isAbsoluteHostPath(n) ? `${JSON.stringify(n)} must be an absolute path (no \`..\`, commas, colons or control characters)`
                            : isAbsoluteHostPath(v) ? undefined : "must be an absolute path such as /srv/lab/data (no `..`, commas, colons or control characters)");
                    const prefix = s.overrides.registryPrefix;
                    if (prefix !== undefined && !isRegistryHost(prefix)) {
                        err(`${key}.overrides.registryPrefix`, `must be a registry host[:port][/path] such as registry.lab:5000, got ${JSON.stringify(prefix)}`);
                    }
                    if (s.overrides.ports !== undefined && !isObject(s.overrides.ports)) {
                        err(`${key}.overrides.ports`, `must map service names to { published port in the file: new port }, got ${JSON.stringify(s.overrides.ports)}`);
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
                                if (!/^[1-9][0-9]{0,4}$/.test(from) || Number(from) > 65535) err(`${key}.overrides.ports.${svc}.${from}`, "the key must be a published port 1-65535 in the file");
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
                    map("build", "service name to a build as in a compose file ({ context: stacks/lab/mariadb, dockerfile: Dockerfile, args: {...}, target: stage })",
                        (n, v) => service(n) ?? (typeof v === "string" || isObject(v) ? undefined
                            : "must be a context folder relative to the project, or a map with context, dockerfile, args, target, labels"));
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
