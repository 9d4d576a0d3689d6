"""Audio on providers other than OpenAI and Azure, with the official `openai` SDK against
`sluice mock` (`--record`, so `GET /mock/last` shows what the upstream got): transcriptions on
`groq/` and `fireworks_ai/` (OpenAI's upload forwarded at their bases) and `deepgram/` (the file's
bytes alone to `/v1/listen`, the answer made OpenAI's), speech on `vertex_ai/` (Google Cloud
Text-to-Speech, base64 audio decoded) and `elevenlabs/` (its audio relayed). Transcriptions are
billed per second of audio at `input_cost_per_second`, speech per character at
`input_cost_per_character`."""

import io
import json
import wave
from pathlib import Path

import openai
import pytest
import requests

from conftest import MASTER_KEY, render_config, spend_rows, start_gateway, start_mock, vertex_key_at

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
REPO = Path(__file__).resolve().parents[2]
TEST_KEY = REPO / "crates" / "providers" / "tests" / "fixtures" / "vertex-test-sa.json"
PER_SECOND = 0.0001
PER_CHARACTER = 1.5e-5


@pytest.fixture(scope="module")
def env(log_dir):
    mock = start_mock(log_dir, "mock-audio-providers", "--record", "--vertex-credentials", str(TEST_KEY))
    key_path = vertex_key_at(mock, log_dir, "vertex-tts-key.json")
    per_second = {"input_cost_per_second": PER_SECOND}
    per_char = {"input_cost_per_character": PER_CHARACTER}
    models = [
        ("groq-whisper", {"model": "groq/whisper-large-v3", "api_base": mock.url + "/v1", "api_key": "gsk-up", **per_second}),
        (
            "fw-whisper",
            {"model": "fireworks_ai/whisper-v3", "api_base": mock.url + "/v1", "api_key": "fw-up", **per_second},
        ),
        ("nova", {"model": "deepgram/nova-2", "api_base": mock.url + "/v1", "api_key": "dg-up", **per_second}),
        (
            "vertex-tts",
            {
                "model": "vertex_ai/text-to-speech",
                "api_base": mock.url,
                "vertex_project": "tts-project",
                "vertex_credentials": str(key_path),
                **per_char,
            },
        ),
        ("eleven", {"model": "elevenlabs/eleven_multilingual_v2", "api_base": mock.url, "api_key": "xi-up", **per_char}),
    ]
    gw = start_gateway(log_dir, "gateway-audio-providers", render_config(models, {"master_key": MASTER_KEY}))
    yield gw, mock
    gw.stop()
    mock.stop()


def new_key(gw):
    r = requests.post(gw.url + "/key/generate", headers=ADMIN, json={}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["key"], r.json()["token"]


def client(gw, key):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def last(mock):
    return requests.get(mock.url + "/mock/last", timeout=10).json()


def wav(seconds, rate=16000):
    """A silent mono 16-bit WAV file of `seconds`."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return out.getvalue()


def expected_audio(characters):
    """The bytes `sluice mock` speaks for `characters` characters (`media::speech_audio`)."""
    return b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(i % 251 for i in range(characters * 64))


@pytest.mark.parametrize("group, upstream, key", [("groq-whisper", "whisper-large-v3", "gsk-up"), ("fw-whisper", "whisper-v3", "fw-up")])
def test_openai_compatible_transcriptions_are_forwarded_and_billed_per_second(env, group, upstream, key):
    gw, mock = env
    caller, token = new_key(gw)
    audio = wav(1.5)
    r = client(gw, caller).audio.transcriptions.create(
        model=group, file=("a.wav", audio, "audio/wav"), response_format="verbose_json"
    )
    assert r.text == f"mock transcript by {upstream} of {len(audio)} bytes"
    seen = last(mock)
    assert seen["path"] == "/v1/audio/transcriptions"
    assert seen["headers"]["authorization"] == f"Bearer {key}"
    rows = spend_rows(gw, token, 1)
    assert [x["call_type"] for x in rows] == ["atranscription"], rows
    assert round(rows[0]["spend"], 9) == round(1.5 * PER_SECOND, 9), rows


def test_deepgram_gets_the_audio_alone_and_answers_openais_transcription(env):
    gw, mock = env
    caller, token = new_key(gw)
    audio = wav(2.5)
    r = client(gw, caller).audio.transcriptions.create(
        model="nova",
        file=("hello.wav", audio, "audio/wav"),
        language="de",
        temperature=0,
        extra_body={"smart_format": "true"},
    )
    assert r.text == f"mock transcript by nova-2 of {len(audio)} bytes in de"
    seen = last(mock)
    # Deepgram's own option goes on as a query option; OpenAI's `temperature` does not.
    assert (seen["path"], seen["query"]) == ("/v1/listen", "model=nova-2&language=de&smart_format=true")
    assert seen["headers"]["authorization"] == "Token dg-up"
    assert seen["headers"]["content-type"] == "audio/wav"
    # The file's bytes alone, not the form.
    assert seen["body"].encode("utf-8", "surrogateescape")[:4] == b"RIFF" and "form-data" not in seen["body"]
    # verbose_json's fields as LiteLLM gives them: the duration bills the call.
    full = client(gw, caller).audio.transcriptions.create(
        model="nova", file=("hello.wav", audio, "audio/wav"), response_format="verbose_json"
    )
    assert full.duration == 2.5 and full.words[0].word == "mock"
    rows = spend_rows(gw, token, 2)
    assert [x["call_type"] for x in rows] == ["atranscription"] * 2, rows
    assert [round(x["spend"], 9) for x in rows] == [round(2.5 * PER_SECOND, 9)] * 2, rows


def test_deepgram_refusals_come_back_as_openai_errors(env):
    gw, _ = env
    caller, _ = new_key(gw)
    # No file in the form: refused before any upstream call, naming the field.
    r = requests.post(
        gw.url + "/v1/audio/transcriptions",
        headers={"Authorization": f"Bearer {caller}"},
        files={"model": (None, "nova")},
        timeout=10,
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "file", r.text
    # Deepgram only transcribes: speech answers 400 naming what it serves.
    r = requests.post(
        gw.url + "/v1/audio/speech",
        headers={"Authorization": f"Bearer {caller}"},
        json={"model": "nova", "input": "hi", "voice": "alloy"},
        timeout=10,
    )
    assert r.status_code == 400 and "/audio/transcriptions" in r.json()["error"]["message"], r.text


def test_vertex_speech_is_google_text_to_speech_decoded_and_billed_per_character(env):
    gw, mock = env
    caller, token = new_key(gw)
    text = "Hello from Vertex"
    r = client(gw, caller).audio.speech.create(model="vertex-tts", voice="alloy", input=text, response_format="mp3")
    assert r.content == expected_audio(len(text))
    assert r.response.headers["content-type"] == "audio/mpeg"
    seen = last(mock)
    assert seen["path"] == "/v1/text:synthesize"
    assert seen["headers"]["authorization"].startswith("Bearer ")
    assert seen["headers"]["x-goog-user-project"] == "tts-project"
    sent = json.loads(seen["body"])
    assert sent == {
        "input": {"text": text},
        "voice": {"languageCode": "en-US", "name": "en-US-Studio-O"},
        "audioConfig": {"audioEncoding": "MP3", "speakingRate": "1"},
    }
    rows = spend_rows(gw, token, 1)
    assert [x["call_type"] for x in rows] == ["aspeech"], rows
    assert round(rows[0]["spend"], 9) == round(len(text) * PER_CHARACTER, 9), rows


def test_elevenlabs_speech_is_relayed_and_billed_per_character(env):
    gw, mock = env
    caller, token = new_key(gw)
    text = "Hi from ElevenLabs!"
    with client(gw, caller).audio.speech.with_streaming_response.create(
        model="eleven", voice="onyx", input=text, response_format="mp3"
    ) as r:
        assert r.headers["content-type"] == "audio/mpeg"
        got = r.read()
    assert got == expected_audio(len(text))
    seen = last(mock)
    assert (seen["path"], seen["query"]) == ("/v1/text-to-speech/29vD33N1CtxCmqQRPOHJ", "output_format=mp3_44100_128")
    assert seen["headers"]["xi-api-key"] == "xi-up"
    assert json.loads(seen["body"]) == {"text": text, "model_id": "eleven_multilingual_v2"}
    rows = spend_rows(gw, token, 1)
    assert [x["call_type"] for x in rows] == ["aspeech"], rows
    assert round(rows[0]["spend"], 9) == round(len(text) * PER_CHARACTER, 9), rows
    # A request ElevenLabs cannot take is refused naming the field.
    r = requests.post(
        gw.url + "/v1/audio/speech",
        headers={"Authorization": f"Bearer {caller}"},
        json={"model": "eleven", "input": "hi"},
        timeout=10,
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "voice", r.text
