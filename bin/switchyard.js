#!/usr/bin/env node
// The package's `bin`: runs the compiled CLI. `npm run build` (or `npm start`) compiles it first.
import('../dist/src/cli/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/cli/main.js')) {
    console.error('switchyard: not built yet; run `npm run build` in the package folder first')
    process.exit(2)
  }
  throw err
})
