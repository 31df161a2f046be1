/**
 * lib/fast-start.ts, the program's preload (Pulumi.yaml `nodeargs`): the SDK run script's tracing
 * modules load on first use only, tracing still works when asked for, and stack traces are off from
 * the start. Each case runs a fresh `node` (a module cache of its own), as the language host starts
 * the program.
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, it } from "node:test";
import { lazyModule } from "../../lib/fast-start";

const ROOT = path.resolve(__dirname, "..", "..");
const PRELOAD = pathToFileURL(path.join(ROOT, "lib", "fast-start.ts")).href;

/** Runs `code` in a fresh node (tsx for the preload's TypeScript), preloaded or not; its last line as JSON. */
function inNode(code: string, preload: boolean, env: NodeJS.ProcessEnv = {}): any { // eslint-disable-line @typescript-eslint/no-explicit-any
    const args = ["--import", "tsx", ...(preload ? ["--import", PRELOAD] : []), "-e", code];
    const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: "utf8", env: { ...process.env, DCCN_STACK_TRACES: "", ...env } });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

/** Which OpenTelemetry modules other than the API are in the child's module cache (an expression). */
const OTEL_LOADED = `[...new Set(Object.keys(require.cache)
    .map((k) => /node_modules\\/(@opentelemetry\\/[^/]+)\\//.exec(k)?.[1])
    .filter((m) => m && m !== "@opentelemetry/api"))].sort()`;

describe("the program's preload (lib/fast-start.ts)", () => {
    it("the run script's tracing modules load without the preload, not with it", () => {
        const code = `require("@pulumi/pulumi/cmd/run/tracing"); console.log(JSON.stringify(${OTEL_LOADED}))`;
        const without = inNode(code, false) as string[];
        for (const m of ["@opentelemetry/instrumentation-grpc", "@opentelemetry/resources", "@opentelemetry/sdk-trace-node"]) {
            assert.ok(without.includes(m), `${m} loads with the run script's tracing (else this test checks nothing): ${without}`);
        }
        assert.deepEqual(inNode(code, true), []);
    });

    it("tracing still works when the engine asks for it: the modules load then", () => {
        const out = inNode(`const tracing = require("@pulumi/pulumi/cmd/run/tracing");
            tracing.start("http://127.0.0.1:9/api/v2/spans");
            const span = tracing.newSpan("dccn-test");
            console.log(JSON.stringify({ recording: span.isRecording(), loaded: ${OTEL_LOADED} }));
            span.end(); process.exit(0);`, true);
        assert.equal(out.recording, true, "a real tracer provider made the span");
        assert.ok(out.loaded.includes("@opentelemetry/sdk-trace-node"), String(out.loaded));
    });

    it("stack traces are off from the start, unless DCCN_STACK_TRACES=1", () => {
        const code = `console.log(JSON.stringify(new Error("x").stack))`;
        assert.equal(inNode(code, true), "Error: x");
        assert.ok((inNode(code, true, { DCCN_STACK_TRACES: "1" }) as string).split("\n").length > 1);
        assert.ok((inNode(code, false) as string).split("\n").length > 1);
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
