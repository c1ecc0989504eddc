import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { WeightedTarget } from './weighted-targets.js'

/**
 * Peers that are not Node: HAProxy and nginx, when installed (bench/setup installs both
 * with apt-get). Each gets a generated config for one process (one thread, one worker:
 * the same single core the Node proxies use), keep-alive to the upstreams, and the same
 * weighted split, in its own weighted round-robin.
 */
export interface NativePeer {
  name: 'haproxy' | 'nginx'
  /** undefined when usable, else why the configuration is skipped */
  missing(): string | undefined
  version(): string
  /** writes the config under `dir`; returns the command line of a foreground process */
  prepare(dir: string, port: number, targets: readonly WeightedTarget[]): { command: string; args: string[] }
}

function commandExists(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

function firstLine(command: string, args: string[]): string {
  try {
    // nginx -v prints on stderr
    const output = execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    return output.split('\n')[0]?.trim() ?? ''
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? ''
    return stderr.split('\n')[0]?.trim() ?? ''
  }
}

function hostPort(origin: string): string {
  return new URL(origin).host
}

export const haproxy: NativePeer = {
  name: 'haproxy',
  missing: () => (commandExists('haproxy') ? undefined : 'haproxy is not installed (run bench/setup to install it with apt-get)'),
  version: () => firstLine('haproxy', ['-v']),
  prepare(dir, port, targets) {
    mkdirSync(dir, { recursive: true })
    const servers = targets.map((target, index) => `  server s${index} ${hostPort(target.origin)} weight ${target.weight}`).join('\n')
    const config = `global
  nbthread 1
  maxconn 4096

defaults
  mode http
  option http-keep-alive
  option forwardfor
  http-reuse always
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 4s

frontend bench
  bind 127.0.0.1:${port}
  default_backend api

backend api
  balance roundrobin
${servers}
`
    const file = join(dir, 'haproxy.cfg')
    writeFileSync(file, config)
    return { command: 'haproxy', args: ['-db', '-f', file] }
  }
}

export const nginx: NativePeer = {
  name: 'nginx',
  missing: () => (commandExists('nginx') ? undefined : 'nginx is not installed (run bench/setup to install it with apt-get)'),
  version: () => firstLine('nginx', ['-v']),
  prepare(dir, port, targets) {
    mkdirSync(join(dir, 'temp'), { recursive: true })
    const servers = targets.map((target) => `    server ${hostPort(target.origin)} weight=${target.weight};`).join('\n')
    const config = `worker_processes 1;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
${process.getuid?.() === 0 ? 'user root;\n' : ''}events {
  worker_connections 4096;
}
http {
  access_log off;
  client_body_temp_path ${join(dir, 'temp')};
  proxy_temp_path ${join(dir, 'temp')};
  fastcgi_temp_path ${join(dir, 'temp')};
  uwsgi_temp_path ${join(dir, 'temp')};
  scgi_temp_path ${join(dir, 'temp')};
  keepalive_requests 1000000;
  upstream api {
${servers}
    keepalive 128;
    keepalive_timeout 4s;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }
  }
}
`
    const file = join(dir, 'nginx.conf')
    writeFileSync(file, config)
    return { command: 'nginx', args: ['-p', dir, '-c', file] }
  }
}
