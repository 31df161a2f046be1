import * as pulumi from "../lib/sdk";
import { ClusterConfig, SwarmConfig } from "../lib/cluster-config";
import { faultTolerance } from "../lib/quorum";
import { HostSpec, NodeLabels, SshSpec, SwarmCluster, SwarmMember } from "../lib/resources";

export interface SwarmArgs {
    cluster: ClusterConfig;
    stackFile: string;
    ssh: pulumi.Input<SshSpec>;
    hosts: Record<string, HostSpec>;
    /** Per hostname, what must be done on the node before it joins (its provisioning). */
    provisioned: Record<string, pulumi.Resource[]>;
    /**
     * Create the resources that cannot be given back as they were with Pulumi's `protect` (every
     * environment but `dev`, unless `allowDestroy`: lib/protection.ts says which and why). Default false.
     */
    protect?: boolean;
}

export interface SwarmNodeOutput {
    hostname: string;
    address: string;
    role: string;
    availability: string;
    status: string;
    labels: Record<string, string>;
    engineVersion: string;
}

/** The security keys of `dccn-swarm:swarm` that are set, as the swarm resource's inputs. */
export function securityInputs(sw: SwarmConfig): Partial<Pick<SwarmConfig, "autolock" | "rotateJoinTokens" | "rotateUnlockKey" | "rotateCa" | "nodeCertExpiry">> {
    const out: ReturnType<typeof securityInputs> = {};
    for (const k of ["autolock", "rotateJoinTokens", "rotateUnlockKey", "rotateCa", "nodeCertExpiry"] as const) {
        if (sw[k] !== undefined) (out as Record<string, unknown>)[k] = sw[k];
    }
    return out;
}

/** The `swarmRecovery` output when no `forceNewCluster` recovery ran (an undefined output draws a warning on every run). */
export const NO_RECOVERY = "none (no forceNewCluster recovery has run)";

/**
 * The swarm and its membership (DCCN 4.1-4.2, tutorial 8.3-8.5): `docker swarm init` on the bootstrap
 * manager; other managers join one at a time, each after the previous one (Raft adds one voter at a
 * time), workers in parallel; roles, availability and labels kept as configured. On `pulumi destroy`
 * the order reverses: workers and the other managers leave (demoted first), the last manager last.
 */
export class Swarm extends pulumi.ComponentResource {
    readonly clusterId: pulumi.Output<string>;
    /** After a `forceNewCluster` recovery: whether its node's tasks came back ("none" before any). */
    readonly recoveryReport: pulumi.Output<string>;
    /** The unlock key of an autolocked swarm (`swarm.autolock: true`); a secret. */
    readonly unlockKey: pulumi.Output<string | undefined>;
    readonly nodes: pulumi.Output<SwarmNodeOutput[]>;
    readonly managerCount: number;
    readonly faultTolerance: number;
    /** Every node's label set (each after its membership): stacks depend on these, so they go before nodes leave. */
    readonly members: pulumi.Resource[];

    constructor(name: string, args: SwarmArgs, opts?: pulumi.ComponentResourceOptions) {
        super("dccn-swarm:swarm:Swarm", name, {}, opts);
        const { cluster, hosts } = args;
        const managers = cluster.nodes.filter((n) => n.role === "manager");
        const managerHosts = managers.map((m) => hosts[m.hostname]);
        const boot = cluster.swarm.bootstrapManager;

        const swarm = new SwarmCluster(`${name}-cluster`, {
            stackFile: args.stackFile,
            bootstrap: boot,
            managers: managerHosts,
            forceNewCluster: cluster.swarm.forceNewCluster ?? "",
            ssh: args.ssh,
            // The security settings only when configured: a stack that sets none keeps the inputs it had.
            ...securityInputs(cluster.swarm),
        }, {
            parent: this,
            protect: !!args.protect,
            dependsOn: args.provisioned[boot] ?? [],
            // The SSH spec carries the private key.
            additionalSecretOutputs: ["ssh"],
            // Which manager bootstrapped the swarm matters only at creation.
            ignoreChanges: ["bootstrap"],
        });
        this.clusterId = swarm.clusterId;
        this.unlockKey = pulumi.secret(swarm.unlockKey);
        this.recoveryReport = swarm.recoveryReport.apply((r) => r || NO_RECOVERY);

        // Bootstrap first, then the other managers in a chain, then workers side by side.
        const ordered = [
            ...managers.filter((m) => m.hostname === boot),
            ...managers.filter((m) => m.hostname !== boot),
            ...cluster.nodes.filter((n) => n.role === "worker"),
        ];
        const members: SwarmMember[] = [];
        const labels: NodeLabels[] = [];
        let previousManager: SwarmMember | undefined;
        for (const n of ordered) {
            const deps: pulumi.Resource[] = [swarm, ...(args.provisioned[n.hostname] ?? [])];
            // Managers join (and are demoted on removal) one at a time so the quorum holds.
            if (n.role === "manager" && previousManager) deps.push(previousManager);
            const member = new SwarmMember(`${name}-${n.hostname}`, {
                stackFile: args.stackFile,
                node: hosts[n.hostname],
                role: n.role,
                availability: n.availability,
                managers: managerHosts,
                clusterId: swarm.clusterId,
                clusterEpoch: n.role === "manager" ? swarm.recoveries : 0,
                ssh: args.ssh,
            }, { parent: this, protect: !!args.protect, dependsOn: deps });
            if (n.role === "manager") previousManager = member;
            members.push(member);
            labels.push(new NodeLabels(`${name}-${n.hostname}-labels`, {
                node: hosts[n.hostname],
                nodeId: member.nodeId,
                labels: n.labels,
                managers: managerHosts,
                ssh: args.ssh,
            }, { parent: this, dependsOn: [member] }));
        }
        // Each label set depends on its membership: depending on the label sets orders after both.
        this.members = labels;
        this.managerCount = managers.length;
        this.faultTolerance = faultTolerance(managers.length);
        this.nodes = pulumi.all(ordered.map((n, i) => pulumi.all([members[i].role, members[i].availability,
            members[i].status, members[i].engineVersion, labels[i].labels]).apply(([role, availability, status, engineVersion, l]) => ({
            hostname: n.hostname, address: n.address, role, availability, status, engineVersion, labels: l,
        }))));
        this.registerOutputs({ clusterId: this.clusterId, nodes: this.nodes });
    }
}
