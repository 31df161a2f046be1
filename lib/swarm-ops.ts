/**
 * Swarm operations, each one step an administrator would run by hand (DCCN document 4.1, 4.2,
 * tutorial 8.3-8.9), done over SSH with the Docker CLI on the nodes. Used by the provider plugin's implementations
 * in swarm-providers.ts; no Pulumi here.
 */
import { api, apiMessage, apiOk, locateManager, sshTransport } from "./engine-transport";
import { parseResult, readScript, scriptStdin } from "./remote-script";
import { reach, RemoteError, runChecked, runScript, shq, SshTarget } from "./ssh";

export interface SwarmInfo {
    state: "inactive" | "pending" | "active" | "error" | "locked" | string;
    nodeId: string;
    nodeAddr: string;
    controlAvailable: boolean;
    clusterId?: string;
    managers: number;
    engineVersion: string;
    /** Addresses (without port) of the managers this node's swarm state lists; known even without a leader. */
    remoteManagers?: string[];
}

export interface NodeState {
    id: string;
    hostname: string;
    role: "manager" | "worker";
    availability: "active" | "drain" | "pause";
    status: string;
    labels: Record<string, string>;
    engineVersion: string;
    addr: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SwarmInfo from the engine's `Swarm` object (`docker info` / `GET /info`) and its version. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function toSwarmInfo(s: any, engineVersion: string): SwarmInfo {
    return {
        state: s.LocalNodeState,
        nodeId: s.NodeID ?? "",
        nodeAddr: s.NodeAddr ?? "",
        controlAvailable: !!s.ControlAvailable,
        clusterId: s.Cluster?.ID,
        managers: s.Managers ?? 0,
        engineVersion: engineVersion.trim(),
        remoteManagers: (s.RemoteManagers ?? []).map((r: { Addr?: string }) => String(r.Addr ?? "").replace(/:\d+$/, "")).filter(Boolean),
    };
}

export async function swarmInfo(t: SshTarget): Promise<SwarmInfo> {
    const out = await runChecked(t, "reading the engine's swarm state",
        "docker info --format '{{json .Swarm}}'; docker version --format '{{.Server.Version}}'", 60);
    const [json, version] = out.trim().split("\n");
    return toSwarmInfo(JSON.parse(json), version ?? "");
}

export interface ManagerHandle {
    target: SshTarget;
    info: SwarmInfo;
}

/**
 * The first of `candidates` that is a reachable manager of a swarm with a leader (a quorum). Skips
 * the node named `exclude` unless it is the only one; waits up to `settleSec` for a manager that is
 * still starting. The one implementation is engine-transport's locateManager (Engine API over the
 * pooled SSH connection); the error says what each candidate answered.
 */
export async function findManager(candidates: readonly SshTarget[], exclude?: string, settleSec = 60): Promise<ManagerHandle> {
    let found: Awaited<ReturnType<typeof locateManager>>;
    try {
        found = await locateManager(candidates.map((c) => sshTransport(c)), { exclude, settleSec });
    } catch (e) {
        // A manager whose engine restarted under autolock waits for its unlock key: say how to give it.
        if (e instanceof Error && /swarm state locked/.test(e.message)) e.message += `. ${LOCKED_HINT}`;
        throw e;
    }
    return { target: candidates[found.index], info: toSwarmInfo(found.swarm, found.engineVersion) };
}

/** Why `swarm.forceNewCluster` cannot run on an autolocked swarm, and what to do instead. */
export const FORCE_NEW_CLUSTER_AUTOLOCKED = "its swarm is autolocked, and Docker cannot re-initialise an autolocked swarm " +
    "(`docker swarm init --force-new-cluster` starts the node without its unlock key: the init fails and leaves the node out of any swarm); " +
    "nothing was changed. Bring back enough managers for a quorum instead (start their engines; `npm run ops -- unlock --stack <env>` unlocks them), " +
    "then set `swarm.autolock: false`, `pulumi up`, and only then recover with `swarm.forceNewCluster` if it is still needed";

/** Whether the node's swarm key is encrypted at rest (autolock): swarmkit writes it as an ENCRYPTED PRIVATE KEY. */
export async function autolockedOnDisk(t: SshTarget): Promise<boolean> {
    const r = await runScript(t, "head -n 1 /var/lib/docker/swarm/certificates/swarm-node.key 2>/dev/null || true", 60);
    return r.stdout.trim() === "-----BEGIN ENCRYPTED PRIVATE KEY-----";
}

/** What to do about a locked manager (autolock), for messages. */
export const LOCKED_HINT = "A locked manager (autolock: its engine restarted) needs the unlock key: " +
    "`npm run ops -- unlock --stack <env>` unlocks it with the key the stack keeps (output swarmUnlockKey), or `docker swarm unlock` on the node";

export async function inspectNode(m: ManagerHandle, ref: string): Promise<NodeState | undefined> {
    const r = await runScript(m.target, `docker node inspect ${shq(ref)} --format '{{json .}}'`, 60);
    if (r.code !== 0) {
        if (/No such node|not found/i.test(r.stderr)) return undefined;
        throw new RemoteError(`${m.target.name}: docker node inspect ${ref} failed: ${r.stderr.trim()}`);
    }
    return nodeState(JSON.parse(r.stdout.trim()));
}

/** A node as the Engine API (and `docker node inspect`) describes it, as the providers keep it. */
export function nodeState(n: any): NodeState { // eslint-disable-line @typescript-eslint/no-explicit-any
    return {
        id: n.ID,
        hostname: n.Description?.Hostname ?? "",
        role: n.Spec?.Role,
        availability: n.Spec?.Availability,
        status: n.Status?.State ?? "unknown",
        labels: n.Spec?.Labels ?? {},
        engineVersion: n.Description?.Engine?.EngineVersion ?? "",
        addr: n.Status?.Addr ?? "",
    };
}

/** Ready node IDs per hostname, newest first; leftovers of earlier joins show as down. */
export async function nodeIdsByHostname(m: ManagerHandle, hostname: string): Promise<{ id: string; status: string }[]> {
    const out = await runChecked(m.target, "listing swarm nodes", "docker node ls --format '{{.ID}} {{.Hostname}} {{.Status}}'", 60);
    return out.trim().split("\n").filter(Boolean).map((l) => l.split(" "))
        .filter(([, h]) => h === hostname).map(([id, , status]) => ({ id, status: status.toLowerCase() }))
        .sort((a, b) => Number(b.status === "ready") - Number(a.status === "ready"));
}

/**
 * True when the swarm these candidates managed no longer exists: every candidate answers and is
 * out of any swarm, or is a different machine now (its host key changed: reinstalled, or a lab node
 * built anew). Used by `read` so that `pulumi refresh` drops what is gone instead of failing.
 */
export async function swarmGone(candidates: readonly SshTarget[]): Promise<boolean> {
    for (const t of candidates) {
        try {
            const info = await swarmInfo(t);
            if (info.state !== "inactive") return false;
        } catch (e) {
            if (!isHostKeyMismatch(e)) return false;
        }
    }
    return candidates.length > 0;
}

/**
 * A host key refusal from ssh.ts. Checked by its flag, not `instanceof`: in a serialized dynamic
 * provider the class can reach this module as a different copy than the one that threw.
 */
function isHostKeyMismatch(e: unknown): boolean {
    return (e as { hostKeyMismatch?: boolean } | undefined)?.hostKeyMismatch === true;
}

/** The machine answering at the target's address is not the one whose host key is pinned (checked as the connection opens). */
export async function machineReplaced(t: SshTarget): Promise<boolean> {
    try {
        await reach(t, 60);
        return false;
    } catch (e) {
        if (isHostKeyMismatch(e)) return true;
        throw e;
    }
}

/**
 * A node that is in our swarm by its own account although our manager does not know it: it reports
 * our cluster ID, or (a manager without a leader cannot tell its cluster ID) lists one of our
 * managers' addresses among its managers. A manager that was away during `--force-new-cluster` is one.
 */
export function formerMember(info: SwarmInfo, clusterId: string, managerAddrs: readonly string[]): boolean {
    if (info.clusterId) return info.clusterId === clusterId;
    return (info.remoteManagers ?? []).some((a) => managerAddrs.includes(a));
}

/** remove_stale_vxlan (scripts/overlay-lib.sh), for the scripts composed here. */
const OVERLAY_LIB = readScript("overlay-lib.sh");
/** The function and its call, for a node that is out of any swarm (before init or join). */
const REMOVE_STALE_VXLAN = `${OVERLAY_LIB}\nremove_stale_vxlan`;

/**
 * `docker swarm init` on a node whose swarm state is inactive; overlay devices an earlier swarm left
 * in its namespace go first (the new swarm's networks reuse their VNIs).
 */
export async function initSwarm(t: SshTarget, advertiseAddr: string): Promise<void> {
    await runChecked(t, "docker swarm init",
        `${REMOVE_STALE_VXLAN}\ndocker swarm init --advertise-addr ${shq(advertiseAddr)} >/dev/null`, 120);
}

/**
 * The document's 4.1.1: re-initialise from a surviving manager, keeping the swarm's state. Returns
 * what the wait for the node's tasks found (settledSummary's line).
 */
export async function forceNewCluster(t: SshTarget, advertiseAddr: string): Promise<string> {
    // Docker cannot re-initialise an autolocked swarm state: the re-initialised node starts without
    // its unlock key, the init fails and leaves the node out of any swarm (observed on 20.10; moby's
    // Cluster.Init starts a new node runner without the key). Turning autolock off needs a quorum,
    // which a recovery does not have. Refused before anything changes.
    if (await autolockedOnDisk(t)) throw new RemoteError(`${t.name}: ${FORCE_NEW_CLUSTER_AUTOLOCKED}`);
    await runChecked(t, "docker swarm init --force-new-cluster",
        `docker swarm init --force-new-cluster --advertise-addr ${shq(advertiseAddr)} >/dev/null`, 180);
    // The engine's network agent is left half set up by --force-new-cluster (moby#36860): every
    // task placed on this node would be rejected ("cannot create a swarm scoped network when swarm
    // is not active") until the engine restarts. One restart, then wait until it manages again.
    await runChecked(t, "restarting the engine after --force-new-cluster", restartAsManagerScript(120), 180);
    return settleReport(t);
}

/** Read when the module loads. */
const SETTLE_SCRIPT = readScript("swarm-settle.sh");
/** How long settleTasks waits by default (seconds). */
export const SETTLE_TIMEOUT_S = 180;

export interface Settled {
    /** Tasks still held as running without a container at the time-out. */
    orphaned: string[];
    /** Tasks of services with host-mode ports still not running with their port bindings. */
    unpublished: string[];
    /** Services redeployed because their task ran without its published ports. */
    redeployed: string[];
}

/** swarm-settle.sh's result line; a run that did not finish reports that as its one orphan. */
export function parseSettled(stdout: string, stderr = ""): Settled {
    const r = parseResult(stdout);
    const list = (v: string | undefined) => (!v || v === "none" ? [] : v.split(","));
    if (!r) return { orphaned: [`(swarm-settle.sh did not finish: ${stderr.trim().split("\n").slice(-2).join("; ") || "no answer"})`], unpublished: [], redeployed: [] };
    return { orphaned: list(r.values.orphaned), unpublished: list(r.values.unpublished), redeployed: list(r.values.redeployed) };
}

/** One line on what swarm-settle.sh found on `node`, for the operator. */
export function settledSummary(node: string, s: Settled, timeoutSec: number): string {
    const done = s.redeployed.length ? `; redeployed ${s.redeployed.join(", ")} (a task ran without its published ports)` : "";
    if (s.orphaned.length === 0 && s.unpublished.length === 0) return `${node}: every task is back with its container and published ports${done}`;
    return `warning: ${node}: after ${timeoutSec}s still ` +
        [s.orphaned.length ? `held as running without a container: ${s.orphaned.join(", ")}` : "",
            s.unpublished.length ? `not running with their published ports: ${s.unpublished.join(", ")}` : ""].filter(Boolean).join("; ") +
        `${done}; \`docker service update --force SERVICE\` on a manager replaces a task`;
}

/**
 * After the engine of a manager stopped and started (backup, restore, --force-new-cluster): wait
 * (up to `timeoutSec`) until its tasks are really back (scripts/swarm-settle.sh: the swarm replaced
 * the tasks whose containers went with the stop; host-mode ports are bound). Never fails.
 */
export async function settleTasks(t: SshTarget, timeoutSec = SETTLE_TIMEOUT_S): Promise<Settled> {
    try {
        const r = await runScript(t, scriptStdin(SETTLE_SCRIPT, { SETTLE_TIMEOUT: String(timeoutSec) }), timeoutSec + 120);
        return parseSettled(r.stdout, r.stderr);
    } catch (e) {
        return parseSettled("", (e as Error).message);
    }
}

/** settleTasks, then settledSummary's line on what it found. */
export async function settleReport(t: SshTarget, timeoutSec = SETTLE_TIMEOUT_S): Promise<string> {
    return settledSummary(t.name, await settleTasks(t, timeoutSec), timeoutSec);
}

/**
 * Restart the engine and wait (up to `timeoutSec`) until it answers as a swarm manager again. Between
 * stop and start, the overlay VXLAN devices left in the host's namespace go (as swarm-restore.sh does):
 * tasks placed while the network agent was half set up leave them, and the next task on their
 * network would be rejected on this node ("error creating vxlan interface: file exists").
 */
export function restartAsManagerScript(timeoutSec: number): string {
    return [
        OVERLAY_LIB,
        "systemctl stop docker >/dev/null",
        "remove_stale_vxlan",
        "systemctl start docker >/dev/null",
        `for _ in $(seq ${timeoutSec}); do docker node ls -q >/dev/null 2>&1 && exit 0; sleep 1; done`,
        `echo "the engine did not answer as a swarm manager within ${timeoutSec}s of its restart" >&2; exit 1`,
    ].join("\n");
}

/**
 * After `--force-new-cluster`: every other node still listed as a manager is no Raft member any
 * more. Demote it and remove its entry, so that it can join again (Docker's recovery procedure).
 */
export async function removeFormerManagers(m: ManagerHandle): Promise<string[]> {
    const out = await runChecked(m.target, "listing managers", "docker node ls --filter role=manager --format '{{.ID}} {{.Self}}'", 60);
    const others = out.trim().split("\n").filter(Boolean).map((l) => l.split(" ")).filter(([, self]) => self !== "true").map(([id]) => id);
    for (const id of others) {
        await runScript(m.target, `docker node demote ${shq(id)} >/dev/null 2>&1 || true; docker node rm --force ${shq(id)} >/dev/null`, 60);
    }
    return others;
}

/** `host:port` with an IPv6 address in brackets (`[2001:db8::1]:2377`), as the engine's RemoteAddrs need. */
export function hostPort(host: string, port: number): string {
    return host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Join `node` to the swarm managed by `m` with the token for `role`. The token goes from the
 * manager's Engine API to the node's over the pooled SSH connections (both in memory here): never
 * on a command line, in a file on either node, in a log, or in Pulumi's state.
 */
export async function joinNode(node: SshTarget, advertiseAddr: string, m: ManagerHandle, role: "manager" | "worker"): Promise<void> {
    const swarmObj = await apiOk(sshTransport(m.target), { method: "GET", path: "/swarm" }, `reading the ${role} join token`);
    const token = String(swarmObj.json?.JoinTokens?.[role === "manager" ? "Manager" : "Worker"] ?? "");
    if (!/^SWMTKN-1-[a-z0-9-]+$/.test(token)) {
        throw new RemoteError(`${m.target.name}: the ${role} join token it returned is not a swarm token`);
    }
    // Out of any swarm now: overlay devices an earlier membership left go (the swarm's networks reuse their VNIs).
    await runChecked(node, "removing stale overlay devices before the join", REMOVE_STALE_VXLAN, 60);
    const managerAddr = m.info.nodeAddr || m.target.host;
    const body = { ListenAddr: "0.0.0.0:2377", AdvertiseAddr: advertiseAddr, RemoteAddrs: [hostPort(managerAddr, 2377)], JoinToken: token };
    const t = sshTransport(node);
    const r = await api(t, { method: "POST", path: "/swarm/join", body, timeoutSec: 150 });
    if (r.status === 200) return;
    const msg = apiMessage(r);
    // A manager joining a busy Raft group may outlast the engine's own wait (HTTP 503, "will
    // continue in the background"): wait for the node to become active instead of failing.
    if (r.status === 503 && /continue in the background/.test(msg)) {
        let state = "unknown";
        for (const until = Date.now() + 120_000; Date.now() < until; await sleep(2000)) {
            state = (await swarmInfo(node).catch(() => undefined))?.state ?? "unknown";
            if (state === "active") return;
        }
        throw new RemoteError(`${node.name}: joining the swarm as ${role} via ${m.target.name}: the join went on in the background for 120 s ` +
            `without the node becoming active (state ${state}): ${msg}`);
    }
    throw new RemoteError(`${node.name}: joining the swarm as ${role} via ${m.target.name}: the engine refused the join (HTTP ${r.status}): ${msg}`);
}

/** Wait until the node reports Ready to the managers. */
export async function waitReady(m: ManagerHandle, nodeId: string, timeoutSec = 120): Promise<NodeState> {
    const until = Date.now() + timeoutSec * 1000;
    for (;;) {
        const n = await inspectNode(m, nodeId);
        if (n && n.status === "ready") return n;
        if (Date.now() > until) {
            throw new RemoteError(`node ${nodeId} did not become Ready within ${timeoutSec}s (status ${n?.status ?? "missing"})`);
        }
        await sleep(2000);
    }
}

export async function setRole(m: ManagerHandle, nodeId: string, role: "manager" | "worker", node?: SshTarget): Promise<void> {
    await runChecked(m.target, `docker node ${role === "manager" ? "promote" : "demote"} ${nodeId}`, setRoleScript(nodeId, role), 240);
    if (role === "worker" && node) await waitWorkerOnNode(node);
}

/**
 * After a demotion, waits until the node itself holds a worker's certificate. Until then its
 * engine keeps the manager's: an engine stopped in between (a shutdown's next step, a daemon.json
 * restart) starts again as a manager, joins the Raft group anew and, once its new certificate
 * makes it a worker, leaves a member behind that never answers; with one other manager that is the
 * quorum lost (seen on the lab: demote, engine stopped 1 s later, reboot). A node that does not
 * answer over SSH, or whose engine does not run, is not waited for (nothing of it runs).
 */
export async function waitWorkerOnNode(node: SshTarget, timeoutSec = 120): Promise<void> {
    try {
        await reach(node, 15);
    } catch {
        return;
    }
    await runChecked(node, "waiting for the demoted node's worker certificate", workerCertScript(timeoutSec), timeoutSec + 30);
}

/** The script waitWorkerOnNode runs on the node: its own manager stopped and its certificate a worker's. */
export function workerCertScript(timeoutSec: number): string {
    // The node certificate's subject names its role (OU swarm-worker or swarm-manager): read in
    // the certificate's DER, the first one of the file (the chain's own), without openssl.
    return [
        "root=$(docker info --format '{{.DockerRootDir}}' 2>/dev/null) || root=/var/lib/docker",
        'crt="$root/swarm/certificates/swarm-node.crt"',
        `for _ in $(seq 1 ${timeoutSec * 2}); do`,
        // An engine that is not running has nothing to finish (its next start is as it would be anyway).
        "  control=$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null) || exit 0",
        `  if [ "$control" = false ] &&`,
        `    sed -n '/BEGIN CERT/,/END CERT/{/END CERT/q;/-----/d;p}' "$crt" 2>/dev/null | base64 -d 2>/dev/null | grep -aq swarm-worker; then exit 0; fi`,
        "  sleep 0.5",
        "done",
        `echo "the node still holds a manager's certificate ${timeoutSec} s after its demotion; do not stop its engine until it holds a worker's (docker info: Is Manager: false)" >&2; exit 1`,
    ].join("\n");
}

/** The script setRole runs on a manager. */
export function setRoleScript(nodeId: string, role: "manager" | "worker"): string {
    const verb = role === "manager" ? "promote" : "demote";
    // Done when the node shows the wanted role: a promoted manager reachable in the Raft group (the
    // next promotion must not start before it counts for the quorum), a demoted one without a
    // manager status. On a busy Raft group the CLI's call may also hit its deadline while the change
    // still goes through. Either way: wait (up to 120 s) for the node to show it before failing.
    const want = role === "manager" ? "reachable" : "";
    return [
        `if out=$(docker node ${verb} ${shq(nodeId)} 2>&1 >/dev/null); then out=""; else`,
        `  case "$out" in *DeadlineExceeded*|*"context deadline exceeded"*) ;; *) echo "$out" >&2; exit 1 ;; esac`,
        "fi",
        "for _ in $(seq 1 240); do",
        `  r=$(docker node inspect ${shq(nodeId)} --format '{{if .ManagerStatus}}{{.ManagerStatus.Reachability}}{{end}}' 2>/dev/null) || r=unknown`,
        `  if [ "$r" = ${shq(want)} ]; then exit 0; fi; sleep 0.5`,
        "done",
        `echo "\${out:+$out: }the node did not become ${role === "manager" ? "a reachable manager" : "a worker"} within 120 s" >&2; exit 1`,
    ].join("\n");
}

/**
 * A `docker node update` script that retries (every 3 s, up to 120 s) while the Raft group is
 * electing a leader, as it does for a moment whenever a manager's engine restarts (a daemon.json
 * change on another node): "node lost leader status", "does not have a leader", a deadline hit, a
 * proposal canceled by the leader change ("context canceled").
 * The updates are idempotent; any other error fails at once.
 */
export function nodeUpdateScript(command: string): string {
    return [
        "for _ in $(seq 1 40); do",
        `  if out=$(${command} 2>&1 >/dev/null); then exit 0; fi`,
        `  case "$out" in *"lost leader"*|*"does not have a leader"*|*DeadlineExceeded*|*"context deadline exceeded"*|*"context canceled"*|*"out of sequence"*) sleep 3 ;;`,
        `    *) echo "$out" >&2; exit 1 ;; esac`,
        "done",
        `echo "$out (still failing after 120 s of leader elections)" >&2; exit 1`,
    ].join("\n");
}

/**
 * Set availability; for `drain`, wait until no task of the node is meant to run any more: the swarm
 * has stopped them and rescheduled them elsewhere (verified, not assumed).
 */
export async function setAvailability(m: ManagerHandle, nodeId: string, availability: string, timeoutSec = 180): Promise<void> {
    await runChecked(m.target, `docker node update --availability ${availability}`,
        nodeUpdateScript(`docker node update --availability ${shq(availability)} ${shq(nodeId)}`), 180);
    if (availability !== "drain") return;
    const until = Date.now() + timeoutSec * 1000;
    for (;;) {
        const out = await runChecked(m.target, "listing the node's tasks",
            `docker node ps ${shq(nodeId)} --filter desired-state=running --format '{{.Name}}'`, 60);
        const left = out.trim().split("\n").filter(Boolean);
        if (left.length === 0) return;
        if (Date.now() > until) {
            throw new RemoteError(`node ${nodeId} still runs ${left.join(", ")} ${timeoutSec}s after the drain`);
        }
        await sleep(2000);
    }
}

export async function updateLabels(m: ManagerHandle, nodeId: string, add: Record<string, string>, remove: readonly string[]): Promise<void> {
    const flags = [
        ...Object.keys(add).sort().map((k) => `--label-add ${shq(`${k}=${add[k]}`)}`),
        ...[...remove].sort().map((k) => `--label-rm ${shq(k)}`),
    ];
    if (flags.length === 0) return;
    await runChecked(m.target, "docker node update (labels)", nodeUpdateScript(`docker node update ${flags.join(" ")} ${shq(nodeId)}`), 180);
}

/** The node leaves the swarm (a manager must have been demoted first unless it is the last one). */
export async function leaveSwarm(t: SshTarget, force: boolean): Promise<void> {
    const r = await runScript(t, `state=$(docker info --format '{{.Swarm.LocalNodeState}}')
if [ "$state" = inactive ]; then echo already-out; exit 0; fi
docker swarm leave ${force ? "--force" : ""} >/dev/null`, 120);
    if (r.code !== 0) throw new RemoteError(`${t.name}: docker swarm leave failed: ${r.stderr.trim()}`);
}

/** Remove a node that left (or is gone) from the managers' node table. */
export async function removeNode(m: ManagerHandle, nodeId: string, timeoutSec = 60): Promise<void> {
    const until = Date.now() + timeoutSec * 1000;
    for (;;) {
        const n = await inspectNode(m, nodeId);
        if (!n) return;
        if (n.status === "down" || Date.now() > until) {
            await runChecked(m.target, `docker node rm ${nodeId}`, `docker node rm --force ${shq(nodeId)} >/dev/null`, 60);
            return;
        }
        await sleep(2000);
    }
}


// ---------------------------------------------------------------------------------------------
// The swarm's own security (Docker's "administer and maintain a swarm"): autolock and its unlock
// key, join-token rotation, the root CA's rotation and the node certificates' lifetime. Everything
// goes through the Engine API on the pooled SSH connection: tokens and keys stay in memory here,
// never on a command line, in a file, in a message or a log.

/** What to change in the swarm's security settings; undefined settings are left as they are. */
export interface SecurityChange {
    autolock?: boolean;
    /** Node certificate lifetime, seconds. */
    nodeCertExpiry?: number;
    rotateJoinTokens: boolean;
    rotateUnlockKey: boolean;
    rotateCa: boolean;
}

export interface SecurityState {
    autolock: boolean;
    /** Node certificate lifetime, seconds. */
    nodeCertExpiry: number;
    /** The public key of the CA that issues node certificates now (GET /swarm TLSInfo). */
    caPublicKey: string;
    caRotationInProgress: boolean;
}

/** The unlock key's shape (`SWMKEY-1-...`): anything else the engine says is not kept. */
const UNLOCK_KEY_RE = /^SWMKEY-1-[A-Za-z0-9+/=_-]+$/;

/** A message with every occurrence of `secret` blanked out (an engine's error never echoes it; made sure). */
export function withoutSecret(message: string, secret: string | undefined): string {
    return secret ? message.split(secret).join("<unlock key>") : message;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function securityStateOf(sw: any): SecurityState {
    return {
        autolock: !!sw?.Spec?.EncryptionConfig?.AutoLockManagers,
        nodeCertExpiry: Math.round(Number(sw?.Spec?.CAConfig?.NodeCertExpiry ?? 0) / 1e9),
        caPublicKey: String(sw?.TLSInfo?.CertIssuerPublicKey ?? ""),
        caRotationInProgress: !!sw?.RootRotationInProgress,
    };
}

/** The swarm's security settings as a manager has them. */
export async function securityState(m: ManagerHandle): Promise<SecurityState> {
    const r = await apiOk(sshTransport(m.target), { method: "GET", path: "/swarm" }, "reading the swarm's settings");
    return securityStateOf(r.json);
}

/** The current unlock key of an autolocked swarm (GET /swarm/unlockkey); undefined when it has none. */
export async function readUnlockKey(m: ManagerHandle): Promise<string | undefined> {
    const r = await apiOk(sshTransport(m.target), { method: "GET", path: "/swarm/unlockkey" }, "reading the swarm's unlock key");
    const key = String(r.json?.UnlockKey ?? "");
    if (key === "") return undefined;
    if (!UNLOCK_KEY_RE.test(key)) throw new RemoteError(`${m.target.name}: the unlock key it returned is not a swarm unlock key`);
    return key;
}

/** The query of POST /swarm/update: the spec's version and the rotations asked for. */
export function swarmUpdateQuery(version: number, change: Pick<SecurityChange, "rotateJoinTokens" | "rotateUnlockKey">): string {
    const q = [`version=${version}`];
    if (change.rotateJoinTokens) q.push("rotateWorkerToken=true", "rotateManagerToken=true");
    if (change.rotateUnlockKey) q.push("rotateManagerUnlockKey=true");
    return q.join("&");
}

/**
 * The swarm spec with `change` applied (pure): autolock, node certificate lifetime, and a CA
 * rotation as `docker swarm ca --rotate` asks for one (ForceRotate one higher), unless one is in
 * progress already (a retried `up` waits for it instead of starting another). Undefined when the
 * spec stays as it is.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function securitySpec(spec: any, change: SecurityChange, rotationInProgress: boolean): any | undefined {
    const next = JSON.parse(JSON.stringify(spec ?? {}));
    let changed = false;
    if (change.autolock !== undefined && !!next.EncryptionConfig?.AutoLockManagers !== change.autolock) {
        next.EncryptionConfig = { ...(next.EncryptionConfig ?? {}), AutoLockManagers: change.autolock };
        changed = true;
    }
    if (change.nodeCertExpiry !== undefined && Number(next.CAConfig?.NodeCertExpiry ?? 0) !== change.nodeCertExpiry * 1e9) {
        next.CAConfig = { ...(next.CAConfig ?? {}), NodeCertExpiry: change.nodeCertExpiry * 1e9 };
        changed = true;
    }
    if (change.rotateCa && !rotationInProgress) {
        next.CAConfig = { ...(next.CAConfig ?? {}), ForceRotate: Number(next.CAConfig?.ForceRotate ?? 0) + 1 };
        changed = true;
    }
    return changed ? next : undefined;
}

/**
 * Apply `change` through the manager `m` (POST /swarm/update, retried when another update came in
 * between), wait for a CA rotation to reach every Ready node, and return the unlock key when the
 * swarm is autolocked afterwards. A rotation the engine refuses fails with its message (which never
 * holds a token or key).
 */
export async function applySecurity(m: ManagerHandle, change: SecurityChange, caTimeoutSec = 300): Promise<{ unlockKey?: string; caNodesDown: string[] }> {
    const t = sshTransport(m.target);
    for (let attempt = 0; ; attempt++) {
        const sw = (await apiOk(t, { method: "GET", path: "/swarm" }, "reading the swarm's settings")).json;
        const spec = securitySpec(sw?.Spec, change, !!sw?.RootRotationInProgress);
        if (!spec && !change.rotateJoinTokens && !change.rotateUnlockKey) break;
        const what = [change.autolock !== undefined ? "autolock" : "", change.nodeCertExpiry !== undefined ? "node certificate lifetime" : "",
            change.rotateJoinTokens ? "join-token rotation" : "", change.rotateUnlockKey ? "unlock-key rotation" : "",
            change.rotateCa ? "root CA rotation" : ""].filter(Boolean).join(", ");
        const r = await api(t, {
            method: "POST", path: `/swarm/update?${swarmUpdateQuery(Number(sw?.Version?.Index ?? 0), change)}`, body: spec ?? sw?.Spec, timeoutSec: 120,
        });
        if (r.status === 200) break;
        // Another change of the swarm's spec came in between (a node's certificate renewal among them).
        if (attempt < 3 && /out of sequence/.test(apiMessage(r))) continue;
        throw new RemoteError(`${m.target.name}: updating the swarm (${what}) failed (HTTP ${r.status}): ${apiMessage(r)}`);
    }
    const caNodesDown = change.rotateCa ? await waitCaRotation(m, caTimeoutSec) : [];
    const state = await securityState(m);
    return { unlockKey: state.autolock ? await readUnlockKey(m) : undefined, caNodesDown };
}

/** Nodes whose certificate the CA with `caPublicKey` did not issue (pure; `nodes` as GET /nodes lists them). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function nodesWithOtherCa(nodes: any[], caPublicKey: string): { hostname: string; ready: boolean }[] {
    return (nodes ?? []).filter((n) => String(n?.Description?.TLSInfo?.CertIssuerPublicKey ?? "") !== caPublicKey)
        .map((n) => ({ hostname: String(n?.Description?.Hostname ?? n?.ID ?? "?"), ready: n?.Status?.State === "ready" }));
}

/**
 * Wait (up to `timeoutSec`) until the root CA rotation is over and every Ready node holds a
 * certificate from the new CA (what `docker swarm ca --rotate` waits for). Nodes that are down
 * get theirs when they are back: returned by name. Fails naming the nodes still waiting.
 */
export async function waitCaRotation(m: ManagerHandle, timeoutSec: number): Promise<string[]> {
    const t = sshTransport(m.target);
    const until = Date.now() + timeoutSec * 1000;
    for (;;) {
        const [sw, nodes] = await Promise.all([
            apiOk(t, { method: "GET", path: "/swarm" }, "reading the swarm's CA"),
            apiOk(t, { method: "GET", path: "/nodes" }, "listing the nodes' certificates"),
        ]);
        const s = securityStateOf(sw.json);
        const other = nodesWithOtherCa(nodes.json, s.caPublicKey);
        const waiting = other.filter((n) => n.ready);
        if (!s.caRotationInProgress && waiting.length === 0) return other.map((n) => n.hostname);
        if (Date.now() > until) {
            throw new RemoteError(`the swarm's root CA rotation did not complete within ${timeoutSec}s` +
                (waiting.length ? `: ${waiting.map((n) => n.hostname).join(", ")} still hold certificates from the previous CA` : "") +
                (other.length > waiting.length ? `; down: ${other.filter((n) => !n.ready).map((n) => n.hostname).join(", ")}` : "") +
                "; it goes on in the swarm: check `docker node ls`, then `pulumi up` again waits for it (it starts no second rotation while one is in progress)");
        }
        await sleep(1000);
    }
}

/**
 * Unlock the engine at `t` if it is locked (autolock, after its restart): POST /swarm/unlock with
 * the key `key()` gives (asked only when needed), then wait until it is active again. Returns
 * whether it was locked. The key goes into the request body only.
 */
export async function unlockIfLocked(t: SshTarget, key: () => Promise<string | undefined>, timeoutSec = 60): Promise<boolean> {
    const tr = sshTransport(t);
    const state = async () => String((await apiOk(tr, { method: "GET", path: "/info" }, "reading the engine's swarm state")).json?.Swarm?.LocalNodeState ?? "");
    if (await state() !== "locked") return false;
    const k = await key();
    if (!k) {
        throw new RemoteError(`${t.name}: the swarm is locked (autolock) and no unlock key is at hand: the stack keeps it as the secret output ` +
            "swarmUnlockKey once `swarm.autolock: true` is applied; otherwise run `docker swarm unlock` on the node with the key you kept");
    }
    const r = await api(tr, { method: "POST", path: "/swarm/unlock", body: { UnlockKey: k } });
    if (r.status !== 200) {
        throw new RemoteError(`${t.name}: unlocking the swarm failed (HTTP ${r.status}): ${withoutSecret(apiMessage(r), k)}` +
            (/invalid key/i.test(apiMessage(r)) ? "; the key does not open this node's swarm state (it was rotated since, or the state comes from an older backup): " +
                "run `docker swarm unlock` on the node with the key of that time" : ""));
    }
    const until = Date.now() + timeoutSec * 1000;
    for (let s = await state(); s !== "active"; s = await state()) {
        if (Date.now() > until) throw new RemoteError(`${t.name}: unlocked, but its swarm state is ${s || "unknown"} ${timeoutSec}s later`);
        await sleep(1000);
    }
    return true;
}
