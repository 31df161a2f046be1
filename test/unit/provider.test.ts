// The provider plugin's own logic (provider/provider.ts, provider/values.ts): secrets unwrapped for
// the implementations and wrapped again in outputs, `undefined` dropped, detailed diffs, a change of
// connection only kept in the state without running anything, and state left by the dynamic
// providers moved over. Implementations are recording fakes here; the lab drills run the real ones.
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { DccnSwarmProvider, implementations, kindOf } from "../../provider/provider";
import { isSecret, secret, SECRET_SIG, UNKNOWN, unwrap } from "../../provider/values";
import { KINDS, type Kind } from "../../lib/resources";
import type { ResourceImpl } from "../../lib/resource-impl";

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
    it("an implementation sees plain values; the outputs keep secret what was secret, and drop undefined", async () => {
        const { impl, calls } = recorder();
        const p = providerWith(impl);
        const r = await p.create(urn("SwarmMember"), inputs());
        assert.equal(calls[0].args[0].ssh.privateKey, KEY_A, "the implementation gets the key itself");
        assert.ok(isSecret(r.outs!.ssh), "ssh stays a secret in the outputs");
        assert.equal((r.outs!.ssh as any).value.privateKey, KEY_A);
        assert.equal("engineVersion" in r.outs!, false, "undefined outputs are dropped (Struct cannot hold them)");
        assert.deepEqual(r.outs!.nested, { kept: 1 });
        assert.equal(JSON.stringify(r.outs).includes("undefined"), false);
    });

    it("fields a kind declares secret are wrapped even when their input was not", async () => {
        const { impl } = recorder();
        const p = providerWith(impl);
        const r = await p.create(urn("SwarmSecret"), { ...inputs(), data: "c2VjcmV0" });
        assert.ok(isSecret(r.outs!.data));
        assert.equal(isSecret(r.outs!.role), false);
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
    it("a rotated SSH key: a diff naming ssh, an update that runs nothing and keeps the new key", async () => {
        const { impl, calls } = recorder();
        const p = providerWith(impl);
        const olds = { ...inputs(KEY_A), nodeId: "n1", status: "ready" };
        const news = inputs(KEY_B);
        const d = await p.diff("n1", urn("SwarmMember"), olds, news);
        assert.equal(d.changes, true);
        assert.deepEqual(d.detailedDiff, { ssh: { kind: "update" } });
        assert.deepEqual(d.replaces, []);
        const diffSawOldKey = calls.find((c) => c.op === "diff")!.args[2].ssh.privateKey;
        assert.equal(diffSawOldKey, KEY_A, "the implementation judges the change with the old connection");
        const u = await p.update("n1", urn("SwarmMember"), olds, news);
        assert.equal(calls.some((c) => c.op === "update"), false, "nothing ran on the cluster");
        assert.ok(isSecret(u.outs!.ssh));
        assert.equal((u.outs!.ssh as any).value.privateKey, KEY_B, "the state keeps the new key");
        assert.equal(u.outs!.nodeId, "n1", "computed outputs are kept");
    });

    it("a new pinned host key and another user are connection changes too", async () => {
        const { impl, calls } = recorder();
        const p = providerWith(impl);
        const olds = { ...inputs(KEY_A, "172.28.213.12 ssh-ed25519 AAAAold"), nodeId: "n1" };
        const news = { ...inputs(KEY_A, "172.28.213.12 ssh-ed25519 AAAAnew"), ssh: secret(sshOf(KEY_A, "admin")) };
        const d = await p.diff("n1", urn("SwarmMember"), olds, news);
        assert.deepEqual(d.detailedDiff, { ssh: { kind: "update" } });
        const u = await p.update("n1", urn("SwarmMember"), olds, news);
        assert.equal(calls.some((c) => c.op === "update"), false);
        assert.equal((u.outs!.node as any).knownHosts, "172.28.213.12 ssh-ed25519 AAAAnew");
        assert.equal((u.outs!.managers as any)[0].knownHosts, "172.28.213.12 ssh-ed25519 AAAAnew");
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

    it("delete and read use the connection the state holds", async () => {
        const { impl, calls } = recorder();
        const p = providerWith(impl);
        const r = await p.read("n1", urn("SwarmMember"), { ...inputs(KEY_B), nodeId: "n1" });
        assert.equal(calls[0].args[1].ssh.privateKey, KEY_B);
        assert.ok(isSecret(r.props!.ssh), "read keeps ssh secret");
        assert.equal(r.props!.status, "down");
        await p.delete("n1", urn("SwarmMember"), { ...inputs(KEY_B), nodeId: "n1" });
        assert.equal(calls[1].args[1].ssh.privateKey, KEY_B);
        const gone = await p.read("n1", urn("SwarmMember"), { ...inputs(), role: "gone" });
        assert.equal(gone.id, "");
    });
});

describe("provider: state written by the dynamic providers", () => {
    it("__provider goes in an update of the state only", async () => {
        const { impl, calls } = recorder();
        const p = providerWith(impl);
        const olds = { ...inputs(), nodeId: "n1", __provider: "exports.handler = ..." };
        const d = await p.diff("n1", urn("SwarmMember"), olds, inputs());
        assert.equal(d.changes, true);
        assert.deepEqual(d.detailedDiff, { __provider: { kind: "delete" } });
        assert.deepEqual(d.replaces, []);
        const u = await p.update("n1", urn("SwarmMember"), olds, inputs());
        assert.equal(calls.some((c) => c.op === "update"), false);
        assert.equal("__provider" in u.outs!, false);
        assert.equal(u.outs!.nodeId, "n1");
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
