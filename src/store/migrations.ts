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
    // Strings that repeat across millions of events (clients, names, categories, rules) are stored
    // once in `strings` and referenced by id: rows stay ~40 bytes, so 10M events fit well under 2 GB.
    // `names.rname` is the name with its labels reversed ('org.example.www'), so a suffix search is an
    // index range scan.
    sql: `
      CREATE TABLE strings (
        id INTEGER PRIMARY KEY,
        value TEXT NOT NULL UNIQUE
      );
      CREATE TABLE names (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        rname TEXT NOT NULL
      );
      CREATE INDEX names_rname ON names (rname);
      CREATE TABLE blocks (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        client INTEGER NOT NULL REFERENCES strings (id),
        grp INTEGER REFERENCES strings (id),
        qname INTEGER NOT NULL REFERENCES names (id),
        qtype INTEGER NOT NULL,
        matched INTEGER NOT NULL,
        value INTEGER REFERENCES strings (id),
        category INTEGER NOT NULL REFERENCES strings (id),
        list INTEGER REFERENCES strings (id),
        line INTEGER,
        rule INTEGER REFERENCES strings (id),
        list_hash INTEGER REFERENCES strings (id),
        action INTEGER NOT NULL REFERENCES strings (id),
        rcode INTEGER,
        latency_ms INTEGER
      );
      CREATE INDEX blocks_ts ON blocks (ts);
      CREATE INDEX blocks_client_ts ON blocks (client, ts);
      CREATE INDEX blocks_category_ts ON blocks (category, ts);
      CREATE INDEX blocks_qname_ts ON blocks (qname, ts);
      -- Hourly roll-up kept by the writer in the same transaction as the rows, so statistics over
      -- months read thousands of rows, not millions.
      CREATE TABLE block_hours (
        hour INTEGER NOT NULL,
        category INTEGER NOT NULL,
        action INTEGER NOT NULL,
        qname INTEGER NOT NULL,
        client INTEGER NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (hour, category, action, qname, client)
      ) WITHOUT ROWID;
    `
  },
  {
    version: 2,
    name: 'custom rules and audit log',
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
    `
  }
]

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version
