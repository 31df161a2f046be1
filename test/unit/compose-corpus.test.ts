/**
 * Every compose file of the shared fixtures either loads and converts, or is
 * rejected with a reason naming the key, as `docker stack deploy` would
 * accept or reject it (see compose-corpus/SOURCES.md for why each is there).
 */
import { strict as assert } from "node:assert";
import { readdirSync } from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { ComposeError, convertStack, LATEST_CLI, loadCompose } from "../../compose";

const SHARED = path.resolve(__dirname, "../../../shared/fixtures");
const ENV = { HOME: "/home/deploy" };
type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any
/** The ServiceSpec's TaskTemplate and its ContainerSpec. */
const tt = (s: { spec: unknown }): Any => (s.spec as Any).TaskTemplate;
const cs = (s: { spec: unknown }): Any => tt(s).ContainerSpec;

/**
 * docker stack deploy of docker CLI 20.10 (the lab's and DCCN's, the program's default) refuses a
 * file without `version` ("unsupported Compose file version: 1.0") and versions after 3.9, before
 * anything else: these files are rejected at `version` then, whatever else they hold.
 */
const REJECTED_BY_VERSION_2010: Record<string, RegExp> = {
  "awesome-compose/elasticsearch-logstash-kibana.compose.yaml": /without `version`/,
  "awesome-compose/minecraft.compose.yaml": /without `version`/,
  "awesome-compose/nextcloud-redis-mariadb.compose.yaml": /without `version`/,
  "awesome-compose/nginx-golang-postgres.compose.yaml": /without `version`/,
  "awesome-compose/prometheus-grafana.compose.yaml": /without `version`/,
  "awesome-compose/wordpress-mysql.compose.yaml": /without `version`/,
  "distribution/deploying.md.registry-compose-example.yml": /without `version`/,
  "docker-cli/e2e-compose-env.yaml": /without `version`/,
  "docker-cli/full-example.yml": /3\.13 is not supported by docker stack deploy \(docker CLI 20\.10\), which reads 3\.0 to 3\.9/,
  "docker-library-docs/wordpress.stack.yml": /without `version`/,
};

/** Rejected files under the later CLIs' version rules: the key the error names and what it says. */
const REJECTED: Record<string, { key: string; reason: RegExp }> = {
  "awesome-compose/elasticsearch-logstash-kibana.compose.yaml": { key: "networks.elastic.driver", reason: /node-local network/ },
  "awesome-compose/nginx-golang-postgres.compose.yaml": { key: "services.backend.depends_on", reason: /must be a list/ },
  "distribution/deploying.md.registry-compose-example.yml": { key: "registry", reason: /unknown key `registry`/ },
  "docker-cli/e2e-compose-env.yaml": { key: "services.engine.image", reason: /no image/ },
  "docker-cli/full-example.yml": { key: "secrets.secret1.file", reason: /cannot read/ },
  "docker-library-docs/geonetwork.stack.yml": { key: "services.geonetwork.depends_on", reason: /must be a list/ },
  "docker-library-docs/mongo.stack.yml": { key: "services.mongo-express.environment.ME_CONFIG_BASICAUTH", reason: /must be a string, number or null/ },
};

/** Accepted files: a few facts of the conversion each exercises. */
const ACCEPTED: Record<string, (spec: ReturnType<typeof convertStack>) => void> = {
  "awesome-compose/minecraft.compose.yaml": (s) => {
    assert.equal(tt(s.services[0]).Resources.Limits.MemoryBytes, 1.5 * 1024 ** 3);
    assert.equal(cs(s.services[0]).Mounts[0].Source, "/home/deploy/minecraft_data");
  },
  "awesome-compose/nextcloud-redis-mariadb.compose.yaml": (s) => {
    assert.deepEqual(s.networks.map((n) => n.name), ["st_dbnet", "st_redisnet"]);
    assert.deepEqual(cs(s.services.find((x) => x.key === "db")!).Args,
      ["--transaction-isolation=READ-COMMITTED", "--binlog-format=ROW"]);
    assert.ok(s.warnings.some((w) => w.key === "services.redis.expose"));
  },
  "awesome-compose/prometheus-grafana.compose.yaml": (s) => {
    assert.ok(s.warnings.some((w) => w.key === "services.grafana.container_name"));
    assert.deepEqual(tt(s.services.find((x) => x.key === "grafana")!).RestartPolicy, { Condition: "any" });
  },
  "awesome-compose/wordpress-mysql.compose.yaml": (s) => {
    assert.deepEqual(s.volumes.map((v) => v.name), ["st_db_data"]);
  },
  "docker-cli/e2e-full-stack.yml": (s) => {
    assert.deepEqual(s.services.map((x) => x.name), ["st_one", "st_two"]);
    assert.deepEqual(cs(s.services[0]).Args, ["top"]);
  },
  "docker-cli/e2e-stack-with-named-resources.yml": (s) => {
    assert.deepEqual(s.networks.map((n) => n.name), ["named-network", "st_network2"]);
  },
  "docker-library-docs/drupal.stack.yml": (s) => {
    assert.equal(cs(s.services[0]).Mounts.length, 4);
  },
  "docker-library-docs/mysql.stack.yml": (s) => assert.equal(s.services.length, 1),
  "docker-library-docs/postgres.stack.yml": (s) => assert.ok(s.warnings.some((w) => w.key === "services.db.shm_size")),
  "docker-library-docs/wordpress.stack.yml": (s) => assert.deepEqual(s.volumes.map((v) => v.name), ["st_db", "st_wordpress"]),
  "docker-library-docs/zookeeper.stack.yml": (s) => {
    assert.ok(cs(s.services[0]).Env.includes("ZOO_MY_ID=1"));
    assert.equal(cs(s.services[0]).Hostname, "zoo1");
  },
};

function composeFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return composeFiles(p);
    return /\.ya?ml$/.test(e.name) ? [p] : [];
  });
}

describe("compose corpus", () => {
  const root = path.join(SHARED, "compose-corpus");
  const files = composeFiles(root).map((f) => path.relative(root, f)).sort();

  it("every file is classified", () => {
    assert.ok(files.length >= 18);
    for (const f of files) assert.ok(f in REJECTED || f in ACCEPTED, `${f} has an expected outcome`);
  });

  for (const f of files) {
    const file = path.join(root, f);
    const reject2010 = REJECTED_BY_VERSION_2010[f];
    if (reject2010) {
      it(`${f} is rejected by the docker CLI 20.10 rules: version`, () => {
        assert.throws(() => loadCompose(file, { stackName: "st", env: ENV }), (e: unknown) => {
          assert.ok(e instanceof ComposeError, String(e));
          assert.equal(e.key, "version");
          assert.match(e.message, reject2010);
          return true;
        });
      });
    } else {
      it(`${f} is read the same by the docker CLI 20.10 and the later rules`, () => {
        const outcome = (cli?: string) => {
          try {
            return JSON.stringify(convertStack(loadCompose(file, { cli, stackName: "st", env: ENV })));
          } catch (e) {
            return `rejected: ${(e as Error).message}`;
          }
        };
        assert.equal(outcome(), outcome(LATEST_CLI));
      });
    }
    // What follows: the files as the later CLIs read them (version-less files as the latest 3.x).
    if (f in REJECTED) {
      it(`${f} is rejected: ${REJECTED[f].key}`, () => {
        assert.throws(() => convertStack(loadCompose(file, { cli: LATEST_CLI, stackName: "st", env: ENV })), (e: unknown) => {
          assert.ok(e instanceof ComposeError, String(e));
          assert.equal(e.file, file);
          assert.equal(e.key, REJECTED[f].key);
          assert.match(e.message, REJECTED[f].reason);
          return true;
        });
      });
    } else {
      it(`${f} converts`, () => {
        const spec = convertStack(loadCompose(file, { cli: LATEST_CLI, stackName: "st", env: ENV }));
        assert.ok(spec.services.length > 0);
        for (const s of spec.services) {
          assert.equal((s.spec.Labels as Any)["com.docker.stack.namespace"], "st");
          assert.ok(tt(s).Networks.every((n: Any) => n.Aliases?.includes(s.key)), "the service name is an alias");
        }
        ACCEPTED[f]?.(spec);
      });
    }
  }
});

describe("DCCN fixtures", () => {
  const root = path.join(SHARED, "dccn");
  const files = readdirSync(root).filter((f) => /\.ya?ml$/.test(f)).sort();
  it("there are DCCN compose files", () => assert.ok(files.length >= 7));
  for (const f of files) {
    it(`${f} converts`, () => {
      const spec = convertStack(loadCompose(path.join(root, f), { stackName: "dccn", env: ENV }));
      assert.ok(spec.services.length > 0);
      assert.ok(spec.networks.some((n) => n.name.startsWith("dccn_")));
    });
  }
});
