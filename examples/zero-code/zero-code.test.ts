import { execFileSync } from 'node:child_process'

// The example, run exactly as its README says (against the built packages).
describe.each([
  ['--import', 'app.mjs'],
  ['--require', 'app.cjs'],
])('examples/zero-code: node %s @spanline/auto %s', (flag, script) => {
  it('traces the unchanged app: route names, the outgoing fetch and the error, printed as waterfalls', () => {
    const env: NodeJS.ProcessEnv = {}
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OTEL_') && !k.startsWith('SPANLINE_') && k !== 'NODE_OPTIONS') env[k] = v
    delete env.FORCE_COLOR
    delete env.NO_COLOR
    Object.assign(env, { OTEL_TRACES_EXPORTER: 'console', OTEL_SERVICE_NAME: 'zero-code' })
    const out = execFileSync(process.execPath, [flag, '@spanline/auto', script], { cwd: __dirname, encoding: 'utf8', timeout: 20000, env })
    expect(out).toContain('GET /api/users/42 -> 200 {"id":"42","name":"Ada"}')
    expect(out).toContain('GET /api/checkout -> 500 {"error":"card declined"}')
    expect(out).toMatch(/^trace [0-9a-f]{32} · zero-code GET \/api\/users\/:id · .* · 3 spans · /m)
    expect(out).toMatch(/^zero-code +└→ GET +200 /m)
    expect(out).toMatch(/^zero-code +└← GET \/profiles\/:id +200 /m)
    expect(out).toMatch(/GET \/api\/checkout ✗ 500/)
    expect(out).toMatch(/✗ Error: card declined/)
    expect(out.match(/^trace /gm)).toHaveLength(2)
  })
})
