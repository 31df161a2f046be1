/**
 * Dynamic providers for swarm state that has no resource in @pulumi/docker (pulumi-docker #282):
 * the swarm itself, each node's membership (role, availability) and each node's labels. Unlike a
 * remote command they implement `read`, so `pulumi refresh` reports what someone changed by hand
 * and the next `pulumi up` puts it back.
 */
import type { CheckFailure, ResourceImpl } from "./resource-impl";
import { planManagerTransition } from "./quorum";
import { sshTransport } from "./engine-transport";
import { keyOf, listedById, shared } from "./read-cache";
import { runScript, SshTarget } from "./ssh";
import * as ops from "./swarm-ops";
import { sshTarget, type HostSpec, type SshSpec } from "./connection";
import { type StepCall, stepStdin } from "./remote-script";

export type { HostSpec, SshSpec } from "./connection";


/**
 * For `read`: a manager with quorum, or undefined when the swarm is gone altogether (see
 * ops.swarmGone). Shared by the reads of one refresh (lib/read-cache.ts).
 */
function reachOrGone(targets: SshTarget[]): Promise<ops.ManagerHandle | undefined> {
    return shared(`manager|${keyOf(targets)}`, async () => {
        try {
            return await ops.findManager(targets);
        } catch (e) {
            if (await ops.swarmGone(targets)) return undefined;
            throw e;
        }
    });
}

/** For `read`: a node as the manager lists it (one listing for every read of a refresh). */
async function listedNode(m: ops.ManagerHandle, nodeId: string): Promise<ops.NodeState | undefined> {
    const n = await listedById(sshTransport(m.target), "nodes", nodeId);
    return n ? ops.nodeState(n) : undefined;
}

/** For `read`: whether another machine answers at the node's address now (one check per node per refresh). */
function replacedForRead(t: SshTarget): Promise<boolean> {
    return shared(`replaced|${keyOf(t)}`, () => ops.machineReplaced(t));
}

/** How an output not known yet (during preview) reaches a diff. */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** A value that changed for sure: not equal, and the new one known (an unknown one is an upstream update's echo). */
function changedKnown(old: unknown, now: unknown): boolean {
    return now !== UNKNOWN && now !== undefined && old !== now;
}

function sameList(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
    return JSON.stringify([...(a ?? [])].sort()) === JSON.stringify([...(b ?? [])].sort());
}

// ---------------------------------------------------------------------------------------------
// The swarm: initialised on the bootstrap manager; recovery with --force-new-cluster.

export interface ClusterInputs {
    /** Stack file named in refusals, e.g. `Pulumi.dev.yaml`. */
    stackFile: string;
    bootstrap: string;
    managers: HostSpec[];
    /** Hostname of a surviving manager to re-initialise from; empty for none. */
    forceNewCluster: string;
    ssh: SshSpec;
    /**
     * The swarm's security settings (`dccn-swarm:swarm`): each only when configured, so a stack that
     * sets none keeps exactly the inputs it had (no diff). Autolock on or off; rotation values, whose
     * change rotates; node certificate lifetime in seconds.
     */
    autolock?: boolean;
    rotateJoinTokens?: string;
    rotateUnlockKey?: string;
    rotateCa?: string;
    nodeCertExpiry?: number;
}

/** The security inputs: what a change of them does is securityChange's. */
export const SECURITY_INPUTS = ["autolock", "rotateJoinTokens", "rotateUnlockKey", "rotateCa", "nodeCertExpiry"] as const;

export interface ClusterOutputs extends ClusterInputs {
    clusterId: string;
    /** The forceNewCluster value last carried out, so one setting runs the recovery once. */
    recoveredFrom: string;
    /** How many recoveries ran: managers join anew after each (their Raft membership was reset). */
    recoveries: number;
    /** What the last recovery found when it waited for its node's tasks (a `warning:` line if not all came back). */
    recoveryReport?: string;
    /** The unlock key of an autolocked swarm (a secret output: lib/kinds.ts SECRET_OUTPUTS). */
    unlockKey?: string;
    /** Nodes that were down during the last CA rotation (they get a new certificate when back). */
    caNodesDown?: string[];
}

/**
 * What a change from `olds` (the state: last applied or refreshed inputs) to `news` asks of the
 * swarm's security (pure). A setting that is not configured (undefined) changes nothing; a rotation
 * value rotates when it is set and differs from the one last applied (setting it the first time
 * rotates too). `fields` names the inputs that make the change, for the preview.
 */
export function securityChange(olds: Partial<ClusterInputs> | undefined, news: ClusterInputs): ops.SecurityChange & { fields: string[] } {
    const fields: string[] = [];
    const o = olds ?? {};
    const autolock = news.autolock !== undefined && news.autolock !== o.autolock ? news.autolock : undefined;
    if (autolock !== undefined) fields.push("autolock");
    const nodeCertExpiry = news.nodeCertExpiry !== undefined && news.nodeCertExpiry !== o.nodeCertExpiry ? news.nodeCertExpiry : undefined;
    if (nodeCertExpiry !== undefined) fields.push("nodeCertExpiry");
    const rotates = (k: "rotateJoinTokens" | "rotateUnlockKey" | "rotateCa") => {
        const yes = news[k] !== undefined && news[k] !== "" && news[k] !== o[k];
        if (yes) fields.push(k);
        return yes;
    };
    return {
        ...(autolock !== undefined ? { autolock } : {}),
        ...(nodeCertExpiry !== undefined ? { nodeCertExpiry } : {}),
        rotateJoinTokens: rotates("rotateJoinTokens"),
        rotateUnlockKey: rotates("rotateUnlockKey"),
        rotateCa: rotates("rotateCa"),
        fields,
    };
}

/** The settings to apply when the swarm is made or taken over: autolock and certificate lifetime (nothing to rotate). */
function initialSecurity(inputs: ClusterInputs): ops.SecurityChange | undefined {
    if (inputs.autolock === undefined && inputs.nodeCertExpiry === undefined) return undefined;
    return { autolock: inputs.autolock, nodeCertExpiry: inputs.nodeCertExpiry, rotateJoinTokens: false, rotateUnlockKey: false, rotateCa: false };
}

export const clusterProvider: ResourceImpl = {
    async check(olds: ClusterInputs | undefined, news: ClusterInputs) {
        const failures: CheckFailure[] = [];
        if (olds?.managers && news.managers) {
            try {
                planManagerTransition(olds.managers.map((m) => m.name), news.managers.map((m) => m.name));
            } catch (e) {
                failures.push({ property: "managers", reason: `${news.stackFile}: dccn-swarm:nodes: ${(e as Error).message}` });
            }
        }
        return { inputs: news, failures };
    },

    async diff(_id: string, olds: ClusterOutputs, news: ClusterInputs) {
        const managers = !sameList(olds.managers?.map((m) => m.name), news.managers.map((m) => m.name));
        const recovery = (news.forceNewCluster !== "" && news.forceNewCluster !== olds.recoveredFrom) ||
            (news.forceNewCluster === "" && olds.recoveredFrom !== "");
        const security = securityChange(olds, news).fields;
        const changes = managers || recovery || security.length > 0;
        // The preview names what changes: a rotation shows as that one field of the swarm.
        const diffs = [...(managers ? ["managers"] : []), ...(recovery ? ["forceNewCluster"] : []), ...security];
        return { changes, ...(changes ? { diffs } : {}) };
    },

    async create(inputs: ClusterInputs) {
        const boot = inputs.managers.find((m) => m.name === inputs.bootstrap);
        if (!boot) throw new Error(`bootstrap manager ${inputs.bootstrap} is not among the managers`);
        const t = sshTarget(inputs.ssh, boot);
        let info = await ops.swarmInfo(t);
        if (info.state === "inactive") {
            // Another configured manager may already run a swarm (state lost, or adopted cluster).
            try {
                const m = await ops.findManager(inputs.managers.map((h) => sshTarget(inputs.ssh, h)));
                info = m.info;
            } catch {
                await ops.initSwarm(t, boot.address);
                info = await ops.swarmInfo(t);
            }
        } else if (!info.controlAvailable) {
            throw new Error(`${boot.name} is already in a swarm as a worker; make it leave (docker swarm leave) or pick another bootstrap manager`);
        }
        if (!info.clusterId) throw new Error(`${boot.name}: swarm has no cluster ID after init (state ${info.state})`);
        const outs: ClusterOutputs = { ...inputs, clusterId: info.clusterId, recoveredFrom: inputs.forceNewCluster, recoveries: 0, recoveryReport: "" };
        const initial = initialSecurity(inputs);
        if (initial) {
            const m = await ops.findManager(inputs.managers.map((h) => sshTarget(inputs.ssh, h)));
            const applied = await ops.applySecurity(m, initial);
            if (applied.unlockKey) outs.unlockKey = applied.unlockKey;
        }
        return { id: info.clusterId, outs };
    },

    async update(id: string, olds: ClusterOutputs, news: ClusterInputs) {
        let clusterId = olds.clusterId ?? id;
        let recoveredFrom = news.forceNewCluster === "" ? "" : olds.recoveredFrom;
        let recoveries = olds.recoveries ?? 0;
        let recoveryReport = olds.recoveryReport ?? "";
        if (news.forceNewCluster !== "" && news.forceNewCluster !== olds.recoveredFrom) {
            const host = news.managers.find((m) => m.name === news.forceNewCluster);
            if (!host) throw new Error(`${news.stackFile}: dccn-swarm:swarm.forceNewCluster: ${news.forceNewCluster} is not a configured manager`);
            const t = sshTarget(news.ssh, host);
            recoveryReport = await ops.forceNewCluster(t, host.address);
            // The other managers are no Raft members any more: demote and remove their entries; their
            // membership resources join them again (a new `recoveries` count replaces them).
            const m = await ops.findManager([t]);
            await ops.removeFormerManagers(m);
            clusterId = (await ops.swarmInfo(t)).clusterId ?? clusterId;
            recoveredFrom = news.forceNewCluster;
            recoveries += 1;
        }
        let unlockKey = news.autolock === false ? undefined : olds.unlockKey;
        let caNodesDown = olds.caNodesDown;
        const security = securityChange(olds, news);
        if (security.fields.length > 0) {
            const m = await ops.findManager(news.managers.map((h) => sshTarget(news.ssh, h)));
            const applied = await ops.applySecurity(m, security);
            unlockKey = applied.unlockKey;
            if (security.rotateCa) caNodesDown = applied.caNodesDown.length ? applied.caNodesDown : undefined;
        }
        return { outs: { ...news, clusterId, recoveredFrom, recoveries, recoveryReport, unlockKey, caNodesDown } };
    },

    async read(id: string, props: ClusterOutputs) {
        const targets = props.managers.map((h) => sshTarget(props.ssh, h));
        const m = await reachOrGone(targets);
        if (!m || m.info.clusterId !== props.clusterId) {
            // A different swarm (re-initialised by hand): report this one as gone.
            return { id: "", props: {} };
        }
        if (props.autolock === undefined && props.nodeCertExpiry === undefined) return { id, props };
        // The configured security settings as the swarm has them now: one turned off or changed by
        // hand shows in refresh, and the next up sets it again; the unlock key as it is now.
        const now = await ops.securityState(m);
        const actual: ClusterOutputs = {
            ...props,
            ...(props.autolock !== undefined ? { autolock: now.autolock } : {}),
            ...(props.nodeCertExpiry !== undefined ? { nodeCertExpiry: now.nodeCertExpiry } : {}),
            unlockKey: now.autolock ? await ops.readUnlockKey(m) : undefined,
        };
        return { id, props: actual, inputs: actual };
    },

    async delete(_id: string, props: ClusterOutputs) {
        // Members were removed before this (they depend on the cluster); what remains are the last
        // managers. The document's order: the last manager leaves last.
        const targets = props.managers.map((h) => sshTarget(props.ssh, h));
        const boot = targets.find((t) => t.name === props.bootstrap);
        const ordered = [...targets.filter((t) => t !== boot), ...(boot ? [boot] : [])];
        for (const t of ordered) await ops.leaveSwarm(t, true);
    },
};


// ---------------------------------------------------------------------------------------------
// A node's membership: joined with the token of its role, promoted/demoted, availability set; on
// removal drained, demoted, made to leave and removed from the node table.

export interface MemberInputs {
    stackFile: string;
    node: HostSpec;
    role: "manager" | "worker";
    availability: "active" | "drain" | "pause";
    /** Managers to reach the swarm through (configured ones; the first reachable with quorum is used). */
    managers: HostSpec[];
    clusterId: string;
    /** For managers, the cluster's recovery count: a recovery makes them join anew. 0 for workers. */
    clusterEpoch: number;
    ssh: SshSpec;
}

export interface MemberOutputs extends MemberInputs {
    nodeId: string;
    status: string;
    engineVersion: string;
}

function memberCandidates(p: MemberInputs): SshTarget[] {
    const hosts = [...p.managers];
    if (!hosts.some((h) => h.name === p.node.name)) hosts.push(p.node);
    return hosts.map((h) => sshTarget(p.ssh, h));
}

async function memberState(m: ops.ManagerHandle, p: MemberInputs, nodeId: string): Promise<MemberOutputs | undefined> {
    const n = await ops.inspectNode(m, nodeId);
    if (!n) return undefined;
    return { ...p, role: n.role, availability: n.availability, nodeId: n.id, status: n.status, engineVersion: n.engineVersion };
}

/** Exported for unit tests of its diff. */
export const memberProvider: ResourceImpl = {
    async diff(_id: string, olds: MemberOutputs, news: MemberInputs) {
        const replaces: string[] = [];
        if (olds.node?.address !== news.node.address || olds.node?.name !== news.node.name) replaces.push("node");
        // A new swarm (a different cluster ID) means joining anew; an ID not known yet during
        // preview is the cluster resource's own update, which keeps its ID.
        if (changedKnown(olds.clusterId, news.clusterId)) replaces.push("clusterId");
        // A manager across a recovery joins anew; a worker being promoted is promoted, whatever the count.
        if (olds.role === "manager" && news.role === "manager" && changedKnown(olds.clusterEpoch ?? 0, news.clusterEpoch)) {
            replaces.push("clusterEpoch");
        }
        const changes = replaces.length > 0 || olds.role !== news.role || olds.availability !== news.availability;
        // The node must leave the old swarm (or under its old name) before it joins again.
        return { changes, replaces, deleteBeforeReplace: true };
    },

    async create(inputs: MemberInputs) {
        const node = sshTarget(inputs.ssh, inputs.node);
        let info = await ops.swarmInfo(node);
        // An engine that just started looks for its managers for some seconds ("pending"): let it settle.
        for (let i = 0; i < 10 && info.state === "pending"; i++) {
            await new Promise((r) => setTimeout(r, 3000));
            info = await ops.swarmInfo(node);
        }
        const m = await ops.findManager(memberCandidates(inputs), info.state === "active" ? undefined : inputs.node.name);
        const known = info.state !== "inactive" && info.nodeId ? await ops.inspectNode(m, info.nodeId) : undefined;
        if (info.state !== "inactive" && !known) {
            const ours = [m.info.nodeAddr || m.target.host, ...inputs.managers.map((h) => h.address)];
            if (!ops.formerMember(info, inputs.clusterId, ours)) {
                throw new Error(`${inputs.node.name} is in another swarm (swarm state ${info.state}, node ID ${info.nodeId || "none"}); ` +
                    "make it leave with `docker swarm leave --force` on the node, or remove it from the stack config");
            }
            // A manager that was away during `--force-new-cluster` (its entry was removed then): it still
            // holds the old Raft membership (active, or pending while it looks for the old managers).
            // It leaves and joins again (Docker's recovery procedure).
            await ops.leaveSwarm(node, true);
        }
        if (!known) {
            await ops.joinNode(node, inputs.node.address, m, inputs.role);
            info = await ops.swarmInfo(node);
        }
        const ready = await ops.waitReady(m, info.nodeId);
        // Entries an earlier incarnation of this host left behind (it left, or was rebuilt) go.
        for (const stale of await ops.nodeIdsByHostname(m, inputs.node.name)) {
            if (stale.id !== info.nodeId && stale.status === "down") await ops.removeNode(m, stale.id, 0);
        }
        if (ready.role !== inputs.role) await ops.setRole(m, info.nodeId, inputs.role, node);
        if (ready.availability !== inputs.availability) await ops.setAvailability(m, info.nodeId, inputs.availability);
        const outs = await memberState(m, inputs, info.nodeId);
        if (!outs) throw new Error(`${inputs.node.name} vanished from the node table right after joining`);
        return { id: info.nodeId, outs };
    },

    async update(id: string, olds: MemberOutputs, news: MemberInputs) {
        const demoting = olds.role === "manager" && news.role === "worker";
        // Demote through another manager, never the node itself.
        const m = await ops.findManager(memberCandidates(news), demoting ? news.node.name : undefined);
        if (olds.role !== news.role) await ops.setRole(m, id, news.role, sshTarget(news.ssh, news.node));
        if (olds.availability !== news.availability) await ops.setAvailability(m, id, news.availability);
        const outs = await memberState(m, news, id);
        if (!outs) throw new Error(`${news.node.name} (node ${id}) is no longer in the swarm; run \`pulumi refresh\` and \`pulumi up\``);
        return { outs };
    },

    async read(id: string, props: MemberOutputs) {
        const m = await reachOrGone(memberCandidates(props));
        if (!m) return { id: "", props: {} };
        const n = await listedNode(m, id);
        const outs: MemberOutputs | undefined = n && { ...props, role: n.role, availability: n.availability, nodeId: n.id, status: n.status, engineVersion: n.engineVersion };
        if (!outs) return { id: "", props: {} };
        if (outs.status !== "ready") {
            // Down because it left by hand or is another machine now: gone, the next up joins it
            // again. Down because it is off: kept, and reported as down.
            const t = sshTarget(props.ssh, props.node);
            const replaced = await replacedForRead(t).catch(() => false);
            const left = !replaced && (await ops.swarmInfo(t).catch(() => undefined))?.state === "inactive";
            if (replaced || left) return { id: "", props: {} };
        }
        const inputs: MemberInputs = { ...props, role: outs.role, availability: outs.availability };
        return { id, props: outs, inputs };
    },

    async delete(id: string, props: MemberOutputs) {
        const node = sshTarget(props.ssh, props.node);
        let m: ops.ManagerHandle;
        try {
            m = await ops.findManager(memberCandidates(props), props.node.name);
        } catch (e) {
            throw new Error(`cannot remove ${props.node.name} from the swarm: ${(e as Error).message}`);
        }
        if (m.target.name === props.node.name) {
            // The last manager: the cluster resource makes it leave, last of all.
            return;
        }
        const n = await ops.inspectNode(m, id);
        if (n) {
            if (n.status === "ready") await ops.setAvailability(m, id, "drain").catch(() => undefined);
            if (n.role === "manager") await ops.setRole(m, id, "worker");
        }
        // The node may be gone for good; then only the node table entry is removed.
        await ops.leaveSwarm(node, true).catch(() => undefined);
        if (n) await ops.removeNode(m, id);
    },
};


// ---------------------------------------------------------------------------------------------
// Node labels: only the keys in the config are owned; other labels are left alone.

export interface LabelsInputs {
    node: HostSpec;
    nodeId: string;
    labels: Record<string, string>;
    managers: HostSpec[];
    ssh: SshSpec;
}

export const labelsProvider: ResourceImpl = {
    async diff(_id: string, olds: LabelsInputs, news: LabelsInputs) {
        const changes = JSON.stringify(sortKeys(olds.labels ?? {})) !== JSON.stringify(sortKeys(news.labels)) ||
            changedKnown(olds.nodeId, news.nodeId);
        return { changes };
    },

    async create(inputs: LabelsInputs) {
        const m = await ops.findManager(inputs.managers.map((h) => sshTarget(inputs.ssh, h)));
        await ops.updateLabels(m, inputs.nodeId, inputs.labels, []);
        return { id: `${inputs.nodeId}-labels`, outs: inputs };
    },

    async update(_id: string, olds: LabelsInputs, news: LabelsInputs) {
        const m = await ops.findManager(news.managers.map((h) => sshTarget(news.ssh, h)));
        const current = (await ops.inspectNode(m, news.nodeId))?.labels ?? {};
        const add: Record<string, string> = {};
        for (const [k, v] of Object.entries(news.labels)) if (current[k] !== v) add[k] = v;
        const remove = Object.keys(olds.labels ?? {}).filter((k) => !(k in news.labels) && k in current);
        await ops.updateLabels(m, news.nodeId, add, remove);
        return { outs: news };
    },

    async read(id: string, props: LabelsInputs) {
        const m = await reachOrGone(props.managers.map((h) => sshTarget(props.ssh, h)));
        if (!m) return { id: "", props: {} };
        const n = await listedNode(m, props.nodeId);
        if (!n) return { id: "", props: {} };
        // Report the owned keys as they are now; a key removed by hand disappears here.
        const labels: Record<string, string> = {};
        for (const k of Object.keys(props.labels)) if (k in n.labels) labels[k] = n.labels[k];
        const now = { ...props, labels };
        return { id, props: now, inputs: now };
    },

    async delete(_id: string, props: LabelsInputs) {
        const m = await ops.findManager(props.managers.map((h) => sshTarget(props.ssh, h))).catch(() => undefined);
        if (!m) return; // the swarm is gone, and its labels with it
        const n = await ops.inspectNode(m, props.nodeId);
        if (!n) return;
        await ops.updateLabels(m, props.nodeId, {}, Object.keys(props.labels).filter((k) => k in n.labels));
    },
};

function sortKeys(o: Record<string, string>): Record<string, string> {
    return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}


// ---------------------------------------------------------------------------------------------
// A provisioning step: one idempotent script from scripts/ run on one node. Re-run when the script
// or its parameters change; it reports `changed=0` when the node already was as asked.

export interface ScriptInputs extends StepCall {
    node: HostSpec;
    /**
     * Parameters of the same script that undo the step, run when the resource is deleted (the
     * registry's CA trust when the registry leaves the config). Without them, delete leaves the node.
     */
    undoEnv?: Record<string, string>;
    ssh: SshSpec;
}

/** A step as the provider sees its state: the old call (from the state's inputs) and the result line. */
export interface ScriptOutputs extends ScriptInputs {
    /** The script's `DCCN_RESULT ...` line. */
    result: string;
    /** Kept by steps made before the provider plugin (the whole standard input); read, never written. */
    stdin?: string;
    undo?: string;
}

function stepOutputs(p: ScriptInputs, result: string): ScriptOutputs {
    return { ...p, result };
}

/** A step's call as comparable text: what makes it run again when it changes. */
function stepView(p: ScriptInputs): string {
    return JSON.stringify([p.node?.address, p.script, p.scriptHash, Object.entries(p.env ?? {}).sort(), p.data ?? "", Object.entries(p.undoEnv ?? {}).sort()]);
}

function undoStdin(p: ScriptInputs | ScriptOutputs): string | undefined {
    return p.undoEnv ? stepStdin(p, p.undoEnv) : undefined;
}

async function runStep(p: ScriptInputs | ScriptOutputs, stdin: string, what = p.script): Promise<string> {
    const t = sshTarget(p.ssh, p.node);
    const r = await runScript(t, stdin, 900);
    const result = r.stdout.split("\n").reverse().find((l) => l.startsWith("DCCN_RESULT ")) ?? "";
    if (r.code !== 0) {
        const why = r.stderr.trim().split("\n").slice(-8).join("\n");
        throw new Error(`${p.node.name} (${p.node.address}): ${what} failed (exit ${r.code}): ${why}${result ? `\n${result}` : ""}`);
    }
    return result;
}

export const scriptProvider: ResourceImpl = {
    async diff(_id: string, olds: ScriptOutputs, news: ScriptInputs) {
        const replaces = olds.node?.address !== news.node.address ? ["node"] : [];
        // A step made before the plugin keeps its whole standard input: the same call gives the same text.
        const changed = olds.stdin !== undefined
            ? olds.stdin !== stepStdin(news) || olds.undo !== undoStdin(news)
            : stepView(olds) !== stepView(news);
        return { changes: replaces.length > 0 || changed, replaces };
    },
    async create(inputs: ScriptInputs) {
        const result = await runStep(inputs, stepStdin(inputs));
        return { id: `${inputs.node.name}-${inputs.script}`, outs: stepOutputs(inputs, result) };
    },
    async update(_id: string, _olds: ScriptOutputs, news: ScriptInputs) {
        return { outs: stepOutputs(news, await runStep(news, stepStdin(news))) };
    },
    /** What the state keeps when only the connection (or the state's shape) changed: nothing runs. */
    stateOnly(olds: ScriptOutputs, news: ScriptInputs) {
        return stepOutputs(news, olds.result ?? "");
    },
    // A different machine at the address (host key changed: reinstalled, or a lab node built
    // anew) has not had this step: refresh reports the step gone, and the next up runs it.
    async read(id: string, props: ScriptOutputs) {
        return await replacedForRead(sshTarget(props.ssh, props.node)) ? { id: "", props: {} } : { id, props };
    },
    // Provisioning is not undone on delete (`pulumi destroy` leaves every node with its engine
    // running, ready for the next `pulumi up`: the teardown drill), unless the step says how. A
    // machine that is gone or was replaced has nothing to undo.
    async delete(_id: string, props: ScriptOutputs) {
        const undo = props.undo ?? undoStdin(props);
        if (!undo) return;
        if (await ops.machineReplaced(sshTarget(props.ssh, props.node))) return;
        await runStep(props, undo, `undoing ${props.script}`);
    },
};
