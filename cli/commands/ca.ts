/**
 * `meshless ca join-key --out FILE`: makes the signer's join key.
 * `meshless ca request ...`: asks the signer for an SVID as this node.
 * `meshless ca join-token --node NAME --join-key FILE [--ttl SECONDS] [--out FILE]`:
 * issues a join credential for one node (src/signer/join-credential.ts),
 * for nodes without Kubernetes attestation. The
 * operator hands the file to that node (daemon `signer.joinCredentialFile`).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { errorMessage } from '../../src/errors.js';
import { parseSpiffeId } from '../../src/identity/spiffe-id.js';
import { joinBearer, parseJoinCredential } from '../../src/signer/join-credential.js';
import { SignerClient, type NodeCredential } from '../../src/signer/signer-client.js';
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

interface RequestArgs {
  address: string;
  'server-name': string;
  'trust-bundle': string;
  'join-credential': string | undefined;
  'token-file': string | undefined;
  identity: string;
}

/**
 * Asks the signer for an SVID as this node, exactly as the daemon does:
 * checks a node's attestation and what the signer grants it. Prints JSON;
 * exit 1 when refused or unreachable.
 */
const request: CommandModule<object, RequestArgs> = {
  command: 'request',
  describe: 'ask the cluster signer for an SVID as this node (checks attestation and grants)',
  builder: (y) =>
    y
      .option('address', { type: 'string', demandOption: true, describe: 'signer host:port' })
      .option('server-name', { type: 'string', default: 'meshless-ca' })
      .option('trust-bundle', { type: 'string', demandOption: true, describe: 'PEM roots' })
      .option('join-credential', { type: 'string', describe: "this node's join credential file" })
      .option('token-file', { type: 'string', describe: 'a projected service-account token file' })
      .option('identity', {
        type: 'string',
        demandOption: true,
        describe: 'spiffe://... to ask for',
      })
      .check((a) => {
        if ((a['join-credential'] === undefined) === (a['token-file'] === undefined))
          throw new Error('give exactly one of --join-credential or --token-file');
        return true;
      }),
  handler: async (args) => {
    const joinFile = args['join-credential'];
    const tokenFile = args['token-file'];
    const credential: NodeCredential =
      joinFile !== undefined
        ? async (csr, now) =>
            joinBearer(parseJoinCredential(await readFile(joinFile, 'utf8'), joinFile), csr, now)
        : async () => (await readFile(tokenFile as string, 'utf8')).trim();
    const bundle = readFileSync(args['trust-bundle'], 'utf8');
    const client = new SignerClient({
      address: args.address,
      serverName: args['server-name'],
      trustBundlePem: () => bundle,
      credential,
    });
    try {
      const { svid } = await client.issue(parseSpiffeId(args.identity), 3_600_000);
      process.stdout.write(
        JSON.stringify({
          issued: svid.spiffeId.toString(),
          serialNumber: svid.serialNumber,
          notAfter: new Date(svid.notAfter).toISOString(),
        }) + '\n',
      );
    } catch (err) {
      process.stdout.write(
        JSON.stringify({
          refused: errorMessage(err),
          code: (err as { code?: unknown }).code ?? null,
        }) + '\n',
      );
      process.exitCode = 1;
    } finally {
      client.close();
    }
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
  builder: (y) => y.command(joinKey).command(joinToken).command(request).demandCommand(1),
  handler: () => undefined,
};
