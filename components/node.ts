import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { EngineConfig, NodeConfig } from "../lib/cluster-config";
import { readScript, scriptStdin } from "../lib/remote-script";

export interface NodeArgs {
    node: NodeConfig;
    engine: EngineConfig;
    /** SSH user, port, private key (secret) and the node's pinned host key. */
    connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
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
 * overlay2 otherwise), daemon.json merged. Each step is an idempotent script from scripts/; it runs
 * again only when its script or parameters change.
 */
export class Node extends pulumi.ComponentResource {
    /** The last provisioning step: the swarm join waits for it. */
    readonly ready: pulumi.Resource;
    /** Result line of the daemon.json step (`changed=0|1 ...`). */
    readonly daemonResult: pulumi.Output<string>;

    constructor(name: string, args: NodeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("dccn-swarm:node:Node", name, {}, opts);
        const { engine } = args;
        const run = (step: string, script: string, env: Record<string, string | undefined>, data: string | undefined,
            dependsOn: pulumi.Resource[]) => {
            const stdin = scriptStdin(readScript(script), env, data);
            return new command.remote.Command(`${name}-${step}`, {
                connection: args.connection,
                create: "bash -s",
                // Re-run on change: every script converges and reports `changed=0` when nothing was to do.
                update: "bash -s",
                stdin,
                // Scripts print progress on stderr and one DCCN_RESULT line on stdout.
                logging: command.types.enums.remote.Logging.StdoutAndStderr,
            }, { parent: this, dependsOn });
        };

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
        const daemonCmd = run("daemon", "daemon-json.sh", {}, stableJson(daemon), last);
        this.ready = daemonCmd;
        this.daemonResult = daemonCmd.stdout.apply((s) => s.split("\n").reverse().find((l) => l.startsWith("DCCN_RESULT ")) ?? "");
        this.registerOutputs({ daemonResult: this.daemonResult });
    }
}
