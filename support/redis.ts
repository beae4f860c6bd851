// The Redis the shared-limit tests use (TEST_REDIS_URL, else the local default), and whether it answers:
// a test that needs it is skipped with a reason instead of failing on a machine without Redis.
import { Redis } from 'ioredis'

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

/** True when a PING at `url` gets PONG within about half a second; never throws, never retries. */
export async function redisAnswers (url: string = TEST_REDIS_URL): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, connectTimeout: 500, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null })
  r.on('error', () => {})
  try {
    await r.connect()
    return (await r.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    r.disconnect()
  }
}
