/** Pulumi runtime facts about stack config that its typings do not declare. */
import * as pulumi from "./sdk";

/** Whether a config key is stored encrypted; undefined when the runtime cannot tell (isConfigSecret is in its runtime, not its typings). */
export function configIsSecret(key: string): boolean | undefined {
    const f = (pulumi.runtime as unknown as { isConfigSecret?: (k: string) => boolean }).isConfigSecret;
    return typeof f === "function" ? f(key) : undefined;
}
