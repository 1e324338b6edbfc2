/**
 * The daemon's log destination under several writer threads: the daemon's
 * main thread and each data-plane worker write batches of lines to one
 * stdout, which under a container runtime is a pipe read by someone else at
 * their own pace. Every line must arrive whole: a write of at most
 * PIPE_BUF bytes is never split, a longer one may be, and another thread's
 * bytes can land inside it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LOG_DESTINATION } from '../../../daemon/observability/daemon-logger.js';

const WRITERS = 3;
const LINES = 4000;

describe('daemon log destination', () => {
  it('keeps each write within PIPE_BUF and batches below it', () => {
    assert.ok(LOG_DESTINATION.maxWrite <= 4096);
    assert.ok(LOG_DESTINATION.minLength < LOG_DESTINATION.maxWrite);
  });

  it('three writer threads into a slowly read pipe: every line arrives whole, none lost', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'log-writers.ts')],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, WRITERS: String(WRITERS), LINES: String(LINES) },
      },
    );
    const chunks: Buffer[] = [];
    const out = child.stdout;
    // A slow reader: the pipe fills, writes find it short of room.
    out.on('data', (c: Buffer) => {
      chunks.push(c);
      out.pause();
      void sleep(20).then(() => out.resume());
    });
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    assert.equal(code, 0);
    const text = Buffer.concat(chunks).toString('utf8');
    const lines = text.split('\n').filter((l) => l !== '');
    const torn = lines.filter((l) => {
      try {
        JSON.parse(l);
        return false;
      } catch {
        return true;
      }
    });
    assert.deepEqual(torn.slice(0, 2), [], `${torn.length} torn lines`);
    assert.equal(lines.length, WRITERS * LINES);
  });
});
