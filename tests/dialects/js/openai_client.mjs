// The `openai` npm package against Tailwinds' OpenAI-compatible API.
// node openai_client.mjs <server url> <model> <question> <stream|once>
// Prints one JSON object: the text, usage, extension objects, or the SDK's error.
import OpenAI from "openai";

const [url, model, question, mode] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 });
const messages = [{ role: "user", content: question }];
const out = {};
try {
  if (mode === "stream") {
    const stream = await client.chat.completions.create({
      model,
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    out.text = chunks
      .filter((c) => c.choices.length)
      .map((c) => c.choices[0].delta.content ?? "")
      .join("");
    out.contentChunks = chunks.filter((c) => c.choices[0]?.delta.content).length;
    out.finish = chunks.filter((c) => c.choices.length).at(-1).choices[0].finish_reason;
    out.usage = chunks.at(-1).usage;
    out.extensions = chunks.map((c) => c.tailwinds).filter(Boolean);
  } else {
    const completion = await client.chat.completions.create({ model, messages });
    out.text = completion.choices[0].message.content;
    out.usage = completion.usage;
    out.extensions = [completion.tailwinds];
  }
} catch (error) {
  out.error = {
    name: error.constructor.name,
    status: error.status,
    message: error.message,
    code: error.code ?? error.error?.code,
  };
}
console.log(JSON.stringify(out));
