/**
 * Running a script on a node over SSH from the machine that runs Pulumi. The script travels on
 * standard input (`bash -s`), so nothing it contains, a join token for instance, ever appears on a
 * command line, here or on the node. Host keys are always checked against the pinned known_hosts.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export interface SshTarget {
    /** Name used in messages, e.g. `vm2`. */
    name: string;
    host: string;
    port: number;
    user: string;
    /** PEM/OpenSSH private key text (a secret). */
    privateKey: string;
    /** known_hosts lines for this host (`ADDRESS KEYTYPE KEY`). */
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
        // Set explicitly: a dynamic provider's serialized copy of this class calls Error as a
        // plain function, which sets no message (the engine would print "error: undefined").
        this.message = message;
        this.name = "RemoteError";
    }
}

/** ssh exits 255 when it could not connect or authenticate (as opposed to the script failing). */
export const SSH_CONNECT_FAILED = 255;

function tail(s: string, lines = 12): string {
    return s.trim().split("\n").slice(-lines).join("\n");
}

/**
 * Run `script` on the target with bash. Resolves with the exit code and output; rejects only when
 * the node cannot be reached or the whole call exceeds `timeoutSec`.
 */
export async function runScript(t: SshTarget, script: string, timeoutSec = 600): Promise<RunResult> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-ssh-"));
    try {
        const keyFile = path.join(dir, "key");
        const khFile = path.join(dir, "known_hosts");
        fs.writeFileSync(keyFile, t.privateKey.endsWith("\n") ? t.privateKey : t.privateKey + "\n", { mode: 0o600 });
        fs.writeFileSync(khFile, t.knownHosts.endsWith("\n") ? t.knownHosts : t.knownHosts + "\n", { mode: 0o600 });
        const args = [
            "-i", keyFile,
            "-p", String(t.port),
            "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", `UserKnownHostsFile=${khFile}`,
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", `ConnectTimeout=${Math.ceil(t.connectTimeout)}`,
            "-o", "ServerAliveInterval=5",
            "-o", "ServerAliveCountMax=3",
            "-o", "LogLevel=ERROR",
            `${t.user}@${t.host}`,
            "bash -s",
        ];
        const result = await new Promise<RunResult>((resolve, reject) => {
            const child = spawn("ssh", args, { stdio: ["pipe", "pipe", "pipe"] });
            let stdout = "";
            let stderr = "";
            const timer = setTimeout(() => {
                child.kill("SIGKILL");
                reject(new RemoteError(`${t.name} (${t.host}): no answer within ${timeoutSec}s`));
            }, timeoutSec * 1000);
            child.stdout.on("data", (d) => (stdout += d));
            child.stderr.on("data", (d) => (stderr += d));
            child.on("error", (e) => {
                clearTimeout(timer);
                reject(new RemoteError(`cannot run ssh for ${t.name}: ${e.message}`));
            });
            child.on("close", (code) => {
                clearTimeout(timer);
                resolve({ code: code ?? 1, stdout, stderr });
            });
            child.stdin.on("error", () => { /* the remote side closed early; its exit status tells why */ });
            child.stdin.end("set -euo pipefail\n" + script + "\n");
        });
        if (result.code === SSH_CONNECT_FAILED && /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No .* host key is known/i.test(result.stderr)) {
            throw new RemoteError(`${t.name} (${t.host}): host key verification failed: the node's SSH host key is not the pinned one; ` +
                "check the node, then update its `hostKey` (or the known_hosts file) if the change is expected", result, true);
        }
        if (result.code === SSH_CONNECT_FAILED && result.stdout === "") {
            throw new RemoteError(`${t.name} (${t.host}): SSH connection failed: ${tail(result.stderr, 3) || "no answer"}`, result);
        }
        return result;
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
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

/** Quote a value for a POSIX shell. */
export function shq(s: string): string {
    return "'" + s.replace(/'/g, "'\\''") + "'";
}
