/**
 * Issue 14's move to the provider plugin, rehearsed on the lab: the previous main (dynamic
 * providers, compiled by ts-node on each run) builds the dev stack from an empty swarm; this
 * checkout's program then takes that state over. Nothing on the cluster may be replaced or even
 * touched: every node, service, network, secret and config keeps its ID and version, no engine
 * restarts, no provisioning step runs; the state loses the serialised provider code and gets
 * the plugin's types. The suites after this one start from the migrated cluster.
 */
import { describe, test, before } from "node:test";
import * as assert from "node:assert/strict";
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import { LocalWorkspace, PulumiCommand, type Stack } from "@pulumi/pulumi/automation";
import {
    changeCollector, clusterFacts, devStack, engineEnv, exportedState, forLab, keyMaterial, LAB, labNodes, missingPrerequisite, onNode, quiet, ROOT, scratchProject, skipOrFail,
} from "./support";

/** The last main with dynamic providers (the state every existing stack has). */
const PREVIOUS_MAIN = "16bf133b3f51acbca5821f5b41cb46c6cb583c63";

/** The previous main's tree (program, stack config and compose files) in a new folder. */
function previousTree(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-prev-main-"));
    const archive = spawnSync("git", ["-C", ROOT, "archive", PREVIOUS_MAIN], { maxBuffer: 256 << 20 });
    if (archive.status !== 0) {
        throw new Error(`git archive ${PREVIOUS_MAIN} failed (${archive.stderr}): the migration drill needs the previous main in this clone's history`);
    }
    execFileSync("tar", ["-x", "-C", dir], { input: archive.stdout });
    return dir;
}

/**
 * The previous main's dev stack config with this machine's secrets (what stack-init set) and
 * passphrase salt: what an existing stack has. The migration changes the program, not what it
 * deploys, so both sides deploy this config and the previous main's compose files (settings added
 * since, such as built images and the shared storage, are not the migration's business).
 */
function previousConfig(prev: string): string {
    const load = (f: string) => yaml.load(fs.readFileSync(f, "utf8")) as { config: Record<string, unknown>; encryptionsalt?: string };
    const old = load(path.join(prev, "Pulumi.dev.yaml"));
    const mine = load(path.join(ROOT, "Pulumi.dev.yaml"));
    const secret = (v: unknown): boolean => typeof v === "object" && v !== null && (("secure" in v) || Object.values(v).some(secret));
    for (const [k, v] of Object.entries(mine.config)) if (secret(v)) old.config[k] = v;
    // for the lab the suite runs on (its addresses and key: a named lab's are not the committed ones)
    return forLab(yaml.dump({ config: old.config, ...(mine.encryptionsalt ? { encryptionsalt: mine.encryptionsalt } : {}) }));
}

/** Puts the previous main's stack config and compose files (of previousMain's copy `prev`) into `dir` (a scratch copy of this checkout). */
function usePreviousDeployment(dir: string, prev: string): void {
    fs.rmSync(path.join(dir, "stacks"), { recursive: true, force: true });
    fs.cpSync(path.join(prev, "stacks"), path.join(dir, "stacks"), { recursive: true });
    fs.copyFileSync(path.join(prev, "Pulumi.dev.yaml"), path.join(dir, "Pulumi.dev.yaml"));
}

/**
 * The lab images the previous main's dev config runs that the lab no longer preloads (the program now
 * builds the data-stager's stand-ins and pushes them to the registry): built on every node from the
 * same Dockerfile (stacks/lab/stager), under the names the previous config gives them.
 */
function previousLabImages(): void {
    const context = spawnSync("tar", ["-C", path.join(ROOT, "stacks", "lab", "stager"), "-c", "."], { maxBuffer: 16 << 20 });
    if (context.status !== 0) throw new Error(`tar of stacks/lab/stager failed: ${context.stderr}`);
    for (const n of labNodes()) {
        onNode(n.name, "set -e; d=$(mktemp -d); base64 -d | tar -x -C \"$d\"; " +
            "docker build -q -t dccn-lab/stager:2 --target stager \"$d\" >/dev/null; docker build -q -t dccn-lab/stager-ui:2 --target stager-ui \"$d\" >/dev/null; rm -rf \"$d\"",
        { input: context.stdout.toString("base64") });
    }
}

/** A copy of the previous main's program and deployment next to this checkout's node_modules and .state. */
function previousMain(): string {
    const dir = previousTree();
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
    fs.symlinkSync(path.join(ROOT, ".state"), path.join(dir, ".state"));
    fs.writeFileSync(path.join(dir, "Pulumi.dev.yaml"), previousConfig(dir));
    return dir;
}

describe("migration from the dynamic providers (dev stack on the lab)", { concurrency: 1 }, () => {
    let missing: string | undefined;
    let dir = "";
    let stack: Stack;
    let before_: Record<string, string> = {};
    /** The previous main's tree (previousMain), made once: its deployment is copied into `dir`, its program builds the stack. */
    let prev = "";

    before(async () => {
        missing = missingPrerequisite();
        if (missing) return;
        dir = scratchProject();
        // This checkout's program, with the deployment (config, compose files) an existing stack has.
        prev = previousMain();
        usePreviousDeployment(dir, prev);
        stack = await devStack(dir);
        // Whatever an earlier run left (this program's or the previous one's): gone, so the previous
        // main builds the cluster from an empty swarm.
        if (((await stack.exportStack()).deployment.resources ?? []).length > 0) await stack.destroy(quiet);
        previousLabImages();
    });

    test("the previous main builds the dev stack", async (t) => {
        if (skipOrFail(t, missing)) return;
        try {
            const env = { ...engineEnv(), PULUMI_NODEJS_TRANSPILE_ONLY: "true" };
            const old = await LocalWorkspace.createOrSelectStack({ stackName: "dev", workDir: prev },
                { envVars: env, pulumiCommand: await PulumiCommand.get({ skipVersionCheck: true }) });
            const res = await old.up(quiet);
            assert.equal(res.summary.result, "succeeded");
        } finally {
            fs.rmSync(prev, { recursive: true, force: true });
        }
        const state = exportedState(dir);
        assert.match(state, /pulumi-nodejs:dynamic\/dccn-swarm:SwarmService/, "the state has the dynamic providers' types");
        assert.match(state, /"__provider"/);
        before_ = clusterFacts();
        assert.ok(Object.keys(before_).some((k) => k.startsWith("service ")), "services deployed");
    });

    test("preview with the plugin: updates of the state only, nothing replaced, created or deleted", async (t) => {
        if (skipOrFail(t, missing)) return;
        const c = changeCollector();
        await stack.preview({ onEvent: c.onEvent, diff: true, ...quiet });
        const notUpdates = [...c.changes.entries()].filter(([, op]) => op !== "update");
        assert.deepEqual(notUpdates, [], "only updates");
        assert.ok(c.changes.size > 0, "the resources move over (their state changes)");
    });

    test("up with the plugin: zero replacements, nothing touched on the nodes, the state in its new shape", async (t) => {
        if (skipOrFail(t, missing)) return;
        const c = changeCollector();
        const res = await stack.up({ onEvent: c.onEvent, ...quiet });
        assert.equal(res.summary.result, "succeeded");
        // The engine's own default-provider bookkeeping aside (the collector leaves it out), only updates.
        assert.deepEqual([...c.changes.entries()].filter(([, op]) => op !== "update"), [], "no create, delete or replacement");
        assert.deepEqual(clusterFacts(), before_, "every node, service, network, secret and config as it was; no engine restarted; no daemon.json rewritten");
        const state = exportedState(dir);
        assert.equal(state.includes("__provider"), false, "no serialised provider code left");
        assert.equal(state.includes("pulumi-nodejs:dynamic"), false, "no dynamic types left");
        const key = keyMaterial(LAB.keyFile);
        assert.equal(state.includes(key), false, "the SSH key is not in the state in plain text");
        const resources = JSON.parse(state).deployment.resources as unknown[];
        const perResource = Buffer.byteLength(state) / resources.length;
        assert.ok(perResource <= 5 * 1024, `state per resource ${Math.round(perResource)} bytes (at most 5 KB)`);
        console.log(`# migrated state: ${resources.length} resources, ${Buffer.byteLength(state)} bytes, ${Math.round(perResource)} per resource`);
    });

    test("then no changes: the migrated stack has no perpetual diff", async (t) => {
        if (skipOrFail(t, missing)) return;
        await stack.preview({ expectNoChanges: true, ...quiet });
        await stack.refresh({ expectNoChanges: true, ...quiet } as never);
    });
});
