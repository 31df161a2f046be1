/**
 * The program's preload: Pulumi.yaml's runtime option `nodeargs: --require ./bin/lib/fast-start.js`
 * loads it before the SDK's run script (@pulumi/pulumi/cmd/run), which is what Node.js runs.
 *
 * - The run script loads OpenTelemetry's tracer, exporter and gRPC instrumentation at its start
 *   (cmd/run/tracing.js), and uses them only when the engine asks for tracing (`pulumi --tracing`):
 *   about 0.15 s of every run. They are handed over as stand-ins that load the real module on first
 *   use, so tracing works as before when it is asked for.
 * - Stack traces are off from the start (lib/stack-traces.ts): the run script's own early errors and
 *   promises would otherwise be mapped through the source maps before the program turns them off.
 *
 * Nothing here changes what the SDK does; it only changes when it pays for it. With another SDK
 * whose run script is laid out differently, the stand-ins are simply not used.
 */
import Module from "module";
import * as path from "path";
import { withoutStackTraces } from "./stack-traces";

/** Which file's requests are deferred (inside @pulumi/pulumi), and which of them. */
const TRACING_FILE = path.join("@pulumi", "pulumi", "cmd", "run", "tracing.js");
const LAZY_REQUESTS = new Set([
    "@opentelemetry/resources",
    "@opentelemetry/sdk-trace-base",
    "@opentelemetry/exporter-zipkin",
    "@opentelemetry/instrumentation-grpc",
    "@opentelemetry/sdk-trace-node",
    "@opentelemetry/instrumentation",
]);

/**
 * A stand-in for a module: the real one is loaded on the first property read, key listing or `in`.
 * It says it is an ES module's namespace, so that TypeScript's `__importStar` hands it on as it is
 * instead of copying (and so loading) every export.
 */
export function lazyModule(load: () => object): object {
    let real: object | undefined;
    const get = (): object => (real ??= load());
    return new Proxy({}, {
        get: (_t, p) => (p === "__esModule" ? true : Reflect.get(get(), p)),
        has: (_t, p) => Reflect.has(get(), p),
        ownKeys: () => Reflect.ownKeys(get()),
        getOwnPropertyDescriptor: (_t, p) => {
            const d = Reflect.getOwnPropertyDescriptor(get(), p);
            return d && { ...d, configurable: true };
        },
    });
}

type Load = (request: string, parent: { filename?: string } | undefined, isMain: boolean) => unknown;
const loader = Module as unknown as { _load: Load & { dccnLazy?: true } };

/** Installs the stand-ins once per process. */
export function installLazyTracing(): void {
    if (loader._load.dccnLazy) return;
    const original = loader._load;
    const lazyLoad: Load & { dccnLazy?: true } = function (this: unknown, request, parent, isMain) {
        if (LAZY_REQUESTS.has(request) && parent?.filename?.endsWith(TRACING_FILE)) {
            return lazyModule(() => original.call(this, request, parent, isMain) as object);
        }
        return original.call(this, request, parent, isMain);
    };
    lazyLoad.dccnLazy = true;
    loader._load = lazyLoad;
}

installLazyTracing();
withoutStackTraces();
