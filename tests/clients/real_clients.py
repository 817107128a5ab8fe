"""Real third-party clients against a running `iris serve`: the `openai` package (streamed chat,
transcription, speech) and the `wyoming` package (describe, transcribe, synthesize).
Prints one JSON object of what each client got; the Rust test judges it.

usage: real_clients.py BASE_URL TOKEN QUESTION_WAV WYOMING_PORT
"""
import asyncio
import io
import json
import sys
import wave

from openai import OpenAI
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop, wav_to_chunks
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize

base, token, wav_path, wy_port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
out = {}

client = OpenAI(base_url=base + "/v1", api_key=token)
out["models"] = [m.id for m in client.models.list().data]
stream = client.chat.completions.create(
    model=out["models"][0],
    messages=[{"role": "user", "content": "What is the capital of France?"}],
    stream=True,
    max_tokens=40,
    temperature=0,
)
pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
out["chat_chunks"] = len(pieces)
out["chat"] = "".join(pieces)
with open(wav_path, "rb") as f:
    out["transcription"] = client.audio.transcriptions.create(model="whisper-1", file=f).text
speech = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello from Iris.", response_format="wav")
with wave.open(io.BytesIO(speech.content)) as w:
    out["speech_seconds"] = w.getnframes() / w.getframerate()
try:
    client.with_options(api_key="iris_not_a_token").models.list()
    out["bad_token"] = "accepted"
except Exception as e:  # the client raises AuthenticationError on 401
    out["bad_token"] = type(e).__name__


async def wyoming():
    async with AsyncTcpClient("127.0.0.1", wy_port) as c:
        await c.write_event(Describe().event())
        while True:
            e = await c.read_event()
            if Info.is_type(e.type):
                info = Info.from_event(e)
                out["wyoming_asr"] = [m.name for p in info.asr for m in p.models]
                out["wyoming_tts"] = [v.name for p in info.tts for v in p.voices]
                break
        await c.write_event(Transcribe().event())
        with wave.open(wav_path, "rb") as w:
            await c.write_event(AudioStart(rate=w.getframerate(), width=w.getsampwidth(), channels=w.getnchannels()).event())
            for chunk in wav_to_chunks(w, samples_per_chunk=1024):
                await c.write_event(chunk.event())
        await c.write_event(AudioStop().event())
        while True:
            e = await c.read_event()
            if Transcript.is_type(e.type):
                out["wyoming_transcript"] = Transcript.from_event(e).text
                break
    async with AsyncTcpClient("127.0.0.1", wy_port) as c:
        await c.write_event(Synthesize(text="The kitchen light is on.").event())
        samples, rate = 0, None
        while True:
            e = await c.read_event()
            if AudioStart.is_type(e.type):
                rate = AudioStart.from_event(e).rate
            elif AudioChunk.is_type(e.type):
                samples += len(AudioChunk.from_event(e).audio) // 2
            elif AudioStop.is_type(e.type):
                break
        out["wyoming_speech_seconds"] = samples / rate


asyncio.run(wyoming())
print(json.dumps(out))
