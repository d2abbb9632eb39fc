"""hello-python: an HTTP function in Python.

Duct calls handler(request) for every request to /fn/hello-python. The
request has .method, .path, .args (the query), .headers, .data (the body as
bytes) and .json (the body parsed, or None when it is not JSON). Return a
body, (body, status) or (body, status, headers): a dict or list is sent as
JSON, a str as text.
"""


def handler(request):
    if request.method not in ("GET", "POST"):
        return {"error": "use GET or POST"}, 405, {"Allow": "GET, POST"}
    name = request.args.get("name")
    if not name and request.headers.get("content-type", "").startswith("application/json"):
        body = request.json
        if not isinstance(body, dict):
            return {"error": 'the body must be a JSON object such as {"name":"Ada"}'}, 400
        name = body.get("name")
    name = name or "world"
    # Standard output and standard error are the function's log.
    print("greeting", name)
    return {"greeting": "Hello, " + name}, 200, {"X-Runtime": "python"}
