/**
 * A throwaway dockerd for integration tests: its own data/exec roots and socket in a temporary
 * directory, its own network namespace (only `lo`: no bridge, no iptables rules, nothing of the
 * host's networking or of the lab is touched), its own containerd namespaces, a one-node swarm
 * advertised on 127.0.0.1, and a tiny image imported from Debian's busybox-static (images cannot be
 * pulled here). Root is needed, as for any dockerd.
 *
 * Two engines: the host's (Debian bookworm's docker.io 20.10, the lab's and DCCN's pinned one) and
 * Debian trixie's 26.1.5 with its own containerd and runc, from the cache tools/engines.sh fills
 * (/var/cache/dccn-lab/engines/26.1.5: outside the work tree, nothing installed on the host). Each
 * comes with the docker CLI of its version, the one whose `docker stack deploy` it is compared with.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface Engine {
    /** The version as `docker stack deploy` rules know it (compose/cli-rules.ts): "20.10", "26.1". */
    version: string;
    /** The dockerd binary. */
    dockerd: string;
    /** Directories put first on dockerd's PATH: its containerd, containerd-shim-runc-v2, runc, docker-init, docker-proxy. */
    path: string[];
    /** The docker CLI of the engine's version. */
    cli: string;
    /** Where it comes from, for messages. */
    source: string;
    /** A file that exists once the engine is complete (tools/engines.sh writes it last). */
    ready?: string;
}

/** Where tools/engines.sh keeps the engines it fetches. */
export const ENGINE_CACHE = process.env.DCCN_ENGINE_CACHE || "/var/cache/dccn-lab/engines";

/** The engines the integration tests run, by version: the host's 20.10 and the cached 26.1.5. */
export const ENGINES: Record<"20.10" | "26.1", Engine> = {
    "20.10": { version: "20.10", dockerd: "/usr/sbin/dockerd", path: [], cli: "/usr/bin/docker", source: "the host's docker.io (tools/prereqs.sh)" },
    "26.1": {
        version: "26.1",
        dockerd: path.join(ENGINE_CACHE, "26.1.5", "root", "usr", "sbin", "dockerd"),
        path: [path.join(ENGINE_CACHE, "26.1.5", "root", "usr", "bin"), path.join(ENGINE_CACHE, "26.1.5", "root", "usr", "sbin")],
        cli: path.join(ENGINE_CACHE, "26.1.5", "root", "usr", "bin", "docker"),
        source: `Debian trixie's docker.io 26.1.5 in ${path.join(ENGINE_CACHE, "26.1.5")} (tools/engines.sh)`,
        ready: path.join(ENGINE_CACHE, "26.1.5", "READY"),
    },
};

export interface Dockerd {
    dir: string;
    socket: string;
    proc: ChildProcess;
    /** The engine started (startDockerd sets it); absent: a dockerd started elsewhere, driven with PATH's docker. */
    engine?: Engine;
}

export const TEST_IMAGE = "dccn-test/busybox";

/** The engine's own docker CLI against it. */
export function docker(d: Dockerd, args: string[], input?: string) {
    return spawnSync(d.engine?.cli ?? "docker", ["-H", `unix://${d.socket}`, ...args], { encoding: "utf8", timeout: 120_000, input });
}

/** Why a dockerd (of `engine`, default the host's) cannot be started here, or undefined. */
export function dockerdProblem(engine: Engine = ENGINES["20.10"]): string | undefined {
    for (const cmd of ["unshare", "ip", "curl"]) {
        if (spawnSync("bash", ["-c", `command -v ${cmd}`]).status !== 0) return `${cmd} is not installed (tools/prereqs.sh)`;
    }
    if (engine.ready && !fs.existsSync(engine.ready)) {
        return `the engine ${engine.version} is not there: ${engine.ready} is missing (run tools/engines.sh, or tools/prereqs.sh, as root)`;
    }
    for (const bin of [engine.dockerd, engine.cli]) {
        if (!fs.existsSync(bin)) return `${bin} is not installed (${engine.source})`;
    }
    if (process.getuid?.() !== 0) return "starting a dockerd needs root";
    if (!fs.existsSync("/bin/busybox") && !fs.existsSync("/usr/bin/busybox")) {
        return "busybox is not installed (apt-get install busybox-static): the test image is built from it";
    }
    return undefined;
}

/** A throwaway dockerd of `engine` (default: the host's 20.10) with a one-node swarm and the test image. */
export async function startDockerd(engine: Engine = ENGINES["20.10"]): Promise<Dockerd> {
    // Short path: a unix socket path must stay under ~100 bytes.
    const dir = fs.mkdtempSync("/tmp/dccn-it-");
    const socket = `${dir}/docker.sock`;
    const tag = path.basename(dir);
    const log = fs.openSync(path.join(dir, "dockerd.log"), "w");
    const script = [
        "ip link set lo up",
        `exec ${engine.dockerd} --data-root ${dir}/root --exec-root ${dir}/exec -H unix://${socket} --pidfile ${dir}/docker.pid ` +
        `--containerd-namespace ${tag} --containerd-plugins-namespace ${tag}-plugins --bridge=none --iptables=false --ip-masq=false`,
    ].join("\n");
    // unshare without --fork: bash then dockerd keep this PID, so a signal to it reaches dockerd.
    const proc = spawn("unshare", ["--net", "--", "bash", "-c", script], {
        stdio: ["ignore", log, log],
        // Tasks use the image imported below; no pull attempt (there is no registry to reach).
        env: {
            ...process.env, DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: "1",
            PATH: [...engine.path, process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin"].join(":"),
        },
    });
    fs.closeSync(log);
    const d: Dockerd = { dir, socket, proc, engine };
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && proc.exitCode === null) {
        if (docker(d, ["version", "--format", "{{.Server.Version}}"]).status === 0) {
            const init = docker(d, ["swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377"]);
            if (init.status !== 0) {
                await stopDockerd(d);
                throw new Error(`docker swarm init failed: ${init.stderr}`);
            }
            importImage(d);
            return d;
        }
        await new Promise((r) => setTimeout(r, 500));
    }
    const tail = fs.readFileSync(path.join(dir, "dockerd.log"), "utf8").split("\n").slice(-15).join("\n");
    await stopDockerd(d);
    throw new Error(`dockerd ${engine.version} (${engine.dockerd}) did not come up on ${socket} within 60s:\n${tail}`);
}

/** `dccn-test/busybox:1` and `:2` (same content, two references) from busybox-static. */
function importImage(d: Dockerd): void {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-it-image-"));
    try {
        fs.mkdirSync(path.join(root, "bin"));
        fs.mkdirSync(path.join(root, "etc"));
        fs.mkdirSync(path.join(root, "tmp"));
        const busybox = fs.existsSync("/bin/busybox") ? "/bin/busybox" : "/usr/bin/busybox";
        fs.copyFileSync(busybox, path.join(root, "bin", "busybox"));
        fs.chmodSync(path.join(root, "bin", "busybox"), 0o755);
        for (const c of ["sh", "sleep", "cat", "false", "true", "ls", "test"]) fs.symlinkSync("busybox", path.join(root, "bin", c));
        const tar = spawnSync("tar", ["-C", root, "-c", "."], { maxBuffer: 64 * 1024 * 1024 });
        const imp = spawnSync(d.engine?.cli ?? "docker", ["-H", `unix://${d.socket}`, "import", "-c", "ENV PATH=/bin", "-", `${TEST_IMAGE}:1`], { input: tar.stdout, encoding: "utf8" });
        if (imp.status !== 0) throw new Error(`docker import failed: ${imp.stderr}`);
        const tag = docker(d, ["tag", `${TEST_IMAGE}:1`, `${TEST_IMAGE}:2`]);
        if (tag.status !== 0) throw new Error(`docker tag failed: ${tag.stderr}`);
    } finally {
        fs.rmSync(root, { recursive: true, force: true });
    }
}

export async function stopDockerd(d: Dockerd): Promise<void> {
    if (d.proc.exitCode === null && d.proc.signalCode === null) {
        const exited = new Promise<void>((r) => d.proc.once("exit", () => r()));
        d.proc.kill("SIGTERM");
        const timer = setTimeout(() => d.proc.kill("SIGKILL"), 30_000);
        await exited;
        clearTimeout(timer);
    }
    // Network namespaces of the engine's sandboxes stay mounted under exec-root.
    const mounts = fs.readFileSync("/proc/self/mounts", "utf8").split("\n").map((l) => l.split(" ")[1])
        .filter((m) => m && m.startsWith(d.dir + "/")).sort().reverse();
    for (const m of mounts) spawnSync("umount", ["-l", m]);
    fs.rmSync(d.dir, { recursive: true, force: true, maxRetries: 3 });
}
