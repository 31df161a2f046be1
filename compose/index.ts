/**
 * Compose v3 files to the Engine API objects `docker stack deploy` sends for
 * them. Pure: creates no resources; the only I/O is loadCompose reading the
 * compose file, its env_files and its secret/config files.
 *
 *   const loaded = loadCompose("stacks/webapp.yml", { stackName: "webapp", env });
 *   const spec = convertStack(loaded, { registryPrefix: "registry.lab:5000" });
 */
export { ComposeError, type ComposeWarning } from "./errors";
export { loadCompose, parseBuild, type LoadOptions, FORBIDDEN, UNSUPPORTED, DEPRECATED } from "./load";
export { convertStack, effectiveImage, registryHost, sorted, LABEL_IMAGE, LABEL_NAMESPACE } from "./convert";
export { substitute } from "./interpolate";
export { LATEST_CLI, STACK_DEPLOY_CLI } from "./schema";
export { CLI_2010, CLI_261, engineMeets, KNOWN_CLIS, majorMinor, rulesFor, type StackDeployRules } from "./cli-rules";
export { loadStack, type TargetOptions } from "./target";
export { parseDuration } from "./units";
export type { BuildModel, LoadedStack, ServiceModel } from "./model";
export type * from "./types";
