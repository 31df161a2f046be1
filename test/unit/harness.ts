/**
 * Runs the program under Pulumi's mocks (no engine, no nodes) with a given stack configuration and
 * returns the resources it declared and its stack outputs.
 */
import { stepStdin, type StepCall } from "../../lib/remote-script";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import * as pulumi from "@pulumi/pulumi";

export const ROOT = path.resolve(__dirname, "..", "..");

export interface MockResource {
    type: string;
    name: string;
    inputs: Record<string, any>;
    /** Names of the resources it depends on, as registered (dependsOn and input dependencies). */
    deps: string[];
    /** Name of its parent, "" for none. */
    parent: string;
    /** The `protect` resource option as registered. */
    protect: boolean;
}

/**
 * Call after setMocks: records every resource registration with its inputs, dependencies and
 * parent (the mocks' newResource sees neither), into the returned list.
 */
export function captureRegistrations(): MockResource[] {
    const out: MockResource[] = [];
    const monitor = pulumi.runtime.getMonitor() as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: any, cb: any) => { // eslint-disable-line @typescript-eslint/no-explicit-any
        const name = (urn: string) => urn.split("::").pop()!;
        out.push({
            type: req.getType(),
            name: req.getName(),
            inputs: pulumi.runtime.deserializeProperties(req.getObject()),
            deps: (req.getDependenciesList() as string[]).map(name),
            parent: req.getParent() ? name(req.getParent()) : "",
            protect: !!req.getProtect(),
        });
        return register(req, cb);
    };
    return out;
}

/** The stack file's `dccn-swarm:*` values, parsed as Pulumi would hand them to the program. */
export function stackConfig(stack: string): Record<string, unknown> {
    const doc = yaml.load(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> };
    return { ...doc.config };
}

/** A throw-away key file and known_hosts for the given addresses, standing in for the lab's. */
const madeDirs: string[] = [];
process.once("exit", () => { for (const d of madeDirs) fs.rmSync(d, { recursive: true, force: true }); });

/** A temporary directory removed when the test process ends (test keys never stay behind in /tmp). */
export function tempDir(prefix: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    madeDirs.push(dir);
    return dir;
}

export function fakeSshFiles(addresses: string[]): { keyFile: string; knownHosts: string } {
    const dir = tempDir("dccn-unit-");
    const keyFile = path.join(dir, "id_ed25519");
    fs.writeFileSync(keyFile, "-----BEGIN OPENSSH PRIVATE KEY-----\nUNIT-TEST-KEY\n-----END OPENSSH PRIVATE KEY-----\n", { mode: 0o600 });
    const knownHosts = path.join(dir, "known_hosts");
    fs.writeFileSync(knownHosts, addresses.map((a, i) => `${a} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUnitTestHostKey${i}`).join("\n") + "\n");
    return { keyFile, knownHosts };
}

export async function runProgram(stack: string, config: Record<string, unknown>, secretKeys: string[] = []): Promise<{
    resources: MockResource[];
    outputs: Record<string, unknown>;
}> {
    await pulumi.runtime.setMocks({
        newResource(args: pulumi.runtime.MockResourceArgs) {
            const state: Record<string, unknown> = { ...args.inputs };
            if (args.type.startsWith("dccn-swarm:index:")) {
                state.nodeId = `${args.name}-id`;
                state.clusterId = "cluster-id";
                state.recoveries = 0;
                state.status = "ready";
                state.engineVersion = "20.10.24";
                state.result = "DCCN_RESULT changed=0";
                // A built image (StackImage): pushed as its tag, at a digest made from its context's.
                if (typeof args.inputs.image === "string" && typeof args.inputs.contextDigest === "string") {
                    state.digest = args.inputs.contextDigest;
                    state.ref = `${args.inputs.image}@${args.inputs.contextDigest}`;
                }
            }
            return { id: `${args.name}-id`, state };
        },
        call: (args: pulumi.runtime.MockCallArgs) => args.inputs,
    }, "dccn-swarm", stack, false);
    const resources = captureRegistrations();
    const all: Record<string, string> = {};
    for (const [k, v] of Object.entries(config)) all[k] = typeof v === "string" ? v : JSON.stringify(v);
    pulumi.runtime.setAllConfig(all, secretKeys);
    for (const k of Object.keys(require.cache)) {
        if (k.startsWith(ROOT) && !k.includes("node_modules")) delete require.cache[k];
    }
    const stackTraceLimit = Error.stackTraceLimit; // the program turns traces off (lib/sdk.ts): not for the tests after it
    try {
        // The program's outputs: what its module exports, once it resolves (index.ts exports a promise).
        const program = await require(path.join(ROOT, "index.ts"));
        const outputs: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(program)) {
            outputs[k] = pulumi.Output.isInstance(v) ? await new Promise((r) => (v as pulumi.Output<unknown>).apply(r)) : v;
        }
        return { resources, outputs };
    } finally {
        // Let outstanding registrations (component outputs) finish before the next scenario's mocks.
        await pulumi.runtime.disconnect();
        Error.stackTraceLimit = stackTraceLimit;
    }
}

/** Resolve an Output (or plain value) in a test. */
export function value<T>(o: pulumi.Input<T>): Promise<T> {
    return new Promise((r) => pulumi.output(o).apply(r as (v: unknown) => void));
}

/** The standard input a ProvisionStep's call sends to `bash -s` (the provider builds it from the call). */
export function stdinOf(r: { inputs: Record<string, any> }): string { // eslint-disable-line @typescript-eslint/no-explicit-any
    return stepStdin(r.inputs as StepCall);
}

/** The standard input that undoes a ProvisionStep, if it has one. */
export function undoOf(r: { inputs: Record<string, any> }): string | undefined { // eslint-disable-line @typescript-eslint/no-explicit-any
    return r.inputs.undoEnv ? stepStdin(r.inputs as StepCall, r.inputs.undoEnv) : undefined;
}
