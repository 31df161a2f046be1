/**
 * Loaded first in both of the program's Node.js processes: the Pulumi program (Pulumi.yaml's
 * runtime option `nodeargs: --require ./bin/lib/fast-start.js`, since the language host loads
 * @pulumi/pulumi before the program) and the provider plugin (its first import).
 *
 * @pulumi/pulumi's runtime loads, with everything else, the code that serialises function closures
 * for dynamic providers and `serializeFunction`: TypeScript's compiler (through the SDK's
 * typescript-shim) and npm's Arborist, about half of the SDK's load time. This program serialises
 * no closure (its resources are its provider plugin's), so those two modules are handed over as
 * stand-ins that load the real module on first use: nothing is lost if something does serialise
 * a function, it only pays the load then.
 */
import Module from "module";
import * as path from "path";

/** Who loads what lazily: the requiring file's directory (inside @pulumi/pulumi) and the requests. */
const CLOSURE_DIR = `${path.sep}${path.join("@pulumi", "pulumi", "runtime", "closure")}${path.sep}`;
const LAZY_REQUESTS = new Set(["@npmcli/arborist", "../../typescript-shim"]);

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
export function installLazyClosureModules(): void {
    if (loader._load.dccnLazy) return;
    const original = loader._load;
    const lazyLoad: Load & { dccnLazy?: true } = function (this: unknown, request, parent, isMain) {
        if (LAZY_REQUESTS.has(request) && parent?.filename?.includes(CLOSURE_DIR)) {
            return lazyModule(() => original.call(this, request, parent, isMain) as object);
        }
        return original.call(this, request, parent, isMain);
    };
    lazyLoad.dccnLazy = true;
    loader._load = lazyLoad;
}

installLazyClosureModules();
