import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface TestCertificates {
  dir: string
  caFile: string
  /** for 127.0.0.1 and localhost, usable as a server and as a client certificate */
  serverCertFile: string
  serverKeyFile: string
  /** a client certificate (CN `client`) signed by the same CA */
  clientCertFile: string
  clientKeyFile: string
  /** a CA that signed nothing here: trusting only it must fail */
  otherCaFile: string
  remove(): Promise<void>
}

async function keyAndRequest(dir: string, name: string, subject: string) {
  await run('openssl', [
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    join(dir, `${name}.key`),
    '-out',
    join(dir, `${name}.csr`),
    '-subj',
    subject
  ])
}

async function selfSignedCa(dir: string, name: string) {
  const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2']
  await run('openssl', [...args, '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`), '-subj', `/CN=switchyard test ${name}`])
}

async function sign(dir: string, name: string, extensions: string) {
  await writeFile(join(dir, `${name}.ext`), extensions)
  const ca = ['-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial']
  await run('openssl', ['x509', '-req', '-in', join(dir, `${name}.csr`), ...ca, '-out', join(dir, `${name}.crt`), '-days', '2', '-extfile', join(dir, `${name}.ext`)])
}

/** A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl (P-256 keys: fast to make). */
export async function makeTestCertificates(): Promise<TestCertificates> {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-certs-'))
  await selfSignedCa(dir, 'ca')
  await selfSignedCa(dir, 'other-ca')
  await keyAndRequest(dir, 'server', '/CN=127.0.0.1')
  await sign(dir, 'server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n')
  await keyAndRequest(dir, 'client', '/CN=client')
  await sign(dir, 'client', 'extendedKeyUsage=clientAuth\n')
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    serverCertFile: join(dir, 'server.crt'),
    serverKeyFile: join(dir, 'server.key'),
    clientCertFile: join(dir, 'client.crt'),
    clientKeyFile: join(dir, 'client.key'),
    otherCaFile: join(dir, 'other-ca.crt'),
    remove: () => rm(dir, { recursive: true, force: true })
  }
}
