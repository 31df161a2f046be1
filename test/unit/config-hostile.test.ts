/**
 * Hostile or careless stack configuration (issue 15): every value that reaches a command is checked
 * against what it may be, and the refusal names the stack file, the key and the fix.
 */
import { test, describe } from "node:test";
import * as assert from "node:assert/strict";
import { ConfigError, pinnedKnownHostsLine, RawConfig, validateClusterConfig } from "../../lib/cluster-config";
import { daemonProblems, isDnsName, isNodeAddress, isPackageName, isPosixUserName } from "../../lib/config-checks";
import { validateStacks } from "../../lib/stacks-config";
import { fakeSshFiles, runProgram, stackConfig } from "./harness";

const FILE = "Pulumi.test.yaml";
const base = (): RawConfig => ({
    ssh: { privateKeyFile: "/tmp/key" },
    nodes: [
        { hostname: "vm1", address: "10.0.0.1", role: "manager" },
        { hostname: "vm2", address: "10.0.0.2", role: "worker" },
    ],
});

/** The refusal names the stack file and `dccn-swarm:<key>`, says what is wrong, and what to do. */
function refused(fn: () => unknown, key: string, pattern: RegExp) {
    assert.throws(fn, (e: Error) => {
        assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
        const line = e.message.split("\n").find((l) => l.startsWith(`${FILE}: dccn-swarm:${key}: `));
        assert.ok(line, `a line names ${FILE} and the key ${key}: ${e.message}`);
        assert.match(line, pattern);
        assert.match(line, /use|write|set|remove|must|name|shorten|give|bind/, "the line says what to do");
        return true;
    });
}
const cluster = (patch: (r: RawConfig) => void) => () => { const r = base(); patch(r); return validateClusterConfig(r, FILE); };
const ssh = (v: Record<string, unknown>) => cluster((r) => { r.ssh = { privateKeyFile: "/tmp/key", ...v }; });
const engine = (v: Record<string, unknown>) => cluster((r) => { r.engine = v; });
const daemon = (v: Record<string, unknown>) => engine({ daemon: v });
const node1 = (v: Record<string, unknown>) => cluster((r) => { Object.assign((r.nodes as object[])[1], v); });

describe("ssh", () => {
    for (const user of ["-oProxyCommand=touch /tmp/pwned", "root@evil", "ro ot", "root\n", "", "-l", "a".repeat(33), 0]) {
        test(`ssh.user ${JSON.stringify(user)} is refused`, () => refused(ssh({ user }), "ssh.user", /not a POSIX user name/));
    }
    test("ordinary user names pass", () => {
        for (const user of ["root", "admin", "svc_deploy", "j.doe", "ops-1", "_svc"]) assert.equal(validateClusterConfig({ ...base(), ssh: { privateKeyFile: "/k", user } }, FILE).config.ssh.user, user);
    });
    for (const port of ["0x16", "22", "2222", 0, 65536, 22.5, -1, true, null]) {
        test(`ssh.port ${JSON.stringify(port)} is refused`, () => refused(ssh({ port }), "ssh.port", /written as a number/));
    }
    test("ssh.port 2222 as a number passes", () => assert.equal(validateClusterConfig({ ...base(), ssh: { privateKeyFile: "/k", port: 2222 } }, FILE).config.ssh.port, 2222));
    test("ssh.connectTimeout as a string is refused", () => refused(ssh({ connectTimeout: "15" }), "ssh.connectTimeout", /written as a number/));
    test("ssh.privateKeyFile that is not a path is refused", () => refused(ssh({ privateKeyFile: 42 }), "ssh.privateKeyFile", /must be a file path/));
    test("sshPrivateKey stored in plain text is refused, naming how to set it as a secret", () => {
        refused(cluster((r) => { r.ssh = {}; r.hasSshPrivateKey = true; r.sshPrivateKeyIsSecret = false; }), "sshPrivateKey",
            /plain text in Pulumi\.test\.yaml.*pulumi config rm --stack test sshPrivateKey.*pulumi config set --stack test --secret sshPrivateKey < KEYFILE/);
        validateClusterConfig({ ...base(), ssh: {}, hasSshPrivateKey: true, sshPrivateKeyIsSecret: true }, FILE);
    });
});

describe("engine", () => {
    for (const pkg of ["docker-ce --nogpgcheck", "--nogpgcheck", "docker-ce;reboot", "docker-ce $(id)", "", "docker ce", 42]) {
        test(`engine.package ${JSON.stringify(pkg)} is refused`, () => refused(engine({ package: pkg }), "engine.package", /not a package name/));
    }
    test("package names with versions pass", () => {
        for (const p of ["docker-ce", "docker-ce-20.10.24", "docker-ce-3:20.10.24-3.el7", "docker.io=20.10.24+dfsg1-1", "moby-engine"]) assert.ok(isPackageName(p), p);
    });
    for (const version of [20.1, "20.10; rm -rf /", "latest", "-1"]) {
        test(`engine.version ${JSON.stringify(version)} is refused`, () => refused(engine({ version }), "engine.version", /not an engine version/));
    }
    for (const dev of ["sdb", "/dev/../etc/passwd", "/dev/sdb /dev/sdc", "/dev/", "/tmp/disk.img", "/dev/sdb\n", "-f"]) {
        test(`engine.dataDevice ${JSON.stringify(dev)} is refused`, () => refused(engine({ dataDevice: dev }), "engine.dataDevice", /block device path/));
    }
    test("device paths pass: /dev/sdb, /dev/nvme1n1, /dev/mapper/vg-data, /dev/disk/by-id/...", () => {
        for (const d of ["/dev/sdb", "/dev/nvme1n1", "/dev/mapper/vg-data", "/dev/disk/by-path/pci-0000:00:1f.2-ata-1"]) {
            assert.equal(validateClusterConfig({ ...base(), engine: { dataDevice: d } }, FILE).config.engine.dataDevice, d);
        }
    });
});

describe("daemon settings: no unauthenticated TCP socket, no insecure registry", () => {
    const tcp: [Record<string, unknown>, string][] = [
        [{ hosts: ["tcp://0.0.0.0:2375"] }, "hosts[0]"], [{ hosts: ["TCP://0.0.0.0:2375"] }, "hosts[0]"], [{ hosts: [" tcp://0.0.0.0:2375"] }, "hosts[0]"],
        [{ Hosts: ["tcp://0.0.0.0:2375"] }, "Hosts[0]"], [{ HOSTS: ["unix:///var/run/docker.sock", "0.0.0.0:2375"] }, "HOSTS[1]"], [{ hosts: [":2375"] }, "hosts[0]"],
        [{ hosts: "tcp://0.0.0.0:2375" }, "hosts"], [{ hosts: ["tcp://[::]:2375"] }, "hosts[0]"], [{ hosts: ["tcp://0.0.0.0:2376"], tlsverify: true }, "hosts[0]"],
        [{ hosts: ["tcp://0.0.0.0:2376"], tls: true, tlscert: "/c", tlskey: "/k" }, "hosts[0]"],
    ];
    for (const [d, key] of tcp) {
        test(`${JSON.stringify(d)} is refused`, () => refused(daemon(d), `engine.daemon.${key}`, /without authentication/));
    }
    for (const k of ["insecure-registries", "Insecure-Registries"]) {
        test(`${k} is refused`, () => refused(daemon({ [k]: ["registry.lab:5000"] }), `engine.daemon.${k}`, /without TLS verification/));
    }
    test("metrics-addr on the network is refused, on loopback it passes", () => {
        refused(daemon({ "metrics-addr": "0.0.0.0:9323" }), "engine.daemon.metrics-addr", /unauthenticated/);
        assert.deepEqual(daemonProblems({ "metrics-addr": "127.0.0.1:9323" }), []);
    });
    test("local sockets, mutual TLS, and null (removing a key) pass", () => {
        assert.deepEqual(daemonProblems({ hosts: ["unix:///var/run/docker.sock", "fd://"] }), []);
        assert.deepEqual(daemonProblems({ hosts: null, "insecure-registries": null }), []);
        assert.deepEqual(daemonProblems({ "insecure-registries": [] }), []);
        assert.deepEqual(daemonProblems({ hosts: ["tcp://0.0.0.0:2376"], tlsverify: true, tlscacert: "/a", tlscert: "/b", tlskey: "/c" }), []);
    });
});

describe("nodes", () => {
    for (const address of ["not an address!", "10.0.0.256", "1.2.3", "-oProxyCommand=x", "fe80::1%eth0", "host name", "a..b", ""]) {
        test(`nodes[1].address ${JSON.stringify(address)} is refused`, () => refused(node1({ address }), "nodes[1].address", /IPv4 address, an IPv6 address or a DNS name/));
    }
    test("IPv4, IPv6 and DNS addresses pass", () => {
        for (const a of ["10.0.0.2", "2001:db8::2", "::ffff:10.0.0.2", "node2.dccn.nl", "vm2"]) assert.ok(isNodeAddress(a), a);
        assert.ok(!isDnsName("1.2.3.4"));
    });
    test("a label value of several lines is refused", () => refused(node1({ labels: { os: "linux\nx" } }), "nodes[1].labels.os", /one line/));
    test("sharedStorage relative or with .. is refused", () => {
        refused(cluster((r) => { r.sharedStorage = "mnt/docker"; }), "sharedStorage", /absolute path/);
        refused(cluster((r) => { r.sharedStorage = "/mnt/../etc"; }), "sharedStorage", /absolute path/);
    });
});

describe("sharedStorage", () => {
    const shared = (v: unknown) => cluster((r) => { r.sharedStorage = v; });
    const nfs = (v: Record<string, unknown>) => shared({ path: "/mnt/docker", nfs: { server: "nfs.dccn.nl", export: "/docker", ...v } });
    for (const p of ["/mnt/docker dir", "/mnt/docker\n/etc", "/mnt/docker,x", "/mnt/do:cker", "/mnt/#docker", "/", "/mnt/docker/", "//mnt", "relative", 42, true]) {
        test(`path ${JSON.stringify(p)} is refused (string form)`, () => refused(shared(p), "sharedStorage", /absolute path other than \/|must be a path/));
        test(`path ${JSON.stringify(p)} is refused (map form)`, () => refused(shared({ path: p }), "sharedStorage.path", /absolute path other than \//));
    }
    test("a map without path is refused", () => refused(shared({ timeout: 5 }), "sharedStorage.path", /is missing; set the mount point/));
    test("unknown keys are refused, at both levels", () => {
        refused(shared({ path: "/mnt/docker", server: "nfs" }), "sharedStorage.server", /unknown key; remove it/);
        refused(nfs({ opts: "rw" }), "sharedStorage.nfs.opts", /unknown key; remove it/);
    });
    for (const t of [0, -1, 2.5, "10", 301, null]) {
        test(`timeout ${JSON.stringify(t)} is refused`, () => refused(shared({ path: "/mnt/docker", timeout: t }), "sharedStorage.timeout", /whole number of seconds/));
    }
    for (const server of ["nfs server", "nfs.dccn.nl\nx", "-oProxy", "nfs,x", "", 5]) {
        test(`nfs.server ${JSON.stringify(server)} is refused`, () => refused(nfs({ server }), "sharedStorage.nfs.server", /DNS name or an IPv4 or IPv6 address/));
    }
    for (const exp of ["docker", "/doc ker", "/docker\n", "/a,b", "/a:b", "/a#b", "/a/../b"]) {
        test(`nfs.export ${JSON.stringify(exp)} is refused`, () => refused(nfs({ export: exp }), "sharedStorage.nfs.export", /absolute path the server exports/));
    }
    for (const options of ["rw,hard timeo=600", "rw\n/dev/sda / ext4", "rw,,hard", "rw,hard,", "rw;reboot", "rw,x='y'", "", 5, ["rw"]]) {
        test(`nfs.options ${JSON.stringify(options)} is refused`, () => refused(nfs({ options }), "sharedStorage.nfs.options", /mount options separated by commas without blanks/));
    }
    test("nfs.options with ro is refused: the shared storage must be writable", () => refused(nfs({ options: "ro,hard" }), "sharedStorage.nfs.options", /must be writable.*use `rw`/));
    test("nfs that is not a map is refused", () => refused(shared({ path: "/mnt/docker", nfs: "nfs.dccn.nl:/docker" }), "sharedStorage.nfs", /must be a map/));
    test("missing server or export is refused", () => {
        refused(shared({ path: "/mnt/docker", nfs: { export: "/docker" } }), "sharedStorage.nfs.server", /is missing/);
        refused(shared({ path: "/mnt/docker", nfs: { server: "nfs.dccn.nl" } }), "sharedStorage.nfs.export", /is missing/);
    });
});

describe("a pinned hostKey on a non-22 port is written in the [addr]:port form", () => {
    test("pinnedKnownHostsLine", () => {
        assert.equal(pinnedKnownHostsLine("10.0.0.1", 22, "ssh-ed25519 AAAA"), "10.0.0.1 ssh-ed25519 AAAA");
        assert.equal(pinnedKnownHostsLine("10.0.0.1", 2222, "ssh-ed25519 AAAA"), "[10.0.0.1]:2222 ssh-ed25519 AAAA");
        assert.equal(pinnedKnownHostsLine("node.dccn.nl", 2200, "ssh-ed25519 AAAA"), "[node.dccn.nl]:2200 ssh-ed25519 AAAA");
    });
});

describe("stacks", () => {
    const stacks = (entry: Record<string, unknown>) => () => validateStacks([{ name: "app", file: "stacks/app.yml", ...entry }], FILE);
    const longName = "a".repeat(300);
    for (const name of [longName, "a".repeat(62), "my.stack", "-app", "app_", "app stack", ""]) {
        test(`stack name ${JSON.stringify(name.length > 40 ? `${name.length} characters` : name)} is refused`,
            () => refused(stacks({ name }), "stacks[0].name", /stack name of at most 61 characters/));
    }
    const overrides: [string, unknown, string, RegExp][] = [
        ["images: 42", { images: 42 }, "overrides.images", /must be a map/],
        ["images: { web: 42 }", { images: { web: 42 } }, "overrides.images.web", /image reference/],
        ["images: { web: 'nginx --privileged' }", { images: { web: "nginx --privileged" } }, "overrides.images.web", /image reference/],
        ["bindPaths relative target", { bindPaths: { "/mnt/docker": "srv/lab" } }, "overrides.bindPaths./mnt/docker", /absolute path/],
        ["bindPaths relative key", { bindPaths: { "mnt/docker": "/srv/lab" } }, "overrides.bindPaths.mnt/docker", /absolute path/],
        ["bindPaths with ..", { bindPaths: { "/mnt/docker": "/srv/../etc" } }, "overrides.bindPaths./mnt/docker", /absolute path/],
        ["bindPaths: list", { bindPaths: ["/a"] }, "overrides.bindPaths", /must be a map/],
        ["registryMap value", { registryMap: { "a.b:5000": "x y" } }, "overrides.registryMap.a.b:5000", /registry host/],
        ["registryPrefix number", { registryPrefix: 5000 }, "overrides.registryPrefix", /registry host/],
        ["ports: string", { ports: "8080:80" }, "overrides.ports", /must map service names/],
        ["ports: bad published key", { ports: { web: { abc: 8080 } } }, "overrides.ports.web.abc", /published port/],
        ["replicas: string", { replicas: { web: "2" } }, "overrides.replicas.web", /whole number/],
        ["createBindPaths: 'yes'", { createBindPaths: "yes" }, "overrides.createBindPaths", /true or false/],
    ];
    for (const [what, o, key, pattern] of overrides) {
        test(`overrides ${what} is refused`, () => refused(stacks({ overrides: o }), `stacks[0].${key}`, pattern));
    }
    test("env keys that are not variable names and values that are not scalars are refused", () => {
        refused(stacks({ env: { "A B": "1" } }), "stacks[0].env.A B", /not a variable name/);
        refused(stacks({ env: { A: { x: 1 } } }), "stacks[0].env.A", /must be a string/);
    });
    test("the committed stacks of dev and prod validate", () => {
        for (const s of ["dev", "prod"]) assert.ok(validateStacks(stackConfig(s)["dccn-swarm:stacks"], `Pulumi.${s}.yaml`).length >= 2);
    });
});

describe("the program refuses before declaring anything", () => {
    const prod = () => {
        const c = stackConfig("prod");
        c["dccn-swarm:sshPrivateKey"] = "-----BEGIN OPENSSH PRIVATE KEY-----\nPROD-KEY\n-----END OPENSSH PRIVATE KEY-----\n";
        c["dccn-swarm:registryPasswords"] = { admin: "A", "swarm-pull": "B" };
        c["dccn-swarm:webappDbPassword"] = "C";
        c["dccn-swarm:webappDbRootPassword"] = "D";
        return c;
    };
    const SECRETS = ["dccn-swarm:registryPasswords", "dccn-swarm:webappDbPassword", "dccn-swarm:webappDbRootPassword"];
    test("sshPrivateKey set without --secret", async () => {
        await assert.rejects(runProgram("prod", prod(), SECRETS),
            /Pulumi\.prod\.yaml: dccn-swarm:sshPrivateKey: is stored in plain text .*--secret sshPrivateKey/);
    });
    test("prod on SSH port 2222: every pinned hostKey reaches the node as [addr]:2222", async () => {
        const c = prod();
        c["dccn-swarm:ssh"] = { ...(c["dccn-swarm:ssh"] as object), port: 2222 };
        const { resources } = await runProgram("prod", c, ["dccn-swarm:sshPrivateKey", ...SECRETS]);
        const members = resources.filter((r) => r.inputs?.node?.knownHosts !== undefined);
        assert.ok(members.length >= 8, `${members.length} resources carry a node's known_hosts`);
        for (const m of members) assert.match(m.inputs.node.knownHosts, /^\[192\.0\.2\.\d+\]:2222 ssh-ed25519 /);
    });
    test("dev: the lab's known_hosts file is still read on port 22", async () => {
        const c = stackConfig("dev");
        const nodes = c["dccn-swarm:nodes"] as { address: string }[];
        const { keyFile, knownHosts } = fakeSshFiles(nodes.map((n) => n.address));
        c["dccn-swarm:ssh"] = { ...(c["dccn-swarm:ssh"] as object), privateKeyFile: keyFile, knownHostsFile: knownHosts, user: "-oProxyCommand=x" };
        await assert.rejects(runProgram("dev", c, SECRETS), /Pulumi\.dev\.yaml: dccn-swarm:ssh\.user: "-oProxyCommand=x" is not a POSIX user name/);
    });
});

test("user names: POSIX portable", () => {
    assert.ok(isPosixUserName("root"));
    assert.ok(!isPosixUserName("1root") && !isPosixUserName("-root") && !isPosixUserName("ro:ot"));
});
