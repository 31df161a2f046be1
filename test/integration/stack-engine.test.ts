// The stack providers against a real engine: a throwaway dockerd (test/integration/dockerd.ts) in
// its own network namespace, a one-node swarm, the providers' functions called directly (not
// through Pulumi) with a transport that runs the same scripts locally instead of over SSH.
//
// When dockerd cannot start here the test skips with the reason, except in CI (CI=true), where it
// fails.
//
// Run: node --import tsx --test test/integration/stack-engine.test.ts
import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { convertStack, loadCompose, type StackOverrides, type StackSpec , LATEST_CLI } from "../../compose";
import { differences, engineStack, normaliseService, type JsonObject } from "../../lib/engine-spec";
import { findManager, localTransport, type Transport } from "../../lib/engine-transport";
import {
    type Access, type Connect, externalsProvider, fileObjectProvider, networkProvider, serviceProvider,
    type FileObjectInputs, type NetworkInputs, type ServiceInputs, type ServiceOutputs,
} from "../../lib/stack-providers";
import { docker, type Dockerd, dockerdProblem, startDockerd, stopDockerd, TEST_IMAGE } from "../../tools/dockerd";
import { forgetShared } from "../../lib/read-cache";

/** The engine's view a service's state stands for: kept only when it drifted, else the inputs' spec. */
const actualOf = (p: { actual?: unknown; spec: unknown }) => (p.actual ?? normaliseService(p.spec as never)) as never;

const IN_CI = process.env.CI === "true";
const STACK = "itest";

const COMPOSE = `version: "3.8"
services:
  app:
    image: ${TEST_IMAGE}:1
    command: ["sleep", "3600"]
    environment:
      GREETING: hello
    secrets:
      - source: token
        target: token.txt
        mode: 0400
    configs:
      - source: conf
        target: /etc/app.conf
    networks:
      back:
        aliases: [api]
    init: true
    stop_grace_period: 2s
    ulimits:
      nofile: {soft: 1024, hard: 2048}
    labels:
      role: app
    deploy:
      replicas: 2
      labels:
        tier: backend
      update_config: {parallelism: 1, delay: 1s, failure_action: rollback, monitor: 4s}
      restart_policy: {condition: any, delay: 1s}
  worker:
    image: ${TEST_IMAGE}:1
    command: sleep 3600
    depends_on: [app]
    networks: [back]
    deploy:
      mode: global
networks:
  back:
    driver: overlay
    attachable: true
    labels:
      purpose: test
secrets:
  token:
    file: ./token.txt
configs:
  conf:
    file: ./app.conf
`;

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

function unavailable(t: TestContext, reason: string): void {
    if (IN_CI) assert.fail(`integration test cannot run in CI: ${reason}`);
    t.skip(reason);
}

describe("stack providers against a real engine", { timeout: 15 * 60_000 }, () => {
    let d: Dockerd | undefined;
    let problem: string | undefined;
    let dir = "";
    let connect: Connect;
    // Placeholders: the local transport ignores them, as a real run would use them for SSH.
    const access: Access = { managers: [{ name: "local", address: "127.0.0.1", knownHosts: "" }], ssh: { user: "root", port: 22, privateKey: "", connectTimeout: 5 } };
    let file = "";

    const load = (overrides: StackOverrides = {}): StackSpec => convertStack(loadCompose(file, { cli: LATEST_CLI, stackName: STACK, env: {} }), overrides);
    const serviceInputs = (spec: StackSpec, key: string, extra: Partial<ServiceInputs> = {}): ServiceInputs => {
        const s = engineStack(spec).services.find((x) => x.key === key)!;
        return { ...access, stack: STACK, file: spec.file, key: `services.${key}`, name: s.name, spec: s.spec, resolveImage: "never", stableSeconds: 2, convergeTimeout: 90, ...extra };
    };
    const state: { network?: { id: string; outs: Any }; secret?: { id: string; outs: Any }; config?: { id: string; outs: Any }; services: Record<string, { id: string; outs: ServiceOutputs }> } = { services: {} };

    before(async () => {
        problem = dockerdProblem();
        if (problem) return;
        try {
            d = await startDockerd();
        } catch (e) {
            problem = (e as Error).message;
            return;
        }
        const local = localTransport("itest-dockerd", d.socket);
        connect = async () => findManager([local]);
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-it-stack-"));
        file = path.join(dir, "stack.yml");
        fs.writeFileSync(file, COMPOSE);
        fs.writeFileSync(path.join(dir, "token.txt"), "s3cret-token\n");
        fs.writeFileSync(path.join(dir, "app.conf"), "listen = 8080\n");
    });

    after(async () => {
        if (d) await stopDockerd(d);
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    test("the manager is found through the Engine API and the version negotiated", async (t) => {
        if (problem) return unavailable(t, problem);
        const m: Transport = await connect(access);
        assert.match(m.apiVersion ?? "", /^1\.\d+$/);
    });

    test("network, secret, config: create, read back equal, no diff", async (t) => {
        if (problem) return unavailable(t, problem);
        const spec = load();
        const eng = engineStack(spec);
        const np = networkProvider(connect);
        const n = eng.networks[0];
        const nIn: NetworkInputs = { ...access, stack: STACK, file, key: `networks.${n.key}`, name: n.name, create: n.create };
        const created = await np.create(nIn);
        state.network = { id: created.id, outs: created.outs };
        const read = await np.read!(created.id, created.outs);
        assert.equal(read.id, created.id);
        assert.deepEqual(read.props, created.outs);
        assert.equal((await np.diff!(created.id, read.props, nIn)).changes, false);
        const inspect = JSON.parse(docker(d!, ["network", "inspect", n.name]).stdout)[0];
        assert.equal(inspect.Driver, "overlay");
        assert.equal(inspect.Attachable, true);
        assert.equal(inspect.Labels["com.docker.stack.namespace"], STACK);
        // Adopting what exists (a second create, as after a lost state) gives the same network.
        assert.equal((await np.create(nIn)).id, created.id);

        const fp = fileObjectProvider(connect);
        for (const kind of ["secret", "config"] as const) {
            const o = (kind === "secret" ? eng.secrets : eng.configs)[0];
            const inputs: FileObjectInputs = {
                ...access, stack: STACK, file, key: `${kind}s.${o.key}`, kind, name: o.name,
                labels: o.spec.Labels as Record<string, string>, data: String(o.spec.Data),
            };
            const c = await fp.create(inputs);
            state[kind] = { id: c.id, outs: c.outs };
            const r = await fp.read!(c.id, c.outs);
            assert.deepEqual(r.props, c.outs);
            assert.equal((await fp.diff!(c.id, r.props, inputs)).changes, false);
            assert.match(o.name, new RegExp(`^${STACK}_${o.key}-[0-9a-f]{8}$`));
        }
    });

    test("services: created in depends_on order, converged, read back equal to the desired spec", async (t) => {
        if (problem) return unavailable(t, problem);
        const spec = load();
        const sp = serviceProvider(connect);
        assert.deepEqual(spec.services.map((s) => s.key), ["app", "worker"]);
        for (const s of spec.services) {
            const inputs = serviceInputs(spec, s.key);
            const c = await sp.create(inputs);
            forgetShared(); // as the provider does after every change to the cluster
            state.services[s.key] = { id: c.id, outs: c.outs };
            assert.equal(c.outs.actual, undefined, `${s.key}: actual equals desired (the state keeps no copy of it)`);
            const r = await sp.read!(c.id, c.outs);
            assert.deepEqual(differences(normaliseService(inputs.spec), actualOf(r.props)), [], `${s.key}: read back equal to the desired spec`);
            assert.equal((await sp.diff!(c.id, r.props, inputs)).changes, false, `${s.key}: no diff after create`);
        }
        const app = JSON.parse(docker(d!, ["service", "inspect", `${STACK}_app`]).stdout)[0].Spec;
        assert.equal(app.TaskTemplate.ContainerSpec.Init, true, "init is set");
        assert.deepEqual(app.TaskTemplate.ContainerSpec.Ulimits, [{ Name: "nofile", Soft: 1024, Hard: 2048 }]);
        assert.equal(app.TaskTemplate.ContainerSpec.Secrets[0].File.Mode, 0o400);
        assert.deepEqual(app.TaskTemplate.Networks[0].Aliases, ["api", "app"]);
        assert.equal(app.Labels["com.docker.stack.image"], `${TEST_IMAGE}:1`);
        const running = docker(d!, ["service", "ps", `${STACK}_app`, "--filter", "desired-state=running", "--format", "{{.CurrentState}}"]).stdout.trim().split("\n");
        assert.equal(running.length, 2);
        assert.ok(running.every((l) => l.startsWith("Running")), running.join("; "));
    });

    test("an image change is an update (no replacement) that rolls the service and converges", async (t) => {
        if (problem) return unavailable(t, problem);
        const { id, outs } = state.services.app;
        const sp = serviceProvider(connect);
        const news = serviceInputs(load({ images: { app: `${TEST_IMAGE}:2` } }), "app");
        const diff = await sp.diff!(id, outs, news);
        assert.equal(diff.changes, true);
        assert.deepEqual(diff.replaces, []);
        const u = await sp.update!(id, outs, news);
        assert.equal(u.outs.image, `${TEST_IMAGE}:2`);
        assert.equal(u.outs.rollback, "");
        state.services.app = { id, outs: u.outs };
        assert.equal((await sp.diff!(id, u.outs, news)).changes, false);
        // Worker untouched.
        const w = state.services.worker;
        assert.equal((await sp.diff!(w.id, (await sp.read!(w.id, w.outs)).props, serviceInputs(load(), "worker"))).changes, false);
    });

    test("drift made by hand shows in read and diff, and the update puts it back", async (t) => {
        if (problem) return unavailable(t, problem);
        const { id, outs } = state.services.app;
        const sp = serviceProvider(connect);
        assert.equal(docker(d!, ["service", "update", "--detach", "--env-add", "DRIFT=1", `${STACK}_app`]).status, 0);
        forgetShared(); // a new refresh (one per provider process): the reads of the last one are not reused
        const r = await sp.read!(id, outs);
        const news = serviceInputs(load({ images: { app: `${TEST_IMAGE}:2` } }), "app");
        assert.deepEqual(differences(normaliseService(news.spec), r.props.actual), ["TaskTemplate.ContainerSpec.Env"]);
        assert.equal((await sp.diff!(id, r.props, news)).changes, true);
        const u = await sp.update!(id, r.props, news);
        assert.deepEqual(differences(normaliseService(news.spec), actualOf(u.outs)), []);
        state.services.app = { id, outs: u.outs };
    });

    test("a failing update with failure_action rollback is rolled back by the engine and reported", async (t) => {
        if (problem) return unavailable(t, problem);
        const { id, outs } = state.services.app;
        const sp = serviceProvider(connect);
        const bad = serviceInputs(load({ images: { app: `${TEST_IMAGE}:2` } }), "app");
        const cs = (bad.spec as Any).TaskTemplate.ContainerSpec;
        cs.Args = ["sh", "-c", "echo boom >&2; exit 3"];
        await assert.rejects(sp.update!(id, outs, bad), (e: Error) => {
            assert.match(e.message, /itest_app/);
            assert.match(e.message, /rolled it back/);
            return true;
        });
        forgetShared();
        const back = await sp.read!(id, outs);
        assert.deepEqual(actualOf(back.props), actualOf(outs), "the engine is back on the previous spec");
    });

    test("a service whose tasks fail: a clear error naming it and the task error; the service is kept", async (t) => {
        if (problem) return unavailable(t, problem);
        const sp = serviceProvider(connect);
        const inputs = serviceInputs(load(), "worker", { convergeTimeout: 12 });
        const spec = JSON.parse(JSON.stringify(inputs.spec));
        spec.Name = `${STACK}_broken`;
        spec.Mode = { Replicated: { Replicas: 1 } };
        spec.TaskTemplate.ContainerSpec.Image = `${TEST_IMAGE}:missing`;
        spec.Labels["com.docker.stack.image"] = `${TEST_IMAGE}:missing`;
        const broken = { ...inputs, key: "services.broken", name: `${STACK}_broken`, spec: spec as JsonObject };
        await assert.rejects(sp.create(broken), (e: Error) => {
            assert.match(e.message, /services\.broken: service itest_broken did not converge within 12s: 0\/1 tasks running/);
            assert.match(e.message, /No such image: dccn-test\/busybox:missing/);
            return true;
        });
        assert.equal(docker(d!, ["service", "inspect", `${STACK}_broken`]).status, 0, "the service is not deleted");
        // The next `pulumi up` adopts it (same name, same stack) instead of failing on the name.
        const good = JSON.parse(JSON.stringify(spec));
        good.TaskTemplate.ContainerSpec.Image = `${TEST_IMAGE}:1`;
        good.Labels["com.docker.stack.image"] = `${TEST_IMAGE}:1`;
        const fixed = { ...broken, convergeTimeout: 60, spec: good as JsonObject };
        const c = await sp.create(fixed);
        assert.equal(c.outs.image, `${TEST_IMAGE}:1`);
        await sp.delete!(c.id, c.outs);
        assert.notEqual(docker(d!, ["service", "inspect", `${STACK}_broken`]).status, 0);
    });

    test("a service whose tasks run a moment and exit is not taken as converged (each new task's start counts)", async (t) => {
        if (problem) return unavailable(t, problem);
        const sp = serviceProvider(connect);
        const inputs = serviceInputs(load(), "worker", { convergeTimeout: 14, stableSeconds: 4 });
        const spec = JSON.parse(JSON.stringify(inputs.spec));
        spec.Name = `${STACK}_flaky`;
        spec.Mode = { Replicated: { Replicas: 1 } };
        // Runs 2 s, exits; the engine starts a new task at once: at every poll one task runs.
        spec.TaskTemplate.ContainerSpec.Command = ["sh", "-c", "sleep 2; exit 1"];
        delete spec.TaskTemplate.ContainerSpec.Args;
        spec.TaskTemplate.RestartPolicy = { Condition: "any", Delay: 0 };
        const flaky = { ...inputs, key: "services.flaky", name: `${STACK}_flaky`, spec: spec as JsonObject };
        try {
            await assert.rejects(sp.create(flaky), /services\.flaky: service itest_flaky did not converge within 14s/);
        } finally {
            docker(d!, ["service", "rm", `${STACK}_flaky`]);
        }
    });

    test("a new secret content: new secret, service switched, old secret removable", async (t) => {
        if (problem) return unavailable(t, problem);
        fs.writeFileSync(path.join(dir, "token.txt"), "rotated-token\n");
        const spec = load({ images: { app: `${TEST_IMAGE}:2` } });
        const eng = engineStack(spec);
        const fp = fileObjectProvider(connect);
        const o = eng.secrets[0];
        const news: FileObjectInputs = { ...access, stack: STACK, file, key: "secrets.token", kind: "secret", name: o.name, labels: o.spec.Labels as Record<string, string>, data: String(o.spec.Data) };
        const old = state.secret!;
        const diff = await fp.diff!(old.id, old.outs, news);
        assert.deepEqual(diff.replaces, ["name", "data"]);
        assert.equal(diff.deleteBeforeReplace, false, "create before delete: the name differs");
        const c = await fp.create(news);
        const sp = serviceProvider(connect);
        const app = state.services.app;
        const svcNews = serviceInputs(spec, "app");
        assert.equal((await sp.diff!(app.id, app.outs, svcNews)).changes, true);
        const u = await sp.update!(app.id, app.outs, svcNews);
        state.services.app = { id: app.id, outs: u.outs };
        await fp.delete!(old.id, old.outs);
        state.secret = { id: c.id, outs: c.outs };
        const names = docker(d!, ["secret", "ls", "--format", "{{.Name}}"]).stdout.trim().split("\n");
        assert.deepEqual(names, [o.name]);
    });

    test("a missing external network fails check() with the file and the name", async (t) => {
        if (problem) return unavailable(t, problem);
        const ep = externalsProvider(connect);
        const inputs = { ...access, stack: STACK, file, refs: [{ kind: "network" as const, name: "no-such-net", usedBy: ["services.app.networks"] }] };
        const r = await ep.check!({} as Any, inputs);
        assert.equal(r.failures?.length, 1);
        assert.match(r.failures![0].reason, new RegExp(`${file.replace(/[.]/g, "\\.")}: services\\.app\\.networks: external network "no-such-net" does not exist`));
        await assert.rejects(ep.create(inputs), /no-such-net/);
        const ok = { ...inputs, refs: [{ kind: "network" as const, name: `${STACK}_back`, usedBy: [] }] };
        assert.deepEqual((await ep.check!({} as Any, ok)).failures, []);
    });

    test("a network still used by a service the state does not hold: the error names the service and the fix", async (t) => {
        if (problem) return unavailable(t, problem);
        const np = networkProvider(connect);
        const nIn: NetworkInputs = {
            ...access, stack: STACK, file, key: "networks.orphaned", name: `${STACK}_orphaned`,
            create: { Name: `${STACK}_orphaned`, Driver: "overlay", Labels: { "com.docker.stack.namespace": STACK } },
        };
        const n = await np.create(nIn);
        // What a create that failed to converge leaves behind: the stack's service, on the engine only.
        assert.equal(docker(d!, ["service", "create", "-d", "--name", `${STACK}_leftover`, "--label", `com.docker.stack.namespace=${STACK}`,
            "--network", `${STACK}_orphaned`, `${TEST_IMAGE}:1`, "sleep", "3600"]).status, 0);
        await assert.rejects(np.delete!(n.id, n.outs), (e: Error) => {
            assert.match(e.message, new RegExp(`networks\\.orphaned: removing network ${STACK}_orphaned failed: service ${STACK}_leftover of stack ${STACK} ` +
                "still uses it, and this stack's Pulumi state does not hold it"));
            assert.match(e.message, new RegExp(`remove it \\(docker service rm ${STACK}_leftover\\) and run \`pulumi up\` again`));
            return true;
        });
        assert.equal(docker(d!, ["network", "inspect", `${STACK}_orphaned`]).status, 0, "the network is still there");
        assert.equal(docker(d!, ["service", "rm", `${STACK}_leftover`]).status, 0);
        await np.delete!(n.id, n.outs);
        assert.notEqual(docker(d!, ["network", "inspect", `${STACK}_orphaned`]).status, 0, "gone once the service is");
    });

    test("delete: services, then secret, config and network; nothing of the stack is left", async (t) => {
        if (problem) return unavailable(t, problem);
        const sp = serviceProvider(connect);
        for (const key of ["worker", "app"]) await sp.delete!(state.services[key].id, state.services[key].outs);
        const fp = fileObjectProvider(connect);
        await fp.delete!(state.secret!.id, state.secret!.outs);
        await fp.delete!(state.config!.id, state.config!.outs);
        await networkProvider(connect).delete!(state.network!.id, state.network!.outs);
        const left = ["service", "secret", "config", "network"].map((k) =>
            docker(d!, [k, "ls", "--filter", `label=com.docker.stack.namespace=${STACK}`, "-q"]).stdout.trim()).filter(Boolean);
        assert.deepEqual(left, []);
        // Reading what is gone reports it gone (pulumi refresh drops it).
        assert.equal((await sp.read!(state.services.app.id, state.services.app.outs)).id, "");
    });
});

// ---------------------------------------------------------------------------------------------
// The same through the real Pulumi engine (tools/toolchain.sh's pulumi and Node.js language host):
// up, preview without changes, an image change that updates one service only, preview without
// changes, destroy. The providers run in Pulumi's provider process from their serialised closures.

const REPO = path.resolve(__dirname, "..", "..");
const PROGRAM = path.join(__dirname, "program");
const PULUMI_VERSION = `v${JSON.parse(fs.readFileSync(path.join(REPO, "node_modules", "@pulumi", "pulumi", "package.json"), "utf8")).version}`;

/** The environment of `. tools/env.sh`, or a reason why the engine cannot run. */
function toolchain(): { env: NodeJS.ProcessEnv; root: string } | string {
    const { spawnSync } = require("node:child_process") as typeof import("node:child_process");
    const r = spawnSync("bash", ["-c", ". tools/env.sh >/dev/null && pulumi version && dirname \"$(dirname \"$(command -v pulumi)\")\" && command -v pulumi-language-nodejs >/dev/null && env -0"], { cwd: REPO, encoding: "utf8" });
    if (r.status !== 0) return "no pulumi toolchain (run `npm run toolchain`)";
    const [version, root, ...rest] = r.stdout.split("\n");
    if (version.trim() !== PULUMI_VERSION) return `pulumi on PATH is ${version.trim()}, but @pulumi/pulumi wants ${PULUMI_VERSION}`;
    const env: NodeJS.ProcessEnv = {};
    for (const entry of rest.join("\n").split("\0")) {
        const i = entry.indexOf("=");
        if (i > 0) env[entry.slice(0, i)] = entry.slice(i + 1);
    }
    return { env, root: root.trim() };
}

describe("a compose stack through the real Pulumi engine", { timeout: 20 * 60_000 }, () => {
    let d: Dockerd | undefined;
    let problem: string | undefined;
    let dir = "";

    before(async () => {
        problem = dockerdProblem();
        const tc = toolchain();
        if (!problem && typeof tc === "string") problem = tc;
        if (problem) return;
        try {
            d = await startDockerd();
        } catch (e) {
            problem = (e as Error).message;
            return;
        }
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-it-pulumi-"));
        fs.writeFileSync(path.join(dir, "stack.yml"), COMPOSE);
        fs.writeFileSync(path.join(dir, "token.txt"), "s3cret-token\n");
        fs.writeFileSync(path.join(dir, "app.conf"), "listen = 8080\n");
    });

    after(async () => {
        if (d) await stopDockerd(d);
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    test("up, preview without changes, image change updates one service, refresh, secret rotation, destroy, missing external at preview", async (t) => {
        if (problem) return unavailable(t, problem);
        const { LocalWorkspace, PulumiCommand } = await import("@pulumi/pulumi/automation");
        const tc = toolchain() as { env: NodeJS.ProcessEnv; root: string };
        const backend = path.join(dir, "backend");
        fs.mkdirSync(backend);
        const passphraseFile = path.join(dir, "passphrase");
        fs.writeFileSync(passphraseFile, "itest-" + Date.now(), { mode: 0o600 });
        const stackName = `itest-${process.pid}`;
        const stack = await LocalWorkspace.createOrSelectStack({ stackName, workDir: PROGRAM }, {
            pulumiCommand: await PulumiCommand.get({ root: tc.root }),
            envVars: {
                PATH: tc.env.PATH ?? "", PULUMI_HOME: tc.env.PULUMI_HOME ?? "",
                PULUMI_BACKEND_URL: `file://${backend}`, PULUMI_CONFIG_PASSPHRASE_FILE: passphraseFile,
                PULUMI_SKIP_UPDATE_CHECK: "true", PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
                // A throwaway engine, no cluster config: no cluster lock to keep (its switch, as the README names it).
                DCCN_CLUSTER_LOCK: "off",
            },
        });
        const noChanges = (summary: Record<string, number> | undefined, what: string) =>
            assert.deepEqual(Object.entries(summary ?? {}).filter(([op, n]) => op !== "same" && n > 0), [], `${what}: preview shows no changes`);
        try {
            await stack.setConfig("itest:stackName", { value: "pit" });
            await stack.setConfig("itest:composeFile", { value: path.join(dir, "stack.yml") });
            await stack.setConfig("itest:socket", { value: d!.socket });
            const up = await stack.up();
            assert.equal(up.summary.result, "succeeded");
            assert.deepEqual(up.outputs.services.value, ["pit_app", "pit_worker"]);
            assert.equal(docker(d!, ["service", "inspect", "pit_app", "--format", "{{.Spec.Mode.Replicated.Replicas}}"]).stdout.trim(), "2");
            noChanges((await stack.preview()).changeSummary, "after up");
            // The automation API exports with --show-secrets: secrets show as envelopes with their plaintext.
            const exported = JSON.stringify(await stack.exportStack());
            const state = JSON.stringify(JSON.parse(exported), (_k, v) =>
                v && typeof v === "object" && "4dabf18193072939515e22adb298388d" in v ? "<secret>" : v);
            for (const secret of [Buffer.from("s3cret-token\n").toString("base64")]) {
                assert.ok(exported.includes(secret), `${secret} reached the state`);
                assert.ok(!state.includes(secret), `${secret} is in the state only as a secret`);
            }
            // No image of this stack is in the private registry: its credentials go to no service.
            assert.ok(!exported.includes("itest-registry-password"), "registry credentials only where the image is in that registry");

            await stack.setConfig("itest:overrides", { value: JSON.stringify({ images: { app: `${TEST_IMAGE}:2` } }) });
            const pre = await stack.preview();
            assert.equal(pre.changeSummary.update, 1, "the image change is one update");
            assert.equal(pre.changeSummary.replace ?? 0, 0);
            const up2 = await stack.up();
            assert.equal(up2.summary.result, "succeeded");
            assert.equal(up2.summary.resourceChanges?.update, 1);
            assert.deepEqual(up2.outputs.images.value, { app: `${TEST_IMAGE}:2`, worker: `${TEST_IMAGE}:1` });
            noChanges((await stack.preview()).changeSummary, "after the image change");

            const refresh = await stack.refresh();
            assert.equal(refresh.summary.result, "succeeded");
            noChanges((await stack.preview()).changeSummary, "after refresh");

            // A new secret content: a new secret, the service switched to it, the old one removed last.
            const oldSecret = docker(d!, ["secret", "ls", "--format", "{{.Name}}"]).stdout.trim();
            fs.writeFileSync(path.join(dir, "token.txt"), "rotated-token\n");
            const up3 = await stack.up();
            assert.equal(up3.summary.result, "succeeded");
            assert.equal(up3.summary.resourceChanges?.replace, 1, "the secret is replaced");
            assert.equal(up3.summary.resourceChanges?.update, 1, "the service using it is updated");
            const secrets = docker(d!, ["secret", "ls", "--format", "{{.Name}}"]).stdout.trim().split("\n");
            assert.equal(secrets.length, 1);
            assert.notEqual(secrets[0], oldSecret);
            assert.match(docker(d!, ["service", "inspect", "pit_app", "--format", "{{json .Spec.TaskTemplate.ContainerSpec.Secrets}}"]).stdout, new RegExp(secrets[0]));
            noChanges((await stack.preview()).changeSummary, "after the secret rotation");

            const destroy = await stack.destroy();
            assert.equal(destroy.summary.result, "succeeded");
            const left = ["service", "secret", "config", "network"].map((k) =>
                docker(d!, [k, "ls", "--filter", "label=com.docker.stack.namespace=pit", "-q"]).stdout.trim()).filter(Boolean);
            assert.deepEqual(left, []);

            // A missing external network stops the preview, naming the file and the network.
            fs.writeFileSync(path.join(dir, "external.yml"), `version: "3.8"\nservices:\n  app:\n    image: ${TEST_IMAGE}:1\n    networks: [outside]\n` +
                "networks:\n  outside:\n    external: true\n    name: no-such-net\n");
            await stack.setConfig("itest:composeFile", { value: path.join(dir, "external.yml") });
            await stack.removeConfig("itest:overrides");
            await assert.rejects(stack.preview(), (e: Error) => {
                assert.match(e.message, /external\.yml: services\.app\.networks: external network "no-such-net" does not exist on the swarm/);
                return true;
            });
        } finally {
            await stack.workspace.removeStack(stackName, { force: true }).catch(() => undefined);
            fs.rmSync(path.join(PROGRAM, `Pulumi.${stackName}.yaml`), { force: true });
        }
    });
});
