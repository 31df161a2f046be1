import { test } from "node:test";
import * as assert from "node:assert/strict";
import { checkManagerCount, faultTolerance, planManagerTransition, quorumSize, QuorumError } from "../../lib/quorum";

test("quorum size and fault tolerance follow Raft's majority rule", () => {
    const table: [number, number, number][] = [[1, 1, 0], [2, 2, 0], [3, 2, 1], [4, 3, 1], [5, 3, 2], [7, 4, 3]];
    for (const [n, q, f] of table) {
        assert.equal(quorumSize(n), q, `quorum of ${n}`);
        assert.equal(faultTolerance(n), f, `fault tolerance of ${n}`);
    }
    assert.equal(faultTolerance(0), 0);
    assert.throws(() => quorumSize(-1), RangeError);
});

test("no manager is an error, an even count a warning, an odd count fine", () => {
    assert.equal(checkManagerCount(0)[0].level, "error");
    const even = checkManagerCount(4);
    assert.equal(even.length, 1);
    assert.equal(even[0].level, "warning");
    assert.match(even[0].message, /odd number/);
    assert.deepEqual(checkManagerCount(3), []);
});

test("demoting a majority of managers at once is refused", () => {
    assert.throws(() => planManagerTransition(["vm1", "vm2", "vm3"], ["vm1"]), (e: Error) =>
        e instanceof QuorumError && /2 of 3 managers/.test(e.message) && /at most 1 per/.test(e.message));
    assert.throws(() => planManagerTransition(["a", "b"], ["c"]), QuorumError);
    assert.throws(() => planManagerTransition(["vm1"], []), /no manager/);
});

test("one demotion of three is planned; promotions run before demotions and quorum holds", () => {
    const p = planManagerTransition(["vm1", "vm2", "vm3"], ["vm1", "vm3"]);
    assert.deepEqual(p.steps, [{ action: "demote", node: "vm2" }]);
    assert.deepEqual(p.counts, [3, 2]);
    const swap = planManagerTransition(["vm1", "vm2", "vm3"], ["vm1", "vm2", "vm4"]);
    assert.deepEqual(swap.steps.map((s) => s.action), ["promote", "demote"]);
    assert.deepEqual(swap.counts, [3, 4, 3]);
    // Every intermediate manager set keeps a majority of the one before it.
    for (let i = 1; i < swap.counts.length; i++) assert.ok(swap.counts[i] >= quorumSize(swap.counts[i - 1]));
    const grow = planManagerTransition(["vm1"], ["vm1", "vm2", "vm3"]);
    assert.deepEqual(grow.steps, [{ action: "promote", node: "vm2" }, { action: "promote", node: "vm3" }]);
});
