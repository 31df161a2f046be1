/**
 * Disaster recovery from a backup on the lab (issue 7), through `npm run ops` and the real engine:
 * back up the manager's swarm state, lose it, restore it, `pulumi up --refresh`: the cluster is in
 * its configured shape again with its services, and nothing is left to change.
 */
import { describe, test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { nodeLabels, nodeTable, onNode, ops, quiet, services, skipOrFail, swarmState, useLabSuite, waitFor } from "./support";

describe("swarm-state backup and restore on the lab (dev stack)", { concurrency: 1 }, () => {
    const suite = useLabSuite(before, after);

    test("back up vm1's swarm state, lose it, restore it, up --refresh: nodes, labels and services back", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        const out = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-backup-"));
        const before = services();
        assert.ok(Object.keys(before).includes("webapp_web"), `the committed stacks run: ${Object.keys(before)}`);

        // vm1 is the only manager: stopping its engine for the copy takes the quorum away; refused without --force.
        const refused = ops(suite.dir, "backup", "--stack", "dev", "--out", out);
        assert.equal(refused.status, 2, refused.out);
        assert.match(refused.out, /stopping the engine on vm1 leaves 0 of 1 managers.*pass --force/);
        assert.deepEqual(fs.readdirSync(out), []);

        const made = ops(suite.dir, "backup", "--stack", "dev", "--out", out, "--force");
        assert.equal(made.status, 0, made.out);
        const files = fs.readdirSync(out);
        assert.equal(files.length, 1);
        const file = path.join(out, files[0]);
        assert.match(files[0], /^swarm-dev-vm1-\d{8}T\d{6}Z\.tar\.gz$/);
        assert.equal(fs.statSync(file).mode & 0o777, 0o600, "the archive holds the Raft keys: owner only");
        const listing = spawnSync("tar", ["-tzf", file], { encoding: "utf8" }).stdout;
        assert.match(listing, /^swarm\/raft\//m);
        assert.match(listing, /^swarm\/certificates\//m);
        assert.ok(!/DCCN_ARCHIVE|[A-Za-z0-9+/]{76}/.test(made.out), "nothing of the archive is printed");
        assert.equal(swarmState("vm1"), "active", "the engine is back after the copy");
        assert.match(made.out, /vm1: every task is back with its container and published ports/);

        // The swarm state is lost: the manager leaves (its /var/lib/docker/swarm is wiped).
        onNode("vm1", "docker swarm leave --force >/dev/null");
        assert.equal(swarmState("vm1"), "inactive");

        const restored = ops(suite.dir, "restore", "--stack", "dev", "--node", "vm1", "--from", file, "--yes");
        assert.equal(restored.status, 0, restored.out);
        assert.match(restored.out, /vm1: the only manager of swarm \S+/);
        // Restore returns when the tasks whose containers went with the engine stop are replaced and
        // host-mode ports are bound (the swarm holds orphans as running for a minute or more, and a task
        // started meanwhile came up without its port: the registry unreachable after the restore).
        assert.match(restored.out, /vm1: every task is back with its container and published ports/);
        assert.match(onNode("vm1", "docker ps --filter label=com.docker.swarm.service.name=registry_registry --format '{{.Ports}}'"),
            /0\.0\.0\.0:5000->5000\/tcp/, "the registry's task publishes its port on vm1");
        await suite.stack.up({ refresh: true, ...quiet });
        await suite.stack.preview({ expectNoChanges: true, ...quiet });

        await waitFor("every node Ready", () => nodeTable().every((r) => r.status === "Ready"), 120);
        assert.deepEqual(nodeTable().map((r) => `${r.hostname}:${r.manager}`).sort(), ["vm1:Leader", "vm2:", "vm3:"]);
        assert.equal(nodeLabels("vm2").function, "production");
        assert.equal(nodeLabels("vm1").os, "linux");
        await waitFor("the services' tasks running again", () => {
            const now = services();
            return Object.keys(before).every((s) => now[s] !== undefined && /^(\d+)\/\1$/.test(now[s]));
        }, 180).catch((e) => {
            // What runs and why the rest does not, for the report.
            const why = onNode("vm1", "docker service ps $(docker service ls -q) --no-trunc --format '{{.Name}} {{.Node}} {{.CurrentState}} {{.Error}}' | head -n 40", { allowFail: true });
            throw new Error(`${(e as Error).message}: ${JSON.stringify(services())}\n${why}`);
        });
        // The registry answers on its published port (anonymous: 401), verified with the CA the nodes trust.
        assert.equal(onNode("vm2", "curl -sS -o /dev/null -w '%{http_code}' --cacert /etc/docker/certs.d/registry.lab:5000/ca.crt https://registry.lab:5000/v2/", { allowFail: true }).trim(),
            "401", "the registry answers after the restore");
        fs.rmSync(out, { recursive: true, force: true });
    });
});
