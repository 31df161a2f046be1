import { strict as assert } from "node:assert";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import {
  ComposeError, DEPRECATED, FORBIDDEN, UNSUPPORTED, convertStack, loadCompose, LATEST_CLI, type JsonObject, type LoadedStack,
} from "../../compose";

/** Writes files into a fresh directory; returns the path of the first one. */
function stack(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), "compose-load-"));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  return path.join(dir, Object.keys(files)[0]);
}

const load = (file: string, env: Record<string, string> = {}) => loadCompose(file, { cli: LATEST_CLI, stackName: "st", env });
/** The first service's TaskTemplate.RestartPolicy. */
const restartPolicy = (loaded: LoadedStack) => (convertStack(loaded).services[0].spec.TaskTemplate as JsonObject).RestartPolicy;

/** Asserts a ComposeError naming the file and exactly this key, with the message matching. */
function rejects(file: string, key: string, message: RegExp, env: Record<string, string> = {}): ComposeError {
  let caught: unknown;
  try {
    load(file, env);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ComposeError, `expected a ComposeError, got ${String(caught)}`);
  assert.equal(caught.file, file);
  assert.equal(caught.key, key);
  assert.ok(caught.message.includes(file), "the message names the file");
  if (key) assert.ok(caught.message.includes(key), "the message names the key");
  assert.match(caught.message, message);
  assert.ok(caught.fix.length > 0, "the error says how to fix it");
  return caught;
}

describe("rejections", () => {
  it("malformed YAML names file, line and column", () => {
    const file = stack({ "c.yml": "services:\n  web:\n    image: [nginx\n    ports: 80\n" });
    const e = rejects(file, "", /malformed YAML at line \d+, column \d+/);
    assert.match(e.message, /line 4/);
  });

  it("duplicate keys are malformed YAML", () => {
    const file = stack({ "c.yml": "services:\n  web:\n    image: a\n    image: b\n" });
    rejects(file, "", /duplicated mapping key/);
  });

  it("a top level that is not a mapping", () => {
    rejects(stack({ "c.yml": "- a\n- b\n" }), "", /top-level object must be a mapping/);
  });

  for (const v of ["2", "2.4", "1"]) {
    it(`version ${v} is rejected`, () => {
      rejects(stack({ "c.yml": `version: "${v}"\nservices:\n  a:\n    image: x\n` }), "version",
        new RegExp(`version ${v.replace(".", "\\.")} is not supported by docker stack deploy`));
    });
  }

  it("an unquoted version number is rejected with the fix", () => {
    const e = rejects(stack({ "c.yml": "version: 3.1\nservices:\n  a:\n    image: x\n" }), "version", /must be a string/);
    assert.match(e.fix, /version: "3.1"/);
  });

  it("an unknown 3.x version is rejected", () => {
    rejects(stack({ "c.yml": `version: "3.99"\nservices:\n  a:\n    image: x\n` }), "version", /unsupported compose file format version/);
  });

  it("a service without image", () => {
    rejects(stack({ "c.yml": "services:\n  web:\n    build: .\n" }), "services.web.image", /service has no image/);
  });

  it("an unknown key, with a suggestion", () => {
    const e = rejects(stack({ "c.yml": "services:\n  web:\n    image: x\n    enviroment:\n      A: b\n" }),
      "services.web.enviroment", /unknown key `enviroment`/);
    assert.match(e.fix, /environment/);
  });

  it("an unknown key deep in deploy", () => {
    rejects(stack({ "c.yml": "services:\n  web:\n    image: x\n    deploy:\n      placement:\n        constraint: [a]\n" }),
      "services.web.deploy.placement.constraint", /unknown key/);
  });

  it("a wrong type names the key", () => {
    rejects(stack({ "c.yml": "services:\n  web:\n    image: x\n    deploy:\n      replicas: two\n" }),
      "services.web.deploy.replicas", /must be a integer/);
  });

  it("a compose v1 file (services at the top level)", () => {
    const e = rejects(stack({ "c.yml": "registry:\n  image: registry:3\n" }), "registry", /unknown key/);
    assert.match(e.fix, /services:/);
  });

  it("an undefined network", () => {
    rejects(stack({ "c.yml": "services:\n  web:\n    image: x\n    networks: [front]\n" }),
      "services.web.networks.front", /undefined network "front"/);
  });

  it("an undefined named volume", () => {
    rejects(stack({ "c.yml": "services:\n  web:\n    image: x\n    volumes:\n      - /tmp:/a\n      - data:/var/lib/data\n" }),
      "services.web.volumes[1]", /undefined volume "data"/);
  });

  it("an undefined secret", () => {
    rejects(stack({ "c.yml": `version: "3.1"\nservices:\n  web:\n    image: x\n    secrets: [pw]\n` }),
      "services.web.secrets[0]", /undefined secret "pw"/);
  });

  it("an undefined config", () => {
    rejects(stack({ "c.yml": `version: "3.3"\nservices:\n  web:\n    image: x\n    configs:\n      - source: conf\n        target: /etc/conf\n` }),
      "services.web.configs[0]", /undefined config "conf"/);
  });

  for (const prop of Object.keys(FORBIDDEN)) {
    it(`${prop} is rejected with the CLI's advice`, () => {
      const value = prop === "volumes_from" ? "[other]" : prop === "extends" ? "{ service: other }" : "'1'";
      const e = rejects(stack({ "c.yml": `services:\n  web:\n    image: x\n    ${prop}: ${value}\n` }),
        `services.web.${prop}`, new RegExp(`\`${prop}\` is not supported by docker stack deploy`));
      assert.equal(e.fix, FORBIDDEN[prop]);
    });
  }

  it("a key newer than the declared version", () => {
    const e = rejects(stack({ "c.yml": `version: "3.1"\nservices:\n  web:\n    image: x\n    init: true\n` }),
      "services.web.init", /requires compose file format 3\.7 or later \(the file is read as 3\.1\)/);
    assert.match(e.fix, /3\.7/);
    rejects(stack({ "c.yml": `version: "3.1"\nservices:\n  web:\n    image: x\n    ports:\n      - target: 80\n` }),
      "services.web.ports[0]", /3\.2 or later/);
    rejects(stack({ "c.yml": `version: "3.0"\nservices:\n  web:\n    image: x\nx-foo: 1\n` }), "x-foo", /3\.4 or later/);
  });

  it("an invalid duration", () => {
    rejects(stack({ "c.yml": "services:\n  web:\n    image: x\n    stop_grace_period: 10 seconds\n" }),
      "services.web.stop_grace_period", /not a valid duration/);
  });

  it("an invalid port", () => {
    rejects(stack({ "c.yml": "services:\n  web:\n    image: x\n    ports: ['80:80:80:80/xyz']\n" }),
      "services.web.ports[0]", /invalid port/);
  });

  it("a bridge network cannot carry swarm services", () => {
    rejects(stack({ "c.yml": "services:\n  web:\n    image: x\n    networks: [n]\nnetworks:\n  n:\n    driver: bridge\n" }),
      "networks.n.driver", /node-local network/);
  });

  it("a secret without file or external", () => {
    rejects(stack({ "c.yml": `version: "3.5"\nservices:\n  web:\n    image: x\nsecrets:\n  s:\n    name: named\n` }),
      "secrets.s", /neither file nor external/);
  });

  it("a secret file that does not exist", () => {
    rejects(stack({ "c.yml": `version: "3.1"\nservices:\n  web:\n    image: x\nsecrets:\n  s:\n    file: ./nope.txt\n` }),
      "secrets.s.file", /cannot read .*nope\.txt: ENOENT/);
  });

  it("an env_file that does not exist", () => {
    rejects(stack({ "c.yml": "services:\n  web:\n    image: x\n    env_file: [a.env, missing.env]\n", "a.env": "A=1\n" }),
      "services.web.env_file[1]", /cannot read env file .*missing\.env/);
  });

  it("replicas with global mode", () => {
    rejects(stack({ "c.yml": "services:\n  web:\n    image: x\n    deploy:\n      mode: global\n      replicas: 2\n" }),
      "services.web.deploy.replicas", /replicated mode/);
  });

  it("healthcheck test with disable", () => {
    rejects(stack({ "c.yml": "services:\n  web:\n    image: x\n    healthcheck:\n      test: [CMD, \"true\"]\n      disable: true\n" }),
      "services.web.healthcheck.disable", /can't be set at the same time/);
  });

  it("an external volume with a driver", () => {
    rejects(stack({ "c.yml": "services:\n  web:\n    image: x\nvolumes:\n  v:\n    external: true\n    driver: local\n" }),
      "volumes.v.driver", /conflicting parameters "external" and "driver"/);
  });

  it("an invalid restart policy", () => {
    rejects(stack({ "c.yml": "services:\n  web:\n    image: x\n    restart: sometimes\n" }), "services.web.restart", /unknown policy 'sometimes'/);
  });

  it("an invalid stack name", () => {
    const file = stack({ "c.yml": "services:\n  a:\n    image: x\n" });
    assert.throws(() => loadCompose(file, { cli: LATEST_CLI, stackName: "bad name" }), /invalid stack name/);
  });
});

describe("warnings", () => {
  const values: Record<string, string> = {
    build: ".", cgroupns_mode: "host", cgroup_parent: "p", devices: "['/dev/x:/dev/x']", domainname: "d.example",
    external_links: "[other]", ipc: "host", links: "[db]", mac_address: "02:42:ac:11:65:43", network_mode: "host",
    pid: "host", privileged: "true", restart: "always", security_opt: "[label=x]", shm_size: "64m", userns_mode: "host",
    container_name: "c", expose: "[80]",
  };
  for (const prop of [...UNSUPPORTED, ...Object.keys(DEPRECATED)]) {
    it(`${prop} is ignored with a named warning`, () => {
      const file = stack({ "c.yml": `services:\n  web:\n    image: x\n    ${prop}: ${values[prop]}\n` });
      const loaded = load(file);
      const w = loaded.warnings.filter((x) => x.key === `services.web.${prop}`);
      assert.equal(w.length, 1, `one warning for ${prop}`);
      assert.equal(w[0].file, file);
      assert.match(w[0].message, prop in DEPRECATED ? /deprecated and ignored/ : prop === "build" ? /ignored by docker stack deploy; the program builds/ : /not supported by docker stack deploy/);
      // ignored: the ServiceSpec is that of the same file without the key (restart: see below)
      if (prop !== "restart") {
        const without = load(stack({ "c.yml": "services:\n  web:\n    image: x\n" }));
        assert.deepEqual(convertStack(loaded).services[0].spec, convertStack(without).services[0].spec);
      }
    });
  }

  it("restart is used as the restart policy when deploy.restart_policy is absent", () => {
    const loaded = load(stack({ "c.yml": "services:\n  web:\n    image: x\n    restart: on-failure:3\n" }));
    assert.match(loaded.warnings.find((w) => w.key === "services.web.restart")!.message, /used only as the restart policy/);
    assert.deepEqual(restartPolicy(loaded), { Condition: "on-failure", MaxAttempts: 3 });
  });

  it("restart yields to deploy.restart_policy", () => {
    const loaded = load(stack({ "c.yml": "services:\n  web:\n    image: x\n    restart: always\n    deploy:\n      restart_policy:\n        condition: none\n" }));
    assert.match(loaded.warnings.find((w) => w.key === "services.web.restart")!.message, /deploy.restart_policy applies/);
    assert.deepEqual(restartPolicy(loaded), { Condition: "none" });
  });

  it("restart: always and unless-stopped become condition any, no becomes nothing", () => {
    for (const [r, want] of [["always", { Condition: "any" }], ["unless-stopped", { Condition: "any" }], ["no", undefined]] as const) {
      const loaded = load(stack({ "c.yml": `services:\n  web:\n    image: x\n    restart: "${r}"\n` }));
      assert.deepEqual(restartPolicy(loaded), want);
    }
  });

  it("a host IP in a port is ignored with a warning", () => {
    const loaded = load(stack({ "c.yml": "services:\n  web:\n    image: x\n    ports: ['127.0.0.1:8080:80']\n" }));
    assert.match(loaded.warnings.find((w) => w.key === "services.web.ports[0]")!.message, /host IP 127\.0\.0\.1 is ignored/);
    assert.deepEqual(loaded.services[0].ports, [{ target: 80, published: 8080, protocol: "tcp", mode: "ingress" }]);
  });

  it("depends_on, service-level tmpfs and ipv4_address are dropped silently; depends_on is kept for ordering", () => {
    const loaded = load(stack({ "c.yml": `
services:
  web:
    image: x
    depends_on: [db]
    tmpfs: [/run]
    networks:
      n:
        ipv4_address: 10.0.0.5
        ipv6_address: "fe80::5"
  db:
    image: y
    networks: [n]
networks:
  n:
` }));
    assert.deepEqual(loaded.warnings, []);
    const spec = convertStack(loaded);
    const web = spec.services.find((s) => s.key === "web")!;
    assert.deepEqual(web.dependsOn, ["db"]);
    const text = JSON.stringify(web.spec);
    assert.ok(!text.includes("/run") && !text.includes("10.0.0.5"));
  });
});

describe("loading", () => {
  it("reads env_files relative to the compose file, later files and environment win, sorted in the spec", () => {
    const file = stack({
      "app/c.yml": "services:\n  web:\n    image: x\n    env_file: [conf/a.env, conf/b.env]\n    environment:\n      C: from-compose\n      D:\n",
      "app/conf/a.env": "# comment\nA=1\nB=from-a\n\n  C=from-a\nPASSED\nNOTSET\nQ=\"quoted\"\n",
      "app/conf/b.env": "B=from-b\n",
    });
    const loaded = load(file, { PASSED: "through", D: "from-env" });
    assert.deepEqual(loaded.services[0].environment, {
      A: "1", B: "from-b", C: "from-compose", D: "from-env", PASSED: "through", Q: "\"quoted\"",
    });
    const env = ((convertStack(loaded).services[0].spec.TaskTemplate as JsonObject).ContainerSpec as JsonObject).Env;
    assert.deepEqual(env, ["A=1", "B=from-b", "C=from-compose", "D=from-env", "PASSED=through", "Q=\"quoted\""]);
  });

  it("a bad env file line names the env file", () => {
    const file = stack({ "c.yml": "services:\n  web:\n    image: x\n    env_file: bad.env\n", "bad.env": "MY VAR=1\n" });
    assert.throws(() => load(file), (e: unknown) => e instanceof ComposeError && e.file.endsWith("bad.env") && /contains whitespaces/.test(e.message));
  });

  it("YAML anchors, merge keys and extension fields", () => {
    const loaded = load(stack({ "c.yml": `
version: "3.8"
x-defaults: &defaults
  image: base:1
  environment:
    SHARED: "yes"
  deploy:
    replicas: 2
services:
  a:
    <<: *defaults
    x-owner: team-a
  b:
    <<: *defaults
    image: other:2
networks:
  default:
    x-note: n
` }));
    const [a, b] = loaded.services;
    assert.equal(a.image, "base:1");
    assert.equal(b.image, "other:2", "explicit keys override merged ones");
    assert.equal(b.deploy.replicas, 2);
    assert.deepEqual(a.extras, { "x-owner": "team-a" });
    assert.deepEqual(loaded.networks.default.extras, { "x-note": "n" });
    assert.deepEqual(Object.keys(loaded.extras), ["x-defaults"]);
  });

  it("0-prefixed modes are octal, as the CLI's YAML reads them", () => {
    const loaded = load(stack({
      "c.yml": `version: "3.3"\nservices:\n  a:\n    image: x\n    configs:\n      - source: c\n        mode: 0440\nconfigs:\n  c:\n    file: ./c.txt\n`,
      "c.txt": "hello",
    }));
    assert.equal(loaded.services[0].configs[0].mode, 0o440);
  });

  it("version-less and version 3 files are read as 3.13", () => {
    assert.equal(load(stack({ "c.yml": "services:\n  a:\n    image: x\n" })).version, "3.13");
    assert.equal(load(stack({ "c.yml": `version: "3"\nservices:\n  a:\n    image: x\n` })).version, "3.13");
    assert.equal(load(stack({ "c.yml": `version: "3.1"\nservices:\n  a:\n    image: x\n` })).version, "3.1");
  });

  it("relative and ~ bind sources are resolved", () => {
    const file = stack({ "c.yml": "services:\n  a:\n    image: x\n    volumes: ['./data:/data', '~/cfg:/cfg:ro', 'named:/n', '/abs:/abs']\nvolumes:\n  named:\n" });
    const m = load(file, { HOME: "/home/u" }).services[0].volumes;
    assert.deepEqual(m.map((x) => [x.type, x.source, x.target, x.readOnly]), [
      ["bind", path.join(path.dirname(file), "data"), "/data", false],
      ["bind", "/home/u/cfg", "/cfg", true],
      ["volume", "named", "/n", false],
      ["bind", "/abs", "/abs", false],
    ]);
  });
});
