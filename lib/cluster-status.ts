/**
 * Cluster health (`npm run status`): what the nodes, the swarm's managers, its services and the
 * registry look like right now, measured against the stack configuration.
 *
 * Three parts, kept apart so the middle one can be tested from fixture data:
 *   1. setup and gathering: read `Pulumi.<stack>.yaml`, reach every node over SSH (pinned host keys,
 *      bounded by `ssh.connectTimeout`), ask a manager with a quorum for nodes, services and tasks,
 *      and check the registry from a manager, and the shared mount (`sharedStorage`) on every node
 *      within its time-out. Read-only: nothing here changes a node (the shared mount's check creates
 *      and removes one probe file there, which tells a writable mount from one that is not).
 *   2. evaluation (pure): an Observation and the ClusterConfig give a StatusReport with `healthy`
 *      and the list of problems.
 *   3. rendering (pure): a text table, JSON for monitoring systems, and an SVG picture.
 */
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { ClusterConfig, isSecureValue, pinnedKnownHostsLine, PROJECT, SharedStorageConfig, validateClusterConfig } from "./cluster-config";
import { readScript, scriptStdin } from "./remote-script";
import { knownHostsFor } from "../config";
import { validateLockWait } from "./cluster-lock";
import { quorumSize } from "./quorum";
import { sshTarget } from "./connection";
import { runScript, shq, SshTarget } from "./ssh";
import { findManager, LOCKED_HINT, ManagerHandle, SwarmInfo, swarmInfo } from "./swarm-ops";

// ================================================================== setup

/** `dccn-swarm:registry`: where the cluster's registry answers. Optional. */
export interface RegistryConfig {
    host: string;
    /** Default 5000, the DCCN registry's port (docker-registry.dccn.nl:5000). */
    port: number;
}

/** A certificate valid for this many days or fewer makes the cluster unhealthy. */
export const CERT_MIN_DAYS = 14;
export const DEFAULT_REGISTRY_PORT = 5000;
/** How long status waits for a manager with a quorum (a leader election takes seconds). */
export const STATUS_SETTLE_SEC = 10;

export class StatusSetupError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "StatusSetupError";
    }
}

/** Parse `dccn-swarm:registry` ({ host, port }); undefined when the key is absent (no registry yet). */
export function parseRegistryConfig(value: unknown, stackFile: string): RegistryConfig | undefined {
    if (value === undefined || value === null) return undefined;
    const where = `${stackFile}: ${PROJECT}:registry`;
    if (typeof value !== "object" || Array.isArray(value)) {
        throw new StatusSetupError(`${where}: must be a map with \`host\` and \`port\``);
    }
    const v = value as Record<string, unknown>;
    if (typeof v.host !== "string" || !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(v.host)) {
        throw new StatusSetupError(`${where}.host: must be the registry's host name or address, got ${JSON.stringify(v.host)}`);
    }
    let port = DEFAULT_REGISTRY_PORT;
    if (v.port !== undefined) {
        port = Number(v.port);
        if (!Number.isInteger(port) || port < 1 || port > 65535) {
            throw new StatusSetupError(`${where}.port: must be a port number 1-65535, got ${JSON.stringify(v.port)}`);
        }
    }
    return { host: v.host, port };
}

/** A configured node and how to reach it, or why it cannot be reached (no pinned host key). */
export interface NodeEndpoint {
    hostname: string;
    target?: SshTarget;
    /** Why there is no target. */
    error?: string;
}

export interface StatusSetup {
    stack: string;
    stackFile: string;
    cluster: ClusterConfig;
    registry?: RegistryConfig;
    endpoints: NodeEndpoint[];
    /** `dccn-swarm:lockWait`, validated: seconds to wait for the cluster lock (lib/cluster-lock.ts). */
    lockWait: number;
}

export interface SetupOptions {
    /** Project root holding `Pulumi.<stack>.yaml`; relative paths in the stack config are resolved against it. */
    root: string;
    stack: string;
    /** `--key FILE`: the SSH private key, needed when the stack keeps it as the secret `sshPrivateKey`. */
    keyFile?: string;
    /** Environment (DCCN_SSH_KEY_FILE). */
    env?: NodeJS.ProcessEnv;
}

/**
 * Read and validate the stack configuration the way the program does (validateClusterConfig,
 * knownHostsFor) and prepare an SSH target per node. Throws StatusSetupError when the cluster cannot
 * be checked at all (no stack file, invalid config, no key); a node without a pinned host key is not
 * an error here: it is reported as not reachable.
 */
export function loadStatusSetup(opts: SetupOptions): StatusSetup {
    if (!/^[A-Za-z0-9._-]+$/.test(opts.stack)) throw new StatusSetupError(`invalid stack name ${JSON.stringify(opts.stack)}`);
    const stackFile = `Pulumi.${opts.stack}.yaml`;
    const file = path.join(opts.root, stackFile);
    let doc: unknown;
    try {
        doc = yaml.load(fs.readFileSync(file, "utf8"));
    } catch (e) {
        const err = e as NodeJS.ErrnoException;
        throw new StatusSetupError(err.code === "ENOENT"
            ? `${file} does not exist; name an existing stack with --stack (${listStacks(opts.root).join(", ") || "none found"})`
            : `${file}: cannot be read: ${err.message}`);
    }
    const config = ((doc as { config?: Record<string, unknown> } | null)?.config ?? {}) as Record<string, unknown>;
    const key = (k: string) => config[`${PROJECT}:${k}`];
    const env = opts.env ?? process.env;
    const hasSecretKey = key("sshPrivateKey") !== undefined;

    let cluster: ClusterConfig;
    try {
        cluster = validateClusterConfig({
            environment: key("environment"),
            ssh: key("ssh"),
            engine: key("engine"),
            nodes: key("nodes"),
            swarm: key("swarm"),
            sharedStorage: key("sharedStorage") || undefined,
            hasSshPrivateKey: hasSecretKey || !!opts.keyFile || !!env.DCCN_SSH_KEY_FILE,
            // In the stack file a secret is `{secure: ...}`; a plain key there is refused as the program refuses it.
            sshPrivateKeyIsSecret: hasSecretKey ? isSecureValue(key("sshPrivateKey")) : undefined,
        }, stackFile).config;
    } catch (e) {
        throw new StatusSetupError((e as Error).message);
    }
    const registry = parseRegistryConfig(key("registry"), stackFile);
    const lockWait = validateLockWait(key("lockWait"), stackFile);
    if (lockWait.findings.length > 0) throw new StatusSetupError(`${stackFile}: ${PROJECT}:lockWait: ${lockWait.findings[0].message}`);

    // The key: --key, else ssh.privateKeyFile, else DCCN_SSH_KEY_FILE (the secret's stand-in).
    const keyPath = opts.keyFile ?? cluster.ssh.privateKeyFile ?? env.DCCN_SSH_KEY_FILE;
    if (!keyPath) {
        throw new StatusSetupError(`${stackFile}: the SSH key is the secret \`sshPrivateKey\`; pass the key file with --key FILE or DCCN_SSH_KEY_FILE`);
    }
    const keyFile = path.resolve(opts.root, keyPath);
    let privateKey: string;
    try {
        privateKey = fs.readFileSync(keyFile, "utf8");
    } catch (e) {
        throw new StatusSetupError(`SSH key ${keyFile} cannot be read: ${(e as Error).message}` +
            (cluster.environment === "dev" ? " (run `npm run lab:up` first, it generates the lab's key)" : ""));
    }

    let knownHosts = "";
    let knownHostsProblem = "";
    if (cluster.ssh.knownHostsFile) {
        const kh = path.resolve(opts.root, cluster.ssh.knownHostsFile);
        try {
            knownHosts = fs.readFileSync(kh, "utf8");
        } catch (e) {
            knownHostsProblem = `; ${kh} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
        }
    }
    const endpoints = cluster.nodes.map((n): NodeEndpoint => {
        const lines = n.hostKey ? [pinnedKnownHostsLine(n.address, cluster.ssh.port, n.hostKey)] : knownHostsFor(knownHosts, n.address, cluster.ssh.port);
        if (lines.length === 0) {
            return { hostname: n.hostname, error: `no SSH host key is pinned for ${n.address} (node hostKey or ssh.knownHostsFile)${knownHostsProblem}` };
        }
        return {
            hostname: n.hostname,
            target: sshTarget({ user: cluster.ssh.user, port: cluster.ssh.port, privateKey, connectTimeout: cluster.ssh.connectTimeout },
                { name: n.hostname, address: n.address, knownHosts: lines.join("\n") }),
        };
    });
    return { stack: opts.stack, stackFile, cluster, registry, endpoints, lockWait: lockWait.value };
}

function listStacks(root: string): string[] {
    try {
        return fs.readdirSync(root).map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1]).filter((s): s is string => !!s).sort();
    } catch {
        return [];
    }
}

// ================================================================== observation (what gathering yields)

/** One node as reached over SSH. */
export interface NodeProbe {
    hostname: string;
    /** SSH answered and `docker info` ran. */
    reachable: boolean;
    error?: string;
    swarm?: SwarmInfo;
    /** Milliseconds the probe took. */
    ms?: number;
    /** The shared storage check (`sharedStorage`), when the stack has shared storage and SSH answered. */
    sharedStorage?: SharedMountProbe;
    /** The node's swarm certificate, when it is in a swarm and SSH answered. */
    certificate?: NodeCertProbe;
}

/** A node's swarm TLS certificate (/var/lib/docker/swarm/certificates/swarm-node.crt) as openssl reads it. */
export interface NodeCertProbe {
    /** Seconds since the epoch. */
    notBefore?: number;
    notAfter?: number;
    /** Why the dates are not known (no certificate file, openssl missing, ...). */
    error?: string;
}

/**
 * A node's shared mount as scripts/shared-storage.sh (check only: it never mounts for status) found it:
 * ok, missing (absent or not a mount point), read-only, not answering within the time-out (a hanging
 * NFS mount), not writable for root, or unknown (the check itself failed).
 */
export type SharedMountState = "ok" | "missing" | "read-only" | "not-answering" | "not-writable" | "unknown";

export interface SharedMountProbe {
    path: string;
    state: SharedMountState;
    /** File system type (nfs, nfs4; the lab's bind shows its host's). */
    fstype?: string;
    /** Seconds the check was allowed. */
    timeout: number;
    /** The check's message when it is not ok. */
    detail?: string;
}

export interface ManagerStatusView {
    leader: boolean;
    reachability: string;
    addr: string;
}

/** A node in the managers' node table. */
export interface SwarmNodeView {
    id: string;
    hostname: string;
    role: string;
    availability: string;
    /** ready, down, unknown, disconnected. */
    status: string;
    message?: string;
    addr: string;
    labels: Record<string, string>;
    engineVersion: string;
    managerStatus?: ManagerStatusView;
    /** The public key of the CA that issued the node's certificate (Description.TLSInfo). */
    certIssuerPublicKey?: string;
}

export type ServiceMode = "replicated" | "global" | "replicated-job" | "global-job" | "unknown";

export interface ServiceView {
    id: string;
    name: string;
    mode: ServiceMode;
    /** Replicas wanted (replicated services). */
    replicas?: number;
    image: string;
    /** `com.docker.stack.namespace`: the stack the service belongs to. */
    stack?: string;
}

export interface TaskView {
    id: string;
    serviceId: string;
    nodeId?: string;
    slot?: number;
    state: string;
    desiredState: string;
    error?: string;
    message?: string;
    /** When the task reached its current state (ISO). */
    timestamp?: string;
}

export interface SwarmSnapshot {
    /** The manager the snapshot was read from. */
    manager: string;
    nodes: SwarmNodeView[];
    services: ServiceView[];
    /** Every task the manager keeps, the task history included (failed and shut down ones). */
    tasks: TaskView[];
    /** The swarm's security settings (`docker info`'s Swarm.Cluster), when the manager told them. */
    cluster?: ClusterSecurityView;
}

/** The swarm's own security as a manager reports it. */
export interface ClusterSecurityView {
    autolock: boolean;
    /** Node certificate lifetime, seconds (0: unknown). */
    nodeCertExpiry: number;
    caRotationInProgress: boolean;
    /** The public key of the CA that issues node certificates now. */
    caPublicKey?: string;
}

/** `docker info --format '{{json .Swarm.Cluster}}'` as the security view; undefined when it is not that. */
export function parseClusterInfo(json: unknown): ClusterSecurityView | undefined {
    const c = json as any;
    if (!c || typeof c !== "object" || !c.Spec) return undefined;
    return {
        autolock: !!c.Spec?.EncryptionConfig?.AutoLockManagers,
        nodeCertExpiry: Math.round(Number(c.Spec?.CAConfig?.NodeCertExpiry ?? 0) / 1e9) || 0,
        caRotationInProgress: !!c.RootRotationInProgress,
        caPublicKey: c.TLSInfo?.CertIssuerPublicKey ? str(c.TLSInfo.CertIssuerPublicKey) : undefined,
    };
}

export type RegistryProbe =
    | { configured: false }
    | {
        configured: true;
        host: string;
        port: number;
        /** Node the check ran on; undefined when no node could be reached. */
        checkedFrom?: string;
        /** HTTP status of https://host:port/v2/ (0: no answer). */
        httpStatus?: number;
        /** Whether the TLS certificate verified (with certs.d's CA when the node has one). */
        tlsVerified?: boolean;
        /** The CA file used, /etc/docker/certs.d/<host>:<port>/ca.crt, when present. */
        caFile?: string;
        curlError?: string;
        /** The certificate's notAfter as openssl prints it, and as seconds since the epoch. */
        notAfter?: string;
        notAfterEpoch?: number;
        error?: string;
    };

export interface Observation {
    stack: string;
    environment: string;
    /** ISO time of the check. */
    checkedAt: string;
    probes: NodeProbe[];
    snapshot?: SwarmSnapshot;
    /** Why there is no snapshot (no manager with a quorum, or the manager failed to answer). */
    swarmError?: string;
    registry: RegistryProbe;
}

// ================================================================== parsing node output (pure)

function str(v: unknown): string {
    return typeof v === "string" ? v : v === undefined || v === null ? "" : String(v);
}

/** `docker node inspect` JSON (an array) as node views. */
export function parseNodeInspect(json: unknown): SwarmNodeView[] {
    if (!Array.isArray(json)) return [];
    return json.map((n: any): SwarmNodeView => ({
        id: str(n?.ID),
        hostname: str(n?.Description?.Hostname),
        role: str(n?.Spec?.Role) || "unknown",
        availability: str(n?.Spec?.Availability) || "unknown",
        status: str(n?.Status?.State) || "unknown",
        message: n?.Status?.Message ? str(n.Status.Message) : undefined,
        addr: str(n?.Status?.Addr),
        labels: Object.fromEntries(Object.entries(n?.Spec?.Labels ?? {}).map(([k, v]) => [k, str(v)])),
        engineVersion: str(n?.Description?.Engine?.EngineVersion),
        certIssuerPublicKey: n?.Description?.TLSInfo?.CertIssuerPublicKey ? str(n.Description.TLSInfo.CertIssuerPublicKey) : undefined,
        managerStatus: n?.ManagerStatus ? {
            leader: !!n.ManagerStatus.Leader,
            reachability: str(n.ManagerStatus.Reachability) || "unknown",
            addr: str(n.ManagerStatus.Addr),
        } : undefined,
    }));
}

/** `docker service inspect` JSON (an array) as service views. */
export function parseServiceInspect(json: unknown): ServiceView[] {
    if (!Array.isArray(json)) return [];
    return json.map((s: any): ServiceView => {
        const mode = s?.Spec?.Mode ?? {};
        let m: ServiceMode = "unknown";
        let replicas: number | undefined;
        if (mode.Replicated) {
            m = "replicated";
            replicas = Number(mode.Replicated.Replicas ?? 1);
        } else if (mode.Global) m = "global";
        else if (mode.ReplicatedJob) m = "replicated-job";
        else if (mode.GlobalJob) m = "global-job";
        return {
            id: str(s?.ID),
            name: str(s?.Spec?.Name),
            mode: m,
            replicas,
            image: str(s?.Spec?.TaskTemplate?.ContainerSpec?.Image).replace(/@sha256:[0-9a-f]+$/, ""),
            stack: s?.Spec?.Labels?.["com.docker.stack.namespace"] || undefined,
        };
    });
}

/** `docker inspect --type task` JSON (an array) as task views. */
export function parseTaskInspect(json: unknown): TaskView[] {
    if (!Array.isArray(json)) return [];
    return json.map((t: any): TaskView => ({
        id: str(t?.ID),
        serviceId: str(t?.ServiceID),
        nodeId: t?.NodeID ? str(t.NodeID) : undefined,
        slot: typeof t?.Slot === "number" && t.Slot > 0 ? t.Slot : undefined,
        state: str(t?.Status?.State) || "unknown",
        desiredState: str(t?.DesiredState) || "unknown",
        error: t?.Status?.Err ? str(t.Status.Err) : undefined,
        message: t?.Status?.Message ? str(t.Status.Message) : undefined,
        timestamp: t?.Status?.Timestamp ? str(t.Status.Timestamp) : undefined,
    }));
}

/**
 * What SNAPSHOT_SCRIPT prints: `@@nodes`, `@@services`, `@@tasks` sections, each one JSON array.
 * Throws when a section is missing or not JSON (the manager's answer was cut short).
 */
export function parseSnapshotOutput(manager: string, stdout: string): SwarmSnapshot {
    const sections: Record<string, string> = {};
    let current: string | undefined;
    for (const line of stdout.split("\n")) {
        const m = /^@@(\w+)\s*$/.exec(line);
        if (m) {
            current = m[1];
            sections[current] = "";
        } else if (current) {
            sections[current] += line + "\n";
        }
    }
    const parse = (name: string): unknown => {
        if (!(name in sections)) throw new Error(`the manager's answer has no ${name} section`);
        const text = sections[name].trim() || "[]";
        try {
            return JSON.parse(text);
        } catch (e) {
            throw new Error(`the manager's ${name} section is not JSON: ${(e as Error).message}`);
        }
    };
    // The cluster section is optional (a manager that could not say leaves the settings unknown).
    let cluster: ClusterSecurityView | undefined;
    try {
        cluster = "cluster" in sections ? parseClusterInfo(JSON.parse(sections.cluster.trim() || "null")) : undefined;
    } catch {
        cluster = undefined;
    }
    return {
        manager,
        nodes: parseNodeInspect(parse("nodes")),
        services: parseServiceInspect(parse("services")),
        tasks: parseTaskInspect(parse("tasks")),
        ...(cluster ? { cluster } : {}),
    };
}

/** What REGISTRY_SCRIPT prints (`key=value` lines) as a probe. */
export function parseRegistryOutput(reg: RegistryConfig, node: string, stdout: string): RegistryProbe {
    const kv: Record<string, string> = {};
    for (const line of stdout.split("\n")) {
        const i = line.indexOf("=");
        if (i > 0) kv[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
    const curlRc = Number(kv.curl_rc ?? "NaN");
    const verifyFailed = curlRc === 60 || curlRc === 51;
    const http = Number(verifyFailed ? kv.http_insecure : kv.http);
    const epoch = Number(kv.notafter_epoch);
    let notAfterEpoch = Number.isFinite(epoch) && epoch > 0 ? epoch : undefined;
    if (notAfterEpoch === undefined && kv.notafter) {
        const t = Date.parse(kv.notafter);
        if (Number.isFinite(t)) notAfterEpoch = Math.floor(t / 1000);
    }
    return {
        configured: true,
        host: reg.host,
        port: reg.port,
        checkedFrom: node,
        httpStatus: Number.isFinite(http) ? http : 0,
        tlsVerified: curlRc === 0 ? true : verifyFailed ? false : undefined,
        caFile: kv.ca && kv.ca !== "none" ? kv.ca : undefined,
        curlError: kv.curl_err || undefined,
        notAfter: kv.notafter || undefined,
        notAfterEpoch,
        error: curlRc === 127 ? `curl is not installed on ${node}` : undefined,
    };
}

// ================================================================== gathering (SSH, read-only)

/**
 * Nodes, services and their tasks (with the history the swarm keeps, for the reason a task failed),
 * from a manager; sections parsed by parseSnapshotOutput.
 */
export const SNAPSHOT_SCRIPT = `
ids=$(docker node ls -q)
echo '@@nodes'
if [ -n "$ids" ]; then docker node inspect $ids; else echo '[]'; fi
svcs=$(docker service ls -q)
echo '@@services'
if [ -n "$svcs" ]; then out=$(docker service inspect $svcs 2>/dev/null || true); echo "\${out:-[]}"; else echo '[]'; fi
echo '@@tasks'
tasks=""
if [ -n "$svcs" ]; then tasks=$(docker service ps -q --no-trunc $svcs 2>/dev/null || true); fi
if [ -n "$tasks" ]; then out=$(docker inspect --type task $tasks 2>/dev/null || true); echo "\${out:-[]}"; else echo '[]'; fi
echo '@@cluster'
docker info --format '{{json .Swarm.Cluster}}' 2>/dev/null || true
`;

/** The node's swarm certificate's dates (read-only): epoch seconds, or why they are not known. */
export const NODE_CERT_SCRIPT = `
f=/var/lib/docker/swarm/certificates/swarm-node.crt
if [ ! -f "$f" ]; then echo "error=no certificate file $f"; exit 0; fi
if ! command -v openssl >/dev/null; then echo "error=openssl is not installed"; exit 0; fi
dates=$(openssl x509 -noout -startdate -enddate -in "$f" 2>&1) || { echo "error=openssl cannot read $f"; exit 0; }
start=$(printf '%s\n' "$dates" | sed -n 's/^notBefore=//p')
end=$(printf '%s\n' "$dates" | sed -n 's/^notAfter=//p')
echo "not_before=$(date -u -d "$start" +%s 2>/dev/null || true)"
echo "not_after=$(date -u -d "$end" +%s 2>/dev/null || true)"
`;

/** What NODE_CERT_SCRIPT printed, as the probe. */
export function parseNodeCertOutput(stdout: string): NodeCertProbe {
    const kv: Record<string, string> = {};
    for (const line of stdout.split("\n")) {
        const i = line.indexOf("=");
        if (i > 0) kv[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
    if (kv.error) return { error: kv.error };
    const num = (v: string | undefined) => (v && /^\d+$/.test(v) ? Number(v) : undefined);
    const notBefore = num(kv.not_before);
    const notAfter = num(kv.not_after);
    if (notAfter === undefined) return { error: "its expiry date could not be read" };
    return { notAfter, ...(notBefore !== undefined ? { notBefore } : {}) };
}

async function probeNodeCert(target: SshTarget): Promise<NodeCertProbe> {
    try {
        const r = await runScript(target, NODE_CERT_SCRIPT, 30);
        return parseNodeCertOutput(r.stdout);
    } catch (e) {
        return { error: oneLine((e as Error).message) };
    }
}

/**
 * Checks the registry from a node: https://host:port/v2/ with curl (trusting certs.d's CA as the
 * engine does; again without verification when that fails, to tell "answers with a bad certificate"
 * from "does not answer"), and the certificate's notAfter with openssl s_client.
 */
export function registryScript(reg: RegistryConfig): string {
    return `
host=${shq(reg.host)}
port=${shq(String(reg.port))}
if [ "$port" = 443 ]; then name="$host"; else name="$host:$port"; fi
ca="/etc/docker/certs.d/$name/ca.crt"
if [ -f "$ca" ]; then echo "ca=$ca"; else echo "ca=none"; fi
if ! command -v curl >/dev/null; then echo "curl_rc=127"; else
  err=$(mktemp)
  args=(-sS -o /dev/null -w '%{http_code}' --connect-timeout 5 --max-time 15)
  if [ -f "$ca" ]; then args+=(--cacert "$ca"); fi
  rc=0; code=$(curl "\${args[@]}" "https://$name/v2/" 2>"$err") || rc=$?
  echo "curl_rc=$rc"; echo "http=$code"
  echo "curl_err=$(head -c 300 "$err" | tr '\\n' ' ')"
  if [ "$rc" = 60 ] || [ "$rc" = 51 ]; then
    code=$(curl -k "\${args[@]}" "https://$name/v2/" 2>/dev/null) || true
    echo "http_insecure=$code"
  fi
  rm -f "$err"
fi
end=$(timeout 15 openssl s_client -connect "$host:$port" -servername "$host" </dev/null 2>/dev/null | openssl x509 -noout -enddate 2>/dev/null) || true
end="\${end#notAfter=}"
echo "notafter=$end"
if [ -n "$end" ]; then echo "notafter_epoch=$(date -u -d "$end" +%s 2>/dev/null || true)"; fi
`;
}

/** The standard input that checks the shared mount on a node: scripts/shared-storage.sh without NFS_SOURCE only checks. */
export function sharedMountScript(storage: SharedStorageConfig): string {
    return scriptStdin(readScript("shared-storage.sh"), { SHARED_PATH: storage.path, CHECK_TIMEOUT: String(storage.timeout) });
}

const SHARED_ERROR_STATE: Record<string, SharedMountState> = {
    "not-mounted": "missing", "read-only": "read-only", "not-answering": "not-answering", "not-writable": "not-writable",
};

/** What the check printed: its `DCCN_RESULT` line on stdout and, when it failed, its message on stderr. */
export function parseSharedMountOutput(storage: SharedStorageConfig, stdout: string, stderr: string): SharedMountProbe {
    const line = stdout.split("\n").reverse().find((l) => l.startsWith("DCCN_RESULT ")) ?? "";
    const values: Record<string, string> = {};
    for (const kv of line.split(/\s+/).slice(1)) {
        const i = kv.indexOf("=");
        if (i > 0) values[kv.slice(0, i)] = kv.slice(i + 1);
    }
    const base = { path: storage.path, timeout: storage.timeout };
    if (line && !values.error) return { ...base, state: "ok", ...(values.fstype ? { fstype: values.fstype } : {}) };
    const message = stderr.split("\n").map((l) => l.trim()).filter((l) => l.includes("error: ")).pop();
    const detail = message ? message.slice(message.indexOf("error: ") + 7) : line ? `check failed: ${values.error}` : "the check printed no result";
    return { ...base, state: SHARED_ERROR_STATE[values.error ?? ""] ?? "unknown", detail: oneLine(detail) };
}

/**
 * The shared mount on one node, in bounded time: the check gives up on the mount after its time-out
 * (`timeout -k 1` on the node), and the SSH call after 15 s more.
 */
async function probeSharedMount(target: SshTarget, storage: SharedStorageConfig): Promise<SharedMountProbe> {
    try {
        const r = await runScript(target, sharedMountScript(storage), storage.timeout + 15);
        return parseSharedMountOutput(storage, r.stdout, r.stderr);
    } catch (e) {
        return { path: storage.path, timeout: storage.timeout, state: "unknown", detail: oneLine((e as Error).message) };
    }
}

async function probeNode(ep: NodeEndpoint, storage?: SharedStorageConfig): Promise<NodeProbe> {
    if (!ep.target) return { hostname: ep.hostname, reachable: false, error: ep.error };
    const started = Date.now();
    const target = ep.target;
    try {
        const info = await swarmInfo(target);
        const ms = Date.now() - started;
        const [sharedStorage, certificate] = await Promise.all([
            storage && probeSharedMount(target, storage),
            info.state !== "inactive" ? probeNodeCert(target) : undefined,
        ]);
        return { hostname: ep.hostname, reachable: true, swarm: info, ms, ...(sharedStorage ? { sharedStorage } : {}), ...(certificate ? { certificate } : {}) };
    } catch (e) {
        return { hostname: ep.hostname, reachable: false, error: oneLine((e as Error).message), ms: Date.now() - started };
    }
}

function oneLine(s: string): string {
    return s.replace(/\s*\n\s*/g, "; ").trim();
}

export interface GatherOptions {
    now?: () => Date;
}

/**
 * Reach every node (in parallel), find a manager with a quorum among those that say they are
 * managers, read the swarm from it, and check the registry from a manager. Never throws for an
 * unreachable node or a lost quorum: those are what the report is for.
 */
export async function gatherStatus(setup: StatusSetup, opts: GatherOptions = {}): Promise<Observation> {
    const now = opts.now ?? (() => new Date());
    const checkedAt = now().toISOString();
    const probes = await Promise.all(setup.endpoints.map((ep) => probeNode(ep, setup.cluster.sharedStorage)));
    const targetOf = (h: string) => setup.endpoints.find((e) => e.hostname === h)?.target;

    // Managers first as the nodes report themselves, configured managers before others.
    const roleOrder = (h: string) => setup.cluster.nodes.find((n) => n.hostname === h)?.role === "manager" ? 0 : 1;
    const candidates = probes.filter((p) => p.swarm?.state === "active" && p.swarm.controlAvailable)
        .sort((a, b) => roleOrder(a.hostname) - roleOrder(b.hostname))
        .map((p) => targetOf(p.hostname)).filter((t): t is SshTarget => !!t);

    let manager: ManagerHandle | undefined;
    let snapshot: SwarmSnapshot | undefined;
    let swarmError: string | undefined;
    if (candidates.length === 0) {
        swarmError = probes.some((p) => p.swarm && p.swarm.state !== "inactive")
            ? "no reachable node is a swarm manager"
            : "no reachable node is in a swarm";
    } else {
        try {
            // A report of now: a leader election (seconds) is waited for, a lost quorum is not
            // (the providers' 60 s made status take a minute exactly when it is needed most).
            manager = await findManager(candidates, undefined, STATUS_SETTLE_SEC);
        } catch (e) {
            swarmError = oneLine((e as Error).message);
        }
    }

    const snapshotTask = (async () => {
        if (!manager) return;
        try {
            const r = await runScript(manager.target, SNAPSHOT_SCRIPT, 120);
            if (r.code !== 0) throw new Error(`exit ${r.code}: ${oneLine(r.stderr).slice(-300)}`);
            snapshot = parseSnapshotOutput(manager.target.name, r.stdout);
        } catch (e) {
            swarmError = `${manager.target.name}: reading nodes, services and tasks failed: ${oneLine((e as Error).message)}`;
        }
    })();

    const registryTask = (async (): Promise<RegistryProbe> => {
        const reg = setup.registry;
        if (!reg) return { configured: false };
        // A manager: the one with the quorum, else any reachable configured manager, else any reachable node.
        const reachable = probes.filter((p) => p.reachable);
        const from = manager?.target
            ?? targetOf(reachable.find((p) => roleOrder(p.hostname) === 0)?.hostname ?? "")
            ?? targetOf(reachable[0]?.hostname ?? "");
        if (!from) return { configured: true, host: reg.host, port: reg.port, error: "no node could be reached to check the registry from" };
        try {
            const r = await runScript(from, registryScript(reg), 90);
            if (r.code !== 0) throw new Error(`exit ${r.code}: ${oneLine(r.stderr).slice(-300)}`);
            return parseRegistryOutput(reg, from.name, r.stdout);
        } catch (e) {
            return { configured: true, host: reg.host, port: reg.port, checkedFrom: from.name, error: oneLine((e as Error).message) };
        }
    })();

    const [registry] = await Promise.all([registryTask, snapshotTask]);
    return {
        stack: setup.stack,
        environment: setup.cluster.environment,
        checkedAt,
        probes,
        snapshot,
        swarmError,
        registry,
    };
}

// ================================================================== evaluation (pure)

/**
 * Ready: SSH answers and the managers list the node Ready. Down: SSH does not answer, or the managers
 * list it down. Absent: SSH answers but the node is not in the swarm. Unknown: SSH answers but no
 * manager with a quorum could say. Locked: its engine restarted under autolock and waits for the unlock key.
 */
export type NodeHealthState = "Ready" | "Down" | "Absent" | "Unknown" | "Locked";

export interface NodeReport {
    hostname: string;
    /** Configured address, or the swarm's address for a node that is not configured. */
    address: string;
    /** False for a node that is in the swarm but not in the stack config. */
    configured: boolean;
    state: NodeHealthState;
    ready: boolean;
    ssh: { ok: boolean; error?: string };
    /** The engine's own view (docker info): inactive, active, pending, error, locked. */
    localSwarmState?: string;
    swarmNodeId?: string;
    /** The managers' view (docker node ls): ready, down, ...; undefined when not listed or unknown. */
    swarmStatus?: string;
    role?: string;
    configuredRole?: string;
    availability?: string;
    configuredAvailability?: string;
    /** Labels on the swarm node (all of them). */
    labels: Record<string, string>;
    /** Labels the config sets on the node. */
    configuredLabels: Record<string, string>;
    /** Manager nodes: leader, reachable or unreachable (Raft). */
    managerStatus?: "leader" | "reachable" | "unreachable" | "unknown";
    engineVersion?: string;
    /** The shared mount (`sharedStorage`) on the node; undefined when the stack has none or SSH failed. */
    sharedStorage?: SharedMountProbe;
    /** The node's swarm certificate: when it expires, and whether the swarm's current CA issued it. */
    certificate?: NodeCertReport;
    problems: string[];
    warnings: string[];
}

export interface NodeCertReport {
    /** ISO time, when known. */
    notAfter?: string;
    daysLeft?: number;
    /** Its whole lifetime, days (notAfter - notBefore). */
    lifetimeDays?: number;
    /** Whether the CA that issues node certificates now issued it; undefined when the swarm could not say. */
    fromCurrentCa?: boolean;
    error?: string;
}

/** The swarm's own security, as its manager reports it. */
export interface SecurityReport {
    /** Undefined: the swarm could not be read. */
    autolock?: boolean;
    nodeCertExpiryDays?: number;
    caRotationInProgress?: boolean;
    /** Nodes whose certificate the current CA did not issue. */
    nodesWithPreviousCa: string[];
    /** Configured managers whose engine is locked (autolock). */
    lockedNodes: string[];
}

export interface QuorumReport {
    /** Managers the swarm has (its node table), or the configured count when it cannot be read. */
    managers: number;
    configuredManagers: number;
    /** Managers Raft reports reachable (or that answer SSH as managers, when the table cannot be read). */
    reachable: number;
    /** Managers that must agree: a majority. */
    needed: number;
    /** reachable - needed: how many more managers may be lost with the swarm still working; negative: quorum lost. */
    margin: number;
    leader?: string;
    ok: boolean;
    /** Manager the report was read from. */
    readFrom?: string;
    error?: string;
}

export interface TaskPlacement {
    /** Hostname of the node the task is assigned to; empty when not scheduled. */
    node: string;
    state: string;
    slot?: number;
    error?: string;
    /** Counted as running: running on a node that is not down. */
    counted: boolean;
}

export interface ServiceReport {
    name: string;
    stack?: string;
    mode: ServiceMode;
    image: string;
    /** Tasks wanted: replicas (replicated) or one per eligible node (global); undefined for jobs. */
    desired?: number;
    /** Tasks running on a node that is not down. */
    running: number;
    healthy: boolean;
    tasks: TaskPlacement[];
    problems: string[];
}

export interface RegistryReport {
    configured: boolean;
    /** "not configured", "ok" or "unhealthy". */
    status: string;
    host?: string;
    port?: number;
    url?: string;
    checkedFrom?: string;
    httpStatus?: number;
    answering?: boolean;
    tlsVerified?: boolean;
    caFile?: string;
    certNotAfter?: string;
    certDaysLeft?: number;
    healthy: boolean;
    problems: string[];
}

export interface StatusReport {
    project: string;
    stack: string;
    environment: string;
    checkedAt: string;
    healthy: boolean;
    /** Everything that makes the cluster unhealthy, one line each. */
    problems: string[];
    /** Worth a look, not unhealthy (label drift, stale node entries, nodes not in the config). */
    warnings: string[];
    swarm: { exists: boolean; readFrom?: string; error?: string };
    quorum: QuorumReport;
    nodes: NodeReport[];
    services: ServiceReport[];
    registry: RegistryReport;
    security: SecurityReport;
}

const READYISH = new Set(["ready"]);

function sameLabels(want: Record<string, string>, have: Record<string, string>): string[] {
    const diffs: string[] = [];
    for (const [k, v] of Object.entries(want)) {
        if (!(k in have)) diffs.push(`${k} missing`);
        else if (have[k] !== v) diffs.push(`${k}=${have[k]} (configured ${v})`);
    }
    return diffs;
}

/** The cluster's health from an observation; `now` is for the certificate's days left. */
export function evaluateStatus(cluster: ClusterConfig, obs: Observation, now: Date = new Date(obs.checkedAt)): StatusReport {
    const snap = obs.snapshot;
    const warnings: string[] = [];
    const byId = new Map((snap?.nodes ?? []).map((n) => [n.id, n]));
    const claimed = new Set<string>();

    // ---- nodes in the config
    const nodes: NodeReport[] = cluster.nodes.map((cfg) => {
        const probe = obs.probes.find((p) => p.hostname === cfg.hostname);
        const r: NodeReport = {
            hostname: cfg.hostname,
            address: cfg.address,
            configured: true,
            state: "Unknown",
            ready: false,
            ssh: probe?.reachable ? { ok: true } : { ok: false, error: probe?.error ?? "not probed" },
            localSwarmState: probe?.swarm?.state,
            configuredRole: cfg.role,
            configuredAvailability: cfg.availability,
            labels: {},
            configuredLabels: { ...cfg.labels },
            engineVersion: probe?.swarm?.engineVersion || undefined,
            problems: [],
            warnings: [],
        };
        // The managers' entry: by the node's own ID when it answered, else by hostname (Ready first).
        let entry: SwarmNodeView | undefined;
        if (snap) {
            const id = probe?.swarm?.state === "active" ? probe.swarm.nodeId : undefined;
            entry = id ? byId.get(id) : undefined;
            const sameName = snap.nodes.filter((n) => n.hostname === cfg.hostname);
            if (!entry && probe?.swarm?.state !== "inactive") {
                entry = sameName.find((n) => READYISH.has(n.status)) ?? sameName[0];
            }
            for (const n of sameName) claimed.add(n.id);
            if (entry) claimed.add(entry.id);
            const stale = sameName.filter((n) => n !== entry);
            if (stale.length > 0) {
                r.warnings.push(`${stale.length} other node entr${stale.length === 1 ? "y" : "ies"} named ${cfg.hostname} ` +
                    `(${stale.map((n) => `${n.id.slice(0, 12)} ${n.status}`).join(", ")}) in the swarm's node table`);
            }
        }
        if (entry) {
            r.swarmNodeId = entry.id;
            r.swarmStatus = entry.status;
            r.role = entry.role;
            r.availability = entry.availability;
            r.labels = { ...entry.labels };
            r.engineVersion = entry.engineVersion || r.engineVersion;
            if (entry.managerStatus) {
                r.managerStatus = entry.managerStatus.leader ? "leader"
                    : entry.managerStatus.reachability === "reachable" ? "reachable"
                        : entry.managerStatus.reachability === "unreachable" ? "unreachable" : "unknown";
            }
        }

        if (!r.ssh.ok) {
            r.state = "Down";
            r.problems.push(`${cfg.hostname} is Down: ${r.ssh.error}`);
        } else if (probe?.swarm?.state === "locked") {
            r.state = "Locked";
            r.problems.push(`${cfg.hostname} is locked (autolock): its engine restarted and its swarm waits for the unlock key. ${LOCKED_HINT.replace("<env>", obs.stack)}`);
        } else if (probe?.swarm?.state === "inactive") {
            r.state = "Absent";
            r.problems.push(`${cfg.hostname} is not in the swarm (its engine's swarm state is inactive)`);
        } else if (!snap) {
            r.state = "Unknown";
            r.problems.push(`${cfg.hostname}: no manager with a quorum could say whether it is Ready (local swarm state ${probe?.swarm?.state ?? "?"})`);
        } else if (!entry) {
            r.state = "Absent";
            r.problems.push(`${cfg.hostname} is not in the swarm's node table (local swarm state ${probe?.swarm?.state ?? "?"})`);
        } else if (entry.status === "ready") {
            r.state = "Ready";
        } else {
            r.state = entry.status === "down" || entry.status === "disconnected" ? "Down" : "Unknown";
            r.problems.push(`${cfg.hostname} is ${entry.status} in the swarm${entry.message ? ` (${entry.message})` : ""}`);
        }
        r.ready = r.state === "Ready";
        if (entry) {
            if (entry.role !== cfg.role) r.problems.push(`${cfg.hostname} is a ${entry.role}, configured as ${cfg.role}`);
            if (entry.availability !== cfg.availability) {
                r.problems.push(`${cfg.hostname} availability is ${entry.availability}, configured ${cfg.availability}`);
            }
            const diff = sameLabels(cfg.labels, entry.labels);
            if (diff.length > 0) r.warnings.push(`${cfg.hostname} labels differ from the config: ${diff.join(", ")}`);
        }
        if (probe?.swarm && probe.swarm.state !== "active" && probe.swarm.state !== "inactive" && probe.swarm.state !== "locked") {
            r.problems.push(`${cfg.hostname}: its engine's swarm state is ${probe.swarm.state}`);
        }
        const shared = probe?.sharedStorage;
        if (shared) {
            r.sharedStorage = shared;
            if (shared.state !== "ok") r.problems.push(sharedMountProblem(cfg.hostname, shared));
        }
        if (probe?.certificate) {
            r.certificate = nodeCertReport(probe.certificate, entry, snap?.cluster, now);
            const c = r.certificate;
            if (c.daysLeft !== undefined && c.notAfter && Date.parse(c.notAfter) <= now.getTime()) {
                r.problems.push(`${cfg.hostname}: its swarm certificate expired ${c.notAfter}: the node cannot reach the managers; ` +
                    "make it leave (`docker swarm leave --force`) and `pulumi up --refresh` joins it again");
            } else if (c.lifetimeDays && c.daysLeft !== undefined && c.daysLeft < c.lifetimeDays / 5) {
                // The swarm renews a certificate at 50-80 % of its lifetime: less than a fifth left is overdue.
                r.warnings.push(`${cfg.hostname}: its swarm certificate expires ${c.notAfter} (${c.daysLeft} days left of ${c.lifetimeDays}) and was not renewed: ` +
                    "is the node reaching the managers?");
            }
        }
        return r;
    });

    // ---- nodes in the swarm that the config does not list
    for (const n of snap?.nodes ?? []) {
        if (claimed.has(n.id)) continue;
        const r: NodeReport = {
            hostname: n.hostname,
            address: n.addr,
            configured: false,
            state: n.status === "ready" ? "Ready" : n.status === "down" || n.status === "disconnected" ? "Down" : "Unknown",
            ready: n.status === "ready",
            ssh: { ok: false, error: "not in the stack config; not probed" },
            swarmNodeId: n.id,
            swarmStatus: n.status,
            role: n.role,
            availability: n.availability,
            labels: { ...n.labels },
            configuredLabels: {},
            managerStatus: n.managerStatus ? (n.managerStatus.leader ? "leader"
                : n.managerStatus.reachability === "reachable" ? "reachable"
                    : n.managerStatus.reachability === "unreachable" ? "unreachable" : "unknown") : undefined,
            engineVersion: n.engineVersion || undefined,
            problems: [],
            warnings: [`${n.hostname} (${n.id.slice(0, 12)}, ${n.status}) is in the swarm but not in the stack config`],
        };
        nodes.push(r);
    }
    for (const n of nodes) warnings.push(...n.warnings);

    // ---- managers and quorum
    const configuredManagers = cluster.nodes.filter((n) => n.role === "manager").length;
    let quorum: QuorumReport;
    if (snap) {
        const managers = snap.nodes.filter((n) => n.role === "manager");
        const reachable = managers.filter((n) => n.managerStatus?.reachability === "reachable").length;
        const needed = quorumSize(managers.length);
        quorum = {
            managers: managers.length,
            configuredManagers,
            reachable,
            needed,
            margin: reachable - needed,
            leader: managers.find((n) => n.managerStatus?.leader)?.hostname,
            ok: managers.length > 0 && reachable >= needed,
            readFrom: snap.manager,
        };
    } else {
        const answering = obs.probes.filter((p) => p.reachable && p.swarm?.state === "active" && p.swarm.controlAvailable).length;
        const managers = Math.max(configuredManagers, answering);
        const needed = quorumSize(managers);
        quorum = {
            managers,
            configuredManagers,
            reachable: answering,
            needed,
            margin: answering - needed,
            ok: false,
            error: obs.swarmError ?? "the swarm could not be read",
        };
    }
    const problems: string[] = [];
    for (const n of nodes) problems.push(...n.problems);
    if (!quorum.ok) {
        problems.push(snap
            ? `manager quorum lost: ${quorum.reachable} of ${quorum.managers} managers reachable, ${quorum.needed} needed`
            : `no manager with a quorum: ${quorum.error}`);
    }

    // ---- services
    const nodeById = new Map((snap?.nodes ?? []).map((n) => [n.id, n]));
    const services: ServiceReport[] = (snap?.services ?? []).map((s) => {
        const all = (snap?.tasks ?? []).filter((t) => t.serviceId === s.id);
        // Meant to run: desired running, or ready (a replacement waiting out its restart delay).
        const tasks = all.filter((t) => t.desiredState === "running" || t.desiredState === "ready");
        const onLiveNode = (t: TaskView) => !!t.nodeId && nodeById.has(t.nodeId) && nodeById.get(t.nodeId)?.status !== "down";
        const running = tasks.filter((t) => t.state === "running" && onLiveNode(t)).length;
        let desired: number | undefined;
        if (s.mode === "replicated") desired = s.replicas ?? 0;
        else if (s.mode === "global") {
            desired = new Set(tasks.filter((t) => t.nodeId && nodeById.get(t.nodeId)?.status !== "down").map((t) => t.nodeId)).size;
        }
        const healthy = desired === undefined || running === desired;
        const sp: ServiceReport = {
            name: s.name,
            stack: s.stack,
            mode: s.mode,
            image: s.image,
            desired,
            running,
            healthy,
            tasks: tasks.map((t) => ({
                node: t.nodeId ? nodeById.get(t.nodeId)?.hostname ?? t.nodeId.slice(0, 12) : "",
                state: t.state,
                slot: t.slot,
                error: t.error,
                counted: t.state === "running" && onLiveNode(t),
            })).sort((a, b) => (a.slot ?? 0) - (b.slot ?? 0) || a.node.localeCompare(b.node)),
            problems: [],
        };
        if (!healthy) {
            // Why: what the tasks meant to run say, then the latest failure in the task history.
            const why = [...new Set(tasks.filter((t) => t.state !== "running").map((t) => t.error || t.message || t.state))];
            const failed = all.filter((t) => t.error && !tasks.includes(t))
                .sort((a, b) => (Date.parse(b.timestamp ?? "") || 0) - (Date.parse(a.timestamp ?? "") || 0))[0];
            if (failed?.error && !why.includes(failed.error)) why.push(`last failure: ${failed.error}`);
            why.splice(3);
            sp.problems.push(`service ${s.name}: ${running}/${desired} running` + (why.length ? ` (${why.join("; ")})` : ""));
        }
        return sp;
    }).sort((a, b) => a.name.localeCompare(b.name));
    for (const s of services) problems.push(...s.problems);

    // ---- registry
    const registry = evaluateRegistry(obs.registry, now);
    problems.push(...registry.problems);

    // ---- the swarm's own security
    const cl = snap?.cluster;
    const security: SecurityReport = {
        ...(cl ? { autolock: cl.autolock, caRotationInProgress: cl.caRotationInProgress } : {}),
        ...(cl && cl.nodeCertExpiry > 0 ? { nodeCertExpiryDays: Math.round((cl.nodeCertExpiry / 86400) * 100) / 100 } : {}),
        nodesWithPreviousCa: nodes.filter((n) => n.certificate?.fromCurrentCa === false).map((n) => n.hostname),
        lockedNodes: nodes.filter((n) => n.state === "Locked").map((n) => n.hostname),
    };
    if (cl?.caRotationInProgress) {
        warnings.push(`the swarm's root CA rotation is in progress` +
            (security.nodesWithPreviousCa.length ? `: ${security.nodesWithPreviousCa.join(", ")} still hold a certificate from the previous CA` : ""));
    } else if (security.nodesWithPreviousCa.length > 0) {
        warnings.push(`${security.nodesWithPreviousCa.join(", ")}: certificate not issued by the swarm's current CA (a node that was down during a CA rotation gets one when it is back)`);
    }

    return {
        project: PROJECT,
        stack: obs.stack,
        environment: obs.environment,
        checkedAt: obs.checkedAt,
        healthy: problems.length === 0,
        problems,
        warnings,
        swarm: { exists: !!snap || obs.probes.some((p) => p.swarm?.state === "active"), readFrom: snap?.manager, error: snap ? undefined : obs.swarmError },
        quorum,
        nodes,
        services,
        registry,
        security,
    };
}

/** A node's certificate: expiry, lifetime, and whether the swarm's current CA issued it. */
export function nodeCertReport(c: NodeCertProbe, entry: SwarmNodeView | undefined, cluster: ClusterSecurityView | undefined, now: Date): NodeCertReport {
    if (c.error || c.notAfter === undefined) return { error: c.error ?? "expiry unknown" };
    const day = 86_400;
    const r: NodeCertReport = {
        notAfter: new Date(c.notAfter * 1000).toISOString(),
        daysLeft: Math.floor((c.notAfter - now.getTime() / 1000) / day),
    };
    if (c.notBefore !== undefined) r.lifetimeDays = Math.round(((c.notAfter - c.notBefore) / day) * 10) / 10;
    if (entry?.certIssuerPublicKey && cluster?.caPublicKey) r.fromCurrentCa = entry.certIssuerPublicKey === cluster.caPublicKey;
    return r;
}

/** The problem line for a shared mount that is not ok, naming the node and the path. */
export function sharedMountProblem(hostname: string, m: SharedMountProbe): string {
    const what: Record<SharedMountState, string> = {
        "ok": "ok",
        "missing": "is missing (not a mount point)",
        "read-only": "is read-only",
        "not-answering": `does not answer within ${m.timeout} s (a hanging mount)`,
        "not-writable": "is not writable for root",
        "unknown": "could not be checked",
    };
    return `${hostname}: shared storage ${m.path} ${what[m.state]}${m.detail ? `: ${m.detail}` : ""}`;
}

/** A node's certificate expiry for the table: date and days left, flagged when the current CA did not issue it. */
function certText(n: NodeReport): string {
    const c = n.certificate;
    if (!c) return "-";
    if (!c.notAfter) return "unknown";
    return `${c.notAfter.slice(0, 10)} (${c.daysLeft} d)${c.fromCurrentCa === false ? " [previous CA]" : ""}`;
}

/** The swarm's security settings in one line. */
function securityText(s: SecurityReport): string {
    if (s.autolock === undefined) return "unknown (the swarm could not be read)" + (s.lockedNodes.length ? `; locked: ${s.lockedNodes.join(", ")}` : "");
    return `autolock ${s.autolock ? "on" : "off"}` +
        (s.lockedNodes.length ? ` (locked: ${s.lockedNodes.join(", ")})` : "") +
        `, node certificates valid ${s.nodeCertExpiryDays ?? "?"} days` +
        `, root CA ${s.caRotationInProgress ? "ROTATION IN PROGRESS" : "steady"}` +
        (s.nodesWithPreviousCa.length ? `, previous CA on ${s.nodesWithPreviousCa.join(", ")}` : "");
}

/** A node's shared mount in a word or two, for the table. */
function sharedText(n: NodeReport): string {
    const m = n.sharedStorage;
    if (!m) return "-";
    return m.state === "ok" ? `ok${m.fstype ? ` (${m.fstype})` : ""}` : m.state === "not-answering" ? `NOT ANSWERING (${m.timeout} s)` : m.state.toUpperCase();
}

export function evaluateRegistry(p: RegistryProbe, now: Date): RegistryReport {
    if (!p.configured) return { configured: false, status: "not configured", healthy: true, problems: [] };
    const name = p.port === 443 ? p.host : `${p.host}:${p.port}`;
    const r: RegistryReport = {
        configured: true,
        status: "ok",
        host: p.host,
        port: p.port,
        url: `https://${name}/v2/`,
        checkedFrom: p.checkedFrom,
        httpStatus: p.httpStatus,
        tlsVerified: p.tlsVerified,
        caFile: p.caFile,
        certNotAfter: p.notAfter,
        healthy: false,
        problems: [],
    };
    r.answering = p.httpStatus === 200 || p.httpStatus === 401;
    if (p.notAfterEpoch !== undefined) {
        r.certDaysLeft = Math.floor((p.notAfterEpoch * 1000 - now.getTime()) / 86_400_000);
    }
    if (p.error) {
        r.problems.push(`registry ${name}: ${p.error}`);
    } else {
        if (!r.answering) {
            r.problems.push(`registry ${name}: ${r.url} does not answer 200 or 401` +
                (p.httpStatus ? ` (HTTP ${p.httpStatus})` : "") + (p.curlError ? `: ${p.curlError}` : "") +
                (p.checkedFrom ? ` (checked from ${p.checkedFrom})` : ""));
        }
        if (p.tlsVerified === false) {
            r.problems.push(`registry ${name}: its TLS certificate does not verify on ${p.checkedFrom}` +
                (p.caFile ? ` with ${p.caFile}` : " (no /etc/docker/certs.d CA there)") + (p.curlError ? `: ${p.curlError}` : ""));
        }
        if (r.certDaysLeft === undefined) {
            if (r.answering || p.notAfter) r.problems.push(`registry ${name}: could not read its certificate's expiry date`);
        } else if (r.certDaysLeft <= CERT_MIN_DAYS) {
            r.problems.push(`registry ${name}: certificate ${r.certDaysLeft < 0 ? "expired" : "expires"} ${p.notAfter} ` +
                `(${r.certDaysLeft} days; more than ${CERT_MIN_DAYS} needed)`);
        }
    }
    r.healthy = r.problems.length === 0;
    r.status = r.healthy ? "ok" : "unhealthy";
    return r;
}

// ================================================================== rendering (pure)

function pad(rows: string[][]): string {
    const widths: number[] = [];
    for (const row of rows) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
    return rows.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]))).join("  ").trimEnd()).join("\n");
}

function labelText(labels: Record<string, string>): string {
    return Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(",") || "-";
}

/** Role as the swarm has it, flagged when it differs from the config; the configured one for a node not in the swarm. */
function roleText(n: NodeReport): string {
    if (!n.role) return n.configuredRole ? `${n.configuredRole} (configured)` : "-";
    let s = n.role;
    if (n.managerStatus === "leader") s += " (leader)";
    else if (n.managerStatus === "unreachable") s += " (unreachable)";
    if (n.configuredRole && n.role !== n.configuredRole) s += ` [config: ${n.configuredRole}]`;
    return s;
}

function availabilityText(n: NodeReport): string {
    if (!n.availability) return n.configuredAvailability ? `${n.configuredAvailability} (configured)` : "-";
    let s = n.availability;
    if (n.configuredAvailability && n.availability !== n.configuredAvailability) s += ` [config: ${n.configuredAvailability}]`;
    return s;
}

function tasksOn(report: StatusReport, hostname: string): { service: string; count: number; states: string[] }[] {
    const out: { service: string; count: number; states: string[] }[] = [];
    for (const s of report.services) {
        const mine = s.tasks.filter((t) => t.node === hostname);
        if (mine.length > 0) {
            out.push({ service: s.name, count: mine.length, states: [...new Set(mine.map((t) => (t.counted || t.state !== "running" ? t.state : "node down")))] });
        }
    }
    return out;
}

/** The report as text for a terminal. */
export function renderTable(r: StatusReport): string {
    const out: string[] = [];
    out.push(`${r.project} status: stack ${r.stack} (environment ${r.environment}) at ${r.checkedAt}: ${r.healthy ? "HEALTHY" : "UNHEALTHY"}`);
    out.push("");
    out.push("NODES");
    // The SHARED column (the shared mount, `sharedStorage`) when the stack has shared storage.
    const shared = r.nodes.some((n) => n.sharedStorage);
    const only = <T>(on: boolean, ...v: T[]) => (on ? v : []);
    out.push(pad([
        ["HOSTNAME", "ADDRESS", "STATE", "ROLE", "AVAILABILITY", "ENGINE", ...only(shared, "SHARED"), "LABELS", "CERT EXPIRES", "NOTE"],
        ...r.nodes.map((n) => [
            n.hostname, n.address, n.state, roleText(n), availabilityText(n), n.engineVersion ?? "-", ...only(shared, sharedText(n)), labelText(n.labels), certText(n),
            !n.configured ? "not in config" : !n.ssh.ok ? `ssh: ${n.ssh.error}`
                : n.state === "Absent" ? `not in swarm (${n.localSwarmState ?? "?"})` : "",
        ]),
    ]));
    out.push("");
    const q = r.quorum;
    out.push(`MANAGERS  ${q.reachable} of ${q.managers} reachable (configured ${q.configuredManagers}), quorum ${q.needed}, ` +
        (q.ok ? `margin ${q.margin} (may lose ${q.margin} more)` : `QUORUM NOT AVAILABLE (margin ${q.margin})`) +
        (q.leader ? `, leader ${q.leader}` : "") + (q.readFrom ? `, read from ${q.readFrom}` : "") + (q.error ? `: ${q.error}` : ""));
    out.push(`SECURITY  ${securityText(r.security)}`);
    out.push("");
    out.push("SERVICES");
    if (r.services.length === 0) {
        out.push(r.swarm.readFrom ? "  (none)" : "  (unknown: the swarm could not be read)");
    } else {
        out.push(pad([
            ["NAME", "MODE", "RUNNING/DESIRED", "OK", "NODES", "IMAGE"],
            ...r.services.map((s) => [
                s.name, s.mode, `${s.running}/${s.desired ?? "-"}`, s.healthy ? "ok" : "NO",
                summarizeNodes(s.tasks) || "-", s.image,
            ]),
        ]));
    }
    out.push("");
    const g = r.registry;
    if (!g.configured) out.push("REGISTRY  registry: not configured");
    else {
        out.push(`REGISTRY  ${g.url} ${g.healthy ? "ok" : "UNHEALTHY"}: HTTP ${g.httpStatus ?? "-"}` +
            `, TLS ${g.tlsVerified === undefined ? "?" : g.tlsVerified ? "verified" : "NOT verified"}` +
            `, certificate ${g.certDaysLeft === undefined ? "expiry unknown" : `expires in ${g.certDaysLeft} days (${g.certNotAfter})`}` +
            (g.checkedFrom ? `, checked from ${g.checkedFrom}` : ""));
    }
    if (r.problems.length > 0) {
        out.push("");
        out.push("PROBLEMS");
        for (const p of r.problems) out.push(`  - ${p}`);
    }
    if (r.warnings.length > 0) {
        out.push("");
        out.push("WARNINGS");
        for (const w of r.warnings) out.push(`  - ${w}`);
    }
    return out.join("\n") + "\n";
}

function summarizeNodes(tasks: TaskPlacement[]): string {
    const counts = new Map<string, number>();
    for (const t of tasks) {
        const key = (t.node || "(unscheduled)") + (t.counted ? "" : t.state === "running" ? ":node-down" : `:${t.state}`);
        counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return [...counts].map(([k, c]) => (c > 1 ? `${k}x${c}` : k)).join(",");
}

/** The report as JSON for monitoring systems (a stable shape: see StatusReport). */
export function renderJson(r: StatusReport): string {
    return JSON.stringify(r, null, 2) + "\n";
}

// ---------------------------------------------------------------- SVG

export function xmlEscape(s: string): string {
    return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" }[c] as string))
        // Characters XML 1.0 does not allow.
        .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, "?");
}

const STATE_COLOR: Record<NodeHealthState, string> = { Ready: "#2e7d32", Down: "#c62828", Absent: "#616161", Unknown: "#ef6c00", Locked: "#6a1b9a" };
const AVAILABILITY_FILL: Record<string, string> = { active: "#ffffff", drain: "#eeeeee", pause: "#fff8e1" };
const PALETTE = ["#1565c0", "#6a1b9a", "#00838f", "#ad1457", "#4e342e", "#558b2f", "#283593", "#00695c", "#d84315", "#37474f"];

const CARD_W = 250;
const LINE = 16;
const GAP = 16;
const PER_ROW = 4;

function truncate(s: string, n: number): string {
    return s.length <= n ? s : s.slice(0, n - 1) + "…";
}

/**
 * A picture of the cluster: managers and workers in two groups, each node a card with its state,
 * role, availability, address, engine and labels, and the services whose tasks it runs; below, every
 * service with its running/desired count. Self-contained SVG (no scripts, no external references).
 */
export function renderSvg(r: StatusReport): string {
    const colorOf = new Map(r.services.map((s, i) => [s.name, PALETTE[i % PALETTE.length]]));
    const role = (n: NodeReport) => (n.role ?? n.configuredRole) === "manager" ? "manager" : "worker";
    const groups: { title: string; nodes: NodeReport[] }[] = [
        { title: "Managers", nodes: r.nodes.filter((n) => role(n) === "manager") },
        { title: "Workers", nodes: r.nodes.filter((n) => role(n) === "worker") },
    ];
    const cardLines = (n: NodeReport) => {
        const lines: { text: string; color?: string; bold?: boolean; swatch?: string }[] = [];
        lines.push({ text: n.address });
        lines.push({ text: `role: ${roleText(n)}` });
        lines.push({ text: `availability: ${availabilityText(n)}` });
        lines.push({ text: `engine: ${n.engineVersion ?? "-"}` });
        if (n.sharedStorage) {
            lines.push({ text: `shared ${n.sharedStorage.path}: ${sharedText(n)}`, ...(n.sharedStorage.state === "ok" ? {} : { color: STATE_COLOR.Down }) });
        }
        if (!n.ssh.ok && n.configured) lines.push({ text: `ssh: ${n.ssh.error ?? "no answer"}`, color: STATE_COLOR.Down });
        if (!n.configured) lines.push({ text: "not in the stack config", color: STATE_COLOR.Unknown });
        if (n.certificate?.notAfter) lines.push({ text: `certificate: ${certText(n)}`, ...(n.certificate.fromCurrentCa === false ? { color: STATE_COLOR.Unknown } : {}) });
        if (n.state === "Absent") lines.push({ text: `not in the swarm (${n.localSwarmState ?? "?"})`, color: STATE_COLOR.Absent });
        // In the swarm: its labels, and configured ones it lacks; out of it: the configured labels.
        const inSwarm = n.swarmNodeId !== undefined;
        const labels = inSwarm ? n.labels : n.configuredLabels;
        lines.push({ text: inSwarm ? "labels:" : "labels (configured):", bold: true });
        const keys = Object.keys(labels).sort();
        const lacking = inSwarm ? Object.keys(n.configuredLabels).filter((k) => n.labels[k] !== n.configuredLabels[k]).sort() : [];
        if (keys.length === 0 && lacking.length === 0) lines.push({ text: "  (none)" });
        for (const k of keys) lines.push({ text: `  ${k}=${labels[k]}` });
        for (const k of lacking) lines.push({ text: `  ${k}=${n.configuredLabels[k]} (missing)`, color: STATE_COLOR.Unknown });
        lines.push({ text: "tasks:", bold: true });
        const tasks = tasksOn(r, n.hostname);
        if (tasks.length === 0) lines.push({ text: "  (none)" });
        for (const t of tasks) {
            const st = t.states.filter((s) => s !== "running");
            lines.push({ text: `${t.service}${t.count > 1 ? ` ×${t.count}` : ""}${st.length ? ` (${st.join(",")})` : ""}`, swatch: colorOf.get(t.service) });
        }
        return lines;
    };

    const parts: string[] = [];
    let y = 0;
    const title = `${r.project} · stack ${r.stack} (${r.environment}) · ${r.healthy ? "HEALTHY" : "UNHEALTHY"}`;
    parts.push(`<text x="${GAP}" y="${y + 28}" font-size="18" font-weight="bold" fill="${r.healthy ? STATE_COLOR.Ready : STATE_COLOR.Down}">${xmlEscape(title)}</text>`);
    const q = r.quorum;
    const sub = `checked ${r.checkedAt} · managers ${q.reachable}/${q.managers} reachable, quorum ${q.needed}, ` +
        (q.ok ? `margin ${q.margin}` : "QUORUM NOT AVAILABLE") + (q.leader ? `, leader ${q.leader}` : "") +
        ` · registry: ${r.registry.configured ? `${r.registry.host}:${r.registry.port} ${r.registry.status}` +
            (r.registry.certDaysLeft !== undefined ? `, certificate ${r.registry.certDaysLeft} days` : "") : "not configured"}`;
    parts.push(`<text x="${GAP}" y="${y + 48}" font-size="12" fill="#333">${xmlEscape(sub)}</text>`);
    y += 64;

    // Text widths are estimated (0.6 em a character): the picture grows to fit its longest line.
    const textWidth = (t: string, size: number, x: number) => x + Math.ceil(t.length * size * 0.6) + GAP;
    let width = Math.max(GAP * 4 + CARD_W, textWidth(title, 18, GAP), textWidth(sub, 12, GAP));
    for (const g of groups) {
        const rows: NodeReport[][] = [];
        for (let i = 0; i < g.nodes.length; i += PER_ROW) rows.push(g.nodes.slice(i, i + PER_ROW));
        const groupTop = y;
        y += 26;
        const inner: string[] = [];
        for (const row of rows) {
            const h = Math.max(...row.map((n) => cardLines(n).length)) * LINE + 40;
            row.forEach((n, i) => {
                const x = GAP * 2 + i * (CARD_W + GAP);
                const lines = cardLines(n);
                const color = STATE_COLOR[n.state];
                const fill = AVAILABILITY_FILL[n.availability ?? ""] ?? "#ffffff";
                inner.push(`<g class="node" id="node-${xmlEscape(n.hostname)}">`);
                inner.push(`<title>${xmlEscape(`${n.hostname}: ${n.state}${n.problems.length ? " — " + n.problems.join("; ") : ""}`)}</title>`);
                inner.push(`<rect x="${x}" y="${y}" width="${CARD_W}" height="${h}" rx="6" fill="${fill}" stroke="${color}" stroke-width="2"${n.configured ? "" : ' stroke-dasharray="6 4"'}/>`);
                inner.push(`<rect x="${x}" y="${y}" width="${CARD_W}" height="24" rx="6" fill="${color}"/>`);
                inner.push(`<text x="${x + 8}" y="${y + 17}" font-size="13" font-weight="bold" fill="#fff">${xmlEscape(truncate(n.hostname, 22))}</text>`);
                inner.push(`<text x="${x + CARD_W - 8}" y="${y + 17}" font-size="12" font-weight="bold" fill="#fff" text-anchor="end">${xmlEscape(n.state)}</text>`);
                lines.forEach((l, j) => {
                    const ly = y + 24 + 16 + j * LINE;
                    let tx = x + 8;
                    const indented = l.text.startsWith("  ");
                    if (indented) tx += 10;
                    if (l.swatch) {
                        inner.push(`<rect x="${tx + 6}" y="${ly - 9}" width="10" height="10" fill="${l.swatch}"/>`);
                        tx += 22;
                    }
                    inner.push(`<text x="${tx}" y="${ly}" font-size="11"${l.bold ? ' font-weight="bold"' : ""} fill="${l.color ?? "#222"}">${xmlEscape(truncate(indented ? l.text.trim() : l.text, 38))}</text>`);
                });
                inner.push(`</g>`);
            });
            y += h + GAP;
        }
        if (rows.length === 0) {
            inner.push(`<text x="${GAP * 2}" y="${y + 14}" font-size="11" fill="#666">(none)</text>`);
            y += 24;
        }
        const groupW = GAP * 2 + Math.max(1, Math.min(PER_ROW, g.nodes.length)) * (CARD_W + GAP);
        width = Math.max(width, groupW + GAP);
        parts.push(`<g class="group" id="group-${g.title.toLowerCase()}">`);
        parts.push(`<rect x="${GAP}" y="${groupTop}" width="${groupW}" height="${y - groupTop}" rx="8" fill="#f5f7fa" stroke="#b0bec5"/>`);
        parts.push(`<text x="${GAP * 2}" y="${groupTop + 18}" font-size="14" font-weight="bold" fill="#37474f">${xmlEscape(`${g.title} (${g.nodes.length})`)}</text>`);
        parts.push(...inner);
        parts.push(`</g>`);
        y += GAP;
    }

    // Services legend.
    parts.push(`<g class="services">`);
    parts.push(`<text x="${GAP}" y="${y + 14}" font-size="14" font-weight="bold" fill="#37474f">Services (${r.services.length})</text>`);
    y += 24;
    if (r.services.length === 0) {
        parts.push(`<text x="${GAP * 2}" y="${y + 12}" font-size="11" fill="#666">${r.swarm.readFrom ? "(none)" : "(unknown: the swarm could not be read)"}</text>`);
        y += LINE + 4;
    }
    for (const s of r.services) {
        const c = colorOf.get(s.name) as string;
        const placed = summarizeNodes(s.tasks);
        const line = `${s.name}  ${s.mode}  ${s.running}/${s.desired ?? "-"}${s.healthy ? "" : "  NOT OK"}  on: ${placed || "-"}  (${s.image})`;
        width = Math.max(width, textWidth(line, 11, GAP * 2 + 16));
        parts.push(`<g class="service" id="service-${xmlEscape(s.name)}">`);
        parts.push(`<rect x="${GAP * 2}" y="${y + 3}" width="10" height="10" fill="${c}"/>`);
        parts.push(`<text x="${GAP * 2 + 16}" y="${y + 12}" font-size="11" fill="${s.healthy ? "#222" : STATE_COLOR.Down}">${xmlEscape(line)}</text>`);
        parts.push(`</g>`);
        y += LINE;
    }
    parts.push(`</g>`);
    y += GAP;
    if (r.problems.length > 0) {
        parts.push(`<g class="problems">`);
        parts.push(`<text x="${GAP}" y="${y + 14}" font-size="14" font-weight="bold" fill="${STATE_COLOR.Down}">Problems (${r.problems.length})</text>`);
        y += 24;
        for (const p of r.problems) {
            width = Math.max(width, textWidth(truncate(p, 160), 11, GAP * 2));
            parts.push(`<text x="${GAP * 2}" y="${y + 12}" font-size="11" fill="${STATE_COLOR.Down}">${xmlEscape(truncate(p, 160))}</text>`);
            y += LINE;
        }
        parts.push(`</g>`);
        y += GAP;
    }
    const height = y + GAP;
    return `<?xml version="1.0" encoding="UTF-8"?>\n` +
        `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif">\n` +
        `<title>${xmlEscape(`${r.project} cluster, stack ${r.stack}`)}</title>\n` +
        `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>\n` +
        parts.join("\n") + "\n</svg>\n";
}
