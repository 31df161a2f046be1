/**
 * `npm run bench`: program-size scaling (mocked engine, no cluster) and the lab benchmarks (the
 * program, the Ansible peer and the Docker CLI on the bench's own lab instance, from bare nodes;
 * bench/peers.ts). Prints a table and writes it to bench/results.md (a complete run only; partial
 * runs print, or write to --out).
 *
 *   npm run bench                        everything (brings up the toolchain, the lab instance and the package source if needed)
 *   npm run bench -- --runs 7            runs per program-size figure (default 5, at least 3)
 *   npm run bench -- --lab-runs 5        runs per lab figure (default 3, at least 3)
 *   npm run bench -- --no-lab            program size only (touches no node)
 *   npm run bench -- --only X            one part: nodes, stacks, lab (every lab workload), a lab workload
 *                                        (scratch, noop, label, roll2, roll6, drain, stacks1, stacks5, stacks20;
 *                                        comma-separated for several), or provider (issue 14, on the default lab)
 *
 * Each program-size figure is one child process per run (bench/program-eval.ts): whole-process wall
 * time measured here from spawn to exit, peak RSS the child's maxRSS, and the evaluation time (the
 * part that grows with the program) reported by the child.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { generateJob, NODE_SIZES, STACK_SIZES, STACK_WORKLOAD_NODES, composeSources, managersFor, Workload, WorkloadKind } from "./generate";
import { LAB_LOCK, LAB_NAME, peerReport, runPeers } from "./peers";
import { DESCRIBE, TARGETS, WORKLOADS, type Workload as LabWorkload } from "./peers-spec";
import { runProvider } from "./provider";
import type { EvalResult } from "./program-eval";
import { figure, Figure, fmt, machine, machineLines, ROOT, table } from "./report";

const RESULTS = path.join(__dirname, "results.md");
const CHILD = path.join(__dirname, "program-eval.ts");
const CHILD_TIMEOUT_MS = 180_000;

/** Targets of issue 8 for program size. */
const TARGET_WALL_S = 10;
const TARGET_RSS_MIB = 1024;
/**
 * "Growth no worse than linear": the marginal cost per unit (Δ eval time / Δ size) of the upper
 * size interval may exceed the lower one's by this much (measurement noise on a shared machine).
 */
const LINEAR_TOLERANCE = 1.25;

const ONLY = ["nodes", "stacks", "lab", "provider", ...WORKLOADS] as const;

interface Options {
    /** Program-size workloads to run. */
    kinds: WorkloadKind[];
    /** Lab workloads to run. */
    workloads: LabWorkload[];
    /** The provider's own costs (issue 14; default lab), only with --only provider. */
    provider: boolean;
    runs: number;
    labRuns: number;
    out?: string;
}

function usage(code: number): never {
    console.error(`usage: tsx bench/run.ts [--runs N] [--lab-runs N] [--no-lab | --only ${ONLY.join("|")}] [--out FILE]`);
    process.exit(code);
}

function parseArgs(argv: string[]): Options {
    const o: Options = { kinds: ["nodes", "stacks"], workloads: [...WORKLOADS], provider: false, runs: 5, labRuns: 3, out: RESULTS };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const num = () => {
            const n = Number(argv[++i]);
            if (!Number.isInteger(n) || n < 3) {
                console.error(`${a} needs a whole number >= 3 (each figure is a median of at least 3 runs)`);
                process.exit(2);
            }
            return n;
        };
        if (a === "--no-lab") {
            o.workloads = [];
            o.out = undefined;
        } else if (a === "--runs") o.runs = num();
        else if (a === "--lab-runs") o.labRuns = num();
        else if (a === "--only") {
            const ks = (argv[++i] ?? "").split(",");
            if (!ks.length || ks.some((k) => !(ONLY as readonly string[]).includes(k))) usage(2);
            o.kinds = ks.filter((k): k is WorkloadKind => k === "nodes" || k === "stacks");
            o.workloads = ks.includes("lab") ? [...WORKLOADS] : WORKLOADS.filter((w) => ks.includes(w));
            o.provider = ks.includes("provider");
            o.out = undefined;
        } else if (a === "--out") o.out = path.resolve(argv[++i] ?? usage(2));
        else if (a === "--help" || a === "-h") usage(0);
        else usage(2);
    }
    return o;
}

function say(s: string): void {
    process.stderr.write(`${s}\n`);
}

interface Run {
    wallS: number;
    result: EvalResult;
}

/** One measurement: a fresh `node --import tsx bench/program-eval.ts` process. */
function measure(jobFile: string, resultFile: string): Promise<Run> {
    return new Promise((resolve, reject) => {
        fs.rmSync(resultFile, { force: true });
        let output = "";
        const start = process.hrtime.bigint();
        const child = spawn(process.execPath, ["--import", "tsx", CHILD, jobFile, resultFile], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
        child.stdout.on("data", (d) => (output += d));
        child.stderr.on("data", (d) => (output += d));
        const timer = setTimeout(() => child.kill("SIGKILL"), CHILD_TIMEOUT_MS);
        child.on("error", (e) => { clearTimeout(timer); reject(e); });
        child.on("exit", (code, signal) => {
            const wallS = Number(process.hrtime.bigint() - start) / 1e9;
            clearTimeout(timer);
            if (code !== 0 || !fs.existsSync(resultFile)) {
                reject(new Error(`${path.basename(jobFile)}: exit ${code ?? signal}${signal === "SIGKILL" ? ` (timeout ${CHILD_TIMEOUT_MS / 1000} s)` : ""}\n${output.slice(-4000)}`));
                return;
            }
            resolve({ wallS, result: JSON.parse(fs.readFileSync(resultFile, "utf8")) as EvalResult });
        });
    });
}

interface SizeFigures {
    workload: Workload;
    resources: number;
    services: number;
    wall: Figure;
    evalS: Figure;
    /**
     * The part that grows with the size: for nodes the evaluation; for stacks the evaluation less
     * the reference's (the same cluster with no stacks). Not defined for the reference itself.
     */
    scaledS?: Figure;
    startupS: Figure;
    rssMiB: Figure;
}

function summarise(workload: Workload, runs: Run[], reference?: SizeFigures): SizeFigures {
    const last = runs[runs.length - 1].result;
    let scaled: number[] | undefined;
    if (workload.kind === "nodes") scaled = runs.map((r) => r.result.evalMs / 1000);
    else if (workload.size > 0) {
        scaled = runs.map((r) => r.result.evalMs / 1000 - (reference?.evalS.median ?? 0));
    }
    return {
        workload,
        resources: last.resources,
        services: last.services,
        wall: figure(runs.map((r) => r.wallS)),
        evalS: figure(runs.map((r) => r.result.evalMs / 1000)),
        scaledS: scaled && figure(scaled),
        startupS: figure(runs.map((r) => (r.result.startupMs + r.result.sdkMs) / 1000)),
        rssMiB: figure(runs.map((r) => r.result.maxRssKiB / 1024)),
    };
}

interface Growth {
    from: number;
    to: number;
    wall: number;
    scaled: number;
    rss: number;
    /** (scaled/size at `to`) / (scaled/size at `from`): about 1 for linear growth, less with a fixed part. */
    perUnit: number;
    /** Δ scaled ms / Δ size over this interval. */
    marginalMs: number;
    /** Δ peak RSS MiB / Δ size over this interval. */
    marginalRssMiB: number;
    /** Stacks: the same two per service (the sizes mix the compose files, and so the services per stack, differently). */
    perService?: number;
    marginalPerServiceMs?: number;
}

/** Growth between consecutive sizes (the stacks reference, size 0, left out). */
function growth(figs: SizeFigures[]): Growth[] {
    const sized = figs.filter((f) => f.scaledS);
    return sized.slice(1).map((b, i) => {
        const a = sized[i];
        const n0 = a.workload.size, n1 = b.workload.size;
        const s0 = a.scaledS!.median, s1 = b.scaledS!.median;
        return {
            from: n0,
            to: n1,
            wall: b.wall.median / a.wall.median,
            scaled: s1 / s0,
            rss: b.rssMiB.median / a.rssMiB.median,
            perUnit: (s1 / n1) / (s0 / n0),
            marginalMs: (s1 - s0) * 1000 / (n1 - n0),
            marginalRssMiB: (b.rssMiB.median - a.rssMiB.median) / (n1 - n0),
            ...(a.workload.kind === "stacks" && a.services > 0 && b.services > a.services ? {
                perService: (s1 / b.services) / (s0 / a.services),
                marginalPerServiceMs: (s1 - s0) * 1000 / (b.services - a.services),
            } : {}),
        };
    });
}

function unitName(kind: WorkloadKind): string {
    return kind === "nodes" ? "node" : "stack";
}

function describe(f: SizeFigures): string {
    if (f.workload.kind === "nodes") return `${f.workload.size} nodes (${managersFor(f.workload.size)} managers)`;
    if (f.workload.size === 0) return `${STACK_WORKLOAD_NODES}-node cluster, no stacks (reference)`;
    return `${f.workload.size} stacks, ${f.services} services`;
}

function programTable(all: SizeFigures[][]): string {
    const rows: string[][] = [];
    for (const figs of all) {
        const g = growth(figs);
        const sized = figs.filter((f) => f.scaledS);
        for (const f of figs) {
            const i = sized.indexOf(f);
            const gi = i > 0 ? g[i - 1] : undefined;
            rows.push([
                describe(f),
                String(f.resources),
                fmt(f.wall),
                fmt(f.evalS),
                f.scaledS ? fmt(f.scaledS, 3) : "",
                fmt(f.rssMiB, 0),
                f.scaledS ? (f.scaledS.median * 1000 / f.workload.size).toFixed(2) +
                    (f.workload.kind === "stacks" && f.services ? ` (${(f.scaledS.median * 1000 / f.services).toFixed(2)}/service)` : "") : "",
                gi ? `×${(gi.to / gi.from).toFixed(1)} size: wall ×${gi.wall.toFixed(2)}, scaled part ×${gi.scaled.toFixed(2)}, RSS ×${gi.rss.toFixed(2)}` : "",
                gi ? gi.perUnit.toFixed(2) + (gi.perService !== undefined ? ` (${gi.perService.toFixed(2)}/service)` : "") : "",
                gi ? `${gi.marginalMs.toFixed(2)} ms, ${gi.marginalRssMiB.toFixed(2)} MiB` : "",
            ]);
        }
    }
    return table(["Workload", "Resources", "Wall, s", "Eval, s", "Scaled part, s", "Peak RSS, MiB", "Scaled part per unit, ms",
        "Growth from the previous size", "Per-unit cost ratio", "Marginal cost per unit (time, RSS)"], rows);
}

function targetLines(all: SizeFigures[][]): { lines: string[]; missed: string[] } {
    const lines: string[] = [];
    const missed: string[] = [];
    for (const figs of all) {
        const kind = figs[0].workload.kind;
        const top = figs[figs.length - 1];
        const name = `${top.workload.size} ${kind}`;
        // Judged on the median, as every figure; the slowest run is shown beside it.
        const wallOk = top.wall.median < TARGET_WALL_S;
        const rssOk = top.rssMiB.median < TARGET_RSS_MIB;
        lines.push(`- ${name}: wall ${top.wall.median.toFixed(2)} s (slowest run ${top.wall.max.toFixed(2)} s), target < ${TARGET_WALL_S} s: **${wallOk ? "met" : "MISSED"}**; ` +
            `peak RSS ${top.rssMiB.median.toFixed(0)} MiB (largest ${top.rssMiB.max.toFixed(0)} MiB), target < ${TARGET_RSS_MIB} MiB: **${rssOk ? "met" : "MISSED"}**`);
        if (!wallOk) missed.push(`${name} wall ${top.wall.median.toFixed(2)} s (target < ${TARGET_WALL_S} s)`);
        if (!rssOk) missed.push(`${name} peak RSS ${top.rssMiB.median.toFixed(0)} MiB (target < ${TARGET_RSS_MIB} MiB)`);
        const g = growth(figs);
        const unit = unitName(kind);
        const perUnit = g.map((x) => `${x.from}→${x.to}: ${x.perUnit.toFixed(2)}`).join(", ");
        const marginal = g.map((x) => `${x.from}→${x.to}: ${x.marginalMs.toFixed(2)} ms`).join(", ");
        // Stacks are judged per service: 3 stacks hold only the smaller compose files, 30 and 100 all of them.
        const perService = kind === "stacks" && g.every((x) => x.perService !== undefined);
        const judged = g.map((x) => perService ? x.perService! : x.perUnit);
        const margins = g.map((x) => perService ? x.marginalPerServiceMs! : x.marginalMs);
        // The marginal ratio says something only when the lower interval's cost stands out of the noise.
        const lower = margins.length >= 2 ? margins[margins.length - 2] : NaN;
        const ratio = lower > 0 ? margins[margins.length - 1] / lower : NaN;
        const linearOk = judged.every((x) => x <= LINEAR_TOLERANCE) && (Number.isNaN(ratio) || ratio <= LINEAR_TOLERANCE);
        const judgedText = perService
            ? `; per service ${g.map((x, i) => `${x.from}→${x.to}: ${judged[i].toFixed(2)}`).join(", ")}, marginal ${margins.map((m) => `${m.toFixed(2)} ms`).join(", ")} (judged per service: the 3-stack size holds only the smaller compose files)`
            : "";
        lines.push(`- ${kind} growth (scaled part): cost per ${unit} ratio between sizes ${perUnit}; ` +
            `marginal cost per ${unit} ${marginal}${judgedText}` +
            (Number.isNaN(ratio) ? "; lower interval within noise, marginal ratio not judged" : `; marginal ratio ${ratio.toFixed(2)}`) +
            `. Linear growth gives ≈ 1 for both ratios (tolerance ${LINEAR_TOLERANCE}): no worse than linear **${linearOk ? "met" : "MISSED"}**`);
        if (!linearOk) {
            missed.push(`${kind} growth (cost ratios ${judged.map((x) => x.toFixed(2)).join(", ")}${perService ? " per service" : ""}; ` +
                `marginal ratio ${Number.isNaN(ratio) ? "n/a" : ratio.toFixed(2)})`);
        }
    }
    return { lines, missed };
}

async function programSize(opts: Options, work: string): Promise<{ lines: string[]; missed: string[] }> {
    const kinds: { kind: WorkloadKind; sizes: number[] }[] = [
        { kind: "nodes" as const, sizes: NODE_SIZES },
        // Size 0: the same cluster without stacks, the reference the stack figures are taken against.
        { kind: "stacks" as const, sizes: [0, ...STACK_SIZES] },
    ].filter((k) => opts.kinds.includes(k.kind));
    const jobs = kinds.flatMap(({ kind, sizes }) => sizes.map((size) => {
        const workload = { kind, size };
        const jobFile = path.join(work, `${kind}-${size}.job.json`);
        fs.writeFileSync(jobFile, JSON.stringify(generateJob(workload, path.join(work, `${kind}-${size}`))));
        return { workload, jobFile, resultFile: path.join(work, `${kind}-${size}.result.json`), runs: [] as Run[] };
    }));

    // One discarded run per workload kind: fills tsx's compile cache so every counted run starts alike.
    for (const { kind } of kinds) {
        const j = jobs.find((x) => x.workload.kind === kind && x.workload.size > 0)!;
        say(`warm-up: ${kind} ${j.workload.size}`);
        await measure(j.jobFile, j.resultFile);
    }
    // Sizes interleaved run by run, so a drift in the machine's load spreads over every size.
    for (let r = 1; r <= opts.runs; r++) {
        for (const j of jobs) {
            const run = await measure(j.jobFile, j.resultFile);
            j.runs.push(run);
            say(`run ${r}/${opts.runs}: ${j.workload.kind} ${j.workload.size}: wall ${run.wallS.toFixed(2)} s, eval ${(run.result.evalMs / 1000).toFixed(2)} s, ` +
                `RSS ${(run.result.maxRssKiB / 1024).toFixed(0)} MiB, ${run.result.resources} resources`);
        }
    }
    const all = kinds.map(({ kind }) => {
        const mine = jobs.filter((j) => j.workload.kind === kind);
        const ref = mine.find((j) => j.workload.size === 0);
        const reference = ref && summarise(ref.workload, ref.runs);
        return mine.map((j) => j === ref ? reference! : summarise(j.workload, j.runs, reference));
    });
    const { lines: targets, missed } = targetLines(all);
    const startup = figure(all.flat().map((f) => f.startupS.median));
    const lines = [
        `Each figure: median (min–max) of ${opts.runs} runs, each run a fresh Node process evaluating index.ts under Pulumi's mocks ` +
        "(bench/program-eval.ts; sizes interleaved, one warm-up run per workload discarded). *Wall* is the whole process from spawn to exit " +
        `(Node, tsx and the SDK load take ${startup.median.toFixed(2)} s of it); *Eval* is the program's part (evaluating index.ts until ` +
        "every output resolved and every registration finished); *Scaled part* is what grows with the size " +
        "(nodes: the evaluation; stacks: the evaluation less the no-stacks reference's); " +
        "*Peak RSS* is the process's maxRSS.",
        "",
        `- Nodes: generated prod-like clusters (devicemapper engines: engine, thinpool and daemon steps per node; 3/5/7 managers; ` +
        "labels os, function, rack, some gpu; every 32nd worker drained).",
        `- Stacks: \`dccn-swarm:stacks\` entries ({name, file, env, overrides}) for copies of ${composeSources().origin}, cycling, ` +
        `with registry, bind-path and replica overrides, on top of a ${STACK_WORKLOAD_NODES}-node cluster: the program's own Stack ` +
        "components (compose loading and conversion, networks, configs, secrets, services).",
        "",
        programTable(all),
        "",
        "Per-unit cost ratio: (scaled part / size) at this size over the same at the previous size (≈ 1 for linear growth, " +
        "below 1 while a fixed part dominates); marginal cost per unit: Δ scaled part / Δ size (and Δ peak RSS / Δ size) from the previous size.",
        "",
        "Targets (issue 8):",
        "",
        ...targets,
    ];
    return { lines, missed };
}

async function main(): Promise<void> {
    const opts = parseArgs(process.argv.slice(2));
    const m = machine();
    const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");
    const loads = [`at start ${load(os.loadavg())}`];
    const out: string[] = [
        "# Benchmark results",
        "",
        "Written by `npm run bench` (bench/run.ts); see bench/README.md for what each figure measures. Do not edit by hand.",
        "",
        ...machineLines(m),
    ];
    const body: string[] = [];
    const missed: string[] = [];
    if (opts.kinds.length) {
        const work = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-bench-"));
        const cleanup = () => fs.rmSync(work, { recursive: true, force: true });
        process.once("SIGINT", () => { cleanup(); process.exit(130); });
        process.once("SIGTERM", () => { cleanup(); process.exit(143); });
        try {
            const p = await programSize(opts, work);
            body.push("", "## Program size (mocked engine, no cluster)", "", ...p.lines);
            missed.push(...p.missed);
        } finally {
            cleanup();
        }
        loads.push(`after the program-size part ${load(os.loadavg())}`);
    }
    if (opts.workloads.length) {
        body.push("", "## Lab (real engine, from bare nodes): the program against Ansible and the Docker CLI", "");
        say(`lab benchmarks (${opts.workloads.join(", ")}) on lab instance \`${LAB_NAME}\`, holding ${LAB_LOCK}`);
        const res = await runPeers({ runs: opts.labRuns, workloads: opts.workloads }, say);
        const lab = peerReport(res, { runs: opts.labRuns, workloads: opts.workloads }, { name: LAB_NAME });
        body.push(...lab.lines);
        missed.push(...lab.missed);
        loads.push(`after the lab part ${load(os.loadavg())}`);
    } else {
        body.push("", "## Lab", "", "Not run (`--no-lab` or `--only`): " + TARGETS.map((t) =>
            `${DESCRIBE[t.workload].toLowerCase()} ours/${t.peer === "ansible" ? "Ansible" : "CLI"} ≤ ${t.max}`).join("; ") + ".");
    }
    if (opts.provider) {
        body.push("", "## The provider's own costs (issue 14, default lab)", "");
        const p = await runProvider(opts.labRuns, say);
        body.push(...p.lines);
        missed.push(...p.missed);
    }
    // The machine's load while it ran (a shared machine: other work widens the min–max spans).
    out.push(`- Load average (1, 5, 15 min): ${loads.join("; ")}`, ...body);
    out.push("", missed.length ? `Targets missed: ${missed.join("; ")}.` : "Targets missed: none.");
    const text = out.join("\n") + "\n";
    process.stdout.write("\n" + text);
    if (opts.out) {
        fs.writeFileSync(opts.out, text);
        say(`written to ${path.relative(process.cwd(), opts.out) || opts.out}`);
    } else {
        say("partial run (--no-lab or --only): bench/results.md left as it was (--out FILE writes this one)");
    }
}

main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
});
