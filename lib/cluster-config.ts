/**
 * The cluster's stack configuration: types and validation. Pure: it takes the raw values Pulumi read
 * from `Pulumi.<stack>.yaml` and returns a typed, defaulted configuration or throws a ConfigError that
 * names the stack file, the key and the fix. Nothing here talks to a node.
 */
import {
    daemonProblems, isAbsoluteHostPath, isDevicePath, isNodeAddress, isPackageName, isPosixUserName, isVersion,
} from "./config-checks";
import { checkManagerCount, faultTolerance } from "./quorum";

export const PROJECT = "dccn-swarm";

export type Role = "manager" | "worker";
export type Availability = "active" | "drain" | "pause";
export type StorageDriver = "overlay2" | "devicemapper" | "unmanaged";

export interface NodeConfig {
    /** Host name as the swarm knows it (`docker node ls`). */
    hostname: string;
    /** Address the node is reached at over SSH and advertises to the swarm. */
    address: string;
    role: Role;
    /** Default `active`. */
    availability: Availability;
    /** Node labels this program owns on the node (`docker node update --label-add`). */
    labels: Record<string, string>;
    /** Pinned SSH host key (`ssh-ed25519 AAAA...`), or taken from `ssh.knownHostsFile`. */
    hostKey?: string;
}

export interface SshConfig {
    /** Default `root`: the DCCN procedures run as root. */
    user: string;
    /** Default 22. */
    port: number;
    /** Path to the private key (the lab's generated key); otherwise the secret `sshPrivateKey` is used. */
    privateKeyFile?: string;
    /** known_hosts file holding the nodes' host keys; each node's `hostKey` wins over it. */
    knownHostsFile?: string;
    /** Seconds to wait for a node's SSH to answer. Default 15. */
    connectTimeout: number;
}

export interface EngineConfig {
    /** Install the engine when missing (kickstart post-install). Default true. */
    install: boolean;
    /** Package to install on dnf/yum hosts. Default `docker-ce`. */
    package?: string;
    /** Engine version the hosts run or get; used to refuse devicemapper on an engine that dropped it. */
    version?: string;
    storage: StorageDriver;
    /** Data disk for the thinpool (devicemapper) or the overlay2 logical volume, e.g. `/dev/sdb`. */
    dataDevice?: string;
    /** Extra daemon.json settings, merged into the file on each node. */
    daemon: Record<string, unknown>;
}

export interface SwarmConfig {
    /** Manager that initialises the swarm. Default: the first manager in `nodes`. */
    bootstrapManager: string;
    /**
     * Recovery switch (the document's 4.1.1): the hostname of a surviving manager to re-initialise the
     * swarm from with `docker swarm init --force-new-cluster`. Set it, `pulumi up`, then unset it.
     */
    forceNewCluster?: string;
    /**
     * Autolock (Docker's "lock your swarm"): the managers' Raft keys and TLS key encrypted at rest, an
     * unlock key needed after every restart of a manager's engine. The key is the secret stack output
     * `swarmUnlockKey`; `npm run ops -- unlock|reboot|restore` unlock with it. Undefined: left as the
     * swarm has it (existing stacks, which set none of the security keys, see no change).
     */
    autolock?: boolean;
    /** A value whose change rotates both join tokens (the worker's and the manager's). */
    rotateJoinTokens?: string;
    /** A value whose change rotates the unlock key (needs `autolock: true`). */
    rotateUnlockKey?: string;
    /** A value whose change rotates the swarm's root CA; every node gets a certificate from the new one. */
    rotateCa?: string;
    /** Lifetime of the node certificates the swarm's CA issues, in seconds (written `90d`, `2160h`). */
    nodeCertExpiry?: number;
}

/** The keys of `dccn-swarm:swarm`. */
export const SWARM_KEYS = ["bootstrapManager", "forceNewCluster", "autolock", "rotateJoinTokens", "rotateUnlockKey", "rotateCa", "nodeCertExpiry"] as const;
/** swarmkit refuses node certificates shorter than an hour (ca.MinNodeCertExpiration). */
export const NODE_CERT_EXPIRY_MIN_S = 3600;
/** A sanity bound: ten years. */
export const NODE_CERT_EXPIRY_MAX_S = 3650 * 86400;
/** Docker's default node certificate lifetime, 90 days (`docker swarm init --cert-expiry 2160h`). */
export const NODE_CERT_EXPIRY_DEFAULT_S = 90 * 86400;

/** The NFS export the program mounts at `sharedStorage.path` (an fstab entry, then `mount`). */
export interface NfsMountConfig {
    /** NFS server: a DNS name or an IP address, e.g. `nfs.dccn.nl`. */
    server: string;
    /** Exported directory on the server, e.g. `/docker`. */
    export: string;
    /** Mount options, comma-separated (fstab's fourth field). Default SHARED_STORAGE_NFS_OPTIONS. */
    options: string;
}

/**
 * Shared storage on every node (the DCCN document's NFS mount `/mnt/docker`, where the stacks keep
 * their data). Provisioning checks on every node, before any stack deploys, that `path` is a mount
 * point that answers within `timeout` seconds and is writable; with `nfs` it first writes the fstab
 * entry and mounts it. Without `nfs` (the plain string form, and the lab) the mount must already be
 * there: it is checked, never mounted by the program.
 */
export interface SharedStorageConfig {
    /** Mount point on every node, e.g. `/mnt/docker`. */
    path: string;
    nfs?: NfsMountConfig;
    /** Seconds a check of the mount may take before it counts as hanging. Default 10. */
    timeout: number;
}

export const SHARED_STORAGE_TIMEOUT = 10;
/** NFS mount options when `sharedStorage.nfs.options` is not set: hard mounts, mounted after the network. */
export const SHARED_STORAGE_NFS_OPTIONS = "rw,hard,timeo=600,retrans=2,_netdev";

export interface ClusterConfig {
    environment: string;
    ssh: SshConfig;
    engine: EngineConfig;
    nodes: NodeConfig[];
    swarm: SwarmConfig;
    /** Shared storage mounted on every node, e.g. `{ path: /mnt/docker }`. */
    sharedStorage?: SharedStorageConfig;
}

export interface ConfigFinding {
    level: "error" | "warning";
    key: string;
    message: string;
}

export class ConfigError extends Error {
    constructor(readonly stackFile: string, readonly findings: ConfigFinding[]) {
        super(findings.filter((f) => f.level === "error")
            .map((f) => `${stackFile}: ${PROJECT}:${f.key}: ${f.message}`).join("\n"));
        this.name = "ConfigError";
    }
}

/** Raw values as Pulumi config returns them: parsed JSON objects, strings, or undefined. */
export interface RawConfig {
    environment?: unknown;
    ssh?: unknown;
    engine?: unknown;
    nodes?: unknown;
    swarm?: unknown;
    sharedStorage?: unknown;
    /** Whether the secret `sshPrivateKey` is set (its value never reaches validation). */
    hasSshPrivateKey?: boolean;
    /**
     * Whether `sshPrivateKey` is stored encrypted (set with --secret); false when it is plain text in
     * the stack file, undefined when it is not set or the caller cannot tell.
     */
    sshPrivateKeyIsSecret?: boolean;
}

/** Whether a value read from `Pulumi.<stack>.yaml` is an encrypted one (`{secure: ...}`). */
export function isSecureValue(v: unknown): boolean {
    return typeof v === "object" && v !== null && typeof (v as { secure?: unknown }).secure === "string";
}

/**
 * The known_hosts line that pins `hostKey` for a node: `ADDR KEY` on port 22, `[ADDR]:PORT KEY` on any
 * other port (the form ssh looks a non-22 port up by; ssh writes an IPv6 address bare on port 22 too).
 */
export function pinnedKnownHostsLine(address: string, port: number, hostKey: string): string {
    const name = port === 22 ? address : `[${address}]:${port}`;
    return `${name} ${hostKey}`;
}

/** known_hosts lines for `address` (plain or `[address]:port` form), comments and hashed entries skipped. */
export function knownHostsFor(knownHosts: string, address: string, port: number): string[] {
    const names = new Set([address, `[${address}]:${port}`]);
    return knownHosts.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"))
        .filter((l) => l.split(/\s+/)[0].split(",").some((n) => names.has(n)));
}


const HOSTNAME_RE = /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
const LABEL_KEY_RE = /^[a-zA-Z0-9]([a-zA-Z0-9._-]*[a-zA-Z0-9])?$/;
const HOST_KEY_RE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+$/;
/** devicemapper was deprecated in Engine 20.10 and removed in 25.0. */
export const DEVICEMAPPER_REMOVED_IN = 25;

export function isHostname(s: string): boolean {
    return HOSTNAME_RE.test(s);
}

/** An address a node is reached at: IPv4, IPv6 or a DNS name. */
export function isAddress(s: string): boolean {
    return isNodeAddress(s);
}

const hasControl = (s: string) => /[\x00-\x1f\x7f]/.test(s);

function isObject(v: unknown): v is Record<string, unknown> {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Validate the raw stack configuration. Returns the typed config and the warnings; throws a
 * ConfigError listing every error at once, so one `pulumi preview` shows all that needs fixing.
 */
export function validateClusterConfig(raw: RawConfig, stackFile: string): { config: ClusterConfig; warnings: ConfigFinding[] } {
    const findings: ConfigFinding[] = [];
    const err = (key: string, message: string) => findings.push({ level: "error", key, message });
    const warn = (key: string, message: string) => findings.push({ level: "warning", key, message });

    const environment = raw.environment === undefined ? "dev" : String(raw.environment);

    // ssh
    const sshRaw = raw.ssh === undefined ? {} : raw.ssh;
    const ssh: SshConfig = { user: "root", port: 22, connectTimeout: 15 };
    if (!isObject(sshRaw)) {
        err("ssh", "must be a map with `user`, `port`, `privateKeyFile`, `knownHostsFile`");
    } else {
        for (const k of Object.keys(sshRaw)) {
            if (!["user", "port", "privateKeyFile", "knownHostsFile", "connectTimeout"].includes(k)) {
                err(`ssh.${k}`, "unknown key; known keys are `user`, `port`, `privateKeyFile`, `knownHostsFile`, `connectTimeout`");
            }
        }
        if (sshRaw.user !== undefined) {
            // It reaches ssh's argument list as USER@HOST: "-oProxyCommand=..." must never get there.
            if (!isPosixUserName(sshRaw.user)) {
                err("ssh.user", `${JSON.stringify(sshRaw.user)} is not a POSIX user name; write the login name on the nodes ` +
                    "(letters, digits, `_`, `.`, `-`, not starting with `-` or a digit, at most 32 characters), e.g. `root`");
            } else ssh.user = sshRaw.user;
        }
        if (sshRaw.port !== undefined) {
            // A number as YAML writes it: "0x16" or "22" in quotes is refused rather than guessed.
            const p = sshRaw.port;
            if (typeof p !== "number" || !Number.isInteger(p) || p < 1 || p > 65535) {
                err("ssh.port", `must be a port number 1-65535 written as a number (port: 2222, no quotes), got ${JSON.stringify(p)}`);
            } else ssh.port = p;
        }
        if (sshRaw.connectTimeout !== undefined) {
            const t = sshRaw.connectTimeout;
            if (typeof t !== "number" || !Number.isFinite(t) || t <= 0 || t > 600) {
                err("ssh.connectTimeout", `must be a number of seconds between 1 and 600 written as a number (connectTimeout: 15), got ${JSON.stringify(t)}`);
            } else ssh.connectTimeout = t;
        }
        for (const k of ["privateKeyFile", "knownHostsFile"] as const) {
            const v = sshRaw[k];
            if (v === undefined) continue;
            if (typeof v !== "string" || v === "" || hasControl(v)) err(`ssh.${k}`, `must be a file path, got ${JSON.stringify(v)}`);
            else ssh[k] = v;
        }
    }
    if (!ssh.privateKeyFile && !raw.hasSshPrivateKey) {
        err("sshPrivateKey", "no SSH key: set it with `pulumi config set --secret sshPrivateKey < KEYFILE`, " +
            "or set `ssh.privateKeyFile` to a key file path");
    }
    if (raw.hasSshPrivateKey && raw.sshPrivateKeyIsSecret === false) {
        const stack = stackFile.replace(/^.*Pulumi\./, "").replace(/\.yaml$/, "");
        err("sshPrivateKey", `is stored in plain text in ${stackFile} (the root SSH key of every node); remove it ` +
            `(pulumi config rm --stack ${stack} sshPrivateKey) and set it as a secret: pulumi config set --stack ${stack} --secret sshPrivateKey < KEYFILE`);
    }

    // engine
    const engRaw = raw.engine === undefined ? {} : raw.engine;
    const engine: EngineConfig = { install: true, storage: "overlay2", daemon: {} };
    if (!isObject(engRaw)) {
        err("engine", "must be a map (`install`, `package`, `version`, `storage`, `dataDevice`, `daemon`)");
    } else {
        for (const k of Object.keys(engRaw)) {
            if (!["install", "package", "version", "storage", "dataDevice", "daemon"].includes(k)) {
                err(`engine.${k}`, "unknown key; known keys are `install`, `package`, `version`, `storage`, `dataDevice`, `daemon`");
            }
        }
        if (engRaw.install !== undefined) {
            if (typeof engRaw.install !== "boolean") err("engine.install", "must be true or false");
            else engine.install = engRaw.install;
        }
        if (engRaw.package !== undefined) {
            // It reaches yum/dnf/apt-get as root: one package name, never a space or an option.
            if (!isPackageName(engRaw.package)) {
                err("engine.package", `${JSON.stringify(engRaw.package)} is not a package name; write one name, optionally with its version ` +
                    "(docker-ce, docker-ce-20.10.24, docker-ce-3:20.10.24-3.el7): letters, digits and `. _ + - : ~ =`, no spaces or options");
            } else engine.package = engRaw.package;
        }
        if (engRaw.version !== undefined) {
            // A number is refused: YAML reads 20.10 as 20.1.
            const v = engRaw.version;
            if (!isVersion(v)) err("engine.version", `${JSON.stringify(v)} is not an engine version written as a string; write it quoted, e.g. "20.10.24"`);
            else engine.version = v;
        }
        if (engRaw.storage !== undefined) {
            const s = String(engRaw.storage);
            if (s !== "overlay2" && s !== "devicemapper" && s !== "unmanaged") {
                err("engine.storage", `unknown storage driver ${JSON.stringify(s)}; use \`overlay2\`, \`devicemapper\` (legacy engines) or \`unmanaged\``);
            } else engine.storage = s;
        }
        if (engRaw.dataDevice !== undefined) {
            const d = engRaw.dataDevice;
            if (!isDevicePath(d)) {
                err("engine.dataDevice", `must be a block device path such as /dev/sdb, /dev/nvme1n1 or /dev/disk/by-id/NAME ` +
                    `(under /dev, no spaces or \`..\`), got ${JSON.stringify(d)}`);
            } else engine.dataDevice = d;
        }
        if (engRaw.daemon !== undefined) {
            if (!isObject(engRaw.daemon)) err("engine.daemon", "must be a map of daemon.json settings");
            else engine.daemon = engRaw.daemon;
        }
    }
    if (engine.storage === "devicemapper") {
        if (!engine.dataDevice) err("engine.dataDevice", "devicemapper needs a data disk for the thinpool; set `engine.dataDevice` (e.g. /dev/sdb)");
        const major = engine.version ? parseInt(engine.version, 10) : NaN;
        if (!engine.version) {
            err("engine.version", "devicemapper was removed in Docker Engine 25; pin `engine.version` (20.10.x-24.x) to use it, or use `overlay2`");
        } else if (!Number.isFinite(major) || major >= DEVICEMAPPER_REMOVED_IN) {
            err("engine.storage", `devicemapper was removed in Docker Engine ${DEVICEMAPPER_REMOVED_IN}.0 and engine.version is ${engine.version}; use \`overlay2\``);
        } else if (major >= 20) {
            warn("engine.storage", `devicemapper is deprecated since Docker Engine 20.10 (engine.version ${engine.version}); plan the move to overlay2`);
        }
    }
    // Unauthenticated TCP sockets (`hosts` in any spelling, a bare host:port included), insecure
    // registries and a network metrics socket (lib/config-checks.ts daemonProblems).
    for (const p of daemonProblems(engine.daemon)) err(`engine.daemon.${p.key}`, p.message);

    // nodes
    const nodes: NodeConfig[] = [];
    if (!Array.isArray(raw.nodes) || raw.nodes.length === 0) {
        err("nodes", "must list the cluster's nodes, each with `hostname`, `address` and `role`");
    } else {
        const seenHost = new Map<string, number>();
        const seenAddr = new Map<string, number>();
        raw.nodes.forEach((n, i) => {
            const key = `nodes[${i}]`;
            if (!isObject(n)) {
                err(key, "must be a map with `hostname`, `address` and `role`");
                return;
            }
            for (const k of Object.keys(n)) {
                if (!["hostname", "address", "role", "availability", "labels", "hostKey"].includes(k)) {
                    err(`${key}.${k}`, "unknown key; known keys are `hostname`, `address`, `role`, `availability`, `labels`, `hostKey`");
                }
            }
            const hostname = typeof n.hostname === "string" ? n.hostname : "";
            if (!isHostname(hostname)) err(`${key}.hostname`, `must be a valid host name, got ${JSON.stringify(n.hostname)}`);
            const address = typeof n.address === "string" ? n.address : "";
            if (!isAddress(address)) err(`${key}.address`, `must be an IPv4 address, an IPv6 address or a DNS name, got ${JSON.stringify(n.address)}`);
            const role = n.role === undefined ? "worker" : n.role;
            if (role !== "manager" && role !== "worker") {
                err(`${key}.role`, `unknown role ${JSON.stringify(role)}; use \`manager\` or \`worker\``);
            }
            const availability = n.availability === undefined ? "active" : n.availability;
            if (availability !== "active" && availability !== "drain" && availability !== "pause") {
                err(`${key}.availability`, `unknown availability ${JSON.stringify(availability)}; use \`active\`, \`drain\` or \`pause\``);
            }
            const labels: Record<string, string> = {};
            if (n.labels !== undefined) {
                if (!isObject(n.labels)) err(`${key}.labels`, "must be a map of label keys to values");
                else {
                    for (const [k, v] of Object.entries(n.labels)) {
                        if (!LABEL_KEY_RE.test(k)) err(`${key}.labels.${k}`, "label keys use letters, digits, `.`, `-` and `_`, starting and ending with a letter or digit");
                        if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") err(`${key}.labels.${k}`, "label values must be strings");
                        else if (hasControl(String(v)) || String(v).length > 1024) err(`${key}.labels.${k}`, "label values are one line of at most 1024 characters: write the value on one line");
                        labels[k] = String(v);
                    }
                }
            }
            let hostKey: string | undefined;
            if (n.hostKey !== undefined) {
                hostKey = String(n.hostKey).trim();
                if (!HOST_KEY_RE.test(hostKey)) err(`${key}.hostKey`, "must be a public host key line such as `ssh-ed25519 AAAA...` (see `ssh-keyscan ADDRESS`)");
            }
            if (hostname) {
                if (seenHost.has(hostname)) err(`${key}.hostname`, `duplicate hostname ${hostname} (also nodes[${seenHost.get(hostname)}]); every node needs its own`);
                else seenHost.set(hostname, i);
            }
            if (address) {
                if (seenAddr.has(address)) err(`${key}.address`, `duplicate address ${address} (also nodes[${seenAddr.get(address)}]); every node needs its own`);
                else seenAddr.set(address, i);
            }
            nodes.push({ hostname, address, role: role as Role, availability: availability as Availability, labels, hostKey });
        });
    }
    const managers = nodes.filter((n) => n.role === "manager");
    if (nodes.length > 0) {
        for (const f of checkManagerCount(managers.length)) {
            (f.level === "error" ? err : warn)("nodes", f.message);
        }
        if (managers.length > 0 && managers.every((m) => m.availability !== "active")) {
            warn("nodes", "every manager is drained or paused; services pinned to managers cannot run");
        }
    }

    // swarm
    const swRaw = raw.swarm === undefined ? {} : raw.swarm;
    const swarm: SwarmConfig = { bootstrapManager: managers[0]?.hostname ?? "" };
    const swarmKeys = SWARM_KEYS.map((k) => `\`${k}\``).join(", ");
    if (!isObject(swRaw)) {
        err("swarm", `must be a map (${swarmKeys})`);
    } else {
        for (const k of Object.keys(swRaw)) {
            if (!(SWARM_KEYS as readonly string[]).includes(k)) err(`swarm.${k}`, `unknown key; known keys are ${swarmKeys}`);
        }
        if (swRaw.bootstrapManager !== undefined) {
            const b = String(swRaw.bootstrapManager);
            if (!managers.some((m) => m.hostname === b)) err("swarm.bootstrapManager", `${b} is not a configured manager; name one of: ${managers.map((m) => m.hostname).join(", ") || "(none)"}`);
            else swarm.bootstrapManager = b;
        }
        if (swRaw.forceNewCluster !== undefined && swRaw.forceNewCluster !== false && swRaw.forceNewCluster !== "") {
            const f = String(swRaw.forceNewCluster);
            if (!managers.some((m) => m.hostname === f)) err("swarm.forceNewCluster", `${f} is not a configured manager; name the surviving manager to re-initialise from`);
            else swarm.forceNewCluster = f;
        }
        Object.assign(swarm, validateSwarmSecurity(swRaw, err));
    }

    const sharedStorage = raw.sharedStorage === undefined || raw.sharedStorage === "" ? undefined : validateSharedStorage(raw.sharedStorage, err);

    if (findings.some((f) => f.level === "error")) throw new ConfigError(stackFile, findings);
    return {
        config: { environment, ssh, engine, nodes, swarm, sharedStorage },
        warnings: findings.filter((f) => f.level === "warning"),
    };
}

/** A rotation value: any short text on one line (a date, a ticket); a change of it is what rotates. */
const ROTATION_MAX = 200;

/**
 * The security keys of `dccn-swarm:swarm` (autolock, rotations, node certificate lifetime). Only the
 * keys that are set come back: an unset one leaves the swarm as it is. Findings go to `err`.
 */
function validateSwarmSecurity(sw: Record<string, unknown>, err: (key: string, message: string) => void):
    Pick<SwarmConfig, "autolock" | "rotateJoinTokens" | "rotateUnlockKey" | "rotateCa" | "nodeCertExpiry"> {
    const out: ReturnType<typeof validateSwarmSecurity> = {};
    if (sw.autolock !== undefined) {
        // "true" in quotes is refused rather than guessed, as ssh.port's "22" is.
        if (typeof sw.autolock !== "boolean") {
            err("swarm.autolock", `must be true or false written without quotes (autolock: true), got ${JSON.stringify(sw.autolock)}; remove it to leave the swarm as it is`);
        } else out.autolock = sw.autolock;
    }
    for (const k of ["rotateJoinTokens", "rotateUnlockKey", "rotateCa"] as const) {
        const v = sw[k];
        if (v === undefined || v === "") continue;
        // A date as js-yaml reads `2026-12-07` (status and ops read the stack file with it) is the date
        // Pulumi's own reading keeps as text.
        const text = typeof v === "number" && Number.isFinite(v) ? String(v)
            : v instanceof Date && Number.isFinite(v.getTime()) ? v.toISOString().replace(/T00:00:00\.000Z$/, "") : v;
        if (typeof text !== "string" || text.length > ROTATION_MAX || hasControl(text) || text.trim() !== text) {
            const shown = typeof v === "string" ? JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v) : JSON.stringify(v) ?? String(v);
            err(`swarm.${k}`, `must be a short text on one line (at most ${ROTATION_MAX} characters, no leading or trailing blanks), such as the date of the rotation ` +
                `(${k}: 2026-12-07); a change of it rotates, got ${shown}`);
        } else out[k] = text;
    }
    if (out.rotateUnlockKey !== undefined && out.autolock !== true) {
        err("swarm.rotateUnlockKey", "rotates the unlock key of an autolocked swarm; set `autolock: true` as well (or remove `rotateUnlockKey`)");
    }
    if (sw.nodeCertExpiry !== undefined && sw.nodeCertExpiry !== "") {
        const s = parseDuration(sw.nodeCertExpiry);
        if (s === undefined || s < NODE_CERT_EXPIRY_MIN_S || s > NODE_CERT_EXPIRY_MAX_S) {
            err("swarm.nodeCertExpiry", `must be a duration from 1h to 3650d written with its unit, such as 90d or 2160h (Docker's default), got ${JSON.stringify(sw.nodeCertExpiry)}`);
        } else out.nodeCertExpiry = s;
    }
    return out;
}

/** `90d`, `2160h`, `90m`: seconds; undefined for anything else (a bare number has no unit: refused). */
export function parseDuration(v: unknown): number | undefined {
    if (typeof v !== "string") return undefined;
    const m = /^([1-9][0-9]{0,6})(m|h|d)$/.exec(v);
    if (!m) return undefined;
    return Number(m[1]) * { m: 60, h: 3600, d: 86400 }[m[2] as "m" | "h" | "d"];
}

/** A mount point or export path that also fits an fstab line: absolute, no blank, comma, colon, `#` or `\\`. */
function isMountPath(s: unknown): s is string {
    return isAbsoluteHostPath(s) && s !== "/" && !/[\s#\\]/.test(s) && !/\/\/|.\/$/.test(s);
}

/** One mount option (`name` or `name=value`): letters, digits and `_ . - = / :`, no blank, comma or quote. */
const MOUNT_OPTION_RE = /^[A-Za-z0-9_][A-Za-z0-9_.:/-]*(=[A-Za-z0-9_.:/-]+)?$/;

/**
 * `dccn-swarm:sharedStorage`: a path (an existing mount, only checked) or a map
 * `{path, nfs?: {server, export, options?}, timeout?}`. Findings go to `err` with the key.
 */
function validateSharedStorage(raw: unknown, err: (key: string, message: string) => void): SharedStorageConfig | undefined {
    const pathRule = "must be an absolute path other than / such as /mnt/docker (no `.` or `..`, blanks, commas, colons, `#` or control characters)";
    if (typeof raw === "string") {
        if (!isMountPath(raw)) {
            err("sharedStorage", `${pathRule}, got ${JSON.stringify(raw)}; or write a map \`{ path: /mnt/docker, nfs: { server, export, options } }\``);
            return undefined;
        }
        return { path: raw, timeout: SHARED_STORAGE_TIMEOUT };
    }
    if (!isObject(raw)) {
        err("sharedStorage", `must be a path such as /mnt/docker or a map \`{ path, nfs?: { server, export, options? }, timeout? }\`, got ${JSON.stringify(raw)}`);
        return undefined;
    }
    let ok = true;
    const bad = (key: string, message: string) => { ok = false; err(key, message); };
    for (const k of Object.keys(raw)) {
        if (!["path", "nfs", "timeout"].includes(k)) bad(`sharedStorage.${k}`, "unknown key; remove it (known keys are `path`, `nfs`, `timeout`)");
    }
    if (raw.path === undefined) bad("sharedStorage.path", "is missing; set the mount point every node has, such as /mnt/docker");
    else if (!isMountPath(raw.path)) bad("sharedStorage.path", `${pathRule}, got ${JSON.stringify(raw.path)}`);
    let timeout = SHARED_STORAGE_TIMEOUT;
    if (raw.timeout !== undefined) {
        if (typeof raw.timeout !== "number" || !Number.isInteger(raw.timeout) || raw.timeout < 1 || raw.timeout > 300) {
            bad("sharedStorage.timeout", `must be a whole number of seconds from 1 to 300 written as a number (default ${SHARED_STORAGE_TIMEOUT}), got ${JSON.stringify(raw.timeout)}`);
        } else timeout = raw.timeout;
    }
    let nfs: NfsMountConfig | undefined;
    if (raw.nfs !== undefined) {
        const n = raw.nfs;
        if (!isObject(n)) {
            bad("sharedStorage.nfs", "must be a map `{ server, export, options? }`; remove it for a mount the nodes already have");
        } else {
            for (const k of Object.keys(n)) {
                if (!["server", "export", "options"].includes(k)) bad(`sharedStorage.nfs.${k}`, "unknown key; remove it (known keys are `server`, `export`, `options`)");
            }
            if (n.server === undefined) bad("sharedStorage.nfs.server", "is missing; set the NFS server's DNS name or address");
            else if (!isNodeAddress(n.server)) bad("sharedStorage.nfs.server", `must be a DNS name or an IPv4 or IPv6 address such as nfs.dccn.nl, got ${JSON.stringify(n.server)}`);
            if (n.export === undefined) bad("sharedStorage.nfs.export", "is missing; set the exported directory, such as /docker");
            else if (!isAbsoluteHostPath(n.export) || /[\s#\\]/.test(n.export)) {
                bad("sharedStorage.nfs.export", `must be the absolute path the server exports, such as /docker (no blanks, commas, colons, \`#\` or control characters), got ${JSON.stringify(n.export)}`);
            }
            let options = SHARED_STORAGE_NFS_OPTIONS;
            if (n.options !== undefined) {
                const parts = typeof n.options === "string" ? n.options.split(",") : [];
                const wrong = parts.filter((o) => !MOUNT_OPTION_RE.test(o));
                if (typeof n.options !== "string" || n.options.length > 1024 || parts.length === 0 || wrong.length > 0) {
                    bad("sharedStorage.nfs.options", `must be mount options separated by commas without blanks, such as ${SHARED_STORAGE_NFS_OPTIONS}` +
                        `${wrong.length ? ` (not an option: ${wrong.map((o) => JSON.stringify(o)).join(", ")})` : ""}, got ${JSON.stringify(n.options)}`);
                } else if (parts.includes("ro")) {
                    bad("sharedStorage.nfs.options", "names `ro`, but the shared storage must be writable (the stacks keep their data there); use `rw`");
                } else options = n.options;
            }
            if (ok) nfs = { server: n.server as string, export: n.export as string, options };
        }
    }
    return ok ? { path: raw.path as string, timeout, ...(nfs ? { nfs } : {}) } : undefined;
}

/**
 * `dccn-swarm:sharedStorage` as Pulumi's config returns it (`Config.get`): a map arrives as its JSON
 * text, a path as itself. Undefined and "" mean none.
 */
export function parseSharedStorageText(text: string | undefined): unknown {
    if (text === undefined || text === "") return undefined;
    if (!/^\s*[{[]/.test(text)) return text;
    try {
        return JSON.parse(text);
    } catch {
        return text;
    }
}

/** Summary figures for stack outputs. */
export function managerSummary(nodes: readonly NodeConfig[]): { managers: number; faultTolerance: number } {
    const m = nodes.filter((n) => n.role === "manager").length;
    return { managers: m, faultTolerance: faultTolerance(m) };
}
