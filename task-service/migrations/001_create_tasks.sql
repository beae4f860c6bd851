-- Tasks, owned by the user id the gateway vouches for (X-User-Id).
-- Timestamps keep millisecond precision so that they round-trip exactly through JavaScript Dates,
-- which keyset pagination cursors rely on.
CREATE TABLE tasks (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id text NOT NULL CHECK (char_length(user_id) BETWEEN 1 AND 255),
  title text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
  description text CHECK (description IS NULL OR char_length(description) <= 1000),
  completed boolean NOT NULL DEFAULT false,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now()
);

-- One index per list order, each led by user_id: a user's list is an index range scan,
-- and the keyset condition (sort key, id) > (cursor) continues inside that range.
CREATE INDEX tasks_user_created_idx ON tasks (user_id, created_at, id);
CREATE INDEX tasks_user_updated_idx ON tasks (user_id, updated_at, id);
CREATE INDEX tasks_user_title_idx ON tasks (user_id, title, id);
