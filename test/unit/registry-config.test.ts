/** The registry's configuration: defaults, and every refusal naming the stack file, the key and the fix. */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, NodeConfig } from "../../lib/cluster-config";
import { passwordPresence, plainTextPasswordUsers, RawRegistryConfig, validateRegistryConfig } from "../../lib/registry-config";

const FILE = "Pulumi.test.yaml";
const node = (hostname: string, address: string, labels: Record<string, string>, role: "manager" | "worker" = "worker"): NodeConfig =>
    ({ hostname, address, role, availability: "active", labels });
const NODES = [
    node("vm1", "172.28.213.11", { os: "linux", registry: "true" }, "manager"),
    node("vm2", "172.28.213.12", { os: "linux", function: "production" }),
    node("vm3", "172.28.213.13", { os: "linux", function: "production" }),
];

const base = (registry: Record<string, unknown> = {}, passwords: Record<string, unknown> = { alice: "pw-a", bob: "pw-b" }): RawRegistryConfig => ({
    registry: { host: "registry.lab", address: "172.28.213.11", placement: "registry=true", dataPath: "/var/lib/dccn-registry", users: ["alice", "bob"], ...registry },
    passwords: passwordPresence(passwords),
    passwordsAreSecret: true,
});

function rejects(raw: RawRegistryConfig, key: string, pattern: RegExp, nodes = NODES) {
    assert.throws(() => validateRegistryConfig(raw, nodes, FILE), (e: Error) => {
        assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
        assert.ok(e.message.includes(`${FILE}: dccn-swarm:${key}: `), `message names the file and key ${key}: ${e.message}`);
        assert.match(e.message, pattern);
        return true;
    });
}

test("a lab registry: defaults filled in, constraint and endpoint derived", () => {
    const r = validateRegistryConfig(base(), NODES, FILE)!;
    assert.deepEqual(r.warnings, []);
    const c = r.config;
    assert.equal(c.port, 5000);
    assert.equal(c.image, "registry:2");
    assert.equal(c.endpoint, "registry.lab:5000");
    assert.equal(c.constraint, "node.labels.registry==true");
    assert.equal(c.pullUser, "alice");
    assert.deepEqual(c.certificate, { validityDays: 825, renewBeforeDays: 30, caValidityDays: 3650 });
});

test("no registry key: no registry", () => {
    assert.equal(validateRegistryConfig({}, NODES, FILE), undefined);
    assert.equal(validateRegistryConfig({ registry: {} }, NODES, FILE), undefined, "the project's default {} is no registry");
});

test("a user without a password names the user's key and the secret command, never a password", () => {
    rejects(base({}, { alice: "pw-a" }), "registryPasswords.bob", /user bob .* has no password; set it with pulumi config set --stack test --secret --path 'registryPasswords\.bob'/);
    rejects(base({}, { alice: "pw-a", bob: "" }), "registryPasswords.bob", /empty/);
    rejects(base({}, { alice: "pw-a", bob: 42 }), "registryPasswords.bob", /must be a string/);
    // No passwords at all.
    rejects({ ...base(), passwords: undefined }, "registryPasswords.alice", /has no password/);
    // The presence map carries no password.
    assert.deepEqual(passwordPresence({ alice: "hunter2", bob: "" }), { alice: "set", bob: "empty" });
    assert.ok(!JSON.stringify(passwordPresence({ alice: "hunter2" })).includes("hunter2"));
});

test("passwords stored in plain text are refused", () => {
    rejects({ ...base(), passwordsAreSecret: false }, "registryPasswords", /plain text in Pulumi\.test\.yaml; .*--secret/);
    rejects({ ...base(), passwordsMalformed: true, passwords: undefined }, "registryPasswords", /map of user name to password/);
});

test("one password set without --secret in an otherwise secret map is refused by name", () => {
    const stackConfig = { "dccn-swarm:registryPasswords": { alice: { secure: "v1:abc" }, bob: "plain-bob" }, "dccn-swarm:other": 1 };
    assert.deepEqual(plainTextPasswordUsers(stackConfig), ["bob"]);
    assert.deepEqual(plainTextPasswordUsers({ "dccn-swarm:registryPasswords": { secure: "v1:whole-map" } }), []);
    assert.deepEqual(plainTextPasswordUsers(undefined), []);
    rejects({ ...base(), plainTextUsers: plainTextPasswordUsers(stackConfig) }, "registryPasswords.bob",
        /is stored in plain text in Pulumi\.test\.yaml; remove it \(pulumi config rm --path 'registryPasswords\.bob'\)/);
    assert.throws(() => validateRegistryConfig({ ...base(), plainTextUsers: ["bob"] }, NODES, FILE), (e: Error) => !e.message.includes("plain-bob"));
});

test("a port outside 1-65535 is refused", () => {
    for (const port of [0, 65536, -1, 5000.5, "http", "70000"]) rejects(base({ port }), "registry.port", /is not a port number from 1 to 65535/);
    assert.equal(validateRegistryConfig(base({ port: "443" }), NODES, FILE)!.config.endpoint, "registry.lab");
    assert.equal(validateRegistryConfig(base({ port: 65535 }), NODES, FILE)!.config.port, 65535);
});

test("a placement label no configured node carries is refused, listing the labels there are", () => {
    rejects(base({ placement: "registry=yes" }), "registry.placement", /no configured node carries the label registry=yes.*add `registry: "yes"`.*function=production, os=linux, registry=true/);
    rejects(base({ placement: "registry" }), "registry.placement", /is not: a node label `key=value`/);
    rejects(base({ placement: undefined }), "registry.placement", /is required/);
});

test("a host that is not a valid DNS name is refused", () => {
    for (const host of ["bad_name.lab", "-registry.lab", "registry..lab", "a".repeat(64) + ".lab", "registry.lab:5000", "https://registry.lab"]) {
        rejects(base({ host }), "registry.host", /is not a valid DNS name/);
    }
    rejects(base({ host: "172.28.213.11" }), "registry.host", /is an IP address; .*registry\.address/);
    rejects(base({ host: "Registry.LAB" }), "registry.host", /lower case \(registry\.lab\)/);
    rejects(base({ host: undefined }), "registry.host", /is required/);
});

test("other refusals: address, dataPath, users, pullUser, certificate, unknown keys", () => {
    rejects(base({ address: "vm1" }), "registry.address", /not an IP address/);
    rejects(base({ dataPath: "data/registry" }), "registry.dataPath", /absolute path/);
    rejects(base({ dataPath: "/" }), "registry.dataPath", /absolute path other than \//);
    rejects(base({ dataPath: undefined }), "registry.dataPath", /is required/);
    rejects(base({ users: [] }), "registry.users", /at least one user/);
    rejects(base({ users: ["alice", "alice"] }), "registry.users[1]", /listed twice/);
    rejects(base({ users: ["al:ice"] }, { "al:ice": "x" }), "registry.users[0]", /not a valid user name/);
    rejects(base({ pullUser: "carol" }), "registry.pullUser", /not one of registry\.users/);
    rejects(base({ certificate: { validityDays: 30, renewBeforeDays: 30 } }), "registry.certificate.renewBeforeDays", /less than validityDays/);
    rejects(base({ certificate: { validityDays: 825, caValidityDays: 800 } }), "registry.certificate.caValidityDays", /must not outlive its CA/);
    rejects(base({ certificate: { validityDays: "long" } }), "registry.certificate.validityDays", /whole number of days/);
    rejects(base({ certificate: { lifetime: 3 } }), "registry.certificate.lifetime", /unknown key/);
    rejects(base({ hostname: "x" }), "registry.hostname", /unknown key; the registry's keys are host, port/);
    rejects(base({ image: "Registry 2" }), "registry.image", /not an image reference/);
});

test("all errors at once, before anything is declared", () => {
    assert.throws(() => validateRegistryConfig(base({ host: "bad_host", port: 0, placement: "nope=1" }, { alice: "x" }), NODES, FILE), (e: Error) => {
        for (const key of ["registry.host", "registry.port", "registry.placement", "registryPasswords.bob"]) assert.ok(e.message.includes(`dccn-swarm:${key}: `), key);
        return true;
    });
});

test("warnings: unused password, several labelled nodes with local data, address of another node", () => {
    const w1 = validateRegistryConfig(base({}, { alice: "a", bob: "b", carol: "c" }), NODES, FILE)!.warnings;
    assert.equal(w1.length, 1);
    assert.equal(w1[0].key, "registryPasswords.carol");
    assert.match(w1[0].message, /pulumi config rm --path 'registryPasswords\.carol'/);
    const w2 = validateRegistryConfig(base({ placement: "function=production", address: undefined }), NODES, FILE)!.warnings;
    assert.deepEqual(w2.map((w) => w.key), ["registry.dataPath"]);
    assert.match(w2[0].message, /2 nodes carry function=production \(vm2, vm3\)/);
    // On the shared storage, several candidates are fine.
    assert.deepEqual(validateRegistryConfig(base({ placement: "function=production", address: undefined, dataPath: "/mnt/docker/registry" }), NODES, FILE, "/mnt/docker")!.warnings, []);
    const w3 = validateRegistryConfig(base({ address: "172.28.213.12" }), NODES, FILE)!.warnings;
    assert.deepEqual(w3.map((w) => w.key), ["registry.address"]);
});

test("loadRegistryConfig: reads the stack config, checks passwords by presence only and keeps them secret", async () => {
    const { loadRegistryConfig } = await import("../../config");
    const cluster = { environment: "dev", nodes: NODES } as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    const set = (cfg: Record<string, unknown>, secretKeys: string[]) => {
        const all: Record<string, string> = {};
        for (const [k, v] of Object.entries(cfg)) all[k] = typeof v === "string" ? v : JSON.stringify(v);
        pulumi.runtime.setAllConfig(all, secretKeys);
    };
    await pulumi.runtime.setMocks({ newResource: (a) => ({ id: a.name, state: a.inputs }), call: (a) => a.inputs }, "dccn-swarm", "test", false);
    try {
        const registry = { host: "registry.lab", placement: "registry=true", dataPath: "/srv/registry", users: ["alice", "bob"] };
        set({ "dccn-swarm:registry": registry, "dccn-swarm:registryPasswords": { alice: "s3cret-alice", bob: "" } }, ["dccn-swarm:registryPasswords"]);
        assert.throws(() => loadRegistryConfig(cluster, FILE), (e: Error) => {
            assert.match(e.message, /Pulumi\.test\.yaml: dccn-swarm:registryPasswords\.bob: the password of bob is empty/);
            assert.ok(!e.message.includes("s3cret-alice"), "no password in the message");
            return true;
        });
        set({ "dccn-swarm:registry": registry, "dccn-swarm:registryPasswords": { alice: "s3cret-alice", bob: "pw" } }, []);
        assert.throws(() => loadRegistryConfig(cluster, FILE), /registryPasswords: is stored in plain text/);
        set({ "dccn-swarm:registry": registry, "dccn-swarm:registryPasswords": { alice: "s3cret-alice", bob: "pw" } }, ["dccn-swarm:registryPasswords"]);
        const loaded = loadRegistryConfig(cluster, FILE)!;
        assert.equal(loaded.config.host, "registry.lab");
        assert.equal(await pulumi.isSecret(loaded.passwords), true);
        set({}, []);
        assert.equal(loadRegistryConfig(cluster, FILE), undefined);
    } finally {
        pulumi.runtime.setAllConfig({}, []);
        await pulumi.runtime.disconnect();
    }
});

test("hostile registry values: an address that is not one, a port that is not a number, an image with an option", () => {
    for (const address of ["1:2", "10.0.0.256", "fe80::1%eth0", "-oProxyCommand=x"]) rejects(base({ address }), "registry.address", /is not an IP address/);
    assert.equal(validateRegistryConfig(base({ address: "2001:db8::11" }), NODES, FILE)!.config.address, "2001:db8::11");
    for (const port of ["0x16", "5000 ", 0, 65536, 50.5]) rejects(base({ port }), "registry.port", /is not a port number/);
    rejects(base({ image: "registry:2 --privileged" }), "registry.image", /is not an image reference/);
    rejects(base({ dataPath: "/mnt/../etc" }), "registry.dataPath", /without \. or \.\. components/);
});
