/**
 * JSON schema (draft-07) of the compose file format version 3, written for
 * this project: the union of the 3.0 ... 3.14 formats that `docker stack
 * deploy` accepts. Keys that appeared in a later 3.x version are gated by
 * {@link SINCE}, so a `version: "3.1"` file using `configs` is rejected as the
 * CLI rejects it. Everything is closed (`additionalProperties: false`) except
 * extension fields `x-*`, so a misspelt key is an error, not a silent no-op.
 */

const str = { type: "string" } as const;
const bool = { type: "boolean" } as const;
const int = { type: "integer" } as const;
const num = { type: "number" } as const;
const duration = { type: "string", format: "duration" } as const;
const ext = { "^x-": {} } as const;
const NAME = "^[a-zA-Z0-9._-]+$";

const listOfStrings = { type: "array", items: str, uniqueItems: true } as const;
const stringOrList = { oneOf: [str, { $ref: "#/definitions/list_of_strings" }] } as const;
const listOrDict = { $ref: "#/definitions/list_or_dict" } as const;
const driverOpts = {
  type: "object",
  patternProperties: { "^.+$": { type: ["string", "number"] } },
} as const;
const external = {
  type: ["boolean", "object"],
  properties: { name: str },
  additionalProperties: false,
} as const;

const fileRef = {
  type: "array",
  items: {
    oneOf: [
      str,
      {
        type: "object",
        properties: { source: str, target: str, uid: str, gid: str, mode: num },
        additionalProperties: false,
      },
    ],
  },
} as const;

const updateConfig = {
  type: "object",
  properties: {
    parallelism: int,
    delay: duration,
    failure_action: str,
    monitor: duration,
    max_failure_ratio: num,
    order: { type: "string", enum: ["start-first", "stop-first"] },
  },
  additionalProperties: false,
} as const;

export const composeV3Schema = {
  $schema: "http://json-schema.org/draft-07/schema#",
  $id: "dccn-swarm/compose-v3.json",
  type: "object",
  properties: {
    version: str,
    services: {
      type: "object",
      patternProperties: { [NAME]: { $ref: "#/definitions/service" } },
      additionalProperties: false,
    },
    networks: {
      type: "object",
      patternProperties: { [NAME]: { $ref: "#/definitions/network" } },
      additionalProperties: false,
    },
    volumes: {
      type: "object",
      patternProperties: { [NAME]: { $ref: "#/definitions/volume" } },
      additionalProperties: false,
    },
    secrets: {
      type: "object",
      patternProperties: { [NAME]: { $ref: "#/definitions/secret" } },
      additionalProperties: false,
    },
    configs: {
      type: "object",
      patternProperties: { [NAME]: { $ref: "#/definitions/config" } },
      additionalProperties: false,
    },
  },
  patternProperties: ext,
  additionalProperties: false,

  definitions: {
    list_of_strings: listOfStrings,
    list_or_dict: {
      oneOf: [
        {
          type: "object",
          patternProperties: { ".+": { type: ["string", "number", "null"] } },
          additionalProperties: false,
        },
        { type: "array", items: str, uniqueItems: true },
      ],
    },

    service: {
      type: "object",
      properties: {
        build: {
          oneOf: [
            str,
            {
              type: "object",
              properties: {
                context: str,
                dockerfile: str,
                args: listOrDict,
                labels: listOrDict,
                cache_from: listOfStrings,
                network: str,
                target: str,
                shm_size: { type: ["integer", "string"] },
                extra_hosts: listOrDict,
              },
              additionalProperties: true,
            },
          ],
        },
        cap_add: listOfStrings,
        cap_drop: listOfStrings,
        cgroupns_mode: str,
        cgroup_parent: str,
        command: { oneOf: [str, { type: "array", items: str }] },
        configs: fileRef,
        container_name: str,
        credential_spec: {
          type: "object",
          properties: { config: str, file: str, registry: str },
          additionalProperties: false,
        },
        depends_on: listOfStrings,
        deploy: { $ref: "#/definitions/deployment" },
        devices: listOfStrings,
        dns: stringOrList,
        dns_search: stringOrList,
        domainname: str,
        entrypoint: { oneOf: [str, { type: "array", items: str }] },
        env_file: stringOrList,
        environment: listOrDict,
        expose: { type: "array", items: { type: ["string", "number"] }, uniqueItems: true },
        external_links: listOfStrings,
        extra_hosts: listOrDict,
        group_add: { type: "array", items: { type: ["string", "number"] }, uniqueItems: true },
        healthcheck: {
          type: "object",
          properties: {
            disable: bool,
            interval: duration,
            retries: num,
            test: { oneOf: [str, { type: "array", items: str }] },
            timeout: duration,
            start_period: duration,
            start_interval: duration,
          },
          additionalProperties: false,
        },
        hostname: str,
        image: str,
        init: bool,
        ipc: str,
        isolation: str,
        labels: listOrDict,
        links: listOfStrings,
        logging: {
          type: "object",
          properties: {
            driver: str,
            options: { type: "object", patternProperties: { "^.+$": { type: ["string", "number", "null"] } } },
          },
          additionalProperties: false,
        },
        mac_address: str,
        network_mode: str,
        networks: {
          oneOf: [
            { $ref: "#/definitions/list_of_strings" },
            {
              type: "object",
              patternProperties: {
                [NAME]: {
                  oneOf: [
                    {
                      type: "object",
                      properties: {
                        aliases: listOfStrings,
                        driver_opts: driverOpts,
                        ipv4_address: str,
                        ipv6_address: str,
                      },
                      additionalProperties: false,
                    },
                    { type: "null" },
                  ],
                },
              },
              additionalProperties: false,
            },
          ],
        },
        oom_score_adj: int,
        pid: { type: ["string", "null"] },
        ports: {
          type: "array",
          items: {
            oneOf: [
              { type: "number" },
              { type: "string" },
              {
                type: "object",
                properties: { mode: str, target: int, published: int, protocol: str },
                additionalProperties: false,
              },
            ],
          },
          uniqueItems: true,
        },
        privileged: bool,
        read_only: bool,
        restart: str,
        secrets: fileRef,
        security_opt: listOfStrings,
        shm_size: { type: ["number", "string"] },
        stdin_open: bool,
        stop_grace_period: duration,
        stop_signal: str,
        sysctls: listOrDict,
        tmpfs: stringOrList,
        tty: bool,
        ulimits: {
          type: "object",
          patternProperties: {
            "^[a-z]+$": {
              oneOf: [
                int,
                {
                  type: "object",
                  properties: { hard: int, soft: int },
                  required: ["soft", "hard"],
                  additionalProperties: false,
                },
              ],
            },
          },
        },
        user: str,
        userns_mode: str,
        volumes: {
          type: "array",
          items: {
            oneOf: [
              str,
              {
                type: "object",
                required: ["type"],
                properties: {
                  type: str,
                  source: str,
                  target: str,
                  read_only: bool,
                  consistency: str,
                  bind: { type: "object", properties: { propagation: str } },
                  volume: { type: "object", properties: { nocopy: bool } },
                  tmpfs: { type: "object", properties: { size: { type: "integer", minimum: 0 } } },
                },
                additionalProperties: false,
              },
            ],
          },
          uniqueItems: true,
        },
        working_dir: str,
      },
      patternProperties: ext,
      additionalProperties: false,
    },

    deployment: {
      type: ["object", "null"],
      properties: {
        mode: str,
        endpoint_mode: str,
        replicas: int,
        labels: listOrDict,
        rollback_config: updateConfig,
        update_config: updateConfig,
        resources: {
          type: "object",
          properties: {
            limits: {
              type: "object",
              properties: { cpus: str, memory: str, pids: int },
              additionalProperties: false,
            },
            reservations: {
              type: "object",
              properties: {
                cpus: str,
                memory: str,
                generic_resources: {
                  type: "array",
                  items: {
                    type: "object",
                    properties: {
                      discrete_resource_spec: {
                        type: "object",
                        properties: { kind: str, value: num },
                        additionalProperties: false,
                      },
                    },
                    additionalProperties: false,
                  },
                },
              },
              additionalProperties: false,
            },
          },
          additionalProperties: false,
        },
        restart_policy: {
          type: "object",
          properties: { condition: str, delay: duration, max_attempts: int, window: duration },
          additionalProperties: false,
        },
        placement: {
          type: "object",
          properties: {
            constraints: { type: "array", items: str },
            preferences: {
              type: "array",
              items: { type: "object", properties: { spread: str }, additionalProperties: false },
            },
            max_replicas_per_node: int,
          },
          additionalProperties: false,
        },
      },
      additionalProperties: false,
    },

    network: {
      type: ["object", "null"],
      properties: {
        name: str,
        driver: str,
        driver_opts: driverOpts,
        ipam: {
          type: "object",
          properties: {
            driver: str,
            config: {
              type: "array",
              items: { type: "object", properties: { subnet: str }, additionalProperties: false },
            },
          },
          additionalProperties: false,
        },
        external,
        internal: bool,
        attachable: bool,
        labels: listOrDict,
      },
      patternProperties: ext,
      additionalProperties: false,
    },

    volume: {
      type: ["object", "null"],
      properties: {
        name: str,
        driver: str,
        driver_opts: driverOpts,
        external,
        labels: listOrDict,
        // x-cluster-spec: an x-* extension to the schema; CLIs that know cluster volumes decode it (compose/load.ts loadVolume).
      },
      patternProperties: ext,
      additionalProperties: false,
    },

    secret: {
      type: "object",
      properties: {
        name: str,
        file: str,
        external: { type: ["boolean", "object"], properties: { name: str } },
        labels: listOrDict,
        driver: str,
        driver_opts: driverOpts,
        template_driver: str,
      },
      patternProperties: ext,
      additionalProperties: false,
    },

    config: {
      type: "object",
      properties: {
        name: str,
        file: str,
        external: { type: ["boolean", "object"], properties: { name: str } },
        labels: listOrDict,
        template_driver: str,
      },
      patternProperties: ext,
      additionalProperties: false,
    },
  },
} as const;

/**
 * Keys that a 3.x minor version introduced. A path is a list of segments
 * where `*` is any name and `[]` any list item; the rule applies when the key
 * at that path is present (for `long:` rules: when the list item is a mapping).
 */
export interface SinceRule {
  path: string[];
  since: number;
  /** Matches only list items written in the long (mapping) syntax. */
  long?: boolean;
  /** Matches only extension keys (x-*) at that level. */
  ext?: boolean;
}

const S = ["services", "*"];
export const SINCE: SinceRule[] = [
  { path: ["secrets"], since: 1 },
  { path: [...S, "secrets"], since: 1 },
  { path: [...S, "ports", "[]"], since: 2, long: true },
  { path: [...S, "volumes", "[]"], since: 2, long: true },
  { path: [...S, "deploy", "endpoint_mode"], since: 2 },
  { path: ["networks", "*", "attachable"], since: 2 },
  { path: [...S, "build", "cache_from"], since: 2 },
  { path: ["configs"], since: 3 },
  { path: [...S, "configs"], since: 3 },
  { path: [...S, "credential_spec"], since: 3 },
  { path: [...S, "deploy", "placement", "preferences"], since: 3 },
  { path: [...S, "build", "labels"], since: 3 },
  { path: [...S, "healthcheck", "start_period"], since: 4 },
  { path: [...S, "deploy", "update_config", "order"], since: 4 },
  { path: ["volumes", "*", "name"], since: 4 },
  { path: [...S, "build", "target"], since: 4 },
  { path: [...S, "build", "network"], since: 4 },
  { path: [], since: 4, ext: true },
  { path: [...S, "isolation"], since: 5 },
  { path: ["networks", "*", "name"], since: 5 },
  { path: ["secrets", "*", "name"], since: 5 },
  { path: ["configs", "*", "name"], since: 5 },
  { path: [...S, "build", "shm_size"], since: 5 },
  { path: [...S, "deploy", "resources", "reservations", "generic_resources"], since: 5 },
  { path: [...S, "volumes", "[]", "tmpfs"], since: 6 },
  { path: [...S, "init"], since: 7 },
  { path: [...S, "deploy", "rollback_config"], since: 7 },
  { path: S, since: 7, ext: true },
  { path: ["networks", "*"], since: 7, ext: true },
  { path: ["volumes", "*"], since: 7, ext: true },
  { path: ["secrets", "*"], since: 7, ext: true },
  { path: ["configs", "*"], since: 7, ext: true },
  { path: [...S, "deploy", "placement", "max_replicas_per_node"], since: 8 },
  { path: ["secrets", "*", "driver"], since: 8 },
  { path: ["secrets", "*", "driver_opts"], since: 8 },
  { path: ["secrets", "*", "template_driver"], since: 8 },
  { path: ["configs", "*", "template_driver"], since: 8 },
  { path: [...S, "deploy", "resources", "limits", "pids"], since: 9 },
  { path: [...S, "healthcheck", "start_interval"], since: 12 },
  // In no schema of docker CLI 20.10 (3.0-3.9) or 26.1 (3.0-3.12): a later CLI's 3.13 has them
  // ("Additional property ... is not allowed"; found by npm run parity).
  { path: [...S, "networks", "*", "driver_opts"], since: 13 },
  { path: [...S, "oom_score_adj"], since: 13 },
];

/** Highest 3.x minor version this schema describes (a later CLI's; compose/cli-rules.ts says which each CLI reads). */
export const LATEST_MINOR = 14;
/**
 * The docker stack deploy a file is held to when nothing else is said (LoadOptions.cli): docker CLI
 * 20.10 (Debian's docker.io, the engine of the lab's nodes and DCCN's pinned one).
 */
export const STACK_DEPLOY_CLI = "20.10";
/** The newest CLI whose rules the program has (compose/cli-rules.ts): a stack without a pinned engine is converted with them. */
export const LATEST_CLI = "28.2";
