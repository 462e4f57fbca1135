import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/globalSetup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: multi-process tests spawn workers of their own, so keep test files few at once.
    maxWorkers: 2,
    pool: "forks"
  }
})
