/**
 * lib/fast-start.ts: the Pulumi SDK's closure-serialising modules (TypeScript, Arborist) load on
 * first use only, in both of the program's processes, and still work when something uses them.
 * Each case runs a fresh `node` (a module cache of its own), as Pulumi starts the program and the
 * plugin.
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, it } from "node:test";
import { lazyModule } from "../../lib/fast-start";

const ROOT = path.resolve(__dirname, "..", "..");
const PRELOAD = path.join(ROOT, "lib", "fast-start.ts");

/** Runs `code` in a fresh node (with tsx for the preload's TypeScript), preloaded or not; its JSON output. */
function inNode(code: string, preload: boolean): any { // eslint-disable-line @typescript-eslint/no-explicit-any
    const args = ["--import", "tsx", ...(preload ? ["--import", pathToFileURL(PRELOAD).href] : []), "-e", code];
    const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

/** Whether TypeScript and Arborist are in the child's module cache (an expression), and as JSON. */
const LOADED_NOW = `({
    typescript: Object.keys(require.cache).some((k) => /node_modules\\/typescript\\//.test(k)),
    arborist: Object.keys(require.cache).some((k) => k.includes("@npmcli/arborist")),
})`;
const LOADED = `JSON.stringify(${LOADED_NOW})`;

describe("lazy closure-serialising modules", () => {
    it("loading @pulumi/pulumi loads TypeScript and Arborist without the preload, neither with it", () => {
        assert.deepEqual(inNode(`require("@pulumi/pulumi"); console.log(${LOADED})`, false), { typescript: true, arborist: true });
        assert.deepEqual(inNode(`require("@pulumi/pulumi"); console.log(${LOADED})`, true), { typescript: false, arborist: false });
    });

    it("the provider plugin's modules load neither", () => {
        assert.deepEqual(inNode(`require("./provider/provider"); require("@pulumi/pulumi/provider"); console.log(${LOADED})`, true),
            { typescript: false, arborist: false });
    });

    it("serialising a function still works with the preload: TypeScript is loaded then", () => {
        const out = inNode(`const pulumi = require("@pulumi/pulumi");
            const base = 40;
            pulumi.runtime.serializeFunction(() => base + 2).then((f) => console.log(JSON.stringify({ text: f.text, ...${LOADED_NOW} })));`, true);
        assert.match(out.text, /base \+ 2/);
        assert.match(out.text, /40/, "the captured variable was found (TypeScript parsed the function)");
        assert.equal(out.typescript, true);
    });

    it("a stand-in loads its module on first use, once, and passes for an ES module namespace", () => {
        let loads = 0;
        const m = lazyModule(() => {
            loads++;
            return { a: 1, f: () => "f" };
        }) as Record<string, unknown>;
        assert.equal(loads, 0);
        assert.equal(m.__esModule, true, "TypeScript's __importStar hands it on without reading its keys");
        assert.equal(loads, 0);
        assert.equal(m.a, 1);
        assert.equal((m.f as () => string)(), "f");
        assert.ok("a" in m);
        assert.deepEqual(Object.keys(m), ["a", "f"]);
        assert.equal(loads, 1);
    });
});
