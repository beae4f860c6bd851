// What the starters need from a test: somewhere to register teardowns. A tap test is one; scripts that run
// outside tap use Teardowns.

/** The part of a tap Test the support library needs. */
export interface TestContext {
  teardown(fn: () => unknown): void
}

/** The type of a tap subtest's `t`. */
export type TapTest = Parameters<Parameters<typeof import('tap').default.test>[0]>[0]

/** A TestContext that collects teardowns and runs them last-in first-out (for scripts that run outside tap). */
export class Teardowns implements TestContext {
  private readonly fns: Array<() => unknown> = []
  teardown (fn: () => unknown): void { this.fns.push(fn) }
  async run (): Promise<void> {
    for (const fn of this.fns.reverse()) await fn()
  }
}
