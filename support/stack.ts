// The whole stack in one process over real sockets on 127.0.0.1: a task service (support/task-service.ts)
// and a gateway in front of it (support/gateway.ts), both torn down with the test.
import { startGateway, type RunningGateway, type StartGatewayOptions } from './gateway.js'
import { startTaskService, type RunningTaskService, type StartTaskServiceOptions } from './task-service.js'
import type { TestContext } from './test-context.js'

export interface StackOptions {
  /** The gateway's environment over the test defaults (TASK_SERVICE_URL is the task service's). */
  gatewayEnv?: Record<string, string>
  gateway?: Omit<StartGatewayOptions, 't'>
  taskService?: StartTaskServiceOptions
}

export interface Stack {
  taskService: RunningTaskService
  gateway: RunningGateway
}

export async function startStack (t: TestContext, options: StackOptions = {}): Promise<Stack> {
  const taskService = await startTaskService(t, options.taskService)
  const gateway = await startGateway({ TASK_SERVICE_URL: taskService.url, ...options.gatewayEnv }, { ...options.gateway, t })
  return { taskService, gateway }
}
