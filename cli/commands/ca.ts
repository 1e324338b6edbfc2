/**
 * `meshless ca join-key --out FILE`: makes the signer's join key.
 * `meshless ca join-token --node NAME --join-key FILE [--ttl SECONDS] [--out FILE]`:
 * issues a join credential for one node (src/signer/join-credential.ts),
 * for nodes without Kubernetes attestation. The
 * operator hands the file to that node (daemon `signer.joinCredentialFile`).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { joinMacKey, makeJoinCredential, newJoinKey } from '../../src/signer/join-credential.js';

interface JoinTokenArgs {
  node: string;
  'join-key': string;
  ttl: number;
  out: string | undefined;
}

const joinToken: CommandModule<object, JoinTokenArgs> = {
  command: 'join-token',
  describe: 'issue a short-lived join credential for one node (file discovery, no Kubernetes)',
  builder: (y) =>
    y
      .option('node', {
        type: 'string',
        demandOption: true,
        describe: 'the node name it is valid for',
      })
      .option('join-key', {
        type: 'string',
        demandOption: true,
        describe: "the signer's join key file",
      })
      .option('ttl', { type: 'number', default: 86_400, describe: 'lifetime, seconds' })
      .option('out', {
        type: 'string',
        describe: 'write the credential here (mode 0600) instead of stdout',
      }),
  handler: (args) => {
    const keyFile = args['join-key'];
    const credential = makeJoinCredential({
      node: args.node,
      macKey: joinMacKey(readFileSync(keyFile, 'utf8'), keyFile),
      now: Date.now(),
      ttlMs: args.ttl * 1000,
    });
    const text = JSON.stringify(credential, null, 2) + '\n';
    if (args.out === undefined) process.stdout.write(text);
    else writeFileSync(args.out, text, { mode: 0o600 });
  },
};

const joinKey: CommandModule<object, { out: string }> = {
  command: 'join-key',
  describe: "make the signer's join key (the secret join credentials are MACed with)",
  builder: (y) =>
    y.option('out', { type: 'string', demandOption: true, describe: 'file to create (0600)' }),
  handler: (args) => {
    writeFileSync(args.out, newJoinKey(), { mode: 0o600, flag: 'wx' });
  },
};

export const caCommand: CommandModule = {
  command: 'ca <command>',
  describe: 'cluster signer tools',
  builder: (y) => y.command(joinKey).command(joinToken).demandCommand(1),
  handler: () => undefined,
};
