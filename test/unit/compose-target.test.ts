// Which docker stack deploy a stack's compose file is held to (compose/target.ts): a pinned engine
// version's CLI rules, else the newest with what the file needs of the engine (spec.requires), and
// the message the stack providers refuse an older engine with (lib/stack-providers.ts engineRefusal).
//
// Run: node --import tsx --test test/unit/compose-target.test.ts
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { ComposeError, loadStack, type StackSpec } from "../../compose";
import { Stack } from "../../components/stack";
import { engineRefusal } from "../../lib/stack-providers";
import { captureRegistrations, type MockResource } from "./harness";

let dir = "";
before(() => (dir = mkdtempSync(path.join(tmpdir(), "dccn-target-"))));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(text: string): string {
    const f = path.join(dir, `c${n++}.yml`);
    writeFileSync(f, text);
    return f;
}

const body = "services:\n  web:\n    image: nginx:1.25\n";
const hosts = (s: StackSpec) => ((s.services[0].spec.TaskTemplate as Record<string, any>).ContainerSpec.Hosts); // eslint-disable-line @typescript-eslint/no-explicit-any

describe("a stack without a pinned engine version (dev)", () => {
    it("a file every CLI reads alike needs nothing", () => {
        const { spec } = loadStack(file(`version: "3.8"\n${body}`), { stackName: "st" });
        assert.equal(spec.requires, undefined);
        for (const s of ["webapp", "data-stager"]) {
            const r = loadStack(path.resolve(__dirname, "..", "..", "stacks", s, "docker-compose.yml"), { stackName: s, env: {} });
            assert.equal(r.spec.requires, undefined, `stacks/${s} deploys on 20.10 engines as it is`);
        }
    });

    it("a file without version is converted and needs docker CLI 26.1's rules: the key, 20.10's reason and fix are kept", () => {
        const f = file(body);
        const { spec, loaded } = loadStack(f, { stackName: "st" });
        assert.equal(loaded.version, "3.13", "read with the newest rules (28.2)");
        assert.equal(spec.services[0].name, "st_web");
        assert.deepEqual(spec.requires, {
            cli: "26.1", olderCli: "20.10", file: f, key: "version",
            reason: "missing: docker stack deploy (docker CLI 20.10) reads a file without `version` as compose 1.0 and refuses it (unsupported Compose file version: 1.0)",
            fix: 'add version: "3.9" (or the 3.x version the file is written for) at the top',
        });
    });

    it("is read with the newest rules that read it: `tty: yes` (YAML 1.1, a string to 28.2) with 26.1's, needing nothing", () => {
        const { loaded, spec } = loadStack(file(`version: "3.9"\n${body}    tty: yes\n`), { stackName: "st" });
        assert.equal(loaded.services[0].tty, true);
        assert.equal(spec.requires, undefined);
        // Read by none: the newest CLI's refusal.
        assert.throws(() => loadStack(file(`version: "3.14"\n${body}`), { stackName: "st" }), /3\.14 is not supported by docker stack deploy \(docker CLI 28\.2\), which reads 3\.0 to 3\.13/);
    });

    it("a 3.13 file needs 28.2's rules, with 26.1's reason", () => {
        const r = loadStack(file(`version: "3.13"\n${body}    oom_score_adj: 10\n`), { stackName: "st" }).spec.requires;
        assert.equal(r?.cli, "28.2");
        assert.equal(r?.olderCli, "26.1");
        assert.equal(r?.key, "version");
        assert.match(r!.reason, /3\.13 is not supported by docker stack deploy \(docker CLI 26\.1\)/);
    });

    it("a swarm job in a 3.9 file needs 26.1 (20.10 refuses the mode), naming deploy.mode", () => {
        const r = loadStack(file(`version: "3.9"\n${body}    deploy: {mode: replicated-job}\n`), { stackName: "st" }).spec.requires;
        assert.equal(r?.cli, "26.1");
        assert.equal(r?.key, "services.web.deploy.mode");
        assert.match(r!.reason, /Unknown mode: replicated-job/);
    });

    it("extra_hosts that 20.10 converts otherwise (host=ip, [IPv6]) need 26.1, naming the service and the field", () => {
        const f = file(`version: "3.9"\n${body}    extra_hosts: ["eq=10.0.0.9", "v6:[::1]", "ok:10.0.0.1"]\n`);
        const { spec } = loadStack(f, { stackName: "st" });
        assert.deepEqual(hosts(spec), ["10.0.0.9 eq", "::1 v6", "10.0.0.1 ok"], "26.1's transformHostsList");
        assert.equal(spec.requires?.cli, "26.1");
        assert.equal(spec.requires?.key, "services.web");
        assert.match(spec.requires!.reason, /converts it otherwise: TaskTemplate\.ContainerSpec\.Hosts would be \["\[::1\] v6","10\.0\.0\.1 ok"\], not \["10\.0\.0\.9 eq","::1 v6","10\.0\.0\.1 ok"\]/);
        assert.match(spec.requires!.fix, /extra_hosts as host:ip/);
        // 20.10's own conversion, pinned: the entry without ':' dropped with a warning, the brackets kept.
        const pinned = loadStack(f, { stackName: "st", engineVersion: "20.10.24" }).spec;
        assert.deepEqual(hosts(pinned), ["[::1] v6", "10.0.0.1 ok"]);
        assert.ok(pinned.warnings.some((w) => w.key === "services.web.extra_hosts[0]"));
        assert.equal(pinned.requires, undefined);
    });
});

describe("a stack with a pinned engine version (prod: 20.10.24)", () => {
    it("is held to that engine's CLI at preview: a file without version is refused with the file, key and fix", () => {
        const f = file(body);
        assert.throws(() => loadStack(f, { stackName: "st", engineVersion: "20.10.24" }), (e: unknown) => {
            assert.ok(e instanceof ComposeError);
            assert.equal(e.file, f);
            assert.equal(e.key, "version");
            assert.match(e.fix, /add version: "3\.9"/);
            return true;
        });
    });

    it("pinned to 26.1.5, a version-less file is read as 3.12 and still records the need (a pin that does not match the swarm is caught there)", () => {
        const { loaded, spec } = loadStack(file(body), { stackName: "st", engineVersion: "26.1.5" });
        assert.equal(loaded.version, "3.12");
        assert.equal(spec.requires?.cli, "26.1");
        assert.throws(() => loadStack(file(`version: "3.13"\n${body}`), { stackName: "st", engineVersion: "26.1.5" }), /3\.13 is not supported by docker stack deploy \(docker CLI 26\.1\)/);
    });

    it("an engine between known CLIs (25.0) or older than 20.10 is held to 20.10's rules", () => {
        assert.throws(() => loadStack(file(body), { stackName: "st", engineVersion: "25.0.3" }), /docker CLI 20\.10/);
        assert.throws(() => loadStack(file(body), { stackName: "st", engineVersion: "19.03.15" }), /docker CLI 20\.10/);
        assert.equal(loadStack(file(`version: "3.8"\n${body}`), { stackName: "st", engineVersion: "20.10.24" }).spec.requires, undefined);
    });
});

describe("the providers' refusal (lib/stack-providers.ts engineRefusal)", () => {
    const f = path.join("/srv", "stack.yml");
    const requires = { cli: "26.1", olderCli: "20.10", file: f, key: "version", reason: "missing: ...", fix: 'add version: "3.9"' };

    it("refuses an engine held to older rules, naming the file, key, manager, engine version and fix", () => {
        const why = engineRefusal(requires, "20.10.24+dfsg1", "vm1");
        assert.ok(why);
        assert.match(why, /^\/srv\/stack\.yml: version: the swarm's manager vm1 runs Docker 20\.10\.24\+dfsg1, whose docker stack deploy \(docker CLI 20\.10 rules\)/);
        assert.match(why, /\(fix: add version: "3\.9"; or run the stack on a swarm of Docker 26\.1 or later\)$/);
        assert.ok(engineRefusal(requires, "25.0.3", "vm1"), "25.0 is held to 20.10's rules");
        assert.ok(engineRefusal(requires, "", "vm1"), "an engine that does not say its version");
    });

    it("lets an engine of 26.1 or later through", () => {
        assert.equal(engineRefusal(requires, "26.1.5+dfsg1", "vm1"), undefined);
        assert.equal(engineRefusal(requires, "28.2.2", "vm1"), undefined);
    });
});

describe("what the file needs reaches the stack's resources (components/stack.ts), whose providers check it", () => {
    const MANAGERS = [{ name: "vm1", address: "172.28.213.11", knownHosts: "172.28.213.11 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUnitTestHostKey0" }];
    const SSH = { user: "root", port: 22, privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nUNIT-TARGET-KEY\n-----END OPENSSH PRIVATE KEY-----\n", connectTimeout: 10 };

    async function graph(spec: StackSpec): Promise<MockResource[]> {
        await pulumi.runtime.setMocks({ newResource: (a) => ({ id: `${a.name}-id`, state: { ...a.inputs } }), call: (a) => a.inputs }, "dccn-swarm", "unit", false);
        const out = captureRegistrations();
        try {
            new Stack("app", { spec, managers: MANAGERS, ssh: SSH });
            await new Promise((r) => setTimeout(r, 200));
        } finally {
            await pulumi.runtime.disconnect();
        }
        return out.filter((r) => r.parent === "app");
    }

    it("every network, secret, config and service of a version-less file carries it; a file every CLI reads alike adds nothing", async () => {
        writeFileSync(path.join(dir, "conf.txt"), "x\n");
        const text = `${body}    configs: [c]\nconfigs:\n  c:\n    file: ./conf.txt\n`;
        const needs = loadStack(file(text), { stackName: "app" }).spec;
        const rs = await graph(needs);
        assert.deepEqual(rs.map((r) => r.type.split(":").pop()).sort(), ["SwarmConfig", "SwarmNetwork", "SwarmService"]);
        for (const r of rs) assert.deepEqual(r.inputs.requires, needs.requires, r.name);
        assert.equal(needs.requires?.key, "version");

        const plain = await graph(loadStack(file(`version: "3.8"\n${text}`), { stackName: "app" }).spec);
        for (const r of plain) assert.equal("requires" in r.inputs, false, `${r.name}: no new input, so existing stacks show no change`);
    });
});
