/**
 * The dynamic providers run as serialized closures. Errors thrown there must keep their message,
 * or the engine prints "error: undefined" instead of what went wrong.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { RemoteError, SshTarget } from "../../lib/ssh";
import { planManagerTransition } from "../../lib/quorum";
import { settleTasks } from "../../lib/swarm-ops";

async function runSerialized(f: () => Promise<unknown>): Promise<unknown> {
    const s = await pulumi.runtime.serializeFunction(f);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-ser-"));
    const file = path.join(dir, "f.js");
    fs.writeFileSync(file, s.text);
    try {
        await require(file)[s.exportName]();
        return undefined;
    } catch (e) {
        return e;
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

test("a RemoteError thrown in serialized code keeps its message and flags", async () => {
    const e = await runSerialized(async () => { throw new RemoteError("vm3: host key verification failed", undefined, true); }) as RemoteError;
    assert.equal(e.message, "vm3: host key verification failed");
    assert.equal(e.hostKeyMismatch, true);
});

test("a quorum refusal thrown in serialized code keeps its message", async () => {
    const e = await runSerialized(async () => planManagerTransition(["a", "b", "c"], ["a"])) as Error;
    assert.match(e.message, /demotes or removes 2 of 3 managers/);
});

test("settleTasks serialized carries swarm-settle.sh with it (no file read where the provider runs)", async () => {
    // An unreachable target: the serialized function must get as far as running the script over SSH.
    const t: SshTarget = { name: "nowhere", host: "127.0.0.1", port: 1, user: "root", privateKey: "", knownHosts: "", connectTimeout: 1 };
    let settled: { orphaned: string[] } | undefined;
    const e = await runSerialized(async () => { settled = await settleTasks(t, 1); if (!settled?.orphaned[0]?.includes("did not finish")) throw new Error(JSON.stringify(settled)); });
    assert.equal(e, undefined, String(e));
    const s = await pulumi.runtime.serializeFunction(async () => settleTasks(t, 1));
    assert.ok(s.text.includes("swarm-settle.sh - run on a manager"), "the script text is in the serialized closure");
});
