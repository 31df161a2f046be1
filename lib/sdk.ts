/**
 * The parts of the Pulumi SDK the program uses, from its modules rather than its index: the index
 * also loads the Automation API and the whole runtime (half a second at every `pulumi` run,
 * measured under the Node.js language host, which has the rest loaded already). Import this as
 * `pulumi` in the program's files.
 */
export { ComponentResource, CustomResource, Resource } from "@pulumi/pulumi/resource";
export type { ComponentResourceOptions, CustomResourceOptions } from "@pulumi/pulumi/resource";
export { all, output, secret, unsecret, Output } from "@pulumi/pulumi/output";
export type { Input } from "@pulumi/pulumi/output";
export { Config } from "@pulumi/pulumi/config";
export { RunError } from "@pulumi/pulumi/errors";
export { getStack } from "@pulumi/pulumi/metadata";
export * as log from "@pulumi/pulumi/log";
export * as runtime from "@pulumi/pulumi/runtime/config";
export { invoke } from "@pulumi/pulumi/runtime/invoke";
export { isDryRun } from "@pulumi/pulumi/runtime/settings";

export { withoutStackTraces } from "./stack-traces";
