/**
 * Running a script on a node over SSH from the machine that runs Pulumi, and reaching a Unix
 * socket on the node (the Docker socket, for Engine API calls: engine-transport.ts).
 *
 * One connection layer, in this process (npm `ssh2`, no `ssh` binary, no temporary files): ONE SSH
 * connection per (host, port, user, key), opened on first use and reused by every call for the
 * life of the process; each call is a channel on it (`bash -s`, or a streamlocal forward).
 *
 * - The script travels on standard input (`bash -s`), so nothing it contains, a join token for
 *   instance, ever appears on a command line, here or on the node.
 * - The private key stays in memory (never written to disk, never in a message).
 * - Host keys are always checked against the target's pinned known_hosts lines; nothing from
 *   ~/.ssh/config, known_hosts files or an agent is used.
 * - A pooled connection that is idle does not keep Node alive (its socket is unref'd between calls).
 * - A connection that drops is removed from the pool; a call whose connection could not be made
 *   (to a node reached before in this process) or dropped before the command finished is retried
 *   on a new connection for up to RETRY_WINDOW_MS. Refused authentication and a host key that is
 *   not the pinned one are not retried.
 */
import { createHash, createHmac, timingSafeEqual } from "crypto";
import * as net from "net";
import { Duplex, Readable, Transform, Writable } from "stream";
import { changesAllowed } from "./write-gate";
import type { Client, ClientChannel } from "ssh2";

export interface SshTarget {
    /** Name used in messages, e.g. `vm2`. */
    name: string;
    host: string;
    port: number;
    user: string;
    /** PEM/OpenSSH private key text (a secret). */
    privateKey: string;
    /** known_hosts lines for this host (`ADDRESS KEYTYPE KEY`, or `[ADDRESS]:PORT KEYTYPE KEY`). */
    knownHosts: string;
    /** Seconds to wait for the TCP/SSH handshake. */
    connectTimeout: number;
}

export interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
}

export class RemoteError extends Error {
    constructor(message: string, readonly result?: RunResult, readonly hostKeyMismatch = false) {
        super(message);
        this.name = "RemoteError";
    }
}

/** The exit code reported for a command that ended without an exit status (as ssh(1) does). */
export const SSH_CONNECT_FAILED = 255;

/** Keepalive: a ping every 5 s; the connection is dropped after 3 unanswered ones. */
const KEEPALIVE_MS = 5000;
const KEEPALIVE_COUNT_MAX = 3;
/** sshd's MaxSessions defaults to 10: at most this many exec channels at once per connection, the rest queue. */
const MAX_SESSIONS = 8;
/** How long a call keeps retrying on new connections after its connection failed or dropped. */
const RETRY_WINDOW_MS = 60_000;

/**
 * How long a node not reached before in this process is tried again while its sshd refuses or
 * resets connections (sshd restarting). Zero (fail at once) unless a caller sets it: an operator
 * command reports a refusing node at once, a deployment (the provider) rides over a restart.
 */
let firstContactRetryMs = 0;

/** Let first contacts with a node ride over an sshd restart for up to `ms` (refused or reset connections only). */
export function retryFirstContact(ms: number): void {
    firstContactRetryMs = ms;
}

/** A refused or reset connection: sshd is (re)starting, the machine answers. */
function sshdRestarting(message: string): boolean {
    return /Connection refused|Connection reset|closed during the SSH handshake|before handshake|Connection lost/i.test(message);
}
const RETRY_MAX_DELAY_MS = 8000;

function tail(s: string, lines = 12): string {
    return s.trim().split("\n").slice(-lines).join("\n");
}

// ---------------------------------------------------------------------------------------------
// Pinned host keys

interface Pin {
    blob: Buffer;
    type: string;
    revoked: boolean;
}

/** glob match of one known_hosts host pattern (`*`, `?`), case-insensitive. */
function globMatch(pattern: string, name: string): boolean {
    const re = new RegExp("^" + pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$", "i");
    return re.test(name);
}

/** Whether a known_hosts host field (comma-separated patterns, `!negation`, or `|1|salt|hash`) names one of `names`. */
function hostFieldMatches(field: string, names: readonly string[]): boolean {
    if (field.startsWith("|1|")) {
        const [, , salt, hash] = field.split("|");
        if (!salt || !hash) return false;
        const want = Buffer.from(hash, "base64");
        return names.some((n) => {
            const got = createHmac("sha1", Buffer.from(salt, "base64")).update(n).digest();
            return got.length === want.length && timingSafeEqual(got, want);
        });
    }
    let matched = false;
    for (const raw of field.split(",")) {
        const negated = raw.startsWith("!");
        const pattern = negated ? raw.slice(1) : raw;
        if (!pattern) continue;
        if (names.some((n) => globMatch(pattern, n))) {
            if (negated) return false;
            matched = true;
        }
    }
    return matched;
}

/**
 * The pinned keys of `knownHosts` that apply to host:port. Port 22 matches `addr`; another port
 * matches `[addr]:port` and, as before, the plain `addr` form.
 */
export function pinnedHostKeys(knownHosts: string, host: string, port: number): Pin[] {
    const names = port === 22 ? [host, `[${host}]:22`] : [`[${host}]:${port}`, host];
    const pins: Pin[] = [];
    for (const line of knownHosts.split(/\r?\n/)) {
        const fields = line.trim().split(/\s+/);
        if (!fields[0] || fields[0].startsWith("#")) continue;
        let revoked = false;
        if (fields[0].startsWith("@")) {
            if (fields[0] !== "@revoked") continue; // @cert-authority: certificates are not used here
            revoked = true;
            fields.shift();
        }
        const [hosts, type, b64] = fields;
        if (!hosts || !type || !b64 || !hostFieldMatches(hosts, names)) continue;
        const blob = Buffer.from(b64, "base64");
        if (blob.length > 0) pins.push({ blob, type, revoked });
    }
    return pins;
}

function keyAccepted(pins: readonly Pin[], key: Buffer): boolean {
    if (pins.some((p) => p.revoked && p.blob.equals(key))) return false;
    return pins.some((p) => !p.revoked && p.blob.equals(key));
}

/** The host key algorithms to offer: those of the pinned key types (an RSA key signs with rsa-sha2-*). */
function hostKeyAlgorithms(pins: readonly Pin[]): string[] | undefined {
    const types = new Set(pins.filter((p) => !p.revoked).map((p) => p.type));
    if (types.size === 0) return undefined;
    const order = [
        "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
        "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa",
    ];
    const wanted = order.filter((a) => types.has(a) || (a.startsWith("rsa-sha2-") && types.has("ssh-rsa")));
    return wanted.length > 0 ? wanted : undefined;
}

function hostKeyError(t: SshTarget): RemoteError {
    return new RemoteError(`${t.name} (${t.host}): host key verification failed: the node's SSH host key is not the pinned one; ` +
        "check the node, then update its `hostKey` (or the known_hosts file) if the change is expected", undefined, true);
}

function connectError(t: SshTarget, reason: string): RemoteError {
    return new RemoteError(`${t.name} (${t.host}): SSH connection failed: ${reason || "no answer"}`);
}

// ---------------------------------------------------------------------------------------------
// The pool

interface Conn {
    key: string;
    hostPort: string;
    client: Client;
    sock: net.Socket;
    /** The host key blob the server proved it holds. */
    hostKey: Buffer;
    /** Calls and streams in flight: the socket is ref'd while > 0. */
    users: number;
    /** exec channels open, and calls waiting for one. */
    sessions: number;
    queue: (() => void)[];
    closed: boolean;
    closeReason: string;
    onClose: Set<(reason: string) => void>;
    /** false once the server refused a streamlocal forward (then `docker system dial-stdio`). */
    streamlocal: boolean;
    entry?: Promise<Conn>;
}

interface Pool {
    conns: Map<string, Promise<Conn>>;
    /** Connections opened (handshake done) per host:port since the process started. */
    stats: Record<string, number>;
    /** Pool keys that had a connection in this process: failures to reach them again are retried. */
    reached: Set<string>;
}

/**
 * The process-wide pool. Kept on the global object, not in a module variable: every copy of this
 * module loaded in the process (the program's, the provider plugin's, a bundled one) shares it.
 */
function pool(): Pool {
    const g = global as unknown as { __dccnSshPool?: Pool };
    if (!g.__dccnSshPool) g.__dccnSshPool = { conns: new Map(), stats: {}, reached: new Set() };
    return g.__dccnSshPool;
}

function poolKey(t: SshTarget): string {
    const key = createHash("sha256").update(t.privateKey).digest("hex").slice(0, 16);
    return `${t.user}@${t.host}:${t.port}#${key}`;
}

/** A failure that retrying cannot fix (authentication refused, host key, unusable key). */
class Permanent extends Error {
    constructor(readonly error: RemoteError) {
        super(error.message);
    }
}

/** The connection went away before the command finished (or before the channel opened). */
class Dropped extends Error {}

function hold(c: Conn): void {
    if (c.users++ === 0) c.sock.ref();
}

function release(c: Conn): void {
    if (--c.users <= 0) {
        c.users = 0;
        c.sock.unref();
    }
}

function markClosed(c: Conn, reason: string): void {
    if (c.closed) return;
    c.closed = true;
    c.closeReason = reason;
    const p = pool();
    if (c.entry && p.conns.get(c.key) === c.entry) p.conns.delete(c.key);
    for (const cb of [...c.onClose]) cb(reason);
    c.onClose.clear();
    for (const w of c.queue.splice(0)) w();
    c.sock.destroy();
}

function socketReason(t: SshTarget, e: Error & { code?: string; level?: string }): string {
    const where = `connect to host ${t.host} port ${t.port}`;
    switch (e.code) {
        case "ECONNREFUSED": return `${where}: Connection refused`;
        case "EHOSTUNREACH": return `${where}: No route to host`;
        case "ENETUNREACH": return `${where}: Network is unreachable`;
        case "ETIMEDOUT": return `${where}: Connection timed out`;
        case "ECONNRESET": return `${where}: Connection reset by peer`;
        case "ENOTFOUND": case "EAI_AGAIN": return `Could not resolve hostname ${t.host}`;
        default: break;
    }
    if (/Timed out while waiting for handshake/.test(e.message)) return `${where}: Connection timed out (no SSH handshake within ${t.connectTimeout}s)`;
    return e.message;
}

function open(t: SshTarget, key: string): Promise<Conn> {
    return new Promise<Conn>((resolve, reject) => {
        const pins = pinnedHostKeys(t.knownHosts, t.host, t.port);
        let presented: Buffer | undefined;
        let mismatch = false;
        let settled = false;
        let conn: Conn | undefined;
        const sock = net.connect({ host: t.host, port: t.port });
        sock.setKeepAlive(true, KEEPALIVE_MS);
        // Small packets go out at once: every channel open and Engine API request is a short
        // exchange, and Nagle's algorithm held each one back until the node's delayed ACK
        // (40 ms on Linux), about 40 ms per channel opened and per request.
        sock.setNoDelay(true);
        // Loaded on first use: a provider that only previews never needs it (it starts faster without).
        const client: Client = new (require("ssh2").Client as typeof Client)(); // eslint-disable-line @typescript-eslint/no-require-imports
        const fail = (e: Error) => {
            if (settled) return;
            settled = true;
            sock.destroy();
            reject(e);
        };
        client.on("ready", () => {
            if (settled) return;
            settled = true;
            const hostPort = `${t.host}:${t.port}`;
            const c: Conn = {
                key, hostPort, client, sock, hostKey: presented!, users: 0, sessions: 0, queue: [],
                closed: false, closeReason: "", onClose: new Set(), streamlocal: true,
            };
            conn = c;
            const p = pool();
            p.stats[hostPort] = (p.stats[hostPort] ?? 0) + 1;
            p.reached.add(key);
            startKeepalive(c);
            sock.unref(); // the callers waiting for it ref it again
            resolve(c);
        });
        client.on("error", (e: Error & { level?: string; code?: string }) => {
            if (conn) {
                markClosed(conn, e.message);
                return;
            }
            if (mismatch) fail(new Permanent(hostKeyError(t)));
            else if (e.level === "client-authentication") {
                fail(new Permanent(connectError(t, `authentication as ${t.user} refused (Permission denied (publickey))`)));
            } else if (e.level === "client-dns" || e.code === "ENOTFOUND") fail(new Permanent(connectError(t, socketReason(t, e))));
            else fail(new Error(socketReason(t, e)));
        });
        const onGone = () => {
            if (conn) markClosed(conn, "the connection closed");
            else if (mismatch) fail(new Permanent(hostKeyError(t)));
            else fail(new Error(`connect to host ${t.host} port ${t.port}: the connection closed during the SSH handshake`));
        };
        client.on("close", onGone);
        client.on("end", onGone);
        // The SSH handshake (and ssh2's parsing of the key) starts once TCP is up: an unreachable
        // node reads as such, as with ssh(1), whatever the key.
        const tcpTimer = setTimeout(() => fail(new Error(`connect to host ${t.host} port ${t.port}: Connection timed out`)),
            Math.max(1, t.connectTimeout) * 1000);
        sock.once("error", (e: Error) => {
            clearTimeout(tcpTimer);
            if (!conn) fail(new Error(socketReason(t, e)));
        });
        sock.once("connect", () => {
            clearTimeout(tcpTimer);
            if (settled) return;
            try {
                client.connect({
                    sock,
                    username: t.user,
                    privateKey: t.privateKey ? t.privateKey : undefined,
                    readyTimeout: Math.max(1, t.connectTimeout) * 1000,
                    keepaliveInterval: 0, // our own, unref'd (ssh2's timer would keep Node alive)
                    tryKeyboard: false,
                    agent: undefined,
                    algorithms: hostKeyAlgorithms(pins) ? { serverHostKey: hostKeyAlgorithms(pins) as never } : undefined,
                    hostVerifier: (k: Buffer) => {
                        presented = Buffer.from(k);
                        const ok = keyAccepted(pins, presented);
                        if (!ok) mismatch = true;
                        return ok;
                    },
                });
            } catch (e) {
                // ssh2 parses the key synchronously; its message names the problem, never the key.
                fail(new Permanent(connectError(t, `the SSH private key cannot be used: ${(e as Error).message}`)));
            }
        });
    });
}

/** Our keepalive (ssh2's interval timer is not unref'd): a global request every 5 s, 3 may go unanswered. */
function startKeepalive(c: Conn): void {
    const internals = c.client as unknown as { _protocol?: { ping?: () => void }; _callbacks?: (() => void)[] };
    let missed = 0;
    let timer: NodeJS.Timeout | undefined = undefined;
    timer = setInterval(() => {
        if (c.closed) {
            clearInterval(timer);
            return;
        }
        if (missed >= KEEPALIVE_COUNT_MAX) {
            clearInterval(timer);
            markClosed(c, `keepalive: no answer from the server for ${(KEEPALIVE_MS * KEEPALIVE_COUNT_MAX) / 1000}s`);
            return;
        }
        if (typeof internals._protocol?.ping !== "function" || !Array.isArray(internals._callbacks)) {
            clearInterval(timer); // another ssh2 version: TCP keepalive still applies
            return;
        }
        missed++;
        internals._callbacks.push(() => { missed = 0; });
        try {
            internals._protocol.ping();
        } catch {
            markClosed(c, "keepalive: the connection is not writable");
        }
    }, KEEPALIVE_MS);
    timer.unref();
    const stop = timer;
    c.onClose.add(() => clearInterval(stop));
}

/** The pooled connection for `t` (opened if there is none); concurrent callers share one attempt. */
async function connection(t: SshTarget): Promise<Conn> {
    const p = pool();
    const key = poolKey(t);
    const existing = p.conns.get(key);
    if (existing) {
        try {
            const c = await existing;
            if (!c.closed) return c;
        } catch {
            /* that attempt failed: try anew */
        }
        if (p.conns.get(key) === existing) p.conns.delete(key);
        const again = p.conns.get(key);
        if (again) return connection(t);
    }
    const attempt = open(t, key);
    p.conns.set(key, attempt);
    attempt.then((c) => {
        c.entry = attempt;
        if (c.closed && p.conns.get(key) === attempt) p.conns.delete(key);
    }, () => {
        if (p.conns.get(key) === attempt) p.conns.delete(key);
    });
    return attempt;
}

function abortError(): Error {
    const e = new Error("aborted");
    e.name = "AbortError";
    return e;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
        if (signal?.aborted) return reject(abortError());
        let timer: NodeJS.Timeout | undefined = undefined;
        const onAbort = () => {
            clearTimeout(timer);
            reject(abortError());
        };
        timer = setTimeout(() => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
        }, ms);
        signal?.addEventListener("abort", onAbort, { once: true });
    });
}

function raceAbort<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
    if (!signal) return p;
    return new Promise<T>((resolve, reject) => {
        if (signal.aborted) return reject(abortError());
        const onAbort = () => reject(abortError());
        signal.addEventListener("abort", onAbort, { once: true });
        p.then((v) => {
            signal.removeEventListener("abort", onAbort);
            resolve(v);
        }, (e) => {
            signal.removeEventListener("abort", onAbort);
            reject(e);
        });
    });
}

/** Wait for an exec slot on `c` (sshd's MaxSessions); throws Dropped when the connection goes meanwhile. */
async function takeSession(c: Conn, signal?: AbortSignal): Promise<void> {
    if (c.closed) throw new Dropped(c.closeReason);
    if (c.sessions < MAX_SESSIONS) {
        c.sessions++;
        return;
    }
    await new Promise<void>((resolve, reject) => {
        let onAbort: (() => void) | undefined = undefined;
        const w = () => {
            if (onAbort) signal?.removeEventListener("abort", onAbort);
            resolve();
        };
        onAbort = () => {
            const i = c.queue.indexOf(w);
            if (i >= 0) c.queue.splice(i, 1);
            reject(abortError());
        };
        c.queue.push(w);
        signal?.addEventListener("abort", onAbort, { once: true });
    });
    // handed over by giveSession (the count stays), or woken by markClosed
    if (c.closed) throw new Dropped(c.closeReason);
}

function giveSession(c: Conn): void {
    const next = c.queue.shift();
    if (next) next();
    else c.sessions = Math.max(0, c.sessions - 1);
}

/**
 * Run `f` on the pooled connection of `t`, retrying on a new connection (backoff 1, 2, 4, 8 s, for
 * up to RETRY_WINDOW_MS) when the connection cannot be made to a node reached before in this
 * process, or when it drops (`f` throws Dropped); a node not reached before, while its sshd refuses
 * connections, for up to firstContactRetryMs. Rejects with a RemoteError.
 */
async function withConnection<T>(t: SshTarget, signal: AbortSignal | undefined, f: (c: Conn) => Promise<T>): Promise<T> {
    const started = Date.now();
    let delay = 1000;
    const p = pool();
    const key = poolKey(t);
    for (;;) {
        let c: Conn;
        try {
            c = await raceAbort(connection(t), signal);
        } catch (e) {
            if (signal?.aborted) throw abortError();
            if (e instanceof Permanent) throw e.error;
            const window = p.reached.has(key) ? RETRY_WINDOW_MS : sshdRestarting((e as Error).message) ? firstContactRetryMs : 0;
            if (Date.now() - started + delay > window) throw connectError(t, (e as Error).message);
            await sleep(delay, signal);
            delay = Math.min(delay * 2, RETRY_MAX_DELAY_MS);
            continue;
        }
        // The connection may have been opened for a caller with other pins: check ours.
        if (!keyAccepted(pinnedHostKeys(t.knownHosts, t.host, t.port), c.hostKey)) throw hostKeyError(t);
        hold(c);
        try {
            return await f(c);
        } catch (e) {
            if (!(e instanceof Dropped) || signal?.aborted) throw e;
            if (Date.now() - started + delay > RETRY_WINDOW_MS) throw connectError(t, `the connection was lost: ${e.message}`);
        } finally {
            release(c);
        }
        await sleep(delay, signal);
        delay = Math.min(delay * 2, RETRY_MAX_DELAY_MS);
    }
}

/**
 * Open the pooled connection to `t` ahead of its first call, in the background (the provider warms
 * the first manager's while the engine is still running the program: the lock and the first change
 * go there). Never throws; a failure is left for the first real call to meet and report; gives up
 * after `timeoutSec`.
 */
export function warmConnection(t: SshTarget, timeoutSec = 15): void {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), timeoutSec * 1000);
    timer.unref();
    withConnection(t, ac.signal, async () => undefined).catch(() => undefined).finally(() => clearTimeout(timer));
}

/**
 * Reaches the target over its pooled connection (opened if there is none, the host key checked as
 * it opens) without running anything; throws the RemoteError a command would meet.
 */
export async function reach(t: SshTarget, timeoutSec = 60): Promise<void> {
    await onConnection(t, timeoutSec, "", async () => undefined);
}

const SIGNALS: Record<string, number> = { HUP: 1, INT: 2, QUIT: 3, ABRT: 6, KILL: 9, SEGV: 11, PIPE: 13, ALRM: 14, TERM: 15 };

/** `bash -s` on `c` with the script on stdin. Throws Dropped when the connection goes first. */
async function execOn(c: Conn, script: string, signal?: AbortSignal): Promise<RunResult> {
    await takeSession(c, signal);
    try {
        return await new Promise<RunResult>((resolve, reject) => {
            let stream: ClientChannel | undefined;
            let finished = false;
            let onClose: (reason: string) => void = () => undefined;
            let onAbort: () => void = () => undefined;
            const done = (f: () => void) => {
                if (finished) return;
                finished = true;
                c.onClose.delete(onClose);
                signal?.removeEventListener("abort", onAbort);
                f();
            };
            onClose = (reason: string) => done(() => reject(new Dropped(reason)));
            onAbort = () => done(() => {
                try {
                    stream?.signal("KILL");
                } catch { /* best effort */ }
                stream?.close();
                reject(abortError());
            });
            c.onClose.add(onClose);
            signal?.addEventListener("abort", onAbort, { once: true });
            if (c.closed) return onClose(c.closeReason);
            try {
                c.client.exec("bash -s", (err, s) => {
                    if (err) {
                        // The server refused the channel (its MaxSessions is lower than ours) or the
                        // connection is going: either way another connection attempt is the remedy.
                        done(() => reject(new Dropped(err.message)));
                        return;
                    }
                    stream = s;
                    if (finished) {
                        s.close();
                        return;
                    }
                    const out: Buffer[] = [];
                    const errs: Buffer[] = [];
                    let code: number | undefined;
                    let sig: string | undefined;
                    s.on("data", (d: Buffer) => out.push(d));
                    s.stderr.on("data", (d: Buffer) => errs.push(d));
                    s.on("exit", (cd: number | null, sg?: string) => {
                        if (typeof cd === "number") code = cd;
                        else if (sg) sig = sg;
                    });
                    s.on("error", () => { /* reported by close */ });
                    s.on("close", () => {
                        const stdout = Buffer.concat(out).toString("utf8");
                        const stderr = Buffer.concat(errs).toString("utf8");
                        if (code === undefined && sig === undefined) {
                            // No exit status: the connection went away under the command.
                            setImmediate(() => {
                                if (c.closed || !c.sock.writable) done(() => reject(new Dropped(c.closeReason || "the connection closed")));
                                else done(() => resolve({ code: SSH_CONNECT_FAILED, stdout, stderr }));
                            });
                            return;
                        }
                        done(() => resolve({ code: code ?? 128 + (SIGNALS[sig ?? ""] ?? 0), stdout, stderr }));
                    });
                    s.stdin?.on?.("error", () => { /* the remote side closed early; its exit status tells why */ });
                    s.end("set -euo pipefail\n" + script + "\n");
                });
            } catch (e) {
                // ssh2 throws "Not connected" for a connection whose socket is gone.
                markClosed(c, (e as Error).message);
                done(() => reject(new Dropped((e as Error).message)));
            }
        });
    } finally {
        giveSession(c);
    }
}

/**
 * Run `script` on the target with bash. Resolves with the exit code and output; rejects only when
 * the node cannot be reached or the whole call exceeds `timeoutSec`.
 */
export async function runScript(t: SshTarget, script: string, timeoutSec = 600): Promise<RunResult> {
    await changesAllowed(); // a script may change the node: not before the cluster lock (lib/write-gate.ts)
    return onConnection(t, timeoutSec, "", (c, signal) => execOn(c, script, signal));
}

/**
 * `use` on the target's pooled connection within `timeoutSec` for the whole call (connecting and
 * retries included); every failure becomes a RemoteError naming the node (and `what`, when given).
 */
async function onConnection<T>(t: SshTarget, timeoutSec: number, what: string, use: (c: Conn, signal: AbortSignal) => Promise<T>): Promise<T> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), timeoutSec * 1000);
    try {
        return await withConnection(t, ac.signal, (c) => use(c, ac.signal));
    } catch (e) {
        if (ac.signal.aborted) throw new RemoteError(`${t.name} (${t.host}): no answer within ${timeoutSec}s${what ? ` (${what})` : ""}`);
        if (e instanceof RemoteError || (e as { name?: string }).name === "RemoteError") throw e;
        throw new RemoteError(`${t.name} (${t.host}): ${(e as Error).message}`);
    } finally {
        clearTimeout(timer);
    }
}

/** Run and require exit status 0; the error names the node, what was being done and the output's tail. */
export async function runChecked(t: SshTarget, what: string, script: string, timeoutSec?: number): Promise<string> {
    const r = await runScript(t, script, timeoutSec);
    if (r.code !== 0) {
        throw new RemoteError(`${t.name} (${t.host}): ${what} failed (exit ${r.code}): ${tail(r.stderr || r.stdout)}`, r);
    }
    return r.stdout;
}

/**
 * A `bash -s` channel kept open: the script is sent without ending standard input, so what the
 * caller writes later reaches the script (a lock's heartbeat), and the script sees end of input when
 * the caller closes it or its connection drops (the caller died: its TCP connection closes).
 */
export interface OpenSession {
    /** Write to the script's standard input (after the script). */
    write(text: string): void;
    /** Resolves with each complete line the script prints, in order; undefined once the channel is closed. */
    nextLine(): Promise<string | undefined>;
    /** End standard input and close the channel. */
    close(): void;
    /**
     * Let the process exit while the channel is open (as an idle pooled connection does); until
     * then, and again after `ref()`, the open channel keeps it alive.
     */
    unref(): void;
    ref(): void;
    /** Settles when the channel closed: the exit code, or undefined when the connection went. */
    readonly closed: Promise<{ code?: number; stderr: string }>;
}

/** Open a channel running `script` with `bash -s` and keep its standard input open (see OpenSession). */
export async function openSession(t: SshTarget, script: string, timeoutSec = 60): Promise<OpenSession> {
    return onConnection(t, timeoutSec, "", async (c, signal) => sessionOn(c, await openBash(c, signal), script));
}

/** An exec channel running `bash -s` on the connection (one of its session slots, given back on failure). */
async function openBash(c: Conn, signal?: AbortSignal): Promise<ClientChannel> {
    await takeSession(c, signal);
    try {
        return await new Promise<ClientChannel>((resolve, reject) => {
            try {
                c.client.exec("bash -s", (err, ch) => (err ? reject(new Dropped(err.message)) : resolve(ch)));
            } catch (e) {
                markClosed(c, (e as Error).message);
                reject(new Dropped((e as Error).message));
            }
        });
    } catch (e) {
        giveSession(c);
        throw e;
    }
}

function sessionOn(c: Conn, s: ClientChannel, script: string): OpenSession {
    const lines: string[] = [];
    const waiters: ((l: string | undefined) => void)[] = [];
    let buffered = "";
    let ended = false;
    let code: number | undefined;
    const errs: Buffer[] = [];
    const push = (l: string | undefined) => {
        const w = waiters.shift();
        if (w) w(l);
        else if (l !== undefined) lines.push(l);
    };
    s.on("data", (d: Buffer) => {
        buffered += d.toString("utf8");
        let i: number;
        while ((i = buffered.indexOf("\n")) >= 0) {
            push(buffered.slice(0, i));
            buffered = buffered.slice(i + 1);
        }
    });
    s.stderr.on("data", (d: Buffer) => errs.push(d));
    s.on("exit", (cd: number | null) => { if (typeof cd === "number") code = cd; });
    s.on("error", () => { /* reported by close */ });
    s.stdin?.on?.("error", () => { /* the script ended first */ });
    const onConnClose = () => s.close();
    c.onClose.add(onConnClose);
    let held = true;
    hold(c);
    const closed = new Promise<{ code?: number; stderr: string }>((resolve) => s.once("close", () => {
        ended = true;
        c.onClose.delete(onConnClose);
        giveSession(c);
        if (held) release(c);
        held = false;
        for (const w of waiters.splice(0)) w(undefined);
        resolve({ code, stderr: Buffer.concat(errs).toString("utf8") });
    }));
    s.write("set -euo pipefail\n" + script + "\n");
    return {
        write: (text) => { if (!ended) s.write(text); },
        nextLine: () => (lines.length > 0 ? Promise.resolve(lines.shift()) : ended ? Promise.resolve(undefined) : new Promise((r) => waiters.push(r))),
        close: () => {
            if (ended) return;
            try {
                s.end();
            } catch { /* going anyway */ }
            s.close();
        },
        unref: () => {
            if (held && !ended) release(c);
            held = false;
        },
        ref: () => {
            if (!held && !ended) hold(c);
            held = !ended;
        },
        closed,
    };
}

/** What a streamed command left when it ended. */
export interface StreamResult {
    /** Its exit code (128 + N for a signal, SSH_CONNECT_FAILED when it ended without one). */
    code: number;
    /** The last STDERR_KEEP bytes of its standard error (progress and the DCCN_RESULT line of a script). */
    stderr: string;
    /** Why the channel ended without an exit status: the connection was lost, or nothing moved for too long. */
    failure?: string;
}

/** A command whose standard input and output are streams (execStream). */
export interface ExecStream {
    /** Its standard input after the script: write the data, then end it. */
    stdin: Writable;
    /** Its standard output as it comes (flow-controlled: the command waits while it is not read). */
    stdout: Readable;
    /** Resolves (never rejects) when the channel has closed. */
    done: Promise<StreamResult>;
    /** Close the channel: the command sees its input end and its output closed (EPIPE), and its traps run. */
    close(reason: string): void;
}

const STDERR_KEEP = 64 * 1024;
/** How long a closed channel may wait for its command to end (its traps) before it is let go. */
const CLOSE_GRACE_MS = 180_000;

/**
 * Run `script` with `bash -s` on the target and hand back its standard input and output as streams,
 * for data too large to hold (a swarm-state archive): the script text goes first on standard input
 * (as with runScript, never on a command line); `script` must leave the rest of standard input to a
 * command that reads it (remote-script.ts scriptStdinKeepInput). Only opening the channel is retried
 * (like runScript); a stream cannot be replayed, so a connection lost afterwards ends it with
 * `failure` set. When nothing moves in either direction for `idleTimeoutSec`, the channel is closed
 * (not killed: the script's traps run, an engine it stopped is started again).
 */
export async function execStream(t: SshTarget, script: string, opts: { openTimeoutSec?: number; idleTimeoutSec?: number } = {}): Promise<ExecStream> {
    return onConnection(t, opts.openTimeoutSec ?? 60, "opening a command channel",
        async (c, signal) => execStreamOn(c, await openBash(c, signal), script, opts.idleTimeoutSec ?? 600));
}

function execStreamOn(c: Conn, s: ClientChannel, script: string, idleSec: number): ExecStream {
    hold(c);
    let failure: string | undefined;
    let idle: NodeJS.Timeout | undefined = undefined;
    let closed = false;
    const close = (reason: string) => {
        failure ??= reason;
        clearTimeout(idle);
        if (closed) return;
        closed = true;
        try {
            s.close();
        } catch { /* already closed */ }
        // sshd reports the command's exit (after its traps: an engine started again) before it
        // closes the channel; a command that never ends is let go after CLOSE_GRACE_MS.
        setTimeout(() => s.destroy(), CLOSE_GRACE_MS).unref();
    };
    const touch = () => {
        clearTimeout(idle);
        idle = setTimeout(() => close(`nothing moved for ${idleSec}s`), idleSec * 1000);
        idle.unref();
    };
    const activity = () => new Transform({
        transform(chunk, _enc, cb) {
            touch();
            cb(null, chunk);
        },
    });
    touch();
    const onConnClose = (reason: string) => close(`the SSH connection was lost: ${reason}`);
    c.onClose.add(onConnClose);
    let errTail = Buffer.alloc(0);
    s.stderr.on("data", (d: Buffer) => {
        touch();
        errTail = Buffer.concat([errTail, d]);
        if (errTail.length > STDERR_KEEP) errTail = errTail.subarray(errTail.length - STDERR_KEEP);
    });
    let code: number | undefined;
    let sig: string | undefined;
    s.on("exit", (cd: number | null, sg?: string) => {
        if (typeof cd === "number") code = cd;
        else if (sg) sig = sg;
    });
    s.on("error", () => { /* reported by close */ });
    const stdout = activity();
    const stdin = activity();
    const done = new Promise<StreamResult>((resolve) => {
        s.once("close", () => {
            clearTimeout(idle);
            c.onClose.delete(onConnClose);
            giveSession(c);
            release(c);
            const stderr = errTail.toString("utf8");
            // A writer still sending would wait for ever on a channel nobody reads.
            if (!stdin.writableFinished) stdin.destroy(new Error("the command ended before it had read all its input"));
            if (code === undefined && sig === undefined) {
                const why = failure ?? "the channel closed without an exit status";
                // The consumer of stdout must not take a cut-short stream for a whole one.
                stdout.destroy(new Error(why));
                resolve({ code: SSH_CONNECT_FAILED, stderr, failure: why });
            } else {
                resolve({ code: code ?? 128 + (SIGNALS[sig ?? ""] ?? 0), stderr, failure });
            }
        });
    });
    s.pipe(stdout);
    s.stdin?.on?.("error", () => { /* the remote side closed early; its exit status tells why */ });
    stdin.on("error", () => { /* the writer's own error; the channel's end tells the rest */ });
    s.write("set -euo pipefail\n" + script.replace(/\n?$/, "\n"));
    stdin.pipe(s);
    return { stdin, stdout, done, close };
}

/** Give an ssh2 channel the socket methods Node's http client may call on its connection. */
function socketLike(s: Duplex): Duplex {
    const o = s as Duplex & Record<string, unknown>;
    for (const m of ["setTimeout", "setNoDelay", "setKeepAlive", "ref", "unref"]) {
        if (typeof o[m] !== "function") o[m] = () => s;
    }
    return s;
}

/**
 * A stream to the Unix socket `socketPath` on the target, over the pooled connection: an OpenSSH
 * streamlocal forward, or (the server refuses those) `docker system dial-stdio` for the Docker
 * socket. The connection stays ref'd while the stream is open. Opening is retried like runScript.
 */
export async function openUnixStream(t: SshTarget, socketPath: string, timeoutSec = 60): Promise<Duplex> {
    return onConnection(t, timeoutSec, `opening ${socketPath}`, (c, signal) => streamOn(c, socketPath, signal));
}

function shortMessage(e: Error): string {
    return e.message.replace(/^\(SSH\) /, "");
}

async function streamOn(c: Conn, socketPath: string, signal?: AbortSignal): Promise<Duplex> {
    if (c.closed) throw new Dropped(c.closeReason);
    if (c.streamlocal) {
        const r = await new Promise<{ stream?: ClientChannel; err?: Error & { reason?: number | string } }>((resolve) => {
            try {
                c.client.openssh_forwardOutStreamLocal(socketPath, (err, stream) => resolve({ err: err ?? undefined, stream }));
            } catch (e) {
                resolve({ err: e as Error });
            }
        });
        if (r.stream) return track(c, r.stream, false);
        if (c.closed) throw new Dropped(c.closeReason);
        // OpenSSH answers "open failed" both when the socket is not there and when forwarding is
        // not allowed (AllowStreamLocalForwarding/DisableForwarding): try dial-stdio then. A server
        // that says "administratively prohibited" gets dial-stdio from now on.
        if (r.err?.reason === 1) c.streamlocal = false;
    }
    await takeSession(c, signal);
    const s = await new Promise<ClientChannel>((resolve, reject) => {
        try {
            c.client.exec(`DOCKER_HOST=${shq(`unix://${socketPath}`)} docker system dial-stdio`, (err, stream) => {
                if (err) {
                    giveSession(c);
                    reject(c.closed ? new Dropped(c.closeReason) : new RemoteError(`cannot run docker system dial-stdio on the node: ${shortMessage(err)}`));
                } else resolve(stream);
            });
        } catch (e) {
            giveSession(c);
            markClosed(c, (e as Error).message);
            reject(new Dropped((e as Error).message));
        }
    });
    return track(c, s, true);
}

/** Keep the connection ref'd (and the exec slot taken) until the stream closes. */
function track(c: Conn, s: ClientChannel, session: boolean): Duplex {
    hold(c);
    let closed = false;
    const onConnClose = (reason: string) => (s as Duplex).destroy(new Error(`the SSH connection was lost: ${reason}`));
    c.onClose.add(onConnClose);
    s.once("close", () => {
        if (closed) return;
        closed = true;
        c.onClose.delete(onConnClose);
        if (session) giveSession(c);
        release(c);
    });
    if (session) s.stderr.resume();
    return socketLike(s);
}

/** Close every pooled connection (the process exits without it too: idle connections are unref'd). */
export async function closeConnections(): Promise<void> {
    const p = pool();
    const all = [...p.conns.values()];
    p.conns.clear();
    await Promise.all(all.map(async (entry) => {
        let c: Conn;
        try {
            c = await entry;
        } catch {
            return;
        }
        if (c.closed) return;
        await new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
                markClosed(c, "closed by closeConnections");
                resolve();
            }, 2000);
            timer.unref();
            c.client.once("close", () => {
                clearTimeout(timer);
                resolve();
            });
            markClosedSoft(c);
            c.client.end();
        });
        markClosed(c, "closed by closeConnections");
    }));
}

/** Take a connection out of use without destroying its socket (client.end() closes it cleanly). */
function markClosedSoft(c: Conn): void {
    const p = pool();
    if (c.entry && p.conns.get(c.key) === c.entry) p.conns.delete(c.key);
}

/** How many SSH connections were opened per `host:port` since the process started. */
export function connectionStats(): Record<string, number> {
    return { ...pool().stats };
}

/** Quote a value for a POSIX shell. */
export function shq(s: string): string {
    return "'" + s.replace(/'/g, "'\\''") + "'";
}
