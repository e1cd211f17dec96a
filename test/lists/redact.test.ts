import t from 'tap'
import { redactUrls } from '../../src/lists/redact.js'

const cases: Array<[string, string]> = [
  ['central: https://user:s3cret@lists.example/l.txt: HTTP 500', 'central: https://REDACTED@lists.example/l.txt: HTTP 500'],
  ['https://lists.example/l.txt?token=abc&v=2 timed out', 'https://lists.example/l.txt?token=REDACTED&v=REDACTED timed out'],
  ['http://a.example/x: redirect to another scheme refused (ftp://u@b.example/y?k=1)', 'http://a.example/x: redirect to another scheme refused (ftp://REDACTED@b.example/y?k=REDACTED)'],
  ['no url here', 'no url here'],
  ['https://lists.example/plain.txt', 'https://lists.example/plain.txt'],
  // A password holding an '@': the user info runs to the last one before the path.
  ['https://u:p@ss@doh.example/dns-query', 'https://REDACTED@doh.example/dns-query'],
  ['udp://127.0.0.1:53', 'udp://127.0.0.1:53']
]
for (const [input, want] of cases) t.equal(redactUrls(input), want, input)
t.notMatch(redactUrls('https://user:s3cret@h.example/?token=s3cret'), /s3cret/)
