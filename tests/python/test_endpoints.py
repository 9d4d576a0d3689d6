"""The non-chat OpenAI endpoints through sluice with the official `openai` SDK: image generation
(OpenAI and Azure deployments, billed per image or per pixel), moderations (billed 0), and text to
speech (the audio streamed back with the upstream's content type, billed per character), and
transcriptions (a multipart upload, size-limited by `max_request_size_mb`, the form's `model`
replaced by the deployment's, billed per second of audio from `verbose_json`'s `duration`). Each
is logged with LiteLLM's `call_type` and limited by the key's `rpm_limit` like chat. The upstream
is `sluice mock`."""

import io
import time
import wave

import openai
import pytest
import requests

from conftest import MASTER_KEY, render_config, start_gateway, start_mock

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
PER_IMAGE = 0.04
PER_PIXEL = 1e-8
PER_CHARACTER = 1.5e-5
PER_SECOND = 0.0001


@pytest.fixture(scope="module")
def gw(log_dir):
    mock = start_mock(log_dir, "mock-endpoints")
    models = [
        ("dall-e-3", {"model": "openai/dall-e-3", "api_base": mock.url + "/v1", "api_key": "sk-up", "output_cost_per_image": PER_IMAGE}),
        (
            "azure-dall-e",
            {
                "model": "azure/dall-e-3",
                "api_base": mock.url,
                "api_key": "az-up",
                "api_version": "2024-02-01",
                "input_cost_per_pixel": PER_PIXEL,
            },
        ),
        ("moderation", {"model": "openai/omni-moderation-latest", "api_base": mock.url + "/v1", "api_key": "sk-up"}),
        ("tts", {"model": "openai/tts-1", "api_base": mock.url + "/v1", "api_key": "sk-up", "input_cost_per_character": PER_CHARACTER}),
        ("azure-tts", {"model": "azure/tts", "api_base": mock.url, "api_key": "az-up", "api_version": "2024-02-01"}),
        ("whisper", {"model": "openai/whisper-1", "api_base": mock.url + "/v1", "api_key": "sk-up", "input_cost_per_second": PER_SECOND}),
        (
            "azure-whisper",
            {"model": "azure/whisper-dep", "api_base": mock.url, "api_key": "az-up", "api_version": "2024-02-01"},
        ),
    ]
    general = {"master_key": MASTER_KEY, "max_request_size_mb": 1}
    g = start_gateway(log_dir, "gateway-endpoints", render_config(models, general))
    g.mock = mock
    yield g
    g.stop()
    mock.stop()


def new_key(gw, **limits):
    r = requests.post(gw.url + "/key/generate", headers=ADMIN, json=limits, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["key"], r.json()["token"]


def client(gw, key):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def spend_rows(gw, token, count):
    deadline = time.monotonic() + 15
    while True:
        rows = requests.get(gw.url + "/spend/logs", params={"api_key": token, "summarize": "false"}, headers=ADMIN).json()
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_images_are_generated_and_billed_per_image(gw):
    key, token = new_key(gw)
    r = client(gw, key).images.generate(model="dall-e-3", prompt="a red cat", n=3, size="1024x1024")
    assert len(r.data) == 3 and r.data[0].url.startswith("https://mock.invalid/images/")
    r = client(gw, key).images.generate(model="dall-e-3", prompt="a red cat", response_format="b64_json")
    assert len(r.data) == 1 and r.data[0].b64_json
    rows = spend_rows(gw, token, 2)
    assert [x["call_type"] for x in rows] == ["aimage_generation"] * 2, rows
    assert sorted(round(x["spend"], 9) for x in rows) == [PER_IMAGE, 3 * PER_IMAGE], rows


def test_azure_images_are_billed_per_pixel(gw):
    key, token = new_key(gw)
    raw = client(gw, key).images.with_raw_response.generate(model="azure-dall-e", prompt="a dog", n=2, size="1792x1024")
    assert len(raw.parse().data) == 2
    cost = float(raw.headers["x-litellm-response-cost"])
    assert abs(cost - 2 * 1792 * 1024 * PER_PIXEL) < 1e-9, cost
    rows = spend_rows(gw, token, 1)
    assert [x["call_type"] for x in rows] == ["aimage_generation"], rows
    assert abs(rows[0]["spend"] - 2 * 1792 * 1024 * PER_PIXEL) < 1e-9, rows
    assert rows[0]["model_group"] == "azure-dall-e"


def test_moderations_are_forwarded_and_cost_nothing(gw):
    key, token = new_key(gw)
    r = client(gw, key).moderations.create(model="moderation", input=["I will kill the process", "hello"])
    assert [x.flagged for x in r.results] == [True, False]
    assert r.results[0].categories.violence is True
    rows = spend_rows(gw, token, 1)
    assert [x["call_type"] for x in rows] == ["amoderation"], rows
    assert rows[0]["spend"] == 0, rows


def expected_audio(characters):
    head = b"ID3\x04\x00\x00\x00\x00\x00\x00"
    return head + bytes(i % 251 for i in range(characters * 64))


def test_speech_is_streamed_back_and_billed_per_character(gw):
    key, token = new_key(gw)
    text = "hello from sluice"
    with client(gw, key).audio.speech.with_streaming_response.create(model="tts", voice="alloy", input=text) as r:
        assert r.headers["content-type"] == "audio/mpeg"
        # Streamed, not buffered: no length known up front.
        assert "content-length" not in r.headers
        audio = b"".join(r.iter_bytes())
    assert audio == expected_audio(len(text))
    rows = spend_rows(gw, token, 1)
    assert [x["call_type"] for x in rows] == ["aspeech"], rows
    assert abs(rows[0]["spend"] - len(text) * PER_CHARACTER) < 1e-12, rows


def test_azure_speech(gw):
    key, _ = new_key(gw)
    r = client(gw, key).audio.speech.create(model="azure-tts", voice="alloy", input="hi")
    assert r.content == expected_audio(2)


def test_bad_requests_get_openais_error_envelope(gw):
    key, _ = new_key(gw)
    auth = {"Authorization": f"Bearer {key}"}
    # Refused by sluice: the field the route needs is missing.
    r = requests.post(gw.url + "/v1/images/generations", headers=auth, json={"model": "dall-e-3"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt", r.text
    # Refused by the upstream: its error comes back as an OpenAI error, not as audio.
    r = requests.post(gw.url + "/v1/audio/speech", headers=auth, json={"model": "tts", "input": "hi"}, timeout=10)
    assert r.status_code == 400 and "voice is required" in r.json()["error"]["message"], r.text


def wav(seconds, rate=16000):
    """A silent mono 16-bit WAV file of `seconds`."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return out.getvalue()


def test_transcriptions_are_uploaded_and_billed_per_second_of_audio(gw):
    key, token = new_key(gw)
    audio = wav(2.5)
    r = client(gw, key).audio.transcriptions.create(
        model="whisper", file=("hello.wav", audio, "audio/wav"), response_format="verbose_json"
    )
    # The upstream heard the whole file, under the deployment's model name.
    assert r.text == f"mock transcript by whisper-1 of {len(audio)} bytes"
    assert r.duration == 2.5
    # Another format has no duration: billed 0.
    text = client(gw, key).audio.transcriptions.create(model="whisper", file=("a.wav", audio), response_format="text")
    assert text.strip() == f"mock transcript by whisper-1 of {len(audio)} bytes"
    rows = spend_rows(gw, token, 2)
    assert [x["call_type"] for x in rows] == ["atranscription"] * 2, rows
    assert sorted(round(x["spend"], 9) for x in rows) == [0, round(2.5 * PER_SECOND, 9)], rows


def test_azure_transcriptions(gw):
    key, _ = new_key(gw)
    r = client(gw, key).audio.transcriptions.create(model="azure-whisper", file=("a.wav", wav(0.5)))
    assert r.text.startswith("mock transcript by whisper-dep of ")


# The SDK marks verbose_json on translations deprecated; OpenAI still answers it.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_translations_are_uploads_like_transcriptions(gw):
    key, token = new_key(gw)
    audio = wav(1.5)
    r = client(gw, key).audio.translations.create(model="whisper", file=("a.wav", audio), response_format="verbose_json")
    assert r.text == f"mock transcript by whisper-1 of {len(audio)} bytes"
    rows = spend_rows(gw, token, 1)
    assert [x["call_type"] for x in rows] == ["atranscription"], rows
    assert abs(rows[0]["spend"] - 1.5 * PER_SECOND) < 1e-12, rows


def test_uploads_over_the_size_limit_are_refused_with_413(gw):
    key, _ = new_key(gw)
    heard = lambda: requests.get(gw.mock.url + "/mock/stats", timeout=5).json()["by_route"]["audio"]  # noqa: E731
    before = heard()
    # 40 s of 16 kHz 16-bit audio is 1.28 MB; max_request_size_mb is 1.
    with pytest.raises(openai.APIStatusError) as e:
        client(gw, key).audio.transcriptions.create(model="whisper", file=("big.wav", wav(40)))
    assert e.value.status_code == 413, e.value
    assert heard() == before
    # A body that is not a form is refused with what to do.
    r = requests.post(
        gw.url + "/v1/audio/transcriptions", headers={"Authorization": f"Bearer {key}"}, json={"model": "whisper"}, timeout=10
    )
    assert r.status_code == 400 and "multipart/form-data" in r.json()["error"]["message"], r.text


def test_every_endpoint_is_limited_by_the_keys_rpm(gw):
    calls = [
        lambda c: c.audio.transcriptions.create(model="whisper", file=("a.wav", wav(0.1))),
        lambda c: c.images.generate(model="dall-e-3", prompt="x"),
        lambda c: c.moderations.create(model="moderation", input="x"),
        lambda c: c.audio.speech.create(model="tts", voice="alloy", input="x").read(),
    ]
    for call in calls:
        key, _ = new_key(gw, rpm_limit=1)
        call(client(gw, key))
        with pytest.raises(openai.RateLimitError):
            call(client(gw, key))
