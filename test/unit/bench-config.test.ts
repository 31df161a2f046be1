/**
 * The lab benchmarks' workloads (bench/peers-spec.ts): the chain of desired states every side walks,
 * what each side is given for it (the program's stack config, read by the program's own validators;
 * Ansible's inventory and variables, checked by ansible-playbook itself; the CLI baseline's command),
 * the end condition, and how the report judges the targets (bench/peers.ts).
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { validateClusterConfig } from "../../lib/cluster-config";
import { validateStacks } from "../../lib/stacks-config";
import { loadCompose } from "../../compose/load";
import {
    ansibleChanged, ansibleInventory, ansibleVars, chainFor, cliAction, cliNodeArgs, composeText, imageTag, oursConfig, Spec, step, stackFile,
    watchArgs, Workload, WORKLOADS,
} from "../../bench/peers-spec";
import { peerReport, PeerResults } from "../../bench/peers";

const ROOT = path.resolve(__dirname, "..", "..");
const labNodes = [1, 2, 3].map((i) => ({ name: `vm${i}`, address: `172.28.250.${10 + i}` }));
const lab = { sshUser: "root", sshPrivateKeyFile: "/k/id_ed25519", knownHostsFile: "/k/known_hosts", nodes: labNodes };

/** Every state of the whole chain, by workload. */
function walk(): Record<Workload, Spec> {
    const out: Partial<Record<Workload, Spec>> = {};
    let s: Spec | undefined;
    for (const w of WORKLOADS) out[w] = s = step(s, w, labNodes);
    return out as Record<Workload, Spec>;
}

test("the chain: each workload changes exactly what it names", () => {
    const s = walk();
    assert.deepEqual(s.scratch.nodes.map((n) => [n.hostname, n.role]), [["vm1", "manager"], ["vm2", "worker"], ["vm3", "worker"]]);
    assert.deepEqual(s.noop, s.scratch);
    assert.equal(s.label.nodes[2].labels.function, "test");
    assert.deepEqual({ ...s.label, nodes: s.scratch.nodes }, s.scratch, "label changes only vm3's label");
    const img = (x: Spec, svc: string) => x.stacks[0].services.find((v) => v.name === svc)!.image;
    assert.equal(img(s.roll2, "app"), imageTag("b"));
    assert.equal(img(s.roll2, "wide"), imageTag("a"));
    assert.equal(img(s.roll6, "wide"), imageTag("b"));
    assert.equal(s.drain.nodes[2].availability, "drain");
    assert.equal(s.drain.nodes.filter((n) => n.availability === "drain").length, 1);
    assert.deepEqual(s.stacks20.stacks.map((x) => [x.name, x.services.length]), [["bench", 2], ["s1", 1], ["s5", 5], ["s20", 20]]);
    assert.throws(() => step(undefined, "noop", labNodes), /needs the cluster from scratch first/);
    assert.deepEqual(chainFor(["roll6"]), ["scratch", "roll6"]);
});

test("the program reads every state's config and compose files with its own validators", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-spec-"));
    try {
        for (const [w, spec] of Object.entries(walk())) {
            const cfg = oursConfig(spec, lab);
            const raw = Object.fromEntries(Object.entries(cfg).map(([k, v]) => [k.replace("dccn-swarm:", ""), v]));
            const { config } = validateClusterConfig(raw, "Pulumi.bench.yaml");
            assert.deepEqual(config.nodes.map((n) => [n.hostname, n.availability ?? "active", n.labels]),
                spec.nodes.map((n) => [n.hostname, n.availability, n.labels]), w);
            const stacks = validateStacks(cfg["dccn-swarm:stacks"], "Pulumi.bench.yaml");
            assert.deepEqual(stacks.map((x) => x.file), spec.stacks.map((x) => stackFile(x.name)));
            for (const st of spec.stacks) {
                const file = path.join(dir, stackFile(st.name));
                fs.mkdirSync(path.dirname(file), { recursive: true });
                fs.writeFileSync(file, composeText(st));
                const loaded = loadCompose(file, { stackName: st.name });
                assert.deepEqual(loaded.services.map((v) => [v.name, v.image]).sort(), st.services.map((v) => [v.name, v.image]).sort(), `${w} ${st.name}`);
            }
        }
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

test("the CLI baseline types one command per change, the watcher waits for every node and service", () => {
    const s = walk();
    assert.deepEqual(cliAction(undefined, s.scratch, "scratch"), { kind: "up" });
    assert.deepEqual(cliAction(s.noop, s.label, "label"), { kind: "node-update", target: "vm3", what: "labels" });
    assert.deepEqual(cliAction(s.label, s.roll2, "roll2"), { kind: "update-image", service: "bench_app", image: imageTag("b") });
    assert.deepEqual(cliAction(s.roll2, s.roll6, "roll6"), { kind: "update-image", service: "bench_wide", image: imageTag("b") });
    assert.deepEqual(cliAction(s.roll6, s.drain, "drain"), { kind: "node-update", target: "vm3", what: "availability" });
    assert.deepEqual(cliAction(s.stacks1, s.stacks5, "stacks5"), { kind: "deploy", stack: "s5" });
    assert.deepEqual(cliNodeArgs(s.drain).slice(-2), ["--node", "vm3,172.28.250.13,worker,drain,os=linux,function=test"]);
    const args = watchArgs(s.drain);
    assert.ok(args.includes("node:vm3:worker:drain:os=linux,function=test"), args.join(" "));
    assert.ok(args.includes(`svc:bench_wide:${imageTag("b")}:6`), args.join(" "));
});

test("Ansible's PLAY RECAP: changed and failed tasks summed over hosts", () => {
    const recap = [
        "PLAY RECAP *********************************************************************",
        "localhost                  : ok=1    changed=0    unreachable=0    failed=0    skipped=1    rescued=0    ignored=0",
        "vm1                        : ok=5    changed=2    unreachable=0    failed=0    skipped=1    rescued=0    ignored=0",
        "vm2                        : ok=4    changed=0    unreachable=1    failed=1    skipped=1    rescued=0    ignored=0",
    ].join("\n");
    assert.deepEqual(ansibleChanged(recap), { hosts: 3, changed: 2, failed: 2 });
});

test("the Ansible peer's playbook, inventory and variables pass ansible-playbook --syntax-check", (t) => {
    if (spawnSync("ansible-playbook", ["--version"]).status !== 0) {
        if (process.env.CI === "true") assert.fail("ansible-playbook missing: bash bench/prereqs.sh");
        t.skip("ansible-playbook missing (bash bench/prereqs.sh)");
        return;
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-ansible-"));
    try {
        const spec = walk().stacks20;
        fs.writeFileSync(path.join(dir, "inventory.yml"), JSON.stringify(ansibleInventory(spec, lab)));
        fs.writeFileSync(path.join(dir, "vars.json"), JSON.stringify(ansibleVars(spec, (n) => `/x/${n}.yml`)));
        const r = spawnSync("ansible-playbook", ["--syntax-check", "-i", path.join(dir, "inventory.yml"), path.join(ROOT, "bench", "ansible", "site.yml"),
            "-e", `@${path.join(dir, "vars.json")}`], { encoding: "utf8", env: { ...process.env, ANSIBLE_NOCOLOR: "1" } });
        assert.equal(r.status, 0, r.stdout + r.stderr);
        const hosts = spawnSync("ansible-inventory", ["-i", path.join(dir, "inventory.yml"), "--list"], { encoding: "utf8" });
        assert.equal(hosts.status, 0, hosts.stderr);
        const inv = JSON.parse(hosts.stdout) as { _meta: { hostvars: Record<string, { role: string; ansible_host: string }> } };
        assert.deepEqual(Object.entries(inv._meta.hostvars).map(([h, v]) => [h, v.role, v.ansible_host]).sort(),
            [["vm1", "manager", "172.28.250.11"], ["vm2", "worker", "172.28.250.12"], ["vm3", "worker", "172.28.250.13"]]);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

test("the report: ratios per run, then median; each missed target named with its ratio", () => {
    const times = Object.fromEntries(WORKLOADS.map((w) => [w, { ours: [10, 12, 11], ansible: [20, 20, 20], cli: [5, 6, 5] }])) as PeerResults["times"];
    const res: PeerResults = {
        times,
        noopChanges: { ours: 0, ansible: 1, cli: 0 },
        drainTasks: [3, 3, 2],
        load: [3, 4, 5],
    };
    const { lines, missed } = peerReport(res, { runs: 3, workloads: ["scratch", "noop", "roll2", "drain"] }, { name: "bench" });
    const text = lines.join("\n");
    // scratch: ours/Ansible 0.55 (median of 0.5, 0.6, 0.55) > 0.5; no-op: ours/Ansible met, ours/CLI 2.0 > 1.5.
    assert.match(text, /\| 0\.55 \(0\.50–0\.60\) \|/);
    assert.match(text, /Drain of a node running N tasks \(N = 3\)/);
    assert.deepEqual(missed, [
        "cluster from scratch with provisioning (engine installed on bare nodes, swarm, labels, a stack of 2+6 replicas): ours/Ansible 0.55 (target ≤ 0.5)",
        "no-op (checks the live cluster): ours/CLI 2.00 (target ≤ 1.5)",
        "image roll, 2 replicas: ours/CLI 2.00 (target ≤ 1.2)",
        "no-op: ansible reported changes in 1 run(s)",
    ]);
});
