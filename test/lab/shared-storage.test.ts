// The shared storage (`dccn-swarm:sharedStorage`, /mnt/docker) on the lab, as `npm run status` reports it.
//
// Every lab node has the same host directory bind-mounted at /mnt/docker (lab/config.ts labInstance's sharedDir):
// a file written on one node is read on the others, and status reports the mount ok on every node.
// Then the mount on vm3 is made to stop answering, as a hung NFS hard mount does: a FUSE file system
// mounted over /mnt/docker whose server never answers (every access blocks, killably). Status must
// name vm3 and /mnt/docker within the check's time-out, and the cluster is unhealthy. The hanging
// mount is always removed (its process killed, the FUSE mount detached), even when a check fails.
//
// Without the lab these tests skip; under CI=true they fail.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, test } from "node:test";
import { NODE_SHARED_PATH } from "../../lab/config";
import { devStackText, workLab } from "../../tools/workspace";

// The lab these tests run on (LAB_NAME's, else the default one).
const { keyFile: KEY_FILE, knownHosts: KNOWN_HOSTS, labJson: LAB_JSON } = workLab();

const ROOT = path.resolve(__dirname, "..", "..");
const CI = process.env.CI === "true";
const missing = [LAB_JSON, KEY_FILE, KNOWN_HOSTS].find((f) => !fs.existsSync(f));
const skip: string | false = missing ? `the lab is not up (${path.relative(ROOT, missing)} is missing); run \`npm run lab:up\`` : false;
if (skip && CI) test("shared storage on the lab: prerequisites", () => assert.fail(`prerequisite missing in CI: ${skip}`));

interface LabNode { name: string; address: string }
const labNodes = (): LabNode[] => JSON.parse(fs.readFileSync(LAB_JSON, "utf8")).nodes;

/** A command on a lab node as root over SSH, bounded. */
function onNode(n: LabNode, command: string, timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
        execFile("ssh", ["-i", KEY_FILE, "-o", `UserKnownHostsFile=${KNOWN_HOSTS}`, "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", `root@${n.address}`, command],
        { timeout: timeoutMs, encoding: "utf8" }, (err, stdout, stderr) => {
            resolve({ code: err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 255) : 0, stdout, stderr });
        });
    });
}

/** The project status reads: this checkout, or on a named lab a folder with the dev stack file written for that lab. */
let statusDir = "";
function statusProject(): string {
    if (workLab().isDefault) return ROOT;
    if (!statusDir) {
        statusDir = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-shared-status-"));
        fs.writeFileSync(path.join(statusDir, "Pulumi.dev.yaml"), devStackText());
        process.on("exit", () => fs.rmSync(statusDir, { recursive: true, force: true }));
    }
    return statusDir;
}

interface Run { code: number | null; stdout: string; stderr: string; ms: number }
function status(): Promise<Run> {
    const started = Date.now();
    return new Promise((resolve) => {
        const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "tools", "status.ts"), "--stack", "dev", "--json", "--project", statusProject()],
            { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
        child.on("close", (code) => {
            clearTimeout(timer);
            resolve({ code, stdout, stderr, ms: Date.now() - started });
        });
    });
}
const show = (r: Run) => `exit ${r.code} after ${r.ms} ms\n--- stdout\n${r.stdout.slice(0, 4000)}\n--- stderr\n${r.stderr.slice(0, 2000)}`;

const P = NODE_SHARED_PATH;
const PIDFILE = "/run/dccn-test-hang.pid";
/** A FUSE mount over /mnt/docker that never answers; its server's pid in PIDFILE. */
const HANG = `[ -e /dev/fuse ] || mknod /dev/fuse c 10 229
setsid bash -c 'exec 3<>/dev/fuse; mount -t fuse -o fd=3,rootmode=40000,user_id=0,group_id=0 dccn-test-hang ${P} && echo $$ > ${PIDFILE} && exec sleep 3600' </dev/null >/dev/null 2>&1 &
for _ in $(seq 50); do [ -s ${PIDFILE} ] && break; sleep 0.1; done
grep -q ' ${P} fuse ' /proc/mounts`;
/** Undo HANG: kill the FUSE server (its mount then fails fast), detach every FUSE mount at the path. */
const UNHANG = `[ -s ${PIDFILE} ] && kill -9 "$(cat ${PIDFILE})" 2>/dev/null; rm -f ${PIDFILE}
while grep -q ' ${P} fuse ' /proc/mounts; do umount -l ${P} || break; done
timeout 5 test -d ${P}`;

describe("shared storage on the lab", { skip, concurrency: false }, () => {
    test("every node sees the same /mnt/docker, and status reports it ok on each", { timeout: 120_000 }, async () => {
        const nodes = labNodes();
        const name = `.dccn-test-shared-${process.pid}`;
        const w = await onNode(nodes[0], `echo from-${nodes[0].name} > ${P}/${name}`);
        assert.equal(w.code, 0, w.stderr);
        try {
            for (const n of nodes.slice(1)) {
                const r = await onNode(n, `cat ${P}/${name}`);
                assert.equal(r.stdout.trim(), `from-${nodes[0].name}`, `${n.name} reads what ${nodes[0].name} wrote: ${r.stderr}`);
            }
        } finally {
            await onNode(nodes[0], `rm -f ${P}/${name}`);
        }
        const r = await status();
        const j = JSON.parse(r.stdout);
        for (const n of nodes) {
            const node = j.nodes.find((x: { hostname: string }) => x.hostname === n.name);
            assert.equal(node?.sharedStorage?.state, "ok", `${n.name}: ${show(r)}`);
            assert.equal(node.sharedStorage.path, P);
        }
        assert.ok(!j.problems.some((p: string) => p.includes("shared storage")), show(r));
    });

    test("a mount that stops answering on vm3 is flagged within its time-out, naming vm3; it answers again afterwards", { timeout: 120_000 }, async () => {
        const vm3 = labNodes().find((n) => n.name === "vm3");
        assert.ok(vm3, "the lab has vm3");
        try {
            const h = await onNode(vm3, HANG);
            assert.equal(h.code, 0, `the FUSE mount over ${P} on vm3: ${h.stderr}`);
            const r = await status();
            const j = JSON.parse(r.stdout);
            const node = j.nodes.find((x: { hostname: string }) => x.hostname === "vm3");
            assert.equal(node?.sharedStorage?.state, "not-answering", show(r));
            const timeout: number = node.sharedStorage.timeout;
            assert.equal(j.healthy, false);
            assert.notEqual(r.code, 0, "status exits non-zero when unhealthy");
            const line = j.problems.find((p: string) => p.startsWith("vm3: shared storage /mnt/docker does not answer"));
            assert.ok(line, `a problem names vm3 and the path: ${j.problems.join("\n")}`);
            for (const other of j.nodes.filter((x: { hostname: string }) => x.hostname !== "vm3")) {
                assert.equal(other.sharedStorage?.state, "ok", `${other.hostname} is not affected`);
            }
            // Bounded: the check gives up after its time-out; the whole run takes only seconds more.
            assert.ok(r.ms < (timeout + 20) * 1000, `status took ${r.ms} ms with a ${timeout} s time-out`);
        } finally {
            const u = await onNode(vm3, UNHANG);
            assert.equal(u.code, 0, `removing the hanging mount on vm3: ${u.stderr}`);
        }
        const again = await onNode(vm3, `timeout 5 touch ${P}/.dccn-test-again && rm -f ${P}/.dccn-test-again && grep ' ${P} ' /proc/mounts`);
        assert.equal(again.code, 0, `vm3's ${P} answers again: ${again.stderr}`);
        assert.doesNotMatch(again.stdout, /fuse/);
    });
});
