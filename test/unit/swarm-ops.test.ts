/** lib/swarm-ops.ts's node scripts, run by bash against a fake docker CLI. */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { nodeUpdateScript, restartAsManagerScript } from "../../lib/swarm-ops";

/** Runs the script with a `docker` that fails `failures` times with `message`, then succeeds. */
function run(failures: number, message: string): { status: number | null; stderr: string; calls: number } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-nodeupdate-"));
    try {
        fs.writeFileSync(path.join(dir, "docker"), [
            "#!/bin/bash",
            `n=$(cat ${dir}/calls 2>/dev/null || echo 0); echo $((n + 1)) > ${dir}/calls`,
            `if [ "$n" -lt ${failures} ]; then echo ${JSON.stringify(message)} >&2; exit 1; fi`,
            "echo node-id",
        ].join("\n"), { mode: 0o755 });
        const r = spawnSync("bash", ["-c", nodeUpdateScript("docker node update --label-add os=linux vm1")],
            { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, encoding: "utf8" });
        return { status: r.status, stderr: r.stderr, calls: Number(fs.readFileSync(path.join(dir, "calls"), "utf8")) };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

test("a leader election in progress is waited out: the update is tried again and succeeds", () => {
    const r = run(2, "Error response from daemon: rpc error: code = Unknown desc = raft: failed to process the request: node lost leader status");
    assert.deepEqual([r.status, r.calls, r.stderr], [0, 3, ""]);
});

test("any other error fails at once with the engine's message", () => {
    const r = run(1, "Error response from daemon: node vm9 not found");
    assert.deepEqual([r.status, r.calls], [1, 1]);
    assert.match(r.stderr, /node vm9 not found/);
});

/** The restart after --force-new-cluster, with a `docker` answering as a manager after `notYet` calls. */
function restart(notYet: number, timeoutSec: number): { status: number | null; stderr: string; restarted: boolean } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-restart-"));
    try {
        fs.writeFileSync(path.join(dir, "systemctl"), `#!/bin/bash\necho "$*" > ${dir}/systemctl.calls\n`, { mode: 0o755 });
        fs.writeFileSync(path.join(dir, "sleep"), "#!/bin/bash\n", { mode: 0o755 });
        fs.writeFileSync(path.join(dir, "docker"), [
            "#!/bin/bash",
            `n=$(cat ${dir}/calls 2>/dev/null || echo 0); echo $((n + 1)) > ${dir}/calls`,
            `if [ "$n" -lt ${notYet} ]; then echo "This node is not a swarm manager." >&2; exit 1; fi`,
        ].join("\n"), { mode: 0o755 });
        const r = spawnSync("bash", ["-c", restartAsManagerScript(timeoutSec)],
            { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, encoding: "utf8" });
        const calls = path.join(dir, "systemctl.calls");
        const restarted = fs.existsSync(calls) && fs.readFileSync(calls, "utf8").trim() === "restart docker";
        return { status: r.status, stderr: r.stderr, restarted };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

test("after --force-new-cluster the engine is restarted and waited for until it manages again", () => {
    assert.deepEqual(restart(3, 10), { status: 0, stderr: "", restarted: true });
});

test("an engine that does not come back as a manager fails with the time-out named", () => {
    const r = restart(100, 5);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /did not answer as a swarm manager within 5s/);
});
