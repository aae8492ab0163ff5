// A `useChat` that loses its stream and reconnects, with the `ai` package's own
// DefaultChatTransport: sendMessages, a few chunks read, the request aborted (a reload, a
// lost network), then reconnectToStream({ chatId }) (`GET {api}/{chatId}/stream`, what
// `useChat({ resume: true })` sends) read to its end with readUIMessageStream.
// node ai_sdk_resume.mjs <route url> <question> <chat id> [api key]
// Prints one JSON object: the chunk types read before the drop, the reconnected
// stream's message and chunk types (`reconnected: false` when it answered 204), any error.
import { DefaultChatTransport } from "ai";
import { readAll } from "./ui_message_stream.mjs";

const [api, question, chatId, key] = process.argv.slice(2);
const headers = key ? { Authorization: `Bearer ${key}` } : undefined;
const transport = new DefaultChatTransport({ api, headers });
const out = { errors: [], before: [] };
try {
  const controller = new AbortController();
  const first = await transport.sendMessages({
    chatId,
    messages: [{ id: "m1", role: "user", parts: [{ type: "text", text: question }] }],
    trigger: "submit-message",
    messageId: undefined,
    abortSignal: controller.signal,
  });
  const reader = first.getReader();
  while (!out.before.includes("text-delta")) {
    const { done, value } = await reader.read();
    if (done) break;
    out.before.push(value.type);
  }
  controller.abort();
  await reader.cancel().catch(() => {});

  const again = await transport.reconnectToStream({ chatId });
  out.reconnected = again !== null;
  if (again !== null) await readAll(again, out);
} catch (error) {
  out.error = String(error?.message ?? error);
}
console.log(JSON.stringify(out));
