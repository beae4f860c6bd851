// The body every benchmark upstream (Node or nginx) answers with: one task, about 200 bytes of JSON.
export const UPSTREAM_BODY = JSON.stringify([
  {
    id: '0b7e6f8a-2f1c-4a57-9a57-6f0f6c1d2e3f',
    user_id: 'bench-user',
    title: 'Benchmark task',
    description: null,
    completed: false,
    created_at: '2026-01-01T00:00:00.000Z',
    updated_at: '2026-01-01T00:00:00.000Z'
  }
])
