/**
 * One program-size measurement, in its own process (bench/run.ts starts it):
 *
 *   node --import tsx bench/program-eval.ts JOB.json RESULT.json
 *
 * Evaluates index.ts under Pulumi's mocks (no engine, no nodes) with the job's stack configuration,
 * resolves the stack outputs and waits for every registration. Stacks are the program's own Stack
 * components for the `dccn-swarm:stacks` entries (a configuration with stacks that declares none
 * is an error: the figures would measure nothing).
 *
 * Modules are loaded inside main() so the phases (process start, SDK load, program) are timed apart. The result is written to RESULT.json; peak RSS is the process's maxRSS.
 */
import * as fs from "fs";
import * as path from "path";
import type * as PulumiModule from "@pulumi/pulumi";
import type { EvalJob } from "./generate";

const ROOT = path.resolve(__dirname, "..");
/** The component type a wired stack declares (components/stack.ts). */
export const STACK_COMPONENT_TYPE = "dccn-swarm:stack:Stack";

export interface EvalResult {
    workload: EvalJob["workload"];
    resources: number;
    byType: Record<string, number>;
    stacks: number;
    services: number;
    /** Milliseconds since the process started, when main() began (node + tsx start-up). */
    startupMs: number;
    /** Loading @pulumi/pulumi. */
    sdkMs: number;
    /** Evaluating index.ts under mocks until every output resolved and every registration finished. */
    programMs: number;
    /** The program's part of the process (programMs). */
    evalMs: number;
    /** Milliseconds since the process started, at the end. */
    totalMs: number;
    maxRssKiB: number;
    heapUsedBytes: number;
}

async function main(): Promise<void> {
    const startupMs = performance.now();
    const [jobFile, resultFile] = process.argv.slice(2);
    if (!jobFile || !resultFile) throw new Error("usage: program-eval.ts JOB.json RESULT.json");
    const job = JSON.parse(fs.readFileSync(jobFile, "utf8")) as EvalJob;

    let t = performance.now();
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const pulumi: typeof PulumiModule = require("@pulumi/pulumi");
    const sdkMs = performance.now() - t;

    t = performance.now();
    const byType: Record<string, number> = {};
    let resources = 0;
    await pulumi.runtime.setMocks({
        newResource(args: PulumiModule.runtime.MockResourceArgs) {
            resources++;
            byType[args.type] = (byType[args.type] ?? 0) + 1;
            const state: Record<string, unknown> = { ...args.inputs };
            if (args.type.startsWith("dccn-swarm:index:")) {
                // What the provider plugin would report after a create (as test/unit/harness.ts).
                state.nodeId = `${args.name}-id`;
                state.clusterId = "cluster-id";
                state.status = "ready";
                state.engineVersion = "20.10.24";
                state.result = "DCCN_RESULT changed=0";
            }
            return { id: `${args.name}-id`, state };
        },
        call: (args: PulumiModule.runtime.MockCallArgs) => args.inputs,
    }, "dccn-swarm", "bench", false);
    const all: Record<string, string> = {};
    for (const [k, v] of Object.entries(job.config)) all[k] = typeof v === "string" ? v : JSON.stringify(v);
    pulumi.runtime.setAllConfig(all, job.secretKeys);
    const program = await (require(path.join(ROOT, "index.ts")) as Promise<Record<string, unknown>>);
    for (const v of Object.values(program)) {
        if (pulumi.Output.isInstance(v)) await new Promise((r) => (v as PulumiModule.Output<unknown>).apply(r));
    }
    await pulumi.runtime.disconnect();
    const programMs = performance.now() - t;

    const rawStacks = job.config["dccn-swarm:stacks"];
    const stacks = byType[STACK_COMPONENT_TYPE] ?? 0;
    const services = Object.entries(byType).filter(([k]) => /SwarmService$/.test(k)).reduce((a, [, n]) => a + n, 0);
    if (Array.isArray(rawStacks) && rawStacks.length !== stacks) {
        throw new Error(`the configuration lists ${rawStacks.length} stacks, index.ts declared ${stacks} ${STACK_COMPONENT_TYPE} components`);
    }

    const result: EvalResult = {
        workload: job.workload,
        resources,
        byType,
        stacks,
        services,
        startupMs,
        sdkMs,
        programMs,
        evalMs: programMs,
        totalMs: performance.now(),
        maxRssKiB: process.resourceUsage().maxRSS,
        heapUsedBytes: process.memoryUsage().heapUsed,
    };
    fs.writeFileSync(resultFile, JSON.stringify(result, null, 2));
}

main().then(() => process.exit(0), (e: unknown) => {
    console.error(e instanceof Error ? e.stack ?? e.message : String(e));
    process.exit(1);
});
