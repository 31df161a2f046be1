/**
 * Changes wait for the cluster lock, reads need not: a create, update or delete of the provider
 * runs with the lock being taken beside it (provider/main.ts), so that its reads (finding the
 * manager, inspecting what it changes, asking the registry for a digest) overlap the lock's round
 * trips. Everything that can change the cluster waits here first: an Engine API request other
 * than GET (lib/engine-transport.ts) and every script run on a node (lib/ssh.ts runScript).
 */
import { AsyncLocalStorage } from "async_hooks";

const pending = new AsyncLocalStorage<Promise<unknown>>();

/**
 * Runs `work` with its changes held until `lock` resolves; its reads go ahead. Fails with the
 * lock's error when the lock is not had, whatever `work` did (it changed nothing without it).
 */
export async function whileLocking<T>(lock: Promise<unknown>, work: () => Promise<T>): Promise<T> {
    lock.catch(() => undefined); // observed below; a change waiting on it gets the same error
    let result: T;
    try {
        result = await pending.run(lock, work);
    } catch (e) {
        await lock; // the lock's error first: it is why nothing changed
        throw e;
    }
    await lock;
    return result;
}

/** Before a change: waits for the lock being taken for this call, if any. */
export async function changesAllowed(): Promise<void> {
    const lock = pending.getStore();
    if (lock) await lock;
}
