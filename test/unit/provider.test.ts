// The provider plugin's own logic (provider/provider.ts, provider/values.ts): secrets unwrapped for
// the implementations and wrapped again in outputs, `undefined` dropped, detailed diffs, a change of
// connection only kept in the state without running anything, and state left by the dynamic
// providers moved over. Implementations are recording fakes here; the lab drills run the real ones.
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { DccnSwarmProvider, implementations, kindOf } from "../../provider/provider";
import { isSecret, secret, SECRET_SIG, UNKNOWN, unwrap } from "../../provider/values";
import { KINDS, PROVIDER_INFO, type Kind } from "../../lib/kinds";
import type { ResourceImpl } from "../../lib/resource-impl";
import { stepCall, stepStdin } from "../../lib/remote-script";
import { scriptProvider } from "../../lib/swarm-providers";

/* eslint-disable @typescript-eslint/no-explicit-any */
const urn = (kind: string) => `urn:pulumi:dev::dccn-swarm::dccn-swarm:swarm:Swarm$dccn-swarm:index:${kind}::vm2`;
const KEY_A = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const KEY_B = "-----BEGIN OPENSSH PRIVATE KEY-----\nBBBB\n-----END OPENSSH PRIVATE KEY-----\n";
const host = (knownHosts: string) => ({ name: "vm2", address: "172.28.213.12", knownHosts });
const sshOf = (privateKey: string, user = "root") => ({ user, port: 22, privateKey, connectTimeout: 15 });

interface Call { op: string; args: any[] }

/** A membership-like implementation that records its calls and diffs on `role`. */
function recorder(): { impl: ResourceImpl; calls: Call[] } {
    const calls: Call[] = [];
    const impl: ResourceImpl = {
        async diff(id, olds, news) {
            calls.push({ op: "diff", args: [id, olds, news] });
            return { changes: olds.role !== news.role };
        },
        async create(inputs) {
            calls.push({ op: "create", args: [inputs] });
            return { id: "n1", outs: { ...inputs, nodeId: "n1", status: "ready", engineVersion: undefined, nested: { gone: undefined, kept: 1 } } };
        },
        async read(id, props) {
            calls.push({ op: "read", args: [id, props] });
            return props.role === "gone" ? { id: "", props: {} } : { id, props: { ...props, status: "down" } };
        },
        async update(id, olds, news) {
            calls.push({ op: "update", args: [id, olds, news] });
            return { outs: { ...news, nodeId: id, status: "ready" } };
        },
        async delete(id, props) {
            calls.push({ op: "delete", args: [id, props] });
        },
    };
    return { impl, calls };
}

function providerWith(impl: ResourceImpl): DccnSwarmProvider {
    const impls = Object.fromEntries(KINDS.map((k) => [k, impl])) as Record<Kind, ResourceImpl>;
    return new DccnSwarmProvider("0.0.0-test", impls);
}

const inputs = (privateKey = KEY_A, knownHosts = "172.28.213.12 ssh-ed25519 AAAAold", role = "worker") => ({
    node: host(knownHosts), role, availability: "active", managers: [host(knownHosts)], ssh: { ...sshOf(privateKey), privateKey: secret(privateKey) },
});

describe("provider: secrets and wire values", () => {
    it("an implementation sees plain values; outputs hold what the cluster reports and the echoed inputs, without undefined", async () => {
        const { impl, calls } = recorder();
        const p = providerWith(impl);
        const r = await p.create(urn("SwarmMember"), inputs());
        assert.equal(calls[0].args[0].ssh.privateKey, KEY_A, "the implementation gets the key itself");
        assert.equal("ssh" in r.outs!, false, "the connection stays in the inputs only (the state holds it once)");
        assert.equal("node" in r.outs!, false);
        assert.equal(r.outs!.role, "worker", "an echoed input (SwarmMember's role) is an output too");
        assert.equal(r.outs!.nodeId, "n1");
        assert.equal("engineVersion" in r.outs!, false, "undefined outputs are dropped (Struct cannot hold them)");
        assert.deepEqual(r.outs!.nested, { kept: 1 });
        assert.equal(JSON.stringify(r.outs).includes(KEY_A), false, "no key in the outputs");
    });

    it("computed fields a kind declares secret are wrapped", async () => {
        const p = providerWith({ ...recorder().impl, create: async (i) => ({ id: "g", outs: { ...i, value: "s3cr3t" } }) });
        const r = await p.create(urn("GeneratedValue"), { purpose: "test" });
        assert.ok(isSecret(r.outs!.value));
        assert.equal("purpose" in r.outs!, false);
    });

    it("unwrap removes nested envelopes", () => {
        assert.deepEqual(unwrap({ a: secret({ b: secret("x") }), c: [secret(1)] }), { a: { b: "x" }, c: [1] });
        assert.equal(JSON.stringify(unwrap({ a: secret("x") })).includes(SECRET_SIG), false);
    });
});

describe("provider: diffs", () => {
    it("an unchanged resource has no changes; the implementation is asked", async () => {
        const { impl, calls } = recorder();
        const p = providerWith(impl);
        const olds = { ...unwrap(inputs()), nodeId: "n1", status: "ready" };
        const d = await p.diff("n1", urn("SwarmMember"), olds, inputs());
        assert.equal(d.changes, false);
        assert.deepEqual(d.detailedDiff, {});
        assert.equal(calls.filter((c) => c.op === "diff").length, 1);
    });

    it("a changed field is named in the detailed diff", async () => {
        const { impl } = recorder();
        const p = providerWith(impl);
        const olds = { ...unwrap(inputs()), nodeId: "n1" };
        const d = await p.diff("n1", urn("SwarmMember"), olds, inputs(KEY_A, undefined, "manager"));
        assert.equal(d.changes, true);
        assert.deepEqual(d.detailedDiff, { role: { kind: "update" } });
    });

    it("an implementation's own paths are used (a service's spec field by field)", async () => {
        const p = providerWith({ ...recorder().impl, diff: async () => ({ changes: true, diffs: ["spec.TaskTemplate.ContainerSpec.Image"], replaces: [] }) });
        const d = await p.diff("s", urn("SwarmService"), { spec: { a: 1 } }, { spec: { a: 1 } });
        assert.deepEqual(d.detailedDiff, { "spec.TaskTemplate.ContainerSpec.Image": { kind: "update" } });
    });

    it("a replacement is marked update-replace", async () => {
        const p = providerWith({ ...recorder().impl, diff: async () => ({ changes: true, replaces: ["node"] }) });
        const d = await p.diff("n1", urn("SwarmMember"), { node: host("x") }, { node: { ...host("x"), address: "10.0.0.9" } });
        assert.deepEqual(d.detailedDiff, { node: { kind: "update-replace" } });
        assert.deepEqual(d.replaces, ["node"]);
    });

    it("an unknown value (preview) is not reported as a changed field", async () => {
        const p = providerWith({ ...recorder().impl, diff: async () => ({ changes: true }) });
        const d = await p.diff("n1", urn("NodeLabels"), { nodeId: "n1", labels: { a: "1" } }, { nodeId: UNKNOWN, labels: { a: "2" } });
        assert.deepEqual(Object.keys(d.detailedDiff), ["labels"]);
    });
});

describe("provider: a change of connection only changes the state", () => {
    it("a rotated SSH key: a diff naming ssh, an update that runs nothing (the engine keeps the new inputs)", async () => {
        const { impl, calls } = recorder();
        const p = providerWith(impl);
        const outs = { role: "worker", availability: "active", nodeId: "n1", status: "ready" };
        const news = inputs(KEY_B);
        const d = await p.diff("n1", urn("SwarmMember"), outs, news, inputs(KEY_A));
        assert.equal(d.changes, true);
        assert.deepEqual(d.detailedDiff, { ssh: { kind: "update" } });
        assert.deepEqual(d.replaces, []);
        const diffSawOldKey = calls.find((c) => c.op === "diff")!.args[2].ssh.privateKey;
        assert.equal(diffSawOldKey, KEY_A, "the implementation judges the change with the old connection");
        const u = await p.update("n1", urn("SwarmMember"), outs, news, inputs(KEY_A));
        assert.equal(calls.some((c) => c.op === "update"), false, "nothing ran on the cluster");
        assert.equal(u.outs!.nodeId, "n1", "computed outputs are kept");
        assert.equal(JSON.stringify(u.outs).includes("PRIVATE KEY"), false);
    });

    it("a new pinned host key and another user are connection changes too", async () => {
        const { impl, calls } = recorder();
        const p = providerWith(impl);
        const oldInputs = inputs(KEY_A, "172.28.213.12 ssh-ed25519 AAAAold");
        const news = { ...inputs(KEY_A, "172.28.213.12 ssh-ed25519 AAAAnew"), ssh: secret(sshOf(KEY_A, "admin")) };
        const d = await p.diff("n1", urn("SwarmMember"), { nodeId: "n1", role: "worker", availability: "active" }, news, oldInputs);
        assert.deepEqual(d.detailedDiff, { ssh: { kind: "update" } });
        await p.update("n1", urn("SwarmMember"), { nodeId: "n1", role: "worker", availability: "active" }, news, oldInputs);
        assert.equal(calls.some((c) => c.op === "update"), false);
    });

    it("a real change with a new key runs the update with the new key", async () => {
        const { impl, calls } = recorder();
        const p = providerWith(impl);
        const olds = { ...inputs(KEY_A), nodeId: "n1" };
        await p.update("n1", urn("SwarmMember"), olds, inputs(KEY_B, undefined, "manager"));
        const u = calls.find((c) => c.op === "update")!;
        assert.equal(u.args[2].ssh.privateKey, KEY_B);
        assert.equal(u.args[2].role, "manager");
    });

    it("delete and read use the connection the state's inputs hold", async () => {
        const { impl, calls } = recorder();
        const p = providerWith(impl);
        const outs = { nodeId: "n1", role: "worker", availability: "active" };
        const r = await p.read("n1", urn("SwarmMember"), outs, inputs(KEY_B));
        assert.equal(calls[0].args[1].ssh.privateKey, KEY_B);
        assert.equal(r.props!.status, "down");
        assert.equal("ssh" in r.props!, false);
        await p.delete("n1", urn("SwarmMember"), outs, inputs(KEY_B));
        assert.equal(calls[1].args[1].ssh.privateKey, KEY_B);
        const gone = await p.read("n1", urn("SwarmMember"), { ...outs, role: "gone" }, inputs());
        assert.equal(gone.id, "");
    });

    it("read reports the inputs as the cluster has them, only the keys the inputs have, secrets kept", async () => {
        const impl: ResourceImpl = { ...recorder().impl, read: async (id, props) => ({ id, props: { ...props, role: "manager" }, inputs: { ...props, role: "manager" } }) };
        const r = await providerWith(impl).read("n1", urn("SwarmMember"), { nodeId: "n1", role: "worker" }, inputs());
        assert.deepEqual(Object.keys(r.inputs!).sort(), Object.keys(inputs()).sort());
        assert.equal(r.inputs!.role, "manager");
        assert.ok(isSecret(r.inputs!.ssh), "the key stays a secret in the inputs");
    });
});

describe("provider: state written by the dynamic providers, or with outputs repeating the inputs", () => {
    it("__provider and the repeated inputs go in an update of the state only", async () => {
        const { impl, calls } = recorder();
        const p = providerWith(impl);
        const olds = { ...unwrap(inputs()), nodeId: "n1", __provider: "exports.handler = ..." };
        const d = await p.diff("n1", urn("SwarmMember"), olds, inputs(), inputs());
        assert.equal(d.changes, true);
        assert.deepEqual(d.detailedDiff, { __provider: { kind: "delete" } });
        assert.deepEqual(d.replaces, []);
        const u = await p.update("n1", urn("SwarmMember"), olds, inputs(), inputs());
        assert.equal(calls.some((c) => c.op === "update"), false);
        assert.equal("__provider" in u.outs!, false);
        assert.equal("ssh" in u.outs!, false);
        assert.equal(u.outs!.nodeId, "n1");
    });

    it("outputs that repeat the inputs are an old shape; slim outputs with the same inputs are no change", async () => {
        const p = providerWith(recorder().impl);
        const fat = { ...unwrap(inputs()), nodeId: "n1" };
        assert.equal((await p.diff("n1", urn("SwarmMember"), fat, inputs(), inputs())).changes, true);
        const slim = { nodeId: "n1", role: "worker", availability: "active" };
        assert.equal((await p.diff("n1", urn("SwarmMember"), slim, inputs(), inputs())).changes, false);
    });
});

describe("provider: types", () => {
    it("every kind the program declares has an implementation", () => {
        const impls = implementations();
        for (const k of KINDS) assert.equal(typeof impls[k].create, "function", k);
    });

    it("the kind comes from the URN's type; another package's type is refused", () => {
        assert.equal(kindOf(urn("SwarmService")), "SwarmService");
        assert.throws(() => kindOf("urn:pulumi:dev::dccn-swarm::pulumi-nodejs:dynamic/dccn-swarm:SwarmService::x"), /unknown resource type/);
        assert.throws(() => kindOf(urn("Nope")), /unknown resource type dccn-swarm:index:Nope/);
    });
});

describe("provisioning steps: the state keeps the call, not the whole script", () => {
    const node = host("172.28.213.12 ssh-ed25519 AAAA");
    const call = () => ({ node, ...stepCall("daemon-json.sh", { STORAGE_DRIVER: "overlay2" }, '{"a":1}'), ssh: sshOf(KEY_A) });

    it("a step's outputs hold only its result: the call stays in the state's inputs", async () => {
        const p = providerWith(scriptProvider);
        const u = await p.update("s", urn("ProvisionStep"), { result: "DCCN_RESULT changed=0" }, call(), call());
        assert.deepEqual(u.outs, { result: "DCCN_RESULT changed=0" });
    });

    it("unchanged call: no change; new parameters, data or script text: a change", async () => {
        const olds = scriptProvider.stateOnly!({ result: "" }, call());
        assert.equal((await scriptProvider.diff!("s", olds, call())).changes, false);
        assert.equal((await scriptProvider.diff!("s", olds, { ...call(), env: { STORAGE_DRIVER: "devicemapper" } })).changes, true);
        assert.equal((await scriptProvider.diff!("s", olds, { ...call(), data: '{"a":2}' })).changes, true);
        assert.equal((await scriptProvider.diff!("s", olds, { ...call(), scriptHash: "0".repeat(64) })).changes, true);
    });

    it("a step made before the plugin (its whole standard input in the state) is unchanged when the same call gives the same text", async () => {
        const legacy = { node, script: "daemon-json.sh", stdin: stepStdin(call()), ssh: sshOf(KEY_A), result: "" };
        assert.equal((await scriptProvider.diff!("s", legacy, call())).changes, false);
        assert.equal((await scriptProvider.diff!("s", legacy, { ...call(), data: '{"a":2}' })).changes, true);
    });

    it("a script that changed after the program planned the step is refused, naming it", () => {
        assert.throws(() => stepStdin({ ...call(), scriptHash: "0".repeat(64) }), /scripts\/daemon-json\.sh changed since this step was planned/);
    });
});

describe("provider: previews with values not known yet", () => {
    it("an implementation that cannot compare an unknown input: a change, not a failed preview", async () => {
        const p = providerWith({ ...recorder().impl, diff: async (_id, _o, n) => { (n.spec as any).TaskTemplate = {}; return { changes: false }; } });
        const d = await p.diff("s", urn("SwarmService"), { spec: { a: 1 } }, { spec: UNKNOWN }, { spec: { a: 1 } });
        assert.equal(d.changes, true);
        assert.deepEqual(Object.keys(d.detailedDiff), ["spec"]);
    });

    it("a service whose whole spec is unknown: may change (the real implementation)", async () => {
        const d = await implementations().SwarmService.diff!("s", { spec: { Name: "a" } }, { spec: UNKNOWN, name: "a" });
        assert.equal(d.changes, true);
    });
});

describe("provider: previews of creates and updates run nothing", () => {
    it("a create in preview: only the echoed inputs, no call", async () => {
        const { impl, calls } = recorder();
        const outs = providerWith(impl).previewCreate(urn("SwarmMember"), inputs());
        assert.deepEqual(outs, { role: "worker", availability: "active" });
        assert.equal(calls.length, 0);
    });

    it("an update of the state only previews its real outputs; a real update previews its computed outputs as unknown", async () => {
        const { impl, calls } = recorder();
        const p = providerWith(impl);
        const outs = { nodeId: "n1", role: "worker", availability: "active", status: "ready" };
        const stateOnly = await p.update("n1", urn("SwarmMember"), outs, inputs(KEY_B), inputs(KEY_A), true);
        assert.deepEqual(stateOnly.outs, outs, "known, unchanged outputs: nothing after it looks changed");
        const real = await p.update("n1", urn("SwarmMember"), outs, inputs(KEY_A, undefined, "manager"), inputs(KEY_A), true);
        assert.equal(real.outs!.nodeId, UNKNOWN);
        assert.equal(real.outs!.role, "manager");
        assert.equal(calls.some((c) => c.op === "update"), false, "nothing ran in preview");
    });
});

describe("provider: its function (providerInfo)", () => {
    it("names the kinds a program declares that it does not serve, and its version", async () => {
        const p = new DccnSwarmProvider("1.2.3", implementations());
        const all = await p.invoke(PROVIDER_INFO, { kinds: [...KINDS] });
        assert.deepEqual(all.outputs, { version: "1.2.3", missing: [] });
        const newer = await p.invoke(PROVIDER_INFO, { kinds: ["SwarmService", "SwarmVolume"] });
        assert.deepEqual(newer.outputs?.missing, ["SwarmVolume"]);
    });

    it("hears from the program whether the run is a deployment: only then does it reach out (onDeploying)", async () => {
        const p = new DccnSwarmProvider("1.2.3", implementations());
        let calls = 0;
        p.onDeploying = () => { calls++; };
        await p.invoke(PROVIDER_INFO, { kinds: [...KINDS], deploying: false });
        await p.invoke(PROVIDER_INFO, { kinds: [...KINDS] });
        assert.equal(calls, 0, "a preview (or an older program) opens nothing");
        await p.invoke(PROVIDER_INFO, { kinds: [...KINDS], deploying: true });
        assert.equal(calls, 1);
    });

    it("refuses a function it does not have, naming the one it has", async () => {
        const p = new DccnSwarmProvider("1.2.3", implementations());
        await assert.rejects(p.invoke("dccn-swarm:index:nothing", {}), /unknown function dccn-swarm:index:nothing.*providerInfo/);
    });
});
