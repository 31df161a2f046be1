/**
 * The private registry's configuration (DCCN document 3.2): `dccn-swarm:registry` and the secret
 * `dccn-swarm:registryPasswords`. Pure: it takes the raw values and the cluster's nodes and returns a
 * typed, defaulted configuration, or throws a ConfigError naming the stack file, the key and the fix,
 * before anything is declared.
 *
 * Passwords never reach this module: the caller reduces `registryPasswords` to which users have a
 * non-empty password (passwordPresence), so no password can end up in a message.
 */
import { ConfigError, ConfigFinding, isHostname, NodeConfig } from "./cluster-config";
import { isIpAddress } from "./pki";

export interface CertificateConfig {
    /** Days a server certificate is valid. Default 825 (the limit clients such as macOS accept). */
    validityDays: number;
    /** A new server certificate is issued when the current one expires within this many days. Default 30. */
    renewBeforeDays: number;
    /** Days the CA is valid. Default 3650. It is renewed when it has fewer days left than a server certificate needs. */
    caValidityDays: number;
}

export interface RegistryConfig {
    /** DNS name clients use, e.g. docker-registry.dccn.nl. */
    host: string;
    /** Published port (host mode, on the node running the registry). Default 5000. */
    port: number;
    /** IP address pinned in every node's /etc/hosts when DNS does not know `host` (the lab). */
    address?: string;
    /** Node label the registry is placed by. */
    placement: { key: string; value: string };
    /** Swarm placement constraint, `node.labels.<key>==<value>`. */
    constraint: string;
    /** Host path for the registry's data (bind mount), e.g. /mnt/docker/registry. */
    dataPath: string;
    /** Registry image. Default `registry:2`. */
    image: string;
    /** htpasswd users, in this order. */
    users: string[];
    /** User whose credentials other stacks pull with (X-Registry-Auth). Default the first user. */
    pullUser: string;
    /** The user the program pushes the images it builds as (default: the first of `users`). */
    pushUser: string;
    /**
     * Whether the registry may move to another node when its placement label does: its `dataPath` is
     * on the shared storage, so its images go with it (components/registry.ts registryServiceSpec).
     */
    movable?: boolean;
    certificate: CertificateConfig;
    /** `host:port`, as `docker login` and image references write it. */
    endpoint: string;
}

/** For each user named in `registryPasswords`: whether a usable password is set. Never the password. */
export type PasswordPresence = Record<string, "set" | "empty" | "not-a-string">;

export interface RawRegistryConfig {
    /** `dccn-swarm:registry` as Pulumi config returns it (parsed JSON), or undefined. */
    registry?: unknown;
    /** From `dccn-swarm:registryPasswords`, reduced by passwordPresence; undefined when the key is not set. */
    passwords?: PasswordPresence;
    /** Whether `dccn-swarm:registryPasswords` is stored encrypted (set with --secret). */
    passwordsAreSecret?: boolean;
    /** `dccn-swarm:registryPasswords` is set but is not a map of user to password. */
    passwordsMalformed?: boolean;
    /**
     * Users whose password the stack file holds in plain text (a `--path` set without `--secret` in a
     * map whose other entries are secure: Pulumi then still reports the whole key as secret).
     */
    plainTextUsers?: string[];
}

export const REGISTRY_KEYS = ["host", "port", "address", "placement", "dataPath", "image", "users", "pullUser", "pushUser", "certificate"];
const CERT_KEYS = ["validityDays", "renewBeforeDays", "caValidityDays"];
const USER_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const LABEL_KEY_RE = /^[a-zA-Z0-9]([a-zA-Z0-9._-]*[a-zA-Z0-9])?$/;

export const DEFAULTS = { port: 5000, image: "registry:2", validityDays: 825, renewBeforeDays: 30, caValidityDays: 3650 };

/**
 * The users whose password is written in plain text in the stack file, from the file's parsed
 * `config` section (a secure value is `{secure: ...}`). Only names are returned.
 */
export function plainTextPasswordUsers(stackConfig: unknown, key = "dccn-swarm:registryPasswords"): string[] {
    if (!isObject(stackConfig)) return [];
    const v = stackConfig[key];
    if (!isObject(v)) return [];
    if (typeof v.secure === "string") return [];
    return Object.entries(v).filter(([, x]) => !(isObject(x) && typeof x.secure === "string")).map(([u]) => u);
}

/** Which users have a password, from the parsed `registryPasswords` value; the values are dropped here. */
export function passwordPresence(parsed: unknown): PasswordPresence | undefined {
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
    const out: PasswordPresence = {};
    for (const [user, pw] of Object.entries(parsed as Record<string, unknown>)) {
        out[user] = typeof pw !== "string" ? "not-a-string" : pw.length === 0 ? "empty" : "set";
    }
    return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The command that sets one password without putting it on a command line. */
export function setPasswordHint(stackFile: string, user: string): string {
    const stack = stackFile.replace(/^Pulumi\./, "").replace(/\.yaml$/, "");
    return `pulumi config set --stack ${stack} --secret --path 'registryPasswords.${user}' < FILE-WITH-THE-PASSWORD ` +
        "(or without `< FILE` to be prompted)";
}

/**
 * Validates the registry settings against the cluster's nodes. Returns undefined when
 * `dccn-swarm:registry` is not set (no registry in this stack).
 */
export function validateRegistryConfig(raw: RawRegistryConfig, nodes: readonly NodeConfig[], stackFile: string,
    sharedStorage?: string): { config: RegistryConfig; warnings: ConfigFinding[] } | undefined {
    const findings: ConfigFinding[] = [];
    const error = (key: string, message: string) => findings.push({ level: "error", key, message });
    const warn = (key: string, message: string) => findings.push({ level: "warning", key, message });

    // Not set, or the project's default `{}`: this stack has no registry.
    if (raw.registry === undefined || raw.registry === null) return undefined;
    if (isObject(raw.registry) && Object.keys(raw.registry).length === 0) return undefined;
    if (!isObject(raw.registry)) {
        throw new ConfigError(stackFile, [{ level: "error", key: "registry", message: "must be an object with host, placement, dataPath and users (see README: the private registry)" }]);
    }
    const r = raw.registry;
    for (const k of Object.keys(r)) {
        if (!REGISTRY_KEYS.includes(k)) error(`registry.${k}`, `unknown key; the registry's keys are ${REGISTRY_KEYS.join(", ")}`);
    }

    // host
    let host = "";
    if (typeof r.host !== "string" || r.host === "") {
        error("registry.host", "is required: the DNS name nodes and clients use for the registry, e.g. docker-registry.dccn.nl (lab: registry.lab)");
    } else if (isIpAddress(r.host)) {
        error("registry.host", `${JSON.stringify(r.host)} is an IP address; give the registry's DNS name here (the certificate and /etc/docker/certs.d are named by it) and the address in \`registry.address\``);
    } else if (!isHostname(r.host)) {
        error("registry.host", `${JSON.stringify(r.host)} is not a valid DNS name (letters, digits and hyphens in dot-separated labels of at most 63 characters, no leading or trailing hyphen), e.g. docker-registry.dccn.nl`);
    } else if (r.host !== r.host.toLowerCase()) {
        error("registry.host", `${JSON.stringify(r.host)}: write the name in lower case (${r.host.toLowerCase()}); image references and /etc/docker/certs.d use it as written`);
    } else {
        host = r.host;
    }

    // port
    let port = DEFAULTS.port;
    if (r.port !== undefined) {
        const p = typeof r.port === "string" && /^\d+$/.test(r.port) ? Number(r.port) : r.port;
        if (typeof p !== "number" || !Number.isInteger(p) || p < 1 || p > 65535) {
            error("registry.port", `${JSON.stringify(r.port)} is not a port number from 1 to 65535 (default ${DEFAULTS.port})`);
        } else {
            port = p;
        }
    }

    // address
    let address: string | undefined;
    if (r.address !== undefined && r.address !== "") {
        if (typeof r.address !== "string" || !isIpAddress(r.address)) {
            error("registry.address", `${JSON.stringify(r.address)} is not an IP address; set it to the address of the node the registry runs on ` +
                "when DNS does not know `registry.host` (the lab), or remove it");
        } else {
            address = r.address;
        }
    }

    // placement
    let placement = { key: "", value: "" };
    const labelled: NodeConfig[] = [];
    if (typeof r.placement !== "string" || !/^[^=\s]+=[^=\s]+$/.test(r.placement)) {
        error("registry.placement", `${r.placement === undefined ? "is required" : `${JSON.stringify(r.placement)} is not`}: a node label \`key=value\` ` +
            "the registry runs on, e.g. registry=true, with the label set on that node in `nodes[].labels`");
    } else {
        const [key, value] = r.placement.split("=");
        if (!LABEL_KEY_RE.test(key)) {
            error("registry.placement", `${JSON.stringify(key)} is not a valid node label key`);
        } else {
            placement = { key, value };
            labelled.push(...nodes.filter((n) => n.labels[key] === value));
            if (labelled.length === 0) {
                const carried = [...new Set(nodes.flatMap((n) => Object.entries(n.labels).map(([k, v]) => `${k}=${v}`)))].sort();
                error("registry.placement", `no configured node carries the label ${key}=${value}, so the registry could never be scheduled; ` +
                    `add \`${key}: "${value}"\` to the \`labels\` of the node that should run it in \`nodes\`` +
                    (carried.length ? `, or use one of the labels the nodes carry: ${carried.join(", ")}` : ""));
            }
        }
    }

    // dataPath
    let dataPath = "";
    if (typeof r.dataPath !== "string" || r.dataPath === "") {
        error("registry.dataPath", "is required: the host path for the registry's data, e.g. /mnt/docker/registry (the document's shared storage)");
    } else if (!r.dataPath.startsWith("/") || r.dataPath === "/" || /(^|\/)\.\.?(\/|$)/.test(r.dataPath) || /[,:\s]/.test(r.dataPath)) {
        error("registry.dataPath", `${JSON.stringify(r.dataPath)} must be an absolute path other than /, without . or .. components, commas, colons or spaces`);
    } else {
        dataPath = r.dataPath.replace(/\/+$/, "");
    }

    // image
    let image = DEFAULTS.image;
    if (r.image !== undefined) {
        if (typeof r.image !== "string" || !/^[a-z0-9][a-zA-Z0-9._\-/:@]*$/.test(r.image)) {
            error("registry.image", `${JSON.stringify(r.image)} is not an image reference, e.g. registry:2 (lab: dccn-lab/registry:2.8)`);
        } else {
            image = r.image;
        }
    }

    // users
    const users: string[] = [];
    if (!Array.isArray(r.users) || r.users.length === 0) {
        error("registry.users", "is required: a list of at least one user name (the registry requires authentication for push and pull), e.g. [admin]");
    } else {
        r.users.forEach((u, i) => {
            if (typeof u !== "string" || !USER_RE.test(u)) {
                error(`registry.users[${i}]`, `${JSON.stringify(u)} is not a valid user name (letters, digits, . _ @ -, starting with a letter or digit, at most 64; no colon)`);
            } else if (users.includes(u)) {
                error(`registry.users[${i}]`, `${u} is listed twice`);
            } else {
                users.push(u);
            }
        });
    }

    let pullUser = users[0] ?? "";
    if (r.pullUser !== undefined) {
        if (typeof r.pullUser !== "string" || !users.includes(r.pullUser)) {
            error("registry.pullUser", `${JSON.stringify(r.pullUser)} is not one of registry.users (${users.join(", ") || "none"}); other stacks pull with this user's credentials`);
        } else {
            pullUser = r.pullUser;
        }
    }

    let pushUser = users[0] ?? "";
    if (r.pushUser !== undefined) {
        if (typeof r.pushUser !== "string" || !users.includes(r.pushUser)) {
            error("registry.pushUser", `${JSON.stringify(r.pushUser)} is not one of registry.users (${users.join(", ") || "none"}); the program pushes the images it builds with this user's credentials`);
        } else {
            pushUser = r.pushUser;
        }
    }

    // passwords (presence only)
    if (raw.passwordsMalformed) {
        error("registryPasswords", "must be a map of user name to password; set each one with " + setPasswordHint(stackFile, users[0] ?? "USER"));
    } else {
        const presence = raw.passwords ?? {};
        if (raw.passwords !== undefined && raw.passwordsAreSecret === false) {
            error("registryPasswords", `is stored in plain text in ${stackFile}; remove it (pulumi config rm registryPasswords) and set each password as a secret: ` +
                setPasswordHint(stackFile, users[0] ?? "USER"));
        }
        for (const u of raw.plainTextUsers ?? []) {
            if (raw.passwordsAreSecret === false) break;
            error(`registryPasswords.${u}`, `is stored in plain text in ${stackFile}; remove it (pulumi config rm --path 'registryPasswords.${u}') ` +
                `and set it as a secret: ${setPasswordHint(stackFile, u)}`);
        }
        for (const u of users) {
            const p = presence[u];
            if (p === undefined) error(`registryPasswords.${u}`, `user ${u} (registry.users) has no password; set it with ${setPasswordHint(stackFile, u)}`);
            else if (p === "empty") error(`registryPasswords.${u}`, `the password of ${u} is empty; set it with ${setPasswordHint(stackFile, u)}`);
            else if (p === "not-a-string") error(`registryPasswords.${u}`, `the password of ${u} must be a string; set it with ${setPasswordHint(stackFile, u)}`);
        }
        for (const u of Object.keys(presence)) {
            if (users.length > 0 && !users.includes(u)) {
                warn(`registryPasswords.${u}`, `${u} is not in registry.users, so this password is not used; remove it with ` +
                    `pulumi config rm --path 'registryPasswords.${u}' (or add ${u} to registry.users)`);
            }
        }
    }

    // certificate
    const certificate: CertificateConfig = { validityDays: DEFAULTS.validityDays, renewBeforeDays: DEFAULTS.renewBeforeDays, caValidityDays: DEFAULTS.caValidityDays };
    if (r.certificate !== undefined) {
        if (!isObject(r.certificate)) {
            error("registry.certificate", "must be an object: {validityDays, renewBeforeDays, caValidityDays}");
        } else {
            const c = r.certificate;
            for (const k of Object.keys(c)) {
                if (!CERT_KEYS.includes(k)) error(`registry.certificate.${k}`, `unknown key; the certificate's keys are ${CERT_KEYS.join(", ")}`);
            }
            for (const k of CERT_KEYS as (keyof CertificateConfig)[]) {
                const v = c[k];
                if (v === undefined) continue;
                if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 36500) {
                    error(`registry.certificate.${k}`, `${JSON.stringify(v)} is not a whole number of days from 1 to 36500`);
                } else {
                    certificate[k] = v;
                }
            }
            if (certificate.renewBeforeDays >= certificate.validityDays) {
                error("registry.certificate.renewBeforeDays", `(${certificate.renewBeforeDays}) must be less than validityDays (${certificate.validityDays}), ` +
                    "or every `pulumi up` would issue a new certificate");
            }
            if (certificate.caValidityDays <= certificate.validityDays) {
                error("registry.certificate.caValidityDays", `(${certificate.caValidityDays}) must be more than validityDays (${certificate.validityDays}): ` +
                    "a server certificate must not outlive its CA");
            }
        }
    }

    // Cross-checks that are worth a warning, not a stop.
    const onShared = !!(sharedStorage && dataPath && (dataPath === sharedStorage || dataPath.startsWith(sharedStorage.replace(/\/+$/, "") + "/")));
    if (dataPath && labelled.length > 1 && !onShared) {
        warn("registry.dataPath", `${labelled.length} nodes carry ${placement.key}=${placement.value} (${labelled.map((n) => n.hostname).join(", ")}) but ${dataPath} ` +
            "is not on the shared storage: if the registry moves to another of them it starts without the images pushed so far; " +
            "label one node only, or put dataPath under `sharedStorage`");
    }
    if (address && labelled.length > 0 && !labelled.some((n) => n.address === address)) {
        warn("registry.address", `${address} is not the address of a node carrying ${placement.key}=${placement.value} ` +
            `(${labelled.map((n) => `${n.hostname} ${n.address}`).join(", ")}); the registry publishes its port in host mode on the node it runs on`);
    }

    const errors = findings.filter((f) => f.level === "error");
    if (errors.length > 0) throw new ConfigError(stackFile, findings);
    return {
        config: {
            host, port, address, placement, constraint: `node.labels.${placement.key}==${placement.value}`,
            dataPath, image, users, pullUser, pushUser, ...(onShared ? { movable: true } : {}), certificate, endpoint: port === 443 ? host : `${host}:${port}`,
        },
        warnings: findings.filter((f) => f.level === "warning"),
    };
}
