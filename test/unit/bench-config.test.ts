/**
 * bench/lab.ts's benchConfig: the dev config both sides of the lab benchmarks build, cut down to
 * what the manual baseline reproduces, with what it leaves out named.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import { benchConfig, devStacks } from "../../bench/lab";
import { BASELINE_SECRETS, stageStack } from "../../bench/baseline-stacks";

const ROOT = path.resolve(__dirname, "..", "..");
const committed = (yaml.load(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")) as { config: Record<string, unknown> }).config;
/** The committed dev config with the webapp as the baseline can build it: its external secrets from config only. */
const withPlainWebapp = {
    ...committed,
    "dccn-swarm:stacks": (committed["dccn-swarm:stacks"] as { name: string; overrides?: Record<string, unknown> }[]).map((s) => s.name !== "webapp" ? s
        : { ...s, overrides: { externalSecrets: s.overrides?.externalSecrets } }),
};

test("the committed dev config: the registry and the stacks with lab-only overrides are left out, by name", () => {
    const { config, leftOut } = benchConfig(committed);
    assert.equal(config["dccn-swarm:registry"], undefined);
    assert.deepEqual(config["dccn-swarm:nodes"], committed["dccn-swarm:nodes"], "nodes kept as they are");
    assert.ok(leftOut.some((l) => l.includes("`dccn-swarm:registry`")), leftOut.join("; "));
    const kept = devStacks(config).map((s) => s.name);
    // Both build images the program pushes to the registry (overrides.build), which the baseline does not.
    assert.deepEqual(kept, [], `nothing kept (${kept.join(", ")})`);
    assert.ok(leftOut.some((l) => /stack webapp \(overrides .*build/.test(l)), leftOut.join("; "));
    assert.ok(leftOut.some((l) => /stack data-stager \(overrides .*publishMode/.test(l)), leftOut.join("; "));
});

test("a config the baseline fully reproduces is kept whole, with nothing left out", () => {
    const c = {
        "dccn-swarm:environment": "dev",
        "dccn-swarm:nodes": [{ hostname: "a", address: "10.0.0.1", role: "manager" }],
        "dccn-swarm:stacks": [{ name: "s", file: "stacks/s/docker-compose.yml", overrides: { images: { web: "x:1" }, replicas: { web: 2 } } }],
    };
    assert.deepEqual(benchConfig(c), { config: c, leftOut: [] });
});

test("a kept stack's external secrets from config: the secret config values go with it, not left out", () => {
    const c = {
        ...withPlainWebapp,
        "dccn-swarm:webappDbPassword": { secure: "v1:aaa" },
        "dccn-swarm:webappDbRootPassword": { secure: "v1:bbb" },
        "dccn-swarm:unrelated": "x",
    };
    const { config, leftOut } = benchConfig(c);
    assert.ok(devStacks(config).some((s) => s.name === "webapp" && s.overrides.externalSecrets), "webapp kept with its externalSecrets");
    assert.deepEqual(config["dccn-swarm:webappDbPassword"], { secure: "v1:aaa" });
    assert.deepEqual(config["dccn-swarm:webappDbRootPassword"], { secure: "v1:bbb" });
    assert.equal(config["dccn-swarm:unrelated"], undefined);
    assert.ok(leftOut.includes("`dccn-swarm:unrelated` (the baseline does not build it)"), leftOut.join("; "));
    assert.ok(!leftOut.some((l) => l.includes("webappDb")), leftOut.join("; "));
});

test("the baseline's stage directory: each provided external secret's value in a mode-600 file", () => {
    const stage = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-stage-"));
    const webapp = devStacks(withPlainWebapp).find((s) => s.name === "webapp")!;
    const asked: string[] = [];
    const dir = stageStack(webapp, ROOT, stage, (key) => { asked.push(key); return `value-of-${key}`; });
    assert.deepEqual(asked.sort(), ["webappDbPassword", "webappDbRootPassword"]);
    const secrets = path.join(dir, BASELINE_SECRETS);
    assert.equal(fs.statSync(secrets).mode & 0o777, 0o700);
    assert.deepEqual(fs.readdirSync(secrets).sort(), ["webapp_db_password", "webapp_db_root_password"]);
    assert.equal(fs.readFileSync(path.join(secrets, "webapp_db_password"), "utf8"), "value-of-webappDbPassword");
    assert.equal(fs.statSync(path.join(secrets, "webapp_db_password")).mode & 0o777, 0o600);
    // A generated one: random, different per staging.
    const generated = { ...webapp, overrides: { ...webapp.overrides, externalSecrets: { webapp_db_password: { generate: true as const } } } };
    const a = fs.readFileSync(path.join(stageStack(generated, ROOT, stage), BASELINE_SECRETS, "webapp_db_password"), "utf8");
    const b = fs.readFileSync(path.join(stageStack(generated, ROOT, stage), BASELINE_SECRETS, "webapp_db_password"), "utf8");
    assert.ok(a.length >= 20 && a !== b, "a random value each time");
    assert.throws(() => stageStack(webapp, ROOT, stage), /no value for dccn-swarm:webapp/);
});
