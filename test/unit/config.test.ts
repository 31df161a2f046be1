import { test } from "node:test";
import * as assert from "node:assert/strict";
import { ConfigError, RawConfig, validateClusterConfig } from "../../lib/cluster-config";
import { stackConfig } from "./harness";

const base = (): RawConfig => ({
    ssh: { privateKeyFile: "/tmp/key" },
    nodes: [
        { hostname: "vm1", address: "10.0.0.1", role: "manager" },
        { hostname: "vm2", address: "10.0.0.2", role: "worker", labels: { os: "linux" } },
    ],
});

function rejects(raw: RawConfig, key: string, pattern: RegExp) {
    assert.throws(() => validateClusterConfig(raw, "Pulumi.test.yaml"), (e: Error) => {
        assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
        assert.ok(e.message.includes(`Pulumi.test.yaml: dccn-swarm:${key}: `), `message names the file and key ${key}: ${e.message}`);
        assert.match(e.message, pattern);
        return true;
    });
}

test("the committed dev and prod stack configs validate", () => {
    for (const stack of ["dev", "prod"]) {
        const c = stackConfig(stack);
        const { config } = validateClusterConfig({
            environment: c["dccn-swarm:environment"], ssh: c["dccn-swarm:ssh"], engine: c["dccn-swarm:engine"],
            nodes: c["dccn-swarm:nodes"], swarm: c["dccn-swarm:swarm"], sharedStorage: c["dccn-swarm:sharedStorage"],
            hasSshPrivateKey: stack === "prod",
        }, `Pulumi.${stack}.yaml`);
        assert.equal(config.environment, stack);
        if (stack === "prod") {
            assert.equal(config.nodes.length, 8);
            assert.equal(config.nodes.filter((n) => n.role === "manager").length, 3);
            assert.ok(config.nodes.every((n) => n.labels.function === "production"));
            assert.equal(config.engine.storage, "devicemapper");
            assert.equal(config.engine.dataDevice, "/dev/sdb");
            assert.deepEqual(config.sharedStorage, { path: "/mnt/docker", timeout: 10 });
        } else {
            assert.deepEqual(config.nodes.map((n) => n.hostname), ["vm1", "vm2", "vm3"]);
            // The lab provides /mnt/docker itself (one host directory on every node): checked, never mounted.
            assert.deepEqual(config.sharedStorage, { path: "/mnt/docker", timeout: 10 });
        }
    }
});

test("defaults: root over port 22, availability active, bootstrap is the first manager", () => {
    const { config, warnings } = validateClusterConfig(base(), "Pulumi.test.yaml");
    assert.equal(config.ssh.user, "root");
    assert.equal(config.ssh.port, 22);
    assert.equal(config.nodes[0].availability, "active");
    assert.equal(config.swarm.bootstrapManager, "vm1");
    assert.deepEqual(warnings, []);
});

test("unknown role", () => {
    const raw = base();
    (raw.nodes as any[])[1].role = "boss";
    rejects(raw, "nodes[1].role", /unknown role "boss"; use `manager` or `worker`/);
});

test("duplicate hostname and duplicate address", () => {
    const raw = base();
    (raw.nodes as any[]).push({ hostname: "vm1", address: "10.0.0.2", role: "worker" });
    rejects(raw, "nodes[2].hostname", /duplicate hostname vm1/);
    rejects(raw, "nodes[2].address", /duplicate address 10.0.0.2/);
});

test("zero managers", () => {
    const raw = base();
    (raw.nodes as any[])[0].role = "worker";
    rejects(raw, "nodes", /no node has role `manager`/);
});

test("an even number of managers is a warning, not an error", () => {
    const raw = base();
    (raw.nodes as any[])[1].role = "manager";
    const { warnings } = validateClusterConfig(raw, "Pulumi.test.yaml");
    assert.ok(warnings.some((w) => w.key === "nodes" && /odd number/.test(w.message)));
});

test("devicemapper on an engine that removed it, or without a pinned version or data disk", () => {
    rejects({ ...base(), engine: { storage: "devicemapper", version: "26.1.4", dataDevice: "/dev/sdb" } },
        "engine.storage", /removed in Docker Engine 25\.0 .* use `overlay2`/);
    rejects({ ...base(), engine: { storage: "devicemapper", dataDevice: "/dev/sdb" } }, "engine.version", /pin `engine.version`/);
    rejects({ ...base(), engine: { storage: "devicemapper", version: "20.10.24" } }, "engine.dataDevice", /data disk/);
    const ok = validateClusterConfig({ ...base(), engine: { storage: "devicemapper", version: "20.10.24", dataDevice: "/dev/sdb" } }, "P.yaml");
    assert.ok(ok.warnings.some((w) => /deprecated/.test(w.message)));
});

test("an unauthenticated tcp socket in daemon.json is refused", () => {
    rejects({ ...base(), engine: { daemon: { hosts: ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"] } } },
        "engine.daemon.hosts[1]", /without authentication/);
    validateClusterConfig({ ...base(), engine: { daemon: { hosts: ["tcp://0.0.0.0:2376"], tlsverify: true,
        tlscacert: "/etc/docker/ca.pem", tlscert: "/etc/docker/cert.pem", tlskey: "/etc/docker/key.pem" } } }, "P.yaml");
});

test("a missing SSH key secret names the command that sets it", () => {
    rejects({ ...base(), ssh: {} }, "sshPrivateKey", /pulumi config set --secret sshPrivateKey/);
    validateClusterConfig({ ...base(), ssh: {}, hasSshPrivateKey: true }, "P.yaml");
});

test("unknown keys, bad availability, bad port and bad addresses are named", () => {
    const raw = base();
    (raw.nodes as any[])[0].colour = "blue";
    rejects(raw, "nodes[0].colour", /unknown key/);
    rejects({ ...base(), ssh: { privateKeyFile: "/k", port: 70000 } }, "ssh.port", /1-65535/);
    const bad = base();
    (bad.nodes as any[])[1].availability = "sleeping";
    rejects(bad, "nodes[1].availability", /use `active`, `drain` or `pause`/);
    const addr = base();
    (addr.nodes as any[])[1].address = "not an address!";
    rejects(addr, "nodes[1].address", /IPv4 address, an IPv6 address or a DNS name/);
    rejects({ ...base(), swarm: { forceNewCluster: "vm2" } }, "swarm.forceNewCluster", /not a configured manager/);
});

test("all errors are reported at once", () => {
    const raw = base();
    (raw.nodes as any[])[0].role = "boss";
    (raw.nodes as any[])[1].availability = "x";
    try {
        validateClusterConfig(raw, "Pulumi.test.yaml");
        assert.fail("expected an error");
    } catch (e) {
        assert.ok(e instanceof ConfigError);
        assert.ok(e.findings.filter((f) => f.level === "error").length >= 3);
    }
});

test("sharedStorage: a path is a mount that must exist; a map may name the NFS export to mount", () => {
    const shared = (v: unknown) => validateClusterConfig({ ...base(), sharedStorage: v }, "Pulumi.test.yaml").config.sharedStorage;
    assert.equal(shared(undefined), undefined);
    assert.deepEqual(shared("/mnt/docker"), { path: "/mnt/docker", timeout: 10 });
    assert.deepEqual(shared({ path: "/mnt/docker" }), { path: "/mnt/docker", timeout: 10 });
    assert.deepEqual(shared({ path: "/mnt/docker", timeout: 3, nfs: { server: "nfs.dccn.nl", export: "/docker" } }),
        { path: "/mnt/docker", timeout: 3, nfs: { server: "nfs.dccn.nl", export: "/docker", options: "rw,hard,timeo=600,retrans=2,_netdev" } });
    assert.deepEqual(shared({ path: "/mnt/docker", nfs: { server: "2001:db8::5", export: "/export/docker", options: "rw,hard,vers=4.1,sec=sys" } })?.nfs,
        { server: "2001:db8::5", export: "/export/docker", options: "rw,hard,vers=4.1,sec=sys" });
});

test("sharedStorage as Pulumi's config returns it: a map arrives as JSON text", async () => {
    const { parseSharedStorageText } = await import("../../lib/cluster-config");
    assert.equal(parseSharedStorageText(undefined), undefined);
    assert.equal(parseSharedStorageText(""), undefined);
    assert.equal(parseSharedStorageText("/mnt/docker"), "/mnt/docker");
    assert.deepEqual(parseSharedStorageText('{"path":"/mnt/docker"}'), { path: "/mnt/docker" });
    assert.equal(parseSharedStorageText("{not json"), "{not json");
    rejects({ ...base(), sharedStorage: parseSharedStorageText("{not json") }, "sharedStorage", /absolute path/);
});
