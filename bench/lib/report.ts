/**
 * Renders {@link BenchResults}: a Markdown report with ratios and the
 * performance targets (docs/performance.md, "Targets"; judged in
 * targets.ts), and an SVG bar chart (throughput and latency per variant).
 * Pure functions of the results.
 */
import { median } from './proc-stats.js';
import {
  VARIANTS,
  VARIANT_LABEL,
  type BenchResults,
  type CoreVariant,
  type LatencyResult,
  type MeshlessConfig,
  type ThroughputResult,
  type Variant,
} from './results.js';
import type { ProcessUsage } from './proc-stats.js';
import { addedRatio, httpOf, memoryOf, type TargetRow } from './targets.js';

const fmt = (n: number | undefined, digits = 2): string =>
  n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits);
const ratio = (a: number | undefined, b: number | undefined): string =>
  a === undefined || b === undefined || !b ? '-' : `${(a / b).toFixed(2)}x`;

function tp(r: BenchResults, v: Variant, streams: number, direction: string): number | undefined {
  return r.throughput.find(
    (t) => t.variant === v && t.streams === streams && t.direction === direction,
  )?.medianGbps;
}

function lat(r: BenchResults, v: Variant, size: number): LatencyResult | undefined {
  return r.latency.find((l) => l.variant === v && l.size === size);
}

function cps(r: BenchResults, v: Variant): number | undefined {
  return r.connRate.find((c) => c.variant === v)?.medianCps;
}

/** Median CPU% and peak RSS of each proxy over runs. */
function proxySummary(runs: readonly { readonly proxies: readonly ProcessUsage[] }[]): string {
  const names = [...new Set(runs.flatMap((r) => r.proxies.map((p) => p.name)))];
  if (names.length === 0) return '-';
  return names
    .map((n) => {
      const ps = runs.flatMap((r) => r.proxies.filter((p) => p.name === n));
      return `${n.split(' (')[0]}: ${median(ps.map((p) => p.cpuPercent)).toFixed(0)} % CPU, ${median(ps.map((p) => p.peakRssMb)).toFixed(0)} MB`;
    })
    .join('; ');
}

export function renderMarkdown(r: BenchResults): string {
  const L: string[] = [];
  const m = r.meta.machine;
  L.push(`### meshless benchmark ${r.meta.date}${r.meta.quick ? ' (quick)' : ''}`, '');
  L.push(
    `Machine: ${m['cpu']}, ${m['memory']}, Linux ${m['kernel']}; Node ${m['node']}, ${[
      'openssl',
      'stunnel',
      'iperf3',
      'ab',
      'wrk',
      'sockperf',
    ]
      .map((k) => m[k])
      .filter(Boolean)
      .join(', ')}. ` +
      `Commit ${r.meta.commit}; medians of ${r.meta.reps} alternating run(s); ${r.meta.seconds} s in all.` +
      (r.meta.daemonNodeFlags.length
        ? ` Daemon node flags: \`${r.meta.daemonNodeFlags.join(' ')}\`.`
        : ''),
    '',
    'Pod -> pod across two simulated nodes (network namespaces, veth link, real CNI chain). ' +
      'plain: two non-enrolled pods; stunnel: a stunnel4 client in the source pod and server in the destination pod, ' +
      'mutual TLS 1.3, EC P-256; meshless: two enrolled pods (HBONE: mTLS 1.3 + HTTP/2 CONNECT, one daemon per node).',
    '',
  );
  if (r.throughput.length) {
    L.push('#### Throughput (iperf3, Gbit/s)', '');
    L.push(
      '| case | plain | stunnel | meshless | meshless / plain | meshless / stunnel |',
      '|---|---|---|---|---|---|',
    );
    for (const [streams, dir] of [
      [1, 'forward'],
      [4, 'forward'],
      [1, 'reverse'],
    ] as const) {
      const [p, s, mm] = VARIANTS.map((v) => tp(r, v, streams, dir));
      if (mm === undefined) continue;
      L.push(
        `| ${streams} conn${dir === 'reverse' ? ' (reverse, -R)' : ''} | ${fmt(p)} | ${fmt(s)} | ${fmt(mm)} | ${ratio(mm, p)} | ${ratio(mm, s)} |`,
      );
    }
    L.push('');
  }
  if (r.latency.length) {
    L.push('#### Round-trip latency, one connection (us; added = minus plain)', '');
    L.push(
      '| size | quantile | plain | stunnel | meshless | stunnel added | meshless added | meshless / plain | meshless / stunnel |',
      '|---|---|---|---|---|---|---|---|---|',
    );
    for (const size of [1, 1024]) {
      const [p, s, mm] = VARIANTS.map((v) => lat(r, v, size)?.median);
      if (!p || !s || !mm) continue;
      for (const q of ['p50', 'p99', 'p999'] as const)
        L.push(
          `| ${size === 1 ? '1 B' : '1 KiB'} | ${q} | ${fmt(p[q], 0)} | ${fmt(s[q], 0)} | ${fmt(mm[q], 0)} | +${fmt(s[q] - p[q], 0)} | +${fmt(mm[q] - p[q], 0)} | ${ratio(mm[q], p[q])} | ${ratio(mm[q], s[q])} |`,
        );
    }
    L.push(
      '',
      `${r.latency[0]?.runs[0]?.count ?? '?'} round trips per run (C client and echo server, TCP_NODELAY).`,
      '',
    );
  }
  renderSockperf(r, L);
  renderHttp(r, L);
  if (r.connRate.length) {
    L.push(
      '#### New connections per second, own client (netbench connrate: connect, 1 KiB echo, close; 4 client threads)',
      '',
    );
    L.push(
      '| plain | stunnel | meshless | meshless / plain | meshless / stunnel |',
      '|---|---|---|---|---|',
    );
    const [p, s, mm] = VARIANTS.map((v) => cps(r, v));
    L.push(
      `| ${fmt(p, 0)} | ${fmt(s, 0)} | ${fmt(mm, 0)} | ${ratio(mm, p)} | ${ratio(mm, s)} |`,
      '',
    );
  }
  const proxyRows: string[] = [];
  for (const t of r.throughput as readonly ThroughputResult[])
    if (t.variant !== 'plain')
      proxyRows.push(
        `| throughput ${t.streams} conn ${t.direction} | ${t.variant} | ${proxySummary(t.runs)} |`,
      );
  for (const l of r.latency)
    if (l.variant !== 'plain')
      proxyRows.push(`| latency ${l.size} B | ${l.variant} | ${proxySummary(l.runs)} |`);
  for (const c of r.connRate)
    if (c.variant !== 'plain')
      proxyRows.push(`| new connections (netbench) | ${c.variant} | ${proxySummary(c.runs)} |`);
  for (const h of r.http)
    if (h.variant !== 'plain')
      proxyRows.push(`| new connections (${h.tool}) | ${h.variant} | ${proxySummary(h.runs)} |`);
  for (const l of r.sockperf)
    if (l.variant !== 'plain')
      proxyRows.push(`| sockperf ${l.size} B | ${l.variant} | ${proxySummary(l.runs)} |`);
  if (proxyRows.length) {
    L.push('#### Proxies: CPU (% of one core) and peak RSS per run (medians)', '');
    L.push('| run | variant | proxies |', '|---|---|---|', ...proxyRows, '');
  }
  if (r.cni) {
    const c = r.cni;
    L.push(
      `#### CNI (ms, ${c.pods} enrolled pods, bare environment, each run via \`ip netns exec <node>\`)`,
      '',
    );
    L.push('| | p50 | p99 | max |', '|---|---|---|---|');
    for (const [label, p] of [
      ['meshless-cni ADD', c.meshlessAdd],
      ['meshless-cni DEL', c.meshlessDel],
      ['whole chain ADD (bridge + host-local + meshless-cni)', c.chainAdd],
      ['whole chain DEL', c.chainDel],
      ['`ip netns exec` alone (included above)', c.netnsExecOverhead],
      ...(c.nodeStart ? ([['`env -i node -e 0` (machine node)', c.nodeStart.node]] as const) : []),
      ...(c.nodeStart?.lts ? ([['`env -i node -e 0` (Node LTS)', c.nodeStart.lts]] as const) : []),
    ] as const)
      L.push(`| ${label} | ${fmt(p.p50, 1)} | ${fmt(p.p99, 1)} | ${fmt(p.max, 1)} |`);
    L.push('');
    if (c.nodeStart)
      L.push(
        `ADD p50 is ${ratio(c.meshlessAdd.p50, c.nodeStart.node.p50)} a bare \`node -e 0\` of the machine's node` +
          (c.nodeStart.lts
            ? `, ${ratio(c.meshlessAdd.p50, c.nodeStart.lts.p50)} one of the Node LTS the plugin binary embeds`
            : '') +
          ' (same run, same `ip netns exec`).',
        '',
      );
  }
  if (r.daemon) {
    const d = r.daemon;
    L.push('#### Daemon', '');
    L.push(
      `- RSS idle (no pod): ${d.idleRssMb.map((x) => `${fmt(x, 1)} MB`).join(' / ')} (node1 / node2)`,
    );
    L.push(
      `- RSS with ${d.podsRss.pods} more enrolled pods (one identity each): ${fmt(d.podsRss.beforeMb, 1)} -> ${fmt(d.podsRss.afterMb, 1)} MB, ${fmt(d.podsRss.perPodMb, 3)} MB per pod`,
    );
    L.push(
      `- CPU at ${fmt(d.load.achievedRps, 0)} requests/s of 1 KiB (one connection, paced): ${d.load.proxies.map((p) => `${p.name} ${fmt(p.cpuPercent, 1)} %`).join(', ')}`,
      '',
    );
  }
  renderMemory(r, L);
  if (r.identity) {
    const i = r.identity;
    L.push('#### Identity (bench/identity.bench.ts)', '');
    L.push(
      `- first SVID of a new pod: p50 ${fmt(i.firstSvidP50Ms)} ms, p99 ${fmt(i.firstSvidP99Ms)} ms`,
      `- SVIDs issued per second: ${i.issuedPerSecondSequential} sequential, ${i.issuedPerSecondConcurrent} concurrent`,
      '',
    );
  }
  renderConfigs(r, L);
  if (r.notes.length) L.push('#### Notes', '', ...r.notes.map((n) => `- ${n}`), '');
  renderTargets(r.targets, L);
  return L.join('\n');
}

function renderSockperf(r: BenchResults, L: string[]): void {
  const sizes = [...new Set(r.sockperf.map((x) => x.size))];
  if (sizes.length === 0) return;
  L.push(
    '#### Round-trip latency, sockperf ping-pong over TCP (us; added = minus plain)',
    '',
    '| size | quantile | plain | stunnel | meshless | stunnel added | meshless added | meshless added / stunnel added |',
    '|---|---|---|---|---|---|---|---|',
  );
  for (const size of sizes) {
    const [p, s, m] = VARIANTS.map(
      (v) => r.sockperf.find((x) => x.variant === v && x.size === size)?.median,
    );
    if (!p || !s || !m) continue;
    for (const q of ['p50', 'p99', 'p999'] as const)
      L.push(
        `| ${size} B | ${q} | ${fmt(p[q], 0)} | ${fmt(s[q], 0)} | ${fmt(m[q], 0)} | +${fmt(s[q] - p[q], 0)} | +${fmt(m[q] - p[q], 0)} | ${fmtX(addedRatio(p[q], s[q], m[q]))} |`,
      );
  }
  L.push(
    '',
    'sockperf 3 `ping-pong --tcp --full-rtt` (C, one connection, TCP_NODELAY) against `sockperf server` in the destination pod.',
    '',
  );
}

function renderHttp(r: BenchResults, L: string[]): void {
  const tools = (['ab', 'wrk'] as const).filter((t) => httpOf(r, t, 'plain'));
  if (tools.length === 0) return;
  L.push(
    '#### New connections per second (4 concurrent, a new TCP connection per request, C HTTP responder)',
    '',
    '| client | plain | stunnel | meshless | meshless / plain | meshless / stunnel | CPU per connection: stunnel pair | CPU per connection: both daemons |',
    '|---|---|---|---|---|---|---|---|',
  );
  for (const t of tools) {
    const [p, s, m] = VARIANTS.map((v) => httpOf(r, t, v));
    L.push(
      `| ${t} | ${fmt(p?.medianRps, 0)} | ${fmt(s?.medianRps, 0)} | ${fmt(m?.medianRps, 0)} | ${ratio(m?.medianRps, p?.medianRps)} | ${ratio(m?.medianRps, s?.medianRps)} | ${fmt(s?.medianCpuUsPerConn, 0)} us | ${fmt(m?.medianCpuUsPerConn, 0)} us |`,
    );
  }
  const failed = r.http.flatMap((h) => h.runs.map((x) => x.failed)).reduce((a, b) => a + b, 0);
  L.push(
    '',
    `ApacheBench (\`ab -c 4\`, no keep-alive) and wrk (\`-c 4\`, \`Connection: close\`) against bench/tools/httpd.c; CPU from /proc/<pid>/stat over each run, divided by its successful connections. ${failed} failed requests in all runs.`,
    '',
  );
}

function renderMemory(r: BenchResults, L: string[]): void {
  const m = r.memory;
  if (!m) return;
  L.push(
    `#### Daemon memory under the bench's load (RSS, MB)`,
    '',
    `| variant | daemon | idle before | peak under load | idle ${m.idleWaitSeconds} s after | after - before |`,
    '|---|---|---|---|---|---|',
  );
  for (const d of m.daemons)
    L.push(
      `| ${d.variant} | ${d.name} | ${fmt(d.idleBeforeMb, 1)} | ${fmt(d.peakMb, 1)} | ${fmt(d.idleAfterMb, 1)} | ${fmt(d.idleAfterMb - d.idleBeforeMb, 1)} |`,
    );
  L.push(
    '',
    'Idle: the least of samples over 3 s. Peak: the highest VmHWM of any run of the variant (reset at each run start).',
    '',
  );
}

function configLabel(c: MeshlessConfig): string {
  return `${c.id} (Node ${c.nodeVersion}, ${c.runtime}${c.workers === undefined ? '' : `, workers ${c.workers}`})`;
}

/** Every meshless configuration side by side, each as a ratio to the references of the same run. */
function renderConfigs(r: BenchResults, L: string[]): void {
  const cs = r.meshlessConfigs;
  if (cs.length < 2) return;
  const rows: [string, (v: Variant) => string][] = [];
  for (const streams of [1, 4]) {
    const t = (v: Variant): number | undefined => tp(r, v, streams, 'forward');
    if (t('meshless') !== undefined)
      rows.push([
        `throughput ${streams} conn, Gbit/s (x stunnel)`,
        (v) => `${fmt(t(v))} (${ratio(t(v), t('stunnel'))})`,
      ]);
  }
  for (const tool of ['ab', 'wrk'] as const)
    if (httpOf(r, tool, 'meshless'))
      rows.push(
        [
          `new connections/s, ${tool} (x direct)`,
          (v) =>
            `${fmt(httpOf(r, tool, v)?.medianRps, 0)} (${ratio(httpOf(r, tool, v)?.medianRps, httpOf(r, tool, 'plain')?.medianRps)})`,
        ],
        [
          `CPU per connection, ${tool}, both daemons (us)`,
          (v) => fmt(httpOf(r, tool, v)?.medianCpuUsPerConn, 0),
        ],
      );
  if (cps(r, 'meshless') !== undefined)
    rows.push([
      'new connections/s, netbench (x direct)',
      (v) => `${fmt(cps(r, v), 0)} (${ratio(cps(r, v), cps(r, 'plain'))})`,
    ]);
  const sp = (v: Variant): LatencyResult['median'] | undefined =>
    r.sockperf.find((x) => x.variant === v)?.median;
  for (const q of ['p50', 'p99'] as const)
    if (sp('meshless'))
      rows.push([
        `sockperf ${q} added, us (x stunnel's added)`,
        (v) => {
          const [p, s, m] = [sp('plain'), sp('stunnel'), sp(v)];
          if (!p || !s || !m) return '-';
          return `+${fmt(m[q] - p[q], 0)} (${fmtX(addedRatio(p[q], s[q], m[q]))})`;
        },
      ]);
  const nb = (v: Variant): LatencyResult['median'] | undefined => lat(r, v, 1)?.median;
  if (nb('meshless'))
    rows.push([
      'netbench 1 B p50 / p99 added, us',
      (v) => {
        const [p, m] = [nb('plain'), nb(v)];
        return p && m ? `+${fmt(m.p50 - p.p50, 0)} / +${fmt(m.p99 - p.p99, 0)}` : '-';
      },
    ]);
  if (r.memory)
    rows.push([
      'daemon RSS peak / growth after idle, MB',
      (v) => {
        const m = r.memory ? memoryOf(r.memory, v) : undefined;
        return m ? `${fmt(m.peakMb, 1)} / ${fmt(m.driftMb, 1)}` : '-';
      },
    ]);
  if (rows.length === 0) return;
  L.push(
    '#### Meshless configurations side by side (each on its own two-node cluster, alternating with the others)',
    '',
    `| figure | ${cs.map(configLabel).join(' | ')} |`,
    `|---|${cs.map(() => '---').join('|')}|`,
    ...rows.map(([label, f]) => `| ${label} | ${cs.map((c) => f(c.id)).join(' | ')} |`),
    '',
  );
}

function fmtX(x: number): string {
  return Number.isNaN(x) ? '-' : Number.isFinite(x) ? `${x.toFixed(2)}x` : 'inf';
}

function fmtValue(t: TargetRow): string {
  if (t.unit === 'x') return fmtX(t.value);
  return `${fmt(t.value, t.unit === 'us' ? 0 : 1)} ${t.unit}`;
}

function renderTargets(ts: readonly TargetRow[], L: string[]): void {
  if (ts.length === 0) return;
  L.push(
    '#### Targets',
    '',
    '| target | measured | limit | figures | met |',
    '|---|---|---|---|---|',
  );
  for (const t of ts)
    L.push(
      `| ${t.goal} | ${fmtValue(t)} | ${t.kind === 'min' ? '>=' : '<='} ${t.limit}${t.unit === 'x' ? 'x' : ` ${t.unit}`} | ${t.detail || '-'} | ${t.met === undefined ? '-' : t.met ? 'yes' : '**no**'} |`,
    );
  L.push('');
}

const COLORS: Readonly<Record<CoreVariant, string>> = {
  plain: '#8c8c8c',
  stunnel: '#e0a030',
  meshless: '#2f7ed8',
};

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

interface Group {
  readonly label: string;
  readonly values: readonly (number | undefined)[];
}

/** One panel of grouped bars, one bar per variant. */
function panel(x0: number, title: string, unit: string, groups: readonly Group[]): string {
  const W = 440;
  const H = 300;
  const top = 40;
  const bottom = 250;
  const left = x0 + 50;
  const max = Math.max(
    1e-9,
    ...groups.flatMap((g) => g.values.filter((v): v is number => v !== undefined)),
  );
  const nice = niceCeil(max);
  const out: string[] = [];
  out.push(
    `<text x="${x0 + W / 2}" y="22" text-anchor="middle" font-weight="bold">${esc(title)}</text>`,
  );
  for (let i = 0; i <= 4; i++) {
    const v = (nice * i) / 4;
    const y = bottom - ((bottom - top) * i) / 4;
    out.push(
      `<line x1="${left}" y1="${y}" x2="${x0 + W - 10}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${y + 4}" text-anchor="end" font-size="11">${trimNum(v)}</text>`,
    );
  }
  out.push(
    `<text x="${x0 + 12}" y="${(top + bottom) / 2}" font-size="11" transform="rotate(-90 ${x0 + 12} ${(top + bottom) / 2})" text-anchor="middle">${esc(unit)}</text>`,
  );
  const gw = (x0 + W - 10 - left) / groups.length;
  const bw = (gw - 16) / VARIANTS.length;
  groups.forEach((g, gi) => {
    const gx = left + gi * gw + 8;
    g.values.forEach((v, vi) => {
      if (v === undefined) return;
      const h = ((bottom - top) * v) / nice;
      const variant = VARIANTS[vi] as CoreVariant;
      const x = gx + vi * bw;
      out.push(
        `<rect x="${x.toFixed(1)}" y="${(bottom - h).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[variant]}"/>`,
        `<text x="${(x + bw / 2 - 1).toFixed(1)}" y="${(bottom - h - 3).toFixed(1)}" text-anchor="middle" font-size="9">${trimNum(v)}</text>`,
      );
    });
    out.push(
      `<text x="${(gx + (gw - 16) / 2).toFixed(1)}" y="${bottom + 16}" text-anchor="middle" font-size="11">${esc(g.label)}</text>`,
    );
  });
  void H;
  return out.join('\n');
}

function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function trimNum(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** Throughput and latency per variant, as an SVG bar chart. */
export function renderSvg(r: BenchResults): string {
  const tgroups: Group[] = [];
  for (const [streams, dir, label] of [
    [1, 'forward', '1 conn'],
    [4, 'forward', '4 conn'],
    [1, 'reverse', '1 conn -R'],
  ] as const) {
    const values = VARIANTS.map((v) => tp(r, v, streams, dir));
    if (values.some((v) => v !== undefined)) tgroups.push({ label, values });
  }
  const lgroups: Group[] = [];
  for (const size of [1, 1024])
    for (const q of ['p50', 'p99'] as const) {
      const values = VARIANTS.map((v) => lat(r, v, size)?.median[q]);
      if (values.some((v) => v !== undefined))
        lgroups.push({ label: `${size === 1 ? '1 B' : '1 KiB'} ${q}`, values });
    }
  const legend = VARIANTS.map(
    (v, i) =>
      `<rect x="${60 + i * 190}" y="292" width="12" height="12" fill="${COLORS[v]}"/><text x="${78 + i * 190}" y="302" font-size="12">${esc(VARIANT_LABEL[v])}</text>`,
  ).join('\n');
  return [
    '<svg xmlns="http://www.w3.org/2000/svg" width="900" height="340" viewBox="0 0 900 340" font-family="sans-serif" font-size="12">',
    '<rect width="900" height="340" fill="white"/>',
    panel(0, 'Throughput pod -> pod (higher is better)', 'Gbit/s', tgroups),
    panel(450, 'Round-trip latency (lower is better)', 'us', lgroups),
    legend,
    `<text x="890" y="330" text-anchor="end" font-size="10" fill="#666">${esc(`${r.meta.date}, ${r.meta.machine['cpu'] ?? ''}, medians of ${r.meta.reps}`)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
