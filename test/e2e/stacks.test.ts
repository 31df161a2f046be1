/**
 * Issue 6 on the lab through the real engine: both stacks of the committed dev config converge (the
 * tutorial web app, and the DCCN data-stager on the lab's stand-in images, whose pages show the
 * stager reaching redis and reading its secret and the UI reaching the stager); the web app is used
 * in a real browser, and changes the way the document's 8.7-8.8 makes them: an image upgrade rolls
 * one service, scaling, moving tasks by constraint, a drained node's tasks moving away, and a stack
 * removed from config removed from the cluster.
 */
import { describe, test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import { spawnSync } from "child_process";
import {
    changeCollector, editDevConfig, engineEnv, labNodes, nodesOf, onNode, quiet, skipOrFail, useLabSuite, waitFor,
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

describe("application stacks on the lab (dev stack)", { concurrency: 1 }, () => {
    const suite = useLabSuite(before, after);

    const edit = (f: (stacks: any[], nodes: any[]) => void) =>
        editDevConfig(suite.dir, (c) => f(c["dccn-swarm:stacks"], nodesOf(c)));

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
        const ls = onNode("vm1", "docker service ls --filter label=com.docker.stack.namespace=data-stager --format '{{.Name}} {{.Replicas}} {{.Image}}'");
        assert.match(ls, /^data-stager_db 1\/1 dccn-lab\/redis:7$/m);
        assert.match(ls, /^data-stager_service 1\/1 dccn-lab\/stager:2$/m);
        assert.match(ls, /^data-stager_ui 1\/1 dccn-lab\/stager-ui:2$/m);
        assert.equal(onNode("vm1", "docker secret ls --filter name=drdr_admin_password --format '{{.Name}}'").trim(), "drdr_admin_password");
        // The tasks run on function=production nodes; the bind sources exist on every node.
        for (const svc of ["db", "service", "ui"]) {
            assert.ok(taskNodes(`data-stager_${svc}`).every((n) => n === "vm2" || n === "vm3"), `data-stager_${svc} on a production node`);
        }
        assert.equal(onNode("vm1", "test -d /srv/dccn-lab/stager/ui/db && test -d /srv/dccn-lab/project && echo yes").trim(), "yes");
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
        const chromium = "/usr/bin/chromium";
        if (!fs.existsSync(chromium) && skipOrFail(t, "chromium is not installed (npm run prereqs)")) return;
        const { chromium: pw } = await import("playwright-core");
        const url = `http://${addressOf(taskNodes("webapp_web")[0])}:8080/`;
        const browser = await pw.launch({
            executablePath: chromium,
            args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"],
        });
        try {
            const page = await browser.newPage();
            const name = `Ada ${Date.now()}`;
            // The service has converged, but MariaDB may still be initialising its data directory.
            for (let i = 0; ; i++) {
                await page.goto(url);
                if (await page.locator("#error").count() === 0) break;
                if (i > 30) assert.fail(`the app keeps reporting: ${await page.locator("#error").textContent()}`);
                await new Promise((r) => setTimeout(r, 2000));
            }
            await page.fill("#name", name);
            await page.fill("#email", "ada@example.org");
            await page.click("#register");
            await page.waitForSelector("#message");
            assert.match((await page.locator("#message").textContent()) ?? "", new RegExp(`Registered ${name}`));
            const names = await page.locator("#users td.name").allTextContents();
            assert.ok(names.includes(name), `${name} in the overview: ${names.join(", ")}`);
        } finally {
            await browser.close();
        }
    });

    test("an image tag change rolls the web service and nothing else", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        for (const n of labNodes()) onNode(n.name, "docker tag dccn-lab/php-apache:8 dccn-lab/php-apache:8-rev2");
        const dbVersion = serviceVersion("webapp_db");
        edit((stacks) => { stacks[0].overrides.images.web = "dccn-lab/php-apache:8-rev2"; });
        const c = changeCollector();
        await suite.stack.preview({ onEvent: c.onEvent, ...quiet });
        assert.deepEqual([...c.changes.entries()], [["webapp-web", "update"]]);
        await suite.stack.up(quiet);
        assert.equal(serviceImage("webapp_web"), "dccn-lab/php-apache:8-rev2");
        assert.equal(serviceVersion("webapp_db"), dbVersion, "the database service was not touched");
        await suite.stack.preview({ expectNoChanges: true, ...quiet });
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
        edit((stacks) => { stacks[0].env = { WEB_PLACEMENT: "node.labels.function == production" }; });
        await suite.stack.up(quiet);
        const where = taskNodes("webapp_web");
        assert.equal(where.length, 2);
        assert.ok(where.every((n) => n === "vm2" || n === "vm3"), `tasks on function=production nodes only: ${where}`);
    });

    test("draining a node moves its tasks away (verified, not assumed); active again, it takes tasks again", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        edit((stacks, nodes) => { stacks[0].overrides.replicas = { web: 1 }; nodes.find((n) => n.hostname === "vm3").availability = "drain"; });
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
