// List URLs may carry credentials (https://user:token@host/list.txt, ?token=...). Everything the
// updater reports (logs, status, API answers) goes through here first.

/** `text` with the user info and the query values of every URL in it replaced by REDACTED. */
export function redactUrls (text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)([^\s/@]+@)?([^\s?#]*)(\?[^\s#)]*)?/gi, (_m, scheme: string, user: string | undefined, rest: string, query: string | undefined) =>
    scheme + (user === undefined ? '' : 'REDACTED@') + rest + (query === undefined ? '' : query.replace(/=([^&]*)/g, '=REDACTED')))
}
