// The `ai` package's own client side against Tailwinds' AI SDK route: DefaultChatTransport
// posts what `useChat` posts and parses the stream with the package's chunk schema (a
// chunk that fails it ends the stream with an error); readUIMessageStream assembles it.
// node ai_sdk_client.mjs <route url> <question>
// Prints one JSON object: the assembled message, its chunks' types, any error.
import { DefaultChatTransport } from "ai";
import { readAll } from "./ui_message_stream.mjs";

const [api, question] = process.argv.slice(2);
const transport = new DefaultChatTransport({ api });
const out = { errors: [] };
try {
  const stream = await transport.sendMessages({
    chatId: `chat-${process.pid}`,
    messages: [{ id: "m1", role: "user", parts: [{ type: "text", text: question }] }],
    trigger: "submit-message",
    messageId: undefined,
    abortSignal: undefined,
  });
  await readAll(stream, out);
} catch (error) {
  out.error = String(error?.message ?? error);
}
console.log(JSON.stringify(out));
