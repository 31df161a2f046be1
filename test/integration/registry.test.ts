// The private registry against a real engine: a throwaway dockerd in its own network and mount
// namespaces (its /etc/docker and /etc/hosts are files of this test, bind-mounted there, so the
// host's and the lab's are untouched), a one-node swarm, the registry image the lab builds
// (Debian's docker-registry, distribution 2.8), and the registry's pieces as the component uses
// them: certificates and htpasswd from the providers' functions, the CA installed by
// scripts/registry-ca.sh (the trust step's exact stdin, run here with DCCN_ROOT instead of over
// SSH), the swarm secrets and the service through the stack providers, the readiness login.
//
// The registry's name resolves (through the test's /etc/hosts) to 192.0.2.10, an address on the
// namespace's loopback device: not 127.0.0.0/8, which the engine would treat as an insecure
// registry, so every TLS check here is real. No insecure-registries entry exists.
//
// When dockerd or the registry image is not available the test skips with the reason, except in
// CI (CI=true), where it fails.
//
// Run: node --import tsx --test test/integration/registry.test.ts
import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { dataDirStep, registryServiceSpec, trustStep, contentName } from "../../components/registry";
import { stepStdin } from "../../lib/remote-script";
import { findManager, localTransport, type Transport } from "../../lib/engine-transport";
import { certInfo } from "../../lib/pki";
import type { RegistryConfig } from "../../lib/registry-config";
import { buildHtpasswd, issuePki, type PkiInputs, type PkiOutputs, probeLogin, type ProbeInputs } from "../../lib/registry-providers";
import { scriptStdin, parseResult } from "../../lib/remote-script";
import {
    type Access, type Connect, fileObjectProvider, serviceProvider, type FileObjectInputs, type ServiceInputs, type ServiceOutputs,
} from "../../lib/stack-providers";
import { docker, type Dockerd, dockerdProblem, stopDockerd } from "../../tools/dockerd";
import { imageProvider, type ImageInputs, type ImageOutputs } from "../../lib/image-providers";
import { packContext } from "../../lib/build-context";

const IN_CI = process.env.CI === "true";
const HOST = "registry.dccn.test";
const ADDRESS = "192.0.2.10";
const PORT = 5000;
const ENDPOINT = `${HOST}:${PORT}`;
const LAB_SOCKET = "/run/dccn-lab/docker.sock";
const LAB_CACHE = process.env.LAB_CACHE_DIR || "/var/cache/dccn-lab";
const REGISTRY_IMAGE = "dccn-lab/registry:2.8";
const TINY = "dccn-itest/tiny:1";
const STACK = "registry";
const FILE = "Pulumi.itest.yaml";
const DAY = 86_400_000;

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

function unavailable(t: TestContext, reason: string): void {
    if (IN_CI) assert.fail(`integration test cannot run in CI: ${reason}`);
    t.skip(reason);
}

interface RegistryDockerd extends Dockerd {
    /** Stands in for a node's / (registry-ca.sh's DCCN_ROOT): etc/docker and etc/hosts are the engine's. */
    fsroot: string;
    pid: number;
}

/** A dockerd with private /etc/docker and /etc/hosts, the registry address on lo, and a one-node swarm. */
async function startRegistryDockerd(): Promise<RegistryDockerd> {
    const dir = fs.mkdtempSync("/tmp/dccn-rit-");
    const socket = `${dir}/docker.sock`;
    const tag = path.basename(dir);
    const fsroot = path.join(dir, "fsroot");
    fs.mkdirSync(path.join(fsroot, "etc", "docker"), { recursive: true });
    fs.writeFileSync(path.join(fsroot, "etc", "hosts"), "127.0.0.1 localhost\n");
    const log = fs.openSync(path.join(dir, "dockerd.log"), "w");
    const script = [
        "set -e",
        "mount --make-rprivate /",
        `mount --bind ${fsroot}/etc/hosts /etc/hosts`,
        `mkdir -p /etc/docker`,
        `mount --bind ${fsroot}/etc/docker /etc/docker`,
        "ip link set lo up",
        `ip addr add ${ADDRESS}/32 dev lo`,
        // The default bridge (inside this namespace only) carries the host-mode published port.
        `exec dockerd --data-root ${dir}/root --exec-root ${dir}/exec -H unix://${socket} --pidfile ${dir}/docker.pid ` +
        `--containerd-namespace ${tag} --containerd-plugins-namespace ${tag}-plugins --iptables=false --ip-masq=false`,
    ].join("\n");
    // setpriv --pdeathsig: the engine stops with this process even when it is killed before `after` runs.
    const pdeath = spawnSync("bash", ["-c", "command -v setpriv && setpriv --help | grep -q pdeathsig"]).status === 0;
    const proc = spawn(pdeath ? "setpriv" : "unshare", [...(pdeath ? ["--pdeathsig", "TERM", "unshare"] : []), "--net", "--mount", "--", "bash", "-c", script], {
        stdio: ["ignore", log, log],
        // No DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: tasks must pull from the registry. (The registry's own
        // image is local; its pull from Docker Hub fails at once here and the local image is used.)
    });
    fs.closeSync(log);
    const d: RegistryDockerd = { dir, socket, proc, fsroot, pid: proc.pid ?? 0 };
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && proc.exitCode === null) {
        if (docker(d, ["version", "--format", "{{.Server.Version}}"]).status === 0) {
            const init = docker(d, ["swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377"]);
            if (init.status !== 0) {
                await stopRegistryDockerd(d);
                throw new Error(`docker swarm init failed: ${init.stderr}`);
            }
            return d;
        }
        await new Promise((r) => setTimeout(r, 500));
    }
    const tail = fs.readFileSync(path.join(dir, "dockerd.log"), "utf8").split("\n").slice(-15).join("\n");
    await stopRegistryDockerd(d);
    throw new Error(`dockerd did not come up on ${socket} within 60s:\n${tail}`);
}

/** stopDockerd, and the engine by its pid file too, should it not be the process started (it is, through exec). */
async function stopRegistryDockerd(d: RegistryDockerd): Promise<void> {
    let pid = 0;
    try {
        pid = Number(fs.readFileSync(path.join(d.dir, "docker.pid"), "utf8").trim());
    } catch { /* never started */ }
    if (pid > 0 && pid !== d.proc.pid) {
        try {
            process.kill(pid, "SIGTERM");
        } catch { /* gone */ }
    }
    await stopDockerd(d);
}

/** The registry image: from the lab's host engine, else from the lab's image cache. A reason when neither has it. */
function loadRegistryImage(d: Dockerd): string | undefined {
    if (fs.existsSync(LAB_SOCKET)) {
        const r = spawnSync("bash", ["-c", `docker -H unix://${LAB_SOCKET} save ${REGISTRY_IMAGE} | docker -H unix://${d.socket} load`], { encoding: "utf8" });
        if (r.status === 0 && docker(d, ["image", "inspect", REGISTRY_IMAGE]).status === 0) return undefined;
    }
    const images = path.join(LAB_CACHE, "images");
    const dirs = fs.existsSync(images) ? fs.readdirSync(images).filter((n) => n.startsWith("registry-")).map((n) => path.join(images, n))
        .filter((p) => fs.existsSync(path.join(p, "lab-meta.json"))).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs) : [];
    for (const dir of dirs) {
        const meta = JSON.parse(fs.readFileSync(path.join(dir, "lab-meta.json"), "utf8"));
        if (!(meta.layers as string[]).every((l) => fs.existsSync(l))) continue;
        const stage = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-rit-image-"));
        try {
            fs.copyFileSync(path.join(dir, meta.config), path.join(stage, meta.config));
            const layers = (meta.layers as string[]).map((l, i) => {
                const hex = String(meta.diffIds[i]).replace(/^sha256:/, "");
                fs.mkdirSync(path.join(stage, hex), { recursive: true });
                fs.symlinkSync(l, path.join(stage, hex, "layer.tar"));
                return `${hex}/layer.tar`;
            });
            fs.writeFileSync(path.join(stage, "manifest.json"), JSON.stringify([{ Config: meta.config, RepoTags: [meta.ref], Layers: layers }]));
            const r = spawnSync("bash", ["-c", `tar -C ${stage} -ch . | docker -H unix://${d.socket} load`], { encoding: "utf8" });
            if (r.status === 0 && docker(d, ["image", "inspect", REGISTRY_IMAGE]).status === 0) return undefined;
        } finally {
            fs.rmSync(stage, { recursive: true, force: true });
        }
    }
    return `${REGISTRY_IMAGE} is neither in the lab's engine (${LAB_SOCKET}) nor in its cache (${images}); run \`npm run lab:up\` once`;
}

/** A few-megabyte image from busybox-static, to push and pull. */
function importTiny(d: Dockerd): void {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-rit-tiny-"));
    try {
        fs.mkdirSync(path.join(root, "bin"));
        const busybox = fs.existsSync("/bin/busybox") ? "/bin/busybox" : "/usr/bin/busybox";
        fs.copyFileSync(busybox, path.join(root, "bin", "busybox"));
        fs.chmodSync(path.join(root, "bin", "busybox"), 0o755);
        for (const c of ["sh", "sleep"]) fs.symlinkSync("busybox", path.join(root, "bin", c));
        fs.writeFileSync(path.join(root, "marker"), `pushed by the registry test ${Date.now()}\n`);
        const tar = spawnSync("tar", ["-C", root, "-c", "."], { maxBuffer: 64 * 1024 * 1024 });
        const imp = spawnSync("docker", ["-H", `unix://${d.socket}`, "import", "-c", "ENV PATH=/bin", "-", TINY], { input: tar.stdout, encoding: "utf8" });
        if (imp.status !== 0) throw new Error(`docker import failed: ${imp.stderr}`);
    } finally {
        fs.rmSync(root, { recursive: true, force: true });
    }
}

/** Runs a provisioning step's stdin here, as `bash -s` on a node would, with `/` moved to `root`. */
function runStep(stdin: string, root: string): { code: number; stdout: string; stderr: string } {
    const r = spawnSync("bash", ["-s"], { input: "set -euo pipefail\n" + stdin, encoding: "utf8", env: { ...process.env, DCCN_ROOT: root } });
    return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

describe("the private registry on a throwaway swarm", { timeout: 15 * 60_000 }, () => {
    let d: RegistryDockerd | undefined;
    let problem: string | undefined;
    let connect: Connect;
    let transport: Transport;
    let dockerConfig = "";
    const access: Access = { managers: [{ name: "local", address: "127.0.0.1", knownHosts: "" }], ssh: { user: "root", port: 22, privateKey: "", connectTimeout: 5 } };
    let cfg: RegistryConfig;
    const passwords: Record<string, string> = { alice: "alice-Pw-1", bob: "bob-Pw-2", carol: "carol-Pw-3" };
    const state: {
        pki?: PkiOutputs; pkiInputs?: PkiInputs; hashes?: Record<string, string>; htpasswd?: string;
        secrets: Record<string, { id: string; outs: Any }>; service?: { id: string; outs: ServiceOutputs };
    } = { secrets: {} };

    const dk = (args: string[], input?: string) => spawnSync("docker", ["-H", `unix://${d!.socket}`, ...args], {
        encoding: "utf8", timeout: 180_000, input, env: { ...process.env, DOCKER_CONFIG: dockerConfig },
    });
    /** curl inside the engine's namespaces (its /etc/hosts), so the registry's name resolves as the engine resolves it. */
    const curl = (args: string[]) => spawnSync("nsenter", ["-t", String(d!.pid), "-n", "-m", "curl", "-sS", "--max-time", "20", ...args], { encoding: "utf8" });
    const caFile = () => path.join(d!.fsroot, "etc", "docker", "certs.d", ENDPOINT, "ca.crt");

    const secretInputs = (key: string, content: string): FileObjectInputs => ({
        ...access, stack: STACK, file: FILE, key: `dccn-swarm:registry.${key}`, kind: "secret",
        name: contentName(STACK, key, key === "tls_key" ? state.pki!.serverCert : content),
        labels: { "com.docker.stack.namespace": STACK }, data: Buffer.from(content).toString("base64"),
    });
    const serviceInputs = (): ServiceInputs => ({
        ...access, stack: STACK, file: FILE, key: "dccn-swarm:registry", name: `${STACK}_registry`, resolveImage: "never", stableSeconds: 3, convergeTimeout: 120,
        spec: registryServiceSpec(cfg, STACK, {
            cert: contentName(STACK, "tls_cert", state.pki!.serverCert),
            key: contentName(STACK, "tls_key", state.pki!.serverCert),
            htpasswd: contentName(STACK, "htpasswd", state.htpasswd!),
        }),
    });
    const probe = (username: string, password: string, timeout = 60): ProbeInputs => ({
        ...access, stackFile: FILE, serveraddress: ENDPOINT, username, password, revision: "itest", timeout,
    });

    /** New secrets created first, the service moved to them, the old ones removed last (as Pulumi's replacement does). */
    async function rollOut(kinds: { key: string; content: string }[]): Promise<void> {
        const fp = fileObjectProvider(connect);
        const old: { id: string; outs: Any }[] = [];
        for (const k of kinds) {
            const created = await fp.create(secretInputs(k.key, k.content));
            if (state.secrets[k.key] && state.secrets[k.key].id !== created.id) old.push(state.secrets[k.key]);
            state.secrets[k.key] = { id: created.id, outs: created.outs };
        }
        const sp = serviceProvider(connect);
        const inputs = serviceInputs();
        assert.equal((await sp.diff!(state.service!.id, state.service!.outs, inputs)).changes, true, "the new secrets are a service change");
        const updated = await sp.update!(state.service!.id, state.service!.outs, inputs);
        state.service = { id: state.service!.id, outs: updated.outs as ServiceOutputs };
        assert.equal(updated.outs.rollback, "", "no rollback");
        for (const o of old) await fp.delete!(o.id, o.outs);
        assert.equal((await sp.diff!(state.service.id, state.service.outs, serviceInputs())).changes, false, "no diff after the update");
    }

    before(async () => {
        problem = dockerdProblem();
        for (const cmd of ["openssl", "nsenter"]) {
            if (!problem && spawnSync("bash", ["-c", `command -v ${cmd}`]).status !== 0) problem = `${cmd} is not installed`;
        }
        if (problem) return;
        try {
            d = await startRegistryDockerd();
        } catch (e) {
            problem = (e as Error).message;
            return;
        }
        problem = loadRegistryImage(d);
        if (problem) return;
        importTiny(d);
        dockerConfig = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-rit-client-"));
        transport = await findManager([localTransport("itest-registry", d.socket)]);
        connect = async () => transport;
        cfg = {
            host: HOST, port: PORT, address: ADDRESS, placement: { key: "registry", value: "true" }, constraint: "node.labels.registry==true",
            dataPath: path.join(d.dir, "registry-data"), image: REGISTRY_IMAGE, users: ["alice", "bob"], pullUser: "bob", pushUser: "alice",
            certificate: { validityDays: 825, renewBeforeDays: 30, caValidityDays: 3650 }, endpoint: ENDPOINT,
        };
    });

    after(async () => {
        if (d) await stopRegistryDockerd(d);
        if (dockerConfig) fs.rmSync(dockerConfig, { recursive: true, force: true });
    });

    test("CA trusted by the node (registry-ca.sh), data directory, TLS+htpasswd registry service up, login on the manager", async (t) => {
        if (problem) return unavailable(t, problem);
        const nodeId = dk(["info", "--format", "{{.Swarm.NodeID}}"]).stdout.trim();
        assert.equal(dk(["node", "update", "--label-add", "registry=true", nodeId]).status, 0);
        state.pkiInputs = {
            stackFile: FILE, host: HOST, address: ADDRESS, validityDays: 825, renewBeforeDays: 30, caValidityDays: 3650, caCommonName: "dccn-swarm registry CA",
        };
        state.pki = issuePki(state.pkiInputs, undefined, new Date());
        ({ hashes: state.hashes, htpasswd: state.htpasswd } = buildHtpasswd(cfg.users, passwords, {}));

        // The trust step, exactly as the component sends it to every node.
        const trust = runStep(stepStdin({ ...trustStep(cfg), data: state.pki.trustBundle }), d!.fsroot);
        assert.equal(trust.code, 0, trust.stderr);
        assert.match(parseResult(trust.stdout)!.values.ca, /written/);
        assert.equal(parseResult(trust.stdout)!.values.hosts, "added");
        assert.equal(fs.readFileSync(caFile(), "utf8"), state.pki.trustBundle);
        assert.match(fs.readFileSync(path.join(d!.fsroot, "etc", "hosts"), "utf8"), new RegExp(`^${ADDRESS} ${HOST} # dccn-swarm registry-ca$`, "m"));
        assert.equal(parseResult(runStep(stepStdin({ ...trustStep(cfg), data: state.pki.trustBundle }), d!.fsroot).stdout)!.changed, false, "idempotent");

        const data = runStep(stepStdin(dataDirStep(cfg)), "/");
        assert.equal(data.code, 0, data.stderr);
        assert.equal(parseResult(data.stdout)!.changed, true);
        assert.ok(fs.statSync(cfg.dataPath).isDirectory());
        assert.equal(parseResult(runStep(stepStdin(dataDirStep(cfg)), "/").stdout)!.changed, false);

        const fp = fileObjectProvider(connect);
        for (const [key, content] of [["tls_cert", state.pki.serverCert], ["tls_key", state.pki.serverKey], ["htpasswd", state.htpasswd!]] as const) {
            const created = await fp.create(secretInputs(key, content));
            state.secrets[key] = { id: created.id, outs: created.outs };
        }
        const sp = serviceProvider(connect);
        const inputs = serviceInputs();
        const created = await sp.create(inputs);
        state.service = { id: created.id, outs: created.outs as ServiceOutputs };
        const read = await sp.read!(created.id, created.outs);
        assert.equal((await sp.diff!(created.id, read.props as ServiceOutputs, inputs)).changes, false, "the spec reads back equal: no perpetual diff");
        const svc = JSON.parse(dk(["service", "inspect", `${STACK}_registry`]).stdout)[0];
        assert.deepEqual(svc.Spec.EndpointSpec.Ports, [{ Protocol: "tcp", TargetPort: 5000, PublishedPort: 5000, PublishMode: "host" }]);
        const container = dk(["ps", "--filter", `label=com.docker.swarm.service.name=${STACK}_registry`, "--format", "{{.Status}}"]).stdout;
        assert.match(container, /\(healthy\)/, "the health check passes");

        const ok = await probeLogin(transport, probe("bob", passwords.bob));
        assert.match(ok.status, /Login Succeeded/);
    });

    test("anonymous /v2/_catalog is 401, TLS is verified, a wrong password is refused, docker login works without insecure-registries", async (t) => {
        if (problem || !state.service) return unavailable(t, problem ?? "the registry did not come up");
        const anon = curl(["-o", "/dev/null", "-w", "%{http_code}", "--cacert", caFile(), `https://${ENDPOINT}/v2/_catalog`]);
        assert.equal(anon.stdout, "401", anon.stderr);
        const untrusted = curl(["-o", "/dev/null", `https://${ENDPOINT}/v2/`]);
        assert.notEqual(untrusted.status, 0, "without the CA the certificate is not accepted");
        assert.match(untrusted.stderr, /certificate/i);
        const info = JSON.parse(dk(["info", "--format", "{{json .RegistryConfig}}"]).stdout);
        assert.deepEqual(Object.keys(info.IndexConfigs ?? {}).filter((k) => k.includes(HOST)), [], "no insecure-registries entry for the registry");
        assert.ok(!(info.InsecureRegistryCIDRs ?? []).some((c: string) => !c.startsWith("127.") && !c.startsWith("::1")), "only loopback is insecure");

        const login = dk(["login", "-u", "alice", "--password-stdin", ENDPOINT], passwords.alice + "\n");
        assert.equal(login.status, 0, login.stderr);
        assert.match(login.stdout, /Login Succeeded/);
        const wrong = dk(["login", "-u", "alice", "--password-stdin", ENDPOINT], "not-the-password\n");
        assert.notEqual(wrong.status, 0);
        assert.match(wrong.stderr, /401|unauthorized/i);
        await assert.rejects(probeLogin(transport, probe("bob", "not-the-password", 0)), (e: Error) => {
            assert.match(e.message, /docker login registry\.dccn\.test:5000 as bob on itest-registry failed \(HTTP \d+\): .*401 Unauthorized.*The user or password is refused/);
            assert.ok(!e.message.includes("not-the-password"));
            return true;
        });
    });

    test("push an image; a service pulls it with registryAuth on a node that did not have it", async (t) => {
        if (problem || !state.service) return unavailable(t, problem ?? "the registry did not come up");
        const ref = `${ENDPOINT}/itest/tiny:1`;
        assert.equal(dk(["tag", TINY, ref]).status, 0);
        const push = dk(["push", ref]);
        assert.equal(push.status, 0, push.stderr);
        assert.equal(dk(["rmi", ref, TINY]).status, 0);
        assert.notEqual(dk(["image", "inspect", ref]).status, 0, "the image is gone from the node");
        const catalog = curl(["--cacert", caFile(), "-u", `alice:${passwords.alice}`, `https://${ENDPOINT}/v2/_catalog`]);
        assert.deepEqual(JSON.parse(catalog.stdout).repositories, ["itest/tiny"]);

        const sp = serviceProvider(connect);
        const spec = {
            Name: "itest_tiny", Labels: { "com.docker.stack.namespace": "itest", "com.docker.stack.image": ref },
            TaskTemplate: { ContainerSpec: { Image: ref, Command: ["sleep", "3600"], Labels: { "com.docker.stack.namespace": "itest" } } },
            Mode: { Replicated: { Replicas: 1 } },
        };
        const created = await sp.create({
            ...access, stack: "itest", file: "stack.yml", key: "services.tiny", name: "itest_tiny", spec, stableSeconds: 2, convergeTimeout: 60,
            registryAuth: { serveraddress: ENDPOINT, username: "bob", password: passwords.bob },
        });
        assert.match(created.outs.image, new RegExp(`^${ref.replace(/[.]/g, "\\.")}@sha256:`), "pinned to the registry's digest, read with the credentials");
        assert.equal(dk(["image", "inspect", ref.replace(/:1$/, "") + "@" + created.outs.image.split("@")[1]]).status, 0, "pulled from the registry");
        await sp.delete!(created.id, created.outs);
    });

    test("an image the program builds: its context streamed to the build endpoint, pushed as the push user, read back; a failing step names the stack, the service and the build's last lines", async (t) => {
        if (problem || !state.service) return unavailable(t, problem ?? "the registry did not come up");
        importTiny(d!); // the test before removed it
        const ctx = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-rit-build-"));
        try {
            fs.writeFileSync(path.join(ctx, "Dockerfile"), `FROM ${TINY}\nARG WHO=nobody\nCOPY hello.txt /hello.txt\nLABEL who=$WHO\n`);
            fs.writeFileSync(path.join(ctx, "hello.txt"), "hello\n");
            const inputs: ImageInputs = {
                ...access, stack: "itest", service: "web", origin: "itest.yml: services.web.build", image: `${ENDPOINT}/itest/web:1`,
                context: ctx, dockerfile: "Dockerfile", args: { WHO: "itest" }, labels: { "org.example.itest": "1" },
                contextDigest: (await packContext(ctx)).digest, pushAuth: { serveraddress: ENDPOINT, username: "alice", password: passwords.alice },
            };
            const lines: string[] = [];
            const ip = imageProvider(connect, (l) => lines.push(l));
            const made = await ip.create(inputs);
            const outs = made.outs as ImageOutputs;
            assert.match(outs.digest, /^sha256:[0-9a-f]{64}$/);
            assert.equal(outs.ref, `${inputs.image}@${outs.digest}`);
            assert.ok(lines.some((l) => /^Step 3\/\d+ : COPY hello\.txt/.test(l)), `the build's steps reported: ${lines.join(" | ")}`);
            assert.equal(JSON.parse(dk(["image", "inspect", "--format", "{{json .Config.Labels}}", inputs.image]).stdout)["who"], "itest", "built with the build argument");
            // The registry serves that digest at the tag; a refresh finds it so.
            const head = curl(["--cacert", caFile(), "-u", `bob:${passwords.bob}`, "-o", "/dev/null", "-D", "-", "-H", "Accept: application/vnd.docker.distribution.manifest.v2+json",
                `https://${ENDPOINT}/v2/itest/web/manifests/1`]);
            assert.match(head.stdout, new RegExp(`docker-content-digest:\\s*${outs.digest}`, "i"));
            const read = await ip.read!(made.id, outs);
            assert.deepEqual([read.id, read.props.digest, read.props.registryDigest], [made.id, outs.digest, undefined]);
            // Nothing new in the context: no change, nothing built.
            assert.equal((await ip.diff!(made.id, outs, inputs)).changes, false);
            // A failing step: the update fails naming where, and the registry keeps the image it had.
            fs.writeFileSync(path.join(ctx, "Dockerfile"), `FROM ${TINY}\nCOPY missing.txt /missing.txt\n`);
            const failing = { ...inputs, contextDigest: (await packContext(ctx)).digest };
            await assert.rejects(ip.update!(made.id, outs, failing), (e: Error) => {
                assert.match(e.message, /^itest\.yml: services\.web\.build \(stack itest, service web\): building registry\.dccn\.test:5000\/itest\/web:1 on itest-registry failed: .*missing\.txt/);
                assert.match(e.message, /last lines of the build:\n\s+Step 1\/\d+ : FROM dccn-itest\/tiny:1[\s\S]*Step 2\/\d+ : COPY missing\.txt/);
                assert.ok(!e.message.includes(passwords.alice), "no password in the error");
                return true;
            });
            assert.equal((await ip.read!(made.id, outs)).props.digest, outs.digest, "the registry keeps the last good image");
            // A wrong push password: the push is refused, named.
            fs.writeFileSync(path.join(ctx, "Dockerfile"), `FROM ${TINY}\nCOPY hello.txt /hello2.txt\n`);
            const wrong = { ...inputs, contextDigest: (await packContext(ctx)).digest, pushAuth: { ...inputs.pushAuth, password: "wrong" } };
            await assert.rejects(ip.update!(made.id, outs, wrong), /pushing registry\.dccn\.test:5000\/itest\/web:1 on itest-registry failed: .*(unauthorized|authentication required)/i);
            // A file changed after the preview: nothing is built.
            const stale = { ...inputs, contextDigest: inputs.contextDigest };
            await assert.rejects(ip.update!(made.id, outs, { ...stale, args: { WHO: "x" } }), /changed during this deployment.*Run `pulumi up` again/);
        } finally {
            fs.rmSync(ctx, { recursive: true, force: true });
        }
    });

    test("adding a user and removing another, a renewed certificate, then a renewed CA roll out; the images stay", async (t) => {
        if (problem || !state.service) return unavailable(t, problem ?? "the registry did not come up");
        // Users: carol in, alice out. bob keeps his hash.
        cfg = { ...cfg, users: ["bob", "carol"] };
        const before = state.hashes!;
        ({ hashes: state.hashes, htpasswd: state.htpasswd } = buildHtpasswd(cfg.users, passwords, before));
        assert.equal(state.hashes!.bob, before.bob);
        await rollOut([{ key: "htpasswd", content: state.htpasswd! }]);
        assert.match((await probeLogin(transport, probe("carol", passwords.carol))).status, /Login Succeeded/);
        await assert.rejects(probeLogin(transport, probe("alice", passwords.alice, 0)), /401 Unauthorized/);
        assert.deepEqual(dk(["secret", "ls", "--filter", "name=registry_htpasswd", "--format", "{{.Name}}"]).stdout.trim().split("\n"),
            [contentName(STACK, "htpasswd", state.htpasswd!)], "the old htpasswd secret is gone");

        // Certificate renewal: 800 days on, within renewBeforeDays: a new server certificate from the same CA.
        const renewed = issuePki(state.pkiInputs!, state.pki, new Date(Date.now() + 800 * DAY));
        assert.equal(renewed.caCert, state.pki!.caCert);
        assert.notEqual(certInfo(renewed.serverCert).serial, certInfo(state.pki!.serverCert).serial);
        assert.equal(parseResult(runStep(stepStdin({ ...trustStep(cfg), data: renewed.trustBundle }), d!.fsroot).stdout)!.changed, false, "same CA: nodes unchanged");
        state.pki = renewed;
        await rollOut([{ key: "tls_cert", content: renewed.serverCert }, { key: "tls_key", content: renewed.serverKey }]);
        const seen = spawnSync("nsenter", ["-t", String(d!.pid), "-n", "bash", "-c",
            `openssl s_client -connect ${ADDRESS}:${PORT} -servername ${HOST} </dev/null 2>/dev/null | openssl x509 -noout -serial`], { encoding: "utf8" });
        assert.equal(seen.stdout.trim().replace(/^serial=/, "").toUpperCase(), certInfo(renewed.serverCert).serial.toUpperCase(), "the registry serves the renewed certificate");

        // CA renewal (nine years on): the node gets the new CA beside the old one first, then the
        // registry switches to a certificate of the new CA; logins keep working throughout.
        const rotated = issuePki(state.pkiInputs!, state.pki, new Date(Date.now() + 9 * 365 * DAY));
        assert.notEqual(rotated.caCert, state.pki!.caCert);
        const trust2 = runStep(stepStdin({ ...trustStep(cfg), data: rotated.trustBundle }), d!.fsroot);
        assert.equal(parseResult(trust2.stdout)!.changed, true, "the node's trust is updated");
        assert.equal((fs.readFileSync(caFile(), "utf8").match(/BEGIN CERTIFICATE/g) ?? []).length, 2, "old and new CA trusted");
        assert.match((await probeLogin(transport, probe("bob", passwords.bob, 0))).status, /Login Succeeded/, "still the old certificate, still trusted");
        state.pki = rotated;
        await rollOut([{ key: "tls_cert", content: rotated.serverCert }, { key: "tls_key", content: rotated.serverKey }]);
        assert.match((await probeLogin(transport, probe("bob", passwords.bob))).status, /Login Succeeded/, "the new CA's certificate is trusted");
        const issuer = spawnSync("nsenter", ["-t", String(d!.pid), "-n", "bash", "-c",
            `openssl s_client -connect ${ADDRESS}:${PORT} -servername ${HOST} </dev/null 2>/dev/null | openssl x509 -noout -serial`], { encoding: "utf8" });
        assert.equal(issuer.stdout.trim().replace(/^serial=/, "").toUpperCase(), certInfo(rotated.serverCert).serial.toUpperCase());

        // Nothing secret in the service's definition or the engine's view of it.
        const inspect = dk(["service", "inspect", `${STACK}_registry`]).stdout;
        for (const s of [...Object.values(passwords), rotated.serverKey.split("\n")[1], rotated.caKey.split("\n")[1]]) assert.ok(!inspect.includes(s));

        // The images survived every update (data on the host path).
        const catalog = curl(["--cacert", caFile(), "-u", `carol:${passwords.carol}`, `https://${ENDPOINT}/v2/_catalog`]);
        assert.deepEqual(JSON.parse(catalog.stdout).repositories, ["itest/tiny", "itest/web"]);
        assert.equal(dk(["logout", ENDPOINT]).status, 0);
        const login = dk(["login", "-u", "carol", "--password-stdin", ENDPOINT], passwords.carol + "\n");
        assert.equal(login.status, 0, login.stderr);
        const pull = dk(["pull", `${ENDPOINT}/itest/tiny:1`]);
        assert.equal(pull.status, 0, pull.stderr);
    });
});

// ---------------------------------------------------------------------------------------------
// The Registry component through the real Pulumi engine (tools/toolchain.sh's pulumi and Node.js
// language host) and the project's provider plugin (bcryptjs, openssl, the Engine API transport). No node is reached over SSH here (nodes: [], the engine's socket
// instead): the test plays the trust step itself, with registry-ca.sh and the CA the run just
// made, read from the checkpoint while `pulumi up` waits for the readiness login.

const REPO = path.resolve(__dirname, "..", "..");
const PULUMI_VERSION = `v${JSON.parse(fs.readFileSync(path.join(REPO, "node_modules", "@pulumi", "pulumi", "package.json"), "utf8")).version}`;

function toolchain(): { env: NodeJS.ProcessEnv; root: string } | string {
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

const PROGRAM = (repo: string) => `import * as pulumi from "@pulumi/pulumi";
import { Registry } from ${JSON.stringify(path.join(repo, "components", "registry"))};
const c = new pulumi.Config("itest");
const registry = new Registry("registry", {
    config: c.requireObject("registry"),
    passwords: c.requireSecretObject("passwords"),
    stackFile: "Pulumi.itest.yaml",
    nodes: [],
    ssh: { user: "root", port: 22, privateKey: "", connectTimeout: 5 },
    engineSocket: c.require("socket"),
    stackName: "preg",
    convergeTimeout: 120,
});
export const endpoint = registry.endpoint;
export const registryAuth = registry.registryAuth;
export const certificateNotAfter = registry.certificateNotAfter;
export const users = registry.users;
`;

describe("the Registry component through the real Pulumi engine", { timeout: 20 * 60_000 }, () => {
    let d: RegistryDockerd | undefined;
    let problem: string | undefined;
    let dir = "";

    before(async () => {
        problem = dockerdProblem();
        const tc = toolchain();
        if (!problem && typeof tc === "string") problem = tc;
        if (problem) return;
        try {
            d = await startRegistryDockerd();
        } catch (e) {
            problem = (e as Error).message;
            return;
        }
        problem = loadRegistryImage(d);
        if (problem) return;
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-rit-pulumi-"));
        const program = path.join(dir, "program");
        fs.mkdirSync(program);
        // The resources are served by the project's provider plugin (compiled ahead by npm run build).
        fs.writeFileSync(path.join(program, "Pulumi.yaml"), "name: dccn-registry-itest\nruntime:\n  name: nodejs\n  options:\n    typescript: true\n" +
            `plugins:\n  providers:\n    - name: dccn-swarm\n      path: ${JSON.stringify(path.join(REPO, "provider"))}\n`);
        fs.writeFileSync(path.join(program, "package.json"), JSON.stringify({ name: "dccn-registry-itest", private: true, main: "index.ts" }));
        fs.writeFileSync(path.join(program, "tsconfig.json"), JSON.stringify({ compilerOptions: { strict: true, target: "es2022", module: "commonjs", moduleResolution: "node", esModuleInterop: true, skipLibCheck: true }, files: ["index.ts"] }));
        fs.writeFileSync(path.join(program, "index.ts"), PROGRAM(REPO));
        fs.symlinkSync(path.join(REPO, "node_modules"), path.join(program, "node_modules"));
    });

    after(async () => {
        if (d) await stopRegistryDockerd(d);
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    test("up (trust played from the checkpoint), preview without changes, no secret in the state, a user swap and a new certificate preview and roll out, destroy", async (t) => {
        if (problem) return unavailable(t, problem);
        const { LocalWorkspace, PulumiCommand } = await import("@pulumi/pulumi/automation");
        const tc = toolchain() as { env: NodeJS.ProcessEnv; root: string };
        const backend = path.join(dir, "backend");
        fs.mkdirSync(backend);
        const passphraseFile = path.join(dir, "passphrase");
        fs.writeFileSync(passphraseFile, "itest-" + Date.now(), { mode: 0o600 });
        const stackName = `rit-${process.pid}`;
        const stack = await LocalWorkspace.createOrSelectStack({ stackName, workDir: path.join(dir, "program") }, {
            pulumiCommand: await PulumiCommand.get({ root: tc.root }),
            envVars: {
                PATH: tc.env.PATH ?? "", PULUMI_HOME: tc.env.PULUMI_HOME ?? "",
                PULUMI_BACKEND_URL: `file://${backend}`, PULUMI_CONFIG_PASSPHRASE_FILE: passphraseFile,
                PULUMI_SKIP_UPDATE_CHECK: "true", PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
                // A throwaway engine, no cluster config: no cluster lock to keep (its switch, as the README names it).
                DCCN_CLUSTER_LOCK: "off",
            },
        });
        const nodeId = docker(d!, ["info", "--format", "{{.Swarm.NodeID}}"]).stdout.trim();
        assert.equal(docker(d!, ["node", "update", "--label-add", "registry=true", nodeId]).status, 0);
        const dataPath = path.join(d!.dir, "pulumi-registry-data");
        fs.mkdirSync(dataPath);
        const cfg: RegistryConfig = {
            host: HOST, port: PORT, address: ADDRESS, placement: { key: "registry", value: "true" }, constraint: "node.labels.registry==true",
            dataPath, image: REGISTRY_IMAGE, users: ["alice", "bob"], pullUser: "bob", pushUser: "alice",
            certificate: { validityDays: 825, renewBeforeDays: 30, caValidityDays: 3650 }, endpoint: ENDPOINT,
        };
        const pw = { alice: "pulumi-alice-Pw", bob: "pulumi-bob-Pw", carol: "pulumi-carol-Pw" };
        // The trust step, played here once the run has made the CA (read from the checkpoint).
        let trusted = "";
        const watcher = setInterval(() => {
            const files = spawnSync("bash", ["-c", `find ${backend} -name '${stackName}.json' -path '*stacks*'`], { encoding: "utf8" }).stdout.trim().split("\n").filter(Boolean);
            for (const f of files) {
                try {
                    const res = (JSON.parse(fs.readFileSync(f, "utf8")).checkpoint?.latest?.resources ?? []) as Any[];
                    const bundle = res.find((r) => String(r.type).endsWith("RegistryPki"))?.outputs?.trustBundle;
                    if (typeof bundle === "string" && bundle !== trusted && runStep(stepStdin({ ...trustStep(cfg), data: bundle }), d!.fsroot).code === 0) trusted = bundle;
                } catch { /* being written */ }
            }
        }, 1000);
        const noChanges = (summary: Record<string, number> | undefined, what: string) =>
            assert.deepEqual(Object.entries(summary ?? {}).filter(([op, n]) => op !== "same" && n > 0), [], `${what}: preview shows no changes`);
        try {
            await stack.setConfig("itest:socket", { value: d!.socket });
            await stack.setConfig("itest:registry", { value: JSON.stringify(cfg) });
            await stack.setConfig("itest:passwords", { value: JSON.stringify({ alice: pw.alice, bob: pw.bob }), secret: true });
            const up = await stack.up();
            assert.equal(up.summary.result, "succeeded");
            const clear = (text: string, what: string) => {
                for (const s of [pw.alice, pw.bob, pw.carol, "PRIVATE KEY"]) assert.ok(!text.includes(s), `${what} shows no ${s}`);
            };
            clear(up.stdout + up.stderr, "the output of up");
            assert.ok(trusted.includes("BEGIN CERTIFICATE"), "the CA reached the node");
            assert.equal(up.outputs.endpoint.value, ENDPOINT);
            assert.equal(up.outputs.registryAuth.secret, true, "registryAuth is a secret output");
            assert.deepEqual(up.outputs.registryAuth.value, { serveraddress: ENDPOINT, username: "bob", password: pw.bob });
            noChanges((await stack.preview()).changeSummary, "after up (htpasswd and certificates are stable)");

            // The state as stored (the Automation API's exportStack decrypts secrets: read the backend's file).
            const stateFile = spawnSync("bash", ["-c", `find ${backend} -name '${stackName}.json' -path '*stacks*'`], { encoding: "utf8" }).stdout.trim().split("\n")[0];
            const state = fs.readFileSync(stateFile, "utf8");
            assert.match(state, /RegistryPki/);
            for (const s of [pw.alice, pw.bob, "BEGIN PRIVATE KEY", "BEGIN EC PRIVATE KEY"]) {
                assert.ok(!state.includes(s), `${s} is not in the state in the clear`);
            }
            assert.doesNotMatch(state, /\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}/, "no bcrypt hash in the clear");
            assert.match(state, /"caKey":\{"4dabf18193072939515e22adb298388d":"1b47061264138c4ac30d75fd1eb44270","ciphertext"/);

            // carol in, alice out: the users, the htpasswd secret (replaced), the service and the probe.
            await stack.setConfig("itest:registry", { value: JSON.stringify({ ...cfg, users: ["bob", "carol"] }) });
            await stack.setConfig("itest:passwords", { value: JSON.stringify({ bob: pw.bob, carol: pw.carol }), secret: true });
            const pre = await stack.preview({ diff: true });
            clear(pre.stdout + pre.stderr, "the preview with diff");
            assert.equal(pre.changeSummary.replace, 1, `the htpasswd secret is replaced: ${JSON.stringify(pre.changeSummary)}`);
            assert.equal(pre.changeSummary.update, 3, `users, service and probe are updated: ${JSON.stringify(pre.changeSummary)}`);
            assert.match(pre.stdout, /users[\s\S]*carol/);
            const up2 = await stack.up();
            assert.equal(up2.summary.result, "succeeded");
            clear(up2.stdout + up2.stderr, "the output of the second up");
            clear(fs.readFileSync(path.join(d!.dir, "dockerd.log"), "utf8"), "the engine's log");
            const transport = await findManager([localTransport("itest-pulumi", d!.socket)]);
            const probeIn = (username: string, password: string): ProbeInputs => ({
                managers: [], ssh: { user: "root", port: 22, privateKey: "", connectTimeout: 5 }, stackFile: FILE, serveraddress: ENDPOINT, username, password, revision: "x", timeout: 0,
            });
            assert.match((await probeLogin(transport, probeIn("carol", pw.carol))).status, /Login Succeeded/);
            await assert.rejects(probeLogin(transport, probeIn("alice", pw.alice)), /401 Unauthorized/);
            noChanges((await stack.preview()).changeSummary, "after the user swap");

            // A new server certificate (here by a validity change; a near expiry does the same): the
            // certificate and key secrets are replaced, the service and the probe updated, same CA.
            const servedSerial = () => spawnSync("nsenter", ["-t", String(d!.pid), "-n", "bash", "-c",
                `openssl s_client -connect ${ADDRESS}:${PORT} -servername ${HOST} </dev/null 2>/dev/null | openssl x509 -noout -serial`], { encoding: "utf8" }).stdout.trim();
            const serialBefore = servedSerial();
            const trustedBefore = trusted;
            await stack.setConfig("itest:registry", { value: JSON.stringify({ ...cfg, users: ["bob", "carol"], certificate: { ...cfg.certificate, validityDays: 400 } }) });
            const pre3 = await stack.preview();
            assert.deepEqual({ update: pre3.changeSummary.update, replace: pre3.changeSummary.replace }, { update: 3, replace: 2 }, "pki, service, probe; cert and key secrets");
            const up3 = await stack.up();
            assert.equal(up3.summary.result, "succeeded");
            assert.notEqual(servedSerial(), serialBefore, "the registry serves the new certificate");
            assert.equal(trusted, trustedBefore, "the CA, and so every node's trust, is unchanged");
            assert.ok(Math.abs(Date.parse(up3.outputs.certificateNotAfter.value) - Date.now() - 400 * DAY) < 3600_000, "notAfter output");
            noChanges((await stack.preview()).changeSummary, "after the new certificate");

            const destroy = await stack.destroy();
            assert.equal(destroy.summary.result, "succeeded");
            const left = ["service", "secret"].map((k) => docker(d!, [k, "ls", "--filter", "label=com.docker.stack.namespace=preg", "-q"]).stdout.trim()).filter(Boolean);
            assert.deepEqual(left, []);
            assert.ok(fs.existsSync(dataPath), "the data directory is kept");
        } finally {
            clearInterval(watcher);
            await stack.workspace.removeStack(stackName, { force: true }).catch(() => undefined);
        }
    });
});
