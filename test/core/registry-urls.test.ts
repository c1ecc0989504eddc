import t from 'tap'
import { parseRegistryUrls } from '../../core/registry-urls.js'

void t.test('parseRegistryUrls: one or several http(s) origins, in order', (t) => {
  const cases: [string, string[]][] = [
    ['http://127.0.0.1:8761', ['http://127.0.0.1:8761']],
    ['http://127.0.0.1:8761/', ['http://127.0.0.1:8761']],
    ['http://a:8761,http://b:8761', ['http://a:8761', 'http://b:8761']],
    [' http://b:8761 , https://a:8443 ', ['http://b:8761', 'https://a:8443']],
    ['HTTP://Registry:8761', ['http://registry:8761']],
    ['https://registry:443', ['https://registry']],
    ['http://[::1]:8761,http://127.0.0.1:8761', ['http://[::1]:8761', 'http://127.0.0.1:8761']]
  ]
  for (const [text, urls] of cases) t.same(parseRegistryUrls(text), urls, text)
  t.end()
})

void t.test('parseRegistryUrls names the entry that is wrong, and why', (t) => {
  const cases: [string, string][] = [
    ['', 'registry URL "" is empty: give URLs separated by commas, e.g. http://a:8761,http://b:8761'],
    ['http://a:8761,', 'registry URL "" (entry 2 of "http://a:8761,") is empty: give URLs separated by commas, e.g. http://a:8761,http://b:8761'],
    ['registry', 'registry URL "registry" is not a URL: give http://HOST:PORT'],
    ['http://a:8761,htp//b:8761', 'registry URL "htp//b:8761" (entry 2 of "http://a:8761,htp//b:8761") is not a URL: give http://HOST:PORT'],
    ['registry:8761', 'registry URL "registry:8761" has scheme registry: give http:// or https://'],
    ['ftp://a:21', 'registry URL "ftp://a:21" has scheme ftp: give http:// or https://'],
    ['http://user:secret@a:8761', 'registry URL "http://***@a:8761" carries credentials: give the token in SWITCHYARD_TOKEN (or --token) instead'],
    [
      'http://a:8761,http://:secret@b:8761',
      'registry URL "http://***@b:8761" (entry 2 of "http://a:8761,http://***@b:8761") carries credentials: give the token in SWITCHYARD_TOKEN (or --token) instead'
    ],
    ['http://a:8761/registry', 'registry URL "http://a:8761/registry" has a path, query or fragment: give only http(s)://HOST:PORT (the API is at the root)'],
    ['http://a:8761?x=1', 'registry URL "http://a:8761?x=1" has a path, query or fragment: give only http(s)://HOST:PORT (the API is at the root)'],
    ['http://a:8761#b', 'registry URL "http://a:8761#b" has a path, query or fragment: give only http(s)://HOST:PORT (the API is at the root)'],
    ['http://a:8761,http://A:8761/', 'registry URL "http://A:8761/" (entry 2 of "http://a:8761,http://A:8761/") is listed twice']
  ]
  for (const [text, message] of cases) t.throws(() => parseRegistryUrls(text), { message }, JSON.stringify(text))
  t.end()
})
