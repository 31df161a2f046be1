/**
 * Issue 6 and 16 on the lab through the real engine: both stacks of the committed dev config
 * converge (the tutorial web app, its web image built by the program and pulled from the lab's
 * registry, and the DCCN data-stager on the lab's stand-in images, built the same way, whose pages
 * show the stager reaching redis and reading its secret and the UI reaching the stager); the web app
 * is used in a real browser; a failover drill stops the nodes running the web app and its database
 * (both come back elsewhere, pulled from the registry, with their data from the shared storage) and
 * moves the registry by its label; an edit of the app's code rolls exactly its image and service;
 * and changes the way the document's 8.7-8.8 makes them: scaling, moving tasks by constraint, a
 * drained node's tasks moving away, and a stack removed from config removed from the cluster.
 */
import { describe, test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { spawnSync } from "child_process";
import type { Page } from "playwright-core";
import {
    changeCollector, convergeToCommitted, editDevConfig, engineEnv, labEngine, labNodes, nodeContainer, nodeTable, nodesOf, onNode, quiet, runOnNode, skipOrFail, useLabSuite, waitFor,
} from "./support";

/** Where the service's running tasks are: node hostnames, sorted. */
function taskNodes(service: string): string[] {
    return onNode("vm1", `docker service ps ${service} --filter desired-state=running --format '{{.Node}} {{.CurrentState}}'`)
        .trim().split("\n").filter((l) => / Running /.test(` ${l} `)).map((l) => l.split(" ")[0]).sort();
}

function serviceImage(service: string): string {
    return onNode("vm1", `docker service inspect ${service} --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}'`).trim();
}

function serviceVersion(service: string): number {
    return Number(onNode("vm1", `docker service inspect ${service} --format '{{.Version.Index}}'`).trim());
}

function addressOf(node: string): string {
    return labNodes().find((n) => n.name === node)!.address;
}

async function httpGet(url: string): Promise<string> {
    const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    return r.text();
}

/** The web app's address: the node that runs its task, on the host-mode port. */
function webUrl(): string {
    return `http://${addressOf(taskNodes("webapp_web")[0])}:8080/`;
}

const CHROMIUM = "/usr/bin/chromium";

/** Runs `fn` with a page of a real browser (chromium through playwright). */
async function withBrowser(fn: (page: Page) => Promise<void>): Promise<void> {
    const { chromium: pw } = await import("playwright-core");
    const browser = await pw.launch({
        executablePath: CHROMIUM,
        args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"],
    });
    try {
        await fn(await browser.newPage());
    } finally {
        await browser.close();
    }
}

/** Opens the app; the service has converged, but the database may still be initialising (or recovering) its data. */
async function openApp(page: Page): Promise<void> {
    for (let i = 0; ; i++) {
        const ok = await page.goto(webUrl()).then(() => true, () => false);
        if (ok && await page.locator("#error").count() === 0 && await page.locator("#users").count() > 0) return;
        if (i > 45) assert.fail(`the app keeps reporting: ${ok ? await page.locator("#error").textContent() : "no answer"}`);
        await new Promise((r) => setTimeout(r, 2000));
    }
}

/** Registers `name` through the form; the overview lists it. */
async function register(page: Page, name: string): Promise<void> {
    await openApp(page);
    await page.fill("#name", name);
    await page.fill("#email", "ada@example.org");
    await page.click("#register");
    await page.waitForSelector("#message");
    assert.match((await page.locator("#message").textContent()) ?? "", new RegExp(`Registered ${name}`));
    assert.ok((await listedUsers(page)).includes(name), `${name} in the overview`);
}

async function listedUsers(page: Page): Promise<string[]> {
    return page.locator("#users td.name").allTextContents();
}

describe("application stacks on the lab (dev stack)", { concurrency: 1 }, () => {
    const suite = useLabSuite(before, after);

    const edit = (f: (stacks: any[], nodes: any[]) => void) =>
        editDevConfig(suite.dir, (c) => f(c["dccn-swarm:stacks"], nodesOf(c)));

    /**
     * The manifest digest the lab's registry serves for `repo:tag`, asked from vm1 as a client does
     * (registry.lab as the nodes resolve it, its CA, the pull user's password on curl's standard input).
     */
    async function registryDigest(repo: string, tag: string): Promise<string> {
        const passwords = JSON.parse((await suite.stack.getConfig("dccn-swarm:registryPasswords")).value);
        const headers = onNode("vm1", "curl -sS --fail --config - -o /dev/null -D - " +
            "-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' --cacert /etc/docker/certs.d/registry.lab:5000/ca.crt " +
            `https://registry.lab:5000/v2/${repo}/manifests/${tag}`, { input: `user = "puller:${passwords.puller}"\n` });
        return /^docker-content-digest:\s*(\S+)/im.exec(headers)?.[1] ?? `no digest in: ${headers}`;
    }

    test("the webapp stack converges; preview right after shows no changes", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        assert.deepEqual(taskNodes("webapp_db").length, 1);
        assert.deepEqual(taskNodes("webapp_web").length, 1);
        const ls = onNode("vm1", "docker service ls --format '{{.Name}} {{.Replicas}}'");
        assert.match(ls, /^webapp_db 1\/1$/m);
        assert.match(ls, /^webapp_web 1\/1$/m);
        const labels = onNode("vm1", "docker network inspect webapp_default --format '{{json .Labels}}'");
        assert.match(labels, /"com.docker.stack.namespace":"webapp"/);
        await suite.stack.preview({ expectNoChanges: true, ...quiet });
    });

    test("the webapp's database passwords are swarm secrets: the app logs in with them, no spec or state holds them", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        const secrets = onNode("vm1", "docker secret ls --format '{{.Name}}'").trim().split("\n");
        for (const name of ["webapp_db_password", "webapp_db_root_password"]) assert.ok(secrets.includes(name), `secret ${name} made: ${secrets}`);
        const passwords = await Promise.all(["webappDbPassword", "webappDbRootPassword"].map(async (k) => (await suite.stack.getConfig(`dccn-swarm:${k}`)).value));
        for (const pw of passwords) assert.ok(pw.length >= 16, "stack-init generated the dev database passwords");
        // The state as stored: the CLI's export (the Automation API's exportStack decrypts secrets).
        const exported = spawnSync("pulumi", ["stack", "export", "--stack", "dev"], { cwd: suite.dir, env: engineEnv(), encoding: "utf8", maxBuffer: 256 << 20 });
        assert.equal(exported.status, 0, exported.stderr);
        const state = exported.stdout;
        assert.ok(state.includes("webapp-external-secret-webapp_db_password"), "the export holds the provided secret");
        for (const service of ["webapp_db", "webapp_web"]) {
            const inspect = onNode("vm1", `docker service inspect ${service}`);
            const env: string[] = JSON.parse(onNode("vm1", `docker service inspect ${service} --format '{{json .Spec.TaskTemplate.ContainerSpec.Env}}'`));
            assert.deepEqual(env.filter((e) => /PASSWORD=/.test(e)), [], `${service}: no password as an environment value`);
            assert.ok(env.some((e) => /PASSWORD_FILE=\/run\/secrets\//.test(e)), `${service}: reads its password from a secret: ${env}`);
            for (const pw of passwords) assert.ok(!inspect.includes(pw), `${service}'s spec does not hold a password`);
        }
        for (const pw of passwords) {
            assert.ok(!state.includes(pw), "pulumi stack export does not hold a database password in plain text");
            assert.ok(!state.includes(Buffer.from(pw).toString("base64")), "nor base64-encoded");
        }
        // The app reached the database with the password from its secret (no error on its page).
        const url = `http://${addressOf(taskNodes("webapp_web")[0])}:8080/`;
        let page = "";
        for (const until = Date.now() + 120_000; Date.now() < until; await new Promise((r) => setTimeout(r, 2000))) {
            page = await httpGet(url).catch((e) => String(e));
            if (/<h1>User registration<\/h1>/.test(page) && !/id="error"/.test(page)) break;
        }
        assert.match(page, /<h1>User registration<\/h1>/);
        if (/id="error"/.test(page)) {
            // What the database went through (its tasks, and its entrypoint's log on this node), to tell why.
            const history = onNode("vm1", "docker service ps webapp_db --no-trunc --format '{{.Node}} {{.CurrentState}} {{.Error}}'; " +
                "docker ps -aq -f label=com.docker.swarm.service.name=webapp_db | head -3 | xargs -r -n1 docker logs 2>&1 | grep -E 'Entrypoint|ERROR' | tail -20 || true");
            assert.fail(`the page shows no database error: ${page.slice(0, 400)}\n${history}`);
        }
    });

    test("the data-stager stack converges on the lab's images, with its external secret and host paths made", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        const ls = onNode("vm1", "docker service ls --filter label=com.docker.stack.namespace=data-stager --format '{{.Name}} {{.Replicas}}'");
        for (const svc of ["db", "service", "ui"]) assert.match(ls, new RegExp(`^data-stager_${svc} 1/1$`, "m"));
        // The lab's stand-ins, built by the program and run as pushed to the lab's registry (tag and digest).
        assert.match(serviceImage("data-stager_db"), /^registry\.lab:5000\/redis@sha256:[0-9a-f]{64}$/);
        assert.match(serviceImage("data-stager_service"), /^registry\.lab:5000\/stager:2\.0\.0@sha256:[0-9a-f]{64}$/);
        assert.match(serviceImage("data-stager_ui"), /^registry\.lab:5000\/stager-ui:2\.0\.0@sha256:[0-9a-f]{64}$/);
        assert.equal(onNode("vm1", "docker secret ls --filter name=drdr_admin_password --format '{{.Name}}'").trim(), "drdr_admin_password");
        // The tasks run on function=production nodes; the bind sources exist on every node.
        for (const svc of ["db", "service", "ui"]) {
            assert.ok(taskNodes(`data-stager_${svc}`).every((n) => n === "vm2" || n === "vm3"), `data-stager_${svc} on a production node`);
        }
        // Its data under the shared storage: made once, seen on every node.
        for (const n of ["vm1", "vm2", "vm3"]) assert.equal(onNode(n, "test -d /mnt/docker/data/stager/ui/db && test -d /srv/dccn-lab/project && echo yes").trim(), "yes", n);
        await suite.stack.preview({ expectNoChanges: true, ...quiet });
    });

    test("the stager UI answers over HTTP from its node; the stager reaches redis and reads its secret", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        // Host-mode ports (the lab has no routing mesh): on the node that runs the task.
        const stager = await httpGet(`http://${addressOf(taskNodes("data-stager_service")[0])}:3100/`);
        assert.match(stager, /^dccn-lab stager stand-in: running/m);
        assert.match(stager, /^check redis: ok \(stagerdb4ui:6379 answered PONG\)$/m);
        assert.match(stager, /^check secret: ok \(\/run\/secrets\/drdr_admin_password readable, \d+ bytes\)$/m);
        // The UI's first look at the stager may come while the service's DNS entry settles.
        let ui = "";
        for (let i = 0; i < 15 && !/^check stager: ok/m.test(ui); i++) {
            if (i > 0) await new Promise((r) => setTimeout(r, 2000));
            ui = await httpGet(`http://${addressOf(taskNodes("data-stager_ui")[0])}:3080/`).catch((e) => String(e));
        }
        assert.match(ui, /^dccn-lab stager-ui stand-in: running/m);
        assert.match(ui, /^check stager: ok \(http:\/\/stager4ui:3000\/: dccn-lab stager stand-in: running/m);
    });

    test("in a real browser: a user registered through the form shows in the overview", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        if (!fs.existsSync(CHROMIUM) && skipOrFail(t, "chromium is not installed (npm run prereqs)")) return;
        await withBrowser((page) => register(page, `Ada ${Date.now()}`));
    });

    test("failover drill: the nodes running webapp_web and webapp_db stop; both run again elsewhere, pulled from the registry, " +
        "the users registered before still listed; the registry, moved by its label, serves the same images", { timeout: 900_000 }, async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        if (!fs.existsSync(CHROMIUM) && skipOrFail(t, "chromium is not installed (npm run prereqs)")) return;
        const name = `Grace ${Date.now()}`;
        await withBrowser((page) => register(page, name));
        // vm1, the lab's only manager, stays up: it may run them too once the others are gone.
        editDevConfig(suite.dir, (c) => { nodesOf(c).find((n) => n.hostname === "vm1").labels.function = "production"; });
        await suite.stack.up(quiet);
        const stopped = [...new Set([...taskNodes("webapp_web"), ...taskNodes("webapp_db")])];
        assert.ok(stopped.length > 0 && !stopped.includes("vm1"), `web and db on production workers: ${stopped}`);
        const images = { webapp_web: serviceImage("webapp_web"), webapp_db: serviceImage("webapp_db") };
        for (const img of Object.values(images)) assert.match(img, /^registry\.lab:5000\/.+@sha256:[0-9a-f]{64}$/);
        // The survivors do not have the images (vm1 built them): whoever runs them next must pull them.
        const survivors = labNodes().map((n) => n.name).filter((n) => !stopped.includes(n));
        for (const n of survivors) {
            // Stopped task containers of earlier tests keep their image; a node that ran a task has the
            // image by its digest only (pulled as <repo>@<digest>, no tag).
            onNode(n, "docker container prune -f >/dev/null");
            for (const img of Object.values(images)) {
                const byDigest = img.replace(/:[^:/@]+@/, "@");
                onNode(n, `{ docker image ls -q --filter reference='${img.split("@")[0]}'; docker image inspect --format '{{.Id}}' '${byDigest}'; } 2>/dev/null ` +
                    "| sort -u | xargs -r docker image rm -f >/dev/null 2>&1 || true");
                assert.notEqual(runOnNode(n, `docker image inspect '${img}' >/dev/null 2>&1`).status, 0, `${img} not on ${n} before the drill`);
            }
        }
        try {
            for (const n of stopped) labEngine("stop", "-t", "10", nodeContainer(n));
            await waitFor("webapp_web and webapp_db running on other nodes", () => (["webapp_web", "webapp_db"] as const).every((svc) => {
                const where = taskNodes(svc);
                return where.length === 1 && !stopped.includes(where[0]);
            }), 300);
            for (const [svc, img] of Object.entries(images)) {
                const node = taskNodes(svc)[0];
                // Pulled, not built there: the image carries the registry's digest.
                const digests = onNode(node, `docker image inspect --format '{{json .RepoDigests}}' '${img}'`);
                assert.ok(digests.includes(img.replace(/:[^:/@]+@/, "@")), `${svc} on ${node} runs ${img} pulled from the registry: ${digests}`);
            }
            await withBrowser(async (page) => {
                await openApp(page);
                assert.ok((await listedUsers(page)).includes(name), `${name}, registered before the drill, still listed`);
            });
        } finally {
            for (const n of stopped) labEngine("start", nodeContainer(n));
            await waitFor("the stopped nodes back in the swarm", () => nodeTable().filter((r) => stopped.includes(r.hostname)).every((r) => r.status === "Ready"), 240);
        }
        // The registry to another node by its label (and the name's pinned address): same images there.
        const digestBefore = await registryDigest("demo_user_register", "1.0");
        assert.equal(`sha256:${images.webapp_web.split("@sha256:")[1]}`, digestBefore);
        const to = stopped[0];
        editDevConfig(suite.dir, (c) => {
            for (const n of nodesOf(c)) {
                if (n.hostname === to) n.labels.registry = "true";
                else delete n.labels.registry;
            }
            c["dccn-swarm:registry"].address = addressOf(to);
        });
        await suite.stack.up(quiet);
        assert.deepEqual(taskNodes("registry_registry"), [to]);
        assert.equal(await registryDigest("demo_user_register", "1.0"), digestBefore, "the moved registry serves the same image");
        assert.match(await registryDigest("lab/mariadb", "10"), /^sha256:[0-9a-f]{64}$/);
        // And back, as committed.
        await convergeToCommitted(suite.stack, suite.dir);
        assert.deepEqual(taskNodes("registry_registry"), ["vm1"]);
        await suite.stack.preview({ expectNoChanges: true, ...quiet });
    });

    test("an edit in the web app's code: preview shows the image and the web service changing, nothing else; up serves the new page; a second up changes nothing", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        const file = path.join(suite.dir, "stacks", "webapp", "app", "index.php");
        const original = fs.readFileSync(file, "utf8");
        const marker = `revision ${Date.now()}`;
        assert.ok(original.includes("<h1>User registration</h1>"));
        fs.writeFileSync(file, original.replace("<h1>User registration</h1>", `<h1>User registration</h1><!-- ${marker} -->`));
        try {
            const dbVersion = serviceVersion("webapp_db");
            const imageBefore = serviceImage("webapp_web");
            const c = changeCollector();
            await suite.stack.preview({ onEvent: c.onEvent, ...quiet });
            assert.deepEqual([...c.changes.entries()].sort(), [["webapp-image-web", "update"], ["webapp-web", "update"]]);
            await suite.stack.up(quiet);
            const imageAfter = serviceImage("webapp_web");
            assert.notEqual(imageAfter, imageBefore);
            assert.match(imageAfter, /^registry\.lab:5000\/demo_user_register:1\.0@sha256:/);
            assert.ok((await httpGet(webUrl())).includes(marker), "the new page is served");
            assert.equal(serviceVersion("webapp_db"), dbVersion, "the database service was not touched");
            const again = await suite.stack.up(quiet);
            assert.deepEqual(Object.keys(again.summary.resourceChanges ?? {}), ["same"], JSON.stringify(again.summary.resourceChanges));
        } finally {
            fs.writeFileSync(file, original);
        }
    });

    test("scaling the web service to 2 runs a task on two nodes, each answering on its own address", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        edit((stacks) => { stacks[0].overrides.replicas = { web: 2 }; });
        await suite.stack.up(quiet);
        const where = taskNodes("webapp_web");
        assert.equal(where.length, 2);
        assert.notEqual(where[0], where[1], "host-mode port 8080: one task per node");
        for (const n of where) assert.match(await httpGet(`http://${addressOf(n)}:8080/`), /User registration/);
    });

    test("a placement constraint moves the tasks (document 8.8)", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        edit((stacks) => { stacks[0].env.WEB_PLACEMENT = "node.hostname != vm3"; });
        await suite.stack.up(quiet);
        assert.deepEqual(taskNodes("webapp_web"), ["vm1", "vm2"], "moved off vm3, one per node (host-mode port)");
    });

    test("draining a node moves its tasks away (verified, not assumed); active again, it takes tasks again", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        edit((stacks, nodes) => {
            stacks[0].env.WEB_PLACEMENT = "node.labels.function == production";
            stacks[0].overrides.replicas = { web: 1 };
            nodes.find((n) => n.hostname === "vm3").availability = "drain";
        });
        await suite.stack.up(quiet);
        assert.deepEqual(taskNodes("webapp_web"), ["vm2"]);
        assert.equal(onNode("vm1", "docker node ps vm3 --filter desired-state=running -q").trim(), "");
        edit((_s, nodes) => { delete nodes.find((n) => n.hostname === "vm3").availability; });
        await suite.stack.up(quiet);
        onNode("vm1", "docker service update --force --detach webapp_web >/dev/null"); // the document's rebalance
        await waitFor("web running again", () => taskNodes("webapp_web").length === 1);
    });

    test("a stack removed from config is removed from the cluster, services and networks", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        edit((stacks) => { stacks.splice(0, 1); });
        const c = changeCollector();
        await suite.stack.preview({ onEvent: c.onEvent, ...quiet });
        assert.equal(c.changes.get("webapp-web"), "delete");
        assert.equal(c.changes.get("webapp-db"), "delete");
        await suite.stack.up(quiet);
        assert.equal(onNode("vm1", "docker service ls --filter label=com.docker.stack.namespace=webapp -q").trim(), "");
        assert.equal(onNode("vm1", "docker network ls --filter label=com.docker.stack.namespace=webapp -q").trim(), "");
        assert.match(onNode("vm1", "docker service ls --format '{{.Name}}'"), /^data-stager_ui$/m, "the other stack stays");
    });
});
