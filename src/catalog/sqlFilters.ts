/**
 * The WHERE conditions of a catalog's `list`, shared by the SQL catalogs
 * (SQLite, PostgreSQL), whose backups tables have the same columns.
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { ListFilter } from "./BackupCatalog.js"

/**
 * One condition per field of the filter that is set; none (every record) for
 * an empty filter. No statuses match nothing ("IN ()" is not SQL).
 */
export const listConditions = (sql: SqlClient, filter: ListFilter = {}) => [
  ...(filter.volumeId === undefined ? [] : [sql`volume_id = ${filter.volumeId}`]),
  ...(filter.statuses === undefined ? [] : [filter.statuses.length === 0 ? sql.literal("1 = 0") : sql`status IN ${sql.in(filter.statuses)}`])
]
