/**
 * Hostile compose files (issue 15): a compose file reads only regular files under its own directory,
 * symlinks resolved, never the project's .state folder, /proc, /sys or /dev; and a YAML alias bomb is
 * refused quickly, naming the file and the line.
 */
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { ComposeError, LATEST_CLI, loadCompose } from "../../compose";

const PASSPHRASE = "correct-horse-battery-staple-passphrase";
const OUTSIDE = "outside-the-compose-directory";

/**
 * A project as the program sees it: <root>/.state/passphrase, <root>/secret-outside.txt, and the
 * compose file <root>/stacks/app/c.yml with `files` next to it. Returns the compose file's path.
 */
function project(compose: string, files: Record<string, string> = {}, links: Record<string, string> = {}): { file: string; root: string } {
  const root = mkdtempSync(path.join(tmpdir(), "compose-hostile-"));
  mkdirSync(path.join(root, ".state"), { recursive: true });
  writeFileSync(path.join(root, ".state", "passphrase"), PASSPHRASE);
  writeFileSync(path.join(root, "secret-outside.txt"), OUTSIDE);
  const dir = path.join(root, "stacks", "app");
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  for (const [name, target] of Object.entries(links)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    symlinkSync(target.replace("<root>", root), path.join(dir, name));
  }
  const file = path.join(dir, "c.yml");
  writeFileSync(file, compose.replace(/<root>/g, root));
  return { file, root };
}

const load = (file: string) => loadCompose(file, { cli: LATEST_CLI, stackName: "st", env: {} });

/** Asserts the refusal names the compose file, the key and the path, says how to fix it, and leaks nothing read. */
function refused(file: string, key: string, pathShown: string, reason: RegExp): ComposeError {
  let caught: unknown;
  try {
    load(file);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ComposeError, `expected a ComposeError, got ${String(caught)}`);
  assert.equal(caught.file, file);
  assert.equal(caught.key, key);
  assert.ok(caught.message.includes(file), "names the compose file");
  assert.ok(caught.message.includes(key), "names the key");
  assert.ok(caught.message.includes(pathShown), `names the path ${pathShown}: ${caught.message}`);
  assert.match(caught.message, reason);
  assert.match(caught.fix, /under its own directory/);
  assert.ok(!caught.message.includes(PASSPHRASE) && !caught.message.includes(OUTSIDE), "nothing of the file is in the message");
  return caught;
}

const config = (f: string) => `services:\n  web:\n    image: x\n    configs: [app_conf]\nconfigs:\n  app_conf:\n    file: ${f}\n`;
const secret = (f: string) => `services:\n  web:\n    image: x\n    secrets: [db_pw]\nsecrets:\n  db_pw:\n    file: ${f}\n`;
const envFile = (f: string) => `services:\n  web:\n    image: x\n    env_file: ${f}\n`;

describe("compose files read only files under their own directory", () => {
  it("configs file: an absolute path elsewhere (/etc/passwd)", () => {
    refused(project(config("/etc/passwd")).file, "configs.app_conf.file", "/etc/passwd", /outside the compose file's directory/);
  });

  it("configs file: an absolute path to the project's passphrase", () => {
    const p = project(config("<root>/.state/passphrase"));
    refused(p.file, "configs.app_conf.file", "/.state/passphrase", /outside the compose file's directory/);
  });

  it("configs file: ../../.state/passphrase (the issue's finding)", () => {
    refused(project(config("../../.state/passphrase")).file, "configs.app_conf.file", "../../.state/passphrase", /outside/);
  });

  it("secrets file: .. out of the directory", () => {
    refused(project(secret("../../secret-outside.txt")).file, "secrets.db_pw.file", "../../secret-outside.txt", /outside/);
  });

  it("secrets file: .. that leaves and comes straight back in names a file inside: read", () => {
    assert.equal(load(project(secret("../app/pw.txt"), { "pw.txt": "x" }).file).secrets.db_pw.content?.toString(), "x");
  });

  it("secrets file: a path through a symlinked folder and .. out of the directory", () => {
    // What is read is what was checked: the lexically resolved path, opened by its real path.
    const p = project(secret("./out/../../../secret-outside.txt"), {}, { out: "<root>/stacks" });
    refused(p.file, "secrets.db_pw.file", "secret-outside.txt", /outside/);
  });

  it("secrets file: a symlink in the directory pointing out of it", () => {
    const p = project(secret("./pw.txt"), {}, { "pw.txt": "<root>/secret-outside.txt" });
    refused(p.file, "secrets.db_pw.file", "secret-outside.txt", /symlinks followed.*outside/);
  });

  it("configs file: a symlink to .state/passphrase", () => {
    const p = project(config("./app.conf"), {}, { "app.conf": "../../.state/passphrase" });
    refused(p.file, "configs.app_conf.file", ".state/passphrase", /outside/);
  });

  it("configs file: a symlinked folder pointing out of the directory", () => {
    const p = project(config("./conf/passphrase"), {}, { conf: "<root>/.state" });
    refused(p.file, "configs.app_conf.file", ".state/passphrase", /outside/);
  });

  it("configs file: a .state folder under the compose file's own directory", () => {
    const p = project(config("./.state/passphrase"), { ".state/passphrase": PASSPHRASE });
    refused(p.file, "configs.app_conf.file", ".state/passphrase", /in a \.state folder/);
  });

  it("env_file: /proc/self/environ (the issue's finding)", () => {
    refused(project(envFile("/proc/self/environ")).file, "services.web.env_file", "/proc/self/environ", /outside/);
  });

  it("env_file: a symlink to /proc/self/environ", () => {
    const p = project(envFile("./app.env"), {}, { "app.env": "/proc/self/environ" });
    refused(p.file, "services.web.env_file", "/proc/", /kernel or device file|outside/);
  });

  it("env_file: a list whose second entry escapes names that entry", () => {
    const p = project(`services:\n  web:\n    image: x\n    env_file: [ok.env, ../../.state/passphrase]\n`, { "ok.env": "A=1\n" });
    refused(p.file, "services.web.env_file[1]", "../../.state/passphrase", /outside/);
  });

  it("env_file: a symlink to /sys and one to /dev/zero", () => {
    for (const target of ["/sys", "/sys/kernel", "/dev/zero", "/dev/null"].filter((t) => existsSync(t))) {
      const p = project(envFile("./a.env"), {}, { "a.env": target });
      refused(p.file, "services.web.env_file", "a.env", /kernel or device file|outside/);
    }
  });

  it("a directory or a FIFO is not read (a FIFO would block)", () => {
    const d = project(config("./sub"), { "sub/x": "1" });
    refused(d.file, "configs.app_conf.file", "./sub", /not a regular file/);
    const f = project(config("./fifo"));
    execFileSync("mkfifo", [path.join(path.dirname(f.file), "fifo")]);
    refused(f.file, "configs.app_conf.file", "./fifo", /not a regular file/);
  });

  it("files under the directory are read: relative, ./sub/, an absolute path inside, a symlink inside", () => {
    const p = project(
      "services:\n  web:\n    image: x\n    env_file: ./env/a.env\n    configs: [a, b, c]\nconfigs:\n" +
      "  a:\n    file: ./conf/a.conf\n  b:\n    file: <root>/stacks/app/conf/a.conf\n  c:\n    file: link.conf\n",
      { "conf/a.conf": "A", "env/a.env": "X=1\n" }, { "link.conf": "./conf/a.conf" });
    const s = load(p.file);
    assert.equal(s.configs.a.content?.toString(), "A");
    assert.equal(s.configs.b.content?.toString(), "A");
    assert.equal(s.configs.c.content?.toString(), "A");
    assert.equal(s.services[0].environment.X, "1");
  });
});

/** A "billion laughs": 9 levels of 9 aliases each, 9^9 (387 million) strings once expanded. */
function bomb(levels = 9, fanOut = 9): string {
  const lines = ['version: "3.8"', `x-0: &0 [${Array(fanOut).fill("lol").join(",")}]`];
  for (let i = 1; i < levels; i++) lines.push(`x-${i}: &${i} [${Array(fanOut).fill(`*${i - 1}`).join(",")}]`);
  lines.push("services:", "  web:", "    image: x", `    labels: {bomb: *${levels - 1}}`);
  return lines.join("\n") + "\n";
}

describe("YAML anchors and aliases that expand beyond a sane limit are refused", () => {
  const rejectsBomb = (text: string, line: number) => {
    const dir = mkdtempSync(path.join(tmpdir(), "compose-bomb-"));
    const file = path.join(dir, "c.yml");
    writeFileSync(file, text);
    const heapBefore = process.memoryUsage().heapUsed;
    const t0 = process.hrtime.bigint();
    let caught: unknown;
    try {
      load(file);
    } catch (e) {
      caught = e;
    }
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.ok(caught instanceof ComposeError, `expected a ComposeError, got ${String(caught)}`);
    assert.equal(caught.file, file);
    assert.ok(caught.message.includes(file), "names the file");
    assert.match(caught.message, new RegExp(`anchors and aliases at line ${line} expand beyond the limit`));
    assert.ok(caught.fix.length > 0);
    assert.ok(ms < 2000, `refused in ${ms} ms`);
    assert.ok(process.memoryUsage().heapUsed - heapBefore < 64 * 1024 * 1024, "bounded memory");
  };

  it("the issue's bomb: under 500 bytes, refused in milliseconds, naming the line", () => {
    const text = bomb();
    assert.ok(Buffer.byteLength(text) < 500, `${Buffer.byteLength(text)} bytes`);
    rejectsBomb(text, 8); // x-6: 9^7 = 4.8 million strings already
  });

  it("a bomb in a mapping chain and through merge keys", () => {
    const lines = ['version: "3.8"', "x-a: &a {" + Array.from({ length: 10 }, (_, i) => `k${i}: lol`).join(", ") + "}"];
    let prev = "a";
    for (const c of "bcdefghij") {
      lines.push(`x-${c}: &${c} {` + Array.from({ length: 10 }, (_, i) => `k${i}: *${prev}`).join(", ") + "}");
      prev = c;
    }
    lines.push("services:", "  web:", "    image: x", "    x-big:", "      <<: *j");
    rejectsBomb(lines.join("\n") + "\n", 7); // x-f: 10^6 strings
  });

  it("anchors reused by many services (what real files do) load", () => {
    const services = Array.from({ length: 200 }, (_, i) => `  s${i}:\n    <<: *svc\n    deploy: *deploy\n`).join("");
    const dir = mkdtempSync(path.join(tmpdir(), "compose-anchors-"));
    const file = path.join(dir, "c.yml");
    writeFileSync(file, 'version: "3.8"\nx-svc: &svc\n  image: nginx\n  environment: {A: "1", B: "2"}\n' +
      "x-deploy: &deploy\n  replicas: 2\n  resources: {limits: {memory: 64M}}\n  placement: {constraints: [node.role == worker]}\nservices:\n" + services);
    const s = load(file);
    assert.equal(s.services.length, 200);
    assert.equal(s.services[199].deploy.replicas, 2);
  });
});

describe("names the engine would refuse are refused before anything is created", () => {
  const file = (text: string, files: Record<string, string> = {}) => project(text, files).file;
  const rejectsName = (f: string, stackName: string, key: string, re: RegExp) => {
    assert.throws(() => loadCompose(f, { cli: LATEST_CLI, stackName, env: {} }), (e: unknown) => {
      assert.ok(e instanceof ComposeError, String(e));
      assert.equal(e.key, key);
      assert.ok(e.message.includes(f) && e.message.includes(key));
      assert.match(e.message, re);
      assert.match(e.fix, /shorten/);
      return true;
    });
  };
  it("<stack>_<service> longer than 63 characters", () => {
    rejectsName(file(`services:\n  ${"s".repeat(40)}:\n    image: x\n`), "a".repeat(30), `services.${"s".repeat(40)}`, /at most 63 characters.*has 71/);
  });
  it("a stack name with a '.' makes service names the engine refuses", () => {
    rejectsName(file("services:\n  web:\n    image: x\n"), "my.stack", "services.web", /DNS label/);
  });
  it("a secret or config name past 64 characters once named <stack>_<key>-<hash>", () => {
    rejectsName(file(`services:\n  web:\n    image: x\nconfigs:\n  ${"c".repeat(50)}:\n    file: ./a\n`, { a: "1" }), "stack",
      `configs.${"c".repeat(50)}`, /at most 55 characters/);
    rejectsName(file(`services:\n  web:\n    image: x\nsecrets:\n  s:\n    name: "bad name"\n    file: ./a\n`, { a: "1" }), "stack",
      "secrets.s.name", /would refuse the secret name/);
  });
  it("names at the limits pass", () => {
    const s = loadCompose(file(`services:\n  ${"s".repeat(31)}:\n    image: x\n`), { cli: LATEST_CLI, stackName: "a".repeat(31), env: {} });
    assert.equal(s.services.length, 1);
  });
});
