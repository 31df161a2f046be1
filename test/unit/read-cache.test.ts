// lib/read-cache.ts: the reads of one refresh share a manager's lists and searches.
import { strict as assert } from "node:assert";
import { beforeEach, describe, it } from "node:test";
import { forgetShared, keyOf, shared } from "../../lib/read-cache";

describe("read cache", () => {
    beforeEach(() => forgetShared());

    it("calls of the same key within the TTL share one answer; another key asks again", async () => {
        let calls = 0;
        const ask = () => shared("k", async () => ++calls);
        const answers = await Promise.all([ask(), ask(), ask()]);
        assert.deepEqual(answers, [1, 1, 1]);
        assert.equal(calls, 1);
        assert.equal(await shared("other", async () => ++calls), 2);
    });

    it("after the TTL the next call asks again", async () => {
        let calls = 0;
        await shared("k", async () => ++calls, 20);
        await new Promise((r) => setTimeout(r, 30));
        assert.equal(await shared("k", async () => ++calls, 20), 2);
    });

    it("a failure is not kept: the next call asks again", async () => {
        await assert.rejects(shared("k", async () => { throw new Error("no manager"); }), /no manager/);
        assert.equal(await shared("k", async () => "ok"), "ok");
    });

    it("keys of connection details are hashes: no key material in them", () => {
        const k = keyOf([{ privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----SECRET" }]);
        assert.match(k, /^[0-9a-f]{32}$/);
        assert.notEqual(k, keyOf([{ privateKey: "other" }]));
    });
});
