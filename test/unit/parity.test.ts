/**
 * The comparison behind `npm run parity` (lib/parity.ts) on engine bodies shaped as a Docker 20.10
 * engine returns them (`GET /services/{id}?insertDefaults=false`, `/networks/{id}`, `/secrets`,
 * `/configs`), and the tool's arguments (tools/parity.ts). The deployments themselves run in
 * test/integration/parity.test.ts.
 */
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import {
    ALLOCATED, canonicalDeployment, canonicalNetwork, canonicalService, compareDeployments, declaredRenames, dependsOnOrder,
    diffJson, externalObjects, formatDifference, isAllocatedSubnet, outcome, rejectionDifferences, renderFile, renderReport,
    summaryLine, timeKey, type Deployed, type EngineContext, type FileResult,
} from "../../lib/parity";
import { spawnSync } from "child_process";
import { parseArgs, parseSshUrl, sshWrapper, UsageError } from "../../tools/parity";

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v));

/** One deployment of a small stack under `stack`, with its own IDs, as read back from the engine. */
function deployment(stack: string, ids: { net: string; secret: string; config: string; svc: string }, opts: { secretName?: string; digest?: boolean; portsReversed?: boolean } = {}): { d: Deployed; ctx: EngineContext } {
    const secretName = opts.secretName ?? `${stack}_token`;
    const ports = [
        { Protocol: "tcp", TargetPort: 80, PublishedPort: 8080, PublishMode: "ingress" },
        { Protocol: "udp", TargetPort: 53, PublishedPort: 5353, PublishMode: "host" },
    ];
    const service = {
        ID: ids.svc, Version: { Index: 17 }, CreatedAt: "2026-01-01T00:00:01.5Z", UpdatedAt: "2026-01-01T00:00:01.6Z",
        Spec: {
            Name: `${stack}_web`,
            Labels: { "com.docker.stack.image": "nginx:1.25", "com.docker.stack.namespace": stack },
            TaskTemplate: {
                ContainerSpec: {
                    Image: opts.digest ? "nginx:1.25@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" : "nginx:1.25",
                    Labels: { "com.docker.stack.namespace": stack },
                    Env: ["MODE=stack_value"],
                    Mounts: [{ Type: "volume", Source: `${stack}_data`, Target: "/data", VolumeOptions: { Labels: { "com.docker.stack.namespace": stack } } }],
                    Secrets: [{ File: { Name: "token", UID: "0", GID: "0", Mode: 292 }, SecretID: ids.secret, SecretName: secretName }],
                    Configs: [{ Runtime: {}, ConfigID: ids.config, ConfigName: "credspec" }],
                    Privileges: { CredentialSpec: { Config: ids.config }, SELinuxContext: null },
                    Isolation: "default",
                },
                Networks: [{ Target: ids.net, Aliases: ["web"] }],
                ForceUpdate: 0,
                Runtime: "container",
            },
            Mode: { Replicated: { Replicas: 2 } },
            EndpointSpec: { Mode: "vip", Ports: opts.portsReversed ? [...ports].reverse() : ports },
        },
    };
    const network = {
        Name: `${stack}_default`, Id: ids.net, Created: "2026-01-01T00:00:00.1Z", Scope: "swarm", Driver: "overlay", EnableIPv6: false,
        IPAM: { Driver: "default", Options: null, Config: [{ Subnet: ids.net === "n1" ? "10.0.1.0/24" : "10.0.7.0/24", Gateway: ids.net === "n1" ? "10.0.1.1" : "10.0.7.1" }] },
        Internal: false, Attachable: false, Ingress: false, ConfigFrom: { Network: "" }, ConfigOnly: false,
        Containers: { abc: { Name: "x" } }, Peers: [{ Name: "node", IP: "127.0.0.1" }],
        Options: { "com.docker.network.driver.overlay.vxlanid_list": ids.net === "n1" ? "4097" : "4100" },
        Labels: { "com.docker.stack.namespace": stack },
    };
    const secret = { ID: ids.secret, Version: { Index: 11 }, CreatedAt: "x", UpdatedAt: "y", Spec: { Name: secretName, Labels: { "com.docker.stack.namespace": stack } } };
    return {
        d: { services: [service], networks: [network], secrets: [secret], configs: [] } as unknown as Deployed,
        ctx: {
            networks: { [ids.net]: `${stack}_default`, ingress1: "ingress" },
            secrets: { [ids.secret]: secretName }, configs: { [ids.config]: "credspec" },
            addressPools: [], subnetSize: 0,
        },
    };
}

describe("canonical form", () => {
    const ref = deployment("pdab12x0", { net: "n1", secret: "s1", config: "c1", svc: "v1" });
    const ours = deployment("ppab12x0", { net: "n2", secret: "s2", config: "c2", svc: "v2" }, { digest: true, portsReversed: true });

    it("a service: IDs as names, no digest, stack name and namespace label as <stack>, other strings untouched", () => {
        const c = canonicalService(ref.d.services[0], { stack: "pdab12x0", engine: ref.ctx }) as Any;
        assert.equal(c.Name, "<stack>_web");
        assert.deepEqual(c.Labels, { "com.docker.stack.image": "nginx:1.25", "com.docker.stack.namespace": "<stack>" });
        assert.deepEqual(c.TaskTemplate.Networks, [{ Aliases: ["web"], Target: "<stack>_default" }]);
        assert.deepEqual(c.TaskTemplate.ContainerSpec.Secrets, [{ File: { GID: "0", Mode: 292, Name: "token", UID: "0" }, SecretName: "<stack>_token" }]);
        assert.deepEqual(c.TaskTemplate.ContainerSpec.Privileges.CredentialSpec, { Config: "credspec" });
        assert.equal(c.TaskTemplate.ContainerSpec.Configs[0].ConfigID, undefined);
        assert.equal(c.TaskTemplate.ContainerSpec.Mounts[0].Source, "<stack>_data");
        assert.deepEqual(c.TaskTemplate.ContainerSpec.Mounts[0].VolumeOptions.Labels, { "com.docker.stack.namespace": "<stack>" });
        // Only names that start with `<stack>_` and namespace labels are mapped; a value that merely contains the name is not.
        const env = clone(ref.d.services[0]) as Any;
        env.Spec.TaskTemplate.ContainerSpec.Env = ["STACK=pdab12x0", "NAME=pdab12x0_web"];
        env.Spec.Labels.other = "pdab12x0";
        const e = canonicalService(env, { stack: "pdab12x0", engine: ref.ctx }) as Any;
        assert.deepEqual(e.TaskTemplate.ContainerSpec.Env, ["STACK=pdab12x0", "NAME=pdab12x0_web"]);
        assert.equal(e.Labels.other, "pdab12x0");
        assert.equal(c.TaskTemplate.ForceUpdate, 0, "fields are kept, not normalised away");
        assert.equal(c.TaskTemplate.ContainerSpec.Isolation, "default");
        const pinned = canonicalService(ours.d.services[0], { stack: "ppab12x0", engine: ours.ctx }) as Any;
        assert.equal(pinned.TaskTemplate.ContainerSpec.Image, "nginx:1.25");
    });

    it("ports compare as a set; every other list keeps its order", () => {
        const a = canonicalService(ref.d.services[0], { stack: "pdab12x0", engine: ref.ctx }) as Any;
        const b = canonicalService(ours.d.services[0], { stack: "ppab12x0", engine: ours.ctx }) as Any;
        assert.deepEqual(a.EndpointSpec.Ports, b.EndpointSpec.Ports);
        const env = clone(ours.d.services[0]) as Any;
        env.Spec.TaskTemplate.ContainerSpec.Env = ["B=2", "A=1"];
        a.TaskTemplate.ContainerSpec.Env = ["A=1", "B=2"];
        const c = canonicalService(env, { stack: "ppab12x0", engine: ours.ctx });
        assert.deepEqual(diffJson(a, c).map((d) => d.path), ["TaskTemplate.ContainerSpec.Env[0]", "TaskTemplate.ContainerSpec.Env[1]"]);
    });

    it("a network: no ID, time, attachments or VXLAN ID; subnets from the default pool read <allocated>", () => {
        const c = canonicalNetwork(ref.d.networks[0], { stack: "pdab12x0", engine: ref.ctx }) as Any;
        for (const k of ["Id", "Created", "Containers", "Peers"]) assert.equal(c[k], undefined, k);
        assert.deepEqual(c.Options, {});
        assert.deepEqual(c.IPAM.Config, [{ Gateway: ALLOCATED, Subnet: ALLOCATED }]);
        assert.equal(c.Name, "<stack>_default");
        const asked = clone(ref.d.networks[0]) as Any;
        asked.IPAM.Config = [{ Subnet: "172.16.238.0/24", Gateway: "172.16.238.1" }, { Subnet: "2001:3984:3989::/64", Gateway: "2001:3984:3989::1" }];
        assert.deepEqual((canonicalNetwork(asked, { stack: "pdab12x0", engine: ref.ctx }) as Any).IPAM.Config, asked.IPAM.Config);
    });

    it("allocated subnets: inside a pool at the pool's subnet size", () => {
        assert.equal(isAllocatedSubnet("10.0.3.0/24", [], 0), true);
        assert.equal(isAllocatedSubnet("10.0.0.0/16", [], 0), false, "another size was asked for");
        assert.equal(isAllocatedSubnet("172.16.238.0/24", [], 0), false);
        assert.equal(isAllocatedSubnet("192.168.4.0/26", ["192.168.0.0/16"], 26), true);
        assert.equal(isAllocatedSubnet("10.0.3.0/24", ["192.168.0.0/16"], 24), false, "not in the configured pool");
        assert.equal(isAllocatedSubnet("2001:db8::/64", [], 0), false);
    });

    it("two deployments that differ only in stack name, IDs, allocations, digest and port order compare equal", () => {
        const a = canonicalDeployment(ref.d, { stack: "pdab12x0", engine: ref.ctx });
        const b = canonicalDeployment(ours.d, { stack: "ppab12x0", engine: ours.ctx });
        assert.deepEqual(Object.keys(a.service), ["<stack>_web"]);
        assert.deepEqual(Object.keys(a.secret), ["<stack>_token"]);
        assert.deepEqual(compareDeployments(a, b), []);
    });

    it("a difference is reported with its kind, object, path and both values", () => {
        const changed = clone(ours.d) as Any;
        changed.services[0].Spec.TaskTemplate.ContainerSpec.Hosts = ["10.1.1.1 b", "10.1.1.2 a"];
        changed.services[0].Spec.Mode = { Replicated: { Replicas: 3 } };
        const refHosts = clone(ref.d) as Any;
        refHosts.services[0].Spec.TaskTemplate.ContainerSpec.Hosts = ["10.1.1.2 a", "10.1.1.1 b"];
        const diffs = compareDeployments(
            canonicalDeployment(refHosts as Deployed, { stack: "pdab12x0", engine: ref.ctx }),
            canonicalDeployment(changed as Deployed, { stack: "ppab12x0", engine: ours.ctx }));
        assert.deepEqual(diffs.map(formatDifference), [
            'service <stack>_web: Mode.Replicated.Replicas: docker stack deploy 2, program 3',
            'service <stack>_web: TaskTemplate.ContainerSpec.Hosts[0]: docker stack deploy "10.1.1.2 a", program "10.1.1.1 b"',
            'service <stack>_web: TaskTemplate.ContainerSpec.Hosts[1]: docker stack deploy "10.1.1.1 b", program "10.1.1.2 a"',
        ]);
    });

    it("an object on one side only, and a field only one side has", () => {
        const extra = clone(ours.d) as Any;
        extra.secrets.push({ ID: "s9", Spec: { Name: "ppab12x0_other", Labels: {} } });
        delete extra.services[0].Spec.TaskTemplate.ContainerSpec.Isolation;
        const lines = compareDeployments(
            canonicalDeployment(ref.d, { stack: "pdab12x0", engine: ref.ctx }),
            canonicalDeployment(extra as Deployed, { stack: "ppab12x0", engine: ours.ctx })).map(formatDifference);
        assert.deepEqual(lines, [
            "secret <stack>_other: only in the program's deployment",
            'service <stack>_web: TaskTemplate.ContainerSpec.Isolation: docker stack deploy "default", program (absent)',
        ]);
        const fewer = clone(ours.d) as Any;
        fewer.networks = [];
        assert.deepEqual(compareDeployments(
            canonicalDeployment(ref.d, { stack: "pdab12x0", engine: ref.ctx }),
            canonicalDeployment(fewer as Deployed, { stack: "ppab12x0", engine: ours.ctx })).map(formatDifference),
        ["network <stack>_default: only in docker stack deploy's deployment"]);
    });
});

describe("diffJson", () => {
    it("objects by key, equal-length lists item by item, otherwise the whole value", () => {
        assert.deepEqual(diffJson({ a: 1, b: { c: [1, 2] } }, { a: 1, b: { c: [1, 3] } }), [{ path: "b.c[1]", reference: 2, ours: 3 }]);
        assert.deepEqual(diffJson({ l: [1] }, { l: [1, 2] }), [{ path: "l", reference: [1], ours: [1, 2] }]);
        assert.deepEqual(diffJson({ a: null }, {}), [{ path: "a", reference: null, ours: undefined }]);
        assert.deepEqual(diffJson({ x: { y: 1 } }, { x: { y: 1 } }), []);
        assert.deepEqual(diffJson("a", "b"), [{ path: "", reference: "a", ours: "b" }]);
    });
});

describe("declared differences", () => {
    it("content-named secrets and configs compare under docker stack deploy's name, declared when the program has them", () => {
        const { rename, declared } = declaredRenames([
            { kind: "secret", name: "pp1_token-0a1b2c3d", stackDeployName: "pp1_token" },
            { kind: "config", name: "named-config-99aa88bb", stackDeployName: "named-config" },
            { kind: "config", name: "pp1_gone-12345678", stackDeployName: "pp1_gone" },
        ], { secret: ["pp1_token-0a1b2c3d"], config: ["named-config-99aa88bb"] }, "pp1");
        assert.deepEqual(rename, { "pp1_token-0a1b2c3d": "pp1_token", "named-config-99aa88bb": "named-config", "pp1_gone-12345678": "pp1_gone" });
        assert.equal(declared.length, 2, "one not created is not declared (it shows as a difference)");
        assert.match(declared[0], /^secret <stack>_token: named by content as <stack>_token-0a1b2c3d /);
        assert.match(declared[1], /^config named-config: named by content as named-config-99aa88bb /);
    });

    it("a renamed secret compares equal to docker stack deploy's, in the service's reference too", () => {
        const ref = deployment("pd1", { net: "n1", secret: "s1", config: "c1", svc: "v1" });
        const ours = deployment("pp1", { net: "n2", secret: "s2", config: "c2", svc: "v2" }, { secretName: "pp1_token-0a1b2c3d" });
        const a = canonicalDeployment(ref.d, { stack: "pd1", engine: ref.ctx });
        const plain = canonicalDeployment(ours.d, { stack: "pp1", engine: ours.ctx });
        assert.ok(compareDeployments(a, plain).length > 0, "without the declared rename the names differ");
        const b = canonicalDeployment(ours.d, { stack: "pp1", engine: ours.ctx, rename: { "pp1_token-0a1b2c3d": "pp1_token" } });
        assert.deepEqual(compareDeployments(a, b), []);
    });

    it("depends_on: declared when the program's creation order honours it, a difference when not", () => {
        const ours = [
            { key: "ui", createdAt: "2026-01-01T00:00:02.1Z" },
            { key: "db", createdAt: "2026-01-01T00:00:01.25Z" },
            { key: "service", createdAt: "2026-01-01T00:00:01.253Z" },
        ];
        const ref = [{ key: "ui", createdAt: "2026-01-01T00:00:00.1Z" }, { key: "db", createdAt: "2026-01-01T00:00:00.2Z" }, { key: "service", createdAt: "2026-01-01T00:00:00.3Z" }];
        const deps = { db: [], service: ["db"], ui: ["service"] };
        const ok = dependsOnOrder(deps, ours, ref);
        assert.deepEqual(ok.violations, []);
        assert.deepEqual(ok.declared, ["depends_on orders creation: the program created db, service, ui (service after db, ui after service); " +
            "docker stack deploy ignores depends_on (it created ui, db, service)"]);
        const bad = dependsOnOrder(deps, [{ key: "service", createdAt: "2026-01-01T00:00:01Z" }, { key: "db", createdAt: "2026-01-01T00:00:01.5Z" }, ours[0]], ref);
        assert.deepEqual(bad.declared, []);
        assert.deepEqual(bad.violations, ["depends_on: the program created service before db, which it depends on"]);
        assert.deepEqual(dependsOnOrder({ a: [], b: [] }, ours, ref), { declared: [], violations: [] });
    });

    it("engine times sort in time order although Go trims the fraction's trailing zeros", () => {
        assert.ok(timeKey("2026-01-01T00:00:01.25Z") < timeKey("2026-01-01T00:00:01.253Z"));
        assert.ok(timeKey("2026-01-01T00:00:01Z") < timeKey("2026-01-01T00:00:01.000000001Z"));
        assert.ok("2026-01-01T00:00:01.25Z" > "2026-01-01T00:00:01.253Z", "as strings they would not");
    });
});

describe("externals a file names", () => {
    it("external: true, the legacy external.name, name:, from networks, secrets and configs", () => {
        assert.deepEqual(externalObjects({
            networks: { outside: { external: true }, legacy: { external: { name: "my-cool-network" } }, own: { driver: "overlay" }, empty: null },
            secrets: { pw: { external: true, name: "drdr_admin_password" }, local: { file: "./x" } },
            configs: { c: { external: true } },
            volumes: { v: { external: true } },
        }), { networks: ["my-cool-network", "outside"], secrets: ["drdr_admin_password"], configs: ["c"] });
        assert.deepEqual(externalObjects("not a compose file"), { networks: [], secrets: [], configs: [] });
    });
});

describe("results", () => {
    const r = (x: Partial<FileResult>): FileResult => ({ file: "f.yml", differences: [], declared: [], notes: [], ...x });

    it("outcome and the last line", () => {
        const results = [
            r({}), r({ declared: ["depends_on ..."] }),
            r({ differences: ["service x: ..."] }),
            r({ referenceRejected: "no", oursRejected: "no" }),
            r({ referenceRejected: "no", differences: rejectionDifferences("no", undefined) }),
        ];
        assert.deepEqual(results.map(outcome), ["identical", "identical", "different", "rejected by both", "different"]);
        assert.equal(summaryLine(results), "5 files, 2 identical, 2 different, 1 rejected by both");
        assert.equal(renderReport(results).trimEnd().split("\n").pop(), "5 files, 2 identical, 2 different, 1 rejected by both");
    });

    it("a rejection by one side only is a difference, saying which side and why", () => {
        assert.deepEqual(rejectionDifferences("bad port", undefined), ["docker stack deploy rejects the file, the program deploys it: bad port"]);
        assert.deepEqual(rejectionDifferences(undefined, "unknown key"), ["the program rejects the file, docker stack deploy deploys it: unknown key"]);
        assert.deepEqual(rejectionDifferences("a", "b"), []);
        assert.deepEqual(rejectionDifferences(undefined, undefined), []);
    });

    it("a file's section: outcome, both rejections, differences, declared differences and notes", () => {
        const text = renderFile(r({
            referenceRejected: "line 1\nline 2", oursRejected: "ours",
            differences: ["d1"], declared: ["depends_on orders creation"], notes: ["images are stand-ins"],
        }));
        assert.equal(text, [
            "== f.yml: rejected by both",
            "   docker stack deploy rejects it:", "     line 1", "     line 2",
            "   the program rejects it:", "     ours",
            "   differences (1):", "     - d1",
            "   declared differences:", "     - depends_on orders creation",
            "   note: images are stand-ins",
        ].join("\n"));
    });
});

describe("tools/parity.ts arguments", () => {
    it("files, --local, --host, --key, --known-hosts, --dump", () => {
        assert.deepEqual(parseArgs(["--local", "a.yml", "b.yml"]), { local: true, files: ["a.yml", "b.yml"] });
        const o = parseArgs(["--host=ssh://root@10.1.2.3", "--key", "k", "--known-hosts", "kh", "--", "a.yml"]);
        assert.ok(o !== "help");
        assert.deepEqual({ ...o, dump: undefined }, { local: false, host: "ssh://root@10.1.2.3", key: "k", knownHosts: "kh", files: ["a.yml"], dump: undefined });
        assert.match(String((parseArgs(["--dump", "out", "a.yml"]) as Any).dump), /\/out$/);
        assert.equal(parseArgs(["--help"]), "help");
    });

    it("--engine, --local-socket and --unpinned", () => {
        assert.deepEqual(parseArgs(["--local", "--engine", "26.1", "a.yml"]), { local: true, engine: "26.1", files: ["a.yml"] });
        assert.deepEqual(parseArgs(["--local", "--local-socket", "/tmp/x/docker.sock", "--unpinned", "a.yml"]),
            { local: true, localSocket: "/tmp/x/docker.sock", unpinned: true, files: ["a.yml"] });
        assert.throws(() => parseArgs(["--local", "--engine", "24.0", "a.yml"]), /--engine: expected 20\.10 or 26\.1, got "24\.0"/);
        assert.throws(() => parseArgs(["--local", "--engine", "26.1; rm -rf /", "a.yml"]), /--engine: expected 20\.10 or 26\.1/);
        assert.throws(() => parseArgs(["--engine", "26.1", "a.yml"]), /go with --local/);
        assert.throws(() => parseArgs(["--local", "--engine", "26.1", "--local-socket", "/s", "a.yml"]), /give one of them/);
    });

    it("usage errors", () => {
        assert.throws(() => parseArgs(["--local"]), (e: unknown) => e instanceof UsageError && /no compose file/.test(e.message));
        assert.throws(() => parseArgs(["--local", "--host", "ssh://x", "a.yml"]), /exclude each other/);
        assert.throws(() => parseArgs(["--frobnicate", "a.yml"]), /unknown argument '--frobnicate'/);
        assert.throws(() => parseArgs(["--host"]), /--host needs a value/);
    });

    it("ssh:// URLs", () => {
        assert.deepEqual(parseSshUrl("ssh://root@172.28.213.11"), { user: "root", host: "172.28.213.11", port: 22 });
        assert.deepEqual(parseSshUrl("ssh://deploy@vm1:2222"), { user: "deploy", host: "vm1", port: 2222 });
        assert.deepEqual(parseSshUrl("ssh://vm1"), { user: "root", host: "vm1", port: 22 });
        assert.throws(() => parseSshUrl("tcp://vm1:2375"), /expected ssh:\/\/USER@ADDRESS/);
    });

    it("the ssh the docker CLI runs: the real one, with the key and pinned host keys, no user config", () => {
        const w = sshWrapper("/usr/bin/ssh", "/k/id ed25519", "/k/known'hosts");
        assert.match(w, /^#!\/bin\/sh\nexec '\/usr\/bin\/ssh' -F \/dev\/null -i '\/k\/id ed25519' /);
        assert.match(w, /-o StrictHostKeyChecking=yes /);
        assert.match(w, /-o UserKnownHostsFile='\/k\/known'\\''hosts' -o GlobalKnownHostsFile=\/dev\/null /);
        assert.match(w, /"\$@"\n$/);
    });

    it("--docker-socket: an absolute plain path, named in the CLI's remote dial-stdio; refused with --local or when it could reach the shell", () => {
        assert.deepEqual((parseArgs(["--host", "ssh://vm1", "--docker-socket", "/run/user/1000/docker.sock", "a.yml"]) as any).dockerSocket, "/run/user/1000/docker.sock");
        assert.throws(() => parseArgs(["--local", "--docker-socket", "/run/docker.sock", "a.yml"]), /exclude each other/);
        for (const bad of ["run/docker.sock", "/run/docker.sock; rm -rf /", "/run/$(id)", "/run/a b"]) {
            assert.throws(() => parseArgs(["--host", "ssh://vm1", "--docker-socket", bad, "a.yml"]), /--docker-socket: expected an absolute path/, bad);
        }
        const w = sshWrapper("/usr/bin/ssh", "/k/id", "/k/kh", "/run/d.sock");
        assert.match(w, /^#!\/bin\/bash\n/);
        assert.match(w, /set -- "\$\{@:1:\$#-3\}" docker -H unix:\/\/\/run\/d\.sock system dial-stdio; fi\n/);
        // The rewrite itself, run by bash: the last three arguments only when they are the CLI's dial-stdio.
        const run = (...args: string[]) => spawnSync("bash", ["-c", w.split("\n")[1] + '; printf "%s|" "$@"', "ssh", ...args], { encoding: "utf8" }).stdout;
        assert.equal(run("-o", "X=1", "--", "vm1", "docker", "system", "dial-stdio"), "-o|X=1|--|vm1|docker|-H|unix:///run/d.sock|system|dial-stdio|");
        assert.equal(run("--", "vm1", "docker", "ps"), "--|vm1|docker|ps|");
    });
});
