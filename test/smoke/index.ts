// Smoke program for the pinned toolchain: one command:local:Command and one docker:Volume against the
// dockerd that smoke.test.ts starts (stack config docker:host). With `smoke:providers false` it
// registers no provider resource at all, which checks the CLI and language host alone.
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";

const config = new pulumi.Config("smoke");
const withProviders = config.getBoolean("providers") ?? true;

export const engine = `ok:${pulumi.getProject()}/${pulumi.getStack()}`;

let stdout: pulumi.Output<string> | undefined;
let volumeName: pulumi.Output<string> | undefined;

if (withProviders) {
    const hello = new command.local.Command("hello", {
        create: "printf %s smoke-ok",
        delete: "true",
    });
    stdout = hello.stdout;

    const volume = new docker.Volume("scratch", {
        name: `dccn-smoke-${pulumi.getStack()}`,
        labels: [{ label: "dccn-swarm.smoke", value: "true" }],
    });
    volumeName = volume.name;
}

export const commandStdout = stdout;
export const dockerVolume = volumeName;
