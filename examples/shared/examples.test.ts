import { execFileSync } from 'node:child_process'
import { join } from 'node:path'

// Each framework example, run as its README says (against the built packages).
describe.each(['express', 'koa', 'fastify'])('examples/%s', (framework) => {
  it('serves its requests and prints one waterfall per traced request', () => {
    const env = { ...process.env }
    delete env.FORCE_COLOR
    delete env.NO_COLOR
    delete env.OTEL_EXPORTER_OTLP_ENDPOINT
    const out = execFileSync(process.execPath, [join(__dirname, '..', framework, 'server.js')], { encoding: 'utf8', timeout: 20000, env })
    expect(out).toContain('GET /api/users/42 -> 200')
    expect(out).toContain('GET /api/checkout -> 500')
    expect(out).toContain('GET /health -> 200 ok')
    expect(out).toMatch(new RegExp(`^trace [0-9a-f]{32} · ${framework}-shop GET /api/users/:id · `, 'm'))
    expect(out).toMatch(/db\.query users/)
    expect(out).toMatch(/GET \/api\/checkout ✗ 500/)
    expect(out).toMatch(/✗ Error: card declined/)
    // two traces, none for the ignored health check
    expect(out.match(/^trace /gm)).toHaveLength(2)
    expect(out.match(/^bottleneck: /gm)).toHaveLength(2)
    expect(out).not.toMatch(/^trace .*health/m)
  })
})
