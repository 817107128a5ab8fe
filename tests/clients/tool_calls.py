"""Tools through the real `openai` and `ollama` clients against a running `iris serve` whose
model can call them: the model asks for a function, the client runs it and sends the result,
and the model answers from it. Prints one JSON object of what the clients got.

usage: tool_calls.py BASE_URL TOKEN
"""
import json
import os
import sys

base, token = sys.argv[1], sys.argv[2]
os.environ["OLLAMA_API_KEY"] = token
import ollama  # noqa: E402
from openai import OpenAI  # noqa: E402

out = {}
weather_tool = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city"}}, "required": ["city"]},
    },
}
QUESTION = "What's the weather like in Paris today?"
RESULT = "Sunny and 21 degrees Celsius."

client = OpenAI(base_url=base + "/v1", api_key=token)
model = next(m.id for m in client.models.list().data if getattr(m, "task", "") == "llm")
messages = [{"role": "user", "content": QUESTION}]
first = client.chat.completions.create(model=model, messages=messages, tools=[weather_tool], temperature=0, max_tokens=100)
choice = first.choices[0]
out["openai_finish"] = choice.finish_reason
calls = choice.message.tool_calls or []
out["openai_calls"] = [{"name": c.function.name, "arguments": json.loads(c.function.arguments)} for c in calls]
if calls:
    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": calls[0].id, "content": RESULT})
    second = client.chat.completions.create(model=model, messages=messages, tools=[weather_tool], temperature=0, max_tokens=100)
    out["openai_answer"] = second.choices[0].message.content
# Streamed, as most agents read it.
stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTION}], tools=[weather_tool], temperature=0, max_tokens=100, stream=True)
names, finish = [], None
for chunk in stream:
    if not chunk.choices:
        continue
    for c in chunk.choices[0].delta.tool_calls or []:
        names.append(c.function.name)
    finish = chunk.choices[0].finish_reason or finish
out["openai_stream_calls"], out["openai_stream_finish"] = names, finish
# A question no tool helps with is answered in words.
plain = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "What is the capital of France?"}], tools=[weather_tool], temperature=0, max_tokens=60)
out["openai_plain"] = plain.choices[0].message.content


def get_weather(city: str) -> str:
    """
    Get the current weather in a city

    Args:
      city: The city

    Returns:
      str: The weather
    """
    return RESULT


oc = ollama.Client(host=base)
omessages = [{"role": "user", "content": QUESTION}]
r = oc.chat(model=model, messages=omessages, tools=[get_weather], options={"temperature": 0, "num_predict": 100})
ocalls = r.message.tool_calls or []
out["ollama_calls"] = [{"name": c.function.name, "arguments": dict(c.function.arguments)} for c in ocalls]
if ocalls:
    omessages.append(r.message)
    for c in ocalls:
        omessages.append({"role": "tool", "content": get_weather(**c.function.arguments), "tool_name": c.function.name})
    r2 = oc.chat(model=model, messages=omessages, tools=[get_weather], options={"temperature": 0, "num_predict": 100})
    out["ollama_answer"] = r2.message.content
print(json.dumps(out))
