import * as pulumi from "../lib/sdk";
import { EngineConfig, NodeConfig, SharedStorageConfig } from "../lib/cluster-config";
import { stepCall } from "../lib/remote-script";
import { HostSpec, ProvisionStep, SshSpec } from "../lib/resources";

export interface NodeArgs {
    node: NodeConfig;
    engine: EngineConfig;
    /** The node's address and pinned host key. */
    host: HostSpec;
    /** SSH user, port and private key (secret). */
    ssh: pulumi.Input<SshSpec>;
    /** Shared storage to ensure (NFS) and check on the node; none when not set. */
    sharedStorage?: SharedStorageConfig;
    /**
     * Steps to finish first. Managers are provisioned one after another, so an engine restart
     * (a daemon.json change) never takes two managers away at once.
     */
    after?: pulumi.Resource[];
}

/** daemon.json settings that follow from the storage choice (DCCN document 4.2.1 for devicemapper). */
export function storageDaemonSettings(engine: EngineConfig): Record<string, unknown> {
    switch (engine.storage) {
        case "devicemapper":
            return {
                "storage-driver": "devicemapper",
                "storage-opts": [
                    "dm.thinpooldev=/dev/mapper/docker-thinpool",
                    "dm.use_deferred_removal=true",
                    "dm.use_deferred_deletion=true",
                ],
            };
        case "overlay2":
            return { "storage-driver": "overlay2" };
        case "unmanaged":
            return {};
    }
}

/** The parameters of scripts/shared-storage.sh for a `sharedStorage` setting. */
export function sharedStorageEnv(storage: SharedStorageConfig): Record<string, string | undefined> {
    const nfs = storage.nfs;
    // fstab and mount write an IPv6 server in brackets: [2001:db8::1]:/docker.
    const server = nfs && (nfs.server.includes(":") ? `[${nfs.server}]` : nfs.server);
    return {
        SHARED_PATH: storage.path,
        CHECK_TIMEOUT: String(storage.timeout),
        NFS_SOURCE: nfs ? `${server}:${nfs.export}` : undefined,
        NFS_OPTIONS: nfs?.options,
    };
}

/** JSON with keys sorted at every level, so equal settings give equal text (no perpetual diff). */
export function stableJson(v: unknown): string {
    const sort = (x: unknown): unknown => Array.isArray(x) ? x.map(sort)
        : x && typeof x === "object" ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, sort((x as Record<string, unknown>)[k])]))
            : x;
    return JSON.stringify(sort(v), null, 2);
}

/**
 * One bare-metal host, provisioned over SSH as the DCCN kickstart post-install steps do it: the
 * engine installed and enabled, storage prepared (devicemapper thinpool on legacy engines,
 * overlay2 otherwise), daemon.json merged, then the shared storage (`sharedStorage`: the NFS mount
 * /mnt/docker) mounted where the program owns it and checked: a mount point that answers within its
 * time-out and is writable. Each step is an idempotent script from scripts/; it runs
 * again only when its script or parameters change, and reports `changed=0` when there was nothing to do.
 */
export class Node extends pulumi.ComponentResource {
    /** The last provisioning step: the swarm join waits for it. */
    readonly ready: pulumi.Resource;
    /** Result line of the daemon.json step (`DCCN_RESULT changed=0|1 ...`). */
    readonly daemonResult: pulumi.Output<string>;
    /**
     * The shared storage step (mounted, answering, writable), or `ready` when the stack has no
     * `sharedStorage`: what stacks, which keep their data there, wait for.
     */
    readonly storageReady: pulumi.Resource;
    /** Result line of the shared storage step; undefined without `sharedStorage`. */
    readonly storageResult?: pulumi.Output<string>;

    constructor(name: string, args: NodeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("dccn-swarm:node:Node", name, {}, opts);
        const { engine } = args;
        // Every step waits for `after` itself: an unchanged step in between would not carry the order.
        const after = args.after ?? [];
        const run = (step: string, script: string, env: Record<string, string | undefined>, data: string | undefined,
            dependsOn: pulumi.Resource[]) => new ProvisionStep(`${name}-${step}`, {
            node: args.host,
            ...stepCall(script, env, data),
            ssh: args.ssh,
        }, { parent: this, dependsOn: [...after, ...dependsOn] });

        let last: pulumi.Resource[] = [];
        if (engine.install) {
            last = [run("engine", "engine-install.sh", { DOCKER_PACKAGE: engine.package }, undefined, last)];
        }
        if (engine.storage === "devicemapper") {
            last = [run("thinpool", "storage-thinpool.sh", { DEVICE: engine.dataDevice, ENGINE_VERSION: engine.version }, undefined, last)];
        } else if (engine.storage === "overlay2" && engine.dataDevice) {
            last = [run("storage", "storage-overlay2.sh", { DEVICE: engine.dataDevice }, undefined, last)];
        }
        const daemon = { ...engine.daemon, ...storageDaemonSettings(engine) };
        const daemonStep = run("daemon", "daemon-json.sh", {
            STORAGE_DRIVER: engine.storage === "unmanaged" ? undefined : engine.storage,
            ENGINE_VERSION: engine.version,
        }, stableJson(daemon), last);
        this.ready = daemonStep;
        this.daemonResult = daemonStep.result;
        // After the engine steps; the swarm join does not wait for it (a node joins, stacks wait).
        const storageStep = args.sharedStorage && run("shared-storage", "shared-storage.sh", sharedStorageEnv(args.sharedStorage), undefined, [daemonStep]);
        this.storageReady = storageStep ?? daemonStep;
        this.storageResult = storageStep?.result;
        this.registerOutputs({ daemonResult: this.daemonResult, ...(storageStep ? { storageResult: storageStep.result } : {}) });
    }
}
