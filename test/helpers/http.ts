import type { Dispatcher } from 'undici'
import { callJson, readAnswer as readJsonAnswer, type CallOptions, type JsonAnswer } from '../../bench/lib/http.js'

/** An HTTP answer as tests read it: `json` untyped, since tests check answers of many shapes. */
export interface Answer extends Omit<JsonAnswer, 'json'> {
  json: any
}

/** One HTTP call (the benchmark's helper): token, JSON or raw body, headers; the answer's text and, when it is JSON, its body. */
export function call(method: Dispatcher.HttpMethod, url: string, options: CallOptions = {}): Promise<Answer> {
  return callJson(method, url, options)
}

export function get(url: string, headers: Record<string, string> = {}): Promise<Answer> {
  return call('GET', url, { headers })
}

export function readAnswer(response: Dispatcher.ResponseData): Promise<Answer> {
  return readJsonAnswer(response)
}
