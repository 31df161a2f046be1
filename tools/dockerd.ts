/**
 * A throwaway dockerd for integration tests: its own data/exec roots and socket in a temporary
 * directory, its own network namespace (only `lo`: no bridge, no iptables rules, nothing of the
 * host's networking or of the lab is touched), its own containerd namespaces, a one-node swarm
 * advertised on 127.0.0.1, and a tiny image imported from Debian's busybox-static (images cannot be
 * pulled here). Root is needed, as for any dockerd.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface Dockerd {
    dir: string;
    socket: string;
    proc: ChildProcess;
}

export const TEST_IMAGE = "dccn-test/busybox";

export function docker(d: Dockerd, args: string[], input?: string) {
    return spawnSync("docker", ["-H", `unix://${d.socket}`, ...args], { encoding: "utf8", timeout: 120_000, input });
}

/** Why a dockerd cannot be started here, or undefined. */
export function dockerdProblem(): string | undefined {
    for (const cmd of ["dockerd", "docker", "unshare", "ip", "curl"]) {
        if (spawnSync("bash", ["-c", `command -v ${cmd}`]).status !== 0) return `${cmd} is not installed (tools/prereqs.sh)`;
    }
    if (process.getuid?.() !== 0) return "starting a dockerd needs root";
    if (!fs.existsSync("/bin/busybox") && !fs.existsSync("/usr/bin/busybox")) {
        return "busybox is not installed (apt-get install busybox-static): the test image is built from it";
    }
    return undefined;
}

export async function startDockerd(): Promise<Dockerd> {
    // Short path: a unix socket path must stay under ~100 bytes.
    const dir = fs.mkdtempSync("/tmp/dccn-it-");
    const socket = `${dir}/docker.sock`;
    const tag = path.basename(dir);
    const log = fs.openSync(path.join(dir, "dockerd.log"), "w");
    const script = [
        "ip link set lo up",
        `exec dockerd --data-root ${dir}/root --exec-root ${dir}/exec -H unix://${socket} --pidfile ${dir}/docker.pid ` +
        `--containerd-namespace ${tag} --containerd-plugins-namespace ${tag}-plugins --bridge=none --iptables=false --ip-masq=false`,
    ].join("\n");
    // unshare without --fork: bash then dockerd keep this PID, so a signal to it reaches dockerd.
    const proc = spawn("unshare", ["--net", "--", "bash", "-c", script], {
        stdio: ["ignore", log, log],
        // Tasks use the image imported below; no pull attempt (there is no registry to reach).
        env: { ...process.env, DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: "1" },
    });
    fs.closeSync(log);
    const d: Dockerd = { dir, socket, proc };
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
    throw new Error(`dockerd did not come up on ${socket} within 60s:\n${tail}`);
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
        const imp = spawnSync("docker", ["-H", `unix://${d.socket}`, "import", "-c", "ENV PATH=/bin", "-", `${TEST_IMAGE}:1`], { input: tar.stdout, encoding: "utf8" });
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
