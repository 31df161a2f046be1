/**
 * Engine API calls on a swarm manager: a bash script runs `curl --unix-socket` against the
 * manager's Docker socket, with the JSON body and any header (X-Registry-Auth) written to private
 * temporary files from quoted heredocs, so neither ever appears on a command line.
 *
 * A Transport runs such a script somewhere: over SSH on a node (lib/ssh.ts), or locally with bash
 * (tests against a throwaway dockerd). Everything else (scripts, parsing, finding a manager with
 * a quorum) is shared.
 */
import { spawn } from "child_process";
import { RemoteError, RunResult, runScript, SshTarget } from "./ssh";

/**
 * Highest Engine API version the providers speak (Docker 20.10); an older engine is spoken to
 * in its own version (findManager negotiates, as the Docker client does).
 */
export const API_VERSION = "1.41";

export interface Transport {
    /** For messages, e.g. `vm1 (172.28.213.11)`. */
    readonly name: string;
    /** The Docker socket on the machine the script runs on. */
    readonly socket: string;
    run(script: string, timeoutSec: number): Promise<RunResult>;
    /** API version for requests (default API_VERSION); findManager sets the negotiated one. */
    readonly apiVersion?: string;
}

export function sshTransport(t: SshTarget, socket = "/var/run/docker.sock"): Transport {
    return {
        name: `${t.name} (${t.host})`,
        socket,
        run: (script, timeoutSec) => runScript(t, script, timeoutSec),
    };
}

/** Runs the scripts with the local bash (no SSH): for a dockerd on this machine. */
export function localTransport(name: string, socket: string): Transport {
    return {
        name,
        socket,
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
    /** Extra headers; values may be secrets (they go to a private file, not the command line). */
    headers?: Record<string, string>;
    /** curl's --max-time. */
    timeoutSec?: number;
}

export interface ApiResponse {
    status: number;
    text: string;
    /** The body parsed as JSON (undefined when empty or not JSON). */
    json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

function heredocDelimiter(base: string, text: string): string {
    let d = base;
    for (let i = 0; text.includes(d); i++) d = `${base}_${i}`;
    return d;
}

function sq(s: string): string {
    return "'" + s.replace(/'/g, "'\\''") + "'";
}

/** The bash script for one request; prints `HTTP <code>` then the response body. */
export function requestScript(socket: string, req: ApiRequest, apiVersion: string | null = API_VERSION): string {
    if (!/^\/\S*$/.test(req.path)) throw new Error(`invalid API path ${req.path}`);
    const lines = [
        "command -v curl >/dev/null || { echo 'curl is needed on the manager for Engine API calls' >&2; exit 3; }",
        "dccn_d=$(umask 077 && mktemp -d /tmp/dccn-api.XXXXXX)",
        "trap 'rm -rf \"$dccn_d\"' EXIT",
    ];
    const args = [
        "curl", "-sS", "--max-time", String(req.timeoutSec ?? 60), "--unix-socket", sq(socket),
        "-X", req.method, "-o", '"$dccn_d/out"', "-w", "'%{http_code}'",
    ];
    const headers = Object.entries(req.headers ?? {});
    if (headers.length > 0) {
        const text = headers.map(([k, v]) => {
            if (!/^[A-Za-z0-9-]+$/.test(k) || /[\r\n]/.test(v)) throw new Error(`invalid header ${k}`);
            return `${k}: ${v}`;
        }).join("\n");
        const d = heredocDelimiter("DCCN_HEADERS_EOF", text);
        lines.push(`cat > "$dccn_d/headers" <<'${d}'`, text, d);
        args.push("-H", '@"$dccn_d/headers"');
    }
    if (req.body !== undefined) {
        const text = JSON.stringify(req.body); // one line: newlines in strings are escaped
        const d = heredocDelimiter("DCCN_BODY_EOF", text);
        lines.push(`cat > "$dccn_d/body" <<'${d}'`, text, d);
        args.push("-H", "'Content-Type: application/json'", "--data-binary", '@"$dccn_d/body"');
    }
    args.push(sq(`http://localhost${apiVersion ? `/v${apiVersion}` : ""}${req.path}`));
    lines.push(`dccn_code=$(${args.join(" ")})`, 'echo "HTTP $dccn_code"', 'cat "$dccn_d/out"');
    return lines.join("\n");
}

/** One Engine API request on the transport's machine. Rejects only when it cannot be made. */
export async function api(t: Transport, req: ApiRequest, unversioned = false): Promise<ApiResponse> {
    const r = await t.run(requestScript(t.socket, req, unversioned ? null : t.apiVersion ?? API_VERSION), (req.timeoutSec ?? 60) + 30);
    const nl = r.stdout.indexOf("\n");
    const first = nl < 0 ? r.stdout : r.stdout.slice(0, nl);
    const m = /^HTTP (\d{3})$/.exec(first.trim());
    if (r.code !== 0 || !m) {
        throw new RemoteError(`${t.name}: ${req.method} ${req.path}: ${(r.stderr || r.stdout).trim().split("\n").slice(-5).join("\n") || `exit ${r.code}`}`, r);
    }
    const text = nl < 0 ? "" : r.stdout.slice(nl + 1);
    let json: unknown;
    try {
        json = text.trim() ? JSON.parse(text) : undefined;
    } catch {
        json = undefined;
    }
    return { status: Number(m[1]), text, json };
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

/**
 * The first of `candidates` that is a manager of a swarm with a leader (the same rule as
 * swarm-ops.findManager, through the Engine API: `GET /info` says manager, `GET /nodes` answers
 * only with a quorum). The error says what each candidate answered.
 */
export async function findManager(candidates: readonly Transport[]): Promise<Transport> {
    const why: string[] = [];
    for (const c of candidates) {
        try {
            const version = await api(c, { method: "GET", path: "/version" }, true);
            if (version.status !== 200) throw new RemoteError(`${c.name}: GET /version failed: ${apiMessage(version)}`);
            const t: Transport = { ...c, apiVersion: olderVersion(String(version.json?.ApiVersion ?? API_VERSION), API_VERSION) };
            const info = await apiOk(t, { method: "GET", path: "/info" }, "reading the engine's swarm state");
            const sw = info.json?.Swarm ?? {};
            if (sw.LocalNodeState !== "active" || !sw.ControlAvailable) {
                why.push(`${t.name}: not a manager (swarm state ${sw.LocalNodeState ?? "unknown"})`);
                continue;
            }
            const nodes = await api(t, { method: "GET", path: "/nodes" });
            if (nodes.status !== 200) {
                why.push(`${t.name}: manager without quorum (${apiMessage(nodes)})`);
                continue;
            }
            return t;
        } catch (e) {
            why.push(`${c.name}: ${(e as Error).message.replace(`${c.name}: `, "")}`);
        }
    }
    throw new RemoteError("no reachable swarm manager with a quorum: " + (why.join("; ") || "no managers configured") +
        ". If a majority of managers is lost for good, set `swarm.forceNewCluster` to a surviving manager (runbook: disaster recovery)");
}
