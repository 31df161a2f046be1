/**
 * bench/lab.ts's benchConfig: the dev config both sides of the lab benchmarks build, cut down to
 * what the manual baseline reproduces, with what it leaves out named.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { benchConfig, devStacks } from "../../bench/lab";

const ROOT = path.resolve(__dirname, "..", "..");
const committed = (yaml.load(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")) as { config: Record<string, unknown> }).config;

test("the committed dev config: the registry and the stacks with lab-only overrides are left out, by name", () => {
    const { config, leftOut } = benchConfig(committed);
    assert.equal(config["dccn-swarm:registry"], undefined);
    assert.deepEqual(config["dccn-swarm:nodes"], committed["dccn-swarm:nodes"], "nodes kept as they are");
    assert.ok(leftOut.some((l) => l.includes("`dccn-swarm:registry`")), leftOut.join("; "));
    const kept = devStacks(config).map((s) => s.name);
    assert.ok(kept.includes("webapp"), `webapp kept (${kept.join(", ")})`);
    assert.ok(!kept.includes("data-stager"), "data-stager (host-mode ports, dnsrr, generated secret) left out");
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
