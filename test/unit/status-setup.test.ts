/**
 * Status: reading the stack file (the program's own validation and host-key pinning), the key
 * choice (--key, ssh.privateKeyFile, DCCN_SSH_KEY_FILE), the CLI's arguments, and gathering from
 * nodes that do not answer (local closed ports: no lab needed, only the ssh client).
 */
import { tempDir } from "./harness";
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import * as yaml from "js-yaml";
import { evaluateStatus, gatherStatus, loadStatusSetup, StatusSetupError } from "../../lib/cluster-status";
import { parseArgs, UsageError } from "../../tools/status";

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUnitTestStatusHostKey000000000000000000000";

function project(config: Record<string, unknown>, files: Record<string, string> = {}): string {
    const dir = tempDir("dccn-status-unit-");
    fs.writeFileSync(path.join(dir, "Pulumi.t.yaml"), yaml.dump({ config }));
    for (const [name, text] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
        fs.writeFileSync(path.join(dir, name), text, { mode: 0o600 });
    }
    return dir;
}

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nUNIT\n-----END OPENSSH PRIVATE KEY-----\n";

function baseConfig(): Record<string, any> {
    return {
        "dccn-swarm:environment": "t",
        "dccn-swarm:ssh": { user: "root", privateKeyFile: "keys/id", knownHostsFile: "keys/known_hosts", connectTimeout: 2 },
        "dccn-swarm:nodes": [
            { hostname: "a1", address: "10.9.0.1", role: "manager" },
            { hostname: "a2", address: "10.9.0.2", role: "worker", hostKey: HOST_KEY },
            { hostname: "a3", address: "10.9.0.3", role: "worker" },
        ],
    };
}

test("setup reads the stack file with the program's validation; relative paths resolve against the project", () => {
    const dir = project(baseConfig(), { "keys/id": KEY, "keys/known_hosts": `10.9.0.1 ${HOST_KEY}\n# comment\n10.9.0.9 ${HOST_KEY}\n` });
    const s = loadStatusSetup({ root: dir, stack: "t", env: {} });
    assert.equal(s.stackFile, "Pulumi.t.yaml");
    assert.equal(s.cluster.environment, "t");
    assert.equal(s.registry, undefined, "no dccn-swarm:registry: not configured");
    assert.deepEqual(s.endpoints.map((e) => [e.hostname, !!e.target]), [["a1", true], ["a2", true], ["a3", false]]);
    const a1 = s.endpoints[0].target;
    assert.ok(a1);
    assert.equal(a1.host, "10.9.0.1");
    assert.equal(a1.knownHosts, `10.9.0.1 ${HOST_KEY}`, "known_hosts lines for that address only");
    assert.equal(a1.connectTimeout, 2);
    assert.equal(a1.privateKey, KEY);
    assert.equal(s.endpoints[1].target?.knownHosts, `10.9.0.2 ${HOST_KEY}`, "the node's hostKey pins it");
    assert.match(s.endpoints[2].error ?? "", /no SSH host key is pinned for 10\.9\.0\.3/);
});

test("setup: registry key read; invalid config, missing stack file or key are errors for exit 2", () => {
    const withReg = { ...baseConfig(), "dccn-swarm:registry": { host: "docker-registry.dccn.nl", port: 5000 } };
    let dir = project(withReg, { "keys/id": KEY, "keys/known_hosts": "" });
    assert.deepEqual(loadStatusSetup({ root: dir, stack: "t", env: {} }).registry, { host: "docker-registry.dccn.nl", port: 5000 });
    assert.throws(() => loadStatusSetup({ root: dir, stack: "nope", env: {} }),
        (e: Error) => e instanceof StatusSetupError && /Pulumi\.nope\.yaml does not exist; name an existing stack with --stack \(t\)/.test(e.message));
    assert.throws(() => loadStatusSetup({ root: dir, stack: "../x", env: {} }), /invalid stack name/);

    const bad = baseConfig();
    bad["dccn-swarm:nodes"][1].role = "boss";
    dir = project(bad, { "keys/id": KEY });
    assert.throws(() => loadStatusSetup({ root: dir, stack: "t", env: {} }),
        (e: Error) => e instanceof StatusSetupError && /Pulumi\.t\.yaml: dccn-swarm:nodes\[1\]\.role: unknown role "boss"/.test(e.message));

    dir = project(baseConfig(), {});
    assert.throws(() => loadStatusSetup({ root: dir, stack: "t", env: {} }), /SSH key .*keys\/id cannot be read/);
    // A missing known_hosts file: every node without hostKey unreachable, and the file named.
    dir = project(baseConfig(), { "keys/id": KEY });
    const s = loadStatusSetup({ root: dir, stack: "t", env: {} });
    assert.match(s.endpoints[0].error ?? "", /known_hosts cannot be read \(ENOENT\)/);
});

test("setup: the secret sshPrivateKey case takes --key, else DCCN_SSH_KEY_FILE, else says how", () => {
    const c = baseConfig();
    delete c["dccn-swarm:ssh"].privateKeyFile;
    c["dccn-swarm:sshPrivateKey"] = { secure: "v1:AAAA" };
    const dir = project(c, { "keys/known_hosts": `10.9.0.1 ${HOST_KEY}\n`, "k1": KEY, "k2": KEY.replace("UNIT", "ENV") });
    assert.throws(() => loadStatusSetup({ root: dir, stack: "t", env: {} }),
        (e: Error) => e instanceof StatusSetupError && /secret `sshPrivateKey`; pass the key file with --key FILE or DCCN_SSH_KEY_FILE/.test(e.message));
    assert.equal(loadStatusSetup({ root: dir, stack: "t", keyFile: path.join(dir, "k1"), env: {} }).endpoints[0].target?.privateKey, KEY);
    assert.match(loadStatusSetup({ root: dir, stack: "t", env: { DCCN_SSH_KEY_FILE: path.join(dir, "k2") } }).endpoints[0].target?.privateKey ?? "", /ENV/);
    assert.equal(loadStatusSetup({ root: dir, stack: "t", keyFile: path.join(dir, "k1"), env: { DCCN_SSH_KEY_FILE: path.join(dir, "k2") } })
        .endpoints[0].target?.privateKey, KEY, "--key wins");
    // Neither the secret nor a key file at all: the program's own error.
    const none = baseConfig();
    delete none["dccn-swarm:ssh"].privateKeyFile;
    assert.throws(() => loadStatusSetup({ root: project(none), stack: "t", env: {} }), /dccn-swarm:sshPrivateKey: no SSH key/);
});

test("CLI arguments", () => {
    assert.deepEqual(parseArgs(["--stack", "dev"], "/p"), { stack: "dev", json: false, project: "/p" });
    assert.deepEqual(parseArgs(["--stack=prod", "--json", "--svg", "c.svg", "--key", "k"], "/p"),
        { stack: "prod", json: true, svg: "c.svg", key: "k", project: "/p" });
    assert.equal(parseArgs(["-h"], "/p"), "help");
    assert.throws(() => parseArgs([], "/p"), (e: Error) => e instanceof UsageError && /--stack is required/.test(e.message));
    assert.throws(() => parseArgs(["--stack"], "/p"), /--stack needs a value/);
    assert.throws(() => parseArgs(["--stack", "dev", "--nope"], "/p"), /unknown argument '--nope'/);
});

async function closedPort(): Promise<number> {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    return port;
}

const hasSsh = spawnSync("ssh", ["-V"]).status === 0;

test("nodes whose SSH does not answer are reported Down, not a crash, within the connect timeout", { skip: !hasSsh && "no ssh client" }, async () => {
    const port = await closedPort();
    const c = baseConfig();
    c["dccn-swarm:ssh"].port = port;
    c["dccn-swarm:nodes"] = [
        { hostname: "a1", address: "127.0.0.1", role: "manager", hostKey: HOST_KEY },
        { hostname: "a2", address: "127.0.0.2", role: "worker", hostKey: HOST_KEY },
    ];
    c["dccn-swarm:registry"] = { host: "127.0.0.1", port: 5000 };
    const dir = project(c, { "keys/id": KEY });
    const setup = loadStatusSetup({ root: dir, stack: "t", env: {} });
    const started = Date.now();
    const obs = await gatherStatus(setup);
    assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
    const r = evaluateStatus(setup.cluster, obs);
    assert.equal(r.healthy, false);
    assert.deepEqual(r.nodes.map((n) => [n.hostname, n.state, n.ready, n.ssh.ok]), [["a1", "Down", false, false], ["a2", "Down", false, false]]);
    assert.match(r.nodes[0].ssh.error ?? "", /a1 \(127\.0\.0\.1\): SSH connection failed: .*Connection refused/);
    assert.equal(r.quorum.ok, false);
    assert.equal(r.quorum.reachable, 0);
    assert.equal(r.quorum.error, "no reachable node is in a swarm");
    assert.equal(r.registry.configured, true);
    assert.match(r.registry.problems.join(), /no node could be reached to check the registry from/);
});
