// The project as Pulumi finds it: the provider plugin declared by path, the program compiled ahead,
// and no dynamic provider left anywhere in the sources.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import * as yaml from "js-yaml";

const ROOT = path.resolve(__dirname, "..", "..");

test("Pulumi.yaml: the plugin dccn-swarm from ./provider, no TypeScript compiled at run time; package.json's main is the compiled program", () => {
    const project = yaml.load(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.deepEqual(project.plugins.providers, [{ name: "dccn-swarm", path: "./provider" }]);
    assert.equal(project.runtime.options.typescript, false);
    const launcher = path.join(ROOT, "provider", "pulumi-resource-dccn-swarm");
    assert.ok(fs.statSync(launcher).mode & 0o111, "the launcher is executable");
    assert.match(fs.readFileSync(launcher, "utf8"), /bin\/provider\/main\.js/);
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
    assert.equal(pkg.main, "bin/index.js");
    const build = JSON.parse(fs.readFileSync(path.join(ROOT, "tsconfig.build.json"), "utf8"));
    assert.deepEqual(build.files, ["lib/fast-start.ts", "index.ts", "provider/main.ts", "compose/build-validator.ts"]);
    // The program's Node.js loads the preload the build makes (lib/fast-start.ts), from the project.
    assert.equal(project.runtime.options.nodeargs, "--require ./bin/lib/fast-start.js");
});

test("no dynamic provider is left in the sources: the SDK's dynamic module is named nowhere outside node_modules", () => {
    // Built from parts, so that this file does not name it either.
    const dynamicModule = new RegExp(["pulumi", "dynamic"].join("\\."));
    const hits: string[] = [];
    const walk = (dir: string) => {
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
            if ([".git", "node_modules", "bin", ".state"].includes(e.name)) continue;
            const p = path.join(dir, e.name);
            if (e.isDirectory()) walk(p);
            else if (e.isFile() && fs.statSync(p).size < 2_000_000 && dynamicModule.test(fs.readFileSync(p, "utf8"))) hits.push(path.relative(ROOT, p));
        }
    };
    walk(ROOT);
    assert.deepEqual(hits, []);
});

test("the program runs without stack traces (the SDK's per-promise traces cost most of its CPU), unless DCCN_STACK_TRACES=1", async () => {
    const { withoutStackTraces } = await import("../../lib/sdk");
    const before = Error.stackTraceLimit;
    try {
        Error.stackTraceLimit = 10;
        withoutStackTraces({ DCCN_STACK_TRACES: "1" });
        assert.equal(Error.stackTraceLimit, 10);
        assert.ok((new Error("x").stack ?? "").split("\n").length > 1);
        withoutStackTraces({});
        assert.equal(Error.stackTraceLimit, 0);
        assert.equal(new Error("x").stack, "Error: x", "the message is all an error carries");
    } finally {
        Error.stackTraceLimit = before;
    }
    // The program calls it before anything else (index.ts).
    const index = fs.readFileSync(path.join(ROOT, "index.ts"), "utf8");
    assert.match(index, /async function main\(\) \{\n\s+pulumi\.withoutStackTraces\(\);/);
});
