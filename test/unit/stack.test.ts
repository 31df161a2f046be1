/** The Stack component's resource graph under Pulumi's mocks (no engine, no nodes). */
import { strict as assert } from "node:assert";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { convertStack, loadCompose, type StackSpec , LATEST_CLI } from "../../compose";
import { Stack } from "../../components/stack";
import { engineStack, normaliseService } from "../../lib/engine-spec";
import { externalsProvider, fileObjectProvider, networkProvider, serviceProvider, sshConnect } from "../../lib/stack-providers";
import { captureRegistrations, MockResource, stdinOf } from "./harness";

const DCCN = path.resolve(__dirname, "../../../shared/fixtures/dccn");
const DYNAMIC = (t: string) => `dccn-swarm:index:${t}`;
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

const MANAGERS = [{ name: "vm1", address: "172.28.213.11", knownHosts: "172.28.213.11 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUnitTestHostKey0" }];
const SSH = { user: "root", port: 22, privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nUNIT-STACK-KEY\n-----END OPENSSH PRIVATE KEY-----\n", connectTimeout: 10 };

/** Declares `make()`'s resources under mocks and returns them with their dependencies. */
async function graph(make: () => void): Promise<MockResource[]> {
    await pulumi.runtime.setMocks({
        newResource: (args) => ({ id: `${args.name}-id`, state: { ...args.inputs } }),
        call: (args) => args.inputs,
    }, "dccn-swarm", "unit", false);
    const out = captureRegistrations();
    try {
        make();
        await new Promise((r) => setTimeout(r, 200));
    } finally {
        await pulumi.runtime.disconnect();
    }
    return out;
}

const byName = (rs: MockResource[], n: string) => {
    const r = rs.find((x) => x.name === n);
    assert.ok(r, `${n} declared; have ${rs.map((x) => x.name).join(", ")}`);
    return r;
};

function unwrapSecrets(v: unknown): string {
    return JSON.stringify(v, (_k, x) => (x && typeof x === "object" && SECRET_SIG in x ? "<secret>" : x));
}

function smallStack(): StackSpec {
    const dir = mkdtempSync(path.join(tmpdir(), "stack-unit-"));
    writeFileSync(path.join(dir, "token.txt"), "TOKEN-CONTENT-XYZ\n");
    writeFileSync(path.join(dir, "app.conf"), "listen 80\n");
    const file = path.join(dir, "stack.yml");
    writeFileSync(file, `version: "3.8"
services:
  db:
    image: mysql:8
    networks: [back]
  web:
    image: registry.lab:5000/web:1
    depends_on: [db]
    networks: [back, proxy]
    secrets: [token]
    configs: [conf]
networks:
  back: {}
  proxy:
    external: true
    name: proxy_net
secrets:
  token:
    file: ./token.txt
configs:
  conf:
    file: ./app.conf
`);
    return convertStack(loadCompose(file, { cli: LATEST_CLI, stackName: "app", env: {} }));
}

describe("Stack component", () => {
    it("a dynamic resource per network, secret, config and service, under one dccn-swarm:stack:Stack", async () => {
        const spec = smallStack();
        const rs = await graph(() => new Stack("app", { spec, managers: MANAGERS, ssh: SSH }));
        assert.deepEqual(rs.filter((r) => r.type === "dccn-swarm:stack:Stack").map((r) => r.name), ["app"]);
        const kinds = rs.filter((r) => r.parent === "app").map((r) => [r.name, r.type]).sort();
        assert.deepEqual(kinds, [
            ["app-config-conf", DYNAMIC("SwarmConfig")],
            ["app-db", DYNAMIC("SwarmService")],
            ["app-external", DYNAMIC("SwarmExternals")],
            ["app-net-back", DYNAMIC("SwarmNetwork")],
            ["app-secret-token", DYNAMIC("SwarmSecret")],
            ["app-web", DYNAMIC("SwarmService")],
        ]);
    });

    it("services carry the engine spec and depend on their networks, secrets, configs, externals and depends_on services", async () => {
        const spec = smallStack();
        const rs = await graph(() => new Stack("app", { spec, managers: MANAGERS, ssh: SSH }));
        const web = byName(rs, "app-web");
        assert.deepEqual(web.inputs.spec, engineStack(spec).services.find((s) => s.key === "web")!.spec);
        assert.equal(web.inputs.name, "app_web");
        assert.equal(web.inputs.key, "services.web");
        assert.equal(web.inputs.file, spec.file);
        assert.deepEqual([...web.deps].sort(), ["app-config-conf", "app-db", "app-external", "app-net-back", "app-secret-token"]);
        assert.deepEqual([...byName(rs, "app-db").deps].sort(), ["app-external", "app-net-back"]);
        const ext = byName(rs, "app-external");
        assert.deepEqual(ext.inputs.refs, [{ kind: "network", name: "proxy_net", usedBy: ["services.web.networks"] }]);
        const net = byName(rs, "app-net-back");
        assert.equal(net.inputs.create.Name, "app_back");
        assert.equal(net.inputs.create.Driver, "overlay");
    });

    it("secret content and the SSH key reach the state only as secrets; config content in the clear", async () => {
        const spec = smallStack();
        const rs = await graph(() => new Stack("app", {
            spec, managers: MANAGERS, ssh: SSH,
            registry: { endpoint: "registry.lab:5000", auth: { serveraddress: "registry.lab:5000", username: "u", password: "REGISTRY-PASSWORD-XYZ" } },
        }));
        const b64 = Buffer.from("TOKEN-CONTENT-XYZ\n").toString("base64");
        for (const r of rs) {
            const plain = unwrapSecrets(r.inputs);
            for (const marker of [b64, "UNIT-STACK-KEY", "REGISTRY-PASSWORD-XYZ"]) assert.ok(!plain.includes(marker), `${r.name} carries ${marker} outside a secret`);
        }
        assert.ok(JSON.stringify(byName(rs, "app-secret-token").inputs).includes(b64));
        assert.ok(JSON.stringify(byName(rs, "app-web").inputs.registryAuth).includes("REGISTRY-PASSWORD-XYZ"));
        // Only to the service whose image is in that registry (as --with-registry-auth picks the image's registry).
        assert.equal(byName(rs, "app-db").inputs.registryAuth, undefined);
        assert.equal(byName(rs, "app-config-conf").inputs.data, Buffer.from("listen 80\n").toString("base64"));
        assert.match(byName(rs, "app-secret-token").inputs.name, /^app_token-[0-9a-f]{8}$/);
    });

    it("the DCCN data-stager: db, service, ui chained by depends_on; the external secret checked", async () => {
        const spec = convertStack(loadCompose(path.join(DCCN, "data-stager.docker-compose.dccn.yml"), { cli: LATEST_CLI, stackName: "stager", env: {} }));
        const rs = await graph(() => new Stack("stager", { spec, managers: MANAGERS, ssh: SSH, convergeTimeout: 300 }));
        assert.deepEqual(byName(rs, "stager-service").deps.sort(), ["stager-db", "stager-external", "stager-net-default"]);
        assert.deepEqual(byName(rs, "stager-ui").deps.sort(), ["stager-external", "stager-net-default", "stager-service"]);
        assert.deepEqual(byName(rs, "stager-external").inputs.refs, [{ kind: "secret", name: "drdr_admin_password", usedBy: ["services.service.secrets"] }]);
        assert.equal(byName(rs, "stager-ui").inputs.convergeTimeout, 300);
    });

    it("the data-stager on the lab: bind sources made on every node, the external secret provided, before the services", async () => {
        const spec = convertStack(loadCompose(path.resolve(__dirname, "../../stacks/data-stager/docker-compose.yml"), { stackName: "data-stager" }), {
            bindPaths: { "/mnt/docker/data/stager": "/srv/lab/stager", "/project": "/srv/lab/project", "/var/lib/sss": "/srv/lab/sss" },
            createBindPaths: true, externalSecrets: { drdr_admin_password: { generate: true } },
        });
        const nodes = [...MANAGERS, { name: "vm2", address: "172.28.213.12", knownHosts: "172.28.213.12 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUnitTestHostKey1" }];
        const rs = await graph(() => new Stack("data-stager", { spec, managers: nodes, ssh: SSH }));
        const steps = rs.filter((r) => r.type === DYNAMIC("ProvisionStep"));
        assert.deepEqual(steps.map((r) => r.name), ["data-stager-bindpaths-vm1", "data-stager-bindpaths-vm2"]);
        assert.ok(stdinOf(steps[0]).includes("/srv/lab/stager/ui/db\n"), "the paths travel on stdin");
        assert.equal(byName(rs, "data-stager-external-secret-drdr_admin_password").type, DYNAMIC("SwarmProvidedSecret"));
        assert.equal(byName(rs, "data-stager-external-secret-drdr_admin_password").inputs.name, "drdr_admin_password");
        assert.ok(!rs.some((r) => r.name === "data-stager-external"), "a provided secret is not looked up as external");
        assert.deepEqual(byName(rs, "data-stager-service").deps.sort(), [
            "data-stager-bindpaths-vm1", "data-stager-bindpaths-vm2", "data-stager-db", "data-stager-external-secret-drdr_admin_password", "data-stager-net-default",
        ]);
        assert.ok(!unwrapSecrets(byName(rs, "data-stager-bindpaths-vm1").inputs).includes("UNIT-STACK-KEY"), "the key stays secret");
    });

    it("a stack without external objects declares no lookup", async () => {
        const spec = convertStack(loadCompose(path.join(DCCN, "tutorial-swarm.docker-compose.swarm.yml"), { cli: LATEST_CLI, stackName: "webapp", env: {} }));
        const rs = await graph(() => new Stack("webapp", { spec, managers: MANAGERS, ssh: SSH }));
        assert.equal(rs.some((r) => r.type === DYNAMIC("SwarmExternals")), false);
        assert.ok(rs.some((r) => r.name === "webapp-web"));
    });
});

/** The stack implementations' pure paths, as the provider plugin runs them. */
describe("stack implementations: diffs and checks", () => {
    it("service: diff of an unchanged spec is no change, of a new image an update", async () => {
        const spec = smallStack();
        const web = engineStack(spec).services.find((s) => s.key === "web")!;
        const sp = serviceProvider(sshConnect);
        const inputs = { managers: MANAGERS, ssh: SSH, stack: "app", file: spec.file, key: "services.web", name: web.name, spec: web.spec };
        const olds = { ...inputs, serviceId: "x", actual: normaliseService(web.spec), image: "web:1", rollback: "" };
        assert.equal((await sp.diff!("x", olds, inputs)).changes, false);
        const changed = JSON.parse(JSON.stringify(web.spec));
        changed.TaskTemplate.ContainerSpec.Image = "web:2";
        changed.Labels["com.docker.stack.image"] = "web:2";
        assert.deepEqual(await sp.diff!("x", olds, { ...inputs, spec: changed }), {
            changes: true, replaces: [], deleteBeforeReplace: true,
            diffs: ["spec.Labels.com.docker.stack.image", "spec.TaskTemplate.ContainerSpec.Image"],
        }, "an update naming the fields that change");
        const global = JSON.parse(JSON.stringify(web.spec));
        global.Mode = { Global: {} };
        assert.deepEqual((await sp.diff!("x", olds, { ...inputs, spec: global })).replaces, ["spec"], "replicated to global is a replacement");
    });

    it("network, secret/config and externals: diffs and a check without refs", async () => {
        const spec = smallStack();
        const e = engineStack(spec);
        const np = networkProvider(sshConnect);
        const n = { managers: MANAGERS, ssh: SSH, stack: "app", file: spec.file, key: "networks.back", name: "app_back", create: e.networks[0].create };
        assert.equal((await np.diff!("n", { ...n, networkId: "n", actual: e.networks[0].create }, n)).changes, false);
        const fp = fileObjectProvider(sshConnect);
        const sec = e.secrets[0];
        const f = { managers: MANAGERS, ssh: SSH, stack: "app", file: spec.file, key: "secrets.token", kind: "secret", name: sec.name, labels: sec.spec.Labels, data: sec.spec.Data };
        assert.equal((await fp.diff!("s", { ...f, objectId: "s", actual: { Name: sec.name, Labels: sec.spec.Labels } }, f)).changes, false);
        const ep = externalsProvider(sshConnect);
        const x = { managers: MANAGERS, ssh: SSH, stack: "app", file: spec.file, refs: [] };
        assert.deepEqual((await ep.check!(x, x)).failures, []);
    });
});
