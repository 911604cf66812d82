/**
 * What the PostgreSQL catalog uses of node-postgres, which ships no types
 * (@effect/sql-pg depends on it; @types/pg is not a dependency).
 */
declare module "pg" {
  export interface Notification {
    readonly channel: string
    readonly payload?: string
  }
  export interface TypeParsers {
    getTypeParser(oid: number, format?: string): (value: string) => unknown
  }
  export class Client {
    constructor(config: object)
    readonly connection?: { readonly stream?: { destroy(): void } }
    connect(): Promise<void>
    connect(callback: (error?: Error) => void): void
    query(text: string): Promise<unknown>
    end(): Promise<void>
    on(event: "error" | "end", listener: (error?: Error) => void): this
    on(event: "notification", listener: (message: Notification) => void): this
  }
  export class Pool {
    constructor(config: object)
    on(event: "error", listener: (error: Error) => void): this
    end(): Promise<void>
  }
  export const types: TypeParsers
}

/** The .pgpass parser node-postgres uses (pgpass, a dependency of pg). */
declare module "pgpass/lib/helper.js" {
  export function getFileName(env?: NodeJS.ProcessEnv): string
  export function getPassword(connection: object, file: NodeJS.ReadableStream, found: (password: string | undefined) => void): void
}
