/**
 * Images the program builds, without an engine: the build context (lib/build-context.ts) is the
 * same bytes wherever and whenever it is packed and changes with any file the build could use;
 * `build:` and `overrides.build` are checked before anything changes (lib/stack-builds.ts,
 * compose parseBuild); the provider's diff builds again only for a change of what it builds.
 */
import { describe, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tar from "tar-stream";
import { packContext } from "../../lib/build-context";
import { stackBuilds } from "../../lib/stack-builds";
import { imageProvider, splitTag, type ImageInputs } from "../../lib/image-providers";
import { convertStack, loadCompose } from "../../compose";
import { validateStacks } from "../../lib/stacks-config";
import { registryServiceSpec, LABEL_PLACED_ON } from "../../components/registry";

function tempDir(files: Record<string, string>): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-build-"));
    for (const [f, content] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
        fs.writeFileSync(path.join(dir, f), content);
    }
    return dir;
}

async function entries(buf: Buffer): Promise<{ name: string; mode: number; mtime: number; uid: number; content: string }[]> {
    const out: { name: string; mode: number; mtime: number; uid: number; content: string }[] = [];
    const ex = tar.extract();
    await new Promise<void>((resolve, reject) => {
        ex.on("entry", (h, stream, next) => {
            const chunks: Buffer[] = [];
            stream.on("data", (c: Buffer) => chunks.push(c));
            stream.on("end", () => { out.push({ name: h.name, mode: h.mode ?? 0, mtime: h.mtime?.getTime() ?? -1, uid: h.uid ?? -1, content: Buffer.concat(chunks).toString() }); next(); });
            stream.resume();
        });
        ex.on("finish", resolve);
        ex.on("error", reject);
        ex.end(buf);
    });
    return out;
}

describe("the build context", () => {
    test("the same files give the same bytes and digest, whatever their times and owners; a changed file another digest", async () => {
        const files = { "Dockerfile": "FROM x\nCOPY . /app\n", "index.php": "<?php echo 1;\n", "lib/a.txt": "a\n" };
        const a = tempDir(files);
        const b = tempDir(files);
        fs.utimesSync(path.join(b, "index.php"), new Date(2001, 1, 1), new Date(2001, 1, 1));
        const ca = await packContext(a);
        const cb = await packContext(b);
        assert.equal(ca.digest, cb.digest);
        assert.ok(ca.tar.equals(cb.tar));
        assert.match(ca.digest, /^sha256:[0-9a-f]{64}$/);
        assert.equal(ca.files, 3);
        fs.writeFileSync(path.join(b, "index.php"), "<?php echo 2;\n");
        assert.notEqual((await packContext(b)).digest, ca.digest);
        fs.chmodSync(path.join(a, "lib/a.txt"), 0o755);
        assert.notEqual((await packContext(a)).digest, ca.digest, "a file made executable is another context");
        const list = await entries(ca.tar);
        assert.deepEqual(list.map((e) => e.name), ["Dockerfile", "index.php", "lib", "lib/a.txt"], "sorted, folders before their files");
        assert.ok(list.every((e) => e.mtime === 0 && e.uid === 0), "times zeroed, owner root");
    });

    test(".dockerignore is honoured (with ! exceptions), but never drops the Dockerfile or itself", async () => {
        const dir = tempDir({
            "Dockerfile": "FROM x\n", ".dockerignore": "*.log\nsecret/\nDockerfile\n!keep.log\n",
            "a.log": "x", "keep.log": "k", "secret/key": "k", "app.txt": "t",
        });
        const names = (await entries((await packContext(dir)).tar)).map((e) => e.name);
        assert.deepEqual(names, [".dockerignore", "Dockerfile", "app.txt", "keep.log"]);
        const before = (await packContext(dir)).digest;
        fs.writeFileSync(path.join(dir, "a.log"), "changed");
        assert.equal((await packContext(dir)).digest, before, "an ignored file's change builds nothing");
    });

    test("a missing context, a missing Dockerfile, a special file and an oversized context are refused, naming the path", async () => {
        await assert.rejects(packContext("/nonexistent/ctx"), /the build context \/nonexistent\/ctx does not exist/);
        const dir = tempDir({ "index.php": "x" });
        await assert.rejects(packContext(dir), /has no Dockerfile/);
        fs.writeFileSync(path.join(dir, "Dockerfile"), "FROM x\n");
        await assert.rejects(packContext(dir, "Dockerfile", 1), /holds 0 MiB \(at most 0 MiB\); list what the image does not need in the context's \.dockerignore/);
        const fifo = path.join(dir, "pipe");
        assert.equal(require("child_process").spawnSync("mkfifo", [fifo]).status, 0, "mkfifo made the FIFO");
        await assert.rejects(packContext(dir), /pipe is not a regular file, folder or link/);
    });

    test("a symbolic link goes in as a link, never as what it points to", async () => {
        const dir = tempDir({ "Dockerfile": "FROM x\n" });
        fs.symlinkSync("/etc/passwd", path.join(dir, "passwd"));
        const list = await entries((await packContext(dir)).tar);
        const link = list.find((e) => e.name === "passwd")!;
        assert.equal(link.content, "", "no content of /etc/passwd");
    });
});

describe("which images a stack builds", () => {
    const project = tempDir({
        "stacks/app/docker-compose.yml": [
            'version: "3.4"', "services:", "  web:", "    image: old.registry:5000/web:1", "    build:", "      context: ./app",
            "      args:", "        BASE: ${BASE:-php}", "      target: prod", "  db:", "    image: mysql:5.7", "",
        ].join("\n"),
        "stacks/app/app/Dockerfile": "ARG BASE\nFROM ${BASE} AS prod\n",
        "stacks/lab/db/Dockerfile": "FROM mariadb\n",
        ".state/secret/Dockerfile": "FROM x\n",
    });
    const file = path.join(project, "stacks/app/docker-compose.yml");
    /** `registry` "": the stack has no private registry. */
    const builds = (entry: Record<string, unknown>, registry = "registry.lab:5000") => {
        const [e] = validateStacks([{ name: "app", file: "stacks/app/docker-compose.yml", ...entry }], "Pulumi.dev.yaml");
        const loaded = loadCompose(file, { stackName: "app", env: e.env });
        return stackBuilds(loaded, convertStack(loaded, e.overrides), e, 0, "Pulumi.dev.yaml", registry || undefined, project);
    };

    test("the file's build: and an override's, each pushed as the service's image after the overrides", () => {
        const { builds: b } = builds({
            env: { BASE: "dccn-lab/php" },
            overrides: { registryMap: { "old.registry:5000": "registry.lab:5000" }, images: { db: "registry.lab:5000/lab/db:1" }, build: { db: { context: "stacks/lab/db" } } },
        });
        assert.deepEqual(b.map((x) => [x.service, x.image, path.relative(project, x.build.context), x.build.dockerfile]), [
            ["db", "registry.lab:5000/lab/db:1", "stacks/lab/db", "Dockerfile"],
            ["web", "registry.lab:5000/web:1", "stacks/app/app", "Dockerfile"],
        ]);
        const web = b.find((x) => x.service === "web")!;
        assert.deepEqual(web.build.args, { BASE: "dccn-lab/php" });
        assert.equal(web.build.target, "prod");
        assert.equal(web.origin, "stacks/app/docker-compose.yml: services.web.build");
        assert.equal(b.find((x) => x.service === "db")!.origin, "Pulumi.dev.yaml: dccn-swarm:stacks[0].overrides.build.db");
    });

    test("an image outside the private registry, no registry, or a service the file lacks: refused with the key and the fix", () => {
        assert.throws(() => builds({}), /services\.web\.build: the built image is pushed as the service's image, old\.registry:5000\/web:1, which is not a tag in the private registry registry\.lab:5000.*overrides\.images\.web or overrides\.registryMap/);
        assert.throws(() => builds({ overrides: { registryMap: { "old.registry:5000": "registry.lab:5000" } } }, ""), /but the stack has none.*configure dccn-swarm:registry/);
        assert.throws(() => builds({ overrides: { registryMap: { "old.registry:5000": "registry.lab:5000" }, build: { nope: "stacks/lab/db" } } }),
            /Pulumi\.dev\.yaml: dccn-swarm:stacks\[0\]\.overrides\.build\.nope: .*has no service nope.*name one of: db, web/);
    });

    test("hostile contexts and Dockerfiles are refused before anything is read or sent", () => {
        const map = { "old.registry:5000": "registry.lab:5000" };
        const override = (db: unknown) => builds({ overrides: { registryMap: map, images: { db: "registry.lab:5000/db:1" }, build: { db } } });
        assert.throws(() => override({ context: "../../etc" }), /overrides\.build\.db\.context: .*outside/);
        assert.throws(() => override({ context: ".state/secret" }), /overrides\.build\.db\.context: .*\.state folder/);
        assert.throws(() => override({ context: "/proc" }), /overrides\.build\.db\.context/);
        assert.throws(() => override({ context: "stacks/lab/db", dockerfile: "../../app/app/Dockerfile" }), /overrides\.build\.db\.dockerfile: .*outside/);
        assert.throws(() => override({ context: "stacks/lab/db", dockerfile: "Nope" }), /overrides\.build\.db\.dockerfile: cannot read Dockerfile/);
        assert.throws(() => override({ context: "https://example.org/repo.git" }), /is a URL.*the program builds from a folder in the repository only/);
        assert.throws(() => override({ context: "stacks/lab/db", target: "a b" }), /overrides\.build\.db\.target: "a b" is not a build stage name/);
        assert.throws(() => override({ context: "stacks/lab/db", args: { "bad-name": "1" } }), /overrides\.build\.db\.args\.bad-name: is not a build argument name/);
        assert.throws(() => override({ context: "stacks/lab/db", squash: true }), /overrides\.build\.db\.squash: unknown build key/);
        assert.throws(() => override({ context: "stacks/lab/nothing" }), /overrides\.build\.db\.context: cannot read build context/);
        assert.throws(() => validateStacks([{ name: "app", file: "x.yml", overrides: { build: { db: 3 } } }], "Pulumi.dev.yaml"),
            /dccn-swarm:stacks\[0\]\.overrides\.build\.db: must be a context folder relative to the project/);
    });
});

describe("the image provider's diff and the registry's placement label", () => {
    const base: ImageInputs = {
        managers: [{ name: "vm1", address: "10.0.0.1", knownHosts: "k" }], ssh: { user: "root", port: 22, privateKey: "x", connectTimeout: 10 },
        stack: "webapp", service: "web", origin: "f: services.web.build", image: "registry.lab:5000/web:1", context: "stacks/webapp/app",
        dockerfile: "Dockerfile", args: { BASE: "b" }, labels: {}, contextDigest: "sha256:aa", pushAuth: { serveraddress: "registry.lab:5000", username: "admin", password: "p" },
    };
    const olds = { ...base, digest: "sha256:d1", ref: "registry.lab:5000/web:1@sha256:d1" };
    const provider = imageProvider(async () => { throw new Error("no connection in a diff"); });

    test("unchanged: no change; a new context, argument, target or tag: a build, never a replacement", async () => {
        assert.deepEqual(await provider.diff!("id", olds, base), { changes: false, replaces: [], diffs: [] });
        for (const [k, v] of [["contextDigest", "sha256:bb"], ["args", { BASE: "c" }], ["target", "t"], ["image", "registry.lab:5000/web:2"], ["dockerfile", "D2"]] as const) {
            const d = await provider.diff!("id", olds, { ...base, [k]: v });
            assert.deepEqual([d.changes, d.replaces, d.diffs], [true, [], [k]], k);
        }
        const moved = await provider.diff!("id", olds, { ...base, context: "elsewhere/app", pushAuth: { ...base.pushAuth, password: "q" } });
        assert.deepEqual([moved.changes, moved.diffs], [false, []], "a moved folder or a new push password only: nothing to build, nothing shows");
        const stateOnly = provider.stateOnly!(olds, { ...base, context: "elsewhere/app" });
        assert.equal(stateOnly.digest, "sha256:d1");
        const drift = await provider.diff!("id", { ...olds, registryDigest: "sha256:other" }, base);
        assert.deepEqual(drift.diffs, ["digest"], "another image pushed at the tag by hand: pushed again");
    });

    test("splitTag", () => {
        assert.deepEqual(splitTag("registry.lab:5000/a/b:1.0"), { repo: "registry.lab:5000/a/b", tag: "1.0" });
        assert.deepEqual(splitTag("registry.lab:5000/redis"), { repo: "registry.lab:5000/redis", tag: "latest" });
    });

    test("the registry's task names the nodes with its placement label: moving the label moves the registry", () => {
        const cfg = {
            host: "registry.lab", port: 5000, placement: { key: "registry", value: "true" }, constraint: "node.labels.registry==true",
            dataPath: "/mnt/docker/registry", image: "r:2", users: ["a"], pullUser: "a", pushUser: "a",
            certificate: { validityDays: 1, renewBeforeDays: 1, caValidityDays: 1 }, endpoint: "registry.lab:5000",
        };
        const names = { cert: "c", key: "k", htpasswd: "h" };
        const label = (spec: any) => spec.TaskTemplate.ContainerSpec.Labels[LABEL_PLACED_ON]; // eslint-disable-line @typescript-eslint/no-explicit-any
        assert.equal(label(registryServiceSpec(cfg, "registry", names, ["vm2", "vm1"])), "vm1,vm2");
        assert.notEqual(JSON.stringify(registryServiceSpec(cfg, "registry", names, ["vm1"])), JSON.stringify(registryServiceSpec(cfg, "registry", names, ["vm2"])));
    });
});
