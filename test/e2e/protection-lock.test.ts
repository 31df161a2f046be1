/**
 * Issue 15 on the lab: production protection and the cluster-wide lock, through the real Pulumi CLI,
 * the provider plugin and `npm run ops`.
 *
 * - Protection: vm3 leaves the dev swarm and becomes a one-node `staging` cluster (environment not
 *   `dev`): `pulumi destroy` refuses with Pulumi's own message naming the protection; the documented
 *   way (allowDestroy: true, `pulumi up` that only changes the protection, `pulumi destroy`) works.
 * - The lock on vm1 (the dev cluster's first manager): while a `pulumi up` of dev runs (an engine
 *   restart drill: daemon.json's max-file on every node), a second `pulumi up` against the same
 *   cluster (another stack) and `npm run ops -- backup` are refused naming the holder; a holder killed
 *   with SIGKILL frees it at once.
 * The suite's after() brings the lab back to the committed dev config (vm3 joins dev again).
 */
import { describe, test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { LocalWorkspace, PulumiCommand } from "@pulumi/pulumi/automation";
import {
    changeCollector, devConfigOf, editDevConfig, engineEnv, maxFile, nodesOf, onNode, ops, quiet, skipOrFail, swarmState, useLabSuite, waitFor,
} from "./support";

const pulumiCli = (dir: string, args: string[], env: Record<string, string> = {}) =>
    spawnSync("pulumi", [...args, "--cwd", dir, "--non-interactive"], { encoding: "utf8", env: { ...engineEnv(), ...env }, timeout: 900_000 });

/** The holder line on the lock's node, or "" while it is free. */
const holderOn = (node: string) => onNode(node, "cat /run/dccn-swarm/holder 2>/dev/null || true").trim();

describe("production protection and the cluster lock on the lab", { concurrency: 1 }, () => {
    const suite = useLabSuite(before, after);

    test("staging (vm3 alone): destroy refuses naming the protection; allowDestroy, up, destroy works", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        const dev = devConfigOf(suite.dir);
        // vm3 leaves the dev swarm first (a node is in one swarm at a time).
        editDevConfig(suite.dir, (c) => { c["dccn-swarm:nodes"] = nodesOf(c).filter((n) => n.hostname !== "vm3"); });
        await suite.stack.up(quiet);
        assert.equal(swarmState("vm3"), "inactive");

        const vm3 = nodesOf(dev).find((n) => n.hostname === "vm3");
        fs.writeFileSync(path.join(suite.dir, "Pulumi.staging.yaml"), yaml.dump({
            config: {
                "dccn-swarm:environment": "staging",
                "dccn-swarm:ssh": dev["dccn-swarm:ssh"],
                "dccn-swarm:engine": dev["dccn-swarm:engine"],
                "dccn-swarm:nodes": [{ ...vm3, role: "manager" }],
                "dccn-swarm:stacks": [],
                "dccn-swarm:registry": {},
            },
        }));
        const pulumiCommand = await PulumiCommand.get({ skipVersionCheck: true });
        const staging = await LocalWorkspace.createOrSelectStack({ stackName: "staging", workDir: suite.dir }, { envVars: engineEnv(), pulumiCommand });
        try {
            const up = await staging.up(quiet);
            assert.equal(up.outputs.protectedFromDestroy.value, true);
            assert.equal(swarmState("vm3"), "active");
            const clusterId = onNode("vm3", "docker info --format '{{.Swarm.Cluster.ID}}'").trim();

            const refused = pulumiCli(suite.dir, ["destroy", "--stack", "staging", "--yes"]);
            assert.notEqual(refused.status, 0);
            assert.match(refused.stdout + refused.stderr, /cannot be deleted\s+because it is protected/);
            // Pulumi names the first protected resource in delete order (a membership, before the swarm).
            assert.match(refused.stdout + refused.stderr, /dccn-swarm:index:(SwarmMember::swarm-vm3|SwarmCluster::swarm-cluster)/);
            assert.equal(onNode("vm3", "docker info --format '{{.Swarm.Cluster.ID}}'").trim(), clusterId, "nothing changed on vm3");

            // The documented way: lift the protection on purpose (an update of the protection only), then destroy.
            await staging.setConfig("dccn-swarm:allowDestroy", { value: "true" });
            const { onEvent, changes } = changeCollector();
            const lifted = await staging.up({ ...quiet, onEvent });
            assert.equal(lifted.outputs.protectedFromDestroy.value, false);
            const ops = [...changes.values()];
            assert.ok(!ops.some((o) => /create|delete|replace/.test(o)), `only the protection changes: ${JSON.stringify([...changes])}`);
            assert.equal(onNode("vm3", "docker info --format '{{.Swarm.Cluster.ID}}'").trim(), clusterId, "the same swarm");
            await staging.destroy(quiet);
            assert.equal(swarmState("vm3"), "inactive");
        } finally {
            // Whatever happened above: vm3 out of the staging swarm, the stack gone (after() rejoins vm3 to dev).
            await staging.setConfig("dccn-swarm:allowDestroy", { value: "true" }).catch(() => undefined);
            await staging.up(quiet).catch(() => undefined);
            await staging.destroy(quiet).catch(() => undefined);
            onNode("vm3", "docker swarm leave --force >/dev/null 2>&1 || true");
            await staging.workspace.removeStack("staging", { force: true }).catch(() => undefined);
        }
    });

    test("the cluster lock: a second up and ops backup refused naming the running up; a SIGKILLed holder frees it", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        editDevConfig(suite.dir, (c) => { c["dccn-swarm:lockWait"] = 5; });
        // A second stack against the same cluster (another administrator's), nothing but the nodes.
        const dev = devConfigOf(suite.dir);
        fs.writeFileSync(path.join(suite.dir, "Pulumi.other.yaml"), yaml.dump({
            config: {
                "dccn-swarm:environment": "dev",
                "dccn-swarm:ssh": dev["dccn-swarm:ssh"], "dccn-swarm:engine": dev["dccn-swarm:engine"], "dccn-swarm:nodes": nodesOf(dev),
                "dccn-swarm:stacks": [], "dccn-swarm:registry": {}, "dccn-swarm:lockWait": 5,
            },
        }));
        assert.equal(pulumiCli(suite.dir, ["stack", "init", "other"]).status, 0);
        try {
            // A long `pulumi up` of dev: every engine restarts (daemon.json's max-file), one node after another.
            const next = String(Number(maxFile("vm1") ?? "3") + 1);
            editDevConfig(suite.dir, (c) => { c["dccn-swarm:engine"].daemon["log-opts"]["max-file"] = next; });
            const first = spawn("pulumi", ["up", "--stack", "dev", "--yes", "--skip-preview", "--cwd", suite.dir, "--non-interactive"],
                { env: { ...process.env, ...engineEnv() }, stdio: ["ignore", "pipe", "pipe"] });
            let firstOut = "";
            first.stdout!.on("data", (d) => (firstOut += d));
            first.stderr!.on("data", (d) => (firstOut += d));
            const firstDone = new Promise<number | null>((r) => first.once("exit", r));
            await waitFor("the dev up holding the lock on vm1", () => /command=.*pulumi.*up/.test(decodeURIComponent(holderOn("vm1"))), 120);

            const second = pulumiCli(suite.dir, ["up", "--stack", "other", "--yes", "--skip-preview"]);
            assert.notEqual(second.status, 0);
            assert.match(second.stdout + second.stderr, /the cluster lock on vm1 is still held after waiting 5s by root@\S+ \(pid \d+: \S*pulumi up --stack dev[^)]*\) since \d{4}-\d\d-\d\dT\S+Z/);

            const backup = ops(suite.dir, "backup", "--stack", "dev", "--force");
            assert.equal(backup.status, 2, backup.out);
            assert.match(backup.out, /the cluster lock on vm1 is still held after waiting 5s by root@\S+ \(pid \d+: \S*pulumi up --stack dev/);

            assert.equal(await firstDone, 0, firstOut);
            assert.equal(maxFile("vm2"), next, "the dev up went through once the lock was free (vm3 is out of dev since the staging test)");
            assert.equal(holderOn("vm1"), "", "released when the deployment ended");

            // A holder killed with SIGKILL (its connection closes): free again at once.
            const victim = spawn(process.execPath, ["--import", "tsx", "-e", [
                `const { lockForCommand } = require(${JSON.stringify(path.resolve(__dirname, "../../lib/cluster-lock.ts"))});`,
                `const { loadStatusSetup } = require(${JSON.stringify(path.resolve(__dirname, "../../lib/cluster-status.ts"))});`,
                `lockForCommand(loadStatusSetup({ root: ${JSON.stringify(suite.dir)}, stack: "dev" }), () => undefined)`,
                "  .then(() => { console.log('HELD'); setInterval(() => undefined, 1000); }, (e) => { console.error(e.message); process.exit(1); });",
            ].join("\n")], { stdio: ["ignore", "pipe", "inherit"] });
            await new Promise<void>((resolve, reject) => {
                victim.stdout!.on("data", (d) => String(d).includes("HELD") && resolve());
                victim.once("exit", (c) => reject(new Error(`the holder exited ${c}`)));
            });
            assert.match(ops(suite.dir, "backup", "--stack", "dev", "--force").out, /cluster lock on vm1 is still held after waiting 5s by root@\S+ \(pid \d+: /);
            const killed = Date.now();
            victim.kill("SIGKILL");
            await waitFor("the lock free again", () => onNode("vm1", "flock -n /run/dccn-swarm/cluster.lock true && echo free || true").trim() === "free", 60);
            const freedSec = (Date.now() - killed) / 1000;
            console.log(`# the lock was free ${freedSec.toFixed(1)}s after its holder was killed with SIGKILL`);
            assert.ok(freedSec < 35, `freed after ${freedSec}s`);
        } finally {
            pulumiCli(suite.dir, ["stack", "rm", "other", "--yes", "--force"]);
        }
    });
});
