// The rules of `docker stack deploy` per docker CLI (compose/cli-rules.ts, compose/load.ts): which
// compose versions each reads, which keys each version has, and hostile versions and keys. Every
// case has the verdict the program must give under each CLI's rules, and that verdict is checked
// against the real CLIs too, without any engine: docker CLI 20.10 (/usr/bin/docker, the host's
// docker.io) loads the file in `docker stack deploy` before it connects (a load error, or "Cannot
// connect" once the file passed); 26.1 (tools/engines.sh's cache) and 28.2 (/usr/local/bin/docker)
// print it with `docker stack config`. A CLI that is not there skips its half with the reason,
// except in CI (CI=true), where it fails.
//
// Run: node --import tsx --test test/unit/compose-cli-rules.test.ts
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { ComposeError, engineMeets, loadCompose, majorMinor, rulesFor } from "../../compose";
import { ENGINES } from "../../tools/dockerd";

const IN_CI = process.env.CI === "true";
type Cli = "20.10" | "26.1" | "28.2";
const CLIS: Cli[] = ["20.10", "26.1", "28.2"];

/** The real CLI of each rule set, and how to ask it whether it loads a file (no engine needed). */
const REAL: Record<Cli, { bin: string; args: (f: string) => string[]; loaded: (r: { status: number | null; stderr: string }) => boolean }> = {
    "20.10": {
        bin: ENGINES["20.10"].cli,
        args: (f) => ["stack", "deploy", "-c", f, "st"],
        loaded: (r) => /Cannot connect to the Docker daemon/.test(r.stderr),
    },
    "26.1": { bin: ENGINES["26.1"].cli, args: (f) => ["stack", "config", "-c", f], loaded: (r) => r.status === 0 },
    "28.2": { bin: "/usr/local/bin/docker", args: (f) => ["stack", "config", "-c", f], loaded: (r) => r.status === 0 },
};

function realVersion(cli: Cli): string | undefined {
    if (!existsSync(REAL[cli].bin)) return undefined;
    const m = /Docker version (\d+\.\d+)/.exec(spawnSync(REAL[cli].bin, ["--version"], { encoding: "utf8" }).stdout ?? "");
    return m?.[1];
}

const body = "services:\n  web:\n    image: nginx:1.25\n";
const v = (version: string) => `version: "${version}"\n`;
const svc = (version: string, extra: string) => `${v(version)}${body}${extra}`;

/** [name, file text, [20.10, 26.1, 28.2] loads it]. */
const CASES: Array<[string, string, [boolean, boolean, boolean]]> = [
    ["no version", body, [false, true, true]],
    ["version \"\"", svc("", ""), [false, true, true]],
    ["version \"3\"", svc("3", ""), [true, true, true]],
    ["version 3.0", svc("3.0", ""), [true, true, true]],
    ["version 3.9", svc("3.9", ""), [true, true, true]],
    ["version 3.10", svc("3.10", ""), [false, true, true]],
    ["version 3.12", svc("3.12", ""), [false, true, true]],
    ["version 3.13", svc("3.13", ""), [false, false, true]],
    ["version 3.14", svc("3.14", ""), [false, false, false]],
    // Hostile versions: each has no schema file in any CLI.
    ["version 3.09", svc("3.09", ""), [false, false, false]],
    ["version 3.9.0", svc("3.9.0", ""), [false, false, false]],
    ["version \" 3.9\"", svc(" 3.9", ""), [false, false, false]],
    ["version 3.x", svc("3.x", ""), [false, false, false]],
    ["version 03.9", svc("03.9", ""), [false, false, false]],
    ["version 2.4", svc("2.4", ""), [false, false, false]],
    ["version 4.0", svc("4.0", ""), [false, false, false]],
    ["version 3.8 as a number", `version: 3.8\n${body}`, [false, false, false]],
    ["version null", `version:\n${body}`, [false, false, false]],
    ["version a list", `version: ["3.9"]\n${body}`, [false, false, false]],
    // A newer key under an older version.
    ["init at 3.6", svc("3.6", "    init: true\n"), [false, false, false]],
    ["init at 3.7", svc("3.7", "    init: true\n"), [true, true, true]],
    ["configs at 3.2", `${v("3.2")}${body}configs:\n  c:\n    external: true\n`, [false, false, false]],
    ["x-extension at 3.3", `${v("3.3")}${body}x-foo: 1\n`, [false, false, false]],
    ["template_driver at 3.7", `${v("3.7")}${body}configs:\n  c:\n    external: true\n    template_driver: golang\n`, [false, false, false]],
    ["template_driver at 3.8", `${v("3.8")}${body}configs:\n  c:\n    external: true\n    template_driver: golang\n`, [true, true, true]],
    ["limits.pids at 3.8", svc("3.8", "    deploy: {resources: {limits: {pids: 5}}}\n"), [false, false, false]],
    ["limits.pids at 3.9", svc("3.9", "    deploy: {resources: {limits: {pids: 5}}}\n"), [true, true, true]],
    ["start_interval at 3.11", svc("3.11", "    healthcheck: {start_interval: 1s}\n"), [false, false, false]],
    ["start_interval at 3.12", svc("3.12", "    healthcheck: {start_interval: 1s}\n"), [false, true, true]],
    ["start_interval without version", `${body}    healthcheck: {start_interval: 1s}\n`, [false, true, true]],
    ["oom_score_adj at 3.12", svc("3.12", "    oom_score_adj: 10\n"), [false, false, false]],
    ["oom_score_adj at 3.13", svc("3.13", "    oom_score_adj: 10\n"), [false, false, true]],
    ["oom_score_adj without version", `${body}    oom_score_adj: 10\n`, [false, false, true]],
    ["a service network's driver_opts at 3.12", svc("3.12", "    networks:\n      back: {driver_opts: {a: b}}\nnetworks:\n  back: {}\n"), [false, false, false]],
    ["a service network's driver_opts at 3.13", svc("3.13", "    networks:\n      back: {driver_opts: {a: b}}\nnetworks:\n  back: {}\n"), [false, false, true]],
    ["a volume's x-cluster-spec at 3.6 (an extension before 3.7)", `${v("3.6")}${body}volumes:\n  d:\n    x-cluster-spec: {group: g}\n`, [false, false, false]],
    ["a volume's x-cluster-spec at 3.9", `${v("3.9")}${body}volumes:\n  d:\n    x-cluster-spec: {group: g}\n`, [true, true, true]],
    ["a volume's x-cluster-spec not a mapping at 3.9 (20.10: an extension; later: decoded)", `${v("3.9")}${body}volumes:\n  d:\n    x-cluster-spec: 1\n`, [true, false, false]],
    ["a volume's x-cluster-spec not a mapping at 3.10", `${v("3.10")}${body}volumes:\n  d:\n    x-cluster-spec: 1\n`, [false, false, false]],
    // Values every schema types alike.
    ["cpus as a number", svc("3.9", "    deploy: {resources: {limits: {cpus: 0.5}}}\n"), [false, false, false]],
    // YAML 1.1 booleans (gopkg.in/yaml.v2) in 20.10 and 26.1, YAML 1.2 in 28.2.
    ["tty: yes", svc("3.9", "    tty: yes\n"), [true, true, false]],
    ["an environment value on", svc("3.9", "    environment: {A: on}\n"), [false, false, true]],
    ["extends", svc("3.9", "    extends: {service: x}\n"), [false, false, false]],
    ["an unknown top-level key", `${v("3.9")}${body}servics: {}\n`, [false, false, false]],
];

let dir = "";
const files: string[] = [];
before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "dccn-cli-rules-"));
    CASES.forEach(([, text], i) => {
        const f = path.join(dir, `c${i}.yml`);
        writeFileSync(f, text);
        files.push(f);
    });
});
after(() => rmSync(dir, { recursive: true, force: true }));

function programLoads(file: string, cli: Cli): boolean {
    try {
        loadCompose(file, { stackName: "st", env: {}, cli });
        return true;
    } catch (e) {
        if (!(e instanceof ComposeError)) throw e;
        // Every refusal names the file, the key and a fix.
        assert.equal(e.file, file);
        assert.ok(e.fix.length > 0, e.message);
        return false;
    }
}

describe("the program's verdict per docker CLI's rules", () => {
    for (const [i, cli] of CLIS.entries()) {
        it(`docker CLI ${cli}: ${CASES.length} files loaded or refused as the table says`, () => {
            const wrong = CASES.filter(([, , want], k) => programLoads(files[k], cli) !== want[i]).map(([name, , want]) => `${name} (expected ${want[i] ? "loaded" : "refused"})`);
            assert.deepEqual(wrong, []);
        });
    }

    it("names what the older rules refuse: version, the key and the fix", () => {
        const err = (k: number, cli: Cli): ComposeError => {
            try {
                loadCompose(files[k], { stackName: "st", env: {}, cli });
            } catch (e) {
                return e as ComposeError;
            }
            assert.fail(`${CASES[k][0]} loads under ${cli}`);
        };
        const noVersion = err(0, "20.10");
        assert.equal(noVersion.key, "version");
        assert.match(noVersion.fix, /add version: "3\.9"/);
        const bogus = err(CASES.findIndex(([n]) => n === "version 3.09"), "26.1");
        assert.equal(bogus.key, "version");
        assert.match(bogus.reason, /unsupported compose file format version "3\.09" \(docker stack deploy \(docker CLI 26\.1\) has no schema for it\)/);
        assert.match(bogus.fix, /"3\.0" to "3\.12", or omit `version`/);
        const later = err(CASES.findIndex(([n]) => n === "version 3.13"), "26.1");
        assert.match(later.reason, /3\.13 is not supported by docker stack deploy \(docker CLI 26\.1\), which reads 3\.0 to 3\.12/);
        const newer = err(CASES.findIndex(([n]) => n === "start_interval at 3.11"), "26.1");
        assert.equal(newer.key, "services.web.healthcheck.start_interval");
        assert.match(newer.fix, /raise `version:` to "3\.12"/);
        const never = err(CASES.findIndex(([n]) => n === "oom_score_adj without version"), "26.1");
        assert.equal(never.key, "services.web.oom_score_adj");
        assert.match(never.reason, /came with compose file format 3\.13, and docker stack deploy \(docker CLI 26\.1\) reads 3\.0 to 3\.12 only/);
    });

    it("reads a version-less file as the CLI's default version", () => {
        assert.equal(loadCompose(files[0], { stackName: "st", env: {}, cli: "26.1" }).version, "3.12");
        assert.equal(loadCompose(files[0], { stackName: "st", env: {}, cli: "28.2" }).version, "3.13");
        assert.equal(loadCompose(files[2], { stackName: "st", env: {}, cli: "20.10" }).version, "3.0");
        assert.equal(loadCompose(files[2], { stackName: "st", env: {}, cli: "26.1" }).version, "3.12");
    });
});

describe("the real docker CLIs give the same verdicts (no engine)", () => {
    for (const [i, cli] of CLIS.entries()) {
        it(`docker CLI ${cli} (${REAL[cli].bin})`, async (t) => {
            const version = realVersion(cli);
            if (version !== cli) {
                const why = `docker CLI ${cli} is not at ${REAL[cli].bin} (found ${version ?? "nothing"}; tools/prereqs.sh)`;
                if (IN_CI) assert.fail(why);
                return t.skip(why);
            }
            const run = (k: number) => new Promise<{ status: number | null; stderr: string; stdout: string }>((resolve) => {
                execFile(REAL[cli].bin, REAL[cli].args(files[k]), {
                    encoding: "utf8", cwd: dir, timeout: 30_000,
                    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, DOCKER_HOST: `unix://${dir}/no-engine.sock`, DOCKER_CONFIG: dir },
                }, (err, stdout, stderr) => resolve({ status: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }));
            });
            // A few at a time: each run is a fresh CLI process (0.1-0.2 s).
            const results: Array<{ status: number | null; stderr: string; stdout: string }> = [];
            for (let k = 0; k < CASES.length; k += 6) {
                results.push(...await Promise.all(CASES.slice(k, k + 6).map((_, j) => run(k + j))));
            }
            const wrong: string[] = [];
            CASES.forEach(([name, , want], k) => {
                const real = REAL[cli].loaded(results[k]);
                if (real !== want[i]) wrong.push(`${name}: docker CLI ${cli} ${real ? "loads" : "refuses"} it (${(results[k].stderr || results[k].stdout).trim().split("\n")[0]})`);
            });
            assert.deepEqual(wrong, [], "the table (and so the program) disagrees with the real CLI");
        });
    }
});

describe("versions to rules (compose/cli-rules.ts)", () => {
    it("reads versions as engines and packages write them; refuses what is none", () => {
        assert.deepEqual(majorMinor("20.10.24+dfsg1"), [20, 10]);
        assert.deepEqual(majorMinor("5:26.1.5-1~debian.12~bookworm"), [26, 1]);
        assert.deepEqual(majorMinor("26.1"), [26, 1]);
        for (const bad of ["", "26", "abc", "v26.1.5", "-20.10", "1e2.3", "26.1x", " 26 .1"]) assert.equal(majorMinor(bad), undefined, bad);
    });

    it("gives the newest known CLI not newer than the version; versions between are held to the older rules", () => {
        const cli = (x: string) => rulesFor(x)?.cli;
        assert.equal(cli("20.10.24"), "20.10");
        assert.equal(cli("24.0.7"), "20.10");
        assert.equal(cli("25.0.3"), "20.10");
        assert.equal(cli("26.0.2"), "20.10");
        assert.equal(cli("26.1.5+dfsg1"), "26.1");
        assert.equal(cli("27.5.1"), "26.1");
        assert.equal(cli("28.2.2"), "28.2");
        assert.equal(cli("29.0.0"), "28.2");
        assert.equal(cli("19.03.15"), undefined);
        assert.equal(cli("not a version"), undefined);
    });

    it("an engine meets a CLI's rules when it is held to them or newer ones", () => {
        assert.equal(engineMeets("26.1.5+dfsg1", "26.1"), true);
        assert.equal(engineMeets("28.2.2", "26.1"), true);
        assert.equal(engineMeets("20.10.24+dfsg1", "26.1"), false);
        assert.equal(engineMeets("25.0.3", "26.1"), false);
        assert.equal(engineMeets("20.10.24+dfsg1", "20.10"), true);
        assert.equal(engineMeets("", "20.10"), false);
        assert.equal(engineMeets("19.03.15", "20.10"), false);
    });
});
