/**
 * Operator procedures planned from the stack configuration (and, for backups, what the swarm says):
 * swarm-state backup and restore (Docker's "administer and maintain a swarm"), emergency shutdown
 * and reboot (DCCN document 4.5, 4.5.1). Pure: no I/O; tools/ops.ts carries the plans out.
 */
import { ClusterConfig, NodeConfig, PROJECT } from "./cluster-config";
import { quorumSize } from "./quorum";

export class OpsError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "OpsError";
    }
}

/** How a node is stopped: its engine (lab nodes, whose sshd must stay up) or the machine itself. */
export type StopMode = "engine" | "poweroff";

export function parseStopMode(v: string): StopMode {
    if (v !== "engine" && v !== "poweroff") throw new OpsError(`--stop must be \`engine\` or \`poweroff\`, got ${JSON.stringify(v)}`);
    return v;
}

/** The default: bare metal is powered off; the lab (environment dev) stops engines. */
export function defaultStopMode(cluster: ClusterConfig): StopMode {
    return cluster.environment === "dev" ? "engine" : "poweroff";
}

function managersOf(cluster: ClusterConfig): NodeConfig[] {
    return cluster.nodes.filter((n) => n.role === "manager");
}

/** A configured node by name; the error names the stack file, the key and the names there are. */
export function configuredNode(cluster: ClusterConfig, stackFile: string, name: string): NodeConfig {
    const n = cluster.nodes.find((x) => x.hostname === name);
    if (!n) {
        throw new OpsError(`${stackFile}: ${PROJECT}:nodes has no node ${JSON.stringify(name)}; ` +
            `name one of: ${cluster.nodes.map((x) => x.hostname).join(", ")}`);
    }
    return n;
}

function configuredManager(cluster: ClusterConfig, stackFile: string, name: string, what: string): NodeConfig {
    const n = configuredNode(cluster, stackFile, name);
    if (n.role !== "manager") {
        throw new OpsError(`${stackFile}: ${PROJECT}:nodes: ${name} is a worker; ${what} needs a manager: ` +
            `name one of: ${managersOf(cluster).map((m) => m.hostname).join(", ")}`);
    }
    return n;
}

// ------------------------------------------------------------------------------------ backup

/** A manager as `docker node ls` shows it on a manager with a quorum. */
export interface ObservedManager {
    hostname: string;
    /** Reachable or Leader. */
    reachable: boolean;
    leader: boolean;
}

export interface BackupPlan {
    node: string;
    /** Managers in the swarm, and how many keep answering while the engine on `node` is stopped. */
    managers: number;
    remaining: number;
    /** Set when the backup takes the quorum away for its duration (allowed with --force). */
    quorumLoss?: string;
}

/**
 * Which manager to back up. Named (`--node`): it must be a configured manager. Otherwise a reachable
 * configured manager that is not the leader (no election needed), else the leader. `observed`
 * undefined: no manager with a quorum answered (a node must then be named). Stopping the engine for
 * the copy must leave a quorum, unless `force` (a single-manager swarm is without a quorum for the
 * few seconds of the copy: running services keep running, no change is possible meanwhile).
 */
export function planBackup(cluster: ClusterConfig, stackFile: string, observed: ObservedManager[] | undefined,
    opts: { node?: string; force: boolean }): BackupPlan {
    let node: string;
    if (opts.node) {
        node = configuredManager(cluster, stackFile, opts.node, "a swarm-state backup").hostname;
    } else {
        if (!observed) throw new OpsError("no manager with a quorum answered; name the manager to back up with --node");
        const configured = new Set(managersOf(cluster).map((m) => m.hostname));
        const candidates = observed.filter((m) => m.reachable && configured.has(m.hostname));
        const pick = candidates.find((m) => !m.leader) ?? candidates[0];
        if (!pick) {
            throw new OpsError(`no configured manager (${[...configured].join(", ")}) is a reachable swarm manager; ` +
                "name the manager to back up with --node");
        }
        node = pick.hostname;
    }
    if (!observed) return { node, managers: 0, remaining: 0 };
    const me = observed.find((m) => m.hostname === node);
    if (!me || !me.reachable) {
        throw new OpsError(`${node} is not a reachable manager of the swarm (docker node ls); back up another manager`);
    }
    const managers = observed.length;
    const remaining = observed.filter((m) => m.reachable).length - 1;
    const plan: BackupPlan = { node, managers, remaining };
    if (remaining < quorumSize(managers)) {
        const why = `stopping the engine on ${node} leaves ${remaining} of ${managers} managers, fewer than the quorum of ` +
            `${quorumSize(managers)}: until it is back the swarm accepts no changes and reschedules nothing`;
        if (!opts.force) throw new OpsError(`${why}; pass --force to accept that for the backup's duration`);
        plan.quorumLoss = why;
    }
    return plan;
}

/** Restore onto a configured manager (it becomes the only manager; `pulumi up` adds the others). */
export function planRestore(cluster: ClusterConfig, stackFile: string, node: string | undefined): NodeConfig {
    if (!node) throw new OpsError("--node is required: the configured manager to restore the swarm state onto");
    return configuredManager(cluster, stackFile, node, "restoring the swarm state");
}

// ------------------------------------------------------------------------------ shutdown, reboot

export type Step =
    | { kind: "demote"; node: string; via: string }
    | { kind: "remove-services"; via: string; stacks: string[] }
    | { kind: "stop"; node: string; mode: StopMode }
    | { kind: "start"; node: string; mode: StopMode }
    | { kind: "wait-ready"; nodes: string[]; via: string }
    | { kind: "promote"; node: string; via: string }
    | { kind: "pulumi-up"; stack: string; order: string[] };

export interface OpsStep {
    /** The document's step number this belongs to (4.5 / 4.5.1). */
    doc: string;
    text: string;
    step: Step;
}

export interface StackPlanInput {
    /** Stack environment name (`--stack`). */
    stack: string;
    /** Application stack names in `dccn-swarm:stacks`, in config order. */
    stacks: string[];
    /** Whether `dccn-swarm:registry` is configured: the registry comes back before the stacks. */
    registry: boolean;
    mode: StopMode;
}

/** The manager stopped last and started first: the bootstrap manager. */
export function lastManager(cluster: ClusterConfig): string {
    return cluster.swarm.bootstrapManager || managersOf(cluster)[0].hostname;
}

function stopText(mode: StopMode, node: string): string {
    return mode === "poweroff" ? `power off ${node} (systemctl poweroff)` : `stop the engine on ${node} (systemctl stop docker)`;
}

/**
 * The document's 4.5, in its order: from one manager (the last manager), demote the other managers
 * one at a time, remove the stacks and services, stop every worker (the demoted managers among them),
 * then the last manager.
 */
export function planShutdown(cluster: ClusterConfig, input: StackPlanInput): OpsStep[] {
    const last = lastManager(cluster);
    const others = managersOf(cluster).filter((m) => m.hostname !== last).map((m) => m.hostname);
    const workers = cluster.nodes.filter((n) => n.role === "worker").map((n) => n.hostname);
    const steps: OpsStep[] = [];
    for (const node of others) {
        steps.push({ doc: "4.5 step 2", text: `demote ${node} (docker node demote, on ${last})`, step: { kind: "demote", node, via: last } });
    }
    const named = input.stacks.length ? `stacks ${input.stacks.join(", ")} and every other service` : "every service";
    steps.push({ doc: "4.5 step 3", text: `remove ${named} (docker stack rm, docker service rm, on ${last}); wait until no task runs`,
        step: { kind: "remove-services", via: last, stacks: input.stacks } });
    for (const node of [...others, ...workers]) {
        steps.push({ doc: "4.5 step 4", text: stopText(input.mode, node), step: { kind: "stop", node, mode: input.mode } });
    }
    steps.push({ doc: "4.5 step 5", text: `${stopText(input.mode, last)}: the last manager`, step: { kind: "stop", node: last, mode: input.mode } });
    return steps;
}

/**
 * The document's 4.5.1, in its order: the last manager first, then the other nodes, promote to the
 * configured managers (one at a time), then the stacks: `pulumi up --refresh` recreates what the
 * shutdown removed, the registry first (stacks depend on its readiness), then the rest.
 */
export function planReboot(cluster: ClusterConfig, input: StackPlanInput): OpsStep[] {
    const last = lastManager(cluster);
    const rest = cluster.nodes.map((n) => n.hostname).filter((h) => h !== last);
    const others = managersOf(cluster).filter((m) => m.hostname !== last).map((m) => m.hostname);
    const startText = (node: string) => input.mode === "poweroff"
        ? `power on ${node} (console or IPMI) and wait until its engine answers`
        : `start the engine on ${node} (systemctl start docker)`;
    const steps: OpsStep[] = [
        { doc: "4.5.1 step 1", text: `${startText(last)}: the last manager`, step: { kind: "start", node: last, mode: input.mode } },
        { doc: "4.5.1 step 1", text: `wait until ${last} leads the swarm`, step: { kind: "wait-ready", nodes: [last], via: last } },
    ];
    for (const node of rest) steps.push({ doc: "4.5.1 step 2", text: startText(node), step: { kind: "start", node, mode: input.mode } });
    if (rest.length) {
        steps.push({ doc: "4.5.1 step 2", text: `wait until ${rest.join(", ")} are Ready`, step: { kind: "wait-ready", nodes: rest, via: last } });
    }
    for (const node of others) {
        steps.push({ doc: "4.5.1 step 3", text: `promote ${node} (docker node promote, on ${last})`, step: { kind: "promote", node, via: last } });
    }
    const order = [...(input.registry ? ["registry"] : []), ...input.stacks];
    const what = order.length === 0 ? "nothing to deploy"
        : input.registry ? `the registry first (the stacks depend on registry.ready), then ${input.stacks.join(", ") || "no stack"}`
            : `stacks ${input.stacks.join(", ")} (no registry configured)`;
    steps.push({ doc: "4.5.1 steps 4-5", text: `pulumi up --refresh --stack ${input.stack}: ${what}`,
        step: { kind: "pulumi-up", stack: input.stack, order } });
    return steps;
}

export function renderPlan(title: string, steps: OpsStep[]): string {
    return [title, ...steps.map((s, i) => `  ${String(i + 1).padStart(2)}. [${s.doc}] ${s.text}`)].join("\n") + "\n";
}
