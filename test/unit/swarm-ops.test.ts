/** lib/swarm-ops.ts's node update script, run by bash against a fake docker CLI. */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { nodeUpdateScript } from "../../lib/swarm-ops";

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
