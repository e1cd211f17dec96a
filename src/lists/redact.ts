// The one URL redactor. URLs may carry credentials (https://user:token@host/list.txt, ?token=...):
// list sources, DoH upstreams, and every message that quotes them. Everything egressd reports
// about them (logs, status, API answers) goes through here first.

/**
 * `text` (a URL, or a message quoting URLs) with the user info and the query values of every URL
 * in it replaced by REDACTED. User info runs to the last `@` before the path, so a password that
 * holds an `@` is redacted whole.
 */
export function redactUrls (text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#]*@)?([^\s?#]*)(\?[^\s#)]*)?/gi, (_m, scheme: string, user: string | undefined, rest: string, query: string | undefined) =>
    scheme + (user === undefined ? '' : 'REDACTED@') + rest + (query === undefined ? '' : query.replace(/=([^&]*)/g, '=REDACTED')))
}
