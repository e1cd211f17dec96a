// Where the running egressd is installed: found from this module's URL (dist/cli/installation.js),
// so the bundled lists are found whatever the working directory.

import { fileURLToPath } from 'node:url'

/** The lists shipped with egressd, next to dist/ in the installation: the default blocklists.dir. */
export const BUNDLED_BLOCKLISTS = fileURLToPath(new URL('../../blocklists', import.meta.url))
