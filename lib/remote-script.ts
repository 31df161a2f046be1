/**
 * Packs a provisioning script from scripts/ for a `remote.Command`: the command line is only
 * `bash -s`; the script, its parameters and any data travel on standard input. A secret parameter
 * therefore never shows on a command line on either side, and makes the stdin a secret in state.
 */
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT } from "./repo";

export const SCRIPTS_DIR = path.join(REPO_ROOT, "scripts");

/** A script's line that sources a shared file beside it (shellcheck follows it with `-x`). */
const INCLUDE_RE = /^\. "\$\(dirname "\$\{BASH_SOURCE\[0\]\}"\)\/([\w.-]+\.sh)"$/gm;

/**
 * Read a script from scripts/ (shellcheck-checked files, not inline strings). A line that sources a
 * file beside it (`. "$(dirname "${BASH_SOURCE[0]}")/overlay-lib.sh"`) is replaced by that file's
 * text: the script travels alone on standard input, so what it sources goes with it.
 */
export function readScript(name: string): string {
    return fs.readFileSync(path.join(SCRIPTS_DIR, name), "utf8").replace(INCLUDE_RE, (_, lib: string) => readScript(lib).replace(/\n$/, ""));
}

const NAME_RE = /^[A-Z_][A-Z0-9_]*$/;

function quote(v: string): string {
    return "'" + v.replace(/'/g, "'\\''") + "'";
}

/** Pick a heredoc delimiter that does not occur in `text`. */
function delimiter(base: string, text: string): string {
    let d = base;
    for (let i = 0; text.split("\n").includes(d); i++) d = `${base}_${i}`;
    return d;
}

/**
 * The standard input for `bash -s` that writes `script` to a private temporary file on the node and
 * runs it with `env` set and `data` (if any) on its standard input. Deterministic for equal inputs, so
 * an unchanged script and parameters never show as a diff.
 */
export function scriptStdin(script: string, env: Record<string, string | undefined>, data?: string): string {
    return packScript(script, env, data === undefined ? "none" : { data });
}

/**
 * As scriptStdin, but the script reads the rest of the channel's standard input (what the caller
 * writes after it, until the caller closes the channel): for a script that stays on the node while
 * its caller lives (the cluster lock: lib/cluster-lock.ts), or one that reads a stream the caller
 * sends after it (a backup's archive: lib/ssh.ts execStream). bash reads its own input from a pipe
 * one byte at a time, so nothing after the script's line is consumed before the script runs; that
 * line also ends the outer shell (`exit`), so input the script left unread is never run as commands.
 */
export function scriptStdinKeepInput(script: string, env: Record<string, string | undefined>): string {
    return packScript(script, env, "inherit");
}

function packScript(script: string, env: Record<string, string | undefined>, input: "none" | "inherit" | { data: string }): string {
    const assigns = Object.keys(env).sort().filter((k) => env[k] !== undefined).map((k) => {
        if (!NAME_RE.test(k)) throw new Error(`invalid script parameter name ${k}`);
        return `${k}=${quote(env[k] as string)}`;
    });
    const sd = delimiter("DCCN_SCRIPT_EOF", script);
    const lines = [
        "set -u",
        "dccn_f=$(mktemp /tmp/dccn-script.XXXXXX)",
        "trap 'rm -f \"$dccn_f\"' EXIT",
        `cat > "$dccn_f" <<'${sd}'`,
        script.replace(/\n$/, ""),
        sd,
    ];
    const run = `${assigns.length ? assigns.join(" ") + " " : ""}bash "$dccn_f"`;
    if (input === "none") {
        lines.push(`${run} </dev/null`);
    } else if (input === "inherit") {
        // On the same line: this shell must not read the caller's later input as commands.
        lines.push(`${run} || dccn_rc=$?; exit "\${dccn_rc:-0}"`);
    } else {
        const dd = delimiter("DCCN_DATA_EOF", input.data);
        lines.push(`${run} <<'${dd}'`, input.data.replace(/\n$/, ""), dd);
    }
    return lines.join("\n") + "\n";
}

/** Parse the `DCCN_RESULT changed=0|1 key=value ...` line every provisioning script prints last. */
export function parseResult(stdout: string): { changed: boolean; values: Record<string, string> } | undefined {
    const line = stdout.split("\n").reverse().find((l) => l.startsWith("DCCN_RESULT "));
    if (!line) return undefined;
    const values: Record<string, string> = {};
    for (const kv of line.slice("DCCN_RESULT ".length).trim().split(/\s+/)) {
        const i = kv.indexOf("=");
        if (i > 0) values[kv.slice(0, i)] = kv.slice(i + 1);
    }
    return { changed: values.changed === "1", values };
}

/** sha256 (hex) of a text: how steps and their data are compared without keeping them whole. */
export function sha256(text: string): string {
    return createHash("sha256").update(text).digest("hex");
}

/**
 * A provisioning step's call as resources keep it: the script's name in scripts/ with the hash of
 * the text the program saw, its parameters, and its standard input. The provider builds the
 * standard input for `bash -s` from these (scriptStdin) and refuses a script that changed since.
 */
export interface StepCall {
    script: string;
    scriptHash: string;
    env: Record<string, string>;
    data?: string;
}

/** The call of `script` with `env` (undefined values left out) and `data`. */
export function stepCall(script: string, env: Record<string, string | undefined>, data?: string): StepCall {
    const defined = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined).sort(([a], [b]) => a.localeCompare(b)));
    return { script, scriptHash: sha256(readScript(script)), env: defined, ...(data !== undefined ? { data } : {}) };
}

/** The standard input for `bash -s` of a step's call; with `undoEnv`, of the call that undoes it (no data). */
export function stepStdin(call: StepCall, undoEnv?: Record<string, string>): string {
    const text = readScript(call.script);
    if (sha256(text) !== call.scriptHash) {
        throw new Error(`scripts/${call.script} changed since this step was planned; run \`pulumi up\` again so that the preview shows the new script`);
    }
    return undoEnv ? scriptStdin(text, undoEnv) : scriptStdin(text, call.env, call.data);
}
