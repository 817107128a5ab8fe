"""The real `ollama` Python client against a running `iris serve`, as a user who already runs
Ollama points it at Iris: list, show, ps, a streamed and a whole chat, generate, a photo, and
the errors. Prints one JSON object of what the client got; the Rust test judges it.

usage: ollama_client.py BASE_URL TOKEN IMAGE_PNG
"""
import json
import os
import sys
import urllib.request

base, token, image = sys.argv[1], sys.argv[2], sys.argv[3]
# Ollama's clients send OLLAMA_API_KEY as a bearer token.
os.environ["OLLAMA_API_KEY"] = token
import ollama  # noqa: E402

out = {}
client = ollama.Client(host=base)
listed = client.list()
out["models"] = [m.model for m in listed.models]
out["quantization"] = listed.models[0].details.quantization_level
model = out["models"][0]
shown = client.show(model)
out["capabilities"] = list(shown.capabilities or [])
out["running"] = [m.model for m in client.ps().models]

question = [{"role": "user", "content": "What is the capital of France?"}]
parts = list(client.chat(model=model, messages=question, stream=True, options={"temperature": 0, "num_predict": 40}))
out["chat_chunks"] = len(parts)
out["chat"] = "".join(p.message.content or "" for p in parts)
out["chat_done"] = parts[-1].done
out["chat_eval_count"] = parts[-1].eval_count
whole = client.chat(model=model, messages=question, options={"temperature": 0, "num_predict": 40})
out["chat_whole"] = whole.message.content
gen = client.generate(model=model, prompt="What is the capital of France?", options={"temperature": 0, "num_predict": 40})
out["generate"] = gen.response
# A photo with a question, as Ollama's clients send one (the library encodes the file).
seen = client.chat(model=model, messages=[{"role": "user", "content": "What is this?", "images": [image]}], options={"temperature": 0, "num_predict": 60})
out["photo"] = seen.message.content

try:
    client.chat(model="llama3.2", messages=question)
    out["unknown_model"] = "accepted"
except ollama.ResponseError as e:
    out["unknown_model"] = e.status_code
try:
    ollama.Client(host=base, headers={"authorization": "Bearer iris_not_a_token"}).list()
    out["bad_token"] = "accepted"
except ollama.ResponseError as e:
    out["bad_token"] = e.status_code
req = urllib.request.Request(base + "/api/version", headers={"authorization": "Bearer " + token})
out["version"] = json.load(urllib.request.urlopen(req))["version"]
print(json.dumps(out))
