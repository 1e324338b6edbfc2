/**
 * tcpdump on a link inside a netns for the length of a step (a test, a
 * demo row). `-Z root` so it can write into root-only directories,
 * `--immediate-mode` and `-U` so nothing is buffered when it is stopped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { MeshlessError } from '../errors.js';
import { readPcap, type TcpSegment } from './pcap.js';

/** A running packet capture. */
export class Capture {
  readonly #child: ChildProcess;
  readonly file: string;

  private constructor(child: ChildProcess, file: string) {
    this.#child = child;
    this.file = file;
  }

  /** Starts tcpdump on `iface` in netns `ns`; resolves once it is listening. */
  static async start(ns: string, iface: string, file: string, filter = 'tcp'): Promise<Capture> {
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        'tcpdump',
        '-Z',
        'root',
        '--immediate-mode',
        '-i',
        iface,
        '-U',
        '-n',
        '-s',
        '0',
        '-w',
        file,
        filter,
      ],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new MeshlessError('MESHLESS_E_SIM', 'tcpdump did not start within 10 s')),
        10_000,
      );
      child.stderr?.on('data', (c: Buffer) => {
        if (c.toString().includes('listening on')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(
          new MeshlessError(
            'MESHLESS_E_SIM',
            `tcpdump exited with ${code} (is it installed? apt-get install tcpdump)`,
          ),
        );
      });
    });
    return new Capture(child, file);
  }

  /** Stops the capture and returns the TCP segments seen. */
  async stop(): Promise<TcpSegment[]> {
    if (this.#child.exitCode === null) {
      const done = new Promise((r) => this.#child.once('exit', r));
      this.#child.kill('SIGINT');
      await done;
    }
    return existsSync(this.file) && statSync(this.file).size > 0 ? readPcap(this.file) : [];
  }
}
