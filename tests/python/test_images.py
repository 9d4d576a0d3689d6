"""Images beyond OpenAI's generations, through sluice with the official `openai` SDK: edits and
variations (multipart uploads to OpenAI and Azure deployments, the form's `model` replaced by the
deployment's, size-limited by `max_request_size_mb`, billed per image, logged as `aimage_edit` and
`aimage_variation`, retried and fallen back like chat), and generations on Vertex AI's Imagen
(`:predict`) and Bedrock's image models (InvokeModel, SigV4), billed per image answered. The
upstream is `sluice mock`."""

from pathlib import Path

import openai
import pytest
import requests

from conftest import MASTER_KEY, render_config, start_gateway, start_mock, vertex_key_at
from test_endpoints import client, new_key, spend_rows

REPO = Path(__file__).resolve().parents[2]
TEST_KEY = REPO / "crates" / "providers" / "tests" / "fixtures" / "vertex-test-sa.json"
PER_IMAGE = 0.02
PER_PIXEL = 1e-8
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
AWS = {"aws_region_name": "us-east-1", "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG"}


@pytest.fixture(scope="module")
def gw(log_dir):
    mock = start_mock(log_dir, "mock-images", "--vertex-credentials", str(TEST_KEY))
    key_path = vertex_key_at(mock, log_dir, "vertex-images-key.json")
    vertex = {"api_base": mock.url, "vertex_project": "p", "vertex_location": "us-central1", "vertex_credentials": str(key_path)}
    models = [
        ("dall-e-2", {"model": "openai/dall-e-2", "api_base": mock.url + "/v1", "api_key": "sk-up", "output_cost_per_image": PER_IMAGE}),
        (
            "azure-dall-e",
            {"model": "azure/dall-e-dep", "api_base": mock.url, "api_key": "az-up", "api_version": "2024-02-01", "input_cost_per_pixel": PER_PIXEL},
        ),
        ("broken-edit", {"model": "openai/error-500", "api_base": mock.url + "/v1", "api_key": "sk-up"}),
        ("imagen", {"model": "vertex_ai/imagen-3.0-generate-001", **vertex, "output_cost_per_image": PER_IMAGE}),
        ("titan", {"model": "bedrock/amazon.titan-image-generator-v2:0", "api_base": mock.url, **AWS, "output_cost_per_image": PER_IMAGE}),
        ("nova-canvas", {"model": "bedrock/amazon.nova-canvas-v1:0", "api_base": mock.url, **AWS, "output_cost_per_image": PER_IMAGE}),
        ("sd3", {"model": "bedrock/stability.sd3-large-v1:0", "api_base": mock.url, **AWS, "output_cost_per_image": PER_IMAGE}),
        ("gemini-chat", {"model": "vertex_ai/gemini-1.5-pro", **vertex}),
    ]
    cfg = render_config(models, {"master_key": MASTER_KEY, "max_request_size_mb": 1})
    cfg += 'router_settings:\n  num_retries: 0\n  fallbacks: [{"broken-edit": ["dall-e-2"]}]\n'
    g = start_gateway(log_dir, "gateway-images", cfg)
    g.mock = mock
    yield g
    g.stop()
    mock.stop()


def images_heard(gw):
    return requests.get(gw.mock.url + "/mock/stats", timeout=5).json()["by_route"].get("images", 0)


def test_edits_are_uploaded_and_billed_per_image(gw):
    key, token = new_key(gw)
    r = client(gw, key).images.edit(model="dall-e-2", image=("cat.png", PNG, "image/png"), prompt="add a hat", n=2)
    # The upstream got the whole image, under the deployment's model name.
    assert [d.url for d in r.data] == [f"https://mock.invalid/images/edit/dall-e-2/{len(PNG)}/{i}.png" for i in range(2)]
    r = client(gw, key).images.edit(model="dall-e-2", image=[("a.png", PNG), ("b.png", PNG)], prompt="merge", response_format="b64_json")
    assert len(r.data) == 1 and r.data[0].b64_json
    rows = spend_rows(gw, token, 2)
    assert [x["call_type"] for x in rows] == ["aimage_edit"] * 2, rows
    assert sorted(round(x["spend"], 9) for x in rows) == [PER_IMAGE, 2 * PER_IMAGE], rows


def test_variations_are_uploaded_and_billed_per_image(gw):
    key, token = new_key(gw)
    raw = client(gw, key).images.with_raw_response.create_variation(model="dall-e-2", image=("cat.png", PNG), n=3, size="256x256")
    r = raw.parse()
    assert [d.url for d in r.data] == [f"https://mock.invalid/images/variation/dall-e-2/{len(PNG)}/{i}.png" for i in range(3)]
    assert abs(float(raw.headers["x-litellm-response-cost"]) - 3 * PER_IMAGE) < 1e-9
    rows = spend_rows(gw, token, 1)
    assert [x["call_type"] for x in rows] == ["aimage_variation"], rows
    assert abs(rows[0]["spend"] - 3 * PER_IMAGE) < 1e-9, rows


def test_azure_edits_go_to_the_deployment_and_are_billed_per_pixel(gw):
    key, token = new_key(gw)
    r = client(gw, key).images.edit(model="azure-dall-e", image=("cat.png", PNG), prompt="a hat", size="512x512")
    assert r.data[0].url == f"https://mock.invalid/images/edit/dall-e-dep/{len(PNG)}/0.png"
    r = client(gw, key).images.create_variation(model="azure-dall-e", image=("cat.png", PNG), n=2)
    assert len(r.data) == 2
    rows = spend_rows(gw, token, 2)
    assert sorted(x["call_type"] for x in rows) == ["aimage_edit", "aimage_variation"], rows
    want = sorted([round(512 * 512 * PER_PIXEL, 9), round(2 * 1024 * 1024 * PER_PIXEL, 9)])
    assert sorted(round(x["spend"], 9) for x in rows) == want, rows


def test_a_failed_edit_falls_back_with_its_upload(gw):
    key, _ = new_key(gw)
    raw = client(gw, key).images.with_raw_response.edit(model="broken-edit", image=("cat.png", PNG), prompt="a hat")
    assert raw.parse().data[0].url == f"https://mock.invalid/images/edit/dall-e-2/{len(PNG)}/0.png"
    assert raw.headers["x-litellm-attempted-fallbacks"] == "1"


def test_bad_uploads_get_openais_error_envelope(gw):
    key, _ = new_key(gw)
    auth = {"Authorization": f"Bearer {key}"}
    before = images_heard(gw)
    # No image: refused before any upstream sees it.
    r = requests.post(gw.url + "/v1/images/edits", headers=auth, files={"prompt": (None, "x"), "model": (None, "dall-e-2")}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["param"] == "image", r.text
    # Not a form at all.
    r = requests.post(gw.url + "/images/variations", headers=auth, json={"model": "dall-e-2"}, timeout=10)
    assert r.status_code == 400 and "multipart/form-data" in r.json()["error"]["message"], r.text
    # Over max_request_size_mb (1): 413.
    with pytest.raises(openai.APIStatusError) as e:
        client(gw, key).images.create_variation(model="dall-e-2", image=("big.png", b"\x89PNG" + bytes(1_200_000)))
    assert e.value.status_code == 413, e.value
    assert images_heard(gw) == before
    # Refused by the upstream (an edit needs a prompt): its error comes back as OpenAI's.
    r = requests.post(gw.url + "/v1/images/edits", headers=auth, files={"image": ("a.png", PNG), "model": (None, "dall-e-2")}, timeout=10)
    assert r.status_code == 400 and "prompt is required" in r.json()["error"]["message"], r.text


def test_uploads_are_limited_by_the_keys_rpm(gw):
    for call in [
        lambda c: c.images.edit(model="dall-e-2", image=("a.png", PNG), prompt="x"),
        lambda c: c.images.create_variation(model="dall-e-2", image=("a.png", PNG)),
    ]:
        key, _ = new_key(gw, rpm_limit=1)
        call(client(gw, key))
        with pytest.raises(openai.RateLimitError):
            call(client(gw, key))


@pytest.mark.parametrize("model,n", [("imagen", 2), ("titan", 3), ("nova-canvas", 1)])
def test_cloud_image_models_generate_and_bill_per_image(gw, model, n):
    key, token = new_key(gw)
    r = client(gw, key).images.generate(model=model, prompt="a lighthouse", n=n, size="1024x1024")
    assert len(r.data) == n and all(d.b64_json.startswith("iVBOR") for d in r.data)
    rows = spend_rows(gw, token, 1)
    assert [x["call_type"] for x in rows] == ["aimage_generation"], rows
    assert abs(rows[0]["spend"] - n * PER_IMAGE) < 1e-9, rows
    assert rows[0]["model_group"] == model


def test_stability_on_bedrock_takes_the_prompt_alone(gw):
    key, token = new_key(gw)
    r = client(gw, key).images.generate(model="sd3", prompt="a lighthouse")
    assert len(r.data) == 1 and r.data[0].b64_json
    # LiteLLM maps no `n` for these models: asking for more is refused by name.
    with pytest.raises(openai.BadRequestError) as e:
        client(gw, key).images.generate(model="sd3", prompt="a lighthouse", n=2)
    assert e.value.body["param"] == "n" and "drop_params" in e.value.body["message"], e.value.body


def test_cloud_image_models_refuse_what_they_cannot_do(gw):
    c = client(gw, MASTER_KEY)
    with pytest.raises(openai.BadRequestError) as e:
        c.images.generate(model="imagen", prompt="x", response_format="url")
    assert e.value.body["param"] == "response_format", e.value.body
    # A chat model is not an image model: refused without an upstream call, naming what it serves.
    with pytest.raises(openai.BadRequestError) as e:
        c.images.generate(model="gemini-chat", prompt="x")
    assert "/images/generations is not supported" in e.value.body["message"], e.value.body
