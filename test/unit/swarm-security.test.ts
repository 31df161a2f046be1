/**
 * The swarm's own security (issue 17): `dccn-swarm:swarm`'s autolock, rotations and node certificate
 * lifetime as configuration (hostile values refused naming the file, key and fix), what a change of
 * them asks of the swarm (lib/swarm-providers.ts securityChange, lib/swarm-ops.ts securitySpec), the
 * preview naming exactly the changed field, no change at all for a stack that sets none of them, the
 * unlock key kept as a secret and never in a message, `npm run ops -- unlock` arguments, status of a
 * locked manager and of node certificates, and swarm-restore.sh unlocking with a key it never shows.
 * The lab drills (test/e2e/security.test.ts) run the real ones.
 */
import { describe, test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { ConfigError, RawConfig, validateClusterConfig, parseDuration } from "../../lib/cluster-config";
import { clusterProvider, securityChange, type ClusterInputs, type ClusterOutputs } from "../../lib/swarm-providers";
import { nodesWithOtherCa, securitySpec, swarmUpdateQuery, withoutSecret } from "../../lib/swarm-ops";
import { DccnSwarmProvider, implementations } from "../../provider/provider";
import { isSecret } from "../../provider/values";
import { evaluateStatus, parseClusterInfo, parseNodeCertOutput, parseSnapshotOutput, renderTable, type Observation } from "../../lib/cluster-status";
import { parseArgs, unlockKeySource, UsageError } from "../../tools/ops";
import { securityInputs } from "../../components/swarm";
import { fakeSshFiles, runProgram, stackConfig, tempDir } from "./harness";

/* eslint-disable @typescript-eslint/no-explicit-any */
const FILE = "Pulumi.test.yaml";
const KEY = "SWMKEY-1-kJ4m3eYlNhpUQ0M9zTbD5o3aMo3vbiT+XrTWqsHy0Ls";

const base = (swarm?: unknown): RawConfig => ({
    ssh: { privateKeyFile: "/tmp/key" },
    nodes: [
        { hostname: "vm1", address: "10.0.0.1", role: "manager" },
        { hostname: "vm2", address: "10.0.0.2", role: "worker" },
    ],
    ...(swarm !== undefined ? { swarm } : {}),
});

function refused(swarm: unknown, key: string, pattern: RegExp) {
    assert.throws(() => validateClusterConfig(base(swarm), FILE), (e: Error) => {
        assert.ok(e instanceof ConfigError, `a ConfigError, got ${e}`);
        const line = e.message.split("\n").find((l) => l.startsWith(`${FILE}: dccn-swarm:${key}: `));
        assert.ok(line, `names the file and ${key}: ${e.message}`);
        assert.match(line, pattern);
        return true;
    }, `${JSON.stringify(swarm)} refused`);
}

describe("dccn-swarm:swarm security keys", () => {
    test("unset: the swarm config holds none of them (existing stacks)", () => {
        assert.deepEqual(validateClusterConfig(base(), FILE).config.swarm, { bootstrapManager: "vm1" });
        assert.deepEqual(validateClusterConfig(base({ bootstrapManager: "vm1" }), FILE).config.swarm, { bootstrapManager: "vm1" });
        assert.deepEqual(securityInputs({ bootstrapManager: "vm1" }), {});
        for (const stack of ["dev", "prod"]) {
            const c = stackConfig(stack);
            assert.equal((c["dccn-swarm:swarm"] as any)?.autolock, undefined, `the committed ${stack} config sets no autolock`);
        }
    });

    test("valid values: booleans, rotation texts (a number, a date as js-yaml reads it), durations with their unit", () => {
        const { config } = validateClusterConfig(base({
            autolock: true, rotateJoinTokens: "2026-12-07 leak", rotateUnlockKey: 3, rotateCa: new Date("2026-12-07T00:00:00Z"), nodeCertExpiry: "2160h",
        }), FILE);
        assert.deepEqual(config.swarm, {
            bootstrapManager: "vm1", autolock: true, rotateJoinTokens: "2026-12-07 leak", rotateUnlockKey: "3", rotateCa: "2026-12-07", nodeCertExpiry: 90 * 86400,
        });
        assert.equal(validateClusterConfig(base({ autolock: false, nodeCertExpiry: "90d" }), FILE).config.swarm.nodeCertExpiry, 7_776_000);
        assert.deepEqual([parseDuration("1h"), parseDuration("90m"), parseDuration("3650d")], [3600, 5400, 3650 * 86400]);
        // An empty rotation value is none.
        assert.equal(validateClusterConfig(base({ rotateCa: "" }), FILE).config.swarm.rotateCa, undefined);
    });

    test("hostile and mistaken values are refused before anything changes, naming the key and the fix", () => {
        refused({ autolock: "true" }, "swarm.autolock", /true or false written without quotes/);
        refused({ autolock: 1 }, "swarm.autolock", /true or false/);
        refused({ autoLock: true }, "swarm.autoLock", /unknown key; known keys are .*`autolock`/);
        for (const v of [{ a: 1 }, ["x"], "a\nb", "x".repeat(201), " leading", "tab\there", "\u0000"]) {
            refused({ rotateJoinTokens: v }, "swarm.rotateJoinTokens", /short text on one line .*rotateJoinTokens: 2026-12-07/);
        }
        refused({ rotateCa: { $ne: 1 } }, "swarm.rotateCa", /short text/);
        refused({ rotateUnlockKey: "x" }, "swarm.rotateUnlockKey", /set `autolock: true` as well/);
        refused({ autolock: false, rotateUnlockKey: "x" }, "swarm.rotateUnlockKey", /autolock: true/);
        for (const v of [90, "90", "30m", "59m", "3651d", "1h; rm -rf /", "-1d", "1.5h", "1w", "", "0h"]) {
            if (v === "") continue; // empty is none
            refused({ nodeCertExpiry: v }, "swarm.nodeCertExpiry", /duration from 1h to 3650d written with its unit, such as 90d or 2160h/);
        }
        // A very long value is shown shortened, not echoed whole.
        assert.throws(() => validateClusterConfig(base({ rotateCa: "y".repeat(5000) }), FILE), (e: Error) => e.message.length < 600);
    });
});

const host = (n: string, a: string) => ({ name: n, address: a, knownHosts: `${a} ssh-ed25519 AAAA` });
const ssh = { user: "root", port: 22, privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nK\n-----END OPENSSH PRIVATE KEY-----\n", connectTimeout: 10 };
const inputs = (extra: Partial<ClusterInputs> = {}): ClusterInputs => ({
    stackFile: FILE, bootstrap: "vm1", managers: [host("vm1", "10.0.0.1")], forceNewCluster: "", ssh, ...extra,
});
const state = (extra: Partial<ClusterOutputs> = {}): ClusterOutputs => ({
    ...inputs(), clusterId: "c1", recoveredFrom: "", recoveries: 0, recoveryReport: "", ...extra,
});

describe("what a change of the security keys asks of the swarm", () => {
    test("securityChange: unset changes nothing; a rotation value rotates when set and different; autolock and lifetime when they differ", () => {
        assert.deepEqual(securityChange(state(), inputs()).fields, []);
        assert.deepEqual(securityChange(state({ autolock: true, rotateCa: "a" }), inputs()).fields, [], "keys removed: nothing to do");
        const first = securityChange(state(), inputs({ rotateJoinTokens: "r1" }));
        assert.deepEqual([first.fields, first.rotateJoinTokens, first.rotateCa], [["rotateJoinTokens"], true, false], "set the first time: rotates");
        assert.deepEqual(securityChange(state({ rotateJoinTokens: "r1" }), inputs({ rotateJoinTokens: "r1" })).fields, [], "same value: no rotation");
        assert.deepEqual(securityChange(state({ rotateJoinTokens: "r1" }), inputs({ rotateJoinTokens: "r2" })).fields, ["rotateJoinTokens"]);
        const lock = securityChange(state({ autolock: false }), inputs({ autolock: true, nodeCertExpiry: 3600 }));
        assert.deepEqual([lock.autolock, lock.nodeCertExpiry, lock.fields], [true, 3600, ["autolock", "nodeCertExpiry"]]);
        assert.deepEqual(securityChange(state({ autolock: true, nodeCertExpiry: 3600 }), inputs({ autolock: true, nodeCertExpiry: 3600 })).fields, []);
        assert.deepEqual(securityChange(state({ autolock: true }), inputs({ autolock: true, rotateUnlockKey: "k2" })).fields, ["rotateUnlockKey"]);
    });

    test("securitySpec: the spec with the change, the input untouched; a CA rotation bumps ForceRotate unless one is in progress", () => {
        const spec = { Name: "default", EncryptionConfig: { AutoLockManagers: false }, CAConfig: { NodeCertExpiry: 7_776_000_000_000_000, ForceRotate: 2 }, Raft: { SnapshotInterval: 10000 } };
        const before = JSON.stringify(spec);
        const none = { rotateJoinTokens: false, rotateUnlockKey: false, rotateCa: false };
        assert.equal(securitySpec(spec, { ...none, autolock: false, nodeCertExpiry: 7_776_000 }, false), undefined, "as it is: no update");
        const on = securitySpec(spec, { ...none, autolock: true }, false);
        assert.deepEqual(on, { ...spec, EncryptionConfig: { AutoLockManagers: true } });
        const ca = securitySpec(spec, { ...none, rotateCa: true, nodeCertExpiry: 720 * 3600 }, false);
        assert.deepEqual(ca.CAConfig, { NodeCertExpiry: 720 * 3600 * 1e9, ForceRotate: 3 });
        assert.equal(ca.Raft.SnapshotInterval, 10000, "the rest of the spec is sent back as it was");
        assert.equal(securitySpec(spec, { ...none, rotateCa: true }, true), undefined, "a rotation in progress is waited for, not restarted");
        assert.equal(securitySpec(undefined, { ...none, autolock: true }, false).EncryptionConfig.AutoLockManagers, true);
        assert.equal(JSON.stringify(spec), before);
        // Large lifetimes stay exact in nanoseconds (JSON numbers).
        assert.equal(securitySpec({}, { ...none, nodeCertExpiry: 3650 * 86400 }, false).CAConfig.NodeCertExpiry, 315_360_000_000_000_000);
    });

    test("the update's query: version and the rotations, nothing else", () => {
        assert.equal(swarmUpdateQuery(42, { rotateJoinTokens: false, rotateUnlockKey: false }), "version=42");
        assert.equal(swarmUpdateQuery(7, { rotateJoinTokens: true, rotateUnlockKey: true }), "version=7&rotateWorkerToken=true&rotateManagerToken=true&rotateManagerUnlockKey=true");
    });

    test("nodes without a certificate from the current CA, by name, with whether they are ready", () => {
        const nodes = [
            { ID: "a", Description: { Hostname: "vm1", TLSInfo: { CertIssuerPublicKey: "NEW" } }, Status: { State: "ready" } },
            { ID: "b", Description: { Hostname: "vm2", TLSInfo: { CertIssuerPublicKey: "OLD" } }, Status: { State: "ready" } },
            { ID: "c", Description: { Hostname: "vm3", TLSInfo: { CertIssuerPublicKey: "OLD" } }, Status: { State: "down" } },
        ];
        assert.deepEqual(nodesWithOtherCa(nodes, "NEW"), [{ hostname: "vm2", ready: true }, { hostname: "vm3", ready: false }]);
        assert.deepEqual(nodesWithOtherCa(nodes, "OLD"), [{ hostname: "vm1", ready: true }]);
    });

    test("a message never carries the unlock key", () => {
        assert.equal(withoutSecret(`bad ${KEY} here ${KEY}`, KEY), "bad <unlock key> here <unlock key>");
        assert.equal(withoutSecret("nothing", undefined), "nothing");
    });
});

describe("the swarm resource's diff and state", () => {
    const urn = "urn:pulumi:dev::dccn-swarm::dccn-swarm:swarm:Swarm$dccn-swarm:index:SwarmCluster::swarm-cluster";
    const provider = new DccnSwarmProvider("0.0.0-test", implementations());

    test("a stack that sets none of the keys: no change, no replacement (its state as it was)", async () => {
        const d = await provider.diff("c1", urn, { clusterId: "c1", recoveredFrom: "", recoveries: 0, recoveryReport: "" }, inputs(), inputs());
        assert.deepEqual([d.changes, d.replaces, d.detailedDiff], [false, [], {}]);
        assert.deepEqual(await clusterProvider.diff!("c1", state(), inputs()), { changes: false });
    });

    test("a rotation previews as an update of exactly that field of the swarm, nothing replaced", async () => {
        for (const [extra, field] of [[{ rotateJoinTokens: "r1" }, "rotateJoinTokens"], [{ rotateCa: "2026-12" }, "rotateCa"],
            [{ autolock: true }, "autolock"], [{ nodeCertExpiry: 720 * 3600 }, "nodeCertExpiry"]] as const) {
            const d = await provider.diff("c1", urn, { clusterId: "c1", recoveredFrom: "", recoveries: 0 }, inputs(extra as Partial<ClusterInputs>), inputs());
            assert.deepEqual([d.changes, d.replaces, d.detailedDiff], [true, [], { [field]: { kind: "update" } }], field);
        }
        const again = await provider.diff("c1", urn, { clusterId: "c1", recoveredFrom: "", recoveries: 0 }, inputs({ rotateCa: "x" }), inputs({ rotateCa: "x" }));
        assert.equal(again.changes, false, "the same rotation value again: nothing");
    });

    test("the unlock key leaves the provider as a secret output; a stack without autolock has none", async () => {
        const fake = { ...implementations() };
        fake.SwarmCluster = {
            async create(i: ClusterInputs) {
                return { id: "c1", outs: { ...i, clusterId: "c1", recoveredFrom: "", recoveries: 0, recoveryReport: "", unlockKey: i.autolock ? KEY : undefined } };
            },
        };
        const p = new DccnSwarmProvider("0.0.0-test", fake);
        const locked = await p.create(urn, inputs({ autolock: true }));
        assert.ok(isSecret(locked.outs!.unlockKey), "unlockKey is secret in the state");
        assert.ok(!JSON.stringify({ ...locked.outs, unlockKey: undefined }).includes(KEY), "and nowhere else");
        const plain = await p.create(urn, inputs());
        assert.equal("unlockKey" in plain.outs!, false);
    });

    test("the program passes only the keys that are set; swarmUnlockKey is an output only with autolock", async () => {
        const c = stackConfig("dev");
        const nodes = c["dccn-swarm:nodes"] as { address: string }[];
        const { keyFile, knownHosts } = fakeSshFiles(nodes.map((n) => n.address));
        c["dccn-swarm:ssh"] = { ...(c["dccn-swarm:ssh"] as object), privateKeyFile: keyFile, knownHostsFile: knownHosts };
        c["dccn-swarm:registryPasswords"] = { admin: "A", puller: "B" };
        Object.assign(c, { "dccn-swarm:webappDbPassword": "C", "dccn-swarm:webappDbRootPassword": "D" });
        const secrets = ["dccn-swarm:registryPasswords", "dccn-swarm:webappDbPassword", "dccn-swarm:webappDbRootPassword"];
        const plain = await runProgram("dev", c, secrets);
        const cluster = plain.resources.find((r) => r.name === "swarm-cluster")!;
        assert.deepEqual(Object.keys(cluster.inputs).sort(), ["bootstrap", "forceNewCluster", "managers", "ssh", "stackFile"], "the inputs existing stacks have");
        assert.equal("swarmUnlockKey" in plain.outputs, false);

        c["dccn-swarm:swarm"] = { autolock: true, rotateJoinTokens: "r1", nodeCertExpiry: "30d" };
        const locked = await runProgram("dev", c, secrets);
        const lc = locked.resources.find((r) => r.name === "swarm-cluster")!;
        assert.deepEqual([lc.inputs.autolock, lc.inputs.rotateJoinTokens, lc.inputs.nodeCertExpiry, "rotateCa" in lc.inputs], [true, "r1", 30 * 86400, false]);
        assert.ok("swarmUnlockKey" in locked.outputs);
    });
});

describe("ops unlock and the unlock key's sources", () => {
    test("arguments: unlock with --node and --unlock-key-file; the key file only where a key is used", () => {
        const o = parseArgs(["unlock", "--stack", "dev", "--node", "vm1", "--unlock-key-file", "k"], "/p");
        assert.ok(o !== "help");
        assert.deepEqual([o.command, o.node, o.unlockKeyFile], ["unlock", "vm1", path.resolve("k")]);
        assert.throws(() => parseArgs(["backup", "--stack", "dev", "--unlock-key-file", "k"], "/p"), (e: Error) => e instanceof UsageError && /belongs to unlock, restore or reboot/.test(e.message));
        assert.throws(() => parseArgs(["unlock", "--stack", "dev", "--dry-run"], "/p"), UsageError);
    });

    test("a key file: read and checked; one that holds anything else is refused without showing it", async () => {
        const dir = tempDir("dccn-unlock-");
        const good = path.join(dir, "key");
        fs.writeFileSync(good, `${KEY}\n`, { mode: 0o600 });
        assert.equal(await unlockKeySource({ project: dir, stack: "dev", unlockKeyFile: good })(), KEY);
        const bad = path.join(dir, "bad");
        fs.writeFileSync(bad, "-----BEGIN OPENSSH PRIVATE KEY-----\nSECRET-MATERIAL\n", { mode: 0o600 });
        await assert.rejects(unlockKeySource({ project: dir, stack: "dev", unlockKeyFile: bad })(), (e: Error) =>
            /does not hold a swarm unlock key .*not shown/.test(e.message) && !e.message.includes("SECRET-MATERIAL"));
        await assert.rejects(unlockKeySource({ project: dir, stack: "dev", unlockKeyFile: path.join(dir, "missing") })(), /cannot be read: ENOENT/);
    });
});

describe("status: a locked manager and the node certificates", () => {
    const cluster = validateClusterConfig(base(), FILE).config;
    const now = Date.parse("2026-12-07T12:00:00Z") / 1000;
    const obs = (vm1: "locked" | "active"): Observation => ({
        stack: "test", environment: "test", checkedAt: "2026-12-07T12:00:00.000Z",
        probes: [
            { hostname: "vm1", reachable: true, swarm: { state: vm1, nodeId: vm1 === "active" ? "n1" : "", nodeAddr: "10.0.0.1", controlAvailable: vm1 === "active", managers: 1, engineVersion: "20.10.24" },
                certificate: { notBefore: now - 86400, notAfter: now + 89 * 86400 } },
            { hostname: "vm2", reachable: true, swarm: { state: "active", nodeId: "n2", nodeAddr: "10.0.0.2", controlAvailable: false, managers: 1, engineVersion: "20.10.24" },
                certificate: { notBefore: now - 80 * 86400, notAfter: now + 5 * 86400 } },
        ],
        ...(vm1 === "active" ? {
            snapshot: parseSnapshotOutput("vm1", [
                "@@nodes", JSON.stringify([
                    { ID: "n1", Description: { Hostname: "vm1", Engine: { EngineVersion: "20.10.24" }, TLSInfo: { CertIssuerPublicKey: "NEW" } }, Spec: { Role: "manager", Availability: "active" }, Status: { State: "ready" }, ManagerStatus: { Leader: true, Reachability: "reachable" } },
                    { ID: "n2", Description: { Hostname: "vm2", Engine: { EngineVersion: "20.10.24" }, TLSInfo: { CertIssuerPublicKey: "OLD" } }, Spec: { Role: "worker", Availability: "active" }, Status: { State: "ready" } },
                ]),
                "@@services", "[]", "@@tasks", "[]",
                "@@cluster", JSON.stringify({ Spec: { EncryptionConfig: { AutoLockManagers: true }, CAConfig: { NodeCertExpiry: 7_776_000_000_000_000 } }, TLSInfo: { CertIssuerPublicKey: "NEW" }, RootRotationInProgress: false }),
            ].join("\n")),
        } : { swarmError: "no reachable node is a swarm manager" }),
        registry: { configured: false },
    });

    test("a locked manager is Locked, a problem naming the unlock command; its certificate expiry is still shown", () => {
        const r = evaluateStatus(cluster, obs("locked"));
        const vm1 = r.nodes.find((n) => n.hostname === "vm1")!;
        assert.equal(vm1.state, "Locked");
        assert.equal(r.healthy, false);
        assert.match(r.problems[0], /^vm1 is locked \(autolock\): .*npm run ops -- unlock --stack test/);
        assert.deepEqual(r.security.lockedNodes, ["vm1"]);
        const table = renderTable(r);
        assert.match(table, /^vm1\s+10\.0\.0\.1\s+Locked\b.*2027-03-06 \(89 d\)/m);
        assert.match(table, /^SECURITY {2}unknown \(the swarm could not be read\); locked: vm1$/m);
    });

    test("certificates: expiry and days left per node, the current CA's or the previous one's, an overdue renewal warned about", () => {
        const r = evaluateStatus(cluster, obs("active"));
        assert.deepEqual(r.security, { autolock: true, caRotationInProgress: false, nodeCertExpiryDays: 90, nodesWithPreviousCa: ["vm2"], lockedNodes: [] });
        const [vm1, vm2] = r.nodes;
        assert.deepEqual(vm1.certificate, { notAfter: "2027-03-06T12:00:00.000Z", daysLeft: 89, lifetimeDays: 90, fromCurrentCa: true });
        assert.deepEqual([vm2.certificate?.daysLeft, vm2.certificate?.fromCurrentCa], [5, false]);
        assert.ok(r.warnings.some((w) => /^vm2: its swarm certificate expires .*5 days left of 85/.test(w)), r.warnings.join("\n"));
        assert.ok(r.warnings.some((w) => /vm2: certificate not issued by the swarm's current CA/.test(w)));
        const table = renderTable(r);
        assert.match(table, /^SECURITY {2}autolock on, node certificates valid 90 days, root CA steady, previous CA on vm2$/m);
        assert.match(table, /^vm2 .*\(5 d\) \[previous CA\]/m);
        // Expired: a problem.
        const o = obs("active");
        o.probes[1].certificate = { notBefore: now - 91 * 86400, notAfter: now - 3600 };
        assert.ok(evaluateStatus(cluster, o).problems.some((p) => /^vm2: its swarm certificate expired/.test(p)));
    });

    test("parsers: the certificate script's output, the cluster section (optional in a snapshot)", () => {
        assert.deepEqual(parseNodeCertOutput("not_before=100\nnot_after=200\n"), { notBefore: 100, notAfter: 200 });
        assert.deepEqual(parseNodeCertOutput("error=no certificate file /x\n"), { error: "no certificate file /x" });
        assert.deepEqual(parseNodeCertOutput("not_before=\nnot_after=\n"), { error: "its expiry date could not be read" });
        assert.equal(parseClusterInfo(null), undefined);
        assert.equal(parseSnapshotOutput("m", "@@nodes\n[]\n@@services\n[]\n@@tasks\n[]\n").cluster, undefined);
        assert.equal(parseSnapshotOutput("m", "@@nodes\n[]\n@@services\n[]\n@@tasks\n[]\n@@cluster\nnot json\n").cluster, undefined);
    });
});

describe("swarm-restore.sh unlocks a restored autolocked swarm with the key it never shows", () => {
    const REPO = path.resolve(__dirname, "..", "..");

    /**
     * A node stand-in whose engine is locked after every start until `docker swarm unlock` reads
     * `accepts` on stdin, while autolock is on (`docker swarm update --autolock=false` turns it off).
     * `quorum: false`: the restored swarm has no leader on this node alone (a backup of several managers).
     */
    function node(accepts: string, quorum = true) {
        const root = tempDir("dccn-restore-lock-");
        const bin = path.join(root, "bin");
        fs.mkdirSync(bin);
        fs.mkdirSync(path.join(root, "docker"));
        const log = path.join(root, "calls");
        fs.writeFileSync(log, "");
        const locked = path.join(root, "locked");
        const autolock = path.join(root, "autolock");
        fs.writeFileSync(autolock, "");
        fs.writeFileSync(path.join(bin, "systemctl"), `#!/bin/sh\necho "systemctl $*" >>${log}\ncase "$*" in *start*) [ ! -e ${autolock} ] || touch ${locked} ;; esac\n`, { mode: 0o755 });
        fs.writeFileSync(path.join(bin, "docker"), [
            "#!/bin/bash",
            // Every call's arguments and environment are logged: the key must appear in neither.
            `{ echo "docker $*"; env; } >>${log}`,
            'case "$*" in',
            `  "swarm unlock") k=$(cat); if [ "$k" = ${JSON.stringify(accepts)} ]; then rm -f ${locked}; else echo "Error response from daemon: invalid key" >&2; exit 1; fi ;;`,
            `  *LocalNodeState*) if [ -e ${locked} ]; then echo locked; else echo active; fi ;;`,
            `  "node ls -q") [ -e ${locked} ] && exit 1; ${quorum ? "" : "exit 1;"} echo n1 ;;`,
            `  "swarm update --autolock=false") rm -f ${autolock} ;;`,
            `  "swarm init --force-new-cluster"*) [ -e ${autolock} ] && { echo "Error response from daemon: Swarm is encrypted and needs to be unlocked" >&2; exit 1; }; true ;;`,
            "  *NodeID*) echo node1 ;;",
            "  *Cluster.ID*) echo cluster1 ;;",
            "esac",
            "",
        ].join("\n"), { mode: 0o755 });
        fs.writeFileSync(path.join(bin, "ip"), "#!/bin/sh\n", { mode: 0o755 });
        const src = path.join(root, "src");
        fs.mkdirSync(path.join(src, "swarm", "raft"), { recursive: true });
        fs.mkdirSync(path.join(src, "swarm", "certificates"));
        const archive = spawnSync("tar", ["-C", src, "-czf", "-", "swarm"]).stdout;
        const run = (key?: string) => spawnSync("bash", [path.join(REPO, "scripts", "swarm-restore.sh")], {
            env: { PATH: `${bin}:/usr/bin:/bin`, SWARM_DIR: path.join(root, "docker", "swarm"), WAIT_TIMEOUT: "3", ADVERTISE_ADDR: "10.0.0.1", ...(key ? { UNLOCK_KEY: key } : {}) },
            input: archive, encoding: "utf8",
        });
        return { run, log: () => fs.readFileSync(log, "utf8") };
    }

    test("the right key: unlocked, autolock turned off before --force-new-cluster (Docker cannot re-initialise a locked state); the key in no argument, environment or output", () => {
        const n = node(KEY);
        const r = n.run(KEY);
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, /DCCN_RESULT changed=1 .*node_id=node1 cluster_id=cluster1 autolock_turned_off=1$/m);
        const calls = n.log().split("\n").filter((l) => /^docker swarm (unlock|update|init)/.test(l));
        assert.deepEqual(calls.map((c) => c.split(" --advertise-addr")[0]), ["docker swarm unlock", "docker swarm update --autolock=false", "docker swarm init --force-new-cluster"]);
        for (const [what, text] of [["stdout", r.stdout], ["stderr", r.stderr], ["docker's arguments and environment", n.log()]]) {
            assert.ok(!text.includes(KEY), `the key is not in ${what}`);
        }
    });

    test("no key or a wrong one: it stops locked (error=locked), saying what to do, without the key", () => {
        const none = node(KEY).run();
        assert.equal(none.status, 1);
        assert.match(none.stdout, /DCCN_RESULT changed=1 error=locked/);
        assert.match(none.stderr, /locked \(autolock\) and no unlock key was given/);
        const wrong = "SWMKEY-1-wrongwrongwrongwrongwrongwrongwrongwrong00";
        const r = node(KEY).run(wrong);
        assert.equal(r.status, 1);
        assert.match(r.stderr, /docker swarm unlock refused the key \(Error response from daemon: invalid key\): the backup was made with another key/);
        assert.ok(!r.stderr.includes(wrong) && !r.stdout.includes(wrong));
    });

    test("an autolocked backup of several managers (no quorum on this node alone): refused before the re-initialisation, left unlocked", () => {
        const n = node(KEY, false);
        const r = n.run(KEY);
        assert.equal(r.status, 1);
        assert.match(r.stdout, /DCCN_RESULT changed=1 error=locked/);
        assert.match(r.stderr, /this node alone has no quorum .*Docker cannot re-initialise it/);
        assert.ok(!n.log().includes("swarm init --force-new-cluster"), "no --force-new-cluster that would leave the node out of any swarm");
    });
});
