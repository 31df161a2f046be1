/**
 * The provider plugin's process ends with its engine: started by a parent that is then killed
 * (SIGKILL, as a killed `pulumi up`), it ends by itself within seconds instead of keeping its SSH
 * connections and the cluster lock for a deployment that is gone.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn } from "child_process";
import * as path from "path";

const ROOT = path.resolve(__dirname, "..", "..");

function alive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch {
        return false;
    }
}

test("a plugin whose engine was killed ends within seconds", async () => {
    // The parent stands in for the engine: it starts the plugin, prints its pid, and waits.
    const parent = spawn("bash", ["-c", `node --import tsx ${JSON.stringify(path.join(ROOT, "provider", "main.ts"))} & echo $!; sleep 120`],
        { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    const pid = await new Promise<number>((resolve, reject) => {
        parent.stdout!.once("data", (d: Buffer) => resolve(Number(String(d).trim())));
        parent.once("exit", () => reject(new Error("the parent ended first")));
    });
    // Serving: it printed its port (the engine's handshake) only once it listens; give it that long.
    await new Promise((r) => setTimeout(r, 4000));
    assert.ok(alive(pid), "the plugin runs while its engine does");
    parent.kill("SIGKILL");
    const until = Date.now() + 15_000;
    while (alive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    const gone = !alive(pid);
    if (!gone) process.kill(pid, "SIGKILL");
    assert.ok(gone, "the plugin ended after its engine was killed");
});
