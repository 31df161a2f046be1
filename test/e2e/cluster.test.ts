/**
 * Issue 4 against the lab through the real engine: converge, no perpetual diff, each edit previews
 * as exactly that change and applies it, drift from a hand edit is found and undone, destroy leaves
 * every node out of the swarm and a following up builds it again.
 */
import { describe, test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import {
    changeCollector, devConfigOf, editDevConfig, labJson, nodeLabels, nodesOf, nodeTable, onNode, quiet, services, skipOrFail, swarmState,
    useLabSuite, waitFor,
} from "./support";

describe("cluster on the lab (dev stack)", { concurrency: 1 }, () => {
    const suite = useLabSuite(before, after);

    /** Preview, returning what would change (URN tail -> op). */
    async function previewChanges(): Promise<Map<string, string>> {
        const c = changeCollector();
        await suite.stack.preview({ onEvent: c.onEvent, ...quiet });
        return c.changes;
    }

    async function edit(f: (nodes: any[], config: Record<string, any>) => void) {
        editDevConfig(suite.dir, (config) => f(nodesOf(config), config));
    }

    test("up from a fresh lab converges: every node Ready with its role, availability and labels", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        const res = await suite.stack.up(quiet);
        assert.equal(res.summary.result, "succeeded");
        const rows = nodeTable();
        assert.deepEqual(rows.map((r) => r.hostname).sort(), ["vm1", "vm2", "vm3"]);
        for (const r of rows) assert.equal(r.status, "Ready", `${r.hostname} Ready`);
        assert.equal(rows.find((r) => r.hostname === "vm1")?.manager, "Leader");
        assert.equal(rows.find((r) => r.hostname === "vm2")?.manager, "");
        // Every node carries exactly the labels the committed dev config gives it.
        for (const n of nodesOf(devConfigOf(suite.dir))) {
            assert.deepEqual(nodeLabels(n.hostname), n.labels ?? {}, `${n.hostname}'s labels as configured`);
        }
        assert.equal(res.outputs.managers.value, 1);
        assert.equal(res.outputs.faultTolerance.value, 0);
        const out = res.outputs.swarmNodes.value as any[];
        assert.ok(out.every((n) => /^\d+\.\d+/.test(n.engineVersion)), "engine versions reported");
    });

    test("right after, preview shows no changes", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        await suite.stack.preview({ expectNoChanges: true, ...quiet });
    });

    test("label added, changed and removed: exactly the label resources change", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        await edit((nodes) => {
            nodes[1].labels = { os: "linux", function: "staging", rack: "r1" };
            nodes[2].labels = { function: "production" };
        });
        const changes = await previewChanges();
        assert.deepEqual([...changes.entries()].sort(), [["swarm-vm2-labels", "update"], ["swarm-vm3-labels", "update"]]);
        await suite.stack.up(quiet);
        assert.deepEqual(nodeLabels("vm2"), { function: "staging", os: "linux", rack: "r1" });
        assert.deepEqual(nodeLabels("vm3"), { function: "production" });
    });

    test("vm2 promoted, then demoted", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        await edit((nodes) => { nodes[1].role = "manager"; });
        const changes = await previewChanges();
        assert.equal(changes.get("swarm-vm2"), "update");
        assert.ok(![...changes.keys()].some((k) => /^vm\d-/.test(k)), "no provisioning step re-runs");
        await suite.stack.up(quiet);
        assert.equal(nodeTable().find((r) => r.hostname === "vm2")?.manager, "Reachable");
        await edit((nodes) => { nodes.find((n) => n.hostname === "vm2").role = "worker"; });
        await suite.stack.up(quiet);
        assert.equal(nodeTable().find((r) => r.hostname === "vm2")?.manager, "");
        await suite.stack.preview({ expectNoChanges: true, ...quiet });
    });

    test("vm3 drained, then active again", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        await edit((nodes) => { nodes.find((n) => n.hostname === "vm3").availability = "drain"; });
        const changes = await previewChanges();
        assert.deepEqual([...changes.entries()], [["swarm-vm3", "update"]]);
        await suite.stack.up(quiet);
        assert.equal(nodeTable().find((r) => r.hostname === "vm3")?.availability, "Drain");
        await edit((nodes) => { delete nodes.find((n) => n.hostname === "vm3").availability; });
        await suite.stack.up(quiet);
        assert.equal(nodeTable().find((r) => r.hostname === "vm3")?.availability, "Active");
    });

    test("vm3 removed from config leaves the swarm and the node table; added back it joins again", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        let saved: any;
        await edit((nodes) => { saved = nodes.splice(nodes.findIndex((n) => n.hostname === "vm3"), 1)[0]; });
        const changes = await previewChanges();
        assert.equal(changes.get("swarm-vm3"), "delete");
        assert.equal(changes.get("swarm-vm3-labels"), "delete");
        await suite.stack.up(quiet);
        assert.deepEqual(nodeTable().map((r) => r.hostname).sort(), ["vm1", "vm2"]);
        assert.equal(swarmState("vm3"), "inactive");
        await edit((nodes) => { nodes.push(saved); });
        await suite.stack.up(quiet);
        assert.equal(nodeTable().find((r) => r.hostname === "vm3")?.status, "Ready");
        await suite.stack.preview({ expectNoChanges: true, ...quiet });
    });

    test("a label removed by hand is reported by refresh and restored by up", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        onNode("vm1", "docker node update --label-rm rack vm2 >/dev/null");
        const drifted: string[] = [];
        const r = await suite.stack.refresh({
            ...quiet,
            onEvent: (e) => {
                const m = e.resOutputsEvent?.metadata;
                if (m && (m.op === "update" || (m.diffs ?? []).length > 0)) drifted.push(`${m.urn.split("::").pop()} (${(m.diffs ?? []).join(", ")})`);
            },
        });
        assert.equal(r.summary.resourceChanges?.update, 1, `refresh reports one drifted resource; it reported: ${drifted.join("; ")}`);
        assert.match(drifted.join(";"), /swarm-vm2-labels/, "the drifted one is vm2's labels");
        await suite.stack.up(quiet);
        assert.equal(nodeLabels("vm2").rack, "r1");
        await suite.stack.preview({ expectNoChanges: true, ...quiet });
    });

    // Issue 17: `docker stack deploy` of CLI 25 and later reads a compose file without `version:`
    // (as 3.12), 20.10's refuses it. The dev stack pins no engine, so the program reads the file with
    // the newest rules and the preview holds it to the manager's engine: this suite runs on both labs.
    test("a compose file without version: deploys on engine 26, and is refused at preview on 20.10 with the reason", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        const engine = String(labJson().engineVersion ?? onNode("vm1", "docker version --format '{{.Server.Version}}'"));
        const file = "stacks/versionless/docker-compose.yml";
        fs.mkdirSync(path.join(suite.dir, path.dirname(file)), { recursive: true });
        fs.writeFileSync(path.join(suite.dir, file), [
            "services:",
            "  hello:",
            "    image: dccn-lab/busybox:1",
            "    command: [sleep, '3600']",
            "    deploy:",
            "      replicas: 1",
            "",
        ].join("\n"));
        editDevConfig(suite.dir, (c) => { c["dccn-swarm:stacks"].push({ name: "versionless", file, resolveImage: "never" }); });
        try {
            if (/^20\./.test(engine)) {
                const c = changeCollector();
                await assert.rejects(suite.stack.preview({ onEvent: c.onEvent, ...quiet }), (e: Error) => {
                    assert.match(e.message, /versionless\/docker-compose\.yml: version: the swarm's manager vm1 \([^)]*\) runs Docker 20\.10/);
                    assert.match(e.message, /docker CLI 20\.10 rules/);
                    assert.match(e.message, /fix: .*version/);
                    return true;
                });
                assert.equal(services().versionless_hello, undefined, "nothing deployed");
            } else {
                assert.match(engine, /^2[6-9]\./, `the lab's engine (${engine})`);
                const res = await suite.stack.up(quiet);
                assert.equal(res.summary.result, "succeeded");
                await waitFor("versionless_hello's replica running", () => services().versionless_hello === "1/1", 90);
                await suite.stack.preview({ expectNoChanges: true, ...quiet });
            }
        } finally {
            editDevConfig(suite.dir, (c) => { c["dccn-swarm:stacks"] = c["dccn-swarm:stacks"].filter((s: any) => s.name !== "versionless"); });
            await suite.stack.up(quiet);
        }
        assert.equal(services().versionless_hello, undefined, "the stack removed again");
    });

    test("destroy leaves every node out of the swarm; up builds it again", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        await suite.stack.destroy(quiet);
        for (const vm of ["vm1", "vm2", "vm3"]) {
            assert.equal(swarmState(vm), "inactive", `${vm} out of the swarm`);
            assert.match(onNode(vm, "docker version --format '{{.Server.Version}}'"), /^\d+\./, `${vm} engine still running`);
        }
        await suite.stack.up(quiet);
        assert.deepEqual(nodeTable().map((r) => r.status), ["Ready", "Ready", "Ready"]);
        await suite.stack.preview({ expectNoChanges: true, ...quiet });
    });
});
