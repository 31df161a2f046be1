/**
 * Engine API calls on a swarm manager, through dockerode/docker-modem: over SSH, each request's
 * connection is a stream to the manager's Docker socket on the pooled SSH connection of lib/ssh.ts
 * (an OpenSSH streamlocal forward, or `docker system dial-stdio`); locally, the socket itself.
 * Request bodies and headers (X-Registry-Auth) go only into the HTTP request: no command line, no
 * file, no message.
 *
 * A Transport also runs bash scripts on the same machine (`run`): over SSH on a node, or locally
 * with bash (tests against a throwaway dockerd). Everything else (parsing, finding a manager with
 * a quorum) is shared.
 */
import { spawn } from "child_process";
import * as http from "http";
import type Docker from "dockerode";
import { openUnixStream, RemoteError, RunResult, runScript, SshTarget } from "./ssh";
import { changesAllowed } from "./write-gate";

/**
 * Highest Engine API version the providers speak (Docker 20.10); an older engine is spoken to
 * in its own version (findManager negotiates, as the Docker client does).
 */
export const API_VERSION = "1.41";

export interface Transport {
    /** For messages, e.g. `vm1 (172.28.213.11)`. */
    readonly name: string;
    /** The node's name (SshTarget.name) for findManager's `exclude`; defaults to `name`. */
    readonly node?: string;
    /** The Docker socket on the machine the script runs on. */
    readonly socket: string;
    run(script: string, timeoutSec: number): Promise<RunResult>;
    /** API version for requests (default API_VERSION); findManager sets the negotiated one. */
    readonly apiVersion?: string;
    /** Engine API client for `socket` (its `modem` makes the requests of api()). */
    readonly docker: Docker;
}

let engineClientPreloaded = false;

/**
 * Loads dockerode in the background (next turn of the event loop), once, for a process that knows
 * it is about to reach the cluster (a deployment, a refresh) while it waits for its first connection.
 */
export function preloadEngineClient(): void {
    if (engineClientPreloaded) return;
    engineClientPreloaded = true;
    setImmediate(() => require("dockerode")); // eslint-disable-line @typescript-eslint/no-require-imports
}

/** dockerode on `socket`; `agent` makes the connections (the SSH stream) when given. */
function dockerClient(socket: string, agent: http.Agent): Docker {
    // Every connection setting explicit: docker-modem would otherwise take DOCKER_HOST,
    // DOCKER_CERT_PATH and friends from this process's environment.
    // Loaded on first use: a provider that only previews never needs it (it starts faster without).
    const Dockerode = require("dockerode") as typeof Docker; // eslint-disable-line @typescript-eslint/no-require-imports
    return new Dockerode({
        socketPath: socket, agent, protocol: "http", host: undefined, port: undefined, version: undefined,
        ca: undefined, cert: undefined, key: undefined, timeout: undefined,
    } as Docker.DockerOptions);
}

export function sshTransport(t: SshTarget, socket = "/var/run/docker.sock"): Transport {
    const agent = new http.Agent({ keepAlive: false });
    // Node's Agent calls createConnection(options, callback): the callback form lets it be async.
    (agent as unknown as { createConnection: unknown }).createConnection = (_options: unknown, cb: (err: Error | null, s?: unknown) => void) => {
        openUnixStream(t, socket, Math.max(30, t.connectTimeout * 2)).then((s) => cb(null, s), (e) => cb(e));
        return undefined;
    };
    return {
        name: `${t.name} (${t.host})`,
        node: t.name,
        socket,
        run: (script, timeoutSec) => runScript(t, script, timeoutSec),
        docker: dockerClient(socket, agent),
    };
}

/** Runs the scripts with the local bash and the API on the local socket (no SSH): for a dockerd on this machine. */
export function localTransport(name: string, socket: string): Transport {
    return {
        name,
        socket,
        docker: dockerClient(socket, new http.Agent({ keepAlive: false })),
        run: (script, timeoutSec) => new Promise<RunResult>((resolve, reject) => {
            const child = spawn("bash", ["-s"], { stdio: ["pipe", "pipe", "pipe"] });
            let stdout = "";
            let stderr = "";
            const timer = setTimeout(() => {
                child.kill("SIGKILL");
                reject(new RemoteError(`${name}: no answer within ${timeoutSec}s`));
            }, timeoutSec * 1000);
            child.stdout.on("data", (d) => (stdout += d));
            child.stderr.on("data", (d) => (stderr += d));
            child.on("error", (e) => {
                clearTimeout(timer);
                reject(new RemoteError(`${name}: cannot run bash: ${e.message}`));
            });
            child.on("close", (code) => {
                clearTimeout(timer);
                resolve({ code: code ?? 1, stdout, stderr });
            });
            child.stdin.on("error", () => { /* closed early; the exit status tells why */ });
            child.stdin.end("set -euo pipefail\n" + script + "\n");
        }),
    };
}

export interface ApiRequest {
    method: "GET" | "POST" | "DELETE";
    /** Path after the version, with its query string, e.g. `/services/abc?insertDefaults=false`. */
    path: string;
    body?: unknown;
    /** Extra headers; values may be secrets (they go into the HTTP request only). */
    headers?: Record<string, string>;
    /** Time limit for the whole request (default 60 s). */
    timeoutSec?: number;
}

export interface ApiResponse {
    status: number;
    text: string;
    /** The body parsed as JSON (undefined when empty or not JSON). */
    json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

function parseJson(text: string): unknown {
    try {
        return text.trim() ? JSON.parse(text) : undefined;
    } catch {
        return undefined;
    }
}

/** One Engine API request on the transport's machine. Rejects only when it cannot be made. */
/** Called before every request that changes something (not a GET): lib/read-cache.ts forgets what it read. */
export const beforeWrite = new Set<() => void>();

export async function api(t: Transport, req: ApiRequest, unversioned = false): Promise<ApiResponse> {
    if (!/^\/\S*$/.test(req.path)) throw new Error(`invalid API path ${req.path}`);
    if (req.method !== "GET") {
        await changesAllowed(); // not before the cluster lock (lib/write-gate.ts)
        for (const f of beforeWrite) f();
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers ?? {})) {
        if (!/^[A-Za-z0-9-]+$/.test(k) || /[\r\n]/.test(v)) throw new Error(`invalid header ${k}`);
        headers[k] = v;
    }
    const version = unversioned ? null : t.apiVersion ?? API_VERSION;
    const path = `${version ? `/v${version}` : ""}${req.path}`;
    let file: Buffer | undefined;
    if (req.body !== undefined) {
        file = Buffer.from(JSON.stringify(req.body));
        headers["Content-Type"] = "application/json";
    }
    const timeoutSec = req.timeoutSec ?? 60;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), timeoutSec * 1000);
    const fail = (e: Error & { hostKeyMismatch?: boolean }) => new RemoteError(
        `${t.name}: ${req.method} ${req.path}: ${ac.signal.aborted ? `no answer within ${timeoutSec}s` : e.message.replace(`${t.name}: `, "")}`,
        undefined, e.hostKeyMismatch === true);
    try {
        return await new Promise<ApiResponse>((resolve, reject) => {
            t.docker.modem.dial({
                // With a '?' in the path and no `options`, docker-modem drops the path's last
                // character (it expects a trailing '?' to fill from `options`): give it one to
                // drop, so the path and its query string go out verbatim. No `options` also means
                // docker-modem adds no body of its own: `file` carries ours.
                path: path.includes("?") ? path + "&" : path,
                method: req.method,
                headers,
                file,
                isStream: true,
                // docker-modem's statusCodes map, accepting every status: api() hands each one
                // back. (Made here, not in a module constant: a serialized closure would carry a
                // Proxy as a plain empty object.)
                statusCodes: new Proxy({}, { get: () => true }),
                abortSignal: ac.signal,
            } as never, (err: (Error & { statusCode?: number; json?: unknown }) | null, result?: unknown) => {
                const res = result as http.IncomingMessage | undefined;
                if (err) {
                    if (typeof err.statusCode === "number") {
                        // Not expected with every status accepted; mapped back in case docker-modem changes.
                        const text = typeof err.json === "string" ? err.json : Buffer.isBuffer(err.json) ? err.json.toString() : JSON.stringify(err.json ?? "");
                        resolve({ status: err.statusCode, text, json: parseJson(text) });
                    } else reject(fail(err));
                    return;
                }
                const chunks: Buffer[] = [];
                res!.on("data", (d: Buffer) => chunks.push(d));
                res!.on("error", (e: Error) => reject(fail(e)));
                res!.on("aborted", () => reject(fail(new Error("the response was cut off"))));
                res!.on("end", () => {
                    const text = Buffer.concat(chunks).toString("utf8");
                    resolve({ status: res!.statusCode ?? 0, text, json: parseJson(text) });
                });
            });
        });
    } finally {
        clearTimeout(timer);
    }
}

/** The engine's error message of a failed response. */
export function apiMessage(r: ApiResponse): string {
    return (r.json && typeof r.json.message === "string" ? r.json.message : r.text.trim()) || `HTTP ${r.status}`;
}

/** Like api() but requires a 2xx status; the error names the transport, the call and the engine's message. */
export async function apiOk(t: Transport, req: ApiRequest, what: string): Promise<ApiResponse> {
    const r = await api(t, req);
    if (r.status < 200 || r.status > 299) {
        throw new RemoteError(`${t.name}: ${what} failed (HTTP ${r.status}): ${apiMessage(r)}`);
    }
    return r;
}

function olderVersion(a: string, b: string): string {
    const [a1, a2] = a.split(".").map(Number);
    const [b1, b2] = b.split(".").map(Number);
    return a1 < b1 || (a1 === b1 && a2 < b2) ? a : b;
}

export interface FindManagerOptions {
    /** Try the candidate with this node name (Transport.node, else name) last: skipped unless no other one manages. */
    exclude?: string;
    /**
     * How long to wait (seconds, default 60) while a candidate is still joining (`pending`) or is
     * a manager without a leader: an engine that just restarted is that for some seconds.
     */
    settleSec?: number;
}

export interface ManagerFound {
    /** The manager, with the negotiated API version. */
    transport: Transport;
    /** Its index in the candidates. */
    index: number;
    /** `GET /info`'s `Swarm` (LocalNodeState, NodeID, NodeAddr, ControlAvailable, Cluster, Managers, RemoteManagers). */
    swarm: any; // eslint-disable-line @typescript-eslint/no-explicit-any
    /** `GET /version`'s engine version. */
    engineVersion: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The one way to find a manager: the first of `candidates` that is a reachable manager of a swarm
 * with a leader (a quorum), through the Engine API: `GET /version` negotiates the API version,
 * `GET /info` says manager (Swarm.LocalNodeState active, ControlAvailable), `GET /nodes` answers
 * only with a quorum. Waits (bounded by `settleSec`) while a candidate is `pending` or without a
 * leader. The error says what each candidate answered. swarm-ops.findManager delegates here.
 */
export async function locateManager(candidates: readonly Transport[], opts: FindManagerOptions = {}): Promise<ManagerFound> {
    const until = Date.now() + (opts.settleSec ?? 60) * 1000;
    for (;;) {
        const r = await locateOnce(candidates, opts.exclude);
        if ("transport" in r) return r;
        if (!r.transient || Date.now() > until) {
            throw new RemoteError("no reachable swarm manager with a quorum: " + (r.why.join("; ") || "no managers configured") +
                ". If a majority of managers is lost for good, set `swarm.forceNewCluster` to a surviving manager (runbook: disaster recovery)");
        }
        await sleep(3000);
    }
}

async function locateOnce(candidates: readonly Transport[], exclude?: string): Promise<ManagerFound | { why: string[]; transient: boolean }> {
    const excluded = (c: Transport) => exclude !== undefined && (c.node ?? c.name) === exclude;
    const order = [...candidates.keys()].sort((a, b) => Number(excluded(candidates[a])) - Number(excluded(candidates[b])));
    const why: string[] = [];
    let transient = false;
    for (const index of order) {
        const c = candidates[index];
        try {
            // The three questions at once (one round trip, not three): the version, the swarm state and
            // the quorum. Unversioned: the engine answers in its own API version, whatever it is.
            const [version, info, nodes] = await Promise.all([
                api(c, { method: "GET", path: "/version" }, true),
                api(c, { method: "GET", path: "/info" }, true),
                api(c, { method: "GET", path: "/nodes" }, true),
            ]);
            if (version.status !== 200) throw new RemoteError(`${c.name}: GET /version failed: ${apiMessage(version)}`);
            const t: Transport = { ...c, apiVersion: olderVersion(String(version.json?.ApiVersion ?? API_VERSION), API_VERSION) };
            if (info.status !== 200) throw new RemoteError(`${t.name}: reading the engine's swarm state failed (HTTP ${info.status}): ${apiMessage(info)}`);
            const sw = info.json?.Swarm ?? {};
            if (sw.LocalNodeState === "pending") transient = true;
            if (sw.LocalNodeState !== "active" || !sw.ControlAvailable) {
                why.push(`${t.name}: not a manager (swarm state ${sw.LocalNodeState ?? "unknown"})`);
                continue;
            }
            if (nodes.status !== 200) {
                transient = true;
                why.push(`${t.name}: manager without quorum (${apiMessage(nodes)})`);
                continue;
            }
            return { transport: t, index, swarm: sw, engineVersion: String(version.json?.Version ?? "") };
        } catch (e) {
            why.push(`${c.name}: ${(e as Error).message.replace(`${c.name}: `, "")}`);
        }
    }
    return { why, transient };
}

/** locateManager's transport: the manager to make Engine API calls on. */
export async function findManager(candidates: readonly Transport[], opts: FindManagerOptions = {}): Promise<Transport> {
    return (await locateManager(candidates, opts)).transport;
}
