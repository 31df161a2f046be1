/**
 * The project as the operator commands, the bench and the tests run Pulumi on it: the environment
 * of tools/env.sh, and scratch copies of the project whose stack config may be edited.
 *
 * With LAB_NAME set (a lab instance, `npm run lab:up -- --name NAME`), all of it is that lab's: the
 * dev stack lives in a backend of its own (.state/pulumi-NAME), and a scratch copy's Pulumi.dev.yaml
 * names that lab's addresses, SSH key and known_hosts, so a run on it and one on the default lab can
 * go on at the same time without meeting.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { currentLab, labInstance, LabInstance } from "../lab/config";

const ROOT = path.resolve(__dirname, "..");

/** The lab the tests and tools work on: LAB_NAME's, else the default one. */
export function workLab(): LabInstance {
    return currentLab();
}

/**
 * The environment tools/env.sh sets up (PATH to the built CLI, file backend, passphrase file); on a
 * named lab, with that lab's backend. The passphrase is the machine's, shared by every backend.
 */
export function engineEnv(): Record<string, string> {
    const out = execFileSync("bash", ["-c", "source tools/env.sh >/dev/null && env -0"], { cwd: ROOT });
    const env: Record<string, string> = {};
    for (const kv of out.toString().split("\0")) {
        const i = kv.indexOf("=");
        if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
    }
    // tools/env.sh chose the backend of LAB_NAME's lab (.state/pulumi-NAME).
    return env;
}

/**
 * A stack file written for the default lab (Pulumi.dev.yaml), rewritten for `lab`: its addresses
 * (nodes, the registry's) in that lab's subnet, its SSH key and known_hosts that lab's. The default
 * lab gets the text unchanged.
 */
export function forLab(text: string, lab: LabInstance = workLab()): string {
    if (lab.isDefault) return text;
    const def = labInstance();
    const prefix = def.prefix.replace(/\./g, "\\.");
    const rel = (f: string) => path.relative(ROOT, f);
    return text
        .replace(new RegExp(`(?<![\\d.])${prefix}(\\d{1,3})(?![\\d.])`, "g"), `${lab.prefix}$1`)
        .split(rel(def.keyFile)).join(lab.keyFile)
        .split(rel(def.knownHosts)).join(lab.knownHosts);
}

/** The committed dev stack file (the working tree's Pulumi.dev.yaml) as the work lab needs it. */
export function devStackText(): string {
    return forLab(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8"));
}

/**
 * The scratch copy's `.state`: the project's own on the default lab. On a named lab a folder of its
 * own, so what a command keeps there (`ops backup`'s .state/backups) is that run's, with the
 * machine-wide files (passphrase, toolchain.env) linked and `.state/lab` pointing at the lab's state.
 */
function scratchState(dir: string, lab: LabInstance): void {
    const state = path.join(ROOT, ".state");
    if (lab.isDefault) {
        fs.symlinkSync(state, path.join(dir, ".state"));
        return;
    }
    fs.mkdirSync(path.join(dir, ".state"), { mode: 0o700 });
    for (const f of ["passphrase", "toolchain.env"]) {
        if (fs.existsSync(path.join(state, f))) fs.symlinkSync(path.join(state, f), path.join(dir, ".state", f));
    }
    fs.symlinkSync(lab.stateDir, path.join(dir, ".state", "lab"));
    // The lab's Pulumi backend (tools/env.sh picks .state/pulumi-NAME by LAB_NAME): the same stack
    // whether a test's Automation API or a tool run in the copy (npm run ops, status) asks for it.
    const backend = path.join(state, `pulumi-${lab.name}`);
    fs.mkdirSync(backend, { recursive: true });
    fs.symlinkSync(backend, path.join(dir, ".state", `pulumi-${lab.name}`));
}

/**
 * A scratch copy of the project (sharing node_modules and .state; bin/ copied) so a test can edit
 * `Pulumi.dev.yaml` without touching the committed file. On a named lab its Pulumi.dev.yaml is that
 * lab's (forLab) and its .state its own (scratchState).
 */
export function scratchProject(): string {
    const lab = workLab();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), lab.isDefault ? "dccn-e2e-" : `dccn-e2e-${lab.name}-`));
    for (const entry of fs.readdirSync(ROOT)) {
        // bin/ (the program and its provider plugin compiled ahead by npm run build) is copied like
        // the sources: a scratch copy runs its own, and the state records positions in it.
        if ([".git", "node_modules", ".state"].includes(entry)) continue;
        fs.cpSync(path.join(ROOT, entry), path.join(dir, entry), { recursive: true });
    }
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
    scratchState(dir, lab);
    fs.writeFileSync(path.join(dir, "Pulumi.dev.yaml"), devStackText());
    return dir;
}
