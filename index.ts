/**
 * dccn-swarm: the DCCN Docker Swarm cluster as one Pulumi program. This file only wires the
 * components together; what each does is in components/, the configuration in config.ts.
 */
import * as pulumi from "./lib/sdk";
import { Node } from "./components/node";
import { Registry, registryNodes } from "./components/registry";
import { Stack } from "./components/stack";
import { Swarm } from "./components/swarm";
import { loadConfig } from "./config";
import { checkProvider } from "./lib/resources";

/**
 * The program. It first asks the provider plugin whether it serves every kind declared here, and
 * lets that request go out before the configuration is read: the engine starts the plugin while
 * the program reads and checks the configuration, not after (lib/resources.ts checkProvider).
 * Its result is the stack's outputs.
 */
async function main() {
    pulumi.withoutStackTraces();
    await checkProvider();
    const { cluster, stackFile, ssh, hosts, stacks, registry: registryConfig, protection } = loadConfig();
    // Outside `dev` the swarm, its memberships, services and keys are protected from delete and replace
    // (lib/protection.ts); `dccn-swarm:allowDestroy: true` lifts it on purpose.
    const { protect } = protection;

    // Managers one after another (an engine restart never takes two away at once), then the workers side
    // by side: a worker whose engine restarts while a manager's does cannot rejoin until the quorum is back.
    let previousManager: Node | undefined;
    const nodeOf: Record<string, Node> = {};
    const provision = (n: (typeof cluster.nodes)[number]) => (nodeOf[n.hostname] = new Node(n.hostname, {
        node: n, engine: cluster.engine, sharedStorage: cluster.sharedStorage, host: hosts[n.hostname], ssh,
        after: previousManager ? [previousManager.ready] : [],
    }));
    for (const n of cluster.nodes.filter((n) => n.role === "manager")) previousManager = provision(n);
    for (const n of cluster.nodes.filter((n) => n.role !== "manager")) provision(n);

    const provisioned = Object.fromEntries(cluster.nodes.map((n) => [n.hostname, [nodeOf[n.hostname].ready]]));
    // The shared storage checked on every node (mounted, answering, writable): the registry and the
    // stacks keep their data there, so they deploy only after it.
    const storageReady = cluster.nodes.map((n) => nodeOf[n.hostname].storageReady);
    const swarm = new Swarm("swarm", { cluster, stackFile, ssh, hosts, provisioned, protect });

    // The private registry: after the swarm's membership and labels (it is placed by a label); every
    // node trusts its CA. Application stacks come after it (after a reboot or on a new cluster the
    // registry is up before anything pulls from it) and pull from it with its credentials.
    const registry = registryConfig && new Registry("registry", {
        config: registryConfig.config,
        passwords: registryConfig.passwords,
        stackFile,
        nodes: registryNodes(cluster, hosts, provisioned),
        ssh,
        protect,
        dependsOn: [...swarm.members, ...storageReady],
    });

    // Application stacks, after the swarm's membership: on destroy their services go first. They reach
    // the swarm through any node that is a manager when asked; all nodes in config order are the
    // candidates, so promoting or demoting one does not touch the stacks' resources.
    const candidates = cluster.nodes.map((n) => hosts[n.hostname]);
    const deployed = stacks.map(({ entry, spec, builds }) => new Stack(entry.name, {
        spec,
        builds,
        managers: candidates,
        ssh,
        resolveImage: entry.resolveImage,
        protect,
        ...(registry ? { registry: { endpoint: registry.endpoint, auth: registry.registryAuth, pushAuth: registry.pushAuth } } : {}),
        dependsOn: [...swarm.members, ...storageReady, ...(registry ? [registry.ready] : [])],
    }));

    return {
        environment: cluster.environment,
        /** Whether the swarm and its data are protected from `pulumi destroy` (lib/protection.ts). */
        protectedFromDestroy: protect,
        applicationStacks: Object.fromEntries(deployed.map((s, i) => [stacks[i].entry.name, s.serviceNames])),
        clusterId: swarm.clusterId,
        managers: swarm.managerCount,
        /** Managers that may fail while the swarm keeps its quorum. */
        faultTolerance: swarm.faultTolerance,
        swarmNodes: swarm.nodes,
        /** After `swarm.forceNewCluster`: whether the recovered manager's tasks came back with their ports. */
        swarmRecovery: swarm.recoveryReport,
        /** With `swarm.autolock: true`: the key that unlocks a manager after its engine restarted (a secret; `npm run ops -- unlock` uses it). */
        ...(cluster.swarm.autolock ? { swarmUnlockKey: swarm.unlockKey } : {}),
        /** The private registry: where images go (`docker push <endpoint>/<name>:<tag>`) and when its certificate expires. */
        privateRegistry: registry && {
            endpoint: registry.endpoint,
            users: registry.users,
            certificateNotAfter: registry.certificateNotAfter,
        },
        provisioning: pulumi.all(cluster.nodes.map((n) => nodeOf[n.hostname].daemonResult.apply((r) => `${n.hostname}: ${r}`))),
        /** Each node's shared storage check (`sharedStorage`): mounted, answering, writable. */
        sharedStorage: cluster.sharedStorage && pulumi.all(cluster.nodes.map((n) => nodeOf[n.hostname].storageResult!.apply((r) => `${n.hostname}: ${r}`))),
    };
}

export = main();
