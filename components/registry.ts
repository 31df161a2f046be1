/**
 * The private registry (DCCN document 3.2 and 4.5.1): distribution's registry as a swarm service,
 * with TLS from a self-signed CA every node trusts and htpasswd (bcrypt) users from secret config.
 * Other stacks depend on `ready` (a login that worked on a manager), so after a reboot or a new
 * cluster the registry is up before anything pulls from it, and they pull with `registryAuth`
 * (the document's `--with-registry-auth`).
 */
import { createHash } from "crypto";
import * as pulumi from "../lib/sdk";
import { ClusterConfig, PROJECT } from "../lib/cluster-config";
import { LABEL_IMAGE, LABEL_NAMESPACE, JsonObject, sorted } from "../lib/engine-spec";
import { RegistryConfig } from "../lib/registry-config";
import { stepCall, type StepCall } from "../lib/remote-script";
import {
    HostSpec, ProvisionStep, RegistryAuth, RegistryPki, RegistryProbe, RegistryUsers, SshSpec, SwarmSecret, SwarmService,
} from "../lib/resources";

/** A node as the registry sees it. */
export interface RegistryNode {
    host: HostSpec;
    labels: Record<string, string>;
    /** What must be done on the node first (its provisioning). */
    after?: pulumi.Resource[];
}

export interface RegistryArgs {
    config: RegistryConfig;
    /** User name to password: the secret `dccn-swarm:registryPasswords`. */
    passwords: pulumi.Input<Record<string, string>>;
    /** `Pulumi.<stack>.yaml`, named in messages. */
    stackFile: string;
    /**
     * Every node: each trusts the CA, those with the placement label get the data directory, and the
     * swarm is reached through whichever of them is a manager when asked (so promoting or demoting a
     * node does not touch the registry's resources).
     */
    nodes: RegistryNode[];
    ssh: pulumi.Input<SshSpec>;
    /** A local Docker socket of a manager instead of SSH for the swarm objects (tests; Pulumi on a manager). */
    engineSocket?: string;
    /** Stack namespace of the registry's swarm objects. Default `registry` (service `registry_registry`). */
    stackName?: string;
    /** Seconds the service may take to converge (default 180). */
    convergeTimeout?: number;
    /** The swarm's membership and labels: the service is placed by a label, so it comes after them. */
    dependsOn?: pulumi.Input<pulumi.Resource>[];
    /**
     * Create the CA and certificates and the service with Pulumi's `protect` (every environment but
     * `dev`, unless `allowDestroy`: lib/protection.ts). Default false.
     */
    protect?: boolean;
}

/** Paths inside the registry container. */
export const CONTAINER = {
    cert: "/run/secrets/registry.crt",
    key: "/run/secrets/registry.key",
    htpasswd: "/run/secrets/htpasswd",
    data: "/var/lib/registry",
    port: 5000,
    debugAddr: "127.0.0.1:5001",
};

const SECOND = 1_000_000_000;

/**
 * Healthy when the registry's debug server reports its health checks (storage driver) passing.
 * wget for the official image (Alpine/BusyBox), bash's /dev/tcp for Debian's (no wget or curl).
 */
export const HEALTH_CMD = `wget -q -O /dev/null http://${CONTAINER.debugAddr}/debug/health 2>/dev/null || ` +
    `bash -c 'exec 3<>/dev/tcp/${CONTAINER.debugAddr.replace(":", "/")} && printf "GET /debug/health HTTP/1.0\\r\\n\\r\\n" >&3 && head -n1 <&3 | grep -q " 200 "'`;

/** `<stack>_<key>-<8 hex>` as compose/convert names secrets by content. */
export function contentName(stack: string, key: string, content: string): string {
    return `${stack}_${key}-${createHash("sha256").update(content ?? "").digest("hex").slice(0, 8)}`;
}

export interface SecretNames {
    cert: string;
    key: string;
    htpasswd: string;
}

/** Container label naming the nodes that carry the registry's placement label (see registryServiceSpec). */
export const LABEL_PLACED_ON = "dccn-swarm.registry.nodes";

/**
 * The ServiceSpec (Engine API 1.41) of the registry service. Pure and deterministic. `placedOn`: the
 * nodes that carry the placement label, as a container label: the swarm does not move a running task
 * when node labels change, so moving the label changes the task's spec, and the engine starts the
 * registry again where the label now is (its data on the shared storage goes with it).
 */
export function registryServiceSpec(cfg: RegistryConfig, stack: string, secrets: SecretNames, placedOn: string[] = []): JsonObject {
    const env = [
        `REGISTRY_AUTH=htpasswd`,
        `REGISTRY_AUTH_HTPASSWD_PATH=${CONTAINER.htpasswd}`,
        `REGISTRY_AUTH_HTPASSWD_REALM=${cfg.host} registry`,
        `REGISTRY_HEALTH_STORAGEDRIVER_ENABLED=true`,
        `REGISTRY_HTTP_ADDR=0.0.0.0:${CONTAINER.port}`,
        `REGISTRY_HTTP_DEBUG_ADDR=${CONTAINER.debugAddr}`,
        `REGISTRY_HTTP_TLS_CERTIFICATE=${CONTAINER.cert}`,
        `REGISTRY_HTTP_TLS_KEY=${CONTAINER.key}`,
        `REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=${CONTAINER.data}`,
    ].sort();
    const secret = (name: string, file: string, mode: number) => ({ File: { Name: file, UID: "0", GID: "0", Mode: mode }, SecretName: name });
    return sorted({
        Name: `${stack}_registry`,
        Labels: { [LABEL_NAMESPACE]: stack, [LABEL_IMAGE]: cfg.image },
        TaskTemplate: {
            ContainerSpec: {
                Image: cfg.image,
                Labels: { [LABEL_NAMESPACE]: stack, ...(placedOn.length > 0 ? { [LABEL_PLACED_ON]: [...placedOn].sort().join(",") } : {}) },
                Env: env,
                Mounts: [{ Type: "bind", Source: cfg.dataPath, Target: CONTAINER.data }],
                Secrets: [
                    secret(secrets.cert, "registry.crt", 0o444),
                    secret(secrets.key, "registry.key", 0o400),
                    secret(secrets.htpasswd, "htpasswd", 0o444),
                ].sort((a, b) => a.File.Name.localeCompare(b.File.Name)),
                Healthcheck: { Test: ["CMD-SHELL", HEALTH_CMD], Interval: 10 * SECOND, Timeout: 5 * SECOND, StartPeriod: 10 * SECOND, Retries: 3 },
                StopGracePeriod: 10 * SECOND,
            },
            Placement: { Constraints: [cfg.constraint] },
            RestartPolicy: { Condition: "any", Delay: 5 * SECOND },
        },
        Mode: { Replicated: { Replicas: 1 } },
        // One task holding the host port: the old task stops before the new one starts. A new
        // task that does not become healthy rolls the service back to the previous certificate/users.
        UpdateConfig: { Parallelism: 1, FailureAction: "rollback", Monitor: 15 * SECOND, Order: "stop-first" },
        RollbackConfig: { Parallelism: 1, FailureAction: "pause", Monitor: 15 * SECOND, Order: "stop-first" },
        EndpointSpec: {
            Mode: "vip",
            // Host mode: the port on the node running the registry, no routing mesh.
            Ports: [{ Protocol: "tcp", TargetPort: CONTAINER.port, PublishedPort: cfg.port, PublishMode: "host" }],
        },
    }) as unknown as JsonObject;
}

/** The standard input of the data directory step on a node (scripts/registry-data.sh). */
export function dataDirStep(cfg: RegistryConfig): StepCall {
    return stepCall("registry-data.sh", { DATA_PATH: cfg.dataPath });
}

/** The CA trust step on a node (scripts/registry-ca.sh; the trust bundle is its data). */
export function trustStep(cfg: RegistryConfig): StepCall {
    return stepCall("registry-ca.sh", {
        REGISTRY_HOST: cfg.host,
        REGISTRY_PORT: String(cfg.port),
        REGISTRY_ADDRESS: cfg.address,
    });
}

/** The parameters of registry-ca.sh that remove the CA trust (and the pinned name) from a node: the registry left the config. */
export function untrustEnv(cfg: RegistryConfig): Record<string, string> {
    return { REGISTRY_HOST: cfg.host, REGISTRY_PORT: String(cfg.port), REMOVE: "1" };
}

export class Registry extends pulumi.ComponentResource {
    /** `host:port`: image references are `<endpoint>/<name>:<tag>`. */
    readonly endpoint: string;
    /** X-Registry-Auth for other stacks (`--with-registry-auth`): the pull user's credentials. A secret. */
    readonly registryAuth: pulumi.Output<RegistryAuth>;
    /** The push user's credentials (`pushUser`): the program pushes the images it builds with them. */
    readonly pushAuth: pulumi.Output<RegistryAuth>;
    /** Depend on this: the registry answered a login on a manager (TLS trusted, user accepted). */
    readonly ready: pulumi.Resource;
    readonly service: SwarmService;
    /** The CA certificate (public), as the nodes trust it. */
    readonly caCert: pulumi.Output<string>;
    /** Expiry of the server certificate (ISO 8601); a new one is issued within renewBeforeDays of it. */
    readonly certificateNotAfter: pulumi.Output<string>;
    readonly caNotAfter: pulumi.Output<string>;
    readonly users: string[];
    /** The CA trust step of each node, by host name. */
    readonly trust: Record<string, ProvisionStep> = {};

    constructor(name: string, args: RegistryArgs, opts?: pulumi.ComponentResourceOptions) {
        super("dccn-swarm:registry:Registry", name, {}, opts);
        const cfg = args.config;
        const stack = args.stackName ?? "registry";
        const ssh = pulumi.secret(args.ssh);
        const managers = args.nodes.map((n) => n.host);
        const access = { managers, ssh, ...(args.engineSocket ? { engineSocket: args.engineSocket } : {}) };
        const origin = (key: string) => ({ stack, file: args.stackFile, key: `${PROJECT}:registry${key ? "." + key : ""}` });
        const after = args.dependsOn ?? [];

        const pkiRes = new RegistryPki(`${name}-pki`, {
            stackFile: args.stackFile,
            host: cfg.host,
            address: cfg.address ?? "",
            validityDays: cfg.certificate.validityDays,
            renewBeforeDays: cfg.certificate.renewBeforeDays,
            caValidityDays: cfg.certificate.caValidityDays,
            caCommonName: "dccn-swarm registry CA",
        }, { parent: this, protect: !!args.protect });
        const passwords = pulumi.secret(args.passwords);
        const users = new RegistryUsers(`${name}-users`, {
            stackFile: args.stackFile,
            users: cfg.users,
            passwords: pulumi.output(passwords).apply((p) => Object.fromEntries(cfg.users.map((u) => [u, p[u]]))),
        }, { parent: this });

        // Every node trusts the CA (the document's certs.d copy), and resolves the name where DNS does not.
        const trustSteps = args.nodes.map((n) => {
            const step = new ProvisionStep(`${name}-trust-${n.host.name}`, {
                node: n.host,
                ...trustStep(cfg),
                data: pkiRes.trustBundle.apply((b) => b ?? ""),
                undoEnv: untrustEnv(cfg),
                ssh,
            }, { parent: this, dependsOn: n.after ?? [] });
            this.trust[n.host.name] = step;
            return step;
        });
        // The data directory on the nodes that may run the registry.
        const dataSteps = args.nodes.filter((n) => n.labels[cfg.placement.key] === cfg.placement.value).map((n) => new ProvisionStep(`${name}-data-${n.host.name}`, {
            node: n.host,
            ...dataDirStep(cfg),
            ssh,
        }, { parent: this, dependsOn: n.after ?? [] }));

        // Swarm secrets, named by content: a new certificate or user list is a new secret, the service
        // moves to it, then the old one is removed. The key's secret is named by its certificate.
        const b64 = (s: string) => Buffer.from(s ?? "", "utf8").toString("base64");
        const labels = { [LABEL_NAMESPACE]: stack };
        const certName = pulumi.unsecret(pkiRes.serverCert.apply((c) => contentName(stack, "tls_cert", c)));
        const keyName = pulumi.unsecret(pkiRes.serverCert.apply((c) => contentName(stack, "tls_key", c)));
        const htpasswdName = pulumi.unsecret(users.htpasswd.apply((h) => contentName(stack, "htpasswd", h)));
        const secretOpts = { parent: this, dependsOn: after };
        const certSecret = new SwarmSecret(`${name}-tls-cert`, { ...access, ...origin("host"), name: certName, labels, data: pkiRes.serverCert.apply(b64) }, secretOpts);
        const keySecret = new SwarmSecret(`${name}-tls-key`, { ...access, ...origin("host"), name: keyName, labels, data: pulumi.secret(pkiRes.serverKey.apply(b64)) }, secretOpts);
        const htpasswdSecret = new SwarmSecret(`${name}-htpasswd`, { ...access, ...origin("users"), name: htpasswdName, labels, data: pulumi.secret(users.htpasswd.apply(b64)) }, secretOpts);

        const spec = pulumi.all([certName, keyName, htpasswdName]).apply(([cert, key, htpasswd]) => registryServiceSpec(cfg, stack, { cert, key, htpasswd },
            cfg.movable ? args.nodes.filter((n) => n.labels[cfg.placement.key] === cfg.placement.value).map((n) => n.host.name) : []));
        this.service = new SwarmService(`${name}-service`, {
            ...access, ...origin(""),
            name: `${stack}_registry`,
            spec,
            // The registry cannot pull its own image from itself; a reboot must not depend on Docker Hub either.
            resolveImage: "never",
            ...(args.convergeTimeout !== undefined ? { convergeTimeout: args.convergeTimeout } : {}),
        }, {
            parent: this,
            protect: !!args.protect,
            // Nodes trust a renewed CA before the registry presents a certificate signed by it.
            dependsOn: [...after, certSecret, keySecret, htpasswdSecret, ...trustSteps, ...dataSteps],
        });

        this.endpoint = cfg.endpoint;
        const password = pulumi.output(passwords).apply((p) => p[cfg.pullUser]);
        this.registryAuth = pulumi.secret(pulumi.all([password]).apply(([pw]) => ({ serveraddress: cfg.endpoint, username: cfg.pullUser, password: pw })));
        this.pushAuth = pulumi.secret(pulumi.output(passwords).apply((p) => ({ serveraddress: cfg.endpoint, username: cfg.pushUser, password: p[cfg.pushUser] })));
        this.ready = new RegistryProbe(`${name}-ready`, {
            ...access,
            stackFile: args.stackFile,
            serveraddress: cfg.endpoint,
            username: cfg.pullUser,
            password: pulumi.secret(password),
            revision: pulumi.all([this.service.serviceId, certName, htpasswdName]).apply(([id, c, h]) => `${id}/${c}/${h}`),
        }, { parent: this, dependsOn: [this.service] });
        this.caCert = pkiRes.caCert;
        this.certificateNotAfter = pkiRes.notAfter;
        this.caNotAfter = pkiRes.caNotAfter;
        this.users = cfg.users;
        this.registerOutputs({ endpoint: this.endpoint, certificateNotAfter: this.certificateNotAfter, users: this.users });
    }
}

/** The nodes of the cluster as the Registry component takes them. */
export function registryNodes(cluster: ClusterConfig, hosts: Record<string, HostSpec>, provisioned: Record<string, pulumi.Resource[]> = {}): RegistryNode[] {
    return cluster.nodes.map((n) => ({ host: hosts[n.hostname], labels: n.labels, after: provisioned[n.hostname] ?? [] }));
}
