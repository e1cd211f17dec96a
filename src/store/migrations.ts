// The database schema as numbered migrations, applied in order and recorded in `schema_migrations`.
// Never edit a migration that has shipped; add the next number. (Before the first release, a
// migration may still be changed in place.)

export interface Migration {
  readonly version: number
  readonly name: string
  readonly sql: string
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'block log',
    // One row per event in `events` (blocks, monitor matches and, with store.logQueries: all, allowed
    // queries). Strings that repeat across millions of events (groups, categories, actions, lists,
    // rules, list hashes, matched values) are stored once in `strings`, client addresses in
    // `clients`, query names in `names`, and referenced by id: a row is ~40 bytes, so 10M events
    // with their indexes stay well under 2 GB. `names.rname` is the name with its labels reversed
    // plus a trailing dot ('org.example.www.'), so "this name and every name below it" is one index
    // range. `value` is NULL when the matched value is the query name itself. `matched`: 0 none
    // (allowed), 1 qname, 2 cname, 3 address.
    sql: `
      CREATE TABLE strings (
        id INTEGER PRIMARY KEY,
        value TEXT NOT NULL UNIQUE
      );
      CREATE TABLE clients (
        id INTEGER PRIMARY KEY,
        addr TEXT NOT NULL UNIQUE
      );
      CREATE TABLE names (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        rname TEXT NOT NULL
      );
      CREATE INDEX names_rname ON names (rname);
      CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        client INTEGER NOT NULL,
        grp INTEGER NOT NULL,
        qname INTEGER NOT NULL,
        qtype INTEGER NOT NULL,
        matched INTEGER NOT NULL,
        value INTEGER,
        category INTEGER NOT NULL,
        action INTEGER NOT NULL,
        list INTEGER,
        line INTEGER,
        rule INTEGER,
        list_hash INTEGER,
        rcode INTEGER,
        latency_ms INTEGER
      );
      CREATE INDEX events_ts ON events (ts);
      CREATE INDEX events_client_ts ON events (client, ts);
      CREATE INDEX events_category_ts ON events (category, ts);
      CREATE INDEX events_qname_ts ON events (qname, ts);
      -- Roll-ups of block and monitor events (not allowed queries), kept by the writer in the same
      -- transaction as the rows, so statistics over months read thousands of rows, not millions.
      -- (Names and clients per hour would cost as many upserts as rows: top lists use days.)
      -- hour = floor(ts / 3600000), day = floor(ts / 86400000) (UTC).
      CREATE TABLE hour_category (
        hour INTEGER NOT NULL, category INTEGER NOT NULL, action INTEGER NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (hour, category, action)
      ) WITHOUT ROWID;
      CREATE TABLE day_qname (
        day INTEGER NOT NULL, category INTEGER NOT NULL, qname INTEGER NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (day, category, qname)
      ) WITHOUT ROWID;
      CREATE TABLE day_client (
        day INTEGER NOT NULL, category INTEGER NOT NULL, client INTEGER NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (day, category, client)
      ) WITHOUT ROWID;
    `
  },
  {
    version: 2,
    name: 'custom rules, category overrides and audit log',
    sql: `
      CREATE TABLE rules (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('block', 'allow')),
        rule TEXT NOT NULL,
        comment TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        expires_at INTEGER,
        UNIQUE (kind, rule)
      );
      CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        actor TEXT NOT NULL,
        client TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        before TEXT,
        after TEXT
      );
      CREATE INDEX audit_ts ON audit (ts);
      CREATE INDEX rules_expires_at ON rules (expires_at) WHERE expires_at IS NOT NULL;
      -- Category settings changed at run time (PATCH /api/v1/categories/:name), over the config's.
      -- grp '*' applies to every client group; otherwise a group name ('default' included).
      CREATE TABLE category_overrides (
        grp TEXT NOT NULL,
        category TEXT NOT NULL,
        enabled INTEGER,
        action TEXT,
        updated_at INTEGER NOT NULL,
        updated_by TEXT NOT NULL,
        PRIMARY KEY (grp, category)
      ) WITHOUT ROWID;
    `
  },
  {
    version: 3,
    name: 'hours per query name instead of the (qname, ts) index',
    // On a store of 10M events, keeping the (qname, ts) index in step halved the writer's speed.
    // A domain search now reads the hours the name was seen in (every event counts, allowed ones
    // included) and scans only those hours through the time index: one row per name and hour
    // instead of one index entry per event. The backfill reads the whole events table once
    // (seconds on millions of rows).
    sql: `
      CREATE TABLE name_hours (
        qname INTEGER NOT NULL, hour INTEGER NOT NULL,
        PRIMARY KEY (qname, hour)
      ) WITHOUT ROWID;
      INSERT OR IGNORE INTO name_hours (qname, hour) SELECT DISTINCT qname, ts / 3600000 FROM events;
      DROP INDEX IF EXISTS events_qname_ts;
    `
  },
  {
    version: 4,
    name: 'an hour for every name in the daily roll-up',
    // Retention deletes an interned name once it has no hour in name_hours (no event and no roll-up
    // refers to it then). Written together, every name of a day in day_qname has an hour of that
    // day, except in stores from before migration 3 whose events were deleted by row or size
    // limits while their roll-ups stayed: this gives those names the day's first hour.
    sql: `
      INSERT OR IGNORE INTO name_hours (qname, hour) SELECT DISTINCT qname, day * 24 FROM day_qname;
    `
  }
]

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version
