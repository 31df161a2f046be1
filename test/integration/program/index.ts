// One compose stack through the Stack component, against the throwaway dockerd that
// test/integration/stack-engine.test.ts starts (config itest:socket): the real Pulumi engine, the
// the project's provider plugin, the local transport instead of SSH.
import * as pulumi from "@pulumi/pulumi";
import { convertStack, loadCompose, type StackOverrides } from "../../../compose";
import { Stack } from "../../../components/stack";

const config = new pulumi.Config("itest");
const stackName = config.require("stackName");
const spec = convertStack(loadCompose(config.require("composeFile"), { stackName, env: {} }), config.getObject<StackOverrides>("overrides") ?? {});
const stack = new Stack(stackName, {
    spec,
    managers: [],
    ssh: { user: "root", port: 22, privateKey: "", connectTimeout: 5 },
    engineSocket: config.require("socket"),
    resolveImage: "never",
    // Sent as X-Registry-Auth only to services whose image names this registry: none here.
    registry: {
        endpoint: "registry.invalid:5000",
        auth: pulumi.secret({ serveraddress: "registry.invalid:5000", username: "itest", password: "itest-registry-password" }),
    },
    convergeTimeout: 120,
});

export const services = stack.serviceNames;
export const images = pulumi.all(Object.fromEntries(Object.entries(stack.services).map(([k, s]) => [k, s.image])));
