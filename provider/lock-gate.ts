/**
 * The provider's side of the cluster lock (lib/cluster-lock.ts): taken at the first create, update
 * or delete that is not a preview, before that call changes anything (its reads overlap the lock's
 * round trips: lib/write-gate.ts), and held until the plugin ends with the deployment (the engine
 * stops it; the SSH channel closes with the process). Previews, diffs and reads never take it.
 *
 * The stack's configuration comes with the default provider's Configure request (the engine passes
 * the `dccn-swarm:` keys of the stack as `dccn-swarm:config:KEY`, objects as JSON): the nodes, the
 * SSH settings and key, and `lockWait`. The lock is kept on the first configured manager.
 */
import * as fs from "fs";
import * as path from "path";
import {
    acquireClusterLock, ClusterLockError, currentHolder, describeHolder, type HeldLock, lockNode, lockSwitchedOff, LOCK_SWITCH_ENV, LOCK_TOKEN_ENV,
    validateLockWait,
} from "../lib/cluster-lock";
import { knownHostsFor, pinnedKnownHostsLine, PROJECT, validateClusterConfig } from "../lib/cluster-config";
import { sshTarget } from "../lib/connection";
import { warmConnection, type SshTarget } from "../lib/ssh";

/** `dccn-swarm:config:nodes` (or `dccn-swarm:nodes`) -> `nodes`, values parsed where they are JSON. */
export function configFromVariables(vars: Iterable<[string, string]>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of vars) {
        const m = new RegExp(`^${PROJECT}:(?:config:)?(.+)$`).exec(k);
        if (!m) continue;
        let value: unknown = v;
        if (/^\s*[[{]/.test(v)) {
            try {
                value = JSON.parse(v);
            } catch { /* a plain string */ }
        }
        out[m[1]] = value;
    }
    return out;
}

/** The stack of a URN (`urn:pulumi:STACK::project::type::name`). */
export function stackOfUrn(urn: string): string {
    return urn.split("::")[0]?.split(":")[2] ?? "";
}

/** The command line of the process that started this one (the `pulumi` command), where Linux tells it. */
function parentCommand(): string | undefined {
    try {
        return fs.readFileSync(`/proc/${process.ppid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
    } catch {
        return undefined;
    }
}

export class LockGate {
    private config: Record<string, unknown> | undefined;
    private held: Promise<HeldLock> | undefined;

    /** From the Configure request (the default provider's: the stack's configuration). */
    configure(vars: Iterable<[string, string]>): void {
        const c = configFromVariables(vars);
        if (Object.keys(c).length > 0) this.config = c;
    }

    /**
     * Open the connection to the lock's node in the background, so that the first change does not
     * wait for the SSH handshake (it is usually also the manager the stacks are deployed through).
     * Nothing is run there; a configuration or connection problem is left for the first change to report.
     */
    warm(): void {
        if (lockSwitchedOff() || !this.config || this.config.nodes === undefined) return;
        try {
            warmConnection(lockTarget(this.config, "Pulumi.<stack>.yaml"));
        } catch { /* reported by the first change */ }
    }

    /** Take the lock unless this process holds it already (concurrent callers share one attempt). */
    async ensure(urn: string): Promise<void> {
        if (lockSwitchedOff()) return;
        if (!this.held) {
            const attempt = this.take(stackOfUrn(urn));
            this.held = attempt;
            attempt.then((l) => l.lost.then((why) => {
                // Lost while held (the connection to the first manager dropped): taken again before the next change.
                console.error(`dccn-swarm: the cluster lock was lost (${why}); it is taken again before the next change`);
                if (this.held === attempt) this.held = undefined;
            }), () => {
                if (this.held === attempt) this.held = undefined;
            });
        }
        await this.held;
    }

    private async take(stack: string): Promise<HeldLock> {
        const stackFile = `Pulumi.${stack || "<stack>"}.yaml`;
        const c = this.config;
        if (!c || c.nodes === undefined) {
            throw new ClusterLockError(`${stackFile}: the provider got no \`${PROJECT}:nodes\` with its configuration, so it cannot find the first manager ` +
                `to take the cluster lock on; run \`pulumi up\` from the project directory (or set ${LOCK_SWITCH_ENV}=off if no one else can change the cluster)`);
        }
        const t = lockTarget(c, stackFile);
        const wait = validateLockWait(c.lockWait, stackFile);
        if (wait.findings.length > 0) throw new ClusterLockError(`${stackFile}: ${PROJECT}:lockWait: ${wait.findings[0].message}`);
        return acquireClusterLock(t, {
            waitSec: wait.value,
            holder: currentHolder(parentCommand() ?? "pulumi"),
            parentToken: process.env[LOCK_TOKEN_ENV] || undefined,
            stackFile,
            onBusy: (h) => console.error(`dccn-swarm: waiting up to ${wait.value}s for the cluster lock on ${t.name}, held by ${describeHolder(h)}`),
        });
    }
}

/** The SSH target of the first configured manager, from the stack's configuration as the provider got it. */
export function lockTarget(c: Record<string, unknown>, stackFile: string, cwd = process.cwd()): SshTarget {
    const key = typeof c.sshPrivateKey === "string" && c.sshPrivateKey ? c.sshPrivateKey : undefined;
    const { config: cluster } = validateClusterConfig({
        environment: c.environment, ssh: c.ssh, nodes: c.nodes, swarm: c.swarm,
        hasSshPrivateKey: !!key, sshPrivateKeyIsSecret: key ? true : undefined,
    }, stackFile);
    const name = lockNode(cluster);
    const node = cluster.nodes.find((n) => n.hostname === name)!;
    let privateKey = key ?? "";
    if (cluster.ssh.privateKeyFile) {
        const file = path.resolve(cwd, cluster.ssh.privateKeyFile);
        try {
            privateKey = fs.readFileSync(file, "utf8");
        } catch (e) {
            throw new ClusterLockError(`${stackFile}: ${PROJECT}:ssh.privateKeyFile: ${file} cannot be read to take the cluster lock: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
    }
    let lines: string[];
    if (node.hostKey) lines = [pinnedKnownHostsLine(node.address, cluster.ssh.port, node.hostKey)];
    else {
        const file = cluster.ssh.knownHostsFile ? path.resolve(cwd, cluster.ssh.knownHostsFile) : "";
        const text = file && fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
        lines = knownHostsFor(text, node.address, cluster.ssh.port);
    }
    if (lines.length === 0) {
        throw new ClusterLockError(`${stackFile}: ${PROJECT}:nodes: no SSH host key is pinned for ${node.hostname} (${node.address}), where the cluster lock is kept; ` +
            "set its `hostKey` or list it in `ssh.knownHostsFile`");
    }
    return sshTarget({ user: cluster.ssh.user, port: cluster.ssh.port, privateKey, connectTimeout: cluster.ssh.connectTimeout },
        { name: node.hostname, address: node.address, knownHosts: lines.join("\n") });
}
