"""Exact HTTP over loopback (http.client, so a test sees the bytes the service sent) and the
credentials every process of the harness runs with."""
import http.client
import json

ORG_ID = "00D000000000001AAA"
# At least 32 bytes: the service refuses shorter secrets (issue 17).
WEBHOOK_SECRET = "mkto-webhook-secret-for-the-integration-tests"
ADMIN_TOKEN = "admin-token-for-the-integration-tests-0123"

# The headers of the two webhooks as the CRMs send them.
MK_HEADERS = {"Content-Type": "application/json", "X-Webhook-Secret": WEBHOOK_SECRET}
SF_HEADERS = {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'}


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


def request(port, method, path, body=None, headers=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Response(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


def admin_headers(token=None):
    return {"Authorization": f"Bearer {token or ADMIN_TOKEN}", "Content-Type": "application/json"}
