/**
 * Which images of a stack the program builds: the services whose compose file has `build:`, or
 * whose stack config entry has `overrides.build`, each with the image it is pushed as (the service's
 * image after the overrides). Checked before anything changes: the context and Dockerfile exist under
 * their folder, and the image names the private registry the program pushes to.
 */
import * as path from "path";
import { ComposeError, parseBuild, registryHost, type BuildModel, type ComposeWarning, type LoadedStack, type StackSpec } from "../compose";
import type { StackEntry } from "./stacks-config";

export interface StackBuild {
    /** Compose service key. */
    service: string;
    /** Where the build is written, for messages: `stacks/webapp/docker-compose.yml: services.web.build`. */
    origin: string;
    /** The image to push (`registry.lab:5000/demo_user_register:1.0`): the service's image after the overrides. */
    image: string;
    build: BuildModel;
}

/**
 * The builds of one stack. `index` is the entry's place in `dccn-swarm:stacks`; `registry` the
 * private registry's `host:port` (undefined: the stack has none, and nothing can be built).
 * Throws a ComposeError naming the file (the compose file, or `stackFile` for an override) and key.
 */
export function stackBuilds(loaded: LoadedStack, spec: StackSpec, entry: StackEntry, index: number, stackFile: string,
    registry: string | undefined, projectDir = process.cwd()): { builds: StackBuild[]; warnings: ComposeWarning[] } {
    const warnings: ComposeWarning[] = [];
    const builds: StackBuild[] = [];
    const env = (k: string) => entry.env[k];
    const overrideKey = (s: string) => `dccn-swarm:stacks[${index}].overrides.build.${s}`;
    for (const name of Object.keys(entry.overrides.build ?? {})) {
        if (!loaded.services.some((s) => s.name === name)) {
            throw new ComposeError(stackFile, overrideKey(name), `${entry.file} has no service ${name}`,
                `name one of: ${loaded.services.map((s) => s.name).join(", ")}`);
        }
    }
    for (const s of loaded.services) {
        const override = entry.overrides.build?.[s.name];
        if (override === undefined && s.buildRaw === undefined) continue;
        const [file, dir, key, raw] = override !== undefined
            ? [stackFile, projectDir, overrideKey(s.name), override]
            : [loaded.file, path.dirname(loaded.file), `services.${s.name}.build`, s.buildRaw];
        const build = parseBuild(file, dir, key, raw, env, warnings);
        const image = String((spec.services.find((x) => x.key === s.name)?.spec.TaskTemplate as { ContainerSpec?: { Image?: string } })?.ContainerSpec?.Image ?? "");
        const host = registryHost(image);
        if (!registry) {
            throw new ComposeError(file, key, `the program builds ${image} and pushes it to the private registry, but the stack has none`,
                "configure dccn-swarm:registry, or remove the build and use an image that is pushed already");
        }
        if (host !== registry || /@sha256:/.test(image)) {
            throw new ComposeError(file, key, `the built image is pushed as the service's image, ${image}, which is not a tag in the private registry ${registry}`,
                `name it ${registry}/<name>:<tag>: in the file, or for this environment with dccn-swarm:stacks[${index}].overrides.images.${s.name} or overrides.registryMap`);
        }
        builds.push({ service: s.name, origin: `${path.isAbsolute(file) ? path.relative(projectDir, file) : file}: ${key}`, image, build });
    }
    return { builds, warnings };
}
