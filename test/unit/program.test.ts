/** The resource graph of the dev and prod stacks, under Pulumi's mocks. */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { fakeSshFiles, MockResource, runProgram, stackConfig, stdinOf, tempDir } from "./harness";

const DYNAMIC = (t: string) => `dccn-swarm:index:${t}`;

/** The registry and webapp database passwords are secret config; tools/stack-init.sh generates them for dev. */
const SECRETS = ["dccn-swarm:registryPasswords", "dccn-swarm:webappDbPassword", "dccn-swarm:webappDbRootPassword"];
const DEV_PASSWORDS = { admin: "UNIT-ADMIN-PW", puller: "UNIT-PULL-PW" };
const DB_PASSWORDS = { "dccn-swarm:webappDbPassword": "UNIT-DB-PW", "dccn-swarm:webappDbRootPassword": "UNIT-DB-ROOT-PW" };

function devConfig() {
    const c = stackConfig("dev");
    const nodes = c["dccn-swarm:nodes"] as { address: string }[];
    const { keyFile, knownHosts } = fakeSshFiles(nodes.map((n) => n.address));
    c["dccn-swarm:ssh"] = { ...(c["dccn-swarm:ssh"] as object), privateKeyFile: keyFile, knownHostsFile: knownHosts };
    c["dccn-swarm:registryPasswords"] = { ...DEV_PASSWORDS };
    Object.assign(c, DB_PASSWORDS);
    return c;
}

function prodConfig() {
    const c = stackConfig("prod");
    c["dccn-swarm:sshPrivateKey"] = "-----BEGIN OPENSSH PRIVATE KEY-----\nPROD-KEY\n-----END OPENSSH PRIVATE KEY-----\n";
    c["dccn-swarm:registryPasswords"] = { admin: "PROD-ADMIN-PW", "swarm-pull": "PROD-PULL-PW" };
    Object.assign(c, DB_PASSWORDS);
    return c;
}
const PROD_SECRETS = ["dccn-swarm:sshPrivateKey", ...SECRETS];

const byName = (rs: MockResource[], name: string) => {
    const r = rs.find((x) => x.name === name);
    assert.ok(r, `resource ${name} declared; have ${rs.map((x) => x.name).join(", ")}`);
    return r;
};

test("dev: a Node per host with engine and daemon steps, one swarm, a member and labels per node", async () => {
    const { resources, outputs } = await runProgram("dev", devConfig(), SECRETS);
    const components = resources.filter((r) => r.type === "dccn-swarm:node:Node").map((r) => r.name).sort();
    assert.deepEqual(components, ["vm1", "vm2", "vm3"]);
    for (const vm of ["vm1", "vm2", "vm3"]) {
        const engine = byName(resources, `${vm}-engine`);
        assert.equal(engine.type, DYNAMIC("ProvisionStep"));
        assert.equal(engine.inputs.script, "engine-install.sh");
        assert.match(stdinOf(engine), /^dccn_f=\$\(mktemp/m, "the script travels on stdin, not on a command line");
        assert.match(stdinOf(engine), /is already installed/, "the script file's text is sent");
        const daemon = byName(resources, `${vm}-daemon`);
        assert.match(stdinOf(daemon), /"storage-driver": "overlay2"/);
        assert.match(stdinOf(daemon), /"max-size": "10m"/);
        assert.equal(resources.some((r) => r.name === `${vm}-thinpool`), false, "no thinpool on overlay2");
    }
    const cluster = byName(resources, "swarm-cluster");
    assert.equal(cluster.type, DYNAMIC("SwarmCluster"));
    assert.equal(cluster.inputs.bootstrap, "vm1");
    assert.deepEqual(cluster.inputs.managers.map((m: any) => m.name), ["vm1"]);
    const vm2 = byName(resources, "swarm-vm2");
    assert.equal(vm2.inputs.role, "worker");
    assert.equal(vm2.inputs.availability, "active");
    assert.match(vm2.inputs.node.knownHosts, /^172\.28\.213\.12 ssh-ed25519 /);
    const labels = byName(resources, "swarm-vm2-labels");
    assert.deepEqual(labels.inputs.labels, { function: "production", os: "linux" });
    assert.equal(outputs.managers, 1);
    assert.equal(outputs.faultTolerance, 0);
    const nodes = outputs.swarmNodes as any[];
    assert.deepEqual(nodes.map((n) => [n.hostname, n.role]), [["vm1", "manager"], ["vm2", "worker"], ["vm3", "worker"]]);
});

/** The value of a secret input as the mocks see it (wrapped in Pulumi's signature object); fails if it is not a secret. */
function secretValue(v: any): any {
    assert.ok(v && typeof v === "object" && "4dabf18193072939515e22adb298388d" in v, `a secret: ${JSON.stringify(v)?.slice(0, 80)}`);
    return v.value;
}

/** Mocks see secrets wrapped in a signature object; `marker` may only occur inside one. */
function assertOnlyInSecrets(resources: MockResource[], marker: string) {
    let seen = 0;
    for (const r of resources) {
        if (JSON.stringify(r.inputs).includes(marker)) seen++;
        const unwrapped = JSON.stringify(r.inputs, (_k, v) =>
            v && typeof v === "object" && "4dabf18193072939515e22adb298388d" in v ? "<secret>" : v);
        assert.ok(!unwrapped.includes(marker), `${r.name} carries ${marker} outside a secret`);
    }
    assert.ok(seen > 0, `${marker} reached no resource at all`);
}

test("dev: the node scripts are sent exactly as committed, so editing one re-runs that step", async () => {
    const fs = await import("fs");
    const { resources } = await runProgram("dev", devConfig(), SECRETS);
    const daemon = byName(resources, "vm1-daemon");
    assert.ok(stdinOf(daemon).includes(fs.readFileSync("scripts/daemon-json.sh", "utf8").trimEnd()));
    assert.match(stdinOf(daemon), /STORAGE_DRIVER='overlay2' bash "\$dccn_f" <<'DCCN_DATA_EOF'/);
});

test("dev: the SSH key never reaches a resource input in plain text", async () => {
    const { resources } = await runProgram("dev", devConfig(), SECRETS);
    assertOnlyInSecrets(resources, "UNIT-TEST-KEY");
});

test("prod: eight nodes, three managers joined in a chain, devicemapper thinpool on /dev/sdb", async () => {
    const { resources, outputs } = await runProgram("prod", prodConfig(), PROD_SECRETS);
    const members = resources.filter((r) => r.type === DYNAMIC("SwarmMember"));
    assert.equal(members.length, 8);
    assert.equal(members.filter((m) => m.inputs.role === "manager").length, 3);
    const thin = byName(resources, "dccn-l021-thinpool");
    assert.match(stdinOf(thin), /DEVICE='\/dev\/sdb'/);
    const daemon = byName(resources, "dccn-l021-daemon");
    assert.match(stdinOf(daemon), /dm\.thinpooldev=\/dev\/mapper\/docker-thinpool/);
    assert.match(stdinOf(daemon), /dm\.use_deferred_deletion=true/);
    assert.equal(outputs.managers, 3);
    assert.equal(outputs.faultTolerance, 1);
    assertOnlyInSecrets(resources, "PROD-KEY");
});

test("validation errors stop the program before any resource is declared", async () => {
    const c = devConfig();
    const nodes = (c["dccn-swarm:nodes"] as any[]).map((n) => ({ ...n }));
    nodes[1].role = "boss";
    c["dccn-swarm:nodes"] = nodes;
    await assert.rejects(runProgram("dev", c, SECRETS), /Pulumi\.dev\.yaml: dccn-swarm:nodes\[1\]\.role: unknown role "boss"/);
});

test("a node without a pinned host key is refused", async () => {
    const c = devConfig();
    const nodes = (c["dccn-swarm:nodes"] as any[]).map((n) => ({ ...n }));
    nodes.push({ hostname: "vm4", address: "172.28.213.14", role: "worker" });
    c["dccn-swarm:nodes"] = nodes;
    await assert.rejects(runProgram("dev", c, SECRETS), /dccn-swarm:nodes\[3\]\.hostKey: no SSH host key is pinned for vm4/);
});

test("a missing lab key file tells the user to run lab:up", async () => {
    const c = devConfig();
    c["dccn-swarm:ssh"] = { ...(c["dccn-swarm:ssh"] as object), privateKeyFile: "/nonexistent/id_ed25519" };
    await assert.rejects(runProgram("dev", c, SECRETS), /dccn-swarm:ssh\.privateKeyFile: .*`npm run lab:up`/);
});

test("prod: both stacks, on nodes labelled function=production, data under /mnt/docker", async () => {
    const { resources, outputs } = await runProgram("prod", prodConfig(), PROD_SECRETS);
    const services = resources.filter((r) => r.type === DYNAMIC("SwarmService"));
    const byService = (n: string) => services.find((s) => s.inputs.name === n)?.inputs.spec;
    assert.deepEqual(Object.keys(outputs.applicationStacks as object).sort(), ["data-stager", "webapp"]);
    const web = byService("webapp_web");
    assert.deepEqual(web.TaskTemplate.Placement.Constraints, ["node.labels.function == production"]);
    const db = byService("webapp_db");
    assert.deepEqual(db.TaskTemplate.ContainerSpec.Mounts.map((m: any) => [m.Type, m.Source]), [["bind", "/mnt/docker/data/webapp/db"]]);
    for (const name of ["data-stager_db", "data-stager_service", "data-stager_ui"]) {
        assert.deepEqual(byService(name).TaskTemplate.Placement.Constraints, ["node.labels.function == production"], name);
    }
    assert.ok(byService("data-stager_db").TaskTemplate.ContainerSpec.Mounts.some((m: any) => m.Source.startsWith("/mnt/docker/data/stager")));
});

test("dev: the webapp's images are built from the repository and run from the lab's registry; its data on the shared storage", async () => {
    const { resources } = await runProgram("dev", devConfig(), SECRETS);
    const spec = (n: string) => resources.find((r) => r.type === DYNAMIC("SwarmService") && r.inputs.name === n)?.inputs.spec;
    const image = (n: string) => byName(resources, n).inputs;
    const web = image("webapp-image-web");
    assert.equal(web.image, "registry.lab:5000/demo_user_register:1.0");
    assert.equal(web.context, "stacks/webapp/app");
    assert.deepEqual(web.args, { BASE: "dccn-lab/php-apache:8" });
    assert.match(web.contextDigest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(secretValue(web.pushAuth).username, "admin", "pushed as the registry's push user (a secret input)");
    assert.equal(image("webapp-image-db").context, "stacks/lab/mariadb");
    // The services run what was pushed (tag and digest), with the pull user's credentials.
    assert.equal(spec("webapp_web").TaskTemplate.ContainerSpec.Image, `registry.lab:5000/demo_user_register:1.0@${web.contextDigest}`);
    // The image label carries the digest too: a new digest is a change of the service, not hidden as a pin.
    assert.equal(spec("webapp_web").Labels["com.docker.stack.image"], spec("webapp_web").TaskTemplate.ContainerSpec.Image);
    assert.match(spec("webapp_db").TaskTemplate.ContainerSpec.Image, /^registry\.lab:5000\/lab\/mariadb:10@sha256:/);
    for (const n of ["webapp-web", "webapp-db"]) assert.equal(secretValue(byName(resources, n).inputs.registryAuth).username, "puller", n);
    assert.deepEqual(spec("webapp_web").TaskTemplate.Placement.Constraints, ["node.labels.function == production"]);
    assert.deepEqual(spec("webapp_db").TaskTemplate.Placement.Constraints, ["node.labels.function == production"]);
    assert.deepEqual(spec("webapp_db").TaskTemplate.ContainerSpec.Mounts.map((m: any) => [m.Type, m.Source]), [["bind", "/mnt/docker/data/webapp/db"]]);
    // The data-stager's stand-ins: one Dockerfile, two targets.
    assert.deepEqual([image("data-stager-image-service").target, image("data-stager-image-ui").target], ["stager", "stager-ui"]);
    // The database counts as running once it answers over TCP as the app's user (a deployment waits
    // out its first initialisation), with time for that before failed checks count.
    const health = spec("webapp_db").TaskTemplate.ContainerSpec.Healthcheck;
    assert.equal(health.Test[0], "CMD-SHELL");
    assert.match(health.Test[1], /MYSQL_PWD="\$\(cat \/run\/secrets\/webapp_db_password\)" mysql -h 127\.0\.0\.1 -udemo /);
    assert.ok(health.StartPeriod >= 60e9, `start period ${health.StartPeriod}`);
});

for (const [env, config, secrets] of [["dev", devConfig, SECRETS], ["prod", prodConfig, PROD_SECRETS]] as const) {
    test(`${env}: the webapp's database passwords reach its services only as swarm secrets, from secret config`, async () => {
        const { resources } = await runProgram(env, config(), [...secrets]);
        const spec = (n: string) => resources.find((r) => r.type === DYNAMIC("SwarmService") && r.inputs.name === n)!.inputs.spec;
        for (const [service, files] of [["webapp_db", ["MYSQL_ROOT_PASSWORD_FILE=/run/secrets/webapp_db_root_password", "MYSQL_PASSWORD_FILE=/run/secrets/webapp_db_password"]],
            ["webapp_web", ["DB_PASSWORD_FILE=/run/secrets/webapp_db_password"]]] as const) {
            const envs: string[] = spec(service).TaskTemplate.ContainerSpec.Env;
            for (const f of files) assert.ok(envs.includes(f), `${service}: ${f} in ${envs}`);
            assert.deepEqual(envs.filter((e) => /PASSWORD=/.test(e)), [], `${service}: no password as a value`);
        }
        const made = resources.filter((r) => r.type === DYNAMIC("SwarmProvidedSecret") && r.inputs.stack === "webapp");
        assert.deepEqual(made.map((r) => r.inputs.name).sort(), ["webapp_db_password", "webapp_db_root_password"]);
        for (const pw of Object.values(DB_PASSWORDS)) {
            assertOnlyInSecrets(resources, Buffer.from(pw).toString("base64"));
            assert.ok(!JSON.stringify(resources.map((r) => r.inputs)).includes(pw), `${pw} only base64-encoded inside a secret`);
        }
    });
}

test("a webapp database password missing from the stack config stops the program naming the key and the command", async () => {
    const c = prodConfig();
    delete (c as Record<string, unknown>)["dccn-swarm:webappDbPassword"];
    await assert.rejects(runProgram("prod", c, PROD_SECRETS),
        /externalSecrets\.webapp_db_password: the stack config has no dccn-swarm:webappDbPassword; set it with `pulumi config set --secret webappDbPassword`/);
});

test("a compose file the stack deploy would reject stops the program with the file and key", async () => {
    const fs = await import("fs");
    const os = await import("os");
    const path = await import("path");
    const bad = path.join(tempDir("dccn-bad-"), "bad.yml");
    fs.writeFileSync(bad, "version: '3.3'\nservices:\n  web:\n    image: nginx\n    volumes_from: [db]\n");
    const c = devConfig();
    c["dccn-swarm:stacks"] = [{ name: "bad", file: bad }];
    await assert.rejects(runProgram("dev", c, SECRETS), /dccn-swarm:stacks\[0\] \(bad\): .*bad\.yml: services\.web\.volumes_from/);
});

test("dev: the registry on vm1, trusted by every node; stacks after its readiness check", async () => {
    const { resources, outputs } = await runProgram("dev", devConfig(), SECRETS);
    for (const vm of ["vm1", "vm2", "vm3"]) {
        const trust = byName(resources, `registry-trust-${vm}`);
        assert.match(stdinOf(trust), /REGISTRY_ADDRESS='172\.28\.213\.11' REGISTRY_HOST='registry\.lab' REGISTRY_PORT='5000'/);
        assert.ok(trust.deps.includes(`${vm}-daemon`), `trust on ${vm} after its provisioning: ${trust.deps}`);
    }
    assert.deepEqual(resources.filter((r) => r.name.startsWith("registry-data-")).map((r) => r.name), ["registry-data-vm1"], "data only where it may run");
    const svc = byName(resources, "registry-service");
    assert.deepEqual(svc.inputs.spec.TaskTemplate.Placement.Constraints, ["node.labels.registry==true"]);
    assert.equal(svc.inputs.spec.TaskTemplate.ContainerSpec.Image, "dccn-lab/registry:2.8");
    assert.ok(svc.deps.includes("swarm-vm1-labels"), "placed by a label: after the labels are set");
    for (const name of ["webapp-db", "webapp-web"]) {
        const s = byName(resources, name);
        assert.ok(s.deps.includes("registry-ready"), `${name} after the registry answered a login`);
        assert.equal(secretValue(s.inputs.registryAuth).username, "puller", `${name}: its image is in the registry, pulled with the pull user's credentials`);
    }
    assert.deepEqual((outputs.privateRegistry as any).endpoint, "registry.lab:5000");
    assert.deepEqual((outputs.privateRegistry as any).users, ["admin", "puller"]);
    for (const pw of Object.values(DEV_PASSWORDS)) assertOnlyInSecrets(resources, pw);
});

test("prod: services pulling from docker-registry.dccn.nl:5000 get its credentials, others none", async () => {
    const { resources } = await runProgram("prod", prodConfig(), PROD_SECRETS);
    const service = (n: string) => resources.find((r) => r.type === DYNAMIC("SwarmService") && r.inputs.name === n)!;
    for (const name of ["data-stager_db", "data-stager_service", "data-stager_ui"]) {
        assert.match(service(name).inputs.spec.TaskTemplate.ContainerSpec.Image, /^docker-registry\.dccn\.nl:5000\//);
        assert.ok(JSON.stringify(service(name).inputs.registryAuth).includes("PROD-PULL-PW"), `${name} pulls with swarm-pull's credentials`);
    }
    assert.equal(service("webapp_db").inputs.registryAuth, undefined, "an image from Docker Hub gets no private-registry credentials");
    assert.equal(stdinOf(byName(resources, "registry-data-dccn-l018")).includes("DATA_PATH='/mnt/docker/registry'"), true);
    assert.equal(resources.some((r) => r.name === "registry-data-dccn-l019"), false);
    assertOnlyInSecrets(resources, "PROD-PULL-PW");
    assertOnlyInSecrets(resources, "PROD-ADMIN-PW");
});

test("registry: a placement label no node carries, or a user without a password, stops the program", async () => {
    const c = devConfig();
    c["dccn-swarm:nodes"] = (c["dccn-swarm:nodes"] as any[]).map((n) => ({ ...n, labels: { os: "linux" } }));
    await assert.rejects(runProgram("dev", c, SECRETS), /Pulumi\.dev\.yaml: dccn-swarm:registry\.placement: no configured node carries the label registry=true/);
    const d = devConfig();
    d["dccn-swarm:registryPasswords"] = { admin: "x" };
    await assert.rejects(runProgram("dev", d, SECRETS), (e: Error) => {
        assert.match(e.message, /dccn-swarm:registryPasswords\.puller: user puller \(registry\.users\) has no password; set it with pulumi config set --stack dev --secret/);
        assert.ok(!e.message.includes("UNIT-"), "no password in the message");
        return true;
    });
});

test("prod: managers provisioned one after another, then the workers (each after the last manager)", async () => {
    const { resources } = await runProgram("prod", prodConfig(), PROD_SECRETS);
    const nodes = stackConfig("prod")["dccn-swarm:nodes"] as { hostname: string; role: string }[];
    const managers = nodes.filter((n) => n.role === "manager").map((n) => n.hostname);
    const workers = nodes.filter((n) => n.role !== "manager").map((n) => n.hostname);
    assert.ok(managers.length >= 2 && workers.length >= 1, "prod has several managers and some workers");
    const firstStep = (h: string) => resources.find((r) => r.name.startsWith(`${h}-`) && r.type === DYNAMIC("ProvisionStep"))!;
    for (let i = 1; i < managers.length; i++) {
        assert.ok(firstStep(managers[i]).deps.includes(`${managers[i - 1]}-daemon`), `${managers[i]} after ${managers[i - 1]}: ${firstStep(managers[i]).deps}`);
    }
    assert.deepEqual(firstStep(managers[0]).deps.filter((d) => d.endsWith("-daemon")), [], "the first manager waits for no node");
    for (const w of workers) {
        const deps = firstStep(w).deps.filter((d) => d.endsWith("-daemon"));
        assert.deepEqual(deps, [`${managers[managers.length - 1]}-daemon`], `${w} after the last manager only (workers side by side)`);
    }
});
