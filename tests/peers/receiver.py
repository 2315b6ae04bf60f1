"""A real HTTP receiver for the webhook, Slack and PagerDuty sink tests.

Listens on 127.0.0.1 (a free port), prints `{"port": N}` and then `READY`, then one JSON line
per request received: {"path", "headers", "body" (parsed JSON, else text), "verified",
"status" (what it answered), "at" (unix seconds when it arrived)}.

  --secret whsec_...   verify every request with the `standardwebhooks` library; a request
                       that fails is answered 401 (verified is false without --secret)
  --script 500,200     status per successive request; the last one repeats
  --retry-after N      send `Retry-After: N` with 429 and 503 answers
  --delay S            sleep S seconds before answering
  --redirect P=URL     answer requests for path P with `307 Location: URL` (repeatable)
  --mode M             webhook (default), slack or pagerduty: check the documented fields of
                       that API and answer 400 with the reason when one is wrong; success is
                       answered the way that API does (Slack: 200 "ok"; PagerDuty: 202 JSON)
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

PD_ACTIONS = {"trigger", "acknowledge", "resolve"}
PD_SEVERITIES = {"critical", "error", "warning", "info"}
SLACK_BLOCKS = {"header", "section", "divider", "context", "actions", "image", "rich_text", "input", "file", "video"}


def slack_problem(body):
    """Incoming webhooks: https://api.slack.com/messaging/webhooks and Block Kit limits."""
    if not isinstance(body, dict):
        return "body is not a JSON object"
    if not isinstance(body.get("text"), str) or not body["text"]:
        return "`text` (the notification fallback) is missing"
    blocks = body.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        return "`blocks` is not a non-empty list"
    if len(blocks) > 50:
        return f"{len(blocks)} blocks; Slack takes at most 50"
    for i, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in SLACK_BLOCKS:
            return f"blocks[{i}] has unknown type {kind!r}"
        text = block.get("text")
        if kind == "header":
            if not isinstance(text, dict) or text.get("type") != "plain_text" or not isinstance(text.get("text"), str):
                return f"blocks[{i}]: a header needs plain_text text"
            if len(text["text"]) > 150:
                return f"blocks[{i}]: header text over 150 characters"
        if kind == "section":
            if not isinstance(text, dict) or text.get("type") not in ("plain_text", "mrkdwn"):
                return f"blocks[{i}]: a section needs a text object"
            if not isinstance(text.get("text"), str) or not 1 <= len(text["text"]) <= 3000:
                return f"blocks[{i}]: section text must be 1 to 3000 characters"
    return None


def pagerduty_problem(body):
    """Events API v2: https://developer.pagerduty.com/docs/events-api-v2/trigger-events/"""
    if not isinstance(body, dict):
        return "body is not a JSON object"
    key = body.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        return "Length of 'routing_key' is incorrect (should be 32 characters)"
    action = body.get("event_action")
    if action not in PD_ACTIONS:
        return f"'event_action' is invalid: {action!r}"
    dedup = body.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        return "'dedup_key' must be a string of at most 255 characters"
    if action != "trigger":
        return None if dedup else f"'dedup_key' is required for {action}"
    payload = body.get("payload")
    if not isinstance(payload, dict):
        return "'payload' is missing"
    summary = payload.get("summary")
    if not isinstance(summary, str) or not 1 <= len(summary) <= 1024:
        return "'payload.summary' must be 1 to 1024 characters"
    if not isinstance(payload.get("source"), str) or not payload["source"]:
        return "'payload.source' is missing"
    if payload.get("severity") not in PD_SEVERITIES:
        return f"'payload.severity' is invalid: {payload.get('severity')!r}"
    for field in ("timestamp", "component", "group", "class"):
        if field in payload and not isinstance(payload[field], str):
            return f"'payload.{field}' must be a string"
    if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
        return "'payload.custom_details' must be an object"
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--secret")
    parser.add_argument("--script", default="")
    parser.add_argument("--retry-after")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--redirect", action="append", default=[])
    parser.add_argument("--mode", choices=["webhook", "slack", "pagerduty"], default="webhook")
    args = parser.parse_args()

    redirects = dict(r.split("=", 1) for r in args.redirect)
    success = 202 if args.mode == "pagerduty" else 200
    script = [int(s) for s in args.script.split(",") if s.strip()] or [success]
    lock = threading.Lock()
    state = {"requests": 0}

    def next_status():
        with lock:
            n = state["requests"]
            state["requests"] += 1
        return script[min(n, len(script) - 1)]

    def emit(record):
        with lock:
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def do_POST(self):
            arrived = time.time()
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
            if self.path in redirects:
                self.send_response(307)
                self.send_header("Location", redirects[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                emit({"path": self.path, "headers": headers, "body": body, "verified": False, "status": 307})
                return
            status = next_status()
            reason = None
            verified = False
            if args.secret:
                try:
                    Webhook(args.secret).verify(raw, headers)
                    verified = True
                except WebhookVerificationError as e:
                    status, reason = 401, f"signature: {e}"
            if reason is None and 200 <= status < 300:
                check = {"slack": slack_problem, "pagerduty": pagerduty_problem}.get(args.mode)
                problem = check(body) if check else None
                if problem:
                    status, reason = 400, problem
            if args.delay:
                time.sleep(args.delay)
            if 200 <= status < 300:
                if args.mode == "slack":
                    answer, kind = b"ok", "text/plain"
                elif args.mode == "pagerduty":
                    dedup = body.get("dedup_key", "")
                    answer = json.dumps({"status": "success", "message": "Event processed", "dedup_key": dedup}).encode()
                    kind = "application/json"
                else:
                    answer, kind = b"", "text/plain"
            else:
                answer, kind = (reason or f"scripted {status}").encode(), "text/plain"
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(answer)))
                if args.retry_after and status in (429, 503):
                    self.send_header("Retry-After", args.retry_after)
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                pass  # the client gave up waiting (timeout tests)
            emit({"path": self.path, "headers": headers, "body": body, "verified": verified, "status": status,
                  "at": arrived})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    emit({"port": server.server_address[1]})
    print("READY", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
