// The relay's write coalescing, on in-memory streams (no sockets).
import assert from 'node:assert/strict';
import { Duplex, PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { relay } from '../../../src/hbone/relay.js';

/** A destination that records how its writes reach the "wire": one entry per write() or writev(). */
class RecordingSink extends Duplex {
  readonly wire: string[][] = [];
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.wire.push([chunk.toString()]);
    cb();
  }
  override _writev(chunks: { chunk: Buffer }[], cb: () => void): void {
    this.wire.push(chunks.map((c) => c.chunk.toString()));
    cb();
  }
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('relay write coalescing', () => {
  const cases: {
    name: string;
    coalesceWrites: boolean;
    turns: string[][];
    wire: string[][];
  }[] = [
    {
      name: 'one chunk per turn goes out at once (request/response traffic)',
      coalesceWrites: true,
      turns: [['a'], ['b'], ['c']],
      wire: [['a'], ['b'], ['c']],
    },
    {
      name: 'the first chunk of a turn goes at once, the rest of the turn in one writev',
      coalesceWrites: true,
      turns: [
        ['a', 'b', 'c', 'd'],
        ['e', 'f'],
      ],
      wire: [['a'], ['b', 'c', 'd'], ['e'], ['f']],
    },
    {
      name: 'coalescing off: one write per chunk',
      coalesceWrites: false,
      turns: [['a', 'b', 'c']],
      wire: [['a'], ['b'], ['c']],
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const src = new PassThrough();
      const dst = new RecordingSink();
      const done = relay(src, dst, { coalesceWrites: c.coalesceWrites });
      for (const chunks of c.turns) {
        for (const chunk of chunks) src.write(chunk);
        await turn();
        await turn();
      }
      assert.deepEqual(dst.wire, c.wire);
      src.destroy();
      dst.destroy();
      await done;
    });
  }
});
