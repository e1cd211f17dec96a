// JSON schemas shared by the routes (TypeBox, so the types follow): the error body, enums written as
// JSON Schema `enum` (one clear "must be one of" message, and plain in OpenAPI), and small helpers.

import { Type, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox'

/** A string enum as `{ type: 'string', enum: [...] }`. */
export function StringEnum<const T extends readonly string[]> (values: T, options: Record<string, unknown> = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options })
}

export const ErrorSchema = Type.Object({
  error: Type.String({ description: 'HTTP status text' }),
  message: Type.String({ description: 'What went wrong, naming the field when a request part is invalid' }),
  statusCode: Type.Integer()
}, { $id: 'Error', additionalProperties: true, description: 'Every error has this shape' })

/** Error responses a route can give besides its own: the auth, validation and rate-limit ones. */
export function errors (...codes: number[]): Record<number, TSchema> {
  const out: Record<number, TSchema> = {}
  for (const c of [...codes, 401, 403, 429]) out[c] = Type.Ref('Error')
  return out
}

export const BLOCK_ACTIONS = ['nxdomain', 'refused', 'nodata', 'null', 'sinkhole', 'monitor'] as const

/** An empty query string (so unknown parameters are rejected). */
export const NoQuery = Type.Object({}, { additionalProperties: false })

export const Iso = Type.String({ format: 'date-time' })

/** `schema` or null, the OpenAPI 3.0 way (`nullable: true`; 3.0 has no `type: 'null'`). */
export function Nullable<T extends TSchema> (schema: T): TUnsafe<Static<T> | null> {
  return Type.Unsafe<Static<T> | null>({ ...schema, nullable: true })
}
