import { strict as assert } from "node:assert";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { ComposeError, convertStack, loadCompose, substitute , LATEST_CLI } from "../../compose";

const env: Record<string, string> = { FOO: "foo", EMPTY: "", PORT: "8080", RO: "yes", N: "3" };
const lookup = (k: string) => (k in env ? env[k] : undefined);

function compose(text: string, name = "docker-compose.yml"): string {
  const dir = mkdtempSync(path.join(tmpdir(), "compose-interp-"));
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe("substitute", () => {
  const cases: Array<[string, string]> = [
    ["$FOO", "foo"],
    ["${FOO}", "foo"],
    ["x${FOO}y", "xfooy"],
    ["$FOO/bar", "foo/bar"],
    ["${MISSING}", ""],
    ["$MISSING", ""],
    ["${MISSING:-def}", "def"],
    ["${EMPTY:-def}", "def"],
    ["${FOO:-def}", "foo"],
    ["${MISSING-def}", "def"],
    ["${EMPTY-def}", ""],
    ["${FOO-def}", "foo"],
    ["${MISSING:-a b c}", "a b c"],
    ["$$FOO", "$FOO"],
    ["$${FOO}", "${FOO}"],
    ["a$$b", "a$b"],
    ["${FOO:?must be set}", "foo"],
    ["${EMPTY?may be empty}", ""],
    ["no vars", "no vars"],
  ];
  for (const [input, want] of cases) {
    it(`${input} -> ${JSON.stringify(want)}`, () => assert.equal(substitute(input, lookup), want));
  }

  it("${VAR:?err} fails when unset or empty, with the message", () => {
    assert.throws(() => substitute("${MISSING:?set it please}", lookup), /required variable MISSING is missing a value: set it please/);
    assert.throws(() => substitute("${EMPTY:?not empty}", lookup), /required variable EMPTY/);
  });
  it("${VAR?err} fails only when unset", () => {
    assert.throws(() => substitute("${MISSING?gone}", lookup), /required variable MISSING is missing a value: gone/);
    assert.equal(substitute("${EMPTY?gone}", lookup), "");
  });
  it("a lone $ or ${ is an invalid template", () => {
    assert.throws(() => substitute("cost: 5$", lookup), /invalid template/);
    assert.throws(() => substitute("${", lookup), /invalid template/);
    assert.throws(() => substitute("${1abc}", lookup), /invalid template/);
  });
  it("reports unset plain variables", () => {
    const seen: string[] = [];
    substitute("$A ${B} ${C:-x} $FOO", lookup, (n) => seen.push(n));
    assert.deepEqual(seen, ["A", "B"]);
  });
});

describe("interpolation in compose files", () => {
  it("applies to values, not keys, and casts typed fields as the CLI does", () => {
    const file = compose(`
version: "3.8"
services:
  web:
    image: "nginx:\${TAG:-1.25}"
    read_only: \${RO}
    ports:
      - target: 80
        published: \${PORT}
    deploy:
      replicas: \${N}
    environment:
      GREETING: "hello $$USER"
      $FOO: literal-key
`);
    const loaded = loadCompose(file, { cli: LATEST_CLI, stackName: "s", env });
    const web = loaded.services[0];
    assert.equal(web.image, "nginx:1.25");
    assert.equal(web.readOnly, true);
    assert.equal(web.ports[0].published, 8080);
    assert.equal(web.deploy.replicas, 3);
    assert.equal(web.environment.GREETING, "hello $USER");
    assert.equal(web.environment.$FOO, "literal-key", "keys are not interpolated");
    const spec = convertStack(loaded);
    assert.deepEqual(spec.services[0].spec.Mode, { Replicated: { Replicas: 3 } });
  });

  it("interpolates extension fields and names the key of an unset variable", () => {
    const file = compose(`
x-common: &common
  image: "\${REGISTRY}/app"
services:
  a:
    <<: *common
`);
    const loaded = loadCompose(file, { cli: LATEST_CLI, stackName: "s", env: {} });
    assert.equal(loaded.services[0].image, "/app");
    assert.deepEqual(loaded.extras, { "x-common": { image: "/app" } });
    const w = loaded.warnings.find((x) => x.message.includes("REGISTRY"));
    assert.ok(w, "a warning names the unset variable");
    assert.equal(w.key, "x-common.image");
    assert.equal(w.file, file);
  });

  it("a missing required variable is a ComposeError naming file and key", () => {
    const file = compose(`
services:
  db:
    image: mysql
    environment:
      - MYSQL_ROOT_PASSWORD=\${DB_PASSWORD:?set DB_PASSWORD in the stack config}
`);
    assert.throws(() => loadCompose(file, { cli: LATEST_CLI, stackName: "s", env: {} }), (e: unknown) => {
      assert.ok(e instanceof ComposeError);
      assert.equal(e.file, file);
      assert.equal(e.key, "services.db.environment[0]");
      assert.match(e.message, /DB_PASSWORD is missing a value: set DB_PASSWORD in the stack config/);
      assert.ok(e.message.includes(file));
      return true;
    });
  });

  it("an interpolated value of the wrong type is rejected at its key", () => {
    const file = compose(`
services:
  web:
    image: nginx
    deploy:
      replicas: \${N}
`);
    assert.throws(() => loadCompose(file, { cli: LATEST_CLI, stackName: "s", env: { N: "three" } }),
      (e: unknown) => e instanceof ComposeError && e.key === "services.web.deploy.replicas" && /integer/.test(e.message));
  });

  it("takes nothing from the process environment unless passed", () => {
    process.env.COMPOSE_TEST_LEAK = "leaked";
    try {
      const file = compose(`services:\n  a:\n    image: "x:\${COMPOSE_TEST_LEAK:-none}"\n`);
      assert.equal(loadCompose(file, { cli: LATEST_CLI, stackName: "s" }).services[0].image, "x:none");
      assert.equal(loadCompose(file, { cli: LATEST_CLI, stackName: "s", env: process.env }).services[0].image, "x:leaked");
    } finally {
      delete process.env.COMPOSE_TEST_LEAK;
    }
  });
});
