/**
 * Operator procedures (lib/ops-plan.ts, tools/ops.ts): which manager a backup stops and when it is
 * refused, restore targets, and the emergency shutdown and reboot in the DCCN document's order,
 * planned from the committed dev and prod stack files; and the recovery rules the force-new-cluster
 * drill relies on (a former member told from a stranger, promotion after a recovery). No node is reached.
 */
import { tempDir } from "./harness";
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { ClusterConfig, validateClusterConfig } from "../../lib/cluster-config";
import {
    defaultStopMode, ObservedManager, OpsStep, parseStopMode, planBackup, planReboot, planRestore, planShutdown, renderPlan, StackPlanInput,
} from "../../lib/ops-plan";
import { main, parseArgs, UsageError } from "../../tools/ops";
import { formerMember, SwarmInfo } from "../../lib/swarm-ops";

const ROOT = path.resolve(__dirname, "..", "..");

function stackFile(name: string): { cluster: ClusterConfig; stacks: string[] } {
    const config = (yaml.load(fs.readFileSync(path.join(ROOT, `Pulumi.${name}.yaml`), "utf8")) as any).config;
    const key = (k: string) => config[`dccn-swarm:${k}`];
    const cluster = validateClusterConfig({
        environment: key("environment"), ssh: key("ssh"), engine: key("engine"), nodes: key("nodes"), swarm: key("swarm"),
        sharedStorage: key("sharedStorage"), hasSshPrivateKey: true,
    }, `Pulumi.${name}.yaml`).config;
    return { cluster, stacks: (key("stacks") ?? []).map((s: any) => s.name) };
}

const dev = stackFile("dev");
const prod = stackFile("prod");
const input = (s: { cluster: ClusterConfig; stacks: string[] }, env: string, registry = false): StackPlanInput =>
    ({ stack: env, stacks: s.stacks, registry, mode: defaultStopMode(s.cluster) });
const kinds = (steps: OpsStep[]) => steps.map((s) => `${s.step.kind}${"node" in s.step ? ` ${s.step.node}` : ""}`);

test("shutdown on dev: stacks removed on the manager, workers stopped, the manager last; engines, not machines", () => {
    const steps = planShutdown(dev.cluster, input(dev, "dev"));
    assert.deepEqual(kinds(steps), ["remove-services", "stop vm2", "stop vm3", "stop vm1"]);
    assert.deepEqual(steps[0].step, { kind: "remove-services", via: "vm1", stacks: ["webapp", "data-stager"] });
    assert.ok(steps.every((s) => s.step.kind !== "stop" || s.step.mode === "engine"));
    assert.match(steps[3].text, /stop the engine on vm1 .*the last manager/);
});

test("shutdown on prod follows 4.5: demote the other managers, remove stacks, stop workers, power off the last manager", () => {
    const steps = planShutdown(prod.cluster, input(prod, "prod"));
    assert.deepEqual(kinds(steps), [
        "demote dccn-l019", "demote dccn-l020", "remove-services",
        "stop dccn-l019", "stop dccn-l020", "stop dccn-l021", "stop dccn-l022", "stop dccn-l023", "stop dccn-l024", "stop dccn-l025",
        "stop dccn-l018",
    ]);
    assert.deepEqual(steps.map((s) => s.doc.replace(/^4\.5 step /, "")), ["2", "2", "3", "4", "4", "4", "4", "4", "4", "4", "5"]);
    assert.ok(steps.every((s) => s.step.kind !== "demote" || s.step.via === "dccn-l018"));
    assert.ok(steps.every((s) => s.step.kind !== "stop" || s.step.mode === "poweroff"), "bare metal is powered off");
    assert.deepEqual((steps[2].step as any).stacks, ["webapp", "data-stager"]);
    // Every node is stopped exactly once.
    const stopped = steps.filter((s) => s.step.kind === "stop").map((s) => (s.step as any).node).sort();
    assert.deepEqual(stopped, prod.cluster.nodes.map((n) => n.hostname).sort());
});

test("the last manager is the configured bootstrap manager", () => {
    const cluster = { ...prod.cluster, swarm: { bootstrapManager: "dccn-l020" } };
    const down = planShutdown(cluster, input(prod, "prod"));
    assert.deepEqual(kinds(down).slice(0, 2), ["demote dccn-l018", "demote dccn-l019"]);
    assert.equal(kinds(down).pop(), "stop dccn-l020");
    assert.deepEqual(kinds(planReboot(cluster, input(prod, "prod"))).slice(0, 1), ["start dccn-l020"]);
});

test("reboot on prod follows 4.5.1: the last manager first, then the others, promote, then the registry before the stacks", () => {
    const steps = planReboot(prod.cluster, input(prod, "prod", true));
    assert.deepEqual(kinds(steps), [
        "start dccn-l018", "wait-ready",
        "start dccn-l019", "start dccn-l020", "start dccn-l021", "start dccn-l022", "start dccn-l023", "start dccn-l024", "start dccn-l025",
        "wait-ready", "promote dccn-l019", "promote dccn-l020", "pulumi-up",
    ]);
    const up = steps[steps.length - 1];
    assert.deepEqual(up.step, { kind: "pulumi-up", stack: "prod", order: ["registry", "webapp", "data-stager"] });
    assert.match(up.text, /pulumi up --refresh --stack prod: the registry first .*registry\.ready.*webapp, data-stager/);
    assert.match(steps[0].text, /power on dccn-l018/);
    assert.deepEqual((steps[9].step as any).nodes.length, 7);
});

test("reboot on dev: vm1's engine first, then vm2 and vm3, nothing to promote, then the stacks", () => {
    const steps = planReboot(dev.cluster, input(dev, "dev"));
    assert.deepEqual(kinds(steps), ["start vm1", "wait-ready", "start vm2", "start vm3", "wait-ready", "pulumi-up"]);
    assert.match(steps[0].text, /start the engine on vm1 \(systemctl start docker\)/);
    assert.match(steps[5].text, /no registry configured/);
});

test("the printed plan numbers every step with its place in the document", () => {
    const text = renderPlan("emergency shutdown of prod", planShutdown(prod.cluster, input(prod, "prod")));
    const lines = text.trim().split("\n");
    assert.equal(lines.length, 12);
    assert.match(lines[1], /^ {3}1\. \[4\.5 step 2\] demote dccn-l019/);
    assert.match(lines[11], /^ {2}11\. \[4\.5 step 5\] power off dccn-l018 \(systemctl poweroff\): the last manager/);
});

test("stop modes: engine or poweroff, poweroff by default outside the lab", () => {
    assert.equal(parseStopMode("engine"), "engine");
    assert.equal(parseStopMode("poweroff"), "poweroff");
    assert.throws(() => parseStopMode("halt"), /--stop must be `engine` or `poweroff`, got "halt"/);
    assert.equal(defaultStopMode(dev.cluster), "engine");
    assert.equal(defaultStopMode(prod.cluster), "poweroff");
});

const three = (leader: string, down: string[] = []): ObservedManager[] => ["dccn-l018", "dccn-l019", "dccn-l020"]
    .map((h) => ({ hostname: h, leader: h === leader, reachable: !down.includes(h) }));

test("backup: a reachable manager that is not the leader; a named one must be a configured manager", () => {
    assert.equal(planBackup(prod.cluster, "Pulumi.prod.yaml", three("dccn-l018"), { force: false }).node, "dccn-l019");
    assert.equal(planBackup(prod.cluster, "Pulumi.prod.yaml", three("dccn-l019", ["dccn-l018"]), { force: true }).node, "dccn-l020");
    assert.deepEqual(planBackup(prod.cluster, "Pulumi.prod.yaml", three("dccn-l018"), { node: "dccn-l018", force: false }),
        { node: "dccn-l018", managers: 3, remaining: 2 });
    assert.throws(() => planBackup(prod.cluster, "Pulumi.prod.yaml", three("dccn-l018"), { node: "dccn-l099", force: false }),
        /^OpsError: Pulumi\.prod\.yaml: dccn-swarm:nodes has no node "dccn-l099"; name one of: dccn-l018, .*dccn-l025$/);
    assert.throws(() => planBackup(prod.cluster, "Pulumi.prod.yaml", three("dccn-l018"), { node: "dccn-l021", force: false }),
        /Pulumi\.prod\.yaml: dccn-swarm:nodes: dccn-l021 is a worker; a swarm-state backup needs a manager: name one of: dccn-l018, dccn-l019, dccn-l020/);
    assert.throws(() => planBackup(prod.cluster, "Pulumi.prod.yaml", three("dccn-l018", ["dccn-l020"]), { node: "dccn-l020", force: false }),
        /dccn-l020 is not a reachable manager/);
    assert.throws(() => planBackup(prod.cluster, "Pulumi.prod.yaml", undefined, { force: false }), /no manager with a quorum answered; name .* --node/);
    assert.equal(planBackup(prod.cluster, "Pulumi.prod.yaml", undefined, { node: "dccn-l019", force: false }).node, "dccn-l019");
});

test("backup refuses to take the quorum away unless --force", () => {
    // One of three already down: stopping another leaves 1 of 3.
    assert.throws(() => planBackup(prod.cluster, "Pulumi.prod.yaml", three("dccn-l018", ["dccn-l020"]), { force: false }),
        /stopping the engine on dccn-l019 leaves 1 of 3 managers, fewer than the quorum of 2: .*; pass --force/);
    const single = [{ hostname: "vm1", leader: true, reachable: true }];
    assert.throws(() => planBackup(dev.cluster, "Pulumi.dev.yaml", single, { force: false }), /leaves 0 of 1 managers.*--force/);
    const forced = planBackup(dev.cluster, "Pulumi.dev.yaml", single, { force: true });
    assert.equal(forced.node, "vm1");
    assert.match(forced.quorumLoss ?? "", /accepts no changes/);
});

test("restore: onto a configured manager, named", () => {
    assert.equal(planRestore(dev.cluster, "Pulumi.dev.yaml", "vm1").address, "172.28.213.11");
    assert.throws(() => planRestore(dev.cluster, "Pulumi.dev.yaml", undefined), /--node is required/);
    assert.throws(() => planRestore(dev.cluster, "Pulumi.dev.yaml", "vm9"), /Pulumi\.dev\.yaml: dccn-swarm:nodes has no node "vm9"; name one of: vm1, vm2, vm3/);
    assert.throws(() => planRestore(dev.cluster, "Pulumi.dev.yaml", "vm2"), /vm2 is a worker; restoring the swarm state needs a manager: name one of: vm1/);
});

test("ops CLI arguments", () => {
    const p = parseArgs(["shutdown", "--stack", "dev", "--dry-run", "--stop=poweroff"], "/p");
    assert.ok(p !== "help");
    assert.deepEqual([p.command, p.stack, p.dryRun, p.stop, p.up], ["shutdown", "dev", true, "poweroff", true]);
    assert.throws(() => parseArgs(["--stack", "dev"], "/p"), UsageError);
    assert.throws(() => parseArgs(["reboot"], "/p"), /--stack is required/);
    assert.throws(() => parseArgs(["backup", "restore", "--stack", "dev"], "/p"), /one command only/);
    assert.throws(() => parseArgs(["restore", "--stack", "dev", "--node", "vm1"], "/p"), /restore needs --from FILE/);
    assert.throws(() => parseArgs(["reboot", "--stack", "dev", "--stop", "halt"], "/p"), /--stop must be/);
    assert.throws(() => parseArgs(["reboot", "--stack", "dev", "--bogus"], "/p"), /unknown argument '--bogus'/);
    assert.equal(parseArgs(["--help"], "/p"), "help");
});

test("ops CLI refuses before any change: unknown stack, unknown node, shutdown without --yes", async () => {
    const dir = tempDir("dccn-ops-unit-");
    fs.writeFileSync(path.join(dir, "id"), "KEY\n", { mode: 0o600 });
    fs.writeFileSync(path.join(dir, "Pulumi.t.yaml"), yaml.dump({ config: {
        "dccn-swarm:environment": "t",
        "dccn-swarm:ssh": { privateKeyFile: "id", connectTimeout: 1 },
        "dccn-swarm:nodes": [{ hostname: "a1", address: "127.0.0.1", role: "manager", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUnitOps" }],
        "dccn-swarm:stacks": [{ name: "s1", file: "x.yml" }],
    } }));
    const out: string[] = [];
    const err: string[] = [];
    const write = (sink: string[]) => ((s: string) => { sink.push(s); return true; }) as typeof process.stdout.write;
    const [o, e] = [process.stdout.write, process.stderr.write];
    process.stdout.write = write(out);
    process.stderr.write = write(err);
    try {
        assert.equal(await main(["backup", "--stack", "nope", "--project", dir]), 2);
        assert.equal(await main(["restore", "--stack", "t", "--node", "zz", "--from", "/nonexistent", "--project", dir]), 2);
        assert.equal(await main(["shutdown", "--stack", "t", "--project", dir]), 2);
        assert.equal(await main(["shutdown", "--stack", "t", "--dry-run", "--project", dir]), 0);
    } finally {
        process.stdout.write = o;
        process.stderr.write = e;
    }
    const errors = err.join("");
    assert.match(errors, /Pulumi\.nope\.yaml does not exist/);
    assert.match(errors, /Pulumi\.t\.yaml: dccn-swarm:nodes has no node "zz"; name one of: a1/);
    assert.match(errors, /the shutdown removes every service; pass --yes/);
    assert.match(out.join(""), /dry run: nothing is changed\)\n {3}1\. \[4\.5 step 3\] remove stacks s1 and every other service .*\n {3}2\. \[4\.5 step 5\] power off a1/);
});

test("a former member (away during --force-new-cluster) is told from a node of another swarm", () => {
    const info = (clusterId: string | undefined, remoteManagers: string[]): SwarmInfo => ({
        state: "active", nodeId: "n2", nodeAddr: "10.0.0.2", controlAvailable: true, clusterId, managers: 3, engineVersion: "20.10", remoteManagers,
    });
    const ours = ["10.0.0.1", "10.0.0.3"];
    assert.equal(formerMember(info("c1", []), "c1", ours), true, "same cluster ID");
    assert.equal(formerMember(info("c9", ["10.0.0.1"]), "c1", ours), false, "another swarm, whatever it lists");
    assert.equal(formerMember(info(undefined, ["10.0.0.3", "10.0.0.7"]), "c1", ours), true, "no leader: lists one of our managers");
    assert.equal(formerMember(info(undefined, ["10.0.9.1"]), "c1", ours), false, "no leader, other managers");
    assert.equal(formerMember(info(undefined, []), "c1", ours), false, "nothing to tell by");
});

test("after a recovery a manager joins anew; a worker promoted later is promoted, not replaced", async () => {
    const { memberProvider } = await import("../../lib/swarm-providers");
    const node = { name: "vm2", address: "10.0.0.2", knownHosts: "" };
    const base = { stackFile: "Pulumi.t.yaml", node, availability: "active", managers: [], clusterId: "c1", ssh: {} } as any;
    const diff = (olds: any, news: any) => memberProvider.diff!("id", { ...base, ...olds }, { ...base, ...news });
    const manager = await diff({ role: "manager", clusterEpoch: 0 }, { role: "manager", clusterEpoch: 1 });
    assert.deepEqual(manager.replaces, ["clusterEpoch"]);
    const promoted = await diff({ role: "worker", clusterEpoch: 0 }, { role: "manager", clusterEpoch: 1 });
    assert.deepEqual([promoted.changes, promoted.replaces], [true, []], "promote in place");
    const same = await diff({ role: "worker", clusterEpoch: 0 }, { role: "worker", clusterEpoch: 0 });
    assert.equal(same.changes, false);
});
