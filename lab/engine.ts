// The host Docker engine the lab's node containers run on: an engine that is already there
// (DOCKER_HOST, /var/run/docker.sock), or one the lab starts with its own roots and socket.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import {
    ENGINE_DATA_ROOT, ENGINE_EXEC_ROOT, ENGINE_LOG, ENGINE_PIDFILE, ENGINE_SOCKET, LAB_VAR_DIR, RUN_DIR, SYSTEM_SOCKET,
} from "./config";
import { LabError, run, say, sleep } from "./util";

export interface Engine {
    /** DOCKER_HOST value for every docker call of the lab, e.g. unix:///run/dccn-lab/docker.sock */
    host: string;
    /** true when it is the lab's own dockerd */
    owned: boolean;
    version: string;
}

export const LAB_ENGINE_HOST = `unix://${ENGINE_SOCKET}`;

export function engineVersion(host: string): string | undefined {
    const r = run("docker", ["version", "--format", "{{.Server.Version}}"], {
        env: { ...process.env, DOCKER_HOST: host, DOCKER_CONTEXT: "" },
        timeout: 20000,
    });
    return r.code === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
}

/** The engine the lab uses, if one answers now; starts nothing. */
export function findEngine(): Engine | undefined {
    const env = process.env.DOCKER_HOST;
    if (env) {
        const version = engineVersion(env);
        if (!version) throw new LabError(`DOCKER_HOST=${env} is set, but no Docker engine answers there`);
        return { host: env, owned: env === LAB_ENGINE_HOST, version };
    }
    if (fs.existsSync(SYSTEM_SOCKET)) {
        const version = engineVersion(`unix://${SYSTEM_SOCKET}`);
        if (version) return { host: `unix://${SYSTEM_SOCKET}`, owned: false, version };
    }
    const version = fs.existsSync(ENGINE_SOCKET) ? engineVersion(LAB_ENGINE_HOST) : undefined;
    if (version) return { host: LAB_ENGINE_HOST, owned: true, version };
    return undefined;
}

/** PID of the lab's own dockerd, if it runs. */
export function labEnginePid(): number | undefined {
    let pid: number;
    try {
        pid = Number(fs.readFileSync(ENGINE_PIDFILE, "utf8").trim());
    } catch {
        return undefined;
    }
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    try {
        const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        if (cmdline.some((a) => a.endsWith("dockerd")) && cmdline.includes(ENGINE_DATA_ROOT)) return pid;
    } catch {
        /* gone */
    }
    return undefined;
}

/** Starts the lab's own dockerd, detached, and waits until it answers. */
export async function startLabEngine(): Promise<Engine> {
    fs.mkdirSync(RUN_DIR, { recursive: true, mode: 0o755 });
    fs.mkdirSync(ENGINE_DATA_ROOT, { recursive: true, mode: 0o710 });
    fs.mkdirSync(LAB_VAR_DIR, { recursive: true });
    const args = [
        "--data-root", ENGINE_DATA_ROOT,
        "--exec-root", ENGINE_EXEC_ROOT,
        "--pidfile", ENGINE_PIDFILE,
        "-H", LAB_ENGINE_HOST,
        "--containerd-namespace", "dccn-lab",
        "--containerd-plugins-namespace", "dccn-lab-plugins",
        // no default bridge and no iptables rules of its own: the host's firewall stays as it is
        "--bridge", "none",
        "--iptables=false",
        "--ip-masq=false",
    ];
    // a pid file left by a lab dockerd that was killed: its pid may belong to another process now
    if (fs.existsSync(ENGINE_PIDFILE) && !labEnginePid()) fs.rmSync(ENGINE_PIDFILE, { force: true });
    const log = fs.openSync(ENGINE_LOG, "a");
    fs.writeSync(log, `--- ${new Date().toISOString()} dccn-lab: dockerd ${args.join(" ")}\n`);
    const child = spawn("dockerd", args, { detached: true, stdio: ["ignore", log, log] });
    let exited: number | null = null;
    child.on("exit", (code) => (exited = code ?? 1));
    child.on("error", () => (exited = 127));
    child.unref();
    fs.closeSync(log);
    const started = Date.now();
    while (Date.now() - started < 60000) {
        await sleep(500);
        if (exited !== null) break;
        const version = engineVersion(LAB_ENGINE_HOST);
        if (version) return { host: LAB_ENGINE_HOST, owned: true, version };
    }
    const tail = fs.readFileSync(ENGINE_LOG, "utf8").trimEnd().split("\n").slice(-8).join("\n    ");
    if (exited === null) {
        try {
            process.kill(child.pid!, "SIGTERM");
        } catch {
            /* gone */
        }
    }
    throw new LabError(`the lab's dockerd did not start (see ${ENGINE_LOG}):\n    ${tail}`);
}

/** Stops the lab's own dockerd (only that one), and waits until it and its children are gone. */
export async function stopLabEngine(): Promise<boolean> {
    const pid = labEnginePid();
    if (!pid) return false;
    process.kill(pid, "SIGTERM");
    const started = Date.now();
    while (Date.now() - started < 45000) {
        if (!fs.existsSync(`/proc/${pid}`)) break;
        await sleep(250);
    }
    if (fs.existsSync(`/proc/${pid}`)) {
        say(`  dockerd ${pid} did not stop in 45s; killing it`);
        process.kill(pid, "SIGKILL");
        await sleep(1000);
    }
    return true;
}

/**
 * Processes left by the lab engine (a containerd or shim that outlived dockerd): found by the
 * lab's own paths on their command line, never by name alone.
 */
export function strayEngineProcesses(): number[] {
    const found: number[] = [];
    for (const e of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
        try {
            const cmd = fs.readFileSync(`/proc/${e}/cmdline`, "utf8");
            if (cmd.includes(ENGINE_EXEC_ROOT) || cmd.includes(ENGINE_DATA_ROOT) || cmd.includes(ENGINE_SOCKET)) found.push(Number(e));
        } catch {
            /* gone */
        }
    }
    return found;
}
