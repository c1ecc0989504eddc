import type { Command } from 'commander'
import { MessageRouterSettings, parseMessageRouterSettings } from '../../router/messages/config.js'
import { addSettingOptions, givenFlags } from '../settings-options.js'

export function addMessageRouterCommand(program: Command): void {
  const command = program
    .command('message-router')
    .description("run the message router in the foreground: moves each topic queue's messages to version queues by weight (--broker memory or amqp://...)")
  addSettingOptions(command, MessageRouterSettings).action(async (_options, self: Command) => {
    const settings = parseMessageRouterSettings(givenFlags(self, MessageRouterSettings), process.env)
    // Loaded only for this command: a router process carries no registry or broker code.
    const { runMessageRouter } = await import('../../router/messages/server.js')
    await runMessageRouter(settings)
  })
}
