import { execFileSync } from 'node:child_process'
import { join } from 'node:path'

// The `npm start` demo, run as a user runs it (against the built packages):
// one trace across client and server, printed as a waterfall.
describe('examples/hello', () => {
  it('prints one trace with the client, server and inner spans nested, in plain text when piped', () => {
    // Piped output, as in CI logs: no colour unless forced, so drop what jest sets.
    const env = { ...process.env }
    delete env.FORCE_COLOR
    delete env.NO_COLOR
    const out = execFileSync(process.execPath, [join(__dirname, 'app.js')], { encoding: 'utf8', timeout: 15000, env })
    expect(out).toContain('response: {"id":"42","name":"Ada"}')
    expect(out).not.toMatch(/\u001b\[/)
    expect(out).toMatch(/^trace [0-9a-f]{32} · hello checkout · [\d.]+ ms · 5 spans/m)
    const names = ['checkout', 'GET', 'GET /users/:id', 'db.query users', 'render']
    let at = 0
    for (const name of names) {
      const i = out.indexOf(name, at)
      expect(i).toBeGreaterThan(-1)
      at = i
    }
    expect(out).toMatch(/^bottleneck: hello /m)
  })
})
