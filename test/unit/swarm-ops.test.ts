/** lib/swarm-ops.ts's node scripts, run by bash against a fake docker CLI. */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { nodeUpdateScript, restartAsManagerScript } from "../../lib/swarm-ops";

/**
 * Runs `script` under bash with fake commands first on PATH (`fakes`: name -> bash body, given
 * their scratch directory); `read` looks at that directory before it is removed.
 * `counted(dir, failures, message)` is a body failing its first `failures` calls with `message`.
 */
function withFakes<T>(script: string, fakes: (dir: string) => Record<string, string>, read: (dir: string) => T): { status: number | null; stderr: string } & T {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-swarm-ops-"));
    try {
        for (const [name, body] of Object.entries(fakes(dir))) fs.writeFileSync(path.join(dir, name), `#!/bin/bash\n${body}\n`, { mode: 0o755 });
        const r = spawnSync("bash", ["-c", script], { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, encoding: "utf8" });
        return { status: r.status, stderr: r.stderr, ...read(dir) };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

const counted = (dir: string, failures: number, message: string) => [
    `n=$(cat ${dir}/calls 2>/dev/null || echo 0); echo $((n + 1)) > ${dir}/calls`,
    `if [ "$n" -lt ${failures} ]; then echo ${JSON.stringify(message)} >&2; exit 1; fi`,
].join("\n");

/** The node update script with a `docker` that fails `failures` times with `message`, then succeeds. */
function run(failures: number, message: string): { status: number | null; stderr: string; calls: number } {
    return withFakes(nodeUpdateScript("docker node update --label-add os=linux vm1"),
        (dir) => ({ docker: `${counted(dir, failures, message)}\necho node-id` }),
        (dir) => ({ calls: Number(fs.readFileSync(path.join(dir, "calls"), "utf8")) }));
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
    return withFakes(restartAsManagerScript(timeoutSec),
        (dir) => ({
            systemctl: `echo "$*" > ${dir}/systemctl.calls`,
            sleep: "",
            docker: counted(dir, notYet, "This node is not a swarm manager."),
        }),
        (dir) => {
            const calls = path.join(dir, "systemctl.calls");
            return { restarted: fs.existsSync(calls) && fs.readFileSync(calls, "utf8").trim() === "restart docker" };
        });
}

test("after --force-new-cluster the engine is restarted and waited for until it manages again", () => {
    assert.deepEqual(restart(3, 10), { status: 0, stderr: "", restarted: true });
});

test("an engine that does not come back as a manager fails with the time-out named", () => {
    const r = restart(100, 5);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /did not answer as a swarm manager within 5s/);
});
