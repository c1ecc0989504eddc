import { runApiService } from './server.js'

await runApiService()
