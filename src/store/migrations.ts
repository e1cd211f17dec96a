// The schemas of egressd's two SQLite files as numbered migrations, applied in order and recorded in
// each file's `schema_migrations`. Never edit a migration that has shipped; add the next number.
// (Before the first release, a migration may still be changed in place.)
//
// - MIGRATIONS: the block log (egressd.sqlite): big and busy, and allowed to be lost to damage.
// - POLICY_MIGRATIONS: the policy (policy.sqlite): custom rules, category overrides and the audit
//   log, small and rarely written, kept apart so damage to the block log cannot touch them. Until
//   migration 5 of the block log they lived there (migration 2); policy-db.ts moves such rows over.

import Database from 'better-sqlite3'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { StoreError } from '../errors.js'

/** What a migration's check may consult besides the file itself. */
export interface MigrationContext {
  /** The policy file of the same data dir (the block log's migration 5 reads its move record). */
  readonly policyPath?: string
}

export interface Migration {
  readonly version: number
  readonly name: string
  readonly sql: string
  /** Runs in the migration's transaction before `sql`; throws to refuse the migration (nothing changes then). */
  readonly check?: (db: Database.Database, ctx: MigrationContext) => void
}

/**
 * The policy file's `meta` key recording the move out of the block log: JSON { from, at, rules,
 * overrides, audit, deletePending }. `deletePending` is true from the commit of the copied rows until
 * they are deleted from the block log (a delete that failed, e.g. on a full disk, is retried at the
 * next start, without merging the rows again).
 */
export const MOVED_KEY = 'moved_from_block_log'

export interface MoveRecord {
  readonly from: string
  readonly at: string
  readonly deletePending?: boolean
}

/**
 * True when the policy file at `policyPath` records that the rows of the block log at `blockLogPath`
 * were copied to it and only their delete there is pending (so they may be dropped). False when the
 * file is absent or unreadable, or records nothing of the kind (a block log restored from a backup
 * made before the move keeps its rows then).
 */
function movedOutPendingDelete (policyPath: string, blockLogPath: string): boolean {
  if (!existsSync(policyPath)) return false
  try {
    const db = new Database(policyPath, { readonly: true, fileMustExist: true })
    try {
      const r = db.prepare('SELECT value FROM meta WHERE key = ?').get(MOVED_KEY) as { value: string } | undefined
      if (r === undefined) return false
      const m = JSON.parse(r.value) as Partial<MoveRecord>
      return m.deletePending === true && typeof m.from === 'string' && resolve(m.from) === resolve(blockLogPath)
    } finally {
      db.close()
    }
  } catch {
    return false
  }
}

/** The tables of the policy that the block log held up to its migration 4. */
export const OLD_POLICY_TABLES = ['rules', 'category_overrides', 'audit'] as const

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
    // (allowed), 1 qname, 2 cname, 3 address (4 firewall, from migration 6).
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
  },
  {
    version: 5,
    name: 'custom rules, category overrides and audit log moved to policy.sqlite',
    // The rows are copied to the policy file and deleted here by policy-db.ts before this runs. The
    // check keeps anything that opens the file first (or a file restored from a backup) from
    // dropping rows that were never copied: the migration is refused, and the block log with it.
    // Rows the policy file records as copied, whose delete here failed (a full disk), may go.
    check: (db, ctx) => {
      const moved = (): boolean => ctx.policyPath !== undefined && movedOutPendingDelete(ctx.policyPath, db.name)
      for (const table of OLD_POLICY_TABLES) {
        const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined
        if (exists && db.prepare(`SELECT 1 FROM ${table} LIMIT 1`).get() !== undefined && !moved()) {
          throw new StoreError('EGRESSD_ERR_STORE', `${db.name}: table ${table} still holds custom rules, category overrides ` +
            'or audit rows that were not moved to policy.sqlite; the block log stays closed until egressd can move them')
        }
      }
    },
    sql: `
      DROP TABLE IF EXISTS rules;
      DROP TABLE IF EXISTS category_overrides;
      DROP TABLE IF EXISTS audit;
    `
  },
  {
    version: 6,
    name: 'firewall events: port, protocol and attempts',
    // Connection attempts the firewall rejected are events too: `matched` 4 (firewall), the
    // destination address in `value`, the nft set in `list`, action 'block'. `port` (0 for
    // protocols without ports), `proto` (a `strings` id: 'tcp', 'udp', ...) and `attempts` (the
    // rejected packets the event stands for) are NULL on DNS events. Adding nullable columns
    // rewrites nothing: existing rows read NULL. The discovery report reads firewall rows per
    // client by the (client, ts) index.
    sql: `
      ALTER TABLE events ADD COLUMN port INTEGER;
      ALTER TABLE events ADD COLUMN proto INTEGER;
      ALTER TABLE events ADD COLUMN attempts INTEGER;
    `
  }
]

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version

export const POLICY_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'custom rules, category overrides, audit log',
    // AUTOINCREMENT: an id is never given again, even after its row was deleted (audit rows name
    // rules by id). Every table is a rowid table, so a damaged file can be read row by row in id
    // order around its unreadable pages (salvage.ts). `meta` keeps what egressd knows about the
    // file itself: rows lost to damage (until an admin acknowledges them), the move from the block
    // log.
    sql: `
      CREATE TABLE rules (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL CHECK (kind IN ('block', 'allow')),
        rule TEXT NOT NULL,
        comment TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        expires_at INTEGER,
        UNIQUE (kind, rule)
      );
      CREATE INDEX rules_expires_at ON rules (expires_at) WHERE expires_at IS NOT NULL;
      -- Category settings changed at run time (PATCH /api/v1/categories/:name), over the config's.
      -- grp '*' applies to every client group; otherwise a group name ('default' included).
      CREATE TABLE category_overrides (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        grp TEXT NOT NULL,
        category TEXT NOT NULL,
        enabled INTEGER,
        action TEXT,
        updated_at INTEGER NOT NULL,
        updated_by TEXT NOT NULL,
        UNIQUE (grp, category)
      );
      CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts INTEGER NOT NULL,
        actor TEXT NOT NULL,
        client TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        before TEXT,
        after TEXT
      );
      CREATE INDEX audit_ts ON audit (ts);
      CREATE TABLE meta (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        value TEXT NOT NULL
      );
    `
  },
  {
    version: 2,
    name: 'learned addresses and the guard\'s allowed addresses',
    // learn/store.ts. `learned`: one row per category and address, learned from a blocked name's
    // background resolution ('query') or a pack's probe name ('probe'); `held` is NULL while the
    // address is in the category's set, else why the collateral guard keeps it out ('allowed-name'
    // with the allowed names in `shared_with`, a JSON array; 'never-block' with the range in
    // `range`). Times are milliseconds since the epoch. `allowed_addresses`: which allowed names
    // resolved to an address and when (last), so a restart keeps the guard's memory; one row per
    // address and name. Both are re-learned if lost: salvage (policy-db.ts) does not carry them.
    sql: `
      CREATE TABLE learned (
        id INTEGER PRIMARY KEY,
        category TEXT NOT NULL,
        address TEXT NOT NULL,
        family INTEGER NOT NULL CHECK (family IN (4, 6)),
        name TEXT NOT NULL,
        via TEXT NOT NULL CHECK (via IN ('query', 'probe')),
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        held TEXT CHECK (held IN ('allowed-name', 'never-block')),
        shared_with TEXT NOT NULL DEFAULT '[]',
        range TEXT,
        UNIQUE (category, address)
      );
      CREATE INDEX learned_expires_at ON learned (expires_at);
      CREATE TABLE allowed_addresses (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL,
        name TEXT NOT NULL,
        last_seen INTEGER NOT NULL,
        UNIQUE (address, name)
      );
      CREATE INDEX allowed_addresses_last_seen ON allowed_addresses (last_seen);
    `
  },
  {
    version: 3,
    name: 'one allowed_addresses row per address; learned.held may be shared-host',
    // learn/store.ts. `allowed_addresses` had one row per address and name and kept names that
    // dropped out of the guard's memory (8 per address): a flood of names under one allowed
    // wildcard grew it without bound. Now one row per address, `names` the JSON array the guard
    // keeps (oldest first, at most 8), so rows <= learning.maxAllowedAddresses; existing rows are
    // folded (the 8 most recent names). `learned.held` gains 'shared-host' (an address reached
    // through a multi-tenant front end): the CHECK refused it, failing every write that held one.
    sql: `
      CREATE TABLE allowed_addresses_v3 (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL UNIQUE,
        names TEXT NOT NULL DEFAULT '[]',
        last_seen INTEGER NOT NULL
      );
      INSERT INTO allowed_addresses_v3 (address, names, last_seen)
        SELECT address, json_group_array(name), max(last_seen) FROM (
          SELECT address, name, last_seen,
            row_number() OVER (PARTITION BY address ORDER BY last_seen DESC, id DESC) AS n
          FROM allowed_addresses ORDER BY address, last_seen, id
        ) WHERE n <= 8 GROUP BY address;
      DROP TABLE allowed_addresses;
      ALTER TABLE allowed_addresses_v3 RENAME TO allowed_addresses;
      CREATE INDEX allowed_addresses_last_seen ON allowed_addresses (last_seen);
      CREATE TABLE learned_v3 (
        id INTEGER PRIMARY KEY,
        category TEXT NOT NULL,
        address TEXT NOT NULL,
        family INTEGER NOT NULL CHECK (family IN (4, 6)),
        name TEXT NOT NULL,
        via TEXT NOT NULL CHECK (via IN ('query', 'probe')),
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        held TEXT CHECK (held IN ('allowed-name', 'never-block', 'shared-host')),
        shared_with TEXT NOT NULL DEFAULT '[]',
        range TEXT,
        UNIQUE (category, address)
      );
      INSERT INTO learned_v3 (id, category, address, family, name, via, first_seen, last_seen, expires_at, held, shared_with, range)
        SELECT id, category, address, family, name, via, first_seen, last_seen, expires_at, held, shared_with, range FROM learned;
      DROP TABLE learned;
      ALTER TABLE learned_v3 RENAME TO learned;
      CREATE INDEX learned_expires_at ON learned (expires_at);
    `
  }
]
