/**
 * Entry point of the `dccn-swarm` provider plugin (provider/pulumi-resource-dccn-swarm runs the
 * compiled form of this file): serves DccnSwarmProvider with @pulumi/pulumi's provider server.
 *
 * That server drops a diff's field-level detail (it answers changes, replaces and
 * deleteBeforeReplace only); its Diff handler is replaced here with one that also sends the
 * detailed diff, so `pulumi preview` names the fields that change.
 */
import * as fs from "fs";
import * as path from "path";
import * as grpc from "@grpc/grpc-js";
import * as pulumi from "@pulumi/pulumi";
import * as provproto from "@pulumi/pulumi/proto/provider_pb";
import * as provrpc from "@pulumi/pulumi/proto/provider_grpc_pb";
import { REPO_ROOT } from "../lib/repo";
import { closeConnections } from "../lib/ssh";
import { DccnSwarmProvider, type DetailedDiff } from "./provider";

const KIND: Record<DetailedDiff["detailedDiff"][string]["kind"], provproto.PropertyDiff.Kind> = {
    "add": provproto.PropertyDiff.Kind.ADD,
    "add-replace": provproto.PropertyDiff.Kind.ADD_REPLACE,
    "delete": provproto.PropertyDiff.Kind.DELETE,
    "delete-replace": provproto.PropertyDiff.Kind.DELETE_REPLACE,
    "update": provproto.PropertyDiff.Kind.UPDATE,
    "update-replace": provproto.PropertyDiff.Kind.UPDATE_REPLACE,
};

/** The gRPC Diff handler, with the detailed diff. */
function diffHandler(provider: DccnSwarmProvider): grpc.handleUnaryCall<provproto.DiffRequest, provproto.DiffResponse> {
    return (call, callback) => {
        const req = call.request;
        provider.diff(req.getId(), req.getUrn(), req.getOlds()?.toJavaScript() ?? {}, req.getNews()?.toJavaScript() ?? {}).then((r) => {
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
            callback(null, resp);
        }, (e: Error) => {
            console.error(`${e}: ${e.stack}`);
            callback(e, null);
        });
    };
}

function serve(): Promise<void> {
    const version = String(JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")).version);
    const provider = new DccnSwarmProvider(version);
    const addService = grpc.Server.prototype.addService;
    grpc.Server.prototype.addService = function (this: grpc.Server, service, implementation) {
        if (service === provrpc.ResourceProviderService) (implementation as Record<string, unknown>).diff = diffHandler(provider);
        return addService.call(this, service, implementation);
    };
    // The engine ends the plugin when the deployment is done; pooled SSH connections close with it.
    process.on("SIGTERM", () => { void closeConnections().finally(() => process.exit(0)); });
    return pulumi.provider.main(provider, process.argv.slice(2));
}

void serve();
