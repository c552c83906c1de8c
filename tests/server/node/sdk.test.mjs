// The official OpenAI Node SDK (npm package "openai") against smdiff serve:
// a completion, a chat completion, streamed completions (the text of the
// chunks must equal the non-streamed text of the same greedy request, and
// smdiff's step events must reach the client), and the SDK's error classes
// for 400, 401 and 404. Run by tests/server/test_node_sdk.py, which starts
// the server and sets SMDIFF_URL, SMDIFF_API_KEY and SMDIFF_MODEL_ID.
import assert from "node:assert/strict";
import OpenAI from "openai";

const baseURL = process.env.SMDIFF_URL + "/v1";
const model = process.env.SMDIFF_MODEL_ID;
const client = new OpenAI({ baseURL, apiKey: process.env.SMDIFF_API_KEY, maxRetries: 0, timeout: 60000 });
const prompt = "It was a dark and stormy night, and";

const models = await client.models.list();
assert.equal(models.data.length, 1);
assert.equal(models.data[0].id, model);

const done = await client.completions.create({ model, prompt, max_tokens: 12, steps: 6 });
assert.equal(done.object, "text_completion");
assert.match(done.id, /^cmpl-/);
assert.equal(typeof done.choices[0].text, "string");
assert.ok(done.choices[0].text.length > 0, "empty completion");
assert.ok(["stop", "length"].includes(done.choices[0].finish_reason));
assert.equal(done.usage.prompt_tokens, 10);
assert.ok(done.usage.completion_tokens >= 1 && done.usage.completion_tokens <= 12);
assert.equal(done.usage.total_tokens, done.usage.prompt_tokens + done.usage.completion_tokens);

const chat = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Tell me a story." }],
  max_tokens: 10,
  steps: 5,
});
assert.equal(chat.object, "chat.completion");
assert.equal(chat.choices[0].message.role, "assistant");
assert.equal(typeof chat.choices[0].message.content, "string");

// streamed: the same greedy request gives the same text, chunk by chunk
const stream = await client.completions.create({ model, prompt, max_tokens: 12, steps: 6, stream: true });
let text = "", finish = null, chunks = 0;
for await (const chunk of stream) {
  chunks++;
  assert.equal(chunk.object, "text_completion");
  const c = chunk.choices[0];
  if (c) {
    text += c.text;
    if (c.finish_reason) finish = c.finish_reason;
  }
}
assert.equal(text, done.choices[0].text);
assert.equal(finish, done.choices[0].finish_reason);
assert.ok(chunks >= 2);

// streamed chat, with usage at the end and the diffusion steps on the way
const cs = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Tell me a story." }],
  max_tokens: 10,
  steps: 5,
  stream: true,
  stream_steps: true,
  stream_options: { include_usage: true },
});
let content = "", role = null, steps = 0, usage = null;
for await (const chunk of cs) {
  assert.equal(chunk.object, "chat.completion.chunk");
  if (chunk.usage) usage = chunk.usage;
  const c = chunk.choices[0];
  if (c?.delta?.role) role = c.delta.role;
  if (c?.delta?.content) content += c.delta.content;
  if (chunk.smdiff_step) {
    steps++;
    assert.equal(chunk.smdiff_step.length, 10);
  }
}
assert.equal(role, "assistant");
assert.equal(steps, 5);
assert.equal(usage.completion_tokens, chat.usage.completion_tokens);
assert.equal(content, chat.choices[0].message.content);

// errors arrive as the SDK's classes with OpenAI's fields
await assert.rejects(client.completions.create({ model, prompt, max_tokens: 100000 }), (e) => {
  assert.ok(e instanceof OpenAI.BadRequestError);
  assert.equal(e.status, 400);
  assert.equal(e.param, "max_tokens");
  return true;
});
await assert.rejects(client.completions.create({ model: "gpt-4", prompt }), (e) => {
  assert.ok(e instanceof OpenAI.NotFoundError);
  assert.equal(e.code, "model_not_found");
  return true;
});
const wrong = new OpenAI({ baseURL, apiKey: "wrong-key", maxRetries: 0 });
await assert.rejects(wrong.models.list(), (e) => {
  assert.ok(e instanceof OpenAI.AuthenticationError);
  assert.equal(e.status, 401);
  return true;
});
console.log("node sdk: ok (" + text.length + " characters streamed in " + chunks + " chunks)");
