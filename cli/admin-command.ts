/**
 * What every admin-reading verb (`status`, `workloads`, `connections`,
 * `certs`, `config`) shares: the `--admin` and `--json` options, the output
 * settings (width, colour only on a terminal), the runner that fetches,
 * renders or prints the raw JSON, and turns any failure into one line on
 * stderr and exit code 1, and the yargs registration that wires the three.
 * A verb's own file keeps only its view.
 */
import type { Argv, CommandModule } from 'yargs';
import { MeshlessError, errorMessage } from '../src/errors.js';
import { DEFAULT_ADMIN, getAdminJson } from './admin-client.js';
import type { ViewOptions } from './format.js';

/** The arguments of an admin-reading verb. */
export interface AdminArgs {
  /** `host:port` of the daemon's admin endpoint. */
  readonly admin: string;
  /** Print the route's raw JSON instead of the view. */
  readonly json: boolean;
}

/** The environment variable naming the admin address when `--admin` is not given. */
export const ADMIN_ENV = 'MESHLESS_ADMIN';

/** `$MESHLESS_ADMIN` when set, else 127.0.0.1:15000. */
export function defaultAdminAddress(env: NodeJS.ProcessEnv = process.env): string {
  return env[ADMIN_ENV] || DEFAULT_ADMIN;
}

/** Adds `--admin` and `--json` (described by `jsonDescribe`) to a verb. */
export function withAdminOptions<T>(
  y: Argv<T>,
  jsonDescribe = 'print the raw JSON answer',
): Argv<T & AdminArgs> {
  return y
    .option('admin', {
      type: 'string',
      default: defaultAdminAddress(),
      describe: `the daemon's admin address (host:port; env ${ADMIN_ENV})`,
    })
    .option('json', { type: 'boolean', default: false, describe: jsonDescribe });
}

/** A text stream as the runner uses it; `process.stdout` is one. */
export interface TextOut {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
  hasColors?(): boolean;
}

/** Where a verb writes. */
export interface CommandIo {
  readonly stdout: TextOut;
  readonly stderr: TextOut;
}

/** Width and colour for `out`: a terminal's own width and colours; 80 columns, no colour otherwise. */
export function viewOptionsFor(
  out: TextOut,
  now: number,
  env: NodeJS.ProcessEnv = process.env,
): ViewOptions {
  const tty = out.isTTY === true;
  const columns = Number(env['COLUMNS']);
  const width =
    tty && out.columns ? out.columns : Number.isInteger(columns) && columns > 0 ? columns : 80;
  return { now, width, color: tty && (out.hasColors?.() ?? false) };
}

/** GETs one admin route, as {@link AdminView.render} is given it. */
export type AdminFetch = (route: string) => Promise<unknown>;

/** One admin-reading verb. */
export interface AdminView {
  /** The verb, for error messages (`meshless status: ...`). */
  readonly verb: string;
  /** The route `--json` prints as the daemon answered it. */
  readonly route: string;
  /** Fetches what the view needs (several routes if it must) and renders it. */
  render(fetch: AdminFetch, view: ViewOptions): Promise<string>;
}

/** Runs `view` with `args`; returns the exit code (0, or 1 with the reason on stderr). */
export async function runAdminView(
  view: AdminView,
  args: AdminArgs,
  io: CommandIo = process,
  now = Date.now(),
): Promise<number> {
  const fetch: AdminFetch = (route) => getAdminJson(args.admin, route);
  try {
    if (args.json) {
      io.stdout.write(JSON.stringify(await fetch(view.route), null, 2) + '\n');
    } else {
      io.stdout.write(await view.render(fetch, viewOptionsFor(io.stdout, now)));
    }
    return 0;
  } catch (err) {
    const code = err instanceof MeshlessError ? ` (${err.code})` : '';
    io.stderr.write(`meshless ${view.verb}: ${errorMessage(err)}${code}\n`);
    return 1;
  }
}

/**
 * The yargs registration of an admin-reading verb: `meshless <view.verb>`
 * with `--admin` and `--json` (described by `jsonDescribe`), run by
 * {@link runAdminView}; the exit code becomes `process.exitCode`.
 */
export function adminCommand(
  view: AdminView,
  describe: string,
  jsonDescribe?: string,
): CommandModule<object, AdminArgs> {
  return {
    command: view.verb,
    describe,
    builder: (y) => withAdminOptions(y, jsonDescribe),
    handler: async (args) => {
      process.exitCode = await runAdminView(view, args);
    },
  };
}
