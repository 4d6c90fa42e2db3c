// The Vercel AI SDK's default OpenAI provider (the Responses API) against the gateway.
// Env: GPUNIQ_BASE (…/v1/openai), GPUNIQ_KEY, GPUNIQ_MODEL. Prints one JSON line of what it saw.
import { generateText, streamText } from "ai";
import { createOpenAI } from "@ai-sdk/openai";

const openai = createOpenAI({ baseURL: process.env.GPUNIQ_BASE, apiKey: process.env.GPUNIQ_KEY });
const model = openai(process.env.GPUNIQ_MODEL);

const plain = await generateText({ model, prompt: "Hello from vercel" });
const stream = streamText({ model, prompt: "stream from vercel" });
let streamed = "";
for await (const part of stream.textStream) streamed += part;
const usage = await stream.usage;

console.log(JSON.stringify({
  plain: { text: plain.text, finishReason: plain.finishReason, inputTokens: plain.usage.inputTokens,
           outputTokens: plain.usage.outputTokens },
  stream: { text: streamed, finishReason: await stream.finishReason, inputTokens: usage.inputTokens,
            outputTokens: usage.outputTokens },
}));
