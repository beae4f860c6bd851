// Every statement on tasks carries WHERE user_id = $1 (or inserts it): ownership is enforced by the SQL itself,
// never by fetching a row and checking it afterwards. All values are bound parameters.
import type { Queryable } from './db.js'
import type { Cursor } from './cursor.js'
import type { Order, Sort, Status, Task } from './schemas.js'

interface TaskRow {
  id: string
  user_id: string
  title: string
  description: string | null
  completed: boolean
  created_at: Date | string
  updated_at: Date | string
}

const COLUMNS = 'id, user_id, title, description, completed, created_at, updated_at'

const iso = (v: Date | string): string => (v instanceof Date ? v : new Date(v)).toISOString()

export function toTask (row: TaskRow): Task {
  return {
    id: row.id,
    user_id: row.user_id,
    title: row.title,
    description: row.description,
    completed: row.completed,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at)
  }
}

// Whitelisted identifiers: the only pieces of SQL built from a request are picked from these maps.
const SORT_COLUMN: Record<Sort, { column: string; cast: string }> = {
  created: { column: 'created_at', cast: 'timestamptz' },
  updated: { column: 'updated_at', cast: 'timestamptz' },
  title: { column: 'title', cast: 'text' }
}

export interface ListOptions {
  status: Status
  sort: Sort
  order: Order
  limit: number
  after?: Cursor | undefined
}

export function sortKey (task: Task, sort: Sort): string {
  return sort === 'created' ? task.created_at : sort === 'updated' ? task.updated_at : task.title
}

export class TaskRepository {
  constructor (private readonly db: Queryable) {}

  /** Returns up to limit + 1 rows, so the caller can tell whether there is a next page. */
  async list (userId: string, opts: ListOptions): Promise<Task[]> {
    const { column, cast } = SORT_COLUMN[opts.sort]
    const dir = opts.order === 'desc' ? 'DESC' : 'ASC'
    const params: unknown[] = [userId]
    const where = ['user_id = $1']
    if (opts.status !== 'all') {
      params.push(opts.status === 'completed')
      where.push(`completed = $${params.length}`)
    }
    if (opts.after) {
      params.push(opts.after.key, opts.after.id)
      const cmp = opts.order === 'desc' ? '<' : '>'
      where.push(`(${column}, id) ${cmp} ($${params.length - 1}::${cast}, $${params.length}::uuid)`)
    }
    params.push(opts.limit + 1)
    const sql = `SELECT ${COLUMNS} FROM tasks WHERE ${where.join(' AND ')}
      ORDER BY ${column} ${dir}, id ${dir} LIMIT $${params.length}`
    const { rows } = await this.db.query<TaskRow>(sql, params)
    return rows.map(toTask)
  }

  async get (userId: string, id: string): Promise<Task | undefined> {
    const { rows } = await this.db.query<TaskRow>(`SELECT ${COLUMNS} FROM tasks WHERE user_id = $1 AND id = $2`, [userId, id])
    return rows[0] && toTask(rows[0])
  }

  async create (userId: string, input: { title: string; description: string | null; completed: boolean }): Promise<Task> {
    const { rows } = await this.db.query<TaskRow>(
      `INSERT INTO tasks (user_id, title, description, completed) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
      [userId, input.title, input.description, input.completed]
    )
    return toTask(rows[0] as TaskRow)
  }

  /** Sets the given fields (all of them for PUT, some for PATCH); undefined when the user has no such task. */
  async update (
    userId: string,
    id: string,
    fields: { title?: string | undefined; description?: string | null | undefined; completed?: boolean | undefined }
  ): Promise<Task | undefined> {
    const params: unknown[] = [userId, id]
    const sets: string[] = []
    for (const name of ['title', 'description', 'completed'] as const) {
      if (fields[name] !== undefined) {
        params.push(fields[name])
        sets.push(`${name} = $${params.length}`)
      }
    }
    sets.push('updated_at = now()')
    const { rows } = await this.db.query<TaskRow>(
      `UPDATE tasks SET ${sets.join(', ')} WHERE user_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
      params
    )
    return rows[0] && toTask(rows[0])
  }

  /** Flips completed in one statement (no read-modify-write race). */
  async toggle (userId: string, id: string): Promise<Task | undefined> {
    const { rows } = await this.db.query<TaskRow>(
      `UPDATE tasks SET completed = NOT completed, updated_at = now() WHERE user_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
      [userId, id]
    )
    return rows[0] && toTask(rows[0])
  }

  async delete (userId: string, id: string): Promise<boolean> {
    const { rows } = await this.db.query<{ id: string }>('DELETE FROM tasks WHERE user_id = $1 AND id = $2 RETURNING id', [userId, id])
    return rows.length === 1
  }
}
