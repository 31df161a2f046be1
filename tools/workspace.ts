/**
 * The project as the operator commands, the bench and the tests run Pulumi on it: the environment
 * of tools/env.sh, and scratch copies of the project whose stack config may be edited.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const ROOT = path.resolve(__dirname, "..");

/** The environment tools/env.sh sets up (PATH to the built CLI, file backend, passphrase file). */
export function engineEnv(): Record<string, string> {
    const out = execFileSync("bash", ["-c", "source tools/env.sh >/dev/null && env -0"], { cwd: ROOT });
    const env: Record<string, string> = {};
    for (const kv of out.toString().split("\0")) {
        const i = kv.indexOf("=");
        if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
    }
    return env;
}

/**
 * A scratch copy of the project (sharing node_modules and .state; bin/ copied) so a test can edit
 * `Pulumi.dev.yaml` without touching the committed file.
 */
export function scratchProject(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-e2e-"));
    for (const entry of fs.readdirSync(ROOT)) {
        // bin/ (the program and its provider plugin compiled ahead by npm run build) is copied like
        // the sources: a scratch copy runs its own, and the state records positions in it.
        if ([".git", "node_modules", ".state"].includes(entry)) continue;
        fs.cpSync(path.join(ROOT, entry), path.join(dir, entry), { recursive: true });
    }
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
    fs.symlinkSync(path.join(ROOT, ".state"), path.join(dir, ".state"));
    return dir;
}

