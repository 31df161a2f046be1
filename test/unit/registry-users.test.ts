/** htpasswd from the configured users: bcrypt, the same file while nothing changed, one update per change. */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as bcrypt from "bcryptjs";
import { buildHtpasswd, usersProvider, usersToHash, UsersInputs } from "../../lib/registry-providers";

const IN = (users: string[], passwords: Record<string, string>): UsersInputs => ({ stackFile: "Pulumi.test.yaml", users, passwords });

test("bcrypt hashes the registry accepts, in the configured order", () => {
    const { hashes, htpasswd } = buildHtpasswd(["alice", "bob"], { alice: "pw-alice", bob: "pw-bob" }, {}, 4);
    const lines = htpasswd.trimEnd().split("\n");
    assert.deepEqual(lines.map((l) => l.split(":")[0]), ["alice", "bob"]);
    for (const [u, pw] of [["alice", "pw-alice"], ["bob", "pw-bob"]]) {
        assert.match(hashes[u], /^\$2[aby]\$04\$/);
        assert.ok(bcrypt.compareSync(pw, hashes[u]));
        assert.ok(!htpasswd.includes(pw), "no password in the file");
    }
});

test("deterministic across runs: hashes kept while the passwords match; only a changed user is hashed anew", () => {
    const pw = { alice: "pw-alice", bob: "pw-bob" };
    const first = buildHtpasswd(["alice", "bob"], pw, {}, 4);
    const again = buildHtpasswd(["alice", "bob"], pw, first.hashes, 4);
    assert.equal(again.htpasswd, first.htpasswd, "same file, so the same swarm secret and no service update");
    assert.deepEqual(usersToHash(first.hashes, ["alice", "bob"], pw), []);
    const changed = buildHtpasswd(["alice", "bob"], { ...pw, bob: "new-bob" }, first.hashes, 4);
    assert.equal(changed.hashes.alice, first.hashes.alice);
    assert.notEqual(changed.hashes.bob, first.hashes.bob);
    assert.deepEqual(usersToHash(first.hashes, ["alice", "bob"], { ...pw, bob: "new-bob" }), ["bob"]);
    // Adding carol and removing alice: bob's line stays as it was.
    const swapped = buildHtpasswd(["bob", "carol"], { bob: "pw-bob", carol: "pw-carol" }, first.hashes, 4);
    assert.deepEqual(swapped.htpasswd.trimEnd().split("\n").map((l) => l.split(":")[0]), ["bob", "carol"]);
    assert.equal(swapped.hashes.bob, first.hashes.bob);
});

test("the provider: no diff when unchanged, a diff for a new password, an added or a removed user", async () => {
    const pw = { alice: "pw-alice", bob: "pw-bob" };
    const created = await usersProvider.create(IN(["alice", "bob"], pw));
    const outs = created.outs;
    assert.ok(!JSON.stringify(outs).includes("pw-alice"), "outputs hold hashes, not passwords");
    assert.equal((await usersProvider.diff!(created.id, outs, IN(["alice", "bob"], pw))).changes, false);
    assert.equal((await usersProvider.diff!(created.id, outs, IN(["alice", "bob"], { ...pw, alice: "other" }))).changes, true);
    assert.equal((await usersProvider.diff!(created.id, outs, IN(["alice", "bob", "carol"], { ...pw, carol: "c" }))).changes, true);
    assert.equal((await usersProvider.diff!(created.id, outs, IN(["bob"], pw))).changes, true);
    const updated = (await usersProvider.update!(created.id, outs, IN(["bob", "carol"], { bob: "pw-bob", carol: "pw-carol" }))).outs;
    assert.deepEqual(updated.users, ["bob", "carol"]);
    assert.equal(updated.hashes.bob, outs.hashes.bob);
    assert.equal((await usersProvider.diff!(created.id, updated, IN(["bob", "carol"], { bob: "pw-bob", carol: "pw-carol" }))).changes, false);
});

test("check: a missing, too long or multi-line password is refused without showing it", async () => {
    const long = "x".repeat(73);
    const r = await usersProvider.check!({} as UsersInputs, IN(["alice", "bob", "carol"], { alice: long, bob: "a\nb" }));
    const reasons = r.failures!.map((f) => f.reason);
    assert.equal(reasons.length, 3);
    assert.match(reasons[0], /Pulumi\.test\.yaml: dccn-swarm:registryPasswords\.alice: .*longer than 72 bytes/);
    assert.match(reasons[1], /registryPasswords\.bob: .*line break/);
    assert.match(reasons[2], /registryPasswords\.carol: user carol has no password/);
    assert.ok(!reasons.join().includes(long));
});

test("the last run's passwords (the state's old inputs) keep their hashes without bcrypt; a changed one is compared and hashed anew", async () => {
    const pw = { alice: "pw-alice", bob: "pw-bob" };
    const created = await usersProvider.create(IN(["alice", "bob"], pw));
    // As the provider hands the state to diff and update: the outputs over the old inputs.
    const state = { ...IN(["alice", "bob"], pw), ...created.outs };
    // A kept hash that bcrypt could not even read: only a compare would see it, so none ran.
    const unreadable = { ...state, hashes: { ...state.hashes, alice: "not-a-bcrypt-hash" } };
    assert.equal((await usersProvider.diff!(created.id, unreadable, IN(["alice", "bob"], pw))).changes, false);
    assert.deepEqual(usersToHash(unreadable.hashes, ["alice", "bob"], pw, pw), []);
    // Without the last run's passwords (state written before they were inputs) the compare decides, as before.
    assert.deepEqual(usersToHash(unreadable.hashes, ["alice", "bob"], pw), ["alice"]);
    // A changed password is compared and rehashed; the other user's line stays.
    assert.equal((await usersProvider.diff!(created.id, state, IN(["alice", "bob"], { ...pw, bob: "new-bob" }))).changes, true);
    const updated = (await usersProvider.update!(created.id, state, IN(["alice", "bob"], { ...pw, bob: "new-bob" }))).outs;
    assert.equal(updated.hashes.alice, state.hashes.alice);
    assert.ok(bcrypt.compareSync("new-bob", updated.hashes.bob));
});
