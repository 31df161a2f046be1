/**
 * lib/write-gate.ts: within a change (provider/main.ts's create, update, delete), reads go ahead
 * while the cluster lock is being taken; changes (scripts, Engine API requests but GET) wait for it;
 * a lock not had fails the call with the lock's error, whatever the call did.
 */
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { EventEmitter } from "node:events";
import { api, type Transport } from "../../lib/engine-transport";
import { changesAllowed, whileLocking } from "../../lib/write-gate";

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("changes wait for the cluster lock, reads do not", () => {
    it("a read runs at once, a change only once the lock is taken", async () => {
        const lock = deferred();
        const events: string[] = [];
        const call = whileLocking(lock.promise, async () => {
            events.push("read");
            await changesAllowed();
            events.push("change");
            return 7;
        });
        await tick();
        await tick();
        assert.deepEqual(events, ["read"], "the change waits while the lock is being taken");
        lock.resolve();
        assert.equal(await call, 7);
        assert.deepEqual(events, ["read", "change"]);
    });

    it("a lock not had fails the call with its error, and the change never runs", async () => {
        const lock = deferred();
        let changed = false;
        const call = whileLocking(lock.promise, async () => {
            await changesAllowed();
            changed = true;
        });
        lock.reject(new Error("the cluster lock is held by alice"));
        await assert.rejects(call, /held by alice/);
        assert.equal(changed, false);
    });

    it("the lock's error wins over the call's own, and over its success", async () => {
        const failedLock = Promise.reject(new Error("lock: timeout"));
        await assert.rejects(whileLocking(failedLock, async () => { throw new Error("read failed"); }), /lock: timeout/);
        await assert.rejects(whileLocking(Promise.reject(new Error("lock: timeout")), async () => 1), /lock: timeout/);
    });

    it("outside a change (diff, read, preview) nothing waits", async () => {
        let done = false;
        await changesAllowed().then(() => (done = true));
        assert.equal(done, true);
    });

    it("each change waits for its own lock: two calls side by side", async () => {
        const a = deferred();
        const b = deferred();
        const order: string[] = [];
        const ca = whileLocking(a.promise, async () => { await changesAllowed(); order.push("a"); });
        const cb = whileLocking(b.promise, async () => { await changesAllowed(); order.push("b"); });
        b.resolve();
        await cb;
        assert.deepEqual(order, ["b"]);
        a.resolve();
        await ca;
        assert.deepEqual(order, ["b", "a"]);
    });

    it("the Engine API client: a GET goes out while the lock is taken, a POST or DELETE after it", async () => {
        const dialled: string[] = [];
        const fake = {
            name: "vm1 (fake)",
            socket: "/var/run/docker.sock",
            run: async () => ({ code: 0, stdout: "", stderr: "" }),
            docker: {
                modem: {
                    dial(o: { method: string; path: string }, cb: (err: null, res: EventEmitter & { statusCode: number }) => void) {
                        dialled.push(`${o.method} ${o.path.split("?")[0]}`);
                        const res = Object.assign(new EventEmitter(), { statusCode: 200 });
                        cb(null, res);
                        setImmediate(() => { res.emit("data", Buffer.from("{}")); res.emit("end"); });
                    },
                },
            },
        } as unknown as Transport;
        const lock = deferred();
        const call = whileLocking(lock.promise, () => Promise.all([
            api(fake, { method: "GET", path: "/services/x" }),
            api(fake, { method: "POST", path: "/services/x/update?version=1", body: {} }),
            api(fake, { method: "DELETE", path: "/secrets/y" }),
        ]));
        for (let i = 0; i < 5; i++) await tick();
        assert.deepEqual(dialled, ["GET /v1.41/services/x"]);
        lock.resolve();
        await call;
        assert.deepEqual(dialled.sort(), ["DELETE /v1.41/secrets/y", "GET /v1.41/services/x", "POST /v1.41/services/x/update"]);
    });
});
