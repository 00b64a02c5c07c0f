import fc from 'fast-check'
import { firstForwardedFor, firstHeaderToken, nodeAddress, parseForwarded, parseHostPort } from './forwarded.ts'

const NONE = { for: undefined, host: undefined, proto: undefined }

/** A short test title for a possibly huge input. */
function label(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 40 ? `${text.slice(0, 24)}… (${text.length} chars)` : text
}

/** Wall-clock milliseconds for `fn`, best of three (the first run also warms up the JIT). */
function timeMs(fn: () => void): number {
  let best = Infinity
  for (let n = 0; n < 3; n++) {
    const start = performance.now()
    fn()
    best = Math.min(best, performance.now() - start)
  }
  return best
}

describe('parseForwarded (RFC 7239)', () => {
  it.each([
    // Section 4 and 7.x examples.
    ['for="_gazonk"', { for: '_gazonk' }],
    ['For="[2001:db8:cafe::17]:4711"', { for: '[2001:db8:cafe::17]:4711' }],
    ['for=192.0.2.60;proto=http;by=203.0.113.43', { for: '192.0.2.60', proto: 'http' }],
    ['for=192.0.2.43, for=198.51.100.17', { for: '192.0.2.43' }],
    ['for=192.0.2.43,for="[2001:db8:cafe::17]",for=unknown', { for: '192.0.2.43' }],
    ['for=unknown', { for: 'unknown' }],
    ['for="_hidden:_port"', { for: '_hidden:_port' }],
    ['for=192.0.2.43;host=example.com;proto=https', { for: '192.0.2.43', host: 'example.com', proto: 'https' }],
    ['host="example.com:8443";proto=https', { host: 'example.com:8443', proto: 'https' }],
    // Case-insensitive names; proto lower-cased; other values unchanged.
    ['FOR=192.0.2.1;HoSt=Example.COM;PROTO=HTTPS', { for: '192.0.2.1', host: 'Example.COM', proto: 'https' }],
    // The first element wins, even when a later one has more.
    ['proto=https, for=192.0.2.1;host=evil;proto=http', { proto: 'https' }],
    // Empty elements and pairs, OWS around ";" and ",".
    [', ,  for=192.0.2.1', { for: '192.0.2.1' }],
    ['for=192.0.2.1;;proto=https;', { for: '192.0.2.1', proto: 'https' }],
    ['for=192.0.2.1 ; proto=https , for=x', { for: '192.0.2.1', proto: 'https' }],
    ['  for=192.0.2.1\t', { for: '192.0.2.1' }],
    // Quoted strings: commas and semicolons inside, quoted-pairs.
    ['host="a,b;c";for=1.2.3.4', { for: '1.2.3.4', host: 'a,b;c' }],
    ['for="\\[::1\\]"', { for: '[::1]' }],
    ['host="ex\\"ample"', { host: 'ex"ample' }],
    // Lenient: unquoted ":" "[" "]".
    ['for=192.0.2.43:47011', { for: '192.0.2.43:47011' }],
    ['for=[2001:db8::1]:80;proto=https', { for: '[2001:db8::1]:80', proto: 'https' }],
    // Extensions are parsed and ignored; by is ignored.
    ['ext=1;for=192.0.2.1;x-y="z"', { for: '192.0.2.1' }],
    ['by=_proxy;for=192.0.2.1', { for: '192.0.2.1' }],
  ])('%j', (header, expected) => {
    expect(parseForwarded(header)).toEqual({ ...NONE, ...expected })
  })

  it.each([
    'for', 'for=', 'for =1.2.3.4', 'for= 1.2.3.4', '=1.2.3.4', 'for=1.2.3.4 x', 'for="1.2.3.4', 'for="1.2.3.4\\',
    'for="a"b', 'for=1.2.3.4;for=5.6.7.8', 'proto=http;PROTO=https', 'host=a;host=b', 'by=a;by=b;for=1.2.3.4',
    'for=a/b', 'for="a\u0000b"', 'for="a\u007fb"', 'for=\u00e9', 'for="\u0100"', 'for=1.2.3.4;;=x',
    '@', ';', ',', '', '   ', 'for=1.2.3.4;by=', 'for="x" "y"',
  ])('invalid or empty %j gives all undefined', (header) => {
    expect(parseForwarded(header)).toEqual(NONE)
  })

  it('drops a for outside the node grammar or a proto that is not a scheme, keeping the rest', () => {
    expect(parseForwarded('for="a b";proto=https')).toEqual({ ...NONE, proto: 'https' })
    expect(parseForwarded('for="1.2.3.4%eth0";host=h')).toEqual({ ...NONE, host: 'h' })
    expect(parseForwarded('for=1.2.3.4;proto="ht tp"')).toEqual({ ...NONE, for: '1.2.3.4' })
    expect(parseForwarded('for=1.2.3.4;proto=1http')).toEqual({ ...NONE, for: '1.2.3.4' })
    expect(parseForwarded('for=1.2.3.4;proto=""')).toEqual({ ...NONE, for: '1.2.3.4' })
    expect(parseForwarded('for="";proto=h2c+x.y-z')).toEqual({ ...NONE, proto: 'h2c+x.y-z' })
  })

  it('reads several field lines as one list', () => {
    expect(parseForwarded(['for=192.0.2.1', 'for=192.0.2.2'])).toEqual({ ...NONE, for: '192.0.2.1' })
    expect(parseForwarded(['', ' , ', 'for=192.0.2.2;proto=https'])).toEqual({ ...NONE, for: '192.0.2.2', proto: 'https' })
    expect(parseForwarded(['for="192.0.2.1', '"'])).toEqual(NONE) // a quoted-string cannot span lines
    expect(parseForwarded([])).toEqual(NONE)
    expect(parseForwarded([1, null, 'for=192.0.2.3'] as unknown as string[])).toEqual({ ...NONE, for: '192.0.2.3' })
    // Joined by Node/fetch with ", ".
    expect(parseForwarded('for=192.0.2.1, for=192.0.2.2')).toEqual({ ...NONE, for: '192.0.2.1' })
  })

  it('tolerates carrier garbage', () => {
    for (const value of [undefined, null, 42, {}, [[]], Symbol('x')]) {
      expect(parseForwarded(value as unknown as string)).toEqual(NONE)
    }
  })

  it('bounds the scan: an element that ends past 4 KiB is invalid, leading empties count', () => {
    expect(parseForwarded('for=1.2.3.4;x="' + 'a'.repeat(5000) + '"')).toEqual(NONE)
    expect(parseForwarded('for=1.2.3.4;x="' + 'a'.repeat(3000) + '"')).toEqual({ ...NONE, for: '1.2.3.4' })
    expect(parseForwarded(','.repeat(5000) + 'for=1.2.3.4')).toEqual(NONE)
    expect(parseForwarded([','.repeat(3000), ','.repeat(3000), 'for=1.2.3.4'])).toEqual(NONE)
    // Later elements are never looked at, however large.
    expect(parseForwarded('for=1.2.3.4, ' + 'x'.repeat(100_000))).toEqual({ ...NONE, for: '1.2.3.4' })
    expect(parseForwarded(new Array(1_000_000).fill(''))).toEqual(NONE)
  })
})

describe('firstForwardedFor', () => {
  it.each([
    ['203.0.113.195', '203.0.113.195'],
    ['203.0.113.195, 70.41.3.18, 150.172.238.178', '203.0.113.195'],
    ['  2001:db8:85a3:8d3:1319:8a2e:370:7348  ,1.2.3.4', '2001:db8:85a3:8d3:1319:8a2e:370:7348'],
    ['203.0.113.195:41237', '203.0.113.195:41237'],
    ['[2001:db8::1]:443', '[2001:db8::1]:443'],
    ['unknown, 1.2.3.4', 'unknown'],
    [', , 1.2.3.4', '1.2.3.4'],
    [['1.2.3.4, 5.6.7.8', '9.9.9.9'], '1.2.3.4'],
    [['', ' ', '9.9.9.9'], '9.9.9.9'],
  ] as Array<[string | string[], string]>)('%j → %j', (header, expected) => {
    expect(firstForwardedFor(header)).toBe(expected)
  })

  it.each([
    undefined, '', ' , ,', [], ['', ','], '1.2.3.4 5.6.7.8', '1.2.3.4\u0000, 5.6.7.8', 'caf\u00e9', '\u{1F600}',
    'a'.repeat(2000), ','.repeat(2000) + '1.2.3.4',
  ].map((header) => [label(header), header] as const))('%s → undefined (no fall back to the next entry)', (_title, header) => {
    expect(firstForwardedFor(header)).toBeUndefined()
  })

  it('returns the input string itself when it is the whole entry', () => {
    const header = '198.51.100.7'
    expect(firstForwardedFor(header)).toBe(header)
  })
})

describe('firstHeaderToken', () => {
  it.each([
    ['https', 'https'],
    ['HTTPS', 'https'],
    [' https , http', 'https'],
    ['Example.COM:8080', 'example.com:8080'],
    [['http', 'https'], 'http'],
    [['', 'wss'], 'wss'],
  ] as Array<[string | string[], string]>)('%j → %j', (header, expected) => {
    expect(firstHeaderToken(header)).toBe(expected)
  })

  it.each([[undefined], [''], [','], ['ht tp'], ['h\u00e9'], [[]]] as Array<[string | string[] | undefined]>)('%j → undefined', (header) => {
    expect(firstHeaderToken(header)).toBeUndefined()
  })
})

describe('parseHostPort', () => {
  it.each([
    ['example.com', 'example.com', undefined],
    ['example.com:8080', 'example.com', 8080],
    ['EXAMPLE.com:443', 'example.com', 443],
    ['[::1]:3000', '::1', 3000],
    ['[::1]', '::1', undefined],
    ['[2001:DB8::1]:1', '2001:db8::1', 1],
    ['[::ffff:192.0.2.1]:65535', '::ffff:192.0.2.1', 65535],
    ['192.0.2.1:80', '192.0.2.1', 80],
    ['localhost:', 'localhost', undefined],
    ['  example.com:8080 ', 'example.com', 8080],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example', undefined],
    ['a_b~c%41.example.', 'a_b~c%41.example.', undefined],
    ['example.com:00080', 'example.com', 80],
    ['[::1]:', '::1', undefined],
  ] as Array<[string, string, number | undefined]>)('%j → %j %j', (value, address, port) => {
    expect(parseHostPort(value)).toEqual({ address, port })
  })

  it.each([
    undefined, '', '   ', ':8080', 'example.com:0', 'example.com:65536', 'example.com:99999', 'example.com:123456',
    'example.com:-1', 'example.com:+80', 'example.com:8o', 'example.com:80:80', 'user@example.com', 'exa mple.com',
    '2001:db8::1', '[2001:db8::1', '[]', '[::1]x', '[::1]::1', '[v1.fe]', '[::1%25eth0]', '[::1]:65536', 'b\u00fccher.example',
    'example.com/path', 'a'.repeat(2000), '[' + ':'.repeat(2000) + ']',
  ].map((value) => [label(value), value] as const))('%s → undefined', (_title, value) => {
    expect(parseHostPort(value)).toBeUndefined()
  })

  it('keeps the input string when nothing changes', () => {
    const value = 'example.com'
    expect(parseHostPort(value)?.address).toBe(value)
  })
})

describe('nodeAddress (RFC 7239 section 6)', () => {
  it.each([
    ['[2001:db8::1]:4711', '2001:db8::1'],
    ['[2001:db8:cafe::17]', '2001:db8:cafe::17'],
    ['[::1]:_obf', '::1'],
    ['192.0.2.60:80', '192.0.2.60'],
    ['192.0.2.60', '192.0.2.60'],
    ['192.0.2.60:', '192.0.2.60'],
    ['2001:db8::1', '2001:db8::1'],
    ['::1', '::1'],
    ['unknown', 'unknown'],
    ['unknown:80', 'unknown'],
    ['_hidden', '_hidden'],
    ['_hidden:_port', '_hidden'],
    ['[::1', '[::1'],
    ['[::1]x', '[::1]x'],
    [':80', ':80'],
    ['', ''],
  ])('%j → %j', (node, expected) => {
    expect(nodeAddress(node)).toBe(expected)
  })

  it('composes with parseForwarded and firstForwardedFor', () => {
    expect(nodeAddress(parseForwarded('For="[2001:db8:cafe::17]:4711"').for!)).toBe('2001:db8:cafe::17')
    expect(nodeAddress(firstForwardedFor('[2001:db8::2]:1234, 10.0.0.1')!)).toBe('2001:db8::2')
  })
})

describe('forwarded: hostile input', () => {
  const KiB64 = 64 * 1024
  const hostile: Array<[string, string]> = [
    ['64 KiB of one token', 'for=' + 'a'.repeat(KiB64)],
    ['64 KiB quoted, unterminated', 'for="' + 'a'.repeat(KiB64)],
    ['64 KiB of escapes', 'for="' + '\\a'.repeat(KiB64 / 2)],
    ['thousands of commas', ','.repeat(KiB64)],
    ['thousands of elements', 'for=1.2.3.4,'.repeat(KiB64 / 12)],
    ['thousands of pairs', 'x=1;'.repeat(KiB64 / 4)],
    ['thousands of quotes', '"'.repeat(KiB64)],
    ['lone brackets', '['.repeat(KiB64)],
    ['colons', ':'.repeat(KiB64)],
    ['unicode', '\u{1F600}\u0301\uD800'.repeat(KiB64 / 4)],
    ['spaces', ' '.repeat(KiB64) + 'x'],
  ]

  it.each(hostile)('%s: every function is fast and never throws', (_name, input) => {
    const ms = timeMs(() => {
      parseForwarded(input)
      parseForwarded([input, input])
      firstForwardedFor(input)
      firstHeaderToken([input])
      parseHostPort(input)
      nodeAddress(input)
    })
    expect(ms).toBeLessThan(50)
  })

  it('never throws on arbitrary strings and arrays (fast-check)', () => {
    const header = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.string({ unit: fc.constantFrom(...'for=host=proto=by=;,"\\[]:_ \t.1aA') }),
      fc.array(fc.string(), { maxLength: 4 }),
    )
    fc.assert(fc.property(header, (value) => {
      const info = parseForwarded(value)
      expect(Object.keys(info).sort()).toEqual(['for', 'host', 'proto'])
      const xff = firstForwardedFor(value)
      if (xff !== undefined) expect(xff).toBe(xff.trim())
      const token = firstHeaderToken(value)
      if (token !== undefined) expect(token).toBe(token.toLowerCase())
      if (typeof value === 'string') {
        const host = parseHostPort(value)
        if (host !== undefined) {
          expect(host.address.length).toBeGreaterThan(0)
          if (host.port !== undefined) expect(host.port >= 1 && host.port <= 65535).toBe(true)
        }
        expect(typeof nodeAddress(value)).toBe('string')
      }
    }), { numRuns: 1000 })
  })

  it('round-trips generated elements (fast-check)', () => {
    const ipv4 = fc.ipV4()
    const ipv6 = fc.ipV6().map((a) => `[${a}]`)
    const obf = fc.stringMatching(/^_[A-Za-z0-9._-]{1,10}$/)
    const node = fc.tuple(fc.oneof(ipv4, ipv6, obf, fc.constant('unknown')), fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }))
    const host = fc.tuple(fc.domain(), fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }))
    const proto = fc.constantFrom('http', 'https', 'HTTPS', 'ws')
    fc.assert(fc.property(node, host, proto, fc.array(fc.string()), ([name, port], [domain, hostPort], scheme, tail) => {
      const forValue = port === undefined ? name : `${name}:${port}`
      const hostValue = hostPort === undefined ? domain : `${domain}:${hostPort}`
      const header = `for="${forValue}";host="${hostValue}";proto=${scheme}` + tail.map((t) => ', ' + t).join('')
      const info = parseForwarded(header)
      expect(info).toEqual({ for: forValue, host: hostValue, proto: scheme.toLowerCase() })
      const expectedAddress = name.startsWith('[') ? name.slice(1, -1) : name
      expect(nodeAddress(info.for!)).toBe(expectedAddress)
      expect(parseHostPort(info.host)).toEqual({ address: domain.toLowerCase(), port: hostPort })
    }), { numRuns: 1000 })
  })
})
