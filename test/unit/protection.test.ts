/**
 * Production protection (lib/protection.ts) under Pulumi's mocks: outside `dev` the swarm, every
 * membership and service, the registry's keys and generated secret values are registered with
 * `protect`; `allowDestroy: true` lifts exactly that and changes nothing else (same names, types and
 * inputs: nothing is replaced); bad values are refused naming the stack file, key and fix.
 */
import { describe, it } from "node:test";
import * as assert from "node:assert/strict";
import { fakeSshFiles, type MockResource, runProgram, stackConfig } from "./harness";
import { validateProtection } from "../../lib/protection";

const SECRETS = ["dccn-swarm:registryPasswords", "dccn-swarm:webappDbPassword", "dccn-swarm:webappDbRootPassword"];
const DB = { "dccn-swarm:webappDbPassword": "UNIT-DB-PW", "dccn-swarm:webappDbRootPassword": "UNIT-DB-ROOT-PW" };

/** The dev stack file as another environment would have it (`staging`: the lab under another name). */
function labConfig(environment: string, extra: Record<string, unknown> = {}) {
    const c = stackConfig("dev");
    const nodes = c["dccn-swarm:nodes"] as { address: string }[];
    const { keyFile, knownHosts } = fakeSshFiles(nodes.map((n) => n.address));
    c["dccn-swarm:ssh"] = { ...(c["dccn-swarm:ssh"] as object), privateKeyFile: keyFile, knownHostsFile: knownHosts };
    c["dccn-swarm:registryPasswords"] = { admin: "A-PW", puller: "P-PW" };
    // A generated value: the data-stager's or webapp's secret from { generate: true } when present.
    Object.assign(c, DB, { "dccn-swarm:environment": environment }, extra);
    return c;
}

const PROTECTED_TYPES = ["SwarmCluster", "SwarmMember", "SwarmService", "RegistryPki", "GeneratedValue"].map((t) => `dccn-swarm:index:${t}`);
const custom = (rs: MockResource[]) => rs.filter((r) => r.type.startsWith("dccn-swarm:index:"));
const shape = (rs: MockResource[]) => custom(rs).map((r) => `${r.type}/${r.name}/${JSON.stringify(r.inputs)}`).sort();

describe("production protection", () => {
    it("dev: nothing is protected", async () => {
        const { resources, outputs } = await runProgram("dev", labConfig("dev"), SECRETS);
        assert.deepEqual(resources.filter((r) => r.protect).map((r) => r.name), []);
        assert.equal(outputs.protectedFromDestroy, false);
    });

    it("staging: the swarm, memberships, services, registry keys and generated values are protected; nothing else", async () => {
        const { resources, outputs } = await runProgram("staging", labConfig("staging"), SECRETS);
        assert.equal(outputs.protectedFromDestroy, true);
        for (const r of custom(resources)) {
            assert.equal(r.protect, PROTECTED_TYPES.includes(r.type), `${r.type} ${r.name}: protect ${r.protect}`);
        }
        const names = (t: string) => resources.filter((r) => r.protect && r.type === `dccn-swarm:index:${t}`).map((r) => r.name).sort();
        assert.deepEqual(names("SwarmCluster"), ["swarm-cluster"]);
        assert.deepEqual(names("SwarmMember"), ["swarm-vm1", "swarm-vm2", "swarm-vm3"]);
        assert.deepEqual(names("RegistryPki"), ["registry-pki"]);
        assert.ok(names("SwarmService").includes("registry-service"));
        assert.ok(names("SwarmService").includes("webapp-db"), "the stateful database");
        // Content-named secrets and configs are replaced on every change: never protected.
        assert.ok(resources.some((r) => r.type === "dccn-swarm:index:SwarmSecret" && !r.protect));
        // Components carry no protection of their own (children would inherit it).
        assert.deepEqual(resources.filter((r) => r.protect && !r.type.startsWith("dccn-swarm:index:")).map((r) => r.name), []);
    });

    it("prod (the committed stack file) is protected", async () => {
        const c = stackConfig("prod");
        c["dccn-swarm:sshPrivateKey"] = "-----BEGIN OPENSSH PRIVATE KEY-----\nPROD-KEY\n-----END OPENSSH PRIVATE KEY-----\n";
        c["dccn-swarm:registryPasswords"] = { admin: "PROD-ADMIN-PW", "swarm-pull": "PROD-PULL-PW" };
        Object.assign(c, DB);
        const { resources } = await runProgram("prod", c, ["dccn-swarm:sshPrivateKey", ...SECRETS]);
        assert.equal(resources.filter((r) => r.type === "dccn-swarm:index:SwarmMember" && r.protect).length, 8);
        assert.ok(resources.find((r) => r.name === "swarm-cluster")?.protect);
    });

    it("allowDestroy: true lifts exactly the protection: same resources, same inputs (nothing to replace)", async () => {
        const guarded = await runProgram("staging", labConfig("staging"), SECRETS);
        const lifted = await runProgram("staging", labConfig("staging", { "dccn-swarm:allowDestroy": "true" }), SECRETS);
        assert.deepEqual(lifted.resources.filter((r) => r.protect).map((r) => r.name), []);
        assert.equal(lifted.outputs.protectedFromDestroy, false);
        assert.deepEqual(shape(lifted.resources), shape(guarded.resources));
        const back = await runProgram("staging", labConfig("staging", { "dccn-swarm:allowDestroy": "false" }), SECRETS);
        assert.deepEqual(back.resources.filter((r) => r.protect).map((r) => r.name).sort(), guarded.resources.filter((r) => r.protect).map((r) => r.name).sort());
    });

    it("a bad allowDestroy or lockWait stops the program naming the stack file, the key and the fix", async () => {
        await assert.rejects(runProgram("staging", labConfig("staging", { "dccn-swarm:allowDestroy": "yes" }), SECRETS),
            /Pulumi\.staging\.yaml: dccn-swarm:allowDestroy: must be true or false, got "yes".*pulumi config set --stack staging allowDestroy true/);
        await assert.rejects(runProgram("staging", labConfig("staging", { "dccn-swarm:lockWait": "soon" }), SECRETS),
            /Pulumi\.staging\.yaml: dccn-swarm:lockWait: must be a whole number of seconds/);
    });

    it("validateProtection: dev never protected; a warning while lifted elsewhere", () => {
        assert.equal(validateProtection("dev", undefined, "Pulumi.dev.yaml").protection.protect, false);
        assert.equal(validateProtection("dev", "true", "Pulumi.dev.yaml").findings.length, 0);
        assert.equal(validateProtection("prod", undefined, "Pulumi.prod.yaml").protection.protect, true);
        assert.equal(validateProtection("prod", false, "Pulumi.prod.yaml").protection.protect, true);
        const lifted = validateProtection("prod", true, "Pulumi.prod.yaml");
        assert.equal(lifted.protection.protect, false);
        assert.equal(lifted.findings[0].level, "warning");
        assert.match(lifted.findings[0].message, /pulumi config rm --stack prod allowDestroy/);
        for (const bad of ["1", "TRUE ", "on", 1, {}]) assert.equal(validateProtection("prod", bad, "Pulumi.prod.yaml").findings[0]?.level, "error", String(bad));
    });
});
