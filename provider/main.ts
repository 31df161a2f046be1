/**
 * Entry point of the `dccn-swarm` provider plugin (provider/pulumi-resource-dccn-swarm runs the
 * compiled form of this file): serves DccnSwarmProvider with @pulumi/pulumi's provider server.
 *
 * That server drops what the engine sends and answers beyond the basics: a diff's field-level
 * detail, the old inputs of a diff, update, read or delete, and previews of creates and updates.
 * Those handlers are replaced here: `pulumi preview` names the fields that change and shows the
 * outputs of an update that changes only the state (so nothing after it looks changed), and the
 * state keeps each input once (the provider reads old inputs instead of copies in the outputs).
 */
import * as fs from "fs";
import * as path from "path";
import * as grpc from "@grpc/grpc-js";
import { main } from "@pulumi/pulumi/provider";
import * as provproto from "@pulumi/pulumi/proto/provider_pb";
import * as provrpc from "@pulumi/pulumi/proto/provider_grpc_pb";
import * as emptyproto from "google-protobuf/google/protobuf/empty_pb";
import * as structproto from "google-protobuf/google/protobuf/struct_pb";
import { REPO_ROOT } from "../lib/repo";
import { closeConnections, retryFirstContact } from "../lib/ssh";
import { preloadEngineClient } from "../lib/engine-transport";
import { whileLocking } from "../lib/write-gate";
import { withProgress } from "../lib/progress";
import { LockGate } from "./lock-gate";
import { DccnSwarmProvider, type DetailedDiff } from "./provider";

const KIND: Record<DetailedDiff["detailedDiff"][string]["kind"], provproto.PropertyDiff.Kind> = {
    "add": provproto.PropertyDiff.Kind.ADD,
    "add-replace": provproto.PropertyDiff.Kind.ADD_REPLACE,
    "delete": provproto.PropertyDiff.Kind.DELETE,
    "delete-replace": provproto.PropertyDiff.Kind.DELETE_REPLACE,
    "update": provproto.PropertyDiff.Kind.UPDATE,
    "update-replace": provproto.PropertyDiff.Kind.UPDATE_REPLACE,
};

type Handler<Req, Resp> = grpc.handleUnaryCall<Req, Resp>;

/** Runs `work` and answers with its response, or with its error (logged for the engine's log). */
function answer<Resp>(callback: grpc.sendUnaryData<Resp>, work: () => Promise<Resp>): void {
    work().then((r) => callback(null, r), (e: Error) => {
        console.error(`${e}: ${e.stack}`);
        callback(e, null);
    });
}

const js = (s: structproto.Struct | undefined): Record<string, unknown> | undefined => s?.toJavaScript() as Record<string, unknown> | undefined;

/** Diff, with the detailed diff and the old inputs. */
function diffHandler(provider: DccnSwarmProvider): Handler<provproto.DiffRequest, provproto.DiffResponse> {
    return (call, callback) => answer(callback, async () => {
        const req = call.request;
        const r = await provider.diff(req.getId(), req.getUrn(), js(req.getOlds()) ?? {}, js(req.getNews()) ?? {}, js(req.getOldInputs()));
        const resp = new provproto.DiffResponse();
        resp.setChanges(r.changes ? provproto.DiffResponse.DiffChanges.DIFF_SOME : provproto.DiffResponse.DiffChanges.DIFF_NONE);
        resp.setReplacesList(r.replaces ?? []);
        resp.setStablesList(r.stables ?? []);
        resp.setDeletebeforereplace(!!r.deleteBeforeReplace);
        const paths = Object.keys(r.detailedDiff);
        resp.setDiffsList([...new Set(paths.map((p) => p.split(/[.[]/)[0]))]);
        if (r.changes && paths.length > 0) {
            resp.setHasdetaileddiff(true);
            const map = resp.getDetaileddiffMap();
            for (const [path, d] of Object.entries(r.detailedDiff)) {
                const pd = new provproto.PropertyDiff();
                pd.setKind(KIND[d.kind]);
                pd.setInputdiff(true);
                map.set(path, pd);
            }
        }
        return resp;
    });
}

/**
 * Configure: what the Node.js server answers, and that this provider previews creates and updates
 * itself (provider.previewCreate, provider.update with `preview`). The stack's configuration it
 * carries (nodes, SSH) tells the lock gate where the cluster lock is kept.
 */
function configureHandler(gate: LockGate): Handler<provproto.ConfigureRequest, provproto.ConfigureResponse> {
    return (call, callback) => answer(callback, async () => {
        gate.configure(call.request.getVariablesMap().getEntryList());
        const resp = new provproto.ConfigureResponse();
        resp.setAcceptsecrets(true);
        resp.setAcceptresources(true);
        resp.setAcceptoutputs(true);
        resp.setSupportspreview(true);
        return resp;
    });
}

/** The engine's address (the plugin's first argument), for its Log service. */
let engineAddress: string | undefined;
let engineClient: { log(req: unknown, cb: (err: Error | null) => void): void } | undefined;

/**
 * Where a resource's progress lines (lib/progress.ts: an image build's steps) go: the engine's Log
 * service as ephemeral status messages, shown beside the resource in `pulumi up`'s display.
 */
function engineStatus(urn: string): (line: string) => void {
    return (line) => {
        if (!engineAddress) return;
        /* eslint-disable @typescript-eslint/no-require-imports */
        const enginerpc = require("@pulumi/pulumi/proto/engine_grpc_pb");
        const engineproto = require("@pulumi/pulumi/proto/engine_pb");
        /* eslint-enable @typescript-eslint/no-require-imports */
        engineClient ??= new enginerpc.EngineClient(engineAddress, grpc.credentials.createInsecure());
        const req = new engineproto.LogRequest();
        req.setSeverity(engineproto.LogSeverity.INFO);
        req.setMessage(line.slice(0, 300));
        req.setUrn(urn);
        req.setEphemeral(true);
        engineClient!.log(req, () => { /* a lost status line is not an error */ });
    };
}

/** Create; during a preview nothing is made (and the cluster lock is not taken). */
function createHandler(provider: DccnSwarmProvider, gate: LockGate): Handler<provproto.CreateRequest, provproto.CreateResponse> {
    return (call, callback) => answer(callback, async () => {
        const req = call.request;
        const resp = new provproto.CreateResponse();
        if (req.getPreview()) {
            resp.setId("");
            resp.setProperties(structproto.Struct.fromJavaScript(provider.previewCreate(req.getUrn(), js(req.getProperties()) ?? {}) as Record<string, structproto.JavaScriptValue>));
            return resp;
        }
        const r = await whileLocking(gate.ensure(req.getUrn()), () => withProgress(engineStatus(req.getUrn()),
            () => provider.create(req.getUrn(), js(req.getProperties()) ?? {})));
        resp.setId(r.id);
        resp.setProperties(structproto.Struct.fromJavaScript((r.outs ?? {}) as Record<string, structproto.JavaScriptValue>));
        return resp;
    });
}

/** Update, with the old inputs; during a preview nothing is changed. */
function updateHandler(provider: DccnSwarmProvider, gate: LockGate): Handler<provproto.UpdateRequest, provproto.UpdateResponse> {
    return (call, callback) => answer(callback, async () => {
        const req = call.request;
        const update = () => withProgress(engineStatus(req.getUrn()),
            () => provider.update(req.getId(), req.getUrn(), js(req.getOlds()) ?? {}, js(req.getNews()) ?? {}, js(req.getOldInputs()), req.getPreview()));
        const r = req.getPreview() ? await update() : await whileLocking(gate.ensure(req.getUrn()), update);
        const resp = new provproto.UpdateResponse();
        resp.setProperties(structproto.Struct.fromJavaScript((r.outs ?? {}) as Record<string, structproto.JavaScriptValue>));
        return resp;
    });
}

/** Read (refresh), with the inputs. */
function readHandler(provider: DccnSwarmProvider): Handler<provproto.ReadRequest, provproto.ReadResponse> {
    return (call, callback) => answer(callback, async () => {
        const req = call.request;
        preloadEngineClient(); // once: loaded while the first reads wait for their connections
        const r = await provider.read(req.getId(), req.getUrn(), js(req.getProperties()) ?? {}, js(req.getInputs()));
        const resp = new provproto.ReadResponse();
        resp.setId(r.id ?? "");
        resp.setProperties(structproto.Struct.fromJavaScript((r.props ?? {}) as Record<string, structproto.JavaScriptValue>));
        if (r.inputs) resp.setInputs(structproto.Struct.fromJavaScript(r.inputs as Record<string, structproto.JavaScriptValue>));
        return resp;
    });
}

/** Delete, with the old inputs. */
function deleteHandler(provider: DccnSwarmProvider, gate: LockGate): Handler<provproto.DeleteRequest, emptyproto.Empty> {
    return (call, callback) => answer(callback, async () => {
        const req = call.request;
        await whileLocking(gate.ensure(req.getUrn()), () => provider.delete(req.getId(), req.getUrn(), js(req.getProperties()) ?? {}, js(req.getOldInputs())));
        return new emptyproto.Empty();
    });
}

function serve(): Promise<void> {
    const version = String(JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")).version);
    const provider = new DccnSwarmProvider(version);
    // The cluster lock: from the first change that is not a preview until this process ends.
    const gate = new LockGate();
    // A deployment (the program says so first thing): the lock's node is reached before the first change.
    provider.onDeploying = () => {
        gate.warm();
        preloadEngineClient();
    };
    const addService = grpc.Server.prototype.addService;
    grpc.Server.prototype.addService = function (this: grpc.Server, service, implementation) {
        if (service === provrpc.ResourceProviderService) {
            Object.assign(implementation as Record<string, unknown>, {
                configure: configureHandler(gate), create: createHandler(provider, gate),
                diff: diffHandler(provider), update: updateHandler(provider, gate), read: readHandler(provider), delete: deleteHandler(provider, gate),
            });
        }
        return addService.call(this, service, implementation);
    };
    // A deployment rides over an sshd restart on a node it has not reached yet (30 s).
    retryFirstContact(30_000);
    // The engine ends the plugin when the deployment is done; pooled SSH connections (and the cluster
    // lock's channel with them) close with it, within 5 s whatever they wait for.
    const end = () => {
        setTimeout(() => process.exit(0), 5000).unref();
        void closeConnections().finally(() => process.exit(0));
    };
    process.on("SIGTERM", end);
    // An engine that died without ending it (killed) leaves the plugin to init: it ends too, so that
    // it holds no SSH connection and no cluster lock for a deployment that is gone.
    const engine = process.ppid;
    setInterval(() => { if (process.ppid !== engine) end(); }, 2000).unref();
    engineAddress = process.argv[2];
    return main(provider, process.argv.slice(2));
}

void serve();
