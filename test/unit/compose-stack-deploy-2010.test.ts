/**
 * What `npm run parity` found where the conversion differed from docker stack deploy of docker CLI
 * 20.10 (Debian's docker.io, on the lab's nodes and DCCN's): compose version rules, extra_hosts,
 * template drivers, max_failure_ratio. The compose files in test/fixtures/compose/ are the ones
 * `npm run parity` compared identical (README: Parity); here the conversion of each is pinned. Also
 * the per-environment overrides the data-stager needs on the lab, and the parity tool's choice of
 * docker CLI.
 */
import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { ComposeError, convertStack, LATEST_CLI, loadCompose, type JsonObject, type StackOverrides } from "../../compose";
import { engineStack } from "../../lib/engine-spec";
import { ConfigError } from "../../lib/cluster-config";
import { validateStacks } from "../../lib/stacks-config";
import { pickDockerCli } from "../../tools/parity";

const FIXTURES = path.resolve(__dirname, "..", "fixtures", "compose");
const STAGER = path.resolve(__dirname, "..", "..", "stacks", "data-stager", "docker-compose.yml");

function file(text: string, extra: Record<string, string> = {}): string {
    const dir = mkdtempSync(path.join(tmpdir(), "compose-2010-"));
    for (const [n, t] of Object.entries(extra)) writeFileSync(path.join(dir, n), t);
    const f = path.join(dir, "c.yml");
    writeFileSync(f, text);
    return f;
}

function rejects(f: () => unknown, key: string, message: RegExp): void {
    assert.throws(f, (e: unknown) => {
        assert.ok(e instanceof ComposeError, String(e));
        assert.equal(e.key, key);
        assert.match(e.message, message);
        return true;
    });
}

describe("compose versions as docker CLI 20.10 reads them (the default)", () => {
    const body = "services:\n  web:\n    image: nginx:1.25\n";

    it("a file without version is refused, naming the fix; the later CLIs read it as 3.13", () => {
        const f = file(body);
        rejects(() => loadCompose(f, { stackName: "st" }), "version", /docker CLI 20\.10\) reads a file without `version` as compose 1\.0.*add version: "3\.9"/);
        assert.equal(loadCompose(f, { stackName: "st", cli: LATEST_CLI }).version, "3.13");
    });

    it("\"3\" is 3.0: a key of 3.1 is refused as in the CLI's 3.0 schema", () => {
        assert.equal(loadCompose(file(`version: "3"\n${body}`), { stackName: "st" }).version, "3.0");
        rejects(() => loadCompose(file(`version: "3"\n${body}    secrets: [s]\nsecrets:\n  s:\n    file: ./s\n`, { s: "x" }), { stackName: "st" }),
            "secrets", /3\.1/);
    });

    it("3.9 is read; 3.10 and later are refused (a later CLI reads them)", () => {
        assert.equal(loadCompose(file(`version: "3.9"\n${body}`), { stackName: "st" }).version, "3.9");
        rejects(() => loadCompose(file(`version: "3.10"\n${body}`), { stackName: "st" }), "version", /3\.10 is not supported by docker stack deploy \(docker CLI 20\.10\), which reads 3\.0 to 3\.9.*use version: "3\.9"/);
        assert.equal(loadCompose(file(`version: "3.10"\n${body}`), { stackName: "st", cli: LATEST_CLI }).version, "3.10");
    });

    it("a service network's driver_opts is in no schema 20.10 reads (found by npm run parity; 3.13 has it)", () => {
        const f = file(`version: "3.9"\nservices:\n  web:\n    image: nginx:1.25\n    networks:\n      back: {driver_opts: {a: b}}\nnetworks:\n  back: {}\n`);
        rejects(() => loadCompose(f, { stackName: "st" }), "services.web.networks.back.driver_opts",
            /came with compose file format 3\.13, and docker stack deploy \(docker CLI 20\.10\) reads 3\.0 to 3\.9 only/);
    });

    it("nor oom_score_adj", () => {
        rejects(() => loadCompose(file(`version: "3.9"\nservices:\n  web:\n    image: nginx:1.25\n    oom_score_adj: 100\n`), { stackName: "st" }),
            "services.web.oom_score_adj", /3\.13/);
    });

    it("the stacks of this project declare a version 20.10 reads", () => {
        for (const s of ["webapp", "data-stager"]) {
            const v = loadCompose(path.resolve(__dirname, "..", "..", "stacks", s, "docker-compose.yml"), { stackName: s }).version;
            assert.match(v, /^3\.[0-9]$/);
        }
    });
});

describe("swarm jobs (deploy.mode replicated-job / global-job)", () => {
    const jobs = 'version: "3.9"\nservices:\n  once:\n    image: alpine\n    deploy:\n      mode: replicated-job\n      replicas: 3\n' +
        "  each:\n    image: alpine\n    deploy:\n      mode: global-job\n  one:\n    image: alpine\n    deploy:\n      mode: replicated-job\n";
    const modes = (overrides: StackOverrides = {}) => Object.fromEntries(
        convertStack(loadCompose(file(jobs), { stackName: "st", cli: LATEST_CLI }), overrides).services.map((s) => [s.key, s.spec.Mode]));

    it("are refused as docker stack deploy of CLI 20.10 refuses them, with its message", () => {
        rejects(() => loadCompose(file(jobs), { stackName: "st" }), "services.each.deploy.mode",
            /refused by docker stack deploy \(docker CLI 20\.10\): "Unknown mode: global-job".*docker CLI 23/);
    });

    it("convert as CLI 23 on does: replicas is both MaxConcurrent and TotalCompletions, unset leaves the engine's defaults", () => {
        assert.deepEqual(modes(), {
            each: { GlobalJob: {} },
            once: { ReplicatedJob: { MaxConcurrent: 3, TotalCompletions: 3 } },
            one: { ReplicatedJob: {} },
        });
    });

    it("overrides.replicas sets a replicated job's count, and is refused for a global job", () => {
        assert.deepEqual(modes({ replicas: { one: 2 } }).one, { ReplicatedJob: { MaxConcurrent: 2, TotalCompletions: 2 } });
        rejects(() => modes({ replicas: { each: 2 } }), "overrides.replicas.each", /global-job.*replicas do not apply/);
    });

    it("a global job with replicas is refused, as the CLI refuses it", () => {
        const f = file('version: "3.9"\nservices:\n  each:\n    image: alpine\n    deploy:\n      mode: global-job\n      replicas: 2\n');
        rejects(() => loadCompose(f, { stackName: "st", cli: LATEST_CLI }), "services.each.deploy.replicas", /replicated or replicated-job mode/);
    });
});

describe("extra_hosts (test/fixtures/compose/extra-hosts.yml)", () => {
    const spec = convertStack(loadCompose(path.join(FIXTURES, "extra-hosts.yml"), { stackName: "st" }));
    const hosts = (svc: string) => engineStack(spec).services.find((s) => s.key === svc)!.spec.TaskTemplate as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

    it("a list keeps the file's order, split at the first ':' (IPv6 keeps its colons and brackets)", () => {
        assert.deepEqual(hosts("web").ContainerSpec.Hosts, ["10.0.0.9 zeta", "10.0.0.1 alpha", "[::1] v6", "::2 v6plain"]);
    });

    it("a mapping is host:ip strings in string order (`a-b:` before `a:`, as Go sorts them)", () => {
        assert.deepEqual(hosts("api").ContainerSpec.Hosts, ["10.0.0.2 a-b", "10.0.0.3 a", "::1 v6", "10.0.0.9 zeta"]);
    });

    it("entries without ':' are ignored, each with a warning naming it", () => {
        const w = spec.warnings.filter((x) => /extra_hosts/.test(x.key));
        assert.deepEqual(w.map((x) => x.key), ["services.web.extra_hosts[4]", "services.web.extra_hosts[5]"]);
        assert.match(w[0].message, /"eq=10\.0\.0\.8" has no ':' and is ignored, as docker stack deploy \(docker CLI 20\.10\) ignores it/);
    });
});

describe("template_driver and secret drivers (test/fixtures/compose/template-driver.yml)", () => {
    const spec = convertStack(loadCompose(path.join(FIXTURES, "template-driver.yml"), { stackName: "st" }));
    const eng = engineStack(spec);

    it("are sent as Templating, as the CLI sends them", () => {
        assert.deepEqual(eng.secrets[0].spec.Templating, { Name: "golang" });
        assert.deepEqual(eng.configs[0].spec.Templating, { Name: "golang" });
        assert.equal(eng.secrets[0].spec.Driver, undefined);
    });

    it("name the object with the content: the same content without a template driver is another name", () => {
        const plain = convertStack(loadCompose(file(`version: "3.8"
services:
  web: {image: nginx:1.25, secrets: [token]}
secrets:
  token: {file: ./t.txt}
`, { "t.txt": "token for {{ .Service.Name }}\n" }), { stackName: "st" }));
        assert.equal(plain.secrets[0].sha256, spec.secrets[0].sha256, "same content");
        assert.notEqual(plain.secrets[0].name, spec.secrets[0].name);
        assert.match(spec.secrets[0].name, /^st_token-[0-9a-f]{8}$/);
    });

    it("a secret driver with options is the Driver", () => {
        const s = convertStack(loadCompose(file(`version: "3.8"
services:
  web: {image: nginx:1.25, secrets: [vault]}
secrets:
  vault: {file: ./v.txt, driver: vault-plugin, driver_opts: {path: /kv/app}}
`, { "v.txt": "x" }), { stackName: "st" }));
        assert.deepEqual(engineStack(s).secrets[0].spec.Driver, { Name: "vault-plugin", Options: { path: "/kv/app" } });
    });
});

describe("max_failure_ratio (test/fixtures/compose/failure-ratio.yml)", () => {
    it("is a float32 as the engine reads it back", () => {
        const eng = engineStack(convertStack(loadCompose(path.join(FIXTURES, "failure-ratio.yml"), { stackName: "st" })));
        const ratio = (svc: string, k: "UpdateConfig" | "RollbackConfig") =>
            (eng.services.find((s) => s.key === svc)!.spec[k] as Record<string, unknown>).MaxFailureRatio;
        assert.equal(ratio("web", "UpdateConfig"), 0.25);
        assert.equal(ratio("web", "RollbackConfig"), 0.12345679);
        assert.equal(ratio("api", "UpdateConfig"), 1);
        assert.equal(ratio("api", "RollbackConfig"), 0.1);
    });
});

describe("the data-stager's dev overrides", () => {
    const dev: StackOverrides = {
        images: { db: "dccn-lab/redis:7", service: "dccn-lab/stager:2", ui: "dccn-lab/stager-ui:2" },
        bindPaths: { "/mnt/docker/data/stager": "/srv/dccn-lab/stager", "/project": "/srv/dccn-lab/project", "/var/lib/sss": "/srv/dccn-lab/sss" },
        createBindPaths: true,
        publishMode: { service: "host", ui: "host" },
        endpointMode: { db: "dnsrr", service: "dnsrr", ui: "dnsrr" },
        externalSecrets: { drdr_admin_password: { generate: true } },
    };
    const spec = convertStack(loadCompose(STAGER, { stackName: "data-stager" }), dev);

    it("ports in host mode, each listed as a difference", () => {
        const ports = Object.fromEntries(spec.services.map((s) => [s.key, (s.spec.EndpointSpec as JsonObject).Ports]));
        assert.deepEqual(ports.service, [{ TargetPort: 3000, PublishedPort: 3100, Protocol: "tcp", PublishMode: "host" }]);
        assert.deepEqual(ports.ui, [{ TargetPort: 3080, PublishedPort: 3080, Protocol: "tcp", PublishMode: "host" }]);
        assert.ok(spec.differences.some((d) => /services\.ui\.ports: port 3080\/tcp is published in host mode instead of ingress/.test(d)));
    });

    it("endpoints as DNS round-robin, refused with an ingress-published port", () => {
        assert.deepEqual(spec.services.map((s) => (s.spec.EndpointSpec as JsonObject).Mode), ["dnsrr", "dnsrr", "dnsrr"]);
        assert.ok(spec.differences.some((d) => /services\.db\.deploy\.endpoint_mode: vip is deployed as dnsrr/.test(d)));
        rejects(() => convertStack(loadCompose(STAGER, { stackName: "data-stager" }), { endpointMode: { ui: "dnsrr" } }),
            "overrides.endpointMode.ui", /ingress mode.*publishMode: \{ ui: host \}/);
    });

    it("bind sources rewritten, listed for the nodes (files too: a missing one becomes a directory)", () => {
        assert.deepEqual(spec.bindSources, [
            "/srv/dccn-lab/project", "/srv/dccn-lab/sss/mc", "/srv/dccn-lab/sss/pipes", "/srv/dccn-lab/stager/config.v2",
            "/srv/dccn-lab/stager/config.v2/icat.pem", "/srv/dccn-lab/stager/ui/config", "/srv/dccn-lab/stager/ui/config/irods-webdav.pem",
            "/srv/dccn-lab/stager/ui/db", "/srv/dccn-lab/stager/ui/log",
        ]);
        assert.equal(spec.createBindPaths, true);
    });

    it("the external secret has a value the program provides; still external to the services", () => {
        assert.deepEqual(spec.providedSecrets, { drdr_admin_password: { generate: true } });
        assert.deepEqual(spec.external.secrets, ["drdr_admin_password"]);
        assert.ok(spec.differences.some((d) => /external secret drdr_admin_password is created by the program when missing/.test(d)));
    });

    it("an override naming what the file does not have is refused with the key", () => {
        const loaded = loadCompose(STAGER, { stackName: "data-stager" });
        rejects(() => convertStack(loaded, { externalSecrets: { nope: { generate: true } } }), "overrides.externalSecrets.nope", /no external secret "nope"/);
        rejects(() => convertStack(loaded, { publishMode: { db: "host" } }), "overrides.publishMode.db", /publishes no port/);
        rejects(() => convertStack(loaded, { publishMode: { web: "host" } }), "overrides.publishMode.web", /unknown service/);
    });

    it("the stack config refuses malformed overrides, naming the key and the fix", () => {
        const entry = (overrides: unknown) => [{ name: "data-stager", file: "stacks/data-stager/docker-compose.yml", overrides }];
        const refused = (overrides: unknown, key: RegExp) => assert.throws(() => validateStacks(entry(overrides), "Pulumi.dev.yaml"),
            (e: unknown) => e instanceof ConfigError && key.test(e.message));
        refused({ publishMode: { ui: "mesh" } }, /stacks\[0\]\.overrides\.publishMode\.ui: must be `host` or `ingress`/);
        refused({ createBindPaths: "yes" }, /stacks\[0\]\.overrides\.createBindPaths: must be true or false/);
        refused({ externalSecrets: { drdr_admin_password: "hunter2" } }, /externalSecrets\.drdr_admin_password: must be `\{ generate: true \}`.*pulumi config set --secret KEY/);
        refused({ externalSecrets: { drdr_admin_password: { config: "bad key!" } } }, /externalSecrets\.drdr_admin_password/);
        assert.equal(validateStacks(entry(dev), "Pulumi.dev.yaml")[0].overrides.createBindPaths, true);
    });
});

describe("parity: the docker CLI that runs docker stack deploy", () => {
    const clis = [{ path: "/usr/local/bin/docker", version: "28.2.2" }, { path: "/usr/bin/docker", version: "20.10.24+dfsg1" }];

    it("is the one of the engine's version, even when another comes first on PATH", () => {
        assert.deepEqual(pickDockerCli(clis, "20.10.24+dfsg1"), { cli: clis[1] });
        assert.deepEqual(pickDockerCli(clis, "20.10.5"), { cli: clis[1] });
    });

    it("else the first, with a note naming the versions and --docker-cli", () => {
        const p = pickDockerCli(clis, "24.0.7")!;
        assert.equal(p.cli, clis[0]);
        assert.match(p.note!, /no docker CLI of the engine's version 24\.0\.7.*docker CLI 28\.2\.2's conversion; pass --docker-cli/);
        assert.equal(pickDockerCli([], "20.10.24"), undefined);
    });
});

describe("compose files not seen before", () => {
    it("every service key the schema allows is converted, named in a warning, or rejected with the CLI's advice", () => {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { composeV3Schema } = require("../../compose/schema");
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { UNSUPPORTED, FORBIDDEN, DEPRECATED } = require("../../compose/load");
        const source = readFileSync(path.resolve(__dirname, "..", "..", "compose", "load.ts"), "utf8");
        const keys = Object.keys(composeV3Schema.definitions.service.properties);
        assert.ok(keys.length > 50);
        const unhandled = keys.filter((k) => !(UNSUPPORTED as string[]).includes(k) && !(k in FORBIDDEN) && !(k in DEPRECATED) &&
            !new RegExp(`\\bd\\.${k}\\b|"${k}"`).test(source));
        assert.deepEqual(unhandled, []);
    });
});

describe("scripts/bind-paths.sh (overrides.createBindPaths)", () => {
    const script = path.resolve(__dirname, "..", "..", "scripts", "bind-paths.sh");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const run = (root: string, input: string) => require("node:child_process").spawnSync("bash", [script], { input, encoding: "utf8", env: { ...process.env, DCCN_ROOT: root } });

    it("makes the missing paths as directories, keeps existing ones (a file too), and a second run changes nothing", () => {
        const root = mkdtempSync(path.join(tmpdir(), "bind-paths-"));
        writeFileSync(path.join(root, "icat.pem"), "pem");
        const first = run(root, "/srv/a/b\n\n/icat.pem\n/srv/c\n");
        assert.equal(first.status, 0, first.stderr);
        assert.equal(first.stdout.trim(), "DCCN_RESULT changed=1 created=2 existing=1");
        assert.equal(readFileSync(path.join(root, "icat.pem"), "utf8"), "pem");
        const again = run(root, "/srv/a/b\n/icat.pem\n/srv/c\n");
        assert.equal(again.stdout.trim(), "DCCN_RESULT changed=0 created=0 existing=3");
    });

    it("refuses a relative path, `..` or `/` before making anything", () => {
        const root = mkdtempSync(path.join(tmpdir(), "bind-paths-"));
        for (const bad of ["srv/x", "/srv/../etc", "/"]) {
            const r = run(root, `/srv/ok\n${bad}\n`);
            assert.equal(r.status, 1);
            assert.equal(r.stdout.trim(), "DCCN_RESULT changed=0 error=bad-path");
        }
        assert.deepEqual(require("node:fs").readdirSync(root), []); // eslint-disable-line @typescript-eslint/no-require-imports
    });
});
