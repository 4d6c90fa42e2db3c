// Runs the official OpenAI JS SDK against the gateway; prints one JSON line of what it saw.
import OpenAI from "openai";

const client = new OpenAI({ apiKey: process.env.GPUNIQ_KEY, baseURL: process.env.GPUNIQ_BASE, maxRetries: 0 });
const out = {};

const plain = await client.chat.completions.create({
  model: "gpt-4o",
  messages: [{ role: "user", content: "Hello from node" }],
});
out.plain = { content: plain.choices[0].message.content, model: plain.model, usage: plain.usage };

const stream = await client.chat.completions.create({
  model: "gpt-4o",
  messages: [{ role: "user", content: "stream from node" }],
  stream: true,
  stream_options: { include_usage: true },
});
let text = "";
let usage = null;
for await (const chunk of stream) {
  if (chunk.choices.length) text += chunk.choices[0].delta.content ?? "";
  if (chunk.usage) usage = chunk.usage;
}
out.stream = { content: text, usage };

try {
  await client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] });
} catch (err) {
  out.error = { status: err.status, code: err.code, type: err.type };
}
console.log(JSON.stringify(out));
