/**
 * The cluster-wide lock: one per cluster, kept on its first configured manager, held for the whole of
 * a `pulumi up`/`destroy` (by the provider plugin, from its first change to the cluster until the
 * deployment ends) and of every `npm run ops` command. A second holder waits `lockWait` seconds, then
 * fails naming who holds it and since when.
 *
 * On the node it is flock(1) on /run/dccn-swarm/cluster.lock, taken by scripts/cluster-lock.sh on an
 * SSH channel of the pooled connection (lib/ssh.ts openSession) that stays open while the lock is
 * held: a holder that dies closes its connection and the lock is free at once; one whose machine
 * vanishes stops its heartbeat and the lock is free after HEARTBEAT_SEC.
 *
 * A holder that starts a process which takes the lock itself (`ops reboot` runs `pulumi up`) hands it
 * a random token in the environment (LOCK_TOKEN_ENV): the child sees the lock as its own instead of
 * waiting for its parent. The token is compared on the node (kept there mode 600, never printed).
 *
 * The pure parts (settings, the holder's description, the script's answers, messages) are apart from
 * acquireClusterLock, the one function that talks to a node.
 */
import { randomBytes } from "crypto";
import * as os from "os";
import type { ClusterConfig, ConfigFinding } from "./cluster-config";
import { readScript, scriptStdinKeepInput } from "./remote-script";
import { openSession, type OpenSession, type SshTarget } from "./ssh";

/** Where the lock lives on the first manager: tmpfs, so a reboot leaves no holder behind. */
export const LOCK_DIR = "/run/dccn-swarm";
/** Seconds a second holder waits by default (`dccn-swarm:lockWait`). */
export const DEFAULT_LOCK_WAIT_SEC = 120;
/** The holder sends a line this often; the node gives the lock up after HEARTBEAT_SEC without one. */
export const HEARTBEAT_EVERY_SEC = 5;
export const HEARTBEAT_SEC = 30;
/** The hand-over token of the parent holder (set for the processes an `ops` command starts). */
export const LOCK_TOKEN_ENV = "DCCN_CLUSTER_LOCK_TOKEN";
/** `off`: no lock at all (the first manager is gone for good and no one else deploys: said in the error). */
export const LOCK_SWITCH_ENV = "DCCN_CLUSTER_LOCK";

// ---------------------------------------------------------------------------------------------
// Settings (pure)

/** `dccn-swarm:lockWait`: seconds a second holder waits, 0 to fail at once. */
export function validateLockWait(raw: unknown, stackFile: string): { value: number; findings: ConfigFinding[] } {
    if (raw === undefined || raw === null || raw === "") return { value: DEFAULT_LOCK_WAIT_SEC, findings: [] };
    const n = typeof raw === "number" ? raw : typeof raw === "string" && /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
    if (!Number.isInteger(n) || n < 0 || n > 86_400) {
        return {
            value: DEFAULT_LOCK_WAIT_SEC,
            findings: [{
                level: "error", key: "lockWait",
                message: `must be a whole number of seconds from 0 to 86400 (how long a second \`pulumi up\` or \`ops\` command waits for the cluster lock), ` +
                    `got ${JSON.stringify(raw)}; e.g. \`pulumi config set --stack ${stackOf(stackFile)} lockWait 300\``,
            }],
        };
    }
    return { value: n, findings: [] };
}

function stackOf(stackFile: string): string {
    return /^Pulumi\.(.+)\.yaml$/.exec(stackFile)?.[1] ?? "STACK";
}

/**
 * The node that keeps the lock: the first configured manager; during a recovery
 * (`swarm.forceNewCluster`), the surviving manager named there, as the first one may be lost.
 */
export function lockNode(cluster: Pick<ClusterConfig, "nodes"> & { swarm?: { forceNewCluster?: string } }): string {
    if (cluster.swarm?.forceNewCluster) return cluster.swarm.forceNewCluster;
    const m = cluster.nodes.find((n) => n.role === "manager");
    if (!m) throw new Error("the cluster has no manager to keep its lock on");
    return m.hostname;
}

/** Whether the lock is switched off (LOCK_SWITCH_ENV=off). */
export function lockSwitchedOff(env: NodeJS.ProcessEnv = process.env): boolean {
    return (env[LOCK_SWITCH_ENV] ?? "").trim().toLowerCase() === "off";
}

// ---------------------------------------------------------------------------------------------
// The holder's description (pure)

export interface Holder {
    /** user@host of the process. */
    who: string;
    pid: number;
    /** The command, e.g. `pulumi up --stack prod` or `npm run ops -- backup --stack prod`. */
    command: string;
    /** When the lock was taken (the node's clock), ISO 8601. */
    since?: string;
}

/** One line, printable, at most `max` characters: what a command line may show of itself. */
export function oneLine(s: string, max = 300): string {
    const flat = s.replace(/[\x00-\x1f\x7f]+/g, " ").replace(/\s+/g, " ").trim();
    return flat.length > max ? flat.slice(0, max - 3) + "..." : flat;
}

/** `who=... pid=... command=...` with percent-encoded values: one shell-safe line for the node. */
export function encodeHolder(h: Holder): string {
    const fields: [string, string][] = [["who", h.who], ["pid", String(h.pid)], ["command", oneLine(h.command)]];
    if (h.since) fields.push(["since", h.since]);
    return fields.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join(" ");
}

/** The description as the node prints it back (unknown or malformed fields left empty). */
export function parseHolder(text: string): Holder {
    const v: Record<string, string> = {};
    for (const kv of text.trim().split(/\s+/)) {
        const i = kv.indexOf("=");
        if (i <= 0) continue;
        try {
            v[kv.slice(0, i)] = oneLine(decodeURIComponent(kv.slice(i + 1)));
        } catch {
            v[kv.slice(0, i)] = oneLine(kv.slice(i + 1));
        }
    }
    const pid = Number(v.pid);
    return { who: v.who || "unknown", pid: Number.isInteger(pid) ? pid : 0, command: v.command ?? "", ...(v.since ? { since: v.since } : {}) };
}

/** `root@admin1 (pid 4242: pulumi up --stack prod) since 2026-12-07T10:01:02Z (3 min ago)`. */
export function describeHolder(h: Holder, now: Date = new Date()): string {
    const what = [h.pid ? `pid ${h.pid}` : "", h.command].filter(Boolean).join(": ");
    let since = "";
    if (h.since) {
        const t = Date.parse(h.since);
        const ago = Number.isNaN(t) ? "" : ` (${agoText(Math.max(0, now.getTime() - t) / 1000)})`;
        since = ` since ${h.since}${ago}`;
    }
    return `${h.who}${what ? ` (${what})` : ""}${since}`;
}

function agoText(sec: number): string {
    if (sec < 90) return `${Math.round(sec)} s ago`;
    if (sec < 90 * 60) return `${Math.round(sec / 60)} min ago`;
    return `${(sec / 3600).toFixed(1)} h ago`;
}

/**
 * This process as a holder: user@host, the pid, and the command the administrator typed (for the
 * provider plugin, its parent's: the `pulumi` command). Nothing secret is on those command lines
 * (secrets travel on standard input or in files), and only one line of at most 300 characters is kept.
 */
export function currentHolder(commandLine?: string): Holder {
    let user = "unknown";
    try {
        user = os.userInfo().username;
    } catch { /* no passwd entry */ }
    return { who: `${user}@${os.hostname()}`, pid: process.pid, command: oneLine(commandLine ?? process.argv.join(" ")) };
}

/** A fresh hand-over token (for LOCK_TOKEN_ENV). */
export function newToken(): string {
    return randomBytes(18).toString("base64url");
}

// ---------------------------------------------------------------------------------------------
// The script's answers (pure)

export type LockAnswer =
    | { state: "held" }
    | { state: "busy" | "inherited" | "timeout"; holder: Holder }
    | { state: "error"; error: string };

/** One `DCCN_LOCK ...` line of scripts/cluster-lock.sh; undefined for any other line. */
export function parseLockLine(line: string): LockAnswer | undefined {
    const m = /^DCCN_LOCK (\S+)(?: (.*))?$/.exec(line.trim());
    if (!m) return undefined;
    const [, state, rest = ""] = m;
    if (state === "held") return { state };
    if (state === "busy" || state === "inherited" || state === "timeout") return { state, holder: parseHolder(rest) };
    const err = /^error=(\S+)/.exec(state);
    return { state: "error", error: err ? err[1] : state };
}

export class ClusterLockError extends Error {
    constructor(message: string, readonly holder?: Holder) {
        super(message);
        this.name = "ClusterLockError";
    }
}

/** The refusal when the lock stays held: who, since when, and what to do. */
export function busyMessage(node: string, holder: Holder, waitSec: number, stackFile?: string, now: Date = new Date()): string {
    const waited = waitSec > 0 ? `still held after waiting ${waitSec}s` : "held";
    return `the cluster lock on ${node} is ${waited} by ${describeHolder(holder, now)}; ` +
        "wait until that command ends and run again" +
        (stackFile ? `, or let the next one wait longer (\`dccn-swarm:lockWait\` in ${stackFile}, seconds)` : "") +
        `. A holder that died frees it within ${HEARTBEAT_SEC}s`;
}

/** The error when the node that keeps the lock cannot be reached. */
export function unreachableMessage(node: string, reason: string): string {
    return `cannot take the cluster lock on ${node} (the first configured manager): ${reason}. ` +
        `If ${node} is down for good and no one else is changing the cluster, run with ${LOCK_SWITCH_ENV}=off`;
}

// ---------------------------------------------------------------------------------------------
// Taking it (talks to the node)

/**
 * The lock for an operator command (tools/ops.ts), on the first manager of `setup`: waits
 * `setup.lockWait` seconds, says so while it waits, and hands its token to the processes this one
 * starts (LOCK_TOKEN_ENV in this process's environment: `ops reboot` runs `pulumi up`).
 */
export async function lockForCommand(
    setup: { stackFile: string; cluster: Pick<ClusterConfig, "nodes">; endpoints: { hostname: string; target?: SshTarget; error?: string }[]; lockWait: number },
    say: (line: string) => void, env: NodeJS.ProcessEnv = process.env,
): Promise<HeldLock | undefined> {
    if (lockSwitchedOff(env)) {
        say(`warning: ${LOCK_SWITCH_ENV}=off: the cluster lock is not taken; make sure no one else changes the cluster meanwhile`);
        return undefined;
    }
    const node = lockNode(setup.cluster);
    const ep = setup.endpoints.find((e) => e.hostname === node);
    if (!ep?.target) throw new ClusterLockError(unreachableMessage(node, ep?.error ?? "not reachable"));
    const token = newToken();
    const lock = await acquireClusterLock(ep.target, {
        waitSec: setup.lockWait, holder: currentHolder(), token, parentToken: env[LOCK_TOKEN_ENV] || undefined, stackFile: setup.stackFile,
        onBusy: (h) => say(`waiting up to ${setup.lockWait}s for the cluster lock on ${node}, held by ${describeHolder(h)}`),
    });
    if (!lock.inherited) env[LOCK_TOKEN_ENV] = token;
    return lock;
}

export interface LockOptions {
    /** Seconds to wait while someone else holds it. */
    waitSec: number;
    holder: Holder;
    /** This holder's hand-over token, for the processes it starts. */
    token?: string;
    /** The token of the holder that started this process (LOCK_TOKEN_ENV). */
    parentToken?: string;
    /** Called once when someone else holds it (before waiting). */
    onBusy?: (holder: Holder) => void;
    /** Named in the refusal (where `lockWait` is set). */
    stackFile?: string;
    /** Tests: another directory than LOCK_DIR, another heartbeat. */
    lockDir?: string;
    heartbeatSec?: number;
    heartbeatEverySec?: number;
}

export interface HeldLock {
    /** Held by the parent process (the token): nothing is kept open here. */
    readonly inherited: boolean;
    /** Settles if the lock is lost while held (the connection to the node dropped). */
    readonly lost: Promise<string>;
    release(): Promise<void>;
}

/** Take the cluster lock on `t` (the first manager), waiting up to `waitSec`; throws ClusterLockError. */
export async function acquireClusterLock(t: SshTarget, o: LockOptions): Promise<HeldLock> {
    const heartbeat = o.heartbeatSec ?? HEARTBEAT_SEC;
    const env: Record<string, string | undefined> = {
        LOCK_DIR: o.lockDir ?? LOCK_DIR,
        WAIT: String(o.waitSec),
        HEARTBEAT: String(heartbeat),
        HOLDER: encodeHolder(o.holder),
        TOKEN: o.token,
        PARENT_TOKEN: o.parentToken,
    };
    let session: OpenSession;
    try {
        session = await openSession(t, scriptStdinKeepInput(readScript("cluster-lock.sh"), env), 60);
    } catch (e) {
        throw new ClusterLockError(unreachableMessage(t.name, (e as Error).message));
    }
    // Heartbeats from now on: while waiting they queue on the channel, harmlessly.
    const every = (o.heartbeatEverySec ?? Math.min(HEARTBEAT_EVERY_SEC, Math.max(1, Math.floor(heartbeat / 3)))) * 1000;
    const beat = setInterval(() => session.write("\n"), every);
    beat.unref();
    const stop = () => {
        clearInterval(beat);
        session.close();
    };
    for (;;) {
        const line = await session.nextLine();
        if (line === undefined) {
            stop();
            const { code, stderr } = await session.closed;
            throw new ClusterLockError(unreachableMessage(t.name, code === undefined
                ? "the connection closed" : `scripts/cluster-lock.sh ended (exit ${code})${stderr.trim() ? `: ${oneLine(stderr, 400)}` : ""}`));
        }
        const a = parseLockLine(line);
        if (!a) continue;
        switch (a.state) {
            case "busy":
                o.onBusy?.(a.holder);
                continue;
            case "timeout":
                stop();
                throw new ClusterLockError(busyMessage(t.name, a.holder, o.waitSec, o.stackFile), a.holder);
            case "error":
                stop();
                throw new ClusterLockError(unreachableMessage(t.name, a.error === "no-flock"
                    ? "flock is not installed there (util-linux)" : `scripts/cluster-lock.sh: ${a.error}`));
            case "inherited":
                stop();
                return { inherited: true, lost: new Promise<string>(() => undefined), release: async () => undefined };
            case "held": {
                // Held until the process ends (or release): the lock does not keep it alive.
                session.unref();
                let released = false;
                const lost = session.closed.then(() => {
                    clearInterval(beat);
                    return released ? "" : `the SSH channel to ${t.name} closed`;
                });
                return {
                    inherited: false,
                    lost: lost.then((r) => (r ? r : new Promise<string>(() => undefined))),
                    release: async () => {
                        released = true;
                        stop();
                        await session.closed;
                    },
                };
            }
        }
    }
}
