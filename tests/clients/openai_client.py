"""The API through the official OpenAI Python client.

Usage: openai_client.py BASE_URL API_KEY
Prints one line per check and exits non-zero on the first failure.
"""

import json
import sys

import openai

base, key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=120)
question = [{"role": "user", "content": "What is the capital of France?"}]

models = [m.id for m in client.models.list()]
assert "default" in models and len(models) == 2, models
print("models:", " ".join(models))

r = client.chat.completions.create(
    model="default", messages=question, max_tokens=24, temperature=0
)
whole = r.choices[0].message.content
assert r.object == "chat.completion" and r.id.startswith("chatcmpl-"), r
assert r.choices[0].finish_reason in ("stop", "length"), r
assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, r
assert whole, r
print("chat:", json.dumps(whole))

pieces, finish = [], None
stream = client.chat.completions.create(
    model=models[0],
    messages=question,
    max_tokens=24,
    temperature=0,
    stream=True,
    stream_options={"include_usage": True},
)
usage = None
for chunk in stream:
    if chunk.usage:
        usage = chunk.usage
    for c in chunk.choices:
        if c.delta.content:
            pieces.append(c.delta.content)
        if c.finish_reason:
            finish = c.finish_reason
assert "".join(pieces) == whole, (pieces, whole)
assert finish == r.choices[0].finish_reason, finish
assert usage and usage.completion_tokens == r.usage.completion_tokens, usage
print("stream: %d chunks, same text" % len(pieces))

c = client.completions.create(
    model="default", prompt="The capital of France is", max_tokens=8, temperature=0
)
assert c.object == "text_completion" and c.choices[0].text, c
print("completion:", json.dumps(c.choices[0].text))

schema = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
}
j = client.chat.completions.create(
    model="default",
    messages=[{"role": "user", "content": "Describe Paris as JSON."}],
    max_tokens=80,
    temperature=0,
    response_format={
        "type": "json_schema",
        "json_schema": {"name": "city", "schema": schema},
    },
)
obj = json.loads(j.choices[0].message.content)
assert isinstance(obj["city"], str) and isinstance(obj["population"], int), obj
print("json_schema:", json.dumps(obj))

try:
    client.chat.completions.create(
        model="default", messages=question, max_tokens=5, temperature=7
    )
    raise SystemExit("temperature 7 was accepted")
except openai.BadRequestError as e:
    assert e.status_code == 400 and "temperature" in str(e), e
    print("bad request:", e.status_code)

try:
    client.chat.completions.create(model="default", messages=question, n=2)
    raise SystemExit("n=2 was accepted")
except openai.BadRequestError as e:
    assert "n" == e.body.get("param"), e.body
    print("unsupported field:", e.body["param"])

bad = openai.OpenAI(base_url=base, api_key="not-the-key-0000000", max_retries=0)
try:
    bad.models.list()
    raise SystemExit("a wrong key was accepted")
except openai.AuthenticationError as e:
    assert e.status_code == 401, e
    print("wrong key:", e.status_code)

out = client.post(
    "/exec", body={"language": "python", "code": "print(6 * 7)"}, cast_to=object
)
assert out["stdout"] == "42\n" and out["exit_code"] == 0, out
print("exec:", out["stdout"].strip())

apps = client.get("/apps", cast_to=object)
assert [a["name"] for a in apps["data"]] == ["files", "text"], apps
out = client.post(
    "/apps/text/run",
    body={"args": ["wc"], "stdin": "one two three\n"},
    cast_to=object,
)
assert out["stdout"] == "1 lines, 3 words, 14 characters, 14 bytes\n", out
print("apps:", out["stdout"].strip())

print("openai-python: all checks passed")
