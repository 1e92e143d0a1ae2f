"""A WeChat Official Account bot in Flask, behind `wemp serve --forward` (docs/gateway.md).

wemp checks WeChat's signature, decrypts, drops WeChat's retries and keeps the 5-second
deadline; this app gets one signed JSON POST per message and answers {"reply": ...}.

    pip install flask
    WEMP_FORWARD_SECRET=change-me python app.py            # listens on 127.0.0.1:5000
    wemp serve --forward http://127.0.0.1:5000/wechat      # with the same WEMP_FORWARD_SECRET
"""

import hashlib
import hmac
import json
import logging
import os
import time
import urllib.request

from flask import Flask, abort, jsonify, request

SECRET = os.environ.get("WEMP_FORWARD_SECRET", "").encode()
# The API proxy of `wemp serve` ([api_proxy] token): the app never holds the access_token.
API = os.environ.get("WEMP_API", "http://127.0.0.1:8080/api")
API_TOKEN = os.environ.get("WEMP_API_PROXY_TOKEN", "")

logging.basicConfig(level=logging.INFO)
app = Flask(__name__)


def verified_json():
    """The request's JSON, after checking X-Wemp-Signature (HMAC-SHA256 of the raw body)."""
    body = request.get_data()
    if SECRET:
        expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Wemp-Signature", "")):
            abort(401)
    return json.loads(body)


def api(path, payload=None):
    """Calls WeChat's API through wemp's proxy (GET, or POST with a JSON payload)."""
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(API + path, data=data, headers={
        "Authorization": "Bearer " + API_TOKEN,
        "Content-Type": "application/json",
    })
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.load(res)


def text(content):
    return jsonify(reply={"type": "text", "content": content})


@app.post("/wechat")
def wechat():
    msg = verified_json()
    # X-Wemp-Dedup-Key is the same for WeChat's retries of one message; wemp calls this app
    # once per message, so it is only needed by apps that also retry on their own.
    app.logger.info("message %s", request.headers.get("X-Wemp-Dedup-Key"))
    if msg["msg_type"] == "event":
        if msg["event"] == "subscribe":
            return text("Welcome!")
        return jsonify(reply=None)
    content = (msg["content"] or "").strip()
    if content == "who am i":
        user = api("/cgi-bin/user/info?openid=" + msg["openid"])
        return text("You are " + user.get("nickname", user["openid"]))
    if content == "slow":
        # Past WeChat's 5 seconds: wemp answers WeChat in time and sends this reply
        # through the customer-service API.
        time.sleep(6)
        return text("Sorry for the wait")
    if content == "fail":
        return "boom", 500
    if msg["msg_type"] == "text":
        return text("You said: " + content)
    return "", 204  # no reply


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")), threaded=True)
