"""hello-python-event: an event function in Python.

Duct calls handler(event, context) and answers its result as JSON. Over
HTTP the event is the JSON body; from a trigger it is a CloudEvent, whose
payload is event["data"]. context has invocation_id, function_name and
get_remaining_time_in_millis().
"""


def handler(event, context):
    data = event.get("data") if isinstance(event, dict) and "specversion" in event else event
    name = data.get("name") if isinstance(data, dict) else None
    if not name:
        # A raised exception answers 500 with {"errorType":…,"errorMessage":…}.
        raise ValueError('name is missing: send {"name":"Ada"}')
    print("greeting", name)
    return {"greeting": "Hello, " + name}
