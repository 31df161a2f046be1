// Smoke test of the real Pulumi engine (tools/toolchain.sh): through the automation API and the
// program in this directory, `up`, then `preview` expecting no changes, then `destroy`.
//   1. engine only: CLI + Node.js language host, no resource plugin (smoke:providers = false);
//   2. providers: a command:local:Command and a docker:Volume against a dockerd this test starts on a
//      unix socket in a temporary directory (root needed, as for any dockerd).
// Every stack lives in a temporary file backend with a random passphrase: nothing touches .state/.
//
// When the engine, a plugin or dockerd is missing the test skips with the reason, except in CI
// (CI=true), where it fails: there a missing engine is a broken build, not an excuse.
//
// Run: npm run toolchain && node --import tsx --test test/smoke/smoke.test.ts
import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand, type Stack } from "@pulumi/pulumi/automation";

const REPO = path.resolve(__dirname, "..", "..");
const SMOKE_DIR = __dirname;
const PROJECT = "dccn-smoke";
const IN_CI = process.env.CI === "true";
const STEP_TIMEOUT_MS = 10 * 60 * 1000;

function readJson(file: string): Record<string, unknown> {
    return JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
}

// The versions package.json's SDKs ask the engine for.
const SDK_PKG = readJson(path.join(REPO, "node_modules", "@pulumi", "pulumi", "package.json"));
const PULUMI_VERSION = `v${String(SDK_PKG.version)}`;
const PLUGINS = ["command", "docker"].map((name) => {
    const pkg = readJson(path.join(REPO, "node_modules", "@pulumi", name, "package.json"));
    const meta = (pkg.pulumi ?? {}) as { name?: string; version?: string };
    return { name: meta.name ?? name, version: meta.version ?? String(pkg.version) };
});

/** The environment of `. tools/env.sh` (toolchain bin first on PATH, PULUMI_HOME, ...). */
function toolchainEnv(): NodeJS.ProcessEnv {
    const r = spawnSync("bash", ["-c", ". tools/env.sh >/dev/null && env -0"], {
        cwd: REPO,
        encoding: "utf8",
    });
    if (r.status !== 0) {
        return { ...process.env };
    }
    const env: NodeJS.ProcessEnv = {};
    for (const entry of r.stdout.split("\0")) {
        const i = entry.indexOf("=");
        if (i > 0) {
            env[entry.slice(0, i)] = entry.slice(i + 1);
        }
    }
    return env;
}

const ENV = toolchainEnv();

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = ENV) {
    return spawnSync(cmd, args, { env, encoding: "utf8", timeout: 60_000 });
}

/** The directory above the bin/ holding the pulumi found on the toolchain PATH. */
function pulumiRoot(): string {
    const r = run("bash", ["-c", "command -v pulumi"]);
    return path.dirname(path.dirname(r.stdout.trim()));
}

/** Why the engine (CLI + language host) cannot run here, or undefined when it can. */
function engineProblem(): string | undefined {
    const v = run("pulumi", ["version"]);
    if (v.error || v.status !== 0) {
        return "no pulumi CLI found (run `npm run toolchain`, see tools/toolchain/README.md)";
    }
    if (v.stdout.trim() !== PULUMI_VERSION) {
        return `pulumi on PATH is ${v.stdout.trim()}, but @pulumi/pulumi wants ${PULUMI_VERSION} (run \`npm run toolchain\`)`;
    }
    if (run("bash", ["-c", "command -v pulumi-language-nodejs"]).status !== 0) {
        return "no pulumi-language-nodejs next to pulumi or on PATH (run `npm run toolchain`)";
    }
    return undefined;
}

/** Which resource plugins the SDKs ask for are not in the plugin cache. */
function missingPlugins(): string[] {
    const r = run("pulumi", ["plugin", "ls", "--json"]);
    let installed: { name: string; kind: string; version: string }[] = [];
    if (r.status === 0) {
        try {
            installed = JSON.parse(r.stdout || "[]") ?? [];
        } catch {
            installed = [];
        }
    }
    return PLUGINS.filter(
        (p) => !installed.some((i) => i.kind === "resource" && i.name === p.name && i.version === p.version),
    ).map((p) => `${p.name} ${p.version}`);
}

/** Plugins tools/toolchain/pins.env marks BLOCKED (an empty Go module version). */
function blockedPlugins(): string[] {
    const pins = fs.readFileSync(path.join(__dirname, "..", "..", "tools", "toolchain", "pins.env"), "utf8");
    return [...pins.matchAll(/^\s*"([a-z]+)\|[^|]*\|[^|]+\|\|/gm)].map((m) => m[1]);
}

/** Skip with the reason; in CI fail instead. */
function unavailable(t: TestContext, reason: string): void {
    if (IN_CI) {
        assert.fail(`smoke test cannot run in CI: ${reason}`);
    }
    t.skip(reason);
}

/** A fresh stack of the smoke program in a temporary file backend. */
async function newStack(
    backendDir: string,
    extraConfig: Record<string, string>,
    workDir: string = SMOKE_DIR,
): Promise<Stack> {
    const passphraseFile = path.join(backendDir, "passphrase");
    fs.writeFileSync(passphraseFile, crypto.randomBytes(24).toString("base64"), { mode: 0o600 });
    const stackName = `smoke-${crypto.randomBytes(4).toString("hex")}`;
    const pulumiCommand = await PulumiCommand.get({ root: pulumiRoot() });
    const stack = await LocalWorkspace.createOrSelectStack(
        { stackName, workDir },
        {
            pulumiCommand,
            envVars: {
                PATH: ENV.PATH ?? "",
                PULUMI_HOME: ENV.PULUMI_HOME ?? path.join(os.homedir(), ".pulumi"),
                PULUMI_BACKEND_URL: `file://${backendDir}`,
                PULUMI_CONFIG_PASSPHRASE_FILE: passphraseFile,
                PULUMI_SKIP_UPDATE_CHECK: "true",
                PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
            },
        },
    );
    for (const [key, value] of Object.entries(extraConfig)) {
        await stack.setConfig(key, { value });
    }
    return stack;
}

/** Remove the stack and the Pulumi.<stack>.yaml the CLI wrote next to Pulumi.yaml. */
async function removeStack(stack: Stack): Promise<void> {
    try {
        await stack.workspace.removeStack(stack.name, { force: true });
    } finally {
        fs.rmSync(path.join(stack.workspace.workDir, `Pulumi.${stack.name}.yaml`), { force: true });
    }
}

function assertNoChanges(summary: Record<string, number> | undefined, what: string): void {
    const changes = Object.entries(summary ?? {}).filter(([op, n]) => op !== "same" && n > 0);
    assert.deepEqual(changes, [], `${what}: preview after up must report no changes`);
}

/** up, preview (no changes), destroy, each checked; the stack is removed whatever happens. */
async function upPreviewDestroy(
    stack: Stack,
    checkUp: (outputs: Record<string, unknown>) => void,
    checkDestroyed: () => void = () => undefined,
): Promise<void> {
    try {
        const up = await stack.up();
        assert.equal(up.summary.result, "succeeded");
        checkUp(Object.fromEntries(Object.entries(up.outputs).map(([k, v]) => [k, v.value])));

        const preview = await stack.preview();
        assertNoChanges(preview.changeSummary, stack.name);

        const destroy = await stack.destroy();
        assert.equal(destroy.summary.result, "succeeded");
        checkDestroyed();
    } finally {
        await removeStack(stack);
    }
}

// ---------------------------------------------------------------------------------------------------
// A throwaway dockerd on a unix socket in a temporary directory.

interface Dockerd {
    dir: string;
    host: string;
    proc: ChildProcess;
}

async function startDockerd(): Promise<Dockerd | string> {
    if (run("bash", ["-c", "command -v dockerd && command -v docker"]).status !== 0) {
        return "dockerd/docker are not installed (tools/prereqs.sh installs docker.io)";
    }
    if (process.getuid?.() !== 0) {
        return "starting a dockerd needs root";
    }
    // Short path: a unix socket path must stay under ~100 bytes.
    const dir = fs.mkdtempSync("/tmp/dccn-smoke-");
    const host = `unix://${dir}/docker.sock`;
    const log = fs.openSync(path.join(dir, "dockerd.log"), "w");
    const proc = spawn(
        "dockerd",
        [
            "--data-root", `${dir}/root`,
            "--exec-root", `${dir}/exec`,
            "-H", host,
            "--pidfile", `${dir}/docker.pid`,
            // Leave the host's networking alone: no docker0, no iptables rules.
            "--bridge=none",
            "--iptables=false",
        ],
        { stdio: ["ignore", log, log] },
    );
    fs.closeSync(log);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
        if (proc.exitCode !== null) {
            break;
        }
        if (run("docker", ["-H", host, "version", "--format", "{{.Server.Version}}"]).status === 0) {
            return { dir, host, proc };
        }
        await new Promise((r) => setTimeout(r, 500));
    }
    const tail = fs.readFileSync(path.join(dir, "dockerd.log"), "utf8").split("\n").slice(-15).join("\n");
    await stopDockerd({ dir, host, proc });
    throw new Error(`dockerd did not come up on ${host} within 60s:\n${tail}`);
}

async function stopDockerd(d: Dockerd): Promise<void> {
    if (d.proc.exitCode === null && d.proc.signalCode === null) {
        const exited = new Promise<void>((r) => d.proc.once("exit", () => r()));
        d.proc.kill("SIGTERM");
        const timer = setTimeout(() => d.proc.kill("SIGKILL"), 20_000);
        await exited;
        clearTimeout(timer);
    }
    fs.rmSync(d.dir, { recursive: true, force: true, maxRetries: 3 });
}

// ---------------------------------------------------------------------------------------------------

describe("smoke: the real Pulumi engine", () => {
    let backendDir = "";

    before(() => {
        backendDir = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-smoke-backend-"));
    });
    after(() => {
        fs.rmSync(backendDir, { recursive: true, force: true });
    });

    test("engine only: up, preview without changes, destroy", { timeout: STEP_TIMEOUT_MS }, async (t) => {
        const problem = engineProblem();
        if (problem) {
            return unavailable(t, problem);
        }
        const stack = await newStack(backendDir, { "smoke:providers": "false" });
        await upPreviewDestroy(stack, (outputs) => {
            assert.equal(outputs.engine, `ok:${PROJECT}/${stack.name}`);
            assert.equal(outputs.commandStdout, undefined);
        });
    });

    // Pulumi.yaml's runtime options reach Node.js: the pinned CLI sends them in the Run request, not as
    // the language host's flags (tools/toolchain/langhost/patches/0002-*). The cluster's program runs
    // compiled (typescript: false), so neither ts-node nor TypeScript may load for it.
    test("runtime options: typescript false and nodeargs reach the program", { timeout: STEP_TIMEOUT_MS }, async (t) => {
        const problem = engineProblem();
        if (problem) {
            return unavailable(t, problem);
        }
        // A project of its own, with the repository's @pulumi packages linked into its node_modules.
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-smoke-options-"));
        try {
            fs.mkdirSync(path.join(dir, "node_modules"));
            fs.symlinkSync(path.join(REPO, "node_modules", "@pulumi"), path.join(dir, "node_modules", "@pulumi"));
            fs.writeFileSync(path.join(dir, "Pulumi.yaml"), [
                "name: dccn-smoke-options",
                "runtime:",
                "  name: nodejs",
                "  options:",
                "    typescript: false",
                "    nodeargs: --require ./probe.js",
                "",
            ].join("\n"));
            fs.writeFileSync(path.join(dir, "probe.js"), "globalThis.dccnProbe = 'preloaded';\n");
            fs.writeFileSync(path.join(dir, "index.js"), [
                // A module, as the cluster's program does (lib/sdk.ts): the SDK's index loads TypeScript for its closure serialiser.
                "require('@pulumi/pulumi/output');",
                "const loaded = Object.keys(require.cache);",
                "module.exports = {",
                "    probe: globalThis.dccnProbe ?? 'absent',",
                "    typescriptEnv: process.env.PULUMI_NODEJS_TYPESCRIPT ?? 'unset',",
                "    tsNode: loaded.filter((f) => /[\\\\/]ts-node[\\\\/]/.test(f)).length,",
                "    typescript: loaded.filter((f) => /[\\\\/]typescript[\\\\/]lib[\\\\/]/.test(f)).length,",
                "};",
                "",
            ].join("\n"));
            const stack = await newStack(backendDir, {}, dir);
            await upPreviewDestroy(stack, (outputs) => {
                assert.deepEqual(outputs, { probe: "preloaded", typescriptEnv: "unset", tsNode: 0, typescript: 0 });
            });
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    test("command and docker providers: up, preview without changes, destroy", { timeout: STEP_TIMEOUT_MS }, async (t) => {
        const problem = engineProblem();
        if (problem) {
            return unavailable(t, problem);
        }
        const missing = missingPlugins();
        const blocked = blockedPlugins();
        if (missing.length > 0 && missing.every((m) => blocked.some((b) => m.startsWith(b)))) {
            // Not a missing install step: no source for these plugins is obtainable here (pins.env
            // marks them BLOCKED; issue 2's note says why). Reported as a todo, never as a pass.
            t.todo(`resource plugins ${missing.join(", ")} are BLOCKED: their Go module source is not served (tools/toolchain/README.md)`);
            return;
        }
        if (missing.length > 0) {
            return unavailable(
                t,
                `resource plugins not installed: ${missing.join(", ")} (npm run toolchain lists BLOCKED plugins; see tools/toolchain/README.md)`,
            );
        }
        const dockerd = await startDockerd();
        if (typeof dockerd === "string") {
            return unavailable(t, dockerd);
        }
        try {
            const stack = await newStack(backendDir, { "smoke:providers": "true", "docker:host": dockerd.host });
            const volume = `dccn-smoke-${stack.name}`;
            const volumeExists = () =>
                run("docker", ["-H", dockerd.host, "volume", "inspect", volume]).status === 0;
            await upPreviewDestroy(
                stack,
                (outputs) => {
                    assert.equal(outputs.commandStdout, "smoke-ok");
                    assert.equal(outputs.dockerVolume, volume);
                    assert.ok(volumeExists(), `volume ${volume} exists in the test dockerd after up`);
                },
                () => assert.ok(!volumeExists(), `volume ${volume} is gone after destroy`),
            );
        } finally {
            await stopDockerd(dockerd);
        }
    });
});
